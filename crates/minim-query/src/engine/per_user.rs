//! Per-user aggregation without DataFusion's general group table. Funnels, retention
//! and unique users aggregate per user ([`super::filter::Exprs::per_user`]): millions of
//! groups keyed by the 128-bit user key, so finding a row's group is a cache miss, and
//! DataFusion's primitive group table takes up to three per row (control bytes, the
//! (group, hash) bucket, the stored value). [`UserGroups`] keeps the key and group in one
//! slot and probes from the key's own low bits (the keys are hashes under a per-process
//! seed: uniform, and nobody can choose them). Segments are sorted by event, then user,
//! so a user's rows of an event arrive in runs (~4 rows of `$pageview` a day on `minim gen`
//! data); a row with the key of the row before takes its group without a probe.
//!
//! [`PerUserRule`] swaps an `AggregateExec` that aggregates partitioned rows in one stage
//! (`one_stage.rs`) grouped by the user key column alone for [`PerUserExec`], which feeds
//! the same groups accumulators with the same group numbers and returns the same schema;
//! only the group lookup differs, so answers cannot.
//!
//! The same exec replaces the partial stage of an aggregation grouped by one text column
//! (a trend's breakdown value): [`TextGroups`] numbers the values. Breakdown values repeat
//! in runs too (a user's country), and a short value (up to 12 bytes: countries,
//! browsers, plans) lives whole in its string view, so a run takes its group without a
//! look-up and a new short value is found by its view alone, never by hashing its text.
//! Its output is the partial stage's (value, accumulator states) rows, which DataFusion's
//! final stage merges as before.

use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Decimal128Array, RecordBatch};
use arrow::datatypes::{Decimal128Type, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{Distribution, EquivalenceProperties, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties, SendableRecordBatchStream,
};
use futures::StreamExt;

use super::filter::USER_COLUMN;
use super::udf::USER_KEY_TYPE;

/// The rule's name, as DataFusion lists it.
pub const PER_USER_RULE: &str = "minim_per_user_aggregation";

/// Group numbers of user keys (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct UserGroups {
    /// A power of two long (or empty); `group` 0 marks a free slot.
    slots: Vec<Slot>,
    /// The keys in group order (0 at the NULL key's group).
    keys: Vec<i128>,
    null_group: Option<usize>,
    /// Scratch for `intern`: each run's first row.
    starts: Vec<usize>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    lo: u64,
    hi: u64,
    /// Group number plus one.
    group: u32,
}

/// How many runs ahead of its probe `intern` prefetches a slot.
const PROBE_AHEAD: usize = 8;

/// Most groups a slot can number.
const MAX_GROUPS: usize = u32::MAX as usize - 1;

impl UserGroups {
    /// Makes room for `more` new keys at a load of at most 3/4.
    fn reserve(&mut self, more: usize) -> Result<()> {
        let wanted = self.keys.len().saturating_add(more);
        if wanted > MAX_GROUPS {
            return Err(DataFusionError::ResourcesExhausted(
                "more than 2^32 users in one aggregation".into(),
            ));
        }
        if wanted.saturating_mul(4) <= self.slots.len().saturating_mul(3) {
            return Ok(());
        }
        let len = (wanted.saturating_mul(4) / 3 + 1)
            .next_power_of_two()
            .max(1024);
        let mut slots = vec![Slot::default(); len];
        let mask = len - 1;
        // Old slots in order: each lands near its old index or that plus the old length,
        // so the new table is written in two nearly sequential sweeps (re-inserting keys
        // in group order would be a cache miss each).
        for old in self.slots.iter().filter(|s| s.group != 0) {
            let mut at = old.lo as usize & mask;
            while slots.get(at).is_some_and(|s| s.group != 0) {
                at = (at + 1) & mask;
            }
            if let Some(s) = slots.get_mut(at) {
                *s = *old;
            }
        }
        self.slots = slots;
        Ok(())
    }

    /// The group of every key in `keys`, numbering new keys from `len()` on.
    ///
    /// A user's rows come in runs (segments are sorted by event, then user; several events
    /// per day): a run is probed once, for its first row. Probes miss the cache (the table
    /// is far larger than it), so the runs are found first ([`super::run_starts`], without
    /// a branch per row) and each probe prefetches the slot of
    /// the run [`PROBE_AHEAD`] runs later: those misses overlap instead of waiting in turn.
    pub(crate) fn intern(&mut self, keys: &Decimal128Array, groups: &mut Vec<usize>) -> Result<()> {
        groups.clear();
        groups.reserve(keys.len());
        self.reserve(keys.len())?;
        let mask = self.slots.len() - 1;
        let mut scratch = std::mem::take(&mut self.starts);
        let values = keys.values();
        let nulls = keys.nulls().filter(|n| n.null_count() > 0);
        let key_at = |i: usize| match nulls {
            Some(n) if n.is_null(i) => None,
            _ => values.get(i).copied(),
        };
        let starts = super::run_starts(values, nulls, &mut scratch);
        for (r, &start) in starts.iter().enumerate() {
            if let Some(&ahead) = starts.get(r + PROBE_AHEAD)
                && let Some(ahead) = key_at(ahead)
                && let Some(slot) = self.slots.get(halves(ahead).0 as usize & mask)
            {
                super::prefetch(slot);
            }
            let g = match key_at(start) {
                Some(key) => self.probe(key, mask)?,
                None => {
                    let next = self.keys.len();
                    let g = *self.null_group.get_or_insert(next);
                    if g == next {
                        self.keys.push(0);
                    }
                    g
                }
            };
            let end = starts.get(r + 1).copied().unwrap_or(keys.len());
            // Runs cover the rows in order.
            groups.extend(std::iter::repeat_n(g, end.saturating_sub(start)));
        }
        self.starts = scratch;
        Ok(())
    }

    /// The group of `key`, numbering it `len()` if it is new (`reserve` made room).
    #[inline]
    fn probe(&mut self, key: i128, mask: usize) -> Result<usize> {
        let (lo, hi) = halves(key);
        let mut at = lo as usize & mask;
        loop {
            let Some(slot) = self.slots.get_mut(at) else {
                return Err(DataFusionError::Internal("user group table is full".into()));
            };
            if slot.group == 0 {
                let g = self.keys.len();
                *slot = Slot {
                    lo,
                    hi,
                    group: g as u32 + 1,
                };
                self.keys.push(key);
                return Ok(g);
            }
            if slot.lo == lo && slot.hi == hi {
                return Ok(slot.group as usize - 1);
            }
            at = (at + 1) & mask;
        }
    }
}

/// Numbers the groups of one key column for [`Aggregation`].
trait GroupKeys: Default + Send {
    /// The group of every row of `keys`, numbering new keys from `len()` on.
    fn intern_array(&mut self, keys: &ArrayRef, groups: &mut Vec<usize>) -> Result<()>;
    fn groups(&self) -> usize;
    /// Heap bytes held.
    fn bytes(&self) -> usize;
    /// The keys of all groups, in group order.
    fn into_column(self) -> Result<ArrayRef>;
}

impl GroupKeys for UserGroups {
    fn intern_array(&mut self, keys: &ArrayRef, groups: &mut Vec<usize>) -> Result<()> {
        let keys = keys
            .as_primitive_opt::<Decimal128Type>()
            .ok_or_else(|| DataFusionError::Internal("the user key is not a key".into()))?;
        self.intern(keys, groups)
    }

    fn groups(&self) -> usize {
        self.keys.len()
    }

    fn bytes(&self) -> usize {
        self.slots.capacity() * size_of::<Slot>()
            + self.keys.capacity() * size_of::<i128>()
            + self.starts.capacity() * size_of::<usize>()
    }

    fn into_column(self) -> Result<ArrayRef> {
        let (precision, scale) = match USER_KEY_TYPE {
            arrow::datatypes::DataType::Decimal128(p, s) => (p, s),
            _ => (38, 0),
        };
        let nulls = self.null_group.map(|at| {
            let mut valid = vec![true; self.keys.len()];
            if let Some(v) = valid.get_mut(at) {
                *v = false;
            }
            arrow::buffer::NullBuffer::from(valid)
        });
        Ok(Arc::new(
            Decimal128Array::new(self.keys.into(), nulls)
                .with_precision_and_scale(precision, scale)?,
        ))
    }
}

/// Group numbers of text values (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct TextGroups {
    /// Values of up to 12 bytes, by their view (length and the bytes, zero-padded).
    short: hashbrown::HashMap<u128, usize>,
    long: hashbrown::HashMap<Box<[u8]>, usize>,
    /// The values in group order (`None` at the NULL group).
    values: Vec<Option<Box<str>>>,
    value_bytes: usize,
    null_group: Option<usize>,
    /// A direct-mapped cache in front of `short`: (value's view, group) by a multiplicative
    /// hash of the view. Breakdown values are few (countries, browsers), so a new run's
    /// value is nearly always here: a multiply and one compare instead of hashing the
    /// view and probing the map. Empty slots hold [`NO_VIEW`], which no short value's view
    /// equals (its length field is above [`INLINE_MAX`]).
    recent: Vec<(u128, usize)>,
}

/// The longest value a string view holds whole.
const INLINE_MAX: u32 = 12;

/// The bits of a string view that hold a value of `len` bytes (up to [`INLINE_MAX`]):
/// the length and the value, not the padding after it.
const SHORT_MASKS: [u128; INLINE_MAX as usize + 1] = {
    let mut masks = [0u128; INLINE_MAX as usize + 1];
    let mut len = 0;
    while len <= INLINE_MAX as usize {
        masks[len] = u128::MAX >> (8 * (INLINE_MAX as usize - len));
        len += 1;
    }
    masks
};

/// A string view's value with the padding cleared, if the value is short enough to be
/// inside the view: two such views are equal exactly when their values are.
#[inline]
pub(crate) fn inline_value(view: u128) -> Option<u128> {
    SHORT_MASKS
        .get(view as u32 as usize)
        .map(|mask| view & mask)
}

/// Slots of [`TextGroups::recent`] (a power of two).
const RECENT_SLOTS: usize = 256;

const NO_VIEW: u128 = u128::MAX;

/// The [`TextGroups::recent`] slot of a short value's view.
#[inline]
fn recent_slot(view: u128) -> usize {
    let folded = (view as u64) ^ ((view >> 64) as u64);
    (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - RECENT_SLOTS.trailing_zeros())) as usize
}

impl TextGroups {
    /// The group of each row of `keys`, numbering new values from `len()` on.
    pub(crate) fn intern(
        &mut self,
        keys: &arrow::array::StringViewArray,
        groups: &mut Vec<usize>,
    ) -> Result<()> {
        groups.clear();
        groups.reserve(keys.len());
        if self.recent.is_empty() {
            self.recent = vec![(NO_VIEW, 0); RECENT_SLOTS];
        }
        let nulls = keys.nulls().filter(|n| n.null_count() > 0);
        // The previous long value and its group: runs of one reuse it without hashing.
        let mut last_long: Option<(u128, usize)> = None;
        for (i, &view) in keys.views().iter().enumerate() {
            if nulls.is_some_and(|n| n.is_null(i)) {
                let next = self.values.len();
                let g = *self.null_group.get_or_insert(next);
                if g == next {
                    self.values.push(None);
                }
                groups.push(g);
                continue;
            }
            let len = view as u32;
            let g = if len <= INLINE_MAX {
                // The length and the value, without whatever a writer left in the
                // padding (the format says zeros; equal values must meet anyway). Every
                // row asks the cache, run or not: the hit is predictable, while "same as
                // the row before" is not (runs are a few rows long).
                let short = view & SHORT_MASKS[len as usize];
                let slot = recent_slot(short);
                match self.recent[slot] {
                    (v, g) if v == short => g,
                    _ => self.short_miss(short, slot, keys.value(i)),
                }
            } else if let Some((v, g)) = last_long
                && v == view
            {
                g
            } else {
                let text = keys.value(i);
                let g = match self.long.get(text.as_bytes()) {
                    Some(&g) => g,
                    None => {
                        let g = self.push_value(text);
                        self.long.insert(text.as_bytes().into(), g);
                        // The map's copy.
                        self.value_bytes += text.len();
                        g
                    }
                };
                last_long = Some((view, g));
                g
            };
            groups.push(g);
        }
        Ok(())
    }

    /// The group of a short value missing from the cache (`short` its masked view),
    /// numbering it if it is new; the cache's `slot` then holds it.
    #[cold]
    fn short_miss(&mut self, short: u128, slot: usize, value: &str) -> usize {
        let g = match self.short.get(&short) {
            Some(&g) => g,
            None => {
                let g = self.push_value(value);
                self.short.insert(short, g);
                g
            }
        };
        self.recent[slot] = (short, g);
        g
    }

    fn push_value(&mut self, value: &str) -> usize {
        self.value_bytes += value.len();
        self.values.push(Some(value.into()));
        self.values.len() - 1
    }
}

impl GroupKeys for TextGroups {
    fn intern_array(&mut self, keys: &ArrayRef, groups: &mut Vec<usize>) -> Result<()> {
        let keys = keys
            .as_string_view_opt()
            .ok_or_else(|| DataFusionError::Internal("the group key is not text".into()))?;
        self.intern(keys, groups)
    }

    fn groups(&self) -> usize {
        self.values.len()
    }

    fn bytes(&self) -> usize {
        self.value_bytes
            + self.values.capacity() * size_of::<Option<Box<str>>>()
            + self.short.capacity() * (size_of::<(u128, usize)>() + 1)
            + self.recent.capacity() * size_of::<(u128, usize)>()
            + self.long.capacity() * (size_of::<(Box<[u8]>, usize)>() + 1)
    }

    fn into_column(self) -> Result<ArrayRef> {
        Ok(Arc::new(arrow::array::StringViewArray::from_iter(
            self.values.iter().map(|v| v.as_deref()),
        )))
    }
}

#[inline]
fn halves(key: i128) -> (u64, u64) {
    let bits = key as u128;
    (bits as u64, (bits >> 64) as u64)
}

/// What a [`PerUserExec`] groups by and returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The user key, rows partitioned by it: one row per user, the key then each
    /// aggregate's value.
    PerUser,
    /// A text column, rows as they come (a partial stage): one row per value, the value
    /// then each aggregate's state.
    PartialByText,
}

/// Aggregates rows grouped by one key column (see the module docs and [`Kind`]).
#[derive(Debug)]
pub(crate) struct PerUserExec {
    kind: Kind,
    input: Arc<dyn ExecutionPlan>,
    key: Arc<dyn PhysicalExpr>,
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
    /// Each aggregate's arguments as evaluated: its expressions, with comparisons of
    /// `event` as `event_filter.rs` answers them (a constant for a one-event batch).
    args: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    properties: Arc<PlanProperties>,
}

impl PerUserExec {
    fn new(
        kind: Kind,
        input: Arc<dyn ExecutionPlan>,
        key: Arc<dyn PhysicalExpr>,
        aggregates: Vec<Arc<AggregateFunctionExpr>>,
        args: Vec<Vec<Arc<dyn PhysicalExpr>>>,
        filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
        schema: SchemaRef,
    ) -> Self {
        let partitions = input.output_partitioning().partition_count();
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Self {
            kind,
            input,
            key,
            aggregates,
            args,
            filters,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for PerUserExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let names: Vec<&str> = self.aggregates.iter().map(|a| a.name()).collect();
        write!(
            f,
            "{}: key={}, aggr=[{}]",
            self.name(),
            self.key,
            names.join(", ")
        )
    }
}

impl ExecutionPlan for PerUserExec {
    fn name(&self) -> &str {
        match self.kind {
            Kind::PerUser => "PerUserExec",
            Kind::PartialByText => "PartialByTextExec",
        }
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![match self.kind {
            Kind::PerUser => Distribution::KeyPartitioned(vec![Arc::clone(&self.key)]),
            Kind::PartialByText => Distribution::UnspecifiedDistribution,
        }]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![true]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        let mut exprs = vec![Arc::clone(&self.key)];
        for a in &self.args {
            exprs.extend(a.iter().cloned());
        }
        exprs.extend(self.filters.iter().flatten().cloned());
        for e in &exprs {
            if f(e)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [input] = <[_; 1]>::try_from(children)
            .map_err(|_| DataFusionError::Internal("PerUserExec has one input".into()))?;
        Ok(Arc::new(Self::new(
            self.kind,
            input,
            Arc::clone(&self.key),
            self.aggregates.clone(),
            self.args.clone(),
            self.filters.clone(),
            self.schema(),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, Arc::clone(&context))?;
        let job = Aggregation {
            kind: self.kind,
            key: Arc::clone(&self.key),
            aggregates: self.aggregates.clone(),
            args: self.args.clone(),
            filters: self.filters.clone(),
            schema: self.schema(),
        };
        let batch_size = context.session_config().batch_size().max(1);
        let reservation = MemoryConsumer::new(format!("{}[{partition}]", self.name()))
            .register(context.memory_pool());
        let out = futures::stream::once(async move {
            let result = match job.kind {
                Kind::PerUser => job.run::<UserGroups>(input, &reservation).await,
                Kind::PartialByText => job.run::<TextGroups>(input, &reservation).await,
            };
            drop(reservation);
            result
        })
        .map(move |result| match result {
            Ok(batch) => {
                let slices: Vec<Result<RecordBatch>> = (0..batch.num_rows())
                    .step_by(batch_size)
                    .map(|at| Ok(batch.slice(at, batch_size.min(batch.num_rows() - at))))
                    .collect();
                futures::stream::iter(slices)
            }
            Err(e) => futures::stream::iter(vec![Err(e)]),
        })
        .flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema(), out)))
    }
}

/// One partition's aggregation.
struct Aggregation {
    kind: Kind,
    key: Arc<dyn PhysicalExpr>,
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
    args: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    schema: SchemaRef,
}

impl Aggregation {
    async fn run<K: GroupKeys>(
        self,
        mut input: SendableRecordBatchStream,
        reservation: &datafusion::execution::memory_pool::MemoryReservation,
    ) -> Result<RecordBatch> {
        let mut accumulators: Vec<Box<dyn GroupsAccumulator>> = self
            .aggregates
            .iter()
            .map(|a| a.create_groups_accumulator())
            .collect::<Result<_>>()?;
        let mut keys = K::default();
        let mut groups = Vec::new();
        let mut constants: Vec<Vec<Constant>> = self
            .args
            .iter()
            .map(|args| vec![Constant::default(); args.len() + 1])
            .collect();
        while let Some(batch) = input.next().await {
            let batch = batch?;
            let rows = batch.num_rows();
            let key = self.key.evaluate(&batch)?.into_array(rows)?;
            keys.intern_array(&key, &mut groups)?;
            for (((acc, args), filter), constants) in accumulators
                .iter_mut()
                .zip(&self.args)
                .zip(&self.filters)
                .zip(&mut constants)
            {
                let values: Vec<ArrayRef> = args
                    .iter()
                    .zip(constants.iter_mut())
                    .map(|(e, c)| c.array(e.evaluate(&batch)?, rows))
                    .collect::<Result<_>>()?;
                let filter = match (filter, constants.last_mut()) {
                    (Some(f), Some(c)) => Some(c.array(f.evaluate(&batch)?, rows)?),
                    _ => None,
                };
                let filter = match &filter {
                    Some(f) => Some(f.as_boolean_opt().ok_or_else(|| {
                        DataFusionError::Internal("an aggregate filter is not BOOLEAN".into())
                    })?),
                    None => None,
                };
                acc.update_batch(&values, &groups, filter, keys.groups())?;
            }
            let held = keys.bytes() + accumulators.iter().map(|a| a.size()).sum::<usize>();
            reservation.try_resize(held)?;
        }
        let mut columns = vec![keys.into_column()?];
        for acc in &mut accumulators {
            match self.kind {
                Kind::PerUser => columns.push(acc.evaluate(EmitTo::All)?),
                Kind::PartialByText => columns.extend(acc.state(EmitTo::All)?),
            }
        }
        Ok(RecordBatch::try_new(self.schema, columns)?)
    }
}

/// The last constant an argument evaluated to, as an array of at least a batch's rows:
/// literal arguments (a funnel's window, a bucket width) and conditions that are constant
/// on a one-event batch (`event_filter.rs`) take a slice of it instead of a new array of
/// the batch's length each batch.
#[derive(Debug, Clone, Default)]
struct Constant {
    value: Option<(datafusion::common::ScalarValue, ArrayRef)>,
}

impl Constant {
    /// `value` as an array of `rows`.
    fn array(
        &mut self,
        value: datafusion::logical_expr::ColumnarValue,
        rows: usize,
    ) -> Result<ArrayRef> {
        let scalar = match value {
            datafusion::logical_expr::ColumnarValue::Array(a) => return Ok(a),
            datafusion::logical_expr::ColumnarValue::Scalar(s) => s,
        };
        match &self.value {
            Some((held, array)) if *held == scalar && array.len() >= rows => {
                Ok(array.slice(0, rows))
            }
            _ => {
                let array = scalar.to_array_of_size(rows.max(CONSTANT_ROWS))?;
                let out = array.slice(0, rows);
                self.value = Some((scalar, array));
                Ok(out)
            }
        }
    }
}

/// Rows of a [`Constant`]'s array, at least (DataFusion's default batch size).
const CONSTANT_ROWS: usize = 8192;

#[derive(Debug, Default)]
pub(crate) struct PerUserRule;

impl PhysicalOptimizerRule for PerUserRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let config = Arc::new(config.clone());
        super::rewrite_plan(plan, |node| keyed_aggregation(node, &config))
    }

    fn name(&self) -> &str {
        PER_USER_RULE
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A one-stage (`SinglePartitioned`) aggregation grouped by the user key column alone, as
/// a [`PerUserExec`] of [`Kind::PerUser`]; the partial stage of one grouped by a text
/// (`Utf8View`) column whose functions need no order or distinct values, as one of
/// [`Kind::PartialByText`]. Either way every function has a groups accumulator.
fn keyed_aggregation(
    node: &Arc<dyn ExecutionPlan>,
    config: &Arc<ConfigOptions>,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(agg) = node.downcast_ref::<AggregateExec>() else {
        return Ok(None);
    };
    let group_by = agg.group_expr();
    let [(key, _)] = group_by.expr() else {
        return Ok(None);
    };
    if !group_by.is_single()
        || agg.limit_options().is_some()
        || agg.aggr_expr().is_empty()
        || !agg
            .aggr_expr()
            .iter()
            .all(|a| a.groups_accumulator_supported())
    {
        return Ok(None);
    }
    let input_schema = agg.input().schema();
    let kind = match agg.mode() {
        AggregateMode::SinglePartitioned
            if key.downcast_ref::<Column>().is_some_and(|c| {
                c.name() == USER_COLUMN
                    && input_schema
                        .fields()
                        .get(c.index())
                        .is_some_and(|f| f.data_type() == &USER_KEY_TYPE)
            }) =>
        {
            Kind::PerUser
        }
        AggregateMode::Partial
            if key.data_type(&input_schema)? == arrow::datatypes::DataType::Utf8View
                && agg
                    .aggr_expr()
                    .iter()
                    .all(|a| a.order_bys().is_empty() && !a.is_distinct()) =>
        {
            Kind::PartialByText
        }
        _ => return Ok(None),
    };
    let args = agg
        .aggr_expr()
        .iter()
        .map(|a| {
            a.expressions()
                .into_iter()
                .map(|e| super::event_filter::with_event_in(e, &input_schema, config))
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<_>>()?;
    Ok(Some(Arc::new(PerUserExec::new(
        kind,
        Arc::clone(agg.input()),
        Arc::clone(key),
        agg.aggr_expr().to_vec(),
        args,
        agg.filter_expr().to_vec(),
        agg.schema(),
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(values: &[Option<i128>]) -> Decimal128Array {
        values.iter().copied().collect()
    }

    #[test]
    fn constant_arguments_reuse_one_array_until_the_value_or_size_changes() {
        use datafusion::common::ScalarValue;
        use datafusion::logical_expr::ColumnarValue;
        let mut c = Constant::default();
        let seven = || ColumnarValue::Scalar(ScalarValue::Int64(Some(7)));
        let a = c.array(seven(), 100).unwrap();
        let b = c.array(seven(), 8192).unwrap();
        assert_eq!((a.len(), b.len()), (100, 8192));
        let values = |x: &ArrayRef| x.as_primitive::<arrow::datatypes::Int64Type>().clone();
        assert!(values(&b).values().iter().all(|&v| v == 7));
        // One buffer behind both: the second batch sliced the first one's array.
        assert_eq!(values(&a).values().as_ptr(), values(&b).values().as_ptr());
        // A larger batch, a NULL, another value: new arrays, right values.
        let big = c.array(seven(), 10_000).unwrap();
        assert_eq!(big.len(), 10_000);
        assert!(values(&big).values().iter().all(|&v| v == 7));
        let null = c
            .array(ColumnarValue::Scalar(ScalarValue::Int64(None)), 5)
            .unwrap();
        assert_eq!((null.len(), null.null_count()), (5, 5));
        let eight = c
            .array(ColumnarValue::Scalar(ScalarValue::Int64(Some(8))), 3)
            .unwrap();
        assert_eq!(values(&eight).values().as_ref(), &[8, 8, 8]);
        // Arrays pass through untouched.
        let given: ArrayRef = Arc::new(arrow::array::Int64Array::from(vec![1, 2]));
        let out = c
            .array(ColumnarValue::Array(Arc::clone(&given)), 2)
            .unwrap();
        assert!(Arc::ptr_eq(&given, &out));
    }

    #[test]
    fn keys_get_dense_groups_in_order_of_arrival_across_growth() {
        let mut users = UserGroups::default();
        let mut groups = Vec::new();
        // Keys whose low halves collide (probing) and many more than the first table.
        let all: Vec<i128> = (0..5_000i128)
            .map(|i| (i << 64) | (i % 7) | ((i % 3) << 40))
            .collect();
        let mut seen = std::collections::HashMap::new();
        for chunk in all.chunks(700).chain(all.chunks(1_300)) {
            let batch = keys(&chunk.iter().map(|&k| Some(k)).collect::<Vec<_>>());
            users.intern(&batch, &mut groups).unwrap();
            for (&k, &g) in chunk.iter().zip(&groups) {
                let next = seen.len();
                assert_eq!(*seen.entry(k).or_insert(next), g, "key {k}");
            }
        }
        assert_eq!(users.groups(), 5_000);
        let column = users.into_column().unwrap();
        let column = column.as_primitive::<Decimal128Type>();
        for (k, &g) in &seen {
            assert_eq!(column.value(g), *k);
        }
    }

    #[test]
    fn runs_of_a_key_share_its_group() {
        let mut users = UserGroups::default();
        let mut groups = Vec::new();
        let batch = keys(&[5, 5, 5, 7, 7, 5, 9].map(Some));
        users.intern(&batch, &mut groups).unwrap();
        assert_eq!(groups, vec![0, 0, 0, 1, 1, 0, 2]);
        users
            .intern(&keys(&[Some(9), Some(9), Some(5)]), &mut groups)
            .unwrap();
        assert_eq!(groups, vec![2, 2, 0]);
    }

    #[test]
    fn null_keys_share_one_group() {
        let mut users = UserGroups::default();
        let mut groups = Vec::new();
        users
            .intern(
                &keys(&[None, Some(5), None, Some(5), Some(-1)]),
                &mut groups,
            )
            .unwrap();
        assert_eq!(groups, vec![0, 1, 0, 1, 2]);
        assert_eq!(users.groups(), 3);
        let column = users.into_column().unwrap();
        assert!(column.is_null(0));
        assert!(column.is_valid(1));
    }
    #[test]
    fn text_values_get_one_group_each_however_their_views_are_laid_out() {
        let long_a = "a value longer than twelve bytes";
        let long_b = "a value longer than twelve bytez";
        let values = [
            Some("US"),
            Some("US"),
            Some(long_a),
            None,
            Some("DE"),
            Some(long_a),
            Some("US"),
            Some(long_b),
            Some(""),
            None,
            Some("twelve bytes"),
            Some("twelve bytes"),
        ];
        let separate = arrow::array::StringViewArray::from(values.to_vec());
        let mut shared = arrow::array::StringViewBuilder::new().with_deduplicate_strings();
        values.iter().for_each(|v| shared.append_option(*v));
        let mut groups = Vec::new();
        for array in [separate, shared.finish()] {
            let mut text = TextGroups::default();
            // Twice: the second time every value is known.
            for _ in 0..2 {
                text.intern(&array, &mut groups).unwrap();
                assert_eq!(groups, vec![0, 0, 1, 2, 3, 1, 0, 4, 5, 2, 6, 6]);
            }
            assert_eq!(text.groups(), 7);
            let column = text.into_column().unwrap();
            let column = column.as_string_view();
            let got: Vec<Option<&str>> = column.iter().collect();
            assert_eq!(
                got,
                vec![
                    Some("US"),
                    Some(long_a),
                    None,
                    Some("DE"),
                    Some(long_b),
                    Some(""),
                    Some("twelve bytes")
                ]
            );
        }
    }

    proptest::proptest! {
        /// Many more distinct values than the recent-value cache has slots (so slots are
        /// shared and overwritten), short and long, NULLs, runs: groups number the values
        /// by first appearance, across batches.
        #[test]
        fn text_groups_number_values_by_first_appearance(
            batches in proptest::collection::vec(
                proptest::collection::vec(
                    (proptest::option::weighted(0.95, 0..700usize), 1..4usize),
                    0..300,
                ),
                1..4,
            ),
        ) {
            let text_of = |i: usize| {
                if i.is_multiple_of(7) {
                    format!("a long value, number {i:04}")
                } else {
                    format!("v{i}")
                }
            };
            let mut text = TextGroups::default();
            let mut seen: Vec<Option<String>> = Vec::new();
            let mut groups = Vec::new();
            for batch in batches {
                let rows: Vec<Option<String>> = batch
                    .iter()
                    .flat_map(|&(v, run)| std::iter::repeat_n(v.map(text_of), run))
                    .collect();
                let array = arrow::array::StringViewArray::from(
                    rows.iter().map(|r| r.as_deref()).collect::<Vec<_>>(),
                );
                text.intern(&array, &mut groups).unwrap();
                let want: Vec<usize> = rows
                    .iter()
                    .map(|r| match seen.iter().position(|s| s == r) {
                        Some(g) => g,
                        None => {
                            seen.push(r.clone());
                            seen.len() - 1
                        }
                    })
                    .collect();
                proptest::prop_assert_eq!(&groups, &want);
            }
            let column = text.into_column().unwrap();
            let got: Vec<Option<String>> = column
                .as_string_view()
                .iter()
                .map(|v| v.map(str::to_owned))
                .collect();
            proptest::prop_assert_eq!(got, seen);
        }
    }
}
