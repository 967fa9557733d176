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

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::common::ScalarValue;
use datafusion::common::config::ConfigOptions;
use datafusion::datasource::physical_plan::ParquetSource;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal, lit};
use datafusion::physical_expr::{PhysicalExpr, conjunction, split_conjunction};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
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
        let Some(bounds) = self.scan_bounds(filter.input()) else {
            return Ok(None);
        };
        let schema = filter.input().schema();
        let conjuncts = split_conjunction(filter.predicate());
        let kept: Vec<Arc<dyn PhysicalExpr>> = conjuncts
            .iter()
            .filter(|c| !holds_for_all(c, bounds, &schema))
            .map(|c| Arc::clone(c))
            .collect();
        if kept.len() == conjuncts.len() {
            return Ok(None);
        }
        let predicate = if kept.is_empty() {
            lit(true)
        } else {
            conjunction(kept)
        };
        let rebuilt = FilterExecBuilder::from(filter)
            .with_predicate(predicate)
            .build()?;
        Ok(Some(Arc::new(rebuilt)))
    }

    /// The event time bounds over all files of a Parquet scan (under any repartition), if
    /// every file is a segment of the session's snapshot.
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

/// Whether `expr` is `timestamp <op> constant` (either way round) and true for every
/// time in `[lo, hi]`.
fn holds_for_all(
    expr: &Arc<dyn PhysicalExpr>,
    (lo, hi): (i64, i64),
    schema: &arrow::datatypes::SchemaRef,
) -> bool {
    let Some(binary) = expr.downcast_ref::<BinaryExpr>() else {
        return false;
    };
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
    // As `timestamp <op> v`.
    let (op, v) = if is_time(binary.left()) {
        match constant(binary.right()) {
            Some(v) => (*binary.op(), v),
            None => return false,
        }
    } else if is_time(binary.right()) {
        match (constant(binary.left()), binary.op().swap()) {
            (Some(v), Some(op)) => (op, v),
            _ => return false,
        }
    } else {
        return false;
    };
    match op {
        Operator::GtEq => lo >= v,
        Operator::Gt => lo > v,
        Operator::Lt => hi < v,
        Operator::LtEq => hi <= v,
        _ => false,
    }
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
