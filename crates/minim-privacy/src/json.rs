//! Reading values out of canonical JSON text (compact, valid, as `minim-ingest` writes
//! it); skipping and writing use `minim_core::props`. Only for text this process
//! produced: on anything else it reports `None` instead of guessing.

use std::borrow::Cow;

/// Kinds of JSON value, as seen from their first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

pub fn kind_at(text: &[u8], pos: usize) -> Option<Kind> {
    Some(match *text.get(pos)? {
        b'{' => Kind::Object,
        b'[' => Kind::Array,
        b'"' => Kind::String,
        b't' | b'f' => Kind::Bool,
        b'n' => Kind::Null,
        b'-' | b'0'..=b'9' => Kind::Number,
        _ => return None,
    })
}

/// The value of the string starting at `pos`, and its end.
pub fn read_string(text: &str, pos: usize) -> Option<(Cow<'_, str>, usize)> {
    let end = minim_core::props::skip_string(text.as_bytes(), pos)?;
    let inner = text.get(pos + 1..end - 1)?;
    if inner.as_bytes().contains(&b'\\') {
        let s: String = serde_json::from_str(text.get(pos..end)?).ok()?;
        Some((Cow::Owned(s), end))
    } else {
        Some((Cow::Borrowed(inner), end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minim_core::props::{push_json_str as write_string, skip_value as value_end};

    #[test]
    fn walks_canonical_values() {
        let t = r#"{"a":[1,{"b":"x\"}"}],"c":-1.5e3,"d":true,"e":null}"#;
        let b = t.as_bytes();
        assert_eq!(value_end(b, 0), Some(t.len()));
        assert_eq!(value_end(b, 5), Some(5 + r#"[1,{"b":"x\"}"}]"#.len()));
        let (s, _) = read_string(t, 13).unwrap();
        assert_eq!(s, "x\"}");
        let mut out = String::new();
        write_string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
        let back: String = serde_json::from_str(&out).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}é");
    }
}
