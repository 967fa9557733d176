//! Evaluates a spec's property filters on one event's parsed properties (see `FilterOp`).

use regex::Regex;
use serde_json::Value;

use crate::props::{Properties, get, value_number, value_string};
use crate::spec::{Filter, FilterOp};

/// A list of filters, AND-ed, with `regex` patterns compiled once.
pub(crate) struct Filters<'a> {
    list: Vec<(&'a Filter, Option<Regex>)>,
}

impl<'a> Filters<'a> {
    /// A pattern that does not compile (impossible after validation) matches nothing.
    pub(crate) fn new(list: &'a [Filter]) -> Self {
        let list = list
            .iter()
            .map(|f| {
                let re = match (f.op, &f.value) {
                    (FilterOp::Regex, Some(Value::String(p))) => Regex::new(p).ok(),
                    _ => None,
                };
                (f, re)
            })
            .collect();
        Self { list }
    }

    pub(crate) fn matches(&self, props: &Properties) -> bool {
        self.list
            .iter()
            .all(|(f, re)| matches(f, re.as_ref(), props))
    }
}

fn equals(prop: Option<&Value>, target: &Value) -> bool {
    match (prop.and_then(value_string), value_string(target)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn matches(f: &Filter, re: Option<&Regex>, props: &Properties) -> bool {
    let prop = get(props, &f.property);
    let target = f.value.as_ref();
    match f.op {
        FilterOp::Eq => target.is_some_and(|t| equals(prop, t)),
        FilterOp::Neq => !target.is_some_and(|t| equals(prop, t)),
        FilterOp::In => match target {
            Some(Value::Array(items)) => items.iter().any(|t| equals(prop, t)),
            _ => false,
        },
        FilterOp::Contains => match (prop.and_then(value_string), target) {
            (Some(s), Some(Value::String(needle))) => s.contains(needle.as_str()),
            _ => false,
        },
        FilterOp::Regex => match (prop.and_then(value_string), re) {
            (Some(s), Some(re)) => re.is_match(&s),
            _ => false,
        },
        FilterOp::Gt | FilterOp::Lt => {
            match (prop.and_then(value_number), target.and_then(value_number)) {
                (Some(p), Some(t)) if f.op == FilterOp::Gt => p > t,
                (Some(p), Some(t)) => p < t,
                _ => false,
            }
        }
        FilterOp::IsSet => prop.is_some(),
        FilterOp::IsNotSet => prop.is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::props::parse_properties;
    use serde_json::json;

    fn check(op: FilterOp, value: Option<Value>, props: &str) -> bool {
        let f = [Filter {
            property: "p".into(),
            op,
            value,
        }];
        Filters::new(&f).matches(&parse_properties(props))
    }

    #[test]
    fn each_op() {
        use FilterOp::*;
        assert!(check(Eq, Some(json!("pro")), r#"{"p":"pro"}"#));
        assert!(check(Eq, Some(json!(42)), r#"{"p":"42"}"#));
        assert!(check(Eq, Some(json!("42")), r#"{"p":42}"#));
        assert!(check(Eq, Some(json!(true)), r#"{"p":true}"#));
        assert!(!check(Eq, Some(json!("pro")), r#"{}"#));
        assert!(check(Neq, Some(json!("pro")), r#"{}"#));
        assert!(check(Neq, Some(json!("pro")), r#"{"p":null}"#));
        assert!(!check(Neq, Some(json!("pro")), r#"{"p":"pro"}"#));
        assert!(check(In, Some(json!(["a", 1])), r#"{"p":1}"#));
        assert!(!check(In, Some(json!([])), r#"{"p":1}"#));
        assert!(check(Contains, Some(json!("ro")), r#"{"p":"pro"}"#));
        assert!(check(Contains, Some(json!("23")), r#"{"p":1234}"#));
        assert!(!check(Contains, Some(json!("RO")), r#"{"p":"pro"}"#));
        assert!(check(Regex, Some(json!("^p.o$")), r#"{"p":"pro"}"#));
        assert!(check(Regex, Some(json!("r")), r#"{"p":"pro"}"#));
        assert!(!check(Regex, Some(json!("x")), r#"{}"#));
        assert!(check(Gt, Some(json!(1.5)), r#"{"p":2}"#));
        assert!(!check(Gt, Some(json!(2)), r#"{"p":2}"#));
        assert!(!check(Gt, Some(json!(1)), r#"{"p":"5"}"#));
        assert!(check(Lt, Some(json!(0)), r#"{"p":-1}"#));
        assert!(check(IsSet, None, r#"{"p":0}"#));
        assert!(!check(IsSet, None, r#"{"p":null}"#));
        assert!(check(IsNotSet, None, r#"{"p":null}"#));
        assert!(check(IsNotSet, None, r#"{"q":1}"#));
    }
}
