//! `trends` on DataFusion: per series, one aggregation by (bucket, breakdown value) with
//! the series' math, plus the same math over the whole range (grouping sets), after a
//! ranking pass that picks the breakdown values keeping their own series. Two maths take
//! shorter ways: `total`, whose counts add up, counts per bucket within one group per
//! breakdown value ([`counted`]), each total the sum of its buckets; `unique_users`
//! without a breakdown is one aggregation per user ([`unique_users_per_user`]). Buckets
//! are indices from the first bucket ([`bucket_index`]). Semantics:
//! `crate::reference::trends`.

use std::collections::HashMap;

use arrow::array::Array;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::functions_aggregate::expr_fn::{avg, count, count_distinct, max, min, sum};
use datafusion::logical_expr::{Expr, GroupingSet, SortExpr, col, lit, when};
use datafusion::prelude::{DataFrame, SessionContext};

use super::columns;
use super::filter::{Exprs, bucket_index, event_is, time_range};
use super::table::EVENTS_TABLE;
use super::udaf::{BUCKET_COUNTS, QUANTILE_EXACT, RETENTION_PERIODS, set_bits};
use crate::result::{Measure, OTHER_BREAKDOWN, TrendsResult, TrendsSeries};
use crate::spec::{Date, Math, SeriesSpec, TrendsSpec};
use crate::time::{bucket_starts, label};

pub(crate) async fn run(ctx: &SessionContext, spec: &TrendsSpec) -> Result<TrendsResult> {
    let exprs = Exprs::new(ctx)?;
    let starts = bucket_starts(spec.interval, spec.from, spec.to);
    let labels: Vec<String> = starts.iter().map(|s| label(spec.interval, *s)).collect();
    let (start, end) = Date::range_ms(spec.from, spec.to);
    // Events are grouped by bucket index, counted from the first bucket (which starts at
    // or before `start`: every event of the range has an index >= 0).
    let bucket = bucket_index(spec.interval, starts.first().copied().unwrap_or(start))?;

    let mut out = Vec::new();
    for series in &spec.series {
        let base = ctx.table(EVENTS_TABLE).await?.filter(
            event_is(&series.event)
                .and(time_range(start, end))
                .and(exprs.filters(&spec.filters)),
        )?;
        let measure = measure_expr(ctx, series)?;
        let zero = match series.math {
            Math::Total | Math::UniqueUsers => Measure::Count(0),
            _ => Measure::Value(0.0),
        };
        let line = |value: Option<String>| TrendsSeries {
            event: series.event.clone(),
            breakdown_value: value,
            labels: labels.clone(),
            data: vec![zero; starts.len()],
            total: zero,
        };

        let Some(prop) = &spec.breakdown else {
            if series.math == Math::UniqueUsers && starts.len() <= PER_USER_MAX_BUCKETS {
                let only = line(None);
                out.push(
                    unique_users_per_user(ctx, &exprs, base, &bucket, starts.len(), only).await?,
                );
                continue;
            }
            if series.math == Math::Total {
                let projected = project(base, &exprs, series, &bucket, None)?;
                let mut only = counted(ctx, projected, starts.len(), false, &line).await?;
                out.push(only.pop().unwrap_or_else(|| line(None)));
                continue;
            }
            // Other maths (distinct users, averages, quantiles) need their own
            // whole-range group.
            let mut only = line(None);
            let groups = vec![Expr::GroupingSet(GroupingSet::GroupingSets(vec![
                vec![col("bucket")],
                vec![],
            ]))];
            let batches = project(base, &exprs, series, &bucket, None)?
                .aggregate(groups, vec![measure.alias("m")])?
                .select(vec![col("bucket"), col("m")])?
                .collect()
                .await?;
            for b in &batches {
                let buckets = columns::int64(b, 0)?;
                for i in 0..b.num_rows() {
                    let m = read_measure(series.math, b, 1, i)?;
                    place(&mut only, columns::opt_i64(&buckets, i), m);
                }
            }
            out.push(only);
            continue;
        };

        if series.math == Math::Total {
            let counts = project(
                base,
                &exprs,
                series,
                &bucket,
                Some((exprs.prop_str(prop), lit(false))),
            )?;
            out.extend(total_by_value(ctx, counts, spec, starts.len(), &line).await?);
            continue;
        }

        // Ranking: values by counted events descending, then value ascending (NULL
        // first); one row more than kept tells whether an "$other" series exists.
        let limit = spec.breakdown_limit();
        let bv = exprs.prop_str(prop);
        let ranked = base
            .clone()
            .aggregate(vec![bv.clone().alias("bv")], vec![count(lit(1)).alias("n")])?
            .sort(vec![
                SortExpr::new(col("n"), false, false),
                SortExpr::new(col("bv"), true, true),
            ])?
            .limit(0, Some(limit.saturating_add(1)))?
            .collect()
            .await?;
        let mut top: Vec<Option<String>> = Vec::new();
        for b in &ranked {
            let values = columns::utf8(b, 0)?;
            for i in 0..b.num_rows() {
                top.push(columns::opt_str(&values, i));
            }
        }
        let has_other = top.len() > limit;
        top.truncate(limit);

        let (key, is_other) = if has_other {
            let non_null: Vec<Expr> = top.iter().flatten().map(|v| lit(v.as_str())).collect();
            let mut kept = if non_null.is_empty() {
                lit(false)
            } else {
                datafusion::functions::expr_fn::coalesce(vec![
                    bv.clone().in_list(non_null, false),
                    lit(false),
                ])
            };
            if top.contains(&None) {
                kept = kept.or(bv.clone().is_null());
            }
            (
                when(kept.clone(), bv)
                    .otherwise(lit(datafusion::common::ScalarValue::Utf8(None)))?,
                !kept,
            )
        } else {
            (bv, lit(false))
        };
        let groups = GroupingSet::GroupingSets(vec![
            vec![col("bucket"), col("bv"), col("other")],
            vec![col("bv"), col("other")],
        ]);
        let batches = project(base, &exprs, series, &bucket, Some((key, is_other)))?
            .aggregate(vec![Expr::GroupingSet(groups)], vec![measure.alias("m")])?
            .select(vec![col("bucket"), col("bv"), col("other"), col("m")])?
            .collect()
            .await?;

        let mut lines: Vec<TrendsSeries> = top.iter().map(|v| line(v.clone())).collect();
        let mut other = line(Some(OTHER_BREAKDOWN.to_string()));
        let position: HashMap<Option<String>, usize> = top
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, v)| (v, i))
            .collect();
        for b in &batches {
            let buckets = columns::int64(b, 0)?;
            let values = columns::utf8(b, 1)?;
            let others = columns::boolean(b, 2)?;
            for i in 0..b.num_rows() {
                let m = read_measure(series.math, b, 3, i)?;
                let target = if others.value(i) {
                    &mut other
                } else {
                    match position.get(&columns::opt_str(&values, i)) {
                        Some(p) => &mut lines[*p],
                        None => continue,
                    }
                };
                place(target, columns::opt_i64(&buckets, i), m);
            }
        }
        out.extend(lines);
        if has_other {
            out.push(other);
        }
    }
    Ok(TrendsResult { series: out })
}

/// `math: total` with a breakdown in one pass: counts are additive, so events are
/// counted per (value, bucket) only ([`counted`]); each value's total is the sum of its
/// buckets (every event of the range has exactly one bucket), the values are ranked, and
/// those beyond the limit are summed into "$other" here rather than by more aggregation.
async fn total_by_value(
    ctx: &SessionContext,
    projected: DataFrame,
    spec: &TrendsSpec,
    width: usize,
    line: &(dyn Fn(Option<String>) -> TrendsSeries + Sync),
) -> Result<Vec<TrendsSeries>> {
    let mut ranked = counted(ctx, projected, width, true, line).await?;
    let count = |s: &TrendsSeries| match s.total {
        Measure::Count(n) => n,
        Measure::Value(_) => 0,
    };
    ranked.sort_by(|a, b| {
        count(b)
            .cmp(&count(a))
            .then_with(|| a.breakdown_value.cmp(&b.breakdown_value))
    });
    let rest = ranked.split_off(spec.breakdown_limit().min(ranked.len()));
    if !rest.is_empty() {
        let mut other = line(Some(OTHER_BREAKDOWN.to_string()));
        let mut sums = vec![0u64; other.data.len()];
        let mut total = 0u64;
        for s in &rest {
            total += count(s);
            for (sum, m) in sums.iter_mut().zip(&s.data) {
                if let Measure::Count(n) = m {
                    *sum += n;
                }
            }
        }
        other.data = sums.into_iter().map(Measure::Count).collect();
        other.total = Measure::Count(total);
        ranked.push(other);
    }
    Ok(ranked)
}

/// Events counted per bucket by `bucket_counts`, grouped by breakdown value (`bv`) when
/// `by_value`, else in one group: one series per group, its total the sum of its
/// buckets. Grouping by the value alone keeps the hash table at the values (few), where
/// grouping by (bucket, value) hashes both per event.
async fn counted(
    ctx: &SessionContext,
    projected: DataFrame,
    width: usize,
    by_value: bool,
    line: &(dyn Fn(Option<String>) -> TrendsSeries + Sync),
) -> Result<Vec<TrendsSeries>> {
    let counts = ctx
        .udaf(BUCKET_COUNTS)?
        .call(vec![
            col("bucket"),
            lit(i64::try_from(width.max(1)).unwrap_or(i64::MAX)),
        ])
        .alias("m");
    let (groups, select) = if by_value {
        (vec![col("bv")], vec![col("m"), col("bv")])
    } else {
        (vec![], vec![col("m")])
    };
    let batches = projected
        .aggregate(groups, vec![counts])?
        .select(select)?
        .collect()
        .await?;
    let mut out = Vec::new();
    for b in &batches {
        let buckets = columns::struct_list(b, 0, "buckets")?;
        let counts = columns::struct_list(b, 0, "counts")?;
        let values = if by_value {
            Some(columns::utf8(b, 1)?)
        } else {
            None
        };
        for i in 0..b.num_rows() {
            let mut series = line(values.as_ref().and_then(|v| columns::opt_str(v, i)));
            let mut total = 0u64;
            let (bs, cs) = (
                columns::list_i64(&buckets, i)?,
                columns::list_i64(&counts, i)?,
            );
            for (bucket, n) in bs.values().iter().zip(cs.values().iter()) {
                let n = u64::try_from(*n).unwrap_or(0);
                total += n;
                place(&mut series, Some(*bucket), Measure::Count(n));
            }
            series.total = Measure::Count(total);
            out.push(series);
        }
    }
    Ok(out)
}

/// Most buckets [`unique_users_per_user`] takes: its per-user bitsets hold one bit per
/// bucket (64 bytes per user at this bound).
const PER_USER_MAX_BUCKETS: usize = 512;

/// `unique_users` without a breakdown, by one aggregation keyed by user alone: each
/// user's buckets are a bitset (the start periods of `retention_periods`), and the user
/// then counts once in each of its buckets and once in the range total. Grouping by
/// (bucket, user) instead holds a group per user and active bucket, then a distinct count
/// over them per bucket and for the total.
async fn unique_users_per_user(
    ctx: &SessionContext,
    exprs: &Exprs,
    base: DataFrame,
    bucket: &Expr,
    width: usize,
    mut line: TrendsSeries,
) -> Result<TrendsSeries> {
    if width == 0 {
        return Ok(line);
    }
    let buckets = ctx.udaf(RETENTION_PERIODS)?.call(vec![
        bucket.clone(),
        lit(ScalarValue::Int64(None)),
        lit(i64::try_from(width).unwrap_or(i64::MAX)),
    ]);
    let batches = exprs
        .per_user(base, vec![buckets.alias("b")])?
        .select(vec![col("b")])?
        .collect()
        .await?;
    let mut counts = vec![0u64; width];
    let mut total = 0u64;
    for b in &batches {
        let sets = columns::struct_binary(b, 0, "starts")?;
        for i in 0..sets.len() {
            let mut any = false;
            for k in set_bits(sets.value(i)) {
                if let Some(c) = counts.get_mut(k) {
                    *c += 1;
                    any = true;
                }
            }
            total += u64::from(any);
        }
    }
    line.data = counts.into_iter().map(Measure::Count).collect();
    line.total = Measure::Count(total);
    Ok(line)
}

/// The user key column of the projection ([`Exprs::user`]).
const USER: &str = "user";

/// The columns the aggregation reads: `bucket`, `user`, `v` (the math's
/// property), and with a breakdown `bv` (value kept, NULL in "$other") and `other`.
fn project(
    base: DataFrame,
    exprs: &Exprs,
    series: &SeriesSpec,
    bucket: &Expr,
    breakdown: Option<(Expr, Expr)>,
) -> Result<DataFrame> {
    let mut cols = vec![bucket.clone().alias("bucket"), exprs.user().alias(USER)];
    if let Some(p) = series
        .property
        .as_deref()
        .filter(|_| series.math.needs_property())
    {
        cols.push(exprs.prop_num(p).alias("v"));
    }
    if let Some((bv, other)) = breakdown {
        cols.push(bv.alias("bv"));
        cols.push(other.alias("other"));
    }
    let projected = base.select(cols)?;
    if series.math != Math::UniqueUsers {
        return Ok(projected);
    }
    // Unique users: one row per (bucket, user[, value]) first. The distinct count over
    // these few rows is then cheap for every grouping set, where a distinct
    // accumulator over every event would hash each user id once per event.
    let keys: Vec<Expr> = projected
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    projected.aggregate(keys, vec![])
}

/// The series' math over the projected columns.
fn measure_expr(ctx: &SessionContext, series: &SeriesSpec) -> Result<Expr> {
    let value = || col("v");
    Ok(match series.math {
        Math::Total => count(lit(1)),
        Math::UniqueUsers => count_distinct(col(USER)),
        Math::Sum => sum(value()),
        Math::Avg => avg(value()),
        Math::Min => min(value()),
        Math::Max => max(value()),
        m => {
            let level = m.quantile_level().unwrap_or(0.5);
            ctx.udaf(QUANTILE_EXACT)?.call(vec![value(), lit(level)])
        }
    })
}

fn read_measure(
    math: Math,
    batch: &arrow::array::RecordBatch,
    col: usize,
    i: usize,
) -> Result<Measure> {
    Ok(match math {
        Math::Total | Math::UniqueUsers => {
            let a = columns::int64(batch, col)?;
            Measure::Count(columns::opt_i64(&a, i).map_or(0, |v| u64::try_from(v).unwrap_or(0)))
        }
        _ => {
            let a = columns::float64(batch, col)?;
            Measure::Value(columns::opt_f64(&a, i).unwrap_or(0.0))
        }
    })
}

/// Puts `m` at its bucket (an index into the series' buckets; `None`: the series total).
fn place(line: &mut TrendsSeries, bucket: Option<i64>, m: Measure) {
    match bucket {
        None => line.total = m,
        Some(b) => {
            if let Some(slot) = usize::try_from(b).ok().and_then(|i| line.data.get_mut(i)) {
                *slot = m;
            }
        }
    }
}
