//! Old files still read: a v1 log and checkpoint file kept in `tests/data/v1` must
//! verify (with only the public key), and writing the same events today must produce
//! the same bytes. Regenerate with `MINIM_AUDIT_BLESS=1` only for a deliberate new
//! format version (which then gets its own directory).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{Env, event};
use minim_audit::{AuditConfig, AuditLog, Filter, public_key_path};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1")
}

/// Writes the v1 fixture's content into `dir` with a fixed key and clock.
fn write_fixture(dir: &Path, key: &Path) {
    std::fs::write(key, format!("{}\n", "07".repeat(32))).expect("key");
    let log = AuditLog::open_with_clock(
        AuditConfig {
            dir: dir.to_owned(),
            signing_key_path: key.to_owned(),
            checkpoint_interval_ms: 0,
            mirror: None,
        },
        Arc::new(|| 1_700_000_999_000),
    )
    .expect("open");
    log.append(vec![event(0), event(1)]).expect("append");
    log.append_one(event(2)).expect("append");
}

#[test]
fn v1_fixture_verifies_with_the_public_key_alone() {
    let dir = fixture();
    let report = minim_audit::verify(&dir, &dir.join("audit.key")).expect("verify runs");
    assert!(report.ok, "{report:?}");
    assert_eq!((report.records, report.checkpoints), (3, 2));
    let rec = minim_audit::AuditRecord::from_line(
        std::fs::read_to_string(dir.join("audit.log"))
            .expect("read")
            .lines()
            .next()
            .expect("line"),
    )
    .expect("parses");
    assert_eq!(rec.event, event(0));
}

#[test]
fn writing_the_fixture_today_gives_the_same_bytes() {
    let env = Env::new();
    let key = env.keys.path().join("audit.key");
    write_fixture(&env.dir(), &key);
    let pub_key = minim_audit::public_key_hex(&minim_audit::load_verifying_key(&key).expect("vk"));
    if std::env::var_os("MINIM_AUDIT_BLESS").is_some() {
        let out = fixture();
        std::fs::create_dir_all(&out).expect("mkdir");
        for f in ["audit.log", "checkpoints.log"] {
            std::fs::copy(env.dir().join(f), out.join(f)).expect("copy");
        }
        std::fs::write(
            public_key_path(&out.join("audit.key")),
            format!("{pub_key}\n"),
        )
        .expect("pub");
    }
    for f in ["audit.log", "checkpoints.log"] {
        assert_eq!(
            std::fs::read(env.dir().join(f)).expect("new"),
            std::fs::read(fixture().join(f)).expect("fixture"),
            "{f} changed: the v1 format must stay as it is"
        );
    }
    let log = AuditLog::open(AuditConfig {
        dir: env.dir(),
        signing_key_path: key,
        checkpoint_interval_ms: 0,
        mirror: None,
    })
    .expect("reopen");
    assert_eq!(log.query(&Filter::default(), 10).expect("query").len(), 3);
}
