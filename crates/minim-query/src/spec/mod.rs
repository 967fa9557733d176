//! Query spec types: the `kind`s of CONTRACT.md "Queries" plus issue 3's extensions.
//!
//! Specs come from JSON through [`QuerySpec::from_json_str`] (parse + validate, errors
//! name the field); [`QuerySpec::validate`] checks a spec built any other way. A spec
//! that passed validation is safe to hand to an engine or to [`crate::reference`].
//!
//! Shared conventions:
//! - `from`/`to` are UTC calendar dates, inclusive: the range is
//!   `[from 00:00:00.000, to + 1 day 00:00:00.000)` in milliseconds ([`Date::range_ms`]).
//! - A user is a `distinct_id`.
//! - Property values and filters are defined in [`crate::props`] and on [`FilterOp`].

mod parse;
mod validate;

use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};

use crate::limits::{
    DEFAULT_BREAKDOWN_LIMIT, DEFAULT_EVENTS_LIMIT, DEFAULT_PATH_DEPTH, DEFAULT_PATH_TOP_N,
};

/// One insight query, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QuerySpec {
    Trends(TrendsSpec),
    Funnel(FunnelSpec),
    Retention(RetentionSpec),
    Paths(PathsSpec),
    Events(EventsSpec),
}

impl QuerySpec {
    /// The `kind` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Trends(_) => "trends",
            Self::Funnel(_) => "funnel",
            Self::Retention(_) => "retention",
            Self::Paths(_) => "paths",
            Self::Events(_) => "events",
        }
    }

    /// Every property the query reads in any way (breakdown, filters of every operator,
    /// series maths), each once, sorted: what an access check must look at.
    pub fn referenced_properties(&self) -> Vec<String> {
        let mut names = self.string_properties();
        let (series, filters): (&[SeriesSpec], &[Filter]) = match self {
            Self::Trends(s) => (&s.series, &s.filters),
            Self::Events(s) => (&[], &s.filters),
            Self::Funnel(_) | Self::Retention(_) | Self::Paths(_) => (&[], &[]),
        };
        names.extend(series.iter().filter_map(|s| s.property.clone()));
        names.extend(filters.iter().map(|f| f.property.clone()));
        names.sort();
        names.dedup();
        names
    }

    /// The properties whose string form the query reads (breakdowns and filters other
    /// than `gt`/`lt`), each once, sorted. Engines may prepare these columns up front.
    pub fn string_properties(&self) -> Vec<String> {
        let (breakdown, filters): (Option<&String>, &[Filter]) = match self {
            Self::Trends(s) => (s.breakdown.as_ref(), &s.filters),
            Self::Funnel(s) => (s.breakdown.as_ref(), &[]),
            Self::Events(s) => (None, &s.filters),
            Self::Retention(_) | Self::Paths(_) => (None, &[]),
        };
        let mut names: Vec<String> = breakdown
            .into_iter()
            .chain(
                filters
                    .iter()
                    .filter(|f| !matches!(f.op, FilterOp::Gt | FilterOp::Lt))
                    .map(|f| &f.property),
            )
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// A UTC calendar date, written `YYYY-MM-DD` (exactly: four-digit year, two-digit month
/// and day) in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(NaiveDate);

impl Date {
    /// Parses exactly `YYYY-MM-DD`; `None` for anything else or a date that does not exist.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        let shape_ok = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        if !shape_ok {
            return None;
        }
        let year: i32 = s.get(0..4)?.parse().ok()?;
        let month: u32 = s.get(5..7)?.parse().ok()?;
        let day: u32 = s.get(8..10)?.parse().ok()?;
        NaiveDate::from_ymd_opt(year, month, day).map(Self)
    }

    pub fn from_naive(d: NaiveDate) -> Self {
        Self(d)
    }

    pub fn naive(self) -> NaiveDate {
        self.0
    }

    /// Milliseconds since the epoch of this date's 00:00:00.000 UTC.
    pub fn start_ms(self) -> i64 {
        self.0.and_time(NaiveTime::MIN).and_utc().timestamp_millis()
    }

    /// Milliseconds since the epoch of the next date's 00:00:00.000 UTC (exclusive end).
    pub fn end_ms(self) -> i64 {
        self.start_ms() + minim_core::time::MS_PER_DAY
    }

    /// The half-open millisecond range `[from 00:00, to + 1 day 00:00)` of an inclusive
    /// date range.
    pub fn range_ms(from: Date, to: Date) -> (i64, i64) {
        (from.start_ms(), to.end_ms())
    }

    pub fn year(self) -> i32 {
        self.0.year()
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Date::parse(&s).ok_or_else(|| {
            serde::de::Error::custom("not a date: expected YYYY-MM-DD, a real calendar date")
        })
    }
}

/// Trend bucket width. Buckets are UTC; weeks are ISO weeks starting on Monday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Hour,
    #[default]
    Day,
    Week,
    Month,
}

/// Retention period width (as [`Interval`] without `hour`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    #[default]
    Day,
    Week,
    Month,
}

impl Period {
    pub fn interval(self) -> Interval {
        match self {
            Self::Day => Interval::Day,
            Self::Week => Interval::Week,
            Self::Month => Interval::Month,
        }
    }
}

/// What a trend series measures per bucket (and over the whole range for `total`).
///
/// - `total`: number of matching events (an integer).
/// - `unique_users`: number of distinct `distinct_id`s (an integer); the series `total`
///   is the distinct count over the whole range, not the sum of buckets.
/// - `sum`/`avg`/`min`/`max`/`p50`/`p90`/`p99` of the numeric `property` (f64): over the
///   matching events whose property is a JSON number; other events are ignored. `avg`
///   is sum / count. Percentiles follow ClickHouse `quantileExact(level)`: sort the n
///   values ascending and take the one at 0-based index `floor(level * n)` (see
///   [`crate::quantile::quantile_exact`]); so `p50` of an even count is the upper median.
///   A bucket (or range) with no numeric value yields 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Math {
    #[default]
    Total,
    UniqueUsers,
    Sum,
    Avg,
    Min,
    Max,
    P50,
    P90,
    P99,
}

impl Math {
    /// Whether this math aggregates a numeric property (and so needs `property`).
    pub fn needs_property(self) -> bool {
        !matches!(self, Self::Total | Self::UniqueUsers)
    }

    /// The quantile level of `p50`/`p90`/`p99`.
    pub fn quantile_level(self) -> Option<f64> {
        match self {
            Self::P50 => Some(0.5),
            Self::P90 => Some(0.9),
            Self::P99 => Some(0.99),
            _ => None,
        }
    }
}

/// One trend line: an event name and what to measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesSpec {
    pub event: String,
    #[serde(default)]
    pub math: Math,
    /// The numeric property for `sum`/`avg`/`min`/`max`/`p50`/`p90`/`p99`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
}

/// Filter operators. Properties are top-level keys of the event's `properties` object;
/// a property is *set* when present and not JSON `null`. "String form" is defined in
/// [`crate::props::value_string`] (strings as-is, other values as their JSON text).
///
/// - `eq`: set and its string form equals the string form of `value` (a string,
///   number or bool). So `"value": 42` matches both `42` and `"42"`.
/// - `neq`: not `eq` (an unset property matches).
/// - `in`: `value` is a list of strings/numbers/bools; `eq` to any of them.
/// - `contains`: set and its string form contains `value` (a string), case-sensitive.
/// - `regex`: set and `value` (a pattern of the `regex` crate, RE2 syntax like ClickHouse
///   `match`) matches somewhere in its string form (unanchored).
/// - `gt` / `lt`: the property is a JSON number and `>` / `<` `value` (a number).
///   Strings are never numbers here, even numeric-looking ones.
/// - `is_set` / `is_not_set`: no `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterOp {
    Eq,
    Neq,
    In,
    Contains,
    Regex,
    Gt,
    Lt,
    IsSet,
    IsNotSet,
}

/// One property filter; a spec's filters are AND-ed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    pub property: String,
    pub op: FilterOp,
    /// Absent (or `null`) only for `is_set` / `is_not_set`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
}

/// `kind: "trends"`: a time series per event, optionally broken down by a property;
/// `interval` defaults to `day`, a series' `math` to `total`. See
/// [`crate::reference::trends`] for the exact semantics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendsSpec {
    pub from: Date,
    pub to: Date,
    #[serde(default)]
    pub interval: Interval,
    pub series: Vec<SeriesSpec>,
    /// A property name; each series is split by that property's string form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<String>,
    /// How many breakdown values keep their own series (default 25); the rest are
    /// merged into one `"$other"` series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breakdown_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
}

impl TrendsSpec {
    pub fn breakdown_limit(&self) -> usize {
        effective_limit(self.breakdown_limit, DEFAULT_BREAKDOWN_LIMIT)
    }
}

/// One funnel step: an event name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunnelStepSpec {
    pub event: String,
}

/// `kind: "funnel"`: ClickHouse `windowFunnel(window)` (default mode) per user; see
/// [`crate::reference::funnel`] for the exact semantics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunnelSpec {
    pub from: Date,
    pub to: Date,
    pub steps: Vec<FunnelStepSpec>,
    pub window_seconds: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<String>,
    /// As in trends: top values by users entering the funnel, the rest in `"$other"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breakdown_limit: Option<i64>,
}

impl FunnelSpec {
    pub fn breakdown_limit(&self) -> usize {
        effective_limit(self.breakdown_limit, DEFAULT_BREAKDOWN_LIMIT)
    }

    /// `window_seconds` in milliseconds (validated specs cannot overflow).
    pub fn window_ms(&self) -> i64 {
        self.window_seconds.saturating_mul(1000)
    }
}

/// Who forms a retention cohort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionType {
    /// A user belongs to the one cohort of the period of their first `start_event`
    /// in `[from, to]` (first within the range, as CONTRACT.md says, not first ever).
    #[default]
    FirstTime,
    /// A user belongs to the cohort of every period in which they did `start_event`
    /// within `[from, to]`.
    Recurring,
}

/// `kind: "retention"`: cohorts by period of `start_event`, returning by `return_event`;
/// `period` defaults to `day`. See [`crate::reference::retention`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSpec {
    pub from: Date,
    pub to: Date,
    pub start_event: String,
    pub return_event: String,
    #[serde(default)]
    pub period: Period,
    /// Length of every cohort's `returned` list: periods `cohort + 0 .. cohort + periods - 1`.
    pub periods: i64,
    #[serde(default)]
    pub retention_type: RetentionType,
}

/// Which way a path goes from its start event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathDirection {
    #[default]
    Next,
    Previous,
}

/// `kind: "paths"`: the events users did after (or before) their first `start_event`
/// in `[from, to]`, as a tree of counts; see [`crate::reference::paths`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathsSpec {
    pub from: Date,
    pub to: Date,
    pub start_event: String,
    #[serde(default)]
    pub direction: PathDirection,
    /// How many events after (before) the start event (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<i64>,
    /// Children kept per node, by count (default 5); the rest merge into `"$other"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_n: Option<i64>,
}

impl PathsSpec {
    pub fn depth(&self) -> usize {
        effective_limit(self.depth, DEFAULT_PATH_DEPTH)
    }

    pub fn top_n(&self) -> usize {
        effective_limit(self.top_n, DEFAULT_PATH_TOP_N)
    }
}

/// `kind: "events"`: a page of the most recent events (the live view); see
/// [`crate::reference::events`] for the order and the cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Date>,
    /// Only events with this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
    /// Page size (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

impl EventsSpec {
    pub fn limit(&self) -> usize {
        effective_limit(self.limit, DEFAULT_EVENTS_LIMIT)
    }

    /// `[start, end)` in milliseconds; an absent bound is unbounded.
    pub fn range_ms(&self) -> (i64, i64) {
        (
            self.from.map_or(i64::MIN, Date::start_ms),
            self.to.map_or(i64::MAX, Date::end_ms),
        )
    }
}

/// Position after the last event of a page. Events are ordered by timestamp descending,
/// ties in a fixed order (see [`crate::reference::events`]); the next page holds the
/// events older than `timestamp_ms` plus those at exactly `timestamp_ms` after the first
/// `skip` of them. Text form (opaque to clients): `c1.<timestamp_ms>.<skip>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventsCursor {
    pub timestamp_ms: i64,
    /// How many events with exactly `timestamp_ms` the previous pages returned.
    pub skip: u64,
}

impl EventsCursor {
    pub fn parse(s: &str) -> Option<Self> {
        let rest = s.strip_prefix("c1.")?;
        let (ts, skip) = rest.rsplit_once('.')?;
        Some(Self {
            timestamp_ms: ts.parse().ok()?,
            skip: skip.parse().ok()?,
        })
    }
}

impl fmt::Display for EventsCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c1.{}.{}", self.timestamp_ms, self.skip)
    }
}

/// A validated count-like field as `usize`, or its default when absent.
fn effective_limit(value: Option<i64>, default: u32) -> usize {
    let v = value.unwrap_or(i64::from(default));
    usize::try_from(v).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_strict() {
        assert!(Date::parse("2026-01-05").is_some());
        for bad in [
            "2026-1-05",
            "2026-01-5",
            "2026-02-30",
            "2026/01/05",
            "+2026-01-0",
            "26-01-2026",
            "2026-01-05T00:00:00Z",
            "",
        ] {
            assert!(Date::parse(bad).is_none(), "{bad:?} accepted");
        }
        let d = Date::parse("2026-01-05").unwrap();
        assert_eq!(d.start_ms(), 1_767_571_200_000);
        assert_eq!(d.end_ms() - d.start_ms(), 86_400_000);
        assert_eq!(d.to_string(), "2026-01-05");
    }

    #[test]
    fn cursor_round_trips() {
        for c in [
            EventsCursor {
                timestamp_ms: 1_767_571_200_000,
                skip: 3,
            },
            EventsCursor {
                timestamp_ms: -5,
                skip: 0,
            },
        ] {
            assert_eq!(EventsCursor::parse(&c.to_string()), Some(c));
        }
        for bad in ["", "c1.", "c1.5", "c2.5.1", "c1.x.1", "c1.5.-1"] {
            assert!(EventsCursor::parse(bad).is_none(), "{bad:?} accepted");
        }
    }
}
