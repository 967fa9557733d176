//! `GenConfig` (what to generate) and `GenError` (why it cannot be generated).

use chrono::{Datelike, NaiveDate};

/// Default users: one per this many events.
pub const EVENTS_PER_USER: u64 = 50;
/// Cap on the *default* number of users (per-user state is 4 bytes, so 8 MB).
pub const DEFAULT_MAX_USERS: u64 = 2_000_000;
/// Hard limit on `users` (4 bytes of state each: 200 MB at the limit).
pub const MAX_USERS: u64 = 50_000_000;
/// Hard limit on `days` (about ten years).
pub const MAX_DAYS: u32 = 3660;

/// What to generate. Two equal configs always produce byte-identical output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GenConfig {
    /// Exactly this many events are produced (0 gives empty output).
    pub events: u64,
    /// Size of the registered-user population (`user-1` ..= `user-{users}`);
    /// anonymous visitors come on top. Not every user is necessarily active.
    pub users: u64,
    /// Events fall within `[start, start + days)`, UTC.
    pub days: u32,
    pub seed: u64,
    /// First day (UTC) of the generated range.
    pub start: NaiveDate,
}

impl GenConfig {
    /// Defaults: `users = clamp(events / 50, 1, 2_000_000)`, 30 days from
    /// 2026-01-01, seed 42.
    pub fn new(events: u64) -> Self {
        Self {
            events,
            users: (events / EVENTS_PER_USER).clamp(1, DEFAULT_MAX_USERS),
            days: 30,
            seed: 42,
            start: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default(),
        }
    }

    /// Checks every field; the error names the field (as the CLI flag is named).
    pub fn validate(&self) -> Result<(), GenError> {
        if self.users == 0 || self.users > MAX_USERS {
            return Err(GenError::invalid(
                "users",
                format!("must be between 1 and {MAX_USERS} (got {})", self.users),
            ));
        }
        if self.days == 0 || self.days > MAX_DAYS {
            return Err(GenError::invalid(
                "days",
                format!("must be between 1 and {MAX_DAYS} (got {})", self.days),
            ));
        }
        let last_day = self
            .start
            .checked_add_days(chrono::Days::new(u64::from(self.days) - 1));
        let in_range = self.start.year() >= 1970 && last_day.is_some_and(|d| d.year() <= 9999);
        if !in_range {
            return Err(GenError::invalid(
                "start",
                format!(
                    "the range {} + {} days must lie within years 1970..=9999",
                    self.start, self.days
                ),
            ));
        }
        Ok(())
    }

    /// First millisecond of the range (UTC midnight of `start`), since the Unix epoch.
    pub fn start_ms(&self) -> i64 {
        self.start
            .and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp_millis())
    }

    /// One past the last millisecond of the range.
    pub fn end_ms(&self) -> i64 {
        self.start_ms() + i64::from(self.days) * crate::time::MS_PER_DAY
    }

    /// Monday = 0 for `start`.
    pub(crate) fn first_weekday(&self) -> u32 {
        self.start.weekday().num_days_from_monday()
    }
}

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// A `GenConfig` field is out of range; `field` is the CLI flag's name.
    #[error("invalid --{field}: {reason}")]
    InvalidConfig { field: &'static str, reason: String },
    /// Writing the output failed (e.g. a closed pipe: `ErrorKind::BrokenPipe`).
    #[error("writing events failed: {0}")]
    Io(#[from] std::io::Error),
}

impl GenError {
    fn invalid(field: &'static str, reason: String) -> Self {
        Self::InvalidConfig { field, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = GenConfig::new(1000);
        assert_eq!((c.users, c.days, c.seed), (20, 30, 42));
        assert_eq!(c.start.to_string(), "2026-01-01");
        assert_eq!(GenConfig::new(0).users, 1);
        assert_eq!(GenConfig::new(10_000_000_000).users, DEFAULT_MAX_USERS);
        assert!(GenConfig::new(0).validate().is_ok());
        assert_eq!(c.start_ms(), 1_767_225_600_000);
        assert_eq!(c.end_ms() - c.start_ms(), 30 * 86_400_000);
    }

    #[test]
    fn validate_names_the_field() {
        let base = GenConfig::new(100);
        let field = |c: GenConfig| match c.validate() {
            Err(GenError::InvalidConfig { field, .. }) => field,
            other => panic!("expected InvalidConfig, got {other:?}"),
        };
        assert_eq!(field(GenConfig { users: 0, ..base }), "users");
        assert_eq!(
            field(GenConfig {
                users: MAX_USERS + 1,
                ..base
            }),
            "users"
        );
        assert_eq!(field(GenConfig { days: 0, ..base }), "days");
        assert_eq!(
            field(GenConfig {
                days: MAX_DAYS + 1,
                ..base
            }),
            "days"
        );
        let old = NaiveDate::from_ymd_opt(1969, 12, 31).unwrap();
        assert_eq!(field(GenConfig { start: old, ..base }), "start");
        let late = NaiveDate::from_ymd_opt(9999, 12, 1).unwrap();
        assert_eq!(
            field(GenConfig {
                start: late,
                days: 32,
                ..base
            }),
            "start"
        );
        assert!(
            GenConfig {
                start: late,
                days: 32,
                ..base
            }
            .validate()
            .unwrap_err()
            .to_string()
            .contains("--start")
        );
        assert!(
            GenConfig {
                start: late,
                days: 31,
                ..base
            }
            .validate()
            .is_ok()
        );
        assert!(
            GenConfig {
                days: MAX_DAYS,
                ..base
            }
            .validate()
            .is_ok()
        );
    }
}
