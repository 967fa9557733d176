//! `StoreError`: everything the store can fail with, classified for the caller.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The append queue is full; retry later (HTTP 503 + Retry-After).
    #[error("the store is overloaded; retry later")]
    Overloaded,
    /// Writes are refused because the disk failed (full, fsync error); retry later.
    #[error("the store cannot write durably right now: {0}")]
    Unavailable(String),
    /// The store is shutting down.
    #[error("the store is shutting down")]
    ShuttingDown,
    /// Another process holds the data directory.
    #[error("data directory {0} is in use by another minim process")]
    Locked(PathBuf),
    /// A file failed validation on read (bad checksum, unknown version, bad structure).
    #[error("corrupt file {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parquet error on {path}: {reason}")]
    Parquet { path: PathBuf, reason: String },
    /// Encryption or decryption failed: a missing key, or a ciphertext that does not
    /// authenticate (tampering or corruption). `what` names the file or record.
    #[error("encryption error on {what}: {reason}")]
    Crypto { what: String, reason: String },
    /// The data belongs to a project whose keys were destroyed.
    #[error("{0}")]
    Destroyed(String),
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// True when the caller should retry later (maps to 503 with Retry-After).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Overloaded | Self::Unavailable(_) | Self::ShuttingDown
        )
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
