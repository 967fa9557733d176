//! Body framing: splitting a JSON array (or single object) or NDJSON body into the raw,
//! syntax-checked JSON text of each event, enforcing the per-request event count.
//!
//! This pass uses serde_json's `RawValue`, which skips values iteratively (no recursion,
//! no stack growth however deep the input nests) and borrows from the body.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::DecodeError;
use crate::error::{Violation, codes, json_error_message};

/// How events are framed in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyFormat {
    /// A JSON array of event objects; a body whose first non-whitespace byte is `{` is
    /// accepted as one event object (what many SDKs send for a single event).
    #[default]
    JsonArray,
    /// One event object per line. Blank lines are skipped and take no index.
    Ndjson,
}

impl BodyFormat {
    /// From the `Content-Type` header (`None` when absent); parameters such as
    /// `; charset=utf-8` and case are ignored. The newline-delimited media types
    /// (`application/x-ndjson`, `application/ndjson`, `application/jsonl`,
    /// `application/x-jsonl`, `application/jsonlines`, `application/x-jsonlines`) are
    /// NDJSON; everything else, including a missing header, is a JSON body.
    pub fn from_content_type(value: Option<&str>) -> Self {
        let Some(value) = value else {
            return Self::JsonArray;
        };
        let essence = value.split(';').next().unwrap_or("").trim();
        const NDJSON: [&str; 6] = [
            "application/x-ndjson",
            "application/ndjson",
            "application/jsonl",
            "application/x-jsonl",
            "application/jsonlines",
            "application/x-jsonlines",
        ];
        if NDJSON.iter().any(|t| essence.eq_ignore_ascii_case(t)) {
            Self::Ndjson
        } else {
            Self::JsonArray
        }
    }
}

/// The raw text of one event, or why that element could not even be read as JSON.
pub(crate) type Element<'a> = Result<&'a str, Violation>;

const NOT_AN_ARRAY: &str = "body must be a JSON array of events or a single event object";

fn is_json_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// A JSON array of events or a single event object. Any syntax error fails the whole
/// body; elements that are valid JSON but not objects are left for the event decoder.
pub(crate) fn split_json(body: &[u8], max_events: usize) -> Result<Vec<Element<'_>>, DecodeError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        DecodeError::Malformed(format!(
            "body is not valid UTF-8 (at byte {})",
            e.valid_up_to()
        ))
    })?;
    let malformed =
        |e: serde_json::Error| DecodeError::Malformed(json_error_message(&e, NOT_AN_ARRAY));
    match text.bytes().find(|&b| !is_json_ws(b)) {
        None => Err(DecodeError::Malformed("body is empty".to_owned())),
        Some(b'{') => {
            let raw: &RawValue = serde_json::from_str(text).map_err(malformed)?;
            Ok(vec![Ok(raw.get())])
        }
        Some(_) => {
            let mut too_many = false;
            let mut de = serde_json::Deserializer::from_str(text);
            let raws = RawElements {
                max: max_events,
                too_many: &mut too_many,
            }
            .deserialize(&mut de)
            .and_then(|raws| de.end().map(|()| raws));
            match raws {
                Ok(raws) => Ok(raws.into_iter().map(|r| Ok(r.get())).collect()),
                Err(_) if too_many => Err(DecodeError::TooManyEvents { limit: max_events }),
                Err(e) => Err(malformed(e)),
            }
        }
    }
}

/// Collects the array's elements as raw JSON, stopping as soon as there are too many.
struct RawElements<'f> {
    max: usize,
    too_many: &'f mut bool,
}

impl<'de> DeserializeSeed<'de> for RawElements<'_> {
    type Value = Vec<&'de RawValue>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RawElements<'_> {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(NOT_AN_ARRAY)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            if out.len() == self.max {
                *self.too_many = true;
                return Err(de::Error::custom(codes::TOO_MANY_EVENTS));
            }
            out.push(raw);
        }
        Ok(out)
    }
}

/// NDJSON: every non-blank line is one element; a line that is not valid JSON is a
/// per-element `malformed_json` violation, never a whole-body error (the caller decides
/// when *no* line parses).
pub(crate) fn split_ndjson(
    body: &[u8],
    max_events: usize,
) -> Result<Vec<Element<'_>>, DecodeError> {
    let mut lines = Vec::new();
    for line in body.split(|&b| b == b'\n') {
        let Some(first) = line.iter().position(|&b| !is_json_ws(b)) else {
            continue;
        };
        let last = line.iter().rposition(|&b| !is_json_ws(b)).unwrap_or(first);
        if lines.len() == max_events {
            return Err(DecodeError::TooManyEvents { limit: max_events });
        }
        lines.push(&line[first..=last]);
    }
    Ok(lines.into_iter().map(parse_line).collect())
}

fn parse_line(line: &[u8]) -> Element<'_> {
    let text = std::str::from_utf8(line).map_err(|e| {
        Violation::new(
            codes::MALFORMED_JSON,
            format!("line is not valid UTF-8 (at byte {})", e.valid_up_to()),
        )
    })?;
    match serde_json::from_str::<&RawValue>(text) {
        Ok(raw) => Ok(raw.get()),
        Err(e) => {
            let msg = format!(
                "line is not valid JSON: {}",
                json_error_message(&e, "invalid JSON")
            );
            Err(Violation::new(codes::MALFORMED_JSON, msg))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_elements(v: Vec<Element<'_>>) -> Vec<&str> {
        v.into_iter().map(|e| e.unwrap()).collect()
    }

    #[test]
    fn content_type_selects_the_format() {
        assert_eq!(BodyFormat::from_content_type(None), BodyFormat::JsonArray);
        assert_eq!(
            BodyFormat::from_content_type(Some("application/json")),
            BodyFormat::JsonArray
        );
        assert_eq!(
            BodyFormat::from_content_type(Some("text/plain")),
            BodyFormat::JsonArray
        );
        for nd in [
            "application/x-ndjson",
            "Application/X-NDJSON; charset=utf-8",
            "application/jsonl",
            " application/ndjson ",
        ] {
            assert_eq!(
                BodyFormat::from_content_type(Some(nd)),
                BodyFormat::Ndjson,
                "{nd}"
            );
        }
    }

    #[test]
    fn json_array_splits_into_raw_elements() {
        let got = split_json(br#" [ {"a":1} , 2, "x" ,[ ]] "#, 10).unwrap();
        assert_eq!(ok_elements(got), [r#"{"a":1}"#, "2", r#""x""#, "[ ]"]);
        assert!(split_json(b"[]", 10).unwrap().is_empty());
    }

    #[test]
    fn json_body_starting_with_brace_is_one_event() {
        let got = split_json(b"\n {\"event\":\"a\"} \n", 10).unwrap();
        assert_eq!(ok_elements(got), [r#"{"event":"a"}"#]);
        // Two objects are not a JSON body (NDJSON needs its content type).
        assert!(matches!(
            split_json(b"{}\n{}", 10),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn json_body_unparseable_is_malformed() {
        for bad in [
            &b""[..],
            b"   ",
            b"[",
            b"[1,]",
            b"[1] x",
            b"null",
            b"\"secret\"",
            b"42",
            b"[\"\xff\"]",
            b"{",
        ] {
            let err = split_json(bad, 10).unwrap_err();
            assert_eq!(
                err.code(),
                "malformed_json",
                "{:?}",
                String::from_utf8_lossy(bad)
            );
            assert!(!err.to_string().contains("secret"), "{err}");
        }
    }

    #[test]
    fn json_body_of_100k_open_brackets_is_malformed_not_a_stack_overflow() {
        let body = vec![b'['; 100_000];
        assert_eq!(split_json(&body, 10).unwrap_err().code(), "malformed_json");
        let body = [b"[".repeat(100_000), b"]".repeat(100_000)].concat();
        // Valid JSON: one element, a deeply nested array, refused later as invalid_event.
        assert_eq!(split_json(&body, 10).unwrap().len(), 1);
    }

    #[test]
    fn too_many_events_in_an_array_or_ndjson() {
        assert_eq!(split_json(b"[1,2,3]", 3).unwrap().len(), 3);
        assert_eq!(
            split_json(b"[1,2,3,4]", 3).unwrap_err(),
            DecodeError::TooManyEvents { limit: 3 }
        );
        // Counted before the rest of the body is read.
        assert_eq!(
            split_json(b"[1,2,3,4, oops", 3).unwrap_err().code(),
            "too_many_events"
        );
        assert_eq!(split_ndjson(b"1\n2\n\n3\n", 3).unwrap().len(), 3);
        assert_eq!(
            split_ndjson(b"1\n2\n3\n4", 3).unwrap_err(),
            DecodeError::TooManyEvents { limit: 3 }
        );
    }

    #[test]
    fn ndjson_skips_blank_lines_and_reports_bad_lines_in_place() {
        let got = split_ndjson(b"{\"a\":1}\r\n\n   \n{bad\n\t[2] \n\xff\n", 10).unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], Ok(r#"{"a":1}"#));
        assert_eq!(got[1].as_ref().unwrap_err().code, "malformed_json");
        assert_eq!(got[2], Ok("[2]"));
        assert_eq!(got[3].as_ref().unwrap_err().code, "malformed_json");
        assert!(split_ndjson(b"", 10).unwrap().is_empty());
        assert!(split_ndjson(b"\n \r\n", 10).unwrap().is_empty());
    }
}
