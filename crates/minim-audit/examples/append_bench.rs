//! Append throughput: one thread, and eight threads sharing one log (group commit),
//! each call durable before it returns; plus verify and query speed over the result.
//!
//! `cargo run --release -p minim-audit --example append_bench [-- SECONDS_PER_CASE]`
//! Writes to a temporary directory on the file system of `$TMPDIR` (fsync cost is the
//! whole story, so run it on the disk the server would use).

use std::sync::Arc;
use std::time::{Duration, Instant};

use minim_audit::{AuditConfig, AuditEvent, AuditLog, Decision, Filter};

fn event(i: u64) -> AuditEvent {
    AuditEvent {
        time_ms: 1_700_000_000_000 + i as i64,
        principal: format!("usr_{:08}", i % 50),
        principal_kind: "user".into(),
        action: "query_aggregate".into(),
        resource: "project:prj_abc".into(),
        decision: Decision::Allow,
        status: 200,
        rows: 120,
        bytes: 4096,
        distinct_users: 17,
        fingerprint: Some(minim_audit::hash_fingerprint("select 1")),
        client_ip_hash: Some("9f86d081884c7d659a2feaa0c55ad015".into()),
        reason: None,
        request_id: Some(format!("req_{i:016x}")),
    }
}

struct Case {
    name: &'static str,
    threads: u64,
    batch: u64,
    interval_ms: u64,
}

/// A finished case's log (both directories live as long as this).
struct Done {
    data: tempfile::TempDir,
    _keys: tempfile::TempDir,
    key: std::path::PathBuf,
}

fn run(case: &Case, secs: f64) -> (f64, minim_audit::AuditStats, Done) {
    let data = tempfile::tempdir().expect("tempdir");
    let keys = tempfile::tempdir().expect("tempdir");
    let key = keys.path().join("audit.key");
    let cfg = AuditConfig {
        dir: data.path().join("audit"),
        signing_key_path: key.clone(),
        checkpoint_interval_ms: case.interval_ms,
        mirror: None,
    };
    let log = Arc::new(AuditLog::open(cfg).expect("open"));
    let deadline = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let handles: Vec<_> = (0..case.threads)
        .map(|t| {
            let log = log.clone();
            let batch = case.batch;
            std::thread::spawn(move || {
                let mut n = 0u64;
                while start.elapsed() < deadline {
                    let events = (0..batch).map(|i| event(t << 32 | (n + i))).collect();
                    log.append(events).expect("append");
                    n += batch;
                }
                n
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().expect("join")).sum();
    let rate = total as f64 / start.elapsed().as_secs_f64();
    let stats = log.stats();
    drop(log);
    (
        rate,
        stats,
        Done {
            data,
            _keys: keys,
            key,
        },
    )
}

/// The floor under every durable append: one small write + fdatasync at a time.
fn raw_fsync_rate(secs: f64) -> f64 {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("raw"))
        .expect("open");
    let line = [b'x'; 400];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        f.write_all(&line).expect("write");
        f.sync_data().expect("fsync");
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let cases = [
        Case {
            name: "1 thread, append_one",
            threads: 1,
            batch: 1,
            interval_ms: 0,
        },
        Case {
            name: "8 threads, append_one",
            threads: 8,
            batch: 1,
            interval_ms: 0,
        },
        Case {
            name: "1 thread, append_one, checkpoint every 1 s",
            threads: 1,
            batch: 1,
            interval_ms: 1000,
        },
        Case {
            name: "8 threads, append_one, checkpoint every 1 s",
            threads: 8,
            batch: 1,
            interval_ms: 1000,
        },
        Case {
            name: "1 thread, append(100)",
            threads: 1,
            batch: 100,
            interval_ms: 0,
        },
    ];
    println!("{secs} s per case");
    println!(
        "{:<45} {:>9.0} fsyncs/s",
        "raw 400-byte append + fdatasync",
        raw_fsync_rate(secs)
    );
    let mut biggest = None;
    for case in &cases {
        let (rate, s, done) = run(case, secs);
        println!(
            "{:<45} {:>9.0} records/s  groups {:>6}  avg group {:>6.1}  checkpoints {:>6}",
            case.name,
            rate,
            s.groups_written,
            s.records_appended as f64 / s.groups_written.max(1) as f64,
            s.checkpoints_written
        );
        if biggest
            .as_ref()
            .is_none_or(|(n, _)| s.records_appended > *n)
        {
            biggest = Some((s.records_appended, done));
        }
    }
    if let Some((n, done)) = biggest {
        let dir = done.data.path().join("audit");
        let key = done.key.clone();
        let t = Instant::now();
        let report = minim_audit::verify(&dir, &key).expect("verify");
        let vt = t.elapsed().as_secs_f64();
        assert!(report.ok);
        println!(
            "verify: {n} records, {} checkpoints in {vt:.2} s ({:.0} records/s)",
            report.checkpoints,
            n as f64 / vt
        );
        let cfg = AuditConfig {
            dir,
            signing_key_path: key,
            checkpoint_interval_ms: 0,
            mirror: None,
        };
        let log = AuditLog::open(cfg).expect("open");
        let f = Filter {
            principal: Some("usr_00000049".into()),
            ..Filter::default()
        };
        let t = Instant::now();
        let got = log
            .query(
                &Filter {
                    principal: Some("nobody".into()),
                    ..f.clone()
                },
                100,
            )
            .expect("query");
        println!(
            "query, full scan with no match: {:.1} ms ({} found)",
            t.elapsed().as_secs_f64() * 1e3,
            got.len()
        );
        let t = Instant::now();
        let got = log.query(&f, 100).expect("query");
        println!(
            "query, newest 100 of one principal: {:.1} ms ({} found)",
            t.elapsed().as_secs_f64() * 1e3,
            got.len()
        );
    }
}
