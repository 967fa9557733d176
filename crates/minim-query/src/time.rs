//! UTC bucket arithmetic: where an hour/day/week/month starts, how many fit a range, labels.
//!
//! Buckets are identified by their start in milliseconds since the epoch. Weeks are ISO
//! weeks (Monday 00:00 UTC); months start on the 1st. A range's first and last bucket may
//! stick out of `[from, to]` (a week starting before `from`); only events inside the
//! range are ever counted in them, but they keep their natural start as label.
//!
//! Labels: `YYYY-MM-DD` (the bucket's first day) for day, week and month;
//! `YYYY-MM-DDTHH:00:00Z` (RFC 3339, UTC) for hour.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveTime};
use minim_core::time::MS_PER_DAY;

use crate::spec::{Date, Interval};

pub const MS_PER_HOUR: i64 = 3_600_000;

/// The UTC date of a timestamp; `None` only outside chrono's range (±262,000 years).
pub fn date_of(ts_ms: i64) -> Option<NaiveDate> {
    DateTime::from_timestamp_millis(ts_ms).map(|d| d.date_naive())
}

fn ms_of(date: NaiveDate) -> i64 {
    date.and_time(NaiveTime::MIN).and_utc().timestamp_millis()
}

fn monday_of(date: NaiveDate) -> Option<NaiveDate> {
    date.checked_sub_days(Days::new(u64::from(date.weekday().num_days_from_monday())))
}

/// Start of the bucket that contains `ts_ms`; `None` for timestamps so extreme that the
/// bucket start is not representable.
pub fn bucket_start(interval: Interval, ts_ms: i64) -> Option<i64> {
    match interval {
        Interval::Hour => ts_ms.div_euclid(MS_PER_HOUR).checked_mul(MS_PER_HOUR),
        Interval::Day => ts_ms.div_euclid(MS_PER_DAY).checked_mul(MS_PER_DAY),
        Interval::Week => monday_of(date_of(ts_ms)?).map(ms_of),
        Interval::Month => date_of(ts_ms)?.with_day(1).map(ms_of),
    }
}

/// Start of the bucket after the one starting at `start_ms`.
pub fn next_bucket(interval: Interval, start_ms: i64) -> Option<i64> {
    match interval {
        Interval::Hour => start_ms.checked_add(MS_PER_HOUR),
        Interval::Day => start_ms.checked_add(MS_PER_DAY),
        Interval::Week => start_ms.checked_add(7 * MS_PER_DAY),
        Interval::Month => date_of(start_ms)?
            .checked_add_months(Months::new(1))
            .map(ms_of),
    }
}

/// Starts of every bucket that overlaps `[from, to]`, in order.
///
/// Allocates one entry per bucket: call it on validated specs only (their bucket count is
/// bounded by [`crate::SpecLimits::max_buckets`]).
pub fn bucket_starts(interval: Interval, from: Date, to: Date) -> Vec<i64> {
    let (start, end) = Date::range_ms(from, to);
    let mut out = Vec::new();
    let mut s = bucket_start(interval, start);
    while let Some(b) = s {
        if b >= end {
            break;
        }
        out.push(b);
        s = next_bucket(interval, b);
    }
    out
}

/// How many buckets overlap `[from, to]` (0 when `to < from`), without allocating.
pub fn bucket_count(interval: Interval, from: Date, to: Date) -> u64 {
    let (f, t) = (from.naive(), to.naive());
    if t < f {
        return 0;
    }
    let days = u64::try_from((t - f).num_days()).unwrap_or(0) + 1;
    match interval {
        Interval::Hour => days * 24,
        Interval::Day => days,
        Interval::Week => match (monday_of(f), monday_of(t)) {
            (Some(a), Some(b)) => u64::try_from((b - a).num_days() / 7).unwrap_or(0) + 1,
            _ => days,
        },
        Interval::Month => {
            let months = |d: NaiveDate| i64::from(d.year()) * 12 + i64::from(d.month0());
            u64::try_from(months(t) - months(f)).unwrap_or(0) + 1
        }
    }
}

/// How many buckets after the one starting at `first_ms` the bucket starting at
/// `bucket_ms` is (both must be bucket starts of `interval`); negative before it.
pub fn bucket_index(interval: Interval, first_ms: i64, bucket_ms: i64) -> Option<i64> {
    match interval {
        Interval::Hour => Some((bucket_ms - first_ms).div_euclid(MS_PER_HOUR)),
        Interval::Day => Some((bucket_ms - first_ms).div_euclid(MS_PER_DAY)),
        Interval::Week => Some((bucket_ms - first_ms).div_euclid(7 * MS_PER_DAY)),
        Interval::Month => {
            let months =
                |ms: i64| date_of(ms).map(|d| i64::from(d.year()) * 12 + i64::from(d.month0()));
            Some(months(bucket_ms)? - months(first_ms)?)
        }
    }
}

/// The label of the bucket starting at `start_ms` (see the module docs).
pub fn label(interval: Interval, start_ms: i64) -> String {
    let Some(dt) = DateTime::from_timestamp_millis(start_ms) else {
        return String::new();
    };
    match interval {
        Interval::Hour => dt.format("%Y-%m-%dT%H:00:00Z").to_string(),
        _ => dt.format("%Y-%m-%d").to_string(),
    }
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-01-05T10:00:00.000Z`.
pub fn timestamp_string(ts_ms: i64) -> String {
    DateTime::from_timestamp_millis(ts_ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    #[test]
    fn weeks_start_on_monday() {
        // 2026-01-01 is a Thursday; its ISO week starts on Monday 2025-12-29.
        let starts = bucket_starts(Interval::Week, d("2026-01-01"), d("2026-01-12"));
        let labels: Vec<_> = starts.iter().map(|s| label(Interval::Week, *s)).collect();
        assert_eq!(labels, ["2025-12-29", "2026-01-05", "2026-01-12"]);
        assert_eq!(
            bucket_count(Interval::Week, d("2026-01-01"), d("2026-01-12")),
            3
        );
        // A Monday is its own week start; a Sunday belongs to the week before.
        assert_eq!(
            bucket_count(Interval::Week, d("2026-01-05"), d("2026-01-11")),
            1
        );
    }

    #[test]
    fn months_and_hours() {
        let starts = bucket_starts(Interval::Month, d("2025-11-15"), d("2026-02-01"));
        let labels: Vec<_> = starts.iter().map(|s| label(Interval::Month, *s)).collect();
        assert_eq!(
            labels,
            ["2025-11-01", "2025-12-01", "2026-01-01", "2026-02-01"]
        );
        let hours = bucket_starts(Interval::Hour, d("2026-01-01"), d("2026-01-02"));
        assert_eq!(hours.len(), 48);
        assert_eq!(label(Interval::Hour, hours[5]), "2026-01-01T05:00:00Z");
        assert_eq!(label(Interval::Hour, hours[47]), "2026-01-02T23:00:00Z");
    }

    #[test]
    fn counts_match_the_lists() {
        let pairs = [
            ("2024-02-27", "2024-03-02"),
            ("2025-12-31", "2026-01-01"),
            ("2026-01-05", "2026-01-05"),
            ("2023-01-01", "2026-06-30"),
        ];
        for (from, to) in pairs {
            for interval in [
                Interval::Hour,
                Interval::Day,
                Interval::Week,
                Interval::Month,
            ] {
                let n = bucket_starts(interval, d(from), d(to)).len() as u64;
                assert_eq!(
                    bucket_count(interval, d(from), d(to)),
                    n,
                    "{from}..{to} {interval:?}"
                );
            }
        }
    }

    #[test]
    fn timestamps_format_with_millis() {
        assert_eq!(
            timestamp_string(1_767_607_200_123),
            "2026-01-05T10:00:00.123Z"
        );
        assert_eq!(bucket_start(Interval::Day, -1), Some(-MS_PER_DAY));
        for interval in [
            Interval::Hour,
            Interval::Day,
            Interval::Week,
            Interval::Month,
        ] {
            assert_eq!(bucket_start(interval, i64::MIN), None, "{interval:?}");
            assert_eq!(label(interval, i64::MAX), "");
        }
    }
}
