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

/// The rows of a segment file, in file order.
fn file_rows(path: &Path) -> Vec<Event> {
    minim_store::segment::read_segment(path, None, None)
        .unwrap()
        .iter()
        .flat_map(|b| minim_store::segment::batch_to_events(b, path).unwrap())
        .collect()
}

#[test]
fn version_1_segments_keep_their_row_order_and_merge_only_with_their_own() {
    use minim_store::segment::{RowOrder, WriteOptions, events_to_batch, write_segment};
    let project = ProjectId::new("p_fixture").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), tmp.path());
    // A second segment of 2026-01-01 in the fixture's order, (distinct_id, timestamp),
    // listed in the manifest as the fixture's are (no `sort`).
    let extra: Vec<Event> = events(100..124)
        .into_iter()
        .map(|e| Event {
            timestamp_ms: e.timestamp_ms - 100 * 3_600_000,
            insert_id: Some(format!("extra-{}", e.timestamp_ms)),
            ..e
        })
        .collect();
    // `events_to_batch` sorts event-first; put the rows in user order.
    let batch = events_to_batch(&extra).unwrap();
    let key = |name: &str| arrow::compute::SortColumn {
        values: batch.column_by_name(name).unwrap().clone(),
        options: None,
    };
    let idx =
        arrow::compute::lexsort_to_indices(&[key("distinct_id"), key("timestamp")], None).unwrap();
    let by_user = arrow::compute::take_record_batch(&batch, &idx).unwrap();
    let rel = "segments/p_fixture/2026-01-01/00000000000000000003.parquet";
    let day = (1_767_225_600_000 / MS_PER_DAY) as i32;
    let w = write_segment(
        &tmp.path().join(rel),
        &project,
        day,
        [Ok(by_user)],
        WriteOptions {
            row_group_rows: 8,
            zstd_level: 1,
            shredded: &[],
            encryption: None,
            personal: false,
            order: RowOrder::User,
        },
    )
    .unwrap();
    let path = tmp.path().join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    manifest["segments"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "id": 3, "project": "p_fixture", "day": "2026-01-01", "rows": w.rows,
            "bytes": w.bytes, "min_ts_ms": w.min_ts_ms, "max_ts_ms": w.max_ts_ms, "level": 0
        }));
    manifest["next_segment_id"] = 3.into();
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();

    // Ten days later every partition is cold: two segments are enough to merge.
    let store = Store::open(StoreConfig {
        data_dir: tmp.path().to_path_buf(),
        clock: Clock::manual(1_767_225_600_000 + 10 * MS_PER_DAY),
        compaction_min_segments: 2,
        ..StoreConfig::default()
    })
    .unwrap();
    // The WAL's events, then more of 2026-01-01, become event-first segments.
    store.flush().unwrap();
    let more: Vec<Event> = events(200..224)
        .into_iter()
        .map(|e| Event {
            timestamp_ms: e.timestamp_ms - 200 * 3_600_000,
            insert_id: Some(format!("more-{}", e.timestamp_ms)),
            ..e
        })
        .collect();
    for half in more.chunks(12) {
        store
            .append_blocking(EventBatch {
                project: project.clone(),
                events: half.to_vec(),
            })
            .unwrap();
        store.flush().unwrap();
    }
    while store.compact_now().unwrap() > 0 {}

    let snap = store.snapshot();
    let mut orders: Vec<(i32, RowOrder, u64)> = snap
        .segments
        .iter()
        .map(|s| (s.meta.day, s.meta.order, s.meta.rows))
        .collect();
    orders.sort();
    // 2026-01-01: the two user-ordered segments merged into one (24 + 24 rows), the two
    // new ones into another (24 rows); the other days' old and new segments stay apart.
    let day1: Vec<_> = orders.iter().filter(|o| o.0 == day).collect();
    assert_eq!(
        day1,
        vec![&(day, RowOrder::User, 48), &(day, RowOrder::EventUser, 24)]
    );
    assert_eq!(orders.len(), 5, "{orders:?}");
    for s in snap.segments.iter() {
        let rows = file_rows(&s.path);
        let keys: Vec<_> = rows
            .iter()
            .map(|e| match s.meta.order {
                RowOrder::User => (String::new(), e.distinct_id.clone(), e.timestamp_ms),
                RowOrder::EventUser => (e.event.clone(), e.distinct_id.clone(), e.timestamp_ms),
            })
            .collect();
        assert!(
            keys.is_sorted(),
            "segment {} out of {:?}",
            s.meta.id,
            s.meta.order
        );
    }
    let mut want = events(0..60);
    want.extend(extra);
    want.extend(more);
    let all_sorted = |mut v: Vec<Event>| {
        v.sort_by(|a, b| (a.timestamp_ms, &a.insert_id).cmp(&(b.timestamp_ms, &b.insert_id)));
        v
    };
    assert_eq!(all_sorted(snap.events(&project).unwrap()), all_sorted(want));
    drop(snap);
    store.shutdown().unwrap();
    drop(store);
    // The manifest names the new order and still reads back.
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(written.contains("event,distinct_id,timestamp"));
    let reopened = Store::open(StoreConfig {
        data_dir: tmp.path().to_path_buf(),
        ..StoreConfig::default()
    })
    .unwrap();
    let mut again: Vec<_> = reopened
        .snapshot()
        .segments
        .iter()
        .map(|s| (s.meta.day, s.meta.order, s.meta.rows))
        .collect();
    again.sort();
    assert_eq!(again, orders);
}
