//! Repair of lone UTF-16 surrogate escapes (`"\ud83d"`) in JSON text.
//!
//! JSON's grammar allows any `\uXXXX` escape, but a surrogate that is not half of a
//! pair has no UTF-8 form, so serde_json refuses the string. JavaScript SDKs produce
//! them by truncating a string in the middle of an emoji. Rather than lose the event we
//! do what Go's `encoding/json` and the WHATWG decoders do: each unpaired surrogate
//! becomes U+FFFD. This runs only after a decode has failed, so valid input pays nothing.

/// `raw` (syntactically valid JSON) with every unpaired surrogate escape replaced by
/// `\ufffd`, or `None` when it has none.
pub(crate) fn repair_lone_surrogates(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0; // bytes of `raw` already accounted for in `out`
    let mut in_string = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => in_string = !in_string,
            b'\\' if in_string => {
                if b.get(i + 1) != Some(&b'u') {
                    i += 2; // a one-character escape, possibly `\\` or `\"`
                    continue;
                }
                let Some(unit) = hex4(b, i + 2) else {
                    i += 2;
                    continue;
                };
                let len = match unit {
                    0xD800..=0xDBFF => match (b.get(i + 6..i + 8), hex4(b, i + 8)) {
                        (Some(b"\\u"), Some(0xDC00..=0xDFFF)) => {
                            i += 12; // a proper pair
                            continue;
                        }
                        _ => 6,
                    },
                    0xDC00..=0xDFFF => 6,
                    _ => {
                        i += 6;
                        continue;
                    }
                };
                let s = out.get_or_insert_with(|| String::with_capacity(raw.len()));
                s.push_str(&raw[copied..i]);
                s.push_str("\\ufffd");
                i += len;
                copied = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    let mut s = out?;
    s.push_str(&raw[copied..]);
    Some(s)
}

/// The code unit of four hex digits at `at`.
fn hex4(b: &[u8], at: usize) -> Option<u16> {
    let digits = std::str::from_utf8(b.get(at..at + 4)?).ok()?;
    u16::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(raw: &str) -> Option<String> {
        repair_lone_surrogates(raw)
    }

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        assert_eq!(fixed(r#""\ud800""#).as_deref(), Some(r#""\ufffd""#));
        assert_eq!(fixed(r#""a\uD83D""#).as_deref(), Some(r#""a\ufffd""#));
        assert_eq!(
            fixed(r#""\udc00\ud83d\ude00x""#).as_deref(),
            Some(r#""\ufffd\ud83d\ude00x""#)
        );
        assert_eq!(
            fixed(r#""\ud83d\ud83d\ude00""#).as_deref(),
            Some(r#""\ufffd\ud83d\ude00""#)
        );
        assert_eq!(fixed(r#"{"\ud800":1}"#).as_deref(), Some(r#"{"\ufffd":1}"#));
        assert_eq!(fixed(r#""\ud83d\n""#).as_deref(), Some(r#""\ufffd\n""#));
    }

    #[test]
    fn valid_text_and_escaped_backslashes_are_left_alone() {
        assert_eq!(fixed(r#"{"a":"\ud83d\ude00 \u00e9 \n \" plain"}"#), None);
        // `\\ud800` is a backslash followed by the letters "ud800", not an escape.
        assert_eq!(fixed(r#""\\ud800""#), None);
        assert_eq!(
            fixed(r#""\\ud800\ud800""#).as_deref(),
            Some(r#""\\ud800\ufffd""#)
        );
        // Outside strings nothing is touched.
        assert_eq!(fixed(r#"[1, "x", {"k": null}]"#), None);
    }

    proptest::proptest! {
        #[test]
        fn repair_never_panics_and_only_touches_escapes(s in "[\\\\u\"dD8cC0fF1a ]{0,40}|\\PC{0,20}") {
            if let Some(r) = repair_lone_surrogates(&s) {
                proptest::prop_assert!(r.contains("\\ufffd"));
            }
        }
    }

    #[test]
    fn repaired_text_parses() {
        let raw = r#"{"e":"\ud83d","k":["\udfff","ok\ud800"]}"#;
        assert!(serde_json::from_str::<serde_json::Value>(raw).is_err());
        let v: serde_json::Value = serde_json::from_str(&fixed(raw).unwrap()).unwrap();
        assert_eq!(v["e"], "\u{fffd}");
        assert_eq!(v["k"][1], "ok\u{fffd}");
    }
}
