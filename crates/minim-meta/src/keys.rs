//! Secret generation and hashing: recognizable prefixes, a checksum, SHA-256 at rest.
//!
//! Format: `{prefix}{30 random base62}{6 base62 CRC32C of the rest}`. The prefix lets
//! secret scanners find leaked keys; the checksum lets us reject typos and random
//! guesses without a database look-up.

use rand::Rng;
use sha2::{Digest, Sha256};

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_LEN: usize = 30;
const CHECK_LEN: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Public project ingest key, used by SDKs.
    Ingest,
    /// API token for reads and administration.
    ApiToken,
}

impl KeyKind {
    pub fn prefix(self) -> &'static str {
        match self {
            KeyKind::Ingest => "mik_",
            KeyKind::ApiToken => "mat_",
        }
    }
}

fn base62(mut n: u64, len: usize) -> String {
    let mut out = vec![b'0'; len];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out).unwrap_or_default()
}

/// A new random secret of the given kind (about 178 bits of entropy).
pub fn generate_secret(kind: KeyKind) -> String {
    let mut rng = rand::rng();
    let mut s = String::with_capacity(4 + RANDOM_LEN + CHECK_LEN);
    s.push_str(kind.prefix());
    for _ in 0..RANDOM_LEN {
        s.push(ALPHABET[rng.random_range(0..62)] as char);
    }
    let check = base62(u64::from(crc32c::crc32c(s.as_bytes())), CHECK_LEN);
    s.push_str(&check);
    s
}

/// True when `s` has the kind's prefix, the right length and a matching checksum.
pub fn looks_valid(kind: KeyKind, s: &str) -> bool {
    let Some(rest) = s.strip_prefix(kind.prefix()) else {
        return false;
    };
    if rest.len() != RANDOM_LEN + CHECK_LEN || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (body, check) = s.split_at(s.len() - CHECK_LEN);
    base62(u64::from(crc32c::crc32c(body.as_bytes())), CHECK_LEN) == check
}

/// The at-rest form of a secret.
pub fn hash_secret(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A random identifier `{prefix}{16 chars of [a-z0-9]}` (safe as a path component).
pub fn generate_id(prefix: &str) -> String {
    const LOWER: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    let mut s = String::from(prefix);
    for _ in 0..16 {
        s.push(LOWER[rng.random_range(0..LOWER.len())] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_prefix_and_checksum() {
        for kind in [KeyKind::Ingest, KeyKind::ApiToken] {
            let s = generate_secret(kind);
            assert!(s.starts_with(kind.prefix()));
            assert!(looks_valid(kind, &s));
            let mut typo = s.clone().into_bytes();
            typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
            assert!(!looks_valid(kind, std::str::from_utf8(&typo).unwrap()));
        }
        assert!(!looks_valid(
            KeyKind::Ingest,
            &generate_secret(KeyKind::ApiToken)
        ));
        assert!(!looks_valid(KeyKind::Ingest, "mik_short"));
        assert_ne!(
            generate_secret(KeyKind::Ingest),
            generate_secret(KeyKind::Ingest)
        );
    }

    #[test]
    fn hash_is_stable_and_not_the_secret() {
        let s = generate_secret(KeyKind::ApiToken);
        assert_eq!(hash_secret(&s), hash_secret(&s));
        assert!(!hash_secret(&s).contains(&s[4..]));
    }
}
