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

use crate::config::Faults;
use crate::error::{Result, StoreError};
use crate::fsutil::sync_dir;
use format::{FILE_HEADER_LEN, FileHeader, KIND_EVENT_BATCH, ReadOutcome};

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
}

/// Reads every valid record of a WAL file.
pub fn read_file(path: &Path, max_record_bytes: usize) -> Result<FileContents> {
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(|e| StoreError::io(path, e))?;
    Ok(parse_file(&data, max_record_bytes))
}

/// Parses a WAL file image (used by recovery and by the property tests).
pub fn parse_file(data: &[u8], max_record_bytes: usize) -> FileContents {
    let mut out = FileContents {
        batches: Vec::new(),
        valid_len: 0,
        stopped: None,
    };
    if let Err(e) = FileHeader::decode(data) {
        out.stopped = Some(e);
        return out;
    }
    let mut pos = FILE_HEADER_LEN;
    loop {
        if pos == data.len() {
            break;
        }
        match format::read_record(&data[pos..], max_record_bytes) {
            ReadOutcome::Record(rec, n) => {
                if rec.kind != KIND_EVENT_BATCH || rec.flags != 0 {
                    out.stopped = Some(format!(
                        "unsupported record kind {} flags {} at offset {pos}",
                        rec.kind, rec.flags
                    ));
                    break;
                }
                match format::decode_batch(&rec.payload) {
                    Ok(b) => out.batches.push((rec.seq, b)),
                    Err(e) => {
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
                out.stopped = Some(format!("{e} at offset {pos}"));
                break;
            }
        }
    }
    out.valid_len = pos as u64;
    out
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
