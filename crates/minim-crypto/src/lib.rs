//! Encryption at rest: everything Minim writes about events is ciphertext on disk.
//!
//! Keys form a hierarchy. The **master key** (key-encryption key) comes from outside the
//! data directory: the environment variable `MINIM_MASTER_KEY` or `master.key` in the
//! keys directory (`<data_dir>.keys` unless configured). It wraps every **keyset**: one
//! per project (WAL records and segments of that project), one for the event store's own
//! files (`system`) and one for the metadata database (`meta`). A keyset is Tink-style:
//! keys with random 32-bit ids, one primary that encrypts, the others decrypt-only until
//! re-encryption retires them. Every ciphertext names its key id in its header
//! ([`envelope`]), and associated data binds it to its project, file and purpose.
//!
//! Keysets live in the keys directory, not in the data directory, so that destroying a
//! project's keyset (crypto-shredding) makes its data unreadable everywhere: in the live
//! directory and in every backup, which hold ciphertext only.
//!
//! Key material is zeroized on drop ([`Key`]) and never logged or formatted.

pub mod envelope;
mod error;
mod fsutil;
mod key;
pub mod keyring;
mod keyset;
pub mod stream;

pub use error::CryptoError;
pub use key::{KEY_LEN, Key};
pub use keyring::{Keyring, KeyringOpened, KeysetName, MASTER_KEY_ENV, NEW_MASTER_KEY_ENV};
pub use keyset::{KeyInfo, Keyset};

pub type Result<T, E = CryptoError> = std::result::Result<T, E>;
