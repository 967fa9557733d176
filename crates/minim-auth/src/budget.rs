//! Read budgets, the exfiltration guard: how many rows, raw events, distinct users and
//! personal values a principal may read per rolling window, what happens when a read
//! would exceed one (a *trip*), and when repeated trips suspend the principal.
//!
//! # Defaults ([`BudgetPolicy::for_role`])
//!
//! | role              | rows / day | raw_events            | distinct_users / day | personal_values / day |
//! |-------------------|-----------:|-----------------------|---------------------:|----------------------:|
//! | viewer, no role   |    100 000 | 0                     | 0                    | 0                     |
//! | analyst           |    200 000 | 5 000/h, 20 000/day   | 2 000                | 0                     |
//! | admin             |    400 000 | 10 000/h, 40 000/day  | 5 000                | 0                     |
//! | auditor           |    100 000 | 0                     | 0                    | 0                     |
//!
//! Zero limits are per day. `personal_values` is raised by the server, for principals
//! allowed `read_personal`, with [`BudgetPolicy::with_personal_allowance`] (1 000/day).
//! Every role: 3 trips within one day suspend ([`BudgetPolicy::trips_to_suspend`],
//! [`BudgetPolicy::trip_window_ms`]).
//!
//! # Rules
//!
//! - [`Budgets::charge`] charges a read if, for every limit whose meter the read uses
//!   (requested > 0), `used + requested <= max`. Otherwise it charges nothing, records
//!   a trip and returns it. A meter the policy has no limit for is refused (default
//!   deny), reported against a synthetic `max: 0` per-day limit.
//! - [`Budgets::check`] (before running a query) refuses when a limit with `max > 0` is
//!   used up (`used >= max`); it neither charges nor records a trip, so a request that
//!   reads nothing of a meter with `max: 0` passes.
//! - `trips_in_window` counts trips in the last `trip_window_ms` (exact to the ms,
//!   including the one just recorded); `suspend` is `trips_in_window >= trips_to_suspend`
//!   (never when `trips_to_suspend` is 0). The server acts on it.
//!
//! # Granularity
//!
//! Usage is kept in one-minute buckets ([`BUCKET_MS`]). With `minute(t) = floor(t / 60 000)`,
//! usage charged at `t` counts toward a limit of window `W` at `now` when
//! `minute(now) - W / 60 000 < minute(t) <= minute(now)`: a window is the current
//! minute plus the `W / 60 000 - 1` minutes before it, so a charge leaves it between
//! `W - 1 min` and `W` after it was made. Windows are whole minutes (overrides are
//! validated; other values round up).
//!
//! Time is monotonic per principal: a `now_ms` earlier than the latest seen for that
//! principal is treated as the latest (a clock stepping back never frees budget early).
//!
//! # Memory
//!
//! Per principal, buckets older than the policy's longest window are pruned on every
//! call, so at most `longest window / 1 min` buckets are kept (1 440 for a day, at most
//! 10 080 since windows are capped at [`MAX_WINDOW_MS`]); at most
//! [`MAX_TRIPS_KEPT`] trip times are kept. Principals with nothing left in any window
//! are dropped by a sweep that runs whenever the number of principals doubles.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Role;

/// One minute: the bucket size.
pub const BUCKET_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;
/// Longest limit window an override may set.
pub const MAX_WINDOW_MS: i64 = 7 * DAY_MS;
/// Longest trip window an override may set.
pub const MAX_TRIP_WINDOW_MS: i64 = 30 * DAY_MS;
/// Most limits in one policy.
pub const MAX_LIMITS: usize = 32;
/// Largest `trips_to_suspend` an override may set.
pub const MAX_TRIPS_TO_SUSPEND: u32 = 1_000;
/// Most trip times remembered per principal (beyond [`MAX_TRIPS_TO_SUSPEND`]).
pub const MAX_TRIPS_KEPT: usize = 1_024;
/// Default read allowance for principals allowed `read_personal`.
pub const DEFAULT_PERSONAL_PER_DAY: u64 = 1_000;

/// Principals tracked before the first sweep of idle ones.
const SWEEP_FLOOR: usize = 1_024;

/// What a read is measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Meter {
    /// Result rows of any query.
    Rows,
    /// Individual events returned as rows (live view, SQL over events, exports).
    RawEvents,
    /// Distinct user ids returned (cohort lists, person views).
    DistinctUsers,
    /// Values of `personal` properties or original ids revealed.
    PersonalValues,
}

impl Meter {
    pub const ALL: [Meter; 4] = [
        Meter::Rows,
        Meter::RawEvents,
        Meter::DistinctUsers,
        Meter::PersonalValues,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Meter::Rows => "rows",
            Meter::RawEvents => "raw_events",
            Meter::DistinctUsers => "distinct_users",
            Meter::PersonalValues => "personal_values",
        }
    }

    pub fn parse(s: &str) -> Option<Meter> {
        Meter::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl std::fmt::Display for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Amounts a read consumes (or has consumed), one per [`Meter`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub rows: u64,
    pub raw_events: u64,
    pub distinct_users: u64,
    pub personal_values: u64,
}

impl Usage {
    pub fn get(&self, meter: Meter) -> u64 {
        match meter {
            Meter::Rows => self.rows,
            Meter::RawEvents => self.raw_events,
            Meter::DistinctUsers => self.distinct_users,
            Meter::PersonalValues => self.personal_values,
        }
    }

    /// Adds `other` component-wise, saturating.
    pub fn add(&mut self, other: &Usage) {
        self.rows = self.rows.saturating_add(other.rows);
        self.raw_events = self.raw_events.saturating_add(other.raw_events);
        self.distinct_users = self.distinct_users.saturating_add(other.distinct_users);
        self.personal_values = self.personal_values.saturating_add(other.personal_values);
    }

    pub fn is_zero(&self) -> bool {
        *self == Usage::default()
    }
}

/// At most `max` of `meter` per rolling `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    pub meter: Meter,
    pub window_ms: i64,
    pub max: u64,
}

impl Limit {
    /// Buckets (minutes) the window spans: `ceil(window_ms / BUCKET_MS)`, at least 1.
    fn buckets(&self) -> i64 {
        let w = self.window_ms.max(1);
        w.div_euclid(BUCKET_MS) + i64::from(w.rem_euclid(BUCKET_MS) != 0)
    }
}

/// The limits that apply to one principal, and when trips suspend it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetPolicy {
    pub limits: Vec<Limit>,
    /// Trips within `trip_window_ms` that suspend the principal; 0 = never.
    pub trips_to_suspend: u32,
    pub trip_window_ms: i64,
}

fn lim(meter: Meter, window_ms: i64, max: u64) -> Limit {
    Limit {
        meter,
        window_ms,
        max,
    }
}

const OVERRIDE_KEYS: [&str; 5] = ["viewer", "analyst", "admin", "auditor", "none"];

impl BudgetPolicy {
    /// The built-in policy for a role (see the module docs); `None` (a token with an
    /// explicit permission list) gets the viewer policy.
    pub fn for_role(role: Option<Role>) -> Self {
        use Meter::*;
        let limits = match role {
            None | Some(Role::Viewer) | Some(Role::Auditor) => vec![
                lim(Rows, DAY_MS, 100_000),
                lim(RawEvents, DAY_MS, 0),
                lim(DistinctUsers, DAY_MS, 0),
                lim(PersonalValues, DAY_MS, 0),
            ],
            Some(Role::Analyst) => vec![
                lim(Rows, DAY_MS, 200_000),
                lim(RawEvents, HOUR_MS, 5_000),
                lim(RawEvents, DAY_MS, 20_000),
                lim(DistinctUsers, DAY_MS, 2_000),
                lim(PersonalValues, DAY_MS, 0),
            ],
            Some(Role::Admin) => vec![
                lim(Rows, DAY_MS, 400_000),
                lim(RawEvents, HOUR_MS, 10_000),
                lim(RawEvents, DAY_MS, 40_000),
                lim(DistinctUsers, DAY_MS, 5_000),
                lim(PersonalValues, DAY_MS, 0),
            ],
        };
        BudgetPolicy {
            limits,
            trips_to_suspend: 3,
            trip_window_ms: DAY_MS,
        }
    }

    /// Sets the per-day `personal_values` limit to at least `per_day` (adding it when
    /// missing). Limits of that meter over other windows are left as they are.
    pub fn with_personal_allowance(mut self, per_day: u64) -> Self {
        let mut found = false;
        for l in &mut self.limits {
            if l.meter == Meter::PersonalValues && l.window_ms == DAY_MS {
                l.max = l.max.max(per_day);
                found = true;
            }
        }
        if !found {
            self.limits
                .push(lim(Meter::PersonalValues, DAY_MS, per_day));
        }
        self
    }

    /// Applies an organization's overrides for `role`. `overrides` is a JSON object
    /// keyed by role name (`viewer`, `analyst`, `admin`, `auditor`, or `none` for
    /// principals without a role), each value an object with any of:
    /// - `limits`: the complete list of limits for that role (replaces the defaults;
    ///   meters left out are refused), each `{"meter", "window_ms", "max"}`, with
    ///   `window_ms` a whole number of minutes up to 7 days;
    /// - `trips_to_suspend`: 0 (never) to 1 000;
    /// - `trip_window_ms`: one minute to 30 days.
    ///
    /// `null` means no overrides. Errors name the offending field, e.g.
    /// `analyst.limits[1].window_ms: ...`.
    pub fn with_overrides(self, role: Option<Role>, overrides: &Value) -> Result<Self, String> {
        let obj = match overrides {
            Value::Null => return Ok(self),
            Value::Object(obj) => obj,
            _ => return Err("overrides: expected an object keyed by role name".to_owned()),
        };
        for key in obj.keys() {
            if !OVERRIDE_KEYS.contains(&key.as_str()) {
                return Err(format!(
                    "{key}: unknown role; expected viewer, analyst, admin, auditor or none"
                ));
            }
        }
        let key = role.map_or("none", Role::as_str);
        match obj.get(key) {
            Some(entry) => self.apply_override(key, entry),
            None => Ok(self),
        }
    }

    fn apply_override(mut self, key: &str, entry: &Value) -> Result<Self, String> {
        let Value::Object(fields) = entry else {
            return Err(format!("{key}: expected an object"));
        };
        for (name, value) in fields {
            let path = format!("{key}.{name}");
            match name.as_str() {
                "limits" => self.limits = parse_limits(&path, value)?,
                "trips_to_suspend" => {
                    self.trips_to_suspend = value
                        .as_u64()
                        .filter(|n| *n <= u64::from(MAX_TRIPS_TO_SUSPEND))
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| {
                            format!("{path}: expected an integer from 0 to {MAX_TRIPS_TO_SUSPEND}")
                        })?;
                }
                "trip_window_ms" => {
                    self.trip_window_ms = value
                        .as_i64()
                        .filter(|n| (BUCKET_MS..=MAX_TRIP_WINDOW_MS).contains(n))
                        .ok_or_else(|| {
                            format!(
                                "{path}: expected milliseconds from {BUCKET_MS} to {MAX_TRIP_WINDOW_MS}"
                            )
                        })?;
                }
                _ => {
                    return Err(format!(
                        "{path}: unknown field; expected limits, trips_to_suspend or trip_window_ms"
                    ));
                }
            }
        }
        Ok(self)
    }

    /// Checks every role entry of an overrides object (for saving organization settings).
    pub fn validate_overrides(overrides: &Value) -> Result<(), String> {
        let mut roles: Vec<Option<Role>> = Role::ALL.into_iter().map(Some).collect();
        roles.push(None);
        for role in roles {
            BudgetPolicy::for_role(role).with_overrides(role, overrides)?;
        }
        Ok(())
    }

    /// The longest limit window, in buckets.
    fn max_buckets(&self) -> i64 {
        self.limits.iter().map(Limit::buckets).max().unwrap_or(1)
    }
}

fn parse_limits(path: &str, value: &Value) -> Result<Vec<Limit>, String> {
    let Value::Array(items) = value else {
        return Err(format!("{path}: expected an array of limits"));
    };
    if items.len() > MAX_LIMITS {
        return Err(format!("{path}: at most {MAX_LIMITS} limits"));
    }
    let mut out = Vec::with_capacity(items.len());
    let mut seen = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let Value::Object(fields) = item else {
            return Err(format!(
                "{at}: expected an object with meter, window_ms and max"
            ));
        };
        for name in fields.keys() {
            if !matches!(name.as_str(), "meter" | "window_ms" | "max") {
                return Err(format!(
                    "{at}.{name}: unknown field; expected meter, window_ms or max"
                ));
            }
        }
        let meter = fields
            .get("meter")
            .ok_or_else(|| format!("{at}.meter: missing"))?
            .as_str()
            .and_then(Meter::parse)
            .ok_or_else(|| {
                format!("{at}.meter: expected rows, raw_events, distinct_users or personal_values")
            })?;
        let window_ms = fields
            .get("window_ms")
            .ok_or_else(|| format!("{at}.window_ms: missing"))?
            .as_i64()
            .filter(|w| (BUCKET_MS..=MAX_WINDOW_MS).contains(w) && w % BUCKET_MS == 0)
            .ok_or_else(|| {
                format!(
                    "{at}.window_ms: expected a whole number of minutes in ms, from {BUCKET_MS} to {MAX_WINDOW_MS}"
                )
            })?;
        let max = fields
            .get("max")
            .ok_or_else(|| format!("{at}.max: missing"))?
            .as_u64()
            .ok_or_else(|| format!("{at}.max: expected a non-negative integer"))?;
        if !seen.insert((meter, window_ms)) {
            return Err(format!(
                "{at}: duplicate limit for {meter} over {window_ms} ms"
            ));
        }
        out.push(lim(meter, window_ms, max));
    }
    Ok(out)
}

/// A refused read: the first limit it would have exceeded (or, from `check`, that is
/// used up) and the principal's trip count after the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trip {
    pub meter: Meter,
    pub limit: Limit,
    /// Used in the limit's window before this request.
    pub used: u64,
    /// What the request asked for (0 from `check`).
    pub requested: u64,
    /// Trips in the policy's trip window, including this one when it was recorded.
    pub trips_in_window: u32,
    /// `trips_in_window >= trips_to_suspend`: the server should suspend the principal.
    pub suspend: bool,
}

impl std::fmt::Display for Trip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "read budget exceeded: {} used {} of {} per {} min, requested {}",
            self.meter,
            self.used,
            self.limit.max,
            self.limit.window_ms / BUCKET_MS,
            self.requested
        )
    }
}

#[derive(Debug, Default)]
struct PrincipalState {
    /// (minute, usage charged in it), ascending by minute, one entry per minute.
    buckets: VecDeque<(i64, Usage)>,
    /// Times of recorded trips, ascending.
    trips: VecDeque<i64>,
    /// Latest time seen: calls earlier than this are treated as happening at it.
    last_ms: i64,
    /// After this, nothing in the state matters any more (for the idle sweep).
    keep_until_ms: i64,
}

impl PrincipalState {
    fn used(&self, limit: &Limit, now_minute: i64) -> u64 {
        let from = now_minute - limit.buckets();
        self.buckets
            .iter()
            .rev()
            .skip_while(|(m, _)| *m > now_minute)
            .take_while(|(m, _)| *m > from)
            .fold(0u64, |acc, (_, u)| acc.saturating_add(u.get(limit.meter)))
    }

    fn trips_in_window(&self, policy: &BudgetPolicy, now_ms: i64) -> u32 {
        let after = now_ms.saturating_sub(policy.trip_window_ms);
        let n = self.trips.iter().rev().take_while(|t| **t > after).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    fn prune(&mut self, policy: &BudgetPolicy, now_ms: i64) {
        let oldest_kept = minute(now_ms) - policy.max_buckets();
        while self.buckets.front().is_some_and(|(m, _)| *m <= oldest_kept) {
            self.buckets.pop_front();
        }
        let after = now_ms.saturating_sub(policy.trip_window_ms);
        while self.trips.front().is_some_and(|t| *t <= after) {
            self.trips.pop_front();
        }
    }

    fn effective_now(&self, now_ms: i64) -> i64 {
        now_ms.max(self.last_ms)
    }
}

fn minute(t: i64) -> i64 {
    t.div_euclid(BUCKET_MS)
}

fn suspend(policy: &BudgetPolicy, trips_in_window: u32) -> bool {
    policy.trips_to_suspend > 0 && trips_in_window >= policy.trips_to_suspend
}

#[derive(Debug, Default)]
struct Inner {
    principals: HashMap<String, PrincipalState>,
    sweep_at: usize,
}

/// Read budgets of every principal, in memory; share it behind an `Arc`.
#[derive(Debug, Default)]
pub struct Budgets {
    inner: Mutex<Inner>,
}

impl Budgets {
    pub fn new() -> Self {
        Self::default()
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // Counters stay consistent across a panic elsewhere; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuses, without charging or recording a trip, when a limit with `max > 0` is
    /// already used up (`used >= max`). Run it before a query.
    pub fn check(&self, principal: &str, policy: &BudgetPolicy, now_ms: i64) -> Result<(), Trip> {
        let inner = self.inner();
        let Some(state) = inner.principals.get(principal) else {
            return Ok(());
        };
        let now = state.effective_now(now_ms);
        let now_minute = minute(now);
        for limit in &policy.limits {
            if limit.max == 0 {
                continue;
            }
            let used = state.used(limit, now_minute);
            if used >= limit.max {
                let trips_in_window = state.trips_in_window(policy, now);
                return Err(Trip {
                    meter: limit.meter,
                    limit: *limit,
                    used,
                    requested: 0,
                    trips_in_window,
                    suspend: suspend(policy, trips_in_window),
                });
            }
        }
        Ok(())
    }

    /// Charges `usage` when it fits every limit; otherwise charges nothing, records a
    /// trip and returns it.
    pub fn charge(
        &self,
        principal: &str,
        policy: &BudgetPolicy,
        usage: Usage,
        now_ms: i64,
    ) -> Result<(), Trip> {
        let mut inner = self.inner();
        if usage.is_zero() {
            return Ok(());
        }
        let state = inner.principals.entry(principal.to_owned()).or_default();
        let now = state.effective_now(now_ms);
        state.last_ms = now;
        state.prune(policy, now);
        let now_minute = minute(now);

        let mut exceeded = None;
        for limit in &policy.limits {
            let requested = usage.get(limit.meter);
            if requested == 0 {
                continue;
            }
            let used = state.used(limit, now_minute);
            if used.saturating_add(requested) > limit.max {
                exceeded = Some((*limit, used, requested));
                break;
            }
        }
        if exceeded.is_none() {
            // Default deny: a meter the policy does not mention may not be read.
            exceeded = Meter::ALL
                .into_iter()
                .filter(|m| usage.get(*m) > 0)
                .find(|m| !policy.limits.iter().any(|l| l.meter == *m))
                .map(|m| (lim(m, DAY_MS, 0), 0, usage.get(m)));
        }

        let keep_for = (policy.max_buckets() * BUCKET_MS)
            .max(policy.trip_window_ms)
            .saturating_add(BUCKET_MS);
        state.keep_until_ms = state.keep_until_ms.max(now.saturating_add(keep_for));

        let result = match exceeded {
            Some((limit, used, requested)) => {
                state.trips.push_back(now);
                while state.trips.len() > MAX_TRIPS_KEPT {
                    state.trips.pop_front();
                }
                let trips_in_window = state.trips_in_window(policy, now);
                let trip = Trip {
                    meter: limit.meter,
                    limit,
                    used,
                    requested,
                    trips_in_window,
                    suspend: suspend(policy, trips_in_window),
                };
                tracing::info!(
                    meter = trip.meter.as_str(),
                    window_ms = limit.window_ms,
                    max = limit.max,
                    used,
                    requested,
                    trips_in_window,
                    suspend = trip.suspend,
                    "read budget tripped"
                );
                Err(trip)
            }
            None => {
                match state.buckets.back_mut() {
                    Some((m, u)) if *m == now_minute => u.add(&usage),
                    _ => state.buckets.push_back((now_minute, usage)),
                }
                Ok(())
            }
        };
        debug_assert!(
            state
                .buckets
                .iter()
                .zip(state.buckets.iter().skip(1))
                .all(|(a, b)| a.0 < b.0)
        );

        if inner.principals.len() >= inner.sweep_at.max(SWEEP_FLOOR) {
            inner.principals.retain(|_, s| s.keep_until_ms > now);
            inner.sweep_at = inner.principals.len().saturating_mul(2);
        }
        result
    }

    /// What `principal` has used of each of the policy's limits, in policy order.
    pub fn usage(&self, principal: &str, policy: &BudgetPolicy, now_ms: i64) -> Vec<(Limit, u64)> {
        let inner = self.inner();
        let state = inner.principals.get(principal);
        policy
            .limits
            .iter()
            .map(|l| {
                let used = state.map_or(0, |s| {
                    let now = s.effective_now(now_ms);
                    s.used(l, minute(now))
                });
                (*l, used)
            })
            .collect()
    }

    /// Forgets a principal's usage and trips (an admin restoring it).
    pub fn reset(&self, principal: &str) {
        self.inner().principals.remove(principal);
    }

    /// Principals with state (for metrics and tests).
    pub fn tracked(&self) -> usize {
        self.inner().principals.len()
    }

    /// Buckets held for one principal (for tests of the memory bound).
    pub fn buckets_held(&self, principal: &str) -> usize {
        self.inner()
            .principals
            .get(principal)
            .map_or(0, |s| s.buckets.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(n: u64) -> Usage {
        Usage {
            rows: n,
            ..Usage::default()
        }
    }

    fn raw(n: u64) -> Usage {
        Usage {
            raw_events: n,
            ..Usage::default()
        }
    }

    #[test]
    fn defaults_match_the_documented_table() {
        let get = |role: Option<Role>| {
            BudgetPolicy::for_role(role)
                .limits
                .iter()
                .map(|l| (l.meter.as_str(), l.window_ms, l.max))
                .collect::<Vec<_>>()
        };
        let zero_rest = [
            ("raw_events", DAY_MS, 0),
            ("distinct_users", DAY_MS, 0),
            ("personal_values", DAY_MS, 0),
        ];
        let mut viewer = vec![("rows", DAY_MS, 100_000)];
        viewer.extend(zero_rest);
        assert_eq!(get(None), viewer);
        assert_eq!(get(Some(Role::Viewer)), viewer);
        assert_eq!(get(Some(Role::Auditor)), viewer);
        assert_eq!(
            get(Some(Role::Analyst)),
            [
                ("rows", DAY_MS, 200_000),
                ("raw_events", HOUR_MS, 5_000),
                ("raw_events", DAY_MS, 20_000),
                ("distinct_users", DAY_MS, 2_000),
                ("personal_values", DAY_MS, 0),
            ]
        );
        assert_eq!(
            get(Some(Role::Admin)),
            [
                ("rows", DAY_MS, 400_000),
                ("raw_events", HOUR_MS, 10_000),
                ("raw_events", DAY_MS, 40_000),
                ("distinct_users", DAY_MS, 5_000),
                ("personal_values", DAY_MS, 0),
            ]
        );
        for role in Role::ALL {
            let p = BudgetPolicy::for_role(Some(role));
            assert_eq!(p.trips_to_suspend, 3);
            assert_eq!(p.trip_window_ms, DAY_MS);
        }
    }

    #[test]
    fn meter_names() {
        for m in Meter::ALL {
            assert_eq!(Meter::parse(m.as_str()), Some(m));
            assert_eq!(serde_json::to_value(m).unwrap(), json!(m.as_str()));
        }
    }

    #[test]
    fn zero_limit_passes_check_but_trips_on_charge() {
        let b = Budgets::new();
        let p = BudgetPolicy::for_role(Some(Role::Viewer));
        assert_eq!(b.check("u", &p, 0), Ok(()));
        assert_eq!(b.charge("u", &p, rows(10), 0), Ok(()));
        let trip = b.charge("u", &p, raw(1), 0).unwrap_err();
        assert_eq!(trip.meter, Meter::RawEvents);
        assert_eq!(trip.limit.max, 0);
        assert_eq!(trip.requested, 1);
        assert_eq!(trip.trips_in_window, 1);
        assert!(!trip.suspend);
        // Nothing charged by the refused request; check still passes.
        assert_eq!(b.check("u", &p, 0), Ok(()));
        assert_eq!(b.usage("u", &p, 0)[0].1, 10);
    }

    #[test]
    fn unlisted_meter_is_refused() {
        let b = Budgets::new();
        let p = BudgetPolicy {
            limits: vec![lim(Meter::Rows, DAY_MS, 10)],
            trips_to_suspend: 3,
            trip_window_ms: DAY_MS,
        };
        let trip = b
            .charge(
                "u",
                &p,
                Usage {
                    distinct_users: 1,
                    ..Usage::default()
                },
                0,
            )
            .unwrap_err();
        assert_eq!(trip.meter, Meter::DistinctUsers);
        assert_eq!(trip.limit, lim(Meter::DistinctUsers, DAY_MS, 0));
    }

    #[test]
    fn charge_up_to_the_limit_then_check_refuses() {
        let b = Budgets::new();
        let p = BudgetPolicy::for_role(Some(Role::Analyst));
        assert_eq!(b.charge("u", &p, raw(4_000), 0), Ok(()));
        assert_eq!(b.charge("u", &p, raw(1_000), 1_000), Ok(()));
        let trip = b.check("u", &p, 2_000).unwrap_err();
        assert_eq!(trip.limit, lim(Meter::RawEvents, HOUR_MS, 5_000));
        assert_eq!(
            (trip.used, trip.requested, trip.trips_in_window),
            (5_000, 0, 0)
        );
        // An hour later the hourly window has rolled; the daily one still counts.
        assert_eq!(b.check("u", &p, HOUR_MS), Ok(()));
        let used = b.usage("u", &p, HOUR_MS);
        assert_eq!(used[1], (lim(Meter::RawEvents, HOUR_MS, 5_000), 0));
        assert_eq!(used[2], (lim(Meter::RawEvents, DAY_MS, 20_000), 5_000));
    }

    #[test]
    fn minute_granularity_at_the_window_edge() {
        let b = Budgets::new();
        let p = BudgetPolicy {
            limits: vec![lim(Meter::Rows, 2 * BUCKET_MS, 100)],
            trips_to_suspend: 0,
            trip_window_ms: DAY_MS,
        };
        // Charged at 0:59 (minute 0): counts during minutes 0 and 1, gone at 2:00.
        b.charge("u", &p, rows(100), 59_000).unwrap();
        assert!(b.check("u", &p, 119_999).is_err());
        assert_eq!(b.check("u", &p, 120_000), Ok(()));
    }

    #[test]
    fn three_trips_suspend_and_reset_forgets() {
        let b = Budgets::new();
        let p = BudgetPolicy::for_role(None);
        let t1 = b.charge("u", &p, raw(1), 0).unwrap_err();
        let t2 = b.charge("u", &p, raw(1), 1_000).unwrap_err();
        let t3 = b.charge("u", &p, raw(1), 2_000).unwrap_err();
        assert_eq!(
            [t1.trips_in_window, t2.trips_in_window, t3.trips_in_window],
            [1, 2, 3]
        );
        assert_eq!([t1.suspend, t2.suspend, t3.suspend], [false, false, true]);
        // Trips a day old no longer count: only the one at 2 000 and this one.
        let t4 = b.charge("u", &p, raw(1), DAY_MS + 1_500).unwrap_err();
        assert_eq!(t4.trips_in_window, 2);
        b.reset("u");
        let t5 = b.charge("u", &p, raw(1), DAY_MS + 1_600).unwrap_err();
        assert_eq!(t5.trips_in_window, 1);
        assert_eq!(b.usage("u", &p, DAY_MS + 1_600)[0].1, 0);
    }

    #[test]
    fn zero_trips_to_suspend_never_suspends() {
        let b = Budgets::new();
        let mut p = BudgetPolicy::for_role(None);
        p.trips_to_suspend = 0;
        for i in 0..5 {
            assert!(!b.charge("u", &p, raw(1), i).unwrap_err().suspend);
        }
    }

    #[test]
    fn clock_going_back_never_frees_budget() {
        let b = Budgets::new();
        let p = BudgetPolicy {
            limits: vec![lim(Meter::Rows, HOUR_MS, 10)],
            trips_to_suspend: 3,
            trip_window_ms: DAY_MS,
        };
        b.charge("u", &p, rows(10), 10 * HOUR_MS).unwrap();
        assert!(b.check("u", &p, 0).is_err());
        assert!(b.charge("u", &p, rows(1), 5 * HOUR_MS).is_err());
        assert_eq!(b.check("u", &p, 11 * HOUR_MS), Ok(()));
    }

    #[test]
    fn buckets_are_bounded_by_the_longest_window() {
        let b = Budgets::new();
        let p = BudgetPolicy::for_role(Some(Role::Admin));
        for minute in 0..3_000i64 {
            b.charge("u", &p, rows(1), minute * BUCKET_MS).unwrap();
        }
        assert_eq!(b.buckets_held("u"), 1_440);
    }

    #[test]
    fn idle_principals_are_swept() {
        let b = Budgets::new();
        let p = BudgetPolicy::for_role(None);
        for i in 0..SWEEP_FLOOR {
            b.charge(&format!("early{i}"), &p, rows(1), 0).unwrap();
        }
        // All still live at the first sweep, so the next one waits for twice as many.
        assert_eq!(b.tracked(), SWEEP_FLOOR);
        for i in 0..SWEEP_FLOOR {
            b.charge(&format!("late{i}"), &p, rows(1), 3 * DAY_MS)
                .unwrap();
        }
        // The sweep at 2 048 dropped the early ones: their windows have all passed.
        assert_eq!(b.tracked(), SWEEP_FLOOR);
        assert_eq!(b.usage("early0", &p, 3 * DAY_MS)[0].1, 0);
        assert_eq!(b.usage("late0", &p, 3 * DAY_MS)[0].1, 1);
    }

    #[test]
    fn personal_allowance_sets_or_raises() {
        let p = BudgetPolicy::for_role(Some(Role::Analyst)).with_personal_allowance(1_000);
        let personal: Vec<_> = p
            .limits
            .iter()
            .filter(|l| l.meter == Meter::PersonalValues)
            .collect();
        assert_eq!(personal, [&lim(Meter::PersonalValues, DAY_MS, 1_000)]);
        let mut q = p.clone();
        q.limits.retain(|l| l.meter != Meter::PersonalValues);
        let q = q.with_personal_allowance(7);
        assert!(q.limits.contains(&lim(Meter::PersonalValues, DAY_MS, 7)));
        // Raising never lowers.
        let r = p.with_personal_allowance(10);
        assert!(
            r.limits
                .contains(&lim(Meter::PersonalValues, DAY_MS, 1_000))
        );
    }

    #[test]
    fn overrides_apply_to_the_named_role_only() {
        let o = json!({
            "analyst": {
                "limits": [{"meter": "rows", "window_ms": 3_600_000, "max": 5}],
                "trips_to_suspend": 5
            },
            "none": {"trip_window_ms": 3_600_000}
        });
        let a = BudgetPolicy::for_role(Some(Role::Analyst))
            .with_overrides(Some(Role::Analyst), &o)
            .unwrap();
        assert_eq!(a.limits, [lim(Meter::Rows, HOUR_MS, 5)]);
        assert_eq!(a.trips_to_suspend, 5);
        assert_eq!(a.trip_window_ms, DAY_MS);
        let v = BudgetPolicy::for_role(Some(Role::Viewer))
            .with_overrides(Some(Role::Viewer), &o)
            .unwrap();
        assert_eq!(v, BudgetPolicy::for_role(Some(Role::Viewer)));
        let n = BudgetPolicy::for_role(None)
            .with_overrides(None, &o)
            .unwrap();
        assert_eq!(n.trip_window_ms, HOUR_MS);
        assert_eq!(
            BudgetPolicy::for_role(None).with_overrides(None, &Value::Null),
            Ok(BudgetPolicy::for_role(None))
        );
        assert_eq!(BudgetPolicy::validate_overrides(&o), Ok(()));
    }

    #[test]
    fn override_errors_name_the_field() {
        let cases = [
            (json!([1]), "overrides"),
            (json!({"owner": {}}), "owner: unknown role"),
            (json!({"analyst": 3}), "analyst: expected an object"),
            (
                json!({"analyst": {"limit": []}}),
                "analyst.limit: unknown field",
            ),
            (
                json!({"analyst": {"limits": {}}}),
                "analyst.limits: expected an array",
            ),
            (
                json!({"analyst": {"limits": [3]}}),
                "analyst.limits[0]: expected an object",
            ),
            (
                json!({"analyst": {"limits": [{"meter": "rows", "window_ms": 60_000, "max": 1}, {"meter": "bytes", "window_ms": 60_000, "max": 1}]}}),
                "analyst.limits[1].meter:",
            ),
            (
                json!({"analyst": {"limits": [{"meter": "rows", "window_ms": 90_000, "max": 1}]}}),
                "analyst.limits[0].window_ms:",
            ),
            (
                json!({"analyst": {"limits": [{"meter": "rows", "window_ms": 0, "max": 1}]}}),
                "analyst.limits[0].window_ms:",
            ),
            (
                json!({"analyst": {"limits": [{"meter": "rows", "window_ms": 60_000, "max": -1}]}}),
                "analyst.limits[0].max:",
            ),
            (
                json!({"analyst": {"limits": [{"meter": "rows", "window_ms": 60_000}]}}),
                "analyst.limits[0].max: missing",
            ),
            (
                json!({"analyst": {"limits": [{"meter": "rows", "window_ms": 60_000, "max": 1, "x": 1}]}}),
                "analyst.limits[0].x: unknown field",
            ),
            (
                json!({"analyst": {"limits": [{"meter": "rows", "window_ms": 60_000, "max": 1}, {"meter": "rows", "window_ms": 60_000, "max": 2}]}}),
                "analyst.limits[1]: duplicate",
            ),
            (
                json!({"analyst": {"trips_to_suspend": -1}}),
                "analyst.trips_to_suspend:",
            ),
            (
                json!({"analyst": {"trips_to_suspend": 1001}}),
                "analyst.trips_to_suspend:",
            ),
            (
                json!({"analyst": {"trip_window_ms": "1d"}}),
                "analyst.trip_window_ms:",
            ),
        ];
        for (o, want) in cases {
            let err = BudgetPolicy::for_role(Some(Role::Analyst))
                .with_overrides(Some(Role::Analyst), &o)
                .unwrap_err();
            assert!(err.starts_with(want), "{o}: {err}");
        }
        // Errors in another role's entry surface through validate_overrides.
        let o = json!({"admin": {"trips_to_suspend": "x"}});
        assert!(
            BudgetPolicy::for_role(Some(Role::Analyst))
                .with_overrides(Some(Role::Analyst), &o)
                .is_ok()
        );
        let err = BudgetPolicy::validate_overrides(&o).unwrap_err();
        assert!(err.starts_with("admin.trips_to_suspend:"), "{err}");
    }

    #[test]
    fn too_many_limits_refused() {
        let many: Vec<Value> = (1..=33)
            .map(|i| json!({"meter": "rows", "window_ms": i * 60_000, "max": 1}))
            .collect();
        let o = json!({"viewer": {"limits": many}});
        let err = BudgetPolicy::for_role(Some(Role::Viewer))
            .with_overrides(Some(Role::Viewer), &o)
            .unwrap_err();
        assert!(err.starts_with("viewer.limits: at most 32"), "{err}");
    }
}
