//! Cookieless visitor ids: a keyed hash of (daily salt, project, IP, user agent). The
//! salt is random, lives only in memory, and is replaced at UTC midnight, the old one
//! zeroized; so a visitor is recognisable within one UTC day and never across days.
//!
//! A restart draws a new salt: visitors seen before and after a restart on the same
//! day count twice in that day's unique visitors (documented in the README).

use std::net::IpAddr;
use std::sync::Mutex;

use minim_core::ProjectId;
use minim_core::time::day_of;

use crate::pseudo::{Purpose, Secret};

/// The current day's salt.
pub struct SaltRing {
    current: Mutex<(i32, Secret)>,
}

impl SaltRing {
    pub fn new(now_ms: i64) -> Self {
        Self {
            current: Mutex::new((day_of(now_ms), Secret::generate())),
        }
    }

    /// Replaces the salt if the UTC day changed; the old one is zeroized on drop.
    /// Called on every use and by a periodic tick, so an idle server forgets too.
    pub fn rotate_if_due(&self, now_ms: i64) {
        let day = day_of(now_ms);
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if cur.0 != day {
            *cur = (day, Secret::generate());
        }
    }

    /// The visitor id of a request without a `distinct_id`.
    pub fn visitor_id(
        &self,
        now_ms: i64,
        project: &ProjectId,
        ip: Option<IpAddr>,
        user_agent: &str,
    ) -> String {
        self.rotate_if_due(now_ms);
        let ip_bytes: Vec<u8> = match ip {
            Some(IpAddr::V4(v4)) => v4.octets().to_vec(),
            Some(IpAddr::V6(v6)) => v6.octets().to_vec(),
            None => Vec::new(),
        };
        let cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        cur.1.keyed_hash(
            Purpose::Visitor,
            &[
                project.as_str().as_bytes(),
                &ip_bytes,
                user_agent.as_bytes(),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn same_day_same_visitor_next_day_new_id() {
        let p = ProjectId::new("p1").unwrap();
        let q = ProjectId::new("p2").unwrap();
        let ip = Some("203.0.113.9".parse().unwrap());
        let ring = SaltRing::new(10 * DAY + 5);
        let a = ring.visitor_id(10 * DAY + 5, &p, ip, "UA");
        assert_eq!(a, ring.visitor_id(11 * DAY - 1, &p, ip, "UA"));
        assert_ne!(a, ring.visitor_id(10 * DAY + 6, &q, ip, "UA"));
        assert_ne!(a, ring.visitor_id(10 * DAY + 6, &p, ip, "UA2"));
        let other_ip = Some("203.0.113.10".parse().unwrap());
        assert_ne!(a, ring.visitor_id(10 * DAY + 6, &p, other_ip, "UA"));
        assert_ne!(a, ring.visitor_id(11 * DAY, &p, ip, "UA"));
        // Two servers (or a restart) draw different salts.
        let other = SaltRing::new(10 * DAY);
        assert_ne!(a, other.visitor_id(10 * DAY + 5, &p, ip, "UA"));
    }
}
