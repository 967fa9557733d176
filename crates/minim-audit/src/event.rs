//! The in-memory types callers hand in and get back: [`AuditEvent`], [`AuditRecord`],
//! [`Decision`], and the limits an event must respect before it is written.

use serde::{Deserialize, Serialize};

use crate::error::AuditError;

/// Longest accepted string field of an [`AuditEvent`], in bytes. Callers put ids, short
/// codes and hex hashes here, never free text, so this is generous.
pub const MAX_FIELD_BYTES: usize = 1024;

/// Most events accepted by one [`crate::AuditLog::append`] call.
pub const MAX_EVENTS_PER_APPEND: usize = 10_000;

/// What the authorization step decided for the audited request.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Deny,
    Error,
}

impl Decision {
    /// The byte that stands for the decision in the canonical encoding.
    pub(crate) fn code(self) -> u8 {
        match self {
            Decision::Allow => 0,
            Decision::Deny => 1,
            Decision::Error => 2,
        }
    }
}

/// One audited action, as the server or CLI describes it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AuditEvent {
    pub time_ms: i64,
    /// `usr_...`, `tok_...`, `cli`, `anonymous`.
    pub principal: String,
    /// `user` | `token` | `ingest_key` | `cli` | `anonymous`.
    pub principal_kind: String,
    /// e.g. `query_aggregate`, `login`, `budget_trip`, `approve_export`.
    pub action: String,
    /// e.g. `project:prj_abc`, `org:default`, `user:usr_x`.
    pub resource: String,
    pub decision: Decision,
    /// HTTP status, or 0 for CLI success / 1 for CLI failure.
    pub status: u16,
    pub rows: u64,
    pub bytes: u64,
    pub distinct_users: u64,
    /// Hex hash of the normalized query ([`crate::hash_fingerprint`]), never its text.
    pub fingerprint: Option<String>,
    /// Keyed hash of the client IP, computed by the caller.
    pub client_ip_hash: Option<String>,
    /// Short code like `budget_exceeded`; never data values.
    pub reason: Option<String>,
    pub request_id: Option<String>,
}

impl AuditEvent {
    /// Checks the limits; called before anything is queued for writing.
    pub(crate) fn validate(&self) -> Result<(), AuditError> {
        let fields: [(&str, Option<&str>); 8] = [
            ("principal", Some(&self.principal)),
            ("principal_kind", Some(&self.principal_kind)),
            ("action", Some(&self.action)),
            ("resource", Some(&self.resource)),
            ("fingerprint", self.fingerprint.as_deref()),
            ("client_ip_hash", self.client_ip_hash.as_deref()),
            ("reason", self.reason.as_deref()),
            ("request_id", self.request_id.as_deref()),
        ];
        for (name, value) in fields {
            if let Some(v) = value
                && v.len() > MAX_FIELD_BYTES
            {
                return Err(AuditError::InvalidEvent(format!(
                    "{name} is {} bytes, the limit is {MAX_FIELD_BYTES}",
                    v.len()
                )));
            }
        }
        Ok(())
    }
}

/// A record as stored: the event plus its place in the chain. Serializes flat (the
/// event's fields beside `seq`, `prev_hash`, `hash`), which is the shape the API shows.
/// The on-disk line is a separate, versioned type (`line::RecordLineV1`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AuditRecord {
    pub seq: u64,
    pub prev_hash: String,
    pub hash: String,
    #[serde(flatten)]
    pub event: AuditEvent,
}
