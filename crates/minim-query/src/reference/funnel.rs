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

use std::collections::{BTreeMap, HashMap};

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
    let mut tally = FunnelTally::new(spec);
    for o in outcomes {
        tally.add(&o.times, o.breakdown.as_deref());
    }
    tally.finish()
}

/// Builds a funnel's result from its users' chains one user at a time, keeping per
/// breakdown value only counts and the gaps between steps (no copy of the chains), so
/// engines feed it straight from their result columns.
pub(crate) struct FunnelTally<'s, 'a> {
    spec: &'s FunnelSpec,
    total: StepTally,
    /// Per breakdown value (when the spec has a breakdown).
    by_value: HashMap<Option<&'a str>, StepTally>,
}

/// The users reaching each step and, for steps after the first, their gaps.
#[derive(Debug, Clone, Default)]
struct StepTally {
    /// `reached[i]`: users whose chain has more than `i` steps.
    reached: Vec<u64>,
    /// `gaps[i]` (`i >= 1`): `t(e_i) - t(e_{i-1})` of each user counted in `reached[i]`.
    gaps: Vec<Vec<i64>>,
}

impl StepTally {
    fn new(steps: usize) -> Self {
        Self {
            reached: vec![0; steps],
            gaps: vec![Vec::new(); steps],
        }
    }

    fn add(&mut self, times: &[i64]) {
        for (i, (count, gaps)) in self.reached.iter_mut().zip(&mut self.gaps).enumerate() {
            let Some(&t) = times.get(i) else { break };
            *count += 1;
            if let Some(&previous) = i.checked_sub(1).and_then(|p| times.get(p)) {
                gaps.push(t - previous);
            }
        }
    }

    fn merge(&mut self, other: Self) {
        for (count, more) in self.reached.iter_mut().zip(other.reached) {
            *count += more;
        }
        for (gaps, more) in self.gaps.iter_mut().zip(other.gaps) {
            gaps.extend(more);
        }
    }

    fn results(self, spec: &FunnelSpec) -> Vec<FunnelStepResult> {
        spec.steps
            .iter()
            .zip(self.reached.into_iter().zip(self.gaps))
            .enumerate()
            .map(|(i, (step, (count, gaps)))| {
                let median = if i == 0 {
                    None
                } else {
                    let gaps = sorted(gaps.into_iter().map(|ms| ms as f64).collect());
                    quantile_exact(&gaps, 0.5).map(|ms| ms / 1000.0)
                };
                FunnelStepResult {
                    event: step.event.clone(),
                    count,
                    median_seconds_from_previous: median,
                }
            })
            .collect()
    }
}

impl<'s, 'a> FunnelTally<'s, 'a> {
    pub(crate) fn new(spec: &'s FunnelSpec) -> Self {
        Self {
            spec,
            total: StepTally::new(spec.steps.len()),
            by_value: HashMap::new(),
        }
    }

    /// Adds one user's chain times (`times.len()` is their level; level 0 is ignored)
    /// and breakdown value.
    pub(crate) fn add(&mut self, times: &[i64], breakdown: Option<&'a str>) {
        if times.is_empty() {
            return;
        }
        self.total.add(times);
        if self.spec.breakdown.is_some() {
            let steps = self.spec.steps.len();
            self.by_value
                .entry(breakdown)
                .or_insert_with(|| StepTally::new(steps))
                .add(times);
        }
    }

    pub(crate) fn finish(self) -> FunnelResult {
        let spec = self.spec;
        let breakdowns = spec.breakdown.as_ref().map(|_| {
            let mut ranked: Vec<(Option<&str>, StepTally)> = self.by_value.into_iter().collect();
            // By users entering descending, then value ascending (`None` first).
            ranked.sort_by(|a, b| {
                let entering = |t: &StepTally| t.reached.first().copied().unwrap_or(0);
                entering(&b.1)
                    .cmp(&entering(&a.1))
                    .then_with(|| a.0.cmp(&b.0))
            });
            let rest = ranked.split_off(spec.breakdown_limit().min(ranked.len()));
            let mut out: Vec<FunnelBreakdown> = ranked
                .into_iter()
                .map(|(value, tally)| FunnelBreakdown {
                    breakdown_value: value.map(str::to_owned),
                    steps: tally.results(spec),
                })
                .collect();
            if !rest.is_empty() {
                let mut merged = StepTally::new(spec.steps.len());
                for (_, tally) in rest {
                    merged.merge(tally);
                }
                out.push(FunnelBreakdown {
                    breakdown_value: Some(OTHER_BREAKDOWN.to_string()),
                    steps: merged.results(spec),
                });
            }
            out
        });
        FunnelResult {
            steps: self.total.results(spec),
            breakdowns,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::FunnelStepSpec;

    fn spec(breakdown_limit: Option<i64>) -> FunnelSpec {
        let date = |s| Date::parse(s).expect("date");
        FunnelSpec {
            from: date("2026-01-01"),
            to: date("2026-01-02"),
            steps: ["a", "b", "c"]
                .into_iter()
                .map(|e| FunnelStepSpec { event: e.into() })
                .collect(),
            window_seconds: 60,
            breakdown: Some("plan".into()),
            breakdown_limit,
        }
    }

    fn step(event: &str, count: u64, median: Option<f64>) -> FunnelStepResult {
        FunnelStepResult {
            event: event.into(),
            count,
            median_seconds_from_previous: median,
        }
    }

    #[test]
    fn tally_counts_levels_ranks_values_and_merges_the_rest() {
        let spec = spec(Some(2));
        let users: [(&[i64], Option<&str>); 7] = [
            (&[1_000, 3_000, 4_000], Some("pro")),
            (&[5_000, 6_000], Some("pro")),
            (&[7_000], Some("pro")),
            (&[1_000, 2_000], None),
            (&[9_000], None),
            (&[], Some("free")), // level 0: not counted anywhere
            (&[2_000, 2_500], Some("team")),
        ];
        let mut tally = FunnelTally::new(&spec);
        for (times, value) in users {
            tally.add(times, value);
        }
        let result = tally.finish();
        // Gaps of step b: 2000, 1000, 1000, 500 ms -> upper median 1000; step c: 1000.
        assert_eq!(
            result.steps,
            vec![
                step("a", 6, None),
                step("b", 4, Some(1.0)),
                step("c", 1, Some(1.0))
            ]
        );
        let breakdowns = result.breakdowns.expect("breakdowns");
        let values: Vec<Option<&str>> = breakdowns
            .iter()
            .map(|b| b.breakdown_value.as_deref())
            .collect();
        // 3 users of "pro", 2 of NULL, then "team" (1 user) merged into "$other".
        assert_eq!(values, vec![Some("pro"), None, Some(OTHER_BREAKDOWN)]);
        assert_eq!(
            breakdowns.first().map(|b| b.steps.clone()),
            Some(vec![
                step("a", 3, None),
                step("b", 2, Some(2.0)),
                step("c", 1, Some(1.0))
            ])
        );
        assert_eq!(
            breakdowns.last().map(|b| b.steps.clone()),
            Some(vec![
                step("a", 1, None),
                step("b", 1, Some(0.5)),
                step("c", 0, None)
            ])
        );
        // Without a breakdown in the spec, values are ignored.
        let mut plain = spec.clone();
        plain.breakdown = None;
        let mut tally = FunnelTally::new(&plain);
        tally.add(&[1, 2], Some("pro"));
        assert_eq!(tally.finish().breakdowns, None);
    }
}
