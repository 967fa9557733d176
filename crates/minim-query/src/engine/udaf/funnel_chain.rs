//! `funnel_chain(window_ms, ts, breakdown, c1, ..., cn) -> STRUCT<level BIGINT NOT NULL,
//! times LIST<BIGINT NOT NULL> NOT NULL, breakdown VARCHAR>` (NOT NULL): a group's funnel
//! level and the chain behind it, as `reference::funnel` (`user_chain`, `chain_from`,
//! `better`) defines them.
//!
//! - Arguments as `window_funnel`, plus `breakdown`, a nullable string read on first-step
//!   rows only.
//! - `level`: exactly `window_funnel(window_ms, ts, c1, ..., cn)`.
//! - The reported chain is the one reaching `level` whose first row (`c1`) is the latest:
//!   `t1` is the latest `ts` of a `c1` row from which `level` steps can be chained. From
//!   `t1`, step `i >= 2` is at the earliest `ts` of a row with `c_i` true, at or after
//!   step `i - 1`'s time and at most `t1 + window_ms` (a row may serve consecutive steps).
//!   `times` holds the `level` step times in milliseconds.
//! - `breakdown`: among the `c1` rows with `ts == t1`, the smallest value, NULL first,
//!   then byte order.
//! - Level 0 (no `c1` row): `{level: 0, times: [], breakdown: NULL}`.
//!
//! Storage and algorithm: [`super::funnel`]; `t1` is the latest start the ClickHouse scan
//! keeps for the last level reached, when the scan runs to the end.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Int64Array, ListArray, StringArray, StructArray};
use arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{AggregateOrderSensitivity, format_state_name};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use super::common::{
    KeepingGroupsAccumulator, SingleGroup, groups_accumulator_methods, offsets_i32, udaf_type,
};
use super::funnel::{
    FunnelArgs, FunnelRows, Grouped, Interner, chain_times, coerce_args, first_breakdown, reach,
    sort_by_time, state_type,
};

/// SQL name.
pub(crate) const FUNNEL_CHAIN: &str = "funnel_chain";

/// The result struct's fields.
fn result_fields() -> Fields {
    Fields::from(vec![
        Field::new("level", DataType::Int64, false),
        Field::new("times", times_type(), false),
        Field::new("breakdown", DataType::Utf8, true),
    ])
}

fn times_type() -> DataType {
    DataType::List(times_item())
}

fn times_item() -> FieldRef {
    Arc::new(Field::new_list_field(DataType::Int64, false))
}

udaf_type!(FunnelChain);

impl AggregateUDFImpl for FunnelChain {
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_args(FUNNEL_CHAIN, arg_types, true)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(result_fields()))
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn default_value(&self, _data_type: &DataType) -> Result<ScalarValue> {
        let empty = Grouped::empty(1);
        ScalarValue::try_from_array(&chains(FunnelArgs::NONE, empty, &Interner::default())?, 0)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format_state_name(args.name, "rows"),
            state_type(true),
            true,
        ))])
    }

    groups_accumulator_methods!(FUNNEL_CHAIN, FunnelChainGroups);
}

/// The funnel rows (with breakdowns) of every group; see [`super::funnel`].
#[derive(Debug)]
pub(super) struct FunnelChainGroups {
    rows: FunnelRows,
}

impl FunnelChainGroups {
    pub fn new(args: &AccumulatorArgs) -> Result<Self> {
        Ok(Self::with_args(FunnelArgs::from_call(
            FUNNEL_CHAIN,
            args,
            true,
        )?))
    }

    pub fn with_args(args: FunnelArgs) -> Self {
        Self {
            rows: FunnelRows::new(FUNNEL_CHAIN, args),
        }
    }
}

/// The chain struct of every group in `grouped`.
fn chains(args: FunnelArgs, mut grouped: Grouped, interner: &Interner) -> Result<ArrayRef> {
    let n = grouped.num_groups();
    let mut levels = Vec::with_capacity(n);
    let mut times = Vec::new();
    let mut lengths = Vec::with_capacity(n);
    let mut breakdowns: Vec<Option<&str>> = Vec::with_capacity(n);
    for g in 0..n {
        if let Some(short) = grouped.short(g) {
            levels.push(short.level as i64);
            lengths.push(short.level);
            if short.level == 1 {
                times.push(short.start);
                breakdowns.push(interner.get(short.breakdown));
            } else {
                breakdowns.push(None);
            }
            continue;
        }
        let entries = grouped.group_mut(g);
        sort_by_time(entries);
        let r = reach(entries, args.steps, args.window_ms, false);
        let before = times.len();
        if r.level > 0 {
            chain_times(entries, args.steps, args.window_ms, r.start, &mut times);
            debug_assert_eq!(times.len() - before, r.level, "chain length is the level");
            breakdowns.push(first_breakdown(entries, r.start, interner));
        } else {
            breakdowns.push(None);
        }
        levels.push(r.level as i64);
        lengths.push(times.len() - before);
    }
    let times = ListArray::try_new(
        times_item(),
        offsets_i32(FUNNEL_CHAIN, "the total length of `times`", lengths)?,
        Arc::new(Int64Array::from(times)),
        None,
    )?;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(levels)),
        Arc::new(times),
        Arc::new(StringArray::from(breakdowns)),
    ];
    Ok(Arc::new(StructArray::try_new(
        result_fields(),
        columns,
        None,
    )?))
}

impl GroupsAccumulator for FunnelChainGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.rows
            .update(values, group_indices, opt_filter, total_num_groups)
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let args = self.rows.args;
        self.rows
            .emit(emit_to, |grouped, interner| chains(args, grouped, interner))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        self.rows.emit_state(emit_to)
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.rows.merge(values, group_indices, total_num_groups)
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        self.rows.convert_to_state(values, opt_filter)
    }

    fn size(&self) -> usize {
        self.rows.size()
    }
}

impl KeepingGroupsAccumulator for FunnelChainGroups {
    fn ensure_groups(&mut self, total: usize) {
        self.rows.ensure_groups(total);
    }

    fn evaluate_keep(&mut self) -> Result<ArrayRef> {
        let args = self.rows.args;
        self.rows
            .peek(|grouped, interner| chains(args, grouped, interner))
    }
}
