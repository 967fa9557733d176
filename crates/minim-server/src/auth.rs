//! Credentials: bearer extraction and the ingest-key cache in front of the metadata store.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use minim_core::ProjectId;
use minim_meta::{Role, hash_secret};

use crate::{ApiError, App};

/// Resolved ingest keys, keyed by their hash (plaintext keys are never held here).
/// Only hits are cached, with a TTL, so revocation takes effect within the TTL and a
/// flood of bad keys cannot grow the cache.
pub(crate) struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (ProjectId, Instant)>>,
}

const MAX_CACHED_KEYS: usize = 100_000;

impl KeyCache {
    pub fn new(ttl_ms: u64) -> Self {
        Self {
            ttl: Duration::from_millis(ttl_ms),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, hash: &str) -> Option<ProjectId> {
        let map = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(hash)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(p, _)| p.clone())
    }

    fn put(&self, hash: String, project: ProjectId) {
        let mut map = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_CACHED_KEYS {
            map.clear();
        }
        map.insert(hash, (project, Instant::now()));
    }
}

/// The bearer credential of a request, if any.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Resolves an API token (never an ingest key) to what it grants, or `Unauthorized`
/// without saying why (missing, malformed, unknown, expired or revoked).
pub(crate) async fn api_token(
    app: &App,
    token: Option<&str>,
) -> Result<minim_meta::TokenInfo, ApiError> {
    let token = token.ok_or(ApiError::Unauthorized)?;
    if !minim_meta::looks_valid(minim_meta::KeyKind::ApiToken, token) {
        return Err(ApiError::Unauthorized);
    }
    let meta = app.inner.meta.clone();
    let token = token.to_owned();
    let now = app.inner.clock.now_ms();
    tokio::task::spawn_blocking(move || meta.verify_token(&token, now))
        .await
        .map_err(|e| ApiError::Internal(format!("token lookup task failed: {e}")))?
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .ok_or(ApiError::Unauthorized)
}

/// Resolves an ingest key to its project, or `Unauthorized` without saying why.
pub(crate) async fn ingest_project(app: &App, key: Option<&str>) -> Result<ProjectId, ApiError> {
    let key = key.ok_or(ApiError::Unauthorized)?;
    if !minim_meta::looks_valid(minim_meta::KeyKind::Ingest, key) {
        return Err(ApiError::Unauthorized);
    }
    let hash = hash_secret(key);
    if let Some(p) = app.inner.keys.get(&hash) {
        return Ok(p);
    }
    let meta = app.inner.meta.clone();
    let key = key.to_owned();
    let found = tokio::task::spawn_blocking(move || meta.project_for_ingest_key(&key))
        .await
        .map_err(|e| ApiError::Internal(format!("key lookup task failed: {e}")))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let project = found.ok_or(ApiError::Unauthorized)?;
    app.inner.keys.put(hash, project.clone());
    Ok(project)
}

/// What a request does, for the role check. Until the authorization issue replaces this
/// with policies, roles map to it as follows: `viewer` reads aggregates; `analyst` also
/// raw events, SQL and the privacy configuration; `admin` also changes that
/// configuration and runs data subject requests; `auditor` none of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Aggregates,
    RawEvents,
    Sql,
    /// Tracking plan, suggestions, privacy counters, deletion log.
    ReadPrivacyConfig,
    /// Replace the plan, run retention now.
    ManageProject,
    /// Export or erase one user's data.
    DataSubject,
}

fn allowed(role: Role, access: Access) -> bool {
    match role {
        Role::Viewer => matches!(access, Access::Aggregates),
        Role::Analyst => !matches!(access, Access::ManageProject | Access::DataSubject),
        Role::Admin => true,
        Role::Auditor => false,
    }
}

/// Authenticates the token and checks it may act on `project_id` this way.
pub(crate) async fn authorize(
    app: &App,
    headers: &HeaderMap,
    project_id: &str,
    access: Access,
) -> Result<ProjectId, ApiError> {
    let token = api_token(app, bearer(headers)).await?;
    let project = ProjectId::new(project_id).map_err(|_| ApiError::NotFound)?;
    if token.project != project {
        return Err(ApiError::Forbidden("this token is not for this project"));
    }
    if !allowed(token.role, access) {
        return Err(ApiError::Forbidden("this token's role may not do this"));
    }
    Ok(project)
}
