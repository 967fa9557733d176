//! The engine (DataFusion over a real store, events split between segments and the
//! memtable) returns exactly what the reference returns, for every kind, on random
//! event streams: ties in timestamps, events exactly at window and range edges, users
//! in several breakdown values, properties of every type, empty ranges.

mod support;

use minim_core::Event;
use minim_query::{
    Date, EventsSpec, Filter, FilterOp, FunnelSpec, FunnelStepSpec, Interval, Math, PathDirection,
    PathsSpec, Period, QueryResult, QuerySpec, RetentionSpec, RetentionType, SeriesSpec,
    TrendsSpec, reference,
};
use proptest::prelude::*;
use serde_json::{Value, json};
use support::{Fixture, diff};

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;
const MIN: i64 = 60_000;
const NAMES: [&str; 4] = ["a", "b", "c", "d"];

fn date(s: &str) -> Date {
    Date::parse(s).expect("valid date")
}

/// Timestamps on a coarse grid (so ties and exact window edges are common) across
/// 2025-12-31 .. 2026-01-09, plus a few odd milliseconds.
fn timestamp() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => (-1440i64..(9 * 1440)).prop_map(|m| T0 + (m / 30) * 30 * MIN),
        1 => (-1440i64..(9 * 1440), 0i64..3).prop_map(|(m, ms)| T0 + m * MIN + ms),
    ]
}

fn property_value() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        Just(Some(json!("pro"))),
        Just(Some(json!("free"))),
        Just(Some(json!("ent"))),
        Just(Some(json!(7))),
        Just(Some(json!(true))),
        (-50i32..50).prop_map(|n| Some(json!(f64::from(n) / 4.0))),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    (
        timestamp(),
        0usize..NAMES.len(),
        0u32..6,
        property_value(),
        property_value(),
        0i64..5,
        (any::<bool>(), any::<bool>()),
    )
        .prop_map(|(ts, name, user, plan, amount, recv, personal)| {
            // A property the plan classed `personal` is stored apart, its placeholder in
            // its place: for a reader with personal access nothing changes.
            let mut props = serde_json::Map::new();
            let mut apart = serde_json::Map::new();
            for (key, value, is_personal) in
                [("plan", plan, personal.0), ("amount", amount, personal.1)]
            {
                match value {
                    Some(v) if is_personal && !v.is_null() => {
                        props.insert(key.into(), json!("[redacted]"));
                        apart.insert(key.into(), v);
                    }
                    Some(v) => {
                        props.insert(key.into(), v);
                    }
                    None => {}
                }
            }
            Event {
                timestamp_ms: ts,
                event: NAMES[name].into(),
                distinct_id: format!("u{user}"),
                insert_id: None,
                properties: Value::Object(props).to_string(),
                personal: (!apart.is_empty()).then(|| Value::Object(apart).to_string()),
                received_at_ms: ts + recv,
            }
        })
}

/// Events, how many of them go to segments, and whether the store encrypts.
fn events() -> impl Strategy<Value = (Vec<Event>, usize, bool)> {
    proptest::collection::vec(event(), 0..80).prop_flat_map(|evs| {
        let n = evs.len();
        (Just(evs), 0..=n, any::<bool>())
    })
}

/// The events as a reader with personal access sees them.
fn merged(evs: &[Event]) -> Vec<Event> {
    evs.iter()
        .map(|e| Event {
            properties: e.full_properties().into_owned(),
            personal: None,
            ..e.clone()
        })
        .collect()
}

fn range() -> impl Strategy<Value = (Date, Date)> {
    prop_oneof![
        Just((date("2026-01-01"), date("2026-01-01"))),
        Just((date("2026-01-01"), date("2026-01-03"))),
        Just((date("2026-01-02"), date("2026-01-08"))),
        Just((date("2025-12-20"), date("2026-01-20"))),
        Just((date("2026-03-01"), date("2026-03-02"))), // empty
    ]
}

fn filter() -> impl Strategy<Value = Filter> {
    let f = |property: &str, op, value: Option<Value>| Filter {
        property: property.into(),
        op,
        value,
    };
    prop_oneof![
        Just(f("plan", FilterOp::Eq, Some(json!("pro")))),
        Just(f("plan", FilterOp::Eq, Some(json!(7)))),
        Just(f("plan", FilterOp::Neq, Some(json!("pro")))),
        Just(f("plan", FilterOp::In, Some(json!(["free", true])))),
        Just(f("plan", FilterOp::Contains, Some(json!("r")))),
        Just(f("plan", FilterOp::Contains, Some(json!("")))),
        Just(f("plan", FilterOp::Regex, Some(json!("^(pro|ent)$")))),
        Just(f("amount", FilterOp::Gt, Some(json!(0)))),
        Just(f("amount", FilterOp::Lt, Some(json!(2.5)))),
        Just(f("amount", FilterOp::IsSet, None)),
        Just(f("plan", FilterOp::IsNotSet, None)),
    ]
}

fn trends() -> impl Strategy<Value = QuerySpec> {
    let math = prop_oneof![
        Just(Math::Total),
        Just(Math::UniqueUsers),
        Just(Math::Sum),
        Just(Math::Avg),
        Just(Math::Min),
        Just(Math::Max),
        Just(Math::P50),
        Just(Math::P90),
        Just(Math::P99),
    ];
    let interval = prop_oneof![
        Just(Interval::Hour),
        Just(Interval::Day),
        Just(Interval::Week),
        Just(Interval::Month),
    ];
    (
        range(),
        interval,
        proptest::collection::vec((0usize..NAMES.len(), math), 1..3),
        proptest::option::of(prop_oneof![Just("plan"), Just("amount")]),
        1i64..4,
        proptest::collection::vec(filter(), 0..3),
    )
        .prop_map(
            |((from, to), interval, series, breakdown, limit, filters)| {
                QuerySpec::Trends(TrendsSpec {
                    from,
                    to,
                    interval,
                    series: series
                        .into_iter()
                        .map(|(n, math)| SeriesSpec {
                            event: NAMES[n].into(),
                            math,
                            property: math.needs_property().then(|| "amount".into()),
                        })
                        .collect(),
                    breakdown: breakdown.map(String::from),
                    breakdown_limit: Some(limit),
                    filters,
                })
            },
        )
}

fn funnel() -> impl Strategy<Value = QuerySpec> {
    (
        range(),
        proptest::collection::vec(0usize..NAMES.len(), 1..5),
        prop_oneof![Just(60i64), Just(1800), Just(3600), Just(86_400)],
        proptest::option::of(Just("plan")),
        1i64..3,
    )
        .prop_map(|((from, to), steps, window_seconds, breakdown, limit)| {
            QuerySpec::Funnel(FunnelSpec {
                from,
                to,
                steps: steps
                    .into_iter()
                    .map(|n| FunnelStepSpec {
                        event: NAMES[n].into(),
                    })
                    .collect(),
                window_seconds,
                breakdown: breakdown.map(String::from),
                breakdown_limit: Some(limit),
            })
        })
}

fn retention() -> impl Strategy<Value = QuerySpec> {
    (
        range(),
        0usize..NAMES.len(),
        0usize..NAMES.len(),
        prop_oneof![Just(Period::Day), Just(Period::Week), Just(Period::Month)],
        1i64..5,
        prop_oneof![
            Just(RetentionType::FirstTime),
            Just(RetentionType::Recurring)
        ],
    )
        .prop_map(|((from, to), s, r, period, periods, retention_type)| {
            QuerySpec::Retention(RetentionSpec {
                from,
                to,
                start_event: NAMES[s].into(),
                return_event: NAMES[r].into(),
                period,
                periods,
                retention_type,
            })
        })
}

fn paths() -> impl Strategy<Value = QuerySpec> {
    (
        range(),
        0usize..NAMES.len(),
        prop_oneof![Just(PathDirection::Next), Just(PathDirection::Previous)],
        1i64..4,
        1i64..3,
    )
        .prop_map(|((from, to), s, direction, depth, top_n)| {
            QuerySpec::Paths(PathsSpec {
                from,
                to,
                start_event: NAMES[s].into(),
                direction,
                depth: Some(depth),
                top_n: Some(top_n),
            })
        })
}

fn events_spec() -> impl Strategy<Value = EventsSpec> {
    (
        proptest::option::of(range()),
        proptest::option::of(0usize..NAMES.len()),
        proptest::collection::vec(filter(), 0..2),
        1i64..7,
    )
        .prop_map(|(range, name, filters, limit)| EventsSpec {
            from: range.map(|r| r.0),
            to: range.map(|r| r.1),
            event: name.map(|n| NAMES[n].into()),
            filters,
            limit: Some(limit),
            cursor: None,
        })
}

fn check(fixture: &Fixture, spec: &QuerySpec, evs: &[Event]) -> Result<(), TestCaseError> {
    let want = reference::run(spec, &merged(evs)).expect("valid spec");
    let got = fixture
        .query(spec)
        .map_err(|e| TestCaseError::fail(format!("engine failed: {e}")))?;
    let (want, got) = (json_of(&want), json_of(&got));
    if let Some(d) = diff(&want, &got, "$") {
        return Err(TestCaseError::fail(format!(
            "{d}\n spec: {}\n want: {want}\n  got: {got}",
            serde_json::to_string(spec).unwrap_or_default()
        )));
    }
    Ok(())
}

fn fixture(evs: &[Event], flushed: usize, encrypted: bool) -> Fixture {
    if encrypted {
        Fixture::encrypted(evs, flushed)
    } else {
        Fixture::new(evs, flushed)
    }
}

fn json_of(r: &QueryResult) -> Value {
    serde_json::to_value(r).expect("results serialize")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn trends_match_the_reference((evs, flushed, encrypted) in events(), specs in proptest::collection::vec(trends(), 1..4)) {
        let fixture = fixture(&evs, flushed, encrypted);
        for spec in &specs {
            check(&fixture, spec, &evs)?;
        }
    }

    #[test]
    fn funnels_match_the_reference((evs, flushed, encrypted) in events(), specs in proptest::collection::vec(funnel(), 1..4)) {
        let fixture = fixture(&evs, flushed, encrypted);
        for spec in &specs {
            check(&fixture, spec, &evs)?;
        }
    }

    #[test]
    fn retention_matches_the_reference((evs, flushed, encrypted) in events(), specs in proptest::collection::vec(retention(), 1..4)) {
        let fixture = fixture(&evs, flushed, encrypted);
        for spec in &specs {
            check(&fixture, spec, &evs)?;
        }
    }

    #[test]
    fn paths_match_the_reference((evs, flushed, encrypted) in events(), specs in proptest::collection::vec(paths(), 1..4)) {
        let fixture = fixture(&evs, flushed, encrypted);
        for spec in &specs {
            check(&fixture, spec, &evs)?;
        }
    }

    /// Walks every page with the cursor and compares each page.
    #[test]
    fn event_pages_match_the_reference((evs, flushed, encrypted) in events(), spec in events_spec()) {
        let fixture = fixture(&evs, flushed, encrypted);
        let mut spec = spec;
        for _ in 0..100 {
            let query = QuerySpec::Events(spec.clone());
            check(&fixture, &query, &evs)?;
            let Ok(QueryResult::Events(page)) = reference::run(&query, &merged(&evs)) else {
                return Err(TestCaseError::fail("reference answered another kind"));
            };
            match page.next_cursor {
                Some(c) => spec.cursor = Some(c),
                None => break,
            }
        }
    }
}
