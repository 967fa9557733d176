//! Errors of the crypto layer. Messages name files and key ids, never key material or
//! plaintext.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// A ciphertext failed authentication or is malformed: tampering or corruption.
    #[error("{what} is corrupt or was tampered with: {reason}")]
    Corrupt { what: String, reason: String },
    /// The ciphertext names a key id its keyset does not hold.
    #[error("{what} is encrypted with key {key_id:#010x}, which keyset {keyset} does not hold")]
    UnknownKey {
        what: String,
        keyset: String,
        key_id: u32,
    },
    /// The keyset was destroyed (crypto-shredded): its data is gone for good.
    #[error("the keys of {keyset} were destroyed; its data can no longer be read")]
    Destroyed { keyset: String },
    /// No master key was supplied where one is required.
    #[error(
        "no master key: set {env} or put the key file at {path}; the data directory is encrypted and cannot be opened without it"
    )]
    MasterMissing { env: &'static str, path: PathBuf },
    /// A master key was supplied but is not the one this keyring was made with.
    #[error(
        "the master key ({source_name}) does not open the keyring at {path}: it is not the key this data was encrypted with"
    )]
    MasterWrong { source_name: String, path: PathBuf },
    /// The keys directory and the data directory do not belong together, or one is missing.
    #[error("{0}")]
    Mismatch(String),
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CryptoError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn format(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Format {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// Whether this error means the data was shredded (as opposed to damaged).
    pub fn is_destroyed(&self) -> bool {
        matches!(self, Self::Destroyed { .. })
    }
}
