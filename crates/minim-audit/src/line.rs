//! The on-disk record line, version 1: one JSON object per line in `audit.log` (and in a
//! file mirror), kept apart from the in-memory [`AuditRecord`].
//!
//! ```text
//! {"v":1,"seq":1,"time_ms":..,"principal":"..","principal_kind":"..","action":"..",
//!  "resource":"..","decision":"allow","status":200,"rows":0,"bytes":0,"distinct_users":0,
//!  "fingerprint":null,"client_ip_hash":null,"reason":null,"request_id":null,
//!  "prev_hash":"<64 hex>","hash":"<64 hex>"}\n
//! ```
//!
//! All keys are always present, in this order. Reading is strict: unknown or duplicate
//! keys are errors, and a line must be byte-for-byte what this module would write for
//! the record it holds, so no edit (not even whitespace) goes unnoticed.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::canonical::{Digest32, parse_digest, record_hash};
use crate::error::AuditError;
use crate::event::{AuditEvent, AuditRecord, Decision};

/// Longest line any reader accepts, in bytes (without the newline). A record whose
/// string fields are all at `MAX_FIELD_BYTES` and fully `\u00XX`-escaped fits.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// The format version written in every line's `v`.
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordLineV1<'a> {
    v: u32,
    seq: u64,
    time_ms: i64,
    #[serde(borrow)]
    principal: Cow<'a, str>,
    #[serde(borrow)]
    principal_kind: Cow<'a, str>,
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(borrow)]
    resource: Cow<'a, str>,
    decision: Decision,
    status: u16,
    rows: u64,
    bytes: u64,
    distinct_users: u64,
    #[serde(borrow)]
    fingerprint: Option<Cow<'a, str>>,
    #[serde(borrow)]
    client_ip_hash: Option<Cow<'a, str>>,
    #[serde(borrow)]
    reason: Option<Cow<'a, str>>,
    #[serde(borrow)]
    request_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    prev_hash: Cow<'a, str>,
    #[serde(borrow)]
    hash: Cow<'a, str>,
}

/// A record line that parsed and is in canonical form. Its hash is not yet checked
/// against its content or its predecessor; see [`ParsedLine::computed_hash`].
pub(crate) struct ParsedLine {
    pub record: AuditRecord,
    pub prev: Digest32,
    pub hash: Digest32,
}

impl ParsedLine {
    /// The hash the record's content and `prev_hash` call for.
    pub fn computed_hash(&self) -> Digest32 {
        record_hash(&self.prev, self.record.seq, &self.record.event)
    }
}

/// Appends the line for `record` (with its trailing newline) to `out`. Serializing
/// strings and integers into a `Vec` does not fail in practice; on error `out` is left
/// as it was.
pub(crate) fn write_record_line(
    seq: u64,
    prev_hash: &str,
    hash: &str,
    e: &AuditEvent,
    out: &mut Vec<u8>,
) -> Result<(), serde_json::Error> {
    let line = RecordLineV1 {
        v: VERSION,
        seq,
        time_ms: e.time_ms,
        principal: Cow::Borrowed(&e.principal),
        principal_kind: Cow::Borrowed(&e.principal_kind),
        action: Cow::Borrowed(&e.action),
        resource: Cow::Borrowed(&e.resource),
        decision: e.decision,
        status: e.status,
        rows: e.rows,
        bytes: e.bytes,
        distinct_users: e.distinct_users,
        fingerprint: e.fingerprint.as_deref().map(Cow::Borrowed),
        client_ip_hash: e.client_ip_hash.as_deref().map(Cow::Borrowed),
        reason: e.reason.as_deref().map(Cow::Borrowed),
        request_id: e.request_id.as_deref().map(Cow::Borrowed),
        prev_hash: Cow::Borrowed(prev_hash),
        hash: Cow::Borrowed(hash),
    };
    let start = out.len();
    if let Err(e) = serde_json::to_writer(&mut *out, &line) {
        out.truncate(start);
        return Err(e);
    }
    out.push(b'\n');
    Ok(())
}

/// Parses one line (without its newline), strictly. The error is a short reason fit
/// for a verification report; it never quotes the line.
pub(crate) fn parse_record_line(bytes: &[u8]) -> Result<ParsedLine, String> {
    if bytes.len() > MAX_LINE_BYTES {
        return Err(format!(
            "line is {} bytes, longer than any record",
            bytes.len()
        ));
    }
    let line: RecordLineV1<'_> =
        serde_json::from_slice(bytes).map_err(|e| format!("not a record: {}", short(&e)))?;
    if line.v != VERSION {
        return Err(format!("unknown record format version {}", line.v));
    }
    let prev = parse_digest(&line.prev_hash).ok_or("prev_hash is not a 64-digit lowercase hex")?;
    let hash = parse_digest(&line.hash).ok_or("hash is not a 64-digit lowercase hex")?;
    let record = AuditRecord {
        seq: line.seq,
        prev_hash: line.prev_hash.into_owned(),
        hash: line.hash.into_owned(),
        event: AuditEvent {
            time_ms: line.time_ms,
            principal: line.principal.into_owned(),
            principal_kind: line.principal_kind.into_owned(),
            action: line.action.into_owned(),
            resource: line.resource.into_owned(),
            decision: line.decision,
            status: line.status,
            rows: line.rows,
            bytes: line.bytes,
            distinct_users: line.distinct_users,
            fingerprint: line.fingerprint.map(Cow::into_owned),
            client_ip_hash: line.client_ip_hash.map(Cow::into_owned),
            reason: line.reason.map(Cow::into_owned),
            request_id: line.request_id.map(Cow::into_owned),
        },
    };
    let mut again = Vec::with_capacity(bytes.len() + 1);
    let r = &record;
    write_record_line(r.seq, &r.prev_hash, &r.hash, &r.event, &mut again)
        .map_err(|e| format!("cannot re-encode: {}", short(&e)))?;
    if again.strip_suffix(b"\n") != Some(bytes) {
        return Err("line is not in canonical form (edited by hand?)".into());
    }
    Ok(ParsedLine { record, prev, hash })
}

impl AuditRecord {
    /// This record's line as `audit.log` holds it (format v1), without the newline.
    pub fn to_line(&self) -> Result<String, AuditError> {
        let mut out = Vec::new();
        write_record_line(self.seq, &self.prev_hash, &self.hash, &self.event, &mut out)
            .map_err(|e| AuditError::InvalidLine(format!("cannot encode: {}", short(&e))))?;
        out.pop();
        String::from_utf8(out).map_err(|_| AuditError::InvalidLine("not UTF-8".into()))
    }

    /// Parses one `audit.log` line strictly (see the module docs). Does not check the
    /// hash; compare [`AuditRecord::expected_hash`] with `hash` for that.
    pub fn from_line(line: &str) -> Result<AuditRecord, AuditError> {
        parse_record_line(line.as_bytes())
            .map(|p| p.record)
            .map_err(AuditError::InvalidLine)
    }

    /// The hash that `prev_hash`, `seq` and the event call for, or `None` if
    /// `prev_hash` is not a 64-digit lowercase hex digest.
    pub fn expected_hash(&self) -> Option<String> {
        let prev = parse_digest(&self.prev_hash)?;
        Some(hex::encode(record_hash(&prev, self.seq, &self.event)))
    }
}

/// A serde_json error without the input echoed back (it never is, but the category and
/// column are all a report needs).
fn short(e: &serde_json::Error) -> String {
    format!("{:?} error at column {}", e.classify(), e.column())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::GENESIS_HASH;

    fn record() -> AuditRecord {
        let event = AuditEvent {
            time_ms: 1_700_000_000_123,
            principal: "usr_a\"\n\u{7}é".into(),
            principal_kind: "user".into(),
            action: "query_aggregate".into(),
            resource: "project:prj_abc".into(),
            decision: Decision::Deny,
            status: 403,
            rows: 7,
            bytes: 99,
            distinct_users: 3,
            fingerprint: Some("ab".into()),
            client_ip_hash: None,
            reason: Some("budget_exceeded".into()),
            request_id: Some("req_1".into()),
        };
        let hash = hex::encode(record_hash(&[0u8; 32], 1, &event));
        AuditRecord {
            seq: 1,
            prev_hash: GENESIS_HASH.into(),
            hash,
            event,
        }
    }

    #[test]
    fn round_trips_byte_for_byte() {
        let r = record();
        let mut out = Vec::new();
        write_record_line(r.seq, &r.prev_hash, &r.hash, &r.event, &mut out).expect("writes");
        assert_eq!(out.last(), Some(&b'\n'));
        assert_eq!(memchr::memchr(b'\n', &out), Some(out.len() - 1));
        let p = parse_record_line(&out[..out.len() - 1]).expect("parses");
        assert_eq!(p.record, r);
        assert_eq!(p.computed_hash(), p.hash);
    }

    #[test]
    fn rejects_whitespace_edits_unknown_and_duplicate_keys() {
        let mut out = Vec::new();
        let r = record();
        write_record_line(r.seq, &r.prev_hash, &r.hash, &r.event, &mut out).expect("writes");
        let line = String::from_utf8(out[..out.len() - 1].to_vec()).expect("utf8");
        let spaced = line.replacen("\"seq\":1", "\"seq\": 1", 1);
        assert!(parse_record_line(spaced.as_bytes()).is_err());
        let extra = line.replacen("{", "{\"note\":\"x\",", 1);
        assert!(parse_record_line(extra.as_bytes()).is_err());
        let dup = line.replacen("{", "{\"seq\":1,", 1);
        assert!(parse_record_line(dup.as_bytes()).is_err());
        let upper = line.replace(GENESIS_HASH, &"0".repeat(63).to_uppercase());
        assert!(parse_record_line(upper.as_bytes()).is_err());
    }
}
