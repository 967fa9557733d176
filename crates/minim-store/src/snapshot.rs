//! Point-in-time read views over segments and memtables.

use std::sync::{Arc, PoisonError};

use minim_core::{Event, ProjectId};

use crate::Shared;
use crate::error::Result;
use crate::manifest::SegmentFile;
use crate::memtable::PartitionKey;
use crate::segment::{batch_to_events, read_segment};

/// Everything acknowledged at the moment it was taken. Holding it keeps its segment
/// files alive even if compaction replaces them.
#[derive(Clone)]
pub struct Snapshot {
    pub segments: Arc<Vec<Arc<SegmentFile>>>,
    pub memtable: Vec<(PartitionKey, Arc<Vec<Event>>)>,
    /// How to decrypt the segments (None: plaintext store).
    pub encryption: Option<crate::Encryption>,
}

pub(crate) fn take(shared: &Shared) -> Snapshot {
    let v = shared.view.read().unwrap_or_else(PoisonError::into_inner);
    let mut memtable = Vec::new();
    for mem in v
        .frozen
        .iter()
        .map(Arc::as_ref)
        .chain(std::iter::once(&v.active))
    {
        for (key, chunks) in mem.partitions() {
            memtable.extend(chunks.iter().map(|c| (key.clone(), c.clone())));
        }
    }
    Snapshot {
        segments: v.segments.clone(),
        memtable,
        encryption: shared.cfg.encryption.clone(),
    }
}

impl Snapshot {
    /// Total rows visible in this snapshot.
    pub fn rows(&self) -> u64 {
        self.segments.iter().map(|s| s.meta.rows).sum::<u64>()
            + self
                .memtable
                .iter()
                .map(|(_, c)| c.len() as u64)
                .sum::<u64>()
    }

    /// Every event of `project` (segments, then memtable). For tests, tools and the
    /// query layer's fallback; callers must have authorized the read.
    pub fn events(&self, project: &ProjectId) -> Result<Vec<Event>> {
        let mut out = Vec::new();
        for s in self.segments.iter().filter(|s| &s.meta.project == project) {
            for b in read_segment(&s.path, None, self.encryption.as_ref())? {
                out.extend(batch_to_events(&b, &s.path)?);
            }
        }
        for (key, chunk) in &self.memtable {
            if &key.project == project {
                out.extend(chunk.iter().cloned());
            }
        }
        Ok(out)
    }

    /// Projects with any data in this snapshot.
    pub fn projects(&self) -> Vec<ProjectId> {
        let mut p: Vec<ProjectId> = self
            .segments
            .iter()
            .map(|s| s.meta.project.clone())
            .chain(self.memtable.iter().map(|(k, _)| k.project.clone()))
            .collect();
        p.sort();
        p.dedup();
        p
    }
}
