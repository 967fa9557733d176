//! People: login (argon2id password, then TOTP or a recovery code when enrolled), the
//! session cookie (`__Host-` prefix, `Secure`, `HttpOnly`, `SameSite=Strict`) with its
//! CSRF token, logout and session revocation, MFA enrollment, step-up, and one's own read
//! budget. Login attempts are rate limited per account and per address with temporary
//! lockout; every attempt is audited.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use minim_auth::budget::BudgetPolicy;
use minim_auth::{PrincipalKind, Role, password, secrets, totp};
use minim_meta::{Alert, User};
use serde::Deserialize;
use serde_json::json;

use crate::access::{
    Caller, Credential, DEFAULT_ORG, Req, SESSION_COOKIE, authenticate, blocking, meta_err,
};
use crate::query::{iso, parse_body};
use crate::{ApiError, App};

fn session_cookie(value: &str, max_age_s: i64) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age_s}"
    ))
    .map_err(|e| ApiError::Internal(e.to_string()))
}

/// The organization-wide role of a user (what `user create --role` set).
fn org_role(app: &App, user: &User) -> Result<Option<Role>, ApiError> {
    Ok(app
        .inner
        .meta
        .memberships(&user.id)
        .map_err(meta_err)?
        .into_iter()
        .find(|m| m.project.is_none())
        .and_then(|m| m.role))
}

/// Checks a second factor: a TOTP code (not replayed) or an unused recovery code.
fn second_factor(
    app: &App,
    user: &User,
    code: Option<&str>,
    recovery: Option<&str>,
) -> Result<bool, ApiError> {
    let meta = app.inner.meta.as_ref();
    let now = app.inner.clock.now_ms();
    if let (Some(code), Some(seed)) = (code, &user.mfa_secret) {
        let secret = totp::TotpSecret::from_bytes(seed.clone());
        return Ok(match totp::verify(&secret, code, now, user.mfa_last_step) {
            Some(step) => meta.use_mfa_step(&user.id, step).map_err(meta_err)?,
            None => false,
        });
    }
    if let Some(r) = recovery {
        return meta
            .use_recovery_code(&user.id, &secrets::hash_recovery_code(r), now)
            .map_err(meta_err);
    }
    Ok(false)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    email: String,
    password: String,
    #[serde(default)]
    totp: Option<String>,
    #[serde(default)]
    recovery_code: Option<String>,
}

enum LoginOutcome {
    Ok {
        user: Box<User>,
        session_id: String,
        secret: String,
        csrf: String,
        expires_at_ms: i64,
        enrollment_required: bool,
    },
    BadCredentials,
    MfaRequired,
    Locked(i64),
}

pub(crate) async fn login(
    State(app): State<App>,
    req: Req,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    req.slot.action("login", format!("org:{DEFAULT_ORG}"));
    let r: LoginRequest = parse_body(
        body,
        r#"{"email": "...", "password": "...", "totp": "123456"}"#,
    )?;
    let ip = req.ip;
    let slot = req.slot.clone();
    let outcome = blocking(&app, move |app| {
        let now = app.inner.clock.now_ms();
        let account = r.email.trim().to_lowercase();
        let limiter = &app.inner.logins;
        if let Err(locked) = limiter.check(&account, ip, now) {
            return Ok(LoginOutcome::Locked(locked.retry_after_ms(now)));
        }
        let meta = app.inner.meta.as_ref();
        let user = meta.user_by_email(&account).map_err(meta_err)?;
        let fail = |app: &App, user: Option<&User>| -> Result<LoginOutcome, ApiError> {
            if let Some(locked) = app.inner.logins.record_failure(&account, ip, now) {
                tracing::warn!("login lockout started after repeated failures");
                app.inner
                    .meta
                    .add_alert(&Alert {
                        id: 0,
                        org_id: DEFAULT_ORG.into(),
                        project: None,
                        principal: user.map_or_else(|| "unknown_account".into(), |u| u.id.clone()),
                        kind: "login_lockout".into(),
                        detail_json: json!({ "until_ms": locked.until_ms }).to_string(),
                        at_ms: now,
                        acknowledged: false,
                    })
                    .map_err(meta_err)?;
            }
            Ok(LoginOutcome::BadCredentials)
        };
        let Some(user) = user.filter(|u| !u.disabled) else {
            password::dummy_verify(&r.password);
            return fail(app, None);
        };
        slot.principal(&user.id, PrincipalKind::User.as_str());
        let ok = user
            .password_hash
            .as_deref()
            .is_some_and(|h| password::verify_password(h, &r.password));
        if !ok {
            return fail(app, Some(&user));
        }
        let mut mfa_at = None;
        if user.mfa_enabled {
            if r.totp.is_none() && r.recovery_code.is_none() {
                return Ok(LoginOutcome::MfaRequired);
            }
            if !second_factor(app, &user, r.totp.as_deref(), r.recovery_code.as_deref())? {
                return fail(app, Some(&user));
            }
            mfa_at = Some(now);
        }
        limiter.record_success(&account, ip);
        if user
            .password_hash
            .as_deref()
            .is_some_and(password::needs_rehash)
            && let Ok(h) = password::hash_password(&r.password)
        {
            meta.set_password(&user.id, &h).map_err(meta_err)?;
        }
        let settings = app.inner.orgs.get(app)?;
        let enrollment_required = !user.mfa_enabled
            && org_role(app, &user)?.is_some_and(|role| {
                settings
                    .mfa_required_roles
                    .iter()
                    .any(|x| x == role.as_str())
            });
        let secret = secrets::random_token("mss_", 32);
        let csrf = secrets::random_token("csrf_", 24);
        let ttl = app.inner.security.session_ttl_ms;
        let session = meta
            .create_session(
                &user.id,
                &secrets::hash_token(&secret),
                &secrets::hash_token(&csrf),
                mfa_at,
                ttl,
                now,
            )
            .map_err(meta_err)?;
        Ok(LoginOutcome::Ok {
            user: Box::new(user),
            session_id: session.id,
            secret,
            csrf,
            expires_at_ms: session.expires_at_ms,
            enrollment_required,
        })
    })
    .await?;
    match outcome {
        LoginOutcome::Locked(retry_ms) => Err(ApiError::TooManyAttempts {
            code: "login_locked",
            message: "too many failed logins; try again later".into(),
            retry_after_s: u64::try_from(retry_ms.max(1000) / 1000).unwrap_or(1),
        }),
        LoginOutcome::BadCredentials => Err(ApiError::Unauthorized),
        LoginOutcome::MfaRequired => Err(ApiError::Denied {
            code: "mfa_required",
            message: "this account has a second factor: send \"totp\" or \"recovery_code\"".into(),
        }),
        LoginOutcome::Ok {
            user,
            session_id,
            secret,
            csrf,
            expires_at_ms,
            enrollment_required,
        } => {
            let max_age = app.inner.security.session_ttl_ms / 1000;
            let mut resp = Json(json!({
                "user_id": user.id,
                "session_id": session_id,
                "csrf_token": csrf,
                "expires_at": iso(expires_at_ms),
                "mfa_enabled": user.mfa_enabled,
                "mfa_enrollment_required": enrollment_required,
            }))
            .into_response();
            resp.headers_mut()
                .insert(header::SET_COOKIE, session_cookie(&secret, max_age)?);
            Ok(resp)
        }
    }
}

/// The session caller of a request (a token is refused: these are a person's endpoints).
async fn session_caller(app: &App, req: &Req) -> Result<Caller, ApiError> {
    let view = req.clone();
    let caller = blocking(app, move |app| authenticate(app, &view)).await?;
    if !matches!(caller.credential, Credential::Session { .. }) {
        return Err(ApiError::BadRequest {
            code: "session_required",
            message: "this endpoint is for login sessions, not API tokens".into(),
        });
    }
    Ok(caller)
}

pub(crate) async fn logout(State(app): State<App>, req: Req) -> Result<Response, ApiError> {
    req.slot.action("logout", format!("org:{DEFAULT_ORG}"));
    let caller = session_caller(&app, &req).await?;
    let (Some(user), Some(session)) = (caller.user().cloned(), caller.session().cloned()) else {
        return Err(ApiError::Unauthorized);
    };
    blocking(&app, move |app| {
        app.inner
            .meta
            .revoke_sessions(&user.id, Some(&session.id), app.inner.clock.now_ms())
            .map_err(meta_err)
    })
    .await?;
    let mut resp = Json(json!({ "logged_out": true })).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie("", 0)?);
    Ok(resp)
}

pub(crate) async fn me(
    State(app): State<App>,
    req: Req,
) -> Result<Json<serde_json::Value>, ApiError> {
    req.slot.action("whoami", format!("org:{DEFAULT_ORG}"));
    let caller = session_caller(&app, &req).await?;
    let fresh = caller.mfa_fresh(&app);
    let (Some(user), Some(session)) = (caller.user().cloned(), caller.session().cloned()) else {
        return Err(ApiError::Unauthorized);
    };
    let memberships = blocking(&app, {
        let id = user.id.clone();
        move |app| app.inner.meta.memberships(&id).map_err(meta_err)
    })
    .await?;
    Ok(Json(json!({
        "user_id": user.id,
        "email": user.email,
        "org": user.org_id,
        "mfa_enabled": user.mfa_enabled,
        "memberships": memberships.iter().map(|m| json!({
            "project": m.project.as_ref().map(|p| p.as_str().to_owned()),
            "role": m.role.map(Role::as_str),
            "permissions": m.permissions,
        })).collect::<Vec<_>>(),
        "session": { "id": session.id, "expires_at": iso(session.expires_at_ms), "mfa_fresh": fresh },
    })))
}

pub(crate) async fn sessions(
    State(app): State<App>,
    req: Req,
) -> Result<Json<serde_json::Value>, ApiError> {
    req.slot
        .action("session_list", format!("org:{DEFAULT_ORG}"));
    let caller = session_caller(&app, &req).await?;
    let current = caller.session().map(|s| s.id.clone()).unwrap_or_default();
    let user = caller.id.clone();
    let list = blocking(&app, move |app| {
        app.inner
            .meta
            .sessions_of(&user, app.inner.clock.now_ms())
            .map_err(meta_err)
    })
    .await?;
    Ok(Json(json!({
        "sessions": list.iter().map(|s| json!({
            "id": s.id,
            "created_at": iso(s.created_at_ms),
            "last_seen": iso(s.last_seen_ms),
            "expires_at": iso(s.expires_at_ms),
            "current": s.id == current,
        })).collect::<Vec<_>>()
    })))
}

pub(crate) async fn revoke_session(
    State(app): State<App>,
    Path(session_id): Path<String>,
    req: Req,
) -> Result<Json<serde_json::Value>, ApiError> {
    req.slot
        .action("session_revoke", format!("session:{session_id}"));
    let caller = session_caller(&app, &req).await?;
    let user = caller.id.clone();
    let n = blocking(&app, move |app| {
        app.inner
            .meta
            .revoke_sessions(&user, Some(&session_id), app.inner.clock.now_ms())
            .map_err(meta_err)
    })
    .await?;
    if n == 0 {
        return Err(ApiError::NotFound);
    }
    Ok(Json(json!({ "revoked": n })))
}

pub(crate) async fn revoke_all_sessions(
    State(app): State<App>,
    req: Req,
) -> Result<Json<serde_json::Value>, ApiError> {
    req.slot
        .action("session_revoke", format!("user:{}", "self"));
    let caller = session_caller(&app, &req).await?;
    let user = caller.id.clone();
    let n = blocking(&app, move |app| {
        app.inner
            .meta
            .revoke_sessions(&user, None, app.inner.clock.now_ms())
            .map_err(meta_err)
    })
    .await?;
    Ok(Json(json!({ "revoked": n })))
}

pub(crate) async fn mfa_enroll(
    State(app): State<App>,
    req: Req,
) -> Result<Json<serde_json::Value>, ApiError> {
    req.slot.action("mfa_enroll", format!("org:{DEFAULT_ORG}"));
    let caller = session_caller(&app, &req).await?;
    let Some(user) = caller.user().cloned() else {
        return Err(ApiError::Unauthorized);
    };
    if user.mfa_enabled {
        return Err(ApiError::Conflict {
            code: "mfa_already_enabled",
            message: "a second factor is already enrolled".into(),
        });
    }
    let secret = totp::TotpSecret::generate();
    let uri = totp::otpauth_uri(&secret, "Minim", &user.email);
    let b32 = secret.base32();
    let bytes = secret.as_bytes().to_vec();
    blocking(&app, move |app| {
        app.inner
            .meta
            .set_mfa(&user.id, Some(&bytes), false)
            .map_err(meta_err)
    })
    .await?;
    Ok(Json(json!({ "secret": b32, "otpauth_uri": uri })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeRequest {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    recovery_code: Option<String>,
}

pub(crate) async fn mfa_confirm(
    State(app): State<App>,
    req: Req,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    req.slot.action("mfa_confirm", format!("org:{DEFAULT_ORG}"));
    let caller = session_caller(&app, &req).await?;
    let r: CodeRequest = parse_body(body, r#"{"code": "123456"}"#)?;
    let (Some(user), Some(session)) = (caller.user().cloned(), caller.session().cloned()) else {
        return Err(ApiError::Unauthorized);
    };
    if user.mfa_enabled || user.mfa_secret.is_none() {
        return Err(ApiError::Conflict {
            code: "mfa_not_pending",
            message: "start with POST /api/v1/auth/mfa/enroll".into(),
        });
    }
    let codes = blocking(&app, move |app| {
        if !second_factor(app, &user, r.code.as_deref(), None)? {
            return Err(ApiError::BadRequest {
                code: "invalid_code",
                message: "the code does not match; check the authenticator's clock".into(),
            });
        }
        let meta = app.inner.meta.as_ref();
        let now = app.inner.clock.now_ms();
        meta.set_mfa(&user.id, user.mfa_secret.as_deref(), true)
            .map_err(meta_err)?;
        meta.use_mfa_step(&user.id, totp::step_at(now / 1000) + 1)
            .map_err(meta_err)?;
        let codes = secrets::recovery_codes(10);
        let hashes: Vec<String> = codes
            .iter()
            .map(|c| secrets::hash_recovery_code(c))
            .collect();
        meta.set_recovery_codes(&user.id, &hashes)
            .map_err(meta_err)?;
        meta.set_session_mfa(&session.id, now).map_err(meta_err)?;
        Ok(codes)
    })
    .await?;
    Ok(Json(
        json!({ "mfa_enabled": true, "recovery_codes": codes }),
    ))
}

pub(crate) async fn step_up(
    State(app): State<App>,
    req: Req,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    req.slot.action("step_up", format!("org:{DEFAULT_ORG}"));
    let caller = session_caller(&app, &req).await?;
    let r: CodeRequest = parse_body(body, r#"{"code": "123456"} or {"recovery_code": "..."}"#)?;
    let (Some(user), Some(session)) = (caller.user().cloned(), caller.session().cloned()) else {
        return Err(ApiError::Unauthorized);
    };
    if !user.mfa_enabled {
        return Err(ApiError::Conflict {
            code: "mfa_not_enrolled",
            message: "enroll a second factor first: POST /api/v1/auth/mfa/enroll".into(),
        });
    }
    let ip = req.ip;
    blocking(&app, move |app| {
        let now = app.inner.clock.now_ms();
        let account = user.email.clone();
        if let Err(locked) = app.inner.logins.check(&account, ip, now) {
            return Err(ApiError::TooManyAttempts {
                code: "login_locked",
                message: "too many failed attempts; try again later".into(),
                retry_after_s: u64::try_from(locked.retry_after_ms(now) / 1000).unwrap_or(1),
            });
        }
        if !second_factor(app, &user, r.code.as_deref(), r.recovery_code.as_deref())? {
            app.inner.logins.record_failure(&account, ip, now);
            return Err(ApiError::Unauthorized);
        }
        app.inner
            .meta
            .set_session_mfa(&session.id, now)
            .map_err(meta_err)
    })
    .await?;
    Ok(Json(json!({ "mfa_fresh": true })))
}

/// The caller's own read budget: limits and what is used of them.
pub(crate) async fn budget(
    State(app): State<App>,
    req: Req,
) -> Result<Json<serde_json::Value>, ApiError> {
    req.slot.action("budget_read", format!("org:{DEFAULT_ORG}"));
    let view = req.clone();
    let rows = blocking(&app, move |app| {
        let caller = authenticate(app, &view)?;
        let role = match &caller.credential {
            Credential::Token(t) => t.role,
            Credential::Session { user, .. } => org_role(app, user)?,
        };
        let settings = app.inner.orgs.get(app)?;
        let policy = BudgetPolicy::for_role(role)
            .with_overrides(role, &settings.budgets)
            .map_err(ApiError::Internal)?;
        let now = app.inner.clock.now_ms();
        Ok(app
            .inner
            .budgets
            .usage(&caller.id, &policy, now)
            .into_iter()
            .map(|(l, used)| {
                json!({ "meter": l.meter.as_str(), "window_ms": l.window_ms, "max": l.max, "used": used })
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(json!({ "limits": rows })))
}
