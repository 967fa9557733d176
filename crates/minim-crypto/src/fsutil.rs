//! Durable small-file writes for key files: 0600 files, atomic replacement, directory
//! fsync, and an advisory lock serializing keyring changes across processes.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use crate::CryptoError;

pub(crate) fn create_dir_private(dir: &Path) -> Result<(), CryptoError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| CryptoError::io(dir, e))
}

pub(crate) fn sync_parent(path: &Path) -> Result<(), CryptoError> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(|e| CryptoError::io(parent, e))
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".tmp.{}", std::process::id()));
    PathBuf::from(s)
}

fn write_tmp(tmp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let _ = fs::remove_file(tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Replaces `path` by `bytes` atomically (temp file, fsync, rename, directory fsync).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CryptoError> {
    let tmp = tmp_path(path);
    let res = write_tmp(&tmp, bytes).and_then(|()| fs::rename(&tmp, path));
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res.map_err(|e| CryptoError::io(path, e))?;
    sync_parent(path)
}

/// Creates `path` with `bytes` only if it does not exist; `Ok(false)` if it did.
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> Result<bool, CryptoError> {
    let tmp = tmp_path(path);
    let res = write_tmp(&tmp, bytes).and_then(|()| fs::hard_link(&tmp, path));
    let _ = fs::remove_file(&tmp);
    match res {
        Ok(()) => {
            sync_parent(path)?;
            Ok(true)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(CryptoError::io(path, e)),
    }
}

/// Overwrites a file's bytes with zeros, fsyncs, then removes it: destroyed key files do
/// not linger in free blocks when the filesystem overwrites in place.
pub(crate) fn shred_file(path: &Path) -> Result<bool, CryptoError> {
    match OpenOptions::new().write(true).open(path) {
        Ok(mut f) => {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let zeros = vec![0u8; usize::try_from(len).unwrap_or(0)];
            f.write_all(&zeros)
                .and_then(|()| f.sync_all())
                .map_err(|e| CryptoError::io(path, e))?;
            fs::remove_file(path).map_err(|e| CryptoError::io(path, e))?;
            sync_parent(path)?;
            Ok(true)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(CryptoError::io(path, e)),
    }
}

/// An exclusive advisory lock on a file, released on drop.
pub(crate) struct Flock(File);

impl Flock {
    pub(crate) fn exclusive(path: &Path) -> Result<Self, CryptoError> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| CryptoError::io(path, e))?;
        // SAFETY: flock on a valid, owned file descriptor.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        if rc != 0 {
            return Err(CryptoError::io(path, std::io::Error::last_os_error()));
        }
        Ok(Self(f))
    }
}

impl Drop for Flock {
    fn drop(&mut self) {
        // SAFETY: as above; closing the file would release it too.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}
