//! Arbitrary bytes in the log files: verify, open and query must answer (never panic),
//! and anything non-empty that is not a valid history fails verification.

mod common;

use common::{Env, append_each};
use minim_audit::{AuditError, AuditLog, AuditRecord, Filter};
use proptest::prelude::*;

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        // Mostly-JSON noise reaches deeper into the decoders.
        proptest::collection::vec(
            prop_oneof![
                Just(b'{'),
                Just(b'}'),
                Just(b'"'),
                Just(b':'),
                Just(b','),
                Just(b'\n'),
                Just(b'1'),
                Just(b'v'),
                Just(b'a'),
                Just(b'\\'),
            ],
            0..600
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_files_never_panic(log in bytes(), cps in bytes(), keep in 0usize..3) {
        let env = Env::new();
        append_each(&env.open(), 0, keep as u64);
        let mut real = std::fs::read(env.log_path()).expect("read");
        real.extend_from_slice(&log);
        std::fs::write(env.log_path(), &real).expect("write");
        let mut real_cps = std::fs::read(env.cp_path()).expect("read");
        real_cps.extend_from_slice(&cps);
        std::fs::write(env.cp_path(), &real_cps).expect("write");

        let report = env.verify();
        if !log.is_empty() || !cps.is_empty() {
            prop_assert!(!report.ok, "noise accepted: {:?}", report);
        }
        match AuditLog::open(env.cfg()) {
            Ok(l) => {
                l.query(&Filter::default(), 10).expect("query");
            }
            Err(AuditError::Corrupt { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }

    #[test]
    fn record_lines_never_panic(line in ".{0,300}") {
        let _ = AuditRecord::from_line(&line);
    }
}
