//! The one router: every route of the server is listed here.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::privacy_api as privacy;

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
        .route(
            "/api/v1/projects/{project_id}/plan",
            get(privacy::get_plan)
                .put(privacy::put_plan)
                .layer(DefaultBodyLimit::max(query::MAX_QUERY_BODY_BYTES)),
        )
        .route(
            "/api/v1/projects/{project_id}/plan/suggestions",
            get(privacy::get_suggestions).delete(privacy::clear_suggestions),
        )
        .route(
            "/api/v1/projects/{project_id}/privacy/stats",
            get(privacy::stats),
        )
        .route(
            "/api/v1/projects/{project_id}/deletions",
            get(privacy::deletions),
        )
        .route(
            "/api/v1/projects/{project_id}/retention/run",
            post(privacy::run_retention),
        )
        .route(
            "/api/v1/projects/{project_id}/subjects/erase",
            post(privacy::erase).layer(DefaultBodyLimit::max(query::MAX_QUERY_BODY_BYTES)),
        )
        .route(
            "/api/v1/projects/{project_id}/subjects/export",
            post(privacy::export).layer(DefaultBodyLimit::max(query::MAX_QUERY_BODY_BYTES)),
        )
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(app)
}
