//! A physical optimizer rule: aggregations whose functions keep their input rows
//! ([`super::udaf::keeps_rows`]: funnels, retention periods, exact quantiles) run in one
//! stage. DataFusion plans every grouped aggregation as a partial stage per input
//! partition, a hash repartition of the partial states by group key, and a final stage.
//! A partial stage shrinks nothing for these functions: it turns each group's rows into
//! list-array states that are then repartitioned (copying nested arrays) and merged,
//! several times the work of aggregating the rows once. The rule repartitions the input
//! rows by group key instead and aggregates each partition once
//! (`AggregateMode::SinglePartitioned`); every group still lives in exactly one
//! partition, so the answers are the same.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{ExecutionPlan, Partitioning};

use super::udaf::keeps_rows;

/// The rule's name, as DataFusion lists it.
pub const ONE_STAGE_RULE: &str = "minim_one_stage_aggregation";

#[derive(Debug, Default)]
pub(crate) struct OneStageRule;

impl PhysicalOptimizerRule for OneStageRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        super::rewrite_plan(plan, one_stage)
    }

    fn name(&self) -> &str {
        ONE_STAGE_RULE
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `FinalPartitioned ← Repartition(hash) ← Partial`, all of whose functions keep rows,
/// as `SinglePartitioned ← Repartition(hash of the group keys) ← the partial's input`.
fn one_stage(node: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(last) = node.downcast_ref::<AggregateExec>() else {
        return Ok(None);
    };
    if *last.mode() != AggregateMode::FinalPartitioned {
        return Ok(None);
    }
    let Some(exchange) = last.input().downcast_ref::<RepartitionExec>() else {
        return Ok(None);
    };
    let Partitioning::Hash(_, partitions) = exchange.partitioning() else {
        return Ok(None);
    };
    let Some(first) = exchange.input().downcast_ref::<AggregateExec>() else {
        return Ok(None);
    };
    let group_by = first.group_expr();
    if *first.mode() != AggregateMode::Partial
        || !group_by.is_single()
        || group_by.expr().is_empty()
        || first.aggr_expr().is_empty()
        || !first.aggr_expr().iter().all(|a| keeps_rows(a.fun().name()))
    {
        return Ok(None);
    }
    let keys = group_by.expr().iter().map(|(e, _)| Arc::clone(e)).collect();
    let rows = RepartitionExec::try_new(
        Arc::clone(first.input()),
        Partitioning::Hash(keys, *partitions),
    )?;
    let single = AggregateExec::try_new(
        AggregateMode::SinglePartitioned,
        group_by.clone(),
        first.aggr_expr().to_vec(),
        first.filter_expr().to_vec(),
        Arc::new(rows),
        first.input_schema(),
    )?;
    Ok(Some(Arc::new(single)))
}
