//! Funnel reference: ClickHouse `windowFunnel(window)` default mode, per user, by brute force.
//!
//! Semantics (for each user, i.e. `distinct_id`):
//! - A *chain* is a sequence of events `e1, e2, ..., ek` where `e_i` is named like step
//!   `i`, `e1` is in `[from 00:00, to + 1 day 00:00)`, `t(e1) <= t(e2) <= ... <= t(ek)`
//!   and `t(ek) - t(e1) <= window_seconds * 1000` (inclusive: an event exactly
//!   `window_seconds` after the first counts, as ClickHouse's `timestamp <= first +
//!   window`). Later steps may fall after `to`; they can never fall before `from`.
//! - **Ties and repeated steps, as ClickHouse's default mode**: events at the same
//!   millisecond can form a chain in step order whatever their input order, and one
//!   event may fill several consecutive steps when the steps share its name (funnel
//!   `[view, view]` is completed by a single `view`). ClickHouse adds one
//!   `(timestamp, step)` entry per matching condition and sorts the entries by
//!   `(timestamp, step)`, so an event's own entries are visited in ascending step order;
//!   its test `00632_aggregation_window_funnel` asserts `windowFunnel(10000)(timestamp,
//!   event = 1004, event = 1004, event = 1004) = 3` for a single `1004` row. Its
//!   `strict_once` mode, which forbids this, is not what the contract names.
//! - The user's level is the largest `k` of any chain (0: no first-step event in range);
//!   `count` of step `i` is the number of users with level `>= i`.
//! - The *user's chain*, which the extensions use, is the chain reaching their level
//!   whose first event is the latest; from that first event, each later step takes the
//!   earliest qualifying event. (ClickHouse's greedy scan yields the level only; an
//!   engine needs its own pass over the user's sorted events for the chain.)
//! - `median_seconds_from_previous` of step `i >= 2`: over users with level `>= i`, the
//!   [`quantile_exact`] at 0.5 (upper median) of `t(e_i) - t(e_{i-1})` in their chain,
//!   in seconds (milliseconds / 1000).
//! - Breakdown: a user's value is the string form of the breakdown property on the first
//!   event of their chain (`null` if not set); when several first events at the same
//!   millisecond qualify, the smallest value (`null` first, then byte order). Each user
//!   has one value, so the breakdowns' counts add up to the overall counts. Values are
//!   ranked by users entering (step 1 count) descending, then value ascending; the first
//!   `breakdown_limit` are listed, the rest merged into `"$other"` (last).

use std::collections::BTreeMap;

use minim_core::Event;

use crate::props::{parse_properties, property_string};
use crate::quantile::{quantile_exact, sorted};
use crate::result::{FunnelBreakdown, FunnelResult, FunnelStepResult, OTHER_BREAKDOWN};
use crate::spec::{Date, FunnelSpec};

/// One user's answer: their chain's times (`times.len()` is the level, at least 1) and
/// breakdown value. Engines compute these per user their own way and share
/// [`summarize`], which turns them into the result.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) times: Vec<i64>,
    pub(crate) breakdown: Option<String>,
}

pub fn funnel(spec: &FunnelSpec, events: &[Event]) -> FunnelResult {
    let mut by_user: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    for e in events {
        if spec.steps.iter().any(|s| s.event == e.event) {
            by_user.entry(e.distinct_id.as_str()).or_default().push(e);
        }
    }
    let outcomes: Vec<Outcome> = by_user
        .values()
        .filter_map(|evs| user_chain(spec, evs))
        .collect();
    summarize(spec, &outcomes)
}

/// Step counts, medians and breakdowns of the users' outcomes (users with level >= 1).
pub(crate) fn summarize(spec: &FunnelSpec, outcomes: &[Outcome]) -> FunnelResult {
    let steps = step_results(spec, &outcomes.iter().collect::<Vec<_>>());
    let breakdowns = spec.breakdown.as_ref().map(|_| {
        let mut groups: BTreeMap<Option<String>, Vec<&Outcome>> = BTreeMap::new();
        for o in outcomes {
            groups.entry(o.breakdown.clone()).or_default().push(o);
        }
        let mut ranked: Vec<(Option<String>, Vec<&Outcome>)> = groups.into_iter().collect();
        // By users descending, then value ascending (`None` first).
        ranked.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
        let rest = ranked.split_off(spec.breakdown_limit().min(ranked.len()));
        let mut out: Vec<FunnelBreakdown> = ranked
            .into_iter()
            .map(|(value, group)| FunnelBreakdown {
                breakdown_value: value,
                steps: step_results(spec, &group),
            })
            .collect();
        if !rest.is_empty() {
            let merged: Vec<&Outcome> = rest.into_iter().flat_map(|(_, g)| g).collect();
            out.push(FunnelBreakdown {
                breakdown_value: Some(OTHER_BREAKDOWN.to_string()),
                steps: step_results(spec, &merged),
            });
        }
        out
    });
    FunnelResult { steps, breakdowns }
}

/// Times of the chain starting at `first`: each later step takes the earliest event of
/// its name at or after the previous step and within the window of `first`.
fn chain_from(spec: &FunnelSpec, evs: &[&Event], first: &Event) -> Vec<i64> {
    let deadline = first.timestamp_ms.saturating_add(spec.window_ms());
    let mut times = vec![first.timestamp_ms];
    for step in spec.steps.iter().skip(1) {
        let prev = times.last().copied().unwrap_or(first.timestamp_ms);
        let next = evs
            .iter()
            .filter(|e| {
                e.event == step.event && prev <= e.timestamp_ms && e.timestamp_ms <= deadline
            })
            .map(|e| e.timestamp_ms)
            .min();
        match next {
            Some(t) => times.push(t),
            None => break,
        }
    }
    times
}

/// The user's chain (see module docs), `None` when no first-step event is in range.
fn user_chain(spec: &FunnelSpec, evs: &[&Event]) -> Option<Outcome> {
    let (start, end) = Date::range_ms(spec.from, spec.to);
    let first_step = &spec.steps.first()?.event;
    let mut best: Option<Outcome> = None;
    for first in evs
        .iter()
        .filter(|e| &e.event == first_step && start <= e.timestamp_ms && e.timestamp_ms < end)
    {
        let candidate = Outcome {
            times: chain_from(spec, evs, first),
            breakdown: spec
                .breakdown
                .as_ref()
                .and_then(|p| property_string(&parse_properties(&first.properties), p)),
        };
        best = match best {
            Some(b) if !better(&candidate, &b) => Some(b),
            _ => Some(candidate),
        };
    }
    best
}

/// Higher level, then later start, then smaller breakdown value.
fn better(a: &Outcome, b: &Outcome) -> bool {
    let key = |o: &Outcome| (o.times.len(), o.times.first().copied().unwrap_or(i64::MIN));
    match key(a).cmp(&key(b)) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => a.breakdown < b.breakdown,
    }
}

fn step_results(spec: &FunnelSpec, outcomes: &[&Outcome]) -> Vec<FunnelStepResult> {
    spec.steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let reached: Vec<&&Outcome> = outcomes.iter().filter(|o| o.times.len() > i).collect();
            let median = if i == 0 {
                None
            } else {
                let gaps = sorted(
                    reached
                        .iter()
                        .filter_map(|o| Some((o.times.get(i)? - o.times.get(i - 1)?) as f64))
                        .collect(),
                );
                quantile_exact(&gaps, 0.5).map(|ms| ms / 1000.0)
            };
            FunnelStepResult {
                event: step.event.clone(),
                count: reached.len() as u64,
                median_seconds_from_previous: median,
            }
        })
        .collect()
}
