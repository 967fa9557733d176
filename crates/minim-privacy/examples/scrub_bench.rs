//! Throughput of `Detectors::scan` on the strings of real-shaped events, one thread.
//!
//! ```text
//! cargo run --release -p minim -- gen --events 200000 > /tmp/gen.ndjson
//! cargo run --release -p minim-privacy --example scrub_bench -- /tmp/gen.ndjson [passes]
//! ```
//!
//! Collects every string of every event (top-level string fields such as the event
//! name and `distinct_id`, property keys and string values at every depth), then scans
//! them all `passes` times (default 10) and prints MB/s per pass and the number of
//! findings per detector. Without a file it benchmarks a small built-in corpus.
//! A benchmark, not a test: it never asserts timings.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::time::Instant;

use minim_privacy::detect::{Detector, Detectors, Finding};
use serde_json::Value;

fn collect(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|item| collect(item, out)),
        Value::Object(map) => {
            for (k, item) in map {
                out.push(k.clone());
                collect(item, out);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn from_file(path: &str) -> Result<Vec<String>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let mut strings = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{path}: {e}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let event: Value =
            serde_json::from_str(&line).map_err(|e| format!("{path}:{}: {e}", n + 1))?;
        let Value::Object(map) = &event else {
            return Err(format!("{path}:{}: not an object", n + 1));
        };
        for v in map.values() {
            // Strings as they are; `properties` (and anything else nested): keys and
            // values at every depth.
            collect(v, &mut strings);
        }
    }
    Ok(strings)
}

/// A stand-in when no file is given: the shapes `minim gen` produces.
fn builtin() -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..20_000u64 {
        out.push("$pageview".into());
        out.push(format!(
            "anon-{:016x}",
            i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ));
        out.push(format!("user-{}", i % 5000));
        out.push(format!(
            "https://nimbus.example.com/blog/post-{}?utm_source=google&utm_medium=cpc",
            i % 97
        ));
        out.push(format!("019b76da-e642-7b94-b94c-{:012x}", i * 7919));
        out.push("$current_url".into());
        out.push("Mac OS X".into());
        out.push("Chrome".into());
        if i % 50 == 0 {
            out.push(format!("jane.doe{}@gmail.com", i % 100));
            out.push(format!("+1 415-555-01{:02}", i % 100));
        }
    }
    out
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next();
    let passes: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let strings = match path.as_deref() {
        Some(p) => match from_file(p) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("scrub_bench: {e}");
                std::process::exit(1);
            }
        },
        None => {
            eprintln!("scrub_bench: no NDJSON file given, using the built-in corpus");
            builtin()
        }
    };
    let bytes: usize = strings.iter().map(String::len).sum();
    println!(
        "{} strings, {:.1} MB, mean {:.1} bytes/string",
        strings.len(),
        bytes as f64 / 1e6,
        bytes as f64 / strings.len().max(1) as f64
    );

    let detectors = Detectors::new();
    let mut findings: Vec<Finding> = Vec::with_capacity(64);
    let mut per_detector: BTreeMap<Detector, u64> = BTreeMap::new();
    let mut with_findings = 0u64;
    for s in &strings {
        findings.clear();
        detectors.scan(s, &mut findings);
        with_findings += u64::from(!findings.is_empty());
        for f in &findings {
            *per_detector.entry(f.detector).or_default() += 1;
        }
    }

    let mut rates = Vec::with_capacity(passes);
    for pass in 0..passes {
        let t = Instant::now();
        let mut n = 0usize;
        for s in &strings {
            findings.clear();
            detectors.scan(black_box(s), &mut findings);
            n += findings.len();
        }
        black_box(n);
        let secs = t.elapsed().as_secs_f64();
        let rate = bytes as f64 / 1e6 / secs;
        rates.push(rate);
        println!("pass {pass}: {secs:.3} s, {rate:.0} MB/s");
    }
    rates.sort_by(f64::total_cmp);
    if let (Some(best), Some(median)) = (rates.last(), rates.get(rates.len() / 2)) {
        println!("scan throughput (1 thread): median {median:.0} MB/s, best {best:.0} MB/s");
    }
    println!("strings with findings: {with_findings}");
    for d in Detector::ALL {
        println!(
            "  {:<10} {}",
            d.name(),
            per_detector.get(&d).copied().unwrap_or(0)
        );
    }
}
