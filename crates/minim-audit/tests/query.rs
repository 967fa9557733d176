//! Queries: newest first, filters ANDed, cursor paging, checked against a naive model.

mod common;

use common::{Env, event, read_lines, write_lines};
use minim_audit::{AuditRecord, Decision, Filter};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn all_records(env: &Env) -> Vec<AuditRecord> {
    read_lines(&env.log_path())
        .iter()
        .map(|l| AuditRecord::from_line(l).expect("parse"))
        .collect()
}

#[test]
fn filters_are_anded_and_results_newest_first() {
    let env = Env::new();
    let log = env.open();
    log.append((0..30).map(event).collect()).expect("append");
    let f = Filter {
        principal: Some("usr_1".into()),
        action: Some("login".into()),
        ..Filter::default()
    };
    let got = log.query(&f, 100).expect("query");
    assert_eq!(
        got.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![29, 26, 23, 20, 17, 14, 11, 8, 5, 2]
    );
    assert!(got.iter().all(|r| r.event.decision == Decision::Deny));
    let none = Filter {
        decision: Some(Decision::Allow),
        ..f
    };
    assert!(log.query(&none, 100).expect("query").is_empty());
    let window = Filter {
        from_ms: Some(event(10).time_ms),
        to_ms: Some(event(13).time_ms),
        ..Filter::default()
    };
    let got = log.query(&window, 100).expect("query");
    assert_eq!(
        got.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![13, 12, 11]
    );
    assert_eq!(log.query(&Filter::default(), 0).expect("query"), vec![]);
}

#[test]
fn cursor_pages_through_everything_once() {
    let env = Env::new();
    let log = env.open();
    log.append((0..257).map(event).collect()).expect("append");
    let mut seen = Vec::new();
    let mut f = Filter::default();
    loop {
        let page = log.query(&f, 50).expect("query");
        let Some(last) = page.last() else { break };
        f.before_seq = Some(last.seq);
        seen.extend(page.iter().map(|r| r.seq));
    }
    assert_eq!(seen, (1..=257).rev().collect::<Vec<_>>());
}

#[test]
fn query_skips_lines_that_are_not_records() {
    let env = Env::new();
    let log = env.open();
    log.append((0..5).map(event).collect()).expect("append");
    let mut lines = read_lines(&env.log_path());
    lines.insert(2, "garbage".into());
    write_lines(&env.log_path(), &lines);
    let got = log.query(&Filter::default(), 10).expect("query");
    assert_eq!(got.len(), 5);
}

#[test]
fn query_matches_a_naive_model() {
    let env = Env::new();
    let log = env.open();
    for chunk in (0..600u64).collect::<Vec<_>>().chunks(97) {
        log.append(chunk.iter().map(|&i| event(i * 7 % 600)).collect())
            .expect("append");
    }
    let records = all_records(&env);
    let filter = (
        proptest::option::of(0u64..4),
        proptest::option::of(0usize..3),
        proptest::option::of(0u64..3),
        proptest::option::of(0usize..3),
        proptest::option::of(0i64..700),
        proptest::option::of(0i64..700),
        proptest::option::of(0u64..700),
        0usize..80,
    );
    let mut runner = TestRunner::new(Config {
        cases: 200,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&filter, |(p, a, r, d, from, to, before, limit)| {
            let base = event(0).time_ms;
            let f = Filter {
                principal: p.map(|p| format!("usr_{p}")),
                action: a.map(|a| ["query_aggregate", "login", "budget_trip"][a].to_owned()),
                resource: r.map(|r| format!("project:prj_{r}")),
                decision: d.map(|d| [Decision::Allow, Decision::Deny, Decision::Error][d]),
                from_ms: from.map(|t| base + t * 1000),
                to_ms: to.map(|t| base + t * 1000),
                before_seq: before,
            };
            // The model: the plain reading of each field, independent of `Filter::matches`.
            let keep = |r: &&AuditRecord| {
                let e = &r.event;
                f.principal.as_ref().is_none_or(|x| *x == e.principal)
                    && f.action.as_ref().is_none_or(|x| *x == e.action)
                    && f.resource.as_ref().is_none_or(|x| *x == e.resource)
                    && f.decision.is_none_or(|x| x == e.decision)
                    && f.from_ms.is_none_or(|x| e.time_ms >= x)
                    && f.to_ms.is_none_or(|x| e.time_ms < x)
                    && f.before_seq.is_none_or(|x| r.seq < x)
            };
            let want: Vec<AuditRecord> = records
                .iter()
                .rev()
                .filter(keep)
                .take(limit)
                .cloned()
                .collect();
            let got = log.query(&f, limit).expect("query");
            prop_assert_eq!(got, want);
            Ok(())
        })
        .expect("query agrees with the model");
}
