//! Minim's aggregate functions through SQL, compared with plain brute-force definitions on
//! random inputs: `window_funnel`, `funnel_chain`, `retention`, `retention_periods`,
//! `quantile_exact` and `bucket_counts`. Inputs are shuffled and split over several
//! partitions, and sessions run with 4 target partitions and tiny batches, so the
//! partial/merge state paths, skipped partial aggregation (`convert_to_state`), ordered
//! emission (`EmitTo::First`), the engine's per-user aggregation (`PerUserExec`) and the
//! no-GROUP-BY accumulator all run.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, Float64Array, Int64Array, RecordBatch,
    StringArray, StringViewArray, TimestampMillisecondArray,
};
use arrow::datatypes::{
    DataType, Decimal128Type, Field, Float64Type, Int64Type, Schema, TimeUnit, UInt8Type,
};
use datafusion::datasource::MemTable;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionContext, col};
use minim_core::{Event, EventBatch, ProjectId};
use minim_query::engine;
use minim_store::{Store, StoreConfig};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// Input rows and the brute-force definitions.

const CONDITIONS: usize = 4;

#[derive(Debug, Clone)]
struct Row {
    uid: u8,
    ts: Option<i64>,
    /// `c1..c4` columns; `None` is SQL NULL.
    c: [Option<bool>; CONDITIONS],
    bd: Option<&'static str>,
    sp: Option<i64>,
    rp: Option<i64>,
    v: Option<f64>,
}

impl Row {
    fn cond(&self, column: usize) -> bool {
        self.c.get(column).copied().flatten().unwrap_or(false)
    }
}

/// The largest `k` of a chain `r1..rk` with `c_i(r_i)`, non-decreasing times and
/// `ts(rk) - ts(r1) <= window`, by trying every chain.
fn brute_level(rows: &[&Row], steps: &[usize], window: i64) -> usize {
    fn extend(
        rows: &[&Row],
        steps: &[usize],
        window: i64,
        start: i64,
        prev: i64,
        done: usize,
    ) -> usize {
        let Some(&column) = steps.get(done) else {
            return done;
        };
        let mut best = done;
        for r in rows {
            let Some(t) = r.ts else { continue };
            if r.cond(column)
                && t >= prev
                && i128::from(t) - i128::from(start) <= i128::from(window)
            {
                best = best.max(extend(rows, steps, window, start, t, done + 1));
            }
        }
        best
    }
    let mut best = 0;
    for r in rows {
        if let Some(t) = r.ts
            && r.cond(steps[0])
        {
            best = best.max(extend(rows, steps, window, t, t, 1));
        }
    }
    best
}

/// The chain from a first step at `t1`: each later step at the earliest time of a row
/// with its condition, at or after the previous step and at most `t1 + window`.
fn brute_chain_from(rows: &[&Row], steps: &[usize], window: i64, t1: i64) -> Vec<i64> {
    let mut times = vec![t1];
    for &column in &steps[1..] {
        let prev = *times.last().unwrap();
        let next = rows
            .iter()
            .filter_map(|r| r.ts.filter(|_| r.cond(column)))
            .filter(|&t| prev <= t && i128::from(t) <= i128::from(t1) + i128::from(window))
            .min();
        match next {
            Some(t) => times.push(t),
            None => break,
        }
    }
    times
}

/// `funnel_chain`'s definition: (level, times, breakdown).
fn brute_chain(rows: &[&Row], steps: &[usize], window: i64) -> (i64, Vec<i64>, Option<String>) {
    let level = brute_level(rows, steps, window);
    let firsts = rows
        .iter()
        .filter_map(|r| r.ts.filter(|_| r.cond(steps[0])));
    let t1 = firsts
        .filter(|&t| brute_chain_from(rows, steps, window, t).len() == level)
        .max();
    let Some(t1) = t1 else {
        return (level as i64, vec![], None);
    };
    let breakdown = rows
        .iter()
        .filter(|r| r.ts == Some(t1) && r.cond(steps[0]))
        .map(|r| r.bd)
        .min()
        .flatten();
    (
        level as i64,
        brute_chain_from(rows, steps, window, t1),
        breakdown.map(str::to_owned),
    )
}

fn brute_retention(rows: &[&Row], steps: &[usize]) -> Vec<u8> {
    let any = |column: usize| rows.iter().any(|r| r.cond(column));
    let first = any(steps[0]);
    steps
        .iter()
        .enumerate()
        .map(|(i, &column)| u8::from(first && (i == 0 || any(column))))
        .collect()
}

fn brute_periods(rows: &[&Row], width: i64) -> (Vec<u8>, Vec<u8>) {
    let bytes = usize::try_from((width + 7) / 8).unwrap();
    let mut starts = vec![0u8; bytes];
    let mut returns = vec![0u8; bytes];
    for r in rows {
        for (value, bits) in [(r.sp, &mut starts), (r.rp, &mut returns)] {
            if let Some(p) = value.filter(|p| (0..width).contains(p)) {
                let p = usize::try_from(p).unwrap();
                bits[p / 8] |= 1 << (p % 8);
            }
        }
    }
    (starts, returns)
}

/// `bucket_counts(sp, width)`'s definition: (bucket, rows) for the buckets with rows.
fn brute_counts(rows: &[&Row], width: i64) -> Vec<(i64, i64)> {
    let mut counts: BTreeMap<i64, i64> = BTreeMap::new();
    for r in rows {
        if let Some(b) = r.sp.filter(|b| (0..width).contains(b)) {
            *counts.entry(b).or_default() += 1;
        }
    }
    counts.into_iter().collect()
}

fn brute_quantile(rows: &[&Row], level: f64) -> Option<f64> {
    let sorted = minim_query::quantile::sorted(rows.iter().filter_map(|r| r.v).collect());
    minim_query::quantile::quantile_exact(&sorted, level)
}

// ---------------------------------------------------------------------------------------
// Sessions and tables.

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// How a session runs its aggregates.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Partial then final aggregation over 4 partitions, batches of 3 rows (the engine's
    /// one-stage rule left out, as for aggregations it does not apply to).
    Partitioned,
    /// As the engine plans it: rows repartitioned by group, one stage per partition.
    OneStage,
    /// `Partitioned`, with partial aggregation skipped at once (`convert_to_state`).
    SkipPartial,
    /// One partition declared sorted by `uid`: ordered aggregation emits `First(n)`.
    Sorted,
    /// `OneStage` grouped by `minim_user`, a user key column as the engine's per-user
    /// aggregations have: the engine's `PerUserExec` runs instead of DataFusion's.
    PerUser,
    /// `Partitioned` grouped by `uid_view`, the user id as a string view (as breakdown
    /// values are): the engine's `PartialByTextExec` runs the partial stage.
    PartialByText,
}

impl Mode {
    fn user_column(self) -> &'static str {
        match self {
            Mode::PerUser => "minim_user",
            Mode::PartialByText => "uid_view",
            _ => "uid",
        }
    }
}

/// A session with Minim's functions (from `engine::session` over an empty store).
async fn session(store: &Store, mode: Mode) -> SessionContext {
    let mut ctx = engine::session(&store.snapshot(), &ProjectId::new("p").unwrap(), &[])
        .await
        .unwrap();
    if let Mode::Partitioned | Mode::SkipPartial | Mode::PartialByText = mode {
        let state = ctx.state();
        let rules = state
            .physical_optimizers()
            .iter()
            .filter(|r| r.name() != engine::ONE_STAGE_RULE)
            .cloned()
            .collect();
        ctx = SessionContext::new_with_state(
            SessionStateBuilder::new_from_existing(state)
                .with_physical_optimizer_rules(rules)
                .build(),
        );
    }
    let mut settings = vec![
        if let Mode::Sorted = mode {
            // One partition keeps the declared order, so aggregation runs ordered.
            "SET datafusion.execution.target_partitions = 1"
        } else {
            "SET datafusion.execution.target_partitions = 4"
        },
        "SET datafusion.execution.batch_size = 3",
    ];
    if let Mode::SkipPartial = mode {
        settings.push("SET datafusion.execution.skip_partial_aggregation_probe_rows_threshold = 1");
        settings
            .push("SET datafusion.execution.skip_partial_aggregation_probe_ratio_threshold = 0.0");
    }
    for s in settings {
        ctx.sql(s).await.unwrap().collect().await.unwrap();
    }
    ctx
}

fn schema() -> Arc<Schema> {
    let mut fields = vec![
        Field::new("uid", DataType::Utf8, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
    ];
    for i in 1..=CONDITIONS {
        fields.push(Field::new(format!("c{i}"), DataType::Boolean, true));
    }
    fields.extend([
        Field::new("bd", DataType::Utf8, true),
        Field::new("sp", DataType::Int64, true),
        Field::new("rp", DataType::Int64, true),
        Field::new("v", DataType::Float64, true),
        Field::new("minim_user", DataType::Decimal128(38, 0), false),
        Field::new("uid_view", DataType::Utf8View, false),
    ]);
    Arc::new(Schema::new(fields))
}

fn batch(rows: &[Row]) -> RecordBatch {
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| format!("u{}", r.uid)),
        )),
        Arc::new(
            TimestampMillisecondArray::from(rows.iter().map(|r| r.ts).collect::<Vec<_>>())
                .with_timezone("UTC"),
        ),
    ];
    for i in 0..CONDITIONS {
        columns.push(Arc::new(BooleanArray::from(
            rows.iter().map(|r| r.c[i]).collect::<Vec<_>>(),
        )));
    }
    columns.extend([
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.bd).collect::<Vec<_>>(),
        )) as ArrayRef,
        Arc::new(Int64Array::from(
            rows.iter().map(|r| r.sp).collect::<Vec<_>>(),
        )),
        Arc::new(Int64Array::from(
            rows.iter().map(|r| r.rp).collect::<Vec<_>>(),
        )),
        Arc::new(Float64Array::from(
            rows.iter().map(|r| r.v).collect::<Vec<_>>(),
        )),
        Arc::new(
            Decimal128Array::from_iter_values(rows.iter().map(|r| i128::from(r.uid)))
                .with_precision_and_scale(38, 0)
                .unwrap(),
        ),
        Arc::new(StringViewArray::from_iter_values(
            rows.iter().map(|r| format!("u{}", r.uid)),
        )),
    ]);
    RecordBatch::try_new(schema(), columns).unwrap()
}

/// Registers `rows` as table `t`: split at `cuts` into partitions of small batches, or
/// for [`Mode::Sorted`] one partition sorted by `uid` and declared so.
fn register(ctx: &SessionContext, rows: &[Row], cuts: &[usize], mode: Mode) {
    let table = if let Mode::Sorted = mode {
        let mut sorted = rows.to_vec();
        sorted.sort_by_key(|r| format!("u{}", r.uid));
        let batches = sorted.chunks(4).map(batch).collect();
        MemTable::try_new(schema(), vec![batches])
            .unwrap()
            .with_sort_order(vec![vec![col("uid").sort(true, false)]])
    } else {
        let mut bounds: Vec<usize> = cuts.iter().map(|&c| c.min(rows.len())).collect();
        bounds.push(0);
        bounds.push(rows.len());
        bounds.sort_unstable();
        let partitions = bounds
            .windows(2)
            .map(|w| rows[w[0]..w[1]].chunks(5).map(batch).collect())
            .collect();
        MemTable::try_new(schema(), partitions).unwrap()
    };
    ctx.register_table("t", Arc::new(table)).unwrap();
}

async fn query(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    match ctx.sql(sql).await {
        Ok(df) => match df.collect().await {
            Ok(b) => b,
            Err(e) => panic!("{sql}: {e}"),
        },
        Err(e) => panic!("{sql}: {e}"),
    }
}

/// One group's answers, read from a result row.
#[derive(Debug, Clone, PartialEq)]
struct Answers {
    level: i64,
    chain: (i64, Vec<i64>, Option<String>),
    retention: Vec<u8>,
    periods: (Vec<u8>, Vec<u8>),
    quantile: Option<f64>,
    counts: Vec<(i64, i64)>,
}

/// A `bucket_counts` result as (bucket, count) pairs.
fn read_counts(b: &RecordBatch, column: usize, i: usize) -> Vec<(i64, i64)> {
    let s = b.column(column).as_struct();
    let list = |name: &str| {
        let l = s.column_by_name(name).unwrap().as_list::<i32>().value(i);
        l.as_primitive::<Int64Type>().values().to_vec()
    };
    list("buckets").into_iter().zip(list("counts")).collect()
}

/// Reads `[key?], window_funnel, funnel_chain, retention, retention_periods,
/// quantile_exact` columns starting at `first` (`counts` stays empty).
fn read_answers(b: &RecordBatch, first: usize, i: usize) -> Answers {
    let level = b.column(first).as_primitive::<Int64Type>().value(i);
    let chain = b.column(first + 1).as_struct();
    let chain_level = chain
        .column_by_name("level")
        .unwrap()
        .as_primitive::<Int64Type>()
        .value(i);
    let times = chain
        .column_by_name("times")
        .unwrap()
        .as_list::<i32>()
        .value(i);
    let times = times.as_primitive::<Int64Type>().values().to_vec();
    let bd = chain
        .column_by_name("breakdown")
        .unwrap()
        .as_string::<i32>();
    let bd = bd.is_valid(i).then(|| bd.value(i).to_owned());
    let retention = b.column(first + 2).as_list::<i32>().value(i);
    let retention = retention.as_primitive::<UInt8Type>().values().to_vec();
    let periods = b.column(first + 3).as_struct();
    let bits = |name: &str| {
        periods
            .column_by_name(name)
            .unwrap()
            .as_binary::<i32>()
            .value(i)
            .to_vec()
    };
    let q = b.column(first + 4).as_primitive::<Float64Type>();
    Answers {
        level,
        chain: (chain_level, times, bd),
        retention,
        periods: (bits("starts"), bits("returns")),
        quantile: q.is_valid(i).then(|| q.value(i)),
        counts: Vec::new(),
    }
}

struct Call {
    window: i64,
    steps: Vec<usize>,
    width: i64,
    level: f64,
}

impl Call {
    /// The five calls, each with `FILTER (WHERE {filter})` when given.
    fn select(&self, filter: Option<&str>) -> String {
        let conds: Vec<String> = self.steps.iter().map(|c| format!("c{}", c + 1)).collect();
        let conds = conds.join(", ");
        let f = filter.map_or(String::new(), |f| format!(" FILTER (WHERE {f})"));
        format!(
            "window_funnel({w}, ts, {conds}){f}, funnel_chain({w}, ts, bd, {conds}){f}, \
             retention({conds}){f}, retention_periods(sp, rp, {width}){f}, \
             quantile_exact(v, {level:?}){f}",
            w = self.window,
            width = self.width,
            level = self.level,
        )
    }

    fn brute(&self, rows: &[&Row]) -> Answers {
        Answers {
            level: brute_level(rows, &self.steps, self.window) as i64,
            chain: brute_chain(rows, &self.steps, self.window),
            retention: brute_retention(rows, &self.steps),
            periods: brute_periods(rows, self.width),
            quantile: brute_quantile(rows, self.level),
            counts: brute_counts(rows, self.width),
        }
    }
}

/// Answers per user through `GROUP BY` the mode's user column, and for user 0 alone
/// without GROUP BY. `bucket_counts` runs in a query of its own: it has a partial stage,
/// so with it the functions that keep their rows would not aggregate in one stage.
async fn run(
    ctx: &SessionContext,
    call: &Call,
    filter: Option<&str>,
    mode: Mode,
) -> (BTreeMap<String, Answers>, Answers) {
    let f = filter.map_or(String::new(), |f| format!(" FILTER (WHERE {f})"));
    let counts = format!("bucket_counts(sp, {}){f}", call.width);
    let key = mode.user_column();
    let mut by_user = BTreeMap::new();
    let grouped = |select: &str| format!("SELECT {key}, {select} FROM t GROUP BY {key}");
    for b in query(ctx, &grouped(&call.select(filter))).await {
        for i in 0..b.num_rows() {
            by_user.insert(user_name(&b, i), read_answers(&b, 1, i));
        }
    }
    for b in query(ctx, &grouped(&counts)).await {
        for i in 0..b.num_rows() {
            let answers = by_user.get_mut(&user_name(&b, i)).expect("same users");
            answers.counts = read_counts(&b, 1, i);
        }
    }
    let one = |select: &str| format!("SELECT {select} FROM t WHERE uid = 'u0'");
    let single = query(ctx, &one(&call.select(filter))).await;
    let single = single.iter().find(|b| b.num_rows() > 0).expect("one row");
    let mut single = read_answers(single, 0, 0);
    let single_counts = query(ctx, &one(&counts)).await;
    let single_counts = single_counts
        .iter()
        .find(|b| b.num_rows() > 0)
        .expect("one row");
    single.counts = read_counts(single_counts, 0, 0);
    (by_user, single)
}

/// The user of row `i`, from its `uid`, `uid_view` or `minim_user` key in column 0.
fn user_name(b: &RecordBatch, i: usize) -> String {
    let key = b.column(0);
    match key.data_type() {
        DataType::Decimal128(..) => format!("u{}", key.as_primitive::<Decimal128Type>().value(i)),
        DataType::Utf8View => key.as_string_view().value(i).to_owned(),
        _ => key.as_string::<i32>().value(i).to_owned(),
    }
}

// ---------------------------------------------------------------------------------------
// Property tests.

fn row() -> impl Strategy<Value = Row> {
    let cond = prop_oneof![3 => Just(Some(false)), 3 => Just(Some(true)), 1 => Just(None)];
    // Mostly small periods; some near 64, where `retention_periods` goes from dense
    // bitmasks to sparse codes.
    let period = prop_oneof![
        9 => (-2i64..14).prop_map(Some),
        1 => (60i64..70).prop_map(Some),
        3 => Just(None)
    ];
    (
        0u8..4,
        prop_oneof![12 => (0i64..40).prop_map(Some), 1 => Just(None)],
        [cond.clone(), cond.clone(), cond.clone(), cond],
        prop::sample::select(vec![None, Some(""), Some("a"), Some("ab"), Some("b")]),
        period.clone(),
        period,
        prop_oneof![3 => (-20i32..20).prop_map(|v| Some(f64::from(v) / 2.0)), 1 => Just(None)],
    )
        .prop_map(|(uid, ts, c, bd, sp, rp, v)| Row {
            uid,
            ts: ts.map(|t| 1_767_225_600_000 + t),
            c,
            bd,
            sp,
            rp,
            v,
        })
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![
        Just(Mode::Partitioned),
        Just(Mode::OneStage),
        Just(Mode::SkipPartial),
        Just(Mode::Sorted),
        Just(Mode::PerUser),
        Just(Mode::PartialByText)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn aggregates_match_their_definitions(
        rows in prop::collection::vec(row(), 0..40),
        cuts in prop::collection::vec(0usize..40, 0..4),
        window in prop_oneof![Just(0i64), 0i64..25, Just(i64::MAX)],
        steps in prop::collection::vec(0usize..CONDITIONS, 1..5),
        width in prop_oneof![Just(1i64), 1i64..16, 60i64..=66, Just(64i64), 65i64..80],
        level in prop_oneof![Just(0.0), Just(0.5), Just(1.0), 0.0f64..=1.0],
        mode in mode(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig { data_dir: dir.path().to_path_buf(), ..StoreConfig::default() }).unwrap();
        let rt = runtime();
        let call = Call { window, steps, width, level };
        let ((by_user, single), (by_user_c4, single_c4)) = rt.block_on(async {
            let ctx = session(&store, mode).await;
            register(&ctx, &rows, &cuts, mode);
            (run(&ctx, &call, None, mode).await, run(&ctx, &call, Some("c4"), mode).await)
        });

        let mut users: BTreeMap<String, Vec<&Row>> = BTreeMap::new();
        for r in &rows {
            users.entry(format!("u{}", r.uid)).or_default().push(r);
        }
        prop_assert_eq!(by_user.keys().collect::<Vec<_>>(), users.keys().collect::<Vec<_>>());
        prop_assert_eq!(by_user_c4.keys().collect::<Vec<_>>(), users.keys().collect::<Vec<_>>());
        for (user, rs) in &users {
            let got = &by_user[user];
            prop_assert_eq!(got, &call.brute(rs), "user {}", user);
            prop_assert_eq!(got.level, got.chain.0, "funnel_chain level is window_funnel");
            let c4: Vec<&Row> = rs.iter().copied().filter(|r| r.cond(3)).collect();
            prop_assert_eq!(&by_user_c4[user], &call.brute(&c4), "user {} FILTER (WHERE c4)", user);
        }
        let u0 = users.get("u0").cloned().unwrap_or_default();
        prop_assert_eq!(&single, &call.brute(&u0), "u0 without GROUP BY");
        let u0_c4: Vec<&Row> = u0.iter().copied().filter(|r| r.cond(3)).collect();
        prop_assert_eq!(&single_c4, &call.brute(&u0_c4), "u0 without GROUP BY, FILTER (WHERE c4)");
        store.shutdown().unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Over the store's `events` table (Parquet segments + memtable, real timestamps).

fn event(user: u8, t: i64, name: &str, i: usize) -> Event {
    Event {
        timestamp_ms: 1_767_225_600_000 + t,
        event: name.to_owned(),
        distinct_id: format!("u{user}"),
        insert_id: Some(format!("i{i}")),
        properties: "{}".to_owned(),
        personal: None,
        received_at_ms: 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn window_funnel_over_events_matches_brute_force(
        evs in prop::collection::vec((0u8..5, 0i64..5_000, prop::sample::select(vec!["a", "b", "c"])), 0..60),
        flush_at in 0usize..60,
        window in 0i64..3_000,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreConfig { data_dir: dir.path().to_path_buf(), ..StoreConfig::default() }).unwrap();
        let p = ProjectId::new("p").unwrap();
        let events: Vec<Event> = evs.iter().enumerate().map(|(i, (u, t, n))| event(*u, *t, n, i)).collect();
        let cut = flush_at.min(events.len());
        store.append_blocking(EventBatch { project: p.clone(), events: events[..cut].to_vec() }).unwrap();
        store.flush().unwrap();
        store.append_blocking(EventBatch { project: p.clone(), events: events[cut..].to_vec() }).unwrap();

        let sql = format!(
            "SELECT distinct_id, window_funnel({window}, timestamp, event = 'a', event = 'b', event = 'c') \
             FROM events GROUP BY distinct_id"
        );
        let got: BTreeMap<String, i64> = runtime().block_on(async {
            let ctx = engine::session(&store.snapshot(), &p, &[]).await.unwrap();
            let mut out = BTreeMap::new();
            for b in query(&ctx, &sql).await {
                // `distinct_id` is read as a string view.
                let ids = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
                let ids = ids.as_string::<i32>();
                let levels = b.column(1).as_primitive::<Int64Type>();
                for i in 0..b.num_rows() {
                    out.insert(ids.value(i).to_owned(), levels.value(i));
                }
            }
            out
        });

        let mut users: BTreeMap<String, Vec<Row>> = BTreeMap::new();
        for e in &events {
            let c = ["a", "b", "c", ""].map(|n| Some(e.event == n));
            users.entry(e.distinct_id.clone()).or_default().push(Row {
                uid: 0, ts: Some(e.timestamp_ms), c, bd: None, sp: None, rp: None, v: None,
            });
        }
        prop_assert_eq!(got.len(), users.len());
        for (user, rs) in &users {
            let refs: Vec<&Row> = rs.iter().collect();
            prop_assert_eq!(got[user], brute_level(&refs, &[0, 1, 2], window) as i64, "user {}", user);
        }
        store.shutdown().unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// ClickHouse's examples and edge cases, through SQL.

async fn fixed_session(rows: &[Row]) -> (tempfile::TempDir, Store, SessionContext) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreConfig {
        data_dir: dir.path().to_path_buf(),
        ..StoreConfig::default()
    })
    .unwrap();
    let ctx = session(&store, Mode::Partitioned).await;
    register(&ctx, rows, &[1, 3], Mode::Partitioned);
    (dir, store, ctx)
}

fn r(ts: i64, c: [bool; CONDITIONS]) -> Row {
    Row {
        uid: 0,
        ts: Some(ts),
        c: c.map(Some),
        bd: None,
        sp: None,
        rp: None,
        v: None,
    }
}

async fn level(ctx: &SessionContext, select: &str) -> i64 {
    let b = query(ctx, &format!("SELECT {select} FROM t")).await;
    b.iter()
        .find(|b| b.num_rows() > 0)
        .unwrap()
        .column(0)
        .as_primitive::<Int64Type>()
        .value(0)
}

#[test]
fn window_funnel_clickhouse_examples() {
    runtime().block_on(async {
        const T: bool = true;
        const F: bool = false;
        // One row whose three conditions are all true reaches 3 (ClickHouse 00632).
        let (_d, _s, ctx) = fixed_session(&[r(5, [T, F, F, F])]).await;
        assert_eq!(level(&ctx, "window_funnel(10000, ts, c1, c1, c1)").await, 3);
        assert_eq!(level(&ctx, "window_funnel(10000, ts, c1, c2, c1)").await, 1);
        // Ties: rows at the same millisecond chain in step order, in any input order.
        let (_d, _s, ctx) =
            fixed_session(&[r(7, [F, F, T, F]), r(7, [F, T, F, F]), r(7, [T, F, F, F])]).await;
        assert_eq!(level(&ctx, "window_funnel(0, ts, c1, c2, c3)").await, 3);
        // The window edge is inclusive.
        let (_d, _s, ctx) = fixed_session(&[r(0, [T, F, F, F]), r(100, [F, T, F, F])]).await;
        assert_eq!(level(&ctx, "window_funnel(100, ts, c1, c2)").await, 2);
        assert_eq!(level(&ctx, "window_funnel(99, ts, c1, c2)").await, 1);
        // No first step: 0.
        assert_eq!(level(&ctx, "window_funnel(100, ts, c3, c2)").await, 0);
        // Out-of-order input.
        let (_d, _s, ctx) = fixed_session(&[
            r(30, [F, F, T, F]),
            r(20, [F, T, F, F]),
            r(10, [T, F, F, F]),
        ])
        .await;
        assert_eq!(level(&ctx, "window_funnel(20, ts, c1, c2, c3)").await, 3);
        assert_eq!(level(&ctx, "window_funnel(19, ts, c1, c2, c3)").await, 2);
        // Empty input: 0, not NULL.
        let (_d, _s, ctx) = fixed_session(&[]).await;
        assert_eq!(level(&ctx, "window_funnel(100, ts, c1, c2)").await, 0);
        // BIGINT times work as well as timestamps.
        let (_d, _s, ctx) = fixed_session(&[r(0, [T, F, F, F]), r(100, [F, T, F, F])]).await;
        assert_eq!(
            level(&ctx, "window_funnel(100, CAST(ts AS BIGINT), c1, c2)").await,
            2
        );
    });
}

/// The modes really run the plans they are meant to exercise.
#[test]
fn modes_run_partial_final_one_stage_and_ordered_aggregation() {
    runtime().block_on(async {
        let rows: Vec<Row> = (0..30)
            .map(|i| Row {
                uid: (i % 4) as u8,
                ..r(i, [true, false, true, false])
            })
            .collect();
        for (mode, needles) in [
            (
                Mode::Partitioned,
                &["mode=Partial", "mode=FinalPartitioned"][..],
            ),
            (
                Mode::OneStage,
                &[
                    "mode=SinglePartitioned",
                    "RepartitionExec: partitioning=Hash",
                ][..],
            ),
            (Mode::Sorted, &["ordering_mode=Sorted"][..]),
            (
                Mode::PerUser,
                &["PerUserExec", "RepartitionExec: partitioning=Hash"][..],
            ),
            (
                Mode::PartialByText,
                &["PartialByTextExec", "mode=FinalPartitioned"][..],
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(StoreConfig {
                data_dir: dir.path().to_path_buf(),
                ..StoreConfig::default()
            })
            .unwrap();
            let ctx = session(&store, mode).await;
            register(&ctx, &rows, &[7, 20], mode);
            let plan = query(
                &ctx,
                &format!(
                    "EXPLAIN SELECT {key}, window_funnel(10, ts, c1, c2) FROM t GROUP BY {key}",
                    key = mode.user_column()
                ),
            )
            .await;
            let plan: String = plan
                .iter()
                .flat_map(|b| {
                    b.column(1)
                        .as_string::<i32>()
                        .iter()
                        .flatten()
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
                .join("\n");
            for needle in needles {
                assert!(
                    plan.contains(needle),
                    "{mode:?} plan lacks {needle}:\n{plan}"
                );
            }
        }
    });
}

#[test]
fn retention_clickhouse_example() {
    runtime().block_on(async {
        const T: bool = true;
        const F: bool = false;
        let (_d, _s, ctx) = fixed_session(&[r(1, [T, F, F, F]), r(2, [F, F, T, F])]).await;
        let b = query(&ctx, "SELECT retention(c1, c2, c3) FROM t").await;
        let b = b.iter().find(|b| b.num_rows() > 0).unwrap();
        let list = b.column(0).as_list::<i32>().value(0);
        assert_eq!(
            list.as_primitive::<UInt8Type>().values().to_vec(),
            vec![1, 0, 1]
        );
        let b = query(&ctx, "SELECT retention(c2, c3) FROM t").await;
        let b = b.iter().find(|b| b.num_rows() > 0).unwrap();
        let list = b.column(0).as_list::<i32>().value(0);
        assert_eq!(
            list.as_primitive::<UInt8Type>().values().to_vec(),
            vec![0, 0]
        );
    });
}

#[test]
fn window_funnel_as_a_running_window_function() {
    runtime().block_on(async {
        const T: bool = true;
        const F: bool = false;
        let rows = [r(1, [T, F, F, F]), r(2, [F, T, F, F]), r(3, [T, F, F, F]), r(4, [F, F, T, F])];
        let (_d, _s, ctx) = fixed_session(&rows).await;
        let b = query(
            &ctx,
            "SELECT window_funnel(10, ts, c1, c2, c3) OVER (ORDER BY ts ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) \
             FROM t ORDER BY ts",
        )
        .await;
        let got: Vec<i64> = b.iter().flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec()).collect();
        assert_eq!(got, vec![1, 2, 2, 3]);
    });
}

#[test]
fn constants_must_be_literals_and_in_range() {
    runtime().block_on(async {
        let (_d, _s, ctx) = fixed_session(&[r(1, [true; CONDITIONS])]).await;
        let many: Vec<&str> = std::iter::repeat_n("c1", 33).collect();
        let cases = [
            ("window_funnel(sp, ts, c1)", "literal"),
            ("window_funnel(-1, ts, c1)", "non-negative"),
            ("window_funnel(10, ts)", "arguments"),
            (
                &*format!("window_funnel(10, ts, {})", many.join(", ")),
                "arguments",
            ),
            ("window_funnel(10, bd, c1)", "timestamp"),
            ("window_funnel(10, ts, sp)", "BOOLEAN"),
            ("funnel_chain(sp, ts, bd, c1)", "literal"),
            ("funnel_chain(10, ts, sp, c1)", "string"),
            ("retention()", "arguments"),
            ("retention(sp)", "BOOLEAN"),
            ("retention_periods(sp, rp, sp)", "literal"),
            ("retention_periods(sp, rp, 0)", "[1, 65536]"),
            ("retention_periods(sp, rp, 65537)", "[1, 65536]"),
            ("bucket_counts(sp, sp)", "literal"),
            ("bucket_counts(sp, 0)", "[1, 65536]"),
            ("bucket_counts(sp)", "arguments"),
            ("bucket_counts(bd, 3)", "integer"),
            ("quantile_exact(v, v)", "literal"),
            ("quantile_exact(v, 1.5)", "[0, 1]"),
            ("quantile_exact(DISTINCT v, 0.5)", "DISTINCT"),
            ("quantile_exact(bd, 0.5)", "number"),
        ];
        for (call, needle) in cases {
            let sql = format!("SELECT {call} FROM t");
            let err = match ctx.sql(&sql).await {
                Err(e) => e,
                Ok(df) => df.collect().await.expect_err(&sql),
            };
            let msg = err.to_string();
            assert!(msg.contains(needle), "{sql}: {msg}");
        }
    });
}

#[test]
fn funnel_chain_reports_the_latest_start_and_smallest_breakdown() {
    runtime().block_on(async {
        const T: bool = true;
        const F: bool = false;
        let mut rows = vec![
            r(0, [T, F, F, F]),
            r(10, [F, T, F, F]),
            r(20, [T, F, F, F]),
            r(20, [T, F, F, F]),
            r(25, [F, T, F, F]),
            r(30, [F, T, T, F]),
            r(40, [F, F, T, F]),
        ];
        rows[2].bd = Some("b");
        rows[3].bd = Some("a");
        rows[0].bd = None;
        let (_d, _s, ctx) = fixed_session(&rows).await;
        let b = query(&ctx, "SELECT funnel_chain(100, ts, bd, c1, c2, c3) FROM t").await;
        let b = b.iter().find(|b| b.num_rows() > 0).unwrap();
        let s = b.column(0).as_struct();
        assert_eq!(s.column(0).as_primitive::<Int64Type>().value(0), 3);
        let times = s.column(1).as_list::<i32>().value(0);
        let base = 0;
        assert_eq!(
            times.as_primitive::<Int64Type>().values().to_vec(),
            vec![base + 20, base + 25, base + 30]
        );
        assert_eq!(s.column(2).as_string::<i32>().value(0), "a");
    });
}
