//! The reference implementation: naive, obviously-correct answers over a slice of events.
//!
//! Each kind lives in its own file and states its semantics in its module docs; the
//! functions take a validated spec and never panic on any input events. Complexity is
//! deliberately naive (quadratic in places): this is the oracle for tests, not a path
//! for production data.

pub mod events;
mod filter;
pub mod funnel;
pub mod paths;
pub mod retention;
pub mod trends;

use minim_core::Event;

use crate::error::SpecError;
use crate::result::QueryResult;
use crate::spec::QuerySpec;

/// Validates `spec` (default limits) and answers it over `events`.
pub fn run(spec: &QuerySpec, events: &[Event]) -> Result<QueryResult, SpecError> {
    spec.validate()?;
    Ok(match spec {
        QuerySpec::Trends(s) => QueryResult::Trends(trends::trends(s, events)),
        QuerySpec::Funnel(s) => QueryResult::Funnel(funnel::funnel(s, events)),
        QuerySpec::Retention(s) => QueryResult::Retention(retention::retention(s, events)),
        QuerySpec::Paths(s) => QueryResult::Paths(paths::paths(s, events)),
        QuerySpec::Events(s) => QueryResult::Events(events::events(s, events)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{
        Date, EventsSpec, FunnelSpec, FunnelStepSpec, Interval, Math, PathDirection,
    };
    use crate::spec::{PathsSpec, Period, RetentionSpec, RetentionType, SeriesSpec, TrendsSpec};

    fn event(ts: i64, name: &str, properties: &str) -> Event {
        Event {
            timestamp_ms: ts,
            event: name.into(),
            distinct_id: "u".into(),
            insert_id: None,
            properties: properties.into(),
            personal: None,
            received_at_ms: ts,
        }
    }

    /// Guards "never panics on any input events": extreme timestamps and properties that
    /// are not a JSON object (never produced by ingest) are answered, not crashed on.
    #[test]
    fn extreme_and_malformed_events_do_not_panic() {
        let (from, to) = (Date::parse("0000-01-01"), Date::parse("9999-12-31"));
        let (Some(from), Some(to)) = (from, to) else {
            unreachable!()
        };
        let mut events = Vec::new();
        for ts in [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX] {
            for props in ["{}", "not json", "[1]", r#"{"p": 1e308, "q": {"r": 1}}"#] {
                events.push(event(ts, "a", props));
                events.push(event(ts, "b", props));
            }
        }
        let specs = [
            QuerySpec::Trends(TrendsSpec {
                from: Date::parse("1969-12-01").unwrap_or(from),
                to: Date::parse("1970-01-31").unwrap_or(to),
                interval: Interval::Day,
                series: vec![SeriesSpec {
                    event: "a".into(),
                    math: Math::Sum,
                    property: Some("p".into()),
                }],
                breakdown: Some("q".into()),
                breakdown_limit: None,
                filters: vec![],
            }),
            QuerySpec::Funnel(FunnelSpec {
                from,
                to,
                steps: vec![
                    FunnelStepSpec { event: "a".into() },
                    FunnelStepSpec { event: "b".into() },
                ],
                window_seconds: 316_224_000,
                breakdown: Some("p".into()),
                breakdown_limit: None,
            }),
            QuerySpec::Retention(RetentionSpec {
                from: Date::parse("9999-12-01").unwrap_or(to),
                to,
                start_event: "a".into(),
                return_event: "b".into(),
                period: Period::Month,
                periods: 3,
                retention_type: RetentionType::Recurring,
            }),
            QuerySpec::Paths(PathsSpec {
                from,
                to,
                start_event: "a".into(),
                direction: PathDirection::Previous,
                depth: None,
                top_n: None,
            }),
            QuerySpec::Events(EventsSpec {
                from: None,
                to: None,
                event: None,
                filters: vec![],
                limit: Some(3),
                cursor: Some("c1.-9223372036854775808.0".into()),
            }),
        ];
        for spec in &specs {
            assert!(run(spec, &events).is_ok(), "{}", spec.kind());
        }
    }
}
