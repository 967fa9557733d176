//! `StoreConfig`: every knob of the event store, with typed defaults and units in the names.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use minim_core::time::Clock;

/// Tunables of the store. Serialized as the `[store]` section of the TOML config;
/// `data_dir`, `clock` and `faults` are set by the binary, not the file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    #[serde(skip)]
    pub data_dir: PathBuf,
    /// Append requests waiting for the WAL writer; when full, appends fail fast with
    /// `StoreError::Overloaded` (the server answers 503 with Retry-After).
    pub wal_queue_depth: usize,
    /// Upper bound of bytes written by one group commit (one fsync).
    pub wal_max_group_bytes: usize,
    /// Largest WAL record accepted on write and on recovery; bigger means corruption.
    pub wal_max_record_bytes: usize,
    /// Memtable size that triggers a flush to Parquet segments.
    pub memtable_max_bytes: usize,
    /// A non-empty memtable is flushed at least this often.
    pub flush_interval_ms: u64,
    /// `insert_id` dedupe is guaranteed for events within this many days of the newest
    /// event time seen in the project, across restarts.
    pub dedupe_window_days: u32,
    /// How often the compactor looks for work.
    pub compaction_interval_ms: u64,
    /// A partition with at least this many small segments is compacted.
    pub compaction_min_segments: usize,
    /// Row cap of one compacted segment (compaction streams, so this bounds file size,
    /// not memory).
    pub compaction_max_rows: usize,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// zstd level of segments written by flushes (on the ingest path: fast).
    pub flush_zstd_level: i32,
    /// zstd level of segments written by compaction (in the background: smaller).
    pub compaction_zstd_level: i32,
    #[serde(skip)]
    pub clock: Clock,
    #[serde(skip)]
    pub faults: Faults,
    /// Encryption of WAL records, segments and the manifest (set by the binary from the
    /// keyring; `None` writes plaintext, which only tests and benchmarks do).
    #[serde(skip)]
    pub encryption: Option<crate::Encryption>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./minim-data"),
            wal_queue_depth: 256,
            wal_max_group_bytes: 16 << 20,
            wal_max_record_bytes: 256 << 20,
            memtable_max_bytes: 64 << 20,
            flush_interval_ms: 30_000,
            dedupe_window_days: 7,
            compaction_interval_ms: 10_000,
            compaction_min_segments: 4,
            compaction_max_rows: 4_000_000,
            row_group_rows: 128 * 1024,
            flush_zstd_level: 1,
            compaction_zstd_level: 3,
            clock: Clock::system(),
            faults: Faults::default(),
            encryption: None,
        }
    }
}

impl StoreConfig {
    /// Checks ranges; the error names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("store.wal_queue_depth", self.wal_queue_depth as u64),
            ("store.wal_max_group_bytes", self.wal_max_group_bytes as u64),
            (
                "store.wal_max_record_bytes",
                self.wal_max_record_bytes as u64,
            ),
            ("store.memtable_max_bytes", self.memtable_max_bytes as u64),
            ("store.flush_interval_ms", self.flush_interval_ms),
            ("store.compaction_interval_ms", self.compaction_interval_ms),
            ("store.compaction_max_rows", self.compaction_max_rows as u64),
            ("store.row_group_rows", self.row_group_rows as u64),
            (
                "store.dedupe_window_days",
                u64::from(self.dedupe_window_days),
            ),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("{name} must be greater than 0"));
            }
        }
        if self.compaction_min_segments < 2 {
            return Err("store.compaction_min_segments must be at least 2".into());
        }
        for (name, level) in [
            ("store.flush_zstd_level", self.flush_zstd_level),
            ("store.compaction_zstd_level", self.compaction_zstd_level),
        ] {
            if !(1..=22).contains(&level) {
                return Err(format!("{name} must be between 1 and 22"));
            }
        }
        if self.wal_max_record_bytes > u32::MAX as usize {
            return Err("store.wal_max_record_bytes must fit in 32 bits".into());
        }
        Ok(())
    }
}

/// Fault injection for tests of the failure paths (an fsync that fails, a full disk).
/// Always off in production; cheap to check.
#[derive(Debug, Clone, Default)]
pub struct Faults(Arc<FaultFlags>);

#[derive(Debug, Default)]
struct FaultFlags {
    fail_wal_sync: AtomicBool,
    fail_flush: AtomicBool,
    /// 0 = off, else `ErasureFault as u8 + 1`.
    fail_erasure_at: AtomicU8,
}

/// A point where an injected fault interrupts an erasure, leaving the directory exactly
/// as a crash there would (files already written stay on disk), so that tests can
/// reopen a copy of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErasureFault {
    /// The pending erasure is in the manifest; the memtable is not flushed yet.
    AfterRecord,
    /// The memtable is in segments and old WAL files are gone; no segment is rewritten.
    AfterFlush,
    /// The rewritten segments are on disk; the manifest does not list them yet.
    BeforeCommit,
}

impl Faults {
    pub fn set_fail_wal_sync(&self, on: bool) {
        self.0.fail_wal_sync.store(on, Ordering::Relaxed);
    }
    pub fn set_fail_flush(&self, on: bool) {
        self.0.fail_flush.store(on, Ordering::Relaxed);
    }
    /// Makes erasures stop with an error at `at` (`None`: off).
    pub fn set_fail_erasure_at(&self, at: Option<ErasureFault>) {
        self.0
            .fail_erasure_at
            .store(at.map_or(0, |a| a as u8 + 1), Ordering::Relaxed);
    }
    pub(crate) fn wal_sync(&self) -> std::io::Result<()> {
        if self.0.fail_wal_sync.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("injected fsync failure"));
        }
        Ok(())
    }
    pub(crate) fn flush(&self) -> std::io::Result<()> {
        if self.0.fail_flush.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("injected flush failure"));
        }
        Ok(())
    }
    pub(crate) fn erasure(&self, at: ErasureFault) -> std::io::Result<()> {
        if self.0.fail_erasure_at.load(Ordering::Relaxed) == at as u8 + 1 {
            return Err(std::io::Error::other(format!(
                "injected erasure interruption at {at:?}"
            )));
        }
        Ok(())
    }
}
