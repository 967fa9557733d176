//! What encryption at rest costs: ingest throughput into the store and insight query
//! latency, with encryption off and on, on the same generated events, in one run.
//!
//! Ingest: `EVENTS` generated events, decoded once, appended in batches of 5,000
//! (`append`: WAL group commit, fsync, memtable), then flushed to segments and
//! compacted; events/s over the whole. Query: the same trends query (unique users per
//! day) over the compacted segments, `RUNS` times, p50. Rounds alternate off/on twice so
//! drift on this shared machine hits both.
//!
//! `EVENTS=1000000 RUNS=50 cargo run --release -p minim-server --example encryption_cost`

use std::sync::Arc;
use std::time::Instant;

use minim_core::EventBatch;
use minim_crypto::Keyring;
use minim_ingest::{BodyFormat, ContentEncoding, IngestLimits, decode_native};
use minim_query::QuerySpec;
use minim_query::engine::{EngineConfig, QueryEngine, Visibility};
use minim_store::{Encryption, Store, StoreConfig};

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn p50(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let events = env_num("EVENTS", 1_000_000);
    let runs = env_num("RUNS", 50);
    let mut ndjson = Vec::new();
    minim_gen::write_ndjson(minim_gen::GenConfig::new(events as u64), &mut ndjson).unwrap();
    let limits = IngestLimits {
        max_body_bytes: ndjson.len() + 1,
        max_events_per_request: events + 1,
        ..IngestLimits::default()
    };
    let now = minim_core::time::Clock::system().now_ms();
    let decoded = decode_native(
        &ndjson,
        BodyFormat::Ndjson,
        ContentEncoding::Identity,
        &limits,
        now,
    )
    .unwrap();
    assert_eq!(
        decoded.events.len(),
        events,
        "every generated event decodes"
    );
    drop(ndjson);
    let project = minim_core::ProjectId::new("bench").unwrap();
    let spec = QuerySpec::from_json_str(
        r#"{"kind": "trends", "from": "2026-01-01", "to": "2026-01-31", "interval": "day",
            "series": [{"event": "$pageview", "math": "unique_users"}]}"#,
    )
    .unwrap();
    let engine = QueryEngine::new(EngineConfig::default()).unwrap();
    println!("events={events} runs={runs}");
    for encrypted in [false, true, false, true] {
        let dir = tempfile::tempdir().unwrap();
        let encryption = encrypted.then(|| {
            let (ring, _) = Keyring::open_for_data_dir(
                &dir.path().join("data"),
                &dir.path().join("keys"),
                None,
            )
            .unwrap();
            Encryption::new(Arc::new(ring))
        });
        let store = Store::open(StoreConfig {
            data_dir: dir.path().join("data/events"),
            encryption,
            ..StoreConfig::default()
        })
        .unwrap();
        let t = Instant::now();
        for chunk in decoded.events.chunks(5_000) {
            // Back-pressure (the flusher is behind) says retry, as to a real client.
            while let Err(e) = store
                .append(EventBatch {
                    project: project.clone(),
                    events: chunk.to_vec(),
                })
                .await
            {
                assert!(e.is_retryable(), "{e}");
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
        store.flush().unwrap();
        while store.compact_now().unwrap() > 0 {}
        let ingest = events as f64 / t.elapsed().as_secs_f64();
        let mut lat = Vec::new();
        for i in 0..runs + 5 {
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
            if i >= 5 {
                lat.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        println!(
            "encryption {:3}  ingest {:>9.0} events/s  query p50 {:>7.2} ms",
            if encrypted { "on" } else { "off" },
            ingest,
            p50(lat)
        );
    }
}
