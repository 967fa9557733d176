//! The `events` table of a query session: a project's Parquet segments (read with
//! row-group pruning) unioned with its memtable chunks. Only `events` is registered: the
//! sources behind it are not reachable by name.
//!
//! An insight query also asks for *property columns*: `events` then has one more
//! column per property, `prop:<name>`, holding its string form. Each source computes it
//! the cheapest way it can: a segment that shredded the property reads its column
//! (`minim_store::shred`), anything else runs `prop_str` over the JSON text. Both give
//! the same value for every row, so the choice never changes an answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::catalog::view::ViewTable;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::provider_as_source;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::cast;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, col, lit};
use datafusion::prelude::SessionContext;
use minim_core::ProjectId;
use minim_store::Snapshot;
use minim_store::segment::{COL_DISTINCT_ID, COL_PROPERTIES, events_to_batch, schema};
use minim_store::shred::{PROP_COLUMN_PREFIX, prop_column, schema_with};

use super::filter::column;
use super::udf::PROP_STR;

pub const EVENTS_TABLE: &str = "events";

/// Columns read as string views: the Parquet reader then points into its page buffers
/// (dictionary pages included) instead of copying every value, and group-bys on them
/// (user ids, breakdown values) compare inline prefixes.
fn is_view(name: &str) -> bool {
    name == COL_DISTINCT_ID || name.starts_with(PROP_COLUMN_PREFIX)
}

fn as_views(schema: SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if is_view(f.name()) {
                Field::new(f.name(), DataType::Utf8View, f.is_nullable())
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Registers `events` for `project`, with a `prop:<name>` column for each of `props`.
pub(crate) fn register_events(
    ctx: &SessionContext,
    snapshot: &Snapshot,
    project: &ProjectId,
    props: &[String],
    visibility: &super::Visibility,
) -> Result<()> {
    // Segments grouped by which of `props` they shredded: one scan per group.
    let mut groups: BTreeMap<Vec<String>, Vec<ListingTableUrl>> = BTreeMap::new();
    for s in snapshot
        .segments
        .iter()
        .filter(|s| &s.meta.project == project)
    {
        let shredded: Vec<String> = props
            .iter()
            .filter(|p| s.meta.shredded.contains(p))
            .cloned()
            .collect();
        groups
            .entry(shredded)
            .or_default()
            .push(ListingTableUrl::parse(s.path.to_string_lossy())?);
    }
    let batches: Vec<RecordBatch> = snapshot
        .memtable
        .iter()
        .filter(|(k, _)| &k.project == project)
        .map(|(_, chunk)| events_to_batch(chunk.iter()))
        .collect::<Result<_, _>>()
        .map_err(|e| DataFusionError::External(Box::new(e)))?;

    let prop_str = ctx.udf(PROP_STR)?;
    let redact = super::udf::redactor(&visibility.redacted_props);
    let mut sources: Vec<(Arc<dyn TableProvider>, Vec<String>)> = Vec::new();
    let parquet = super::encryption::parquet_options(ctx, snapshot.encryption.as_ref());
    for (shredded, urls) in groups {
        let format = ParquetFormat::default().with_options(parquet.clone());
        let options = ListingOptions::new(Arc::new(format)).with_file_extension(".parquet");
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(as_views(schema_with(&shredded)));
        sources.push((Arc::new(ListingTable::try_new(config)?), shredded));
    }
    if !batches.is_empty() || sources.is_empty() {
        sources.push((
            Arc::new(MemTable::try_new(schema(), vec![batches])?),
            Vec::new(),
        ));
    }
    let mut union: Option<LogicalPlanBuilder> = None;
    for (i, (source, shredded)) in sources.into_iter().enumerate() {
        let mut columns: Vec<Expr> = schema()
            .fields()
            .iter()
            .map(|f| {
                let value = match &redact {
                    Some(redact) if f.name() == COL_PROPERTIES => {
                        redact.call(vec![col(COL_PROPERTIES)])
                    }
                    _ => col(f.name()),
                };
                if is_view(f.name()) {
                    cast(value, DataType::Utf8View).alias(f.name())
                } else {
                    value.alias(f.name())
                }
            })
            .collect();
        for p in props {
            let value = if visibility.redacted_props.contains(p) {
                lit(super::REDACTED.trim_matches('"'))
            } else if shredded.contains(p) {
                column(&prop_column(p))
            } else {
                prop_str.call(vec![col(COL_PROPERTIES), lit(p.as_str())])
            };
            columns.push(cast(value, DataType::Utf8View).alias(prop_column(p)));
        }
        let scan: LogicalPlan = LogicalPlanBuilder::scan(
            format!("minim_source_{i}"),
            provider_as_source(source),
            None,
        )?
        .project(columns)?
        .build()?;
        union = Some(match union {
            None => LogicalPlanBuilder::from(scan),
            Some(u) => u.union(scan)?,
        });
    }
    let plan = union
        .ok_or_else(|| DataFusionError::Internal("no event source".into()))?
        .build()?;
    ctx.register_table(EVENTS_TABLE, Arc::new(ViewTable::new(plan, None)))?;
    Ok(())
}
