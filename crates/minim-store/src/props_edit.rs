//! Editing canonical `properties` text: removing top-level entries by name, or replacing
//! their values, while every other entry stays byte-identical and in order.
//!
//! Ingest stores canonical compact JSON objects (see `minim_core::props`), which
//! [`entries`] walks key by key, skipping values without parsing them. It mirrors
//! `minim_core::props`' private walker (that module cannot be changed from here; making
//! its walker public with byte offsets would let this file shrink to the removal loop).
//! Text it does not understand (never produced by ingest) falls back to a full parse
//! and is re-serialized when, and only when, an entry is removed.

use std::borrow::Cow;

use minim_core::props::{skip_string, skip_value};
use serde_json::{Map, Value};

/// Removes a fixed set of top-level properties from properties texts.
#[derive(Debug, Clone)]
pub struct PropRemover {
    names: Vec<String>,
}

impl PropRemover {
    pub fn new(names: impl IntoIterator<Item = String>) -> Self {
        Self {
            names: names.into_iter().collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    fn matches(&self, quoted_key: &str) -> bool {
        let inner = &quoted_key[1..quoted_key.len() - 1];
        let name: Cow<'_, str> = if inner.contains('\\') {
            match serde_json::from_str::<String>(quoted_key) {
                Ok(s) => Cow::Owned(s),
                Err(_) => return false,
            }
        } else {
            Cow::Borrowed(inner)
        };
        self.names.iter().any(|n| *n == name)
    }

    /// How many entries [`PropRemover::remove`] would drop from `text`.
    pub fn count(&self, text: &str) -> usize {
        if self.names.is_empty() {
            return 0;
        }
        match entries(text) {
            Some(spans) => spans
                .iter()
                .filter(|s| self.matches(&text[s.key.clone()]))
                .count(),
            None => self.parsed(text).map_or(0, |(_, n)| n),
        }
    }

    /// `text` without the named top-level entries (present with any value, `null`
    /// included) and how many were dropped; `None` when none is present.
    pub fn remove(&self, text: &str) -> Option<(String, usize)> {
        if self.names.is_empty() {
            return None;
        }
        let Some(spans) = entries(text) else {
            return self
                .parsed(text)
                .and_then(|(map, n)| Some((serde_json::to_string(&map).ok()?, n)));
        };
        let dropped = spans
            .iter()
            .filter(|s| self.matches(&text[s.key.clone()]))
            .count();
        if dropped == 0 {
            return None;
        }
        let mut out = String::with_capacity(text.len());
        out.push('{');
        for s in spans.iter().filter(|s| !self.matches(&text[s.key.clone()])) {
            if out.len() > 1 {
                out.push(',');
            }
            out.push_str(&text[s.key.start..s.value_end]);
        }
        out.push('}');
        Some((out, dropped))
    }

    /// `text` with the value of each named top-level entry replaced by `replacement`
    /// (JSON text, e.g. `"\"[redacted]\""`), every other byte unchanged, and how many were
    /// replaced; `None` when none is present. Used to hide `personal` values from readers
    /// without the right to see them.
    pub fn replace(&self, text: &str, replacement: &str) -> Option<(String, usize)> {
        if self.names.is_empty() {
            return None;
        }
        let Some(spans) = entries(text) else {
            let mut map: Map<String, Value> = serde_json::from_str(text).ok()?;
            let value: Value = serde_json::from_str(replacement).ok()?;
            let mut n = 0;
            for name in &self.names {
                if let Some(v) = map.get_mut(name.as_str()) {
                    *v = value.clone();
                    n += 1;
                }
            }
            if n == 0 {
                return None;
            }
            return Some((serde_json::to_string(&map).ok()?, n));
        };
        let mut out = String::with_capacity(text.len());
        let mut n = 0;
        out.push('{');
        for s in &spans {
            if out.len() > 1 {
                out.push(',');
            }
            if self.matches(&text[s.key.clone()]) {
                out.push_str(&text[s.key.clone()]);
                out.push(':');
                out.push_str(replacement);
                n += 1;
            } else {
                out.push_str(&text[s.key.start..s.value_end]);
            }
        }
        out.push('}');
        (n > 0).then_some((out, n))
    }

    /// Fallback for non-canonical text: the parsed object without the names, when any
    /// was present. Text that is not an object has no properties.
    fn parsed(&self, text: &str) -> Option<(Map<String, Value>, usize)> {
        let mut map: Map<String, Value> = serde_json::from_str(text).ok()?;
        let n = self
            .names
            .iter()
            .filter(|name| map.remove(name.as_str()).is_some())
            .count();
        (n > 0).then_some((map, n))
    }
}

/// Byte spans of one top-level entry: its quoted key, and where its value ends.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Span {
    key: std::ops::Range<usize>,
    value_end: usize,
}

/// The entries of canonical compact JSON object text, or `None` if it is not that.
fn entries(text: &str) -> Option<Vec<Span>> {
    let b = text.as_bytes();
    if b.first() != Some(&b'{') {
        return None;
    }
    let mut out = Vec::new();
    if b.get(1) == Some(&b'}') {
        return (b.len() == 2).then_some(out);
    }
    let mut at = 1;
    loop {
        if b.get(at) != Some(&b'"') {
            return None;
        }
        let key_end = skip_string(b, at)?;
        if b.get(key_end) != Some(&b':') {
            return None;
        }
        let value_end = skip_value(b, key_end + 1)?;
        out.push(Span {
            key: at..key_end,
            value_end,
        });
        match b.get(value_end) {
            Some(b',') => at = value_end + 1,
            Some(b'}') if value_end + 1 == b.len() => return Some(out),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn remover(names: &[&str]) -> PropRemover {
        PropRemover::new(names.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn removes_entries_keeping_the_others_byte_identical() {
        let text = r#"{"a":1.50,"ip":"1.2.3.4","o":{"ip":"x","k":[1,"}"]},"n":null,"e":"a\"b"}"#;
        let r = remover(&["ip", "n"]);
        assert_eq!(r.count(text), 2);
        let (out, n) = r.remove(text).unwrap();
        assert_eq!(n, 2);
        assert_eq!(out, r#"{"a":1.50,"o":{"ip":"x","k":[1,"}"]},"e":"a\"b"}"#);
        assert_eq!(remover(&["a"]).remove(r#"{"a":1}"#).unwrap().0, "{}");
        assert_eq!(
            remover(&["e"]).remove(r#"{"a":1,"e":2}"#).unwrap().0,
            r#"{"a":1}"#
        );
        assert!(remover(&["zz"]).remove(text).is_none());
        assert!(remover(&["a"]).remove("{}").is_none());
        assert!(remover(&[]).remove(text).is_none());
    }

    #[test]
    fn replaces_values_keeping_the_others_byte_identical() {
        let text = r#"{"a":1.50,"email":"x@y.z","o":{"email":"q"},"n":null}"#;
        let r = remover(&["email", "n"]);
        let (out, n) = r.replace(text, r#""[redacted]""#).unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            out,
            r#"{"a":1.50,"email":"[redacted]","o":{"email":"q"},"n":"[redacted]"}"#
        );
        assert!(remover(&["zz"]).replace(text, "null").is_none());
        let (out, n) = remover(&["s"])
            .replace(r#"{"s" : 1, "t": 2}"#, "null")
            .unwrap();
        assert_eq!((out.as_str(), n), (r#"{"s":null,"t":2}"#, 1));
    }

    #[test]
    fn escaped_names_and_non_canonical_text() {
        let r = remover(&["k\"q", "é"]);
        let (out, n) = r.remove(r#"{"k\"q":1,"\u00e9":2,"s":3}"#).unwrap();
        assert_eq!((out.as_str(), n), (r#"{"s":3}"#, 2));
        // Spaces are not canonical: parsed, and re-serialized only when changed.
        let (out, n) = remover(&["s"]).remove(r#"{"s" : 1, "t": 2}"#).unwrap();
        assert_eq!((out.as_str(), n), (r#"{"t":2}"#, 1));
        assert!(remover(&["x"]).remove(r#"{"s" : 1}"#).is_none());
        assert!(remover(&["x"]).remove("not json").is_none());
        assert_eq!(remover(&["x"]).count("[1]"), 0);
    }

    proptest! {
        /// Against a model that builds the text from its entries and leaves some out.
        #[test]
        fn removal_matches_rebuilding_from_the_kept_entries(
            entries in proptest::collection::btree_map(
                "[a-d\"é\\\\]{1,3}",
                prop_oneof![
                    Just("null".to_owned()),
                    any::<i32>().prop_map(|i| i.to_string()),
                    "[a-z,:{}\\[\\]\"]{0,6}".prop_map(|s| serde_json::to_string(&s).unwrap()),
                    Just(r#"{"x":[1,{"y":"]"}]}"#.to_owned()),
                ],
                0..6,
            ),
            drop in proptest::collection::vec("[a-d\"é\\\\]{1,3}", 0..3),
        ) {
            let render = |kept: &mut dyn Iterator<Item = (&String, &String)>| {
                let parts: Vec<String> = kept
                    .map(|(k, v)| format!("{}:{v}", serde_json::to_string(k).unwrap()))
                    .collect();
                format!("{{{}}}", parts.join(","))
            };
            let text = render(&mut entries.iter());
            let want = render(&mut entries.iter().filter(|(k, _)| !drop.contains(k)));
            let removed = entries.keys().filter(|k| drop.contains(k)).count();
            let r = PropRemover::new(drop.clone());
            prop_assert_eq!(r.count(&text), removed);
            match r.remove(&text) {
                Some((out, n)) => {
                    prop_assert_eq!(out, want);
                    prop_assert_eq!(n, removed);
                }
                None => {
                    prop_assert_eq!(removed, 0);
                    prop_assert_eq!(text, want);
                }
            }
        }
    }
}
