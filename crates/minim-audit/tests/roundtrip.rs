//! Append, reopen, continue, verify; checkpoints by default and by interval; limits.

mod common;

use common::{Env, append_each, event, manual_clock, read_lines};
use minim_audit::{AuditError, AuditLog, AuditRecord, Filter, GENESIS_HASH, MAX_FIELD_BYTES};
use std::sync::atomic::Ordering;

#[test]
fn round_trip_reopen_continues_the_chain_and_verifies() {
    let env = Env::new();
    let first_head;
    {
        let log = env.open();
        assert_eq!(log.head(), (0, GENESIS_HASH.to_owned()));
        assert_eq!(
            log.append(vec![event(0), event(1), event(2)])
                .expect("append"),
            vec![1, 2, 3]
        );
        append_each(&log, 3, 10);
        first_head = log.head();
        assert_eq!(first_head.0, 10);
    }
    let log = env.open();
    assert_eq!(log.head(), first_head);
    assert_eq!(
        log.append(vec![event(10), event(11)]).expect("append"),
        vec![11, 12]
    );
    append_each(&log, 12, 15);
    drop(log);

    let report = env.verify();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 15);
    assert_eq!(report.checkpoints, 1 + 7 + 1 + 3);
    assert_eq!(report.last_checkpoint_seq, Some(15));
    assert_eq!(report.unsigned_tail, 0);
    assert_eq!(report.first_bad, None);
}

#[test]
fn lines_chain_from_genesis_and_hold_the_events() {
    let env = Env::new();
    let log = env.open();
    append_each(&log, 0, 5);
    let lines = read_lines(&env.log_path());
    assert_eq!(lines.len(), 5);
    let mut prev = GENESIS_HASH.to_owned();
    for (i, line) in lines.iter().enumerate() {
        let r = AuditRecord::from_line(line).expect("parses");
        assert_eq!(r.seq, i as u64 + 1);
        assert_eq!(r.prev_hash, prev);
        assert_eq!(r.expected_hash().as_deref(), Some(r.hash.as_str()));
        assert_eq!(r.event, event(i as u64));
        assert_eq!(r.to_line().expect("encodes"), *line);
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        assert_eq!(v["v"], 1);
        prev = r.hash;
    }
    assert_eq!(log.head(), (5, prev));
}

#[test]
fn an_empty_log_verifies() {
    let env = Env::new();
    drop(env.open());
    let report = env.verify();
    assert!(report.ok);
    assert_eq!(
        (report.records, report.checkpoints, report.unsigned_tail),
        (0, 0, 0)
    );
}

#[test]
fn checkpoints_follow_the_interval_and_the_head_is_signed_on_close() {
    let env = Env::new();
    let (t, clock) = manual_clock(1_000_000);
    let cfg = minim_audit::AuditConfig {
        checkpoint_interval_ms: 1000,
        ..env.cfg()
    };
    let log = AuditLog::open_with_clock(cfg, clock).expect("open");
    append_each(&log, 0, 1); // first group: no checkpoint yet → due
    assert_eq!(read_lines(&env.cp_path()).len(), 1);
    t.fetch_add(10, Ordering::SeqCst);
    append_each(&log, 1, 4);
    assert_eq!(read_lines(&env.cp_path()).len(), 1);
    let mid = env.verify();
    assert!(mid.ok);
    assert_eq!((mid.last_checkpoint_seq, mid.unsigned_tail), (Some(1), 3));
    t.fetch_add(1000, Ordering::SeqCst);
    append_each(&log, 4, 5);
    assert_eq!(read_lines(&env.cp_path()).len(), 2);
    append_each(&log, 5, 6);
    log.checkpoint().expect("checkpoint");
    assert_eq!(read_lines(&env.cp_path()).len(), 3);
    append_each(&log, 6, 8);
    drop(log); // signs seq 8
    let cps = read_lines(&env.cp_path());
    assert_eq!(cps.len(), 4);
    let last: serde_json::Value = serde_json::from_str(&cps[3]).expect("json");
    assert_eq!(last["seq"], 8);
    assert_eq!(last["time_ms"], 1_000_000 + 1010);
    let report = env.verify();
    assert!(report.ok, "{report:?}");
    assert_eq!(
        (report.records, report.checkpoints, report.unsigned_tail),
        (8, 4, 0)
    );
}

#[test]
fn limits_reject_before_writing() {
    let env = Env::new();
    let log = env.open();
    let mut e = event(0);
    e.resource = "x".repeat(MAX_FIELD_BYTES + 1);
    let r = log.append(vec![event(1), e]);
    assert!(matches!(r, Err(AuditError::InvalidEvent(_))), "{r:?}");
    assert_eq!(log.append(Vec::new()).expect("empty"), Vec::<u64>::new());
    let too_many = vec![event(0); minim_audit::MAX_EVENTS_PER_APPEND + 1];
    assert!(log.append(too_many).is_err());
    assert_eq!(log.head().0, 0);
    assert_eq!(std::fs::metadata(env.log_path()).expect("meta").len(), 0);
    let s = log.stats();
    assert_eq!(
        s.events_rejected,
        2 + minim_audit::MAX_EVENTS_PER_APPEND as u64 + 1
    );
    assert_eq!(s.records_appended, 0);
}

#[test]
fn stats_count_records_groups_and_checkpoints() {
    let env = Env::new();
    let log = env.open();
    log.append(vec![event(0), event(1)]).expect("append");
    log.append_one(event(2)).expect("append");
    let s = log.stats();
    assert_eq!(
        (s.records_appended, s.groups_written, s.checkpoints_written),
        (3, 2, 2)
    );
    assert_eq!(
        (s.append_failures, s.checkpoint_failures, s.mirror_failures),
        (0, 0, 0)
    );
}

#[test]
fn the_key_is_created_once_outside_the_data_dir() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::new();
    drop(env.open());
    let meta = std::fs::metadata(env.key()).expect("key exists");
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert!(minim_audit::public_key_path(&env.key()).exists());
    let before = std::fs::read(env.key()).expect("read");
    drop(env.open());
    assert_eq!(std::fs::read(env.key()).expect("read"), before);
    // The key never appears in the data directory.
    let hex_key = String::from_utf8(before).expect("utf8");
    for f in [env.log_path(), env.cp_path()] {
        let text = std::fs::read_to_string(f).expect("read");
        assert!(!text.contains(hex_key.trim()));
    }
}

#[test]
fn query_sees_records_written_by_this_handle() {
    let env = Env::new();
    let log = env.open();
    append_each(&log, 0, 3);
    let got = log.query(&Filter::default(), 10).expect("query");
    assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![3, 2, 1]);
}
