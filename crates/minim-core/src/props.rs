//! Property values: how an event's `properties` text is read by filters, breakdowns and maths.
//!
//! - Properties are the top-level keys of the event's `properties` JSON object (no nested
//!   paths). Text that is not a JSON object (never produced by ingest) reads as `{}`.
//! - A property is *set* when present and not JSON `null`.
//! - Its *string form* ([`value_string`]) is what breakdowns group by and what `eq`,
//!   `neq`, `in`, `contains` and `regex` compare: a string as-is; any other value as
//!   its compact JSON text as serde_json writes it after parsing (`42`, `1.5`, `true`,
//!   `[1,2]`; so `1.50` in the input reads `1.5` and `1e3` reads `1000.0`).
//! - Its *numeric value* ([`value_number`]) is what `gt`, `lt` and the property maths use:
//!   JSON numbers only, as f64; strings, even numeric-looking ones, are not numbers.

use serde_json::{Map, Value};

pub type Properties = Map<String, Value>;

/// The JSON value a property reads as for a reader who may not see it: stored in place of
/// a personal value (see [`crate::Event::personal`]) and put in place of any restricted
/// property's value at query time.
pub const REDACTED: &str = "\"[redacted]\"";

/// `properties` with the entries of `personal` (both JSON object texts) in place: an entry
/// of `personal` replaces the one of the same name (its [`REDACTED`] placeholder) and is
/// appended if there is none.
pub fn merge_personal(properties: &str, personal: &str) -> String {
    merge_canonical(properties, personal).unwrap_or_else(|| {
        let mut merged = parse_properties(properties);
        merged.extend(parse_properties(personal));
        Value::Object(merged).to_string()
    })
}

/// [`merge_personal`] over canonical compact text, without parsing values; `None` when
/// either text is not canonical.
fn merge_canonical(properties: &str, personal: &str) -> Option<String> {
    let personal: Vec<(&str, &str)> = Entries::new(personal)?.collect::<Option<_>>()?;
    let mut used = vec![false; personal.len()];
    let mut out = String::with_capacity(properties.len() + personal.len());
    out.push('{');
    let push = |out: &mut String, key: &str, value: &str| {
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(key);
        out.push(':');
        out.push_str(value);
    };
    for entry in Entries::new(properties)? {
        let (key, value) = entry?;
        let value = match personal.iter().position(|(k, _)| *k == key) {
            Some(i) => {
                used[i] = true;
                personal[i].1
            }
            None => value,
        };
        push(&mut out, key, value);
    }
    for ((key, value), used) in personal.iter().zip(&used) {
        if !used {
            push(&mut out, key, value);
        }
    }
    out.push('}');
    Some(out)
}

/// Parses an event's `properties` text; anything but a JSON object reads as empty.
pub fn parse_properties(text: &str) -> Properties {
    serde_json::from_str::<Properties>(text).unwrap_or_default()
}

/// The value of a set property (`None` when absent or `null`).
pub fn get<'a>(props: &'a Properties, name: &str) -> Option<&'a Value> {
    props.get(name).filter(|v| !v.is_null())
}

/// The string form of a value; `None` for `null`.
pub fn value_string(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The numeric value of a value: JSON numbers only.
pub fn value_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64().filter(|x| x.is_finite()),
        _ => None,
    }
}

/// The string form of property `name`, `None` when it is not set.
pub fn property_string(props: &Properties, name: &str) -> Option<String> {
    get(props, name).and_then(value_string)
}

/// A property name prepared for [`RawLookup::find`]: its JSON-escaped, quoted form as it
/// appears in canonical properties text.
#[derive(Debug, Clone)]
pub struct RawLookup {
    quoted: String,
}

/// What [`RawLookup::find`] found in one event's properties text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawValue<'a> {
    /// The property is absent or `null`.
    Unset,
    /// A string without escapes: its contents, borrowed.
    Str(&'a str),
    /// Any other value (escaped string, number, bool, array, object): its JSON text.
    Json(&'a str),
}

impl<'a> RawValue<'a> {
    /// Classifies a value's raw JSON text.
    fn of(raw: &'a str) -> Self {
        match raw {
            "null" => RawValue::Unset,
            _ if raw.len() >= 2 && raw.starts_with('"') && !raw.contains('\\') => {
                RawValue::Str(&raw[1..raw.len() - 1])
            }
            _ => RawValue::Json(raw),
        }
    }

    /// The string form ([`value_string`]); `None` when unset.
    pub fn string(self) -> Option<std::borrow::Cow<'a, str>> {
        match self {
            RawValue::Unset => None,
            RawValue::Str(s) => Some(std::borrow::Cow::Borrowed(s)),
            RawValue::Json(raw) => serde_json::from_str::<Value>(raw)
                .ok()
                .as_ref()
                .and_then(value_string)
                .map(std::borrow::Cow::Owned),
        }
    }
}

/// Several properties read from one walk over each event's text (the per-name
/// [`RawLookup`] walks the text once per name).
#[derive(Debug, Clone)]
pub struct MultiLookup {
    lookups: Vec<RawLookup>,
    /// Quoted name → positions in `lookups` (a name given twice fills both).
    index: std::collections::HashMap<String, Vec<usize>>,
}

impl MultiLookup {
    pub fn new(names: &[String]) -> Self {
        let lookups: Vec<RawLookup> = names.iter().map(|n| RawLookup::new(n)).collect();
        let mut index: std::collections::HashMap<String, Vec<usize>> = Default::default();
        for (i, l) in lookups.iter().enumerate() {
            index.entry(l.quoted.clone()).or_default().push(i);
        }
        Self { lookups, index }
    }

    /// The string forms of the names in `text`, in the order given to [`Self::new`].
    pub fn strings<'a>(&self, text: &'a str) -> Vec<Option<std::borrow::Cow<'a, str>>> {
        let mut out = vec![None; self.lookups.len()];
        let walked = Entries::new(text).and_then(|entries| {
            for entry in entries {
                let (key, raw) = entry?;
                for i in self.index.get(key).into_iter().flatten() {
                    out[*i] = RawValue::of(raw).string();
                }
            }
            Some(())
        });
        if walked.is_none() {
            // Not canonical text: the per-name lookups fall back to parsing.
            for (slot, lookup) in out.iter_mut().zip(&self.lookups) {
                *slot = lookup.string(text);
            }
        }
        out
    }
}

impl RawLookup {
    pub fn new(name: &str) -> Self {
        Self {
            quoted: serde_json::to_string(name).unwrap_or_default(),
        }
    }

    /// Finds the property in `text` without parsing the whole object.
    ///
    /// Ingest stores canonical text (compact, keys unique, minimal escapes: see
    /// `minim-ingest`), which this scanner walks key by key, skipping values. Text it
    /// does not understand returns `None`: the caller then falls back to
    /// [`parse_properties`], so the answer is always the one the definitions above give.
    pub fn find<'a>(&self, text: &'a str) -> Option<RawValue<'a>> {
        for entry in Entries::new(text)? {
            let (key, raw) = entry?;
            if key == self.quoted {
                return Some(RawValue::of(raw));
            }
        }
        Some(RawValue::Unset)
    }

    /// The string form of the property in `text` ([`property_string`]).
    pub fn string<'a>(&self, text: &'a str) -> Option<std::borrow::Cow<'a, str>> {
        match self.find(text) {
            Some(found) => found.string(),
            None => property_string(&parse_properties(text), self.name()?.as_str())
                .map(std::borrow::Cow::Owned),
        }
    }

    /// The numeric value of the property in `text` ([`value_number`]).
    pub fn number(&self, text: &str) -> Option<f64> {
        match self.find(text) {
            Some(RawValue::Unset | RawValue::Str(_)) => None,
            Some(RawValue::Json(raw)) => {
                let first = raw.as_bytes().first()?;
                if *first == b'-' || first.is_ascii_digit() {
                    serde_json::from_str::<Value>(raw)
                        .ok()
                        .as_ref()
                        .and_then(value_number)
                } else {
                    None
                }
            }
            None => get(&parse_properties(text), self.name()?.as_str()).and_then(value_number),
        }
    }

    fn name(&self) -> Option<String> {
        serde_json::from_str(&self.quoted).ok()
    }
}

/// The names of the set properties (present and not `null`) in `text`, in text order.
pub fn set_names(text: &str) -> Vec<std::borrow::Cow<'_, str>> {
    let scanned: Option<Vec<_>> = Entries::new(text).and_then(|entries| {
        entries
            .filter(|e| !matches!(e, Some((_, "null"))))
            .map(|e| {
                let (key, _) = e?;
                let inner = &key[1..key.len() - 1];
                Some(if inner.contains('\\') {
                    std::borrow::Cow::Owned(serde_json::from_str::<String>(key).ok()?)
                } else {
                    std::borrow::Cow::Borrowed(inner)
                })
            })
            .collect()
    });
    scanned.unwrap_or_else(|| {
        parse_properties(text)
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, _)| std::borrow::Cow::Owned(k))
            .collect()
    })
}

/// The top-level entries of canonical properties text as (quoted key, raw value) text,
/// without parsing values. An item is `None` where the text is not canonical compact
/// JSON (iteration stops there); [`Entries::new`] is `None` when it is not an object.
struct Entries<'a> {
    text: &'a str,
    at: usize,
    done: bool,
}

impl<'a> Entries<'a> {
    fn new(text: &'a str) -> Option<Self> {
        let b = text.as_bytes();
        if b.first() != Some(&b'{') {
            return None;
        }
        if b.get(1) == Some(&b'}') {
            return (b.len() == 2).then_some(Self {
                text,
                at: 2,
                done: true,
            });
        }
        Some(Self {
            text,
            at: 1,
            done: false,
        })
    }

    fn entry(&mut self) -> Option<(&'a str, &'a str)> {
        let b = self.text.as_bytes();
        let i = self.at;
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = skip_string(b, i)?;
        if b.get(key_end) != Some(&b':') {
            return None;
        }
        let value_end = skip_value(b, key_end + 1)?;
        match b.get(value_end) {
            Some(b',') => self.at = value_end + 1,
            Some(b'}') if value_end + 1 == b.len() => self.done = true,
            _ => return None,
        }
        Some((
            self.text.get(i..key_end)?,
            self.text.get(key_end + 1..value_end)?,
        ))
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Option<(&'a str, &'a str)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let entry = self.entry();
        if entry.is_none() {
            self.done = true;
        }
        Some(entry)
    }
}

/// End (exclusive) of the JSON string starting at `b[start] == '"'`.
pub fn skip_string(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        let off = memchr2(b'"', b'\\', b.get(i..)?)?;
        i += off;
        if b[i] == b'\\' {
            i += 2;
        } else {
            return Some(i + 1);
        }
    }
}

/// End (exclusive) of the compact JSON value starting at `start` (`None` when the text
/// is not well-formed there).
pub fn skip_value(b: &[u8], start: usize) -> Option<usize> {
    match b.get(start)? {
        b'"' => skip_string(b, start),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = start;
            loop {
                match b.get(i)? {
                    b'"' => {
                        i = skip_string(b, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let rest = b.get(start..)?;
            let len = rest
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']'))
                .unwrap_or(rest.len());
            (len > 0).then_some(start + len)
        }
    }
}

/// Appends `s` as a JSON string literal, escaping exactly what serde_json escapes.
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // `b` is ASCII, so `i` is a char boundary.
        out.push_str(&s[start..i]);
        if short.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(short);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

fn memchr2(a: u8, c: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|x| *x == a || *x == c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_json_str_matches_serde_json() {
        let all: String = (0u32..0x80)
            .filter_map(char::from_u32)
            .chain(['é', '\u{2028}', '😀'])
            .collect();
        let mut out = String::new();
        push_json_str(&mut out, &all);
        assert_eq!(out, serde_json::to_string(&all).unwrap());
    }

    #[test]
    fn string_forms() {
        let p = parse_properties(
            r#"{"s":"pro","i":42,"f":1.50,"b":true,"n":null,"a":[1,"x"],"o":{"k":1}}"#,
        );
        assert_eq!(property_string(&p, "s").as_deref(), Some("pro"));
        assert_eq!(property_string(&p, "i").as_deref(), Some("42"));
        assert_eq!(property_string(&p, "f").as_deref(), Some("1.5"));
        assert_eq!(property_string(&p, "b").as_deref(), Some("true"));
        assert_eq!(property_string(&p, "n"), None);
        assert_eq!(property_string(&p, "missing"), None);
        assert_eq!(property_string(&p, "a").as_deref(), Some(r#"[1,"x"]"#));
        assert_eq!(property_string(&p, "o").as_deref(), Some(r#"{"k":1}"#));
        assert_eq!(get(&p, "i").and_then(value_number), Some(42.0));
        assert_eq!(get(&p, "s").and_then(value_number), None);
        assert!(parse_properties("[1]").is_empty());
        assert!(parse_properties("not json").is_empty());
    }

    #[test]
    fn set_names_agree_with_parsing() {
        let texts = [
            r#"{"s":"pro","i":42,"n":null,"a":[1,"x,}"],"o":{"k":{"z":"]"}},"k\"q":"a\"b"}"#,
            "{}",
            "[1]",
            "not json",
            r#"{"s" : "spaced","t":null}"#,
        ];
        for text in texts {
            let mut want: Vec<String> = parse_properties(text)
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, _)| k)
                .collect();
            let mut got: Vec<String> = set_names(text)
                .into_iter()
                .map(|c| c.into_owned())
                .collect();
            want.sort();
            got.sort();
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn raw_lookup_agrees_with_the_definitions() {
        let texts = [
            r#"{"s":"pro","i":42,"f":1.50,"b":true,"n":null,"a":[1,"x,}"],"o":{"k":{"z":"]"}},"e":"a\"b","u":"\u00e9"}"#,
            "{}",
            "[1]",
            "not json",
            r#"{"s" : "spaced"}"#,
            r#"{"k\"q":1,"s":"after"}"#,
        ];
        for text in texts {
            let parsed = parse_properties(text);
            for name in [
                "s", "i", "f", "b", "n", "a", "o", "e", "u", "missing", "k\"q",
            ] {
                let lookup = RawLookup::new(name);
                assert_eq!(
                    lookup.string(text).map(|c| c.into_owned()),
                    property_string(&parsed, name),
                    "{name} in {text}"
                );
                let multi = MultiLookup::new(&[name.to_owned(), "s".to_owned()]);
                let both = multi.strings(text);
                assert_eq!(
                    both[0].clone().map(|c| c.into_owned()),
                    property_string(&parsed, name),
                    "{name} in {text}"
                );
                assert_eq!(
                    both[1].clone().map(|c| c.into_owned()),
                    property_string(&parsed, "s")
                );
                assert_eq!(
                    lookup.number(text),
                    get(&parsed, name).and_then(value_number),
                    "{name} in {text}"
                );
            }
        }
    }

    #[test]
    fn merge_personal_puts_values_back_like_a_parsed_merge() {
        let cases = [
            (
                r#"{"email":"[redacted]","plan":"pro"}"#,
                r#"{"email":"a@b.co"}"#,
            ),
            (r#"{}"#, r#"{"name":{"first":"Ann","tags":[1,"x,}"]}}"#),
            (
                r#"{"a":1,"b":"[redacted]","c":null}"#,
                r#"{"b":"q\"uote","d":2.5}"#,
            ),
            (r#"{"k\"q":"[redacted]"}"#, r#"{"k\"q":"v"}"#),
            (r#"{"a": 1}"#, r#"{"a":2}"#), // not canonical: the parsed path
            (r#"{"a":1}"#, r#"{}"#),
        ];
        for (props, personal) in cases {
            let merged = merge_personal(props, personal);
            let mut want = parse_properties(props);
            want.extend(parse_properties(personal));
            assert_eq!(
                parse_properties(&merged),
                want,
                "{props} + {personal} = {merged}"
            );
        }
        // Canonical text keeps its order and bytes; the personal value takes the
        // placeholder's place.
        assert_eq!(
            merge_personal(
                r#"{"z":1,"email":"[redacted]","a":true}"#,
                r#"{"email":"x@y.z"}"#
            ),
            r#"{"z":1,"email":"x@y.z","a":true}"#
        );
    }
}
