//! Storage and algorithms shared by `window_funnel` and `funnel_chain`.
//!
//! **Storage.** Every input row on which at least one step condition is true (and whose
//! time is not NULL) is kept as one row of flat arrays shared by all groups: time (i64
//! ms), step bitmask (bit `i` = condition `c{i+1}`; a byte for up to 8 steps, else a
//! u32), and for `funnel_chain` the interned breakdown value of first-step rows (u32; 0
//! is NULL). Consecutive rows of one
//! group form a run (group u32, end u32): a user's rows arrive in runs, because segments
//! are sorted by event, then user and time (a run per step event a segment). That is 9 bytes a row (13 with breakdowns) plus 8 a run,
//! with no allocation per row or per group. Rows where no condition holds are dropped on
//! arrival: they cannot be part of any chain.
//!
//! **Emission.** A group with no first-step or no second-step row has level 0 or 1,
//! which a summary of its rows (mask OR, latest first-step time and its breakdown) gives
//! without ordering them; answers take it from that ([`Grouped::short`]) and only the
//! other groups' rows are gathered. The rows of the emitted groups are gathered group by group (a stable
//! counting sort, linear), a range of groups at a time so that the copy is at most an
//! eighth of the stored rows (see [`Grouped`]); each group is sorted by time unless it
//! arrived sorted (a user with rows of one step event in one segment), and scanned
//! once by [`reach`]. `EmitTo::First(n)` also moves the rows kept down and renumbers
//! them, so each call costs time linear in all stored rows; DataFusion uses it for
//! ordered input, where few groups are held at once.
//!
//! **Intermediate state** (multi-phase aggregation): per group, the raw rows as a
//! `LargeList<Struct<ts, mask[, breakdown]>>`; merging appends them. Both answers are
//! functions of the multiset of rows, so partial/final splits cannot change them.

use std::collections::HashMap;
use std::mem::size_of;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, LargeListArray, StringArray, StructArray,
    UInt32Array,
};
use arrow::datatypes::{DataType, Field, Fields, Int64Type, UInt32Type};
use datafusion::error::Result;
use datafusion::logical_expr::EmitTo;
use datafusion::logical_expr::function::AccumulatorArgs;

use super::common::{
    I64Column, UdafError, check_lengths, coerce_condition, coerce_int_constant, coerce_string,
    coerce_time, condition_masks, emit_count, group_u32, i64_column, list_range, literal_i64,
    offsets_i64, vec_bytes,
};

/// Most step conditions a funnel takes (one bit each in a `u32`).
pub(super) const MAX_STEPS: usize = 32;

/// The constant shape of a funnel call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FunnelArgs {
    /// Inclusive: the last step may be exactly `window_ms` after the first.
    pub window_ms: i64,
    /// Number of step conditions, `1..=MAX_STEPS`.
    pub steps: usize,
    /// Whether argument 3 is a breakdown string (`funnel_chain`).
    pub breakdown: bool,
}

impl FunnelArgs {
    /// A one-step funnel with breakdowns and window 0 (for answers on no rows).
    pub const NONE: Self = Self {
        window_ms: 0,
        steps: 1,
        breakdown: true,
    };

    /// Index of the first condition argument.
    fn first_condition(breakdown: bool) -> usize {
        if breakdown { 3 } else { 2 }
    }

    /// Reads the window literal and the number of conditions of a call.
    pub fn from_call(func: &'static str, args: &AccumulatorArgs, breakdown: bool) -> Result<Self> {
        let steps = args
            .exprs
            .len()
            .saturating_sub(Self::first_condition(breakdown));
        if !(1..=MAX_STEPS).contains(&steps) {
            return Err(arg_count(func, breakdown, args.exprs.len()).into());
        }
        let window_ms = literal_i64(
            func,
            args,
            0,
            "window_ms",
            0..=i64::MAX,
            "a non-negative BIGINT literal (milliseconds)",
        )?;
        Ok(Self {
            window_ms,
            steps,
            breakdown,
        })
    }

    /// Bits of the conditions that exist.
    pub fn full_mask(&self) -> u32 {
        if self.steps >= MAX_STEPS {
            u32::MAX
        } else {
            (1u32 << self.steps) - 1
        }
    }
}

fn arg_count(func: &'static str, breakdown: bool, got: usize) -> UdafError {
    UdafError::ArgCount {
        func,
        expected: if breakdown {
            "(window_ms, ts, breakdown, c1[, ..., c32])"
        } else {
            "(window_ms, ts, c1[, ..., c32])"
        },
        got,
    }
}

/// The argument types a funnel call is coerced to.
pub(super) fn coerce_args(
    func: &'static str,
    arg_types: &[DataType],
    breakdown: bool,
) -> Result<Vec<DataType>> {
    let first = FunnelArgs::first_condition(breakdown);
    let steps = arg_types.len().saturating_sub(first);
    if !(1..=MAX_STEPS).contains(&steps) {
        return Err(arg_count(func, breakdown, arg_types.len()).into());
    }
    arg_types
        .iter()
        .enumerate()
        .map(|(i, t)| match i {
            0 => coerce_int_constant(func, 1, "window_ms", t),
            1 => coerce_time(func, 2, t),
            2 if breakdown => coerce_string(func, 3, "breakdown", t),
            _ => coerce_condition(func, i + 1, t),
        })
        .collect()
}

/// The intermediate state's type: per group, its rows.
pub(super) fn state_type(breakdown: bool) -> DataType {
    DataType::LargeList(Arc::new(Field::new_list_field(
        DataType::Struct(state_item_fields(breakdown)),
        false,
    )))
}

fn state_item_fields(breakdown: bool) -> Fields {
    let mut fields = vec![
        Field::new("ts", DataType::Int64, false),
        Field::new("mask", DataType::UInt32, false),
    ];
    if breakdown {
        fields.push(Field::new("breakdown", DataType::Utf8, true));
    }
    Fields::from(fields)
}

/// One stored row of a group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Entry {
    pub ts: i64,
    /// Bit `i`: condition `c{i+1}` is true on the row.
    pub mask: u32,
    /// Interned breakdown value (0: NULL); only meaningful when bit 0 of `mask` is set.
    pub breakdown: u32,
}

/// Distinct breakdown strings, each stored once; id 0 stands for NULL.
#[derive(Debug, Default)]
pub(super) struct Interner {
    values: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32>,
    string_bytes: usize,
}

impl Interner {
    /// The id (`>= 1`) of `s`, adding it if new.
    fn intern(&mut self, func: &'static str, s: &str) -> Result<u32> {
        if let Some(&id) = self.ids.get(s) {
            return Ok(id);
        }
        let id = u32::try_from(self.values.len() + 1).map_err(|_| UdafError::TooLarge {
            func,
            what: "the number of distinct breakdown values",
        })?;
        let value: Arc<str> = Arc::from(s);
        self.string_bytes += s.len();
        self.values.push(value.clone());
        self.ids.insert(value, id);
        Ok(id)
    }

    /// The string of `id`, `None` for 0 (NULL).
    pub fn get(&self, id: u32) -> Option<&str> {
        let index = usize::try_from(id.checked_sub(1)?).ok()?;
        self.values.get(index).map(|s| &**s)
    }

    fn len(&self) -> usize {
        self.values.len()
    }

    fn size(&self) -> usize {
        // Strings with their `Arc` counts, the id list, and the map's slots.
        self.string_bytes
            + self.values.len() * 2 * size_of::<usize>()
            + vec_bytes(&self.values)
            + self.ids.capacity() * (size_of::<(Arc<str>, u32)>() + 1)
    }
}

/// Items per chunk of [`Chunked`] (a power of two).
const CHUNK: usize = 1 << 16;

/// A growable array kept in chunks of [`CHUNK`] items: growing never moves the items,
/// and the capacity beyond the length is under one chunk (a `Vec` grown by doubling can
/// hold twice the items it needs, and three times while it moves them).
#[derive(Debug)]
struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T: Copy> Chunked<T> {
    const fn new() -> Self {
        Self {
            chunks: Vec::new(),
            len: 0,
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn push(&mut self, item: T) {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        if let Some(last) = self.chunks.last_mut() {
            last.push(item);
            self.len += 1;
        }
    }

    fn last_mut(&mut self) -> Option<&mut T> {
        self.chunks.last_mut().and_then(|c| c.last_mut())
    }

    fn last(&self) -> Option<T> {
        self.chunks.last().and_then(|c| c.last()).copied()
    }

    /// Appends `f` of each of `items`, a chunk's room at a time.
    fn extend_mapped<S: Copy>(&mut self, mut items: &[S], f: impl Fn(S) -> T) {
        while !items.is_empty() {
            if self.len.is_multiple_of(CHUNK) {
                self.chunks.push(Vec::with_capacity(CHUNK));
            }
            let Some(last) = self.chunks.last_mut() else {
                return;
            };
            let (now, rest) = items.split_at(CHUNK.saturating_sub(last.len()).min(items.len()));
            last.extend(now.iter().map(|&item| f(item)));
            self.len += now.len();
            items = rest;
        }
    }

    fn get(&self, i: usize) -> Option<T> {
        self.chunks.get(i / CHUNK)?.get(i % CHUNK).copied()
    }

    fn set(&mut self, i: usize, item: T) {
        if let Some(slot) = self
            .chunks
            .get_mut(i / CHUNK)
            .and_then(|c| c.get_mut(i % CHUNK))
        {
            *slot = item;
        }
    }

    /// Items `range`, which must lie in one chunk (see [`chunk_parts`]); empty otherwise.
    fn part(&self, range: std::ops::Range<usize>) -> &[T] {
        let local = range.start % CHUNK;
        self.chunks
            .get(range.start / CHUNK)
            .and_then(|c| c.get(local..local + range.len()))
            .unwrap_or_default()
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flatten()
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.chunks.iter_mut().flatten()
    }

    /// Moves items `from` down to start at `to <= from.start`.
    fn copy_down(&mut self, from: std::ops::Range<usize>, to: usize) {
        for (k, i) in from.enumerate() {
            if let Some(item) = self.get(i) {
                self.set(to + k, item);
            }
        }
    }

    fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        self.chunks.truncate(len.div_ceil(CHUNK));
        if let Some(last) = self.chunks.last_mut() {
            last.truncate(len - (len - 1) / CHUNK * CHUNK);
        }
        self.len = len;
    }

    fn bytes(&self) -> usize {
        vec_bytes(&self.chunks) + self.chunks.iter().map(vec_bytes).sum::<usize>()
    }
}

/// `range` cut at the chunk boundaries of [`Chunked`].
fn chunk_parts(range: std::ops::Range<usize>) -> impl Iterator<Item = std::ops::Range<usize>> {
    let mut start = range.start;
    std::iter::from_fn(move || {
        (start < range.end).then(|| {
            let end = range.end.min((start / CHUNK + 1) * CHUNK);
            let part = start..end;
            start = end;
            part
        })
    })
}

/// Stored step masks: a byte a row for funnels of up to 8 steps, four bytes beyond.
#[derive(Debug)]
enum Masks {
    Narrow(Chunked<u8>),
    Wide(Chunked<u32>),
}

/// No rows (for [`Grouped::empty`]).
static NO_TS: Chunked<i64> = Chunked::new();
static NO_MASKS: Masks = Masks::Wide(Chunked::new());
static NO_BREAKDOWNS: Chunked<u32> = Chunked::new();
static NO_RUNS: Chunked<Run> = Chunked::new();

impl Masks {
    fn for_steps(steps: usize) -> Self {
        if steps <= 8 {
            Self::Narrow(Chunked::new())
        } else {
            Self::Wide(Chunked::new())
        }
    }

    /// Appends `mask`, whose bits are below the funnel's number of steps.
    #[inline]
    fn push(&mut self, mask: u32) {
        match self {
            // Up to 8 steps: only the low 8 bits can be set.
            Self::Narrow(v) => v.push(mask as u8),
            Self::Wide(v) => v.push(mask),
        }
    }

    /// Appends `masks`, whose bits are below the funnel's number of steps.
    fn extend(&mut self, masks: &[u32]) {
        match self {
            Self::Narrow(v) => v.extend_mapped(masks, |m| m as u8),
            Self::Wide(v) => v.extend_mapped(masks, |m| m),
        }
    }

    fn copy_down(&mut self, from: std::ops::Range<usize>, to: usize) {
        match self {
            Self::Narrow(v) => v.copy_down(from, to),
            Self::Wide(v) => v.copy_down(from, to),
        }
    }

    fn truncate(&mut self, len: usize) {
        match self {
            Self::Narrow(v) => v.truncate(len),
            Self::Wide(v) => v.truncate(len),
        }
    }

    /// The same kind, empty.
    fn cleared(&self) -> Self {
        match self {
            Self::Narrow(_) => Self::Narrow(Chunked::new()),
            Self::Wide(_) => Self::Wide(Chunked::new()),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Self::Narrow(v) => v.bytes(),
            Self::Wide(v) => v.bytes(),
        }
    }
}

/// Writes rows `ts[i]`, `masks[i]` (and `breakdowns[i]`, 0 when absent) into `out`.
#[inline]
fn fill_entries<M: Copy + Into<u32>>(
    out: &mut [Entry],
    ts: &[i64],
    masks: &[M],
    breakdowns: &[u32],
) {
    for (i, (slot, (&ts, &mask))) in out.iter_mut().zip(ts.iter().zip(masks)).enumerate() {
        *slot = Entry {
            ts,
            mask: mask.into(),
            breakdown: breakdowns.get(i).copied().unwrap_or(0),
        };
    }
}

/// A maximal stretch of consecutive stored rows of one group: rows
/// `previous run's end..end`.
#[derive(Debug, Clone, Copy)]
struct Run {
    group: u32,
    end: u32,
}

/// Fewest rows [`Grouped`] gathers at once (16 MiB of entries).
const GATHER_MIN_ROWS: usize = 1 << 20;

/// The rows of emitted groups, read group by group in arrival order. They are gathered
/// a range of groups at a time (a stable counting sort of the rows of the runs in the
/// range), so reading all groups needs at most an eighth of the stored rows, or
/// [`GATHER_MIN_ROWS`], again rather than a second copy of them all.
///
/// Built for answers ([`FunnelRows::emit`], [`FunnelRows::peek`]), a group whose rows have no first-step
/// or no second-step condition is answered from a summary of its rows taken in the same
/// pass that counts them ([`Grouped::short`]) and its rows are never gathered: in a
/// typical funnel most users never reach the second step, and gathering their rows
/// (random writes, one cache miss a run) was the largest part of evaluation.
pub(super) struct Grouped<'a> {
    ts: &'a Chunked<i64>,
    masks: &'a Masks,
    breakdowns: &'a Chunked<u32>,
    runs: &'a Chunked<Run>,
    /// Rows of each group (0 for a short group: nothing of it is gathered).
    counts: Vec<u32>,
    /// Per group, its rows summarized (empty unless built for answers).
    summaries: Vec<Summary>,
    /// The funnel's number of steps (for answers).
    steps: usize,
    /// Most rows gathered at once (unless one group has more).
    chunk_rows: usize,
    /// The gathered groups are `first..first + offsets.len() - 1`; group `first + i`'s
    /// rows are `entries[offsets[i]..offsets[i + 1]]`.
    first: usize,
    offsets: Vec<usize>,
    entries: Vec<Entry>,
}

/// How many runs ahead [`Grouped::new`] prefetches a group's summary.
const SUMMARY_AHEAD: usize = 8;

/// What a group's rows say without ordering them: enough to answer a group that never
/// reaches a second step (see [`Grouped::short`]).
#[derive(Debug, Clone, Copy)]
struct Summary {
    /// Rows of the group.
    count: u32,
    /// The OR of the rows' step masks.
    or: u32,
    /// The latest time of a first-step row (meaningful when bit 0 of `or` is set).
    last_first: i64,
    /// The smallest breakdown (NULL first, then byte order) of first-step rows at
    /// `last_first`.
    breakdown: u32,
}

impl Default for Summary {
    fn default() -> Self {
        Self {
            count: 0,
            or: 0,
            last_first: i64::MIN,
            breakdown: 0,
        }
    }
}

impl Summary {
    /// Adds rows `ts[i]`, `masks[i]`, `breakdowns[i]` (0 when absent).
    fn add<M: Copy + Into<u32>>(
        &mut self,
        ts: &[i64],
        masks: &[M],
        breakdowns: &[u32],
        interner: &Interner,
    ) {
        for (i, (&t, &m)) in ts.iter().zip(masks).enumerate() {
            let m: u32 = m.into();
            let had_first = self.or & 1 != 0;
            self.or |= m;
            if m & 1 == 0 || (had_first && t < self.last_first) {
                continue;
            }
            let b = breakdowns.get(i).copied().unwrap_or(0);
            if !had_first || t > self.last_first {
                self.last_first = t;
                self.breakdown = b;
            } else if b != self.breakdown {
                // A tie: the smaller value; `get` is `None` (sorting first) for NULL.
                self.breakdown = if interner.get(b) < interner.get(self.breakdown) {
                    b
                } else {
                    self.breakdown
                };
            }
        }
    }

    /// The answer when the group cannot pass the first step.
    fn short(&self, steps: usize) -> Option<Short> {
        let first = self.or & 1 != 0;
        (!first || steps <= 1 || self.or & 2 == 0).then_some(Short {
            level: usize::from(first),
            start: self.last_first,
            breakdown: self.breakdown,
        })
    }
}

/// The answer of a group with no first-step row (level 0) or no second-step row
/// (level 1: any first-step row is a chain of one step, and [`reach`] keeps the latest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Short {
    /// 0 or 1.
    pub level: usize,
    /// The chain's first-step time (level 1): the latest first-step row's.
    pub start: i64,
    /// The breakdown [`first_breakdown`] picks at `start` (level 1).
    pub breakdown: u32,
}

impl Grouped<'static> {
    /// `n` groups without rows.
    pub fn empty(n: usize) -> Self {
        Grouped::new(&NO_TS, &NO_MASKS, &NO_BREAKDOWNS, &NO_RUNS, n, None)
    }
}

impl<'a> Grouped<'a> {
    /// With `answers` (the number of steps and the breakdown interner), groups that
    /// cannot pass the first step are summarized instead of gathered.
    fn new(
        ts: &'a Chunked<i64>,
        masks: &'a Masks,
        breakdowns: &'a Chunked<u32>,
        runs: &'a Chunked<Run>,
        n: usize,
        answers: Option<(usize, &Interner)>,
    ) -> Self {
        let mut counts = vec![0u32; n];
        let mut summaries = Vec::new();
        match answers {
            None => {
                let mut start = 0;
                for run in runs.iter() {
                    if let Some(c) = counts.get_mut(run.group as usize) {
                        *c += run.end - start;
                    }
                    start = run.end;
                }
            }
            Some((_, interner)) => {
                summaries = vec![Summary::default(); n];
                let mut start = 0;
                for (r, run) in runs.iter().enumerate() {
                    // Runs come in arrival order, groups anywhere: fetch ahead.
                    if let Some(ahead) = runs.get(r + SUMMARY_AHEAD)
                        && let Some(s) = summaries.get(ahead.group as usize)
                    {
                        crate::engine::prefetch(s);
                    }
                    let Some(summary) = summaries.get_mut(run.group as usize) else {
                        start = run.end;
                        continue;
                    };
                    summary.count += run.end - start;
                    for part in chunk_parts(start as usize..run.end as usize) {
                        let (t, b) = (ts.part(part.clone()), breakdowns.part(part.clone()));
                        match masks {
                            Masks::Narrow(m) => summary.add(t, m.part(part), b, interner),
                            Masks::Wide(m) => summary.add(t, m.part(part), b, interner),
                        }
                    }
                    start = run.end;
                }
            }
        }
        let steps = answers.map_or(0, |(steps, _)| steps);
        for (c, summary) in counts.iter_mut().zip(&summaries) {
            // Nothing of a short group is gathered.
            *c = if summary.short(steps).is_some() {
                0
            } else {
                summary.count
            };
        }
        Self {
            ts,
            masks,
            breakdowns,
            runs,
            counts,
            summaries,
            steps,
            chunk_rows: GATHER_MIN_ROWS.max(ts.len() / 8),
            first: 0,
            offsets: vec![0],
            entries: Vec::new(),
        }
    }

    pub fn num_groups(&self) -> usize {
        self.counts.len()
    }

    /// Group `g`'s answer without its rows, when it cannot pass the first step (only
    /// when built for answers; [`Self::group_mut`] is then empty for it).
    pub fn short(&self, g: usize) -> Option<Short> {
        self.summaries.get(g)?.short(self.steps)
    }

    /// Gathers the rows of the groups from `first` on, as many groups as fit in
    /// `chunk_rows` (at least one).
    fn gather_from(&mut self, first: usize) {
        self.first = first;
        self.offsets.clear();
        self.offsets.push(0);
        let mut total = 0;
        for &c in self.counts.get(first..).unwrap_or_default() {
            let c = c as usize;
            if self.offsets.len() > 1 && total + c > self.chunk_rows {
                break;
            }
            total += c;
            self.offsets.push(total);
        }
        let end = first + self.offsets.len() - 1;
        self.entries.clear();
        self.entries.resize(total, Entry::default());
        // Where each group's next row goes; `usize::MAX` for a short group (not gathered).
        let mut next: Vec<usize> = (first..end)
            .zip(&self.offsets)
            .map(|(g, &at)| {
                if self.short(g).is_some() {
                    usize::MAX
                } else {
                    at
                }
            })
            .collect();
        let mut start = 0;
        for run in self.runs.iter() {
            let rows = start..run.end as usize;
            start = run.end as usize;
            let g = run.group as usize;
            if g < first || g >= end {
                continue;
            }
            let Some(at) = next.get_mut(g - first).filter(|at| **at != usize::MAX) else {
                continue;
            };
            for part in chunk_parts(rows) {
                let ts = self.ts.part(part.clone());
                let breakdowns = self.breakdowns.part(part.clone());
                let Some(out) = self.entries.get_mut(*at..*at + ts.len()) else {
                    continue;
                };
                *at += ts.len();
                match self.masks {
                    Masks::Narrow(m) => fill_entries(out, ts, m.part(part), breakdowns),
                    Masks::Wide(m) => fill_entries(out, ts, m.part(part), breakdowns),
                }
            }
        }
    }

    /// Group `g`'s rows in arrival order (empty when out of range). Reading groups in
    /// ascending order gathers each range of groups once.
    pub fn group_mut(&mut self, g: usize) -> &mut [Entry] {
        if g >= self.num_groups() {
            return &mut [];
        }
        let gathered = self.first..self.first + self.offsets.len() - 1;
        if !gathered.contains(&g) {
            self.gather_from(g);
        }
        let i = g - self.first;
        let (start, end) = (self.offsets[i], self.offsets[i + 1]);
        self.entries.get_mut(start..end).unwrap_or_default()
    }
}

/// The funnel rows of every group (see the module docs).
#[derive(Debug)]
pub(super) struct FunnelRows {
    func: &'static str,
    pub args: FunnelArgs,
    /// Stored rows in arrival order, split into runs of one group each.
    runs: Chunked<Run>,
    ts: Chunked<i64>,
    masks: Masks,
    /// Parallel to `ts` with breakdowns, empty without.
    breakdowns: Chunked<u32>,
    interner: Interner,
    num_groups: usize,
    /// Scratch for `update`: a batch's accepted rows before they are appended in bulk.
    batch: Accepted,
}

/// A batch's accepted rows (see [`FunnelRows::update`]).
#[derive(Debug, Default)]
struct Accepted {
    ts: Vec<i64>,
    masks: Vec<u32>,
    breakdowns: Vec<u32>,
    /// Scratch for [`crate::engine::run_starts`].
    starts: Vec<usize>,
}

impl Accepted {
    fn clear(&mut self) {
        self.ts.clear();
        self.masks.clear();
        self.breakdowns.clear();
    }

    fn bytes(&self) -> usize {
        vec_bytes(&self.ts)
            + vec_bytes(&self.masks)
            + vec_bytes(&self.breakdowns)
            + vec_bytes(&self.starts)
    }
}

impl FunnelRows {
    pub fn new(func: &'static str, args: FunnelArgs) -> Self {
        Self {
            func,
            args,
            runs: Chunked::new(),
            ts: Chunked::new(),
            masks: Masks::for_steps(args.steps),
            breakdowns: Chunked::new(),
            interner: Interner::default(),
            num_groups: 0,
            batch: Accepted::default(),
        }
    }

    pub fn ensure_groups(&mut self, total: usize) {
        self.num_groups = self.num_groups.max(total);
    }

    #[inline]
    fn push(&mut self, group: usize, ts: i64, mask: u32, breakdown: u32) -> Result<()> {
        let g = group_u32(self.func, group)?;
        let end = u32::try_from(self.ts.len() + 1).map_err(|_| UdafError::TooLarge {
            func: self.func,
            what: "the number of stored rows",
        })?;
        self.num_groups = self.num_groups.max(group + 1);
        match self.runs.last_mut() {
            Some(run) if run.group == g => run.end = end,
            _ => self.runs.push(Run { group: g, end }),
        }
        self.ts.push(ts);
        self.masks.push(mask);
        if self.args.breakdown {
            self.breakdowns.push(breakdown);
        }
        Ok(())
    }

    /// The breakdown id of a row with step mask `mask`: interned for first-step rows.
    #[inline]
    fn breakdown_id(&mut self, strings: Option<&StringArray>, i: usize, mask: u32) -> Result<u32> {
        match strings {
            Some(s) if mask & 1 != 0 && s.nulls().is_none_or(|n| n.is_valid(i)) => {
                self.interner.intern(self.func, s.value(i))
            }
            _ => Ok(0),
        }
    }

    /// Adds raw input rows (`update_batch`). A batch's accepted rows are collected first
    /// and appended in bulk, and a run of one group's rows costs one run entry: the same
    /// storage as row-by-row [`Self::push`], without its per-row bookkeeping.
    pub fn update(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        let len = group_indices.len();
        check_lengths(self.func, values, len)?;
        self.ensure_groups(total_num_groups);
        let input = read_input(self.func, &self.args, values, filter, len)?;
        let (base, func) = (self.ts.len(), self.func);
        let end = |n: usize| {
            u32::try_from(base + n).map_err(|_| UdafError::TooLarge {
                func,
                what: "the number of stored rows",
            })
        };
        end(len)?;
        let mut batch = std::mem::take(&mut self.batch);
        batch.clear();
        // A funnel without a breakdown passes NULL for it: nothing to look up per row.
        let breakdowns = input.breakdown.filter(|b| b.null_count() < b.len());
        let mut current = self.runs.last().map(|r| r.group);
        // Every row kept is the usual case (the scan passes step events only, and a row
        // with no condition true has mask 0): its runs are found without a branch per row
        // and its columns are appended whole; otherwise the kept rows are collected first.
        let all_kept = input.masks.iter().all(|&m| m != 0);
        if all_kept {
            let mut scratch = std::mem::take(&mut batch.starts);
            for &start in crate::engine::run_starts(group_indices, None, &mut scratch) {
                let g = group_u32(func, group_indices.get(start).copied().unwrap_or(0))?;
                self.open_run(&mut current, g, end(start)?);
            }
            batch.starts = scratch;
            if self.args.breakdown {
                for (i, &mask) in input.masks.iter().enumerate() {
                    let breakdown = self.breakdown_id(breakdowns, i, mask)?;
                    batch.breakdowns.push(breakdown);
                }
            }
        } else {
            for (i, (&g, &mask)) in group_indices.iter().zip(&input.masks).enumerate() {
                if mask == 0 {
                    continue;
                }
                let Some(ts) = input.ts.get(i) else {
                    continue;
                };
                self.open_run(&mut current, group_u32(func, g)?, end(batch.ts.len())?);
                if self.args.breakdown {
                    let breakdown = self.breakdown_id(breakdowns, i, mask)?;
                    batch.breakdowns.push(breakdown);
                }
                batch.ts.push(ts);
                batch.masks.push(mask);
            }
        }
        let (ts, masks): (&[i64], &[u32]) = if all_kept {
            (input.ts.values, &input.masks)
        } else {
            (&batch.ts, &batch.masks)
        };
        // The last run ends with the batch's kept rows.
        let here = end(ts.len())?;
        if let Some(run) = self.runs.last_mut() {
            run.end = here;
        }
        self.ts.extend_mapped(ts, |t| t);
        self.masks.extend(masks);
        self.breakdowns.extend_mapped(&batch.breakdowns, |b| b);
        self.batch = batch;
        Ok(())
    }

    /// Starts a run of group `g` at stored row `here` unless `current` (the group of the
    /// last run) is `g`: the run before ends there.
    #[inline]
    fn open_run(&mut self, current: &mut Option<u32>, g: u32, here: u32) {
        if *current == Some(g) {
            return;
        }
        if let Some(run) = self.runs.last_mut() {
            run.end = here;
        }
        self.runs.push(Run {
            group: g,
            end: here,
        });
        *current = Some(g);
        self.num_groups = self.num_groups.max(g as usize + 1);
    }

    /// Adds the rows of intermediate states (`merge_batch`).
    pub fn merge(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        let func = self.func;
        let bad = |what| UdafError::BadState { func, what };
        let [state] = values else {
            return Err(bad("expected one state column").into());
        };
        let list = state
            .as_list_opt::<i64>()
            .ok_or_else(|| bad("state is not a LargeList"))?;
        if list.len() != group_indices.len() {
            return Err(UdafError::Lengths { func }.into());
        }
        self.ensure_groups(total_num_groups);
        let items = list
            .values()
            .as_struct_opt()
            .ok_or_else(|| bad("state items are not structs"))?;
        let column = |i: usize| items.columns().get(i).ok_or_else(|| bad("missing field"));
        let ts = column(0)?
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| bad("ts is not Int64"))?
            .values();
        let masks = column(1)?
            .as_primitive_opt::<UInt32Type>()
            .ok_or_else(|| bad("mask is not UInt32"))?
            .values();
        let strings = if self.args.breakdown {
            Some(
                column(2)?
                    .as_string_opt::<i32>()
                    .ok_or_else(|| bad("breakdown is not Utf8"))?,
            )
        } else {
            None
        };
        let full = self.args.full_mask();
        let offsets = list.value_offsets();
        for (r, &g) in group_indices.iter().enumerate() {
            if list.is_null(r) {
                continue;
            }
            for k in list_range(offsets, r, items.len()) {
                let (Some(&t), Some(&m)) = (ts.get(k), masks.get(k)) else {
                    continue;
                };
                let mask = m & full;
                if mask == 0 {
                    continue;
                }
                let breakdown = self.breakdown_id(strings, k, mask)?;
                self.push(g, t, mask, breakdown)?;
            }
        }
        Ok(())
    }

    /// Every input row as its own intermediate state (`convert_to_state`).
    pub fn convert_to_state(
        &self,
        values: &[ArrayRef],
        filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let len = values.first().map_or(0, |v| v.len());
        check_lengths(self.func, values, len)?;
        let input = read_input(self.func, &self.args, values, filter, len)?;
        let mut ts = Vec::new();
        let mut masks = Vec::new();
        let mut breakdowns: Vec<Option<&str>> = Vec::new();
        let mut lengths = Vec::with_capacity(len);
        for (i, &mask) in input.masks.iter().enumerate() {
            match input.ts.get(i) {
                Some(t) if mask != 0 => {
                    ts.push(t);
                    masks.push(mask);
                    if let Some(s) = input.breakdown {
                        breakdowns.push((mask & 1 != 0 && s.is_valid(i)).then(|| s.value(i)));
                    }
                    lengths.push(1);
                }
                _ => lengths.push(0),
            }
        }
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(ts)),
            Arc::new(UInt32Array::from(masks)),
        ];
        if self.args.breakdown {
            columns.push(Arc::new(StringArray::from(breakdowns)));
        }
        Ok(vec![state_list(self.args.breakdown, columns, lengths)?])
    }

    /// Takes out the intermediate state of the groups `emit_to` names.
    pub fn emit_state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let breakdown = self.args.breakdown;
        self.emit_groups(emit_to, false, |grouped, interner| {
            Ok(vec![state_array(breakdown, grouped, interner)?])
        })
    }

    /// The rows of the first `n` groups, group by group (stable), keeping the state;
    /// with `answers`, short groups summarized instead (see [`Grouped`]).
    fn grouped(&self, n: usize, answers: bool) -> Grouped<'_> {
        let answers = answers.then_some((self.args.steps, &self.interner));
        Grouped::new(
            &self.ts,
            &self.masks,
            &self.breakdowns,
            &self.runs,
            n,
            answers,
        )
    }

    /// Forgets the rows of the first `n` groups and renumbers the rest from 0.
    fn drop_rows(&mut self, n: usize) {
        if n >= self.num_groups {
            self.runs = Chunked::new();
            self.ts = Chunked::new();
            self.masks = self.masks.cleared();
            self.breakdowns = Chunked::new();
            self.num_groups = 0;
            return;
        }
        let shift = u32::try_from(n).unwrap_or(u32::MAX);
        let with_breakdowns = !self.breakdowns.is_empty();
        let (mut kept_runs, mut kept_rows, mut start) = (0, 0usize, 0usize);
        for r in 0..self.runs.len() {
            let Some(Run { group, end }) = self.runs.get(r) else {
                break;
            };
            let end = end as usize;
            if group >= shift {
                self.ts.copy_down(start..end, kept_rows);
                self.masks.copy_down(start..end, kept_rows);
                if with_breakdowns {
                    self.breakdowns.copy_down(start..end, kept_rows);
                }
                kept_rows += end - start;
                // Fewer rows than before, so the end fits.
                self.runs.set(
                    kept_runs,
                    Run {
                        group: group - shift,
                        end: kept_rows as u32,
                    },
                );
                kept_runs += 1;
            }
            start = end;
        }
        self.runs.truncate(kept_runs);
        self.ts.truncate(kept_rows);
        self.masks.truncate(kept_rows);
        self.breakdowns
            .truncate(if with_breakdowns { kept_rows } else { 0 });
        self.num_groups -= n;
    }

    /// Drops interned strings no remaining row uses, once they dominate.
    fn compact_interner(&mut self) {
        if self.ts.is_empty() {
            self.interner = Interner::default();
            return;
        }
        if self.interner.len() <= 2 * self.breakdowns.len() + 1024 {
            return;
        }
        let old = std::mem::take(&mut self.interner);
        let mut remap = vec![0u32; old.len() + 1];
        for b in self.breakdowns.iter_mut() {
            let Some(slot) = remap.get_mut(*b as usize) else {
                *b = 0;
                continue;
            };
            if *slot == 0
                && let Some(s) = old.get(*b)
            {
                // Fewer values than before, so ids fit.
                *slot = self.interner.intern(self.func, s).unwrap_or(0);
            }
            *b = *slot;
        }
    }

    /// Takes out the groups `emit_to` names: `f` computes the output from their rows
    /// (and the interner their breakdown ids refer to); the rest stays, renumbered.
    /// `f` answers: short groups come summarized ([`Grouped::short`]).
    pub fn emit<R>(
        &mut self,
        emit_to: EmitTo,
        f: impl FnOnce(Grouped<'_>, &Interner) -> Result<R>,
    ) -> Result<R> {
        self.emit_groups(emit_to, true, f)
    }

    fn emit_groups<R>(
        &mut self,
        emit_to: EmitTo,
        answers: bool,
        f: impl FnOnce(Grouped<'_>, &Interner) -> Result<R>,
    ) -> Result<R> {
        let n = emit_count(emit_to, self.num_groups);
        let out = f(self.grouped(n, answers), &self.interner);
        self.drop_rows(n);
        self.compact_interner();
        out
    }

    /// Like [`Self::emit`] for all groups, keeping the state.
    pub fn peek<R>(&self, f: impl FnOnce(Grouped<'_>, &Interner) -> Result<R>) -> Result<R> {
        self.peek_groups(true, f)
    }

    fn peek_groups<R>(
        &self,
        answers: bool,
        f: impl FnOnce(Grouped<'_>, &Interner) -> Result<R>,
    ) -> Result<R> {
        f(self.grouped(self.num_groups, answers), &self.interner)
    }

    /// Bytes held (capacity, not length).
    pub fn size(&self) -> usize {
        size_of::<Self>()
            + self.runs.bytes()
            + self.ts.bytes()
            + self.masks.bytes()
            + self.breakdowns.bytes()
            + self.interner.size()
            + self.batch.bytes()
    }
}

fn state_list(
    breakdown: bool,
    columns: Vec<ArrayRef>,
    lengths: impl IntoIterator<Item = usize>,
) -> Result<ArrayRef> {
    let items = StructArray::try_new(state_item_fields(breakdown), columns, None)?;
    let field = Arc::new(Field::new_list_field(
        DataType::Struct(state_item_fields(breakdown)),
        false,
    ));
    Ok(Arc::new(LargeListArray::try_new(
        field,
        offsets_i64(lengths),
        Arc::new(items),
        None,
    )?))
}

/// The intermediate state of the groups in `grouped`.
fn state_array(breakdown: bool, mut grouped: Grouped<'_>, interner: &Interner) -> Result<ArrayRef> {
    let n = grouped.num_groups();
    let mut ts = Vec::new();
    let mut masks = Vec::new();
    let mut strings: Vec<Option<&str>> = Vec::new();
    let mut lengths = Vec::with_capacity(n);
    for g in 0..n {
        let entries = grouped.group_mut(g);
        lengths.push(entries.len());
        ts.extend(entries.iter().map(|e| e.ts));
        masks.extend(entries.iter().map(|e| e.mask));
        if breakdown {
            strings.extend(entries.iter().map(|e| interner.get(e.breakdown)));
        }
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ts)),
        Arc::new(UInt32Array::from(masks)),
    ];
    if breakdown {
        columns.push(Arc::new(StringArray::from(strings)));
    }
    state_list(breakdown, columns, lengths)
}

/// One input batch, read: times, step masks (0 for rows filtered out or without time),
/// and breakdown strings.
struct Input<'a> {
    ts: I64Column<'a>,
    masks: Vec<u32>,
    breakdown: Option<&'a StringArray>,
}

fn read_input<'a>(
    func: &'static str,
    args: &FunnelArgs,
    values: &'a [ArrayRef],
    filter: Option<&BooleanArray>,
    len: usize,
) -> Result<Input<'a>> {
    let bad = |what| UdafError::BadState { func, what };
    let ts = values.get(1).ok_or_else(|| bad("missing ts"))?;
    let ts = i64_column(func, ts, "ts is not a millisecond timestamp or BIGINT")?;
    let conditions = values
        .get(FunnelArgs::first_condition(args.breakdown)..)
        .filter(|c| c.len() == args.steps)
        .ok_or_else(|| bad("wrong number of conditions"))?;
    let mut masks = condition_masks(func, conditions, len, filter)?;
    if let Some(nulls) = ts.nulls {
        for i in nulls
            .iter()
            .enumerate()
            .filter(|(_, valid)| !valid)
            .map(|(i, _)| i)
        {
            if let Some(m) = masks.get_mut(i) {
                *m = 0;
            }
        }
    }
    let breakdown = if args.breakdown {
        Some(
            values
                .get(2)
                .and_then(|b| b.as_string_opt::<i32>())
                .ok_or_else(|| bad("breakdown is not Utf8"))?,
        )
    } else {
        None
    };
    Ok(Input {
        ts,
        masks,
        breakdown,
    })
}

/// Sorts a group's rows by time, unless they arrived sorted.
pub(super) fn sort_by_time(entries: &mut [Entry]) {
    if !entries.is_sorted_by_key(|e| e.ts) {
        entries.sort_unstable_by_key(|e| e.ts);
    }
}

/// What [`reach`] finds in a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Reach {
    /// The largest `k` of any chain (ClickHouse `windowFunnel`), 0 without a first step.
    pub level: usize,
    /// The latest first-step time of a chain reaching `level` (when `level >= 1`).
    pub start: i64,
}

/// ClickHouse's `windowFunnel` scan over a group's rows sorted by time.
///
/// Rows at the same millisecond are merged (their masks OR-ed) and their steps visited in
/// ascending order, which is ClickHouse's `(timestamp, step)` order. `first[i]` is the
/// latest first-step time of any chain reaching step `i + 1` so far: a step-`i + 1` entry
/// at `t` extends the chains of step `i` when `t <= first[i - 1] + window`, and taking
/// the latest start is optimal for every later step. Without `stop_at_full` the scan
/// goes on after the last step is reached, so `start` is the latest such start overall.
pub(super) fn reach(entries: &[Entry], steps: usize, window_ms: i64, stop_at_full: bool) -> Reach {
    let steps = steps.clamp(1, MAX_STEPS);
    let full = if steps >= MAX_STEPS {
        u32::MAX
    } else {
        (1u32 << steps) - 1
    };
    let last = 1u32 << (steps - 1);
    let mut first = [i64::MIN; MAX_STEPS];
    let mut reached = 0u32;
    let mut i = 0;
    while let Some(head) = entries.get(i) {
        let ts = head.ts;
        let mut mask = 0;
        while let Some(e) = entries.get(i).filter(|e| e.ts == ts) {
            mask |= e.mask;
            i += 1;
        }
        let mut bits = mask & full;
        while bits != 0 {
            let step = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if step == 0 {
                first[0] = ts;
                reached |= 1;
            } else if reached & (1 << (step - 1)) != 0
                && ts <= first[step - 1].saturating_add(window_ms)
            {
                first[step] = first[step - 1];
                reached |= 1 << step;
            }
        }
        if stop_at_full && reached & last != 0 {
            break;
        }
    }
    let level = (u32::BITS - reached.leading_zeros()) as usize;
    Reach {
        level,
        start: level.checked_sub(1).map_or(i64::MIN, |l| first[l]),
    }
}

/// Appends the times of the chain starting at `start`: step 1 at `start`, then each
/// later step at the earliest time of a row with its condition, at or after the previous
/// step and at most `start + window_ms`; stops at the first step with no such row.
pub(super) fn chain_times(
    entries: &[Entry],
    steps: usize,
    window_ms: i64,
    start: i64,
    out: &mut Vec<i64>,
) {
    let deadline = start.saturating_add(window_ms);
    let steps = steps.min(MAX_STEPS);
    out.push(start);
    let mut next = 1;
    let mut i = entries.partition_point(|e| e.ts < start);
    while next < steps {
        let Some(head) = entries.get(i).filter(|e| e.ts <= deadline) else {
            break;
        };
        let ts = head.ts;
        let mut mask = 0;
        while let Some(e) = entries.get(i).filter(|e| e.ts == ts) {
            mask |= e.mask;
            i += 1;
        }
        while next < steps && mask & (1 << next) != 0 {
            out.push(ts);
            next += 1;
        }
    }
}

/// The smallest breakdown value (NULL first, then byte order) of first-step rows at `start`.
pub(super) fn first_breakdown<'a>(
    entries: &[Entry],
    start: i64,
    interner: &'a Interner,
) -> Option<&'a str> {
    let from = entries.partition_point(|e| e.ts < start);
    entries
        .get(from..)
        .unwrap_or_default()
        .iter()
        .take_while(|e| e.ts == start)
        .filter(|e| e.mask & 1 != 0)
        .map(|e| interner.get(e.breakdown))
        .min()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(ts: i64, mask: u32) -> Entry {
        Entry {
            ts,
            mask,
            breakdown: 0,
        }
    }

    fn level(rows: &[Entry], steps: usize, window: i64) -> usize {
        let mut rows = rows.to_vec();
        sort_by_time(&mut rows);
        let stop = reach(&rows, steps, window, true);
        let full = reach(&rows, steps, window, false);
        assert_eq!(stop.level, full.level);
        full.level
    }

    /// Each group's rows as (ts, mask) pairs, in group order.
    fn contents(grouped: &mut Grouped<'_>) -> Vec<Vec<(i64, u32)>> {
        (0..grouped.num_groups())
            .map(|g| {
                grouped
                    .group_mut(g)
                    .iter()
                    .map(|e| (e.ts, e.mask))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn runs_keep_arrival_order_per_group_and_emitting_the_first_renumbers() {
        let args = FunnelArgs {
            window_ms: 10,
            steps: 2,
            breakdown: false,
        };
        let mut rows = FunnelRows::new("test", args);
        for (g, ts) in [
            (0, 1),
            (0, 2),
            (2, 3),
            (1, 4),
            (0, 5),
            (2, 6),
            (2, 7),
            (1, 8),
        ] {
            rows.push(g, ts, 1, 0).unwrap();
        }
        assert_eq!(
            rows.runs.len(),
            6,
            "runs merge consecutive rows of one group"
        );
        let all = rows
            .peek_groups(false, |mut g, _| Ok(contents(&mut g)))
            .unwrap();
        assert_eq!(
            all,
            vec![
                vec![(1, 1), (2, 1), (5, 1)],
                vec![(4, 1), (8, 1)],
                vec![(3, 1), (6, 1), (7, 1)],
            ]
        );
        for chunk_rows in [1, 2, 3, 5] {
            let mut grouped = rows.grouped(3, false);
            grouped.chunk_rows = chunk_rows;
            assert_eq!(
                contents(&mut grouped),
                all,
                "gathered {chunk_rows} rows at a time"
            );
        }
        let first = rows
            .emit_groups(EmitTo::First(1), false, |mut g, _| Ok(contents(&mut g)))
            .unwrap();
        assert_eq!(first, vec![vec![(1, 1), (2, 1), (5, 1)]]);
        let rest = rows
            .peek_groups(false, |mut g, _| Ok(contents(&mut g)))
            .unwrap();
        assert_eq!(
            rest,
            vec![vec![(4, 1), (8, 1)], vec![(3, 1), (6, 1), (7, 1)]]
        );
        assert_eq!(rows.ts.len(), 5, "the emitted group's rows are freed");
        let empty = rows
            .emit_groups(EmitTo::All, false, |mut g, _| Ok(contents(&mut g)))
            .unwrap();
        assert_eq!(empty.len(), 2);
        assert!(rows.runs.is_empty() && rows.ts.is_empty());
    }

    #[test]
    fn updating_in_batches_stores_what_pushing_row_by_row_does() {
        let args = FunnelArgs {
            window_ms: 10,
            steps: 2,
            breakdown: false,
        };
        // (group, ts, step 1, step 2): runs inside and across batches, rows matching no
        // step, a NULL time, a group coming back after others.
        let rows: Vec<(usize, Option<i64>, bool, bool)> = (0..40)
            .map(|i| {
                let g = [0, 0, 1, 1, 1, 2, 0, 0][i % 8] + i / 16;
                let ts = (i % 13 != 4).then_some(i as i64);
                (g, ts, i % 3 != 1, i % 5 == 2)
            })
            .collect();
        let mut pushed = FunnelRows::new("test", args);
        for &(g, ts, c1, c2) in &rows {
            let mask = u32::from(c1) | (u32::from(c2) << 1);
            if let (Some(ts), true) = (ts, mask != 0) {
                pushed.push(g, ts, mask, 0).unwrap();
            }
        }
        for batch_len in [1, 3, 7, 40] {
            let mut updated = FunnelRows::new("test", args);
            for batch in rows.chunks(batch_len) {
                let values: Vec<ArrayRef> = vec![
                    Arc::new(Int64Array::from(vec![10; batch.len()])),
                    Arc::new(Int64Array::from(
                        batch.iter().map(|r| r.1).collect::<Vec<_>>(),
                    )),
                    Arc::new(BooleanArray::from(
                        batch.iter().map(|r| r.2).collect::<Vec<_>>(),
                    )),
                    Arc::new(BooleanArray::from(
                        batch.iter().map(|r| r.3).collect::<Vec<_>>(),
                    )),
                ];
                let groups: Vec<usize> = batch.iter().map(|r| r.0).collect();
                updated.update(&values, &groups, None, 5).unwrap();
            }
            let runs = |r: &FunnelRows| r.runs.iter().map(|r| (r.group, r.end)).collect::<Vec<_>>();
            assert_eq!(runs(&updated), runs(&pushed), "{batch_len} rows a batch");
            assert_eq!(
                updated.ts.iter().collect::<Vec<_>>(),
                pushed.ts.iter().collect::<Vec<_>>()
            );
            let all = |r: &mut FunnelRows| {
                r.peek_groups(false, |mut g, _| Ok(contents(&mut g)))
                    .unwrap()
            };
            assert_eq!(all(&mut updated), all(&mut pushed));
        }
    }

    proptest::proptest! {
        /// A group answered from its summary gets exactly what the scan of its rows
        /// gives: level, chain start and breakdown; the other groups keep their rows.
        #[test]
        fn short_groups_answer_as_their_rows_do(
            steps in 1usize..4,
            // Times from the smallest on: the summary has no sentinel time.
            rows in proptest::collection::vec(
                (0usize..6, proptest::prop_oneof![9 => 0i64..20, 1 => proptest::strategy::Just(i64::MIN)], 0u32..16, 0u32..4),
                0..80),
        ) {
            let args = FunnelArgs { window_ms: 5, steps, breakdown: true };
            let full = args.full_mask();
            let mut stored = FunnelRows::new("test", args);
            for &(g, ts, mask, b) in &rows {
                if mask & full != 0 {
                    // Interned ids in reverse byte order, so id order is not value order.
                    let id = if b == 0 {
                        0
                    } else {
                        stored.interner.intern("test", &format!("v{}", 9 - b)).unwrap()
                    };
                    stored.push(g, ts, mask & full, id).unwrap();
                }
            }
            stored.ensure_groups(6);
            let interner = &stored.interner;
            let mut raw = stored.grouped(6, false);
            let answers = stored.grouped(6, true);
            for g in 0..6 {
                let mut entries = raw.group_mut(g).to_vec();
                sort_by_time(&mut entries);
                let r = reach(&entries, steps, args.window_ms, false);
                match answers.short(g) {
                    Some(short) => {
                        proptest::prop_assert_eq!(short.level, r.level);
                        if r.level == 1 {
                            proptest::prop_assert_eq!(short.start, r.start);
                            proptest::prop_assert_eq!(
                                interner.get(short.breakdown),
                                first_breakdown(&entries, r.start, interner)
                            );
                        }
                    }
                    None => {
                        let or = entries.iter().fold(0, |or, e| or | e.mask);
                        proptest::prop_assert!(steps >= 2 && or & 3 == 3);
                    }
                }
            }
            // Gathering answers skips short groups and keeps the others whole.
            let mut answers = answers;
            for g in 0..6 {
                let gathered = answers.group_mut(g).len();
                let expected = if answers.short(g).is_some() { 0 } else { raw.group_mut(g).len() };
                proptest::prop_assert_eq!(gathered, expected);
            }
        }
    }

    #[test]
    fn rows_and_runs_across_chunk_boundaries() {
        let args = FunnelArgs {
            window_ms: 10,
            steps: 9,
            breakdown: true,
        };
        let mut rows = FunnelRows::new("test", args);
        let mut model: Vec<Vec<(i64, u32)>> = vec![Vec::new(); 7];
        let n = 2 * CHUNK + 1234;
        for i in 0..n {
            let g = (i / 3 + i / 5000) % 7;
            let mask = 1 | ((i as u32 % 3) << 7);
            rows.push(g, i as i64, mask, (i % 11) as u32).unwrap();
            model[g].push((i as i64, mask));
        }
        assert_eq!(rows.ts.len(), n);
        for chunk_rows in [1000, CHUNK, n] {
            let mut grouped = rows.grouped(7, false);
            grouped.chunk_rows = chunk_rows;
            assert_eq!(contents(&mut grouped), model);
        }
        let first = rows
            .emit_groups(EmitTo::First(3), false, |mut g, _| Ok(contents(&mut g)))
            .unwrap();
        assert_eq!(first, model[..3].to_vec());
        let rest = rows
            .peek_groups(false, |mut g, _| Ok(contents(&mut g)))
            .unwrap();
        assert_eq!(rest, model[3..].to_vec());
        let kept: usize = model[3..].iter().map(Vec::len).sum();
        assert_eq!(rows.ts.len(), kept);
        assert_eq!(rows.breakdowns.len(), kept);
        assert!(
            rows.size() < kept * 16 + 8 * CHUNK * 16,
            "capacity stays near the rows"
        );
    }

    #[test]
    fn masks_beyond_eight_steps_are_kept_whole() {
        for steps in [8, 9, 32] {
            let args = FunnelArgs {
                window_ms: 10,
                steps,
                breakdown: false,
            };
            let mut rows = FunnelRows::new("test", args);
            let top = 1u32 << (steps - 1);
            rows.push(0, 1, 1, 0).unwrap();
            rows.push(0, 2, top | 1, 0).unwrap();
            let got = rows
                .peek_groups(false, |mut g, _| Ok(contents(&mut g)))
                .unwrap();
            assert_eq!(got, vec![vec![(1, 1), (2, top | 1)]], "{steps} steps");
        }
    }

    #[test]
    fn no_first_step_is_level_zero() {
        assert_eq!(level(&[], 3, 10), 0);
        assert_eq!(level(&[e(1, 0b010), e(2, 0b100)], 3, 10), 0);
    }

    #[test]
    fn one_row_fills_consecutive_steps() {
        // ClickHouse 00632: windowFunnel(10000)(t, e = 1004, e = 1004, e = 1004) = 3.
        assert_eq!(level(&[e(5, 0b111)], 3, 10_000), 3);
        // Steps 1 and 3 on one row do not skip step 2.
        assert_eq!(level(&[e(5, 0b101)], 3, 10_000), 1);
    }

    #[test]
    fn ties_are_ordered_by_step_whatever_the_input_order() {
        let rows = [e(7, 0b100), e(7, 0b010), e(7, 0b001)];
        assert_eq!(level(&rows, 3, 0), 3);
        let mut reversed = rows;
        reversed.reverse();
        assert_eq!(level(&reversed, 3, 0), 3);
    }

    #[test]
    fn window_edge_is_inclusive() {
        let rows = [e(0, 0b01), e(100, 0b10)];
        assert_eq!(level(&rows, 2, 100), 2);
        assert_eq!(level(&rows, 2, 99), 1);
    }

    #[test]
    fn out_of_order_input_is_sorted() {
        let rows = [e(30, 0b100), e(20, 0b010), e(10, 0b001)];
        assert_eq!(level(&rows, 3, 20), 3);
        assert_eq!(level(&rows, 3, 19), 2);
    }

    #[test]
    fn a_later_start_can_complete_where_an_earlier_cannot() {
        // Start at 0 cannot reach step 2 at 150 (window 100); the start at 100 can.
        let rows = [e(0, 0b01), e(100, 0b01), e(150, 0b10)];
        let r = reach(&rows, 2, 100, false);
        assert_eq!(
            r,
            Reach {
                level: 2,
                start: 100
            }
        );
    }

    #[test]
    fn chain_takes_the_latest_start_and_earliest_steps() {
        let rows = [
            e(0, 0b001),
            e(10, 0b010),
            e(20, 0b001),
            e(25, 0b010),
            e(30, 0b110),
            e(40, 0b100),
        ];
        let r = reach(&rows, 3, 100, false);
        assert_eq!(
            r,
            Reach {
                level: 3,
                start: 20
            }
        );
        let mut times = Vec::new();
        chain_times(&rows, 3, 100, r.start, &mut times);
        assert_eq!(times, vec![20, 25, 30]);
    }

    #[test]
    fn chain_reuses_a_row_for_consecutive_steps() {
        let rows = [e(5, 0b011), e(9, 0b100)];
        let mut times = Vec::new();
        chain_times(&rows, 3, 10, 5, &mut times);
        assert_eq!(times, vec![5, 5, 9]);
    }

    #[test]
    fn huge_windows_and_times_do_not_overflow() {
        let rows = [e(i64::MAX - 1, 0b01), e(i64::MAX, 0b10)];
        assert_eq!(level(&rows, 2, i64::MAX), 2);
        let rows = [e(i64::MIN, 0b01), e(i64::MAX, 0b10)];
        assert_eq!(level(&rows, 2, i64::MAX), 1);
    }

    #[test]
    fn thirty_two_steps() {
        assert_eq!(level(&[e(1, u32::MAX)], 32, 0), 32);
    }
}
