//! `window_funnel(window_ms, ts, c1, ..., cn) -> BIGINT NOT NULL`: ClickHouse
//! `windowFunnel(window)` in its default mode, per group.
//!
//! - `window_ms`: a non-negative BIGINT literal; `ts`: a millisecond timestamp (any time
//!   zone) or BIGINT of milliseconds; `c1..cn`: BOOLEAN step conditions, `1 <= n <= 32`.
//! - The answer is the largest `k` such that some rows `r1, ..., rk` (not necessarily
//!   distinct) have `c_i(r_i)` true, `ts(r1) <= ... <= ts(rk)` and
//!   `ts(rk) - ts(r1) <= window_ms` (inclusive); 0 when no row has `c1`.
//! - As in ClickHouse, a row on which several conditions are true stands for one
//!   `(ts, step)` entry per condition, visited in `(ts, step)` order: one row with
//!   `c1, c2, c3` all true reaches 3, and rows at the same millisecond chain in step order
//!   whatever the input order. So the answer never depends on the input order.
//! - NULL conditions are false; rows with a NULL `ts` are ignored.
//!
//! Storage and algorithm: [`super::funnel`].

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Int64Array};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{AggregateOrderSensitivity, format_state_name};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use super::common::{KeepingGroupsAccumulator, SingleGroup, groups_accumulator_methods, udaf_type};
use super::funnel::{
    FunnelArgs, FunnelRows, Grouped, coerce_args, reach, sort_by_time, state_type,
};

/// SQL name.
pub(crate) const WINDOW_FUNNEL: &str = "window_funnel";

udaf_type!(WindowFunnel);

impl AggregateUDFImpl for WindowFunnel {
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        coerce_args(WINDOW_FUNNEL, arg_types, false)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn default_value(&self, _data_type: &DataType) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(0)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format_state_name(args.name, "rows"),
            state_type(false),
            true,
        ))])
    }

    groups_accumulator_methods!(WINDOW_FUNNEL, WindowFunnelGroups);
}

/// The funnel rows of every group; see [`super::funnel`].
#[derive(Debug)]
pub(super) struct WindowFunnelGroups {
    rows: FunnelRows,
}

impl WindowFunnelGroups {
    pub fn new(args: &AccumulatorArgs) -> Result<Self> {
        Ok(Self::with_args(FunnelArgs::from_call(
            WINDOW_FUNNEL,
            args,
            false,
        )?))
    }

    pub fn with_args(args: FunnelArgs) -> Self {
        Self {
            rows: FunnelRows::new(WINDOW_FUNNEL, args),
        }
    }
}

/// The level of every group in `grouped`.
fn levels(args: FunnelArgs, mut grouped: Grouped) -> ArrayRef {
    let out: Int64Array = (0..grouped.num_groups())
        .map(|g| {
            if let Some(short) = grouped.short(g) {
                return Some(short.level as i64);
            }
            let entries = grouped.group_mut(g);
            sort_by_time(entries);
            let level = reach(entries, args.steps, args.window_ms, true).level;
            Some(level as i64)
        })
        .collect();
    Arc::new(out)
}

impl GroupsAccumulator for WindowFunnelGroups {
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
            .emit(emit_to, |grouped, _| Ok(levels(args, grouped)))
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

impl KeepingGroupsAccumulator for WindowFunnelGroups {
    fn ensure_groups(&mut self, total: usize) {
        self.rows.ensure_groups(total);
    }

    fn evaluate_keep(&mut self) -> Result<ArrayRef> {
        let args = self.rows.args;
        self.rows.peek(|grouped, _| Ok(levels(args, grouped)))
    }
}
