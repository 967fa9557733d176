//! Write-ahead log files: naming, the appending writer and recovery reads.
//!
//! Files are `wal/{file_no:020}.wal`. A file is only ever appended to by one writer;
//! after any write or fsync error the writer abandons it and starts a new file, so a
//! bad record can only be the last one of a file. Recovery reads each file up to its
//! first incomplete or invalid record: nothing after that point was acknowledged.

pub mod format;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use minim_core::EventBatch;

use crate::Encryption;
use crate::config::Faults;
use crate::crypt::crypto_err;
use crate::error::{Result, StoreError};
use crate::fsutil::sync_dir;
use format::{
    FILE_HEADER_LEN, FLAG_ENCRYPTED, FileHeader, KIND_EVENT_BATCH, KIND_EVENT_BATCH_V1, ReadOutcome,
};

pub fn wal_path(dir: &Path, file_no: u64) -> PathBuf {
    dir.join(format!("{file_no:020}.wal"))
}

/// WAL file numbers present in `dir`, ascending.
pub fn list_files(dir: &Path) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| StoreError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = name
            .strip_suffix(".wal")
            .and_then(|s| s.parse::<u64>().ok())
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// What recovery found in one file.
#[derive(Debug)]
pub struct FileContents {
    pub batches: Vec<(u64, EventBatch)>,
    /// Length of the valid prefix (header + whole valid records).
    pub valid_len: u64,
    /// Why reading stopped before the end of the file, if it did.
    pub stopped: Option<String>,
    /// Records skipped because their project's keys were destroyed (crypto-shredded).
    pub shredded_records: u64,
}

/// Reads every valid record of a WAL file, decrypting with `enc`.
pub fn read_file(
    path: &Path,
    max_record_bytes: usize,
    enc: Option<&Encryption>,
) -> Result<FileContents> {
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(|e| StoreError::io(path, e))?;
    parse_file(&data, max_record_bytes, enc, path)
}

/// Parses a WAL file image (used by recovery and by the property tests). A record that
/// frames correctly (its checksum holds) but does not decrypt is an error naming
/// `path`: a torn write cannot produce it, tampering or the wrong keys can.
pub fn parse_file(
    data: &[u8],
    max_record_bytes: usize,
    enc: Option<&Encryption>,
    path: &Path,
) -> Result<FileContents> {
    let mut out = FileContents {
        batches: Vec::new(),
        valid_len: 0,
        stopped: None,
        shredded_records: 0,
    };
    let header = match FileHeader::decode(data) {
        Ok(h) => h,
        Err(e) => {
            out.stopped = Some(e);
            return Ok(out);
        }
    };
    let mut pos = FILE_HEADER_LEN;
    loop {
        if pos == data.len() {
            break;
        }
        match format::read_record(&data[pos..], max_record_bytes) {
            ReadOutcome::Record(rec, n) => {
                let encrypted = rec.flags == FLAG_ENCRYPTED;
                let batch_kind = rec.kind == KIND_EVENT_BATCH || rec.kind == KIND_EVENT_BATCH_V1;
                if !batch_kind || (rec.flags != 0 && !encrypted) {
                    out.stopped = Some(format!(
                        "unsupported record kind {} flags {} at offset {pos}",
                        rec.kind, rec.flags
                    ));
                    break;
                }
                let what = || format!("{} (record at offset {pos})", path.display());
                let plain = match (encrypted, enc) {
                    (false, None) => Some(rec.payload),
                    (false, Some(_)) => {
                        return Err(StoreError::Crypto {
                            what: what(),
                            reason: "a plaintext record in an encrypted store".into(),
                        });
                    }
                    (true, None) => {
                        return Err(StoreError::Crypto {
                            what: what(),
                            reason: "the record is encrypted and no keyring was given".into(),
                        });
                    }
                    (true, Some(enc)) => {
                        let (project, envelope) = format::split_encrypted_payload(&rec.payload)
                            .map_err(|reason| StoreError::Crypto {
                                what: what(),
                                reason,
                            })?;
                        match enc.open_wal(project, header.file_no, rec.seq, envelope, &what()) {
                            Ok(p) => Some(p),
                            Err(e) if e.is_destroyed() => None,
                            Err(e) => return Err(crypto_err(&what(), e)),
                        }
                    }
                };
                match plain.map(|p| format::decode_batch(&p, rec.kind)) {
                    Some(Ok(b)) => out.batches.push((rec.seq, b)),
                    None => out.shredded_records += 1,
                    Some(Err(e)) if encrypted => {
                        // Authenticated but undecodable: written wrong, not torn.
                        return Err(StoreError::Corrupt {
                            path: path.to_path_buf(),
                            reason: format!("undecodable record at offset {pos}: {e}"),
                        });
                    }
                    Some(Err(e)) => {
                        out.stopped = Some(format!("undecodable record at offset {pos}: {e}"));
                        break;
                    }
                }
                pos += n;
            }
            ReadOutcome::Incomplete => {
                out.stopped = Some(format!("incomplete record at offset {pos}"));
                break;
            }
            ReadOutcome::Invalid(e) => {
                if let Some(next) = valid_record_after(&data[pos..], max_record_bytes) {
                    // A torn write only ever damages the last record; a bad record
                    // followed by a good one was changed after it was written.
                    return Err(StoreError::Corrupt {
                        path: path.to_path_buf(),
                        reason: format!(
                            "{e} at offset {pos}, but a valid record follows at offset {}: corruption or tampering, not a torn write",
                            pos + next
                        ),
                    });
                }
                out.stopped = Some(format!("{e} at offset {pos}"));
                break;
            }
        }
    }
    out.valid_len = pos as u64;
    Ok(out)
}

/// If the record at the start of `buf` frames (its length is plausible) and a valid
/// record starts right after it, that record's offset in `buf`.
fn valid_record_after(buf: &[u8], max_record_bytes: usize) -> Option<usize> {
    let len = u32::from_le_bytes(buf.get(0..4)?.try_into().ok()?) as usize;
    if len > max_record_bytes {
        return None;
    }
    let next = format::RECORD_HEADER_LEN.checked_add(len)?;
    match format::read_record(buf.get(next..)?, max_record_bytes) {
        ReadOutcome::Record(..) => Some(next),
        _ => None,
    }
}

/// How many encrypted records of `project` in a WAL file image name a key other than
/// `key_id` (reads headers and the clear project prefix only: no decryption).
pub fn count_foreign_keys(data: &[u8], project: &str, key_id: u32) -> usize {
    if FileHeader::decode(data).is_err() {
        return 0;
    }
    let mut pos = FILE_HEADER_LEN;
    let mut n = 0;
    while let ReadOutcome::Record(rec, len) = format::read_record(&data[pos..], usize::MAX) {
        if rec.flags == FLAG_ENCRYPTED
            && rec.key_id != key_id
            && format::split_encrypted_payload(&rec.payload).is_ok_and(|(p, _)| p == project)
        {
            n += 1;
        }
        pos += len;
    }
    n
}

/// Cuts a file back to its valid prefix and makes that durable.
pub fn truncate(path: &Path, len: u64) -> Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| StoreError::io(path, e))?;
    f.set_len(len)
        .and_then(|_| f.sync_all())
        .map_err(|e| StoreError::io(path, e))
}

/// The appending side: one open file, written by the group-commit thread only.
pub struct WalWriter {
    dir: PathBuf,
    file: Option<File>,
    file_no: u64,
    faults: Faults,
    /// Records and bytes written to the current file.
    pub bytes_in_file: u64,
}

impl WalWriter {
    /// Creates the WAL file `file_no` (which must not exist) and makes it durable.
    pub fn create(dir: &Path, file_no: u64, faults: Faults) -> Result<Self> {
        let mut w = Self {
            dir: dir.to_path_buf(),
            file: None,
            file_no,
            faults,
            bytes_in_file: 0,
        };
        w.open_new(file_no)?;
        Ok(w)
    }

    pub fn file_no(&self) -> u64 {
        self.file_no
    }

    pub fn is_open(&self) -> bool {
        self.file.is_some()
    }

    /// Writes and fsyncs `bytes` (whole records). On error the file is abandoned:
    /// call [`WalWriter::rotate`] before writing again.
    pub fn append_durable(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let Some(f) = self.file.as_mut() else {
            return Err(std::io::Error::other(
                "WAL file abandoned after an earlier error",
            ));
        };
        let res = f
            .write_all(bytes)
            .and_then(|_| self.faults.wal_sync())
            .and_then(|_| f.sync_data());
        match res {
            Ok(()) => {
                self.bytes_in_file += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                self.file = None;
                Err(e)
            }
        }
    }

    /// Starts the next file. Returns its number.
    pub fn rotate(&mut self) -> Result<u64> {
        let next = self.file_no + 1;
        self.file = None;
        self.open_new(next)?;
        Ok(next)
    }

    fn open_new(&mut self, file_no: u64) -> Result<()> {
        let path = wal_path(&self.dir, file_no);
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        f.write_all(&FileHeader::new(file_no).encode())
            .and_then(|_| self.faults.wal_sync())
            .and_then(|_| f.sync_all())
            .map_err(|e| StoreError::io(&path, e))?;
        sync_dir(&self.dir)?;
        self.file = Some(f);
        self.file_no = file_no;
        self.bytes_in_file = FILE_HEADER_LEN as u64;
        Ok(())
    }
}

/// Removes WAL files numbered below `keep_from` (their contents are in segments) and
/// makes that durable. A file someone else removed meanwhile is not an error.
pub fn remove_below(dir: &Path, keep_from: u64) -> Result<usize> {
    let mut removed = 0;
    for n in list_files(dir)? {
        if n < keep_from {
            let p = wal_path(dir, n);
            match std::fs::remove_file(&p) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(&p, e)),
            }
        }
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(removed)
}
