//! Opening the store: lock the directory, load the manifest, remove garbage, rebuild
//! the dedupe index, replay the WAL (cutting a torn tail, skipping the events of
//! pending erasures), start the threads and complete pending erasures.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use minim_core::time::day_of;
use minim_core::{EventBatch, ProjectId};

use crate::dedupe::DedupeIndex;
use crate::error::{Result, StoreError};
use crate::flush::publish_segment_gauges;
use crate::fsutil::{create_dir_durable, sync_dir};
use crate::manifest::{Manifest, SegmentFile};
use crate::memtable::Memtable;
use crate::wal::format::FILE_HEADER_LEN;
use crate::wal::{self, WalWriter};
use crate::writer::Writer;
use crate::{Shared, Store, StoreConfig, View, compaction, flush, segments_dir, wal_dir};

pub(crate) fn open(cfg: StoreConfig) -> Result<Store> {
    cfg.validate().map_err(|reason| StoreError::Corrupt {
        path: cfg.data_dir.clone(),
        reason,
    })?;
    let dir = cfg.data_dir.clone();
    create_dir_durable(&wal_dir(&dir))?;
    create_dir_durable(&segments_dir(&dir))?;
    let lock = lock_dir(&dir)?;

    let manifest = Manifest::load(&dir, cfg.encryption.as_ref())?;
    remove_orphans(&dir, &manifest)?;

    // WAL files still to replay, in order; older ones are already in segments.
    let wal_dir = wal_dir(&dir);
    let files = wal::list_files(&wal_dir)?;
    wal::remove_below(&wal_dir, manifest.wal_replay_from)?;
    let replay: Vec<u64> = files
        .iter()
        .copied()
        .filter(|&n| n >= manifest.wal_replay_from)
        .collect();
    let mut batches: Vec<EventBatch> = Vec::new();
    let mut seq = 0u64;
    for (i, &no) in replay.iter().enumerate() {
        let path = wal::wal_path(&wal_dir, no);
        let contents = wal::read_file(&path, cfg.wal_max_record_bytes, cfg.encryption.as_ref())?;
        if contents.shredded_records > 0 {
            tracing::info!(file = %path.display(), records = contents.shredded_records,
                "skipped WAL records of projects whose keys were destroyed");
        }
        let last = i + 1 == replay.len();
        if let Some(why) = &contents.stopped {
            if last {
                tracing::warn!(file = %path.display(), reason = %why, "discarding torn WAL tail (never acknowledged)");
                if contents.valid_len < FILE_HEADER_LEN as u64 {
                    std::fs::remove_file(&path).map_err(|e| StoreError::io(&path, e))?;
                    sync_dir(&wal_dir)?;
                } else {
                    wal::truncate(&path, contents.valid_len)?;
                }
            } else {
                tracing::warn!(file = %path.display(), reason = %why, "WAL file ends early (abandoned after a write error)");
            }
        }
        for (s, b) in contents.batches {
            seq = seq.max(s);
            batches.push(b);
        }
    }

    // Dedupe: find each project's newest day, load ids of the window, replay the WAL.
    let mut dedupe = DedupeIndex::new(cfg.dedupe_window_days);
    for s in &manifest.segments {
        dedupe.observe_day(&s.meta.project, day_of(s.meta.max_ts_ms));
    }
    for b in &batches {
        for e in &b.events {
            dedupe.observe_day(&b.project, day_of(e.timestamp_ms));
        }
    }
    let destroyed = |p: &minim_core::ProjectId| {
        cfg.encryption
            .as_ref()
            .is_some_and(|e| e.keyring().is_destroyed(p.as_str()))
    };
    for s in &manifest.segments {
        // A deleted project's segments cannot be read; the compactor removes them.
        if dedupe.in_window(&s.meta.project, s.meta.day) && !destroyed(&s.meta.project) {
            for id in crate::segment::read_insert_ids(&s.path, cfg.encryption.as_ref())? {
                let h = dedupe.hash(&s.meta.project, &id);
                dedupe.insert(&s.meta.project, s.meta.day, h);
            }
        }
    }
    // Events of a pending erasure are not replayed: the erasure may have been cut short
    // before its flush, and it completes below.
    let mut erased: HashMap<&ProjectId, HashSet<&str>> = HashMap::new();
    for p in &manifest.pending_erasures {
        erased
            .entry(&p.project)
            .or_default()
            .insert(p.distinct_id.as_str());
    }
    let now = cfg.clock.now_ms();
    let mut active = Memtable::default();
    let mut replayed = 0usize;
    let mut skipped = 0usize;
    for b in batches {
        let project: ProjectId = b.project;
        let erased = erased.get(&project);
        let mut keep = Vec::with_capacity(b.events.len());
        for e in b.events {
            if erased.is_some_and(|ids| ids.contains(e.distinct_id.as_str())) {
                skipped += 1;
                continue;
            }
            if let Some(id) = &e.insert_id {
                let h = dedupe.hash(&project, id);
                if dedupe.contains(&project, h) {
                    continue;
                }
                dedupe.insert(&project, day_of(e.timestamp_ms), h);
            }
            keep.push(e);
        }
        replayed += keep.len();
        active.insert(&project, keep, now);
    }

    let next_file = replay
        .last()
        .map_or(manifest.wal_replay_from.max(1), |n| n + 1);
    let wal = WalWriter::create(&wal_dir, next_file, cfg.faults.clone())?;
    tracing::info!(
        segments = manifest.segments.len(),
        replayed_events = replayed,
        erased_events_skipped = skipped,
        pending_erasures = manifest.pending_erasures.len(),
        wal_files = replay.len(),
        dedupe_keys = dedupe.len(),
        "store opened"
    );
    publish_segment_gauges(&manifest.segments);
    let pending_erasures = !manifest.pending_erasures.is_empty();
    drop(erased);

    let view = View {
        segments: Arc::new(manifest.segments.clone()),
        active,
        frozen: None,
    };
    let shared = Arc::new(Shared {
        view: RwLock::new(view),
        manifest: Mutex::new(manifest),
        compaction_pass: Mutex::new(()),
        writer: Mutex::new(None),
        queue_depth: AtomicUsize::new(0),
        wal_ok: AtomicBool::new(true),
        flush_ok: AtomicBool::new(true),
        shutting_down: AtomicBool::new(false),
        last_error: Mutex::new(None),
        cfg,
    });
    let (tx, rx) = std::sync::mpsc::sync_channel(shared.cfg.wal_queue_depth);
    let (flush_tx, flush_rx) = std::sync::mpsc::sync_channel(1);
    let writer = Writer {
        shared: shared.clone(),
        wal,
        dedupe,
        seq,
        rx,
        flush_tx: Some(flush_tx),
        flush_waiters: Vec::new(),
        force_rotate: false,
        last_recovery_attempt: None,
    };
    let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(f)
            .map_err(|e| StoreError::io(&dir, e))
    };
    let s1 = shared.clone();
    let s2 = shared.clone();
    let writer_tx = tx.clone();
    let threads = vec![
        spawn("minim-wal", Box::new(move || writer.run()))?,
        spawn(
            "minim-flush",
            Box::new(move || {
                lower_thread_priority();
                flush::run(s1, flush_rx)
            }),
        )?,
        spawn(
            "minim-compact",
            Box::new(move || {
                lower_thread_priority();
                compaction::run_loop(s2)
            }),
        )?,
    ];
    *shared.writer.lock().unwrap_or_else(PoisonError::into_inner) = Some(writer_tx);
    let store = Store {
        shared,
        tx,
        threads: Mutex::new(threads),
        _lock: lock,
    };
    if pending_erasures {
        // Completing before returning means no reader sees the erased events. If it
        // fails, the compactor retries; replay already left the events out of the
        // memtable, and the entry stays in the manifest until done.
        if let Err(e) = crate::erasure::complete_pending(&store.shared) {
            tracing::warn!(error = %e, "could not complete pending erasures on open; will retry");
        }
    }
    Ok(store)
}

/// Background work (flush, compaction) runs at a lower CPU priority (nice 10), so that
/// on a small machine the latency-critical path (decode, WAL, answer) gets the CPU first.
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on this thread's own id; no memory is involved.
    unsafe {
        let tid = libc::gettid();
        if libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10) != 0 {
            tracing::debug!("could not lower the priority of a background thread");
        }
    }
}

/// Whether a process (a running server) holds the event store in `dir` open.
pub fn in_use(dir: &Path) -> Result<bool> {
    let path = dir.join("LOCK");
    let f = match OpenOptions::new().write(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(StoreError::io(&path, e)),
    };
    match f.try_lock() {
        Ok(()) => Ok(false), // released when `f` drops
        Err(std::fs::TryLockError::WouldBlock) => Ok(true),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::io(&path, e)),
    }
}

/// Takes an exclusive advisory lock on `DIR/LOCK` for the life of the store.
fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join("LOCK");
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::io(&path, e))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::io(&path, e)),
    }
}

/// Deletes segment files no manifest lists and leftover temporary files.
fn remove_orphans(dir: &Path, manifest: &Manifest) -> Result<()> {
    let live: HashSet<&Path> = manifest
        .segments
        .iter()
        .map(|s: &Arc<SegmentFile>| s.path.as_path())
        .collect();
    let root = segments_dir(dir);
    let mut removed = 0usize;
    for project in read_dir(&root)? {
        for day in read_dir(&project)? {
            for file in read_dir(&day)? {
                if !live.contains(file.as_path()) {
                    std::fs::remove_file(&file).map_err(|e| StoreError::io(&file, e))?;
                    removed += 1;
                }
            }
        }
    }
    if removed > 0 {
        tracing::info!(
            removed,
            "removed segment files of interrupted flushes or compactions"
        );
    }
    let tmp = dir.join("manifest.tmp");
    if tmp.exists() {
        std::fs::remove_file(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
    }
    Ok(())
}

fn read_dir(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))? {
        out.push(entry.map_err(|e| StoreError::io(dir, e))?.path());
    }
    Ok(out)
}
