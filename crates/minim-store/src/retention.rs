//! Retention: deleting expired events and removing expired properties by policy.
//!
//! Days are UTC days (`minim_core::time::day_of`), "today" comes from the store's clock.
//! An event of day `d` is expired under a rule of `n` days when `d < today - n`: with
//! `n = 30`, the 30 days before today and today are kept. Steps, all under
//! `Shared::compaction_pass`:
//! 1. Flush the memtable with a WAL rotation and delete the older WAL files, so that
//!    nothing expired stays in the memtable or the WAL.
//! 2. Partitions expired under every event rule are dropped whole: only their `event`
//!    column is read, for the per-name counts of the report.
//! 3. Other segments of a day some rule reaches are scanned (`event`, and `properties`
//!    when a property rule applies) and rewritten when something changes.
//! 4. One manifest swap commits it all (`rewrite.rs`). A crash before it changes
//!    nothing visible (new files are unlisted and deleted on open); running the
//!    policy again is safe.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, PoisonError};

use arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
use minim_core::ProjectId;
use minim_core::time::{day_of, day_string};

use crate::Encryption;
use crate::Shared;
use crate::error::{Result, StoreError};
use crate::manifest::SegmentFile;
use crate::props_edit::PropRemover;
use crate::rewrite::{Swap, commit, flush_everything, rewrite_segment};
use crate::segment::{
    COL_EVENT, COL_PERSONAL, COL_PROPERTIES, event_names, open_segment, parquet_err, string_col,
};

/// What to keep, and for how long. Days count back from today (UTC, store clock).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Events whose UTC day is older than this many days before today (clock of the
    /// store config) are deleted. `None` = keep forever.
    pub default_days: Option<u32>,
    /// Per event name: overrides `default_days` for events with that exact name (may be
    /// shorter or longer).
    pub events: BTreeMap<String, u32>,
    /// Per top-level property name: the property is removed from events older than N
    /// days (the event itself stays, subject to the rules above). The entry goes even
    /// when its value is `null`.
    pub properties: BTreeMap<String, u32>,
}

/// What a retention run changed. Counts only: never event or property values.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RetentionReport {
    /// Partitions (project, day) expired under every event rule, dropped whole without
    /// reading their rows.
    pub partitions_dropped: u64,
    /// Segments of other partitions replaced because rows were deleted or edited; one
    /// left without rows is unlisted instead, and counted here too.
    pub segments_rewritten: u64,
    /// Events deleted, including those of dropped partitions.
    pub events_deleted: u64,
    /// Property entries removed from events that were kept.
    pub properties_removed: u64,
    /// First and last UTC day (`YYYY-MM-DD`) of the deleted events; `None` when nothing
    /// was deleted.
    pub deleted_days: Option<(String, String)>,
    /// Deleted events per event name.
    pub events_deleted_by_name: BTreeMap<String, u64>,
}

impl RetentionPolicy {
    fn is_empty(&self) -> bool {
        self.default_days.is_none() && self.events.is_empty() && self.properties.is_empty()
    }
}

/// Whether events of `day` are older than `days` before `today`.
fn expired(today: i32, day: i32, days: u32) -> bool {
    i64::from(day) < i64::from(today) - i64::from(days)
}

/// The policy as it applies to one day.
struct DayRules<'a> {
    policy: &'a RetentionPolicy,
    today: i32,
    day: i32,
    /// Events of names without an override are expired.
    default_expired: bool,
    /// Some override is expired.
    any_override_expired: bool,
    props: PropRemover,
}

impl<'a> DayRules<'a> {
    fn new(policy: &'a RetentionPolicy, today: i32, day: i32) -> Self {
        let props = PropRemover::new(
            policy
                .properties
                .iter()
                .filter(|&(_, &n)| expired(today, day, n))
                .map(|(name, _)| name.clone()),
        );
        Self {
            policy,
            today,
            day,
            default_expired: policy.default_days.is_some_and(|n| expired(today, day, n)),
            any_override_expired: policy.events.values().any(|&n| expired(today, day, n)),
            props,
        }
    }

    /// Every event of the day is expired whatever its name.
    fn drops_everything(&self) -> bool {
        self.default_expired
            && self
                .policy
                .events
                .values()
                .all(|&n| expired(self.today, self.day, n))
    }

    /// Nothing of the day can change.
    fn is_noop(&self) -> bool {
        !self.default_expired && !self.any_override_expired && self.props.is_empty()
    }

    fn deletes(&self, name: &str) -> bool {
        match self.policy.events.get(name) {
            Some(&n) => expired(self.today, self.day, n),
            None => self.default_expired,
        }
    }

    fn columns(&self) -> Vec<&'static str> {
        if self.props.is_empty() {
            vec![COL_EVENT]
        } else {
            vec![COL_EVENT, COL_PROPERTIES]
        }
    }
}

/// Changes found in (or made to) one segment.
#[derive(Debug, Default, PartialEq, Eq)]
struct Changes {
    deleted: u64,
    properties_removed: u64,
    by_name: BTreeMap<String, u64>,
}

impl Changes {
    fn is_empty(&self) -> bool {
        self.deleted == 0 && self.properties_removed == 0
    }

    fn delete(&mut self, name: &str) {
        self.deleted += 1;
        match self.by_name.get_mut(name) {
            Some(n) => *n += 1,
            None => {
                self.by_name.insert(name.to_owned(), 1);
            }
        }
    }

    fn add_to(&self, report: &mut RetentionReport, day: i32, days: &mut Option<(i32, i32)>) {
        report.events_deleted += self.deleted;
        report.properties_removed += self.properties_removed;
        for (name, n) in &self.by_name {
            *report
                .events_deleted_by_name
                .entry(name.clone())
                .or_default() += n;
        }
        if self.deleted > 0 {
            *days = Some(days.map_or((day, day), |(lo, hi)| (lo.min(day), hi.max(day))));
        }
    }
}

pub(crate) fn apply(
    shared: &Shared,
    project: &ProjectId,
    policy: &RetentionPolicy,
) -> Result<RetentionReport> {
    let _pass = shared
        .compaction_pass
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if policy.is_empty() {
        return Ok(RetentionReport::default());
    }
    flush_everything(shared)?;
    let today = day_of(shared.cfg.clock.now_ms());
    let segments: Vec<Arc<SegmentFile>> = shared
        .manifest
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .segments
        .iter()
        .filter(|s| &s.meta.project == project)
        .cloned()
        .collect();
    let mut report = RetentionReport::default();
    let mut days: Option<(i32, i32)> = None;
    let mut dropped_partitions = BTreeSet::new();
    let mut swap = Swap::default();
    let enc = shared.cfg.encryption.as_ref();
    let planned = (|| {
        for seg in segments {
            let rules = DayRules::new(policy, today, seg.meta.day);
            if rules.drops_everything() {
                let changes = count_names(&seg.path, enc)?;
                if changes.deleted != seg.meta.rows {
                    return Err(StoreError::Corrupt {
                        path: seg.path.clone(),
                        reason: format!(
                            "{} rows read, {} listed in the manifest",
                            changes.deleted, seg.meta.rows
                        ),
                    });
                }
                changes.add_to(&mut report, seg.meta.day, &mut days);
                dropped_partitions.insert(seg.meta.day);
                swap.removed.push(seg);
                continue;
            }
            if rules.is_noop() {
                continue;
            }
            let (found, rows) = scan(&seg.path, &rules, enc)?;
            if found.is_empty() {
                continue;
            }
            if rows != seg.meta.rows {
                return Err(StoreError::Corrupt {
                    path: seg.path.clone(),
                    reason: format!("{rows} rows read, {} listed in the manifest", seg.meta.rows),
                });
            }
            if found.deleted < seg.meta.rows {
                let mut made = Changes::default();
                let copy = rewrite_segment(shared, &seg, |batch| {
                    apply_rules(&batch, &rules, &mut made, &seg.path)
                })?;
                // Check what is about to replace the original before listing it.
                if made != found || copy.meta.rows != seg.meta.rows - found.deleted {
                    copy.mark_obsolete();
                    return Err(StoreError::Corrupt {
                        path: seg.path.clone(),
                        reason: "retention rewrite differs from its scan".into(),
                    });
                }
                swap.added.push(copy);
            }
            found.add_to(&mut report, seg.meta.day, &mut days);
            report.segments_rewritten += 1;
            swap.removed.push(seg);
        }
        Ok(())
    })();
    if let Err(e) = planned {
        swap.discard();
        return Err(e);
    }
    if !swap.removed.is_empty() {
        commit(shared, swap, |_| {})?;
    }
    report.partitions_dropped = dropped_partitions.len() as u64;
    report.deleted_days = days.map(|(lo, hi)| (day_string(lo), day_string(hi)));
    ::metrics::counter!(crate::metrics::RETENTION_RUNS).increment(1);
    ::metrics::counter!(crate::metrics::EVENTS_EXPIRED).increment(report.events_deleted);
    ::metrics::counter!(crate::metrics::PROPERTIES_EXPIRED).increment(report.properties_removed);
    tracing::info!(
        project = %project,
        partitions_dropped = report.partitions_dropped,
        segments_rewritten = report.segments_rewritten,
        events_deleted = report.events_deleted,
        properties_removed = report.properties_removed,
        "retention applied"
    );
    Ok(report)
}

/// Counts a segment's rows per event name (reading only the `event` column).
fn count_names(path: &Path, enc: Option<&Encryption>) -> Result<Changes> {
    let mut changes = Changes::default();
    for batch in open_segment(path, Some(&[COL_EVENT]), 8192, enc)? {
        let batch = batch.map_err(|e| parquet_err(path, e))?;
        for name in event_names(&batch, path)?.iter() {
            changes.delete(name.unwrap_or_default());
        }
    }
    Ok(changes)
}

/// What `rules` would change in a segment, reading only the columns they need, and
/// the rows read.
fn scan(path: &Path, rules: &DayRules<'_>, enc: Option<&Encryption>) -> Result<(Changes, u64)> {
    let mut changes = Changes::default();
    let mut rows = 0u64;
    for batch in open_segment(path, Some(&rules.columns()), 8192, enc)? {
        let batch = batch.map_err(|e| parquet_err(path, e))?;
        rows += batch.num_rows() as u64;
        let names = event_names(&batch, path)?;
        let props = if rules.props.is_empty() {
            None
        } else {
            Some(string_col(&batch, COL_PROPERTIES, path)?)
        };
        for i in 0..batch.num_rows() {
            let name = names.value(i);
            if rules.deletes(name) {
                changes.delete(name);
            } else if let Some(props) = props {
                changes.properties_removed += rules.props.count(props.value(i)) as u64;
            }
        }
    }
    Ok((changes, rows))
}

/// `batch` (base columns) without its expired rows, expired properties removed from
/// the others; records what changed in `changes`.
fn apply_rules(
    batch: &RecordBatch,
    rules: &DayRules<'_>,
    changes: &mut Changes,
    path: &Path,
) -> Result<RecordBatch> {
    let names = event_names(batch, path)?;
    let props = string_col(batch, COL_PROPERTIES, path)?;
    let mut keep = Vec::with_capacity(batch.num_rows());
    let mut edited: Vec<Option<String>> = Vec::new();
    for i in 0..batch.num_rows() {
        let name = names.value(i);
        let deleted = rules.deletes(name);
        keep.push(Some(!deleted));
        if deleted {
            changes.delete(name);
            continue;
        }
        if let Some((text, n)) = rules.props.remove(props.value(i)) {
            debug_assert!(
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text).is_ok()
            );
            if edited.is_empty() {
                edited.resize(batch.num_rows(), None);
            }
            edited[i] = Some(text);
            changes.properties_removed += n as u64;
        }
    }
    let mut batch = batch.clone();
    if !edited.is_empty() {
        let column: StringArray = (0..batch.num_rows())
            .map(|i| Some(edited[i].as_deref().unwrap_or_else(|| props.value(i))))
            .collect();
        let idx = batch
            .schema()
            .index_of(COL_PROPERTIES)
            .map_err(|e| parquet_err(path, e))?;
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        columns[idx] = Arc::new(column);
        batch = RecordBatch::try_new(batch.schema(), columns).map_err(|e| parquet_err(path, e))?;
    }
    // A personal value goes with its placeholder (counted above, in `properties`).
    if let Some(idx) = batch.schema().index_of(COL_PERSONAL).ok()
        && !rules.props.is_empty()
    {
        let personal = string_col(&batch, COL_PERSONAL, path)?;
        let mut changed = false;
        let column: StringArray = personal
            .iter()
            .map(|v| match v.map(|t| rules.props.remove(t)) {
                Some(Some((text, _))) => {
                    changed = true;
                    (text != "{}").then_some(text)
                }
                _ => v.map(str::to_owned),
            })
            .collect();
        if changed {
            let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
            columns[idx] = Arc::new(column);
            batch =
                RecordBatch::try_new(batch.schema(), columns).map_err(|e| parquet_err(path, e))?;
        }
    }
    let keep = BooleanArray::from(keep);
    if keep.true_count() == batch.num_rows() {
        return Ok(batch);
    }
    arrow::compute::filter_record_batch(&batch, &keep).map_err(|e| parquet_err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoffs_count_whole_days_back_from_today() {
        // today = 100: with 30 days, day 70 is kept and day 69 expires.
        assert!(!expired(100, 70, 30));
        assert!(expired(100, 69, 30));
        assert!(expired(100, 99, 0));
        assert!(!expired(100, 100, 0));
        assert!(!expired(0, i32::MIN, u32::MAX), "no overflow");
    }

    #[test]
    fn a_partition_drops_whole_only_when_every_rule_expires_it() {
        let mut policy = RetentionPolicy {
            default_days: Some(10),
            ..RetentionPolicy::default()
        };
        policy.events.insert("long".into(), 40);
        policy.events.insert("short".into(), 2);
        let day = |d| DayRules::new(&policy, 100, d);
        assert!(day(50).drops_everything());
        assert!(!day(70).drops_everything(), "'long' events of day 70 stay");
        assert!(day(70).deletes("other") && day(70).deletes("short"));
        assert!(!day(70).deletes("long"));
        assert!(day(95).deletes("short") && !day(95).deletes("other"));
        assert!(day(99).is_noop());
        let keep_forever = RetentionPolicy {
            events: policy.events.clone(),
            ..RetentionPolicy::default()
        };
        assert!(!DayRules::new(&keep_forever, 100, 0).drops_everything());
        assert!(!DayRules::new(&keep_forever, 100, 0).deletes("other"));
    }
}
