//! `SpecError`: why a query spec was refused, with a stable code and the field at fault.

use std::fmt;

/// The stable, machine-readable reason a spec was refused. [`ErrorCode::as_str`] is the
/// snake_case code the server puts in `{"error": {"code": ...}}`; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The body is not JSON, or not a JSON object.
    InvalidJson,
    /// `kind` is absent, not a string, or not one of the known kinds.
    UnknownKind,
    /// A required field is absent.
    MissingField,
    /// A field the kind does not define (usually a typo).
    UnknownField,
    /// A field has the wrong type or an unacceptable value not covered by a finer code.
    InvalidValue,
    /// A date is not a real `YYYY-MM-DD` calendar date.
    InvalidDate,
    /// `to` is before `from`.
    InvalidDateRange,
    /// `math` is not one of the known maths.
    UnknownMath,
    /// A math that aggregates a property (`sum`, `avg`, ...) has no `property`,
    /// or a math that does not (`total`, `unique_users`) has one.
    MissingProperty,
    /// A filter `op` is not one of the known operators.
    UnknownOperator,
    /// A filter `value` does not fit its `op` (absent, wrong type, too long, ...).
    InvalidFilterValue,
    /// A `regex` filter value does not compile, or compiles too large.
    InvalidRegex,
    /// `series` is empty.
    EmptySeries,
    /// `steps` is empty.
    EmptySteps,
    /// `window_seconds` is not positive or above the limit.
    InvalidWindow,
    /// A count-like field (`periods`, `depth`, `limit`, ...) is outside its range.
    OutOfRange,
    /// The date range split by the interval makes more buckets than allowed.
    TooManyBuckets,
    /// The result could hold more cells than allowed (buckets x series x breakdown values).
    ResultTooLarge,
    /// `cursor` is not one this server handed out.
    InvalidCursor,
    /// `interval` or `period` is not one of the known units.
    UnknownInterval,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::UnknownKind => "unknown_kind",
            Self::MissingField => "missing_field",
            Self::UnknownField => "unknown_field",
            Self::InvalidValue => "invalid_value",
            Self::InvalidDate => "invalid_date",
            Self::InvalidDateRange => "invalid_date_range",
            Self::UnknownMath => "unknown_math",
            Self::MissingProperty => "missing_property",
            Self::UnknownOperator => "unknown_operator",
            Self::InvalidFilterValue => "invalid_filter_value",
            Self::InvalidRegex => "invalid_regex",
            Self::EmptySeries => "empty_series",
            Self::EmptySteps => "empty_steps",
            Self::InvalidWindow => "invalid_window",
            Self::OutOfRange => "out_of_range",
            Self::TooManyBuckets => "too_many_buckets",
            Self::ResultTooLarge => "result_too_large",
            Self::InvalidCursor => "invalid_cursor",
            Self::UnknownInterval => "unknown_interval",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused query spec: every one is the client's fault (the server answers 400).
///
/// `field` is a path into the request body such as `series[0].math` or `steps`
/// (empty for the body as a whole); the message always starts with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SpecError {
    code: ErrorCode,
    field: String,
    message: String,
}

impl SpecError {
    pub fn new(code: ErrorCode, field: impl Into<String>, detail: impl fmt::Display) -> Self {
        let field = field.into();
        let message = if field.is_empty() {
            detail.to_string()
        } else {
            format!("{field}: {detail}")
        };
        Self {
            code,
            field,
            message,
        }
    }

    /// The stable snake_case code, e.g. `"unknown_math"`.
    pub fn code(&self) -> &'static str {
        self.code.as_str()
    }

    pub fn error_code(&self) -> ErrorCode {
        self.code
    }

    /// The path of the offending field, e.g. `"filters[1].value"`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// Human-readable, starts with the field path.
    pub fn message(&self) -> &str {
        &self.message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_the_field() {
        let e = SpecError::new(ErrorCode::UnknownMath, "series[0].math", "unknown math");
        assert_eq!(e.code(), "unknown_math");
        assert_eq!(e.field(), "series[0].math");
        assert_eq!(e.to_string(), "series[0].math: unknown math");
    }
}
