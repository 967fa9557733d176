//! Paths reference: what users did after (or before) their first start event, as a tree.
//!
//! Semantics:
//! - Only events in `[from 00:00, to + 1 day 00:00)` are considered. A user's events are
//!   ordered by (timestamp, event name), so that ties do not depend on input order.
//! - A user takes part when they have a `start_event` in range; their path starts at
//!   the first one in that order. `next`: the names of the up to `depth` events after
//!   it; `previous`: of the up to `depth` events before it, nearest first.
//! - The root is the start event with the number of users taking part; each node counts
//!   the users whose path begins with the names from the root to it.
//! - Each node keeps its `top_n` children by count descending, then name ascending;
//!   the others are merged into one `"$other"` leaf (last) whose count is their sum.

use std::collections::BTreeMap;

use minim_core::Event;

use crate::result::{OTHER_BREAKDOWN, PathNode, PathsResult};
use crate::spec::{Date, PathDirection, PathsSpec};

#[derive(Default)]
struct Trie {
    count: u64,
    children: BTreeMap<String, Trie>,
}

pub fn paths(spec: &PathsSpec, events: &[Event]) -> PathsResult {
    let (start, end) = Date::range_ms(spec.from, spec.to);
    let mut by_user: BTreeMap<&str, Vec<&Event>> = BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| start <= e.timestamp_ms && e.timestamp_ms < end)
    {
        by_user.entry(e.distinct_id.as_str()).or_default().push(e);
    }

    let mut tree = PathTree::default();
    for evs in by_user.values_mut() {
        evs.sort_by(|a, b| (a.timestamp_ms, &a.event).cmp(&(b.timestamp_ms, &b.event)));
        let Some(i) = evs.iter().position(|e| e.event == spec.start_event) else {
            continue;
        };
        let path: Vec<&str> = match spec.direction {
            PathDirection::Next => evs
                .iter()
                .skip(i + 1)
                .take(spec.depth())
                .map(|e| e.event.as_str())
                .collect(),
            PathDirection::Previous => evs
                .iter()
                .take(i)
                .rev()
                .take(spec.depth())
                .map(|e| e.event.as_str())
                .collect(),
        };
        tree.add(path);
    }
    tree.finish(spec)
}

/// Users' paths counted into a tree, one user at a time; shared by the engines.
#[derive(Default)]
pub(crate) struct PathTree {
    root: Trie,
}

impl PathTree {
    /// Adds one taking-part user whose path (nearest event first) is `path`.
    pub(crate) fn add<'a>(&mut self, path: impl IntoIterator<Item = &'a str>) {
        self.root.count += 1;
        let mut node = &mut self.root;
        for name in path {
            node = node.children.entry(name.to_string()).or_default();
            node.count += 1;
        }
    }

    pub(crate) fn finish(self, spec: &PathsSpec) -> PathsResult {
        PathsResult {
            root: to_node(spec.start_event.clone(), self.root, spec.top_n()),
        }
    }
}

fn to_node(event: String, trie: Trie, top_n: usize) -> PathNode {
    let mut children: Vec<(String, Trie)> = trie.children.into_iter().collect();
    // By count descending, then name ascending.
    children.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(&b.0)));
    let rest = children.split_off(top_n.min(children.len()));
    let mut out: Vec<PathNode> = children
        .into_iter()
        .map(|(name, child)| to_node(name, child, top_n))
        .collect();
    if !rest.is_empty() {
        out.push(PathNode {
            event: OTHER_BREAKDOWN.to_string(),
            count: rest.iter().map(|(_, t)| t.count).sum(),
            children: Vec::new(),
        });
    }
    PathNode {
        event,
        count: trie.count,
        children: out,
    }
}
