//! The one router: every route of the server is listed here.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::{ApiError, App, health, ingest, query};

pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        // The ingest handler enforces its own (configurable) body limit while streaming.
        .route(
            "/api/v1/events",
            post(ingest::native).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/api/v1/projects/{project_id}/query",
            post(query::insight).layer(DefaultBodyLimit::max(query::MAX_QUERY_BODY_BYTES)),
        )
        .route(
            "/api/v1/projects/{project_id}/sql",
            post(query::sql).layer(DefaultBodyLimit::max(query::MAX_QUERY_BODY_BYTES)),
        )
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(app)
}
