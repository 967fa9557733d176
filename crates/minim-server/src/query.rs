//! `POST /api/v1/projects/{project_id}/query` (insights) and `.../sql` (scoped SQL):
//! token authentication, the project and role check, and the hand-off to the engine.
//!
//! Roles gate these routes through `auth::authorize` (aggregates for every reader role
//! but `auditor`; raw events and SQL for `analyst` and `admin`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use minim_query::engine::SqlResult;
use minim_query::{QueryResult, QuerySpec};
use serde::Deserialize;

use crate::auth::{Access, authorize};
use crate::{ApiError, App};

/// Largest accepted query or SQL request body.
pub(crate) const MAX_QUERY_BODY_BYTES: usize = 1 << 20;

pub(crate) fn body_text(body: Result<Bytes, BytesRejection>) -> Result<String, ApiError> {
    let body = body.map_err(|_| ApiError::BodyTooLarge {
        limit: MAX_QUERY_BODY_BYTES,
    })?;
    String::from_utf8(body.to_vec()).map_err(|_| ApiError::BadRequest {
        code: "invalid_json",
        message: "the body is not UTF-8 JSON".into(),
    })
}

pub(crate) async fn insight(
    State(app): State<App>,
    Path(project_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<QueryResult>, ApiError> {
    // Parse before authorizing the kind: the role check needs to know it.
    let text = body_text(body)?;
    let spec = QuerySpec::from_json_str_with(&text, app.inner.engine.spec_limits());
    let access = match &spec {
        Ok(QuerySpec::Events(_)) => Access::RawEvents,
        _ => Access::Aggregates,
    };
    let project = authorize(&app, &headers, &project_id, access).await?;
    let spec = spec?;
    let kind = spec.kind();
    let started = std::time::Instant::now();
    let result = app
        .inner
        .engine
        .query(app.inner.store.snapshot(), project, spec)
        .await;
    metrics::histogram!(crate::telemetry::QUERY_SECONDS, "kind" => kind)
        .record(started.elapsed().as_secs_f64());
    Ok(Json(result?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    sql: String,
}

pub(crate) async fn sql(
    State(app): State<App>,
    Path(project_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<SqlResult>, ApiError> {
    let project = authorize(&app, &headers, &project_id, Access::Sql).await?;
    let text = body_text(body)?;
    let request: SqlRequest = serde_json::from_str(&text).map_err(|e| ApiError::BadRequest {
        code: "invalid_json",
        message: format!("expected {{\"sql\": \"SELECT ...\"}}: {e}"),
    })?;
    let started = std::time::Instant::now();
    let result = app
        .inner
        .engine
        .sql(app.inner.store.snapshot(), project, request.sql)
        .await;
    metrics::histogram!(crate::telemetry::QUERY_SECONDS, "kind" => "sql")
        .record(started.elapsed().as_secs_f64());
    Ok(Json(result?))
}
