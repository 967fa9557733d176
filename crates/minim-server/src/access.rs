//! The one authorization point of the HTTP API. Every handler that reads event data or
//! touches configuration starts with [`gate`]: resolve the credential (API token or
//! session cookie, with CSRF for cookie writes and the token's IP allowlist), refuse
//! suspended principals and admins without MFA, check fresh MFA for sensitive actions,
//! ask the Cedar [`minim_auth::policy::Authorizer`] (default deny), then the read budget.
//! The caller's identity and the action are written into the request's audit slot,
//! whatever the outcome. After the handler has its result, [`charge`] meters it.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use minim_auth::budget::{BudgetPolicy, Trip, Usage};
use minim_auth::{Action, Context, Grants, Principal, PrincipalKind, Resource, Role};
use minim_core::ProjectId;
use minim_meta::{Alert, MetaStore, Session, TokenInfo, User};
use serde::{Deserialize, Serialize};

use crate::audit::{self, AuditSlot};
use crate::{ApiError, App};

pub(crate) const SESSION_COOKIE: &str = "__Host-minim_session";
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";
/// The organization of every project and user until organizations can be created.
pub(crate) const DEFAULT_ORG: &str = "default";

/// What the handlers need from the request for authorization and audit.
#[derive(Clone)]
pub(crate) struct Req {
    pub headers: HeaderMap,
    pub method: Method,
    /// The client address (the socket peer, or `X-Forwarded-For` from a trusted proxy).
    pub ip: Option<IpAddr>,
    pub slot: AuditSlot,
}

impl FromRequestParts<App> for Req {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0);
        let ip = app.privacy().client_context(peer, &parts.headers).ip;
        Ok(Req {
            headers: parts.headers.clone(),
            method: parts.method.clone(),
            ip,
            slot: parts
                .extensions
                .get::<AuditSlot>()
                .cloned()
                .unwrap_or_default(),
        })
    }
}

impl OptionalFromRequestParts<App> for Req {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Option<Self>, ApiError> {
        <Req as FromRequestParts<App>>::from_request_parts(parts, app)
            .await
            .map(Some)
    }
}

/// How the caller proved who it is.
#[derive(Clone)]
pub(crate) enum Credential {
    Token(TokenInfo),
    Session { user: Box<User>, session: Session },
}

/// An authenticated caller, before any authorization.
#[derive(Clone)]
pub(crate) struct Caller {
    pub id: String,
    pub kind: PrincipalKind,
    pub org: String,
    pub credential: Credential,
}

impl Caller {
    pub fn user(&self) -> Option<&User> {
        match &self.credential {
            Credential::Session { user, .. } => Some(user),
            Credential::Token(_) => None,
        }
    }

    pub fn session(&self) -> Option<&Session> {
        match &self.credential {
            Credential::Session { session, .. } => Some(session),
            Credential::Token(_) => None,
        }
    }

    /// The caller proved a second factor within the step-up window.
    pub fn mfa_fresh(&self, app: &App) -> bool {
        let now = app.inner.clock.now_ms();
        self.session()
            .and_then(|s| s.mfa_at_ms)
            .is_some_and(|at| now.saturating_sub(at) <= app.inner.security.step_up_ms)
    }
}

/// An organization's own settings (`PUT /api/v1/org/settings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct OrgSettings {
    /// Roles whose members must have a second factor (default `["admin"]`).
    pub mfa_required_roles: Vec<String>,
    /// Read budget overrides per role (see `minim_auth::budget`); `null` = defaults.
    pub budgets: serde_json::Value,
    /// Minimum distinct users per breakdown row for viewers (default from config).
    pub min_group_size: Option<u64>,
    /// Budget trips are also POSTed here (plain `http://`).
    pub alert_webhook: Option<String>,
    /// The organization's own Cedar policies, evaluated with the built-in ones.
    pub policies: String,
}

impl Default for OrgSettings {
    fn default() -> Self {
        Self {
            mfa_required_roles: vec!["admin".into()],
            budgets: serde_json::Value::Null,
            min_group_size: None,
            alert_webhook: None,
            policies: String::new(),
        }
    }
}

impl OrgSettings {
    pub fn validate(&self) -> Result<(), String> {
        for r in &self.mfa_required_roles {
            r.parse::<Role>()
                .map_err(|e| format!("mfa_required_roles: {e}"))?;
        }
        BudgetPolicy::validate_overrides(&self.budgets).map_err(|e| format!("budgets.{e}"))?;
        if let Some(url) = &self.alert_webhook
            && !url.starts_with("http://")
        {
            return Err("alert_webhook: must be an http:// URL".into());
        }
        Ok(())
    }
}

/// Organization settings, cached for a few seconds (CLI changes apply within that).
pub(crate) struct OrgCache {
    entry: std::sync::Mutex<Option<(Arc<OrgSettings>, Instant)>>,
}

const ORG_TTL: Duration = Duration::from_secs(5);

impl OrgCache {
    pub fn new() -> Self {
        Self {
            entry: std::sync::Mutex::new(None),
        }
    }

    /// The default organization's settings; installs changed Cedar policies. Blocking.
    pub fn get(&self, app: &App) -> Result<Arc<OrgSettings>, ApiError> {
        let mut e = self
            .entry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((s, at)) = e.as_ref()
            && at.elapsed() < ORG_TTL
        {
            return Ok(s.clone());
        }
        let settings: OrgSettings =
            match app.inner.meta.org_settings(DEFAULT_ORG).map_err(meta_err)? {
                Some(json) => serde_json::from_str(&json).map_err(|e| {
                    ApiError::Internal(format!("stored organization settings are invalid: {e}"))
                })?,
                None => OrgSettings::default(),
            };
        let installed = app
            .inner
            .authorizer
            .org_policies(DEFAULT_ORG)
            .unwrap_or_default();
        if installed != settings.policies
            && let Err(e) = app
                .inner
                .authorizer
                .set_org_policies(DEFAULT_ORG, &settings.policies)
        {
            // Validated when saved; a failure here means the schema changed under them.
            tracing::error!(error = %e, "stored organization policies no longer validate; keeping the previous ones");
        }
        let settings = Arc::new(settings);
        *e = Some((settings.clone(), Instant::now()));
        Ok(settings)
    }

    pub fn invalidate(&self) {
        *self
            .entry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

pub(crate) fn meta_err(e: minim_meta::MetaError) -> ApiError {
    match e {
        minim_meta::MetaError::Invalid(m) => ApiError::BadRequest {
            code: "invalid_request",
            message: m,
        },
        minim_meta::MetaError::NotFound(_) => ApiError::NotFound,
        other => ApiError::Internal(other.to_string()),
    }
}

/// Runs blocking metadata work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    app: &App,
    f: impl FnOnce(&App) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || f(&app))
        .await
        .map_err(|e| ApiError::Internal(format!("blocking task failed: {e}")))?
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn ip_allowed(allow: &[String], ip: Option<IpAddr>) -> bool {
    if allow.is_empty() {
        return true;
    }
    let Some(ip) = ip else { return false };
    allow.iter().any(|a| {
        a.parse::<ipnet::IpNet>()
            .map(|n| n.contains(&ip))
            .or_else(|_| a.parse::<IpAddr>().map(|x| x == ip))
            .unwrap_or(false)
    })
}

/// Resolves the request's credential (blocking). `Unauthorized` never says why.
pub(crate) fn authenticate(app: &App, req: &Req) -> Result<Caller, ApiError> {
    let now = app.inner.clock.now_ms();
    let meta = app.inner.meta.as_ref();
    if let Some(token) = crate::auth::bearer(&req.headers) {
        if !minim_meta::looks_valid(minim_meta::KeyKind::ApiToken, token) {
            return Err(ApiError::Unauthorized);
        }
        let info = meta
            .verify_token(token, now)
            .map_err(meta_err)?
            .ok_or(ApiError::Unauthorized)?;
        req.slot
            .principal(&info.token_id, PrincipalKind::Token.as_str());
        if !ip_allowed(&info.ip_allow, req.ip) {
            return Err(ApiError::Denied {
                code: "ip_not_allowed",
                message: "this token may not be used from this address".into(),
            });
        }
        return Ok(Caller {
            id: info.token_id.clone(),
            kind: PrincipalKind::Token,
            org: DEFAULT_ORG.into(),
            credential: Credential::Token(info),
        });
    }
    let secret = cookie(&req.headers, SESSION_COOKIE).ok_or(ApiError::Unauthorized)?;
    let session = meta
        .session(
            &minim_auth::secrets::hash_token(secret),
            app.inner.security.session_idle_ms,
            now,
        )
        .map_err(meta_err)?
        .ok_or(ApiError::Unauthorized)?;
    let user = meta
        .user(&session.user_id)
        .map_err(meta_err)?
        .filter(|u| !u.disabled)
        .ok_or(ApiError::Unauthorized)?;
    req.slot.principal(&user.id, PrincipalKind::User.as_str());
    let writes = !matches!(req.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if writes {
        let sent = req
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let ok = !sent.is_empty()
            && minim_auth::secrets::constant_time_eq(
                minim_auth::secrets::hash_token(sent).as_bytes(),
                session.csrf_hash.as_bytes(),
            );
        if !ok {
            return Err(ApiError::Denied {
                code: "csrf_failed",
                message: "cookie-authenticated writes need the session's X-CSRF-Token header"
                    .into(),
            });
        }
    }
    Ok(Caller {
        id: user.id.clone(),
        kind: PrincipalKind::User,
        org: user.org_id.clone(),
        credential: Credential::Session {
            user: Box::new(user),
            session,
        },
    })
}

/// What an action is done to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    Project(&'a str),
    Org,
}

/// A caller allowed to do something, with what results must respect.
#[derive(Clone)]
pub(crate) struct Granted {
    pub caller: Caller,
    /// The project of a project action.
    pub project: Option<ProjectId>,
    pub role: Option<Role>,
    /// May see `personal` values (explicit grant, and fresh MFA for sessions).
    pub read_personal: bool,
    pub budget: BudgetPolicy,
    pub settings: Arc<OrgSettings>,
}

impl Granted {
    /// The project (project actions only).
    pub fn project(&self) -> Result<ProjectId, ApiError> {
        self.project
            .clone()
            .ok_or_else(|| ApiError::Internal("project action without a project".into()))
    }
}

fn grants_for(
    caller: &Caller,
    project: Option<&ProjectId>,
    meta: &dyn MetaStore,
) -> Result<Grants, ApiError> {
    let parse = |names: &[String]| names.iter().filter_map(|n| Action::parse(n)).collect();
    match &caller.credential {
        Credential::Token(t) => Ok(Grants {
            role: t.role,
            permissions: parse(&t.permissions),
            project: Some(t.project.as_str().to_owned()),
        }),
        Credential::Session { user, .. } => {
            let ms = meta.memberships(&user.id).map_err(meta_err)?;
            let org_wide = ms.iter().find(|m| m.project.is_none());
            let specific = project.and_then(|p| ms.iter().find(|m| m.project.as_ref() == Some(p)));
            let role = specific
                .and_then(|m| m.role)
                .or(org_wide.and_then(|m| m.role));
            let mut permissions: std::collections::BTreeSet<Action> =
                org_wide.map(|m| parse(&m.permissions)).unwrap_or_default();
            if let Some(m) = specific {
                permissions.extend(parse(&m.permissions).iter().copied());
            }
            Ok(Grants {
                role,
                permissions,
                project: match (specific, org_wide) {
                    (Some(_), None) => project.map(|p| p.as_str().to_owned()),
                    _ => None,
                },
            })
        }
    }
}

/// Actions that need a fresh second factor when done from a session.
fn needs_step_up(action: Action) -> bool {
    matches!(
        action,
        Action::ApproveExport | Action::ManageMembers | Action::ManageTokens
    )
}

/// The one authorization point: authenticates, authorizes `action` on `target`, checks
/// the read budget, and records who and what in the audit slot.
pub(crate) async fn gate(
    app: &App,
    req: &Req,
    action: Action,
    target: Target<'_>,
) -> Result<Granted, ApiError> {
    let resource_name = match target {
        Target::Project(p) => format!("project:{p}"),
        Target::Org => format!("org:{DEFAULT_ORG}"),
    };
    req.slot.action(action.as_str(), resource_name);
    let project_id = match target {
        Target::Project(p) => Some(ProjectId::new(p).map_err(|_| ApiError::NotFound)?),
        Target::Org => None,
    };
    let req_view = req.clone();
    blocking(app, move |app| {
        let req = req_view;
        let caller = authenticate(app, &req)?;
        let meta = app.inner.meta.as_ref();
        let resource = match &project_id {
            Some(p) => {
                if let Credential::Token(t) = &caller.credential
                    && &t.project != p
                {
                    return Err(ApiError::Forbidden("this token is not for this project"));
                }
                let project = meta.project(p).map_err(meta_err)?.ok_or(ApiError::NotFound)?;
                Resource::Project {
                    id: p.as_str().to_owned(),
                    org: project.org_id,
                }
            }
            // A token is bound to one project: it reads that project's share of the
            // audit log and alerts; organization management needs a person.
            None => match &caller.credential {
                Credential::Token(t) if action == Action::ReadAudit => Resource::Project {
                    id: t.project.as_str().to_owned(),
                    org: caller.org.clone(),
                },
                _ => Resource::Org {
                    id: caller.org.clone(),
                },
            },
        };
        let settings = app.inner.orgs.get(app)?;
        let grants = grants_for(&caller, project_id.as_ref(), meta)?;
        let suspended = meta.is_suspended(&caller.id).map_err(meta_err)?;
        if suspended {
            return Err(ApiError::Denied {
                code: "principal_suspended",
                message: "this principal is suspended after repeated budget trips; an admin must restore it".into(),
            });
        }
        if action == Action::ApproveExport && caller.kind != PrincipalKind::User {
            return Err(ApiError::Denied {
                code: "approval_needs_person",
                message: "exports are approved by a person with a fresh second factor, not a token"
                    .into(),
            });
        }
        let mfa_fresh = caller.mfa_fresh(app);
        if let Some(user) = caller.user() {
            let must_have_mfa = grants
                .role
                .is_some_and(|r| settings.mfa_required_roles.iter().any(|x| x == r.as_str()));
            if must_have_mfa && !user.mfa_enabled {
                return Err(ApiError::Denied {
                    code: "mfa_enrollment_required",
                    message: "this role requires a second factor: enroll at /api/v1/auth/mfa/enroll".into(),
                });
            }
            if needs_step_up(action) && !mfa_fresh {
                return Err(ApiError::Denied {
                    code: "step_up_required",
                    message: "this action needs a fresh second factor: POST /api/v1/auth/step-up".into(),
                });
            }
        }
        let principal = Principal {
            id: caller.id.clone(),
            kind: caller.kind,
            org: caller.org.clone(),
            grants,
            suspended,
        };
        let context = Context {
            mfa_fresh,
            mfa_enrolled: caller.user().is_some_and(|u| u.mfa_enabled),
            ip: req.ip,
        };
        let decision = app
            .inner
            .authorizer
            .authorize(&principal, action, &resource, &context);
        if !decision.allowed {
            return Err(ApiError::Denied {
                code: "forbidden",
                message: format!("not allowed to {} here", action.as_str()),
            });
        }
        let read_personal = (caller.kind != PrincipalKind::User || mfa_fresh)
            && app
                .inner
                .authorizer
                .authorize(&principal, Action::ReadPersonal, &resource, &context)
                .allowed;
        let role = principal.grants.role;
        let mut budget = BudgetPolicy::for_role(role)
            .with_overrides(role, &settings.budgets)
            .map_err(|e| ApiError::Internal(format!("stored budget overrides are invalid: {e}")))?;
        if read_personal {
            budget = budget.with_personal_allowance(minim_auth::budget::DEFAULT_PERSONAL_PER_DAY);
        }
        let now = app.inner.clock.now_ms();
        if let Err(trip) = app.inner.budgets.check(&caller.id, &budget, now) {
            return Err(ApiError::BudgetExceeded(trip.to_string()));
        }
        let project = project_id.or_else(|| match &caller.credential {
            Credential::Token(t) if action == Action::ReadAudit => Some(t.project.clone()),
            _ => None,
        });
        Ok(Granted {
            caller,
            project,
            role,
            read_personal,
            budget,
            settings,
        })
    })
    .await
}

/// Meters what a request is about to return. Over budget: nothing is returned (429), the
/// trip is logged, audited and raised as an alert (and webhook); repeated trips suspend
/// the principal.
pub(crate) async fn charge(
    app: &App,
    req: &Req,
    granted: &Granted,
    usage: Usage,
) -> Result<(), ApiError> {
    let now = app.inner.clock.now_ms();
    req.slot
        .returned(usage.rows.max(usage.raw_events), usage.distinct_users);
    let Err(trip) = app
        .inner
        .budgets
        .charge(&granted.caller.id, &granted.budget, usage, now)
    else {
        return Ok(());
    };
    tripped(app, req, granted, &trip).await?;
    Err(ApiError::BudgetExceeded(trip.to_string()))
}

async fn tripped(app: &App, req: &Req, granted: &Granted, trip: &Trip) -> Result<(), ApiError> {
    let principal = granted.caller.id.clone();
    tracing::warn!(
        principal = %principal,
        meter = trip.meter.as_str(),
        limit = trip.limit.max,
        window_ms = trip.limit.window_ms,
        used = trip.used,
        requested = trip.requested,
        trips = trip.trips_in_window,
        suspend = trip.suspend,
        "read budget exceeded"
    );
    let detail = serde_json::json!({
        "meter": trip.meter.as_str(),
        "limit": trip.limit.max,
        "window_ms": trip.limit.window_ms,
        "used": trip.used,
        "requested": trip.requested,
        "trips_in_window": trip.trips_in_window,
        "suspended": trip.suspend,
    });
    let project = granted.project.clone();
    let org = granted.caller.org.clone();
    let suspend = trip.suspend;
    let p = principal.clone();
    let d = detail.to_string();
    blocking(app, move |app| {
        let meta = app.inner.meta.as_ref();
        let now = app.inner.clock.now_ms();
        meta.add_alert(&Alert {
            id: 0,
            org_id: org.clone(),
            project: project.clone(),
            principal: p.clone(),
            kind: if suspend {
                "principal_suspended"
            } else {
                "budget_exceeded"
            }
            .into(),
            detail_json: d,
            at_ms: now,
            acknowledged: false,
        })
        .map_err(meta_err)?;
        if suspend {
            meta.suspend(&p, &org, "repeated read budget trips", now)
                .map_err(meta_err)?;
        }
        Ok(())
    })
    .await?;
    let resource = granted.project.as_ref().map_or_else(
        || format!("org:{}", granted.caller.org),
        |p| format!("project:{p}"),
    );
    for action in std::iter::once("budget_trip").chain(suspend.then_some("suspend")) {
        audit::record(
            app,
            audit::Extra {
                principal: &principal,
                principal_kind: granted.caller.kind.as_str(),
                action,
                resource: resource.clone(),
                decision: minim_audit::Decision::Deny,
                status: 429,
                reason: Some(format!("{}_exceeded", trip.meter.as_str())),
                ip: req.ip,
            },
        )
        .await?;
    }
    let hook = granted
        .settings
        .alert_webhook
        .clone()
        .or_else(|| app.inner.security.alert_webhook.clone());
    if let Some(url) = hook {
        let body = serde_json::json!({
            "kind": if suspend { "principal_suspended" } else { "budget_exceeded" },
            "principal": principal,
            "project": granted.project.as_ref().map(ProjectId::as_str),
            "detail": detail,
        });
        tokio::spawn(crate::webhook::post(url, body));
    }
    Ok(())
}
