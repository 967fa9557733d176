//! The AEAD envelope every Minim ciphertext (outside Parquet) uses.
//!
//! ```text
//! envelope := magic 0x4D ('M') | version u8 (1) | alg u8 (1 = XChaCha20-Poly1305) | key_id u32 LE | nonce[24] | ciphertext | tag[16]
//! ```
//! The authenticated associated data is the 7 header bytes before the nonce followed by
//! the caller's associated data (project, file, purpose), so neither the key id nor the
//! binding can be changed without the tag failing. Nonces are random: 192 bits make
//! collisions negligible for any number of messages under one key.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use rand::TryRngCore;

use crate::{CryptoError, Key};

pub const MAGIC: u8 = b'M';
pub const VERSION: u8 = 1;
pub const ALG_XCHACHA20_POLY1305: u8 = 1;
const PREFIX_LEN: usize = 7;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Bytes an envelope adds to its plaintext.
pub const OVERHEAD: usize = PREFIX_LEN + NONCE_LEN + TAG_LEN;

fn prefix(key_id: u32) -> [u8; PREFIX_LEN] {
    let id = key_id.to_le_bytes();
    [
        MAGIC,
        VERSION,
        ALG_XCHACHA20_POLY1305,
        id[0],
        id[1],
        id[2],
        id[3],
    ]
}

fn aad(prefix: &[u8], ad: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(prefix.len() + ad.len());
    v.extend_from_slice(prefix);
    v.extend_from_slice(ad);
    v
}

/// Encrypts `plaintext` under `key` (whose id in its keyset is `key_id`), bound to `ad`.
pub fn seal(key: &Key, key_id: u32, ad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng
        .try_fill_bytes(&mut nonce)
        .map_err(|e| CryptoError::Mismatch(format!("no randomness from the OS: {e}")))?;
    let p = prefix(key_id);
    let cipher = XChaCha20Poly1305::new(key.expose().into());
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &aad(&p, ad),
            },
        )
        .map_err(|_| CryptoError::Mismatch("encryption failed".into()))?;
    let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
    out.extend_from_slice(&p);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// The key id an envelope names, after checking its framing. `what` names the
/// ciphertext (a file, a record) for the error.
pub fn key_id(envelope: &[u8], what: &str) -> Result<u32, CryptoError> {
    if envelope.len() < OVERHEAD {
        return Err(corrupt(what, "shorter than an envelope"));
    }
    if envelope[0] != MAGIC || envelope[1] != VERSION {
        return Err(corrupt(what, "not a Minim envelope (bad magic or version)"));
    }
    if envelope[2] != ALG_XCHACHA20_POLY1305 {
        return Err(corrupt(what, "unknown algorithm"));
    }
    Ok(u32::from_le_bytes([
        envelope[3],
        envelope[4],
        envelope[5],
        envelope[6],
    ]))
}

/// Decrypts an envelope made by [`seal`] with the same key and associated data. Any
/// change to any byte, or a different `ad`, is [`CryptoError::Corrupt`].
pub fn open(key: &Key, ad: &[u8], envelope: &[u8], what: &str) -> Result<Vec<u8>, CryptoError> {
    key_id(envelope, what)?;
    let (p, rest) = envelope.split_at(PREFIX_LEN);
    let (nonce, ct) = rest.split_at(NONCE_LEN);
    let cipher = XChaCha20Poly1305::new(key.expose().into());
    cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ct,
                aad: &aad(p, ad),
            },
        )
        .map_err(|_| corrupt(what, "authentication failed"))
}

fn corrupt(what: &str, reason: &str) -> CryptoError {
    CryptoError::Corrupt {
        what: what.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(b: u8) -> Key {
        Key::from_bytes(&[b; 32]).expect("key")
    }

    #[test]
    fn round_trip_and_binding() {
        let k = key(1);
        let env = seal(&k, 42, b"project=a|wal", b"hello").expect("seal");
        assert_eq!(env.len(), OVERHEAD + 5);
        assert_eq!(key_id(&env, "t").expect("id"), 42);
        assert_eq!(
            open(&k, b"project=a|wal", &env, "t").expect("open"),
            b"hello"
        );
        assert!(matches!(
            open(&k, b"project=b|wal", &env, "t"),
            Err(CryptoError::Corrupt { .. })
        ));
        assert!(open(&key(2), b"project=a|wal", &env, "t").is_err());
    }

    #[test]
    fn changing_the_key_id_breaks_the_tag() {
        let k = key(1);
        let mut env = seal(&k, 42, b"", b"x").expect("seal");
        env[3] ^= 1;
        assert!(open(&k, b"", &env, "t").is_err());
    }

    #[test]
    fn truncated_or_foreign_input_is_corrupt_not_a_panic() {
        let k = key(1);
        for junk in [&b""[..], b"M", b"hello world", &[0u8; 64]] {
            assert!(matches!(
                open(&k, b"", junk, "t"),
                Err(CryptoError::Corrupt { .. })
            ));
        }
    }

    proptest! {
        #[test]
        fn any_flipped_bit_is_detected(pt in proptest::collection::vec(any::<u8>(), 0..200),
                                       pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let k = key(9);
            let mut env = seal(&k, 7, b"ad", &pt).expect("seal");
            prop_assert_eq!(open(&k, b"ad", &env, "t").expect("open"), pt);
            let i = pos.index(env.len());
            env[i] ^= 1 << bit;
            prop_assert!(open(&k, b"ad", &env, "t").is_err());
        }
    }
}
