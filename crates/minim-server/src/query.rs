//! `POST /api/v1/projects/{project_id}/query` (insights) and `.../sql` (scoped SQL).
//! Each request goes: the authorization point (`access::gate`: `query_aggregate` for
//! insights, `query_raw_events` for the live events view, `query_sql`), a check that a
//! reader without `read_personal` names no `personal`/`secret` property, the engine with
//! that reader's [`Visibility`] (restricted values come back redacted), small-group
//! suppression for restricted readers, then the read budget (`access::charge`) before
//! anything is returned. The audit middleware records the outcome.

use std::collections::HashSet;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use minim_auth::budget::Usage;
use minim_auth::{Action, Role};
use minim_core::ProjectId;
use minim_query::engine::{SqlResult, Visibility};
use minim_query::{EventRow, QueryResult, QuerySpec};
use minim_store::PropRemover;
use serde::Deserialize;

use crate::access::{Granted, Req, Target, blocking, charge, gate};
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

/// A JSON body of type `T`; the error shows the expected `shape`.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
    shape: &str,
) -> Result<T, ApiError> {
    let text = body_text(body)?;
    serde_json::from_str(&text).map_err(|e| ApiError::BadRequest {
        code: "invalid_json",
        message: format!("expected {shape}: {e}"),
    })
}

/// Epoch milliseconds as RFC 3339 UTC seconds, as API responses show times.
pub(crate) fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// The project's `personal` and `secret` property names (from its tracking plan).
pub(crate) async fn restricted_props(
    app: &App,
    project: &ProjectId,
) -> Result<Vec<String>, ApiError> {
    let project = project.clone();
    blocking(app, move |app| {
        let now = app.inner.clock.now_ms();
        let rules = app
            .privacy()
            .rules(app.inner.meta.as_ref(), &project, now)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(rules.plan.restricted_properties())
    })
    .await
}

/// What `granted` may see, and the restricted names (to count revealed values).
pub(crate) async fn visibility_for(
    app: &App,
    granted: &Granted,
) -> Result<(Visibility, Vec<String>), ApiError> {
    let restricted = restricted_props(app, &granted.project()?).await?;
    let visibility = if granted.read_personal {
        Visibility::all()
    } else {
        Visibility::restricted(restricted.clone())
    };
    Ok((visibility, restricted))
}

/// Restricted readers: small breakdown groups are suppressed for them.
fn restricted_reader(granted: &Granted) -> bool {
    !matches!(granted.role, Some(Role::Analyst | Role::Admin))
}

/// How many values of `names` a set of rows reveals.
fn personal_values(rows: &[EventRow], names: &[String]) -> u64 {
    if names.is_empty() {
        return 0;
    }
    let remover = PropRemover::new(names.iter().cloned());
    rows.iter()
        .map(|r| match &r.properties {
            serde_json::Value::Object(m) => {
                names.iter().filter(|n| m.contains_key(*n)).count() as u64
            }
            other => remover.count(&other.to_string()) as u64,
        })
        .sum()
}

fn usage_of(result: &QueryResult, personal: &[String]) -> Usage {
    let mut u = Usage::default();
    match result {
        QueryResult::Trends(t) => u.rows = t.series.len() as u64,
        QueryResult::Funnel(f) => {
            u.rows = (f.steps.len()
                + f.breakdowns
                    .as_ref()
                    .map_or(0, |b| b.iter().map(|x| x.steps.len()).sum()))
                as u64;
        }
        QueryResult::Retention(r) => u.rows = r.cohorts.len() as u64,
        QueryResult::Paths(p) => {
            fn nodes(n: &minim_query::PathNode) -> u64 {
                1 + n.children.iter().map(nodes).sum::<u64>()
            }
            u.rows = nodes(&p.root);
        }
        QueryResult::Events(e) => {
            u.rows = e.events.len() as u64;
            u.raw_events = e.events.len() as u64;
            u.distinct_users = e
                .events
                .iter()
                .map(|r| r.distinct_id.as_str())
                .collect::<HashSet<_>>()
                .len() as u64;
            u.personal_values = personal_values(&e.events, personal);
        }
    }
    u
}

/// Refuses a spec that reads a restricted property, unless the reader may see them.
pub(crate) fn check_spec_properties(
    spec: &QuerySpec,
    restricted: &[String],
    granted: &Granted,
) -> Result<(), ApiError> {
    if granted.read_personal {
        return Ok(());
    }
    if let Some(p) = spec
        .referenced_properties()
        .into_iter()
        .find(|p| restricted.contains(p))
    {
        return Err(ApiError::Denied {
            code: "personal_property",
            message: format!(
                "property {p:?} is personal; breaking down or filtering by it needs read_personal"
            ),
        });
    }
    Ok(())
}

pub(crate) async fn insight(
    State(app): State<App>,
    Path(project_id): Path<String>,
    req: Req,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<QueryResult>, ApiError> {
    // Parse before authorizing: the action depends on the kind.
    let text = body_text(body)?;
    req.slot.fingerprint(&text);
    let spec = QuerySpec::from_json_str_with(&text, app.inner.engine.spec_limits());
    let action = match &spec {
        Ok(QuerySpec::Events(_)) => Action::QueryRawEvents,
        _ => Action::QueryAggregate,
    };
    let granted = gate(&app, &req, action, Target::Project(&project_id)).await?;
    let spec = spec?;
    let project = granted.project()?;
    let (visibility, restricted) = visibility_for(&app, &granted).await?;
    check_spec_properties(&spec, &restricted, &granted)?;
    let kind = spec.kind();
    let started = std::time::Instant::now();
    let engine = &app.inner.engine;
    let mut result = engine
        .query_as(
            app.inner.store.snapshot(),
            project.clone(),
            spec.clone(),
            visibility.clone(),
        )
        .await?;
    if restricted_reader(&granted) {
        let k = granted
            .settings
            .min_group_size
            .unwrap_or(app.inner.security.min_group_size);
        match (&spec, &mut result) {
            (QuerySpec::Trends(s), QueryResult::Trends(r)) if s.breakdown.is_some() => {
                let companion =
                    crate::suppress::users_spec(s, engine.spec_limits().max_breakdown_limit);
                let users = engine
                    .query_as(app.inner.store.snapshot(), project, companion, visibility)
                    .await?;
                if let QueryResult::Trends(users) = users {
                    crate::suppress::trends(s, r, &users, k);
                }
            }
            (QuerySpec::Funnel(_), QueryResult::Funnel(r)) => {
                crate::suppress::funnel(r, k);
            }
            _ => {}
        }
    }
    metrics::histogram!(crate::telemetry::QUERY_SECONDS, "kind" => kind)
        .record(started.elapsed().as_secs_f64());
    let personal = if granted.read_personal {
        restricted
    } else {
        Vec::new()
    };
    charge(&app, &req, &granted, usage_of(&result, &personal)).await?;
    Ok(Json(result))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    sql: String,
}

/// SQL rows are metered as raw events (a query can select rows as easily as counts);
/// users revealed are the distinct values of columns named like `distinct_id`.
fn sql_usage(result: &SqlResult, personal: &[String]) -> Usage {
    let id_columns: Vec<usize> = result
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.name.contains("distinct_id"))
        .map(|(i, _)| i)
        .collect();
    let mut users: HashSet<String> = HashSet::new();
    let mut personal_values = 0u64;
    let remover = (!personal.is_empty()).then(|| PropRemover::new(personal.iter().cloned()));
    for row in &result.rows {
        let Some(cells) = row.as_array() else {
            continue;
        };
        for &i in &id_columns {
            if let Some(v) = cells.get(i).filter(|v| !v.is_null()) {
                users.insert(v.to_string());
            }
        }
        if let Some(remover) = &remover {
            personal_values += cells
                .iter()
                .filter_map(|c| c.as_str())
                .filter(|s| s.starts_with('{'))
                .map(|s| remover.count(s) as u64)
                .sum::<u64>();
        }
    }
    Usage {
        rows: result.row_count as u64,
        raw_events: result.row_count as u64,
        distinct_users: users.len() as u64,
        personal_values,
    }
}

pub(crate) async fn sql(
    State(app): State<App>,
    Path(project_id): Path<String>,
    req: Req,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<SqlResult>, ApiError> {
    let text = body_text(body);
    if let Ok(t) = &text {
        req.slot.fingerprint(t);
    }
    let granted = gate(&app, &req, Action::QuerySql, Target::Project(&project_id)).await?;
    let request: SqlRequest = serde_json::from_str(&text?).map_err(|e| ApiError::BadRequest {
        code: "invalid_json",
        message: format!("expected {{\"sql\": \"SELECT ...\"}}: {e}"),
    })?;
    let (visibility, restricted) = visibility_for(&app, &granted).await?;
    let started = std::time::Instant::now();
    let result = app
        .inner
        .engine
        .sql_as(
            app.inner.store.snapshot(),
            granted.project()?,
            request.sql,
            visibility,
        )
        .await;
    metrics::histogram!(crate::telemetry::QUERY_SECONDS, "kind" => "sql")
        .record(started.elapsed().as_secs_f64());
    let result = result?;
    let personal = if granted.read_personal {
        restricted
    } else {
        Vec::new()
    };
    charge(&app, &req, &granted, sql_usage(&result, &personal)).await?;
    Ok(Json(result))
}
