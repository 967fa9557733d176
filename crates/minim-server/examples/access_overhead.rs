//! What authorization, read budgets and the audit log cost a query, end to end.
//!
//! One process: the real server on a port, `EVENTS` generated events ingested, then for
//! the same trends query: (A) over HTTP with an analyst token — authentication, Cedar,
//! budget check and charge, the audit record (fsynced) and HTTP; (B) the engine alone,
//! in process; (C) an HTTP round trip that does no work (`/healthz`). The access layer's
//! share is `A - B - C`, reported against A at p50.
//!
//! `cargo run --release -p minim-server --example access_overhead` (env `EVENTS`, `RUNS`).

use std::sync::Arc;
use std::time::Instant;

use minim_core::time::Clock;
use minim_meta::{MetaStore, Role, SqliteMeta};
use minim_query::QuerySpec;
use minim_query::engine::{EngineConfig, QueryEngine, Visibility};
use minim_server::{App, SecurityConfig, ServerConfig};
use minim_store::{Store, StoreConfig};

fn p50(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let events: u64 = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().unwrap();
    let key_dir = tempfile::tempdir().unwrap();
    let meta = Arc::new(SqliteMeta::open(&dir.path().join("meta.db")).unwrap());
    let created = meta.create_project("bench", 0).unwrap();
    let project = created.project.id.clone();
    let store = Arc::new(
        Store::open(StoreConfig {
            data_dir: dir.path().join("events"),
            ..StoreConfig::default()
        })
        .unwrap(),
    );
    let engine = Arc::new(QueryEngine::new(EngineConfig::default()).unwrap());
    let security = SecurityConfig {
        audit_signing_key: Some(key_dir.path().join("audit.key")),
        ..SecurityConfig::default()
    };
    let audit = minim_server::open_audit(dir.path(), &security).unwrap();
    let app = App::new(
        ServerConfig::default(),
        minim_ingest::IngestLimits::default(),
        store.clone(),
        meta.clone() as Arc<dyn MetaStore>,
        engine.clone(),
        Clock::system(),
        audit,
    )
    .with_security(&security)
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(minim_server::serve(app, listener, async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::new();

    // Ingest through HTTP (the privacy pipeline included), in batches.
    let mut buf = Vec::new();
    minim_gen::write_ndjson(minim_gen::GenConfig::new(events), &mut buf).unwrap();
    let text = String::from_utf8(buf).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for chunk in lines.chunks(5_000) {
        let r = client
            .post(format!("{url}/api/v1/events"))
            .bearer_auth(&created.ingest_key)
            .header("content-type", "application/x-ndjson")
            .body(chunk.join("\n"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    store.flush().unwrap();

    let token = meta
        .create_token(&project, Role::Admin, 86_400_000, Clock::system().now_ms())
        .unwrap()
        .token;
    let spec_json = r#"{"kind": "trends", "from": "2026-01-01", "to": "2026-01-31", "interval": "day",
        "series": [{"event": "$pageview", "math": "unique_users"}]}"#;
    let spec = QuerySpec::from_json_str(spec_json).unwrap();
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs + 10 {
        let t = Instant::now();
        let r = client
            .post(format!("{url}/api/v1/projects/{project}/query"))
            .bearer_auth(&token)
            .body(spec_json)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let _ = r.bytes().await.unwrap();
        let ta = t.elapsed().as_secs_f64();
        let t = Instant::now();
        engine
            .query_as(
                store.snapshot(),
                project.clone(),
                spec.clone(),
                Visibility::all(),
            )
            .await
            .unwrap();
        let tb = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let r = client.get(format!("{url}/healthz")).send().await.unwrap();
        let _ = r.bytes().await.unwrap();
        let tc = t.elapsed().as_secs_f64();
        if i >= 10 {
            a.push(ta);
            b.push(tb);
            c.push(tc);
        }
    }
    let (pa, pb, pc) = (p50(a) * 1e3, p50(b) * 1e3, p50(c) * 1e3);
    let access = (pa - pb - pc).max(0.0);
    println!("events={events} runs={runs}");
    println!("A  query over HTTP, full access path  p50 {pa:.2} ms");
    println!("B  engine alone                       p50 {pb:.2} ms");
    println!("C  HTTP round trip (/healthz)         p50 {pc:.2} ms");
    println!(
        "access layer (A - B - C)              p50 {access:.2} ms = {:.1}% of A",
        access / pa * 100.0
    );
    let _ = tx.send(());
    let _ = server.await;
}
