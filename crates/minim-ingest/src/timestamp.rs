//! Event timestamps: ISO 8601 / RFC 3339 strings and epoch seconds or milliseconds.
//!
//! The ISO parser is hand-written (one pass, no allocation) because it runs once per
//! event on the hot path; a proptest checks it against chrono's RFC 3339 parser.

use minim_core::time::MS_PER_DAY;

/// Epoch numbers with an absolute value at or above this are milliseconds, below it
/// seconds. 1e11 s is the year 5138; 1e11 ms is 1973-03-03, so every plausible event
/// time is read correctly either way.
pub const EPOCH_MS_THRESHOLD: i64 = 100_000_000_000;

const NOT_A_TIMESTAMP: &str = "timestamp must be an ISO 8601 string or an epoch number";
const INVALID_DATE_TIME: &str =
    "timestamp is not a valid ISO 8601 date-time (expected e.g. 2026-01-05T10:00:00Z)";
const NOT_REPRESENTABLE: &str = "timestamp is outside the representable range";

/// Milliseconds since the Unix epoch (UTC) for a JSON timestamp.
///
/// Accepted forms:
/// - RFC 3339 / ISO 8601 extended: `2026-01-05T10:00:00Z`, `…T10:00:00.123+01:00`,
///   offsets as `Z`, `±HH:MM`, `±HHMM` or `±HH`; `T`, `t` or a space between date and
///   time; seconds optional; any number of fraction digits (truncated to ms; `,` works
///   as the decimal sign); a leap second `:60` counts as `:59.999`.
/// - Without an offset, as UTC: `2026-01-05T10:00:00`, `2026-01-05 10:00:00`,
///   and a bare date `2026-01-05` (midnight UTC).
/// - Numbers, and strings of the form `-?digits(.digits)?`: epoch seconds when the
///   absolute value is below [`EPOCH_MS_THRESHOLD`], else milliseconds; fractions are
///   rounded to the nearest millisecond (`1767607200.5` → `1767607200500`).
///
/// Surrounding ASCII whitespace in strings is ignored. Whether the time is plausible
/// (not too far in the future or past) is the caller's check.
pub fn parse_timestamp(v: &serde_json::Value) -> Result<i64, &'static str> {
    match v {
        serde_json::Value::String(s) => parse_timestamp_str(s),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                from_epoch_int(i128::from(i))
            } else if let Some(u) = n.as_u64() {
                from_epoch_int(i128::from(u))
            } else {
                from_epoch_float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        _ => Err(NOT_A_TIMESTAMP),
    }
}

/// Error for a timestamp of a JSON type that is neither a string nor a number.
pub(crate) fn wrong_type() -> &'static str {
    NOT_A_TIMESTAMP
}

pub(crate) fn parse_timestamp_str(s: &str) -> Result<i64, &'static str> {
    let s = s.trim_matches(|c: char| c.is_ascii_whitespace());
    match numeric_shape(s.as_bytes()) {
        Some(false) => s
            .parse::<i128>()
            .map_err(|_| NOT_REPRESENTABLE)
            .and_then(from_epoch_int),
        Some(true) => s
            .parse::<f64>()
            .map_err(|_| INVALID_DATE_TIME)
            .and_then(from_epoch_float),
        None => parse_iso(s.as_bytes()).ok_or(INVALID_DATE_TIME),
    }
}

/// `Some(has_fraction)` when `b` matches `-?[0-9]+(\.[0-9]+)?`.
fn numeric_shape(b: &[u8]) -> Option<bool> {
    let b = b.strip_prefix(b"-").unwrap_or(b);
    let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if int_len == 0 {
        return None;
    }
    match &b[int_len..] {
        [] => Some(false),
        [b'.', frac @ ..] if !frac.is_empty() && frac.iter().all(u8::is_ascii_digit) => Some(true),
        _ => None,
    }
}

pub(crate) fn from_epoch_int(v: i128) -> Result<i64, &'static str> {
    let ms = if v.unsigned_abs() >= EPOCH_MS_THRESHOLD as u128 {
        v
    } else {
        v * 1000
    };
    i64::try_from(ms).map_err(|_| NOT_REPRESENTABLE)
}

pub(crate) fn from_epoch_float(v: f64) -> Result<i64, &'static str> {
    if !v.is_finite() {
        return Err(NOT_REPRESENTABLE);
    }
    let ms = if v.abs() >= EPOCH_MS_THRESHOLD as f64 {
        v
    } else {
        v * 1000.0
    }
    .round();
    // 2^63 is exactly representable; anything at or beyond it does not fit an i64.
    if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&ms) {
        return Err(NOT_REPRESENTABLE);
    }
    Ok(ms as i64)
}

/// A cursor over ASCII bytes for the ISO parser.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        self.i += usize::from(hit);
        hit
    }

    /// Exactly `n` ASCII digits as a number.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let chunk = self.b.get(self.i..self.i + n)?;
        let mut v = 0u32;
        for &c in chunk {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
        }
        self.i += n;
        Some(v)
    }

    fn at_end(&self) -> bool {
        self.i == self.b.len()
    }
}

fn parse_iso(b: &[u8]) -> Option<i64> {
    let mut c = Cursor { b, i: 0 };
    let year = c.digits(4)?;
    let month = c.eat(b'-').then(|| c.digits(2))??;
    let day = c.eat(b'-').then(|| c.digits(2))??;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    if c.at_end() {
        return Some(days * MS_PER_DAY);
    }
    if !matches!(c.peek(), Some(b'T' | b't' | b' ')) {
        return None;
    }
    c.i += 1;
    let hour = c.digits(2)?;
    let minute = c.eat(b':').then(|| c.digits(2))??;
    let (mut second, mut milli) = (0, 0);
    if c.eat(b':') {
        second = c.digits(2)?;
        if c.eat(b'.') || c.eat(b',') {
            let start = c.i;
            while c.peek().is_some_and(|d| d.is_ascii_digit()) {
                if c.i - start < 3 {
                    milli = milli * 10 + u32::from(b[c.i] - b'0');
                }
                c.i += 1;
            }
            match c.i - start {
                0 => return None,
                1 => milli *= 100,
                2 => milli *= 10,
                _ => {}
            }
        }
    }
    let offset_minutes: i64 = match c.peek() {
        None => 0,
        Some(b'Z' | b'z') => {
            c.i += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            c.i += 1;
            let oh = c.digits(2)?;
            let om = if c.at_end() {
                0
            } else {
                c.eat(b':');
                c.digits(2)?
            };
            if oh > 23 || om > 59 {
                return None;
            }
            let total = i64::from(oh * 60 + om);
            if sign == b'-' { -total } else { total }
        }
        Some(_) => return None,
    };
    if !c.at_end() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    if second == 60 {
        (second, milli) = (59, 999);
    }
    let time_ms = i64::from((hour * 60 + minute) * 60 + second) * 1000 + i64::from(milli);
    Some(days * MS_PER_DAY + time_ms - offset_minutes * 60_000)
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const T: i64 = 1_767_607_200_000; // 2026-01-05T10:00:00Z

    fn ts(v: serde_json::Value) -> Result<i64, &'static str> {
        parse_timestamp(&v)
    }

    #[test]
    fn iso_forms_with_offset_or_z() {
        assert_eq!(ts(json!("2026-01-05T10:00:00Z")), Ok(T));
        assert_eq!(ts(json!("2026-01-05t10:00:00z")), Ok(T));
        assert_eq!(ts(json!("2026-01-05T10:00:00.5Z")), Ok(T + 500));
        assert_eq!(ts(json!("2026-01-05T10:00:00.12Z")), Ok(T + 120));
        assert_eq!(ts(json!("2026-01-05T10:00:00.123456789Z")), Ok(T + 123));
        assert_eq!(ts(json!("2026-01-05T10:00:00,250Z")), Ok(T + 250));
        assert_eq!(ts(json!("2026-01-05T11:00:00+01:00")), Ok(T));
        assert_eq!(ts(json!("2026-01-05T11:30:00+0130")), Ok(T));
        assert_eq!(ts(json!("2026-01-05T11:00:00+01")), Ok(T));
        assert_eq!(ts(json!("2026-01-05T05:00:00-05:00")), Ok(T));
        assert_eq!(ts(json!("2026-01-05 10:00:00Z")), Ok(T));
        assert_eq!(ts(json!("2026-01-05T10:00Z")), Ok(T));
    }

    #[test]
    fn iso_forms_without_offset_are_utc() {
        assert_eq!(ts(json!("2026-01-05T10:00:00")), Ok(T));
        assert_eq!(ts(json!("2026-01-05 10:00:00")), Ok(T));
        assert_eq!(ts(json!("2026-01-05 10:00:00.250")), Ok(T + 250));
        assert_eq!(ts(json!("2026-01-05")), Ok(T - 10 * 3_600_000));
        assert_eq!(ts(json!("  2026-01-05T10:00:00Z\n")), Ok(T));
    }

    #[test]
    fn iso_calendar_edges() {
        assert_eq!(ts(json!("1970-01-01T00:00:00Z")), Ok(0));
        assert_eq!(ts(json!("1969-12-31T23:59:59.999Z")), Ok(-1));
        assert!(ts(json!("2024-02-29T00:00:00Z")).is_ok());
        assert_eq!(
            ts(json!("2023-12-31T23:59:60Z")),
            ts(json!("2023-12-31T23:59:59.999Z"))
        );
        for bad in [
            "2023-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-10T00:00:00Z",
            "2026-01-32T00:00:00Z",
            "2026-01-05T24:00:00Z",
            "2026-01-05T10:60:00Z",
            "2026-01-05T10:00:61Z",
            "2026-01-05T10:00:00+24:00",
            "2026-01-05T10:00:00.Z",
            "2026-01-05T10:00:00ZZ",
            "2026-01-05T10",
            "2026-1-5T10:00:00Z",
            "26-01-05",
            "2026-01-05X10:00:00",
            "yesterday",
            "",
            "-",
            "1.",
            ".5",
            "1e12",
            "２０２６-01-05",
        ] {
            assert_eq!(ts(json!(bad)), Err(INVALID_DATE_TIME), "{bad:?} accepted");
        }
    }

    #[test]
    fn epoch_seconds_vs_milliseconds_heuristic() {
        assert_eq!(ts(json!(1_767_607_200)), Ok(T));
        assert_eq!(ts(json!(T)), Ok(T));
        assert_eq!(ts(json!(1_767_607_200.5)), Ok(T + 500));
        assert_eq!(ts(json!(1_767_607_200.123)), Ok(T + 123));
        assert_eq!(ts(json!(1_767_607_200_000.4)), Ok(T));
        // The threshold: 1e11 and above is milliseconds, below it seconds.
        assert_eq!(ts(json!(99_999_999_999_i64)), Ok(99_999_999_999_000));
        assert_eq!(ts(json!(100_000_000_000_i64)), Ok(100_000_000_000));
        assert_eq!(ts(json!(-99_999_999_999_i64)), Ok(-99_999_999_999_000));
        assert_eq!(ts(json!(-100_000_000_000_i64)), Ok(-100_000_000_000));
        assert_eq!(ts(json!(0)), Ok(0));
        assert_eq!(ts(json!(-1.5)), Ok(-1500));
    }

    #[test]
    fn digit_strings_are_epoch_numbers() {
        assert_eq!(ts(json!("1767607200")), Ok(T));
        assert_eq!(ts(json!("1767607200000")), Ok(T));
        assert_eq!(ts(json!("1767607200.5")), Ok(T + 500));
        assert_eq!(ts(json!("-100")), Ok(-100_000));
    }

    #[test]
    fn unrepresentable_or_wrong_type_timestamps_are_errors() {
        assert_eq!(ts(json!(u64::MAX)), Err(NOT_REPRESENTABLE));
        assert_eq!(ts(json!(1e300)), Err(NOT_REPRESENTABLE));
        assert_eq!(ts(json!(-1e19)), Err(NOT_REPRESENTABLE));
        assert_eq!(
            ts(json!("99999999999999999999999999999999999999999999")),
            Err(NOT_REPRESENTABLE)
        );
        assert_eq!(
            ts(json!("-170141183460469231731687303715884105728")),
            Err(NOT_REPRESENTABLE)
        );
        assert_eq!(ts(json!(i64::MAX)), Ok(i64::MAX));
        assert_eq!(ts(json!(i64::MIN)), Ok(i64::MIN));
        for v in [json!(null), json!(true), json!([1]), json!({"t": 1})] {
            assert_eq!(ts(v), Err(NOT_A_TIMESTAMP));
        }
    }

    proptest! {
        /// Reference model: chrono's RFC 3339 parser agrees on every valid date-time.
        #[test]
        fn iso_parser_matches_chrono(
            secs in -62_135_596_800i64..253_402_300_799, // 0001-01-01 ..= 9999-12-31
            nanos in 0u32..1_000_000_000,
            offset_min in -(23 * 60 + 59)..=(23 * 60 + 59i32),
            digits in 0usize..=9,
        ) {
            let offset = chrono::FixedOffset::east_opt(offset_min * 60).unwrap();
            let utc = chrono::DateTime::from_timestamp(secs, nanos).unwrap();
            let local = utc.with_timezone(&offset);
            prop_assume!(local.format("%Y").to_string().len() == 4);
            let frac = if digits == 0 { String::new() } else { format!(".{}", &format!("{nanos:09}")[..digits]) };
            let text = format!("{}{frac}{}", local.format("%Y-%m-%dT%H:%M:%S"), local.format("%:z"));
            let expected = chrono::DateTime::parse_from_rfc3339(&text).unwrap().timestamp_millis();
            prop_assert_eq!(parse_timestamp_str(&text), Ok(expected), "{}", text);
        }

        #[test]
        fn timestamp_parser_never_panics(s in "\\PC{0,40}", f in proptest::num::f64::ANY, i in any::<i64>()) {
            let _ = parse_timestamp_str(&s);
            let _ = from_epoch_float(f);
            let _ = from_epoch_int(i128::from(i));
        }
    }
}
