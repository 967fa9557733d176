//! Group commit: concurrent `append` calls are queued, and whichever caller finds no
//! write in progress becomes the leader, takes everything queued (up to
//! [`MAX_GROUP_EVENTS`]) and writes it with one write and one fsync, then hands each
//! caller its seqs. While a leader writes, new callers queue up for the next group.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use crate::error::AuditError;
use crate::event::AuditEvent;

/// Most events one group write carries.
pub const MAX_GROUP_EVENTS: usize = 16_384;

type Outcome = Result<Vec<u64>, AuditError>;

#[derive(Default)]
struct State {
    pending: VecDeque<(u64, Vec<AuditEvent>)>,
    leader: bool,
    done: HashMap<u64, Outcome>,
    next_ticket: u64,
}

#[derive(Default)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    cv: Condvar,
}

impl GroupCommit {
    /// Queues `events` and returns their seqs once some leader (perhaps this caller)
    /// has written them. `write` appends one group and returns its first seq.
    pub fn submit(
        &self,
        events: Vec<AuditEvent>,
        mut write: impl FnMut(&[AuditEvent]) -> Result<u64, AuditError>,
    ) -> Outcome {
        let mut st = self.lock();
        let ticket = st.next_ticket;
        st.next_ticket += 1;
        st.pending.push_back((ticket, events));
        loop {
            if let Some(outcome) = st.done.remove(&ticket) {
                return outcome;
            }
            if !st.leader {
                // Our ticket is still queued: a leader that had taken it would still be
                // the leader, or would have posted its outcome.
                st.leader = true;
                let batch = take_batch(&mut st.pending);
                drop(st);
                let mut round = Round {
                    group: self,
                    tickets: Vec::with_capacity(batch.len()),
                    outcomes: None,
                };
                let mut all = Vec::with_capacity(batch.iter().map(|(_, e)| e.len()).sum());
                for (t, events) in batch {
                    round.tickets.push((t, events.len()));
                    all.extend(events);
                }
                round.outcomes = Some(write(&all).map(|first| split(first, &round.tickets)));
                drop(round); // posts the outcomes, even if `write` panicked
                st = self.lock();
                continue;
            }
            st = self.cv.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is consistent at every unlock, so a panic elsewhere does not spoil it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn take_batch(pending: &mut VecDeque<(u64, Vec<AuditEvent>)>) -> Vec<(u64, Vec<AuditEvent>)> {
    let mut batch = Vec::new();
    let mut n = 0;
    while let Some((_, events)) = pending.front() {
        if !batch.is_empty() && n + events.len() > MAX_GROUP_EVENTS {
            break;
        }
        n += events.len();
        if let Some(item) = pending.pop_front() {
            batch.push(item);
        }
    }
    batch
}

/// Each ticket's seqs, given the group's first seq and the tickets' sizes in order.
fn split(first: u64, tickets: &[(u64, usize)]) -> Vec<Vec<u64>> {
    let mut next = first;
    tickets
        .iter()
        .map(|&(_, n)| {
            let seqs: Vec<u64> = (next..next + n as u64).collect();
            next += n as u64;
            seqs
        })
        .collect()
}

/// One leader's round. Dropping it posts every ticket's outcome and steps down, so the
/// followers are released even if the write panicked.
struct Round<'a> {
    group: &'a GroupCommit,
    tickets: Vec<(u64, usize)>,
    outcomes: Option<Result<Vec<Vec<u64>>, AuditError>>,
}

impl Drop for Round<'_> {
    fn drop(&mut self) {
        let outcomes = self.outcomes.take().unwrap_or_else(|| {
            Err(AuditError::io(
                "audit group write",
                std::io::Error::other("the writer panicked"),
            ))
        });
        let mut st = self.group.lock();
        match outcomes {
            Ok(seqs) => {
                for (&(t, _), s) in self.tickets.iter().zip(seqs) {
                    st.done.insert(t, Ok(s));
                }
            }
            Err(e) => {
                for &(t, _) in &self.tickets {
                    st.done.insert(t, Err(e.clone()));
                }
            }
        }
        st.leader = false;
        drop(st);
        self.group.cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn ev() -> AuditEvent {
        AuditEvent {
            time_ms: 0,
            principal: "p".into(),
            principal_kind: "cli".into(),
            action: "a".into(),
            resource: "r".into(),
            decision: crate::Decision::Allow,
            status: 0,
            rows: 0,
            bytes: 0,
            distinct_users: 0,
            fingerprint: None,
            client_ip_hash: None,
            reason: None,
            request_id: None,
        }
    }

    #[test]
    fn concurrent_callers_share_writes_and_get_distinct_seqs() {
        let g = Arc::new(GroupCommit::default());
        let next = Arc::new(Mutex::new(1u64));
        let writes = Arc::new(AtomicU64::new(0));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (g, next, writes) = (g.clone(), next.clone(), writes.clone());
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    for _ in 0..200 {
                        let out = g.submit(vec![ev(), ev()], |all| {
                            writes.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(std::time::Duration::from_micros(50));
                            let mut n = next.lock().expect("lock");
                            let first = *n;
                            *n += all.len() as u64;
                            Ok(first)
                        });
                        mine.extend(out.expect("ok"));
                    }
                    mine
                })
            })
            .collect();
        let mut all: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("join"))
            .collect();
        all.sort_unstable();
        assert_eq!(all, (1..=3200).collect::<Vec<_>>());
        assert!(writes.load(Ordering::Relaxed) <= 1600);
    }

    #[test]
    fn a_panicking_writer_fails_its_group_and_releases_leadership() {
        let g = GroupCommit::default();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            g.submit(vec![ev()], |_| panic!("bug"))
        }));
        assert!(r.is_err());
        let out = g.submit(vec![ev()], |_| Ok(7)).expect("ok");
        assert_eq!(out, vec![7]);
        assert!(g.lock().done.len() <= 1);
    }
}
