//! The memtable: acknowledged events not yet in segments, partitioned by (project, day).
//!
//! Partitions hold immutable chunks (`Arc<Vec<Event>>`), one per appended batch, so a
//! reader's snapshot is a list of `Arc`s taken under a short read lock, never a copy.

use std::collections::BTreeMap;
use std::sync::Arc;

use minim_core::{Event, ProjectId, time::day_of};

/// Identifies a partition: a project's events of one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    pub project: ProjectId,
    pub day: i32,
}

#[derive(Debug, Default)]
pub struct Memtable {
    partitions: BTreeMap<PartitionKey, Vec<Arc<Vec<Event>>>>,
    bytes: usize,
    rows: usize,
    /// Clock time of the first insert, for the flush interval.
    first_insert_ms: Option<i64>,
}

impl Memtable {
    /// Adds a project's events, splitting them by day.
    pub fn insert(&mut self, project: &ProjectId, events: Vec<Event>, now_ms: i64) {
        if events.is_empty() {
            return;
        }
        self.first_insert_ms.get_or_insert(now_ms);
        self.rows += events.len();
        self.bytes += events.iter().map(Event::approx_bytes).sum::<usize>();
        let first_day = day_of(events[0].timestamp_ms);
        if events.iter().all(|e| day_of(e.timestamp_ms) == first_day) {
            self.push(project, first_day, events);
            return;
        }
        let mut by_day: BTreeMap<i32, Vec<Event>> = BTreeMap::new();
        for e in events {
            by_day.entry(day_of(e.timestamp_ms)).or_default().push(e);
        }
        for (day, evs) in by_day {
            self.push(project, day, evs);
        }
    }

    fn push(&mut self, project: &ProjectId, day: i32, events: Vec<Event>) {
        let key = PartitionKey {
            project: project.clone(),
            day,
        };
        self.partitions
            .entry(key)
            .or_default()
            .push(Arc::new(events));
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    pub fn first_insert_ms(&self) -> Option<i64> {
        self.first_insert_ms
    }

    pub fn partitions(&self) -> impl Iterator<Item = (&PartitionKey, &[Arc<Vec<Event>>])> {
        self.partitions.iter().map(|(k, v)| (k, v.as_slice()))
    }

    /// Chunks of one project (all days), for snapshots.
    pub fn chunks_of<'a>(
        &'a self,
        project: &'a ProjectId,
    ) -> impl Iterator<Item = (i32, &'a Arc<Vec<Event>>)> + 'a {
        self.partitions
            .iter()
            .filter(move |(k, _)| &k.project == project)
            .flat_map(|(k, v)| v.iter().map(move |c| (k.day, c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_batches_by_day() {
        let p = ProjectId::new("p").unwrap();
        let mk = |ts| Event {
            timestamp_ms: ts,
            event: "e".into(),
            distinct_id: "u".into(),
            insert_id: None,
            properties: "{}".into(),
            personal: None,
            received_at_ms: 0,
        };
        let mut m = Memtable::default();
        m.insert(&p, vec![mk(0), mk(86_400_000), mk(1)], 5);
        assert_eq!(m.rows(), 3);
        let parts: Vec<_> = m
            .partitions()
            .map(|(k, c)| (k.day, c.iter().map(|c| c.len()).sum::<usize>()))
            .collect();
        assert_eq!(parts, vec![(0, 2), (1, 1)]);
        assert_eq!(m.first_insert_ms(), Some(5));
    }
}
