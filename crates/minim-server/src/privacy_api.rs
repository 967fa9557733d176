//! Privacy routes: the tracking plan and its learned suggestions, the pipeline's
//! counters, data subject export and erasure, retention runs and the deletion log.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use minim_core::ProjectId;
use minim_privacy::plan::TrackingPlan;
use serde::Deserialize;
use serde_json::json;

use crate::access::{Req, Target, gate};
use crate::privacy::{self as p, PrivacyError, SubjectError};
use crate::query::body_text;
use crate::{ApiError, App};
use minim_auth::Action;

impl From<PrivacyError> for ApiError {
    fn from(e: PrivacyError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<SubjectError> for ApiError {
    fn from(e: SubjectError) -> Self {
        match e {
            SubjectError::Store(e) => e.into(),
            SubjectError::Query(e) => ApiError::Query(e),
            SubjectError::Privacy(e) => e.into(),
            SubjectError::Internal(m) => ApiError::Internal(m),
        }
    }
}

/// Runs blocking metadata/store work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("task failed: {e}")))?
}

pub(crate) async fn get_plan(
    State(app): State<App>,
    Path(project_id): Path<String>,
    req: Req,
) -> Result<Response, ApiError> {
    let project = gate(&app, &req, Action::ReadConfig, Target::Project(&project_id))
        .await?
        .project()?;
    let meta = app.inner.meta.clone();
    let plan = blocking(move || Ok(p::load_plan(meta.as_ref(), &project)?)).await?;
    Ok(Json(plan).into_response())
}

pub(crate) async fn put_plan(
    State(app): State<App>,
    Path(project_id): Path<String>,
    req: Req,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let project = gate(
        &app,
        &req,
        Action::ManageProject,
        Target::Project(&project_id),
    )
    .await?
    .project()?;
    let text = body_text(body)?;
    let plan = TrackingPlan::from_json(&text).map_err(|e| ApiError::BadRequest {
        code: "invalid_plan",
        message: e.to_string(),
    })?;
    let meta = app.inner.meta.clone();
    let now = app.inner.clock.now_ms();
    let json = plan.to_json();
    let target = project.clone();
    blocking(move || {
        Ok(meta
            .set_tracking_plan(&target, &json, now)
            .map_err(PrivacyError::from)?)
    })
    .await?;
    app.inner.privacy.invalidate(&project);
    tracing::info!(project = %project, mode = ?plan.mode, "tracking plan replaced");
    Ok(Json(plan).into_response())
}

pub(crate) async fn get_suggestions(
    State(app): State<App>,
    Path(project_id): Path<String>,
    req: Req,
) -> Result<Response, ApiError> {
    let project = gate(&app, &req, Action::ReadConfig, Target::Project(&project_id))
        .await?
        .project()?;
    let meta = app.inner.meta.clone();
    let items = blocking(move || {
        Ok(meta
            .plan_suggestions(&project)
            .map_err(PrivacyError::from)?)
    })
    .await?;
    let items: Vec<_> = items
        .into_iter()
        .map(|s| {
            json!({"event": s.event, "property": s.property, "seen_type": s.seen_type,
                   "first_seen_ms": s.first_seen_ms})
        })
        .collect();
    Ok(Json(json!({ "suggestions": items })).into_response())
}

pub(crate) async fn clear_suggestions(
    State(app): State<App>,
    Path(project_id): Path<String>,
    req: Req,
) -> Result<Response, ApiError> {
    let project = gate(
        &app,
        &req,
        Action::ManageProject,
        Target::Project(&project_id),
    )
    .await?
    .project()?;
    let meta = app.inner.meta.clone();
    blocking(move || {
        Ok(meta
            .clear_plan_suggestions(&project)
            .map_err(PrivacyError::from)?)
    })
    .await?;
    Ok(Json(json!({"cleared": true})).into_response())
}

pub(crate) async fn stats(
    State(app): State<App>,
    Path(project_id): Path<String>,
    req: Req,
) -> Result<Response, ApiError> {
    let project = gate(&app, &req, Action::ReadConfig, Target::Project(&project_id))
        .await?
        .project()?;
    let a = app.clone();
    let stats =
        blocking(move || Ok(a.inner.privacy.stats(a.inner.meta.as_ref(), &project)?)).await?;
    Ok(Json(stats).into_response())
}

pub(crate) async fn deletions(
    State(app): State<App>,
    Path(project_id): Path<String>,
    req: Req,
) -> Result<Response, ApiError> {
    let project = gate(&app, &req, Action::ReadConfig, Target::Project(&project_id))
        .await?
        .project()?;
    let meta = app.inner.meta.clone();
    let rows =
        blocking(move || Ok(meta.deletions(&project, 1000).map_err(PrivacyError::from)?)).await?;
    let rows: Vec<_> = rows
        .into_iter()
        .map(|d| {
            let report: serde_json::Value =
                serde_json::from_str(&d.report_json).unwrap_or(serde_json::Value::Null);
            json!({"id": d.id, "kind": d.kind, "at_ms": d.at_ms, "report": report})
        })
        .collect();
    Ok(Json(json!({ "deletions": rows })).into_response())
}

pub(crate) async fn run_retention(
    State(app): State<App>,
    Path(project_id): Path<String>,
    req: Req,
) -> Result<Response, ApiError> {
    let project = gate(
        &app,
        &req,
        Action::ManageProject,
        Target::Project(&project_id),
    )
    .await?
    .project()?;
    let a = app.clone();
    let now = app.inner.clock.now_ms();
    let report = blocking(move || {
        let plan = p::load_plan(a.inner.meta.as_ref(), &project)?;
        let report = a
            .inner
            .store
            .apply_retention(&project, &p::retention_policy(&plan))?;
        let json = serde_json::to_string(&report).unwrap_or_default();
        a.inner
            .meta
            .record_deletion(&project, "retention", &json, now)
            .map_err(PrivacyError::from)?;
        Ok(report)
    })
    .await?;
    Ok(Json(report).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectRequest {
    distinct_id: String,
}

fn subject(body: Result<Bytes, BytesRejection>) -> Result<String, ApiError> {
    let text = body_text(body)?;
    let r: SubjectRequest = serde_json::from_str(&text).map_err(|e| ApiError::BadRequest {
        code: "invalid_json",
        message: format!("expected {{\"distinct_id\": \"...\"}}: {e}"),
    })?;
    if r.distinct_id.is_empty() {
        return Err(ApiError::BadRequest {
            code: "invalid_distinct_id",
            message: "distinct_id must not be empty".into(),
        });
    }
    Ok(r.distinct_id)
}

pub(crate) async fn erase(
    State(app): State<App>,
    Path(project_id): Path<String>,
    req: Req,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let project = gate(
        &app,
        &req,
        Action::ManageProject,
        Target::Project(&project_id),
    )
    .await?
    .project()?;
    let id = subject(body)?;
    let a = app.clone();
    let now = app.inner.clock.now_ms();
    let summary = blocking(move || {
        Ok(p::erase_subject(
            &a.inner.store,
            a.inner.meta.as_ref(),
            &project,
            &id,
            now,
        )?)
    })
    .await?;
    Ok(Json(summary).into_response())
}

pub(crate) async fn export(
    State(app): State<App>,
    Path(project_id): Path<String>,
    req: Req,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    // A subject export reveals one person's data in the clear: it needs read_personal.
    let granted = gate(&app, &req, Action::Export, Target::Project(&project_id)).await?;
    if !granted.read_personal {
        return Err(ApiError::Denied {
            code: "read_personal_required",
            message: "exporting a data subject's events needs the read_personal permission".into(),
        });
    }
    let project: ProjectId = granted.project()?;
    let id = subject(body)?;
    let export = p::export_subject(
        &app.inner.store,
        app.inner.meta.clone(),
        &app.inner.engine,
        &project,
        &id,
        app.inner.clock.now_ms(),
    )
    .await?;
    Ok((
        [(
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"subject-export.json\"",
        )],
        Json(export),
    )
        .into_response())
}
