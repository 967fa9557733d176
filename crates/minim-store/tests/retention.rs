//! `Store::apply_retention` against a reference model that applies the policy event by
//! event, driven by a manual clock: expired partitions dropped, per-event overrides
//! shorter and longer than the default, properties removed from old events with every
//! other property byte-identical, exact report counts, nothing expired left in the
//! memtable or the WAL, shredded columns consistent, a removed personal property gone
//! from the personal column too, and the same after reopening.

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::{Array, StringArray};
use minim_core::props::RawLookup;
use minim_core::time::{Clock, MS_PER_DAY, day_of, day_string};
use minim_core::{Event, EventBatch, ProjectId};
use minim_store::segment::{COL_PROPERTIES, batch_to_events, read_segment};
use minim_store::shred::PROP_COLUMN_PREFIX;
use minim_store::{RetentionPolicy, RetentionReport, Store, StoreConfig};
use proptest::prelude::*;

const BASE_MS: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z = day "0" of the tests

fn cfg(dir: &Path, clock: &Clock) -> StoreConfig {
    StoreConfig {
        data_dir: dir.to_path_buf(),
        compaction_min_segments: 2,
        compaction_interval_ms: 3_600_000, // driven explicitly by the tests
        flush_interval_ms: 3_600_000,
        clock: clock.clone(),
        ..StoreConfig::default()
    }
}

/// An event whose properties are built from ordered entries (key, raw JSON value).
fn ev(id: u32, day: i64, name: &str, entries: &[(String, String)]) -> Event {
    let (properties, personal) = stored(entries);
    Event {
        timestamp_ms: BASE_MS + day * MS_PER_DAY + i64::from(id % 1000) * 1000,
        event: name.to_owned(),
        distinct_id: format!("u{}", id % 7),
        insert_id: Some(format!("id-{id}")),
        properties,
        personal,
        received_at_ms: BASE_MS,
    }
}

/// How the privacy pipeline stores `entries` when the plan classes `email` personal: its
/// value apart, a placeholder in its place.
fn stored(entries: &[(String, String)]) -> (String, Option<String>) {
    let (mut props, mut personal) = (Vec::new(), Vec::new());
    for (k, v) in entries {
        if k == "email" && v != "null" {
            props.push((k.clone(), r#""[redacted]""#.to_owned()));
            personal.push((k.clone(), v.clone()));
        } else {
            props.push((k.clone(), v.clone()));
        }
    }
    (
        render(&props),
        (!personal.is_empty()).then(|| render(&personal)),
    )
}

fn render(entries: &[(String, String)]) -> String {
    let parts: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{}:{v}", serde_json::to_string(k).unwrap()))
        .collect();
    format!("{{{}}}", parts.join(","))
}

/// The reference model: the policy applied to one event of `today`'s store.
/// `None` = deleted; else the event with the expired property entries left out.
fn model_apply(
    e: &Event,
    entries: &[(String, String)],
    policy: &RetentionPolicy,
    today: i32,
) -> (Option<Event>, u64) {
    let day = day_of(e.timestamp_ms);
    let older = |n: u32| i64::from(day) < i64::from(today) - i64::from(n);
    let keep_days = policy.events.get(&e.event).copied().or(policy.default_days);
    if keep_days.is_some_and(older) {
        return (None, 0);
    }
    let kept: Vec<(String, String)> = entries
        .iter()
        .filter(|(k, _)| !policy.properties.get(k).is_some_and(|&n| older(n)))
        .cloned()
        .collect();
    let removed = (entries.len() - kept.len()) as u64;
    let (properties, personal) = stored(&kept);
    (
        Some(Event {
            properties,
            personal,
            ..e.clone()
        }),
        removed,
    )
}

/// Every possible name of `day` expires: the partition is dropped whole.
fn model_drops_day(policy: &RetentionPolicy, today: i32, day: i32) -> bool {
    let older = |n: u32| i64::from(day) < i64::from(today) - i64::from(n);
    policy.default_days.is_some_and(older) && policy.events.values().all(|&n| older(n))
}

/// What the store must show and report, from the segments as they are before the run
/// (everything flushed) and the entries each event was built from.
fn model(
    segments: &[(i32, Vec<Event>)],
    entries: &BTreeMap<String, Vec<(String, String)>>,
    policy: &RetentionPolicy,
    today: i32,
) -> (BTreeMap<String, Event>, RetentionReport) {
    let mut out = BTreeMap::new();
    let mut report = RetentionReport::default();
    let mut days: Option<(i32, i32)> = None;
    let mut dropped = std::collections::BTreeSet::new();
    for (day, events) in segments {
        let whole = model_drops_day(policy, today, *day);
        let mut changed = false;
        for e in events {
            let id = e.insert_id.clone().unwrap();
            let (kept, removed) = model_apply(e, &entries[&id], policy, today);
            match kept {
                None => {
                    changed = true;
                    report.events_deleted += 1;
                    *report
                        .events_deleted_by_name
                        .entry(e.event.clone())
                        .or_default() += 1;
                    days = Some(days.map_or((*day, *day), |(lo, hi)| (lo.min(*day), hi.max(*day))));
                }
                Some(k) => {
                    assert!(!whole);
                    changed |= removed > 0;
                    report.properties_removed += removed;
                    out.insert(id, k);
                }
            }
        }
        if whole {
            dropped.insert(*day);
        } else if changed {
            report.segments_rewritten += 1;
        }
    }
    report.partitions_dropped = dropped.len() as u64;
    report.deleted_days = days.map(|(lo, hi)| (day_string(lo), day_string(hi)));
    (out, report)
}

fn segment_events(store: &Store, p: &ProjectId) -> Vec<(i32, Vec<Event>)> {
    let snap = store.snapshot();
    assert!(snap.memtable.is_empty(), "flush first");
    snap.segments
        .iter()
        .filter(|s| &s.meta.project == p)
        .map(|s| {
            let events = read_segment(&s.path, None, None)
                .unwrap()
                .iter()
                .flat_map(|b| batch_to_events(b, &s.path).unwrap())
                .collect();
            (s.meta.day, events)
        })
        .collect()
}

fn visible(store: &Store, p: &ProjectId) -> BTreeMap<String, Event> {
    store
        .snapshot()
        .events(p)
        .unwrap()
        .into_iter()
        .map(|e| (e.insert_id.clone().unwrap(), e))
        .collect()
}

/// Every shredded column of every live segment equals what `properties` derives.
/// Returns the shredded column names seen.
fn check_shredded(store: &Store) -> Vec<String> {
    let mut seen = Vec::new();
    for s in store.snapshot().segments.iter() {
        for b in read_segment(&s.path, None, None).unwrap() {
            let props = b
                .column_by_name(COL_PROPERTIES)
                .unwrap()
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .clone();
            for (i, field) in b.schema().fields().iter().enumerate() {
                let Some(name) = field.name().strip_prefix(PROP_COLUMN_PREFIX) else {
                    continue;
                };
                seen.push(name.to_owned());
                let col = b.column(i).as_any().downcast_ref::<StringArray>().unwrap();
                let lookup = RawLookup::new(name);
                for r in 0..b.num_rows() {
                    let want = lookup.string(props.value(r)).map(|c| c.into_owned());
                    let got = col.is_valid(r).then(|| col.value(r).to_owned());
                    assert_eq!(got, want, "{} row {r} column {}", s.path.display(), name);
                }
            }
        }
    }
    seen.sort();
    seen.dedup();
    seen
}

/// No WAL file holds an event any more.
fn assert_wal_empty(dir: &Path) {
    for entry in std::fs::read_dir(dir.join("wal")).unwrap() {
        let path = entry.unwrap().path();
        let contents = minim_store::wal::read_file(&path, 1 << 20, None).unwrap();
        assert!(
            contents.batches.is_empty(),
            "{} holds events",
            path.display()
        );
    }
}

fn entries_of(ip: Option<&str>, i: u32) -> Vec<(String, String)> {
    let mut e = vec![("plan".to_owned(), r#""pro""#.to_owned())];
    match ip {
        Some(ip) => e.push(("ip".to_owned(), serde_json::to_string(ip).unwrap())),
        None => e.push(("ip".to_owned(), "null".to_owned())),
    }
    e.push(("n".to_owned(), format!("{i}.50")));
    e.push((
        "nested".to_owned(),
        r#"{"ip":"keep","a":[1,"}"]}"#.to_owned(),
    ));
    e
}

#[test]
fn retention_drops_old_partitions_applies_overrides_and_strips_properties() {
    const TODAY: i64 = 400;
    let clock = Clock::manual(BASE_MS + TODAY * MS_PER_DAY + 12 * 3_600_000);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(cfg(dir.path(), &clock)).unwrap();
    let p = ProjectId::new("p").unwrap();
    let other = ProjectId::new("other").unwrap();
    let mut entries: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut id = 0u32;
    let mut batch = |days: &[i64], per_day: u32| -> Vec<Event> {
        let mut out = Vec::new();
        for &d in days {
            for k in 0..per_day {
                id += 1;
                let name = ["pageview", "purchase", "debug"][(k % 3) as usize];
                let ip = (k % 4 != 3).then(|| format!("10.0.0.{k}"));
                let e = entries_of(ip.as_deref(), id);
                let event = ev(id, d, name, &e);
                entries.insert(event.insert_id.clone().unwrap(), e);
                out.push(event);
            }
        }
        out
    };
    // Day 0: 400 days old, dropped whole. Day 200: only "purchase" (365 days) stays.
    // Day 380: "debug" (3 days) goes, "ip" (7 days) goes. Days 392, 397, 400: recent.
    let compacted_a = batch(&[0, 200], 6);
    let compacted_b = batch(&[0, 200], 6);
    let flushed = batch(&[380, 392], 6);
    let memtable = batch(&[380, 392, 397, 400], 6);
    for (events, then_flush) in [
        (compacted_a, true),
        (compacted_b, true),
        (flushed, true),
        (memtable, false),
    ] {
        store
            .append_blocking(EventBatch {
                project: p.clone(),
                events: events.clone(),
            })
            .unwrap();
        // The other project's old events are not this policy's business.
        store
            .append_blocking(EventBatch {
                project: other.clone(),
                events: events
                    .iter()
                    .map(|e| Event {
                        insert_id: e.insert_id.as_ref().map(|i| format!("o-{i}")),
                        ..e.clone()
                    })
                    .collect(),
            })
            .unwrap();
        if then_flush {
            store.flush().unwrap();
        }
    }
    assert_eq!(
        store.compact_now().unwrap(),
        4,
        "days 0 and 200, both projects"
    );
    let other_before = visible(&store, &other);

    let mut policy = RetentionPolicy {
        default_days: Some(30),
        ..RetentionPolicy::default()
    };
    policy.events.insert("purchase".into(), 365);
    policy.events.insert("debug".into(), 3);
    policy.properties.insert("ip".into(), 7);

    // The model sees the layout the run will see: everything flushed.
    let today = day_of(clock.now_ms());
    let mut layout = {
        // A copy of the store's directory, flushed, gives the segment layout without
        // flushing the real memtable (the run must do that itself).
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), copy.path());
        let s = Store::open(cfg(copy.path(), &clock)).unwrap();
        s.flush().unwrap();
        segment_events(&s, &p)
    };
    layout.sort_by_key(|(d, _)| *d);
    let (want_events, want_report) = model(&layout, &entries, &policy, today);
    assert!(
        !store.snapshot().memtable.is_empty(),
        "some events only in the memtable"
    );

    let report = store.apply_retention(&p, &policy).unwrap();
    assert_eq!(report, want_report);
    // Hand-checked facts the model also states.
    assert_eq!(report.partitions_dropped, 1);
    assert_eq!(
        report.deleted_days,
        Some(("2026-01-01".into(), day_string(day_of(BASE_MS) + 392)))
    );
    assert_eq!(report.events_deleted_by_name.len(), 3);
    assert!(report.properties_removed > 0);
    assert!(report.segments_rewritten > 0);

    let got = visible(&store, &p);
    assert_eq!(got, want_events);
    for e in got.values() {
        let day = day_of(e.timestamp_ms) - day_of(BASE_MS);
        // Entries are plan, ip, n, nested: a top-level "ip" follows a comma; "nested"
        // keeps its inner "ip", only the top-level entry goes.
        assert!(e.properties.contains(r#","nested":{"ip":"keep""#));
        let top_level_ip = e.properties.contains(r#","ip":"#);
        assert_eq!(top_level_ip, day >= 400 - 7, "{}", e.properties);
        if day < 400 - 30 {
            assert_eq!(e.event, "purchase");
        }
        if day < 400 - 3 {
            assert_ne!(e.event, "debug");
        }
    }
    assert_eq!(visible(&store, &other), other_before);
    assert!(store.snapshot().memtable.is_empty());
    assert_wal_empty(dir.path());
    assert!(check_shredded(&store).contains(&"ip".to_owned()));
    let day0 = dir
        .path()
        .join("segments/p")
        .join(day_string(day_of(BASE_MS)));
    assert!(
        !day0.exists() || std::fs::read_dir(&day0).unwrap().next().is_none(),
        "the dropped partition's files are gone"
    );

    // Applying it again changes nothing; reopening shows the same.
    assert_eq!(
        store.apply_retention(&p, &policy).unwrap(),
        RetentionReport::default()
    );
    store.shutdown().unwrap();
    drop(store);
    let store = Store::open(cfg(dir.path(), &clock)).unwrap();
    assert_eq!(visible(&store, &p), want_events);
    assert_eq!(visible(&store, &other), other_before);

    // Time passes: the same policy now expires more.
    clock.set_ms(clock.now_ms() + 10 * MS_PER_DAY);
    let later = store.apply_retention(&p, &policy).unwrap();
    assert!(later.events_deleted > 0);
    assert!(
        visible(&store, &p)
            .values()
            .all(|e| !e.properties.contains(r#","ip":"#)),
        "no event of the store is within 7 days any more"
    );
}

#[test]
fn empty_policy_changes_nothing() {
    let clock = Clock::manual(BASE_MS + 400 * MS_PER_DAY);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(cfg(dir.path(), &clock)).unwrap();
    let p = ProjectId::new("p").unwrap();
    store
        .append_blocking(EventBatch {
            project: p.clone(),
            events: vec![ev(1, 0, "a", &entries_of(Some("x"), 1))],
        })
        .unwrap();
    let report = store
        .apply_retention(&p, &RetentionPolicy::default())
        .unwrap();
    assert_eq!(report, RetentionReport::default());
    assert_eq!(store.snapshot().rows(), 1);
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

const KEYS: [&str; 5] = ["ip", "plan", "n", "email", "k\"q"];
const NAMES: [&str; 4] = ["a", "b", "c", "d"];

/// (day, name index, [(key index, value kind)])
type EventSpec = (i64, usize, Vec<(usize, u8)>);

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<EventSpec>),
    Flush,
    Compact,
}

fn op() -> impl Strategy<Value = Op> {
    let entry = (0usize..KEYS.len(), 0u8..4);
    let event = (
        0i64..40,
        0usize..NAMES.len(),
        proptest::collection::vec(entry, 0..5),
    );
    prop_oneof![
        5 => proptest::collection::vec(event, 1..12).prop_map(Op::Append),
        2 => Just(Op::Flush),
        1 => Just(Op::Compact),
    ]
}

fn policy() -> impl Strategy<Value = RetentionPolicy> {
    (
        proptest::option::of(0u32..45),
        proptest::collection::btree_map(0usize..NAMES.len(), 0u32..45, 0..3),
        proptest::collection::btree_map(0usize..KEYS.len(), 0u32..45, 0..3),
    )
        .prop_map(|(default_days, events, properties)| RetentionPolicy {
            default_days,
            events: events
                .into_iter()
                .map(|(i, n)| (NAMES[i].to_owned(), n))
                .collect(),
            properties: properties
                .into_iter()
                .map(|(i, n)| (KEYS[i].to_owned(), n))
                .collect(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn retention_matches_model(ops in proptest::collection::vec(op(), 1..12), policy in policy()) {
        const TODAY: i64 = 40;
        let clock = Clock::manual(BASE_MS + TODAY * MS_PER_DAY + 1);
        let today = day_of(clock.now_ms());
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(cfg(dir.path(), &clock)).unwrap();
        let p = ProjectId::new("p").unwrap();
        let mut entries: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        let mut id = 0u32;
        for op in ops {
            match op {
                Op::Append(evs) => {
                    let events: Vec<Event> = evs
                        .into_iter()
                        .map(|(day, name, props)| {
                            id += 1;
                            let mut e: Vec<(String, String)> = Vec::new();
                            for (k, kind) in props {
                                if e.iter().any(|(have, _)| have == KEYS[k]) {
                                    continue;
                                }
                                let v = match kind {
                                    0 => "null".to_owned(),
                                    1 => format!("{id}"),
                                    2 => format!(r#""v{id}\"x""#),
                                    _ => r#"[1,{"ip":"]"}]"#.to_owned(),
                                };
                                e.push((KEYS[k].to_owned(), v));
                            }
                            let event = ev(id, day, NAMES[name], &e);
                            entries.insert(event.insert_id.clone().unwrap(), e);
                            event
                        })
                        .collect();
                    store.append_blocking(EventBatch { project: p.clone(), events }).unwrap();
                }
                Op::Flush => store.flush().unwrap(),
                Op::Compact => { store.compact_now().unwrap(); }
            }
        }
        // The layout the run will see once it has flushed.
        store.flush().unwrap();
        let layout = segment_events(&store, &p);
        let (want_events, want_report) = model(&layout, &entries, &policy, today);
        let report = store.apply_retention(&p, &policy).unwrap();
        prop_assert_eq!(&report, &want_report);
        prop_assert_eq!(&visible(&store, &p), &want_events);
        check_shredded(&store);
        assert_wal_empty(dir.path());
        store.shutdown().unwrap();
        drop(store);
        let store = Store::open(cfg(dir.path(), &clock)).unwrap();
        prop_assert_eq!(&visible(&store, &p), &want_events);
        prop_assert_eq!(store.apply_retention(&p, &policy).unwrap(), RetentionReport::default());
    }
}
