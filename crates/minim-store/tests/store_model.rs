//! The store against a reference model: random appends (with repeated insert ids),
//! flushes, compactions and reopenings; after every step the visible events equal the
//! model's, and every stored insert id appears exactly once.

use std::collections::BTreeMap;

use minim_core::{Event, EventBatch, ProjectId, time::MS_PER_DAY};
use minim_store::{Health, Store, StoreConfig, StoreError};
use proptest::prelude::*;

const BASE_MS: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn cfg(dir: &std::path::Path) -> StoreConfig {
    StoreConfig {
        data_dir: dir.to_path_buf(),
        memtable_max_bytes: 64 << 10,
        compaction_min_segments: 2,
        compaction_interval_ms: 3_600_000, // driven explicitly by the test
        flush_interval_ms: 3_600_000,
        ..StoreConfig::default()
    }
}

fn ev(id: u32, day: i64, user: u32) -> Event {
    Event {
        timestamp_ms: BASE_MS + day * MS_PER_DAY + i64::from(id) * 1000,
        event: format!("e{}", id % 5),
        distinct_id: format!("u{user}"),
        insert_id: Some(format!("id-{id}")),
        properties: format!(r#"{{"n":{id}}}"#),
        personal: None,
        received_at_ms: BASE_MS,
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append(String, Vec<(u32, i64, u32)>),
    Flush,
    Compact,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (prop_oneof![Just("pa".to_owned()), Just("pb".to_owned())],
              proptest::collection::vec((0u32..120, 0i64..3, 0u32..6), 1..20))
            .prop_map(|(p, evs)| Op::Append(p, evs)),
        1 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

fn visible(store: &Store) -> BTreeMap<(String, String), Event> {
    let snap = store.snapshot();
    let mut out = BTreeMap::new();
    for p in snap.projects() {
        for e in snap.events(&p).unwrap() {
            let key = (p.to_string(), e.insert_id.clone().unwrap());
            assert!(out.insert(key, e).is_none(), "an insert id is stored twice");
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn store_matches_reference_model(ops in proptest::collection::vec(op(), 1..25)) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(cfg(dir.path())).unwrap();
        let mut model: BTreeMap<(String, String), Event> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Append(p, evs) => {
                    let events: Vec<Event> = evs.iter().map(|&(id, d, u)| ev(id, d, u)).collect();
                    let mut fresh = 0;
                    for e in &events {
                        let key = (p.clone(), e.insert_id.clone().unwrap());
                        if let std::collections::btree_map::Entry::Vacant(v) = model.entry(key) {
                            v.insert(e.clone());
                            fresh += 1;
                        }
                    }
                    let out = store
                        .append_blocking(EventBatch { project: ProjectId::new(p).unwrap(), events: events.clone() })
                        .unwrap();
                    prop_assert_eq!(out.stored, fresh);
                    prop_assert_eq!(out.stored + out.duplicates, events.len());
                }
                Op::Flush => store.flush().unwrap(),
                Op::Compact => { store.compact_now().unwrap(); }
                Op::Reopen => {
                    store.shutdown().unwrap();
                    drop(store);
                    store = Store::open(cfg(dir.path())).unwrap();
                }
            }
            prop_assert_eq!(&visible(&store), &model);
        }
    }
}

#[test]
fn second_open_of_a_held_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _a = Store::open(cfg(dir.path())).unwrap();
    assert!(matches!(
        Store::open(cfg(dir.path())),
        Err(StoreError::Locked(_))
    ));
}

#[test]
fn unflushed_events_survive_a_restart_via_wal_replay() {
    let dir = tempfile::tempdir().unwrap();
    let p = ProjectId::new("p").unwrap();
    {
        let store = Store::open(cfg(dir.path())).unwrap();
        store
            .append_blocking(EventBatch {
                project: p.clone(),
                events: (0..10).map(|i| ev(i, 0, 1)).collect(),
            })
            .unwrap();
        // Simulate a crash: the threads stop without a final flush.
        let snap = store.snapshot();
        assert_eq!(snap.rows(), 10);
        assert!(snap.segments.is_empty());
        std::mem::drop(snap);
        // Shutdown flushes; to test replay, copy the directory before shutdown instead.
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let reopened = Store::open(cfg(copy.path())).unwrap();
        assert_eq!(reopened.snapshot().rows(), 10);
        assert!(
            reopened.snapshot().segments.is_empty(),
            "replayed into the memtable"
        );
        // Replay remembered the ids: a retry is deduplicated.
        let out = reopened
            .append_blocking(EventBatch {
                project: p.clone(),
                events: (0..10).map(|i| ev(i, 0, 1)).collect(),
            })
            .unwrap();
        assert_eq!((out.stored, out.duplicates), (0, 10));
    }
}

#[test]
fn failed_fsync_refuses_writes_reports_unready_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let faults = c.faults.clone();
    let store = Store::open(c).unwrap();
    let p = ProjectId::new("p").unwrap();
    store
        .append_blocking(EventBatch {
            project: p.clone(),
            events: vec![ev(1, 0, 1)],
        })
        .unwrap();
    faults.set_fail_wal_sync(true);
    let err = store
        .append_blocking(EventBatch {
            project: p.clone(),
            events: vec![ev(2, 0, 1)],
        })
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(matches!(store.health(), Health::Unready(_)));
    // Still failing: nothing is acknowledged.
    std::thread::sleep(std::time::Duration::from_millis(1200));
    assert!(
        store
            .append_blocking(EventBatch {
                project: p.clone(),
                events: vec![ev(3, 0, 1)]
            })
            .is_err()
    );
    faults.set_fail_wal_sync(false);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while store.health() != Health::Ready {
        assert!(
            std::time::Instant::now() < deadline,
            "store did not recover"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The failed event was never acknowledged, so its retry is stored.
    let out = store
        .append_blocking(EventBatch {
            project: p.clone(),
            events: vec![ev(2, 0, 1)],
        })
        .unwrap();
    assert_eq!(out.stored, 1);
    store.shutdown().unwrap();
    drop(store);
    let store = Store::open(cfg(dir.path())).unwrap();
    let ids: Vec<String> = store
        .snapshot()
        .events(&p)
        .unwrap()
        .into_iter()
        .filter_map(|e| e.insert_id)
        .collect::<Vec<_>>();
    assert!(ids.contains(&"id-1".to_owned()) && ids.contains(&"id-2".to_owned()));
    assert_eq!(ids.iter().filter(|i| *i == "id-2").count(), 1);
}

#[test]
fn failed_flush_keeps_data_and_reports_unready() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let faults = c.faults.clone();
    let store = Store::open(c).unwrap();
    let p = ProjectId::new("p").unwrap();
    store
        .append_blocking(EventBatch {
            project: p.clone(),
            events: (0..5).map(|i| ev(i, 0, 1)).collect(),
        })
        .unwrap();
    faults.set_fail_flush(true);
    assert!(store.flush().is_err());
    assert!(matches!(store.health(), Health::Unready(_)));
    assert_eq!(store.snapshot().rows(), 5, "frozen memtable stays readable");
    faults.set_fail_flush(false);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while store.health() != Health::Ready {
        assert!(
            std::time::Instant::now() < deadline,
            "flush did not recover"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let snap = store.snapshot();
    assert_eq!(snap.rows(), 5);
    assert_eq!(snap.segments.len(), 1);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
