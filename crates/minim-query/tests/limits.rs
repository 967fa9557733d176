//! Query limits: a query over its time is cancelled (and the engine stays usable), one
//! over its memory is refused, SQL results over the row cap are refused, never an OOM.

mod support;

use std::time::{Duration, Instant};

use minim_core::Event;
use minim_query::QuerySpec;
use minim_query::engine::{EngineConfig, QueryError};
use support::Fixture;

fn events(n: u32) -> Vec<Event> {
    (0..n)
        .map(|i| Event {
            timestamp_ms: 1_767_225_600_000 + i64::from(i) * 1_000,
            event: "view".into(),
            distinct_id: format!("user-{i}"),
            insert_id: None,
            properties: format!(r#"{{"k":"value-{i}"}}"#),
            personal: None,
            received_at_ms: 0,
        })
        .collect()
}

#[test]
fn a_slow_query_is_cancelled_at_the_timeout_and_the_engine_keeps_working() {
    let fixture = Fixture::with_config(
        &events(10),
        5,
        EngineConfig {
            timeout_ms: 300,
            ..EngineConfig::default()
        },
    );
    let started = Instant::now();
    let err = fixture
        .sql("SELECT count(*) FROM generate_series(1, 100000000000)")
        .expect_err("cannot finish in 300 ms");
    assert!(
        matches!(err, QueryError::Timeout { timeout_ms: 300 }),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let ok = fixture
        .sql("SELECT count(*) AS n FROM events")
        .expect("engine still answers");
    assert_eq!(ok.rows, vec![serde_json::json!([10])]);
}

#[test]
fn a_query_over_its_memory_is_refused() {
    let fixture = Fixture::with_config(
        &events(20_000),
        10_000,
        EngineConfig {
            memory_bytes_per_query: 64 << 10,
            ..EngineConfig::default()
        },
    );
    let spec = QuerySpec::from_json_str(
        r#"{"kind": "trends", "from": "2026-01-01", "to": "2026-01-01",
            "series": [{"event": "view", "math": "unique_users"}], "breakdown": "k", "breakdown_limit": 1000}"#,
    )
    .expect("valid spec");
    let err = fixture
        .query(&spec)
        .expect_err("64 KiB cannot hold 20,000 groups");
    assert!(matches!(err, QueryError::MemoryExceeded { .. }), "{err}");
    let err = fixture
        .sql(
            "SELECT distinct_id, count(*) FROM events GROUP BY distinct_id ORDER BY 2 DESC LIMIT 5",
        )
        .expect_err("64 KiB cannot hold 20,000 groups");
    assert!(matches!(err, QueryError::MemoryExceeded { .. }), "{err}");
}

#[test]
fn sql_results_are_capped() {
    let fixture = Fixture::with_config(
        &events(50),
        0,
        EngineConfig {
            max_sql_rows: 20,
            ..EngineConfig::default()
        },
    );
    let err = fixture
        .sql("SELECT * FROM events")
        .expect_err("50 rows > 20");
    assert!(
        matches!(err, QueryError::TooManyRows { limit: 20 }),
        "{err}"
    );
    let ok = fixture
        .sql("SELECT distinct_id FROM events ORDER BY distinct_id LIMIT 20")
        .expect("20 rows fit");
    assert_eq!(ok.row_count, 20);
}

#[test]
fn sql_sees_only_the_projects_events_and_refuses_writes() {
    let fixture = Fixture::new(&events(30), 10);
    let all = fixture
        .sql("SELECT count(*) AS n FROM events")
        .expect("counts");
    assert_eq!(all.rows, vec![serde_json::json!([30])]);
    for (sql, not_allowed) in [
        ("SELECT * FROM minim_source_0", false),
        ("SELECT * FROM information_schema.tables", false),
        ("CREATE TABLE t AS SELECT * FROM events", true),
        (
            "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/'",
            true,
        ),
        ("COPY (SELECT 1) TO '/tmp/minim-should-not-exist.csv'", true),
        ("DROP TABLE events", true),
        ("SET datafusion.execution.target_partitions = 1", true),
        ("EXPLAIN SELECT * FROM events", true),
    ] {
        let err = fixture.sql(sql).expect_err(sql);
        match err {
            QueryError::SqlNotAllowed(_) => assert!(not_allowed, "{sql}: {err}"),
            QueryError::InvalidSql(_) => assert!(!not_allowed, "{sql}: {err}"),
            other => panic!("{sql}: {other}"),
        }
    }
    assert!(!std::path::Path::new("/tmp/minim-should-not-exist.csv").exists());
}
