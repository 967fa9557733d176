//! `verify`: walks the chain and the signed checkpoints and names the first bad record.
//!
//! What it detects: a modified record (hash mismatch), a deleted, inserted or moved
//! record (seq or `prev_hash` mismatch), anything that is not a record (garbage, an
//! unfinished last line), a log cut short (a signed checkpoint refers to a seq the log
//! no longer has), a rewritten history (a signed checkpoint's hash differs from the
//! record at its seq), and checkpoints that were forged, edited, reordered or signed
//! with another key.
//!
//! What it cannot detect: someone who cuts *both* files back consistently (the log to
//! seq N and every checkpoint after N) leaves a shorter but valid history. Only a copy
//! kept elsewhere shows that: see [`crate::verify_against_mirror`]. `unsigned_tail`
//! in the report says how many records at the end no checkpoint vouches for.
//!
//! "First bad" is the problem at the lowest seq; between a record problem and a
//! checkpoint problem at the same seq, the record problem is named.

use std::fs::File;
use std::io::ErrorKind;
use std::path::Path;

use ed25519_dalek::VerifyingKey;
use serde::Serialize;

use crate::canonical::Digest32;
use crate::checkpoint::{Checkpoint, SignatureProblem};
use crate::error::{AuditError, IoContext};
use crate::fsutil::{FlockGuard, FwdItem, FwdLines};
use crate::key::load_verifying_key;
use crate::line::parse_record_line;
use crate::{CHECKPOINT_FILE, LOCK_FILE, LOG_FILE};

/// The outcome of [`verify`].
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct VerifyReport {
    pub ok: bool,
    /// Records read that chain correctly (all of them when `ok`; those before the
    /// chain broke otherwise).
    pub records: u64,
    /// Checkpoints whose signature holds under the configured key.
    pub checkpoints: u64,
    pub first_bad: Option<BadRecord>,
    /// The highest seq a valid checkpoint vouches for (None: no checkpoint matched).
    pub last_checkpoint_seq: Option<u64>,
    /// Records after `last_checkpoint_seq`: a cut there would not be detectable from
    /// the log alone.
    pub unsigned_tail: u64,
}

/// The first problem found.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct BadRecord {
    /// The seq expected at that position (for a checkpoint problem: the seq the
    /// checkpoint claims, or for an unreadable checkpoint line, the seq of the
    /// readable checkpoint before it).
    pub seq: u64,
    /// 1-based line number in `file`.
    pub line: u64,
    pub reason: String,
    /// `audit.log` or `checkpoints.log`.
    pub file: String,
}

/// Verifies the log in `dir` with the public key of the key at `signing_key_path`
/// (or `<path>.pub`). Reads a consistent snapshot: lengths are taken under a shared
/// lock, so appends running meanwhile are neither seen half-written nor blocked long.
pub fn verify(dir: &Path, signing_key_path: &Path) -> Result<VerifyReport, AuditError> {
    let key = load_verifying_key(signing_key_path)?;
    let snap = Snapshot::take(dir)?;
    let mut cps = CheckpointReader {
        lines: snap.cp.map(|(f, len)| FwdLines::new(f, len)),
        key,
        line_no: 0,
        prev_seq: 0,
        valid: 0,
        cp_path: dir.join(CHECKPOINT_FILE),
    };
    let mut v = Walk {
        best: None,
        last_matched: 0,
        matched_any: false,
    };

    // Checkpoints of the empty log (seq 0) come before any record.
    let mut next_cp = cps.next_valid(&mut v)?;
    while let Some((line, cp)) = next_cp.as_ref().filter(|(_, cp)| cp.seq == 0) {
        v.check_cp(*line, cp, &[0u8; 32]);
        next_cp = cps.next_valid(&mut v)?;
    }

    let mut lines = FwdLines::new(snap.log, snap.log_len);
    let mut prev: Digest32 = [0u8; 32];
    let mut count = 0u64;
    while let Some(item) = lines
        .next_item()
        .io_context(|| format!("reading {}", dir.join(LOG_FILE).display()))?
    {
        let expected = count + 1;
        match check_record(item, expected, &prev) {
            Err(reason) => {
                v.consider(bad(expected, expected, reason, LOG_FILE));
                break;
            }
            Ok(hash) => {
                count = expected;
                prev = hash;
                while let Some((line, cp)) = next_cp.as_ref().filter(|(_, cp)| cp.seq == expected) {
                    v.check_cp(*line, cp, &hash);
                    next_cp = cps.next_valid(&mut v)?;
                }
            }
        }
    }

    // What is left refers to records past the last good one.
    let mut reported_missing = false;
    while let Some((line, cp)) = next_cp {
        if !reported_missing {
            v.consider(bad(
                count + 1,
                count + 1,
                format!(
                    "the log ends at seq {count} but a signed checkpoint \
                     ({CHECKPOINT_FILE} line {line}) covers seq {}: records are missing",
                    cp.seq
                ),
                LOG_FILE,
            ));
            reported_missing = true;
        }
        next_cp = cps.next_valid(&mut v)?;
    }

    let last_checkpoint_seq = v.matched_any.then_some(v.last_matched);
    Ok(VerifyReport {
        ok: v.best.is_none(),
        records: count,
        checkpoints: cps.valid,
        first_bad: v.best,
        last_checkpoint_seq,
        unsigned_tail: count - last_checkpoint_seq.unwrap_or(0).min(count),
    })
}

/// Checks one line at the position where `expected` belongs; returns its hash.
fn check_record(item: FwdItem, expected: u64, prev: &Digest32) -> Result<Digest32, String> {
    let bytes = match item {
        FwdItem::Line(b) => b,
        FwdItem::Unterminated => {
            return Err("unfinished last line (an interrupted write, or a cut)".into());
        }
        FwdItem::Oversized => return Err("line too long to be a record".into()),
    };
    let p = parse_record_line(&bytes)?;
    if p.record.seq != expected {
        return Err(format!(
            "found seq {} where {expected} belongs (a record was deleted, inserted or moved)",
            p.record.seq
        ));
    }
    if &p.prev != prev {
        return Err("prev_hash is not the previous record's hash".into());
    }
    if p.computed_hash() != p.hash {
        return Err("hash does not match the record's content (the record was modified)".into());
    }
    Ok(p.hash)
}

fn bad(seq: u64, line: u64, reason: String, file: &str) -> BadRecord {
    BadRecord {
        seq,
        line,
        reason,
        file: file.to_owned(),
    }
}

/// The state of the walk: the best (lowest-seq) problem so far, and how far valid
/// checkpoints vouch for the chain.
struct Walk {
    best: Option<BadRecord>,
    last_matched: u64,
    matched_any: bool,
}

impl Walk {
    fn consider(&mut self, b: BadRecord) {
        let better = match &self.best {
            None => true,
            Some(cur) => {
                b.seq < cur.seq || (b.seq == cur.seq && cur.file != LOG_FILE && b.file == LOG_FILE)
            }
        };
        if better {
            self.best = Some(b);
        }
    }

    /// A validly signed checkpoint against the hash of the record at its seq.
    fn check_cp(&mut self, line: u64, cp: &Checkpoint, actual: &Digest32) {
        if &cp.hash == actual {
            self.last_matched = cp.seq;
            self.matched_any = true;
            return;
        }
        let from = self.last_matched + 1;
        self.consider(bad(
            from.min(cp.seq.max(1)),
            from.min(cp.seq.max(1)),
            format!(
                "records {from}..={} differ from what the checkpoint at {CHECKPOINT_FILE} line \
                 {line} signed (the history was rewritten)",
                cp.seq
            ),
            LOG_FILE,
        ));
    }
}

/// Reads checkpoints in order, reporting unreadable, badly signed and backwards ones
/// as problems and yielding the valid ones.
struct CheckpointReader {
    lines: Option<FwdLines>,
    key: VerifyingKey,
    line_no: u64,
    /// The seq of the last readable checkpoint (the reference for the next one).
    prev_seq: u64,
    valid: u64,
    cp_path: std::path::PathBuf,
}

impl CheckpointReader {
    fn next_valid(&mut self, v: &mut Walk) -> Result<Option<(u64, Checkpoint)>, AuditError> {
        let Some(lines) = &mut self.lines else {
            return Ok(None);
        };
        while let Some(item) = lines
            .next_item()
            .io_context(|| format!("reading {}", self.cp_path.display()))?
        {
            self.line_no += 1;
            let line = self.line_no;
            let problem = |seq: u64, reason: String| bad(seq, line, reason, CHECKPOINT_FILE);
            let bytes = match item {
                FwdItem::Line(b) => b,
                FwdItem::Unterminated => {
                    v.consider(problem(
                        self.prev_seq,
                        "unfinished last checkpoint line".into(),
                    ));
                    continue;
                }
                FwdItem::Oversized => {
                    v.consider(problem(
                        self.prev_seq,
                        "line too long to be a checkpoint".into(),
                    ));
                    continue;
                }
            };
            let cp = match Checkpoint::parse(&bytes) {
                Ok(cp) => cp,
                Err(reason) => {
                    v.consider(problem(self.prev_seq, reason));
                    continue;
                }
            };
            let prev = std::mem::replace(&mut self.prev_seq, cp.seq);
            match cp.check(&self.key) {
                Ok(()) => {}
                Err(SignatureProblem::OtherKey(id)) => {
                    v.consider(problem(
                        cp.seq,
                        format!("checkpoint is signed with another key ({id}…)"),
                    ));
                    continue;
                }
                Err(SignatureProblem::Invalid) => {
                    v.consider(problem(
                        cp.seq,
                        "checkpoint signature is invalid (forged or edited)".into(),
                    ));
                    continue;
                }
            }
            self.valid += 1;
            if cp.seq < prev {
                v.consider(problem(
                    cp.seq,
                    format!("checkpoint goes back from seq {prev} to {}", cp.seq),
                ));
                continue;
            }
            return Ok(Some((line, cp)));
        }
        Ok(None)
    }
}

/// Open handles and lengths of both files, taken together under a shared lock.
struct Snapshot {
    log: File,
    log_len: u64,
    cp: Option<(File, u64)>,
}

impl Snapshot {
    fn take(dir: &Path) -> Result<Snapshot, AuditError> {
        let log_path = dir.join(LOG_FILE);
        let cp_path = dir.join(CHECKPOINT_FILE);
        // A copy verified elsewhere may have no lock file, or a read-only one.
        let lock = File::open(dir.join(LOCK_FILE)).ok();
        let _guard = lock.as_ref().and_then(|f| FlockGuard::shared(f).ok());
        let log = File::open(&log_path).io_context(|| format!("opening {}", log_path.display()))?;
        let log_len = log
            .metadata()
            .io_context(|| format!("reading {}", log_path.display()))?
            .len();
        let cp = match File::open(&cp_path) {
            Ok(f) => {
                let len = f
                    .metadata()
                    .io_context(|| format!("reading {}", cp_path.display()))?
                    .len();
                Some((f, len))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(AuditError::io(format!("opening {}", cp_path.display()), e)),
        };
        Ok(Snapshot { log, log_len, cp })
    }
}
