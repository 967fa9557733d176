//! A Tink-style keyset: keys with random 32-bit ids, one primary that encrypts, the
//! others decrypt-only. Stored as JSON with every key wrapped (an [`envelope`] under
//! the master key, bound to the keyset's name and the key's id).

use serde::{Deserialize, Serialize};

use crate::{CryptoError, Key, envelope};

/// One key of a keyset, without its material (what `minim keys` shows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    pub id: u32,
    pub primary: bool,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone)]
struct Entry {
    id: u32,
    created_at_ms: i64,
    key: Key,
}

/// A keyset in memory, keys unwrapped.
#[derive(Debug, Clone)]
pub struct Keyset {
    name: String,
    primary: u32,
    keys: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    version: u32,
    name: String,
    primary: u32,
    keys: Vec<StoredKey>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredKey {
    id: u32,
    created_at_ms: i64,
    /// Hex of the key wrapped under the master key.
    wrapped: String,
}

fn wrap_ad(name: &str, id: u32) -> Vec<u8> {
    format!("minim/keyset/{name}/{id}").into_bytes()
}

fn random_id(taken: &[Entry]) -> Result<u32, CryptoError> {
    loop {
        let k = Key::generate()?;
        let b = k.expose();
        let id = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        if id != 0 && !taken.iter().any(|e| e.id == id) {
            return Ok(id);
        }
    }
}

impl Keyset {
    /// A new keyset with one fresh primary key.
    pub fn generate(name: &str, now_ms: i64) -> Result<Self, CryptoError> {
        let mut ks = Self {
            name: name.to_owned(),
            primary: 0,
            keys: Vec::new(),
        };
        ks.rotate(now_ms)?;
        Ok(ks)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds a fresh key and makes it primary; the old keys stay, decrypt-only.
    pub fn rotate(&mut self, now_ms: i64) -> Result<u32, CryptoError> {
        let id = random_id(&self.keys)?;
        self.keys.push(Entry {
            id,
            created_at_ms: now_ms,
            key: Key::generate()?,
        });
        self.primary = id;
        Ok(id)
    }

    /// Drops every key but the primary (after all data was re-encrypted with it).
    /// Returns how many were dropped.
    pub fn retire_old(&mut self) -> usize {
        let before = self.keys.len();
        let primary = self.primary;
        self.keys.retain(|e| e.id == primary);
        before - self.keys.len()
    }

    pub fn primary_id(&self) -> u32 {
        self.primary
    }

    /// The primary key and its id.
    pub fn primary(&self) -> (u32, &Key) {
        let e = self
            .keys
            .iter()
            .find(|e| e.id == self.primary)
            .expect("a keyset always holds its primary key");
        (e.id, &e.key)
    }

    /// The key with this id, if the keyset holds it.
    pub fn get(&self, id: u32) -> Option<&Key> {
        self.keys.iter().find(|e| e.id == id).map(|e| &e.key)
    }

    /// The key with this id, or an error naming `what` (the ciphertext being read).
    pub fn require(&self, id: u32, what: &str) -> Result<&Key, CryptoError> {
        self.get(id).ok_or_else(|| CryptoError::UnknownKey {
            what: what.to_owned(),
            keyset: self.name.clone(),
            key_id: id,
        })
    }

    pub fn key_ids(&self) -> Vec<u32> {
        self.keys.iter().map(|e| e.id).collect()
    }

    pub fn info(&self) -> Vec<KeyInfo> {
        self.keys
            .iter()
            .map(|e| KeyInfo {
                id: e.id,
                primary: e.id == self.primary,
                created_at_ms: e.created_at_ms,
            })
            .collect()
    }

    /// Encrypts with the primary key.
    pub fn seal(&self, ad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (id, key) = self.primary();
        envelope::seal(key, id, ad, plaintext)
    }

    /// Decrypts with whichever key the envelope names.
    pub fn open(&self, ad: &[u8], ct: &[u8], what: &str) -> Result<Vec<u8>, CryptoError> {
        let id = envelope::key_id(ct, what)?;
        envelope::open(self.require(id, what)?, ad, ct, what)
    }

    /// The stored (JSON) form, every key wrapped under `master` (id `master_id`).
    pub fn to_stored(&self, master: &Key, master_id: u32) -> Result<Vec<u8>, CryptoError> {
        let keys = self
            .keys
            .iter()
            .map(|e| {
                let w = envelope::seal(
                    master,
                    master_id,
                    &wrap_ad(&self.name, e.id),
                    e.key.expose(),
                )?;
                Ok(StoredKey {
                    id: e.id,
                    created_at_ms: e.created_at_ms,
                    wrapped: hex::encode(w),
                })
            })
            .collect::<Result<Vec<_>, CryptoError>>()?;
        let stored = Stored {
            version: 1,
            name: self.name.clone(),
            primary: self.primary,
            keys,
        };
        let mut out = serde_json::to_vec_pretty(&stored).expect("keyset serializes");
        out.push(b'\n');
        Ok(out)
    }

    /// The id of the master key a stored keyset is wrapped under (read from its first
    /// wrapped key's envelope header), if the bytes parse.
    pub fn stored_master_id(bytes: &[u8]) -> Option<u32> {
        let stored: Stored = serde_json::from_slice(bytes).ok()?;
        let first = hex::decode(&stored.keys.first()?.wrapped).ok()?;
        envelope::key_id(&first, "keyset").ok()
    }

    /// Parses a stored keyset named `name`, unwrapping with `master`. `what` names the
    /// file for errors.
    pub fn from_stored(
        bytes: &[u8],
        name: &str,
        master: &Key,
        what: &str,
    ) -> Result<Self, CryptoError> {
        let bad = |reason: String| CryptoError::Corrupt {
            what: what.to_owned(),
            reason,
        };
        let stored: Stored =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not a keyset: {e}")))?;
        if stored.version != 1 {
            return Err(bad(format!(
                "unsupported keyset version {}",
                stored.version
            )));
        }
        if stored.name != name {
            return Err(bad(format!("holds keyset {:?}, not {name:?}", stored.name)));
        }
        let mut keys = Vec::with_capacity(stored.keys.len());
        for k in stored.keys {
            let w = hex::decode(&k.wrapped).map_err(|_| bad("wrapped key is not hex".into()))?;
            let raw =
                zeroize::Zeroizing::new(envelope::open(master, &wrap_ad(name, k.id), &w, what)?);
            let key = Key::from_bytes(&raw)
                .ok_or_else(|| bad("wrapped key has the wrong length".into()))?;
            keys.push(Entry {
                id: k.id,
                created_at_ms: k.created_at_ms,
                key,
            });
        }
        if !keys.iter().any(|e| e.id == stored.primary) {
            return Err(bad("the primary key is missing".into()));
        }
        Ok(Self {
            name: name.to_owned(),
            primary: stored.primary,
            keys,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_old_keys_for_decryption_until_retired() {
        let mut ks = Keyset::generate("project:p1", 0).expect("ks");
        let old = ks.seal(b"ad", b"old data").expect("seal");
        let first = ks.primary_id();
        let second = ks.rotate(1).expect("rotate");
        assert_ne!(first, second);
        let new = ks.seal(b"ad", b"new data").expect("seal");
        assert_eq!(envelope::key_id(&new, "t").expect("id"), second);
        assert_eq!(ks.open(b"ad", &old, "t").expect("old"), b"old data");
        assert_eq!(ks.retire_old(), 1);
        assert!(matches!(
            ks.open(b"ad", &old, "t"),
            Err(CryptoError::UnknownKey { key_id, .. }) if key_id == first
        ));
        assert_eq!(ks.open(b"ad", &new, "t").expect("new"), b"new data");
    }

    #[test]
    fn stored_form_round_trips_and_binds_name_and_master() {
        let master = Key::generate().expect("m");
        let mut ks = Keyset::generate("project:p1", 5).expect("ks");
        ks.rotate(6).expect("rotate");
        let stored = ks.to_stored(&master, 77).expect("store");
        let text = String::from_utf8(stored.clone()).expect("utf8");
        for id in ks.key_ids() {
            let (_, k) = (id, ks.get(id).expect("k"));
            assert!(
                !text.contains(&hex::encode(k.expose())),
                "key material in the clear"
            );
        }
        let back = Keyset::from_stored(&stored, "project:p1", &master, "f").expect("load");
        assert_eq!(back.info(), ks.info());
        let ct = ks.seal(b"x", b"y").expect("seal");
        assert_eq!(back.open(b"x", &ct, "t").expect("open"), b"y");
        assert!(Keyset::from_stored(&stored, "project:p2", &master, "f").is_err());
        let other = Key::generate().expect("m2");
        assert!(matches!(
            Keyset::from_stored(&stored, "project:p1", &other, "f"),
            Err(CryptoError::Corrupt { .. })
        ));
    }
}
