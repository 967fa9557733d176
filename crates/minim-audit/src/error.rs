//! The crate's one error type, [`AuditError`].

use std::path::PathBuf;
use std::sync::Arc;

/// Everything that can go wrong opening, appending to, reading or verifying the log.
///
/// `Clone` because one group write's failure is handed to every caller in the group;
/// the I/O source is shared through an `Arc` for that reason.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    /// A file operation failed. `context` says which (never record contents).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The signing key (or its `.pub` file) is missing, unreadable or malformed.
    #[error("audit signing key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    /// The log's tail cannot be continued safely (e.g. the last complete line is not a
    /// valid record). Operator action needed: run `minim audit verify`.
    #[error("audit log {path} cannot be continued: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// A line is not a valid record ([`crate::AuditRecord::from_line`]).
    #[error("not a valid audit record line: {0}")]
    InvalidLine(String),
    /// An event was rejected before anything was written (a limit was exceeded).
    #[error("invalid audit event: {0}")]
    InvalidEvent(String),
}

impl AuditError {
    /// Wraps an I/O error with a short description of what was being done.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        AuditError::Io {
            context: context.into(),
            source: Arc::new(source),
        }
    }
}

/// `result.io_context(|| "...")` for the common case.
pub(crate) trait IoContext<T> {
    fn io_context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T, AuditError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io_context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T, AuditError> {
        self.map_err(|e| AuditError::io(context(), e))
    }
}
