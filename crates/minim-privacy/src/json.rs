//! A cursor over canonical JSON text (compact, valid, as `minim-ingest` writes it) and
//! the matching string writer. Only for text this process produced: on anything else it
//! reports `None` instead of guessing.

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

/// End (exclusive) of the string starting with the quote at `pos`.
pub fn string_end(text: &[u8], pos: usize) -> Option<usize> {
    let mut i = pos + 1;
    loop {
        let off = memchr::memchr2(b'"', b'\\', text.get(i..)?)?;
        i += off;
        if text[i] == b'\\' {
            i += 2;
        } else {
            return Some(i + 1);
        }
    }
}

/// The value of the string starting at `pos`, and its end.
pub fn read_string(text: &str, pos: usize) -> Option<(Cow<'_, str>, usize)> {
    let end = string_end(text.as_bytes(), pos)?;
    let inner = text.get(pos + 1..end - 1)?;
    if inner.as_bytes().contains(&b'\\') {
        let s: String = serde_json::from_str(text.get(pos..end)?).ok()?;
        Some((Cow::Owned(s), end))
    } else {
        Some((Cow::Borrowed(inner), end))
    }
}

/// End (exclusive) of the value starting at `pos`.
pub fn value_end(text: &[u8], pos: usize) -> Option<usize> {
    match kind_at(text, pos)? {
        Kind::String => string_end(text, pos),
        Kind::Number => {
            let mut i = pos;
            while i < text.len()
                && matches!(text[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
            {
                i += 1;
            }
            Some(i)
        }
        Kind::Bool => Some(pos + if text[pos] == b't' { 4 } else { 5 }),
        Kind::Null => Some(pos + 4),
        Kind::Object | Kind::Array => {
            let mut depth = 0usize;
            let mut i = pos;
            while i < text.len() {
                match text[i] {
                    b'"' => {
                        i = string_end(text, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
    }
}

/// Appends `s` as a JSON string in canonical (serde_json's minimal) escaping.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            out.push_str(&format!("\\u{b:04x}"));
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

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
