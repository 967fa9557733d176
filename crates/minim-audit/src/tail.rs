//! Reading and repairing the end of the log files: dropping a torn last line left by a
//! crash, and finding the head record and the last checkpoint.

use std::fs::File;
use std::path::Path;

use crate::canonical::Digest32;
use crate::checkpoint::Checkpoint;
use crate::error::{AuditError, IoContext};
use crate::fsutil::{RevItem, RevLines, complete_len};
use crate::line::{MAX_LINE_BYTES, parse_record_line};

/// Truncates an unfinished last line away (WARN) and returns the file's length after.
/// Must be called with the writers' lock held: only then is an unfinished line
/// certainly a crashed write rather than one in progress.
pub(crate) fn repair_torn_tail(file: &File, path: &Path) -> Result<u64, AuditError> {
    let len = file
        .metadata()
        .io_context(|| format!("reading the length of {}", path.display()))?
        .len();
    let complete =
        complete_len(file, len).io_context(|| format!("reading the end of {}", path.display()))?;
    match complete {
        Some(c) if c == len => Ok(len),
        Some(c) => {
            tracing::warn!(file = %path.display(), dropped_bytes = len - c,
                "dropping an unfinished last line (a write was interrupted; it never returned success)");
            file.set_len(c)
                .and_then(|()| file.sync_data())
                .io_context(|| format!("truncating the unfinished line of {}", path.display()))?;
            Ok(c)
        }
        None => Err(AuditError::Corrupt {
            path: path.to_owned(),
            reason: format!(
                "ends in more than {MAX_LINE_BYTES} bytes without a newline; that is not an \
                 interrupted write, so it is left for `minim audit verify` to examine"
            ),
        }),
    }
}

/// The `(seq, hash)` of the last record in the first `len` bytes (which end with a
/// newline), or `(0, genesis)` for an empty log. The last record must parse and its
/// hash must match its content, or the chain cannot be continued.
pub(crate) fn read_head(file: &File, len: u64, path: &Path) -> Result<(u64, Digest32), AuditError> {
    let corrupt = |reason: String| AuditError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let mut lines = RevLines::new(file, len);
    let item = lines
        .next_item()
        .io_context(|| format!("reading the last record of {}", path.display()))?;
    match item {
        None => Ok((0, [0u8; 32])),
        Some(RevItem::Oversized) => Err(corrupt("the last line is too long to be a record".into())),
        Some(RevItem::Line(bytes)) => {
            let parsed = parse_record_line(&bytes)
                .map_err(|r| corrupt(format!("the last line is not a valid record: {r}")))?;
            if parsed.computed_hash() != parsed.hash {
                return Err(corrupt(
                    "the last record's hash does not match its content".into(),
                ));
            }
            Ok((parsed.record.seq, parsed.hash))
        }
    }
}

/// What the last line of `checkpoints.log` holds.
pub(crate) enum LastCheckpoint {
    None,
    Unreadable(String),
    Found(Checkpoint),
}

/// The last checkpoint line of the first `len` bytes (which end with a newline).
pub(crate) fn read_last_checkpoint(
    file: &File,
    len: u64,
    path: &Path,
) -> Result<LastCheckpoint, AuditError> {
    let mut lines = RevLines::new(file, len);
    let item = lines
        .next_item()
        .io_context(|| format!("reading the last checkpoint of {}", path.display()))?;
    Ok(match item {
        None => LastCheckpoint::None,
        Some(RevItem::Oversized) => LastCheckpoint::Unreadable("line too long".into()),
        Some(RevItem::Line(bytes)) => match Checkpoint::parse(&bytes) {
            Ok(cp) => LastCheckpoint::Found(cp),
            Err(reason) => LastCheckpoint::Unreadable(reason),
        },
    })
}
