//! Random secrets and how they are stored: API/session tokens, their SHA-256 digests,
//! constant-time comparison and one-time recovery codes.
//!
//! Tokens are high-entropy random strings, so a plain SHA-256 (no salt, no stretching)
//! is what is stored: the digest can be looked up by equality and a leaked table does
//! not reveal usable tokens. Passwords, which are low-entropy, go through
//! [`crate::password`] instead.

use data_encoding::BASE64URL_NOPAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Fewest random bytes a token carries (128 bits); smaller requests are raised to this.
pub const MIN_TOKEN_BYTES: usize = 16;
/// Most random bytes a token carries; larger requests are lowered to this.
pub const MAX_TOKEN_BYTES: usize = 256;

/// Most recovery codes handed out in one call.
pub const MAX_RECOVERY_CODES: usize = 64;

/// Recovery code alphabet: lowercase letters and digits without the look-alikes
/// `0 o 1 l i` (31 symbols, about 4.95 bits each).
const RECOVERY_ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";
/// Groups of characters in a recovery code, joined by `-`.
const RECOVERY_GROUPS: usize = 3;
/// Characters per group: 3 x 4 = 12 characters, about 59.5 bits.
const RECOVERY_GROUP_LEN: usize = 4;

/// A fresh random token: `prefix` followed by `bytes` random bytes in unpadded
/// base64url (`A-Z a-z 0-9 - _`). `bytes` is clamped to
/// [`MIN_TOKEN_BYTES`]..=[`MAX_TOKEN_BYTES`].
pub fn random_token(prefix: &str, bytes: usize) -> String {
    debug_assert!(
        bytes >= MIN_TOKEN_BYTES,
        "token with fewer than 128 random bits"
    );
    let n = bytes.clamp(MIN_TOKEN_BYTES, MAX_TOKEN_BYTES);
    let mut buf = vec![0u8; n];
    rand::rng().fill_bytes(&mut buf);
    let mut out = String::with_capacity(prefix.len() + BASE64URL_NOPAD.encode_len(n));
    out.push_str(prefix);
    out.push_str(&BASE64URL_NOPAD.encode(&buf));
    zeroize::Zeroize::zeroize(&mut buf);
    out
}

/// What is stored for a token: the lowercase hex SHA-256 of its full text (prefix included).
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// `n` fresh recovery codes (at most [`MAX_RECOVERY_CODES`]), each like `k7dx-92mf-qh3a`:
/// 12 characters from a 31-symbol alphabet without look-alikes, about 59.5 bits.
/// Store them with [`hash_recovery_code`].
pub fn recovery_codes(n: usize) -> Vec<String> {
    let n = n.min(MAX_RECOVERY_CODES);
    let mut rng = rand::rng();
    (0..n).map(|_| recovery_code(&mut rng)).collect()
}

fn recovery_code(rng: &mut impl RngCore) -> String {
    let len = RECOVERY_GROUPS * RECOVERY_GROUP_LEN;
    let alphabet_len = RECOVERY_ALPHABET.len();
    // Largest multiple of the alphabet size that fits a byte: rejecting bytes at or
    // above it keeps every symbol equally likely.
    let accept_below = 256 - 256 % alphabet_len;
    let mut chars = Vec::with_capacity(len);
    let mut buf = [0u8; 32];
    while chars.len() < len {
        rng.fill_bytes(&mut buf);
        for &b in &buf {
            if chars.len() == len {
                break;
            }
            let b = usize::from(b);
            if b < accept_below {
                chars.push(RECOVERY_ALPHABET[b % alphabet_len]);
            }
        }
    }
    let mut out = String::with_capacity(len + RECOVERY_GROUPS - 1);
    for (i, group) in chars.chunks(RECOVERY_GROUP_LEN).enumerate() {
        if i > 0 {
            out.push('-');
        }
        out.extend(group.iter().map(|&c| char::from(c)));
    }
    out
}

/// The canonical form of a typed recovery code: lowercase, with spaces and dashes
/// removed, so `K7DX 92MF-QH3A` and `k7dx-92mf-qh3a` are the same code.
pub fn normalize_recovery_code(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// What is stored for a recovery code: [`hash_token`] of its normalized form.
pub fn hash_recovery_code(code: &str) -> String {
    hash_token(&normalize_recovery_code(code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn token_has_prefix_and_expected_length() {
        let t = random_token("mnm_", 32);
        assert!(t.starts_with("mnm_"));
        // 32 bytes -> 43 base64url characters without padding.
        assert_eq!(t.len(), 4 + 43);
        assert!(
            t[4..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(random_token("mnm_", 32), t);
    }

    #[test]
    fn token_bytes_are_clamped() {
        // Release builds raise a too-small request to 16 bytes (22 characters).
        if !cfg!(debug_assertions) {
            assert_eq!(random_token("", 1).len(), 22);
        }
        assert_eq!(
            random_token("", 100_000).len(),
            BASE64URL_NOPAD.encode_len(256)
        );
    }

    #[test]
    fn hash_token_is_hex_sha256() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn recovery_codes_shape() {
        let codes = recovery_codes(10);
        assert_eq!(codes.len(), 10);
        let unique: HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), 10);
        for c in &codes {
            assert_eq!(c.len(), 14, "{c}");
            let parts: Vec<_> = c.split('-').collect();
            assert_eq!(parts.len(), 3);
            assert!(parts.iter().all(|p| p.len() == 4));
            assert!(
                c.bytes()
                    .all(|b| b == b'-' || RECOVERY_ALPHABET.contains(&b))
            );
            assert!(!c.contains(['0', 'o', '1', 'l', 'i']));
        }
        assert_eq!(recovery_codes(1000).len(), MAX_RECOVERY_CODES);
    }

    #[test]
    fn recovery_alphabet_is_used_evenly_enough() {
        let mut seen = HashSet::new();
        for c in recovery_codes(64) {
            seen.extend(c.bytes().filter(|b| *b != b'-'));
        }
        // 768 draws from 31 symbols: all of them show up.
        assert_eq!(seen.len(), RECOVERY_ALPHABET.len());
    }

    #[test]
    fn normalize_accepts_loose_typing() {
        assert_eq!(normalize_recovery_code(" K7DX 92mf-QH3A "), "k7dx92mfqh3a");
        assert_eq!(
            hash_recovery_code("k7dx-92mf-qh3a"),
            hash_recovery_code("K7DX92MF QH3A")
        );
    }
}
