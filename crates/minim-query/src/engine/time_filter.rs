//! A physical optimizer rule: a filter over a scan of segments drops each comparison of
//! `timestamp` with a constant that every event of every scanned segment satisfies.
//!
//! Queries ask for whole days and segments hold one day each, so the range filter every
//! query carries (`start <= timestamp < end`) prunes whole segments at planning, and is
//! then true for every row of the segments that are read: evaluating it costs two
//! comparisons per event and a mask to combine (3–7% of a daily trend). The segments'
//! event time bounds are in the store's manifest ([`SegmentTimes`], from the session's
//! snapshot); a comparison is dropped only when the bounds of *all* files of the scan
//! satisfy it, and a scan of anything else (the memtable) keeps its filter whole. So the
//! rows that pass are the same.
//!
//! The dual: a segment file for which one such comparison is false at every time in its
//! bounds cannot have a row that passes, so it is taken out of the scan before it is
//! opened (a short-range question over a long history would otherwise open every
//! segment's metadata and prune its row groups one file at a time).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::common::ScalarValue;
use datafusion::common::config::ConfigOptions;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal, lit};
use datafusion::physical_expr::{PhysicalExpr, conjunction, split_conjunction};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::repartition::RepartitionExec;
use minim_store::segment::COL_TIMESTAMP;

/// The rule's name, as DataFusion lists it.
pub const TIME_FILTER_RULE: &str = "minim_segment_time_filter";

/// Earliest and latest event time (ms) of each segment file of a session, by its object
/// store path.
#[derive(Debug, Default, Clone)]
pub(crate) struct SegmentTimes(pub HashMap<String, (i64, i64)>);

#[derive(Debug)]
pub(crate) struct TimeFilterRule {
    pub times: Arc<SegmentTimes>,
}

impl PhysicalOptimizerRule for TimeFilterRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        super::rewrite_plan(plan, |node| self.rewrite(node))
    }

    fn name(&self) -> &str {
        TIME_FILTER_RULE
    }

    fn schema_check(&self) -> bool {
        true
    }
}

impl TimeFilterRule {
    fn rewrite(&self, node: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(filter) = node.downcast_ref::<FilterExec>() else {
            return Ok(None);
        };
        let schema = filter.input().schema();
        let conjuncts = split_conjunction(filter.predicate());
        let comparisons: Vec<(Operator, i64)> = conjuncts
            .iter()
            .filter_map(|c| time_comparison(c, &schema))
            .collect();
        let pruned = self.without_files_out_of_range(filter.input(), &comparisons)?;
        let input = pruned.clone().unwrap_or_else(|| Arc::clone(filter.input()));
        let kept: Vec<Arc<dyn PhysicalExpr>> = match self.scan_bounds(&input) {
            Some(bounds) => conjuncts
                .iter()
                .filter(|c| !time_comparison(c, &schema).is_some_and(|t| holds(t, bounds)))
                .map(|c| Arc::clone(c))
                .collect(),
            None => conjuncts.iter().map(|c| Arc::clone(c)).collect(),
        };
        if pruned.is_none() && kept.len() == conjuncts.len() {
            return Ok(None);
        }
        let predicate = if kept.is_empty() {
            lit(true)
        } else {
            conjunction(kept)
        };
        let rebuilt = FilterExecBuilder::from(filter)
            .with_input(input)
            .with_predicate(predicate)
            .build()?;
        Ok(Some(Arc::new(rebuilt)))
    }

    /// `input` (a Parquet scan under any repartitions) without the segment files for
    /// which one of `comparisons` is false at every time in their bounds: no row of such
    /// a file can pass the filter, so it is not opened at all. `None` when no file goes.
    /// The scan keeps its partitions (a group may become empty).
    fn without_files_out_of_range(
        &self,
        input: &Arc<dyn ExecutionPlan>,
        comparisons: &[(Operator, i64)],
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        if comparisons.is_empty() {
            return Ok(None);
        }
        if let Some(r) = input.downcast_ref::<RepartitionExec>() {
            return match self.without_files_out_of_range(r.input(), comparisons)? {
                Some(scan) => Ok(Some(Arc::clone(input).replace_children(
                    vec![scan],
                    ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
                )?)),
                None => Ok(None),
            };
        }
        let Some(exec) = input.downcast_ref::<DataSourceExec>() else {
            return Ok(None);
        };
        let Some((conf, _)) = exec.downcast_to_file_source::<ParquetSource>() else {
            return Ok(None);
        };
        let out_of_range = |file: &PartitionedFile| {
            self.times
                .0
                .get(&file.object_meta.location.to_string())
                .is_some_and(|&bounds| comparisons.iter().any(|&t| fails(t, bounds)))
        };
        if !conf
            .file_groups
            .iter()
            .flat_map(|g| g.files())
            .any(out_of_range)
        {
            return Ok(None);
        }
        let groups: Vec<FileGroup> = conf
            .file_groups
            .iter()
            .map(|g| {
                FileGroup::new(
                    g.files()
                        .iter()
                        .filter(|f| !out_of_range(f))
                        .cloned()
                        .collect(),
                )
            })
            .collect();
        let config = FileScanConfigBuilder::from(conf.clone())
            .with_file_groups(groups)
            .build();
        Ok(Some(DataSourceExec::from_data_source(config)))
    }

    /// The event time bounds over all files of a Parquet scan (under any repartition), if
    /// it has files and every one is a segment of the session's snapshot.
    fn scan_bounds(&self, input: &Arc<dyn ExecutionPlan>) -> Option<(i64, i64)> {
        // A repartition only moves the scan's rows between partitions.
        let mut input = input;
        while let Some(r) = input.downcast_ref::<RepartitionExec>() {
            input = r.input();
        }
        let exec = input.downcast_ref::<DataSourceExec>()?;
        let (conf, _) = exec.downcast_to_file_source::<ParquetSource>()?;
        let mut bounds: Option<(i64, i64)> = None;
        for file in conf.file_groups.iter().flat_map(|g| g.files()) {
            let &(lo, hi) = self.times.0.get(&file.object_meta.location.to_string())?;
            bounds = Some(match bounds {
                None => (lo, hi),
                Some((l, h)) => (l.min(lo), h.max(hi)),
            });
        }
        bounds
    }
}

/// `expr` as `timestamp <op> v` if it is a comparison of the scan's `timestamp` column
/// with a non-NULL millisecond constant (either way round).
fn time_comparison(
    expr: &Arc<dyn PhysicalExpr>,
    schema: &arrow::datatypes::SchemaRef,
) -> Option<(Operator, i64)> {
    let binary = expr.downcast_ref::<BinaryExpr>()?;
    let is_time = |e: &Arc<dyn PhysicalExpr>| {
        e.downcast_ref::<Column>().is_some_and(|c| {
            c.name() == COL_TIMESTAMP
                && schema
                    .fields()
                    .get(c.index())
                    .is_some_and(|f| f.name() == COL_TIMESTAMP)
        })
    };
    let constant = |e: &Arc<dyn PhysicalExpr>| match e.downcast_ref::<Literal>()?.value() {
        ScalarValue::TimestampMillisecond(Some(v), _) => Some(*v),
        _ => None,
    };
    if is_time(binary.left()) {
        Some((*binary.op(), constant(binary.right())?))
    } else if is_time(binary.right()) {
        Some((binary.op().swap()?, constant(binary.left())?))
    } else {
        None
    }
}

/// Whether `timestamp <op> v` is true for every time in `[lo, hi]`.
fn holds((op, v): (Operator, i64), (lo, hi): (i64, i64)) -> bool {
    match op {
        Operator::GtEq => lo >= v,
        Operator::Gt => lo > v,
        Operator::Lt => hi < v,
        Operator::LtEq => hi <= v,
        _ => false,
    }
}

/// Whether `timestamp <op> v` is false for every time in `[lo, hi]`.
fn fails((op, v): (Operator, i64), (lo, hi): (i64, i64)) -> bool {
    match op {
        Operator::GtEq => hi < v,
        Operator::Gt => hi <= v,
        Operator::Lt => lo >= v,
        Operator::LtEq => lo > v,
        Operator::Eq => v < lo || v > hi,
        _ => false,
    }
}

/// Whether `expr` is `timestamp <op> constant` (either way round) and true for every
/// time in `[lo, hi]`.
#[cfg(test)]
fn holds_for_all(
    expr: &Arc<dyn PhysicalExpr>,
    bounds: (i64, i64),
    schema: &arrow::datatypes::SchemaRef,
) -> bool {
    time_comparison(expr, schema).is_some_and(|t| holds(t, bounds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    fn schema() -> arrow::datatypes::SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("event", DataType::Utf8, false),
            Field::new(
                COL_TIMESTAMP,
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                false,
            ),
        ]))
    }

    fn cmp(
        left: Arc<dyn PhysicalExpr>,
        op: Operator,
        right: Arc<dyn PhysicalExpr>,
    ) -> Arc<dyn PhysicalExpr> {
        Arc::new(BinaryExpr::new(left, op, right))
    }

    fn ts() -> Arc<dyn PhysicalExpr> {
        Arc::new(Column::new(COL_TIMESTAMP, 1))
    }

    fn at(v: i64) -> Arc<dyn PhysicalExpr> {
        lit(ScalarValue::TimestampMillisecond(
            Some(v),
            Some("UTC".into()),
        ))
    }

    #[test]
    fn a_comparison_is_dropped_only_when_every_time_in_the_bounds_satisfies_it() {
        let s = schema();
        let bounds = (100, 200);
        for (op, v, want) in [
            (Operator::GtEq, 100, true),
            (Operator::GtEq, 101, false),
            (Operator::Gt, 99, true),
            (Operator::Gt, 100, false),
            (Operator::Lt, 201, true),
            (Operator::Lt, 200, false),
            (Operator::LtEq, 200, true),
            (Operator::LtEq, 199, false),
            (Operator::Eq, 150, false),
            (Operator::NotEq, 50, false),
        ] {
            assert_eq!(
                holds_for_all(&cmp(ts(), op, at(v)), bounds, &s),
                want,
                "ts {op} {v}"
            );
            // The same comparison written the other way round.
            let swapped = op.swap().expect("comparison");
            assert_eq!(
                holds_for_all(&cmp(at(v), swapped, ts()), bounds, &s),
                want,
                "{v} {swapped} ts"
            );
        }
    }

    #[test]
    fn a_file_goes_only_when_no_time_in_its_bounds_satisfies_a_comparison() {
        let bounds = (100, 200);
        for (op, v, want) in [
            (Operator::GtEq, 200, false),
            (Operator::GtEq, 201, true),
            (Operator::Gt, 199, false),
            (Operator::Gt, 200, true),
            (Operator::Lt, 101, false),
            (Operator::Lt, 100, true),
            (Operator::LtEq, 100, false),
            (Operator::LtEq, 99, true),
            (Operator::Eq, 100, false),
            (Operator::Eq, 200, false),
            (Operator::Eq, 99, true),
            (Operator::Eq, 201, true),
            (Operator::NotEq, 150, false),
        ] {
            assert_eq!(fails((op, v), bounds), want, "ts {op} {v}");
            // Never both: a comparison cannot be true and false for all of a range.
            assert!(!(fails((op, v), bounds) && holds((op, v), bounds)));
        }
    }

    #[test]
    fn only_the_timestamp_column_against_a_millisecond_constant_counts() {
        let s = schema();
        let other = Arc::new(Column::new("event", 0)) as Arc<dyn PhysicalExpr>;
        assert!(!holds_for_all(
            &cmp(other, Operator::GtEq, at(0)),
            (1, 2),
            &s
        ));
        // A column named `timestamp` at the wrong index is not the scan's timestamp.
        let misplaced = Arc::new(Column::new(COL_TIMESTAMP, 0)) as Arc<dyn PhysicalExpr>;
        assert!(!holds_for_all(
            &cmp(misplaced, Operator::GtEq, at(0)),
            (1, 2),
            &s
        ));
        let number = lit(ScalarValue::Int64(Some(0)));
        assert!(!holds_for_all(
            &cmp(ts(), Operator::GtEq, number),
            (1, 2),
            &s
        ));
        let null = lit(ScalarValue::TimestampMillisecond(None, Some("UTC".into())));
        assert!(!holds_for_all(&cmp(ts(), Operator::GtEq, null), (1, 2), &s));
    }
}
