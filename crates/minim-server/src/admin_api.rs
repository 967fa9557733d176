//! Administration over HTTP, every route behind the authorization point: API tokens
//! (`manage_tokens`), members (`manage_members`), suspensions and restores, organization
//! settings (MFA policy, budget overrides, Cedar policies, alert webhook), alerts and
//! the audit log (`read_audit`), and raw-event exports with the two-person rule: a small
//! export is answered at once within the read budget; a larger one needs a session with
//! fresh MFA to request it and a second admin (also with fresh MFA) to approve it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use minim_auth::budget::Usage;
use minim_auth::{Action, PrincipalKind, Role};
use minim_core::ProjectId;
use minim_meta::{Alert, Membership, TokenSpec};
use minim_query::engine::Visibility;
use minim_query::{EventRow, EventsSpec, QueryResult, QuerySpec};
use serde::Deserialize;
use serde_json::json;

use crate::access::{
    Credential, DEFAULT_ORG, Granted, OrgSettings, Req, Target, blocking, charge, gate, meta_err,
};
use crate::query::{body_text, check_spec_properties, iso, parse_body, visibility_for};
use crate::{ApiError, App};

fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::BadRequest {
        code,
        message: message.into(),
    }
}

// ---- tokens ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    permissions: Vec<String>,
    /// Lifetime, e.g. `30d`, `12h` (mandatory: no token lives forever).
    ttl: String,
    #[serde(default)]
    ip_allow: Vec<String>,
    #[serde(default)]
    name: Option<String>,
}

/// Parses `30d`, `12h`, `90m`, `3600s` into milliseconds (1 s to 365 d).
pub fn parse_ttl_ms(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: i64 = n
        .parse()
        .map_err(|_| format!("ttl {s:?}: expected a number and a unit like 30d"))?;
    let ms = match unit {
        "s" => n * 1_000,
        "m" => n * 60_000,
        "h" => n * 3_600_000,
        "d" => n * 86_400_000,
        _ => return Err(format!("ttl {s:?}: unit must be s, m, h or d")),
    };
    if !(1_000..=365 * 86_400_000).contains(&ms) {
        return Err(format!("ttl {s:?}: must be between 1s and 365d"));
    }
    Ok(ms)
}

pub(crate) async fn create_token(
    State(app): State<App>,
    Path(project_id): Path<String>,
    req: Req,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let granted = gate(
        &app,
        &req,
        Action::ManageTokens,
        Target::Project(&project_id),
    )
    .await?;
    let r: TokenRequest = parse_body(body, r#"{"role": "analyst", "ttl": "30d"}"#)?;
    let role = r
        .role
        .as_deref()
        .map(str::parse::<Role>)
        .transpose()
        .map_err(|e| bad("invalid_role", e.to_string()))?;
    for p in &r.permissions {
        if Action::parse(p).is_none() {
            return Err(bad(
                "invalid_permission",
                format!("unknown permission {p:?}"),
            ));
        }
    }
    // Nobody hands out more than they hold: read_personal only from someone who has it.
    if r.permissions.iter().any(|p| p == "read_personal") && !granted.read_personal {
        return Err(ApiError::Denied {
            code: "forbidden",
            message: "only a principal with read_personal can grant it".into(),
        });
    }
    for a in &r.ip_allow {
        if a.parse::<ipnet::IpNet>().is_err() && a.parse::<std::net::IpAddr>().is_err() {
            return Err(bad(
                "invalid_ip_allow",
                format!("{a:?} is not an address or CIDR range"),
            ));
        }
    }
    let ttl_ms = parse_ttl_ms(&r.ttl).map_err(|e| bad("invalid_ttl", e))?;
    let spec = TokenSpec {
        project: granted.project()?,
        role,
        permissions: r.permissions,
        ttl_ms,
        ip_allow: r.ip_allow,
        name: r.name,
        created_by: Some(granted.caller.id.clone()),
    };
    let t = blocking(&app, move |app| {
        app.inner
            .meta
            .create_token_with(&spec, app.inner.clock.now_ms())
            .map_err(meta_err)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({ "token": t.token, "token_id": t.token_id, "expires_at": iso(t.expires_at_ms) }),
        ),
    )
        .into_response())
}

pub(crate) async fn list_tokens(
    State(app): State<App>,
    Path(project_id): Path<String>,
    req: Req,
) -> Result<Json<serde_json::Value>, ApiError> {
    let granted = gate(
        &app,
        &req,
        Action::ManageTokens,
        Target::Project(&project_id),
    )
    .await?;
    let project = granted.project()?;
    let list = blocking(&app, move |app| {
        app.inner.meta.tokens(&project).map_err(meta_err)
    })
    .await?;
    Ok(Json(json!({
        "tokens": list.iter().map(|t| json!({
            "token_id": t.token_id,
            "name": t.name,
            "role": t.role.map(Role::as_str),
            "permissions": t.permissions,
            "ip_allow": t.ip_allow,
            "created_by": t.created_by,
            "created_at": iso(t.created_at_ms),
            "expires_at": iso(t.expires_at_ms),
            "last_used_at": t.last_used_at_ms.map(iso),
            "revoked": t.revoked,
        })).collect::<Vec<_>>()
    })))
}

pub(crate) async fn revoke_token(
    State(app): State<App>,
    Path((project_id, token_id)): Path<(String, String)>,
    req: Req,
) -> Result<Json<serde_json::Value>, ApiError> {
    let granted = gate(
        &app,
        &req,
        Action::ManageTokens,
        Target::Project(&project_id),
    )
    .await?;
    let project = granted.project()?;
    let revoked = blocking(&app, move |app| {
        let meta = app.inner.meta.as_ref();
        let ours = meta
            .tokens(&project)
            .map_err(meta_err)?
            .iter()
            .any(|t| t.token_id == token_id);
        if !ours {
            return Err(ApiError::NotFound);
        }
        meta.revoke_token(&token_id, app.inner.clock.now_ms())
            .map_err(meta_err)
    })
    .await?;
    Ok(Json(json!({ "revoked": revoked })))
}

// ---- members ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberRequest {
    email: String,
    role: String,
    password: String,
}

pub(crate) async fn create_member(
    State(app): State<App>,
    req: Req,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    gate(&app, &req, Action::ManageMembers, Target::Org).await?;
    let r: MemberRequest = parse_body(
        body,
        r#"{"email": "...", "role": "analyst", "password": "..."}"#,
    )?;
    let role: Role = r
        .role
        .parse()
        .map_err(|e: minim_meta::MetaError| bad("invalid_role", e.to_string()))?;
    minim_auth::password::check_password_policy(&r.password)
        .map_err(|e| bad("weak_password", e.to_string()))?;
    let user = blocking(&app, move |app| {
        let hash = minim_auth::password::hash_password(&r.password)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        app.inner
            .meta
            .create_user(&r.email, Some(&hash), role, app.inner.clock.now_ms())
            .map_err(meta_err)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "user_id": user.id })).into_response(),
    )
        .into_response())
}

pub(crate) async fn list_members(
    State(app): State<App>,
    req: Req,
) -> Result<Json<serde_json::Value>, ApiError> {
    gate(&app, &req, Action::ManageMembers, Target::Org).await?;
    let rows = blocking(&app, move |app| {
        let meta = app.inner.meta.as_ref();
        let mut out = Vec::new();
        for u in meta.list_users(DEFAULT_ORG).map_err(meta_err)? {
            let ms = meta.memberships(&u.id).map_err(meta_err)?;
            out.push(json!({
                "user_id": u.id,
                "email": u.email,
                "mfa_enabled": u.mfa_enabled,
                "disabled": u.disabled,
                "memberships": ms.iter().map(|m| json!({
                    "project": m.project.as_ref().map(|p| p.as_str().to_owned()),
                    "role": m.role.map(Role::as_str),
                    "permissions": m.permissions,
                })).collect::<Vec<_>>(),
            }));
        }
        Ok(out)
    })
    .await?;
    Ok(Json(json!({ "members": rows })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MembershipRequest {
    /// A project id, or absent for the organization-wide membership.
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    permissions: Vec<String>,
}

pub(crate) async fn update_member(
    State(app): State<App>,
    Path(user_id): Path<String>,
    req: Req,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let granted = gate(&app, &req, Action::ManageMembers, Target::Org).await?;
    let r: MembershipRequest = parse_body(
        body,
        r#"{"role": "analyst", "permissions": ["read_personal"]}"#,
    )?;
    let role = r
        .role
        .as_deref()
        .map(str::parse::<Role>)
        .transpose()
        .map_err(|e| bad("invalid_role", e.to_string()))?;
    for p in &r.permissions {
        if Action::parse(p).is_none() {
            return Err(bad(
                "invalid_permission",
                format!("unknown permission {p:?}"),
            ));
        }
    }
    if r.permissions.iter().any(|p| p == "read_personal") && !granted.read_personal {
        return Err(ApiError::Denied {
            code: "forbidden",
            message: "only a principal with read_personal can grant it".into(),
        });
    }
    let project = r
        .project
        .map(ProjectId::new)
        .transpose()
        .map_err(|e| bad("invalid_project", e.to_string()))?;
    let m = Membership {
        project,
        role,
        permissions: r.permissions,
    };
    blocking(&app, move |app| {
        let meta = app.inner.meta.as_ref();
        meta.user(&user_id)
            .map_err(meta_err)?
            .ok_or(ApiError::NotFound)?;
        meta.set_membership(&user_id, &m).map_err(meta_err)
    })
    .await?;
    Ok(Json(json!({ "updated": true })))
}

pub(crate) async fn revoke_member_sessions(
    State(app): State<App>,
    Path(user_id): Path<String>,
    req: Req,
) -> Result<Json<serde_json::Value>, ApiError> {
    gate(&app, &req, Action::ManageMembers, Target::Org).await?;
    let n = blocking(&app, move |app| {
        app.inner
            .meta
            .revoke_sessions(&user_id, None, app.inner.clock.now_ms())
            .map_err(meta_err)
    })
    .await?;
    Ok(Json(json!({ "revoked": n })))
}

// ---- suspensions, alerts, settings, audit ----

pub(crate) async fn list_suspensions(
    State(app): State<App>,
    req: Req,
) -> Result<Json<serde_json::Value>, ApiError> {
    gate(&app, &req, Action::ManageMembers, Target::Org).await?;
    let rows = blocking(&app, |app| {
        app.inner.meta.suspensions(DEFAULT_ORG).map_err(meta_err)
    })
    .await?;
    Ok(Json(json!({
        "suspensions": rows.iter().map(|(p, reason, at)| json!({
            "principal": p, "reason": reason, "since": iso(*at)
        })).collect::<Vec<_>>()
    })))
}

pub(crate) async fn restore_principal(
    State(app): State<App>,
    Path(principal): Path<String>,
    req: Req,
) -> Result<Json<serde_json::Value>, ApiError> {
    gate(&app, &req, Action::ManageMembers, Target::Org).await?;
    let p = principal.clone();
    let restored = blocking(&app, move |app| {
        app.inner.meta.restore(&p).map_err(meta_err)
    })
    .await?;
    if !restored {
        return Err(ApiError::NotFound);
    }
    app.inner.budgets.reset(&principal);
    Ok(Json(json!({ "restored": principal })))
}

pub(crate) async fn alerts(
    State(app): State<App>,
    req: Req,
) -> Result<Json<serde_json::Value>, ApiError> {
    gate(&app, &req, Action::ReadAudit, Target::Org).await?;
    let rows = blocking(&app, |app| {
        app.inner.meta.alerts(DEFAULT_ORG, 500).map_err(meta_err)
    })
    .await?;
    Ok(Json(json!({
        "alerts": rows.iter().map(|a| json!({
            "id": a.id,
            "kind": a.kind,
            "principal": a.principal,
            "project": a.project.as_ref().map(|p| p.as_str().to_owned()),
            "at": iso(a.at_ms),
            "detail": serde_json::from_str::<serde_json::Value>(&a.detail_json).unwrap_or_default(),
        })).collect::<Vec<_>>()
    })))
}

pub(crate) async fn get_settings(
    State(app): State<App>,
    req: Req,
) -> Result<Json<OrgSettings>, ApiError> {
    gate(&app, &req, Action::ManageMembers, Target::Org).await?;
    let s = blocking(&app, |app| app.inner.orgs.get(app)).await?;
    Ok(Json((*s).clone()))
}

pub(crate) async fn put_settings(
    State(app): State<App>,
    req: Req,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<OrgSettings>, ApiError> {
    gate(&app, &req, Action::ManageMembers, Target::Org).await?;
    let text = body_text(body)?;
    req.slot.fingerprint(&text);
    let de = &mut serde_json::Deserializer::from_str(&text);
    let settings: OrgSettings = serde_path_to_error::deserialize(de)
        .map_err(|e| bad("invalid_settings", format!("{}: {}", e.path(), e.inner())))?;
    settings
        .validate()
        .map_err(|e| bad("invalid_settings", e))?;
    // Validate the Cedar text before storing it (the authorizer keeps the old on error).
    app.inner
        .authorizer
        .set_org_policies(DEFAULT_ORG, &settings.policies)
        .map_err(|e| bad("invalid_policies", e.to_string()))?;
    let json = serde_json::to_string(&settings).map_err(|e| ApiError::Internal(e.to_string()))?;
    blocking(&app, move |app| {
        app.inner
            .meta
            .set_org_settings(DEFAULT_ORG, &json, app.inner.clock.now_ms())
            .map_err(meta_err)?;
        app.inner.orgs.invalidate();
        Ok(())
    })
    .await?;
    Ok(Json(settings))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    principal: Option<String>,
    action: Option<String>,
    resource: Option<String>,
    decision: Option<String>,
    /// Epoch milliseconds, inclusive / exclusive.
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    /// Cursor: records with a smaller sequence number.
    before: Option<u64>,
    limit: Option<usize>,
}

pub(crate) async fn audit_log(
    State(app): State<App>,
    req: Req,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let granted = gate(&app, &req, Action::ReadAudit, Target::Org).await?;
    let Query(q) = query.map_err(|e| bad("invalid_query", e.body_text()))?;
    // A project token reads its project's records only.
    if let Some(p) = &granted.project
        && q.resource
            .as_deref()
            .is_some_and(|r| r != format!("project:{p}"))
    {
        return Err(ApiError::Forbidden(
            "this token reads its own project's records only",
        ));
    }
    let scoped = granted.project.as_ref().map(|p| format!("project:{p}"));
    let decision = match q.decision.as_deref() {
        None => None,
        Some("allow") => Some(minim_audit::Decision::Allow),
        Some("deny") => Some(minim_audit::Decision::Deny),
        Some("error") => Some(minim_audit::Decision::Error),
        Some(other) => {
            return Err(bad(
                "invalid_query",
                format!("decision {other:?}: allow, deny or error"),
            ));
        }
    };
    let filter = minim_audit::Filter {
        principal: q.principal,
        action: q.action,
        resource: scoped.or(q.resource),
        decision,
        from_ms: q.from_ms,
        to_ms: q.to_ms,
        before_seq: q.before,
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1_000);
    let records = blocking(&app, move |app| {
        app.inner
            .audit
            .log
            .query(&filter, limit)
            .map_err(|e| ApiError::Internal(e.to_string()))
    })
    .await?;
    req.slot.returned(records.len() as u64, 0);
    let next = (records.len() == limit)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    Ok(Json(json!({ "records": records, "next_before": next })))
}

// ---- exports ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportRequestBody {
    from: String,
    to: String,
    #[serde(default)]
    event: Option<String>,
    #[serde(default)]
    filters: Vec<serde_json::Value>,
}

/// The events spec of an export body (validated like any events query).
fn export_spec(text: &str, limit: usize, cursor: Option<String>) -> Result<EventsSpec, ApiError> {
    let body: ExportRequestBody = serde_json::from_str(text).map_err(|e| {
        bad(
            "invalid_json",
            format!("expected {{\"from\": \"2026-01-01\", \"to\": \"2026-01-31\"}}: {e}"),
        )
    })?;
    let spec = json!({
        "kind": "events", "from": body.from, "to": body.to, "event": body.event,
        "filters": body.filters, "limit": limit, "cursor": cursor,
    });
    match QuerySpec::from_json_str(&spec.to_string())? {
        QuerySpec::Events(s) => Ok(s),
        _ => Err(ApiError::Internal(
            "export spec is not an events spec".into(),
        )),
    }
}

/// Every event matching the export, page by page, up to `max` (+ whether more exist).
async fn collect(
    app: &App,
    project: &ProjectId,
    text: &str,
    visibility: &Visibility,
    max: usize,
) -> Result<(Vec<EventRow>, bool), ApiError> {
    let page = app.inner.engine.spec_limits().max_events_limit as usize;
    let mut rows = Vec::new();
    let mut cursor = None;
    loop {
        let want = (max + 1 - rows.len()).min(page);
        let spec = export_spec(text, want, cursor.take())?;
        let result = app
            .inner
            .engine
            .query_as(
                app.inner.store.snapshot(),
                project.clone(),
                QuerySpec::Events(spec),
                visibility.clone(),
            )
            .await?;
        let QueryResult::Events(e) = result else {
            return Err(ApiError::Internal(
                "events query returned another kind".into(),
            ));
        };
        rows.extend(e.events);
        if rows.len() > max {
            rows.truncate(max);
            return Ok((rows, true));
        }
        match e.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok((rows, false)),
        }
    }
}

async fn alert(
    app: &App,
    granted: &Granted,
    kind: &'static str,
    detail: serde_json::Value,
) -> Result<(), ApiError> {
    let a = Alert {
        id: 0,
        org_id: granted.caller.org.clone(),
        project: granted.project.clone(),
        principal: granted.caller.id.clone(),
        kind: kind.into(),
        detail_json: detail.to_string(),
        at_ms: app.inner.clock.now_ms(),
        acknowledged: false,
    };
    blocking(app, move |app| {
        app.inner.meta.add_alert(&a).map_err(meta_err)
    })
    .await?;
    Ok(())
}

pub(crate) async fn create_export(
    State(app): State<App>,
    Path(project_id): Path<String>,
    req: Req,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let text = body_text(body)?;
    req.slot.fingerprint(&text);
    let granted = gate(&app, &req, Action::Export, Target::Project(&project_id)).await?;
    let project = granted.project()?;
    let spec = export_spec(&text, 1, None)?;
    let (visibility, restricted) = visibility_for(&app, &granted).await?;
    check_spec_properties(&QuerySpec::Events(spec), &restricted, &granted)?;
    let small = app.inner.security.small_export_events;
    let (rows, more) = collect(&app, &project, &text, &visibility, small).await?;
    if !more {
        let users: std::collections::HashSet<&str> =
            rows.iter().map(|r| r.distinct_id.as_str()).collect();
        let usage = Usage {
            rows: rows.len() as u64,
            raw_events: rows.len() as u64,
            distinct_users: users.len() as u64,
            personal_values: 0,
        };
        charge(&app, &req, &granted, usage).await?;
        return Ok(Json(json!({ "status": "completed", "events": rows })).into_response());
    }
    // Large: the two-person rule. Only a person with a fresh second factor may ask.
    if granted.caller.kind != PrincipalKind::User {
        return Err(ApiError::Denied {
            code: "export_needs_approval",
            message: format!(
                "exports over {small} events need a request from a login session with fresh MFA and a second admin's approval"
            ),
        });
    }
    if !granted.caller.mfa_fresh(&app) {
        return Err(ApiError::Denied {
            code: "step_up_required",
            message:
                "requesting a large export needs a fresh second factor: POST /api/v1/auth/step-up"
                    .into(),
        });
    }
    let requester = granted.caller.id.clone();
    let p = project.clone();
    let t = text.clone();
    let x = blocking(&app, move |app| {
        app.inner
            .meta
            .create_export(&p, &requester, &t, app.inner.clock.now_ms())
            .map_err(meta_err)
    })
    .await?;
    alert(
        &app,
        &granted,
        "export_requested",
        json!({ "export_id": x.id }),
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "status": "pending_approval",
            "export_id": x.id,
            "message": "a second admin must approve this export before it can be downloaded",
        })),
    )
        .into_response())
}

pub(crate) async fn list_exports(
    State(app): State<App>,
    Path(project_id): Path<String>,
    req: Req,
) -> Result<Json<serde_json::Value>, ApiError> {
    let granted = gate(&app, &req, Action::Export, Target::Project(&project_id)).await?;
    let project = granted.project()?;
    let list = blocking(&app, move |app| {
        app.inner
            .meta
            .export_requests(&project, 200)
            .map_err(meta_err)
    })
    .await?;
    Ok(Json(json!({
        "exports": list.iter().map(|x| json!({
            "export_id": x.id,
            "requester": x.requester,
            "status": x.status,
            "created_at": iso(x.created_at_ms),
            "approver": x.approver,
            "decided_at": x.decided_at_ms.map(iso),
        })).collect::<Vec<_>>()
    })))
}

async fn decide(
    app: App,
    project_id: String,
    export_id: String,
    req: Req,
    to: &'static str,
) -> Result<Json<serde_json::Value>, ApiError> {
    let granted = gate(
        &app,
        &req,
        Action::ApproveExport,
        Target::Project(&project_id),
    )
    .await?;
    let project = granted.project()?;
    let who = granted.caller.id.clone();
    let id = export_id.clone();
    blocking(&app, move |app| {
        let meta = app.inner.meta.as_ref();
        let x = meta
            .export_request(&id)
            .map_err(meta_err)?
            .filter(|x| x.project == project)
            .ok_or(ApiError::NotFound)?;
        if x.requester == who {
            return Err(ApiError::Denied {
                code: "self_approval",
                message: "an export must be approved by a second admin, not its requester".into(),
            });
        }
        if !meta
            .decide_export(&id, to, &who, app.inner.clock.now_ms())
            .map_err(meta_err)?
        {
            return Err(ApiError::Conflict {
                code: "export_already_decided",
                message: format!("export is {}", x.status),
            });
        }
        Ok(())
    })
    .await?;
    Ok(Json(json!({ "export_id": export_id, "status": to })))
}

pub(crate) async fn approve_export(
    State(app): State<App>,
    Path((project_id, export_id)): Path<(String, String)>,
    req: Req,
) -> Result<Json<serde_json::Value>, ApiError> {
    decide(app, project_id, export_id, req, "approved").await
}

pub(crate) async fn reject_export(
    State(app): State<App>,
    Path((project_id, export_id)): Path<(String, String)>,
    req: Req,
) -> Result<Json<serde_json::Value>, ApiError> {
    decide(app, project_id, export_id, req, "rejected").await
}

/// The approved export, once, to its requester. Approved exports are exempt from the raw
/// event budget (the second admin is the control) but their size is audited.
pub(crate) async fn download_export(
    State(app): State<App>,
    Path((project_id, export_id)): Path<(String, String)>,
    req: Req,
) -> Result<Json<serde_json::Value>, ApiError> {
    let granted = gate(&app, &req, Action::Export, Target::Project(&project_id)).await?;
    let project = granted.project()?;
    let who = granted.caller.id.clone();
    let id = export_id.clone();
    let p = project.clone();
    let x = blocking(&app, move |app| {
        let meta = app.inner.meta.as_ref();
        let x = meta
            .export_request(&id)
            .map_err(meta_err)?
            .filter(|x| x.project == p && x.requester == who)
            .ok_or(ApiError::NotFound)?;
        if x.status != "approved" {
            return Err(ApiError::Conflict {
                code: "export_not_approved",
                message: format!("export is {}", x.status),
            });
        }
        if !meta
            .set_export_status(&id, "approved", "downloaded")
            .map_err(meta_err)?
        {
            return Err(ApiError::Conflict {
                code: "export_not_approved",
                message: "export was already downloaded".into(),
            });
        }
        Ok(x)
    })
    .await?;
    let (visibility, _) = visibility_for(&app, &granted).await?;
    let max = app.inner.engine.config().max_export_events;
    let (rows, more) = collect(&app, &project, &x.spec_json, &visibility, max).await?;
    if more {
        return Err(ApiError::Query(
            minim_query::engine::QueryError::TooManyRows { limit: max },
        ));
    }
    let users: std::collections::HashSet<&str> =
        rows.iter().map(|r| r.distinct_id.as_str()).collect();
    req.slot.returned(rows.len() as u64, users.len() as u64);
    if let Credential::Session { .. } = granted.caller.credential {
        tracing::info!(export = %export_id, events = rows.len(), "approved export downloaded");
    }
    Ok(Json(
        json!({ "export_id": export_id, "status": "downloaded", "events": rows }),
    ))
}
