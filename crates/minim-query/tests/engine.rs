//! The DataFusion session sees exactly the store's events (segments and memtable) of one
//! project, and the property functions agree with `props`, checked against the
//! reference definitions on random events.

use std::collections::BTreeMap;

use arrow::array::{Array, Float64Array, Int64Array, StringArray};
use minim_core::{Event, EventBatch, ProjectId};
use minim_query::{engine, props};
use minim_store::{Store, StoreConfig};
use proptest::prelude::*;

fn ev(i: u32, props_json: String) -> Event {
    Event {
        timestamp_ms: 1_767_225_600_000 + i64::from(i) * 60_000,
        event: ["view", "signup"][i as usize % 2].to_owned(),
        distinct_id: format!("u{}", i % 7),
        insert_id: Some(format!("i{i}")),
        properties: props_json,
        personal: None,
        received_at_ms: 0,
    }
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_owned()),
        Just("\"pro\"".to_owned()),
        Just("\"free\"".to_owned()),
        Just("1.50".to_owned()),
        Just("42".to_owned()),
        Just("true".to_owned()),
        Just("[1,2]".to_owned()),
        (-1000i32..1000).prop_map(|n| n.to_string()),
    ]
}

fn properties() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        (prop_oneof![Just("plan"), Just("n"), Just("x")], value()),
        0..4,
    )
    .prop_map(|kv| {
        let mut seen = std::collections::BTreeSet::new();
        let body: Vec<String> = kv
            .into_iter()
            .filter(|(k, _)| seen.insert(*k))
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        format!("{{{}}}", body.join(","))
    })
}

async fn query_groups(
    store: &Store,
    project: &ProjectId,
    props: &[String],
    sql: &str,
) -> BTreeMap<Option<String>, (i64, Option<f64>)> {
    let ctx = engine::session(&store.snapshot(), project, props)
        .await
        .unwrap();
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut out = BTreeMap::new();
    for b in batches {
        // Property columns are string views; `prop_str` returns plain strings.
        let k = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
        let k = k.as_any().downcast_ref::<StringArray>().unwrap();
        let c = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        let s = b.column(2).as_any().downcast_ref::<Float64Array>().unwrap();
        for i in 0..b.num_rows() {
            let key = k.is_valid(i).then(|| k.value(i).to_owned());
            out.insert(key, (c.value(i), s.is_valid(i).then(|| s.value(i))));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn engine_groups_match_the_property_definitions(
        props_list in proptest::collection::vec(properties(), 1..60),
        flush_at in 0usize..60,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig { data_dir: dir.path().to_path_buf(), ..StoreConfig::default() }).unwrap();
        let p = ProjectId::new("p").unwrap();
        let other = ProjectId::new("other").unwrap();
        let events: Vec<Event> = props_list.iter().enumerate().map(|(i, pj)| ev(i as u32, pj.clone())).collect();
        let cut = flush_at.min(events.len());
        store.append_blocking(EventBatch { project: p.clone(), events: events[..cut].to_vec() }).unwrap();
        store.flush().unwrap(); // some in segments...
        store.append_blocking(EventBatch { project: p.clone(), events: events[cut..].to_vec() }).unwrap(); // ...some in the memtable
        store.append_blocking(EventBatch { project: other, events: events.clone() }).unwrap();

        // Reference: group by the string form of `plan`, count, sum the numeric `n`.
        let mut want: BTreeMap<Option<String>, (i64, Option<f64>)> = BTreeMap::new();
        for e in &events {
            let pr = props::parse_properties(&e.properties);
            let entry = want.entry(props::property_string(&pr, "plan")).or_insert((0, None));
            entry.0 += 1;
            if let Some(n) = props::get(&pr, "n").and_then(props::value_number) {
                entry.1 = Some(entry.1.unwrap_or(0.0) + n);
            }
        }
        let got = rt.block_on(query_groups(
            &store,
            &p,
            &[],
            "SELECT prop_str(properties, 'plan') AS plan, count(*) AS c, sum(prop_num(properties, 'n')) AS s \
             FROM events GROUP BY plan",
        ));
        // The same through the property column (shredded in segments where frequent).
        let via_column = rt.block_on(query_groups(
            &store,
            &p,
            &["plan".to_owned()],
            "SELECT \"prop:plan\" AS plan, count(*) AS c, sum(prop_num(properties, 'n')) AS s \
             FROM events GROUP BY plan",
        ));
        prop_assert_eq!(via_column.len(), got.len());
        for ((k1, (c1, s1)), (k2, (c2, s2))) in via_column.iter().zip(&got) {
            prop_assert_eq!((k1, c1), (k2, c2));
            prop_assert!(s1.zip(*s2).is_none_or(|(a, b)| (a - b).abs() < 1e-9) && s1.is_some() == s2.is_some());
        }
        prop_assert_eq!(got.len(), want.len());
        for (k, (c, s)) in &want {
            let (gc, gs) = got.get(k).copied().unwrap_or((-1, None));
            prop_assert_eq!(gc, *c, "count for {:?}", k);
            match (s, gs) {
                (Some(a), Some(b)) => prop_assert!((a - b).abs() < 1e-9, "sum for {:?}: {} vs {}", k, a, b),
                (None, None) => {}
                other => prop_assert!(false, "sum for {:?}: {:?}", k, other),
            }
        }
        store.shutdown().unwrap();
    }
}

/// A store holding `events` of project `p`: the first `in_segment` flushed to a segment,
/// the rest in the memtable. Also a runtime for the queries and the store's directory.
fn segment_and_memtable(
    events: &[Event],
    in_segment: usize,
) -> (tokio::runtime::Runtime, tempfile::TempDir, Store, ProjectId) {
    stored(events, in_segment, StoreConfig::default().row_group_rows)
}

/// [`segment_and_memtable`] with segments of `row_group_rows`-row groups.
fn stored(
    events: &[Event],
    in_segment: usize,
    row_group_rows: usize,
) -> (tokio::runtime::Runtime, tempfile::TempDir, Store, ProjectId) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig {
        data_dir: dir.path().to_path_buf(),
        row_group_rows,
        ..StoreConfig::default()
    })
    .unwrap();
    let p = ProjectId::new("p").unwrap();
    let (flushed, kept) = events.split_at(in_segment);
    for (part, flush) in [(flushed, true), (kept, false)] {
        store
            .append_blocking(EventBatch {
                project: p.clone(),
                events: part.to_vec(),
            })
            .unwrap();
        if flush {
            store.flush().unwrap();
        }
    }
    (rt, dir, store, p)
}

/// The physical plan of `df`, one operator per line.
async fn physical_plan(df: &datafusion::prelude::DataFrame) -> String {
    let physical = df.clone().create_physical_plan().await.unwrap();
    datafusion::physical_plan::displayable(physical.as_ref())
        .indent(true)
        .to_string()
}

/// The count a `SELECT count(*) ...` query answers over `snapshot`, and its physical plan.
async fn count_and_plan(
    snapshot: &minim_store::Snapshot,
    p: &ProjectId,
    sql: &str,
) -> (i64, String) {
    let ctx = engine::session(snapshot, p, &[]).await.unwrap();
    let df = ctx.sql(sql).await.unwrap();
    let plan = physical_plan(&df).await;
    let batches = df.collect().await.unwrap();
    let n = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0);
    (n, plan)
}

/// A segment whose event times all fail a time comparison of the filter is not scanned
/// at all: the plan lists only the segments in range, and counts stay exact.
#[test]
fn segments_out_of_the_time_range_are_not_scanned() {
    // Ten events on each of three days in segments (one per day), five in the memtable.
    let day = 24 * 60;
    let minutes: Vec<u32> = (0..3)
        .flat_map(|d| (0..10).map(move |k| d * day + k))
        .chain((0..5).map(|k| day + 100 + k))
        .collect();
    let events: Vec<Event> = minutes.iter().map(|&m| ev(m, "{}".to_owned())).collect();
    let t = |m: u32| 1_767_225_600_000 + i64::from(m) * 60_000;
    let (rt, _dir, store, p) = segment_and_memtable(&events, 30);
    let snapshot = store.snapshot();
    assert_eq!(snapshot.segments.len(), 3);

    let run = |sql: String| {
        let (n, plan) = rt.block_on(count_and_plan(&snapshot, &p, &sql));
        (n, plan.matches(".parquet").count(), plan)
    };
    let between = |lo: u32, hi: u32| {
        format!(
            "SELECT count(*) FROM events WHERE timestamp >= to_timestamp_millis({}) \
             AND timestamp < to_timestamp_millis({})",
            t(lo),
            t(hi)
        )
    };
    // Day 1 only: one segment, plus the memtable's five.
    let (n, files, plan) = run(between(day, 2 * day));
    assert_eq!((n, files), (15, 1), "{plan}");
    // Days 1 and 2, cut inside day 2: two segments.
    let (n, files, plan) = run(between(day, 2 * day + 5));
    assert_eq!((n, files), (20, 2), "{plan}");
    // Nothing stored there: no segment at all.
    let (n, files, plan) = run(between(10 * day, 11 * day));
    assert_eq!((n, files), (0, 0), "{plan}");
    // One instant, written the other way round: only the segment holding it.
    let (n, files, plan) = run(format!(
        "SELECT count(*) FROM events WHERE to_timestamp_millis({}) = timestamp",
        t(2 * day + 3)
    ));
    assert_eq!((n, files), (1, 1), "{plan}");
    // No time comparison: every segment.
    let (n, files, plan) = run("SELECT count(*) FROM events".to_owned());
    assert_eq!((n, files), (35, 3), "{plan}");
    store.shutdown().unwrap();
}

/// Sums a pruning metric (`pruned`, `matched`) over every operator of an executed plan.
fn pruning(
    plan: &std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    name: &str,
) -> (usize, usize) {
    use datafusion::physical_plan::metrics::MetricValue;
    let mut sum = (0, 0);
    for metric in plan.metrics().iter().flat_map(|m| m.iter()) {
        if let MetricValue::PruningMetrics {
            name: n,
            pruning_metrics,
        } = metric.value()
            && n.as_ref() == name
        {
            sum.0 += pruning_metrics.pruned();
            sum.1 += pruning_metrics.matched();
        }
    }
    for child in plan.children() {
        let (p, m) = pruning(child, name);
        sum = (sum.0 + p, sum.1 + m);
    }
    sum
}

/// Segments are sorted by event first, so a question about a rare event reads only the
/// row groups holding it: the others' `event` statistics exclude it.
#[test]
fn rows_of_one_event_are_found_without_reading_the_others() {
    // 225 events of one day by 7 users: every 45th a purchase, every 9th (else) a
    // signup, the rest views, so purchases and signups are spread over users and times.
    let events: Vec<Event> = (0..225u32)
        .map(|i| Event {
            event: if i % 45 == 0 {
                "purchase"
            } else if i % 9 == 0 {
                "signup"
            } else {
                "view"
            }
            .to_owned(),
            ..ev(i, "{}".to_owned())
        })
        .collect();
    let (rt, _dir, store, p) = stored(&events, events.len(), 16);
    let snapshot = store.snapshot();
    assert_eq!(snapshot.segments.len(), 1);
    for name in ["purchase", "signup", "view", "absent"] {
        let (n, groups) = rt.block_on(async {
            let ctx = engine::session(&snapshot, &p, &[]).await.unwrap();
            let sql = format!("SELECT count(*) FROM events WHERE event = '{name}'");
            let plan = ctx
                .sql(&sql)
                .await
                .unwrap()
                .create_physical_plan()
                .await
                .unwrap();
            let batches = datafusion::physical_plan::collect(plan.clone(), ctx.task_ctx())
                .await
                .unwrap();
            let n = batches[0]
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(0);
            let shown = datafusion::physical_plan::displayable(plan.as_ref())
                .indent(true)
                .to_string();
            // The filter answers one-event batches whole (`event_filter.rs`); the scan
            // still prunes with the comparison.
            assert!(shown.contains("minim_event_in"), "{shown}");
            assert!(shown.contains("BatchFilterExec"), "{shown}");
            (n, pruning(&plan, "row_groups_pruned_statistics"))
        });
        let want = events.iter().filter(|e| e.event == name).count();
        assert_eq!(n as usize, want, "{name}");
        // 15 row groups of 16 rows; an event's rows are contiguous, so they span at most
        // one group more than they fill.
        assert_eq!(groups.0 + groups.1, 15, "{name}");
        assert!(groups.1 <= want.div_ceil(16) + 1, "{name}: {groups:?}");
    }
    store.shutdown().unwrap();
}

/// A segment that shredded a property serves its column; the memtable computes it.
#[test]
fn shredded_segments_serve_property_columns() {
    let events: Vec<Event> = (0..40)
        .map(|i| {
            ev(
                i,
                format!(
                    r#"{{"plan":"{}","n":{i}}}"#,
                    ["pro", "free"][i as usize % 2]
                ),
            )
        })
        .collect();
    let (rt, _dir, store, p) = segment_and_memtable(&events, 30);
    let snapshot = store.snapshot();
    assert_eq!(snapshot.segments[0].meta.shredded, vec!["n", "plan"]);

    let plan = rt.block_on(async {
        let ctx = engine::session(&snapshot, &p, &["plan".to_owned()])
            .await
            .unwrap();
        let df = ctx
            .sql(r#"SELECT "prop:plan", count(*) FROM events GROUP BY 1"#)
            .await
            .unwrap();
        physical_plan(&df).await
    });
    // The Parquet scan reads the column; only the memtable branch calls prop_str.
    assert!(plan.contains("prop:plan"), "{plan}");
    assert_eq!(plan.matches("prop_str(").count(), 1, "{plan}");
    let got = rt.block_on(query_groups(
        &store,
        &p,
        &["plan".to_owned()],
        r#"SELECT "prop:plan", count(*), sum(prop_num(properties, 'n')) FROM events GROUP BY 1"#,
    ));
    assert_eq!(got[&Some("pro".to_owned())], (20, Some(380.0)));
    assert_eq!(got[&Some("free".to_owned())], (20, Some(400.0)));
    store.shutdown().unwrap();
}

/// A time comparison that every event of the scanned segments satisfies is dropped from
/// the filter over their scan (`time_filter.rs`); one that cuts into a segment, and the
/// memtable's filter, stay. The counts are the same either way.
#[test]
fn time_comparisons_true_for_whole_segments_leave_their_filter() {
    // 40 events a minute apart from midnight: 30 in a segment, 10 in the memtable.
    let events: Vec<Event> = (0..40).map(|i| ev(i, "{}".to_owned())).collect();
    let t = |i: i64| 1_767_225_600_000 + i * 60_000;
    let (rt, _dir, store, p) = segment_and_memtable(&events, 30);
    let snapshot = store.snapshot();
    assert_eq!(snapshot.segments.len(), 1);

    let run = |lo: i64, hi: i64| {
        let sql = format!(
            "SELECT count(*) FROM events WHERE timestamp >= to_timestamp_millis({lo}) \
             AND timestamp < to_timestamp_millis({hi})"
        );
        rt.block_on(count_and_plan(&snapshot, &p, &sql))
    };
    let filters = |plan: &str| -> Vec<String> {
        plan.lines()
            .filter(|l| l.contains("FilterExec"))
            .map(|l| l.trim().to_owned())
            .collect()
    };

    // The whole day: the segment's filter keeps no time comparison; the memtable's both.
    let (n, plan) = run(t(0), t(24 * 60));
    assert_eq!(n, 40);
    let f = filters(&plan);
    assert_eq!(f.len(), 2, "{plan}");
    assert_eq!(
        f.iter().filter(|l| l.contains("timestamp")).count(),
        1,
        "{plan}"
    );
    assert!(
        f.iter().any(|l| l.starts_with("FilterExec: true")),
        "{plan}"
    );

    // From minute 10: cuts into the segment (minutes 0..=29), so its lower bound stays
    // while its upper bound goes.
    let (n, plan) = run(t(10), t(24 * 60));
    assert_eq!(n, 30);
    let segment_filter = filters(&plan)
        .into_iter()
        .filter(|l| l.matches("timestamp").count() == 1)
        .collect::<Vec<_>>();
    assert_eq!(segment_filter.len(), 1, "{plan}");
    assert!(segment_filter[0].contains(">="), "{plan}");

    // Up to minute 20 (exclusive): the upper bound cuts into the segment.
    let (n, _) = run(t(0), t(20));
    assert_eq!(n, 20);
    store.shutdown().unwrap();
}
