//! `verify_against_mirror`: compares a file mirror with the log. This is what catches a
//! log (and its checkpoints) cut back consistently, which `verify` alone cannot see.
//!
//! The rule: every record in the mirror must be in the log, identical and at its seq,
//! and the log must not end before the mirror's last record. The mirror may lag or have
//! gaps (a process without the mirror configured, a failed mirror write), and lines in
//! it that are not self-consistent records are skipped and counted, since a failed
//! write can leave one; they never make a log look bad.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use serde::Serialize;

use crate::canonical::Digest32;
use crate::error::{AuditError, IoContext};
use crate::fsutil::{FlockGuard, FwdItem, FwdLines};
use crate::line::parse_record_line;
use crate::verify::BadRecord;
use crate::{LOCK_FILE, LOG_FILE};

/// The outcome of [`verify_against_mirror`].
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct MirrorReport {
    pub ok: bool,
    /// Distinct records found in the mirror.
    pub mirror_records: u64,
    /// Mirror lines that are not self-consistent records (skipped).
    pub mirror_unreadable: u64,
    /// Lines read from the log.
    pub log_lines: u64,
    pub first_bad: Option<BadRecord>,
}

/// What the mirror says about one seq.
enum Copy {
    One(Digest32),
    /// Two different records for one seq: the log cannot match both.
    Conflict,
}

/// Checks that the log in `dir` still holds everything the mirror file recorded.
pub fn verify_against_mirror(dir: &Path, mirror_file: &Path) -> Result<MirrorReport, AuditError> {
    let (mirror, mirror_unreadable) = read_mirror(mirror_file)?;
    let log_path = dir.join(LOG_FILE);
    let (log, log_len) = {
        let lock = File::open(dir.join(LOCK_FILE)).ok();
        let _guard = lock.as_ref().and_then(|f| FlockGuard::shared(f).ok());
        let f = File::open(&log_path).io_context(|| format!("opening {}", log_path.display()))?;
        let len = f
            .metadata()
            .io_context(|| format!("reading {}", log_path.display()))?
            .len();
        (f, len)
    };

    let mut first_bad = None;
    let mut lines = FwdLines::new(log, log_len);
    let mut pos = 0u64;
    while let Some(item) = lines
        .next_item()
        .io_context(|| format!("reading {}", log_path.display()))?
    {
        pos += 1;
        let Some(copy) = mirror.get(&pos) else {
            continue;
        };
        let in_log = match item {
            FwdItem::Line(b) => parse_record_line(&b)
                .ok()
                .filter(|p| p.record.seq == pos && p.computed_hash() == p.hash)
                .map(|p| p.hash),
            FwdItem::Unterminated | FwdItem::Oversized => None,
        };
        let reason = match (copy, in_log) {
            (Copy::One(m), Some(l)) if *m == l => continue,
            (Copy::Conflict, _) => "the mirror holds two different records for this seq",
            (Copy::One(_), Some(_)) => "the log's record differs from the mirror's copy",
            (Copy::One(_), None) => "the mirror has this record but the log's line is not it",
        };
        first_bad = Some(bad(pos, reason.to_owned()));
        break;
    }
    if first_bad.is_none()
        && let Some((&max, _)) = mirror.last_key_value()
        && max > pos
    {
        first_bad = Some(bad(
            pos + 1,
            format!(
                "the log ends after {pos} lines but the mirror has records up to seq {max} (the log was cut)"
            ),
        ));
    }
    Ok(MirrorReport {
        ok: first_bad.is_none(),
        mirror_records: mirror.len() as u64,
        mirror_unreadable,
        log_lines: pos,
        first_bad,
    })
}

fn bad(seq: u64, reason: String) -> BadRecord {
    BadRecord {
        seq,
        line: seq,
        reason,
        file: LOG_FILE.to_owned(),
    }
}

/// The mirror's records by seq (hash only; a matching hash of a self-consistent record
/// means identical content), and the count of lines skipped.
fn read_mirror(path: &Path) -> Result<(BTreeMap<u64, Copy>, u64), AuditError> {
    let f = File::open(path).io_context(|| format!("opening {}", path.display()))?;
    let len = f
        .metadata()
        .io_context(|| format!("reading {}", path.display()))?
        .len();
    let mut lines = FwdLines::new(f, len);
    let mut map = BTreeMap::new();
    let mut unreadable = 0u64;
    while let Some(item) = lines
        .next_item()
        .io_context(|| format!("reading {}", path.display()))?
    {
        let parsed = match item {
            FwdItem::Line(b) => parse_record_line(&b)
                .ok()
                .filter(|p| p.computed_hash() == p.hash),
            FwdItem::Unterminated | FwdItem::Oversized => None,
        };
        let Some(p) = parsed else {
            unreadable += 1;
            continue;
        };
        map.entry(p.record.seq)
            .and_modify(|c| {
                if matches!(c, Copy::One(h) if *h != p.hash) {
                    *c = Copy::Conflict;
                }
            })
            .or_insert(Copy::One(p.hash));
    }
    Ok((map, unreadable))
}
