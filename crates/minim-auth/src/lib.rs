//! Who may do what. The principal a request acts as, the actions it may ask for, the
//! one [`policy::Authorizer`] (Cedar, default deny) that decides, and what guards the
//! door: argon2id passwords, TOTP second factors, recovery codes, login rate limits and
//! per-principal read budgets. No HTTP and no storage: the server resolves credentials
//! through `minim-meta` and asks this crate for decisions.

pub mod budget;
pub mod limiter;
pub mod password;
pub mod policy;
pub mod secrets;
pub mod totp;

use std::collections::BTreeSet;
use std::net::IpAddr;

pub use minim_meta::Role;

/// Everything a principal can be allowed to do. The names (`as_str`) are the Cedar
/// action ids and the names used in token permission lists and the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Send events (ingest keys only).
    Ingest,
    /// Trends, funnels, retention, paths: counts, never rows.
    QueryAggregate,
    /// The live events view: rows of events.
    QueryRawEvents,
    /// The scoped SQL endpoint.
    QuerySql,
    /// See values of `personal` properties and original ids. Never part of a role.
    ReadPersonal,
    /// Export raw events (small ones at once, larger ones after approval).
    Export,
    /// Approve another principal's large export (two-person rule).
    ApproveExport,
    /// Read the project's configuration (tracking plan, privacy counters, deletion log).
    ReadConfig,
    /// Change the project's configuration, run retention, erase a data subject.
    ManageProject,
    /// Add, change or remove members; restore suspended principals.
    ManageMembers,
    /// Create, list and revoke API tokens.
    ManageTokens,
    /// Read the audit log and alerts.
    ReadAudit,
}

impl Action {
    pub const ALL: [Action; 12] = [
        Action::Ingest,
        Action::QueryAggregate,
        Action::QueryRawEvents,
        Action::QuerySql,
        Action::ReadPersonal,
        Action::Export,
        Action::ApproveExport,
        Action::ReadConfig,
        Action::ManageProject,
        Action::ManageMembers,
        Action::ManageTokens,
        Action::ReadAudit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Ingest => "ingest",
            Action::QueryAggregate => "query_aggregate",
            Action::QueryRawEvents => "query_raw_events",
            Action::QuerySql => "query_sql",
            Action::ReadPersonal => "read_personal",
            Action::Export => "export",
            Action::ApproveExport => "approve_export",
            Action::ReadConfig => "read_config",
            Action::ManageProject => "manage_project",
            Action::ManageMembers => "manage_members",
            Action::ManageTokens => "manage_tokens",
            Action::ReadAudit => "read_audit",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// Actions that need a fresh second factor when done from a session (step-up).
    pub fn needs_step_up(self) -> bool {
        matches!(
            self,
            Action::Export
                | Action::ApproveExport
                | Action::ManageMembers
                | Action::ManageTokens
                | Action::ReadPersonal
        )
    }
}

/// How the principal authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// A person, through a login session.
    User,
    /// An API token (integrations, scripts, AI agents).
    Token,
    /// A project's public ingest key.
    IngestKey,
    /// The local operator running an admin CLI command against the data directory.
    Cli,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Token => "token",
            PrincipalKind::IngestKey => "ingest_key",
            PrincipalKind::Cli => "cli",
        }
    }
}

/// Who is asking, as resolved by the server from a credential. `grants` are the
/// principal's rights on the project of the request (its membership or token);
/// the policies decide what they allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Stable id: `usr_...`, `tok_...`, `prj_...` (ingest key) or `cli`.
    pub id: String,
    pub kind: PrincipalKind,
    /// Organization the principal belongs to.
    pub org: String,
    pub grants: Grants,
    /// Suspended principals (budget tripped repeatedly) are denied everything.
    pub suspended: bool,
}

/// A principal's rights on one project (or on its organization).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grants {
    /// The built-in role, if any (linked to that role's policy template).
    pub role: Option<Role>,
    /// An explicit permission list. For a token with a list instead of a role, this is
    /// all it may do; for anyone, explicit grants such as `read_personal` add to the role.
    pub permissions: BTreeSet<Action>,
    /// The project these grants apply to; `None` = every project of `org`.
    pub project: Option<String>,
}

/// What an action is done to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// A project, with its organization.
    Project { id: String, org: String },
    /// An organization as a whole (members, the audit log).
    Org { id: String },
}

impl Resource {
    pub fn org(&self) -> &str {
        match self {
            Resource::Project { org, .. } => org,
            Resource::Org { id } => id,
        }
    }
}

/// Facts about the request that policies may use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Context {
    /// The principal proved a second factor recently (login with MFA or step-up).
    pub mfa_fresh: bool,
    /// The principal has a second factor enrolled.
    pub mfa_enrolled: bool,
    /// The client address, when known.
    pub ip: Option<IpAddr>,
}
