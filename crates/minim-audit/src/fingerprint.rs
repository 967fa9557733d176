//! [`hash_fingerprint`]: what the log stores instead of query text.

use sha2::{Digest, Sha256};

/// Lowercase hex SHA-256 of `text` with every run of whitespace collapsed to one space
/// and the ends trimmed, so that reformatting a query keeps its fingerprint.
pub fn hash_fingerprint(text: &str) -> String {
    let mut h = Sha256::new();
    let mut first = true;
    for word in text.split_whitespace() {
        if !first {
            h.update(b" ");
        }
        h.update(word.as_bytes());
        first = false;
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_does_not_matter_but_words_do() {
        let a = hash_fingerprint("SELECT  count(*)\n\tFROM events ");
        assert_eq!(a, hash_fingerprint("SELECT count(*) FROM events"));
        assert_ne!(a, hash_fingerprint("SELECT count(*) FROM event"));
        assert_eq!(a.len(), 64);
        assert_eq!(
            hash_fingerprint(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
