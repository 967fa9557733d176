//! Identifiers that cross crate boundaries, validated once at construction.

use std::fmt;

/// Why a string was refused as an identifier.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid {kind}: must be 1-64 characters of [a-z0-9_-]")]
pub struct InvalidId {
    pub kind: &'static str,
}

/// A project identifier. Safe to use as a path component: 1-64 characters of
/// `[a-z0-9_-]`, never `.` or `/`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProjectId(String);

impl ProjectId {
    pub fn new(s: impl Into<String>) -> Result<Self, InvalidId> {
        let s = s.into();
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(s))
        } else {
            Err(InvalidId { kind: "project id" })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ProjectId {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, InvalidId> {
        Self::new(s)
    }
}

impl From<ProjectId> for String {
    fn from(p: ProjectId) -> String {
        p.0
    }
}

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProjectId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_id_rejects_path_tricks() {
        assert!(ProjectId::new("p_abc-1").is_ok());
        for bad in ["", "..", "a/b", "A", "a.b", &"x".repeat(65)] {
            assert!(ProjectId::new(bad).is_err(), "{bad:?} accepted");
        }
    }
}
