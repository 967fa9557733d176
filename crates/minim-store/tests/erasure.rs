//! `Store::erase_user` against a reference model: random events of several users,
//! days and projects, spread over compacted segments, flushed segments and the
//! memtable/WAL; after erasing one user of one project the visible events equal the
//! model without them, and no byte of any file under the data directory (WAL, segments,
//! manifest) holds the erased distinct id, also after reopening. Then crash safety:
//! an erasure interrupted at every injection point completes on open, and nobody else
//! loses an event.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minim_core::{Event, EventBatch, ProjectId, time::MS_PER_DAY};
use minim_store::segment::{COL_DISTINCT_ID, read_segment};
use minim_store::{ErasureFault, ErasureReport, Store, StoreConfig};
use proptest::prelude::*;

const BASE_MS: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn cfg(dir: &Path) -> StoreConfig {
    StoreConfig {
        data_dir: dir.to_path_buf(),
        memtable_max_bytes: 64 << 10,
        compaction_min_segments: 2,
        compaction_interval_ms: 3_600_000, // driven explicitly by the tests
        flush_interval_ms: 3_600_000,
        ..StoreConfig::default()
    }
}

fn ev(id: u32, day: i64, user: &str) -> Event {
    Event {
        timestamp_ms: BASE_MS + day * MS_PER_DAY + i64::from(id) * 1000,
        event: format!("e{}", id % 3),
        distinct_id: user.to_owned(),
        insert_id: Some(format!("id-{id}")),
        properties: format!(r#"{{"n":{id},"plan":"pro"}}"#),
        personal: None,
        received_at_ms: BASE_MS,
    }
}

/// (project, insert_id) -> event: what the store must show.
type Model = BTreeMap<(String, String), Event>;

fn visible(store: &Store) -> Model {
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

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            out.extend(files_under(&entry.path()));
        } else {
            out.push(entry.path());
        }
    }
    out
}

/// Files under `dir` (but those under `except`) that hold `needle`: as raw bytes, or,
/// for segments, in the `distinct_id` column (Parquet may compress it).
fn files_holding(dir: &Path, needle: &str, except: Option<&Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for file in files_under(dir) {
        if except.is_some_and(|e| file.starts_with(e)) {
            continue;
        }
        let bytes = std::fs::read(&file).unwrap();
        let mut found = bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
        if file.extension().is_some_and(|x| x == "parquet") {
            for b in read_segment(&file, Some(&[COL_DISTINCT_ID]), None).unwrap() {
                let ids = b
                    .column(0)
                    .as_any()
                    .downcast_ref::<arrow::array::StringArray>()
                    .unwrap();
                found |= ids.iter().any(|v| v == Some(needle));
            }
        }
        if found {
            out.push(file);
        }
    }
    out
}

fn assert_absent(dir: &Path, needle: &str, except: Option<&Path>) {
    let left = files_holding(dir, needle, except);
    assert!(
        left.is_empty(),
        "still holding the erased distinct id: {left:?}"
    );
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

fn pending_in_manifest(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("manifest.json"))
        .unwrap()
        .contains("pending_erasures")
}

#[derive(Debug, Clone)]
enum Op {
    /// (project, [(user index, day)]); user index 3 is the user to erase.
    Append(&'static str, Vec<(usize, i64)>),
    Flush,
    Compact,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (prop_oneof![Just("pa"), Just("pb")],
              proptest::collection::vec((0usize..4, 0i64..4), 1..15))
            .prop_map(|(p, evs)| Op::Append(p, evs)),
        2 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn erasure_matches_model_and_leaves_no_byte_behind(
        ops in proptest::collection::vec(op(), 1..20),
        seed in any::<u64>(),
        hold_snapshot in any::<bool>(),
    ) {
        let victim = format!("erase-me-{seed:016x}");
        let users = ["u0".to_owned(), "u1".to_owned(), "u2-longer-name".to_owned(), victim.clone()];
        let pa = ProjectId::new("pa").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(cfg(dir.path())).unwrap();
        let mut model = Model::new();
        let mut next_id = 0u32;
        for op in ops {
            match op {
                Op::Append(p, evs) => {
                    let events: Vec<Event> = evs
                        .iter()
                        .map(|&(u, d)| {
                            next_id += 1;
                            ev(next_id, d, &users[u])
                        })
                        .collect();
                    for e in &events {
                        model.insert((p.to_owned(), e.insert_id.clone().unwrap()), e.clone());
                    }
                    store
                        .append_blocking(EventBatch { project: ProjectId::new(p).unwrap(), events })
                        .unwrap();
                }
                Op::Flush => store.flush().unwrap(),
                Op::Compact => { store.compact_now().unwrap(); }
                Op::Reopen => {
                    store.shutdown().unwrap();
                    drop(store);
                    store = Store::open(cfg(dir.path())).unwrap();
                }
            }
        }
        // Always some events of the user in the memtable (WAL only) at erasure time.
        let tail: Vec<Event> = (0..3)
            .map(|d| {
                next_id += 1;
                ev(next_id, d, &victim)
            })
            .collect();
        for e in &tail {
            model.insert(("pa".to_owned(), e.insert_id.clone().unwrap()), e.clone());
        }
        store.append_blocking(EventBatch { project: pa.clone(), events: tail }).unwrap();

        let before = visible(&store);
        prop_assert_eq!(&before, &model);
        let held = hold_snapshot.then(|| store.snapshot());
        let erased_count = model
            .iter()
            .filter(|((p, _), e)| p == "pa" && e.distinct_id == victim)
            .count() as u64;
        model.retain(|(p, _), e| !(p == "pa" && e.distinct_id == victim));

        let pb_segments = dir.path().join("segments").join("pb");
        // The check has teeth: the WAL holds the user's last events now.
        prop_assert!(!files_holding(dir.path(), &victim, Some(&pb_segments)).is_empty());
        let report = store.erase_user(&pa, &victim).unwrap();
        prop_assert_eq!(report.events_erased, erased_count);
        prop_assert_eq!(&visible(&store), &model);
        if let Some(snap) = held {
            // A snapshot taken before still reads everything it saw (pinned files).
            let mut old: Vec<Event> = snap.events(&pa).unwrap();
            let mut want: Vec<Event> = before
                .iter()
                .filter(|((p, _), _)| p == "pa")
                .map(|(_, e)| e.clone())
                .collect();
            old.sort_by(|a, b| a.insert_id.cmp(&b.insert_id));
            want.sort_by(|a, b| a.insert_id.cmp(&b.insert_id));
            prop_assert_eq!(old, want);
            drop(snap);
        }
        // Project pb may hold the same distinct id: its segments keep it.
        assert_absent(dir.path(), &victim, Some(&pb_segments));
        prop_assert!(!pending_in_manifest(dir.path()));

        // A second erasure finds nothing; reopening shows the same.
        prop_assert_eq!(store.erase_user(&pa, &victim).unwrap(), ErasureReport::default());
        store.shutdown().unwrap();
        drop(store);
        let store = Store::open(cfg(dir.path())).unwrap();
        prop_assert_eq!(&visible(&store), &model);
        assert_absent(dir.path(), &victim, Some(&pb_segments));
    }
}

/// Appends events of `users` over three days to project `p`: the first batch is
/// flushed twice and compacted, the second flushed, the third left in the memtable.
fn populate(store: &Store, p: &ProjectId, users: &[&str], first_id: u32) -> Vec<Event> {
    let mut all = Vec::new();
    let mut id = first_id;
    for round in 0..4 {
        let mut events = Vec::new();
        for u in users {
            for d in 0..3 {
                id += 1;
                events.push(ev(id, d, u));
            }
        }
        all.extend(events.clone());
        store
            .append_blocking(EventBatch {
                project: p.clone(),
                events,
            })
            .unwrap();
        if round < 3 {
            store.flush().unwrap();
        }
        if round == 1 {
            store.compact_now().unwrap();
        }
    }
    all
}

fn sorted(mut v: Vec<Event>) -> Vec<Event> {
    v.sort_by(|a, b| a.insert_id.cmp(&b.insert_id));
    v
}

#[test]
fn erasure_interrupted_at_any_point_completes_on_open_and_loses_nothing_else() {
    let victim = format!("erase-me-{:016x}", rand::random::<u64>());
    let pa = ProjectId::new("pa").unwrap();
    let pb = ProjectId::new("pb").unwrap();
    for at in [
        ErasureFault::AfterRecord,
        ErasureFault::AfterFlush,
        ErasureFault::BeforeCommit,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path());
        let faults = c.faults.clone();
        let store = Store::open(c).unwrap();
        let mut all_a = populate(&store, &pa, &["u0", &victim, "u1"], 0);
        // Another project's user with the same distinct id is never touched.
        let all_b = populate(&store, &pb, &[&victim, "u0"], 10_000);
        // `populate(pb)` flushed pa's memtable: give pa events that are only in the WAL.
        let wal_only = vec![ev(20_001, 1, &victim), ev(20_002, 1, "u1")];
        all_a.extend(wal_only.clone());
        store
            .append_blocking(EventBatch {
                project: pa.clone(),
                events: wal_only,
            })
            .unwrap();
        faults.set_fail_erasure_at(Some(at));
        assert!(store.erase_user(&pa, &victim).is_err(), "{at:?}");
        // The crash image: whatever is on disk now.
        let crashed = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), crashed.path());
        assert!(pending_in_manifest(crashed.path()), "{at:?}");
        let pb_segments = crashed.path().join("segments").join("pb");
        assert!(
            !files_holding(crashed.path(), &victim, Some(&pb_segments)).is_empty(),
            "{at:?}: the crash image still holds the user"
        );

        let reopened = Store::open(cfg(crashed.path())).unwrap();
        let want_a: Vec<Event> = all_a
            .iter()
            .filter(|e| e.distinct_id != victim)
            .cloned()
            .collect();
        let snap = reopened.snapshot();
        assert_eq!(sorted(snap.events(&pa).unwrap()), sorted(want_a), "{at:?}");
        assert_eq!(
            sorted(snap.events(&pb).unwrap()),
            sorted(all_b.clone()),
            "{at:?}"
        );
        drop(snap);
        assert!(!pending_in_manifest(crashed.path()), "{at:?}");
        assert_absent(crashed.path(), &victim, Some(&pb_segments));
        drop(reopened);

        // The interrupted store itself finishes the job when asked again.
        faults.set_fail_erasure_at(None);
        store.erase_user(&pa, &victim).unwrap();
        assert!(
            store
                .snapshot()
                .events(&pa)
                .unwrap()
                .iter()
                .all(|e| e.distinct_id != victim)
        );
        assert!(!pending_in_manifest(dir.path()));
    }
}

#[test]
fn a_failed_erasure_is_completed_by_the_background_thread() {
    let victim = format!("erase-me-{:016x}", rand::random::<u64>());
    let pa = ProjectId::new("pa").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = StoreConfig {
        compaction_interval_ms: 50,
        ..cfg(dir.path())
    };
    let faults = c.faults.clone();
    let store = Store::open(c).unwrap();
    let all = populate(&store, &pa, &["u0", &victim], 0);
    faults.set_fail_erasure_at(Some(ErasureFault::AfterFlush));
    assert!(store.erase_user(&pa, &victim).is_err());
    faults.set_fail_erasure_at(None);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while pending_in_manifest(dir.path()) {
        assert!(
            std::time::Instant::now() < deadline,
            "pending erasure not completed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let want: Vec<Event> = all
        .iter()
        .filter(|e| e.distinct_id != victim)
        .cloned()
        .collect();
    assert_eq!(sorted(store.snapshot().events(&pa).unwrap()), sorted(want));
    // Stop the compactor before reading every file: it may be replacing some.
    store.shutdown().unwrap();
    assert_absent(dir.path(), &victim, None);
}

#[test]
fn erasure_report_counts_and_later_events_are_kept() {
    let victim = format!("erase-me-{:016x}", rand::random::<u64>());
    let pa = ProjectId::new("pa").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(cfg(dir.path())).unwrap();
    // Day 0: only the victim (its segment is deleted); days 1-2: shared segments.
    store
        .append_blocking(EventBatch {
            project: pa.clone(),
            events: vec![ev(1, 0, &victim), ev(2, 0, &victim)],
        })
        .unwrap();
    store
        .append_blocking(EventBatch {
            project: pa.clone(),
            events: vec![ev(3, 1, &victim), ev(4, 1, "u0"), ev(5, 2, "u0")],
        })
        .unwrap();
    store.flush().unwrap();
    // In the memtable only.
    store
        .append_blocking(EventBatch {
            project: pa.clone(),
            events: vec![ev(6, 2, &victim)],
        })
        .unwrap();
    let report = store.erase_user(&pa, &victim).unwrap();
    assert_eq!(
        report,
        ErasureReport {
            events_erased: 4,
            // Day 1's segment is rewritten; day 0's and the day-2 segment flushed from
            // the memtable hold only the victim: deleted. Day 2's other segment
            // has no victim row: untouched.
            segments_rewritten: 1,
            segments_deleted: 2,
        }
    );
    assert!(
        !dir.path().join("segments/pa/2026-01-01").exists()
            || std::fs::read_dir(dir.path().join("segments/pa/2026-01-01"))
                .unwrap()
                .next()
                .is_none()
    );
    // After the erasure returned, the same distinct id is a new user's data: kept.
    store
        .append_blocking(EventBatch {
            project: pa.clone(),
            events: vec![ev(7, 2, &victim)],
        })
        .unwrap();
    store.shutdown().unwrap();
    drop(store);
    let store = Store::open(cfg(dir.path())).unwrap();
    let ids: Vec<String> = sorted(store.snapshot().events(&pa).unwrap())
        .into_iter()
        .filter_map(|e| e.insert_id)
        .collect();
    assert_eq!(ids, vec!["id-4", "id-5", "id-7"]);
}

#[test]
fn wal_replay_skips_the_events_of_a_pending_erasure() {
    let victim = format!("erase-me-{:016x}", rand::random::<u64>());
    let pa = ProjectId::new("pa").unwrap();
    let pb = ProjectId::new("pb").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path());
    let faults = c.faults.clone();
    let store = Store::open(c).unwrap();
    let mut all_a = populate(&store, &pa, &["u0", &victim], 0);
    let all_b = populate(&store, &pb, &[&victim], 10_000);
    // `populate(pb)` flushed pa's memtable: give pa events that are only in the WAL.
    let wal_only = vec![ev(20_001, 1, &victim), ev(20_002, 1, "u0")];
    all_a.extend(wal_only.clone());
    store
        .append_blocking(EventBatch {
            project: pa.clone(),
            events: wal_only,
        })
        .unwrap();
    faults.set_fail_erasure_at(Some(ErasureFault::AfterRecord));
    assert!(store.erase_user(&pa, &victim).is_err());
    let crashed = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), crashed.path());

    // Completion on open fails (flushes fail): replay alone must keep the user's WAL
    // events out of the memtable, and only that project's.
    let c = StoreConfig {
        compaction_interval_ms: 50,
        ..cfg(crashed.path())
    };
    let faults = c.faults.clone();
    faults.set_fail_flush(true);
    let reopened = Store::open(c).unwrap();
    let snap = reopened.snapshot();
    assert!(!snap.memtable.is_empty(), "the WAL was replayed");
    for (key, chunk) in &snap.memtable {
        for e in chunk.iter() {
            assert!(
                key.project != pa || e.distinct_id != victim,
                "a pending erasure's event was replayed"
            );
        }
    }
    assert!(
        snap.memtable
            .iter()
            .any(|(k, c)| k.project == pb && c.iter().any(|e| e.distinct_id == victim)),
        "the other project's events of the same distinct id are replayed"
    );
    drop(snap);
    // Once flushes work again, the background thread completes the erasure.
    faults.set_fail_flush(false);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while pending_in_manifest(crashed.path()) {
        assert!(
            std::time::Instant::now() < deadline,
            "pending erasure not completed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let snap = reopened.snapshot();
    let want: Vec<Event> = all_a
        .iter()
        .filter(|e| e.distinct_id != victim)
        .cloned()
        .collect();
    assert_eq!(sorted(snap.events(&pa).unwrap()), sorted(want));
    assert_eq!(sorted(snap.events(&pb).unwrap()), sorted(all_b));
    drop(snap);
    reopened.shutdown().unwrap();
    let pb_segments = crashed.path().join("segments").join("pb");
    assert_absent(crashed.path(), &victim, Some(&pb_segments));
}
