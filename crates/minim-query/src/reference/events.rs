//! Events reference: one page of the most recent matching events, with a cursor.
//!
//! Semantics:
//! - An event matches when it is in `[from 00:00, to + 1 day 00:00)` (an absent bound is
//!   open), has the spec's `event` name if one is given, and every filter matches.
//! - Order: by the tuple `(timestamp, received_at, distinct_id, event, insert_id,
//!   properties text)` descending (byte order for strings, absent `insert_id` lowest).
//! - A page holds the first `limit` matches after the cursor. The cursor
//!   `(timestamp_ms, skip)` ([`EventsCursor`]) means: events older than `timestamp_ms`,
//!   plus those at exactly `timestamp_ms` after the first `skip` of them in that order.
//!   This stays correct when many events share a millisecond and while newer events
//!   arrive. An event ingested after a page was served, with a timestamp older than
//!   the cursor's, still shows up on a later page; one at exactly the cursor's
//!   millisecond may shift that millisecond's remaining events by one (shown twice or
//!   skipped), which the live view tolerates.
//! - `next_cursor` is set when more matches remain after the page.

use minim_core::Event;

use super::filter::Filters;
use crate::props::parse_properties;
use crate::result::{EventRow, EventsResult};
use crate::spec::{EventsCursor, EventsSpec};
use crate::time::timestamp_string;

type OrderKey<'a> = (i64, i64, &'a str, &'a str, Option<&'a str>, &'a str);

fn order_key(e: &Event) -> OrderKey<'_> {
    (
        e.timestamp_ms,
        e.received_at_ms,
        &e.distinct_id,
        &e.event,
        e.insert_id.as_deref(),
        &e.properties,
    )
}

pub fn events(spec: &EventsSpec, events: &[Event]) -> EventsResult {
    let (start, end) = spec.range_ms();
    let filters = Filters::new(&spec.filters);
    let mut matching: Vec<&Event> = events
        .iter()
        .filter(|e| start <= e.timestamp_ms && e.timestamp_ms < end)
        .filter(|e| spec.event.as_ref().is_none_or(|name| &e.event == name))
        .filter(|e| filters.matches(&parse_properties(&e.properties)))
        .collect();
    matching.sort_by(|a, b| order_key(b).cmp(&order_key(a)));

    let cursor = spec.cursor.as_deref().and_then(EventsCursor::parse);
    let remaining: Vec<&Event> = match cursor {
        None => matching,
        Some(c) => {
            let skip = usize::try_from(c.skip).unwrap_or(usize::MAX);
            let at: Vec<&Event> = matching
                .iter()
                .copied()
                .filter(|e| e.timestamp_ms == c.timestamp_ms)
                .skip(skip)
                .collect();
            let older = matching
                .iter()
                .copied()
                .filter(|e| e.timestamp_ms < c.timestamp_ms);
            at.into_iter().chain(older).collect()
        }
    };

    paginate(spec, &remaining)
}

/// The page of `remaining` (the matching events after the cursor, in order; at least
/// `limit + 1` of them when that many exist) and its `next_cursor`. Shared by engines.
pub(crate) fn paginate(spec: &EventsSpec, remaining: &[&Event]) -> EventsResult {
    let cursor = spec.cursor.as_deref().and_then(EventsCursor::parse);
    let limit = spec.limit();
    let page: Vec<&Event> = remaining.iter().copied().take(limit).collect();
    let next_cursor = match page.last() {
        Some(last) if remaining.len() > page.len() => {
            let on_page = page
                .iter()
                .filter(|e| e.timestamp_ms == last.timestamp_ms)
                .count() as u64;
            let before = cursor
                .filter(|c| c.timestamp_ms == last.timestamp_ms)
                .map_or(0, |c| c.skip);
            Some(
                EventsCursor {
                    timestamp_ms: last.timestamp_ms,
                    skip: before.saturating_add(on_page),
                }
                .to_string(),
            )
        }
        _ => None,
    };
    EventsResult {
        events: page.into_iter().map(row).collect(),
        next_cursor,
    }
}

fn row(e: &Event) -> EventRow {
    EventRow {
        event: e.event.clone(),
        distinct_id: e.distinct_id.clone(),
        timestamp: timestamp_string(e.timestamp_ms),
        insert_id: e.insert_id.clone(),
        properties: serde_json::Value::Object(parse_properties(&e.properties)),
        received_at: timestamp_string(e.received_at_ms),
    }
}
