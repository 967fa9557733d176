//! The file side of appending: one [`Writer`] per open log holds the files, the head
//! and the signing key, and performs each group write under an exclusive `flock` so
//! that several processes appending to one directory extend a single chain.
//!
//! Order inside the lock: re-read the head if the file changed (another process
//! appended, or crashed mid-line) → write all lines with one `write` → `fdatasync` →
//! mirror → signed checkpoint. A checkpoint is thus only written once its records are
//! durable, and the mirror never holds a record the log could lose. Checkpoints after a
//! group are not fsynced (one fsync per group, not two); explicit ones are.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ed25519_dalek::SigningKey;

use crate::canonical::{Digest32, record_hash};
use crate::checkpoint::signed_line;
use crate::error::{AuditError, IoContext};
use crate::event::AuditEvent;
use crate::fsutil::{FlockGuard, sync_dir};
use crate::key::load_or_create_signing_key;
use crate::line::{MAX_LINE_BYTES, write_record_line};
use crate::mirror::MirrorWriter;
use crate::stats::Counters;
use crate::tail::{LastCheckpoint, read_head, read_last_checkpoint, repair_torn_tail};
use crate::{AuditConfig, CHECKPOINT_FILE, Clock, LOCK_FILE, LOG_FILE};

pub(crate) struct Writer {
    log_path: PathBuf,
    cp_path: PathBuf,
    lock: File,
    log: File,
    cp: File,
    key: SigningKey,
    head_seq: u64,
    head_hash: Digest32,
    /// Length of `audit.log` as of our last write or re-read; another length under the
    /// lock means someone else wrote.
    log_len: u64,
    cp_len: u64,
    /// Set after a failure that may have left the files' state unknown.
    needs_reload: bool,
    last_cp_ms: i64,
    last_cp_seq: Option<u64>,
    interval_ms: u64,
    mirror: Option<MirrorWriter>,
    clock: Clock,
    counters: Arc<Counters>,
    /// Reused per group: the encoded lines, and each line's `time_ms` for the mirror.
    buf: Vec<u8>,
    times: Vec<i64>,
}

impl Writer {
    /// Creates the directory and files as needed, loads or creates the key, repairs a
    /// torn tail and finds the head.
    pub fn open(
        cfg: &AuditConfig,
        clock: Clock,
        counters: Arc<Counters>,
    ) -> Result<Writer, AuditError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&cfg.dir)
            .io_context(|| format!("creating {}", cfg.dir.display()))?;
        let (key, _created) = load_or_create_signing_key(&cfg.signing_key_path)?;
        warn_if_key_in_data_dir(&cfg.dir, &cfg.signing_key_path);

        let log_path = cfg.dir.join(LOG_FILE);
        let cp_path = cfg.dir.join(CHECKPOINT_FILE);
        let lock_path = cfg.dir.join(LOCK_FILE);
        let existed = log_path.exists() && cp_path.exists() && lock_path.exists();
        let lock = open_file(&lock_path, false)?;
        let log = open_file(&log_path, true)?;
        let cp = open_file(&cp_path, true)?;
        if !existed {
            sync_dir(&cfg.dir).io_context(|| format!("syncing {}", cfg.dir.display()))?;
        }
        let mirror = cfg
            .mirror
            .clone()
            .map(|m| MirrorWriter::new(m, counters.mirror_failures.clone()));
        let mut w = Writer {
            log_path,
            cp_path,
            lock,
            log,
            cp,
            key,
            head_seq: 0,
            head_hash: [0u8; 32],
            log_len: 0,
            cp_len: 0,
            needs_reload: true,
            last_cp_ms: i64::MIN,
            last_cp_seq: None,
            interval_ms: cfg.checkpoint_interval_ms,
            mirror,
            clock,
            counters,
            buf: Vec::new(),
            times: Vec::new(),
        };
        w.with_lock(|w| {
            w.sync_head()?;
            w.load_last_checkpoint()
        })?;
        tracing::info!(dir = %cfg.dir.display(), head_seq = w.head_seq, "audit log opened");
        Ok(w)
    }

    pub fn head(&self) -> (u64, Digest32) {
        (self.head_seq, self.head_hash)
    }

    /// Marks the in-memory state as untrusted (after a panic during a group write).
    pub fn force_reload(&mut self) {
        self.needs_reload = true;
    }

    /// Whether this process wrote records that no checkpoint covers yet.
    pub fn has_unsigned_records(&self) -> bool {
        self.head_seq > 0 && self.last_cp_seq != Some(self.head_seq)
    }

    /// Appends `events` as one group and returns the first assigned seq. Durable on
    /// success; on failure nothing of the group remains in the log.
    pub fn write_group(&mut self, events: &[AuditEvent]) -> Result<u64, AuditError> {
        self.with_lock(|w| w.write_group_locked(events))
    }

    /// Signs the current head now (re-reading it first: another process may have
    /// appended).
    pub fn checkpoint(&mut self) -> Result<(), AuditError> {
        self.with_lock(|w| {
            w.sync_head()?;
            w.write_checkpoint(true)
        })
    }

    fn with_lock<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        // Clone the handle so the guard does not borrow `self` (same open file
        // description, so the same lock).
        let lock_file = self
            .lock
            .try_clone()
            .io_context(|| "duplicating the audit lock handle".to_owned())?;
        let _guard =
            FlockGuard::exclusive(&lock_file).io_context(|| "locking the audit log".to_owned())?;
        f(self)
    }

    fn write_group_locked(&mut self, events: &[AuditEvent]) -> Result<u64, AuditError> {
        self.sync_head()?;
        let first = self.head_seq + 1;
        let last_hash = self.encode(first, events)?;
        let start = self.log_len;
        let written = self
            .log
            .write_all(&self.buf)
            .and_then(|()| self.log.sync_data());
        if let Err(e) = written {
            self.undo_log_write(start);
            return Err(AuditError::io(
                format!("appending to {}", self.log_path.display()),
                e,
            ));
        }
        self.log_len = start + self.buf.len() as u64;
        self.head_seq = first + events.len() as u64 - 1;
        self.head_hash = last_hash;
        Counters::add(&self.counters.groups_written, 1);
        Counters::add(&self.counters.records_appended, events.len() as u64);
        if let Some(m) = &mut self.mirror {
            m.write_group(&self.buf, &self.times);
        }
        if self.checkpoint_due() {
            // The records are durable: a failed checkpoint is an operator problem, not
            // a reason to tell the callers their records were not written. Not fsynced
            // (that would double the cost of every append): a crash can lose the newest
            // checkpoints, never a checkpoint's records, and open drops a torn one.
            if let Err(e) = self.write_checkpoint(false) {
                Counters::add(&self.counters.checkpoint_failures, 1);
                tracing::error!(error = %e, "could not write an audit checkpoint");
            }
        }
        Ok(first)
    }

    /// Encodes the group into `self.buf`, returning the last record's hash.
    fn encode(&mut self, first: u64, events: &[AuditEvent]) -> Result<Digest32, AuditError> {
        self.buf.clear();
        self.times.clear();
        let mut prev = self.head_hash;
        let mut prev_hex = hex::encode(prev);
        for (i, event) in events.iter().enumerate() {
            let seq = first + i as u64;
            let hash = record_hash(&prev, seq, event);
            let hash_hex = hex::encode(hash);
            let start = self.buf.len();
            write_record_line(seq, &prev_hex, &hash_hex, event, &mut self.buf)
                .map_err(|e| AuditError::InvalidEvent(format!("cannot encode: {e}")))?;
            let line_len = self.buf.len() - start - 1;
            if line_len > MAX_LINE_BYTES {
                return Err(AuditError::InvalidEvent(format!(
                    "record line is {line_len} bytes, the limit is {MAX_LINE_BYTES}"
                )));
            }
            debug_assert!(
                crate::line::parse_record_line(&self.buf[start..self.buf.len() - 1]).is_ok()
            );
            self.times.push(event.time_ms);
            prev = hash;
            prev_hex = hash_hex;
        }
        Ok(prev)
    }

    /// Cuts the log back to `len` after a failed write. If even that fails, the next
    /// group re-reads the tail (and drops a torn line) before writing.
    fn undo_log_write(&mut self, len: u64) {
        let undone = self.log.set_len(len).and_then(|()| self.log.sync_data());
        if let Err(e) = undone {
            tracing::error!(file = %self.log_path.display(), error = %e,
                "could not cut back a failed audit write; the tail will be re-read");
        }
        self.needs_reload = true;
    }

    /// Re-reads the head if the log changed since we last knew it. Lock held.
    fn sync_head(&mut self) -> Result<(), AuditError> {
        let len = self
            .log
            .metadata()
            .io_context(|| format!("reading the length of {}", self.log_path.display()))?
            .len();
        if len == self.log_len && !self.needs_reload {
            return Ok(());
        }
        if len < self.log_len {
            // Writers only ever append; nothing legitimate cuts below a line we wrote.
            tracing::error!(file = %self.log_path.display(), known_bytes = self.log_len,
                now_bytes = len, "the audit log shrank since the last write; it was cut or \
                replaced. Continuing from its current end; run `minim audit verify`");
        }
        let len = repair_torn_tail(&self.log, &self.log_path)?;
        let (seq, hash) = read_head(&self.log, len, &self.log_path)?;
        self.head_seq = seq;
        self.head_hash = hash;
        self.log_len = len;
        self.needs_reload = false;
        Ok(())
    }

    /// At open: repair the checkpoint file's tail, remember when the last checkpoint was
    /// made, and say loudly if it was signed by another key. Lock held.
    fn load_last_checkpoint(&mut self) -> Result<(), AuditError> {
        self.cp_len = repair_torn_tail(&self.cp, &self.cp_path)?;
        match read_last_checkpoint(&self.cp, self.cp_len, &self.cp_path)? {
            LastCheckpoint::None => {}
            LastCheckpoint::Unreadable(reason) => {
                tracing::warn!(file = %self.cp_path.display(), %reason,
                    "the last audit checkpoint is unreadable; run `minim audit verify`");
            }
            LastCheckpoint::Found(cp) => {
                self.last_cp_ms = cp.time_ms;
                if cp.seq == self.head_seq {
                    self.last_cp_seq = Some(cp.seq);
                }
                if !cp.names_key(&self.key.verifying_key()) {
                    tracing::error!(file = %self.cp_path.display(),
                        "existing audit checkpoints name another signing key than the configured \
                         one; `minim audit verify` will fail on them. Check signing_key_path.");
                }
            }
        }
        Ok(())
    }

    fn checkpoint_due(&self) -> bool {
        self.interval_ms == 0 || {
            let now = (self.clock)();
            now.saturating_sub(self.last_cp_ms)
                >= i64::try_from(self.interval_ms).unwrap_or(i64::MAX)
        }
    }

    /// Signs the head and appends the checkpoint (fsynced if `durable`). Lock held,
    /// head synced.
    fn write_checkpoint(&mut self, durable: bool) -> Result<(), AuditError> {
        let len = self
            .cp
            .metadata()
            .io_context(|| format!("reading the length of {}", self.cp_path.display()))?
            .len();
        if len != self.cp_len {
            self.cp_len = repair_torn_tail(&self.cp, &self.cp_path)?;
        }
        let now = (self.clock)();
        let line = signed_line(&self.key, self.head_seq, &self.head_hash, now)
            .map_err(|e| AuditError::io("encoding a checkpoint", std::io::Error::other(e)))?;
        let written = self
            .cp
            .write_all(&line)
            .and_then(|()| if durable { self.cp.sync_data() } else { Ok(()) });
        if let Err(e) = written {
            if let Err(e2) = self.cp.set_len(self.cp_len) {
                tracing::error!(error = %e2, "could not cut back a failed checkpoint write");
            }
            return Err(AuditError::io(
                format!("appending to {}", self.cp_path.display()),
                e,
            ));
        }
        self.cp_len += line.len() as u64;
        self.last_cp_ms = now;
        self.last_cp_seq = Some(self.head_seq);
        Counters::add(&self.counters.checkpoints_written, 1);
        Ok(())
    }
}

/// Opens (creating, 0600) a file for reading and writing, appending if `append`.
fn open_file(path: &Path, append: bool) -> Result<File, AuditError> {
    let mut o = OpenOptions::new();
    o.read(true).create(true).mode(0o600);
    if append {
        o.append(true);
    } else {
        o.write(true);
    }
    o.open(path)
        .io_context(|| format!("opening {}", path.display()))
}

/// The key is meant to live outside the data directory (`dir`'s parent), so that a
/// copy of the data directory cannot forge checkpoints.
fn warn_if_key_in_data_dir(dir: &Path, key: &Path) {
    let (Ok(dir), Ok(key)) = (dir.canonicalize(), key.canonicalize()) else {
        return;
    };
    let data_dir = dir.parent().unwrap_or(&dir);
    if key.starts_with(data_dir) {
        tracing::warn!(key = %key.display(), data_dir = %data_dir.display(),
            "the audit signing key is inside the data directory; move it out so that \
             someone who can rewrite the data cannot re-sign it");
    }
}
