//! Old on-disk files still read: a data directory written by format version 1 (WAL,
//! manifest, segments) is committed under `tests/fixtures/v1` and must open and return
//! exactly the events it was written with. Regenerate only for a deliberate new
//! version: `MINIM_REGENERATE_FIXTURES=1 cargo test -p minim-store --test format_compat`.

use std::path::{Path, PathBuf};

use minim_core::{Event, EventBatch, ProjectId};
use minim_store::{Store, StoreConfig};

fn events(range: std::ops::Range<u32>) -> Vec<Event> {
    range
        .map(|i| Event {
            timestamp_ms: 1_767_225_600_000 + i64::from(i) * 3_600_000,
            event: ["signup", "login", "$pageview"][i as usize % 3].to_owned(),
            distinct_id: format!("user-{}", i % 4),
            insert_id: (i % 5 != 0).then(|| format!("ins-{i}")),
            properties: format!(r#"{{"i":{i},"plan":"pro","s":"é ✓"}}"#),
            received_at_ms: 1_767_225_600_000,
        })
        .collect()
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn version_1_data_directory_still_reads() {
    let project = ProjectId::new("p_fixture").unwrap();
    if std::env::var_os("MINIM_REGENERATE_FIXTURES").is_some() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = StoreConfig {
            data_dir: tmp.path().to_path_buf(),
            ..StoreConfig::default()
        };
        let store = Store::open(cfg).unwrap();
        store
            .append_blocking(EventBatch {
                project: project.clone(),
                events: events(0..40),
            })
            .unwrap();
        store.flush().unwrap(); // segments + manifest
        store
            .append_blocking(EventBatch {
                project: project.clone(),
                events: events(40..60),
            })
            .unwrap();
        // Copy while the last batch is only in the WAL.
        let _ = std::fs::remove_dir_all(fixture());
        copy_dir(tmp.path(), &fixture());
        store.shutdown().unwrap();
    }
    assert!(fixture().join("manifest.json").is_file(), "fixture missing");
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), tmp.path());
    let store = Store::open(StoreConfig {
        data_dir: tmp.path().to_path_buf(),
        ..StoreConfig::default()
    })
    .unwrap();
    let snap = store.snapshot();
    assert!(!snap.segments.is_empty(), "fixture has segments");
    assert!(!snap.memtable.is_empty(), "fixture has WAL-only events");
    let mut got = snap.events(&project).unwrap();
    got.sort_by_key(|e| e.timestamp_ms);
    assert_eq!(got, events(0..60));
}
