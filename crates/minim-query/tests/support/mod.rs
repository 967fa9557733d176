//! Test support: a real store in a temporary directory holding given events, split
//! between Parquet segments and the memtable, and the query engine over it.

#![allow(dead_code)]

use minim_core::{Event, EventBatch, ProjectId};
use minim_query::engine::{EngineConfig, QueryEngine, QueryError};
use minim_query::{QueryResult, QuerySpec};
use minim_store::{Store, StoreConfig};
use serde_json::Value;

/// A store with events of project `p` (and a copy under project `other`, which no query
/// of `p` may see).
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub project: ProjectId,
    pub engine: QueryEngine,
    pub rt: tokio::runtime::Runtime,
}

impl Fixture {
    /// `events[..flushed]` go to segments (two flushes, so several files), the rest stay
    /// in the memtable.
    pub fn new(events: &[Event], flushed: usize) -> Self {
        Self::with_config(events, flushed, EngineConfig::default())
    }

    /// [`Fixture::new`] with the store encrypting its files (keys in `<dir>/keys`).
    pub fn encrypted(events: &[Event], flushed: usize) -> Self {
        Self::with_options(events, flushed, EngineConfig::default(), true)
    }

    pub fn with_config(events: &[Event], flushed: usize, config: EngineConfig) -> Self {
        Self::with_options(events, flushed, config, false)
    }

    pub fn with_options(
        events: &[Event],
        flushed: usize,
        config: EngineConfig,
        encrypted: bool,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().join("data");
        let encryption = encrypted.then(|| {
            let (ring, _) =
                minim_crypto::Keyring::open_for_data_dir(&data_dir, &dir.path().join("keys"), None)
                    .expect("keyring");
            minim_store::Encryption::new(std::sync::Arc::new(ring))
        });
        let store = Store::open(StoreConfig {
            data_dir,
            encryption,
            ..StoreConfig::default()
        })
        .expect("store opens");
        let project = ProjectId::new("p").expect("valid id");
        let other = ProjectId::new("other").expect("valid id");
        let cut = flushed.min(events.len());
        let half = cut / 2;
        for part in [&events[..half], &events[half..cut]] {
            if !part.is_empty() {
                append(&store, &project, part);
                store.flush().expect("flush");
            }
        }
        if cut < events.len() {
            append(&store, &project, &events[cut..]);
        }
        if !events.is_empty() {
            let mut copy = events.to_vec();
            for e in &mut copy {
                e.event = format!("other-{}", e.event);
            }
            append(&store, &other, &copy);
        }
        let engine = QueryEngine::new(config).expect("engine starts");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Self {
            dir,
            store,
            project,
            engine,
            rt,
        }
    }

    pub fn query(&self, spec: &QuerySpec) -> Result<QueryResult, QueryError> {
        self.rt.block_on(self.engine.query(
            self.store.snapshot(),
            self.project.clone(),
            spec.clone(),
        ))
    }

    pub fn query_as(
        &self,
        spec: &QuerySpec,
        visibility: &minim_query::engine::Visibility,
    ) -> Result<QueryResult, QueryError> {
        self.rt.block_on(self.engine.query_as(
            self.store.snapshot(),
            self.project.clone(),
            spec.clone(),
            visibility.clone(),
        ))
    }

    pub fn sql_as(
        &self,
        sql: &str,
        visibility: &minim_query::engine::Visibility,
    ) -> Result<minim_query::engine::SqlResult, QueryError> {
        self.rt.block_on(self.engine.sql_as(
            self.store.snapshot(),
            self.project.clone(),
            sql.to_owned(),
            visibility.clone(),
        ))
    }

    pub fn sql(&self, sql: &str) -> Result<minim_query::engine::SqlResult, QueryError> {
        self.rt.block_on(self.engine.sql(
            self.store.snapshot(),
            self.project.clone(),
            sql.to_owned(),
        ))
    }
}

/// Callers give unique `insert_id`s (or none): the store stores a repeated one once,
/// the reference would count it twice.
fn append(store: &Store, project: &ProjectId, events: &[Event]) {
    store
        .append_blocking(EventBatch {
            project: project.clone(),
            events: events.to_vec(),
        })
        .expect("append");
}

/// Compares `actual` with `expected`; on a difference, returns the JSON path of the first.
pub fn diff(expected: &Value, actual: &Value, path: &str) -> Option<String> {
    match (expected, actual) {
        (Value::Number(e), Value::Number(a)) => {
            let same = if e.is_f64() {
                a.is_f64() && {
                    let (x, y) = (
                        e.as_f64().unwrap_or(f64::NAN),
                        a.as_f64().unwrap_or(f64::NAN),
                    );
                    (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
                }
            } else {
                !a.is_f64() && e == a
            };
            (!same).then(|| format!("{path}: expected {e}, got {a}"))
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                return Some(format!(
                    "{path}: expected {} entries, got {}",
                    e.len(),
                    a.len()
                ));
            }
            e.iter()
                .zip(a)
                .enumerate()
                .find_map(|(i, (x, y))| diff(x, y, &format!("{path}[{i}]")))
        }
        (Value::Object(e), Value::Object(a)) => {
            let mut keys: Vec<&String> = e.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| match (e.get(k), a.get(k)) {
                (Some(x), Some(y)) => diff(x, y, &format!("{path}.{k}")),
                (Some(_), None) => Some(format!("{path}.{k}: missing")),
                (None, Some(y)) => Some(format!("{path}.{k}: unexpected {y}")),
                (None, None) => None,
            })
        }
        (e, a) => (e != a).then(|| format!("{path}: expected {e}, got {a}")),
    }
}
