//! Whole-request errors (`DecodeError`), per-event `Rejection`s and their stable codes.

/// Stable snake_case codes. They are part of the public API (clients and dashboards
/// match on them): never rename one, only add.
pub mod codes {
    // Whole-request codes (DecodeError::code).
    pub const BODY_TOO_LARGE: &str = "body_too_large";
    pub const TOO_MANY_EVENTS: &str = "too_many_events";
    pub const UNSUPPORTED_ENCODING: &str = "unsupported_encoding";
    pub const MALFORMED_GZIP: &str = "malformed_gzip";
    /// Both a whole-request code and a per-event code (one bad NDJSON line).
    pub const MALFORMED_JSON: &str = "malformed_json";

    // Per-event codes (Rejection::code).
    pub const INVALID_EVENT: &str = "invalid_event";
    pub const MISSING_EVENT: &str = "missing_event";
    pub const EVENT_NAME_TOO_LONG: &str = "event_name_too_long";
    pub const MISSING_DISTINCT_ID: &str = "missing_distinct_id";
    pub const DISTINCT_ID_TOO_LONG: &str = "distinct_id_too_long";
    pub const INVALID_TIMESTAMP: &str = "invalid_timestamp";
    pub const TIMESTAMP_OUT_OF_RANGE: &str = "timestamp_out_of_range";
    pub const INVALID_INSERT_ID: &str = "invalid_insert_id";
    pub const INVALID_PROPERTIES: &str = "invalid_properties";
    pub const TOO_MANY_PROPERTIES: &str = "too_many_properties";
    pub const INVALID_PROPERTY_KEY: &str = "invalid_property_key";
    pub const PROPERTY_KEY_TOO_LONG: &str = "property_key_too_long";
    pub const PROPERTY_VALUE_TOO_LONG: &str = "property_value_too_long";
    pub const PROPERTIES_TOO_DEEP: &str = "properties_too_deep";

    /// Every code a [`crate::Rejection`] can carry, e.g. to pre-register per-reason counters.
    pub const REJECTION_CODES: &[&str] = &[
        MALFORMED_JSON,
        INVALID_EVENT,
        MISSING_EVENT,
        EVENT_NAME_TOO_LONG,
        MISSING_DISTINCT_ID,
        DISTINCT_ID_TOO_LONG,
        INVALID_TIMESTAMP,
        TIMESTAMP_OUT_OF_RANGE,
        INVALID_INSERT_ID,
        INVALID_PROPERTIES,
        TOO_MANY_PROPERTIES,
        INVALID_PROPERTY_KEY,
        PROPERTY_KEY_TOO_LONG,
        PROPERTY_VALUE_TOO_LONG,
        PROPERTIES_TOO_DEEP,
    ];
}

/// The whole request is refused; no event of it is stored. The server maps each variant
/// to an HTTP status (413 for `BodyTooLarge`/`TooManyEvents`, 415 for
/// `UnsupportedEncoding`, 400 otherwise) and sends [`DecodeError::code`].
///
/// Messages never contain request content, only positions, sizes and limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("body exceeds the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("more than {limit} events in one request")]
    TooManyEvents { limit: usize },
    #[error("malformed JSON body: {0}")]
    Malformed(String),
    #[error("unsupported Content-Encoding `{0}` (supported: gzip, identity)")]
    UnsupportedEncoding(String),
    #[error("malformed gzip body: {0}")]
    BadGzip(String),
}

impl DecodeError {
    /// Stable snake_case code for the response body and the per-reason counters.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BodyTooLarge { .. } => codes::BODY_TOO_LARGE,
            Self::TooManyEvents { .. } => codes::TOO_MANY_EVENTS,
            Self::Malformed(_) => codes::MALFORMED_JSON,
            Self::UnsupportedEncoding(_) => codes::UNSUPPORTED_ENCODING,
            Self::BadGzip(_) => codes::MALFORMED_GZIP,
        }
    }
}

/// One event refused on its own; its neighbours are unaffected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Position of the event in the request (array index, or non-blank NDJSON line ordinal).
    pub index: usize,
    /// One of [`codes::REJECTION_CODES`].
    pub code: &'static str,
    /// Human-readable reason: field names, sizes and limits, never the offending value.
    pub message: String,
}

/// Why one event was refused, before it is given its index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    pub code: &'static str,
    pub message: String,
}

impl Violation {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn at(self, index: usize) -> Rejection {
        Rejection {
            index,
            code: self.code,
            message: self.message,
        }
    }
}

/// A serde_json error as a message safe to send back: syntax errors carry fixed texts
/// and positions only, while data errors ("invalid type: string \"…\"") may quote the
/// input, so those are replaced by `data_message`.
pub(crate) fn json_error_message(err: &serde_json::Error, data_message: &str) -> String {
    use serde_json::error::Category;
    match err.classify() {
        Category::Syntax | Category::Eof => err.to_string(),
        Category::Data | Category::Io => data_message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_error_codes_are_stable() {
        assert_eq!(
            DecodeError::BodyTooLarge { limit: 1 }.code(),
            "body_too_large"
        );
        assert_eq!(
            DecodeError::TooManyEvents { limit: 1 }.code(),
            "too_many_events"
        );
        assert_eq!(
            DecodeError::Malformed(String::new()).code(),
            "malformed_json"
        );
        assert_eq!(
            DecodeError::UnsupportedEncoding(String::new()).code(),
            "unsupported_encoding"
        );
        assert_eq!(DecodeError::BadGzip(String::new()).code(), "malformed_gzip");
    }

    #[test]
    fn rejection_codes_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in codes::REJECTION_CODES {
            assert!(seen.insert(code), "duplicate code {code}");
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{code}"
            );
        }
    }

    #[test]
    fn json_data_errors_do_not_echo_input() {
        let err = serde_json::from_str::<Vec<u8>>(r#""secret-value""#).unwrap_err();
        let msg = json_error_message(&err, "expected an array");
        assert!(!msg.contains("secret"), "{msg}");
    }
}
