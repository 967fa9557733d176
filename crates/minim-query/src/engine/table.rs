//! The `events` table of a query session: a project's Parquet segments (read with
//! row-group pruning) unioned with its memtable chunks, all with the segment schema.

use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::Result;
use datafusion::prelude::SessionContext;
use minim_core::ProjectId;
use minim_store::Snapshot;
use minim_store::segment::{events_to_batch, schema};

pub const EVENTS_TABLE: &str = "events";
const SEGMENTS_TABLE: &str = "minim_segments";
const MEMTABLE_TABLE: &str = "minim_memtable";

pub(crate) async fn register_events(
    ctx: &SessionContext,
    snapshot: &Snapshot,
    project: &ProjectId,
) -> Result<()> {
    let schema = schema();
    let urls: Vec<ListingTableUrl> = snapshot
        .segments
        .iter()
        .filter(|s| &s.meta.project == project)
        .map(|s| ListingTableUrl::parse(s.path.to_string_lossy()))
        .collect::<Result<_>>()?;
    let segments: Arc<dyn datafusion::datasource::TableProvider> = if urls.is_empty() {
        Arc::new(MemTable::try_new(schema.clone(), vec![vec![]])?)
    } else {
        let options =
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(schema.clone());
        Arc::new(ListingTable::try_new(config)?)
    };
    let batches: Vec<RecordBatch> = snapshot
        .memtable
        .iter()
        .filter(|(k, _)| &k.project == project)
        .map(|(_, chunk)| events_to_batch(chunk.iter()))
        .collect::<Result<_, _>>()
        .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
    let memtable = MemTable::try_new(schema, vec![batches])?;
    ctx.register_table(SEGMENTS_TABLE, segments)?;
    ctx.register_table(MEMTABLE_TABLE, Arc::new(memtable))?;
    ctx.sql(&format!(
        "CREATE VIEW {EVENTS_TABLE} AS SELECT * FROM {SEGMENTS_TABLE} UNION ALL SELECT * FROM {MEMTABLE_TABLE}"
    ))
    .await?;
    Ok(())
}
