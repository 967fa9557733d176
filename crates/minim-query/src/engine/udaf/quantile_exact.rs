//! `quantile_exact(value, level) -> DOUBLE`: ClickHouse `quantileExact(level)`, per group.
//!
//! - `value`: any number, read as DOUBLE; `level`: a numeric literal in `[0, 1]`.
//! - Over the group's non-NULL, non-NaN values sorted ascending, the one at 0-based index
//!   `floor(level * n)` (the last one when that is `n`); NULL when there is none. This is
//!   [`crate::quantile::quantile_exact`], which computes it: no interpolation, so the p50
//!   of `[1, 2, 3, 4]` is 3. NaN is skipped as ClickHouse skips it.
//! - `DISTINCT` is refused: it would change the answer.
//!
//! State: every value with its group (12 bytes a value, flat across groups); at emission
//! the values are gathered by group and each group sorted.

use std::mem::size_of;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Float64Array, LargeListArray};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{AggregateOrderSensitivity, format_state_name};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use super::common::{
    KeepingGroupsAccumulator, SingleGroup, UdafError, check_lengths, coerce_f64, emit_count,
    gather_by_group, group_u32, groups_accumulator_methods, list_range, literal_f64, no_distinct,
    offsets_i64, passes, udaf_type, vec_bytes,
};
use crate::quantile::quantile_exact;

/// SQL name.
pub(crate) const QUANTILE_EXACT: &str = "quantile_exact";

fn state_item() -> FieldRef {
    Arc::new(Field::new_list_field(DataType::Float64, false))
}

udaf_type!(QuantileExact);

impl AggregateUDFImpl for QuantileExact {
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [value, level] = arg_types else {
            return Err(UdafError::ArgCount {
                func: QUANTILE_EXACT,
                expected: "(value, level)",
                got: arg_types.len(),
            }
            .into());
        };
        Ok(vec![
            coerce_f64(QUANTILE_EXACT, 1, "value", value)?,
            coerce_f64(QUANTILE_EXACT, 2, "level", level)?,
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format_state_name(args.name, "values"),
            DataType::LargeList(state_item()),
            true,
        ))])
    }

    groups_accumulator_methods!(QUANTILE_EXACT, QuantileGroups);
}

/// Every value of every group.
#[derive(Debug)]
pub(super) struct QuantileGroups {
    level: f64,
    groups: Vec<u32>,
    values: Vec<f64>,
    num_groups: usize,
}

impl QuantileGroups {
    pub fn new(args: &AccumulatorArgs) -> Result<Self> {
        no_distinct(QUANTILE_EXACT, args)?;
        let level = literal_f64(
            QUANTILE_EXACT,
            args,
            1,
            "level",
            0.0..=1.0,
            "a numeric literal in [0, 1]",
        )?;
        Ok(Self::with_level(level))
    }

    pub fn with_level(level: f64) -> Self {
        Self {
            level,
            groups: Vec::new(),
            values: Vec::new(),
            num_groups: 0,
        }
    }

    fn push(&mut self, g: usize, v: f64) -> Result<()> {
        if v.is_nan() {
            return Ok(());
        }
        self.groups.push(group_u32(QUANTILE_EXACT, g)?);
        self.values.push(v);
        self.num_groups = self.num_groups.max(g + 1);
        Ok(())
    }

    fn gather(&self, n: usize) -> (Vec<usize>, Vec<f64>) {
        gather_by_group(&self.groups, n, |r| {
            self.values.get(r).copied().unwrap_or_default()
        })
    }

    /// The quantile of every group in `(offsets, values)`.
    fn quantiles(&self, offsets: &[usize], mut values: Vec<f64>) -> ArrayRef {
        let out: Float64Array = offsets
            .windows(2)
            .map(|w| {
                let group = values.get_mut(w[0]..w[1]).unwrap_or_default();
                group.sort_unstable_by(f64::total_cmp);
                quantile_exact(group, self.level)
            })
            .collect();
        Arc::new(out)
    }

    /// Forgets groups `0..n` and renumbers the rest from 0.
    fn drop_first(&mut self, n: usize) {
        if n >= self.num_groups {
            self.groups = Vec::new();
            self.values = Vec::new();
            self.num_groups = 0;
            return;
        }
        let shift = u32::try_from(n).unwrap_or(u32::MAX);
        let mut kept = 0;
        for r in 0..self.groups.len() {
            let g = self.groups[r];
            if g >= shift {
                self.groups[kept] = g - shift;
                self.values[kept] = self.values[r];
                kept += 1;
            }
        }
        self.groups.truncate(kept);
        self.values.truncate(kept);
        self.num_groups -= n;
    }

    fn values_of<'a>(&self, values: &'a ArrayRef) -> Result<&'a Float64Array> {
        values.as_primitive_opt::<Float64Type>().ok_or_else(|| {
            UdafError::BadState {
                func: QUANTILE_EXACT,
                what: "value is not DOUBLE",
            }
            .into()
        })
    }
}

impl GroupsAccumulator for QuantileGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        check_lengths(QUANTILE_EXACT, values, group_indices.len())?;
        self.ensure_groups(total_num_groups);
        let Some(input) = values.first() else {
            return Ok(());
        };
        let input = self.values_of(input)?;
        for (i, &g) in group_indices.iter().enumerate() {
            if passes(opt_filter, i) && input.is_valid(i) {
                self.push(g, input.value(i))?;
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let n = emit_count(emit_to, self.num_groups);
        let (offsets, values) = self.gather(n);
        self.drop_first(n);
        Ok(self.quantiles(&offsets, values))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let n = emit_count(emit_to, self.num_groups);
        let (offsets, values) = self.gather(n);
        self.drop_first(n);
        let lengths = offsets.windows(2).map(|w| w[1] - w[0]);
        Ok(vec![Arc::new(LargeListArray::try_new(
            state_item(),
            offsets_i64(lengths),
            Arc::new(Float64Array::from(values)),
            None,
        )?)])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        let bad = |what| UdafError::BadState {
            func: QUANTILE_EXACT,
            what,
        };
        let [state] = values else {
            return Err(bad("expected one state column").into());
        };
        let list = state
            .as_list_opt::<i64>()
            .ok_or_else(|| bad("state is not a LargeList"))?;
        if list.len() != group_indices.len() {
            return Err(UdafError::Lengths {
                func: QUANTILE_EXACT,
            }
            .into());
        }
        self.ensure_groups(total_num_groups);
        let items = self.values_of(list.values())?.values();
        let offsets = list.value_offsets();
        for (r, &g) in group_indices.iter().enumerate() {
            if list.is_null(r) {
                continue;
            }
            for k in list_range(offsets, r, items.len()) {
                if let Some(&v) = items.get(k) {
                    self.push(g, v)?;
                }
            }
        }
        Ok(())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let len = values.first().map_or(0, |v| v.len());
        check_lengths(QUANTILE_EXACT, values, len)?;
        let mut kept = Vec::new();
        let mut lengths = Vec::with_capacity(len);
        if let Some(input) = values.first() {
            let input = self.values_of(input)?;
            for i in 0..len {
                let keep = passes(opt_filter, i) && input.is_valid(i) && !input.value(i).is_nan();
                if keep {
                    kept.push(input.value(i));
                }
                lengths.push(usize::from(keep));
            }
        }
        Ok(vec![Arc::new(LargeListArray::try_new(
            state_item(),
            offsets_i64(lengths),
            Arc::new(Float64Array::from(kept)),
            None,
        )?)])
    }

    fn size(&self) -> usize {
        size_of::<Self>() + vec_bytes(&self.groups) + vec_bytes(&self.values)
    }
}

impl KeepingGroupsAccumulator for QuantileGroups {
    fn ensure_groups(&mut self, total: usize) {
        self.num_groups = self.num_groups.max(total);
    }

    fn evaluate_keep(&mut self) -> Result<ArrayRef> {
        let (offsets, values) = self.gather(self.num_groups);
        Ok(self.quantiles(&offsets, values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quantile(level: f64, values: &[f64]) -> Option<f64> {
        let mut acc = QuantileGroups::with_level(level);
        for &v in values {
            acc.push(0, v).unwrap();
        }
        acc.ensure_groups(1);
        let out = acc.evaluate(EmitTo::All).unwrap();
        let out = out.as_primitive::<Float64Type>();
        out.is_valid(0).then(|| out.value(0))
    }

    #[test]
    fn matches_clickhouse_quantile_exact() {
        assert_eq!(quantile(0.5, &[]), None);
        assert_eq!(quantile(0.5, &[4.0, 1.0, 3.0, 2.0]), Some(3.0));
        assert_eq!(quantile(0.0, &[4.0, 1.0, 3.0, 2.0]), Some(1.0));
        assert_eq!(quantile(1.0, &[4.0, 1.0, 3.0, 2.0]), Some(4.0));
        assert_eq!(quantile(0.9, &[f64::NAN, 1.0]), Some(1.0));
        assert_eq!(quantile(0.5, &[f64::NAN]), None);
    }

    #[test]
    fn emit_first_keeps_the_rest_renumbered() {
        let mut acc = QuantileGroups::with_level(0.5);
        for (g, v) in [(0, 1.0), (1, 10.0), (0, 3.0), (2, 7.0), (1, 20.0)] {
            acc.push(g, v).unwrap();
        }
        let first = acc.evaluate(EmitTo::First(2)).unwrap();
        let first = first.as_primitive::<Float64Type>();
        assert_eq!(first.values().to_vec(), vec![3.0, 20.0]);
        let rest = acc.evaluate(EmitTo::All).unwrap();
        assert_eq!(
            rest.as_primitive::<Float64Type>().values().to_vec(),
            vec![7.0]
        );
    }
}
