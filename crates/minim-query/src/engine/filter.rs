//! Property filters and shared expressions as DataFusion `Expr`s, with the meaning
//! `FilterOp` documents (the reference evaluates the same filters in `reference/filter.rs`).

use std::sync::Arc;

use arrow::datatypes::DataType;
use chrono::Datelike;
use datafusion::common::{Column, ScalarValue};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::FunctionRegistry;
use datafusion::functions::expr_fn::date_part;
use datafusion::logical_expr::{Expr, ScalarUDF, cast, col, lit};
use datafusion::logical_expr::{Operator, binary_expr};
use datafusion::prelude::{DataFrame, SessionContext};
use minim_core::time::MS_PER_DAY;
use minim_store::segment::{COL_DISTINCT_ID, COL_EVENT, COL_PROPERTIES, COL_TIMESTAMP};
use minim_store::shred::prop_column;
use serde_json::Value;

use super::bucket::bucket_of;
use super::udf::{PROP_NUM, PROP_STR};
use crate::props::{value_number, value_string};
use crate::spec::{Filter, FilterOp, Interval};
use crate::time::{MS_PER_HOUR, date_of};

/// The properties the session's `events` table has a `prop:<name>` column for (see
/// `table.rs`); a session config extension.
#[derive(Debug, Default)]
pub(crate) struct PropColumns(pub Vec<String>);

/// The user key column [`Exprs::per_user`] groups by (`per_user.rs` looks for it).
pub(crate) const USER_COLUMN: &str = "minim_user";

/// Builds expressions over the `events` table.
pub(crate) struct Exprs {
    prop_str: Arc<ScalarUDF>,
    prop_num: Arc<ScalarUDF>,
    user_key: Arc<ScalarUDF>,
    columns: Arc<PropColumns>,
}

impl Exprs {
    pub(crate) fn new(ctx: &SessionContext) -> Result<Self> {
        Ok(Self {
            prop_str: ctx.udf(PROP_STR)?,
            prop_num: ctx.udf(PROP_NUM)?,
            user_key: Arc::new(super::udf::user_key()),
            columns: ctx
                .state()
                .config()
                .get_extension::<PropColumns>()
                .unwrap_or_default(),
        })
    }

    /// The string form of property `name` (NULL when not set): its property column when
    /// the table has one, else `prop_str` over the JSON text.
    pub(crate) fn prop_str(&self, name: &str) -> Expr {
        if self.columns.0.iter().any(|c| c == name) {
            column(&prop_column(name))
        } else {
            self.prop_str.call(vec![col(COL_PROPERTIES), lit(name)])
        }
    }

    /// The user an event counts for, as the integer key per-user aggregations group by
    /// ([`super::udf::user_key`]).
    pub(crate) fn user(&self) -> Expr {
        self.user_key.call(vec![col(COL_DISTINCT_ID)])
    }

    /// `df` aggregated per user. The key is computed once, as a column, which both the
    /// repartition by user and the grouping then read (`one_stage.rs`, `per_user.rs`).
    pub(crate) fn per_user(&self, df: DataFrame, aggregates: Vec<Expr>) -> Result<DataFrame> {
        df.with_column(USER_COLUMN, self.user())?
            .aggregate(vec![col(USER_COLUMN)], aggregates)
    }

    /// The numeric value of property `name` (NULL unless a JSON number).
    pub(crate) fn prop_num(&self, name: &str) -> Expr {
        self.prop_num.call(vec![col(COL_PROPERTIES), lit(name)])
    }

    /// All `filters`, AND-ed (`true` when there are none).
    pub(crate) fn filters(&self, filters: &[Filter]) -> Expr {
        filters
            .iter()
            .map(|f| self.filter(f))
            .fold(lit(true), Expr::and)
    }

    fn filter(&self, f: &Filter) -> Expr {
        let value = f.value.as_ref();
        let prop = || self.prop_str(&f.property);
        // `coalesce(x, false)`: a NULL comparison (property not set) does not match.
        let definite = |e: Expr| datafusion::functions::expr_fn::coalesce(vec![e, lit(false)]);
        match f.op {
            FilterOp::Eq => match value.and_then(value_string) {
                Some(v) => definite(prop().eq(lit(v))),
                None => lit(false),
            },
            FilterOp::Neq => match value.and_then(value_string) {
                Some(v) => binary_expr(prop(), Operator::IsDistinctFrom, lit(v)),
                None => lit(true),
            },
            FilterOp::In => {
                let items: Vec<Expr> = match value {
                    Some(Value::Array(items)) => {
                        items.iter().filter_map(value_string).map(lit).collect()
                    }
                    _ => Vec::new(),
                };
                if items.is_empty() {
                    lit(false)
                } else {
                    definite(prop().in_list(items, false))
                }
            }
            FilterOp::Contains => match value {
                Some(Value::String(needle)) if needle.is_empty() => prop().is_not_null(),
                Some(Value::String(needle)) => definite(
                    datafusion::functions::expr_fn::strpos(prop(), lit(needle.as_str()))
                        .gt(lit(0i64)),
                ),
                _ => lit(false),
            },
            FilterOp::Regex => match value {
                Some(Value::String(pattern)) => {
                    definite(datafusion::functions::expr_fn::regexp_like(
                        prop(),
                        lit(pattern.as_str()),
                        None,
                    ))
                }
                _ => lit(false),
            },
            FilterOp::Gt | FilterOp::Lt => match value.and_then(value_number) {
                Some(t) => {
                    let n = self.prop_num(&f.property);
                    definite(if f.op == FilterOp::Gt {
                        n.gt(lit(t))
                    } else {
                        n.lt(lit(t))
                    })
                }
                None => lit(false),
            },
            FilterOp::IsSet => prop().is_not_null(),
            FilterOp::IsNotSet => prop().is_null(),
        }
    }
}

/// The column `name`, taken literally (no `.` qualifier parsing: property names may
/// contain anything).
pub(crate) fn column(name: &str) -> Expr {
    Expr::Column(Column::new_unqualified(name))
}

/// A timestamp literal of the `timestamp` column's type.
pub(crate) fn ts_lit(ms: i64) -> Expr {
    lit(ScalarValue::TimestampMillisecond(
        Some(ms),
        Some("UTC".into()),
    ))
}

/// `start <= timestamp < end` in milliseconds.
pub(crate) fn time_range(start_ms: i64, end_ms: i64) -> Expr {
    col(COL_TIMESTAMP)
        .gt_eq(ts_lit(start_ms))
        .and(col(COL_TIMESTAMP).lt(ts_lit(end_ms)))
}

/// `event = name`.
pub(crate) fn event_is(name: &str) -> Expr {
    col(COL_EVENT).eq(lit(name))
}

/// The index of `timestamp`'s `interval` bucket, counted from the bucket starting at
/// `first_ms` (itself a bucket start). Evaluate it only for events at or after
/// `first_ms`: integer division truncates towards zero.
pub(crate) fn bucket_index(interval: Interval, first_ms: i64) -> Result<Expr> {
    let per = |width: i64| bucket_of(col(COL_TIMESTAMP), first_ms, width);
    Ok(match interval {
        Interval::Hour => per(MS_PER_HOUR),
        Interval::Day => per(MS_PER_DAY),
        Interval::Week => per(7 * MS_PER_DAY),
        Interval::Month => {
            let first = date_of(first_ms)
                .ok_or_else(|| DataFusionError::Plan("date out of range".into()))?;
            let month_number =
                |unit: &str| cast(date_part(lit(unit), col(COL_TIMESTAMP)), DataType::Int64);
            month_number("year") * lit(12i64) + month_number("month")
                - lit(1i64)
                - lit(i64::from(first.year()) * 12 + i64::from(first.month0()))
        }
    })
}
