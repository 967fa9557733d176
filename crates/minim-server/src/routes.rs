//! The one router: every route of the server is listed here. Everything under
//! `/api/v1` except ingest runs inside the audit middleware (one durable record per
//! request); ingest, health and metrics carry no event data out and are not audited.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, post, put};

use crate::privacy_api as privacy;
use crate::query::MAX_QUERY_BODY_BYTES;
use crate::{ApiError, App, accounts_api, admin_api, audit, health, ingest, query};

pub(crate) fn router(app: App) -> Router {
    let body = DefaultBodyLimit::max(MAX_QUERY_BODY_BYTES);
    let audited = Router::new()
        .route("/api/v1/projects/{project_id}/query", post(query::insight))
        .route("/api/v1/projects/{project_id}/sql", post(query::sql))
        .route(
            "/api/v1/projects/{project_id}/plan",
            get(privacy::get_plan).put(privacy::put_plan),
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
            post(privacy::erase),
        )
        .route(
            "/api/v1/projects/{project_id}/subjects/export",
            post(privacy::export),
        )
        .route(
            "/api/v1/projects/{project_id}/exports",
            get(admin_api::list_exports).post(admin_api::create_export),
        )
        .route(
            "/api/v1/projects/{project_id}/exports/{export_id}/approve",
            post(admin_api::approve_export),
        )
        .route(
            "/api/v1/projects/{project_id}/exports/{export_id}/reject",
            post(admin_api::reject_export),
        )
        .route(
            "/api/v1/projects/{project_id}/exports/{export_id}/download",
            get(admin_api::download_export),
        )
        .route(
            "/api/v1/projects/{project_id}/tokens",
            get(admin_api::list_tokens).post(admin_api::create_token),
        )
        .route(
            "/api/v1/projects/{project_id}/tokens/{token_id}",
            delete(admin_api::revoke_token),
        )
        .route(
            "/api/v1/org/members",
            get(admin_api::list_members).post(admin_api::create_member),
        )
        .route(
            "/api/v1/org/members/{user_id}",
            put(admin_api::update_member),
        )
        .route(
            "/api/v1/org/members/{user_id}/sessions/revoke",
            post(admin_api::revoke_member_sessions),
        )
        .route("/api/v1/org/suspensions", get(admin_api::list_suspensions))
        .route(
            "/api/v1/org/suspensions/{principal_id}/restore",
            post(admin_api::restore_principal),
        )
        .route("/api/v1/org/alerts", get(admin_api::alerts))
        .route(
            "/api/v1/org/settings",
            get(admin_api::get_settings).put(admin_api::put_settings),
        )
        .route("/api/v1/audit", get(admin_api::audit_log))
        .route("/api/v1/auth/login", post(accounts_api::login))
        .route("/api/v1/auth/logout", post(accounts_api::logout))
        .route("/api/v1/auth/me", get(accounts_api::me))
        .route(
            "/api/v1/auth/sessions",
            get(accounts_api::sessions).delete(accounts_api::revoke_all_sessions),
        )
        .route(
            "/api/v1/auth/sessions/{session_id}",
            delete(accounts_api::revoke_session),
        )
        .route("/api/v1/auth/mfa/enroll", post(accounts_api::mfa_enroll))
        .route("/api/v1/auth/mfa/confirm", post(accounts_api::mfa_confirm))
        .route("/api/v1/auth/step-up", post(accounts_api::step_up))
        .route("/api/v1/auth/budget", get(accounts_api::budget))
        .layer(body)
        .layer(from_fn_with_state(app.clone(), audit::layer));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        // The ingest handler enforces its own (configurable) body limit while streaming.
        .route(
            "/api/v1/events",
            post(ingest::native).layer(DefaultBodyLimit::disable()),
        )
        .merge(audited)
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(app)
}
