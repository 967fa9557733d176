//! `IngestLimits`: every bound the ingest decoders enforce, one TOML config section.

use minim_core::time::MS_PER_DAY;
use serde::{Deserialize, Serialize};

/// Largest `max_nesting_depth` accepted by [`IngestLimits::validate`]. serde_json stops
/// at 128 levels of recursion; staying far below keeps our own, clearer limit in charge.
pub const MAX_NESTING_DEPTH_CEILING: usize = 64;

/// Bounds on one ingest request. Units are in the names; defaults are generous for
/// real SDK traffic and small enough that one request cannot exhaust the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestLimits {
    /// Applies to the body as received AND to its decompressed size (gzip bombs stop here).
    pub max_body_bytes: usize,
    /// More events than this rejects the whole request.
    pub max_events_per_request: usize,
    /// Top-level keys of one event's `properties` object.
    pub max_properties_per_event: usize,
    /// Any object key inside `properties`, in UTF-8 bytes.
    pub max_key_bytes: usize,
    /// Any string value inside `properties` (at any depth), in UTF-8 bytes after unescaping.
    pub max_string_value_bytes: usize,
    pub max_event_name_bytes: usize,
    pub max_distinct_id_bytes: usize,
    pub max_insert_id_bytes: usize,
    /// Containers (objects and arrays) nested inside each other; the `properties` object
    /// itself is depth 1, so `{"a": [1]}` has depth 2.
    pub max_nesting_depth: usize,
    /// How far past the server clock an event timestamp may be.
    pub max_future_ms: i64,
    /// How far before the server clock an event timestamp may be (imports of old data).
    pub max_past_ms: i64,
}

impl Default for IngestLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 20 * 1024 * 1024,
            max_events_per_request: 10_000,
            max_properties_per_event: 1000,
            max_key_bytes: 256,
            max_string_value_bytes: 16 * 1024,
            max_event_name_bytes: 256,
            max_distinct_id_bytes: 256,
            max_insert_id_bytes: 128,
            max_nesting_depth: 5,
            max_future_ms: 3_600_000,
            // Five years, leap days included.
            max_past_ms: (5 * 365 + 2) * MS_PER_DAY,
        }
    }
}

impl IngestLimits {
    /// Checks the limits make sense; the error names the offending config key.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("max_body_bytes", self.max_body_bytes),
            ("max_events_per_request", self.max_events_per_request),
            ("max_properties_per_event", self.max_properties_per_event),
            ("max_key_bytes", self.max_key_bytes),
            ("max_string_value_bytes", self.max_string_value_bytes),
            ("max_event_name_bytes", self.max_event_name_bytes),
            ("max_distinct_id_bytes", self.max_distinct_id_bytes),
            ("max_insert_id_bytes", self.max_insert_id_bytes),
            ("max_nesting_depth", self.max_nesting_depth),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(format!("ingest.{name} must be > 0"));
            }
        }
        if self.max_nesting_depth > MAX_NESTING_DEPTH_CEILING {
            return Err(format!(
                "ingest.max_nesting_depth must be <= {MAX_NESTING_DEPTH_CEILING}"
            ));
        }
        if self.max_future_ms < 0 {
            return Err("ingest.max_future_ms must be >= 0".to_owned());
        }
        if self.max_past_ms < 0 {
            return Err("ingest.max_past_ms must be >= 0".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_limits_are_valid_and_match_the_documented_values() {
        let l = IngestLimits::default();
        assert_eq!(l.validate(), Ok(()));
        assert_eq!(l.max_body_bytes, 20 * 1024 * 1024);
        assert_eq!(l.max_events_per_request, 10_000);
        assert_eq!(l.max_string_value_bytes, 16 * 1024);
        assert_eq!(l.max_future_ms, 3_600_000);
        assert!(l.max_past_ms >= 5 * 365 * MS_PER_DAY);
    }

    #[test]
    fn validate_names_the_offending_field() {
        let l = IngestLimits {
            max_body_bytes: 0,
            ..IngestLimits::default()
        };
        assert_eq!(
            l.validate(),
            Err("ingest.max_body_bytes must be > 0".to_owned())
        );
        let l = IngestLimits {
            max_nesting_depth: 1000,
            ..IngestLimits::default()
        };
        assert!(l.validate().unwrap_err().contains("max_nesting_depth"));
        let l = IngestLimits {
            max_past_ms: -1,
            ..IngestLimits::default()
        };
        assert!(l.validate().unwrap_err().contains("max_past_ms"));
    }

    #[test]
    fn limits_deserialize_with_defaults_and_refuse_unknown_fields() {
        let l: IngestLimits = serde_json::from_str(r#"{"max_events_per_request": 5}"#).unwrap();
        assert_eq!(l.max_events_per_request, 5);
        assert_eq!(l.max_key_bytes, IngestLimits::default().max_key_bytes);
        assert!(serde_json::from_str::<IngestLimits>(r#"{"max_evnts": 5}"#).is_err());
    }
}
