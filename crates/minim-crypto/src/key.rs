//! A 256-bit secret key: random generation, HKDF-SHA256 derivation of purpose-bound
//! subkeys, hex parsing. Zeroized on drop; `Debug` prints nothing secret.

use hkdf::Hkdf;
use rand::TryRngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::CryptoError;

pub const KEY_LEN: usize = 32;

#[derive(Clone)]
pub struct Key(Zeroizing<[u8; KEY_LEN]>);

impl Key {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        rand::rngs::OsRng
            .try_fill_bytes(&mut *k)
            .map_err(|e| CryptoError::Mismatch(format!("no randomness from the OS: {e}")))?;
        Ok(Self(k))
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; KEY_LEN] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(arr)))
    }

    /// Parses 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Option<Self> {
        let t = text.trim();
        if t.len() != 2 * KEY_LEN {
            return None;
        }
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        hex::decode_to_slice(t, &mut *k).ok()?;
        Some(Self(k))
    }

    /// The key as 64 lowercase hex digits, in a buffer zeroized on drop.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(*self.0))
    }

    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// A subkey for one purpose: HKDF-SHA256 with `info` naming the purpose, so that one
    /// key never serves two algorithms or two kinds of file.
    pub fn derive(&self, info: &[u8]) -> Key {
        let hk = Hkdf::<Sha256>::new(Some(b"minim-kdf-v1"), &*self.0);
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit: expand cannot fail.
        hk.expand(info, &mut *out)
            .expect("HKDF output length is valid");
        Key(out)
    }

    /// A public fingerprint (not secret): 4 bytes of a derived value, used as the master
    /// key's id so a wrong master key is reported as such.
    pub fn fingerprint(&self) -> u32 {
        let d = self.derive(b"fingerprint");
        u32::from_le_bytes([d.0[0], d.0[1], d.0[2], d.0[3]]).max(1)
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_rejects_bad_input() {
        let k = Key::generate().expect("key");
        let back = Key::from_hex(&k.to_hex()).expect("parse");
        assert_eq!(k.expose(), back.expose());
        assert!(Key::from_hex("abc").is_none());
        assert!(Key::from_hex(&"zz".repeat(32)).is_none());
        assert_eq!(format!("{k:?}"), "Key(..)");
    }

    #[test]
    fn derivation_separates_purposes() {
        let k = Key::from_bytes(&[7u8; 32]).expect("key");
        assert_ne!(k.derive(b"a").expose(), k.derive(b"b").expose());
        assert_eq!(k.derive(b"a").expose(), k.derive(b"a").expose());
        assert_ne!(k.derive(b"a").expose(), k.expose());
    }
}
