//! Signed checkpoints, version 1: one JSON line per checkpoint in `checkpoints.log`.
//!
//! ```text
//! {"v":1,"seq":42,"hash":"<64 hex>","time_ms":1700000000000,"key":"<64 hex>","signature":"<128 hex>"}\n
//! ```
//!
//! `signature` is Ed25519 over the domain-separated message (integers big-endian)
//!
//! ```text
//! "minim.audit.checkpoint.v1" 0x00 || seq u64 || hash (32 raw bytes) || time_ms i64
//! ```
//!
//! `key` is the signer's public key. It is not trusted (verification always uses the
//! configured key); it only lets a report say "signed with another key" rather than
//! "bad signature". A checkpoint at seq 0 signs the empty log (hash = genesis).

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::canonical::{Digest32, parse_digest};
use crate::key::public_key_hex;

const CHECKPOINT_DOMAIN: &[u8] = b"minim.audit.checkpoint.v1\0";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointLineV1 {
    v: u32,
    seq: u64,
    hash: String,
    time_ms: i64,
    key: String,
    signature: String,
}

/// A parsed checkpoint whose signature has not been checked yet.
#[derive(Debug, Clone)]
pub(crate) struct Checkpoint {
    pub seq: u64,
    pub hash: Digest32,
    pub time_ms: i64,
    key: [u8; 32],
    signature: [u8; 64],
}

/// Why a checkpoint's signature does not hold under the configured key.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SignatureProblem {
    /// Valid under the public key the line names, which is not ours.
    OtherKey(String),
    /// Not a valid signature of this content by any key we can name.
    Invalid,
}

fn message(seq: u64, hash: &Digest32, time_ms: i64) -> Vec<u8> {
    let mut m = Vec::with_capacity(CHECKPOINT_DOMAIN.len() + 8 + 32 + 8);
    m.extend_from_slice(CHECKPOINT_DOMAIN);
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(hash);
    m.extend_from_slice(&time_ms.to_be_bytes());
    m
}

/// Signs `(seq, hash, time_ms)` and returns the checkpoint line with its newline.
pub(crate) fn signed_line(
    key: &SigningKey,
    seq: u64,
    hash: &Digest32,
    time_ms: i64,
) -> Result<Vec<u8>, serde_json::Error> {
    let sig = key.sign(&message(seq, hash, time_ms));
    let line = CheckpointLineV1 {
        v: VERSION,
        seq,
        hash: hex::encode(hash),
        time_ms,
        key: public_key_hex(&key.verifying_key()),
        signature: hex::encode(sig.to_bytes()),
    };
    let mut out = serde_json::to_vec(&line)?;
    out.push(b'\n');
    Ok(out)
}

impl Checkpoint {
    /// Parses one line (without its newline). Errors are short report reasons.
    pub fn parse(bytes: &[u8]) -> Result<Checkpoint, String> {
        let line: CheckpointLineV1 = serde_json::from_slice(bytes).map_err(|e| {
            format!(
                "not a checkpoint: {:?} error at column {}",
                e.classify(),
                e.column()
            )
        })?;
        if line.v != VERSION {
            return Err(format!("unknown checkpoint format version {}", line.v));
        }
        let hash = parse_digest(&line.hash).ok_or("hash is not a 64-digit lowercase hex")?;
        let mut key = [0u8; 32];
        hex::decode_to_slice(&line.key, &mut key).map_err(|_| "key is not 64 hex digits")?;
        let mut signature = [0u8; 64];
        hex::decode_to_slice(&line.signature, &mut signature)
            .map_err(|_| "signature is not 128 hex digits")?;
        Ok(Checkpoint {
            seq: line.seq,
            hash,
            time_ms: line.time_ms,
            key,
            signature,
        })
    }

    /// Whether the line names `ours` as its signer (cheap; says nothing about validity).
    pub fn names_key(&self, ours: &VerifyingKey) -> bool {
        &self.key == ours.as_bytes()
    }

    /// Checks the signature under `ours`.
    pub fn check(&self, ours: &VerifyingKey) -> Result<(), SignatureProblem> {
        let msg = message(self.seq, &self.hash, self.time_ms);
        let sig = Signature::from_bytes(&self.signature);
        if ours.verify_strict(&msg, &sig).is_ok() {
            return Ok(());
        }
        if self.key != *ours.as_bytes()
            && let Ok(theirs) = VerifyingKey::from_bytes(&self.key)
            && theirs.verify_strict(&msg, &sig).is_ok()
        {
            return Err(SignatureProblem::OtherKey(hex::encode(&self.key[..8])));
        }
        Err(SignatureProblem::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SigningKey {
        SigningKey::from_bytes(&[b; 32])
    }

    fn parse(line: &[u8]) -> Checkpoint {
        Checkpoint::parse(&line[..line.len() - 1]).expect("parses")
    }

    #[test]
    fn signs_and_checks() {
        let k = key(7);
        let line = signed_line(&k, 5, &[3u8; 32], 1000).expect("line");
        let cp = parse(&line);
        assert_eq!((cp.seq, cp.hash, cp.time_ms), (5, [3u8; 32], 1000));
        assert!(cp.names_key(&k.verifying_key()));
        assert_eq!(cp.check(&k.verifying_key()), Ok(()));
    }

    #[test]
    fn tells_another_key_from_a_bad_signature() {
        let line = signed_line(&key(1), 5, &[3u8; 32], 1000).expect("line");
        let ours = key(2).verifying_key();
        assert!(matches!(
            parse(&line).check(&ours),
            Err(SignatureProblem::OtherKey(_))
        ));
        let text = String::from_utf8(line).expect("utf8");
        let edited = text.replace("\"seq\":5", "\"seq\":6");
        assert_eq!(
            parse(edited.as_bytes()).check(&key(1).verifying_key()),
            Err(SignatureProblem::Invalid)
        );
    }
}
