//! Erasure of one user's events (data subject requests), crash-safe through a pending
//! entry in the manifest.
//!
//! Steps, all under `Shared::compaction_pass` (so no compaction merges a segment being
//! rewritten):
//! 1. Record `{project, distinct_id}` in the manifest's pending erasures (durable swap).
//!    From here on, WAL replay on open skips the user's events of that project.
//! 2. Flush the memtable with a WAL rotation and delete the WAL files below the new
//!    replay point: every event acknowledged before the call is now in a segment.
//! 3. For every segment of the project holding a row of the user (found through the
//!    `distinct_id` statistics of its row groups, then a scan of that column), write a
//!    copy without those rows; a segment left empty is simply unlisted.
//! 4. One manifest swap lists the copies, unlists the originals and removes the pending
//!    entry; then the originals are deleted (or when the last snapshot holding them drops).
//!
//! A crash before 4 leaves the entry pending: `open` replays the WAL without the user's
//! events and completes the erasure (so does the compactor thread, and the next call);
//! new files of an interrupted attempt are unlisted and deleted on open. A crash after
//! 4 finds the originals unlisted and deletes them on open. Other events are never at
//! risk: they are in the WAL until a manifest lists segments holding them.

use std::sync::PoisonError;

use arrow::array::{BooleanArray, RecordBatch};
use minim_core::ProjectId;

use crate::Shared;
use crate::config::ErasureFault;
use crate::error::{Result, StoreError};
use crate::manifest::PendingErasure;
use crate::rewrite::{Swap, commit, flush_everything, rewrite_segment};
use crate::segment::{COL_DISTINCT_ID, count_distinct_id, parquet_err, string_col};

/// What an erasure removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ErasureReport {
    /// Events erased from segments. The memtable is flushed first, so this includes the
    /// events that were only in the memtable and the WAL.
    pub events_erased: u64,
    /// Segments replaced by a copy without the user's rows.
    pub segments_rewritten: u64,
    /// Segments that held only the user's rows, unlisted without a copy.
    pub segments_deleted: u64,
}

pub(crate) fn erase_user(
    shared: &Shared,
    project: &ProjectId,
    distinct_id: &str,
) -> Result<ErasureReport> {
    let _pass = shared
        .compaction_pass
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let entry = PendingErasure {
        project: project.clone(),
        distinct_id: distinct_id.to_owned(),
    };
    record(shared, &entry)?;
    fault(shared, ErasureFault::AfterRecord)?;
    let reports = complete(shared, std::slice::from_ref(&entry))?;
    let report = reports.into_iter().next().unwrap_or_default();
    ::metrics::counter!(crate::metrics::ERASURES).increment(1);
    ::metrics::counter!(crate::metrics::EVENTS_ERASED).increment(report.events_erased);
    tracing::info!(
        project = %project,
        events_erased = report.events_erased,
        segments_rewritten = report.segments_rewritten,
        segments_deleted = report.segments_deleted,
        "user erased"
    );
    Ok(report)
}

/// Completes every erasure still pending in the manifest (after a crash or a failed
/// call). Returns how many were completed.
pub(crate) fn complete_pending(shared: &Shared) -> Result<usize> {
    let _pass = shared
        .compaction_pass
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let entries = shared
        .manifest
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pending_erasures
        .clone();
    if entries.is_empty() {
        return Ok(0);
    }
    let reports = complete(shared, &entries)?;
    let erased: u64 = reports.iter().map(|r| r.events_erased).sum();
    ::metrics::counter!(crate::metrics::ERASURES).increment(entries.len() as u64);
    ::metrics::counter!(crate::metrics::EVENTS_ERASED).increment(erased);
    tracing::info!(
        erasures = entries.len(),
        events_erased = erased,
        "completed pending erasures"
    );
    Ok(entries.len())
}

/// Whether any erasure is pending (cheap; for the compactor loop).
pub(crate) fn any_pending(shared: &Shared) -> bool {
    !shared
        .manifest
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pending_erasures
        .is_empty()
}

/// Step 1: makes the pending entry durable (once, even if requested twice).
fn record(shared: &Shared, entry: &PendingErasure) -> Result<()> {
    let mut manifest = shared
        .manifest
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if manifest.pending_erasures.contains(entry) {
        return Ok(());
    }
    let mut next = manifest.clone();
    next.pending_erasures.push(entry.clone());
    next.store(&shared.cfg.data_dir, shared.cfg.encryption.as_ref())?;
    *manifest = next;
    Ok(())
}

/// Steps 2-4 for `entries` (the caller holds `compaction_pass`).
fn complete(shared: &Shared, entries: &[PendingErasure]) -> Result<Vec<ErasureReport>> {
    flush_everything(shared)?;
    fault(shared, ErasureFault::AfterFlush)?;
    entries
        .iter()
        .map(|e| erase_from_segments(shared, e))
        .collect()
}

/// Steps 3-4 for one entry.
fn erase_from_segments(shared: &Shared, entry: &PendingErasure) -> Result<ErasureReport> {
    let segments: Vec<_> = shared
        .manifest
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .segments
        .iter()
        .filter(|s| s.meta.project == entry.project)
        .cloned()
        .collect();
    let mut report = ErasureReport::default();
    let mut swap = Swap::default();
    let planned = (|| {
        for seg in segments {
            let count = count_distinct_id(
                &seg.path,
                &entry.distinct_id,
                shared.cfg.encryption.as_ref(),
            )?;
            let matching = count.matching;
            if matching == 0 {
                continue;
            }
            if count.rows != seg.meta.rows {
                return Err(StoreError::Corrupt {
                    path: seg.path.clone(),
                    reason: format!(
                        "{} rows in the file, {} listed in the manifest",
                        count.rows, seg.meta.rows
                    ),
                });
            }
            report.events_erased += matching;
            if matching == seg.meta.rows {
                report.segments_deleted += 1;
            } else {
                let mut removed = 0u64;
                let copy = rewrite_segment(shared, &seg, |batch| {
                    let (kept, n) = without_user(&batch, &entry.distinct_id, &seg.path)?;
                    removed += n;
                    Ok(kept)
                })?;
                // Check what is about to replace the original before listing it.
                if removed != matching || copy.meta.rows != seg.meta.rows - matching {
                    copy.mark_obsolete();
                    return Err(StoreError::Corrupt {
                        path: seg.path.clone(),
                        reason: format!(
                            "erasure rewrite mismatch: {matching} matching rows counted, \
                             {removed} removed, {} of {} rows kept",
                            copy.meta.rows, seg.meta.rows
                        ),
                    });
                }
                report.segments_rewritten += 1;
                swap.added.push(copy);
            }
            swap.removed.push(seg);
        }
        Ok(())
    })();
    if let Err(e) = planned {
        swap.discard();
        return Err(e);
    }
    if let Err(e) = fault(shared, ErasureFault::BeforeCommit) {
        // As a crash here would: the copies stay on disk, unlisted.
        drop(swap);
        return Err(e);
    }
    commit(shared, swap, |m| m.pending_erasures.retain(|p| p != entry))?;
    Ok(report)
}

/// `batch` without the rows of `distinct_id`, and how many were dropped.
fn without_user(
    batch: &RecordBatch,
    distinct_id: &str,
    path: &std::path::Path,
) -> Result<(RecordBatch, u64)> {
    let ids = string_col(batch, COL_DISTINCT_ID, path)?;
    let keep: BooleanArray = ids.iter().map(|v| Some(v != Some(distinct_id))).collect();
    let dropped = (batch.num_rows() - keep.true_count()) as u64;
    if dropped == 0 {
        return Ok((batch.clone(), 0));
    }
    let kept =
        arrow::compute::filter_record_batch(batch, &keep).map_err(|e| parquet_err(path, e))?;
    Ok((kept, dropped))
}

fn fault(shared: &Shared, at: ErasureFault) -> Result<()> {
    shared
        .cfg
        .faults
        .erasure(at)
        .map_err(|e| StoreError::io(&shared.cfg.data_dir, e))
}
