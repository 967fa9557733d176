//! Group commit under 8 threads, and two writers (handles or processes) sharing one
//! directory: the chain must stay single and verify.

mod common;

use std::sync::Arc;

use common::{Env, event};
use minim_audit::{AuditConfig, AuditLog, Filter};

#[test]
fn eight_threads_get_unique_consecutive_seqs_and_the_chain_verifies() {
    let env = Env::new();
    let log = Arc::new(env.open());
    let per_thread = 150u64;
    let handles: Vec<_> = (0..8u64)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut seqs = Vec::new();
                for i in 0..per_thread {
                    if i % 10 == 0 {
                        seqs.extend(log.append(vec![event(t), event(i)]).expect("append"));
                    } else {
                        seqs.push(log.append_one(event(t * 1000 + i)).expect("append"));
                    }
                }
                seqs
            })
        })
        .collect();
    let mut all: Vec<u64> = Vec::new();
    for h in handles {
        let seqs = h.join().expect("thread");
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "a thread's seqs go forward"
        );
        all.extend(seqs);
    }
    all.sort_unstable();
    let total = 8 * (per_thread + per_thread / 10);
    assert_eq!(all, (1..=total).collect::<Vec<_>>());
    let stats = log.stats();
    assert_eq!(stats.records_appended, total);
    assert!(stats.groups_written <= 8 * per_thread);
    assert_eq!(log.head().0, total);
    drop(log);
    let report = env.verify();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, total);
}

#[test]
fn two_handles_on_one_dir_alternate_without_forking_the_chain() {
    let env = Env::new();
    let server = env.open();
    let cli = AuditLog::open(AuditConfig {
        checkpoint_interval_ms: 0,
        ..env.cfg()
    })
    .expect("open second");
    for i in 0..20 {
        let (a, b) = if i % 3 == 0 {
            (&cli, &server)
        } else {
            (&server, &cli)
        };
        assert_eq!(a.append_one(event(i)).expect("append"), 2 * i + 1);
        assert_eq!(
            b.append(vec![event(i + 100)]).expect("append"),
            vec![2 * i + 2]
        );
    }
    // Each handle sees the other's records through the shared file.
    assert_eq!(
        server.query(&Filter::default(), 1).expect("query")[0].seq,
        40
    );
    server.checkpoint().expect("checkpoint re-reads the head");
    assert_eq!(server.head().0, 40);
    drop((server, cli));
    let report = env.verify();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 40);
}

#[test]
fn two_handles_appending_concurrently_stay_consistent() {
    let env = Env::new();
    let a = Arc::new(env.open());
    let b = Arc::new(env.open());
    let hs: Vec<_> = [a.clone(), b.clone(), a, b]
        .into_iter()
        .enumerate()
        .map(|(t, log)| {
            std::thread::spawn(move || {
                (0..100u64)
                    .map(|i| log.append_one(event(t as u64 * 1000 + i)).expect("append"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<u64> = hs
        .into_iter()
        .flat_map(|h| h.join().expect("join"))
        .collect();
    all.sort_unstable();
    assert_eq!(all, (1..=400).collect::<Vec<_>>());
    let report = env.verify();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 400);
}

/// Run as a child process by `two_processes_append_concurrently`.
#[test]
fn child_writer() {
    let (Ok(dir), Ok(key)) = (
        std::env::var("MINIM_AUDIT_CHILD_DIR"),
        std::env::var("MINIM_AUDIT_CHILD_KEY"),
    ) else {
        return; // not a child: nothing to do
    };
    let log = AuditLog::open(AuditConfig {
        dir: dir.into(),
        signing_key_path: key.into(),
        checkpoint_interval_ms: 0,
        mirror: None,
    })
    .expect("open in child");
    for i in 0..150 {
        log.append_one(event(5000 + i)).expect("append in child");
    }
}

#[test]
fn two_processes_append_concurrently() {
    let env = Env::new();
    drop(env.open()); // create the key first, so both processes use the same one
    let exe = std::env::current_exe().expect("exe");
    let children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(&exe)
                .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
                .env("MINIM_AUDIT_CHILD_DIR", env.dir())
                .env("MINIM_AUDIT_CHILD_KEY", env.key())
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let log = env.open();
    for i in 0..150 {
        log.append_one(event(i)).expect("append in parent");
    }
    for mut c in children {
        assert!(c.wait().expect("wait").success());
    }
    drop(log);
    let report = env.verify();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 450);
}
