//! `Budgets` against a naive reference model: every charge kept as a `(time, usage)`
//! entry and summed over the window on each question, with the documented one-minute
//! rounding, per-principal monotonic time and default deny for unlisted meters.

use minim_auth::Role;
use minim_auth::budget::{BudgetPolicy, Budgets, Limit, Meter, Trip, Usage};
use proptest::prelude::*;

const MINUTE: i64 = 60_000;
const DAY: i64 = 86_400_000;

/// The obviously-correct version of one principal's budget.
#[derive(Debug, Default, Clone)]
struct Model {
    entries: Vec<(i64, Usage)>,
    trips: Vec<i64>,
    last_ms: i64,
}

fn minute(t: i64) -> i64 {
    t.div_euclid(MINUTE)
}

/// Minutes a window spans, rounded up.
fn window_minutes(window_ms: i64) -> i64 {
    (window_ms.max(1) + MINUTE - 1) / MINUTE
}

impl Model {
    fn used(&self, limit: &Limit, now: i64) -> u64 {
        let now_m = minute(now);
        let first = now_m - window_minutes(limit.window_ms);
        self.entries
            .iter()
            .filter(|(t, _)| minute(*t) > first && minute(*t) <= now_m)
            .map(|(_, u)| u.get(limit.meter))
            .fold(0u64, u64::saturating_add)
    }

    fn trips_in_window(&self, policy: &BudgetPolicy, now: i64) -> u32 {
        self.trips
            .iter()
            .filter(|t| **t > now - policy.trip_window_ms)
            .count() as u32
    }

    fn trip(
        &self,
        policy: &BudgetPolicy,
        limit: Limit,
        used: u64,
        requested: u64,
        now: i64,
    ) -> Trip {
        let n = self.trips_in_window(policy, now);
        Trip {
            meter: limit.meter,
            limit,
            used,
            requested,
            trips_in_window: n,
            suspend: policy.trips_to_suspend > 0 && n >= policy.trips_to_suspend,
        }
    }

    fn check(&self, policy: &BudgetPolicy, now_ms: i64) -> Result<(), Trip> {
        let now = now_ms.max(self.last_ms);
        for l in &policy.limits {
            let used = self.used(l, now);
            if l.max > 0 && used >= l.max {
                return Err(self.trip(policy, *l, used, 0, now));
            }
        }
        Ok(())
    }

    fn charge(&mut self, policy: &BudgetPolicy, usage: Usage, now_ms: i64) -> Result<(), Trip> {
        if usage == Usage::default() {
            return Ok(());
        }
        let now = now_ms.max(self.last_ms);
        self.last_ms = now;
        let mut over = None;
        for l in &policy.limits {
            let req = usage.get(l.meter);
            let used = self.used(l, now);
            if req > 0 && used.saturating_add(req) > l.max {
                over = Some((*l, used, req));
                break;
            }
        }
        if over.is_none() {
            for m in Meter::ALL {
                if usage.get(m) > 0 && !policy.limits.iter().any(|l| l.meter == m) {
                    let l = Limit {
                        meter: m,
                        window_ms: DAY,
                        max: 0,
                    };
                    over = Some((l, 0, usage.get(m)));
                    break;
                }
            }
        }
        match over {
            Some((l, used, req)) => {
                self.trips.push(now);
                Err(self.trip(policy, l, used, req, now))
            }
            None => {
                self.entries.push((now, usage));
                Ok(())
            }
        }
    }

    fn usage(&self, policy: &BudgetPolicy, now_ms: i64) -> Vec<(Limit, u64)> {
        let now = now_ms.max(self.last_ms);
        policy
            .limits
            .iter()
            .map(|l| (*l, self.used(l, now)))
            .collect()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Check,
    Charge(Usage),
    Reset,
}

#[derive(Debug, Clone)]
struct Step {
    principal: usize,
    /// Added to the clock before the step; may be negative (a clock stepping back).
    delta_ms: i64,
    op: Op,
}

fn meter() -> impl Strategy<Value = Meter> {
    prop::sample::select(Meter::ALL.to_vec())
}

fn window_ms() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => prop::sample::select(vec![MINUTE, 2 * MINUTE, 5 * MINUTE, 60 * MINUTE, DAY]),
        // Not whole minutes: rounded up to whole buckets.
        1 => 1i64..(10 * MINUTE),
    ]
}

fn limit() -> impl Strategy<Value = Limit> {
    (
        meter(),
        window_ms(),
        prop_oneof![1 => Just(0u64), 4 => 1u64..60],
    )
        .prop_map(|(meter, window_ms, max)| Limit {
            meter,
            window_ms,
            max,
        })
}

fn policy() -> impl Strategy<Value = BudgetPolicy> {
    let custom = (
        prop::collection::vec(limit(), 0..5),
        0u32..5,
        prop::sample::select(vec![MINUTE, 10 * MINUTE, DAY]),
    )
        .prop_map(|(limits, trips_to_suspend, trip_window_ms)| BudgetPolicy {
            limits,
            trips_to_suspend,
            trip_window_ms,
        });
    let role = prop::sample::select(vec![
        None,
        Some(Role::Viewer),
        Some(Role::Analyst),
        Some(Role::Admin),
        Some(Role::Auditor),
    ])
    .prop_map(|r| {
        // Scale the defaults down so random charges hit them.
        let mut p = BudgetPolicy::for_role(r);
        for l in &mut p.limits {
            l.max /= 1_000;
        }
        p
    });
    prop_oneof![3 => custom, 1 => role]
}

fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![3 => Just(0u64), 3 => 1u64..12, 1 => 12u64..200]
}

fn usage() -> impl Strategy<Value = Usage> {
    (amount(), amount(), amount(), amount()).prop_map(
        |(rows, raw_events, distinct_users, personal_values)| Usage {
            rows,
            raw_events,
            distinct_users,
            personal_values,
        },
    )
}

fn delta_ms() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => 0i64..MINUTE,
        3 => 0i64..(10 * MINUTE),
        1 => 0i64..(2 * DAY),
        1 => -(10 * MINUTE)..0i64,
    ]
}

fn step() -> impl Strategy<Value = Step> {
    (
        0usize..2,
        delta_ms(),
        prop_oneof![3 => Just(Op::Check), 6 => usage().prop_map(Op::Charge), 1 => Just(Op::Reset)],
    )
        .prop_map(|(principal, delta_ms, op)| Step {
            principal,
            delta_ms,
            op,
        })
}

const PRINCIPALS: [&str; 2] = ["usr_a", "tok_b"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn budgets_match_the_reference_model(
        policy in policy(),
        start_ms in 0i64..4_000_000_000_000,
        steps in prop::collection::vec(step(), 1..120),
    ) {
        let budgets = Budgets::new();
        let mut models = [Model::default(), Model::default()];
        let mut now = start_ms;
        for (i, s) in steps.iter().enumerate() {
            now += s.delta_ms;
            let who = PRINCIPALS[s.principal];
            let model = &mut models[s.principal];
            match &s.op {
                Op::Check => {
                    prop_assert_eq!(budgets.check(who, &policy, now), model.check(&policy, now), "step {}", i);
                }
                Op::Charge(u) => {
                    prop_assert_eq!(budgets.charge(who, &policy, *u, now), model.charge(&policy, *u, now), "step {}", i);
                }
                Op::Reset => {
                    budgets.reset(who);
                    *model = Model::default();
                }
            }
            for (p, m) in PRINCIPALS.iter().zip(&models) {
                prop_assert_eq!(budgets.usage(p, &policy, now), m.usage(&policy, now), "step {} usage of {}", i, p);
            }
        }
    }

    /// `check` passing means a request that reads nothing over a used-up limit is
    /// admitted, and `check` never changes state.
    #[test]
    fn check_has_no_side_effects(
        policy in policy(),
        charges in prop::collection::vec((usage(), 0i64..MINUTE), 1..40),
    ) {
        let budgets = Budgets::new();
        let mut now = 1_700_000_000_000i64;
        for (u, d) in charges {
            now += d;
            let _ = budgets.charge("p", &policy, u, now);
            let before = budgets.usage("p", &policy, now);
            let a = budgets.check("p", &policy, now);
            let b = budgets.check("p", &policy, now);
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(before, budgets.usage("p", &policy, now));
            if let Err(t) = a {
                prop_assert_eq!(t.requested, 0);
                prop_assert!(t.limit.max > 0 && t.used >= t.limit.max);
            }
        }
    }
}

#[test]
fn trips_suspend_after_three_in_a_day() {
    let budgets = Budgets::new();
    let policy = BudgetPolicy::for_role(Some(Role::Analyst));
    let t0 = 1_700_000_000_000;
    let big = Usage {
        raw_events: 5_001,
        ..Usage::default()
    };
    let mut flags = Vec::new();
    for i in 0..4 {
        let trip = budgets
            .charge("usr_x", &policy, big, t0 + i * 3 * 3_600_000)
            .unwrap_err();
        assert_eq!(trip.limit.window_ms, 3_600_000);
        assert_eq!(trip.used, 0);
        assert_eq!(trip.requested, 5_001);
        flags.push((trip.trips_in_window, trip.suspend));
    }
    assert_eq!(flags, [(1, false), (2, false), (3, true), (4, true)]);
    // A refused check reports the state without adding a trip.
    let ok = Usage {
        raw_events: 5_000,
        ..Usage::default()
    };
    let t = t0 + 12 * 3_600_000;
    budgets.charge("usr_x", &policy, ok, t).unwrap();
    let refused = budgets.check("usr_x", &policy, t).unwrap_err();
    assert_eq!((refused.trips_in_window, refused.suspend), (4, true));
    budgets.reset("usr_x");
    assert_eq!(budgets.check("usr_x", &policy, t), Ok(()));
    let trip = budgets.charge("usr_x", &policy, big, t).unwrap_err();
    assert_eq!((trip.trips_in_window, trip.suspend), (1, false));
}

#[test]
fn overrides_round_trip_through_serde_shape() {
    // The override entry uses the same field names as the serialized policy.
    let analyst = BudgetPolicy::for_role(Some(Role::Analyst));
    let as_json = serde_json::to_value(&analyst).unwrap();
    let overrides = serde_json::json!({ "viewer": as_json });
    let viewer = BudgetPolicy::for_role(Some(Role::Viewer))
        .with_overrides(Some(Role::Viewer), &overrides)
        .unwrap();
    assert_eq!(viewer, analyst);
}
