//! The embedded event store: WAL with group commit, memtable, Parquet segments,
//! an atomically swapped manifest and background compaction.
//!
//! Write path: [`Store::append`] queues a batch for the WAL writer thread
//! (`writer.rs`), which dedupes `insert_id`s, writes one record per batch, fsyncs once
//! per group and only then inserts into the memtable and answers. Full memtables are
//! frozen and written to segments by the flusher (`flush.rs`); small segments are merged
//! by the compactor (`compaction.rs`). Recovery is in `recovery.rs`.
//!
//! Privacy operations rewrite segments through one shared path (`rewrite.rs`):
//! [`Store::erase_user`] (`erasure.rs`) removes one user's events everywhere, crash-safe
//! through a pending entry in the manifest; [`Store::apply_retention`] (`retention.rs`)
//! deletes expired events and properties.
//!
//! This crate knows nothing about HTTP, JSON wire formats or authorization.

mod compaction;
pub mod config;
mod crypt;
mod dedupe;
mod erasure;
mod error;
mod flush;
mod fsutil;
pub mod manifest;
mod memtable;
pub mod metrics;
mod props_edit;
mod recovery;
pub mod rekey;
mod retention;
mod rewrite;
pub mod segment;
pub mod shred;
mod snapshot;
pub mod wal;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use minim_core::{EventBatch, ProjectId};

pub use config::{ErasureFault, Faults, StoreConfig};
pub use crypt::Encryption;
pub use erasure::ErasureReport;
pub use error::{Result, StoreError};
pub use manifest::{PendingErasure, SegmentFile, SegmentMeta};
pub use memtable::{Memtable, PartitionKey};
pub use props_edit::PropRemover;
pub use recovery::in_use;
pub use retention::{RetentionPolicy, RetentionReport};
pub use snapshot::Snapshot;

/// What happened to an appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AppendOutcome {
    /// Events now durable.
    pub stored: usize,
    /// Events dropped because their `insert_id` was already stored.
    pub duplicates: usize,
}

/// Health of the write path, for readiness checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Ready,
    /// Writes are refused or will be; the string is safe to log (no data).
    Unready(String),
}

/// The event store. Cheap to share behind an `Arc`; [`Store::shutdown`] flushes.
pub struct Store {
    shared: Arc<Shared>,
    tx: SyncSender<writer::Msg>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    _lock: File,
}

/// State shared by the store's threads.
pub(crate) struct Shared {
    pub cfg: StoreConfig,
    /// What readers see: live segments and memtables, swapped consistently.
    pub view: RwLock<View>,
    /// Serializes manifest rewrites (flusher and compactor).
    pub manifest: Mutex<manifest::Manifest>,
    /// Serializes everything that replaces live segments: compaction passes (the
    /// background loop and `Store::compact_now`), erasures and retention runs. Flushes
    /// only add segments and do not take it.
    pub compaction_pass: Mutex<()>,
    /// The WAL writer's queue, for work that needs a flush from a background thread
    /// (completing a pending erasure). `None` before start and after shutdown.
    pub writer: Mutex<Option<SyncSender<writer::Msg>>>,
    pub queue_depth: AtomicUsize,
    pub wal_ok: AtomicBool,
    pub flush_ok: AtomicBool,
    pub shutting_down: AtomicBool,
    pub last_error: Mutex<Option<String>>,
}

/// The readers' view.
#[derive(Default)]
pub(crate) struct View {
    pub segments: Arc<Vec<Arc<SegmentFile>>>,
    pub active: Memtable,
    pub frozen: Option<Arc<Memtable>>,
}

impl Shared {
    pub fn set_error(&self, what: &str) {
        if let Ok(mut e) = self.last_error.lock() {
            *e = Some(what.to_owned());
        }
    }
}

impl Store {
    /// Opens (or creates) the store in `cfg.data_dir`, recovering from the WAL.
    /// Fails with [`StoreError::Locked`] if another process holds the directory.
    pub fn open(cfg: StoreConfig) -> Result<Self> {
        recovery::open(cfg)
    }

    /// Appends a batch durably. Resolves once every stored event is fsynced and visible
    /// to readers. Fails fast with [`StoreError::Overloaded`] when the queue is full.
    pub async fn append(&self, batch: EventBatch) -> Result<AppendOutcome> {
        let rx = self.enqueue(batch)?;
        rx.await.map_err(|_| StoreError::ShuttingDown)?
    }

    /// Blocking variant of [`Store::append`] for non-async callers.
    pub fn append_blocking(&self, batch: EventBatch) -> Result<AppendOutcome> {
        let rx = self.enqueue(batch)?;
        rx.blocking_recv().map_err(|_| StoreError::ShuttingDown)?
    }

    fn enqueue(
        &self,
        batch: EventBatch,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<AppendOutcome>>> {
        if self.shared.shutting_down.load(Ordering::Acquire) {
            return Err(StoreError::ShuttingDown);
        }
        if !self.shared.wal_ok.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable(
                "the write-ahead log is not writable".into(),
            ));
        }
        let (resp, rx) = tokio::sync::oneshot::channel();
        let depth = self.shared.queue_depth.fetch_add(1, Ordering::AcqRel) + 1;
        ::metrics::gauge!(metrics::WAL_QUEUE_DEPTH).set(depth as f64);
        match self
            .tx
            .try_send(writer::Msg::Append(writer::Request { batch, resp }))
        {
            Ok(()) => Ok(rx),
            Err(e) => {
                self.shared.queue_depth.fetch_sub(1, Ordering::AcqRel);
                Err(match e {
                    TrySendError::Full(_) => StoreError::Overloaded,
                    TrySendError::Disconnected(_) => StoreError::ShuttingDown,
                })
            }
        }
    }

    /// Whether the store can accept writes now.
    pub fn health(&self) -> Health {
        let s = &self.shared;
        if s.shutting_down.load(Ordering::Acquire) {
            return Health::Unready("shutting down".into());
        }
        if !s.wal_ok.load(Ordering::Acquire) {
            return Health::Unready("write-ahead log not writable".into());
        }
        if !s.flush_ok.load(Ordering::Acquire) {
            return Health::Unready("segment flush failing".into());
        }
        if s.queue_depth.load(Ordering::Acquire) >= s.cfg.wal_queue_depth {
            return Health::Unready("write queue full".into());
        }
        Health::Ready
    }

    /// The last storage error seen (for operators; never contains event data).
    pub fn last_error(&self) -> Option<String> {
        self.shared.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// Requests waiting for the WAL writer.
    pub fn queue_depth(&self) -> usize {
        self.shared.queue_depth.load(Ordering::Acquire)
    }

    /// A consistent point-in-time view of everything acknowledged so far.
    /// How this store encrypts (None: plaintext, tests and benchmarks only).
    pub fn encryption(&self) -> Option<&Encryption> {
        self.shared.cfg.encryption.as_ref()
    }

    pub fn snapshot(&self) -> Snapshot {
        snapshot::take(&self.shared)
    }

    /// Freezes the memtable and waits until it is in segments (tests, shutdown, tools).
    pub fn flush(&self) -> Result<()> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.tx
            .send(writer::Msg::Flush(tx))
            .map_err(|_| StoreError::ShuttingDown)?;
        rx.recv().map_err(|_| StoreError::ShuttingDown)?
    }

    /// Runs one compaction pass now; returns how many partitions were compacted.
    pub fn compact_now(&self) -> Result<usize> {
        compaction::run_once(&self.shared)
    }

    /// Re-encrypts up to `max` segments still under an older project key (what the
    /// compactor does in the background after `minim keys rotate`). Returns how many.
    pub fn reencrypt_now(&self, max: usize) -> Result<usize> {
        rekey::run_once(&self.shared, max)
    }

    /// Removes the segments of projects whose keys were destroyed (what the compactor
    /// does in the background after `minim project delete`). Returns how many.
    pub fn purge_destroyed_now(&self) -> Result<usize> {
        rekey::purge_destroyed(&self.shared)
    }

    /// Erases every event of `distinct_id` in `project` acknowledged before this call:
    /// from the memtable, the WAL and every segment. Other projects are untouched, even
    /// for the same distinct id. Blocks until the erasure is durable.
    ///
    /// - When it returns `Ok`, the manifest no longer lists a segment holding those
    ///   events, no WAL file holds them, and the files that did are deleted, except
    ///   files a still-open [`Snapshot`] pins: those are deleted when the last snapshot
    ///   holding them drops (and, after a crash, on the next open, as unlisted files).
    ///   A crash at any later point cannot bring the events back.
    /// - Events of the same user appended *while* the call runs may or may not be
    ///   erased: those acknowledged before its flush freezes the memtable are, later
    ///   ones are kept, except that a crash before the erasure completes makes WAL
    ///   replay drop every event of the user still in the WAL. Events appended after
    ///   it returns are always kept.
    /// - On error the erasure stays recorded in the manifest and is completed by the
    ///   background compactor or on the next open; until then WAL replay skips the
    ///   user's events, and calling again is safe.
    /// - The distinct id is never logged; the manifest holds it only while the erasure
    ///   is pending.
    pub fn erase_user(&self, project: &ProjectId, distinct_id: &str) -> Result<ErasureReport> {
        erasure::erase_user(&self.shared, project, distinct_id)
    }

    /// Applies `policy` to `project` now, by the clock of the store config: flushes the
    /// memtable (rotating the WAL) so that nothing expired stays in the memtable or the
    /// WAL, drops whole partitions older than every cutoff without reading their rows,
    /// and rewrites the other affected segments, all in one manifest swap. Events
    /// appended while it runs are not covered. Replaced files pinned by an open
    /// [`Snapshot`] are deleted when it drops. See [`RetentionPolicy`] for the rules.
    pub fn apply_retention(
        &self,
        project: &ProjectId,
        policy: &RetentionPolicy,
    ) -> Result<RetentionReport> {
        retention::apply(&self.shared, project, policy)
    }

    pub fn data_dir(&self) -> &Path {
        &self.shared.cfg.data_dir
    }

    /// Stops accepting appends, drains the queue, flushes the memtable to segments and
    /// stops the background threads. Idempotent.
    pub fn shutdown(&self) -> Result<()> {
        if self.shared.shutting_down.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.shared
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let (tx, rx) = std::sync::mpsc::channel();
        let flushed = match self.tx.send(writer::Msg::Shutdown(tx)) {
            Ok(()) => rx.recv().unwrap_or(Err(StoreError::ShuttingDown)),
            Err(_) => Ok(()),
        };
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
        flushed
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Without an explicit shutdown the WAL still holds everything acknowledged;
        // stop the threads so the directory lock is released cleanly.
        let _ = self.shutdown();
    }
}

pub(crate) fn wal_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("wal")
}

pub(crate) fn segments_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("segments")
}
