//! Login rate limiting and temporary lockout, in memory and thread-safe: per account
//! (sliding window of failures, lockout doubling on each repeated lockout up to a day)
//! and per client address (fixed window counter), with a cap on tracked entries so
//! spraying many accounts or addresses cannot grow memory without limit.
//!
//! Rules, with the defaults of [`LoginLimits`]:
//! - An account is locked for `lockout_ms` (15 min) when `max_failures` (5) failures
//!   fall within `window_ms` (15 min). Each further lockout doubles the duration, up to
//!   [`MAX_LOCKOUT_MS`] (24 h). The doubling is forgotten after a successful login or
//!   after a full [`MAX_LOCKOUT_MS`] without failures once the last lockout ended.
//! - An address is locked for `lockout_ms` (doubling likewise) when `max_failures_per_ip`
//!   (50) failures are counted in a window of `window_ms` that starts at its first
//!   failure. IPv6 addresses are grouped by /64 (one customer's allocation) and
//!   IPv4-mapped IPv6 addresses count as their IPv4 address.
//! - Failures reported while a lock is in force are ignored: they neither extend it
//!   nor count toward the next one (the caller is expected to `check` first).
//! - At most `max_entries` accounts and as many addresses are tracked. When full, idle
//!   entries are dropped first; if that is not enough, the least recently failed
//!   unlocked entries, then the locks ending soonest, are dropped down to 90 %.
//!
//! Account keys arrive normalized (lowercased email) and are never logged; neither
//! are addresses.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard};

/// Longest lockout after repeated doubling: one day.
pub const MAX_LOCKOUT_MS: i64 = 86_400_000;
/// Default cap on tracked accounts (and, separately, on tracked addresses).
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;
/// Largest `max_failures` honoured (bounds the per-account failure list).
const MAX_TRACKED_FAILURES: u32 = 1_000;

/// Thresholds for [`LoginLimiter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures within `window_ms` that lock an account.
    pub max_failures: u32,
    /// Window over which failures are counted.
    pub window_ms: i64,
    /// First lockout; doubles per repeated lockout up to [`MAX_LOCKOUT_MS`].
    pub lockout_ms: i64,
    /// Failures from one address within `window_ms` that lock the address.
    pub max_failures_per_ip: u32,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            max_failures: 5,
            window_ms: 15 * 60_000,
            lockout_ms: 15 * 60_000,
            max_failures_per_ip: 50,
        }
    }
}

/// A refusal: the account or address is locked until `until_ms` (Unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    pub until_ms: i64,
}

impl Locked {
    /// Milliseconds left at `now_ms` (for a `Retry-After` header), never negative.
    pub fn retry_after_ms(&self, now_ms: i64) -> i64 {
        self.until_ms.saturating_sub(now_ms).max(0)
    }
}

/// Lockout state shared by accounts and addresses.
#[derive(Debug, Default)]
struct Lock {
    /// End of the current (or last) lockout; 0 = never locked.
    until_ms: i64,
    /// Lockouts so far without a success or a quiet day in between.
    count: u32,
}

impl Lock {
    fn active(&self, now_ms: i64) -> bool {
        now_ms < self.until_ms
    }

    /// Forgets the doubling after a quiet day following the last lockout.
    fn decay(&mut self, now_ms: i64) {
        if self.count > 0 && now_ms >= self.until_ms.saturating_add(MAX_LOCKOUT_MS) {
            self.count = 0;
        }
    }

    fn start(&mut self, base_ms: i64, now_ms: i64) -> Locked {
        let shift = self.count.min(32);
        let duration = base_ms
            .max(0)
            .saturating_mul(1i64 << shift)
            .min(MAX_LOCKOUT_MS);
        self.count = self.count.saturating_add(1);
        self.until_ms = now_ms.saturating_add(duration);
        Locked {
            until_ms: self.until_ms,
        }
    }

    /// Whether nothing about this lock still matters at `now_ms`.
    fn idle(&self, now_ms: i64) -> bool {
        !self.active(now_ms)
            && (self.count == 0 || now_ms >= self.until_ms.saturating_add(MAX_LOCKOUT_MS))
    }
}

#[derive(Debug, Default)]
struct AccountEntry {
    /// Times of recent failures, oldest first; never longer than `max_failures`.
    failures: VecDeque<i64>,
    lock: Lock,
    last_ms: i64,
}

#[derive(Debug, Default)]
struct IpEntry {
    window_start_ms: i64,
    failures: u32,
    lock: Lock,
    last_ms: i64,
}

trait Entry {
    fn idle(&self, now_ms: i64, window_ms: i64) -> bool;
    fn lock(&self) -> &Lock;
    fn last_ms(&self) -> i64;
}

impl Entry for AccountEntry {
    fn idle(&self, now_ms: i64, window_ms: i64) -> bool {
        self.lock.idle(now_ms)
            && self
                .failures
                .back()
                .is_none_or(|&t| now_ms.saturating_sub(t) >= window_ms)
    }
    fn lock(&self) -> &Lock {
        &self.lock
    }
    fn last_ms(&self) -> i64 {
        self.last_ms
    }
}

impl Entry for IpEntry {
    fn idle(&self, now_ms: i64, window_ms: i64) -> bool {
        self.lock.idle(now_ms)
            && (self.failures == 0 || now_ms.saturating_sub(self.window_start_ms) >= window_ms)
    }
    fn lock(&self) -> &Lock {
        &self.lock
    }
    fn last_ms(&self) -> i64 {
        self.last_ms
    }
}

#[derive(Debug, Default)]
struct State {
    accounts: HashMap<String, AccountEntry>,
    ips: HashMap<IpAddr, IpEntry>,
}

/// In-memory login limiter; share it behind an `Arc`.
#[derive(Debug)]
pub struct LoginLimiter {
    limits: LoginLimits,
    max_entries: usize,
    state: Mutex<State>,
}

impl LoginLimiter {
    pub fn new(limits: LoginLimits) -> Self {
        Self::with_max_entries(limits, DEFAULT_MAX_ENTRIES)
    }

    /// Like [`LoginLimiter::new`] with a different cap on tracked accounts (and
    /// addresses); at least 10.
    pub fn with_max_entries(limits: LoginLimits, max_entries: usize) -> Self {
        let limits = LoginLimits {
            max_failures: limits.max_failures.clamp(1, MAX_TRACKED_FAILURES),
            max_failures_per_ip: limits.max_failures_per_ip.max(1),
            window_ms: limits.window_ms.max(1),
            lockout_ms: limits.lockout_ms.max(0),
        };
        LoginLimiter {
            limits,
            max_entries: max_entries.max(10),
            state: Mutex::new(State::default()),
        }
    }

    pub fn limits(&self) -> &LoginLimits {
        &self.limits
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain counters behind; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Err` with the time the lockout ends when the account or the address is locked
    /// (the later of the two when both are).
    pub fn check(&self, account: &str, ip: Option<IpAddr>, now_ms: i64) -> Result<(), Locked> {
        let state = self.state();
        let mut until = None::<i64>;
        if let Some(e) = state.accounts.get(account)
            && e.lock.active(now_ms)
        {
            until = Some(e.lock.until_ms);
        }
        if let Some(ip) = ip
            && let Some(e) = state.ips.get(&ip_key(ip))
            && e.lock.active(now_ms)
        {
            until = Some(until.map_or(e.lock.until_ms, |u| u.max(e.lock.until_ms)));
        }
        match until {
            Some(until_ms) => Err(Locked { until_ms }),
            None => Ok(()),
        }
    }

    /// Records a failed login; `Some` when this failure started a lockout of the
    /// account or the address (the later end when both).
    pub fn record_failure(&self, account: &str, ip: Option<IpAddr>, now_ms: i64) -> Option<Locked> {
        let limits = self.limits;
        let max_entries = self.max_entries;
        let mut state = self.state();
        let mut started = None::<Locked>;

        if !state.accounts.contains_key(account) {
            make_room(&mut state.accounts, max_entries, now_ms, limits.window_ms);
        }
        let entry = state.accounts.entry(account.to_owned()).or_default();
        entry.last_ms = entry.last_ms.max(now_ms);
        if !entry.lock.active(now_ms) {
            entry.lock.decay(now_ms);
            while entry
                .failures
                .front()
                .is_some_and(|&t| now_ms.saturating_sub(t) >= limits.window_ms)
            {
                entry.failures.pop_front();
            }
            entry.failures.push_back(now_ms);
            if entry.failures.len() >= limits.max_failures as usize {
                entry.failures.clear();
                let locked = entry.lock.start(limits.lockout_ms, now_ms);
                tracing::info!(
                    lockout_ms = locked.until_ms - now_ms,
                    lockouts = entry.lock.count,
                    "login lockout started for an account"
                );
                started = Some(locked);
            }
        }

        if let Some(ip) = ip {
            let key = ip_key(ip);
            if !state.ips.contains_key(&key) {
                make_room(&mut state.ips, max_entries, now_ms, limits.window_ms);
            }
            let entry = state.ips.entry(key).or_default();
            entry.last_ms = entry.last_ms.max(now_ms);
            if !entry.lock.active(now_ms) {
                entry.lock.decay(now_ms);
                if entry.failures == 0
                    || now_ms.saturating_sub(entry.window_start_ms) >= limits.window_ms
                {
                    entry.window_start_ms = now_ms;
                    entry.failures = 0;
                }
                entry.failures = entry.failures.saturating_add(1);
                if entry.failures >= limits.max_failures_per_ip {
                    entry.failures = 0;
                    let locked = entry.lock.start(limits.lockout_ms, now_ms);
                    tracing::warn!(
                        lockout_ms = locked.until_ms - now_ms,
                        lockouts = entry.lock.count,
                        "login lockout started for a client address"
                    );
                    started = Some(match started {
                        Some(a) if a.until_ms >= locked.until_ms => a,
                        _ => locked,
                    });
                }
            }
        }
        started
    }

    /// Records a successful login: forgets the account's failures and lockout history.
    /// The address keeps its count (one good password does not excuse a spray).
    pub fn record_success(&self, account: &str, ip: Option<IpAddr>) {
        let _ = ip;
        self.state().accounts.remove(account);
    }

    /// Tracked accounts and addresses (for metrics and tests).
    pub fn tracked(&self) -> (usize, usize) {
        let state = self.state();
        (state.accounts.len(), state.ips.len())
    }
}

/// The key an address is counted under: IPv4 as is (also when IPv4-mapped), IPv6 by
/// its /64 prefix.
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Ensures there is room for one more entry: drops idle entries, then, if still at
/// the cap, the least valuable ones down to 90 % of it (unlocked before locked,
/// least recent first, locks ending soonest first). Amortized: a full sweep happens at
/// most once per tenth of the cap of inserts.
fn make_room<K: Eq + Hash + Clone, E: Entry>(
    map: &mut HashMap<K, E>,
    max_entries: usize,
    now_ms: i64,
    window_ms: i64,
) {
    if map.len() < max_entries {
        return;
    }
    map.retain(|_, e| !e.idle(now_ms, window_ms));
    let target = max_entries - max_entries / 10;
    if map.len() < target {
        return;
    }
    let mut ranked: Vec<(bool, i64, K)> = map
        .iter()
        .map(|(k, e)| {
            let locked = e.lock().active(now_ms);
            let when = if locked {
                e.lock().until_ms
            } else {
                e.last_ms()
            };
            (locked, when, k.clone())
        })
        .collect();
    ranked.sort_unstable_by_key(|r| (r.0, r.1));
    let excess = map.len() - target;
    for (_, _, k) in ranked.into_iter().take(excess) {
        map.remove(&k);
    }
    tracing::warn!(
        dropped = excess,
        "login limiter at capacity; dropped the least recent entries"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const MIN: i64 = 60_000;

    fn ip(n: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, n)))
    }

    #[test]
    fn five_failures_lock_until_the_time_then_unlock() {
        let l = LoginLimiter::new(LoginLimits::default());
        let t0 = 1_000_000;
        for i in 0..4 {
            assert_eq!(l.record_failure("a@x", ip(1), t0 + i), None);
            assert_eq!(l.check("a@x", ip(1), t0 + i), Ok(()));
        }
        let locked = l.record_failure("a@x", ip(1), t0 + 4).unwrap();
        assert_eq!(locked.until_ms, t0 + 4 + 15 * MIN);
        assert_eq!(l.check("a@x", ip(1), t0 + 5), Err(locked));
        assert_eq!(l.check("a@x", None, locked.until_ms - 1), Err(locked));
        assert_eq!(locked.retry_after_ms(locked.until_ms - 1000), 1000);
        assert_eq!(l.check("a@x", None, locked.until_ms), Ok(()));
        // Another account from the same address is not locked.
        assert_eq!(l.check("b@x", ip(1), t0 + 5), Ok(()));
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let l = LoginLimiter::new(LoginLimits::default());
        for i in 0..20 {
            // One failure every 4 minutes: never 5 within 15 minutes.
            assert_eq!(l.record_failure("a@x", None, i * 4 * MIN), None);
        }
        assert_eq!(l.check("a@x", None, 80 * MIN), Ok(()));
    }

    #[test]
    fn failures_during_lockout_are_ignored() {
        let l = LoginLimiter::new(LoginLimits::default());
        let mut t = 0;
        for _ in 0..5 {
            l.record_failure("a@x", None, t);
            t += 1;
        }
        let until = l.check("a@x", None, t).unwrap_err().until_ms;
        for _ in 0..100 {
            assert_eq!(l.record_failure("a@x", None, t), None);
            t += 1;
        }
        assert_eq!(l.check("a@x", None, t).unwrap_err().until_ms, until);
        // And they did not count toward the next lockout.
        assert_eq!(l.record_failure("a@x", None, until), None);
    }

    #[test]
    fn lockout_doubles_up_to_a_day() {
        let l = LoginLimiter::new(LoginLimits::default());
        let mut t = 0;
        let mut durations = Vec::new();
        for _ in 0..10 {
            let mut locked = None;
            for _ in 0..5 {
                locked = l.record_failure("a@x", None, t);
                t += 1;
            }
            let locked = locked.unwrap();
            durations.push(locked.until_ms - (t - 1));
            t = locked.until_ms;
        }
        assert_eq!(
            durations,
            [15, 30, 60, 120, 240, 480, 960, 1440, 1440, 1440].map(|m| m * MIN)
        );
    }

    #[test]
    fn doubling_forgotten_after_success_or_quiet_day() {
        let l = LoginLimiter::new(LoginLimits::default());
        let lock_at = |t: i64| {
            let mut out = None;
            for i in 0..5 {
                out = l.record_failure("a@x", None, t + i);
            }
            out.unwrap().until_ms - (t + 4)
        };
        assert_eq!(lock_at(0), 15 * MIN);
        assert_eq!(lock_at(20 * MIN), 30 * MIN);
        l.record_success("a@x", None);
        assert_eq!(lock_at(60 * MIN), 15 * MIN);
        // Quiet for a day after the lockout ended: back to 15 minutes.
        let end = 60 * MIN + 4 + 15 * MIN;
        assert_eq!(lock_at(end + MAX_LOCKOUT_MS), 15 * MIN);
    }

    #[test]
    fn success_clears_account_failures_not_ip() {
        let limits = LoginLimits {
            max_failures_per_ip: 6,
            ..LoginLimits::default()
        };
        let l = LoginLimiter::new(limits);
        for i in 0..4 {
            l.record_failure("a@x", ip(1), i);
        }
        l.record_success("a@x", ip(1));
        // Account count restarted: 4 more failures do not lock it...
        for i in 4..6 {
            assert_eq!(l.record_failure("a@x", None, i), None);
        }
        // ...but the address kept its 4 and locks on its 6th.
        assert_eq!(l.record_failure("b@x", ip(1), 6), None);
        let locked = l.record_failure("c@x", ip(1), 7).unwrap();
        assert_eq!(l.check("zzz@x", ip(1), 8), Err(locked));
        assert_eq!(l.check("zzz@x", ip(2), 8), Ok(()));
        assert_eq!(l.check("zzz@x", None, 8), Ok(()));
    }

    #[test]
    fn ip_limit_locks_the_address() {
        let l = LoginLimiter::new(LoginLimits::default());
        for i in 0..49 {
            let acct = format!("user{i}@x");
            assert_eq!(l.record_failure(&acct, ip(9), i), None);
        }
        let locked = l.record_failure("user49@x", ip(9), 49).unwrap();
        assert_eq!(locked.until_ms, 49 + 15 * MIN);
        assert_eq!(l.check("new@x", ip(9), 50), Err(locked));
        assert_eq!(l.check("new@x", ip(9), locked.until_ms), Ok(()));
        // The window restarts after it ends.
        let l = LoginLimiter::new(LoginLimits::default());
        for i in 0..49 {
            l.record_failure(&format!("u{i}"), ip(9), i);
        }
        assert_eq!(l.record_failure("late", ip(9), 15 * MIN), None);
    }

    #[test]
    fn account_and_ip_locked_reports_later_end() {
        let limits = LoginLimits {
            max_failures_per_ip: 3,
            ..LoginLimits::default()
        };
        let l = LoginLimiter::new(limits);
        assert_eq!(l.record_failure("a", ip(3), 0), None);
        assert_eq!(l.record_failure("a", ip(3), 1), None);
        let ip_lock = l.record_failure("a", ip(3), 2).unwrap();
        assert_eq!(ip_lock.until_ms, 2 + 15 * MIN);
        assert_eq!(l.record_failure("a", ip(3), 3), None);
        let acct_lock = l.record_failure("a", ip(3), 4).unwrap();
        assert_eq!(acct_lock.until_ms, 4 + 15 * MIN);
        assert_eq!(l.check("a", ip(3), 5), Err(acct_lock));
        assert_eq!(l.check("b", ip(3), 5), Err(ip_lock));
        assert_eq!(l.check("a", None, 5), Err(acct_lock));
    }

    #[test]
    fn ipv6_grouped_by_64_and_mapped_v4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(c));
        let mapped: IpAddr = "::ffff:203.0.113.1".parse().unwrap();
        assert_eq!(ip_key(mapped), ip(1).unwrap());
    }

    #[test]
    fn memory_is_bounded_under_account_spray() {
        let l = LoginLimiter::with_max_entries(LoginLimits::default(), 1_000);
        for i in 0..50_000i64 {
            // Different accounts and addresses, all within one window (nothing idle).
            let addr = IpAddr::V4(Ipv4Addr::from(0x0a00_0000u32 + i as u32));
            l.record_failure(&format!("victim{i}@x"), Some(addr), 1_000 + i);
            let (accounts, ips) = l.tracked();
            assert!(accounts <= 1_000 && ips <= 1_000, "{accounts} {ips}");
        }
    }

    #[test]
    fn eviction_keeps_locked_accounts() {
        let l = LoginLimiter::with_max_entries(LoginLimits::default(), 100);
        for i in 0..5 {
            l.record_failure("victim", None, i);
        }
        let locked = l.check("victim", None, 10).unwrap_err();
        for i in 0..10_000i64 {
            l.record_failure(&format!("spray{i}"), None, 10 + i);
        }
        assert_eq!(l.check("victim", None, 10_020), Err(locked));
    }

    #[test]
    fn idle_entries_are_swept_first() {
        let l = LoginLimiter::with_max_entries(LoginLimits::default(), 10);
        for i in 0..10 {
            l.record_failure(&format!("old{i}"), None, i);
        }
        assert_eq!(l.tracked().0, 10);
        l.record_failure("new", None, 16 * MIN);
        assert_eq!(l.tracked().0, 1);
    }
}
