//! The scoped SQL endpoint's engine side: one read-only `SELECT` over the project's
//! `events` table (the only table the session has), with DDL, DML, `SET`, `COPY` and
//! `EXPLAIN` refused before planning reaches any data, and the result capped at
//! `max_sql_rows`. The session has no function that reads files or the network (no
//! table providers beyond `events`, no `information_schema`, no spilling).

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use arrow_json::StructMode;
use arrow_json::writer::{JsonArray, WriterBuilder};
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use serde::Serialize;

use super::{EngineConfig, QueryError};

/// One result column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SqlColumn {
    pub name: String,
    /// The Arrow type, e.g. `Int64`, `Utf8`, `Timestamp(Millisecond, Some("UTC"))`.
    #[serde(rename = "type")]
    pub data_type: String,
}

/// `{"columns": [...], "rows": [[...], ...], "row_count": n}`: rows as arrays in column
/// order (timestamps as RFC 3339 text, NULL as `null`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SqlResult {
    pub columns: Vec<SqlColumn>,
    pub rows: Vec<serde_json::Value>,
    pub row_count: usize,
}

pub(crate) async fn run(
    ctx: &SessionContext,
    sql: &str,
    config: &EngineConfig,
) -> Result<SqlResult, QueryError> {
    let df_err = |e| QueryError::from_df(e, config);
    let plan = ctx.state().create_logical_plan(sql).await.map_err(df_err)?;
    let read_only = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    if let Err(e) = read_only.verify_plan(&plan) {
        return Err(QueryError::SqlNotAllowed(format!(
            "only read-only SELECT queries are allowed here ({})",
            e.strip_backtrace()
        )));
    }
    if matches!(plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_)) {
        return Err(QueryError::SqlNotAllowed(
            "EXPLAIN is not available on this endpoint".into(),
        ));
    }
    let limit = config.max_sql_rows;
    let frame = ctx
        .execute_logical_plan(plan)
        .await
        .map_err(df_err)?
        .limit(0, Some(limit.saturating_add(1)))
        .map_err(df_err)?;
    let schema = frame.schema().as_arrow().clone();
    let batches = frame.collect().await.map_err(df_err)?;
    let row_count: usize = batches.iter().map(RecordBatch::num_rows).sum();
    if row_count > limit {
        return Err(QueryError::TooManyRows { limit });
    }
    to_result(&schema, &batches).map_err(|e| QueryError::Internal(e.to_string()))
}

fn to_result(
    schema: &arrow::datatypes::Schema,
    batches: &[RecordBatch],
) -> Result<SqlResult, Box<dyn std::error::Error>> {
    // Columns come from the plan, so an empty result still names them. Dictionary and
    // view columns (how `event` and `distinct_id` are read) are reported as plain
    // strings: the encoding is a storage detail, the rows hold plain values either way.
    let columns = schema
        .fields()
        .iter()
        .map(|f| SqlColumn {
            name: f.name().clone(),
            data_type: match f.data_type() {
                DataType::Dictionary(_, value) => value.to_string(),
                DataType::Utf8View => DataType::Utf8.to_string(),
                other => other.to_string(),
            },
        })
        .collect();
    let mut writer = WriterBuilder::new()
        .with_explicit_nulls(true)
        .with_struct_mode(StructMode::ListOnly)
        .build::<_, JsonArray>(Vec::new());
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    writer.write_batches(&refs)?;
    writer.finish()?;
    let text = writer.into_inner();
    let rows: Vec<serde_json::Value> = if text.is_empty() {
        Vec::new()
    } else {
        serde_json::from_slice(&text)?
    };
    Ok(SqlResult {
        row_count: rows.len(),
        columns,
        rows,
    })
}
