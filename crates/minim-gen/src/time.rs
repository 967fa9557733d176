//! Time: RFC 3339 millisecond formatting and the daily/weekly traffic rhythm.

pub(crate) const MS_PER_HOUR: i64 = 3_600_000;
pub(crate) const MS_PER_DAY: i64 = 86_400_000;

/// Relative traffic per UTC hour of day (an audience spread over the Americas and
/// Europe: quiet at night, peaking in the European afternoon / American morning).
const HOURLY: [f64; 24] = [
    0.55, 0.45, 0.38, 0.33, 0.32, 0.35, 0.45, 0.60, 0.80, 0.95, 1.05, 1.10, 1.15, 1.20, 1.25, 1.30,
    1.30, 1.25, 1.15, 1.05, 0.95, 0.85, 0.75, 0.65,
];

/// Relative traffic per weekday, Monday first.
const WEEKLY: [f64; 7] = [1.05, 1.10, 1.10, 1.05, 0.95, 0.70, 0.65];

/// Traffic grows by this fraction from the first to the last day of the range.
const GROWTH_OVER_RANGE: f64 = 0.5;

/// Maps a position in the event stream (a fraction of all events) to a time, so that
/// the density of events follows [`HOURLY`] x [`WEEKLY`] x a gentle growth trend.
///
/// The cursor only moves forward: sessions start in time order, which keeps each
/// user's funnel steps ordered cheaply. State is O(1): the current hour bucket and
/// the weight of all hours before it.
#[derive(Debug, Clone)]
pub(crate) struct Rhythm {
    start_ms: i64,
    hours: u64,
    days: u32,
    /// Monday = 0 for the first day.
    first_weekday: u32,
    total_weight: f64,
    hour: u64,
    weight_before: f64,
}

impl Rhythm {
    pub(crate) fn new(start_ms: i64, days: u32, first_weekday: u32) -> Self {
        let mut r = Self {
            start_ms,
            hours: u64::from(days) * 24,
            days,
            first_weekday,
            total_weight: 0.0,
            hour: 0,
            weight_before: 0.0,
        };
        // Summed in a fixed order, so the total is identical everywhere.
        r.total_weight = (0..r.hours).map(|h| r.weight(h)).sum();
        r
    }

    fn weight(&self, hour: u64) -> f64 {
        let day = hour / 24;
        let weekday = ((u64::from(self.first_weekday) + day) % 7) as usize;
        let trend = 1.0 + GROWTH_OVER_RANGE * day as f64 / f64::from(self.days);
        HOURLY[(hour % 24) as usize] * WEEKLY[weekday] * trend
    }

    /// The time (ms) at stream position `fraction` in `[0, 1)`; never decreases
    /// between calls with non-decreasing fractions; always within the range.
    pub(crate) fn time_at(&mut self, fraction: f64) -> i64 {
        let target = fraction.clamp(0.0, 1.0) * self.total_weight;
        loop {
            let w = self.weight(self.hour);
            if self.hour + 1 >= self.hours || self.weight_before + w > target {
                let within = ((target - self.weight_before) / w).clamp(0.0, 1.0);
                let ms = ((within * MS_PER_HOUR as f64) as i64).min(MS_PER_HOUR - 1);
                return self.start_ms + self.hour as i64 * MS_PER_HOUR + ms;
            }
            self.weight_before += w;
            self.hour += 1;
        }
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
/// Howard Hinnant's `civil_from_days`.
pub(crate) const fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Appends `YYYY-MM-DDTHH:MM:SS.mmmZ` for a millisecond timestamp in years 0..=9999.
pub(crate) fn push_timestamp(out: &mut Vec<u8>, ts_ms: i64) {
    let days = ts_ms.div_euclid(MS_PER_DAY);
    let ms_of_day = ts_ms.rem_euclid(MS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let y = y.clamp(0, 9999) as u32;
    let secs = (ms_of_day / 1000) as u32;
    let ms = (ms_of_day % 1000) as u32;
    let mut b = *b"0000-00-00T00:00:00.000Z";
    put_digits(&mut b[0..4], y);
    put_digits(&mut b[5..7], m);
    put_digits(&mut b[8..10], d);
    put_digits(&mut b[11..13], secs / 3600);
    put_digits(&mut b[14..16], secs / 60 % 60);
    put_digits(&mut b[17..19], secs % 60);
    put_digits(&mut b[20..23], ms);
    out.extend_from_slice(&b);
}

fn put_digits(dst: &mut [u8], mut v: u32) {
    for slot in dst.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_match_chrono() {
        let mut x = 0x1234_5678_9abc_def0u64;
        for _ in 0..10_000 {
            x = crate::mix::mix64(x);
            // 1970 .. ~2300
            let ts = (x % 10_400_000_000_000) as i64;
            let mut buf = Vec::new();
            push_timestamp(&mut buf, ts);
            let want = chrono::DateTime::from_timestamp_millis(ts)
                .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
                .unwrap_or_default();
            assert_eq!(String::from_utf8_lossy(&buf), want, "ts={ts}");
        }
    }

    #[test]
    fn rhythm_is_monotone_and_in_range() {
        let start = 1_767_225_600_000; // 2026-01-01, a Thursday
        let mut r = Rhythm::new(start, 7, 3);
        let mut last = start;
        for i in 0..10_000 {
            let t = r.time_at(f64::from(i) / 10_000.0);
            assert!(t >= last && t < start + 7 * MS_PER_DAY);
            last = t;
        }
        assert!(r.time_at(1.0) < start + 7 * MS_PER_DAY);
    }
}
