//! `retention` on DataFusion: each start and return event gets its period index from
//! the first cohort period, the `retention_periods` aggregate collects per user the
//! periods with a start and with a return, and `reference::retention::RetentionCounts`
//! turns those into cohorts exactly as the reference does.

use arrow::array::{Array, RecordBatch};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{col, lit, when};
use datafusion::prelude::SessionContext;

use super::columns;
use super::filter::{Exprs, bucket_index, event_is, time_range};
use super::table::EVENTS_TABLE;
use super::udaf::{RETENTION_PERIODS, bit_is_set};
use crate::reference::retention::RetentionCounts;
use crate::result::RetentionResult;
use crate::spec::{Date, RetentionSpec, RetentionType};
use crate::time::next_bucket;

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
    let index = bucket_index(spec.period.interval(), first)?;
    let null = || lit(ScalarValue::Int64(None));
    // With one event for both and the start range inside the return range, every start
    // row is a return row: the filter is then one conjunction (whose time bounds
    // `time_filter.rs` drops where whole segments are in range), every row it keeps is
    // a return, and a row is a start exactly when it lies in the start range — the
    // event comparisons are not repeated per row in the arguments.
    let one_event = spec.start_event == spec.return_event && first <= start && end <= returns_end;
    let (wanted, start_period, return_period) = if one_event {
        (
            is_return,
            when(time_range(start, end), index.clone()).otherwise(null())?,
            index,
        )
    } else {
        (
            is_start.clone().or(is_return.clone()),
            when(is_start, index.clone()).otherwise(null())?,
            when(is_return, index).otherwise(null())?,
        )
    };
    let periods = ctx.udaf(RETENTION_PERIODS)?.call(vec![
        start_period,
        return_period,
        lit(i64::try_from(width).unwrap_or(i64::MAX)),
    ]);
    let rows = ctx.table(EVENTS_TABLE).await?.filter(wanted)?;
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

fn add_users(
    batch: &RecordBatch,
    counts: &mut RetentionCounts,
    kind: RetentionType,
    cohorts: usize,
) -> Result<()> {
    let starts = columns::struct_binary(batch, 0, "starts")?;
    let returns = columns::struct_binary(batch, 0, "returns")?;
    for i in 0..starts.len() {
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
