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

#[cfg(test)]
mod tests {
    use super::*;

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
}
