//! Old on-disk files still read: a data directory written by format version 1 (WAL,
//! manifest, segments) is committed under `tests/fixtures/v1` and must open and return
//! exactly the events it was written with. Regenerate only for a deliberate new
//! version: `MINIM_REGENERATE_FIXTURES=1 cargo test -p minim-store --test format_compat`.
//!
//! The manifest's `pending_erasures` field came after the fixture: a v1 manifest
//! without it reads as "none pending", and one with it completes the erasure on open.

use std::path::{Path, PathBuf};

use minim_core::time::{Clock, MS_PER_DAY};
use minim_core::{Event, EventBatch, ProjectId};
use minim_store::{ErasureReport, RetentionPolicy, Store, StoreConfig};

fn events(range: std::ops::Range<u32>) -> Vec<Event> {
    range
        .map(|i| Event {
            timestamp_ms: 1_767_225_600_000 + i64::from(i) * 3_600_000,
            event: ["signup", "login", "$pageview"][i as usize % 3].to_owned(),
            distinct_id: format!("user-{}", i % 4),
            insert_id: (i % 5 != 0).then(|| format!("ins-{i}")),
            properties: format!(r#"{{"i":{i},"plan":"pro","s":"é ✓"}}"#),
            personal: None,
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

/// A copy of the fixture, opened.
fn open_copy(tmp: &Path, clock: Clock) -> Store {
    copy_dir(&fixture(), tmp);
    Store::open(StoreConfig {
        data_dir: tmp.to_path_buf(),
        clock,
        ..StoreConfig::default()
    })
    .unwrap()
}

fn sorted(mut v: Vec<Event>) -> Vec<Event> {
    v.sort_by_key(|e| e.timestamp_ms);
    v
}

#[test]
fn version_1_manifest_with_a_pending_erasure_completes_it_on_open() {
    let project = ProjectId::new("p_fixture").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), tmp.path());
    let path = tmp.path().join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(manifest.get("pending_erasures").is_none());
    manifest["pending_erasures"] =
        serde_json::json!([{"project": "p_fixture", "distinct_id": "user-1"}]);
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();

    let store = Store::open(StoreConfig {
        data_dir: tmp.path().to_path_buf(),
        ..StoreConfig::default()
    })
    .unwrap();
    let want: Vec<Event> = events(0..60)
        .into_iter()
        .filter(|e| e.distinct_id != "user-1")
        .collect();
    assert_eq!(sorted(store.snapshot().events(&project).unwrap()), want);
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(
        !written.contains("pending_erasures") && !written.contains("user-1"),
        "a completed erasure leaves the manifest as an older reader expects"
    );
}

#[test]
fn version_1_data_directory_supports_erasure_and_retention() {
    let project = ProjectId::new("p_fixture").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // 2026-01-03 12:00 UTC: the fixture's events are on 2026-01-01 to 2026-01-03.
    let clock = Clock::manual(1_767_225_600_000 + 2 * MS_PER_DAY + MS_PER_DAY / 2);
    let store = open_copy(tmp.path(), clock);
    let report = store.erase_user(&project, "user-2").unwrap();
    assert_eq!(report.events_erased, 15);
    assert_ne!(report, ErasureReport::default());
    let mut policy = RetentionPolicy::default();
    policy.properties.insert("s".into(), 1);
    let retention = store.apply_retention(&project, &policy).unwrap();
    let want: Vec<Event> = events(0..60)
        .into_iter()
        .filter(|e| e.distinct_id != "user-2")
        .map(|e| {
            if e.timestamp_ms < 1_767_225_600_000 + MS_PER_DAY {
                // `"s":"é ✓"` was last: the rest is byte-identical.
                let props = e.properties.replace(r#","s":"é ✓""#, "");
                Event {
                    properties: props,
                    ..e
                }
            } else {
                e
            }
        })
        .collect();
    assert_eq!(
        retention.properties_removed,
        want.iter()
            .filter(|e| !e.properties.contains(r#""s""#))
            .count() as u64
    );
    assert_eq!(sorted(store.snapshot().events(&project).unwrap()), want);
}
