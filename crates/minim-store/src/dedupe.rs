//! `insert_id` dedupe index: 128-bit keyed hashes per project, bucketed by event day.
//!
//! Guarantee: a repeated `(project, insert_id)` is stored once when its event time is
//! within `window_days` of the newest event day seen in that project. Older events are
//! checked against what is still held (best effort) but not remembered. The index is
//! rebuilt on start from the segments of the window and from the WAL, so the guarantee
//! holds across restarts. The hash key is random per process: the index holds only
//! hashes, and a rebuild recomputes them from the stored ids.
//!
//! Memory: one `u128` per remembered event plus hash-table overhead, about 20-40 bytes
//! per event (hashbrown at 7/16-7/8 load), i.e. 20-40 MB per million events in window.

use std::collections::BTreeMap;
use std::hash::Hasher;

use hashbrown::{HashMap, HashSet};
use minim_core::ProjectId;
use siphasher::sip128::{Hasher128, SipHasher13};

pub struct DedupeIndex {
    key: (u64, u64),
    window_days: i32,
    projects: HashMap<ProjectId, ProjectIndex>,
}

#[derive(Default)]
struct ProjectIndex {
    max_day: Option<i32>,
    days: BTreeMap<i32, HashSet<u128>>,
}

impl DedupeIndex {
    pub fn new(window_days: u32) -> Self {
        Self {
            key: (rand::random(), rand::random()),
            window_days: window_days as i32,
            projects: HashMap::new(),
        }
    }

    /// The keyed hash of an insert id within a project.
    pub fn hash(&self, project: &ProjectId, insert_id: &str) -> u128 {
        let mut h = SipHasher13::new_with_keys(self.key.0, self.key.1);
        h.write(project.as_str().as_bytes());
        h.write_u8(0xff);
        h.write(insert_id.as_bytes());
        h.finish128().as_u128()
    }

    pub fn contains(&self, project: &ProjectId, hash: u128) -> bool {
        self.projects
            .get(project)
            .is_some_and(|p| p.days.values().any(|s| s.contains(&hash)))
    }

    /// Notes that `project` has an event on `day` (moves the window forward).
    pub fn observe_day(&mut self, project: &ProjectId, day: i32) {
        let window = self.window_days;
        let p = self.project_mut(project);
        if p.max_day.is_none_or(|m| day > m) {
            p.max_day = Some(day);
            let oldest = day - window;
            // Drop buckets that fell out of the window.
            p.days = p.days.split_off(&oldest);
        }
    }

    /// True when events of `day` are inside the guaranteed window of `project`.
    pub fn in_window(&self, project: &ProjectId, day: i32) -> bool {
        match self.projects.get(project).and_then(|p| p.max_day) {
            Some(max) => day >= max - self.window_days,
            None => true,
        }
    }

    /// Remembers a hash (after its event is durable). Days outside the window are not kept.
    pub fn insert(&mut self, project: &ProjectId, day: i32, hash: u128) {
        self.observe_day(project, day);
        if self.in_window(project, day) {
            self.project_mut(project)
                .days
                .entry(day)
                .or_default()
                .insert(hash);
        }
    }

    /// Number of hashes held.
    pub fn len(&self) -> usize {
        self.projects
            .values()
            .flat_map(|p| p.days.values())
            .map(HashSet::len)
            .sum()
    }

    fn project_mut(&mut self, project: &ProjectId) -> &mut ProjectIndex {
        if !self.projects.contains_key(project) {
            self.projects
                .insert(project.clone(), ProjectIndex::default());
        }
        self.projects.get_mut(project).expect("inserted above")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_moves_with_newest_day() {
        let p = ProjectId::new("p").unwrap();
        let mut d = DedupeIndex::new(7);
        let h = d.hash(&p, "a");
        d.insert(&p, 100, h);
        assert!(d.contains(&p, h));
        d.observe_day(&p, 107);
        assert!(d.contains(&p, h), "day 100 is still within 7 days of 107");
        d.observe_day(&p, 108);
        assert!(!d.contains(&p, h), "day 100 left the window");
        // Too old to remember.
        d.insert(&p, 90, d.hash(&p, "old"));
        assert!(!d.contains(&p, d.hash(&p, "old")));
    }

    #[test]
    fn hashes_are_per_project() {
        let a = ProjectId::new("a").unwrap();
        let b = ProjectId::new("b").unwrap();
        let mut d = DedupeIndex::new(7);
        let h = d.hash(&a, "x");
        d.insert(&a, 1, h);
        assert!(!d.contains(&b, d.hash(&b, "x")));
        assert_ne!(d.hash(&a, "x"), d.hash(&b, "x"));
    }
}
