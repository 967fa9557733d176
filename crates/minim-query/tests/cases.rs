//! Runs the query cases in `tests/cases/*.json` through the reference and through the
//! engine (DataFusion over a real store: part of the events in segments, part in the
//! memtable) and compares both with the expected JSON.
//!
//! A case file is `{"description": "...", "events": [...], "query": {...}, "expected": {...}}`
//! or, for several queries over the same events, `{"events": [...], "queries": [{"name":
//! "...", "query": {...}, "expected": {...}}, ...]}`. Events are in the native ingest
//! shape: `event`, `distinct_id`, `timestamp` (RFC 3339 string, or a number of epoch
//! milliseconds), optional `insert_id`, `properties` and `received_at` (defaults to the
//! timestamp). Expected values are computed by hand, never copied from a run.
//!
//! Numbers compare strictly by kind: an expected integer needs an integer, an expected
//! float (`3.0`) a float, equal within 1e-9 relative. `tests/invalid_specs.json` lists
//! refused specs with the error code and field they must produce.

mod support;

use support::diff;

use std::path::{Path, PathBuf};

use minim_core::Event;
use minim_query::{QuerySpec, reference};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(default)]
    description: String,
    events: Vec<CaseEvent>,
    query: Option<Value>,
    expected: Option<Value>,
    #[serde(default)]
    queries: Vec<NamedQuery>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedQuery {
    name: String,
    query: Value,
    expected: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseEvent {
    event: String,
    distinct_id: String,
    timestamp: Value,
    #[serde(default)]
    insert_id: Option<String>,
    #[serde(default)]
    properties: Option<Value>,
    #[serde(default)]
    received_at: Option<Value>,
}

fn millis(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().expect("timestamp number must be integer ms"),
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .unwrap_or_else(|e| panic!("bad timestamp {s:?}: {e}"))
            .timestamp_millis(),
        other => panic!("bad timestamp {other}"),
    }
}

fn to_event(e: &CaseEvent) -> Event {
    let timestamp_ms = millis(&e.timestamp);
    Event {
        timestamp_ms,
        event: e.event.clone(),
        distinct_id: e.distinct_id.clone(),
        insert_id: e.insert_id.clone(),
        properties: e
            .properties
            .as_ref()
            .map_or_else(|| "{}".to_string(), Value::to_string),
        personal: None,
        received_at_ms: e.received_at.as_ref().map_or(timestamp_ms, millis),
    }
}

fn case_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/cases exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn query_cases() {
    let files = case_files();
    assert!(
        files.len() >= 15,
        "expected at least 15 case files, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    let mut ran = 0;
    for file in &files {
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        let text = std::fs::read_to_string(file).expect("readable case file");
        let case: CaseFile =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: bad case file: {e}"));
        let events: Vec<Event> = case.events.iter().map(to_event).collect();
        let mut queries = case.queries;
        if let (Some(query), Some(expected)) = (case.query, case.expected) {
            queries.push(NamedQuery {
                name: case.description.clone(),
                query,
                expected,
            });
        }
        assert!(!queries.is_empty(), "{name}: no query");
        let fixture = support::Fixture::new(&events, events.len() / 2);
        for q in queries {
            ran += 1;
            let label = format!("{name} / {}", q.name);
            let spec = match QuerySpec::from_json_value(q.query) {
                Ok(spec) => spec,
                Err(e) => {
                    failures.push(format!("{label}: spec refused: {e}"));
                    continue;
                }
            };
            let result = reference::run(&spec, &events).expect("validated spec runs");
            let actual = serde_json::to_value(&result).expect("results serialize");
            if let Some(d) = diff(&q.expected, &actual, "$") {
                failures.push(format!("{label}: {d}\n  actual: {actual}"));
            }
            // The same answer whatever the order of the input events.
            let mut reversed = events.clone();
            reversed.reverse();
            let again = reference::run(&spec, &reversed).expect("validated spec runs");
            if again != result {
                failures.push(format!("{label}: answer depends on event order"));
            }
            match fixture.query(&spec) {
                Ok(engine) => {
                    let actual = serde_json::to_value(&engine).expect("results serialize");
                    if let Some(d) = diff(&q.expected, &actual, "$") {
                        failures.push(format!("{label}: engine: {d}\n  actual: {actual}"));
                    }
                }
                Err(e) => failures.push(format!("{label}: engine failed: {e}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} queries failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvalidSpec {
    name: String,
    query: Value,
    code: String,
    field: String,
}

#[test]
fn invalid_specs_are_refused_naming_the_field() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid_specs.json");
    let text = std::fs::read_to_string(path).expect("tests/invalid_specs.json exists");
    let cases: Vec<InvalidSpec> = serde_json::from_str(&text).expect("valid invalid_specs.json");
    let mut failures = Vec::new();
    for c in &cases {
        match QuerySpec::from_json_value(c.query.clone()) {
            Ok(_) => failures.push(format!("{}: accepted", c.name)),
            Err(e) => {
                if e.code() != c.code || e.field() != c.field {
                    failures.push(format!(
                        "{}: expected {} at {:?}, got {} at {:?} ({e})",
                        c.name,
                        c.code,
                        c.field,
                        e.code(),
                        e.field()
                    ));
                } else if !c.field.is_empty() && !e.message().starts_with(&c.field) {
                    failures.push(format!("{}: message does not name the field: {e}", c.name));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} invalid specs misjudged:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn invalid_json_body_is_refused() {
    for body in ["", "{", "[1]", "\"trends\""] {
        let e = QuerySpec::from_json_str(body).expect_err("refused");
        assert_eq!(e.code(), "invalid_json", "{body:?}: {e}");
    }
}
