//! JSON to [`QuerySpec`], turning every serde failure into a [`SpecError`] naming the field.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{EventsSpec, FunnelSpec, PathsSpec, QuerySpec, RetentionSpec, TrendsSpec};
use crate::error::{ErrorCode, SpecError};
use crate::limits::SpecLimits;

const KINDS: &str = "trends, funnel, retention, paths, events";

/// Longest kind name echoed back in an error message, in characters.
const MAX_ECHO_CHARS: usize = 64;
/// Longest serde message (which may quote client input) passed on, in characters.
const MAX_SERDE_MESSAGE_CHARS: usize = 300;

impl QuerySpec {
    /// Parses a request body and validates it with the default [`SpecLimits`].
    pub fn from_json_str(body: &str) -> Result<Self, SpecError> {
        Self::from_json_str_with(body, &SpecLimits::default())
    }

    /// Parses a request body and validates it with `limits`.
    pub fn from_json_str_with(body: &str, limits: &SpecLimits) -> Result<Self, SpecError> {
        let value: Value = serde_json::from_str(body).map_err(|e| {
            SpecError::new(
                ErrorCode::InvalidJson,
                "",
                format_args!("body is not valid JSON: {e}"),
            )
        })?;
        Self::from_json_value_with(value, limits)
    }

    /// Parses a JSON value and validates it with the default [`SpecLimits`].
    pub fn from_json_value(value: Value) -> Result<Self, SpecError> {
        Self::from_json_value_with(value, &SpecLimits::default())
    }

    /// Parses a JSON value and validates it with `limits`.
    pub fn from_json_value_with(value: Value, limits: &SpecLimits) -> Result<Self, SpecError> {
        let spec = Self::parse_value(value)?;
        spec.validate_with(limits)?;
        Ok(spec)
    }

    /// Parses without validating: only shape and types are checked.
    pub fn parse_value(value: Value) -> Result<Self, SpecError> {
        let Value::Object(mut map) = value else {
            return Err(SpecError::new(
                ErrorCode::InvalidJson,
                "",
                "a query must be a JSON object",
            ));
        };
        let kind = match map.remove("kind") {
            None => {
                return Err(SpecError::new(
                    ErrorCode::MissingField,
                    "kind",
                    format_args!("required field is missing; one of {KINDS}"),
                ));
            }
            Some(Value::String(kind)) => kind,
            Some(_) => {
                return Err(SpecError::new(
                    ErrorCode::UnknownKind,
                    "kind",
                    format_args!("must be a string, one of {KINDS}"),
                ));
            }
        };
        let rest = Value::Object(map);
        match kind.as_str() {
            "trends" => de::<TrendsSpec>(rest).map(Self::Trends),
            "funnel" => de::<FunnelSpec>(rest).map(Self::Funnel),
            "retention" => de::<RetentionSpec>(rest).map(Self::Retention),
            "paths" => de::<PathsSpec>(rest).map(Self::Paths),
            "events" => de::<EventsSpec>(rest).map(Self::Events),
            other => Err(SpecError::new(
                ErrorCode::UnknownKind,
                "kind",
                format_args!(
                    "unknown kind `{}`; expected one of {KINDS}",
                    echo(other, MAX_ECHO_CHARS)
                ),
            )),
        }
    }
}

fn de<T: DeserializeOwned>(value: Value) -> Result<T, SpecError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        classify(path, &e.into_inner().to_string())
    })
}

/// Maps a serde error at `path` to a code, by what serde says and which field it was.
fn classify(path: String, msg: &str) -> SpecError {
    if let Some(name) = backticked(msg, "missing field `") {
        return SpecError::new(
            ErrorCode::MissingField,
            join(&path, name),
            "required field is missing",
        );
    }
    if let Some(name) = backticked(msg, "unknown field `") {
        // serde_path_to_error already ends the path with the unknown key.
        let field = if path.is_empty() || !path.ends_with(name) {
            join(&path, name)
        } else {
            path
        };
        return SpecError::new(
            ErrorCode::UnknownField,
            field,
            format_args!("unknown field; {}", after_comma(msg)),
        );
    }
    let last = path
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .split('[')
        .next()
        .unwrap_or_default();
    let code = match last {
        "math" => ErrorCode::UnknownMath,
        "op" => ErrorCode::UnknownOperator,
        "from" | "to" => ErrorCode::InvalidDate,
        "interval" | "period" => ErrorCode::UnknownInterval,
        "window_seconds" => ErrorCode::InvalidWindow,
        "cursor" => ErrorCode::InvalidCursor,
        _ => ErrorCode::InvalidValue,
    };
    SpecError::new(code, path, echo(msg, MAX_SERDE_MESSAGE_CHARS))
}

/// The name in `` prefix`name`... `` when `msg` starts with `prefix`.
fn backticked<'a>(msg: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = msg.strip_prefix(prefix)?;
    rest.split('`').next()
}

/// What serde says after the first comma ("expected one of ..."), or nothing.
fn after_comma(msg: &str) -> &str {
    msg.split_once(", ").map_or("", |(_, rest)| rest)
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Client input cut to `max_chars` characters for an error message.
pub(crate) fn echo(s: &str, max_chars: usize) -> String {
    let mut out: String = s.chars().take(max_chars).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    out
}
