//! `retention` on DataFusion: each start and return event gets its period index from
//! the first cohort period, the `retention_periods` aggregate collects per user the
//! periods with a start and with a return, and `reference::retention::RetentionCounts`
//! turns those into cohorts exactly as the reference does.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::FunctionRegistry;
use datafusion::functions::expr_fn::date_part;
use datafusion::logical_expr::{Expr, cast, col, lit, when};
use datafusion::prelude::SessionContext;
use minim_core::time::MS_PER_DAY;
use minim_store::segment::COL_TIMESTAMP;

use super::filter::{Exprs, event_is, time_range};
use super::table::EVENTS_TABLE;
use super::udaf::{RETENTION_PERIODS, bit_is_set};
use crate::reference::retention::RetentionCounts;
use crate::result::RetentionResult;
use crate::spec::{Date, Period, RetentionSpec, RetentionType};
use crate::time::{date_of, next_bucket};

pub(crate) async fn run(ctx: &SessionContext, spec: &RetentionSpec) -> Result<RetentionResult> {
    let mut counts = RetentionCounts::new(spec);
    let Some(first) = counts.first_period_ms() else {
        return Ok(counts.finish());
    };
    let interval = spec.period.interval();
    let width = counts.cohorts() + counts.periods().saturating_sub(1);
    // End of the last period any cohort looks at.
    let mut returns_end = Some(first);
    for _ in 0..width {
        returns_end = returns_end.and_then(|p| next_bucket(interval, p));
    }
    let returns_end = returns_end.unwrap_or(i64::MAX);
    let (start, end) = Date::range_ms(spec.from, spec.to);

    let is_start = event_is(&spec.start_event).and(time_range(start, end));
    let is_return = event_is(&spec.return_event).and(time_range(first, returns_end));
    let index = period_index(spec.period, first)?;
    let null = || lit(ScalarValue::Int64(None));
    let periods = ctx.udaf(RETENTION_PERIODS)?.call(vec![
        when(is_start.clone(), index.clone()).otherwise(null())?,
        when(is_return.clone(), index).otherwise(null())?,
        lit(i64::try_from(width).unwrap_or(i64::MAX)),
    ]);
    let rows = ctx
        .table(EVENTS_TABLE)
        .await?
        .filter(is_start.or(is_return))?;
    let batches = Exprs::new(ctx)?
        .per_user(rows, vec![periods.alias("p")])?
        .select(vec![col("p")])?
        .collect()
        .await?;

    let cohorts = counts.cohorts();
    for b in &batches {
        add_users(b, &mut counts, spec.retention_type, cohorts)?;
    }
    Ok(counts.finish())
}

/// The period index of `timestamp` counted from the period starting at `first_ms`
/// (only evaluated for events at or after `first_ms`).
fn period_index(period: Period, first_ms: i64) -> Result<Expr> {
    let ms = cast(col(COL_TIMESTAMP), DataType::Int64);
    Ok(match period {
        Period::Day => (ms - lit(first_ms)) / lit(MS_PER_DAY),
        Period::Week => (ms - lit(first_ms)) / lit(7 * MS_PER_DAY),
        Period::Month => {
            let first = date_of(first_ms)
                .ok_or_else(|| DataFusionError::Plan("date out of range".into()))?;
            let month_number =
                |unit: &str| cast(date_part(lit(unit), col(COL_TIMESTAMP)), DataType::Int64);
            use chrono::Datelike;
            month_number("year") * lit(12i64) + month_number("month")
                - lit(1i64)
                - lit(i64::from(first.year()) * 12 + i64::from(first.month0()))
        }
    })
}

fn add_users(
    batch: &RecordBatch,
    counts: &mut RetentionCounts,
    kind: RetentionType,
    cohorts: usize,
) -> Result<()> {
    let users = batch.column(0).as_struct_opt().ok_or_else(|| {
        DataFusionError::Internal("retention_periods must return a struct".into())
    })?;
    let bits = |name: &str| {
        users
            .column_by_name(name)
            .and_then(|c| c.as_binary_opt::<i32>().cloned())
            .ok_or_else(|| DataFusionError::Internal(format!("retention_periods has no {name}")))
    };
    let (starts, returns) = (bits("starts")?, bits("returns")?);
    for i in 0..users.len() {
        if users.is_null(i) {
            continue;
        }
        let (s, r) = (starts.value(i), returns.value(i));
        let mut cohort_ids = (0..cohorts).filter(|c| bit_is_set(s, *c));
        let chosen: Vec<usize> = match kind {
            RetentionType::FirstTime => cohort_ids.next().into_iter().collect(),
            RetentionType::Recurring => cohort_ids.collect(),
        };
        counts.add_user(chosen, |p| bit_is_set(r, p));
    }
    Ok(())
}
