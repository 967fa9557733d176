//! The checkpoint signing key: loading, first-time creation (0600, written atomically),
//! and the public half for verification.
//!
//! File formats: the key file holds the 32-byte Ed25519 seed as 64 lowercase hex digits
//! and a newline; `<path>.pub` holds the 32-byte public key the same way. Creating a key
//! writes both, so the `.pub` file can be copied to wherever `verify` runs.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::TryRngCore;
use zeroize::Zeroizing;

use crate::error::AuditError;
use crate::fsutil::sync_parent_dir;

/// `<path>.pub`: the file that holds only the public key.
pub fn public_key_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// Lowercase hex of a public key, as written in `.pub` files and checkpoint lines.
pub fn public_key_hex(key: &VerifyingKey) -> String {
    hex::encode(key.as_bytes())
}

/// Loads the signing key at `path`, or creates one (mode 0600, parent directories 0700)
/// if there is none. Returns the key and whether it was created. Also writes
/// `<path>.pub` when creating. Never logs the key.
pub fn load_or_create_signing_key(path: &Path) -> Result<(SigningKey, bool), AuditError> {
    match read_signing_key(path) {
        Ok(key) => {
            warn_if_loose(path);
            Ok((key, false))
        }
        Err(KeyRead::NotFound) => create(path),
        Err(KeyRead::Unreadable(e) | KeyRead::Failed(e)) => Err(e),
    }
}

/// The public key to verify checkpoints with: derived from the private key at `path`,
/// or read from `<path>.pub` when the private key is absent (or not readable by the
/// verifying user).
pub fn load_verifying_key(path: &Path) -> Result<VerifyingKey, AuditError> {
    match read_signing_key(path) {
        Ok(key) => Ok(key.verifying_key()),
        Err(KeyRead::Failed(e)) => Err(e),
        Err(KeyRead::NotFound | KeyRead::Unreadable(_)) => {
            let pub_path = public_key_path(path);
            let text = fs::read_to_string(&pub_path).map_err(|e| key_err(&pub_path, e))?;
            let bytes = decode32(&text).ok_or_else(|| AuditError::Key {
                path: pub_path.clone(),
                reason: "expected 64 hex digits".into(),
            })?;
            VerifyingKey::from_bytes(&bytes).map_err(|_| AuditError::Key {
                path: pub_path,
                reason: "not a valid Ed25519 public key".into(),
            })
        }
    }
}

enum KeyRead {
    NotFound,
    /// There but not readable by this user (verification may fall back to `.pub`).
    Unreadable(AuditError),
    Failed(AuditError),
}

fn read_signing_key(path: &Path) -> Result<SigningKey, KeyRead> {
    let text = match fs::read_to_string(path) {
        Ok(t) => Zeroizing::new(t),
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(KeyRead::NotFound),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            return Err(KeyRead::Unreadable(key_err(path, e)));
        }
        Err(e) => return Err(KeyRead::Failed(key_err(path, e))),
    };
    let seed = decode32(&text).map(Zeroizing::new).ok_or_else(|| {
        KeyRead::Failed(AuditError::Key {
            path: path.to_owned(),
            reason: "expected 64 hex digits (an Ed25519 seed)".into(),
        })
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

fn decode32(text: &str) -> Option<[u8; 32]> {
    let t = text.trim();
    if t.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(t, &mut out).ok()?;
    Some(out)
}

/// Creates the key without a window where a half-written or world-readable file exists:
/// write a 0600 temporary file, fsync, then hard-link it into place (which fails if
/// another process won the race, in which case its key is loaded).
fn create(path: &Path) -> Result<(SigningKey, bool), AuditError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| key_err(parent, e))?;
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng
        .try_fill_bytes(&mut *seed)
        .map_err(|e| AuditError::Key {
            path: path.to_owned(),
            reason: format!("no randomness from the OS: {e}"),
        })?;
    let key = SigningKey::from_bytes(&seed);
    let text = Zeroizing::new(format!("{}\n", hex::encode(*seed)));

    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let written = write_new(&tmp, text.as_bytes(), 0o600).and_then(|()| fs::hard_link(&tmp, path));
    let _ = fs::remove_file(&tmp);
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return match read_signing_key(path) {
                Ok(k) => Ok((k, false)),
                Err(KeyRead::Unreadable(e) | KeyRead::Failed(e)) => Err(e),
                Err(KeyRead::NotFound) => Err(AuditError::Key {
                    path: path.to_owned(),
                    reason: "appeared while being created, then vanished".into(),
                }),
            };
        }
        Err(e) => return Err(key_err(path, e)),
    }
    sync_parent_dir(path).map_err(|e| key_err(path, e))?;

    let pub_path = public_key_path(path);
    let pub_text = format!("{}\n", public_key_hex(&key.verifying_key()));
    match write_new(&pub_path, pub_text.as_bytes(), 0o644) {
        Ok(()) => {}
        Err(e) => tracing::warn!(path = %pub_path.display(), error = %e,
            "could not write the audit public key file"),
    }
    tracing::info!(path = %path.display(), public_key = %pub_path.display(),
        "created a new audit signing key; back it up and keep it out of the data directory");
    Ok((key, true))
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn warn_if_loose(path: &Path) {
    if let Ok(meta) = fs::metadata(path)
        && meta.mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", meta.mode() & 0o777),
            "audit signing key is readable by other users; chmod 600 it");
    }
}

fn key_err(path: &Path, e: std::io::Error) -> AuditError {
    AuditError::Key {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_with_0600_then_loads_the_same_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys/audit.key");
        let (k1, created) = load_or_create_signing_key(&path).expect("create");
        assert!(created);
        let mode = fs::metadata(&path).expect("meta").mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (k2, created) = load_or_create_signing_key(&path).expect("load");
        assert!(!created);
        assert_eq!(k1.to_bytes(), k2.to_bytes());
        assert_eq!(load_verifying_key(&path).expect("vk"), k1.verifying_key());
    }

    #[test]
    fn verifying_key_falls_back_to_pub_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.key");
        let (k, _) = load_or_create_signing_key(&path).expect("create");
        fs::remove_file(&path).expect("rm");
        assert_eq!(load_verifying_key(&path).expect("vk"), k.verifying_key());
        fs::remove_file(public_key_path(&path)).expect("rm pub");
        assert!(matches!(
            load_verifying_key(&path),
            Err(AuditError::Key { .. })
        ));
    }

    #[test]
    fn malformed_key_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.key");
        fs::write(&path, "not hex").expect("write");
        assert!(load_or_create_signing_key(&path).is_err());
    }
}
