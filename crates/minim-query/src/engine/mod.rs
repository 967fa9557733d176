//! The production query engine: Apache DataFusion over one project's segments and
//! memtable. Each insight kind compiles to DataFusion plans in its own file
//! (`trends.rs`, `funnel.rs`, `retention.rs`, `paths.rs`, `events.rs`), the scoped SQL
//! endpoint lives in `sql.rs`, and Minim's functions in `udf.rs` (scalar) and `udaf/`
//! (aggregates). Every answer must equal [`crate::reference::run`] for the same events.
//!
//! [`QueryEngine`] owns what bounds a query: a dedicated thread pool (queries never run
//! on the ingest runtime), a concurrency limit, a memory pool per query (no spilling:
//! event data never lands in temp files), a timeout that cancels the plan, and a cap
//! on SQL result rows.

mod bucket;
mod columns;
mod encryption;
mod event_filter;
mod events;
mod filter;
mod funnel;
pub mod metadata;
mod one_stage;
mod paths;
mod per_user;
mod retention;
mod sql;
mod table;
mod time_filter;
mod trends;
mod udaf;
mod udf;

use std::sync::Arc;
use std::time::Duration;

use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use minim_core::{Event, ProjectId};
use minim_store::Snapshot;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use self::metadata::MetadataCache;
use crate::error::SpecError;
use crate::limits::SpecLimits;
use crate::result::QueryResult;
use crate::spec::QuerySpec;

pub use one_stage::ONE_STAGE_RULE;
pub use per_user::PER_USER_RULE;
pub use sql::SqlResult;
pub use table::EVENTS_TABLE;
pub use udf::{PROP_NUM, PROP_STR};

/// Bounds of query execution (`[query]` in the server config). Every limit has a unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Threads of the query pool (0: one per CPU).
    pub threads: usize,
    /// Queries running at once; more wait up to `queue_timeout_ms`, then get 503.
    pub max_concurrent_queries: usize,
    /// How long a query may wait for a slot.
    pub queue_timeout_ms: u64,
    /// Memory one query may hold in operators (hash tables, sorts, aggregate state).
    pub memory_bytes_per_query: usize,
    /// Wall-clock limit of one query; the plan is cancelled when it passes.
    pub timeout_ms: u64,
    /// Rows a SQL query may return.
    pub max_sql_rows: usize,
    /// Events one data subject export may return (beyond it the export is refused, never
    /// silently partial).
    pub max_export_events: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            threads: 0,
            max_concurrent_queries: 4,
            queue_timeout_ms: 5_000,
            memory_bytes_per_query: 1 << 30,
            timeout_ms: 30_000,
            max_sql_rows: 10_000,
            max_export_events: 1_000_000,
        }
    }
}

impl EngineConfig {
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("max_concurrent_queries", self.max_concurrent_queries as u64),
            ("memory_bytes_per_query", self.memory_bytes_per_query as u64),
            ("timeout_ms", self.timeout_ms),
            ("max_sql_rows", self.max_sql_rows as u64),
            ("max_export_events", self.max_export_events as u64),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        Ok(())
    }
}

/// Why a query was not answered. Only the server maps these to HTTP.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The spec is malformed (400, names the field).
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The SQL text does not parse, plan or type-check (400).
    #[error("{0}")]
    InvalidSql(String),
    /// The SQL is valid but not allowed here: DDL, DML, `SET`, other tables (400).
    #[error("{0}")]
    SqlNotAllowed(String),
    /// The SQL result has more rows than allowed.
    #[error("the result has more than {limit} rows; add a LIMIT or aggregate")]
    TooManyRows { limit: usize },
    /// The query needed more memory than one query may use.
    #[error(
        "the query needs more than {limit_bytes} bytes of memory; narrow the date range or the breakdown"
    )]
    MemoryExceeded { limit_bytes: usize },
    /// The query ran longer than allowed and was cancelled.
    #[error("the query did not finish within {timeout_ms} ms and was cancelled")]
    Timeout { timeout_ms: u64 },
    /// Every query slot is busy (retryable).
    #[error("too many queries are running; retry shortly")]
    Busy,
    /// A bug or an I/O failure; details are for the log only.
    #[error("internal query error: {0}")]
    Internal(String),
}

impl QueryError {
    pub(crate) fn from_df(e: DataFusionError, limits: &EngineConfig) -> Self {
        match e.find_root() {
            DataFusionError::ResourcesExhausted(detail) => {
                // Which operators held the memory (names and sizes only, no data).
                tracing::info!(%detail, "query memory limit reached");
                Self::MemoryExceeded {
                    limit_bytes: limits.memory_bytes_per_query,
                }
            }
            DataFusionError::SQL(..)
            | DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..) => Self::InvalidSql(e.find_root().to_string()),
            DataFusionError::NotImplemented(m) => Self::InvalidSql(format!("not supported: {m}")),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// What a reader may see of the events. The server builds it from the reader's rights and
/// the tracking plan; the engine applies it where the `events` table is defined, so no
/// query shape (insight, live events, SQL) can get around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visibility {
    /// Top-level properties whose values come back as [`REDACTED`] (in `properties` and
    /// in any property column derived from it).
    pub redacted_props: Vec<String>,
    /// Personal values ([`minim_core::Event::personal`]) are put back in place of their
    /// placeholders; only then does the session load a personal column key. Without it
    /// they read as [`REDACTED`], as stored in `properties`.
    pub personal: bool,
}

impl Visibility {
    /// Everything, as stored (internal callers and principals with `read_personal`).
    pub fn all() -> Self {
        Self {
            redacted_props: Vec::new(),
            personal: true,
        }
    }

    /// A reader without personal access: `redacted` (the plan's restricted properties)
    /// read as [`REDACTED`] and personal values stay sealed.
    pub fn restricted(redacted: Vec<String>) -> Self {
        Self {
            redacted_props: redacted,
            personal: false,
        }
    }
}

/// The JSON value a redacted property reads as.
pub use minim_core::props::REDACTED;

/// Runs queries on a dedicated thread pool within [`EngineConfig`]'s bounds.
pub struct QueryEngine {
    config: EngineConfig,
    spec_limits: SpecLimits,
    runtime: Option<tokio::runtime::Runtime>,
    slots: Arc<Semaphore>,
    metadata: Arc<MetadataCache>,
}

impl QueryEngine {
    pub fn new(config: EngineConfig) -> std::io::Result<Self> {
        let threads = if config.threads == 0 {
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
        } else {
            config.threads
        };
        // Parquet reads of local files run as blocking tasks. A few reused threads keep
        // the allocator's per-thread memory few; tokio's default (512) let one query
        // start dozens, each keeping its freed buffers (RSS grew by gigabytes).
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .max_blocking_threads(threads * 2)
            .thread_name("minim-query")
            .enable_all()
            .build()?;
        let slots = Arc::new(Semaphore::new(config.max_concurrent_queries.max(1)));
        Ok(Self {
            config,
            spec_limits: SpecLimits::default(),
            runtime: Some(runtime),
            slots,
            metadata: Arc::new(MetadataCache::new(metadata::DEFAULT_CACHE_BYTES)),
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn spec_limits(&self) -> &SpecLimits {
        &self.spec_limits
    }

    /// Segment metadata files and bytes the engine keeps between queries.
    pub fn metadata_cache_usage(&self) -> metadata::CacheUsage {
        self.metadata.usage()
    }

    /// Validates and answers an insight query over `project`'s events in `snapshot`.
    pub async fn query(
        &self,
        snapshot: Snapshot,
        project: ProjectId,
        spec: QuerySpec,
    ) -> Result<QueryResult, QueryError> {
        self.query_as(snapshot, project, spec, Visibility::all())
            .await
    }

    /// [`QueryEngine::query`] for a reader who sees `visibility`.
    pub async fn query_as(
        &self,
        snapshot: Snapshot,
        project: ProjectId,
        spec: QuerySpec,
        visibility: Visibility,
    ) -> Result<QueryResult, QueryError> {
        spec.validate_with(&self.spec_limits)?;
        let config = self.config.clone();
        let props = spec.string_properties();
        self.run(
            move |ctx| async move { run_spec(&ctx, &spec, &config).await },
            snapshot,
            project,
            props,
            visibility,
        )
        .await
    }

    /// Runs read-only SQL over `project`'s `events` table (see `sql.rs`).
    pub async fn sql(
        &self,
        snapshot: Snapshot,
        project: ProjectId,
        sql: String,
    ) -> Result<SqlResult, QueryError> {
        self.sql_as(snapshot, project, sql, Visibility::all()).await
    }

    /// [`QueryEngine::sql`] for a reader who sees `visibility`.
    pub async fn sql_as(
        &self,
        snapshot: Snapshot,
        project: ProjectId,
        sql: String,
        visibility: Visibility,
    ) -> Result<SqlResult, QueryError> {
        let config = self.config.clone();
        self.run(
            move |ctx| async move { sql::run(&ctx, &sql, &config).await },
            snapshot,
            project,
            Vec::new(),
            visibility,
        )
        .await
    }

    /// Every stored event of one user (`distinct_id` as stored), newest first: the data
    /// subject export. Refused (422) beyond the SQL row cap, so an export is never
    /// silently partial.
    pub async fn user_events(
        &self,
        snapshot: Snapshot,
        project: ProjectId,
        distinct_id: String,
    ) -> Result<Vec<Event>, QueryError> {
        let config = self.config.clone();
        let cap = config.max_export_events;
        self.run(
            move |ctx| async move {
                let events = events::of_user(&ctx, &distinct_id, cap.saturating_add(1))
                    .await
                    .map_err(|e| QueryError::from_df(e, &config))?;
                if events.len() > cap {
                    return Err(QueryError::TooManyRows { limit: cap });
                }
                Ok(events)
            },
            snapshot,
            project,
            Vec::new(),
            Visibility::all(),
        )
        .await
    }

    /// Takes a slot, builds the session (with property columns for `props`) and runs
    /// `job` on the query pool with the timeout.
    async fn run<T, F, Fut>(
        &self,
        job: F,
        snapshot: Snapshot,
        project: ProjectId,
        props: Vec<String>,
        visibility: Visibility,
    ) -> Result<T, QueryError>
    where
        T: Send + 'static,
        F: FnOnce(SessionContext) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, QueryError>> + Send + 'static,
    {
        let queue = Duration::from_millis(self.config.queue_timeout_ms);
        let _slot = match tokio::time::timeout(queue, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            _ => return Err(QueryError::Busy),
        };
        let Some(runtime) = self.runtime.as_ref() else {
            return Err(QueryError::Internal("query engine stopped".into()));
        };
        let config = self.config.clone();
        let metadata = Arc::clone(&self.metadata);
        let handle = runtime.spawn(async move {
            let ctx =
                session_with_limits(&snapshot, &project, &config, props, &visibility, &metadata)
                    .await
                    .map_err(|e| QueryError::from_df(e, &config))?;
            job(ctx).await
        });
        let abort = handle.abort_handle();
        let timeout = Duration::from_millis(self.config.timeout_ms);
        match tokio::time::timeout(timeout, handle).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(QueryError::Internal(format!("query task failed: {join}"))),
            Err(_) => {
                abort.abort();
                Err(QueryError::Timeout {
                    timeout_ms: self.config.timeout_ms,
                })
            }
        }
    }
}

impl Drop for QueryEngine {
    fn drop(&mut self) {
        // Dropping a runtime inside another one panics; let its threads wind down alone.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn run_spec(
    ctx: &SessionContext,
    spec: &QuerySpec,
    config: &EngineConfig,
) -> Result<QueryResult, QueryError> {
    let df_err = |e| QueryError::from_df(e, config);
    Ok(match spec {
        QuerySpec::Trends(s) => QueryResult::Trends(trends::run(ctx, s).await.map_err(df_err)?),
        QuerySpec::Funnel(s) => QueryResult::Funnel(funnel::run(ctx, s).await.map_err(df_err)?),
        QuerySpec::Retention(s) => {
            QueryResult::Retention(retention::run(ctx, s).await.map_err(df_err)?)
        }
        QuerySpec::Paths(s) => QueryResult::Paths(paths::run(ctx, s).await.map_err(df_err)?),
        QuerySpec::Events(s) => QueryResult::Events(events::run(ctx, s).await.map_err(df_err)?),
    })
}

/// Asks the CPU to bring `item`'s cache line in without waiting for it (group tables
/// probe far more memory than the caches hold; a prefetch some rows ahead lets those
/// misses overlap).
#[inline]
pub(crate) fn prefetch<T>(item: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it reads nothing into the program and cannot fault;
    // the pointer comes from a reference, so it is valid anyway.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>((item as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = item;
}

/// The index of the first row of each run of equal adjacent rows, ascending (empty for no
/// rows), as a prefix of `scratch`. Rows are equal when both are valid with equal
/// `values`, or both NULL (`nulls`; two NULLs with different values underneath may also
/// start separate runs). Segment rows come in runs (a user's rows of an event, their
/// country), a few rows long, so a "same as the row before?" branch per row mispredicts
/// at every run's start; this loop has no branch on the rows: it writes a candidate start
/// every row and advances past it only when the row differs from the one before.
/// `scratch` only grows, so a caller that keeps it writes no zeros batch after batch.
pub(crate) fn run_starts<'s, T: PartialEq>(
    values: &[T],
    nulls: Option<&arrow::buffer::NullBuffer>,
    scratch: &'s mut Vec<usize>,
) -> &'s [usize] {
    if values.is_empty() {
        return &[];
    }
    if scratch.len() < values.len() {
        scratch.resize(values.len(), 0);
    }
    let mut runs = 1;
    if let Some(first) = scratch.first_mut() {
        *first = 0;
    }
    let nulls = nulls.filter(|n| n.null_count() > 0);
    for (i, pair) in values.windows(2).enumerate() {
        if let Some(slot) = scratch.get_mut(runs) {
            *slot = i + 1;
        }
        let validity_changed = nulls.is_some_and(|n| n.is_valid(i) != n.is_valid(i + 1));
        runs += usize::from((pair[0] != pair[1]) | validity_changed);
    }
    scratch.get(..runs).unwrap_or_default()
}

/// `plan` with every node for which `rewrite` returns a replacement replaced, bottom up
/// (the walk of Minim's physical optimizer rules).
fn rewrite_plan(
    plan: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    rewrite: impl Fn(
        &Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    ) -> DfResult<Option<Arc<dyn datafusion::physical_plan::ExecutionPlan>>>,
) -> DfResult<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    plan.transform_up(|node| {
        Ok(match rewrite(&node)? {
            Some(new) => Transformed::yes(new),
            None => Transformed::no(node),
        })
    })
    .map(|t| t.data)
}

/// A DataFusion session over `project`'s events in `snapshot`, with Minim's functions
/// registered, default limits and a `prop:<name>` column for each of `props` (see
/// `table.rs`). Only that project's data is reachable from it.
pub async fn session(
    snapshot: &Snapshot,
    project: &ProjectId,
    props: &[String],
) -> DfResult<SessionContext> {
    session_with_limits(
        snapshot,
        project,
        &EngineConfig::default(),
        props.to_vec(),
        &Visibility::all(),
        &Arc::new(MetadataCache::new(metadata::DEFAULT_CACHE_BYTES)),
    )
    .await
}

async fn session_with_limits(
    snapshot: &Snapshot,
    project: &ProjectId,
    config: &EngineConfig,
    props: Vec<String>,
    visibility: &Visibility,
    metadata: &Arc<MetadataCache>,
) -> DfResult<SessionContext> {
    let partitions = if config.threads == 0 {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    } else {
        config.threads
    };
    // Statistics would be gathered at planning from every file's footer; row groups are
    // pruned when files are opened anyway.
    let session_config = SessionConfig::new()
        .with_collect_statistics(false)
        .with_target_partitions(partitions)
        .with_information_schema(false)
        .with_extension(Arc::new(filter::PropColumns(props.clone())));
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(config.memory_bytes_per_query, 1.0)
        .with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
        )
        .build_arc()?;
    let times = time_filter::SegmentTimes(
        snapshot
            .segments
            .iter()
            .filter_map(|s| {
                datafusion::object_store::path::Path::from_filesystem_path(&s.path)
                    .ok()
                    .map(|p| (p.to_string(), (s.meta.min_ts_ms, s.meta.max_ts_ms)))
            })
            .collect(),
    );
    let live: std::collections::HashSet<String> = times.0.keys().cloned().collect();
    metadata.retain_live(&live);
    let state = SessionStateBuilder::new()
        .with_config(session_config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_physical_optimizer_rule(Arc::new(metadata::CacheRule {
            cache: Arc::clone(metadata),
            personal: visibility.personal,
        }))
        .with_physical_optimizer_rule(Arc::new(time_filter::TimeFilterRule {
            times: Arc::new(times),
        }))
        .with_physical_optimizer_rule(Arc::new(event_filter::EventFilterRule))
        .with_physical_optimizer_rule(Arc::new(one_stage::OneStageRule))
        .with_physical_optimizer_rule(Arc::new(per_user::PerUserRule))
        .build();
    let ctx = SessionContext::new_with_state(state);
    udf::register(&ctx);
    udaf::register(&ctx);
    table::register_events(&ctx, snapshot, project, &props, visibility)?;
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn run_starts_are_where_the_row_changes(
            rows in prop::collection::vec((0u8..3, any::<bool>(), any::<bool>()), 0..200),
            junk in prop::collection::vec(any::<usize>(), 0..5),
        ) {
            // (value, valid, whether NULLs hide a different value underneath)
            let values: Vec<u8> = rows
                .iter()
                .map(|&(v, valid, hide)| if !valid && hide { v + 10 } else { v })
                .collect();
            let validity: Vec<bool> = rows.iter().map(|r| r.1).collect();
            let nulls = arrow::buffer::NullBuffer::from(validity.clone());
            let row = |i: usize| validity.get(i).map(|&ok| ok.then(|| values.get(i)));
            let mut scratch = junk.clone();
            let starts = super::run_starts(&values, Some(&nulls), &mut scratch).to_vec();
            // Every start is where the row differs; every change of row is a start.
            prop_assert_eq!(starts.first().copied(), (!values.is_empty()).then_some(0));
            prop_assert!(starts.windows(2).all(|w| w[0] < w[1]));
            for i in 1..values.len() {
                let differs = row(i) != row(i - 1);
                let both_null = validity.get(i) == Some(&false) && validity.get(i - 1) == Some(&false);
                if differs && !both_null {
                    prop_assert!(starts.contains(&i), "row {} starts a run", i);
                }
                if starts.contains(&i) {
                    prop_assert!(values.get(i) != values.get(i - 1) || validity.get(i) != validity.get(i - 1));
                }
            }
            // Without NULLs: exactly where the value changes.
            let mut scratch = junk;
            let plain = super::run_starts(&values, None, &mut scratch).to_vec();
            let naive: Vec<usize> = (0..values.len())
                .filter(|&i| i == 0 || values.get(i) != values.get(i - 1))
                .collect();
            prop_assert_eq!(plain, naive);
        }
    }
}
