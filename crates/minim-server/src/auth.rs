//! Ingest credentials: bearer extraction and the ingest-key cache in front of the
//! metadata store. API tokens and sessions are resolved by `access`.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use minim_core::ProjectId;
use minim_meta::hash_secret;

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
