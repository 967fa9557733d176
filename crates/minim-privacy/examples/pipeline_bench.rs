//! Throughput of the whole privacy pipeline on one thread, over `minim gen` events:
//! `cargo run --release -p minim-privacy --example pipeline_bench -- FILE.ndjson [PASSES]`.
//! Events are decoded once with the native decoder (not timed); then `Pipeline::process`
//! runs over them in batches of 1000 with the default plan. MB/s counts the bytes the
//! pipeline inspects: event name, distinct_id and the properties text.

use std::time::Instant;

use minim_core::ProjectId;
use minim_ingest::{BodyFormat, ContentEncoding, IngestLimits, decode_native};
use minim_privacy::pipeline::{ClientContext, Pipeline, ProjectContext};
use minim_privacy::plan::CompiledPlan;
use minim_privacy::{PrivacyStats, Secret};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: pipeline_bench FILE.ndjson [PASSES]");
        std::process::exit(2);
    };
    let passes: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let text = std::fs::read(path).expect("read the NDJSON file");
    let limits = IngestLimits {
        max_body_bytes: usize::MAX / 4,
        max_events_per_request: usize::MAX / 4,
        max_past_ms: i64::MAX / 4,
        ..IngestLimits::default()
    };
    let now = 1_800_000_000_000;
    let decoded = decode_native(
        &text,
        BodyFormat::Ndjson,
        ContentEncoding::Identity,
        &limits,
        now,
    )
    .expect("decode");
    let events = decoded.events;
    let bytes: usize = events
        .iter()
        .map(|e| e.event.len() + e.distinct_id.len() + e.properties.len())
        .sum();
    let project = ProjectId::new("bench").expect("project id");
    let plan = CompiledPlan::default();
    let secret = Secret::generate();
    let ctx = ProjectContext {
        project: &project,
        plan: &plan,
        secret: &secret,
    };
    let client = ClientContext {
        ip: Some("81.2.69.142".parse().expect("ip")),
        user_agent: Some(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15".into(),
        ),
    };
    let pipeline = Pipeline::new(None, now);
    let mut best = f64::MAX;
    let mut stats = PrivacyStats::default();
    for pass in 0..passes {
        let input: Vec<Vec<_>> = events.chunks(1000).map(<[_]>::to_vec).collect();
        let started = Instant::now();
        for batch in input {
            let out = pipeline.process(&ctx, &client, batch, now);
            if pass == 0 {
                stats.add(&out.stats);
            }
        }
        let s = started.elapsed().as_secs_f64();
        best = best.min(s);
        eprintln!("pass {pass}: {s:.3} s");
    }
    println!(
        "{} events, {:.1} MB inspected; best of {passes}: {:.3} s = {:.0} MB/s, {:.0} events/s on one thread",
        events.len(),
        bytes as f64 / 1e6,
        best,
        bytes as f64 / 1e6 / best,
        events.len() as f64 / best
    );
    println!("{}", serde_json::to_string(&stats).unwrap_or_default());
}
