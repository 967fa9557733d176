//! `funnel` on DataFusion: the step events of `[from, to + window]` grouped by user into
//! the `funnel_chain` aggregate (ClickHouse `windowFunnel` plus the user's chain and
//! breakdown value), then tallied like the reference (`reference::funnel::FunnelTally`)
//! straight from the result columns.

use arrow::array::{Array, AsArray, Int64Array, ListArray, RecordBatch, StringArray};
use arrow::buffer::NullBuffer;
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
use crate::reference::funnel::FunnelTally;
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

    let chains = batches.iter().map(Chains::of).collect::<Result<Vec<_>>>()?;
    let mut tally = FunnelTally::new(spec);
    for c in &chains {
        c.add_to(&mut tally);
    }
    Ok(tally.finish())
}

/// The `funnel_chain` structs of one result batch, by column.
struct Chains {
    levels: Int64Array,
    times: ListArray,
    breakdowns: StringArray,
    /// The struct's own NULLs (none expected: the aggregate is NOT NULL).
    nulls: Option<NullBuffer>,
}

impl Chains {
    fn of(batch: &RecordBatch) -> Result<Self> {
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
        let levels = field("level")?
            .as_primitive_opt::<Int64Type>()
            .cloned()
            .ok_or_else(|| DataFusionError::Internal("funnel_chain level must be Int64".into()))?;
        let times = field("times")?
            .as_list_opt::<i32>()
            .cloned()
            .ok_or_else(|| DataFusionError::Internal("funnel_chain times must be a list".into()))?;
        if times.values().as_primitive_opt::<Int64Type>().is_none() {
            return Err(DataFusionError::Internal(
                "funnel_chain times must be Int64".into(),
            ));
        }
        let breakdowns = RecordBatch::try_from_iter([("b", field("breakdown")?)])?;
        Ok(Self {
            levels,
            times,
            breakdowns: columns::utf8(&breakdowns, 0)?,
            nulls: chains.nulls().cloned(),
        })
    }

    /// Adds each user with level >= 1 (chain times straight from the list's values).
    fn add_to<'a>(&'a self, tally: &mut FunnelTally<'_, 'a>) {
        let values = self.times.values().as_primitive::<Int64Type>().values();
        let offsets = self.times.value_offsets();
        for (i, level) in self.levels.iter().enumerate() {
            if self.nulls.as_ref().is_some_and(|n| n.is_null(i)) || level.unwrap_or(0) < 1 {
                continue;
            }
            let (Some(&from), Some(&to)) = (offsets.get(i), offsets.get(i + 1)) else {
                continue;
            };
            let times = values.get(from as usize..to as usize).unwrap_or_default();
            let breakdown = self
                .breakdowns
                .is_valid(i)
                .then(|| self.breakdowns.value(i));
            tally.add(times, breakdown);
        }
    }
}
