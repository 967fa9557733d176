//! [`AuditLog`]: the handle the server and CLI share (`Arc<AuditLog>`), tying group
//! commit, the file writer and queries together.

use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::{AuditError, IoContext};
use crate::event::{AuditEvent, AuditRecord, MAX_EVENTS_PER_APPEND};
use crate::group::GroupCommit;
use crate::query::{Filter, scan};
use crate::stats::{AuditStats, Counters};
use crate::writer::Writer;
use crate::{AuditConfig, Clock, LOG_FILE};

/// An open audit log. `Send + Sync`; every method blocks on file I/O, so async callers
/// use `spawn_blocking`.
pub struct AuditLog {
    group: GroupCommit,
    writer: Mutex<Writer>,
    /// `(seq, hex hash)` of the newest record this process knows of.
    head: Mutex<(u64, String)>,
    counters: Arc<Counters>,
    log_path: PathBuf,
    /// A read handle for queries (positioned reads, shared between threads).
    reader: File,
}

impl AuditLog {
    /// Opens the log in `cfg.dir`, creating the directory (0700) and files (0600) as
    /// needed, and loads or creates the signing key. Under the writers' lock it drops
    /// an unfinished last line (a crashed write, logged at WARN) and reads the head from
    /// the last record, which must be valid ([`AuditError::Corrupt`] otherwise).
    pub fn open(cfg: AuditConfig) -> Result<AuditLog, AuditError> {
        Self::open_with_clock(cfg, Arc::new(crate::now_ms))
    }

    /// [`AuditLog::open`] with a clock for checkpoint times and intervals (tests).
    pub fn open_with_clock(cfg: AuditConfig, clock: Clock) -> Result<AuditLog, AuditError> {
        let counters = Arc::new(Counters::default());
        let writer = Writer::open(&cfg, clock, counters.clone())?;
        let (seq, hash) = writer.head();
        let log_path = cfg.dir.join(LOG_FILE);
        let reader =
            File::open(&log_path).io_context(|| format!("opening {}", log_path.display()))?;
        Ok(AuditLog {
            group: GroupCommit::default(),
            writer: Mutex::new(writer),
            head: Mutex::new((seq, hex::encode(hash))),
            counters,
            log_path,
            reader,
        })
    }

    /// Appends `events` with consecutive seqs, returned in order. Durable (fsynced)
    /// when this returns `Ok`. Concurrent callers share one write and one fsync.
    pub fn append(&self, events: Vec<AuditEvent>) -> Result<Vec<u64>, AuditError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let checked = if events.len() > MAX_EVENTS_PER_APPEND {
            Err(AuditError::InvalidEvent(format!(
                "{} events in one append, the limit is {MAX_EVENTS_PER_APPEND}",
                events.len()
            )))
        } else {
            events.iter().try_for_each(AuditEvent::validate)
        };
        if let Err(e) = checked {
            Counters::add(&self.counters.events_rejected, events.len() as u64);
            return Err(e);
        }
        self.group.submit(events, |batch| {
            let mut w = self.lock_writer();
            let r = w.write_group(batch);
            match &r {
                Ok(_) => self.publish_head(&w),
                Err(e) => {
                    Counters::add(&self.counters.append_failures, 1);
                    tracing::error!(error = %e, records = batch.len(),
                        "audit append failed; the requests it audits will fail");
                }
            }
            r
        })
    }

    /// Appends one event; see [`AuditLog::append`].
    pub fn append_one(&self, event: AuditEvent) -> Result<u64, AuditError> {
        let seqs = self.append(vec![event])?;
        seqs.first()
            .copied()
            .ok_or_else(|| AuditError::io("audit append", std::io::Error::other("no seq assigned")))
    }

    /// Signs `(seq, hash, time)` of the head now.
    pub fn checkpoint(&self) -> Result<(), AuditError> {
        let mut w = self.lock_writer();
        w.checkpoint()?;
        self.publish_head(&w);
        Ok(())
    }

    /// Up to `limit` records matching `filter`, newest first.
    pub fn query(&self, filter: &Filter, limit: usize) -> Result<Vec<AuditRecord>, AuditError> {
        scan(&self.reader, &self.log_path, filter, limit)
    }

    /// `(seq, hex hash)` of the newest record as of this process's last write (or open,
    /// or checkpoint); `(0, 64 zeros)` for an empty log.
    pub fn head(&self) -> (u64, String) {
        self.head
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Counters since open.
    pub fn stats(&self) -> AuditStats {
        self.counters.snapshot()
    }

    fn publish_head(&self, w: &Writer) {
        let (seq, hash) = w.head();
        *self.head.lock().unwrap_or_else(PoisonError::into_inner) = (seq, hex::encode(hash));
    }

    /// The writer, recovering from a panic in an earlier write by re-reading the files'
    /// state before the next one.
    fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        match self.writer.lock() {
            Ok(g) => g,
            Err(poisoned) => {
                let mut g = poisoned.into_inner();
                g.force_reload();
                self.writer.clear_poison();
                g
            }
        }
    }
}

impl Drop for AuditLog {
    /// With a checkpoint interval, records written since the last checkpoint are
    /// signed on the way out (best effort).
    fn drop(&mut self) {
        let w = self
            .writer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if w.has_unsigned_records()
            && let Err(e) = w.checkpoint()
        {
            Counters::add(&self.counters.checkpoint_failures, 1);
            tracing::warn!(error = %e, "could not sign the audit log's head on close");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn audit_log_is_send_and_sync() {
        fn shared<T: Send + Sync>() {}
        shared::<super::AuditLog>();
    }
}
