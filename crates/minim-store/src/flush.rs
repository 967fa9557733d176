//! The flusher thread: writes a frozen memtable as Parquet segments, swaps the manifest,
//! then trims the WAL files the memtable came from.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use minim_core::ProjectId;

use crate::error::{Result, StoreError};
use crate::fsutil::create_dir_durable;
use crate::manifest::{SegmentFile, SegmentMeta, segment_rel_path};
use crate::memtable::Memtable;
use crate::metrics as m;
use crate::segment::{RowOrder, WriteOptions, events_to_batch, write_segment};
use crate::shred;
use crate::{Shared, wal, wal_dir};

pub(crate) struct Job {
    pub mem: Arc<Memtable>,
    /// WAL files below this number are fully contained in `mem` (and older segments).
    pub wal_replay_from: u64,
    pub waiters: Vec<Sender<Result<()>>>,
}

/// Attempts after which a flush is abandoned once shutdown began (the WAL keeps the data).
const SHUTDOWN_ATTEMPTS: u32 = 3;

pub(crate) fn run(shared: Arc<Shared>, rx: Receiver<Job>) {
    for mut job in rx {
        let mut backoff = Duration::from_millis(100);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let started = Instant::now();
            match flush(&shared, &job) {
                Ok(rows) => {
                    shared.flush_ok.store(true, Ordering::Release);
                    ::metrics::counter!(m::FLUSHES).increment(1);
                    ::metrics::histogram!(m::FLUSH_SECONDS).record(started.elapsed().as_secs_f64());
                    tracing::debug!(
                        rows,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "memtable flushed"
                    );
                    for w in job.waiters.drain(..) {
                        let _ = w.send(Ok(()));
                    }
                    break;
                }
                Err(e) => {
                    shared.flush_ok.store(false, Ordering::Release);
                    shared.set_error(&format!("flush failed: {e}"));
                    ::metrics::counter!(m::FLUSH_ERRORS).increment(1);
                    tracing::error!(error = %e, attempts, "memtable flush failed; the WAL keeps the data, retrying");
                    for w in job.waiters.drain(..) {
                        let _ = w.send(Err(StoreError::Unavailable(format!("flush failed: {e}"))));
                    }
                    if shared.shutting_down.load(Ordering::Acquire) && attempts >= SHUTDOWN_ATTEMPTS
                    {
                        // Leave the data to WAL replay on the next start.
                        shared
                            .view
                            .write()
                            .unwrap_or_else(PoisonError::into_inner)
                            .frozen = None;
                        break;
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// Writes every partition of the job's memtable, then commits them in one manifest swap.
fn flush(shared: &Shared, job: &Job) -> Result<usize> {
    let cfg = &shared.cfg;
    cfg.faults
        .flush()
        .map_err(|e| StoreError::io(&cfg.data_dir, e))?;
    let mut written: Vec<SegmentFile> = Vec::new();
    let res = (|| {
        for (key, chunks) in job.mem.partitions() {
            let rows: usize = chunks.iter().map(|c| c.len()).sum();
            let step = rows.div_ceil(shred::CHOOSE_SAMPLE_ROWS).max(1);
            let shredded = shred::choose(
                chunks
                    .iter()
                    .flat_map(|c| c.iter())
                    .step_by(step)
                    .map(|e| e.properties.as_str()),
            );
            let batch = events_to_batch(chunks.iter().flat_map(|c| c.iter()));
            match write_new_segment(
                shared,
                &key.project,
                key.day,
                [batch],
                0,
                cfg.flush_zstd_level,
                Columns {
                    shredded,
                    personal: chunks
                        .iter()
                        .flat_map(|c| c.iter())
                        .any(|e| e.personal.is_some()),
                    // `events_to_batch` sorts in that order.
                    order: RowOrder::CURRENT,
                },
            ) {
                Ok(segment) => written.push(segment),
                // The project was deleted (its keys destroyed) after these events were
                // acknowledged: they are dropped with it, never written.
                Err(StoreError::Destroyed(_)) => {
                    tracing::info!(project = %key.project, rows, "dropped memtable rows of a deleted project");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })();
    if let Err(e) = res {
        discard(written);
        return Err(e);
    }
    let rows = job.mem.rows();
    let mut manifest = shared
        .manifest
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let mut next = manifest.clone();
    next.segments.extend(
        written
            .iter()
            .map(|s| Arc::new(SegmentFile::new(&cfg.data_dir, s.meta.clone()))),
    );
    next.wal_replay_from = job.wal_replay_from;
    if let Err(e) = next.store(&cfg.data_dir, cfg.encryption.as_ref()) {
        drop(manifest);
        discard(written);
        return Err(e);
    }
    *manifest = next;
    {
        let mut view = shared.view.write().unwrap_or_else(PoisonError::into_inner);
        view.segments = Arc::new(manifest.segments.clone());
        view.frozen = None;
    }
    publish_segment_gauges(&manifest.segments);
    drop(manifest);
    if let Err(e) = wal::remove_below(&wal_dir(&cfg.data_dir), job.wal_replay_from) {
        tracing::warn!(error = %e, "could not trim WAL files; they are skipped on replay");
    }
    Ok(rows)
}

/// Which optional columns a new segment has, and the order its rows come in.
pub(crate) struct Columns {
    /// Properties to shred (see `shred.rs`).
    pub shredded: Vec<String>,
    /// Some row may have personal values.
    pub personal: bool,
    /// The order of the batches written.
    pub order: RowOrder,
}

/// Writes `batch` as a new segment of (`project`, `day`) at `level` with `columns`; the
/// file is durable but not yet in any manifest.
pub(crate) fn write_new_segment(
    shared: &Shared,
    project: &ProjectId,
    day: i32,
    batches: impl IntoIterator<Item = Result<RecordBatch>>,
    level: u32,
    zstd_level: i32,
    columns: Columns,
) -> Result<SegmentFile> {
    let Columns {
        shredded,
        personal,
        order,
    } = columns;
    let cfg = &shared.cfg;
    let id = shared
        .manifest
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .allocate_segment_id();
    let path = cfg.data_dir.join(segment_rel_path(project, day, id));
    if let Some(dir) = path.parent() {
        create_dir_durable(dir)?;
    }
    let options = WriteOptions {
        row_group_rows: cfg.row_group_rows,
        zstd_level,
        shredded: &shredded,
        encryption: cfg.encryption.as_ref(),
        personal,
        order,
    };
    let w = write_segment(&path, project, day, batches, options)?;
    let meta = SegmentMeta {
        id,
        project: project.clone(),
        day,
        rows: w.rows,
        bytes: w.bytes,
        min_ts_ms: w.min_ts_ms,
        max_ts_ms: w.max_ts_ms,
        level,
        shredded,
        key_id: w.key_id,
        personal,
        order,
    };
    Ok(SegmentFile::new(&cfg.data_dir, meta))
}

/// Removes files of a failed flush (they are in no manifest).
fn discard(files: Vec<SegmentFile>) {
    for f in files {
        f.mark_obsolete();
    }
}

pub(crate) fn publish_segment_gauges(segments: &[Arc<SegmentFile>]) {
    ::metrics::gauge!(m::SEGMENTS).set(segments.len() as f64);
    ::metrics::gauge!(m::SEGMENT_BYTES)
        .set(segments.iter().map(|s| s.meta.bytes).sum::<u64>() as f64);
}
