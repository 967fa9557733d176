//! The native wire format (`POST /api/v1/events`): request decoding and per-event
//! validation into canonical [`Event`]s.

use std::borrow::Cow;
use std::fmt;

use minim_core::Event;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::error::{Violation, codes, json_error_message};
use crate::properties::{Ctx, PropertiesSeed};
use crate::surrogates::repair_lone_surrogates;
use crate::{
    BodyFormat, ContentEncoding, DecodeError, IngestLimits, Rejection, framing, timestamp,
};

/// The outcome of a request that was decodable as a whole.
///
/// Every input index appears exactly once, either in `indices` (parallel to `events`)
/// or in `rejected`; both are in ascending order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decoded {
    pub events: Vec<Event>,
    /// Original index of each accepted event, parallel to `events`.
    pub indices: Vec<usize>,
    pub rejected: Vec<Rejection>,
}

/// Decodes a native ingest request body into validated events.
///
/// `now_ms` is the server receive time: it becomes every event's `received_at_ms`, the
/// timestamp of events without one, and the reference for the timestamp range check.
/// See the crate documentation for the exact rules.
pub fn decode_native(
    body: &[u8],
    format: BodyFormat,
    encoding: ContentEncoding,
    limits: &IngestLimits,
    now_ms: i64,
) -> Result<Decoded, DecodeError> {
    let body = crate::decompress(body, encoding, limits.max_body_bytes)?;
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&body);
    let mut ctx = EventCtx::new(limits);
    let elements = match format {
        BodyFormat::JsonArray => framing::split_json(body, limits.max_events_per_request)?,
        BodyFormat::Ndjson => framing::split_ndjson(body, limits.max_events_per_request)?,
    };
    let total = elements.len();
    let mut out = Decoded {
        events: Vec::with_capacity(total),
        indices: Vec::with_capacity(total),
        rejected: Vec::new(),
    };
    for (index, element) in elements.into_iter().enumerate() {
        match element.and_then(|raw| decode_event(raw, &mut ctx, now_ms)) {
            Ok(event) => {
                out.events.push(event);
                out.indices.push(index);
            }
            Err(v) => out.rejected.push(v.at(index)),
        }
    }
    // NDJSON where not a single line is JSON is a wrong body, not a batch of bad events.
    if format == BodyFormat::Ndjson
        && out.events.is_empty()
        && let Some(first) = out.rejected.first()
        && out.rejected.iter().all(|r| r.code == codes::MALFORMED_JSON)
    {
        return Err(DecodeError::Malformed(format!(
            "no line is valid JSON (first non-blank line: {})",
            first.message
        )));
    }
    Ok(out)
}

/// State carried from one event of a request to the next: limits and scratch buffers.
pub(crate) struct EventCtx<'l> {
    props: Ctx<'l>,
    properties: String,
}

impl<'l> EventCtx<'l> {
    pub fn new(limits: &'l IngestLimits) -> Self {
        Self {
            props: Ctx::new(limits),
            properties: String::new(),
        }
    }
}

/// One event from its raw (syntactically valid) JSON text; `ctx` carries the limits and
/// scratch space from one event to the next. Text that fails only because of lone
/// surrogate escapes is decoded again with them replaced by U+FFFD.
pub(crate) fn decode_event(
    raw: &str,
    ctx: &mut EventCtx<'_>,
    now_ms: i64,
) -> Result<Event, Violation> {
    match decode_text(raw, ctx, now_ms) {
        Err(v) if v.code == codes::MALFORMED_JSON => match repair_lone_surrogates(raw) {
            Some(repaired) => decode_text(&repaired, ctx, now_ms),
            None => Err(v),
        },
        result => result,
    }
}

fn decode_text(raw: &str, ctx: &mut EventCtx<'_>, now_ms: i64) -> Result<Event, Violation> {
    if !raw.starts_with('{') {
        return Err(Violation::new(
            codes::INVALID_EVENT,
            "event must be a JSON object",
        ));
    }
    ctx.props.reset();
    let limits = ctx.props.limits;
    // Written to a buffer reused across events, then copied out at its exact size.
    let properties = &mut ctx.properties;
    properties.clear();
    let mut de = serde_json::Deserializer::from_str(raw);
    let fields = match (EventSeed {
        ctx: &mut ctx.props,
        properties,
    })
    .deserialize(&mut de)
    {
        Ok(fields) => fields,
        Err(e) => {
            return Err(ctx.props.violation.take().unwrap_or_else(|| {
                let msg = format!(
                    "invalid JSON: {}",
                    json_error_message(&e, "unexpected value")
                );
                Violation::new(codes::MALFORMED_JSON, msg)
            }));
        }
    };

    let event = match fields.event {
        Some(Scalar::Str(s)) if s.is_empty() => {
            return Err(Violation::new(
                codes::MISSING_EVENT,
                "event must not be empty",
            ));
        }
        Some(Scalar::Str(s)) => s,
        None | Some(Scalar::Null) => {
            return Err(Violation::new(codes::MISSING_EVENT, "event is required"));
        }
        Some(other) => {
            let msg = format!("event must be a string, not {}", other.kind());
            return Err(Violation::new(codes::MISSING_EVENT, msg));
        }
    };
    if event.len() > limits.max_event_name_bytes {
        let msg = format!(
            "event name is {} bytes; the limit is {}",
            event.len(),
            limits.max_event_name_bytes
        );
        return Err(Violation::new(codes::EVENT_NAME_TOO_LONG, msg));
    }

    // Absent, null or empty: a cookieless event; the privacy pipeline derives the
    // visitor id from the request (it is never stored empty).
    let distinct_id = match fields.distinct_id {
        None | Some(Scalar::Null) => Cow::Borrowed(""),
        Some(Scalar::Str(s)) => s,
        Some(Scalar::U64(n)) => Cow::Owned(n.to_string()),
        Some(Scalar::I64(n)) => Cow::Owned(n.to_string()),
        Some(Scalar::F64(f)) => Cow::Owned(float_id(f)),
        Some(other) => {
            let msg = format!(
                "distinct_id must be a string or a number, not {}",
                other.kind()
            );
            return Err(Violation::new(codes::MISSING_DISTINCT_ID, msg));
        }
    };
    if distinct_id.len() > limits.max_distinct_id_bytes {
        let msg = format!(
            "distinct_id is {} bytes; the limit is {}",
            distinct_id.len(),
            limits.max_distinct_id_bytes
        );
        return Err(Violation::new(codes::DISTINCT_ID_TOO_LONG, msg));
    }

    let timestamp_ms = match fields.timestamp {
        None | Some(Scalar::Null) => Ok(now_ms),
        Some(Scalar::Str(s)) => timestamp::parse_timestamp_str(&s),
        Some(Scalar::U64(n)) => timestamp::from_epoch_int(i128::from(n)),
        Some(Scalar::I64(n)) => timestamp::from_epoch_int(i128::from(n)),
        Some(Scalar::F64(f)) => timestamp::from_epoch_float(f),
        Some(_) => Err(timestamp::wrong_type()),
    }
    .map_err(|msg| Violation::new(codes::INVALID_TIMESTAMP, msg))?;
    if timestamp_ms > now_ms.saturating_add(limits.max_future_ms) {
        let msg = format!(
            "timestamp is more than {} ms in the future",
            limits.max_future_ms
        );
        return Err(Violation::new(codes::TIMESTAMP_OUT_OF_RANGE, msg));
    }
    if timestamp_ms < now_ms.saturating_sub(limits.max_past_ms) {
        let msg = format!(
            "timestamp is more than {} ms in the past",
            limits.max_past_ms
        );
        return Err(Violation::new(codes::TIMESTAMP_OUT_OF_RANGE, msg));
    }

    let insert_id = match fields.insert_id {
        None | Some(Scalar::Null) => None,
        Some(Scalar::Str(s)) if s.is_empty() => None,
        Some(Scalar::Str(s)) if s.len() > limits.max_insert_id_bytes => {
            let msg = format!(
                "insert_id is {} bytes; the limit is {}",
                s.len(),
                limits.max_insert_id_bytes
            );
            return Err(Violation::new(codes::INVALID_INSERT_ID, msg));
        }
        Some(Scalar::Str(s)) => Some(s.into_owned()),
        Some(other) => {
            let msg = format!("insert_id must be a string, not {}", other.kind());
            return Err(Violation::new(codes::INVALID_INSERT_ID, msg));
        }
    };

    Ok(Event {
        timestamp_ms,
        event: event.into_owned(),
        distinct_id: distinct_id.into_owned(),
        insert_id,
        properties: ctx.properties.as_str().to_owned(),
        personal: None,
        received_at_ms: now_ms,
    })
}

/// A numeric distinct_id as text: integral floats print as integers (`42.0` → `42`),
/// others in Rust's shortest round-trip decimal form.
fn float_id(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        (f as i64).to_string()
    } else {
        f.to_string()
    }
}

/// One of the known top-level fields of a native event.
enum Field {
    Event,
    DistinctId,
    Timestamp,
    InsertId,
    Properties,
    /// Unknown fields are accepted and ignored (forward compatibility with SDKs that
    /// send extra metadata).
    Other,
}

impl Field {
    fn name(&self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::DistinctId => "distinct_id",
            Self::Timestamp => "timestamp",
            Self::InsertId => "insert_id",
            Self::Properties => "properties",
            Self::Other => "",
        }
    }
}

impl<'de> de::Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                Ok(match v {
                    "event" => Field::Event,
                    "distinct_id" => Field::DistinctId,
                    "timestamp" => Field::Timestamp,
                    "insert_id" => Field::InsertId,
                    "properties" => Field::Properties,
                    _ => Field::Other,
                })
            }
        }
        d.deserialize_identifier(FieldVisitor)
    }
}

/// A top-level field value, borrowed from the body where possible. Containers are
/// skipped (without recursion) and only their kind is kept, for the error message.
enum Scalar<'de> {
    Null,
    Bool,
    Str(Cow<'de, str>),
    U64(u64),
    I64(i64),
    F64(f64),
    Array,
    Object,
}

impl Scalar<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool => "a boolean",
            Self::Str(_) => "a string",
            Self::U64(_) | Self::I64(_) | Self::F64(_) => "a number",
            Self::Array => "an array",
            Self::Object => "an object",
        }
    }
}

impl<'de> de::Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::U64(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::I64(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::F64(v))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Object)
    }
}

/// The top-level fields of one event; `properties` is written straight to its output.
#[derive(Default)]
struct Fields<'de> {
    event: Option<Scalar<'de>>,
    distinct_id: Option<Scalar<'de>>,
    timestamp: Option<Scalar<'de>>,
    insert_id: Option<Scalar<'de>>,
}

struct EventSeed<'a, 'l> {
    ctx: &'a mut Ctx<'l>,
    properties: &'a mut String,
}

impl<'de> DeserializeSeed<'de> for EventSeed<'_, '_> {
    type Value = Fields<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EventSeed<'_, '_> {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Fields::default();
        let mut seen_properties = false;
        while let Some(field) = map.next_key::<Field>()? {
            let slot = match field {
                Field::Event => &mut fields.event,
                Field::DistinctId => &mut fields.distinct_id,
                Field::Timestamp => &mut fields.timestamp,
                Field::InsertId => &mut fields.insert_id,
                Field::Properties => {
                    if seen_properties {
                        return Err(duplicate(self.ctx, &field));
                    }
                    seen_properties = true;
                    map.next_value_seed(PropertiesSeed {
                        ctx: &mut *self.ctx,
                        out: &mut *self.properties,
                    })?;
                    continue;
                }
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if slot.is_some() {
                return Err(duplicate(self.ctx, &field));
            }
            *slot = Some(map.next_value::<Scalar<'de>>()?);
        }
        if !seen_properties {
            self.properties.push_str("{}");
        }
        Ok(fields)
    }
}

fn duplicate<E: de::Error>(ctx: &mut Ctx<'_>, field: &Field) -> E {
    ctx.fail(
        codes::INVALID_EVENT,
        format!("duplicate field `{}`", field.name()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-05T10:00:00Z
    pub(crate) const NOW: i64 = 1_767_607_200_000;

    fn decode_event(raw: &str, limits: &IngestLimits, now_ms: i64) -> Result<Event, Violation> {
        super::decode_event(raw, &mut EventCtx::new(limits), now_ms)
    }

    fn one(json: &str) -> Result<Event, Violation> {
        decode_event(json, &IngestLimits::default(), NOW)
    }

    fn code(json: &str) -> &'static str {
        one(json).unwrap_err().code
    }

    fn code_with(json: &str, limits: &IngestLimits) -> &'static str {
        decode_event(json, limits, NOW).unwrap_err().code
    }

    #[test]
    fn full_event_decodes_to_canonical_fields() {
        let e = one(r#"{"event":"signup","distinct_id":"user-42","timestamp":"2026-01-05T09:00:00Z",
            "insert_id":"6f1c","properties":{"plan":"pro","$current_url":"https://x.test/a"},"extra":[1]}"#)
        .unwrap();
        assert_eq!(
            e,
            Event {
                timestamp_ms: NOW - 3_600_000,
                event: "signup".into(),
                distinct_id: "user-42".into(),
                insert_id: Some("6f1c".into()),
                properties: r#"{"plan":"pro","$current_url":"https://x.test/a"}"#.into(),
                personal: None,
                received_at_ms: NOW,
            }
        );
    }

    #[test]
    fn minimal_event_gets_defaults() {
        let e = one(r#"{"distinct_id":"u","event":"a"}"#).unwrap();
        assert_eq!((e.timestamp_ms, e.received_at_ms), (NOW, NOW));
        assert_eq!(e.properties, "{}");
        assert_eq!(e.insert_id, None);
        let e = one(r#"{"event":"a","distinct_id":"u","timestamp":null,"insert_id":null,"properties":null}"#).unwrap();
        assert_eq!(
            (e.timestamp_ms, e.insert_id, e.properties.as_str()),
            (NOW, None, "{}")
        );
    }

    #[test]
    fn unknown_top_level_fields_are_ignored_even_deeply_nested() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let e = one(&format!(
            r#"{{"event":"a","distinct_id":"u","lib":{deep},"$x":{{"y":1}}}}"#
        ))
        .unwrap();
        assert_eq!(e.properties, "{}");
    }

    #[test]
    fn escaped_strings_are_unescaped() {
        let e = one(r#"{"ev\u0065nt":"sign\"up\u00e9","distinct_id":"a\\b"}"#).unwrap();
        assert_eq!(
            (e.event.as_str(), e.distinct_id.as_str()),
            ("sign\"upé", "a\\b")
        );
    }

    #[test]
    fn invalid_event_when_not_an_object_or_duplicate_field() {
        for bad in ["[]", "1", "\"e\"", "null", "true"] {
            assert_eq!(code(bad), "invalid_event", "{bad}");
        }
        assert_eq!(
            code(r#"{"event":"a","event":"b","distinct_id":"u"}"#),
            "invalid_event"
        );
        assert_eq!(
            code(r#"{"event":"a","distinct_id":"u","properties":{},"properties":{}}"#),
            "invalid_event"
        );
    }

    #[test]
    fn missing_event_when_absent_empty_or_not_a_string() {
        for bad in [
            r#"{"distinct_id":"u"}"#,
            r#"{"event":null,"distinct_id":"u"}"#,
            r#"{"event":"","distinct_id":"u"}"#,
            r#"{"event":1,"distinct_id":"u"}"#,
            r#"{"event":["a"],"distinct_id":"u"}"#,
            r#"{"event":{"a":1},"distinct_id":"u"}"#,
        ] {
            assert_eq!(code(bad), "missing_event", "{bad}");
        }
    }

    #[test]
    fn event_name_too_long() {
        let l = IngestLimits {
            max_event_name_bytes: 3,
            ..IngestLimits::default()
        };
        assert!(decode_event(r#"{"event":"abc","distinct_id":"u"}"#, &l, NOW).is_ok());
        assert_eq!(
            code_with(r#"{"event":"abcd","distinct_id":"u"}"#, &l),
            "event_name_too_long"
        );
        // Bytes, not characters.
        assert_eq!(
            code_with(r#"{"event":"éé","distinct_id":"u"}"#, &l),
            "event_name_too_long"
        );
    }

    #[test]
    fn cookieless_when_absent_or_empty_refused_when_wrong_type() {
        for cookieless in [
            r#"{"event":"a"}"#,
            r#"{"event":"a","distinct_id":null}"#,
            r#"{"event":"a","distinct_id":""}"#,
        ] {
            assert_eq!(one(cookieless).unwrap().distinct_id, "", "{cookieless}");
        }
        for bad in [
            r#"{"event":"a","distinct_id":true}"#,
            r#"{"event":"a","distinct_id":[1]}"#,
            r#"{"event":"a","distinct_id":{}}"#,
        ] {
            assert_eq!(code(bad), "missing_distinct_id", "{bad}");
        }
    }

    #[test]
    fn numeric_distinct_id_becomes_its_decimal_string() {
        let id = |v: &str| {
            one(&format!(r#"{{"event":"a","distinct_id":{v}}}"#))
                .unwrap()
                .distinct_id
        };
        assert_eq!(id("42"), "42");
        assert_eq!(id("-7"), "-7");
        assert_eq!(id("18446744073709551615"), "18446744073709551615");
        assert_eq!(id("42.0"), "42");
        assert_eq!(id("1.5"), "1.5");
        assert_eq!(id("1e3"), "1000");
    }

    #[test]
    fn distinct_id_too_long() {
        let l = IngestLimits {
            max_distinct_id_bytes: 3,
            ..IngestLimits::default()
        };
        assert!(decode_event(r#"{"event":"a","distinct_id":"abc"}"#, &l, NOW).is_ok());
        assert_eq!(
            code_with(r#"{"event":"a","distinct_id":"abcd"}"#, &l),
            "distinct_id_too_long"
        );
        assert_eq!(
            code_with(r#"{"event":"a","distinct_id":1234}"#, &l),
            "distinct_id_too_long"
        );
        assert_eq!(
            code(r#"{"event":"a","distinct_id":1e300}"#),
            "distinct_id_too_long"
        );
    }

    #[test]
    fn invalid_timestamp_forms() {
        for bad in [
            r#""yesterday""#,
            "true",
            "[1]",
            "{}",
            r#""2026-02-30T00:00:00Z""#,
            "1e300",
        ] {
            let json = format!(r#"{{"event":"a","distinct_id":"u","timestamp":{bad}}}"#);
            assert_eq!(code(&json), "invalid_timestamp", "{bad}");
        }
    }

    #[test]
    fn timestamp_forms_on_events() {
        for (v, want) in [
            (r#""2026-01-05T10:00:00Z""#, NOW),
            (r#""2026-01-05 10:00:00""#, NOW),
            ("1767607200", NOW),
            ("1767607200000", NOW),
            ("1767607200.25", NOW + 250),
            (r#""1767607200""#, NOW),
        ] {
            let e = one(&format!(
                r#"{{"event":"a","distinct_id":"u","timestamp":{v}}}"#
            ))
            .unwrap();
            assert_eq!(e.timestamp_ms, want, "{v}");
        }
    }

    #[test]
    fn timestamp_out_of_range_future_and_past() {
        let l = IngestLimits::default();
        let at = |ms: i64| format!(r#"{{"event":"a","distinct_id":"u","timestamp":{ms}}}"#);
        assert!(decode_event(&at(NOW + l.max_future_ms), &l, NOW).is_ok());
        assert_eq!(
            code(&at(NOW + l.max_future_ms + 1)),
            "timestamp_out_of_range"
        );
        assert!(decode_event(&at(NOW - l.max_past_ms), &l, NOW).is_ok());
        assert_eq!(code(&at(NOW - l.max_past_ms - 1)), "timestamp_out_of_range");
        // Saturating arithmetic at the ends of i64.
        assert!(decode_event(&at(i64::MAX), &l, i64::MAX).is_ok());
        assert!(decode_event(&at(i64::MIN), &l, i64::MIN).is_ok());
        assert_eq!(code(&at(i64::MIN)), "timestamp_out_of_range");
    }

    #[test]
    fn invalid_insert_id_wrong_type_or_too_long() {
        let l = IngestLimits {
            max_insert_id_bytes: 4,
            ..IngestLimits::default()
        };
        let with = |v: &str| format!(r#"{{"event":"a","distinct_id":"u","insert_id":{v}}}"#);
        assert_eq!(
            decode_event(&with(r#""abcd""#), &l, NOW)
                .unwrap()
                .insert_id
                .as_deref(),
            Some("abcd")
        );
        assert_eq!(code_with(&with(r#""abcde""#), &l), "invalid_insert_id");
        assert_eq!(code_with(&with("12"), &l), "invalid_insert_id");
        assert_eq!(code_with(&with("{}"), &l), "invalid_insert_id");
    }

    #[test]
    fn empty_insert_id_is_no_insert_id() {
        // Storing Some("") would collapse every such event into one on dedup.
        let e = one(r#"{"event":"a","distinct_id":"u","insert_id":""}"#).unwrap();
        assert_eq!(e.insert_id, None);
    }

    #[test]
    fn invalid_properties_and_property_limits_on_events() {
        let with = |p: &str| format!(r#"{{"event":"a","distinct_id":"u","properties":{p}}}"#);
        assert_eq!(code(&with("[]")), "invalid_properties");
        assert_eq!(code(&with("\"x\"")), "invalid_properties");
        assert_eq!(code(&with(r#"{"":1}"#)), "invalid_property_key");
        assert_eq!(
            code(&with(&format!(r#"{{"{}":1}}"#, "k".repeat(257)))),
            "property_key_too_long"
        );
        assert_eq!(
            code(&with(&format!(
                r#"{{"k":"{}"}}"#,
                "v".repeat(16 * 1024 + 1)
            ))),
            "property_value_too_long"
        );
        assert_eq!(code(&with(r#"{"a":[[[[[1]]]]]}"#)), "properties_too_deep");
        let many: Vec<String> = (0..1001).map(|i| format!("\"k{i}\":1")).collect();
        assert_eq!(
            code(&with(&format!("{{{}}}", many.join(",")))),
            "too_many_properties"
        );
    }

    #[test]
    fn lone_surrogate_escapes_become_replacement_characters() {
        let e = one(r#"{"event":"a\ud83d","distinct_id":"\udc00u","properties":{"k\ud800":["\ud83d\ude00\ud83d"]}}"#).unwrap();
        assert_eq!(e.event, "a\u{fffd}");
        assert_eq!(e.distinct_id, "\u{fffd}u");
        assert_eq!(e.properties, "{\"k\u{fffd}\":[\"😀\u{fffd}\"]}");
    }

    #[test]
    fn number_out_of_range_is_malformed_json_for_that_event() {
        assert_eq!(
            code(r#"{"event":"a","distinct_id":"u","properties":{"n":1e400}}"#),
            "malformed_json"
        );
        assert_eq!(
            code(r#"{"event":"a","distinct_id":"u","x":1,"timestamp":-1e999}"#),
            "malformed_json"
        );
    }

    #[test]
    fn rejection_messages_do_not_echo_values() {
        let l = IngestLimits {
            max_event_name_bytes: 3,
            max_distinct_id_bytes: 3,
            ..IngestLimits::default()
        };
        for json in [
            r#"{"event":"secret-name","distinct_id":"u"}"#,
            r#"{"event":"a","distinct_id":"secret-id"}"#,
            r#"{"event":"a","distinct_id":"u","timestamp":"secret"}"#,
            r#"{"event":"a","distinct_id":"u","properties":"secret"}"#,
            r#"{"event":"a","distinct_id":"u","properties":{"secret":1e999}}"#,
        ] {
            let v = decode_event(json, &l, NOW).unwrap_err();
            assert!(!v.message.contains("secret"), "{json} -> {}", v.message);
        }
    }
}
