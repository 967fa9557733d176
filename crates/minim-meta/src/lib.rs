//! Metadata persistence: organizations, projects with their ingest keys, and API tokens.
//!
//! [`MetaStore`] is the interface the server and CLI use; [`SqliteMeta`] is the embedded
//! implementation (a PostgreSQL one can implement the same trait). Secrets (ingest keys,
//! API tokens) are generated here, shown once, and stored only as SHA-256 hashes.

mod keys;
mod migrations;
mod privacy;
mod sqlite;

pub use keys::{KeyKind, generate_secret, hash_secret, looks_valid};
pub use sqlite::SqliteMeta;

use minim_core::ProjectId;

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("metadata database error: {0}")]
    Db(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error(
        "metadata database was written by a newer minim (schema {found}, this binary knows {known})"
    )]
    NewerSchema { found: i64, known: i64 },
}

impl From<rusqlite::Error> for MetaError {
    fn from(e: rusqlite::Error) -> Self {
        MetaError::Db(e.to_string())
    }
}

pub type Result<T, E = MetaError> = std::result::Result<T, E>;

/// Built-in roles. Until the access-control work lands these are labels on tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Viewer,
    Analyst,
    Admin,
    Auditor,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Analyst, Role::Admin, Role::Auditor];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = MetaError;
    fn from_str(s: &str) -> Result<Self> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                MetaError::Invalid(format!(
                    "unknown role {s:?}; expected viewer, analyst, admin or auditor"
                ))
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: ProjectId,
    pub org_id: String,
    pub name: String,
    pub created_at_ms: i64,
}

/// Returned once at creation: the only time the plaintext ingest key exists.
#[derive(Debug, Clone)]
pub struct CreatedProject {
    pub project: Project,
    pub ingest_key: String,
}

/// Returned once at creation: the only time the plaintext token exists.
#[derive(Debug, Clone)]
pub struct CreatedToken {
    pub token_id: String,
    pub token: String,
    pub expires_at_ms: i64,
}

/// What a valid token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub token_id: String,
    pub project: ProjectId,
    pub role: Role,
    pub expires_at_ms: i64,
}

/// A name the tracking plan does not declare, seen in `learn` mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanSuggestion {
    pub event: String,
    /// `None` when the event itself is undeclared.
    pub property: Option<String>,
    pub seen_type: String,
    pub first_seen_ms: i64,
}

/// One entry of the deletion log (retention runs and erasures): counts and ranges only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionRecord {
    pub id: i64,
    pub kind: String,
    pub at_ms: i64,
    pub report_json: String,
}

/// The metadata interface. Implementations must be safe to use from many threads and
/// from several processes at once (the CLI works while a server runs).
pub trait MetaStore: Send + Sync {
    /// Creates a project (in the default organization) and its first ingest key.
    fn create_project(&self, name: &str, now_ms: i64) -> Result<CreatedProject>;
    fn project(&self, id: &ProjectId) -> Result<Option<Project>>;
    fn list_projects(&self) -> Result<Vec<Project>>;
    /// Replaces a project's ingest key (the old one stops working). Returns the new key.
    fn rotate_ingest_key(&self, project: &ProjectId, now_ms: i64) -> Result<String>;
    /// The project of an active ingest key, if any.
    fn project_for_ingest_key(&self, key: &str) -> Result<Option<ProjectId>>;
    fn create_token(
        &self,
        project: &ProjectId,
        role: Role,
        ttl_ms: i64,
        now_ms: i64,
    ) -> Result<CreatedToken>;
    fn revoke_token(&self, token_id: &str, now_ms: i64) -> Result<bool>;
    /// The grant of a token that exists, is not revoked and has not expired; records use.
    fn verify_token(&self, token: &str, now_ms: i64) -> Result<Option<TokenInfo>>;

    /// The project's secret for `purpose`, created on first use (random, 32 bytes).
    fn project_secret(&self, project: &ProjectId, purpose: &str, now_ms: i64) -> Result<Vec<u8>>;
    /// The project's tracking plan as JSON, if one was set.
    fn tracking_plan(&self, project: &ProjectId) -> Result<Option<String>>;
    fn set_tracking_plan(&self, project: &ProjectId, plan_json: &str, now_ms: i64) -> Result<()>;
    /// Records names seen in `learn` mode; a name already recorded keeps its first sighting.
    fn add_plan_suggestions(&self, project: &ProjectId, items: &[PlanSuggestion]) -> Result<()>;
    fn plan_suggestions(&self, project: &ProjectId) -> Result<Vec<PlanSuggestion>>;
    fn clear_plan_suggestions(&self, project: &ProjectId) -> Result<()>;
    /// Identity map: pseudonym -> original `distinct_id` (only for plans that keep one).
    fn add_identities(
        &self,
        project: &ProjectId,
        items: &[(String, String)],
        now_ms: i64,
    ) -> Result<()>;
    /// The original id and first sighting of a pseudonym.
    fn identity(&self, project: &ProjectId, pseudonym: &str) -> Result<Option<(String, i64)>>;
    fn delete_identity(&self, project: &ProjectId, pseudonym: &str) -> Result<bool>;
    /// Adds deltas to the project's privacy counters.
    fn add_privacy_counters(&self, project: &ProjectId, deltas: &[(String, u64)]) -> Result<()>;
    fn privacy_counters(&self, project: &ProjectId) -> Result<Vec<(String, u64)>>;
    /// Appends to the deletion log (what a retention run or an erasure removed).
    fn record_deletion(
        &self,
        project: &ProjectId,
        kind: &str,
        report_json: &str,
        now_ms: i64,
    ) -> Result<()>;
    /// The newest `limit` deletion records, newest first.
    fn deletions(&self, project: &ProjectId, limit: usize) -> Result<Vec<DeletionRecord>>;
}
