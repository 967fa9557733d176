//! The `events` table of a query session: a project's Parquet segments (read with
//! row-group pruning) unioned with its memtable chunks, all with the segment schema.
//! Only `events` is registered: the two sources behind it are not reachable by name.

use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::catalog::view::ViewTable;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::provider_as_source;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::LogicalPlanBuilder;
use datafusion::prelude::SessionContext;
use minim_core::ProjectId;
use minim_store::Snapshot;
use minim_store::segment::{events_to_batch, schema};

pub const EVENTS_TABLE: &str = "events";

pub(crate) fn register_events(
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
    let batches: Vec<RecordBatch> = snapshot
        .memtable
        .iter()
        .filter(|(k, _)| &k.project == project)
        .map(|(_, chunk)| events_to_batch(chunk.iter()))
        .collect::<Result<_, _>>()
        .map_err(|e| DataFusionError::External(Box::new(e)))?;

    let mut sources: Vec<Arc<dyn TableProvider>> = Vec::new();
    if !urls.is_empty() {
        let options =
            ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(schema.clone());
        sources.push(Arc::new(ListingTable::try_new(config)?));
    }
    if !batches.is_empty() || sources.is_empty() {
        sources.push(Arc::new(MemTable::try_new(schema, vec![batches])?));
    }
    let mut builder: Option<LogicalPlanBuilder> = None;
    for (i, source) in sources.into_iter().enumerate() {
        let scan = LogicalPlanBuilder::scan(
            format!("minim_source_{i}"),
            provider_as_source(source),
            None,
        )?;
        builder = Some(match builder {
            None => scan,
            Some(b) => b.union(scan.build()?)?,
        });
    }
    let plan = builder
        .ok_or_else(|| DataFusionError::Internal("no event source".into()))?
        .build()?;
    ctx.register_table(EVENTS_TABLE, Arc::new(ViewTable::new(plan, None)))?;
    Ok(())
}
