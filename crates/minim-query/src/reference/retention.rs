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
use crate::spec::{Date, RetentionSpec, RetentionType};
use crate::time::{bucket_start, bucket_starts, label, next_bucket};

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

    let periods = usize::try_from(spec.periods).unwrap_or(0);
    let cohorts = bucket_starts(interval, spec.from, spec.to)
        .into_iter()
        .map(|c| {
            let members: Vec<&str> = cohorts_of
                .iter()
                .filter(|(_, set)| set.contains(&c))
                .map(|(user, _)| *user)
                .collect();
            // Period `cohort + k` for k = 0, 1, ...; `None` past the representable range.
            let mut period_k = Some(c);
            let returned = (0..periods)
                .map(|_| {
                    let Some(p) = period_k else {
                        return 0;
                    };
                    period_k = next_bucket(interval, p);
                    members
                        .iter()
                        .filter(|u| returns_of.get(*u).is_some_and(|set| set.contains(&p)))
                        .count() as u64
                })
                .collect();
            Cohort {
                cohort: label(interval, c),
                size: members.len() as u64,
                returned,
            }
        })
        .collect();
    RetentionResult { cohorts }
}
