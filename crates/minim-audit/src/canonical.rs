//! The canonical encoding of a record and the chain hash over it.
//!
//! The hash never depends on how JSON happens to be written: it is computed over this
//! byte string (all integers big-endian):
//!
//! ```text
//! message = "minim.audit.record.v1" 0x00
//!           prev_hash        32 bytes (the previous record's hash, raw; genesis = 32 zero bytes)
//!           seq              u64
//!           time_ms          i64
//!           str(principal) str(principal_kind) str(action) str(resource)
//!           decision         u8   (0 allow, 1 deny, 2 error)
//!           status           u16
//!           rows             u64
//!           bytes            u64
//!           distinct_users   u64
//!           opt(fingerprint) opt(client_ip_hash) opt(reason) opt(request_id)
//! str(s)    = len(s) as u32 || UTF-8 bytes of s
//! opt(None) = 0x00;  opt(Some(s)) = 0x01 || str(s)
//! hash      = lowercase hex of SHA-256(message)
//! ```
//!
//! Every field is either fixed-width or length-prefixed, so two different records can
//! never encode to the same bytes. A future format gets a new domain string.

use sha2::{Digest, Sha256};

use crate::event::AuditEvent;

/// Domain separation for record hashes.
const RECORD_DOMAIN: &[u8] = b"minim.audit.record.v1\0";

/// The `prev_hash` of the first record: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A SHA-256 digest in raw form.
pub(crate) type Digest32 = [u8; 32];

/// The chain hash of `(seq, event)` following `prev`.
pub(crate) fn record_hash(prev: &Digest32, seq: u64, event: &AuditEvent) -> Digest32 {
    let mut h = Sha256::new();
    h.update(RECORD_DOMAIN);
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(event.time_ms.to_be_bytes());
    put_str(&mut h, &event.principal);
    put_str(&mut h, &event.principal_kind);
    put_str(&mut h, &event.action);
    put_str(&mut h, &event.resource);
    h.update([event.decision.code()]);
    h.update(event.status.to_be_bytes());
    h.update(event.rows.to_be_bytes());
    h.update(event.bytes.to_be_bytes());
    h.update(event.distinct_users.to_be_bytes());
    put_opt(&mut h, event.fingerprint.as_deref());
    put_opt(&mut h, event.client_ip_hash.as_deref());
    put_opt(&mut h, event.reason.as_deref());
    put_opt(&mut h, event.request_id.as_deref());
    h.finalize().into()
}

fn put_str(h: &mut Sha256, s: &str) {
    // Field lengths are capped far below u32::MAX (`MAX_FIELD_BYTES`); saturating keeps
    // the encoding total even for an event that skipped validation.
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    h.update(len.to_be_bytes());
    h.update(s.as_bytes());
}

fn put_opt(h: &mut Sha256, s: Option<&str>) {
    match s {
        None => h.update([0u8]),
        Some(s) => {
            h.update([1u8]);
            put_str(h, s);
        }
    }
}

/// Parses a 64-character lowercase hex digest. Uppercase is rejected so that every
/// digest has exactly one spelling on disk.
pub(crate) fn parse_digest(s: &str) -> Option<Digest32> {
    if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Decision;

    fn event() -> AuditEvent {
        AuditEvent {
            time_ms: 1_700_000_000_000,
            principal: "usr_a".into(),
            principal_kind: "user".into(),
            action: "login".into(),
            resource: "org:default".into(),
            decision: Decision::Allow,
            status: 200,
            rows: 0,
            bytes: 0,
            distinct_users: 0,
            fingerprint: None,
            client_ip_hash: None,
            reason: None,
            request_id: None,
        }
    }

    #[test]
    fn length_prefixes_keep_adjacent_fields_apart() {
        let mut a = event();
        a.principal = "ab".into();
        a.principal_kind = "c".into();
        let mut b = event();
        b.principal = "a".into();
        b.principal_kind = "bc".into();
        let g = [0u8; 32];
        assert_ne!(record_hash(&g, 1, &a), record_hash(&g, 1, &b));
    }

    #[test]
    fn none_differs_from_empty_string() {
        let a = event();
        let mut b = event();
        b.reason = Some(String::new());
        let g = [0u8; 32];
        assert_ne!(record_hash(&g, 1, &a), record_hash(&g, 1, &b));
    }

    #[test]
    fn every_field_is_covered() {
        let g = [0u8; 32];
        let base = record_hash(&g, 1, &event());
        let mutations: [fn(&mut AuditEvent); 14] = [
            |e| e.time_ms += 1,
            |e| e.principal.push('x'),
            |e| e.principal_kind.push('x'),
            |e| e.action.push('x'),
            |e| e.resource.push('x'),
            |e| e.decision = Decision::Deny,
            |e| e.status += 1,
            |e| e.rows += 1,
            |e| e.bytes += 1,
            |e| e.distinct_users += 1,
            |e| e.fingerprint = Some("x".into()),
            |e| e.client_ip_hash = Some("x".into()),
            |e| e.reason = Some("x".into()),
            |e| e.request_id = Some("x".into()),
        ];
        for m in mutations {
            let mut e = event();
            m(&mut e);
            assert_ne!(record_hash(&g, 1, &e), base);
        }
        assert_ne!(record_hash(&g, 2, &event()), base);
        assert_ne!(record_hash(&[1u8; 32], 1, &event()), base);
    }

    #[test]
    fn digests_have_one_spelling() {
        assert_eq!(parse_digest(GENESIS_HASH), Some([0u8; 32]));
        assert!(parse_digest(&"A".repeat(64)).is_none());
        assert!(parse_digest(&"a".repeat(63)).is_none());
        assert!(parse_digest(&"g".repeat(64)).is_none());
    }
}
