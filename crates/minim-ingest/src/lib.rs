//! Wire formats to canonical events: decompression, framing, validation and limits.
//!
//! This crate knows nothing about HTTP: it takes a body plus what the server read from
//! the headers ([`BodyFormat::from_content_type`], [`ContentEncoding::from_header`]) and
//! returns [`Decoded`] events or a whole-request [`DecodeError`], each with a stable
//! `code`. The server owns the mapping of those errors to HTTP statuses.
//!
//! # Native ingest rules ([`decode_native`])
//!
//! Whole-request errors (nothing is stored):
//! - body (as sent, or after gzip) over `max_body_bytes` → `body_too_large`;
//!   unknown `Content-Encoding` → `unsupported_encoding`; bad gzip → `malformed_gzip`;
//! - more than `max_events_per_request` events → `too_many_events`;
//! - a JSON body that is not valid JSON, or neither an array nor an object →
//!   `malformed_json`; an NDJSON body where no non-blank line is valid JSON →
//!   `malformed_json` (an empty or all-blank NDJSON body is zero events, not an error).
//!
//! Framing:
//! - JSON: an array of events; a body whose first non-whitespace byte is `{` is one
//!   event at index 0 (common SDK behaviour). Several concatenated objects are *not*
//!   sniffed as NDJSON: that needs the NDJSON content type.
//! - NDJSON: one event per line; lines that are empty or whitespace are skipped and take
//!   no index, so index `i` is the i-th non-blank line (0-based). A line that is not
//!   valid JSON is rejected alone with `malformed_json`.
//! - A leading UTF-8 byte-order mark is ignored.
//!
//! Per event (a [`Rejection`] with the first violation found; neighbours are kept):
//! - `event`: a non-empty string of at most `max_event_name_bytes`;
//! - `distinct_id`: a string, or a number stored as its decimal text
//!   (`42`, `42.0` → `"42"`), at most `max_distinct_id_bytes`; absent, `null` or `""`
//!   decodes to `""`: a cookieless event whose id the privacy pipeline derives;
//! - `timestamp`: see [`parse_timestamp`]; absent or `null` means `now_ms`; must lie in
//!   `[now_ms - max_past_ms, now_ms + max_future_ms]`;
//! - `insert_id`: a string of at most `max_insert_id_bytes`; absent, `null` or `""`
//!   means none (an empty key would deduplicate unrelated events together);
//! - `properties`: an object (or `null`, stored as `{}`) with at most
//!   `max_properties_per_event` top-level keys; every key at any depth is 1 to
//!   `max_key_bytes` long and unique within its object; every string value at any depth
//!   is at most `max_string_value_bytes`; containers nest at most `max_nesting_depth`
//!   deep, the properties object itself being level 1;
//! - unknown top-level fields are accepted and ignored; a known field given twice is
//!   `invalid_event`. Lengths are UTF-8 bytes after unescaping.
//! - a lone UTF-16 surrogate escape (`"\ud83d"`, from a JS string cut inside an emoji)
//!   has no UTF-8 form: it is replaced by U+FFFD rather than losing the event. Other
//!   undecodable values (e.g. a number beyond the f64 range) reject the event with
//!   `malformed_json`.
//!
//! Messages name fields, sizes and limits, never the offending value.
//!
//! # Canonical properties text
//!
//! `Event::properties` is compact JSON with the keys **in the order received** (not
//! sorted): no insignificant whitespace; strings re-escaped minimally, exactly as
//! serde_json writes them (`\"`, `\\`, `\b\f\n\r\t`, other control characters as
//! `\u00XX`, all else literal UTF-8); numbers as serde_json reads them (integers exact
//! within i64/u64, anything else the nearest f64 in shortest round-trip form, so `1E2`
//! becomes `100.0`). Duplicate keys are refused rather than resolved, so the text means
//! the same to every JSON reader. It is produced in the same streaming pass that checks
//! the limits, without building a `Value` tree.
//!
//! # Resource bounds
//!
//! No input can panic the decoder. Memory stays within a small constant factor of the
//! decompressed body (which is itself capped): the framing pass borrows every event from
//! the body, field strings are borrowed unless escaped, and each event's properties text
//! is never longer than the event's own text. Nesting is skipped iteratively by
//! serde_json's `RawValue`/`IgnoredAny` and validated recursively only inside
//! `properties`, where `max_nesting_depth` (at most 64) stops it, so deep input cannot
//! overflow the stack.

mod encoding;
mod error;
mod framing;
mod limits;
mod native;
mod properties;
mod surrogates;
mod timestamp;

#[cfg(test)]
mod tests;

pub use encoding::{ContentEncoding, decompress};
pub use error::{DecodeError, Rejection, codes};
pub use framing::BodyFormat;
pub use limits::{IngestLimits, MAX_NESTING_DEPTH_CEILING};
pub use native::{Decoded, decode_native};
pub use timestamp::{EPOCH_MS_THRESHOLD, parse_timestamp};
