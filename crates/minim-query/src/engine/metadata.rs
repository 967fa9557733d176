//! Segment metadata (footer and page indexes, decrypted) kept across query sessions.
//!
//! Segments are immutable, yet every query session would read and decrypt each file's
//! footer and page indexes again (DataFusion does not cache metadata of encrypted files,
//! and each session has its own runtime). [`MetadataCache`] keeps the parsed
//! `ParquetMetaData` per (file, personal access) for the engine's lifetime, bounded in
//! bytes (least recently used out first); [`CacheRule`] points every Parquet scan of a
//! session at it. A reader without personal access never gets metadata read with the
//! personal key (the key is part of the cache key). Entries of files no longer live
//! (compacted, re-encrypted, a deleted project's) are dropped whenever a session starts,
//! so their keys do not outlive the data in memory.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use datafusion::common::config::ConfigOptions;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::ParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::FutureExt;
use futures::future::BoxFuture;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};

/// Default bound of the cache: footers and page indexes of a few thousand segments.
pub const DEFAULT_CACHE_BYTES: usize = 128 << 20;

/// (file path, read with personal access)
type Key = (String, bool);

struct Entry {
    /// Size and modification time of the file the metadata was read from.
    size: u64,
    modified_ms: i64,
    metadata: Arc<ParquetMetaData>,
    bytes: usize,
    last_used: u64,
}

#[derive(Default)]
struct State {
    entries: HashMap<Key, Entry>,
    bytes: usize,
    clock: u64,
    hits: u64,
}

/// What the cache holds and how often it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheUsage {
    pub entries: usize,
    pub bytes: usize,
    /// Metadata requests answered from the cache since the engine started.
    pub hits: u64,
}

/// Parsed, decrypted segment metadata shared by the engine's sessions.
pub struct MetadataCache {
    limit_bytes: usize,
    state: Mutex<State>,
}

impl std::fmt::Debug for MetadataCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("MetadataCache")
            .field("entries", &state.entries.len())
            .field("bytes", &state.bytes)
            .finish()
    }
}

impl MetadataCache {
    pub fn new(limit_bytes: usize) -> Self {
        Self {
            limit_bytes,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, key: &Key, file: &PartitionedFile) -> Option<Arc<ParquetMetaData>> {
        let mut state = self.lock();
        state.clock += 1;
        let now = state.clock;
        let entry = state.entries.get_mut(key)?;
        let meta = &file.object_meta;
        if entry.size != meta.size || entry.modified_ms != meta.last_modified.timestamp_millis() {
            return None;
        }
        entry.last_used = now;
        let metadata = Arc::clone(&entry.metadata);
        state.hits += 1;
        Some(metadata)
    }

    fn insert(&self, key: Key, file: &PartitionedFile, metadata: Arc<ParquetMetaData>) {
        let bytes = metadata.memory_size();
        if bytes > self.limit_bytes {
            return;
        }
        let mut state = self.lock();
        state.clock += 1;
        let entry = Entry {
            size: file.object_meta.size,
            modified_ms: file.object_meta.last_modified.timestamp_millis(),
            metadata,
            bytes,
            last_used: state.clock,
        };
        state.bytes += bytes;
        if let Some(old) = state.entries.insert(key, entry) {
            state.bytes -= old.bytes;
        }
        while state.bytes > self.limit_bytes {
            let Some(oldest) = state
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = state.entries.remove(&oldest) {
                state.bytes -= e.bytes;
            }
        }
    }

    /// Drops every entry whose file is not in `live` (object store paths of the
    /// snapshot's segments).
    pub fn retain_live(&self, live: &HashSet<String>) {
        let mut state = self.lock();
        let before = state.entries.len();
        let mut freed = 0;
        state.entries.retain(|(path, _), e| {
            let keep = live.contains(path);
            if !keep {
                freed += e.bytes;
            }
            keep
        });
        state.bytes -= freed;
        if state.entries.len() != before {
            tracing::debug!(
                dropped = before - state.entries.len(),
                "segment metadata of files no longer live dropped"
            );
        }
    }

    /// What the cache holds and how often it answered (for tests and metrics).
    pub fn usage(&self) -> CacheUsage {
        let state = self.lock();
        CacheUsage {
            entries: state.entries.len(),
            bytes: state.bytes,
            hits: state.hits,
        }
    }
}

/// A physical optimizer rule (run last) that makes every Parquet scan of the session
/// read metadata through the cache.
#[derive(Debug)]
pub(crate) struct CacheRule {
    pub cache: Arc<MetadataCache>,
    pub personal: bool,
}

impl PhysicalOptimizerRule for CacheRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        super::rewrite_plan(plan, |node| {
            let Some(exec) = node.downcast_ref::<DataSourceExec>() else {
                return Ok(None);
            };
            let Some((conf, source)) = exec.downcast_to_file_source::<ParquetSource>() else {
                return Ok(None);
            };
            let Some(inner) = source.parquet_file_reader_factory() else {
                return Ok(None);
            };
            let factory = Arc::new(CachedFactory {
                inner: Arc::clone(inner),
                cache: Arc::clone(&self.cache),
                personal: self.personal,
            });
            let source = source.clone().with_parquet_file_reader_factory(factory);
            let conf = FileScanConfigBuilder::from(conf.clone())
                .with_source(Arc::new(source))
                .build();
            let exec = exec.clone().with_data_source(Arc::new(conf));
            Ok(Some(Arc::new(exec) as Arc<dyn ExecutionPlan>))
        })
    }

    fn name(&self) -> &str {
        "minim_segment_metadata_cache"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[derive(Debug)]
struct CachedFactory {
    inner: Arc<dyn ParquetFileReaderFactory>,
    cache: Arc<MetadataCache>,
    personal: bool,
}

impl ParquetFileReaderFactory for CachedFactory {
    fn create_reader(
        &self,
        partition_index: usize,
        file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> Result<Box<dyn AsyncFileReader + Send>> {
        let inner =
            self.inner
                .create_reader(partition_index, file.clone(), metadata_size_hint, metrics)?;
        Ok(Box::new(CachedReader {
            inner,
            key: (file.object_meta.location.to_string(), self.personal),
            file,
            cache: Arc::clone(&self.cache),
        }))
    }
}

struct CachedReader {
    inner: Box<dyn AsyncFileReader + Send>,
    key: Key,
    file: PartitionedFile,
    cache: Arc<MetadataCache>,
}

impl AsyncFileReader for CachedReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        self.inner.get_bytes(range)
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        self.inner.get_byte_ranges(ranges)
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            if let Some(hit) = self.cache.get(&self.key, &self.file) {
                return Ok(hit);
            }
            // Read the page indexes too, once, so later sessions never fetch them.
            let options = options
                .cloned()
                .unwrap_or_default()
                .with_page_index_policy(PageIndexPolicy::Optional);
            let metadata = self.inner.get_metadata(Some(&options)).await?;
            self.cache
                .insert(self.key.clone(), &self.file, Arc::clone(&metadata));
            Ok(metadata)
        }
        .boxed()
    }
}
