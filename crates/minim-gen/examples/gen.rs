//! `cargo run --release -p minim-gen --example gen -- EVENTS [SEED] [> file]`: NDJSON to
//! stdout, throughput to stderr (the same path as `minim gen`).

use std::io::Write;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let events = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut cfg = minim_gen::GenConfig::new(events);
    if let Some(seed) = args.next().and_then(|a| a.parse().ok()) {
        cfg.seed = seed;
    }
    let started = Instant::now();
    let stdout = std::io::stdout().lock();
    match minim_gen::write_ndjson(cfg, stdout) {
        Ok(n) => {
            let secs = started.elapsed().as_secs_f64();
            let _ = writeln!(
                std::io::stderr(),
                "{n} events in {secs:.2} s: {:.2} M events/s",
                n as f64 / secs / 1e6
            );
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            std::process::exit(1);
        }
    }
}
