//! `retention_periods(start_period, return_period, width) -> STRUCT<starts BINARY NOT NULL,
//! returns BINARY NOT NULL>` (NOT NULL): which period indices a group started and
//! returned in, as two bitsets.
//!
//! - `start_period`, `return_period`: nullable BIGINT period indices; `width`: a BIGINT
//!   literal, `1 <= width <= MAX_WIDTH_BITS`.
//! - Each bitset has `width` bits in `ceil(width / 8)` bytes; bit `i` is bit `i % 8`
//!   (counting from the least significant) of byte `i / 8`, read with
//!   [`super::bit_is_set`]. Bit `i` of `starts` is set iff some row has
//!   `start_period == i`, of `returns` iff some row has `return_period == i`. NULLs and
//!   values outside `[0, width)` are ignored; a group without any gets all-zero bitsets.
//! - DataFusion's empty-input default (it cannot know `width`) is two empty bitsets,
//!   which [`super::bit_is_set`] reads as all zeros.
//!
//! State is sparse, so memory follows the distinct periods a group has rather than
//! `width`: per row kept, `(group << 32) | period << 1 | kind` in one `u64` (8 bytes),
//! with a repeat of a group's previous period of the same kind skipped on arrival
//! (input sorted by user and time within an event repeats periods), and the whole list sorted and
//! deduplicated whenever it doubles. Up to [`DENSE_MAX_WIDTH`] periods (the common case:
//! daily retention over weeks, trends' daily buckets over two months), state is dense
//! instead: two `u64` bitmasks per group (16 bytes), a row one OR. The intermediate state
//! is, per group, the sorted distinct `period << 1 | kind` codes as `LargeList<UInt32>`.

use std::mem::size_of;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, LargeListArray, StructArray, UInt32Array,
};
use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, Field, FieldRef, Fields, UInt32Type};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{AggregateOrderSensitivity, format_state_name};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use super::common::{
    KeepingGroupsAccumulator, SingleGroup, UdafError, check_lengths, coerce_int_constant,
    emit_count, group_u32, groups_accumulator_methods, i64_column, list_range, literal_i64,
    offsets_i32, offsets_i64, passes, udaf_type, vec_bytes,
};

/// SQL name.
pub(crate) const RETENTION_PERIODS: &str = "retention_periods";

/// Largest `width`: 65,536 periods, 8 KiB per bitset.
pub(crate) const MAX_WIDTH_BITS: i64 = 65_536;

/// The kinds of period a row carries, the low bit of a code.
const START: u32 = 0;
const RETURN: u32 = 1;

/// Widest `width` kept as per-group bitmasks.
const DENSE_MAX_WIDTH: usize = 64;

/// Compaction does not run below this many codes.
const MIN_COMPACT_CODES: usize = 1 << 16;

fn result_fields() -> Fields {
    Fields::from(vec![
        Field::new("starts", DataType::Binary, false),
        Field::new("returns", DataType::Binary, false),
    ])
}

fn state_item() -> FieldRef {
    Arc::new(Field::new_list_field(DataType::UInt32, false))
}

udaf_type!(RetentionPeriods);

impl AggregateUDFImpl for RetentionPeriods {
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [start, ret, width] = arg_types else {
            return Err(UdafError::ArgCount {
                func: RETENTION_PERIODS,
                expected: "(start_period, return_period, width)",
                got: arg_types.len(),
            }
            .into());
        };
        Ok(vec![
            coerce_int_constant(RETENTION_PERIODS, 1, "start_period", start)?,
            coerce_int_constant(RETENTION_PERIODS, 2, "return_period", ret)?,
            coerce_int_constant(RETENTION_PERIODS, 3, "width", width)?,
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(result_fields()))
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn default_value(&self, _data_type: &DataType) -> Result<ScalarValue> {
        let empty = PeriodsGroups::with_width(0);
        ScalarValue::try_from_array(&empty.bitsets(1)?, 0)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format_state_name(args.name, "codes"),
            DataType::LargeList(state_item()),
            true,
        ))])
    }

    groups_accumulator_methods!(RETENTION_PERIODS, PeriodsGroups);
}

/// The periods of every group (see the module docs).
#[derive(Debug)]
pub(super) struct PeriodsGroups {
    width: usize,
    /// Per group, the start and return periods as bitmasks (bit `p` for period `p`),
    /// when `width <= DENSE_MAX_WIDTH`; the sparse fields below stay empty then.
    dense: Option<Vec<[u64; 2]>>,
    /// `(group << 32) | period << 1 | kind`.
    codes: Vec<u64>,
    /// Per group and kind, the last period pushed plus one (0: none).
    last: Vec<[u32; 2]>,
    /// `codes.len()` after the last compaction.
    compacted: usize,
    num_groups: usize,
}

impl PeriodsGroups {
    pub fn new(args: &AccumulatorArgs) -> Result<Self> {
        let width = literal_i64(
            RETENTION_PERIODS,
            args,
            2,
            "width",
            1..=MAX_WIDTH_BITS,
            "a BIGINT literal in [1, 65536]",
        )?;
        Ok(Self::with_width(usize::try_from(width).unwrap_or(0)))
    }

    pub fn with_width(width: usize) -> Self {
        let width = width.min(MAX_WIDTH_BITS as usize);
        Self {
            width,
            dense: (width <= DENSE_MAX_WIDTH).then(Vec::new),
            codes: Vec::new(),
            last: Vec::new(),
            compacted: 0,
            num_groups: 0,
        }
    }

    fn bytes_per_group(&self) -> usize {
        self.width.div_ceil(8)
    }

    /// The period `value` as an index, if in `[0, width)`.
    fn period(&self, value: i64) -> Option<u32> {
        usize::try_from(value)
            .ok()
            .filter(|&p| p < self.width)
            .and_then(|p| u32::try_from(p).ok())
    }

    /// Records that group `g` has `period` of `kind`.
    fn push(&mut self, g: usize, period: u32, kind: u32) -> Result<()> {
        if let Some(dense) = &mut self.dense {
            if g >= dense.len() {
                dense.resize(g + 1, [0, 0]);
            }
            self.num_groups = self.num_groups.max(g + 1);
            if let Some(mask) = dense.get_mut(g).and_then(|m| m.get_mut(kind as usize)) {
                *mask |= 1u64 << (period % 64);
            }
            return Ok(());
        }
        let group = group_u32(RETENTION_PERIODS, g)?;
        if g >= self.last.len() {
            self.last.resize(g + 1, [0, 0]);
        }
        self.num_groups = self.num_groups.max(g + 1);
        if let Some(last) = self.last.get_mut(g).and_then(|l| l.get_mut(kind as usize)) {
            if *last == period + 1 {
                return Ok(());
            }
            *last = period + 1;
        }
        self.codes
            .push((u64::from(group) << 32) | u64::from(period << 1 | kind));
        Ok(())
    }

    /// Sorts and deduplicates the codes once they have doubled since the last time.
    fn maybe_compact(&mut self) {
        if self.codes.len() >= MIN_COMPACT_CODES.max(2 * self.compacted) {
            self.codes.sort_unstable();
            self.codes.dedup();
            self.compacted = self.codes.len();
        }
    }

    /// The bitsets of groups `0..n`, keeping the state.
    fn bitsets(&self, n: usize) -> Result<ArrayRef> {
        let per = self.bytes_per_group();
        let offsets = offsets_i32(
            RETENTION_PERIODS,
            "the total size of the bitsets",
            std::iter::repeat_n(per, n),
        )?;
        let mut bits = [vec![0u8; per * n], vec![0u8; per * n]];
        if let Some(dense) = &self.dense {
            for (kind, out) in bits.iter_mut().enumerate() {
                for (g, chunk) in out.chunks_mut(per.max(1)).enumerate().take(n) {
                    let mask = dense.get(g).map_or(0, |m| m[kind]);
                    for (byte, from) in chunk.iter_mut().zip(mask.to_le_bytes()) {
                        *byte = from;
                    }
                }
            }
        }
        for &code in &self.codes {
            let g = (code >> 32) as usize;
            if g >= n {
                continue;
            }
            let low = code as u32;
            let (period, kind) = ((low >> 1) as usize, low & 1);
            if let Some(byte) = bits
                .get_mut(kind as usize)
                .and_then(|b| b.get_mut(g * per + period / 8))
            {
                *byte |= 1 << (period % 8);
            }
        }
        let [starts, returns] = bits;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(BinaryArray::try_new(
                offsets.clone(),
                Buffer::from_vec(starts),
                None,
            )?),
            Arc::new(BinaryArray::try_new(
                offsets,
                Buffer::from_vec(returns),
                None,
            )?),
        ];
        Ok(Arc::new(StructArray::try_new(
            result_fields(),
            columns,
            None,
        )?))
    }

    /// Forgets groups `0..n` and renumbers the rest from 0.
    fn drop_first(&mut self, n: usize) {
        if let Some(dense) = &mut self.dense {
            let _ = EmitTo::First(n.min(dense.len())).take_needed(dense);
        }
        if n >= self.num_groups {
            self.dense = self.dense.take().map(|_| Vec::new());
            self.codes = Vec::new();
            self.last = Vec::new();
            self.compacted = 0;
            self.num_groups = 0;
            return;
        }
        let shift = (n as u64) << 32;
        self.codes.retain(|&c| c >= shift);
        for c in &mut self.codes {
            *c -= shift;
        }
        self.compacted = self.compacted.min(self.codes.len());
        let _ = EmitTo::First(n.min(self.last.len())).take_needed(&mut self.last);
        self.num_groups -= n;
    }

    /// The intermediate state of groups `0..n`: their sorted distinct codes.
    fn state_of(&self, n: usize) -> Result<ArrayRef> {
        let mut mine: Vec<u64> = self
            .codes
            .iter()
            .copied()
            .filter(|&c| ((c >> 32) as usize) < n)
            .collect();
        if let Some(dense) = &self.dense {
            for (g, masks) in dense.iter().enumerate().take(n) {
                for (kind, &mask) in (0u64..).zip(masks) {
                    for p in super::set_bits(&mask.to_le_bytes()) {
                        mine.push(((g as u64) << 32) | (p as u64) << 1 | kind);
                    }
                }
            }
        }
        mine.sort_unstable();
        mine.dedup();
        let mut lengths = vec![0usize; n];
        for &c in &mine {
            if let Some(l) = lengths.get_mut((c >> 32) as usize) {
                *l += 1;
            }
        }
        let values = UInt32Array::from_iter_values(mine.iter().map(|&c| c as u32));
        Ok(Arc::new(LargeListArray::try_new(
            state_item(),
            offsets_i64(lengths),
            Arc::new(values),
            None,
        )?))
    }
}

impl GroupsAccumulator for PeriodsGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        let len = group_indices.len();
        check_lengths(RETENTION_PERIODS, values, len)?;
        self.ensure_groups(total_num_groups);
        let missing = || UdafError::BadState {
            func: RETENTION_PERIODS,
            what: "missing period columns",
        };
        let starts = values.first().ok_or_else(missing)?;
        let starts = i64_column(RETENTION_PERIODS, starts, "start_period is not BIGINT")?;
        let returns = values.get(1).ok_or_else(missing)?;
        let returns = i64_column(RETENTION_PERIODS, returns, "return_period is not BIGINT")?;
        let width = self.width;
        if let Some(dense) = &mut self.dense {
            // One OR per row and kind into the group's masks. Each run's masks are
            // prefetched in one pass ahead, so their cache misses overlap.
            let mut previous = usize::MAX;
            for &g in group_indices {
                if g != previous
                    && let Some(m) = dense.get(g)
                {
                    super::super::prefetch(m);
                }
                previous = g;
            }
            let bit = |v: Option<i64>| {
                v.and_then(|p| usize::try_from(p).ok())
                    .filter(|&p| p < width)
                    .map_or(0, |p| 1u64 << (p % 64))
            };
            for (i, &g) in group_indices.iter().enumerate() {
                if !passes(opt_filter, i) {
                    continue;
                }
                if let Some(masks) = dense.get_mut(g) {
                    masks[START as usize] |= bit(starts.get(i));
                    masks[RETURN as usize] |= bit(returns.get(i));
                }
            }
            return Ok(());
        }
        for (i, &g) in group_indices.iter().enumerate() {
            if !passes(opt_filter, i) {
                continue;
            }
            if let Some(p) = starts.get(i).and_then(|v| self.period(v)) {
                self.push(g, p, START)?;
            }
            if let Some(p) = returns.get(i).and_then(|v| self.period(v)) {
                self.push(g, p, RETURN)?;
            }
        }
        self.maybe_compact();
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let n = emit_count(emit_to, self.num_groups);
        let out = self.bitsets(n)?;
        self.drop_first(n);
        Ok(out)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let n = emit_count(emit_to, self.num_groups);
        let out = self.state_of(n)?;
        self.drop_first(n);
        Ok(vec![out])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        let bad = |what| UdafError::BadState {
            func: RETENTION_PERIODS,
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
                func: RETENTION_PERIODS,
            }
            .into());
        }
        self.ensure_groups(total_num_groups);
        let codes = list
            .values()
            .as_primitive_opt::<UInt32Type>()
            .ok_or_else(|| bad("codes are not UInt32"))?
            .values();
        let offsets = list.value_offsets();
        for (r, &g) in group_indices.iter().enumerate() {
            if list.is_null(r) {
                continue;
            }
            for k in list_range(offsets, r, codes.len()) {
                let Some(&code) = codes.get(k) else {
                    continue;
                };
                if let Some(p) = self.period(i64::from(code >> 1)) {
                    self.push(g, p, code & 1)?;
                }
            }
        }
        self.maybe_compact();
        Ok(())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let len = values.first().map_or(0, |v| v.len());
        check_lengths(RETENTION_PERIODS, values, len)?;
        let missing = || UdafError::BadState {
            func: RETENTION_PERIODS,
            what: "missing period columns",
        };
        let starts = values.first().ok_or_else(missing)?;
        let starts = i64_column(RETENTION_PERIODS, starts, "start_period is not BIGINT")?;
        let returns = values.get(1).ok_or_else(missing)?;
        let returns = i64_column(RETENTION_PERIODS, returns, "return_period is not BIGINT")?;
        let mut codes = Vec::new();
        let mut lengths = Vec::with_capacity(len);
        for i in 0..len {
            let before = codes.len();
            if passes(opt_filter, i) {
                let s = starts.get(i).and_then(|v| self.period(v));
                let r = returns.get(i).and_then(|v| self.period(v));
                // Sorted, as `state` emits them.
                let mut pair = [s.map(|p| p << 1 | START), r.map(|p| p << 1 | RETURN)];
                pair.sort_unstable();
                codes.extend(pair.into_iter().flatten());
            }
            lengths.push(codes.len() - before);
        }
        Ok(vec![Arc::new(LargeListArray::try_new(
            state_item(),
            offsets_i64(lengths),
            Arc::new(UInt32Array::from(codes)),
            None,
        )?)])
    }

    fn size(&self) -> usize {
        size_of::<Self>()
            + vec_bytes(&self.codes)
            + vec_bytes(&self.last)
            + self.dense.as_ref().map_or(0, vec_bytes)
    }
}

impl KeepingGroupsAccumulator for PeriodsGroups {
    fn ensure_groups(&mut self, total: usize) {
        self.num_groups = self.num_groups.max(total);
        if let Some(dense) = &mut self.dense {
            if dense.len() < total {
                dense.resize(total, [0, 0]);
            }
        } else if self.last.len() < total {
            self.last.resize(total, [0, 0]);
        }
    }

    fn evaluate_keep(&mut self) -> Result<ArrayRef> {
        self.bitsets(self.num_groups)
    }
}

#[cfg(test)]
mod tests {
    use super::super::bit_is_set;
    use super::*;

    fn bits(out: &ArrayRef, field: usize, g: usize) -> Vec<u8> {
        out.as_struct()
            .column(field)
            .as_binary::<i32>()
            .value(g)
            .to_vec()
    }

    #[test]
    fn bit_layout_is_lsb_first_and_out_of_range_is_ignored() {
        let mut acc = PeriodsGroups::with_width(10);
        for (s, r) in [(0, 9), (3, 8), (9, -1), (10, 100), (-1, 10)] {
            if let Some(p) = acc.period(s) {
                acc.push(0, p, START).unwrap();
            }
            if let Some(p) = acc.period(r) {
                acc.push(0, p, RETURN).unwrap();
            }
        }
        let out = acc.evaluate(EmitTo::All).unwrap();
        let starts = bits(&out, 0, 0);
        assert_eq!(starts, vec![0b0000_1001, 0b0000_0010]);
        let set: Vec<usize> = (0..16).filter(|&i| bit_is_set(&starts, i)).collect();
        assert_eq!(set, vec![0, 3, 9]);
        assert_eq!(bits(&out, 1, 0), vec![0, 0b11]);
    }

    #[test]
    fn compaction_and_emit_first_keep_answers() {
        let mut acc = PeriodsGroups::with_width(16);
        for round in 0..3 {
            for g in 0..4usize {
                for p in 0..16u32 {
                    if (p as usize + g + round).is_multiple_of(3) {
                        acc.push(g, p, (p + round as u32) % 2).unwrap();
                    }
                }
            }
        }
        acc.codes.sort_unstable();
        acc.codes.dedup();
        let want = acc.bitsets(4).unwrap();
        let first = acc.evaluate(EmitTo::First(1)).unwrap();
        let rest = acc.evaluate(EmitTo::All).unwrap();
        assert_eq!(bits(&first, 0, 0), bits(&want, 0, 0));
        for g in 1..4 {
            assert_eq!(bits(&rest, 0, g - 1), bits(&want, 0, g));
            assert_eq!(bits(&rest, 1, g - 1), bits(&want, 1, g));
        }
    }

    #[test]
    fn dense_and_sparse_state_agree() {
        for width in [1usize, 7, 8, 9, 40, 63, 64] {
            let mut dense = PeriodsGroups::with_width(width);
            let mut sparse = PeriodsGroups {
                dense: None,
                ..PeriodsGroups::with_width(width)
            };
            assert!(dense.dense.is_some());
            for acc in [&mut dense, &mut sparse] {
                acc.ensure_groups(5);
                for g in 0..5usize {
                    for k in 0..40usize {
                        let p = (g * 7 + k * 13) % (width + 3);
                        if let Some(p) = acc.period(p as i64) {
                            acc.push(g, p, (k % 2) as u32).unwrap();
                        }
                    }
                }
                acc.maybe_compact();
            }
            let state = |acc: &mut PeriodsGroups, n| acc.state(EmitTo::First(n)).unwrap();
            assert_eq!(
                state(&mut dense, 2)[0].as_ref(),
                state(&mut sparse, 2)[0].as_ref()
            );
            let (d, s) = (dense.bitsets(3).unwrap(), sparse.bitsets(3).unwrap());
            assert_eq!(d.as_ref(), s.as_ref(), "width {width}");
            for g in 0..3 {
                assert_eq!(bits(&d, 0, g).len(), width.div_ceil(8));
            }
            let d = dense.evaluate(EmitTo::All).unwrap();
            let s = sparse.evaluate(EmitTo::All).unwrap();
            assert_eq!(d.as_ref(), s.as_ref());
            assert_eq!(dense.num_groups, 0);
        }
    }
}
