//! `funnel` on DataFusion: the step events of `[from, to + window]` grouped by user into
//! the `funnel_chain` aggregate (ClickHouse `windowFunnel` plus the user's chain and
//! breakdown value), then summarized like the reference (`reference::funnel::summarize`).

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{Expr, col, lit};
use datafusion::prelude::SessionContext;
use minim_store::segment::{COL_EVENT, COL_TIMESTAMP};

use super::columns;
use super::filter::{Exprs, event_is, time_range, ts_lit};
use super::table::EVENTS_TABLE;
use super::udaf::FUNNEL_CHAIN;
use crate::reference::funnel::{Outcome, summarize};
use crate::result::FunnelResult;
use crate::spec::{Date, FunnelSpec};

pub(crate) async fn run(ctx: &SessionContext, spec: &FunnelSpec) -> Result<FunnelResult> {
    let exprs = Exprs::new(ctx)?;
    let (start, end) = Date::range_ms(spec.from, spec.to);
    let window = spec.window_ms();
    let mut unique: Vec<&str> = Vec::new();
    for s in &spec.steps {
        if !unique.contains(&s.event.as_str()) {
            unique.push(&s.event);
        }
    }
    let names: Vec<Expr> = unique.into_iter().map(lit).collect();
    let first = spec
        .steps
        .first()
        .ok_or_else(|| DataFusionError::Plan("a funnel needs steps".into()))?;

    let mut args = vec![
        lit(window),
        col(COL_TIMESTAMP),
        match &spec.breakdown {
            Some(p) => exprs.prop_str(p),
            None => lit(ScalarValue::Utf8(None)),
        },
        event_is(&first.event).and(col(COL_TIMESTAMP).lt(ts_lit(end))),
    ];
    args.extend(spec.steps.iter().skip(1).map(|s| event_is(&s.event)));
    let chain = ctx.udaf(FUNNEL_CHAIN)?.call(args);

    let steps = ctx.table(EVENTS_TABLE).await?.filter(
        col(COL_EVENT)
            .in_list(names, false)
            .and(time_range(start, end.saturating_add(window))),
    )?;
    let batches = exprs
        .per_user(steps, vec![chain.alias("f")])?
        .select(vec![col("f")])?
        .collect()
        .await?;

    let mut outcomes = Vec::new();
    for b in &batches {
        read_outcomes(b, &mut outcomes)?;
    }
    Ok(summarize(spec, &outcomes))
}

/// Appends the users with level >= 1 from a batch of `funnel_chain` structs.
fn read_outcomes(batch: &RecordBatch, out: &mut Vec<Outcome>) -> Result<()> {
    let chains = batch
        .column(0)
        .as_struct_opt()
        .ok_or_else(|| DataFusionError::Internal("funnel_chain must return a struct".into()))?;
    let field = |name: &str| {
        chains
            .column_by_name(name)
            .cloned()
            .ok_or_else(|| DataFusionError::Internal(format!("funnel_chain has no {name}")))
    };
    let levels = field("level")?;
    let levels = levels
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| DataFusionError::Internal("funnel_chain level must be Int64".into()))?;
    let times = field("times")?;
    let times = times
        .as_list_opt::<i32>()
        .ok_or_else(|| DataFusionError::Internal("funnel_chain times must be a list".into()))?;
    let breakdowns = RecordBatch::try_from_iter([("b", field("breakdown")?)])?;
    let breakdowns = columns::utf8(&breakdowns, 0)?;
    for i in 0..chains.len() {
        if chains.is_null(i) || levels.is_null(i) || levels.value(i) < 1 {
            continue;
        }
        let t = times.value(i);
        let t = t
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| DataFusionError::Internal("funnel_chain times must be Int64".into()))?;
        out.push(Outcome {
            times: t.values().to_vec(),
            breakdown: columns::opt_str(&breakdowns, i),
        });
    }
    Ok(())
}
