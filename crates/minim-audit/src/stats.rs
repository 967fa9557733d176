//! Counters per stage of the write path, read with [`crate::AuditLog::stats`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the counters since the log was opened in this process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Records made durable by this process.
    pub records_appended: u64,
    /// Group writes (one write + one fsync each).
    pub groups_written: u64,
    /// Group writes that failed (their callers got an error).
    pub append_failures: u64,
    /// Appends rejected before writing (a limit was exceeded).
    pub events_rejected: u64,
    pub checkpoints_written: u64,
    /// Checkpoints that could not be written (the records themselves were durable).
    pub checkpoint_failures: u64,
    /// Mirror writes that failed (the log itself was fine).
    pub mirror_failures: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub records_appended: AtomicU64,
    pub groups_written: AtomicU64,
    pub append_failures: AtomicU64,
    pub events_rejected: AtomicU64,
    pub checkpoints_written: AtomicU64,
    pub checkpoint_failures: AtomicU64,
    /// Shared with the mirror writer.
    pub mirror_failures: Arc<AtomicU64>,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> AuditStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        AuditStats {
            records_appended: get(&self.records_appended),
            groups_written: get(&self.groups_written),
            append_failures: get(&self.append_failures),
            events_rejected: get(&self.events_rejected),
            checkpoints_written: get(&self.checkpoints_written),
            checkpoint_failures: get(&self.checkpoint_failures),
            mirror_failures: get(&self.mirror_failures),
        }
    }
}
