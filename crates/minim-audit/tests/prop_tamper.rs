//! Property: after random appends, any one random mutation makes `verify` fail and name
//! the first affected seq; with no mutation it always passes.

mod common;

use common::{Env, event, read_lines, write_lines};
use minim_audit::{AuditRecord, Decision};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Mutation {
    None,
    ModifyField { at: usize, field: u8 },
    Delete { at: usize },
    InsertCopy { at: usize, of: usize },
    Swap { a: usize, b: usize },
    Truncate { keep: usize },
    Garbage { at: usize, replace: bool },
    TornTail { cut: usize },
    RewriteFrom { at: usize },
    BadSignature { at: usize, pos: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let i = || 0usize..1000;
    prop_oneof![
        Just(Mutation::None),
        (i(), 0u8..5).prop_map(|(at, field)| Mutation::ModifyField { at, field }),
        i().prop_map(|at| Mutation::Delete { at }),
        (i(), i()).prop_map(|(at, of)| Mutation::InsertCopy { at, of }),
        (i(), i()).prop_map(|(a, b)| Mutation::Swap { a, b }),
        i().prop_map(|keep| Mutation::Truncate { keep }),
        (i(), any::<bool>()).prop_map(|(at, replace)| Mutation::Garbage { at, replace }),
        i().prop_map(|cut| Mutation::TornTail { cut }),
        i().prop_map(|at| Mutation::RewriteFrom { at }),
        (i(), i()).prop_map(|(at, pos)| Mutation::BadSignature { at, pos }),
    ]
}

/// What verify must name: a seq, and which file.
#[derive(Debug, PartialEq)]
enum Expect {
    Ok,
    Bad(u64, &'static str),
    /// The mutation turned out to be a no-op (e.g. swapping a record with itself).
    Skip,
}

/// The first 1-based position where `new` differs from `old` (a strict prefix differs
/// at its end).
fn first_difference(old: &[String], new: &[String]) -> Option<u64> {
    let same = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    (same < old.len().max(new.len())).then_some(same as u64 + 1)
}

fn modify(line: &str, field: u8) -> String {
    let mut r = AuditRecord::from_line(line).expect("parse");
    let e = &mut r.event;
    match field {
        0 => e.rows += 1,
        1 => e.principal.push('x'),
        2 => {
            e.decision = match e.decision {
                Decision::Allow => Decision::Deny,
                _ => Decision::Allow,
            }
        }
        3 => e.request_id = Some(format!("{}x", e.request_id.clone().unwrap_or_default())),
        _ => e.time_ms -= 1,
    }
    r.to_line().expect("line")
}

/// Applies `m` to the files and returns what verify must say.
fn apply(env: &Env, m: &Mutation, group_ends: &[u64]) -> Expect {
    let orig = read_lines(&env.log_path());
    let n = orig.len();
    let mut lines = orig.clone();
    match *m {
        Mutation::None => return Expect::Ok,
        Mutation::ModifyField { at, field } => {
            let at = at % n;
            lines[at] = modify(&lines[at], field);
        }
        Mutation::Delete { at } => {
            lines.remove(at % n);
        }
        Mutation::InsertCopy { at, of } => {
            let copy = lines[of % n].clone();
            lines.insert(at % (n + 1), copy);
        }
        Mutation::Swap { a, b } => lines.swap(a % n, b % n),
        Mutation::Truncate { keep } => lines.truncate(keep % n),
        Mutation::Garbage { at, replace } => {
            if replace {
                lines[at % n] = "{\"v\":1}".into();
            } else {
                lines.insert(at % (n + 1), "garbage".into());
            }
        }
        Mutation::TornTail { cut } => {
            let mut bytes = std::fs::read(env.log_path()).expect("read");
            let last_len = orig[n - 1].len() + 1;
            bytes.truncate(bytes.len() - (1 + cut % (last_len - 1)));
            std::fs::write(env.log_path(), bytes).expect("write");
            return Expect::Bad(n as u64, "audit.log");
        }
        Mutation::RewriteFrom { at } => {
            let at = at % n;
            let mut prev = if at == 0 {
                minim_audit::GENESIS_HASH.to_owned()
            } else {
                AuditRecord::from_line(&lines[at - 1]).expect("parse").hash
            };
            for (i, line) in lines.iter_mut().enumerate().skip(at) {
                let mut r = AuditRecord::from_line(&if i == at {
                    modify(line, 0)
                } else {
                    line.clone()
                })
                .expect("parse");
                r.prev_hash = prev;
                r.hash = r.expected_hash().expect("hash");
                prev = r.hash.clone();
                *line = r.to_line().expect("line");
            }
            write_lines(&env.log_path(), &lines);
            // The chain holds; the first checkpoint at or after the change disagrees, and
            // everything after the previous checkpoint is suspect.
            let seq = at as u64 + 1;
            let from = group_ends
                .iter()
                .copied()
                .filter(|&e| e < seq)
                .max()
                .unwrap_or(0)
                + 1;
            return Expect::Bad(from, "audit.log");
        }
        Mutation::BadSignature { at, pos } => {
            let mut cps = read_lines(&env.cp_path());
            let at = at % cps.len();
            let mut v: serde_json::Value = serde_json::from_str(&cps[at]).expect("json");
            let seq = v["seq"].as_u64().expect("seq");
            let mut sig: Vec<u8> = v["signature"].as_str().expect("sig").bytes().collect();
            let p = pos % sig.len();
            sig[p] = if sig[p] == b'0' { b'1' } else { b'0' };
            v["signature"] = String::from_utf8(sig).expect("utf8").into();
            cps[at] = serde_json::to_string(&v).expect("json");
            write_lines(&env.cp_path(), &cps);
            return Expect::Bad(seq, "checkpoints.log");
        }
    }
    let Some(pos) = first_difference(&orig, &lines) else {
        return Expect::Skip;
    };
    write_lines(&env.log_path(), &lines);
    Expect::Bad(pos, "audit.log")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn verify_names_the_first_affected_seq(
        groups in proptest::collection::vec(1usize..4, 1..7),
        m in mutation(),
    ) {
        let env = Env::new();
        let log = env.open();
        let mut next = 0u64;
        let mut group_ends = Vec::new();
        for g in &groups {
            let events: Vec<_> = (next..next + *g as u64).map(event).collect();
            log.append(events).expect("append");
            next += *g as u64;
            group_ends.push(next);
        }
        drop(log);
        let expect = apply(&env, &m, &group_ends);
        prop_assume!(expect != Expect::Skip);
        let report = env.verify();
        match expect {
            Expect::Ok => {
                prop_assert!(report.ok, "{:?}", report);
                prop_assert_eq!(report.records, next);
                prop_assert_eq!(report.checkpoints, groups.len() as u64);
            }
            Expect::Bad(seq, file) => {
                prop_assert!(!report.ok, "undetected {:?}", m);
                let bad = report.first_bad.expect("named");
                prop_assert_eq!((bad.seq, bad.file.as_str()), (seq, file), "{:?}: {}", m, bad.reason);
            }
            Expect::Skip => {}
        }
    }
}
