//! The WAL writer thread: group commit, dedupe, memtable insert, freeze for flush.
//!
//! One thread owns the WAL file, the dedupe index and all memtable inserts, so their
//! order is trivially consistent: a batch is written, fsynced once per group, then
//! inserted into the memtable, and only then answered. Freezing rotates the WAL at the
//! same instant, so a frozen memtable holds exactly the WAL files below the new one.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use hashbrown::HashSet;
use minim_core::{EventBatch, time::day_of};
use tokio::sync::oneshot;

use crate::dedupe::DedupeIndex;
use crate::error::{Result, StoreError};
use crate::flush::Job;
use crate::metrics as m;
use crate::wal::WalWriter;
use crate::wal::format::{
    FLAG_ENCRYPTED, KIND_EVENT_BATCH, encode_batch, encrypted_payload, write_record,
};
use crate::{AppendOutcome, Shared};

pub(crate) enum Msg {
    Append(Request),
    /// Freeze and flush the memtable; answer when it is in segments.
    Flush(Sender<Result<()>>),
    /// Like `Flush`, but always rotates the WAL, even with an empty memtable: once
    /// answered `Ok`, every event acknowledged before the request is in segments and
    /// every WAL file written before it is deleted (erasure and retention need both).
    FlushRotate(Sender<Result<()>>),
    /// Drain, flush, stop the flusher; answer with the final flush result.
    Shutdown(Sender<Result<()>>),
}

pub(crate) struct Request {
    pub batch: EventBatch,
    pub resp: oneshot::Sender<Result<AppendOutcome>>,
}

pub(crate) struct Writer {
    pub shared: Arc<Shared>,
    pub wal: WalWriter,
    pub dedupe: DedupeIndex,
    pub seq: u64,
    pub rx: Receiver<Msg>,
    pub flush_tx: Option<SyncSender<Job>>,
    pub flush_waiters: Vec<Sender<Result<()>>>,
    /// A waiter asked for a WAL rotation even if the memtable is empty.
    pub force_rotate: bool,
    pub last_recovery_attempt: Option<Instant>,
}

const TICK: Duration = Duration::from_millis(50);
const RECOVERY_INTERVAL: Duration = Duration::from_secs(1);

impl Writer {
    pub fn run(mut self) {
        let max_group = self.shared.cfg.wal_max_group_bytes;
        loop {
            let first = match self.rx.recv_timeout(TICK) {
                Ok(msg) => Some(msg),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let mut appends = Vec::new();
            let mut group_bytes = 0usize;
            let mut shutdown = None;
            let mut next = first;
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Append(r) => {
                        self.shared.queue_depth.fetch_sub(1, Ordering::AcqRel);
                        group_bytes += r
                            .batch
                            .events
                            .iter()
                            .map(|e| e.approx_bytes())
                            .sum::<usize>();
                        appends.push(r);
                    }
                    Msg::Flush(tx) => self.flush_waiters.push(tx),
                    Msg::FlushRotate(tx) => {
                        self.flush_waiters.push(tx);
                        self.force_rotate = true;
                    }
                    Msg::Shutdown(tx) => shutdown = Some(tx),
                }
                if group_bytes < max_group && shutdown.is_none() {
                    next = self.rx.try_recv().ok();
                }
            }
            ::metrics::gauge!(m::WAL_QUEUE_DEPTH)
                .set(self.shared.queue_depth.load(Ordering::Acquire) as f64);
            if !appends.is_empty() {
                self.commit(appends);
            }
            if !self.wal.is_open() {
                self.try_recover();
            }
            self.maybe_freeze(shutdown.is_some());
            if let Some(tx) = shutdown {
                self.finish(tx);
                return;
            }
        }
    }

    /// Writes a group of batches with one fsync, then makes them visible and answers.
    fn commit(&mut self, appends: Vec<Request>) {
        if !self.wal.is_open() || self.over_hard_cap() {
            let err = if self.wal.is_open() {
                StoreError::Overloaded
            } else {
                StoreError::Unavailable("the write-ahead log is not writable".into())
            };
            for r in appends {
                let _ = r.resp.send(Err(clone_err(&err)));
            }
            return;
        }
        let mut buf = Vec::new();
        let mut payload = Vec::new();
        let mut sealed_buf = Vec::new();
        let mut pending: HashSet<u128> = HashSet::new();
        let mut staged = Vec::with_capacity(appends.len());
        for req in appends {
            let EventBatch { project, events } = req.batch;
            let total = events.len();
            let mut keep = Vec::with_capacity(total);
            let mut keys = Vec::new();
            for e in events {
                if let Some(id) = &e.insert_id {
                    let h = self.dedupe.hash(&project, id);
                    if self.dedupe.contains(&project, h) || !pending.insert(h) {
                        continue;
                    }
                    keys.push((day_of(e.timestamp_ms), h));
                }
                keep.push(e);
            }
            if !keep.is_empty() {
                payload.clear();
                encode_batch(&mut payload, &project, keep.iter());
                let seq = self.seq + 1;
                let framed = match &self.shared.cfg.encryption {
                    None => Ok((0, 0, None)),
                    Some(enc) => enc
                        .seal_wal(&project, self.wal.file_no(), seq, &payload)
                        .map(|(key_id, ct)| (FLAG_ENCRYPTED, key_id, Some(ct))),
                };
                match framed {
                    Ok((flags, key_id, sealed)) => {
                        let body = match &sealed {
                            Some(ct) => {
                                encrypted_payload(&mut sealed_buf, &project, ct);
                                &sealed_buf
                            }
                            None => &payload,
                        };
                        self.seq = seq;
                        write_record(&mut buf, KIND_EVENT_BATCH, flags, key_id, seq, body);
                        ::metrics::counter!(m::WAL_RECORDS).increment(1);
                    }
                    Err(e) => {
                        // This batch only: its ids may be sent again.
                        for (_, h) in &keys {
                            pending.remove(h);
                        }
                        tracing::error!(project = %project, error = %e, "could not encrypt a WAL record");
                        let _ = req.resp.send(Err(e));
                        continue;
                    }
                }
            }
            let dups = total - keep.len();
            staged.push((req.resp, project, keep, keys, dups));
        }
        if !buf.is_empty() {
            let started = Instant::now();
            let res = self.wal.append_durable(&buf);
            ::metrics::histogram!(m::WAL_FSYNC_SECONDS).record(started.elapsed().as_secs_f64());
            if let Err(e) = res {
                self.shared.wal_ok.store(false, Ordering::Release);
                self.shared.set_error(&format!("WAL write failed: {e}"));
                ::metrics::counter!(m::WAL_ERRORS).increment(1);
                tracing::error!(error = %e, file_no = self.wal.file_no(), "WAL write failed; refusing writes until the disk recovers");
                self.last_recovery_attempt = Some(Instant::now());
                for (resp, ..) in staged {
                    let _ = resp.send(Err(StoreError::Unavailable(
                        "the write-ahead log is not writable".into(),
                    )));
                }
                return;
            }
            ::metrics::counter!(m::WAL_BYTES).increment(buf.len() as u64);
            ::metrics::counter!(m::WAL_GROUP_COMMITS).increment(1);
        }
        // Durable: remember the ids, make the events visible, answer.
        let now = self.shared.cfg.clock.now_ms();
        let mut answers = Vec::with_capacity(staged.len());
        {
            let mut view = self
                .shared
                .view
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            for (resp, project, keep, keys, dups) in staged {
                for (day, h) in keys {
                    self.dedupe.insert(&project, day, h);
                }
                let stored = keep.len();
                view.active.insert(&project, keep, now);
                answers.push((
                    resp,
                    AppendOutcome {
                        stored,
                        duplicates: dups,
                    },
                ));
            }
            ::metrics::gauge!(m::MEMTABLE_BYTES).set(view.active.bytes() as f64);
            ::metrics::gauge!(m::MEMTABLE_ROWS).set(view.active.rows() as f64);
        }
        ::metrics::gauge!(m::DEDUPE_KEYS).set(self.dedupe.len() as f64);
        for (resp, outcome) in answers {
            ::metrics::counter!(m::EVENTS_STORED).increment(outcome.stored as u64);
            ::metrics::counter!(m::EVENTS_DEDUPLICATED).increment(outcome.duplicates as u64);
            let _ = resp.send(Ok(outcome));
        }
    }

    /// The memtable is at twice its flush size and a flush is still running.
    fn over_hard_cap(&self) -> bool {
        let v = self
            .shared
            .view
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        v.frozen.is_some() && v.active.bytes() >= 2 * self.shared.cfg.memtable_max_bytes
    }

    fn try_recover(&mut self) {
        if self
            .last_recovery_attempt
            .is_some_and(|t| t.elapsed() < RECOVERY_INTERVAL)
        {
            return;
        }
        self.last_recovery_attempt = Some(Instant::now());
        match self.wal.rotate() {
            Ok(no) => {
                self.shared.wal_ok.store(true, Ordering::Release);
                tracing::info!(file_no = no, "WAL writable again");
            }
            Err(e) => tracing::warn!(error = %e, "WAL still not writable"),
        }
    }

    /// Freezes the active memtable and hands it to the flusher when it is due.
    fn maybe_freeze(&mut self, force: bool) {
        let cfg = &self.shared.cfg;
        let (bytes, first, busy, empty) = {
            let v = self
                .shared
                .view
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            (
                v.active.bytes(),
                v.active.first_insert_ms(),
                v.frozen.is_some(),
                v.active.is_empty(),
            )
        };
        let now = cfg.clock.now_ms();
        let due = force
            || !self.flush_waiters.is_empty()
            || bytes >= cfg.memtable_max_bytes
            || first.is_some_and(|t| now - t >= cfg.flush_interval_ms as i64);
        if !due || busy {
            return;
        }
        if empty && !self.force_rotate {
            for w in self.flush_waiters.drain(..) {
                let _ = w.send(Ok(()));
            }
            return;
        }
        if !self.wal.is_open() {
            self.fail_flush_waiters();
            return;
        }
        let started = Instant::now();
        let rotated = self.wal.rotate();
        ::metrics::histogram!(m::WAL_ROTATE_SECONDS).record(started.elapsed().as_secs_f64());
        let new_file = match rotated {
            Ok(n) => n,
            Err(e) => {
                self.shared.wal_ok.store(false, Ordering::Release);
                self.shared.set_error(&format!("WAL rotation failed: {e}"));
                tracing::error!(error = %e, "WAL rotation failed; refusing writes until the disk recovers");
                self.fail_flush_waiters();
                return;
            }
        };
        let frozen = {
            let mut v = self
                .shared
                .view
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let mem = Arc::new(std::mem::take(&mut v.active));
            v.frozen = Some(mem.clone());
            mem
        };
        ::metrics::gauge!(m::MEMTABLE_BYTES).set(0.0);
        ::metrics::gauge!(m::MEMTABLE_ROWS).set(0.0);
        self.force_rotate = false;
        let job = Job {
            mem: frozen,
            wal_replay_from: new_file,
            waiters: std::mem::take(&mut self.flush_waiters),
        };
        if let Some(tx) = &self.flush_tx {
            let _ = tx.send(job);
        }
    }

    fn fail_flush_waiters(&mut self) {
        self.force_rotate = false;
        for w in self.flush_waiters.drain(..) {
            let _ = w.send(Err(StoreError::Unavailable(
                "the write-ahead log is not writable".into(),
            )));
        }
    }

    /// Final flush at shutdown: wait for any running flush, flush the rest, stop.
    fn finish(&mut self, done: Sender<Result<()>>) {
        // Anything still queued was accepted before shutdown began: store it.
        let mut late = Vec::new();
        while let Ok(msg) = self.rx.try_recv() {
            match msg {
                Msg::Append(r) => {
                    self.shared.queue_depth.fetch_sub(1, Ordering::AcqRel);
                    late.push(r);
                }
                Msg::Flush(tx) | Msg::Shutdown(tx) => self.flush_waiters.push(tx),
                Msg::FlushRotate(tx) => {
                    self.flush_waiters.push(tx);
                    self.force_rotate = true;
                }
            }
        }
        if !late.is_empty() {
            self.commit(late);
        }
        // Wait for an in-flight flush (the flusher gives up after a few failed attempts
        // once shutdown began, leaving the data in the WAL), then flush the rest.
        while self
            .shared
            .view
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .frozen
            .is_some()
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let (tx, rx) = std::sync::mpsc::channel();
        self.flush_waiters.push(tx);
        self.maybe_freeze(true);
        let result = rx.recv().unwrap_or(Err(StoreError::ShuttingDown));
        self.flush_tx = None; // the flusher exits when its queue closes
        let _ = done.send(result);
    }
}

fn clone_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::Overloaded => StoreError::Overloaded,
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// Asks the writer for a [`Msg::FlushRotate`] and waits for the answer (for erasure and
/// retention, which may run on the compactor thread, hence through `Shared`).
pub(crate) fn flush_and_rotate(shared: &Shared) -> Result<()> {
    let tx = shared
        .writer
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .ok_or(StoreError::ShuttingDown)?;
    let (done, answer) = std::sync::mpsc::channel();
    tx.send(Msg::FlushRotate(done))
        .map_err(|_| StoreError::ShuttingDown)?;
    drop(tx);
    answer.recv().map_err(|_| StoreError::ShuttingDown)?
}
