//! The tamper-evident audit log: one hash-chained record per audited action, signed
//! checkpoints, and verification that names the first bad record. No HTTP and no
//! knowledge of who calls it: the server and the CLI describe events, this crate makes
//! them durable and checkable.
//!
//! # Files (in `AuditConfig::dir`, normally `DATA_DIR/audit`)
//! - `audit.log`: one JSON record per line (`src/line.rs` documents the v1 line). Each record's `hash` is SHA-256 over the previous record's hash and a
//!   canonical binary encoding of `(seq, event)` (`src/canonical.rs`
//!   documents it). Seqs start at 1; the first `prev_hash` is 64 zeros.
//! - `checkpoints.log`: one signed JSON line per checkpoint over `(seq, hash, time)` of
//!   the head (`src/checkpoint.rs` documents it), written after every
//!   group write by default, or at most every `checkpoint_interval_ms`.
//! - `audit.lock`: the `flock` that serializes writers across processes.
//!
//! The Ed25519 signing key lives outside the data directory
//! (`AuditConfig::signing_key_path`), so whoever can rewrite the data cannot re-sign
//! it. Verification needs only the public key (`<path>.pub`).
//!
//! # Guarantees and limits
//! `append` returns after `fdatasync` of the records (the checkpoint written after a
//! group is not fsynced: a crash may lose the newest checkpoints, never records). A
//! crash mid-write leaves at most an unfinished last line, which the next open drops
//! (its append never returned). [`verify`] detects
//! edited, deleted, inserted, reordered and garbage records, a log cut short under its
//! checkpoints, and forged or foreign checkpoints. It cannot detect both files cut back
//! consistently; a [`Mirror`] kept off the host and [`verify_against_mirror`] can.

mod canonical;
mod checkpoint;
mod error;
mod event;
mod fingerprint;
mod fsutil;
mod group;
mod key;
mod line;
mod log;
mod mirror;
mod mirror_check;
mod query;
mod stats;
mod syslog;
mod tail;
mod verify;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;

pub use canonical::GENESIS_HASH;
pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use error::AuditError;
pub use event::{AuditEvent, AuditRecord, Decision, MAX_EVENTS_PER_APPEND, MAX_FIELD_BYTES};
pub use fingerprint::hash_fingerprint;
pub use group::MAX_GROUP_EVENTS;
pub use key::{load_or_create_signing_key, load_verifying_key, public_key_hex, public_key_path};
pub use line::MAX_LINE_BYTES;
pub use log::AuditLog;
pub use mirror::Mirror;
pub use mirror_check::{MirrorReport, verify_against_mirror};
pub use query::{Filter, MAX_QUERY_LIMIT};
pub use stats::AuditStats;
pub use verify::{BadRecord, VerifyReport, verify};

/// The record file in the audit directory.
pub const LOG_FILE: &str = "audit.log";
/// The checkpoint file in the audit directory.
pub const CHECKPOINT_FILE: &str = "checkpoints.log";
/// The lock file in the audit directory.
pub const LOCK_FILE: &str = "audit.lock";

/// Where the log lives and how it is protected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditConfig {
    /// `DATA_DIR/audit`.
    pub dir: PathBuf,
    /// The Ed25519 signing key, outside the data directory; created (0600) if absent.
    pub signing_key_path: PathBuf,
    /// 0 (default): sign a checkpoint after every group write. Otherwise sign after a
    /// group write once this long has passed since the last checkpoint (and on close).
    pub checkpoint_interval_ms: u64,
    /// An optional continuous copy of every record.
    pub mirror: Option<Mirror>,
}

/// Milliseconds since the Unix epoch, for checkpoint times.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
