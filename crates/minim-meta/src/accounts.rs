//! Accounts and access metadata (migration 3): users and their memberships, MFA seeds
//! and recovery codes, login sessions, API tokens with permission lists and IP
//! allowlists, organization settings, suspensions, alerts and export requests.
//! Plain SQL over one connection; `sqlite.rs` exposes these through [`crate::MetaStore`].
//! Secrets (session ids, CSRF tokens, recovery codes) arrive here already hashed.

use minim_core::ProjectId;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::keys::{KeyKind, generate_id, generate_secret, hash_secret, looks_valid};
use crate::{
    Alert, CreatedToken, ExportRequest, Membership, MetaError, Result, Role, Session, TokenInfo,
    TokenSpec, User,
};

/// The organization every project and user belongs to until organizations can be created.
pub(crate) const DEFAULT_ORG: &str = "default";
/// `memberships.project_id` of an organization-wide membership.
const ALL_PROJECTS: &str = "*";

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

fn opt_role(s: Option<String>) -> rusqlite::Result<Option<Role>> {
    s.map(|r| {
        r.parse::<Role>().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
    })
    .transpose()
}

pub(crate) fn ensure_default_org(conn: &Connection, now_ms: i64) -> Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO organizations (id, name, created_at_ms) VALUES (?1, 'Default', ?2)",
        params![DEFAULT_ORG, now_ms],
    )?;
    Ok(())
}

const USER_COLS: &str = "id, org_id, email, password_hash, created_at_ms, disabled_at_ms, mfa_secret, mfa_enabled, mfa_last_step";

fn row_to_user(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        org_id: r.get(1)?,
        email: r.get(2)?,
        password_hash: r.get(3)?,
        created_at_ms: r.get(4)?,
        disabled: r.get::<_, Option<i64>>(5)?.is_some(),
        mfa_secret: r.get(6)?,
        mfa_enabled: r.get::<_, i64>(7)? != 0,
        mfa_last_step: r.get(8)?,
    })
}

pub(crate) fn normalize_email(email: &str) -> Result<String> {
    let e = email.trim().to_lowercase();
    let valid = e.len() <= 254
        && e.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'))
        && !e.chars().any(char::is_whitespace);
    if valid {
        Ok(e)
    } else {
        Err(MetaError::Invalid(
            "email must look like name@example.com".into(),
        ))
    }
}

pub(crate) fn create_user(
    conn: &mut Connection,
    email: &str,
    password_hash: Option<&str>,
    role: Role,
    now_ms: i64,
) -> Result<User> {
    let email = normalize_email(email)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    ensure_default_org(&tx, now_ms)?;
    let taken: Option<String> = tx
        .query_row(
            "SELECT id FROM users WHERE email = ?1",
            params![email],
            |r| r.get(0),
        )
        .optional()?;
    if taken.is_some() {
        return Err(MetaError::Invalid("a user with this email exists".into()));
    }
    let id = generate_id("u_");
    tx.execute(
        "INSERT INTO users (id, org_id, email, password_hash, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, DEFAULT_ORG, email, password_hash, now_ms],
    )?;
    tx.execute(
        "INSERT INTO memberships (user_id, project_id, role, permissions) VALUES (?1, ?2, ?3, '')",
        params![id, ALL_PROJECTS, role.as_str()],
    )?;
    let user = tx.query_row(
        &format!("SELECT {USER_COLS} FROM users WHERE id = ?1"),
        params![id],
        row_to_user,
    )?;
    tx.commit()?;
    Ok(user)
}

pub(crate) fn user(conn: &Connection, id: &str) -> Result<Option<User>> {
    Ok(conn
        .query_row(
            &format!("SELECT {USER_COLS} FROM users WHERE id = ?1"),
            params![id],
            row_to_user,
        )
        .optional()?)
}

pub(crate) fn user_by_email(conn: &Connection, email: &str) -> Result<Option<User>> {
    let Ok(email) = normalize_email(email) else {
        return Ok(None);
    };
    Ok(conn
        .query_row(
            &format!("SELECT {USER_COLS} FROM users WHERE email = ?1"),
            params![email],
            row_to_user,
        )
        .optional()?)
}

pub(crate) fn list_users(conn: &Connection, org: &str) -> Result<Vec<User>> {
    let mut st = conn.prepare(&format!(
        "SELECT {USER_COLS} FROM users WHERE org_id = ?1 ORDER BY created_at_ms, id"
    ))?;
    let rows = st.query_map(params![org], row_to_user)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

fn changed(n: usize, what: &str) -> Result<()> {
    if n == 0 {
        Err(MetaError::NotFound(what.into()))
    } else {
        Ok(())
    }
}

pub(crate) fn set_password(conn: &Connection, user: &str, hash: &str) -> Result<()> {
    let n = conn.execute(
        "UPDATE users SET password_hash = ?2 WHERE id = ?1",
        params![user, hash],
    )?;
    changed(n, "user")
}

pub(crate) fn set_mfa(
    conn: &Connection,
    user: &str,
    secret: Option<&[u8]>,
    enabled: bool,
) -> Result<()> {
    let n = conn.execute(
        "UPDATE users SET mfa_secret = ?2, mfa_enabled = ?3, mfa_last_step = NULL WHERE id = ?1",
        params![user, secret, i64::from(enabled)],
    )?;
    changed(n, "user")
}

/// Records the TOTP step just used, only if it is newer than the last one (replay guard
/// that holds across processes). False when the step was already used.
pub(crate) fn use_mfa_step(conn: &Connection, user: &str, step: i64) -> Result<bool> {
    let n = conn.execute(
        "UPDATE users SET mfa_last_step = ?2 WHERE id = ?1 AND (mfa_last_step IS NULL OR mfa_last_step < ?2)",
        params![user, step],
    )?;
    Ok(n > 0)
}

pub(crate) fn set_recovery_codes(
    conn: &mut Connection,
    user: &str,
    hashes: &[String],
) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "DELETE FROM recovery_codes WHERE user_id = ?1",
        params![user],
    )?;
    for h in hashes {
        tx.execute(
            "INSERT OR IGNORE INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)",
            params![user, h],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// Spends a recovery code (by hash): true once, false for unknown or used codes.
pub(crate) fn use_recovery_code(
    conn: &Connection,
    user: &str,
    hash: &str,
    now_ms: i64,
) -> Result<bool> {
    let n = conn.execute(
        "UPDATE recovery_codes SET used_at_ms = ?3 WHERE user_id = ?1 AND code_hash = ?2 AND used_at_ms IS NULL",
        params![user, hash, now_ms],
    )?;
    Ok(n > 0)
}

fn row_to_membership(r: &rusqlite::Row<'_>) -> rusqlite::Result<Membership> {
    let project: String = r.get(0)?;
    Ok(Membership {
        project: (project != ALL_PROJECTS)
            .then(|| crate::sqlite::project_id(project))
            .transpose()?,
        role: opt_role(r.get(1)?)?,
        permissions: list(&r.get::<_, String>(2)?),
    })
}

pub(crate) fn memberships(conn: &Connection, user: &str) -> Result<Vec<Membership>> {
    let mut st = conn.prepare(
        "SELECT project_id, role, permissions FROM memberships WHERE user_id = ?1 ORDER BY project_id",
    )?;
    let rows = st.query_map(params![user], row_to_membership)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(crate) fn set_membership(conn: &Connection, user: &str, m: &Membership) -> Result<()> {
    let project = m.project.as_ref().map_or(ALL_PROJECTS, ProjectId::as_str);
    conn.execute(
        "INSERT INTO memberships (user_id, project_id, role, permissions) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(user_id, project_id) DO UPDATE SET role = excluded.role, permissions = excluded.permissions",
        params![user, project, m.role.map(Role::as_str), m.permissions.join(",")],
    )?;
    Ok(())
}

pub(crate) fn remove_membership(
    conn: &Connection,
    user: &str,
    project: Option<&ProjectId>,
) -> Result<bool> {
    let project = project.map_or(ALL_PROJECTS, ProjectId::as_str);
    let n = conn.execute(
        "DELETE FROM memberships WHERE user_id = ?1 AND project_id = ?2",
        params![user, project],
    )?;
    Ok(n > 0)
}

const SESSION_COLS: &str =
    "id, user_id, created_at_ms, expires_at_ms, last_seen_ms, mfa_at_ms, csrf_hash";

fn row_to_session(r: &rusqlite::Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session {
        id: r.get(0)?,
        user_id: r.get(1)?,
        created_at_ms: r.get(2)?,
        expires_at_ms: r.get(3)?,
        last_seen_ms: r.get(4)?,
        mfa_at_ms: r.get(5)?,
        csrf_hash: r.get(6)?,
    })
}

pub(crate) fn create_session(
    conn: &Connection,
    user: &str,
    secret_hash: &str,
    csrf_hash: &str,
    mfa_at_ms: Option<i64>,
    ttl_ms: i64,
    now_ms: i64,
) -> Result<Session> {
    let id = generate_id("s_");
    conn.execute(
        "INSERT INTO sessions (id, secret_hash, csrf_hash, user_id, created_at_ms, expires_at_ms, last_seen_ms, mfa_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5, ?7)",
        params![id, secret_hash, csrf_hash, user, now_ms, now_ms.saturating_add(ttl_ms), mfa_at_ms],
    )?;
    Ok(Session {
        id,
        user_id: user.into(),
        created_at_ms: now_ms,
        expires_at_ms: now_ms.saturating_add(ttl_ms),
        last_seen_ms: now_ms,
        mfa_at_ms,
        csrf_hash: csrf_hash.into(),
    })
}

/// The active session with this secret (not revoked, not expired, not idle longer than
/// `idle_ms`); records the sighting.
pub(crate) fn session(
    conn: &Connection,
    secret_hash: &str,
    idle_ms: i64,
    now_ms: i64,
) -> Result<Option<Session>> {
    let s = conn
        .query_row(
            &format!(
                "SELECT {SESSION_COLS} FROM sessions WHERE secret_hash = ?1 AND revoked_at_ms IS NULL
                 AND expires_at_ms > ?2 AND last_seen_ms > ?3"
            ),
            params![secret_hash, now_ms, now_ms.saturating_sub(idle_ms)],
            row_to_session,
        )
        .optional()?;
    if let Some(s) = &s {
        conn.execute(
            "UPDATE sessions SET last_seen_ms = ?2 WHERE id = ?1",
            params![s.id, now_ms],
        )?;
    }
    Ok(s)
}

pub(crate) fn sessions_of(conn: &Connection, user: &str, now_ms: i64) -> Result<Vec<Session>> {
    let mut st = conn.prepare(&format!(
        "SELECT {SESSION_COLS} FROM sessions WHERE user_id = ?1 AND revoked_at_ms IS NULL AND expires_at_ms > ?2
         ORDER BY created_at_ms"
    ))?;
    let rows = st.query_map(params![user, now_ms], row_to_session)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(crate) fn set_session_mfa(conn: &Connection, session_id: &str, at_ms: i64) -> Result<()> {
    let n = conn.execute(
        "UPDATE sessions SET mfa_at_ms = ?2 WHERE id = ?1",
        params![session_id, at_ms],
    )?;
    changed(n, "session")
}

/// Revokes one session (`Some(id)`) or all of a user's sessions (`None`); returns how many.
pub(crate) fn revoke_sessions(
    conn: &Connection,
    user: &str,
    session_id: Option<&str>,
    now_ms: i64,
) -> Result<usize> {
    Ok(match session_id {
        Some(id) => conn.execute(
            "UPDATE sessions SET revoked_at_ms = ?3 WHERE user_id = ?1 AND id = ?2 AND revoked_at_ms IS NULL",
            params![user, id, now_ms],
        )?,
        None => conn.execute(
            "UPDATE sessions SET revoked_at_ms = ?2 WHERE user_id = ?1 AND revoked_at_ms IS NULL",
            params![user, now_ms],
        )?,
    })
}

pub(crate) fn create_token(
    conn: &Connection,
    spec: &TokenSpec,
    now_ms: i64,
) -> Result<CreatedToken> {
    if spec.ttl_ms <= 0 {
        return Err(MetaError::Invalid("token ttl must be positive".into()));
    }
    if spec.role.is_none() && spec.permissions.is_empty() {
        return Err(MetaError::Invalid(
            "a token needs a role or a permission list".into(),
        ));
    }
    let exists: Option<String> = conn
        .query_row(
            "SELECT id FROM projects WHERE id = ?1",
            params![spec.project.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_none() {
        return Err(MetaError::NotFound(format!("project {}", spec.project)));
    }
    let token = generate_secret(KeyKind::ApiToken);
    let token_id = generate_id("t_");
    let expires_at_ms = now_ms.saturating_add(spec.ttl_ms);
    conn.execute(
        "INSERT INTO api_tokens (id, token_hash, project_id, role, created_at_ms, expires_at_ms, permissions, ip_allow, name, created_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            token_id,
            hash_secret(&token),
            spec.project.as_str(),
            spec.role.map_or("", Role::as_str),
            now_ms,
            expires_at_ms,
            spec.permissions.join(","),
            spec.ip_allow.join(","),
            spec.name,
            spec.created_by
        ],
    )?;
    Ok(CreatedToken {
        token_id,
        token,
        expires_at_ms,
    })
}

const TOKEN_COLS: &str = "id, project_id, role, expires_at_ms, permissions, ip_allow, name, created_by, created_at_ms, last_used_at_ms, revoked_at_ms";

fn row_to_token(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenInfo> {
    let role: String = r.get(2)?;
    Ok(TokenInfo {
        token_id: r.get(0)?,
        project: crate::sqlite::project_id(r.get(1)?)?,
        role: opt_role((!role.is_empty()).then_some(role))?,
        expires_at_ms: r.get(3)?,
        permissions: list(&r.get::<_, Option<String>>(4)?.unwrap_or_default()),
        ip_allow: list(&r.get::<_, Option<String>>(5)?.unwrap_or_default()),
        name: r.get(6)?,
        created_by: r.get(7)?,
        created_at_ms: r.get(8)?,
        last_used_at_ms: r.get(9)?,
        revoked: r.get::<_, Option<i64>>(10)?.is_some(),
    })
}

pub(crate) fn verify_token(
    conn: &Connection,
    token: &str,
    now_ms: i64,
) -> Result<Option<TokenInfo>> {
    if !looks_valid(KeyKind::ApiToken, token) {
        return Ok(None);
    }
    let info = conn
        .query_row(
            &format!(
                "SELECT {TOKEN_COLS} FROM api_tokens
                 WHERE token_hash = ?1 AND revoked_at_ms IS NULL AND expires_at_ms > ?2"
            ),
            params![hash_secret(token), now_ms],
            row_to_token,
        )
        .optional()?;
    if let Some(t) = &info {
        conn.execute(
            "UPDATE api_tokens SET last_used_at_ms = ?2 WHERE id = ?1",
            params![t.token_id, now_ms],
        )?;
    }
    Ok(info)
}

pub(crate) fn tokens(conn: &Connection, project: &ProjectId) -> Result<Vec<TokenInfo>> {
    let mut st = conn.prepare(&format!(
        "SELECT {TOKEN_COLS} FROM api_tokens WHERE project_id = ?1 ORDER BY created_at_ms, id"
    ))?;
    let rows = st.query_map(params![project.as_str()], row_to_token)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(crate) fn org_settings(conn: &Connection, org: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT settings_json FROM org_settings WHERE org_id = ?1",
            params![org],
            |r| r.get(0),
        )
        .optional()?)
}

pub(crate) fn set_org_settings(
    conn: &Connection,
    org: &str,
    json: &str,
    now_ms: i64,
) -> Result<()> {
    ensure_default_org(conn, now_ms)?;
    conn.execute(
        "INSERT INTO org_settings (org_id, settings_json, updated_at_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(org_id) DO UPDATE SET settings_json = excluded.settings_json, updated_at_ms = excluded.updated_at_ms",
        params![org, json, now_ms],
    )?;
    Ok(())
}

pub(crate) fn suspend(
    conn: &Connection,
    principal: &str,
    org: &str,
    reason: &str,
    now_ms: i64,
) -> Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO suspensions (principal_id, org_id, reason, at_ms) VALUES (?1, ?2, ?3, ?4)",
        params![principal, org, reason, now_ms],
    )?;
    Ok(())
}

pub(crate) fn restore(conn: &Connection, principal: &str) -> Result<bool> {
    let n = conn.execute(
        "DELETE FROM suspensions WHERE principal_id = ?1",
        params![principal],
    )?;
    Ok(n > 0)
}

pub(crate) fn suspended(conn: &Connection, principal: &str) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM suspensions WHERE principal_id = ?1",
            params![principal],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

pub(crate) fn suspensions(conn: &Connection, org: &str) -> Result<Vec<(String, String, i64)>> {
    let mut st = conn.prepare(
        "SELECT principal_id, reason, at_ms FROM suspensions WHERE org_id = ?1 ORDER BY at_ms",
    )?;
    let rows = st.query_map(params![org], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(crate) fn add_alert(conn: &Connection, a: &Alert) -> Result<i64> {
    conn.execute(
        "INSERT INTO alerts (org_id, project_id, principal_id, kind, detail_json, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![a.org_id, a.project.as_ref().map(ProjectId::as_str), a.principal, a.kind, a.detail_json, a.at_ms],
    )?;
    Ok(conn.last_insert_rowid())
}

pub(crate) fn alerts(conn: &Connection, org: &str, limit: usize) -> Result<Vec<Alert>> {
    let mut st = conn.prepare(
        "SELECT id, org_id, project_id, principal_id, kind, detail_json, at_ms, acknowledged_at_ms
         FROM alerts WHERE org_id = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = st.query_map(
        params![org, i64::try_from(limit).unwrap_or(i64::MAX)],
        |r| {
            Ok(Alert {
                id: r.get(0)?,
                org_id: r.get(1)?,
                project: r
                    .get::<_, Option<String>>(2)?
                    .map(crate::sqlite::project_id)
                    .transpose()?,
                principal: r.get(3)?,
                kind: r.get(4)?,
                detail_json: r.get(5)?,
                at_ms: r.get(6)?,
                acknowledged: r.get::<_, Option<i64>>(7)?.is_some(),
            })
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

const EXPORT_COLS: &str =
    "id, project_id, requester, spec_json, status, created_at_ms, approver, decided_at_ms";

fn row_to_export(r: &rusqlite::Row<'_>) -> rusqlite::Result<ExportRequest> {
    Ok(ExportRequest {
        id: r.get(0)?,
        project: crate::sqlite::project_id(r.get(1)?)?,
        requester: r.get(2)?,
        spec_json: r.get(3)?,
        status: r.get(4)?,
        created_at_ms: r.get(5)?,
        approver: r.get(6)?,
        decided_at_ms: r.get(7)?,
    })
}

pub(crate) fn create_export(
    conn: &Connection,
    project: &ProjectId,
    requester: &str,
    spec_json: &str,
    now_ms: i64,
) -> Result<ExportRequest> {
    let id = generate_id("x_");
    conn.execute(
        "INSERT INTO export_requests (id, project_id, requester, spec_json, status, created_at_ms)
         VALUES (?1, ?2, ?3, ?4, 'pending', ?5)",
        params![id, project.as_str(), requester, spec_json, now_ms],
    )?;
    export(conn, &id)?.ok_or_else(|| MetaError::Db("export request vanished".into()))
}

pub(crate) fn export(conn: &Connection, id: &str) -> Result<Option<ExportRequest>> {
    Ok(conn
        .query_row(
            &format!("SELECT {EXPORT_COLS} FROM export_requests WHERE id = ?1"),
            params![id],
            row_to_export,
        )
        .optional()?)
}

pub(crate) fn exports(
    conn: &Connection,
    project: &ProjectId,
    limit: usize,
) -> Result<Vec<ExportRequest>> {
    let mut st = conn.prepare(&format!(
        "SELECT {EXPORT_COLS} FROM export_requests WHERE project_id = ?1 ORDER BY created_at_ms DESC, id LIMIT ?2"
    ))?;
    let rows = st.query_map(
        params![project.as_str(), i64::try_from(limit).unwrap_or(i64::MAX)],
        row_to_export,
    )?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Moves an export request from `from` to `to` status, recording who decided; false when
/// it was not in `from` (already decided, or unknown). The requester can never decide.
pub(crate) fn decide_export(
    conn: &Connection,
    id: &str,
    from: &str,
    to: &str,
    who: &str,
    now_ms: i64,
) -> Result<bool> {
    let n = conn.execute(
        "UPDATE export_requests SET status = ?3, approver = COALESCE(approver, ?4), decided_at_ms = ?5
         WHERE id = ?1 AND status = ?2 AND requester <> ?4",
        params![id, from, to, who, now_ms],
    )?;
    Ok(n > 0)
}

/// Moves an export request from `from` to `to` without a decision (e.g. downloaded).
pub(crate) fn set_export_status(conn: &Connection, id: &str, from: &str, to: &str) -> Result<bool> {
    let n = conn.execute(
        "UPDATE export_requests SET status = ?3 WHERE id = ?1 AND status = ?2",
        params![id, from, to],
    )?;
    Ok(n > 0)
}
