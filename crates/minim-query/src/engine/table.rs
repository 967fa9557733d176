//! The `events` table of a query session: a project's Parquet segments (read with
//! row-group pruning) unioned with its memtable chunks. Only `events` is registered: the
//! sources behind it are not reachable by name.
//!
//! An insight query also asks for *property columns*: `events` then has one more
//! column per property, `prop:<name>`, holding its string form. Each source computes it
//! the cheapest way it can: a segment that shredded the property reads its column
//! (`minim_store::shred`), anything else runs `prop_str` over the JSON text. Both give
//! the same value for every row, so the choice never changes an answer.
//!
//! Personal values ([`minim_core::Event::personal`]) live in a separate `personal` column
//! (encrypted under its own key in segments). For a reader with personal access the
//! view puts them back into `properties` and property columns; for anyone else the
//! column is never read (its key never loaded) and `properties` holds their placeholders.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch};
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
use datafusion::functions::expr_fn::coalesce;
use datafusion::logical_expr::cast;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, col, lit};
use datafusion::prelude::SessionContext;
use minim_core::ProjectId;
use minim_store::Snapshot;
use minim_store::segment::{
    COL_DISTINCT_ID, COL_PERSONAL, COL_PROPERTIES, events_to_batch, schema, without_personal,
};
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
    // Segments grouped by which of `props` they shredded and whether the session reads
    // their personal column: one scan per group.
    let mut groups: BTreeMap<(Vec<String>, bool), Vec<ListingTableUrl>> = BTreeMap::new();
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
            .entry((shredded, visibility.personal && s.meta.personal))
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

    let has_personal = batches.iter().any(|b| {
        b.column_by_name(COL_PERSONAL)
            .is_some_and(|c| c.null_count() < c.len())
    });
    let prop_str = ctx.udf(PROP_STR)?;
    let redact = super::udf::redactor(&visibility.redacted_props);
    let merge = visibility.personal.then(super::udf::personal_merger);
    // (source, its shredded properties, whether it has a personal column to merge)
    let mut sources: Vec<(Arc<dyn TableProvider>, Vec<String>, bool)> = Vec::new();
    let parquet =
        super::encryption::parquet_options(ctx, snapshot.encryption.as_ref(), visibility.personal);
    for ((shredded, personal), urls) in groups {
        let format = ParquetFormat::default().with_options(parquet.clone());
        let options = ListingOptions::new(Arc::new(format)).with_file_extension(".parquet");
        let mut file_schema = schema_with(&shredded);
        if !personal {
            file_schema = without_personal(&file_schema);
        }
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(as_views(file_schema));
        sources.push((Arc::new(ListingTable::try_new(config)?), shredded, personal));
    }
    if !batches.is_empty() || sources.is_empty() {
        sources.push((
            Arc::new(MemTable::try_new(schema(), vec![batches])?),
            Vec::new(),
            visibility.personal && has_personal,
        ));
    }
    let mut union: Option<LogicalPlanBuilder> = None;
    for (i, (source, shredded, personal)) in sources.into_iter().enumerate() {
        let merge = merge.as_ref().filter(|_| personal);
        let mut columns: Vec<Expr> = schema()
            .fields()
            .iter()
            .filter(|f| f.name() != COL_PERSONAL)
            .map(|f| {
                let value = if f.name() == COL_PROPERTIES {
                    let mut v = col(COL_PROPERTIES);
                    if let Some(merge) = merge {
                        v = merge.call(vec![v, col(COL_PERSONAL)]);
                    }
                    if let Some(redact) = &redact {
                        v = redact.call(vec![v]);
                    }
                    v
                } else {
                    col(f.name())
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
            } else {
                let stored = if shredded.contains(p) {
                    column(&prop_column(p))
                } else {
                    prop_str.call(vec![col(COL_PROPERTIES), lit(p.as_str())])
                };
                if merge.is_some() {
                    // A personal value, where the event has one, stands in for its placeholder.
                    coalesce(vec![
                        prop_str.call(vec![col(COL_PERSONAL), lit(p.as_str())]),
                        stored,
                    ])
                } else {
                    stored
                }
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
