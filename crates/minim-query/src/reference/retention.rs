//! Retention reference: cohorts of users by period of `start_event`, and who came back.
//!
//! Semantics (periods are UTC days, ISO weeks starting Monday, or calendar months):
//! - Cohorts: one per period overlapping `[from, to]`, in order, labelled by the period's
//!   first day (a week cohort may be labelled with a Monday before `from`); empty cohorts
//!   are listed with size 0.
//! - `first_time` (default): a user's cohort is the period of their first `start_event`
//!   within `[from, to]` (earlier `start_event`s are ignored, as CONTRACT.md says).
//! - `recurring`: a user belongs to the cohort of every period in which they did a
//!   `start_event` within `[from, to]`.
//! - `returned[k]` (k = 0 .. periods - 1): cohort users with at least one `return_event`
//!   anywhere in period `cohort + k`. Only the period matters: a return event earlier in
//!   the same period than the start event, before `from` within the first period, or
//!   after `to`, all count. So with `start_event == return_event`, `returned[0] == size`.

use std::collections::{BTreeMap, BTreeSet};

use minim_core::Event;

use crate::result::{Cohort, RetentionResult};
use crate::spec::{Date, Interval, RetentionSpec, RetentionType};
use crate::time::{bucket_index, bucket_start, bucket_starts, label};

pub fn retention(spec: &RetentionSpec, events: &[Event]) -> RetentionResult {
    let (start, end) = Date::range_ms(spec.from, spec.to);
    let interval = spec.period.interval();

    // Per user: the periods (bucket starts) of their cohorts, and of their returns.
    let mut cohorts_of: BTreeMap<&str, BTreeSet<i64>> = BTreeMap::new();
    let mut first_start: BTreeMap<&str, i64> = BTreeMap::new();
    let mut returns_of: BTreeMap<&str, BTreeSet<i64>> = BTreeMap::new();
    for e in events {
        let user = e.distinct_id.as_str();
        if e.event == spec.start_event && start <= e.timestamp_ms && e.timestamp_ms < end {
            let first = first_start.entry(user).or_insert(e.timestamp_ms);
            *first = (*first).min(e.timestamp_ms);
            if let Some(p) = bucket_start(interval, e.timestamp_ms) {
                cohorts_of.entry(user).or_default().insert(p);
            }
        }
        if e.event == spec.return_event
            && let Some(p) = bucket_start(interval, e.timestamp_ms)
        {
            returns_of.entry(user).or_default().insert(p);
        }
    }
    if spec.retention_type == RetentionType::FirstTime {
        cohorts_of = first_start
            .iter()
            .filter_map(|(user, ts)| Some((*user, BTreeSet::from([bucket_start(interval, *ts)?]))))
            .collect();
    }

    let mut counts = RetentionCounts::new(spec);
    let first = counts.first_period_ms();
    let index = |p: &i64| {
        first
            .and_then(|f| bucket_index(interval, f, *p))
            .and_then(|i| usize::try_from(i).ok())
    };
    let empty = BTreeSet::new();
    for (user, cohorts) in &cohorts_of {
        let returns: BTreeSet<usize> = returns_of
            .get(user)
            .unwrap_or(&empty)
            .iter()
            .filter_map(index)
            .collect();
        counts.add_user(cohorts.iter().filter_map(index), |i| returns.contains(&i));
    }
    counts.finish()
}

/// Cohort sizes and returns, filled one user at a time. Periods are identified by their
/// index from the first cohort period (0); engines compute each user's cohort and
/// return periods their own way and share this summary.
pub(crate) struct RetentionCounts {
    interval: Interval,
    starts: Vec<i64>,
    periods: usize,
    sizes: Vec<u64>,
    returned: Vec<Vec<u64>>,
}

impl RetentionCounts {
    pub(crate) fn new(spec: &RetentionSpec) -> Self {
        let interval = spec.period.interval();
        let starts = bucket_starts(interval, spec.from, spec.to);
        let periods = usize::try_from(spec.periods).unwrap_or(0);
        Self {
            interval,
            sizes: vec![0; starts.len()],
            returned: vec![vec![0; periods]; starts.len()],
            starts,
            periods,
        }
    }

    /// Start of the first cohort period (`None` for an empty range).
    pub(crate) fn first_period_ms(&self) -> Option<i64> {
        self.starts.first().copied()
    }

    /// Number of cohorts (periods in `[from, to]`).
    pub(crate) fn cohorts(&self) -> usize {
        self.starts.len()
    }

    /// Periods counted after a cohort (`returned` entries).
    pub(crate) fn periods(&self) -> usize {
        self.periods
    }

    /// Adds a user who belongs to the cohorts at `cohorts` (indices; out of range ones are
    /// ignored) and returned in every period index `i` with `returned(i)`.
    pub(crate) fn add_user(
        &mut self,
        cohorts: impl IntoIterator<Item = usize>,
        returned: impl Fn(usize) -> bool,
    ) {
        for c in cohorts {
            let (Some(size), Some(row)) = (self.sizes.get_mut(c), self.returned.get_mut(c)) else {
                continue;
            };
            *size += 1;
            for (k, slot) in row.iter_mut().enumerate() {
                if returned(c + k) {
                    *slot += 1;
                }
            }
        }
    }

    pub(crate) fn finish(self) -> RetentionResult {
        let interval = self.interval;
        let cohorts = self
            .starts
            .iter()
            .zip(self.sizes)
            .zip(self.returned)
            .map(|((c, size), returned)| Cohort {
                cohort: label(interval, *c),
                size,
                returned,
            })
            .collect();
        RetentionResult { cohorts }
    }
}
