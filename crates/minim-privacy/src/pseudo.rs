//! Keyed hashing: pseudonymous `distinct_id`s, hashed PII and cookieless visitor ids.
//! HMAC-SHA256 under a per-project secret (or a daily salt), truncated to 128 bits and
//! printed as 32 lowercase hex characters. Domain-separated by purpose, so a pseudonym
//! never equals the hash of the same text found as PII in a property.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

type HmacSha256 = Hmac<Sha256>;

/// Bytes of a project secret.
pub const SECRET_BYTES: usize = 32;
/// Bytes kept of each HMAC output (128 bits).
pub const HASH_BYTES: usize = 16;

/// A 256-bit key; wiped from memory when dropped. Never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Secret([u8; SECRET_BYTES]);

impl Secret {
    pub fn generate() -> Self {
        let mut b = [0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut b);
        Self(b)
    }

    /// From stored bytes; `None` unless exactly [`SECRET_BYTES`] long.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let b: [u8; SECRET_BYTES] = bytes.try_into().ok()?;
        Some(Self(b))
    }

    pub fn as_bytes(&self) -> &[u8; SECRET_BYTES] {
        &self.0
    }

    /// HMAC-SHA256(secret, purpose || 0 || parts joined by 0), truncated, in hex.
    pub fn keyed_hash(&self, purpose: Purpose, parts: &[&[u8]]) -> String {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(purpose.label());
        for p in parts {
            mac.update(&[0]);
            mac.update(p);
        }
        let out = mac.finalize().into_bytes();
        hex::encode(&out[..HASH_BYTES])
    }

    /// The stored form of a `distinct_id`.
    pub fn pseudonym(&self, distinct_id: &str) -> String {
        self.keyed_hash(Purpose::DistinctId, &[distinct_id.as_bytes()])
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Domain separation labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    DistinctId,
    Pii,
    InsertId,
    Visitor,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::DistinctId => b"minim.distinct_id.v1",
            Purpose::Pii => b"minim.pii.v1",
            Purpose::InsertId => b"minim.insert_id.v1",
            Purpose::Visitor => b"minim.visitor.v1",
        }
    }
}

/// True if `s` has the shape of a stored pseudonym (32 lowercase hex).
pub fn looks_like_pseudonym(s: &str) -> bool {
    s.len() == 2 * HASH_BYTES && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_keyed_and_separated() {
        let a = Secret::from_bytes(&[7; 32]).unwrap();
        let b = Secret::from_bytes(&[8; 32]).unwrap();
        let p = a.pseudonym("user-42");
        assert_eq!(p, a.pseudonym("user-42"));
        assert_ne!(p, b.pseudonym("user-42"));
        assert_ne!(p, a.pseudonym("user-43"));
        assert!(looks_like_pseudonym(&p));
        assert_ne!(p, a.keyed_hash(Purpose::Pii, &[b"user-42"]));
        // Parts are delimited: ("ab","c") and ("a","bc") differ.
        assert_ne!(
            a.keyed_hash(Purpose::Visitor, &[b"ab", b"c"]),
            a.keyed_hash(Purpose::Visitor, &[b"a", b"bc"])
        );
        assert_eq!(format!("{a:?}"), "Secret(..)");
        assert!(Secret::from_bytes(&[1; 31]).is_none());
    }
}
