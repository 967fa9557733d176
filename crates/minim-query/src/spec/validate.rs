//! Semantic validation of a parsed spec: ranges, limits, filter values; errors name the field.

use serde_json::Value;

use super::{
    Date, EventsCursor, EventsSpec, Filter, FilterOp, FunnelSpec, Interval, PathsSpec, QuerySpec,
    RetentionSpec, TrendsSpec,
};
use crate::error::{ErrorCode, SpecError};
use crate::limits::SpecLimits;
use crate::time::bucket_count;

impl QuerySpec {
    /// Checks the spec against the default [`SpecLimits`].
    pub fn validate(&self) -> Result<(), SpecError> {
        self.validate_with(&SpecLimits::default())
    }

    /// Checks the spec against `limits`; the first problem found is returned.
    pub fn validate_with(&self, limits: &SpecLimits) -> Result<(), SpecError> {
        match self {
            Self::Trends(s) => trends(s, limits),
            Self::Funnel(s) => funnel(s, limits),
            Self::Retention(s) => retention(s, limits),
            Self::Paths(s) => paths(s, limits),
            Self::Events(s) => events(s, limits),
        }
    }
}

fn err(code: ErrorCode, field: impl Into<String>, detail: impl std::fmt::Display) -> SpecError {
    SpecError::new(code, field, detail)
}

fn date_range(from: Date, to: Date) -> Result<(), SpecError> {
    if to < from {
        return Err(err(
            ErrorCode::InvalidDateRange,
            "to",
            format_args!("{to} is before from ({from})"),
        ));
    }
    Ok(())
}

fn name(field: &str, value: &str, limits: &SpecLimits) -> Result<(), SpecError> {
    if value.is_empty() {
        return Err(err(ErrorCode::InvalidValue, field, "must not be empty"));
    }
    if value.len() > limits.max_name_bytes {
        return Err(err(
            ErrorCode::InvalidValue,
            field,
            format_args!("longer than {} bytes", limits.max_name_bytes),
        ));
    }
    Ok(())
}

fn in_range(field: &str, value: Option<i64>, max: u64) -> Result<(), SpecError> {
    match value {
        Some(v) if v < 1 || v.unsigned_abs() > max => Err(err(
            ErrorCode::OutOfRange,
            field,
            format_args!("must be between 1 and {max}"),
        )),
        _ => Ok(()),
    }
}

fn breakdown(
    breakdown: Option<&str>,
    limit: Option<i64>,
    limits: &SpecLimits,
) -> Result<(), SpecError> {
    if let Some(b) = breakdown {
        name("breakdown", b, limits)?;
    }
    in_range(
        "breakdown_limit",
        limit,
        u64::from(limits.max_breakdown_limit),
    )
}

/// The compiled form of a `regex` filter value, with the configured size bound. The
/// reference uses the same function, so validation and evaluation cannot disagree.
pub fn compile_regex(pattern: &str, limits: &SpecLimits) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(limits.max_regex_compiled_bytes)
        .build()
}

fn filters(list: &[Filter], limits: &SpecLimits) -> Result<(), SpecError> {
    if list.len() > limits.max_filters {
        return Err(err(
            ErrorCode::OutOfRange,
            "filters",
            format_args!("at most {} filters", limits.max_filters),
        ));
    }
    for (i, f) in list.iter().enumerate() {
        name(&format!("filters[{i}].property"), &f.property, limits)?;
        filter_value(&format!("filters[{i}].value"), f, limits)?;
    }
    Ok(())
}

fn scalar(field: &str, v: &Value, limits: &SpecLimits) -> Result<(), SpecError> {
    match v {
        Value::String(s) if s.len() > limits.max_name_bytes => Err(err(
            ErrorCode::InvalidFilterValue,
            field,
            format_args!("longer than {} bytes", limits.max_name_bytes),
        )),
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(()),
        _ => Err(err(
            ErrorCode::InvalidFilterValue,
            field,
            "must be a string, number or boolean",
        )),
    }
}

fn filter_value(field: &str, f: &Filter, limits: &SpecLimits) -> Result<(), SpecError> {
    let missing = || err(ErrorCode::InvalidFilterValue, field, "required for this op");
    match f.op {
        FilterOp::Eq | FilterOp::Neq => {
            scalar(field, f.value.as_ref().ok_or_else(missing)?, limits)
        }
        FilterOp::In => match f.value.as_ref().ok_or_else(missing)? {
            Value::Array(items) => {
                if items.len() > limits.max_in_values {
                    return Err(err(
                        ErrorCode::InvalidFilterValue,
                        field,
                        format_args!("at most {} values", limits.max_in_values),
                    ));
                }
                for (j, item) in items.iter().enumerate() {
                    scalar(&format!("{field}[{j}]"), item, limits)?;
                }
                Ok(())
            }
            _ => Err(err(
                ErrorCode::InvalidFilterValue,
                field,
                "must be a list of strings, numbers or booleans",
            )),
        },
        FilterOp::Contains => match f.value.as_ref().ok_or_else(missing)? {
            Value::String(_) => scalar(field, f.value.as_ref().ok_or_else(missing)?, limits),
            _ => Err(err(
                ErrorCode::InvalidFilterValue,
                field,
                "must be a string",
            )),
        },
        FilterOp::Regex => match f.value.as_ref().ok_or_else(missing)? {
            Value::String(p) => {
                if p.len() > limits.max_regex_bytes {
                    return Err(err(
                        ErrorCode::InvalidRegex,
                        field,
                        format_args!("pattern longer than {} bytes", limits.max_regex_bytes),
                    ));
                }
                compile_regex(p, limits).map(|_| ()).map_err(|e| {
                    let detail = match e {
                        regex::Error::CompiledTooBig(_) => "pattern compiles too large".to_string(),
                        other => format!(
                            "not a valid regular expression: {}",
                            other
                                .to_string()
                                .split_whitespace()
                                .collect::<Vec<_>>()
                                .join(" ")
                        ),
                    };
                    err(ErrorCode::InvalidRegex, field, detail)
                })
            }
            _ => Err(err(ErrorCode::InvalidRegex, field, "must be a string")),
        },
        FilterOp::Gt | FilterOp::Lt => match f.value.as_ref().ok_or_else(missing)? {
            Value::Number(_) => Ok(()),
            _ => Err(err(
                ErrorCode::InvalidFilterValue,
                field,
                "must be a number",
            )),
        },
        FilterOp::IsSet | FilterOp::IsNotSet => match f.value {
            None => Ok(()),
            Some(_) => Err(err(
                ErrorCode::InvalidFilterValue,
                field,
                "must be absent for is_set / is_not_set",
            )),
        },
    }
}

fn buckets(
    field: &str,
    interval: Interval,
    from: Date,
    to: Date,
    limits: &SpecLimits,
) -> Result<u64, SpecError> {
    let n = bucket_count(interval, from, to);
    if n > limits.max_buckets {
        return Err(err(
            ErrorCode::TooManyBuckets,
            field,
            format_args!(
                "{from}..{to} makes {n} buckets at this {field}; at most {}",
                limits.max_buckets
            ),
        ));
    }
    Ok(n)
}

fn cells(field: &str, n: u64, limits: &SpecLimits) -> Result<(), SpecError> {
    if n > limits.max_result_cells {
        return Err(err(
            ErrorCode::ResultTooLarge,
            field,
            format_args!(
                "the result could hold {n} values; at most {}",
                limits.max_result_cells
            ),
        ));
    }
    Ok(())
}

fn trends(s: &TrendsSpec, limits: &SpecLimits) -> Result<(), SpecError> {
    date_range(s.from, s.to)?;
    if s.series.is_empty() {
        return Err(err(
            ErrorCode::EmptySeries,
            "series",
            "at least one series is required",
        ));
    }
    if s.series.len() > limits.max_series {
        return Err(err(
            ErrorCode::OutOfRange,
            "series",
            format_args!("at most {} series", limits.max_series),
        ));
    }
    for (i, series) in s.series.iter().enumerate() {
        name(&format!("series[{i}].event"), &series.event, limits)?;
        let field = format!("series[{i}].property");
        match (&series.property, series.math.needs_property()) {
            (None, true) => {
                return Err(err(
                    ErrorCode::MissingProperty,
                    field,
                    "this math aggregates a numeric property: set `property`",
                ));
            }
            (Some(_), false) => {
                return Err(err(
                    ErrorCode::MissingProperty,
                    field,
                    "total and unique_users take no property",
                ));
            }
            (Some(p), true) => name(&field, p, limits)?,
            (None, false) => {}
        }
    }
    breakdown(s.breakdown.as_deref(), s.breakdown_limit, limits)?;
    filters(&s.filters, limits)?;
    let n = buckets("interval", s.interval, s.from, s.to, limits)?;
    let per_series = if s.breakdown.is_some() {
        s.breakdown_limit() as u64 + 1
    } else {
        1
    };
    let field = if s.breakdown.is_some() {
        "breakdown_limit"
    } else {
        "series"
    };
    cells(
        field,
        n.saturating_mul(s.series.len() as u64)
            .saturating_mul(per_series),
        limits,
    )
}

fn funnel(s: &FunnelSpec, limits: &SpecLimits) -> Result<(), SpecError> {
    date_range(s.from, s.to)?;
    if s.steps.is_empty() {
        return Err(err(
            ErrorCode::EmptySteps,
            "steps",
            "at least one step is required",
        ));
    }
    if s.steps.len() > limits.max_steps {
        return Err(err(
            ErrorCode::OutOfRange,
            "steps",
            format_args!("at most {} steps", limits.max_steps),
        ));
    }
    for (i, step) in s.steps.iter().enumerate() {
        name(&format!("steps[{i}].event"), &step.event, limits)?;
    }
    if s.window_seconds <= 0 || s.window_seconds > limits.max_window_seconds {
        return Err(err(
            ErrorCode::InvalidWindow,
            "window_seconds",
            format_args!("must be between 1 and {}", limits.max_window_seconds),
        ));
    }
    breakdown(s.breakdown.as_deref(), s.breakdown_limit, limits)
}

fn retention(s: &RetentionSpec, limits: &SpecLimits) -> Result<(), SpecError> {
    date_range(s.from, s.to)?;
    name("start_event", &s.start_event, limits)?;
    name("return_event", &s.return_event, limits)?;
    in_range(
        "periods",
        Some(s.periods),
        u64::from(limits.max_retention_periods),
    )?;
    let n = buckets("period", s.period.interval(), s.from, s.to, limits)?;
    cells(
        "periods",
        n.saturating_mul(s.periods.unsigned_abs()),
        limits,
    )
}

fn paths(s: &PathsSpec, limits: &SpecLimits) -> Result<(), SpecError> {
    date_range(s.from, s.to)?;
    name("start_event", &s.start_event, limits)?;
    in_range("depth", s.depth, u64::from(limits.max_path_depth))?;
    in_range("top_n", s.top_n, u64::from(limits.max_path_top_n))
}

fn events(s: &EventsSpec, limits: &SpecLimits) -> Result<(), SpecError> {
    if let (Some(from), Some(to)) = (s.from, s.to) {
        date_range(from, to)?;
    }
    if let Some(e) = &s.event {
        name("event", e, limits)?;
    }
    filters(&s.filters, limits)?;
    in_range("limit", s.limit, u64::from(limits.max_events_limit))?;
    if let Some(c) = &s.cursor
        && EventsCursor::parse(c).is_none()
    {
        return Err(err(
            ErrorCode::InvalidCursor,
            "cursor",
            "not a cursor from a previous page",
        ));
    }
    Ok(())
}
