//! Time helpers: UTC days and the one clock abstraction used for tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

pub const MS_PER_DAY: i64 = 86_400_000;

/// Days since the Unix epoch (UTC) for a millisecond timestamp; floors for negatives.
pub fn day_of(timestamp_ms: i64) -> i32 {
    timestamp_ms.div_euclid(MS_PER_DAY) as i32
}

/// `YYYY-MM-DD` for a day number from [`day_of`].
pub fn day_string(day: i32) -> String {
    let date = chrono::DateTime::from_timestamp_millis(i64::from(day) * MS_PER_DAY)
        .map(|d| d.date_naive())
        .unwrap_or_default();
    date.format("%Y-%m-%d").to_string()
}

/// Parses `YYYY-MM-DD` back into a day number.
pub fn parse_day(s: &str) -> Option<i32> {
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    let ms = d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis();
    Some(day_of(ms))
}

/// A clock: the system clock in production, a settable one in tests.
#[derive(Clone, Default)]
pub struct Clock(Option<Arc<AtomicI64>>);

impl Clock {
    pub fn system() -> Self {
        Self(None)
    }

    /// A manual clock starting at `now_ms`; [`Clock::set_ms`] moves it.
    pub fn manual(now_ms: i64) -> Self {
        Self(Some(Arc::new(AtomicI64::new(now_ms))))
    }

    pub fn set_ms(&self, now_ms: i64) {
        if let Some(t) = &self.0 {
            t.store(now_ms, Ordering::Relaxed);
        }
    }

    pub fn now_ms(&self) -> i64 {
        match &self.0 {
            Some(t) => t.load(Ordering::Relaxed),
            None => chrono::Utc::now().timestamp_millis(),
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Clock(manual)"
        } else {
            "Clock(system)"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(-1), -1);
        let d = parse_day("2026-01-05").unwrap();
        assert_eq!(day_string(d), "2026-01-05");
        assert_eq!(day_of(1_767_607_200_000), d); // 2026-01-05T10:00:00Z
    }
}
