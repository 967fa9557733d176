//! The `properties` object: checked against the limits while it is transcoded to compact
//! canonical JSON, in one streaming pass with no intermediate `Value` tree.
//!
//! Canonical form: no insignificant whitespace, keys in the order received, strings
//! re-escaped minimally (as serde_json writes them: `\"`, `\\`, `\b\f\n\r\t`, other
//! control characters as `\u00XX`, everything else literal UTF-8), numbers as serde_json
//! reads them (integers exact within i64/u64, all others as the nearest f64 printed in
//! shortest round-trip form). Duplicate keys in any object are refused, so the text
//! means the same to every JSON reader.
//!
//! Violations are reported through [`Ctx::violation`]: serde only lets a visitor return
//! an opaque error, so the specific code and message travel on the side.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use minim_core::props::push_json_str;

use crate::IngestLimits;
use crate::error::{Violation, codes};

/// Limits in force, the first violation found, and scratch space reused across the
/// objects and events of one request.
pub(crate) struct Ctx<'l> {
    pub limits: &'l IngestLimits,
    pub violation: Option<Violation>,
    /// The keys of the objects being written, innermost object last: duplicate
    /// detection without allocating per object.
    keys: Vec<KeySpan>,
}

impl<'l> Ctx<'l> {
    pub fn new(limits: &'l IngestLimits) -> Self {
        Self {
            limits,
            violation: None,
            keys: Vec::new(),
        }
    }

    /// Ready for the next event (the scratch keeps its capacity).
    pub fn reset(&mut self) {
        self.violation = None;
        self.keys.clear();
    }

    /// Records a violation and returns the error that aborts the parse.
    pub fn fail<E: de::Error>(&mut self, code: &'static str, message: String) -> E {
        if self.violation.is_none() {
            self.violation = Some(Violation { code, message });
        }
        E::custom(code)
    }
}

/// Seed for the value of the top-level `properties` field: appends the canonical object
/// (`{}` for `null`) to `out`.
pub(crate) struct PropertiesSeed<'a, 'l> {
    pub ctx: &'a mut Ctx<'l>,
    pub out: &'a mut String,
}

impl<'de> DeserializeSeed<'de> for PropertiesSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl PropertiesSeed<'_, '_> {
    fn not_object<E: de::Error>(self, kind: &str) -> E {
        self.ctx.fail(
            codes::INVALID_PROPERTIES,
            format!("properties must be a JSON object, not {kind}"),
        )
    }
}

impl<'de> Visitor<'de> for PropertiesSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.out.push_str("{}");
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        write_object(map, self.ctx, self.out, 1)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(self.not_object("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(self.not_object("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(self.not_object("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(self.not_object("a number"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(self.not_object("a string"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.not_object("an array"))
    }
}

/// Writes one object whose keys are being read from `map`; `depth` is its own depth.
fn write_object<'de, A: MapAccess<'de>>(
    mut map: A,
    ctx: &mut Ctx<'_>,
    out: &mut String,
    depth: usize,
) -> Result<(), A::Error> {
    let limits = ctx.limits;
    let base = ctx.keys.len();
    let mut count = 0;
    out.push('{');
    while let Some(key) = map.next_key_seed(KeySeed)? {
        if key.is_empty() {
            let msg = "property keys must not be empty".to_owned();
            return Err(ctx.fail(codes::INVALID_PROPERTY_KEY, msg));
        }
        if key.len() > limits.max_key_bytes {
            let msg = format!(
                "a property key is {} bytes; the limit is {}",
                key.len(),
                limits.max_key_bytes
            );
            return Err(ctx.fail(codes::PROPERTY_KEY_TOO_LONG, msg));
        }
        if depth == 1 && count == limits.max_properties_per_event {
            let msg = format!(
                "properties has more than {} keys",
                limits.max_properties_per_event
            );
            return Err(ctx.fail(codes::TOO_MANY_PROPERTIES, msg));
        }
        if count > 0 {
            out.push(',');
        }
        let start = out.len();
        push_str_literal(out, &key, matches!(key, Cow::Borrowed(_)));
        ctx.keys.push(KeySpan::new(out, start));
        out.push(':');
        if let Err(e) = map.next_value_seed(ValueSeed {
            ctx: &mut *ctx,
            out: &mut *out,
            depth,
        }) {
            if depth == 1 {
                name_property(ctx, &key);
            }
            return Err(e);
        }
        count += 1;
    }
    // Nested objects have truncated the scratch back to where they found it, so the
    // spans from `base` on are exactly this object's keys.
    let duplicate = has_duplicate(&ctx.keys[base..], out.as_bytes());
    ctx.keys.truncate(base);
    if duplicate {
        return Err(ctx.fail(
            codes::INVALID_PROPERTY_KEY,
            "duplicate property key".to_owned(),
        ));
    }
    out.push('}');
    Ok(())
}

/// Adds the top-level property a nested violation happened in to its message, when the
/// key is short and plain enough to be a safe description (keys are not values, but
/// they are still client data: nothing long or unusual is echoed).
fn name_property(ctx: &mut Ctx<'_>, key: &str) {
    let plain = key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"$_-.:/ ".contains(&b));
    if let Some(v) = ctx.violation.as_mut().filter(|_| plain) {
        let _ = write!(v.message, " (in property `{key}`)");
    }
}

/// A key as written to the output (quotes included), with a hash of its text.
#[derive(Clone, Copy)]
struct KeySpan {
    start: usize,
    end: usize,
    hash: u64,
}

impl KeySpan {
    /// The key written to `out` from `start` to its end.
    fn new(out: &str, start: usize) -> Self {
        let text = out.as_bytes().get(start..).unwrap_or_default();
        Self {
            start,
            end: out.len(),
            hash: key_hash(text),
        }
    }

    fn text<'o>(&self, out: &'o [u8]) -> &'o [u8] {
        out.get(self.start..self.end).unwrap_or_default()
    }
}

/// A constant-time hash of a key's text: its length and its first and last 8 bytes.
/// Exact (collision-free) for keys of up to 16 bytes, which most property names are.
fn key_hash(text: &[u8]) -> u64 {
    let mut head = [0u8; 8];
    let mut tail = [0u8; 8];
    let n = text.len().min(8);
    head[..n].copy_from_slice(&text[..n]);
    tail[..n].copy_from_slice(&text[text.len() - n..]);
    let mix = |h: u64, v: u64| (h ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
    let h = mix(text.len() as u64, u64::from_le_bytes(head));
    mix(h, u64::from_le_bytes(tail))
}

/// Whether two of `keys` (spans of `out`) are equal. Keys are compared in their written,
/// canonically escaped form, which is one-to-one with their value. A 64-bit mask of
/// seen hash buckets makes the common case (no duplicate) one pass; only a bucket
/// collision compares hashes, and only equal hashes compare bytes.
fn has_duplicate(keys: &[KeySpan], out: &[u8]) -> bool {
    let mut seen = 0u64;
    for (i, a) in keys.iter().enumerate() {
        let bit = 1u64 << (a.hash >> 58);
        if seen & bit != 0
            && keys[..i]
                .iter()
                .any(|b| a.hash == b.hash && a.text(out) == b.text(out))
        {
            return true;
        }
        seen |= bit;
    }
    false
}

/// An object key, borrowed from the input unless it contained escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// Any value inside `properties`; `depth` is the depth of the container holding it.
struct ValueSeed<'a, 'l> {
    ctx: &'a mut Ctx<'l>,
    out: &'a mut String,
    depth: usize,
}

impl ValueSeed<'_, '_> {
    /// `verbatim`: the string was borrowed from the input (see [`push_str_literal`]).
    fn string<E: de::Error>(self, v: &str, verbatim: bool) -> Result<(), E> {
        let max = self.ctx.limits.max_string_value_bytes;
        if v.len() > max {
            let msg = format!("a string value is {} bytes; the limit is {max}", v.len());
            return Err(self.ctx.fail(codes::PROPERTY_VALUE_TOO_LONG, msg));
        }
        push_str_literal(self.out, v, verbatim);
        Ok(())
    }

    /// Depth of a container opened here, or the too-deep violation.
    fn enter<E: de::Error>(&mut self) -> Result<usize, E> {
        let depth = self.depth + 1;
        let max = self.ctx.limits.max_nesting_depth;
        if depth > max {
            let msg = format!(
                "properties nest deeper than {max} levels (the properties object is level 1)"
            );
            return Err(self.ctx.fail(codes::PROPERTIES_TOO_DEEP, msg));
        }
        Ok(depth)
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.out.push_str("null");
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.out.push_str(if v { "true" } else { "false" });
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        if v < 0 {
            self.out.push('-');
        }
        push_u64(self.out, v.unsigned_abs());
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        push_u64(self.out, v);
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        // serde_json's own shortest round-trip form (ryu); exponent notation for very
        // large or small magnitudes keeps it no longer than the number it was read from.
        match serde_json::Number::from_f64(v) {
            Some(n) => {
                let _ = write!(self.out, "{n}");
            }
            None => self.out.push_str("null"), // non-finite: unreachable from JSON input
        }
        Ok(())
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<(), E> {
        self.string(v, true)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        // Not borrowed: the input had escapes, so the output may need some.
        self.string(v, false)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let depth = self.enter()?;
        self.out.push('[');
        let mut first = true;
        loop {
            let mark = self.out.len();
            if !first {
                self.out.push(',');
            }
            let element = ValueSeed {
                ctx: &mut *self.ctx,
                out: &mut *self.out,
                depth,
            };
            if seq.next_element_seed(element)?.is_none() {
                self.out.truncate(mark);
                break;
            }
            first = false;
        }
        self.out.push(']');
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, map: A) -> Result<(), A::Error> {
        let depth = self.enter()?;
        write_object(map, self.ctx, self.out, depth)
    }
}

/// Appends `v` in decimal.
fn push_u64(out: &mut String, v: u64) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// Appends a string read from the input as a JSON string literal. A string serde_json
/// could borrow had no escape sequence in the input, so by the JSON grammar it holds no
/// `"`, `\\` or control character and is copied verbatim; only unescaped (owned)
/// strings are scanned.
fn push_str_literal(out: &mut String, s: &str, verbatim: bool) {
    if verbatim {
        debug_assert!(
            !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'),
            "{s:?}"
        );
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        push_json_str(out, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(json: &str, limits: &IngestLimits) -> Result<String, Violation> {
        let mut ctx = Ctx::new(limits);
        let mut out = String::new();
        let mut de = serde_json::Deserializer::from_str(json);
        match (PropertiesSeed {
            ctx: &mut ctx,
            out: &mut out,
        })
        .deserialize(&mut de)
        {
            Ok(()) => Ok(out),
            Err(e) => Err(ctx
                .violation
                .unwrap_or_else(|| panic!("no violation recorded for {e}"))),
        }
    }

    fn code(json: &str, limits: &IngestLimits) -> &'static str {
        canon(json, limits).unwrap_err().code
    }

    #[test]
    fn properties_are_compacted_keeping_key_order() {
        let l = IngestLimits::default();
        let got = canon(
            " { \"z\" : 1 ,\n \"a\": [ true, null, -2, 1.5, {\"k\":\"v\"} ], \"m\": {} } ",
            &l,
        )
        .unwrap();
        assert_eq!(got, r#"{"z":1,"a":[true,null,-2,1.5,{"k":"v"}],"m":{}}"#);
        assert_eq!(canon("null", &l).unwrap(), "{}");
        assert_eq!(canon("{}", &l).unwrap(), "{}");
        assert_eq!(canon(r#"{"a":[]}"#, &l).unwrap(), r#"{"a":[]}"#);
    }

    #[test]
    fn properties_strings_and_numbers_are_canonical() {
        let l = IngestLimits::default();
        let got = canon(
            r#"{"s":"\u0041\/\u00e9\n\u0001\"\\","e":1E2,"big":18446744073709551615,"f":1.0e-7}"#,
            &l,
        )
        .unwrap();
        assert_eq!(
            got,
            r#"{"s":"A/é\n\u0001\"\\","e":100.0,"big":18446744073709551615,"f":1e-7}"#
        );
        // The canonical text reads back to the same value.
        let a: serde_json::Value = serde_json::from_str(&got).unwrap();
        assert_eq!(a["e"], serde_json::json!(100.0));
    }

    #[test]
    fn push_u64_matches_display() {
        for v in [
            0,
            1,
            9,
            10,
            99,
            100,
            12_345,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut out = String::new();
            push_u64(&mut out, v);
            assert_eq!(out, v.to_string());
        }
        let l = IngestLimits::default();
        assert_eq!(
            canon(r#"{"a":[-9223372036854775808,-1,0]}"#, &l).unwrap(),
            r#"{"a":[-9223372036854775808,-1,0]}"#
        );
    }

    #[test]
    fn duplicate_keys_are_found_among_many_and_long_keys() {
        let l = IngestLimits::default();
        // Long keys that share their first and last 8 bytes and their length.
        let long = |c: char| format!("\"prefix00{c}{}suffix00\"", "x".repeat(20));
        let distinct: Vec<String> = ('a'..='z').map(|c| format!("{}:1", long(c))).collect();
        assert!(canon(&format!("{{{}}}", distinct.join(",")), &l).is_ok());
        let dup = format!("{{{},{}:2}}", distinct.join(","), long('q'));
        assert_eq!(code(&dup, &l), "invalid_property_key");
        let many: Vec<String> = (0..999).map(|i| format!("\"k{i}\":{i}")).collect();
        assert!(canon(&format!("{{{}}}", many.join(",")), &l).is_ok());
        let dup = format!("{{{},\"k998\":0}}", many.join(","));
        assert_eq!(code(&dup, &l), "invalid_property_key");
    }

    #[test]
    fn properties_not_an_object_is_invalid_properties() {
        let l = IngestLimits::default();
        for bad in ["[]", "1", "\"x\"", "true", "-1", "1.5"] {
            assert_eq!(code(bad, &l), "invalid_properties", "{bad}");
        }
    }

    #[test]
    fn too_many_properties_counts_top_level_keys_only() {
        let l = IngestLimits {
            max_properties_per_event: 2,
            ..IngestLimits::default()
        };
        assert!(canon(r#"{"a":1,"b":{"x":1,"y":2,"z":3}}"#, &l).is_ok());
        assert_eq!(code(r#"{"a":1,"b":2,"c":3}"#, &l), "too_many_properties");
    }

    #[test]
    fn property_keys_empty_too_long_or_duplicate_are_refused() {
        let l = IngestLimits {
            max_key_bytes: 4,
            ..IngestLimits::default()
        };
        assert!(canon(r#"{"abcd":1}"#, &l).is_ok());
        assert_eq!(code(r#"{"abcde":1}"#, &l), "property_key_too_long");
        assert_eq!(code(r#"{"a":{"abcde":1}}"#, &l), "property_key_too_long");
        assert_eq!(code(r#"{"":1}"#, &l), "invalid_property_key");
        assert_eq!(code(r#"{"a":1,"a":2}"#, &l), "invalid_property_key");
        assert_eq!(code(r#"{"a":1,"\u0061":2}"#, &l), "invalid_property_key");
        assert_eq!(code(r#"{"n":{"b":1,"b":1}}"#, &l), "invalid_property_key");
        let many: Vec<String> = (0..20).map(|i| format!("\"k{i}\":{i}")).collect();
        assert!(canon(&format!("{{{}}}", many.join(",")), &l).is_ok());
        assert_eq!(
            code(&format!("{{{},\"k7\":0}}", many.join(",")), &l),
            "invalid_property_key"
        );
    }

    #[test]
    fn property_value_too_long_applies_at_any_depth_after_unescaping() {
        let l = IngestLimits {
            max_string_value_bytes: 3,
            ..IngestLimits::default()
        };
        assert!(canon(r#"{"a":"abc","b":["xyz"],"c":"\u0041\u0042\u0043"}"#, &l).is_ok());
        assert_eq!(code(r#"{"a":"abcd"}"#, &l), "property_value_too_long");
        assert_eq!(code(r#"{"a":[["abcd"]]}"#, &l), "property_value_too_long");
        let v = canon(r#"{"plan":{"x":"abcd"}}"#, &l).unwrap_err();
        assert_eq!(
            v.message,
            "a string value is 4 bytes; the limit is 3 (in property `plan`)"
        );
    }

    #[test]
    fn violation_messages_never_echo_values_or_odd_keys() {
        let l = IngestLimits {
            max_string_value_bytes: 3,
            ..IngestLimits::default()
        };
        let v = canon(r#"{"secret@example.com":"hunter2"}"#, &l).unwrap_err();
        assert!(
            !v.message.contains("hunter2") && !v.message.contains("secret"),
            "{}",
            v.message
        );
    }

    #[test]
    fn properties_too_deep_counts_the_properties_object_as_level_one() {
        let l = IngestLimits {
            max_nesting_depth: 5,
            ..IngestLimits::default()
        };
        assert!(canon(r#"{"a":{"b":{"c":{"d":{"e":1}}}}}"#, &l).is_ok());
        assert!(canon(r#"{"a":[[[[1]]]]}"#, &l).is_ok());
        assert_eq!(
            code(r#"{"a":{"b":{"c":{"d":{"e":{}}}}}}"#, &l),
            "properties_too_deep"
        );
        assert_eq!(code(r#"{"a":[[[[[]]]]]}"#, &l), "properties_too_deep");
        let l1 = IngestLimits {
            max_nesting_depth: 1,
            ..IngestLimits::default()
        };
        assert!(canon(r#"{"a":1}"#, &l1).is_ok());
        assert_eq!(code(r#"{"a":[]}"#, &l1), "properties_too_deep");
    }

    #[test]
    fn properties_at_the_depth_ceiling_fit_a_small_thread_stack() {
        use crate::limits::MAX_NESTING_DEPTH_CEILING as MAX;
        // tokio's default worker stack is 2 MiB; this must hold even in debug builds.
        let handle = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                let l = IngestLimits {
                    max_nesting_depth: MAX,
                    ..IngestLimits::default()
                };
                let ok = format!("{{\"a\":{}1{}}}", "[".repeat(MAX - 1), "]".repeat(MAX - 1));
                assert_eq!(canon(&ok, &l).unwrap(), ok);
                let deep = format!("{{\"a\":{}1{}}}", "[".repeat(MAX), "]".repeat(MAX));
                assert_eq!(code(&deep, &l), "properties_too_deep");
            })
            .unwrap();
        handle.join().unwrap();
    }

    #[test]
    fn properties_nested_100k_deep_fail_cleanly() {
        let l = IngestLimits::default();
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(code(&deep, &l), "properties_too_deep");
    }
}
