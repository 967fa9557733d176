//! `bucket_counts(bucket, width) -> STRUCT<buckets LIST<BIGINT> NOT NULL, counts
//! LIST<BIGINT> NOT NULL>` (NOT NULL): how many rows of a group fall in each bucket.
//!
//! - `bucket`: a nullable BIGINT bucket index; `width`: a BIGINT literal,
//!   `1 <= width <= MAX_WIDTH`.
//! - `buckets` lists, ascending, every `i` in `[0, width)` with at least one row where
//!   `bucket == i`; `counts` has, at the same position, how many such rows. NULLs and
//!   values outside `[0, width)` are not counted. A group without any has two empty lists,
//!   as has DataFusion's empty-input default.
//!
//! Trends' `total` math with it groups by the breakdown value alone (or not at all): the
//! group keys are few and a bucket is an array position, where grouping by (bucket,
//! value) hashes and compares both per row. State is dense, `width` counts per group,
//! while groups × width stays within [`DENSE_MAX_CELLS`]; beyond that (a breakdown with
//! very many values) it moves to a map keyed by (group, bucket), holding only the pairs
//! seen. Results and the intermediate state (the same two lists; counts add up) list
//! only the buckets that have rows, so their size follows the pairs seen as well.

use std::mem::size_of;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, ListArray, StructArray};
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Int64Type};
use datafusion::common::{HashMap, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{AggregateOrderSensitivity, format_state_name};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use super::common::{
    KeepingGroupsAccumulator, SingleGroup, UdafError, check_lengths, coerce_int_constant,
    emit_count, group_u32, groups_accumulator_methods, i64_column, literal_i64, offsets_i32,
    passes, udaf_type, vec_bytes,
};

/// SQL name.
pub(crate) const BUCKET_COUNTS: &str = "bucket_counts";

/// Largest `width`.
pub(crate) const MAX_WIDTH: i64 = 65_536;

/// Most cells (groups × width, 8 bytes each) kept dense: 16 MiB.
const DENSE_MAX_CELLS: usize = 1 << 21;

fn item() -> FieldRef {
    Arc::new(Field::new_list_field(DataType::Int64, false))
}

fn result_fields() -> Fields {
    Fields::from(vec![
        Field::new("buckets", DataType::List(item()), false),
        Field::new("counts", DataType::List(item()), false),
    ])
}

udaf_type!(BucketCounts);

impl AggregateUDFImpl for BucketCounts {
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [bucket, width] = arg_types else {
            return Err(UdafError::ArgCount {
                func: BUCKET_COUNTS,
                expected: "(bucket, width)",
                got: arg_types.len(),
            }
            .into());
        };
        Ok(vec![
            coerce_int_constant(BUCKET_COUNTS, 1, "bucket", bucket)?,
            coerce_int_constant(BUCKET_COUNTS, 2, "width", width)?,
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(result_fields()))
    }

    fn is_nullable(&self) -> bool {
        false
    }

    fn default_value(&self, _data_type: &DataType) -> Result<ScalarValue> {
        let empty = CountsGroups::with_width(1);
        ScalarValue::try_from_array(&empty.lists(1)?, 0)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format_state_name(args.name, "counts"),
            DataType::Struct(result_fields()),
            true,
        ))])
    }

    groups_accumulator_methods!(BUCKET_COUNTS, CountsGroups);
}

/// The counts of every group, dense or by (group, bucket) (see the module docs).
#[derive(Debug)]
enum Cells {
    /// `cells[g * width + b]`.
    Dense(Vec<u64>),
    /// Keyed by `g << 32 | b`.
    Sparse(HashMap<u64, u64>),
}

#[derive(Debug)]
pub(super) struct CountsGroups {
    width: usize,
    cells: Cells,
    num_groups: usize,
}

impl CountsGroups {
    pub fn new(args: &AccumulatorArgs) -> Result<Self> {
        let width = literal_i64(
            BUCKET_COUNTS,
            args,
            1,
            "width",
            1..=MAX_WIDTH,
            "a BIGINT literal in [1, 65536]",
        )?;
        Ok(Self::with_width(usize::try_from(width).unwrap_or(1)))
    }

    pub fn with_width(width: usize) -> Self {
        Self {
            width: width.clamp(1, MAX_WIDTH as usize),
            cells: Cells::Dense(Vec::new()),
            num_groups: 0,
        }
    }

    /// Makes groups `0..total` exist, moving to sparse cells when dense ones would pass
    /// [`DENSE_MAX_CELLS`].
    fn grow(&mut self, total: usize) -> Result<()> {
        if total > self.num_groups {
            // Sparse keys hold the group in 32 bits.
            group_u32(BUCKET_COUNTS, total - 1)?;
        }
        self.num_groups = self.num_groups.max(total);
        let cells = self.num_groups.saturating_mul(self.width);
        if let Cells::Dense(dense) = &mut self.cells {
            if cells <= DENSE_MAX_CELLS {
                if dense.len() < cells {
                    dense.resize(cells, 0);
                }
            } else {
                let width = self.width;
                let mut sparse = HashMap::new();
                for (at, &n) in dense.iter().enumerate() {
                    if n > 0 {
                        sparse.insert(key(at / width, at % width), n);
                    }
                }
                self.cells = Cells::Sparse(sparse);
            }
        }
        Ok(())
    }

    /// Adds `n` to group `g`'s bucket `b` (both in range: `grow` ran for `g`).
    #[inline]
    fn add(&mut self, g: usize, b: usize, n: u64) {
        match &mut self.cells {
            Cells::Dense(dense) => {
                if let Some(c) = dense.get_mut(g * self.width + b) {
                    *c += n;
                }
            }
            Cells::Sparse(sparse) => *sparse.entry(key(g, b)).or_insert(0) += n,
        }
    }

    /// The bucket `value` as an index, if in `[0, width)`.
    #[inline]
    fn bucket(&self, value: i64) -> Option<usize> {
        usize::try_from(value).ok().filter(|&b| b < self.width)
    }

    /// The nonzero (bucket, count) pairs of groups `0..n`, by group then bucket.
    fn pairs(&self, n: usize) -> Vec<(usize, usize, u64)> {
        let mut out = Vec::new();
        match &self.cells {
            Cells::Dense(dense) => {
                let end = n.saturating_mul(self.width).min(dense.len());
                for (at, &c) in dense.iter().enumerate().take(end) {
                    if c > 0 {
                        out.push((at / self.width, at % self.width, c));
                    }
                }
            }
            Cells::Sparse(sparse) => {
                out.extend(sparse.iter().filter_map(|(&k, &c)| {
                    let (g, b) = unkey(k);
                    (g < n && c > 0).then_some((g, b, c))
                }));
                out.sort_unstable();
            }
        }
        out
    }

    /// The result (also the state) of groups `0..n`, keeping the state.
    fn lists(&self, n: usize) -> Result<ArrayRef> {
        let pairs = self.pairs(n);
        let mut lengths = vec![0usize; n];
        for &(g, _, _) in &pairs {
            if let Some(l) = lengths.get_mut(g) {
                *l += 1;
            }
        }
        let offsets = offsets_i32(BUCKET_COUNTS, "the number of buckets listed", lengths)?;
        let buckets: Int64Array = pairs
            .iter()
            .map(|&(_, b, _)| i64::try_from(b).unwrap_or(i64::MAX))
            .collect();
        let counts: Int64Array = pairs
            .iter()
            .map(|&(_, _, c)| i64::try_from(c).unwrap_or(i64::MAX))
            .collect();
        let list = |values: Int64Array| -> Result<ArrayRef> {
            Ok(Arc::new(ListArray::try_new(
                item(),
                offsets.clone(),
                Arc::new(values),
                None,
            )?))
        };
        Ok(Arc::new(StructArray::try_new(
            result_fields(),
            vec![list(buckets)?, list(counts)?],
            None,
        )?))
    }

    /// Forgets groups `0..n` and renumbers the rest from 0.
    fn drop_first(&mut self, n: usize) {
        let n = n.min(self.num_groups);
        match &mut self.cells {
            Cells::Dense(dense) => {
                dense.drain(..n.saturating_mul(self.width).min(dense.len()));
            }
            Cells::Sparse(sparse) => {
                let kept: HashMap<u64, u64> = sparse
                    .drain()
                    .filter_map(|(k, c)| {
                        let (g, b) = unkey(k);
                        (g >= n).then(|| (key(g - n, b), c))
                    })
                    .collect();
                *sparse = kept;
            }
        }
        self.num_groups -= n;
    }

    /// Adds a state or result column's (bucket, count) lists to the groups of its rows.
    fn add_lists(&mut self, array: &ArrayRef, groups: &[usize]) -> Result<()> {
        let bad = |what| UdafError::BadState {
            func: BUCKET_COUNTS,
            what,
        };
        let lists = array
            .as_struct_opt()
            .ok_or_else(|| bad("state is not a struct"))?;
        let field = |name: &str| {
            lists
                .column_by_name(name)
                .and_then(|c| c.as_list_opt::<i32>())
                .ok_or_else(|| bad("state lacks a list of buckets or counts"))
        };
        let (buckets, counts) = (field("buckets")?, field("counts")?);
        if lists.len() != groups.len() {
            return Err(UdafError::Lengths {
                func: BUCKET_COUNTS,
            }
            .into());
        }
        let values = |l: &ListArray| {
            l.values()
                .as_primitive_opt::<Int64Type>()
                .map(|a| a.values().clone())
                .ok_or_else(|| bad("state lists are not BIGINT"))
        };
        let (bucket_values, count_values) = (values(buckets)?, values(counts)?);
        for (r, &g) in groups.iter().enumerate() {
            if lists.is_null(r) {
                continue;
            }
            let range = buckets.value_offsets();
            let (Some(&start), Some(&end)) = (range.get(r), range.get(r + 1)) else {
                continue;
            };
            let start = usize::try_from(start).unwrap_or(0);
            let end = usize::try_from(end).unwrap_or(0);
            let count_start = counts
                .value_offsets()
                .get(r)
                .and_then(|&o| usize::try_from(o).ok())
                .unwrap_or(0);
            for (k, at) in (start..end).enumerate() {
                let (Some(&b), Some(&c)) =
                    (bucket_values.get(at), count_values.get(count_start + k))
                else {
                    continue;
                };
                if let (Some(b), Ok(c)) = (self.bucket(b), u64::try_from(c)) {
                    self.add(g, b, c);
                }
            }
        }
        Ok(())
    }
}

#[inline]
fn key(g: usize, b: usize) -> u64 {
    ((g as u64) << 32) | b as u64
}

#[inline]
fn unkey(k: u64) -> (usize, usize) {
    ((k >> 32) as usize, (k & 0xffff_ffff) as usize)
}

impl GroupsAccumulator for CountsGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        check_lengths(BUCKET_COUNTS, values, group_indices.len())?;
        self.grow(total_num_groups)?;
        let buckets = values.first().ok_or(UdafError::BadState {
            func: BUCKET_COUNTS,
            what: "missing bucket column",
        })?;
        let buckets = i64_column(BUCKET_COUNTS, buckets, "bucket is not BIGINT")?;
        let width = self.width;
        if let (Cells::Dense(dense), None, None) = (&mut self.cells, buckets.nulls, opt_filter) {
            // The common case, one bounds check and an add per row.
            for (&g, &b) in group_indices.iter().zip(buckets.values.iter()) {
                if let Some(c) = usize::try_from(b)
                    .ok()
                    .filter(|&b| b < width)
                    .and_then(|b| dense.get_mut(g * width + b))
                {
                    *c += 1;
                }
            }
            return Ok(());
        }
        for (i, &g) in group_indices.iter().enumerate() {
            if !passes(opt_filter, i) {
                continue;
            }
            if let Some(b) = buckets.get(i).and_then(|v| self.bucket(v)) {
                self.add(g, b, 1);
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let n = emit_count(emit_to, self.num_groups);
        let out = self.lists(n)?;
        self.drop_first(n);
        Ok(out)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        Ok(vec![self.evaluate(emit_to)?])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        let [state] = values else {
            return Err(UdafError::BadState {
                func: BUCKET_COUNTS,
                what: "expected one state column",
            }
            .into());
        };
        self.grow(total_num_groups)?;
        self.add_lists(state, group_indices)
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let len = values.first().map_or(0, |v| v.len());
        check_lengths(BUCKET_COUNTS, values, len)?;
        let mut one = Self::with_width(self.width);
        let rows: Vec<usize> = (0..len).collect();
        one.update_batch(values, &rows, opt_filter, len)?;
        Ok(vec![one.lists(len)?])
    }

    fn size(&self) -> usize {
        size_of::<Self>()
            + match &self.cells {
                Cells::Dense(dense) => vec_bytes(dense),
                Cells::Sparse(sparse) => sparse.capacity() * (size_of::<(u64, u64)>() + 1),
            }
    }
}

impl KeepingGroupsAccumulator for CountsGroups {
    fn ensure_groups(&mut self, total: usize) {
        // Past 2^32 groups `update_batch` refuses first; nothing to grow here then.
        let _ = self.grow(total);
    }

    fn evaluate_keep(&mut self) -> Result<ArrayRef> {
        self.lists(self.num_groups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(out: &ArrayRef, g: usize) -> Vec<(i64, i64)> {
        let s = out.as_struct();
        let list = |name: &str| {
            s.column_by_name(name)
                .unwrap()
                .as_list::<i32>()
                .value(g)
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        };
        list("buckets").into_iter().zip(list("counts")).collect()
    }

    fn fill(acc: &mut CountsGroups, groups: usize) {
        acc.grow(groups).unwrap();
        for g in 0..groups {
            for k in 0..7 {
                let b = (g * 3 + k * 5) % acc.width;
                acc.add(g, b, (k + 1) as u64);
            }
        }
    }

    #[test]
    fn dense_and_sparse_cells_agree() {
        let width = 50;
        let mut dense = CountsGroups::with_width(width);
        let mut sparse = CountsGroups::with_width(width);
        sparse.cells = Cells::Sparse(HashMap::new());
        fill(&mut dense, 9);
        fill(&mut sparse, 9);
        assert!(matches!(dense.cells, Cells::Dense(_)));
        assert_eq!(
            dense.lists(9).unwrap().as_ref(),
            sparse.lists(9).unwrap().as_ref()
        );
        let (d, s) = (
            dense.evaluate(EmitTo::First(4)).unwrap(),
            sparse.evaluate(EmitTo::First(4)).unwrap(),
        );
        assert_eq!(d.as_ref(), s.as_ref());
        assert_eq!(
            dense.lists(5).unwrap().as_ref(),
            sparse.lists(5).unwrap().as_ref()
        );
        assert_eq!(dense.num_groups, 5);
    }

    #[test]
    fn many_groups_move_to_sparse_cells_keeping_counts() {
        let width = 1_000;
        let mut acc = CountsGroups::with_width(width);
        fill(&mut acc, 10);
        let before = acc.lists(10).unwrap();
        acc.grow(DENSE_MAX_CELLS / width + 1).unwrap();
        assert!(matches!(acc.cells, Cells::Sparse(_)));
        let after = acc.lists(10).unwrap();
        assert_eq!(before.as_ref(), after.as_ref());
        assert_eq!(
            read(&after, 0),
            vec![(0, 1), (5, 2), (10, 3), (15, 4), (20, 5), (25, 6), (30, 7)]
        );
    }

    #[test]
    fn out_of_range_and_null_buckets_are_not_counted() {
        let mut acc = CountsGroups::with_width(3);
        let buckets: ArrayRef = Arc::new(Int64Array::from(vec![
            Some(0),
            Some(2),
            Some(3),
            Some(-1),
            None,
            Some(2),
            Some(1),
        ]));
        let width: ArrayRef = Arc::new(Int64Array::from(vec![3; 7]));
        acc.update_batch(&[buckets, width], &[0, 0, 0, 0, 0, 0, 1], None, 2)
            .unwrap();
        let out = acc.evaluate(EmitTo::All).unwrap();
        assert_eq!(read(&out, 0), vec![(0, 1), (2, 2)]);
        assert_eq!(read(&out, 1), vec![(1, 1)]);
    }
}
