//! One test per kind of tampering: `verify` must fail and name the exact first bad seq.

mod common;

use common::{Env, append_each, event, read_lines, write_lines};
use minim_audit::{AuditConfig, AuditLog, AuditRecord, BadRecord, VerifyReport};

/// A log of `n` records, one append (and so one checkpoint) each.
fn env_with(n: u64) -> Env {
    let env = Env::new();
    let log = env.open();
    append_each(&log, 0, n);
    drop(log);
    assert!(env.verify().ok);
    env
}

fn first_bad(report: &VerifyReport) -> &BadRecord {
    assert!(!report.ok, "tampering went unnoticed: {report:?}");
    report
        .first_bad
        .as_ref()
        .expect("ok == false names a record")
}

fn edit_log(env: &Env, f: impl FnOnce(&mut Vec<String>)) {
    let mut lines = read_lines(&env.log_path());
    f(&mut lines);
    write_lines(&env.log_path(), &lines);
}

fn edit_checkpoints(env: &Env, f: impl FnOnce(&mut Vec<String>)) {
    let mut lines = read_lines(&env.cp_path());
    f(&mut lines);
    write_lines(&env.cp_path(), &lines);
}

#[test]
fn modified_field_is_a_hash_mismatch() {
    let env = env_with(6);
    edit_log(&env, |l| {
        l[2] = l[2].replacen("\"rows\":2,", "\"rows\":0,", 1)
    });
    let report = env.verify();
    let bad = first_bad(&report);
    assert_eq!((bad.seq, bad.line), (3, 3));
    assert!(bad.reason.contains("hash"), "{}", bad.reason);
    assert_eq!(report.records, 2);
}

#[test]
fn modified_decision_is_detected() {
    let env = env_with(6);
    edit_log(&env, |l| l[1] = l[1].replacen("\"deny\"", "\"allow\"", 1));
    assert_eq!(first_bad(&env.verify()).seq, 2);
}

#[test]
fn whitespace_edit_is_detected() {
    let env = env_with(4);
    edit_log(&env, |l| l[3] = l[3].replacen(",", ", ", 1));
    assert_eq!(first_bad(&env.verify()).seq, 4);
}

#[test]
fn deleted_record_is_a_seq_gap() {
    let env = env_with(6);
    edit_log(&env, |l| {
        l.remove(3);
    });
    let report = env.verify();
    let bad = first_bad(&report);
    assert_eq!(bad.seq, 4);
    assert!(bad.reason.contains("found seq 5"), "{}", bad.reason);
}

#[test]
fn deleted_first_record_is_detected() {
    let env = env_with(3);
    edit_log(&env, |l| {
        l.remove(0);
    });
    assert_eq!(first_bad(&env.verify()).seq, 1);
}

#[test]
fn deleted_and_renumbered_record_is_a_prev_hash_mismatch() {
    // The attacker deletes record 3 and renumbers the rest, keeping their hashes.
    let env = env_with(5);
    edit_log(&env, |l| {
        l.remove(2);
        for (i, line) in l.iter_mut().enumerate().skip(2) {
            *line = line.replacen(
                &format!("\"seq\":{}", i + 2),
                &format!("\"seq\":{}", i + 1),
                1,
            );
        }
    });
    let bad = first_bad(&env.verify()).clone();
    assert_eq!(bad.seq, 3);
    assert!(bad.reason.contains("prev_hash"), "{}", bad.reason);
}

#[test]
fn inserted_copy_of_a_record_is_detected() {
    let env = env_with(6);
    edit_log(&env, |l| {
        let copy = l[1].clone();
        l.insert(3, copy);
    });
    assert_eq!(first_bad(&env.verify()).seq, 4);
}

#[test]
fn inserted_well_formed_record_is_caught_by_its_checkpoint() {
    // A forged record with the right seq, prev_hash and hash, inserted before record 4:
    // it chains, but the checkpoint signed for seq 4 names another hash.
    let env = env_with(6);
    edit_log(&env, |l| {
        let prev = AuditRecord::from_line(&l[2]).expect("parse");
        let mut forged = AuditRecord {
            seq: 4,
            prev_hash: prev.hash,
            hash: String::new(),
            event: event(99),
        };
        forged.hash = forged.expected_hash().expect("hash");
        l.insert(3, forged.to_line().expect("line"));
    });
    let report = env.verify();
    let bad = first_bad(&report);
    assert_eq!(bad.seq, 4);
    assert!(bad.reason.contains("rewritten"), "{}", bad.reason);
}

#[test]
fn swapped_records_are_detected() {
    let env = env_with(6);
    edit_log(&env, |l| l.swap(1, 4));
    assert_eq!(first_bad(&env.verify()).seq, 2);
}

#[test]
fn swapped_adjacent_records_are_detected() {
    let env = env_with(6);
    edit_log(&env, |l| l.swap(4, 5));
    assert_eq!(first_bad(&env.verify()).seq, 5);
}

#[test]
fn truncated_log_is_caught_by_a_checkpoint_beyond_the_end() {
    let env = env_with(8);
    edit_log(&env, |l| l.truncate(5));
    let report = env.verify();
    let bad = first_bad(&report);
    assert_eq!((bad.seq, bad.line), (6, 6));
    assert!(bad.reason.contains("missing"), "{}", bad.reason);
    assert_eq!(report.records, 5);
}

#[test]
fn emptied_log_is_detected() {
    let env = env_with(3);
    edit_log(&env, Vec::clear);
    assert_eq!(first_bad(&env.verify()).seq, 1);
}

#[test]
fn rewritten_history_differs_from_the_signed_checkpoint() {
    // The attacker replaces record 5 and recomputes every hash after it: the chain is
    // intact, but the checkpoint signed at seq 5 holds the original hash.
    let env = env_with(8);
    edit_log(&env, |l| {
        let mut prev = AuditRecord::from_line(&l[3]).expect("parse").hash;
        for (i, line) in l.iter_mut().enumerate().skip(4) {
            let mut r = AuditRecord::from_line(line).expect("parse");
            if i == 4 {
                r.event.decision = minim_audit::Decision::Allow;
                r.event.reason = None;
            }
            r.prev_hash = prev;
            r.hash = r.expected_hash().expect("hash");
            prev = r.hash.clone();
            *line = r.to_line().expect("line");
        }
    });
    let report = env.verify();
    let bad = first_bad(&report);
    assert_eq!(bad.seq, 5);
    assert_eq!(bad.file, "audit.log");
    assert_eq!(report.records, 8);
}

#[test]
fn checkpoint_hash_differs_from_the_record_at_its_seq() {
    // Records 4.. rewritten and truncated to a different length: the checkpoint at
    // seq 4 disagrees before any seq is missing.
    let env = env_with(8);
    edit_log(&env, |l| {
        l.truncate(3);
        let mut prev = AuditRecord::from_line(&l[2]).expect("parse").hash;
        for seq in 4..=9 {
            let mut r = AuditRecord {
                seq,
                prev_hash: prev,
                hash: String::new(),
                event: event(seq + 100),
            };
            r.hash = r.expected_hash().expect("hash");
            prev = r.hash.clone();
            l.push(r.to_line().expect("line"));
        }
    });
    assert_eq!(first_bad(&env.verify()).seq, 4);
}

#[test]
fn modified_checkpoint_fails_its_signature() {
    let env = env_with(6);
    edit_checkpoints(&env, |l| {
        l[2] = l[2].replacen("\"time_ms\":", "\"time_ms\":1", 1)
    });
    let report = env.verify();
    let bad = first_bad(&report);
    assert_eq!(
        (bad.seq, bad.line, bad.file.as_str()),
        (3, 3, "checkpoints.log")
    );
    assert!(bad.reason.contains("signature"), "{}", bad.reason);
}

#[test]
fn forged_checkpoint_hash_fails_its_signature() {
    // The attacker rewrites record 6 and fixes the last checkpoint's hash to match.
    let env = env_with(6);
    let mut new_hash = String::new();
    edit_log(&env, |l| {
        let mut r = AuditRecord::from_line(&l[5]).expect("parse");
        r.event.rows = 0;
        r.hash = r.expected_hash().expect("hash");
        new_hash = r.hash.clone();
        l[5] = r.to_line().expect("line");
    });
    edit_checkpoints(&env, |l| {
        let mut v: serde_json::Value = serde_json::from_str(&l[5]).expect("json");
        v["hash"] = new_hash.clone().into();
        l[5] = serde_json::to_string(&v).expect("json");
    });
    let report = env.verify();
    let bad = first_bad(&report);
    assert_eq!(bad.seq, 6);
    assert_eq!(bad.file, "checkpoints.log");
}

#[test]
fn checkpoint_signed_with_another_key_is_named_as_such() {
    let env = env_with(3);
    let other_keys = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(AuditConfig {
        signing_key_path: other_keys.path().join("other.key"),
        ..env.cfg()
    })
    .expect("open");
    append_each(&log, 3, 5);
    drop(log);
    let report = env.verify();
    let bad = first_bad(&report);
    assert_eq!(
        (bad.seq, bad.line, bad.file.as_str()),
        (4, 4, "checkpoints.log")
    );
    assert!(bad.reason.contains("another key"), "{}", bad.reason);
}

#[test]
fn reordered_checkpoints_are_detected() {
    let env = env_with(5);
    edit_checkpoints(&env, |l| l.swap(1, 3));
    let bad = first_bad(&env.verify()).clone();
    assert_eq!(bad.file, "checkpoints.log");
    assert_eq!(bad.seq, 2);
}

#[test]
fn garbage_line_in_the_middle_is_detected() {
    let env = env_with(5);
    edit_log(&env, |l| l.insert(2, "hello".into()));
    let bad = first_bad(&env.verify()).clone();
    assert_eq!((bad.seq, bad.line), (3, 3));
}

#[test]
fn garbage_after_the_last_record_is_detected() {
    let env = env_with(5);
    edit_log(&env, |l| l.push("{}".into()));
    assert_eq!(first_bad(&env.verify()).seq, 6);
}

#[test]
fn empty_line_is_detected() {
    let env = env_with(5);
    edit_log(&env, |l| l.insert(5, String::new()));
    assert_eq!(first_bad(&env.verify()).seq, 6);
}

#[test]
fn unfinished_last_line_is_reported_by_verify() {
    let env = env_with(5);
    let mut bytes = std::fs::read(env.log_path()).expect("read");
    bytes.truncate(bytes.len() - 20);
    std::fs::write(env.log_path(), bytes).expect("write");
    let bad = first_bad(&env.verify()).clone();
    assert_eq!(bad.seq, 5);
    assert!(bad.reason.contains("unfinished"), "{}", bad.reason);
}

#[test]
fn garbage_checkpoint_line_is_detected() {
    let env = env_with(5);
    edit_checkpoints(&env, |l| l[3] = "garbage".into());
    let bad = first_bad(&env.verify()).clone();
    assert_eq!(
        (bad.seq, bad.line, bad.file.as_str()),
        (3, 4, "checkpoints.log")
    );
}

#[test]
fn the_lowest_seq_problem_wins() {
    let env = env_with(8);
    edit_checkpoints(&env, |l| l[6] = "garbage".into());
    edit_log(&env, |l| {
        l[2] = l[2].replacen("\"rows\":2,", "\"rows\":9,", 1)
    });
    let bad = first_bad(&env.verify()).clone();
    assert_eq!((bad.seq, bad.file.as_str()), (3, "audit.log"));
}

#[test]
fn consistent_cut_of_both_files_is_not_detectable_without_a_mirror() {
    // Documented limitation: cutting the log and its checkpoints back together leaves
    // a shorter, valid history. `mirror.rs` shows the mirror catching it.
    let env = env_with(6);
    edit_log(&env, |l| l.truncate(4));
    edit_checkpoints(&env, |l| l.truncate(4));
    let report = env.verify();
    assert!(report.ok);
    assert_eq!(report.records, 4);
}

#[test]
fn wrong_verification_key_fails_every_checkpoint() {
    let env = env_with(2);
    let other = tempfile::tempdir().expect("tempdir");
    let key = other.path().join("k");
    minim_audit::load_or_create_signing_key(&key).expect("key");
    let report = minim_audit::verify(&env.dir(), &key).expect("verify runs");
    assert_eq!(first_bad(&report).seq, 1);
    assert_eq!(report.checkpoints, 0);
}

#[test]
fn verify_uses_the_pub_file_when_the_private_key_is_absent() {
    let env = env_with(3);
    std::fs::remove_file(env.key()).expect("rm");
    let report = env.verify();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.checkpoints, 3);
}

#[test]
fn a_cut_under_a_running_writer_is_still_reported() {
    // The log is cut while a writer has it open; the writer continues from the new end
    // (logging an ERROR), and the checkpoints signed before the cut expose it.
    let env = Env::new();
    let log = env.open();
    append_each(&log, 0, 5);
    edit_log(&env, |l| l.truncate(3));
    assert_eq!(log.append_one(event(50)).expect("append"), 4);
    drop(log);
    let bad = first_bad(&env.verify()).clone();
    assert_eq!(bad.seq, 4);
    assert!(bad.reason.contains("rewritten"), "{}", bad.reason);
}
