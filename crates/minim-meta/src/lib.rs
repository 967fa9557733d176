//! Metadata persistence: organizations, projects with their ingest keys, and API tokens.
//!
//! [`MetaStore`] is the interface the server and CLI use; [`SqliteMeta`] is the embedded
//! implementation (a PostgreSQL one can implement the same trait). Secrets (ingest keys,
//! API tokens) are generated here, shown once, and stored only as SHA-256 hashes.

mod accounts;
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

/// A token as stored (never its secret): what it grants and its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub token_id: String,
    pub project: ProjectId,
    /// The built-in role, or `None` for a token with only a permission list.
    pub role: Option<Role>,
    pub expires_at_ms: i64,
    /// Explicit action names (see `minim-auth`), in addition to (or instead of) the role.
    pub permissions: Vec<String>,
    /// Client addresses or CIDR ranges the token may be used from (empty = any).
    pub ip_allow: Vec<String>,
    pub name: Option<String>,
    pub created_by: Option<String>,
    pub created_at_ms: i64,
    pub last_used_at_ms: Option<i64>,
    pub revoked: bool,
}

/// What a new API token is for. `ttl_ms` is mandatory (no token lives forever).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSpec {
    pub project: ProjectId,
    pub role: Option<Role>,
    pub permissions: Vec<String>,
    pub ttl_ms: i64,
    pub ip_allow: Vec<String>,
    pub name: Option<String>,
    pub created_by: Option<String>,
}

/// A person who logs in. `password_hash` is an argon2id PHC string; `mfa_secret` the
/// TOTP seed (plaintext until the encryption issue encrypts metadata secrets).
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub org_id: String,
    /// Lowercased.
    pub email: String,
    pub password_hash: Option<String>,
    pub created_at_ms: i64,
    pub disabled: bool,
    pub mfa_secret: Option<Vec<u8>>,
    pub mfa_enabled: bool,
    pub mfa_last_step: Option<i64>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the email, the hash or the seed.
        f.debug_struct("User")
            .field("id", &self.id)
            .field("org_id", &self.org_id)
            .field("mfa_enabled", &self.mfa_enabled)
            .finish_non_exhaustive()
    }
}

/// A user's rights on one project (`project: None` = every project of the organization).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub project: Option<ProjectId>,
    pub role: Option<Role>,
    /// Explicit action names granted in addition to the role (e.g. `read_personal`).
    pub permissions: Vec<String>,
}

/// A login session. Its secret and CSRF token exist only in the client; here are hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Public id, for listing and revoking (not a credential).
    pub id: String,
    pub user_id: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub last_seen_ms: i64,
    /// When the user last proved a second factor in this session.
    pub mfa_at_ms: Option<i64>,
    pub csrf_hash: String,
}

/// A security alert for admins (budget trips, suspensions, lockouts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub id: i64,
    pub org_id: String,
    pub project: Option<ProjectId>,
    pub principal: String,
    pub kind: String,
    /// Counts and limits only, never data values.
    pub detail_json: String,
    pub at_ms: i64,
    pub acknowledged: bool,
}

/// A raw-event export that needs a second admin's approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRequest {
    pub id: String,
    pub project: ProjectId,
    pub requester: String,
    pub spec_json: String,
    /// `pending`, `approved`, `rejected` or `downloaded`.
    pub status: String,
    pub created_at_ms: i64,
    pub approver: Option<String>,
    pub decided_at_ms: Option<i64>,
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
    /// Deletes a project and everything held about it (keys, tokens, memberships, plan,
    /// secrets, identity map, counters, deletion log, export requests, alerts), in one
    /// transaction. Returns whether it existed.
    fn delete_project(&self, project: &ProjectId) -> Result<bool>;
    /// The project of an active ingest key, if any.
    fn project_for_ingest_key(&self, key: &str) -> Result<Option<ProjectId>>;
    /// A token with a role and nothing else (the CLI's `token create`).
    fn create_token(
        &self,
        project: &ProjectId,
        role: Role,
        ttl_ms: i64,
        now_ms: i64,
    ) -> Result<CreatedToken> {
        self.create_token_with(
            &TokenSpec {
                project: project.clone(),
                role: Some(role),
                permissions: Vec::new(),
                ttl_ms,
                ip_allow: Vec::new(),
                name: None,
                created_by: None,
            },
            now_ms,
        )
    }
    fn create_token_with(&self, spec: &TokenSpec, now_ms: i64) -> Result<CreatedToken>;
    fn revoke_token(&self, token_id: &str, now_ms: i64) -> Result<bool>;
    /// The grant of a token that exists, is not revoked and has not expired; records use.
    fn verify_token(&self, token: &str, now_ms: i64) -> Result<Option<TokenInfo>>;
    /// Every token of a project, revoked and expired ones included (never secrets).
    fn tokens(&self, project: &ProjectId) -> Result<Vec<TokenInfo>>;

    /// Creates a user with an organization-wide membership in `role`.
    fn create_user(
        &self,
        email: &str,
        password_hash: Option<&str>,
        role: Role,
        now_ms: i64,
    ) -> Result<User>;
    fn user(&self, id: &str) -> Result<Option<User>>;
    fn user_by_email(&self, email: &str) -> Result<Option<User>>;
    fn list_users(&self, org: &str) -> Result<Vec<User>>;
    fn set_password(&self, user: &str, password_hash: &str) -> Result<()>;
    /// Sets (or clears) the TOTP seed; `enabled` once the user confirmed a code.
    fn set_mfa(&self, user: &str, secret: Option<&[u8]>, enabled: bool) -> Result<()>;
    /// Records a used TOTP step if newer than the last; false on replay.
    fn use_mfa_step(&self, user: &str, step: i64) -> Result<bool>;
    /// Replaces the user's recovery codes (hashes).
    fn set_recovery_codes(&self, user: &str, hashes: &[String]) -> Result<()>;
    /// Spends a recovery code by hash: true once.
    fn use_recovery_code(&self, user: &str, hash: &str, now_ms: i64) -> Result<bool>;
    fn memberships(&self, user: &str) -> Result<Vec<Membership>>;
    fn set_membership(&self, user: &str, membership: &Membership) -> Result<()>;
    fn remove_membership(&self, user: &str, project: Option<&ProjectId>) -> Result<bool>;

    #[allow(clippy::too_many_arguments)]
    fn create_session(
        &self,
        user: &str,
        secret_hash: &str,
        csrf_hash: &str,
        mfa_at_ms: Option<i64>,
        ttl_ms: i64,
        now_ms: i64,
    ) -> Result<Session>;
    /// The active session with this secret hash (not revoked, expired or idle past `idle_ms`).
    fn session(&self, secret_hash: &str, idle_ms: i64, now_ms: i64) -> Result<Option<Session>>;
    fn sessions_of(&self, user: &str, now_ms: i64) -> Result<Vec<Session>>;
    fn set_session_mfa(&self, session_id: &str, at_ms: i64) -> Result<()>;
    /// Revokes one of the user's sessions, or all of them; returns how many.
    fn revoke_sessions(&self, user: &str, session_id: Option<&str>, now_ms: i64) -> Result<usize>;

    /// The organization's settings as JSON (MFA policy, budgets, Cedar policies, webhook).
    fn org_settings(&self, org: &str) -> Result<Option<String>>;
    fn set_org_settings(&self, org: &str, json: &str, now_ms: i64) -> Result<()>;
    fn suspend(&self, principal: &str, org: &str, reason: &str, now_ms: i64) -> Result<()>;
    /// Lifts a suspension; false when the principal was not suspended.
    fn restore(&self, principal: &str) -> Result<bool>;
    fn is_suspended(&self, principal: &str) -> Result<bool>;
    /// (principal, reason, since) of the organization's suspended principals.
    fn suspensions(&self, org: &str) -> Result<Vec<(String, String, i64)>>;
    fn add_alert(&self, alert: &Alert) -> Result<i64>;
    /// The newest alerts, newest first.
    fn alerts(&self, org: &str, limit: usize) -> Result<Vec<Alert>>;
    fn create_export(
        &self,
        project: &ProjectId,
        requester: &str,
        spec_json: &str,
        now_ms: i64,
    ) -> Result<ExportRequest>;
    fn export_request(&self, id: &str) -> Result<Option<ExportRequest>>;
    fn export_requests(&self, project: &ProjectId, limit: usize) -> Result<Vec<ExportRequest>>;
    /// Approves or rejects a pending export (`to`); false if not pending or `who` requested it.
    fn decide_export(&self, id: &str, to: &str, who: &str, now_ms: i64) -> Result<bool>;
    /// Moves an export from one status to another (e.g. approved -> downloaded).
    fn set_export_status(&self, id: &str, from: &str, to: &str) -> Result<bool>;

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
