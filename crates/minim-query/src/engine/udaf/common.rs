//! What every Minim aggregate shares: argument checks ([`UdafError`]: literal constants,
//! types, counts), reading input columns without copying, the single-group
//! [`Accumulator`] adapter over a [`GroupsAccumulator`], and checked offsets.

use std::fmt::Debug;
use std::mem::size_of;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use arrow::buffer::{BooleanBuffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMillisecondType};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::function::AccumulatorArgs;
use datafusion::logical_expr::{Accumulator, EmitTo, GroupsAccumulator};
use datafusion::physical_expr::expressions::Literal;

/// Why a Minim aggregate call was refused or could not run.
#[derive(Debug, thiserror::Error)]
pub(super) enum UdafError {
    #[error("{func} takes {expected} arguments, got {got}")]
    ArgCount {
        func: &'static str,
        expected: &'static str,
        got: usize,
    },
    #[error("{func}: argument {position} ({name}) must be {expected}, got {got}")]
    ArgType {
        func: &'static str,
        position: usize,
        name: &'static str,
        expected: &'static str,
        got: DataType,
    },
    #[error(
        "{func}: argument {position} ({name}) must be a literal constant, not a column or expression"
    )]
    NotLiteral {
        func: &'static str,
        position: usize,
        name: &'static str,
    },
    #[error("{func}: argument {position} ({name}) must be {expected}, got {got}")]
    BadConstant {
        func: &'static str,
        position: usize,
        name: &'static str,
        expected: &'static str,
        got: String,
    },
    #[error("{func} does not support DISTINCT")]
    Distinct { func: &'static str },
    #[error("{func}: input columns have different lengths")]
    Lengths { func: &'static str },
    #[error("{func}: {what} is larger than 32-bit offsets allow; aggregate fewer groups at once")]
    TooLarge {
        func: &'static str,
        what: &'static str,
    },
    #[error("{func}: unexpected intermediate state ({what})")]
    BadState {
        func: &'static str,
        what: &'static str,
    },
}

impl From<UdafError> for DataFusionError {
    fn from(e: UdafError) -> Self {
        match e {
            UdafError::ArgCount { .. }
            | UdafError::ArgType { .. }
            | UdafError::NotLiteral { .. }
            | UdafError::BadConstant { .. }
            | UdafError::Distinct { .. } => DataFusionError::Plan(e.to_string()),
            UdafError::Lengths { .. } | UdafError::BadState { .. } => {
                DataFusionError::Internal(e.to_string())
            }
            UdafError::TooLarge { .. } => DataFusionError::Execution(e.to_string()),
        }
    }
}

/// Argument coercion: the type a constant integer argument is cast to.
pub(super) fn coerce_int_constant(
    func: &'static str,
    position: usize,
    name: &'static str,
    t: &DataType,
) -> Result<DataType> {
    if t.is_integer() || t.is_null() {
        Ok(DataType::Int64)
    } else {
        Err(UdafError::ArgType {
            func,
            position,
            name,
            expected: "an integer",
            got: t.clone(),
        }
        .into())
    }
}

/// Argument coercion for event times: millisecond timestamps (any time zone; other units
/// are converted) or plain integers, read as milliseconds since the epoch.
pub(super) fn coerce_time(func: &'static str, position: usize, t: &DataType) -> Result<DataType> {
    match t {
        DataType::Timestamp(_, tz) => Ok(DataType::Timestamp(TimeUnit::Millisecond, tz.clone())),
        t if t.is_integer() || t.is_null() => Ok(DataType::Int64),
        t => Err(UdafError::ArgType {
            func,
            position,
            name: "ts",
            expected: "a timestamp or BIGINT of milliseconds",
            got: t.clone(),
        }
        .into()),
    }
}

/// Argument coercion for a condition: BOOLEAN (a NULL literal counts as false).
pub(super) fn coerce_condition(
    func: &'static str,
    position: usize,
    t: &DataType,
) -> Result<DataType> {
    match t {
        DataType::Boolean | DataType::Null => Ok(DataType::Boolean),
        t => Err(UdafError::ArgType {
            func,
            position,
            name: "condition",
            expected: "BOOLEAN",
            got: t.clone(),
        }
        .into()),
    }
}

/// Argument coercion for a string: any string type is read as `Utf8`.
pub(super) fn coerce_string(
    func: &'static str,
    position: usize,
    name: &'static str,
    t: &DataType,
) -> Result<DataType> {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
            Ok(DataType::Utf8)
        }
        DataType::Dictionary(_, v)
            if matches!(
                v.as_ref(),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            ) =>
        {
            Ok(DataType::Utf8)
        }
        t => Err(UdafError::ArgType {
            func,
            position,
            name,
            expected: "a string",
            got: t.clone(),
        }
        .into()),
    }
}

/// Argument coercion for a number read as `DOUBLE`.
pub(super) fn coerce_f64(
    func: &'static str,
    position: usize,
    name: &'static str,
    t: &DataType,
) -> Result<DataType> {
    if t.is_numeric() || t.is_null() {
        Ok(DataType::Float64)
    } else {
        Err(UdafError::ArgType {
            func,
            position,
            name,
            expected: "a number",
            got: t.clone(),
        }
        .into())
    }
}

/// The value of argument `index` (0-based), which must be a literal.
fn literal<'a>(
    func: &'static str,
    args: &'a AccumulatorArgs,
    index: usize,
    name: &'static str,
) -> Result<&'a ScalarValue> {
    args.exprs
        .get(index)
        .and_then(|e| e.downcast_ref::<Literal>())
        .map(Literal::value)
        .ok_or_else(|| {
            UdafError::NotLiteral {
                func,
                position: index + 1,
                name,
            }
            .into()
        })
}

/// A non-null integer literal argument within `range`.
pub(super) fn literal_i64(
    func: &'static str,
    args: &AccumulatorArgs,
    index: usize,
    name: &'static str,
    range: std::ops::RangeInclusive<i64>,
    expected: &'static str,
) -> Result<i64> {
    let arg = LiteralArg {
        func,
        args,
        index,
        name,
        expected,
    };
    arg.read(range, DataType::is_integer, &DataType::Int64, |v| match v {
        ScalarValue::Int64(v) => v,
        _ => None,
    })
}

/// A non-null numeric literal argument within `range` (NaN refused).
pub(super) fn literal_f64(
    func: &'static str,
    args: &AccumulatorArgs,
    index: usize,
    name: &'static str,
    range: std::ops::RangeInclusive<f64>,
    expected: &'static str,
) -> Result<f64> {
    let arg = LiteralArg {
        func,
        args,
        index,
        name,
        expected,
    };
    arg.read(
        range,
        DataType::is_numeric,
        &DataType::Float64,
        |v| match v {
            ScalarValue::Float64(v) => v,
            _ => None,
        },
    )
}

/// A constant argument being read, for [`literal_i64`] and [`literal_f64`].
struct LiteralArg<'a> {
    func: &'static str,
    args: &'a AccumulatorArgs<'a>,
    index: usize,
    name: &'static str,
    expected: &'static str,
}

impl LiteralArg<'_> {
    /// The literal if its type is `accepted`, and cast to `target` it is in `range`.
    fn read<T: PartialOrd>(
        &self,
        range: std::ops::RangeInclusive<T>,
        accepted: fn(&DataType) -> bool,
        target: &DataType,
        unwrap: fn(ScalarValue) -> Option<T>,
    ) -> Result<T> {
        let value = literal(self.func, self.args, self.index, self.name)?;
        let bad = || UdafError::BadConstant {
            func: self.func,
            position: self.index + 1,
            name: self.name,
            expected: self.expected,
            got: value.to_string(),
        };
        if value.is_null() || !accepted(&value.data_type()) {
            return Err(bad().into());
        }
        match value.cast_to(target).ok().and_then(unwrap) {
            Some(v) if range.contains(&v) => Ok(v),
            _ => Err(bad().into()),
        }
    }
}

/// Refuses `f(DISTINCT ...)` where duplicates change the answer.
pub(super) fn no_distinct(func: &'static str, args: &AccumulatorArgs) -> Result<()> {
    if args.is_distinct {
        return Err(UdafError::Distinct { func }.into());
    }
    Ok(())
}

/// Checks that every input column has `len` rows.
pub(super) fn check_lengths(func: &'static str, values: &[ArrayRef], len: usize) -> Result<()> {
    if values.iter().all(|v| v.len() == len) {
        Ok(())
    } else {
        Err(UdafError::Lengths { func }.into())
    }
}

/// A column of i64 (milliseconds or plain integers), borrowed from its array.
pub(super) struct I64Column<'a> {
    pub values: &'a ScalarBuffer<i64>,
    pub nulls: Option<&'a NullBuffer>,
}

impl I64Column<'_> {
    /// The value of row `i`, `None` when NULL or out of range.
    #[inline]
    pub fn get(&self, i: usize) -> Option<i64> {
        if self.nulls.is_some_and(|n| n.is_null(i)) {
            return None;
        }
        self.values.get(i).copied()
    }
}

/// Reads a BIGINT or millisecond-timestamp column.
pub(super) fn i64_column<'a>(
    func: &'static str,
    array: &'a ArrayRef,
    what: &'static str,
) -> Result<I64Column<'a>> {
    let bad = || UdafError::BadState { func, what };
    match array.data_type() {
        DataType::Int64 => {
            let a = array.as_primitive_opt::<Int64Type>().ok_or_else(bad)?;
            Ok(I64Column {
                values: a.values(),
                nulls: a.nulls(),
            })
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            let a = array
                .as_primitive_opt::<TimestampMillisecondType>()
                .ok_or_else(bad)?;
            Ok(I64Column {
                values: a.values(),
                nulls: a.nulls(),
            })
        }
        _ => Err(bad().into()),
    }
}

/// The rows where a boolean array is true (NULL counts as false).
pub(super) fn true_bits(array: &BooleanArray) -> BooleanBuffer {
    match array.nulls() {
        Some(n) => array.values() & n.inner(),
        None => array.values().clone(),
    }
}

/// For every row, the bitmask of `conditions` true on it (bit `j` for `conditions[j]`,
/// NULL is false); rows that `filter` excludes get 0.
pub(super) fn condition_masks(
    func: &'static str,
    conditions: &[ArrayRef],
    len: usize,
    filter: Option<&BooleanArray>,
) -> Result<Vec<u32>> {
    let mut masks = vec![0u32; len];
    for (j, c) in conditions.iter().enumerate().take(32) {
        let c = c.as_boolean_opt().ok_or(UdafError::BadState {
            func,
            what: "a condition is not BOOLEAN",
        })?;
        if c.len() != len {
            return Err(UdafError::Lengths { func }.into());
        }
        let bit = 1u32 << j;
        for i in true_bits(c).set_indices() {
            if let Some(m) = masks.get_mut(i) {
                *m |= bit;
            }
        }
    }
    if let Some(f) = filter {
        apply_filter(func, &mut masks, f)?;
    }
    Ok(masks)
}

/// Zeroes `masks[i]` where `filter[i]` is not true.
pub(super) fn apply_filter<T: Default>(
    func: &'static str,
    masks: &mut [T],
    filter: &BooleanArray,
) -> Result<()> {
    if filter.len() != masks.len() {
        return Err(UdafError::Lengths { func }.into());
    }
    for (m, keep) in masks.iter_mut().zip(true_bits(filter).iter()) {
        if !keep {
            *m = T::default();
        }
    }
    Ok(())
}

/// Whether row `i` passes the optional aggregate filter.
#[inline]
pub(super) fn passes(filter: Option<&BooleanArray>, i: usize) -> bool {
    filter.is_none_or(|f| f.is_valid(i) && f.value(i))
}

/// How many groups `emit_to` takes out of `num_groups`.
pub(super) fn emit_count(emit_to: EmitTo, num_groups: usize) -> usize {
    match emit_to {
        EmitTo::All => num_groups,
        EmitTo::First(n) => n.min(num_groups),
    }
}

/// Group index as stored (u32), refusing more than 2^32 groups.
#[inline]
pub(super) fn group_u32(func: &'static str, g: usize) -> Result<u32> {
    u32::try_from(g).map_err(|_| {
        UdafError::TooLarge {
            func,
            what: "the number of groups",
        }
        .into()
    })
}

/// 32-bit list/binary offsets from per-item lengths, or an error when they overflow.
pub(super) fn offsets_i32(
    func: &'static str,
    what: &'static str,
    lengths: impl IntoIterator<Item = usize>,
) -> Result<OffsetBuffer<i32>> {
    let lengths = lengths.into_iter();
    let mut offsets = Vec::with_capacity(lengths.size_hint().0 + 1);
    let mut total: i32 = 0;
    offsets.push(0);
    for len in lengths {
        total = i32::try_from(len)
            .ok()
            .and_then(|l| total.checked_add(l))
            .ok_or(UdafError::TooLarge { func, what })?;
        offsets.push(total);
    }
    Ok(OffsetBuffer::new(ScalarBuffer::from(offsets)))
}

/// 64-bit offsets from per-item lengths (intermediate state lists).
pub(super) fn offsets_i64(lengths: impl IntoIterator<Item = usize>) -> OffsetBuffer<i64> {
    let lengths = lengths.into_iter();
    let mut offsets = Vec::with_capacity(lengths.size_hint().0 + 1);
    let mut total: i64 = 0;
    offsets.push(0);
    for len in lengths {
        // A usize length always fits in i64 on 64-bit targets; saturate otherwise.
        total = total.saturating_add(i64::try_from(len).unwrap_or(i64::MAX));
        offsets.push(total);
    }
    OffsetBuffer::new(ScalarBuffer::from(offsets))
}

/// The row range of list `i` in a 64-bit-offset list, clamped to `values_len`.
#[inline]
pub(super) fn list_range(offsets: &[i64], i: usize, values_len: usize) -> std::ops::Range<usize> {
    let at = |k: usize| {
        offsets
            .get(k)
            .and_then(|&o| usize::try_from(o).ok())
            .unwrap_or(0)
            .min(values_len)
    };
    let start = at(i);
    start..at(i + 1).max(start)
}

/// Rows of groups `0..n` in group order, stable within a group (a counting sort):
/// returns per-group offsets (`n + 1`) and the items `item(r)` of the rows `r` with
/// `groups[r] < n`.
pub(super) fn gather_by_group<T: Copy + Default>(
    groups: &[u32],
    n: usize,
    item: impl Fn(usize) -> T,
) -> (Vec<usize>, Vec<T>) {
    let mut offsets = vec![0usize; n + 1];
    for &g in groups {
        if (g as usize) < n
            && let Some(c) = offsets.get_mut(g as usize + 1)
        {
            *c += 1;
        }
    }
    let mut total = 0;
    for o in offsets.iter_mut().skip(1) {
        total += *o;
        *o = total;
    }
    let mut next: Vec<usize> = offsets.iter().take(n).copied().collect();
    let mut items = vec![T::default(); total];
    for (r, &g) in groups.iter().enumerate() {
        let Some(at) = next.get_mut(g as usize) else {
            continue;
        };
        if let Some(slot) = items.get_mut(*at) {
            *slot = item(r);
        }
        *at += 1;
    }
    (offsets, items)
}

/// Bytes a `Vec` holds on the heap.
#[inline]
pub(super) fn vec_bytes<T>(v: &Vec<T>) -> usize {
    v.capacity() * size_of::<T>()
}

/// A groups accumulator that can also produce final values without consuming its state,
/// so that [`SingleGroup`] can serve window frames (which evaluate repeatedly).
pub(super) trait KeepingGroupsAccumulator: GroupsAccumulator + Debug + Sync {
    /// Makes sure groups `0..total` exist (empty ones evaluate as for no rows).
    fn ensure_groups(&mut self, total: usize);
    /// The final value of every group, keeping the state.
    fn evaluate_keep(&mut self) -> Result<ArrayRef>;
}

/// The [`Accumulator`] (no GROUP BY, window functions) of a Minim aggregate: its groups
/// accumulator with a single group 0.
#[derive(Debug)]
pub(super) struct SingleGroup<G> {
    inner: G,
    zeros: Vec<usize>,
}

impl<G: KeepingGroupsAccumulator> SingleGroup<G> {
    pub fn new(mut inner: G) -> Self {
        inner.ensure_groups(1);
        Self {
            inner,
            zeros: Vec::new(),
        }
    }

    /// Group indices (all 0) for `len` rows.
    fn grow_zeros(&mut self, len: usize) {
        if self.zeros.len() < len {
            self.zeros.resize(len, 0);
        }
    }
}

impl<G: KeepingGroupsAccumulator> Accumulator for SingleGroup<G> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let len = values.first().map_or(0, |a| a.len());
        self.grow_zeros(len);
        self.inner.update_batch(values, &self.zeros[..len], None, 1)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.inner.ensure_groups(1);
        let out = self.inner.evaluate_keep()?;
        ScalarValue::try_from_array(&out, 0)
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.inner.size() + vec_bytes(&self.zeros)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.inner.ensure_groups(1);
        let arrays = self.inner.state(EmitTo::All)?;
        self.inner.ensure_groups(1);
        arrays
            .iter()
            .map(|a| ScalarValue::try_from_array(a, 0))
            .collect()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let len = states.first().map_or(0, |a| a.len());
        self.grow_zeros(len);
        self.inner.merge_batch(states, &self.zeros[..len], 1)
    }
}

/// A Minim aggregate's `AggregateUDFImpl` type: its signature is user-defined (each
/// function coerces its own arguments) and immutable.
macro_rules! udaf_type {
    ($udaf:ident) => {
        #[derive(Debug, PartialEq, Eq, Hash)]
        pub(super) struct $udaf {
            signature: Signature,
        }

        impl $udaf {
            pub fn new() -> Self {
                Self {
                    signature: Signature::user_defined(Volatility::Immutable),
                }
            }
        }
    };
}
pub(super) use udaf_type;

/// The `AggregateUDFImpl` methods every Minim aggregate shares: its SQL name `$name`, the
/// signature of [`udaf_type`], its groups accumulator `$groups` (built by
/// `$groups::new(&args)`), the row accumulator that wraps it in [`SingleGroup`], and no
/// sensitivity to input order.
macro_rules! groups_accumulator_methods {
    ($name:expr, $groups:ty) => {
        fn name(&self) -> &str {
            $name
        }

        fn signature(&self) -> &Signature {
            &self.signature
        }

        fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
            Ok(Box::new(SingleGroup::new(<$groups>::new(&args)?)))
        }

        fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
            true
        }

        fn create_groups_accumulator(
            &self,
            args: AccumulatorArgs,
        ) -> Result<Box<dyn GroupsAccumulator>> {
            Ok(Box::new(<$groups>::new(&args)?))
        }

        fn order_sensitivity(&self) -> AggregateOrderSensitivity {
            AggregateOrderSensitivity::Insensitive
        }
    };
}
pub(super) use groups_accumulator_methods;
