//! `/healthz`, `/readyz` and `/metrics`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use minim_store::Health;

use crate::{ApiError, App, telemetry};

pub(crate) async fn healthz() -> Response {
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({ "status": "ok" })),
    )
        .into_response()
}

pub(crate) async fn readyz(State(app): State<App>) -> Response {
    match app.inner.store.health() {
        Health::Ready => (
            StatusCode::OK,
            axum::Json(serde_json::json!({ "status": "ready" })),
        )
            .into_response(),
        Health::Unready(reason) => {
            let body = serde_json::json!({ "error": { "code": "not_ready", "message": reason } });
            let mut resp = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, ApiError::RETRY_AFTER_S.into());
            resp
        }
    }
}

pub(crate) async fn metrics(State(app): State<App>) -> Response {
    ::metrics::gauge!(telemetry::INGEST_MEMORY_AVAILABLE_BYTES)
        .set(app.inner.ingest_memory.available_permits() as f64 * 1024.0);
    let body = telemetry::render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
