//! Shared helpers for the integration tests: a data dir and a key dir, sample events,
//! and line-level access to the log files for tampering.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use minim_audit::{AuditConfig, AuditEvent, AuditLog, Decision, Mirror};

/// A data directory and, apart from it, a key directory.
pub struct Env {
    pub data: tempfile::TempDir,
    pub keys: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            data: tempfile::tempdir().expect("tempdir"),
            keys: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn dir(&self) -> PathBuf {
        self.data.path().join("audit")
    }

    pub fn key(&self) -> PathBuf {
        self.keys.path().join("audit.key")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir().join(minim_audit::LOG_FILE)
    }

    pub fn cp_path(&self) -> PathBuf {
        self.dir().join(minim_audit::CHECKPOINT_FILE)
    }

    pub fn cfg(&self) -> AuditConfig {
        AuditConfig {
            dir: self.dir(),
            signing_key_path: self.key(),
            checkpoint_interval_ms: 0,
            mirror: None,
        }
    }

    pub fn cfg_with_mirror(&self, mirror: Mirror) -> AuditConfig {
        AuditConfig {
            mirror: Some(mirror),
            ..self.cfg()
        }
    }

    pub fn open(&self) -> AuditLog {
        AuditLog::open(self.cfg()).expect("open")
    }

    pub fn verify(&self) -> minim_audit::VerifyReport {
        minim_audit::verify(&self.dir(), &self.key()).expect("verify runs")
    }
}

/// A varied but deterministic event.
pub fn event(i: u64) -> AuditEvent {
    let decisions = [Decision::Allow, Decision::Deny, Decision::Error];
    AuditEvent {
        time_ms: 1_700_000_000_000 + i as i64 * 1000,
        principal: format!("usr_{}", i % 3),
        principal_kind: "user".into(),
        action: ["query_aggregate", "login", "budget_trip"][(i % 3) as usize].into(),
        resource: format!("project:prj_{}", i % 2),
        decision: decisions[(i % 3) as usize],
        status: [200, 403, 500][(i % 3) as usize],
        rows: i,
        bytes: i * 10,
        distinct_users: i % 7,
        fingerprint: i
            .is_multiple_of(2)
            .then(|| minim_audit::hash_fingerprint(&format!("q{i}"))),
        client_ip_hash: None,
        reason: (i % 3 == 1).then(|| "budget_exceeded".to_owned()),
        request_id: Some(format!("req_{i}")),
    }
}

/// Appends events `from..to`, one append call each (so one checkpoint each).
pub fn append_each(log: &AuditLog, from: u64, to: u64) {
    for i in from..to {
        log.append_one(event(i)).expect("append");
    }
}

pub fn read_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("read");
    text.lines().map(str::to_owned).collect()
}

pub fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    if !lines.is_empty() {
        text.push('\n');
    }
    std::fs::write(path, text).expect("write");
}

/// A clock the test moves by hand.
pub fn manual_clock(start: i64) -> (Arc<AtomicI64>, minim_audit::Clock) {
    let t = Arc::new(AtomicI64::new(start));
    let t2 = t.clone();
    (t, Arc::new(move || t2.load(Ordering::SeqCst)))
}
