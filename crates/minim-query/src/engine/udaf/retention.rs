//! `retention(c1, ..., cn) -> LIST<UINT8>`: ClickHouse `retention`, per group.
//!
//! - `c1..cn`: BOOLEAN conditions, `1 <= n <= 32`; NULL is false.
//! - The answer has `n` elements: `r[0] = 1` if some row has `c1` true; for `i >= 1`,
//!   `r[i] = 1` if some row has `c1` true and some (possibly other) row has `c_{i+1}`
//!   true; 0 otherwise. A group without such rows gets `n` zeros.
//! - The declared type is nullable (DataFusion's empty-input default cannot know `n`),
//!   but the function never returns NULL.
//!
//! State: one `u32` per group, the conditions seen on any row (bit `i` for `c{i+1}`);
//! merging ORs them.

use std::mem::size_of;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, ListArray, UInt8Array, UInt32Array};
use arrow::datatypes::{DataType, Field, FieldRef, UInt32Type};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{AggregateOrderSensitivity, format_state_name};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use super::common::{
    KeepingGroupsAccumulator, SingleGroup, UdafError, check_lengths, coerce_condition,
    condition_masks, groups_accumulator_methods, offsets_i32, udaf_type, vec_bytes,
};

/// SQL name.
pub(crate) const RETENTION: &str = "retention";

/// Most conditions `retention` takes.
const MAX_CONDITIONS: usize = 32;

fn item() -> FieldRef {
    Arc::new(Field::new_list_field(DataType::UInt8, false))
}

udaf_type!(Retention);

fn arg_count(got: usize) -> UdafError {
    UdafError::ArgCount {
        func: RETENTION,
        expected: "(c1[, ..., c32])",
        got,
    }
}

impl AggregateUDFImpl for Retention {
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if !(1..=MAX_CONDITIONS).contains(&arg_types.len()) {
            return Err(arg_count(arg_types.len()).into());
        }
        arg_types
            .iter()
            .enumerate()
            .map(|(i, t)| coerce_condition(RETENTION, i + 1, t))
            .collect()
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(item()))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format_state_name(args.name, "seen"),
            DataType::UInt32,
            true,
        ))])
    }

    groups_accumulator_methods!(RETENTION, RetentionGroups);
}

/// Per group, the conditions seen on any row.
#[derive(Debug)]
pub(super) struct RetentionGroups {
    conditions: usize,
    seen: Vec<u32>,
}

impl RetentionGroups {
    pub fn new(args: &AccumulatorArgs) -> Result<Self> {
        let n = args.exprs.len();
        if !(1..=MAX_CONDITIONS).contains(&n) {
            return Err(arg_count(n).into());
        }
        Ok(Self::with_conditions(n))
    }

    pub fn with_conditions(conditions: usize) -> Self {
        Self {
            conditions: conditions.clamp(1, MAX_CONDITIONS),
            seen: Vec::new(),
        }
    }

    fn full_mask(&self) -> u32 {
        if self.conditions >= MAX_CONDITIONS {
            u32::MAX
        } else {
            (1u32 << self.conditions) - 1
        }
    }

    fn accumulate(&mut self, group_indices: &[usize], masks: impl Iterator<Item = u32>) {
        let full = self.full_mask();
        for (&g, m) in group_indices.iter().zip(masks) {
            if g >= self.seen.len() {
                self.seen.resize(g + 1, 0);
            }
            if let Some(s) = self.seen.get_mut(g) {
                *s |= m & full;
            }
        }
    }

    /// The answer lists of groups with the given seen-masks.
    fn answers(&self, seen: &[u32]) -> Result<ArrayRef> {
        let n = self.conditions;
        let mut values = Vec::with_capacity(seen.len() * n);
        for &m in seen {
            let first = (m & 1) as u8;
            values.push(first);
            values.extend((1..n).map(|i| first & ((m >> i) & 1) as u8));
        }
        let offsets = offsets_i32(
            RETENTION,
            "the total length of the answers",
            std::iter::repeat_n(n, seen.len()),
        )?;
        Ok(Arc::new(ListArray::try_new(
            item(),
            offsets,
            Arc::new(UInt8Array::from(values)),
            None,
        )?))
    }
}

impl GroupsAccumulator for RetentionGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        let len = group_indices.len();
        check_lengths(RETENTION, values, len)?;
        self.ensure_groups(total_num_groups);
        let masks = condition_masks(RETENTION, values, len, opt_filter)?;
        self.accumulate(group_indices, masks.into_iter());
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let seen = emit_to.take_needed(&mut self.seen);
        self.answers(&seen)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let seen = emit_to.take_needed(&mut self.seen);
        Ok(vec![Arc::new(UInt32Array::from(seen))])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        let bad = |what| UdafError::BadState {
            func: RETENTION,
            what,
        };
        let [state] = values else {
            return Err(bad("expected one state column").into());
        };
        let seen = state
            .as_primitive_opt::<UInt32Type>()
            .ok_or_else(|| bad("state is not UInt32"))?;
        if seen.len() != group_indices.len() {
            return Err(UdafError::Lengths { func: RETENTION }.into());
        }
        self.ensure_groups(total_num_groups);
        self.accumulate(
            group_indices,
            (0..seen.len()).map(|i| if seen.is_valid(i) { seen.value(i) } else { 0 }),
        );
        Ok(())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let len = values.first().map_or(0, |v| v.len());
        check_lengths(RETENTION, values, len)?;
        let masks = condition_masks(RETENTION, values, len, opt_filter)?;
        Ok(vec![Arc::new(UInt32Array::from(masks))])
    }

    fn size(&self) -> usize {
        size_of::<Self>() + vec_bytes(&self.seen)
    }
}

impl KeepingGroupsAccumulator for RetentionGroups {
    fn ensure_groups(&mut self, total: usize) {
        if self.seen.len() < total {
            self.seen.resize(total, 0);
        }
    }

    fn evaluate_keep(&mut self) -> Result<ArrayRef> {
        self.answers(&self.seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(conditions: usize, rows: &[u32]) -> Vec<u8> {
        let mut acc = RetentionGroups::with_conditions(conditions);
        acc.accumulate(&vec![0; rows.len()], rows.iter().copied());
        acc.ensure_groups(1);
        let out = acc.evaluate(EmitTo::All).unwrap();
        let list = out.as_list::<i32>();
        list.value(0)
            .as_primitive::<arrow::datatypes::UInt8Type>()
            .values()
            .to_vec()
    }

    #[test]
    fn matches_clickhouse_retention() {
        // No rows, or no c1: all zeros.
        assert_eq!(answer(3, &[]), vec![0, 0, 0]);
        assert_eq!(answer(3, &[0b110]), vec![0, 0, 0]);
        // c1 alone.
        assert_eq!(answer(3, &[0b001]), vec![1, 0, 0]);
        // c1 and c3 on different rows, c2 nowhere.
        assert_eq!(answer(3, &[0b100, 0b001]), vec![1, 0, 1]);
        // One row with everything.
        assert_eq!(answer(3, &[0b111]), vec![1, 1, 1]);
    }

    #[test]
    fn emit_first_keeps_the_rest_renumbered() {
        let mut acc = RetentionGroups::with_conditions(2);
        acc.accumulate(&[0, 1, 2], [0b11, 0b01, 0b11].into_iter());
        let first = acc.evaluate(EmitTo::First(1)).unwrap();
        assert_eq!(first.len(), 1);
        let rest = acc.evaluate(EmitTo::All).unwrap();
        let rest = rest.as_list::<i32>();
        assert_eq!(rest.len(), 2);
        let v = |i: usize| {
            rest.value(i)
                .as_primitive::<arrow::datatypes::UInt8Type>()
                .values()
                .to_vec()
        };
        assert_eq!(v(0), vec![1, 0]);
        assert_eq!(v(1), vec![1, 1]);
    }
}
