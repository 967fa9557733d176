//! Redacted properties never come back, whatever the query shape: insights (breakdowns,
//! filters), the live events view, and SQL over `properties` (segments with a shredded
//! column for the property, and the memtable).

mod support;

use minim_core::Event;
use minim_query::QuerySpec;
use minim_query::engine::{EngineConfig, QueryEngine, Visibility};
use support::Fixture;

fn events() -> Vec<Event> {
    (0..40)
        .map(|i| Event {
            timestamp_ms: 1_767_225_600_000 + i64::from(i) * 60_000,
            event: "signup".into(),
            distinct_id: format!("u{}", i % 9),
            insert_id: Some(format!("i{i}")),
            properties: format!(
                r#"{{"email":"person{i}@example.com","plan":"{}","nested":{{"email":"kept-as-nested"}}}}"#,
                ["pro", "free"][i as usize % 2]
            ),
            personal: None,
            received_at_ms: 0,
        })
        .collect()
}

fn hidden() -> Visibility {
    Visibility::restricted(vec!["email".into()])
}

fn spec(json: &str) -> QuerySpec {
    QuerySpec::from_json_str(json).expect("valid spec")
}

#[test]
fn sql_and_events_and_breakdowns_see_redacted_values_only() {
    let f = Fixture::new(&events(), 30);
    for sql in [
        "SELECT properties FROM events",
        "SELECT prop_str(properties, 'email') AS e FROM events",
        "SELECT * FROM events",
    ] {
        let text = serde_json::to_string(&f.sql_as(sql, &hidden()).expect("runs")).unwrap();
        assert!(!text.contains("@example.com"), "{sql} leaked: {text}");
        assert!(text.contains("[redacted]"), "{sql}: {text}");
        let full = serde_json::to_string(&f.sql(sql).expect("runs")).unwrap();
        assert!(full.contains("person1@example.com"), "unredacted for {sql}");
    }
    let plan = f
        .sql_as(
            "SELECT prop_str(properties, 'plan') AS p, count(*) AS n FROM events GROUP BY 1 ORDER BY 1",
            &hidden(),
        )
        .expect("runs");
    assert_eq!(
        serde_json::to_value(&plan.rows).unwrap(),
        serde_json::json!([["free", 20], ["pro", 20]]),
        "other properties are untouched"
    );

    let live =
        spec(r#"{"kind": "events", "from": "2026-01-01", "to": "2026-01-02", "limit": 100}"#);
    let text = serde_json::to_string(&f.query_as(&live, &hidden()).expect("runs")).unwrap();
    assert!(!text.contains("@example.com"), "{text}");
    assert!(
        text.contains("kept-as-nested"),
        "only the top-level name is redacted"
    );

    let breakdown = spec(
        r#"{"kind": "trends", "from": "2026-01-01", "to": "2026-01-01", "interval": "day",
            "series": [{"event": "signup"}], "breakdown": "email"}"#,
    );
    let text = serde_json::to_string(&f.query_as(&breakdown, &hidden()).expect("runs")).unwrap();
    assert!(!text.contains("@example.com"), "{text}");
    let full = serde_json::to_string(&f.query(&breakdown).expect("runs")).unwrap();
    assert!(full.contains("@example.com"));
}

/// Events as the privacy pipeline stores a `personal` property: its value apart, a
/// placeholder in `properties`.
fn events_with_personal_values() -> Vec<Event> {
    events()
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            e.properties =
                e.properties
                    .replacen(&format!("person{i}@example.com"), "[redacted]", 1);
            e.personal = Some(format!(r#"{{"email":"person{i}@example.com"}}"#));
            e
        })
        .collect()
}

#[test]
fn personal_values_need_the_personal_key_and_only_readers_with_access_load_it() {
    let f = Fixture::encrypted(&events_with_personal_values(), 30);
    let sql = "SELECT * FROM events ORDER BY timestamp";
    let restricted = serde_json::to_string(&f.sql_as(sql, &hidden()).expect("runs")).unwrap();
    assert!(!restricted.contains("@example.com"), "{restricted}");
    assert!(restricted.contains("[redacted]"));
    let full = serde_json::to_string(&f.sql(sql).expect("runs")).unwrap();
    for i in [0, 29, 39] {
        assert!(
            full.contains(&format!("person{i}@example.com")),
            "event {i}: {full}"
        );
    }
    // The personal column is not a column of `events`: its values only come merged.
    assert!(f.sql("SELECT personal FROM events").is_err());
    let by_email = spec(
        r#"{"kind": "trends", "from": "2026-01-01", "to": "2026-01-01", "interval": "day",
            "series": [{"event": "signup"}], "breakdown": "email", "breakdown_limit": 100}"#,
    );
    let text = serde_json::to_string(&f.query(&by_email).expect("runs")).unwrap();
    assert!(text.contains("person3@example.com"), "{text}");

    // Without the project's personal keyset a restricted reader still reads everything
    // it may see: its sessions never ask for that key. A reader with access cannot (in
    // a new engine: this one keeps the files' metadata, decryptors included, in memory).
    let keyset = f.dir.path().join("keys/projects/p.personal.keyset");
    std::fs::remove_file(&keyset).expect("the personal keyset exists");
    let fresh = QueryEngine::new(EngineConfig::default()).expect("engine starts");
    let run = |visibility: Visibility| {
        f.rt.block_on(fresh.sql_as(
            f.store.snapshot(),
            f.project.clone(),
            sql.to_owned(),
            visibility,
        ))
    };
    let again = serde_json::to_string(&run(hidden()).expect("runs")).unwrap();
    assert_eq!(again, restricted);
    assert!(f.query_as(&by_email, &hidden()).is_ok());
    assert!(
        run(Visibility::all()).is_err(),
        "personal values read without their key"
    );
}

#[test]
fn segment_metadata_is_kept_between_queries_per_access_and_dropped_with_its_file() {
    let f = Fixture::encrypted(&events_with_personal_values(), 30);
    let live = |f: &Fixture| {
        f.store
            .snapshot()
            .segments
            .iter()
            .filter(|s| s.meta.project == f.project)
            .count()
    };
    assert_eq!(live(&f), 2);
    let sql = "SELECT count(*) AS n, min(properties) AS p FROM events";
    let json = |r: minim_query::engine::SqlResult| serde_json::to_string(&r).unwrap();
    let first = json(f.sql(sql).expect("runs"));
    let after_first = f.engine.metadata_cache_usage();
    assert_eq!(after_first.entries, 2);
    assert_eq!(json(f.sql(sql).expect("runs")), first);
    let after_second = f.engine.metadata_cache_usage();
    assert_eq!(after_second.entries, 2);
    assert!(
        after_second.hits >= after_first.hits + 2,
        "both files' metadata came from the cache: {after_first:?} then {after_second:?}"
    );
    // A restricted reader's metadata is its own (read without the personal key).
    let restricted = json(f.sql_as(sql, &hidden()).expect("runs"));
    assert!(!restricted.contains("@example.com"), "{restricted}");
    assert_eq!(f.engine.metadata_cache_usage().entries, 4);
    // Compaction replaces both files: their entries go, the new file's comes.
    assert!(f.store.compact_now().expect("compacts") > 0);
    assert_eq!(live(&f), 1);
    assert_eq!(json(f.sql(sql).expect("runs")), first);
    assert_eq!(f.engine.metadata_cache_usage().entries, 1);
}
