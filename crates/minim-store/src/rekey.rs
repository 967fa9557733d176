//! Re-encryption after a key rotation, and purging the segments of deleted projects.
//!
//! Re-encryption: segments written under a project key that is no
//! longer its primary are rewritten under the primary, a few per compactor tick, each
//! through the same manifest swap as erasure and retention. Until a segment's swap
//! commits its old file stays listed and readable (old keys stay in the keyset,
//! decrypt-only), so a crash at any moment leaves every event readable; after a crash
//! the work simply continues.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError};

use minim_core::ProjectId;
use minim_crypto::KeysetName;

use crate::Shared;
use crate::crypt::crypto_err;
use crate::error::Result;
use crate::manifest::{Manifest, SegmentFile};
use crate::rewrite::{Swap, commit, rewrite_segment};

/// Re-encryption progress of one project.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyProgress {
    pub project: String,
    pub primary_key_id: u32,
    pub segments: usize,
    /// Segments still under an older key (or plaintext).
    pub segments_stale: usize,
}

/// Progress per project, from a manifest (works without opening the store, so the CLI
/// can show it while a server runs). Projects whose keys were destroyed are left out.
pub fn progress(manifest: &Manifest, enc: &crate::Encryption) -> Result<Vec<KeyProgress>> {
    let mut by_project: BTreeMap<&ProjectId, Vec<&Arc<SegmentFile>>> = BTreeMap::new();
    for s in &manifest.segments {
        by_project.entry(&s.meta.project).or_default().push(s);
    }
    let mut out = Vec::new();
    for (project, segs) in by_project {
        let name = KeysetName::project(project.as_str());
        let Some(ks) = enc.keyring().get(&name).or_else(|e| {
            if e.is_destroyed() {
                Ok(None)
            } else {
                Err(crypto_err(&name.label(), e))
            }
        })?
        else {
            continue;
        };
        let primary = ks.primary_id();
        out.push(KeyProgress {
            project: project.as_str().to_owned(),
            primary_key_id: primary,
            segments: segs.len(),
            segments_stale: segs.iter().filter(|s| s.meta.key_id != primary).count(),
        });
    }
    Ok(out)
}

/// The segments the manifest lists now.
fn live_segments(shared: &Shared) -> Vec<Arc<SegmentFile>> {
    shared
        .manifest
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .segments
        .clone()
}

/// Rewrites up to `max` stale segments under their project's primary key. Returns how
/// many were rewritten. Callers must not hold `compaction_pass`.
pub(crate) fn run_once(shared: &Shared, max: usize) -> Result<usize> {
    let Some(enc) = shared.cfg.encryption.as_ref() else {
        return Ok(0);
    };
    let _pass = shared
        .compaction_pass
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let candidates = live_segments(shared);
    let mut done = 0;
    for seg in candidates {
        if done == max {
            break;
        }
        let name = KeysetName::project(seg.meta.project.as_str());
        let primary = match enc.keyring().get(&name) {
            Ok(Some(ks)) => ks.primary_id(),
            // Destroyed or never keyed: nothing to re-encrypt to.
            Ok(None) => continue,
            Err(e) if e.is_destroyed() => continue,
            Err(e) => return Err(crypto_err(&name.label(), e)),
        };
        if seg.meta.key_id == primary {
            continue;
        }
        let copy = rewrite_segment(shared, &seg, Ok)?;
        let swap = Swap {
            removed: vec![seg.clone()],
            added: vec![copy],
        };
        commit(shared, swap, |_| {})?;
        done += 1;
    }
    if done > 0 {
        tracing::info!(
            segments = done,
            "re-encrypted segments under their project's current key"
        );
    }
    Ok(done)
}

/// Unlists (and so deletes) every segment of a project whose keys were destroyed: after
/// `minim project delete` its files are unreadable already; this removes them from the
/// live directory. Returns how many segments went.
pub(crate) fn purge_destroyed(shared: &Shared) -> Result<usize> {
    let Some(enc) = shared.cfg.encryption.as_ref() else {
        return Ok(0);
    };
    let _pass = shared
        .compaction_pass
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let removed: Vec<Arc<SegmentFile>> = live_segments(shared)
        .into_iter()
        .filter(|s| enc.keyring().is_destroyed(s.meta.project.as_str()))
        .collect();
    if removed.is_empty() {
        return Ok(0);
    }
    let n = removed.len();
    commit(
        shared,
        Swap {
            removed,
            added: Vec::new(),
        },
        |_| {},
    )?;
    tracing::info!(segments = n, "removed the segments of deleted projects");
    Ok(n)
}
