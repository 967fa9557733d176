//! Replacing live segments by edited copies in one manifest swap: the path erasure and
//! retention share.
//!
//! A rewrite streams a segment's rows through an edit into a new segment of the same
//! partition, level and shredded properties (the shredded columns are recomputed from
//! the edited `properties`, so they stay derived data). New files are durable before
//! the one manifest swap that lists them and unlists the old ones; readers see either
//! the old or the new set. Old files are deleted when the last snapshot holding them
//! drops; a crash before that leaves them unlisted, and `open` deletes unlisted files.
//! Callers hold `Shared::compaction_pass`, so no compaction re-adds rows from a segment
//! being replaced.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, PoisonError};

use arrow::array::RecordBatch;

use crate::Shared;
use crate::error::{Result, StoreError};
use crate::flush::{Columns, publish_segment_gauges, write_new_segment};
use crate::fsutil::sync_dir;
use crate::manifest::{Manifest, SegmentFile};
use crate::segment::{base_columns, conform, open_segment, parquet_err};
use crate::wal;

/// Rows per batch read by a rewrite (bounds its memory).
const REWRITE_BATCH_ROWS: usize = 8192;

/// Segments to unlist and the segments replacing them.
#[derive(Default)]
pub(crate) struct Swap {
    pub removed: Vec<Arc<SegmentFile>>,
    pub added: Vec<SegmentFile>,
}

impl Swap {
    /// Deletes the files written for a swap that will not be committed.
    pub fn discard(self) {
        for f in self.added {
            f.mark_obsolete();
        }
    }
}

/// Writes a new segment holding `seg`'s rows passed through `edit` (which returns the
/// rows to keep, in order, with base columns). The file is durable but unlisted.
pub(crate) fn rewrite_segment(
    shared: &Shared,
    seg: &SegmentFile,
    mut edit: impl FnMut(RecordBatch) -> Result<RecordBatch>,
) -> Result<SegmentFile> {
    let path = seg.path.clone();
    let reader = open_segment(
        &path,
        Some(&base_columns()),
        REWRITE_BATCH_ROWS,
        shared.cfg.encryption.as_ref(),
    )?;
    let batches = reader.filter_map(move |b| {
        let edited = b
            .map_err(|e| parquet_err(&path, e))
            .and_then(|b| conform(&b).map_err(|reason| parquet_err(&path, reason)))
            .and_then(&mut edit);
        match edited {
            Ok(b) if b.num_rows() == 0 => None,
            other => Some(other),
        }
    });
    let meta = &seg.meta;
    write_new_segment(
        shared,
        &meta.project,
        meta.day,
        batches,
        meta.level,
        shared.cfg.compaction_zstd_level,
        Columns {
            shredded: meta.shredded.clone(),
            personal: meta.personal,
            // Dropping rows keeps the others in their order.
            order: meta.order,
        },
    )
}

/// Commits `swap` (and `edit` of the manifest, e.g. removing a pending erasure) in one
/// durable manifest swap, publishes it to readers, then lets go of the old files: they
/// are deleted now unless a snapshot still holds them. On error nothing changed and the
/// new files are deleted.
pub(crate) fn commit(shared: &Shared, swap: Swap, edit: impl FnOnce(&mut Manifest)) -> Result<()> {
    let cfg = &shared.cfg;
    let Swap { removed, added } = swap;
    let added: Vec<Arc<SegmentFile>> = added.into_iter().map(Arc::new).collect();
    let ids: HashSet<u64> = removed.iter().map(|s| s.meta.id).collect();
    {
        let mut manifest = shared
            .manifest
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut next = manifest.clone();
        let before = next.segments.len();
        next.segments.retain(|s| !ids.contains(&s.meta.id));
        if before - next.segments.len() != ids.len() {
            // Only holders of `compaction_pass` unlist segments, so this is a bug.
            debug_assert!(false, "a segment to replace is no longer listed");
            for a in &added {
                a.mark_obsolete();
            }
            return Err(StoreError::Corrupt {
                path: cfg.data_dir.join(crate::manifest::MANIFEST_FILE),
                reason: "a segment to replace is no longer listed".into(),
            });
        }
        next.segments.extend(added.iter().cloned());
        edit(&mut next);
        if let Err(e) = next.store(&cfg.data_dir, cfg.encryption.as_ref()) {
            for a in &added {
                a.mark_obsolete();
            }
            return Err(e);
        }
        *manifest = next;
        for s in &removed {
            s.mark_obsolete();
        }
        shared
            .view
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .segments = Arc::new(manifest.segments.clone());
        publish_segment_gauges(&manifest.segments);
    }
    let dirs: BTreeSet<PathBuf> = removed
        .iter()
        .filter_map(|s| s.path.parent().map(PathBuf::from))
        .collect();
    drop(removed); // the last holder deletes the file
    for dir in dirs {
        // Best effort: an unlink lost in a crash leaves an unlisted file, deleted on open.
        if let Err(e) = sync_dir(&dir) {
            tracing::warn!(error = %e, "could not fsync a segment directory after removing files");
        }
    }
    Ok(())
}

/// Deletes the WAL files below the manifest's replay point. The flusher does this too
/// but only warns on failure; erasure and retention must not return while one is left.
pub(crate) fn trim_wal(shared: &Shared) -> Result<()> {
    let from = shared
        .manifest
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .wal_replay_from;
    wal::remove_below(&crate::wal_dir(&shared.cfg.data_dir), from).map(drop)
}

/// Flushes the memtable with a WAL rotation and trims the WAL: afterwards every event
/// acknowledged before the call is in a listed segment and in no WAL file.
pub(crate) fn flush_everything(shared: &Shared) -> Result<()> {
    let before = shared
        .manifest
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .wal_replay_from;
    crate::writer::flush_and_rotate(shared)?;
    let after = shared
        .manifest
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .wal_replay_from;
    if after <= before {
        debug_assert!(false, "a rotating flush did not move the WAL replay point");
        return Err(StoreError::Unavailable(
            "the write-ahead log was not rotated".into(),
        ));
    }
    trim_wal(shared)
}
