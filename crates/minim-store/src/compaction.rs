//! Background compaction: merges a partition's small segments into one sorted in their
//! row order, within a row cap that bounds memory. Segments of one partition in different
//! orders (written before and after event-first order, `segment::RowOrder`) are merged
//! only with segments of their own order.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use minim_core::time::day_of;

use crate::Shared;
use crate::error::Result;
use crate::flush::{Columns, publish_segment_gauges, write_new_segment};
use crate::manifest::SegmentFile;
use crate::memtable::PartitionKey;
use crate::metrics as m;
use crate::segment::{RowOrder, SortedMerge};
use crate::shred;

/// Segments re-encrypted per compactor tick after a key rotation (bounds the work a
/// tick does; progress is visible through `rekey::progress`).
const REKEY_PER_TICK: usize = 4;

pub(crate) fn run_loop(shared: Arc<Shared>) {
    let interval = Duration::from_millis(shared.cfg.compaction_interval_ms);
    let mut last = Instant::now();
    while !shared.shutting_down.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(100).min(interval));
        if last.elapsed() < interval {
            continue;
        }
        last = Instant::now();
        if crate::erasure::any_pending(&shared)
            && let Err(e) = crate::erasure::complete_pending(&shared)
        {
            tracing::warn!(error = %e, "completing pending erasures failed; will retry");
        }
        if let Err(e) = run_once(&shared) {
            ::metrics::counter!(m::COMPACTION_ERRORS).increment(1);
            tracing::warn!(error = %e, "compaction failed; will retry");
        }
        if let Err(e) = crate::rekey::purge_destroyed(&shared) {
            ::metrics::counter!(m::COMPACTION_ERRORS).increment(1);
            tracing::warn!(error = %e, "removing a deleted project's segments failed; will retry");
        }
        if let Err(e) = crate::rekey::run_once(&shared, REKEY_PER_TICK) {
            ::metrics::counter!(m::COMPACTION_ERRORS).increment(1);
            tracing::warn!(error = %e, "re-encryption after a key rotation failed; will retry");
        }
    }
}

/// One pass over all partitions. Returns the number of partitions compacted.
pub(crate) fn run_once(shared: &Shared) -> Result<usize> {
    let _pass = shared
        .compaction_pass
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let cfg = &shared.cfg;
    let today = day_of(cfg.clock.now_ms());
    let plans: Vec<Vec<Arc<SegmentFile>>> = {
        let manifest = shared
            .manifest
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut parts: BTreeMap<(PartitionKey, RowOrder), Vec<Arc<SegmentFile>>> = BTreeMap::new();
        for s in &manifest.segments {
            if (s.meta.rows as usize) < cfg.compaction_max_rows {
                let key = PartitionKey {
                    project: s.meta.project.clone(),
                    day: s.meta.day,
                };
                parts
                    .entry((key, s.meta.order))
                    .or_default()
                    .push(s.clone());
            }
        }
        parts
            .into_iter()
            .filter_map(|((key, _), mut segs)| {
                // A cold partition (older than yesterday) is worth merging from two segments on.
                let min = if key.day < today - 1 {
                    2
                } else {
                    cfg.compaction_min_segments
                };
                segs.sort_by_key(|s| (s.meta.rows, s.meta.id));
                let rows: Vec<usize> = segs.iter().map(|s| s.meta.rows as usize).collect();
                let picked = pick(&rows, min, cfg.compaction_max_rows)?;
                Some(segs.drain(picked).collect::<Vec<_>>())
            })
            .collect()
    };
    let mut done = 0;
    for inputs in plans {
        if shared.shutting_down.load(Ordering::Acquire) {
            break;
        }
        compact(shared, &inputs)?;
        done += 1;
        ::metrics::counter!(m::COMPACTIONS).increment(1);
    }
    Ok(done)
}

/// Which of a partition's segments to merge, given their row counts sorted ascending:
/// size-tiered, so rows are rewritten O(log n) times. The pick is the first stretch of
/// consecutive segments in which each one has at most twice the rows of those before it
/// in the stretch, all of them fit in `max_rows`, and there are at least `min` of them.
/// Stretches start at every segment in turn, so one small segment (a late event for an
/// old day, say) cannot keep a tier of larger ones after it from merging.
fn pick(rows: &[usize], min: usize, max_rows: usize) -> Option<std::ops::Range<usize>> {
    (0..rows.len()).find_map(|start| {
        let mut total = 0usize;
        let mut end = start;
        for &r in rows.get(start..).unwrap_or_default() {
            if end > start && (r > 2 * total || total + r > max_rows) {
                break;
            }
            total += r;
            end += 1;
        }
        (end - start >= min.max(2)).then_some(start..end)
    })
}

fn compact(shared: &Shared, inputs: &[Arc<SegmentFile>]) -> Result<()> {
    let cfg = &shared.cfg;
    let paths: Vec<&std::path::Path> = inputs.iter().map(|s| s.path.as_path()).collect();
    let first = &inputs[0].meta;
    debug_assert!(inputs.iter().all(|s| s.meta.order == first.order));
    let merged = SortedMerge::new(&paths, first.order, cfg.encryption.as_ref())?;
    let shredded = shred::merge(
        inputs
            .iter()
            .map(|s| (s.meta.shredded.as_slice(), s.meta.rows)),
    );
    let output = write_new_segment(
        shared,
        &first.project,
        first.day,
        merged,
        1,
        cfg.compaction_zstd_level,
        Columns {
            shredded,
            personal: inputs.iter().any(|s| s.meta.personal),
            order: first.order,
        },
    )?;
    debug_assert_eq!(
        output.meta.rows,
        inputs.iter().map(|s| s.meta.rows).sum::<u64>()
    );
    let rows = output.meta.rows;
    let output = Arc::new(output);
    let mut manifest = shared
        .manifest
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let ids: Vec<u64> = inputs.iter().map(|s| s.meta.id).collect();
    let mut next = manifest.clone();
    next.segments.retain(|s| !ids.contains(&s.meta.id));
    next.segments.push(output.clone());
    if let Err(e) = next.store(&cfg.data_dir, cfg.encryption.as_ref()) {
        output.mark_obsolete();
        return Err(e);
    }
    *manifest = next;
    for s in inputs {
        s.mark_obsolete(); // deleted when the last snapshot drops it
    }
    shared
        .view
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .segments = Arc::new(manifest.segments.clone());
    publish_segment_gauges(&manifest.segments);
    tracing::debug!(inputs = inputs.len(), rows, "compacted partition");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::pick;

    #[test]
    fn equal_segments_merge_up_to_the_row_cap() {
        assert_eq!(pick(&[10, 10, 10, 10], 4, 100), Some(0..4));
        assert_eq!(pick(&[10, 10, 10, 10], 4, 35), None);
        assert_eq!(pick(&[10, 10, 10, 10], 2, 35), Some(0..3));
    }

    #[test]
    fn a_larger_segment_waits_until_the_smaller_ones_add_up_to_half_of_it() {
        assert_eq!(pick(&[10, 10, 50], 2, 1000), Some(0..2));
        assert_eq!(pick(&[10, 15, 50], 2, 1000), Some(0..3));
    }

    #[test]
    fn a_small_segment_does_not_block_the_tier_after_it() {
        // The 1-row segment cannot take the 100-row ones; they merge among themselves.
        assert_eq!(pick(&[1, 100, 100, 100, 100], 4, 1000), Some(1..5));
        assert_eq!(pick(&[1, 5000, 100_000], 2, 1_000_000), None);
    }

    #[test]
    fn never_a_single_segment() {
        assert_eq!(pick(&[10], 1, 100), None);
        assert_eq!(pick(&[], 2, 100), None);
    }
}
