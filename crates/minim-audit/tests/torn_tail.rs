//! A crash mid-write leaves an unfinished last line: the next open (or the next write
//! of another handle) drops it, since its append never returned success.

mod common;

use std::io::Write;

use common::{Env, append_each, event, read_lines};
use minim_audit::{AuditError, AuditLog, AuditRecord};

fn append_raw(path: &std::path::Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open");
    f.write_all(bytes).expect("write");
}

#[test]
fn torn_last_line_is_dropped_at_open_and_the_chain_continues() {
    let env = Env::new();
    append_each(&env.open(), 0, 5);
    let good_len = std::fs::metadata(env.log_path()).expect("meta").len();
    let line = read_lines(&env.log_path())[4].clone();
    append_raw(&env.log_path(), &line.as_bytes()[..line.len() / 2]);
    assert!(!env.verify().ok, "verify reports the torn line");

    let log = env.open();
    assert_eq!(
        std::fs::metadata(env.log_path()).expect("meta").len(),
        good_len
    );
    assert_eq!(log.head().0, 5);
    assert_eq!(log.append_one(event(5)).expect("append"), 6);
    drop(log);
    let report = env.verify();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 6);
}

#[test]
fn complete_lines_of_an_interrupted_group_are_kept() {
    // The crash came after two of three lines reached the disk, before the checkpoint.
    let env = Env::new();
    append_each(&env.open(), 0, 3);
    let mut prev = AuditRecord::from_line(&read_lines(&env.log_path())[2])
        .expect("parse")
        .hash;
    let mut tail = String::new();
    for seq in 4..=5 {
        let mut r = AuditRecord {
            seq,
            prev_hash: prev,
            hash: String::new(),
            event: event(seq),
        };
        r.hash = r.expected_hash().expect("hash");
        prev = r.hash.clone();
        tail.push_str(&r.to_line().expect("line"));
        tail.push('\n');
    }
    tail.push_str("{\"v\":1,\"seq\":6,\"ti");
    append_raw(&env.log_path(), tail.as_bytes());

    let log = env.open();
    assert_eq!(log.head(), (5, prev));
    let before = env.verify();
    assert!(before.ok, "{before:?}");
    assert_eq!((before.records, before.unsigned_tail), (5, 2));
    log.append_one(event(6)).expect("append");
    drop(log);
    let after = env.verify();
    assert!(after.ok);
    assert_eq!((after.records, after.unsigned_tail), (6, 0));
}

#[test]
fn torn_checkpoint_line_is_dropped_at_open() {
    let env = Env::new();
    append_each(&env.open(), 0, 3);
    append_raw(&env.cp_path(), b"{\"v\":1,\"seq\":3,\"hash\":\"ab");
    assert!(!env.verify().ok);
    let log = env.open();
    append_each(&log, 3, 4);
    drop(log);
    let report = env.verify();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.checkpoints, 4);
}

#[test]
fn another_writers_torn_line_is_dropped_before_the_next_group() {
    let env = Env::new();
    let log = env.open();
    append_each(&log, 0, 2);
    append_raw(&env.log_path(), b"{\"v\":1,\"seq\":3");
    assert_eq!(log.append_one(event(2)).expect("append"), 3);
    drop(log);
    let report = env.verify();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 3);
}

#[test]
fn a_long_unterminated_tail_is_not_truncated_but_refused() {
    let env = Env::new();
    append_each(&env.open(), 0, 2);
    append_raw(
        &env.log_path(),
        &vec![b'x'; minim_audit::MAX_LINE_BYTES + 100],
    );
    let len = std::fs::metadata(env.log_path()).expect("meta").len();
    let r = AuditLog::open(env.cfg());
    assert!(
        matches!(r, Err(AuditError::Corrupt { .. })),
        "{:?}",
        r.err()
    );
    assert_eq!(
        std::fs::metadata(env.log_path()).expect("meta").len(),
        len,
        "evidence kept"
    );
}

#[test]
fn a_corrupt_last_record_is_refused() {
    let env = Env::new();
    append_each(&env.open(), 0, 2);
    let mut lines = read_lines(&env.log_path());
    lines[1] = lines[1].replacen("\"rows\":1,", "\"rows\":5,", 1);
    common::write_lines(&env.log_path(), &lines);
    let r = AuditLog::open(env.cfg());
    assert!(
        matches!(r, Err(AuditError::Corrupt { .. })),
        "{:?}",
        r.err()
    );
}
