//! Runs the API scenarios in `tests/scenarios/*.json` against an in-process server:
//! each scenario gets a fresh data directory, project and ingest key, sends its
//! requests, checks status and a JSON subset of each answer, then counts what the
//! store holds for the project.

mod common;

use std::io::Write;

use common::TestServer;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_scenarios() {
    run_file("ingest.json").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_scenarios() {
    run_file("query.json").await;
}

async fn run_file(name: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scenarios")
        .join(name);
    let scenarios: Vec<Value> = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(!scenarios.is_empty());
    for sc in scenarios {
        let title = sc["name"].as_str().unwrap().to_owned();
        let server = TestServer::start().await;
        for (i, step) in sc["steps"].as_array().unwrap().iter().enumerate() {
            let resp = send(&server, &step["request"]).await;
            let status = resp.status().as_u16();
            let retry_after = resp.headers().get("retry-after").is_some();
            let text = resp.text().await.unwrap();
            let expect = &step["expect"];
            let ctx = format!("scenario {title:?} step {i}: got {status} {text}");
            assert_eq!(
                u64::from(status),
                expect["status"].as_u64().unwrap(),
                "{ctx}"
            );
            if status == 503 {
                assert!(retry_after, "503 without Retry-After: {ctx}");
            }
            if let Some(want) = expect.get("json") {
                let got: Value =
                    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {ctx}"));
                assert_subset(&with_pseudonyms(&server, want), &got, &ctx);
            }
            if let Some(needle) = expect.get("body_contains").and_then(Value::as_str) {
                assert!(text.contains(needle), "{ctx}");
            }
        }
        let stored = server.stored_events().len() as u64;
        assert_eq!(
            stored,
            sc["stored"].as_u64().unwrap(),
            "scenario {title:?}: stored events"
        );
        server.stop().await;
    }
}

async fn send(server: &TestServer, req: &Value) -> reqwest::Response {
    let method = req.get("method").and_then(Value::as_str).unwrap_or("POST");
    let path = req
        .get("path")
        .and_then(Value::as_str)
        .unwrap_or("/api/v1/events")
        .replace("{project}", server.project.as_str());
    let mut b = server
        .client
        .request(method.parse().unwrap(), format!("{}{}", server.url, path));
    match req.get("auth").and_then(Value::as_str) {
        Some("ingest") => b = b.bearer_auth(&server.ingest_key),
        Some("wrong") => {
            b = b.bearer_auth(minim_meta::generate_secret(minim_meta::KeyKind::Ingest))
        }
        Some("revoked") => b = b.bearer_auth(server.revoked_key()),
        Some("viewer") => b = b.bearer_auth(server.token(minim_meta::Role::Viewer)),
        Some("analyst") => b = b.bearer_auth(server.token(minim_meta::Role::Analyst)),
        Some("admin") => b = b.bearer_auth(server.token(minim_meta::Role::Admin)),
        Some("auditor") => b = b.bearer_auth(server.token(minim_meta::Role::Auditor)),
        Some("other_project") => b = b.bearer_auth(server.other_project_token()),
        Some("revoked_token") => b = b.bearer_auth(server.revoked_token()),
        _ => {}
    }
    let mut body: Option<Vec<u8>> = None;
    if let Some(j) = req.get("json") {
        body = Some(serde_json::to_vec(j).unwrap());
        b = b.header("content-type", "application/json");
    }
    if let Some(t) = req.get("text").and_then(Value::as_str) {
        body = Some(t.as_bytes().to_vec());
    }
    if let Some(lines) = req.get("ndjson").and_then(Value::as_array) {
        let text: Vec<&str> = lines.iter().map(|l| l.as_str().unwrap()).collect();
        body = Some(text.join("\n").into_bytes());
        b = b.header("content-type", "application/x-ndjson");
    }
    if let Some(r) = req.get("repeat") {
        let one = serde_json::to_string(&r["event"]).unwrap();
        let n = r["count"].as_u64().unwrap() as usize;
        body = Some(format!("[{}]", vec![one; n].join(",")).into_bytes());
    }
    if let Some(n) = req.get("filler_bytes").and_then(Value::as_u64) {
        body = Some(vec![b' '; n as usize]);
    }
    if let Some(h) = req.get("headers").and_then(Value::as_object) {
        for (k, v) in h {
            b = b.header(k.as_str(), v.as_str().unwrap());
        }
    }
    if req.get("gzip").and_then(Value::as_bool) == Some(true) {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(body.as_deref().unwrap_or_default()).unwrap();
        body = Some(enc.finish().unwrap());
        b = b.header("content-encoding", "gzip");
    }
    if let Some(body) = body {
        b = b.body(body);
    }
    b.send().await.unwrap()
}

/// Every field of `want` is in `got` with an equal value; arrays match element-wise
/// and must have the same length.
/// Expected strings `"{pseudonym:ID}"` become the stored form of `distinct_id` ID.
fn with_pseudonyms(server: &TestServer, v: &Value) -> Value {
    match v {
        Value::String(s) => match s
            .strip_prefix("{pseudonym:")
            .and_then(|r| r.strip_suffix('}'))
        {
            Some(id) => Value::String(server.pseudonym(id)),
            None => v.clone(),
        },
        Value::Array(a) => Value::Array(a.iter().map(|x| with_pseudonyms(server, x)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), with_pseudonyms(server, x)))
                .collect(),
        ),
        _ => v.clone(),
    }
}

fn assert_subset(want: &Value, got: &Value, ctx: &str) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                let gv = g
                    .get(k)
                    .unwrap_or_else(|| panic!("missing field {k:?}: {ctx}"));
                assert_subset(wv, gv, ctx);
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            assert_eq!(w.len(), g.len(), "array length: {ctx}");
            for (wv, gv) in w.iter().zip(g) {
                assert_subset(wv, gv, ctx);
            }
        }
        _ => assert_eq!(want, got, "{ctx}"),
    }
}
