//! The mirror copy: a file gets every line, a syslog socket gets every record, a
//! broken mirror never fails an append, and `verify_against_mirror` catches the
//! consistent cut that `verify` alone cannot.

mod common;

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;

use common::{Env, append_each, event, read_lines, write_lines};
use minim_audit::{AuditLog, AuditRecord, Mirror, verify_against_mirror};

#[test]
fn file_mirror_gets_every_line() {
    let env = Env::new();
    let mirror = env.keys.path().join("mirror.log");
    let log =
        Arc::new(AuditLog::open(env.cfg_with_mirror(Mirror::File(mirror.clone()))).expect("open"));
    log.append(vec![event(0), event(1), event(2)])
        .expect("append");
    let hs: Vec<_> = (0..4)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || append_each(&log, t * 100, t * 100 + 25))
        })
        .collect();
    for h in hs {
        h.join().expect("join");
    }
    drop(log);
    assert_eq!(
        std::fs::read(&mirror).expect("mirror"),
        std::fs::read(env.log_path()).expect("log")
    );
    let report = verify_against_mirror(&env.dir(), &mirror).expect("runs");
    assert!(report.ok, "{report:?}");
    assert_eq!((report.mirror_records, report.log_lines), (103, 103));
}

#[test]
fn consistent_cut_is_caught_by_the_mirror() {
    let env = Env::new();
    let mirror = env.keys.path().join("mirror.log");
    append_each(
        &AuditLog::open(env.cfg_with_mirror(Mirror::File(mirror.clone()))).expect("open"),
        0,
        10,
    );
    let mut lines = read_lines(&env.log_path());
    lines.truncate(7);
    write_lines(&env.log_path(), &lines);
    let mut cps = read_lines(&env.cp_path());
    cps.truncate(7);
    write_lines(&env.cp_path(), &cps);

    assert!(env.verify().ok, "the cut is invisible to verify alone");
    let report = verify_against_mirror(&env.dir(), &mirror).expect("runs");
    assert!(!report.ok);
    let bad = report.first_bad.expect("named");
    assert_eq!(bad.seq, 8);
    assert!(bad.reason.contains("cut"), "{}", bad.reason);
}

#[test]
fn rewritten_record_differs_from_the_mirror() {
    let env = Env::new();
    let mirror = env.keys.path().join("mirror.log");
    append_each(
        &AuditLog::open(env.cfg_with_mirror(Mirror::File(mirror.clone()))).expect("open"),
        0,
        5,
    );
    let mut lines = read_lines(&env.log_path());
    let mut r = AuditRecord::from_line(&lines[4]).expect("parse");
    r.event.principal = "usr_someone_else".into();
    r.hash = r.expected_hash().expect("hash");
    lines[4] = r.to_line().expect("line");
    write_lines(&env.log_path(), &lines);
    let report = verify_against_mirror(&env.dir(), &mirror).expect("runs");
    assert_eq!(report.first_bad.map(|b| b.seq), Some(5));
}

#[test]
fn a_mirror_that_starts_late_or_has_gaps_is_fine() {
    let env = Env::new();
    let mirror = env.keys.path().join("mirror.log");
    append_each(&env.open(), 0, 3); // before the mirror was configured
    append_each(
        &AuditLog::open(env.cfg_with_mirror(Mirror::File(mirror.clone()))).expect("open"),
        3,
        5,
    );
    append_each(&env.open(), 5, 6); // a CLI run without the mirror
    append_each(
        &AuditLog::open(env.cfg_with_mirror(Mirror::File(mirror.clone()))).expect("open"),
        6,
        8,
    );
    let report = verify_against_mirror(&env.dir(), &mirror).expect("runs");
    assert!(report.ok, "{report:?}");
    assert_eq!((report.mirror_records, report.log_lines), (4, 8));
}

#[test]
fn a_broken_mirror_is_counted_and_never_fails_an_append() {
    let env = Env::new();
    let mirror = env.keys.path().join("no/such/dir/mirror.log");
    let log = AuditLog::open(env.cfg_with_mirror(Mirror::File(mirror))).expect("open");
    append_each(&log, 0, 3);
    assert_eq!(log.stats().mirror_failures, 3);
    assert_eq!(log.head().0, 3);
    let sock = Mirror::Syslog {
        socket: env.keys.path().join("nobody-listens.sock"),
    };
    drop(log);
    let log = AuditLog::open(env.cfg_with_mirror(sock)).expect("open");
    append_each(&log, 3, 5);
    assert_eq!(log.stats().mirror_failures, 2);
    drop(log);
    assert!(env.verify().ok);
}

#[test]
fn an_unfinished_mirror_line_is_terminated_and_skipped() {
    let env = Env::new();
    let mirror = env.keys.path().join("mirror.log");
    append_each(
        &AuditLog::open(env.cfg_with_mirror(Mirror::File(mirror.clone()))).expect("open"),
        0,
        2,
    );
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&mirror)
        .expect("open");
    f.write_all(b"{\"v\":1,\"se").expect("write");
    append_each(
        &AuditLog::open(env.cfg_with_mirror(Mirror::File(mirror.clone()))).expect("open"),
        2,
        4,
    );
    let report = verify_against_mirror(&env.dir(), &mirror).expect("runs");
    assert!(report.ok, "{report:?}");
    assert_eq!((report.mirror_records, report.mirror_unreadable), (4, 1));
}

#[test]
fn syslog_mirror_sends_one_rfc5424_message_per_record() {
    let env = Env::new();
    let socket = env.keys.path().join("log.sock");
    let server = UnixDatagram::bind(&socket).expect("bind");
    let log = AuditLog::open(env.cfg_with_mirror(Mirror::Syslog { socket })).expect("open");
    log.append(vec![event(0), event(1)]).expect("append");
    log.append_one(event(2)).expect("append");
    let lines = read_lines(&env.log_path());
    let mut buf = vec![0u8; 70_000];
    for line in &lines {
        let n = server.recv(&mut buf).expect("recv");
        let msg = std::str::from_utf8(&buf[..n]).expect("utf8");
        assert!(msg.starts_with("<86>1 2023-11-14T22:1"), "{msg}");
        assert!(msg.contains(" minim "), "{msg}");
        assert!(msg.ends_with(&format!(" audit - {line}")), "{msg}");
    }
    assert_eq!(log.stats().mirror_failures, 0);
}
