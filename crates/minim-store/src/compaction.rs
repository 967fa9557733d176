//! Background compaction: merges a partition's small segments into one sorted by
//! (`distinct_id`, `timestamp`), within a row cap that bounds memory.

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
use crate::segment::SortedMerge;
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
        let mut parts: BTreeMap<PartitionKey, Vec<Arc<SegmentFile>>> = BTreeMap::new();
        for s in &manifest.segments {
            if (s.meta.rows as usize) < cfg.compaction_max_rows {
                let key = PartitionKey {
                    project: s.meta.project.clone(),
                    day: s.meta.day,
                };
                parts.entry(key).or_default().push(s.clone());
            }
        }
        parts
            .into_iter()
            .filter_map(|(key, mut segs)| {
                // A cold partition (older than yesterday) is worth merging from two segments on.
                let min = if key.day < today - 1 {
                    2
                } else {
                    cfg.compaction_min_segments
                };
                // Size-tiered: smallest first, and a larger segment joins only once the
                // smaller ones add up to half its size, so rows are rewritten O(log n) times.
                segs.sort_by_key(|s| (s.meta.rows, s.meta.id));
                let mut picked = Vec::new();
                let mut rows = 0usize;
                for s in segs {
                    let r = s.meta.rows as usize;
                    if !picked.is_empty() && (r > 2 * rows || rows + r > cfg.compaction_max_rows) {
                        break;
                    }
                    rows += r;
                    picked.push(s);
                }
                (picked.len() >= min).then_some(picked)
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

fn compact(shared: &Shared, inputs: &[Arc<SegmentFile>]) -> Result<()> {
    let cfg = &shared.cfg;
    let paths: Vec<&std::path::Path> = inputs.iter().map(|s| s.path.as_path()).collect();
    let merged = SortedMerge::new(&paths, cfg.encryption.as_ref())?;
    let first = &inputs[0].meta;
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
