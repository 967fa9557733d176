//! Small-group suppression for restricted readers (`viewer`): a breakdown row that covers
//! fewer than `k` distinct users is not shown on its own. Rows of additive measures
//! (`total`, `sum`; funnel step counts, where each user has one breakdown value) are merged
//! into the `"$other"` row, which is itself shown only if it covers at least `k` users;
//! rows of other measures (unique users, averages, extremes, percentiles) cannot be merged
//! and are dropped. Users per trends row come from a companion `unique_users` query over
//! the same range and filters.
//!
//! Limits, on purpose simple: retention cohorts and path nodes are not breakdowns and are
//! not suppressed; the merged trends row's user count is the sum of its parts' users (a
//! user seen under several values counts several times).

use std::collections::HashMap;

use minim_query::{
    FunnelBreakdown, FunnelResult, Interval, Math, Measure, OTHER_BREAKDOWN, QuerySpec,
    TrendsResult, TrendsSeries, TrendsSpec,
};

/// The companion spec whose `total`s are the distinct users of every (series, value) row
/// of `spec`: same range, filters and breakdown, one bucket, every value on its own.
pub(crate) fn users_spec(spec: &TrendsSpec, max_breakdown_limit: u32) -> QuerySpec {
    let mut s = spec.clone();
    s.interval = Interval::Month;
    s.breakdown_limit = Some(i64::from(max_breakdown_limit));
    for series in &mut s.series {
        series.math = Math::UniqueUsers;
        series.property = None;
    }
    QuerySpec::Trends(s)
}

fn additive(math: Math) -> bool {
    matches!(math, Math::Total | Math::Sum)
}

fn add(a: Measure, b: Measure) -> Measure {
    match (a, b) {
        (Measure::Count(x), Measure::Count(y)) => Measure::Count(x.saturating_add(y)),
        (x, y) => Measure::Value(as_f64(x) + as_f64(y)),
    }
}

fn as_f64(m: Measure) -> f64 {
    match m {
        Measure::Count(n) => n as f64,
        Measure::Value(v) => v,
    }
}

/// Suppresses the rows of `result` (from `spec`) with fewer than `k` users, given the
/// companion result `users` (from [`users_spec`]). Returns how many rows were hidden.
pub(crate) fn trends(
    spec: &TrendsSpec,
    result: &mut TrendsResult,
    users: &TrendsResult,
    k: u64,
) -> usize {
    if spec.breakdown.is_none() || k <= 1 {
        return 0;
    }
    // Users per (series index, breakdown value); series of the companion come in the same
    // order per value, so index by event and position among same-event series.
    let mut per_row: HashMap<(usize, Option<&str>), u64> = HashMap::new();
    let mut totals_by_series: HashMap<usize, u64> = HashMap::new();
    let series_index = |event: &str, nth: usize| -> Option<usize> {
        spec.series
            .iter()
            .enumerate()
            .filter(|(_, s)| s.event == event)
            .nth(nth)
            .map(|(i, _)| i)
    };
    let mut seen: HashMap<(String, Option<String>), usize> = HashMap::new();
    for row in &users.series {
        let nth = seen
            .entry((row.event.clone(), row.breakdown_value.clone()))
            .or_insert(0);
        if let Some(i) = series_index(&row.event, *nth) {
            let n = match row.total {
                Measure::Count(n) => n,
                Measure::Value(v) => v as u64,
            };
            per_row.insert((i, row.breakdown_value.as_deref()), n);
            *totals_by_series.entry(i).or_default() += n;
        }
        *nth += 1;
    }
    let mut seen: HashMap<(String, Option<String>), usize> = HashMap::new();
    let mut keep: Vec<TrendsSeries> = Vec::new();
    let mut merged: HashMap<usize, TrendsSeries> = HashMap::new();
    let mut hidden = 0;
    for row in std::mem::take(&mut result.series) {
        let nth = seen
            .entry((row.event.clone(), row.breakdown_value.clone()))
            .or_insert(0);
        let index = series_index(&row.event, *nth);
        *nth += 1;
        let Some(i) = index else {
            keep.push(row);
            continue;
        };
        let is_other = row.breakdown_value.as_deref() == Some(OTHER_BREAKDOWN);
        let users_here = per_row
            .get(&(i, row.breakdown_value.as_deref()))
            .copied()
            .unwrap_or(0);
        if !is_other && users_here >= k {
            keep.push(row);
            continue;
        }
        if !is_other {
            hidden += 1;
        }
        if !additive(spec.series[i].math) {
            if is_other {
                keep.push(row);
            }
            continue;
        }
        let entry = merged.entry(i).or_insert_with(|| TrendsSeries {
            event: row.event.clone(),
            breakdown_value: Some(OTHER_BREAKDOWN.to_owned()),
            labels: row.labels.clone(),
            data: vec![Measure::Count(0); row.data.len()],
            total: Measure::Count(0),
        });
        for (d, x) in entry.data.iter_mut().zip(&row.data) {
            *d = add(*d, *x);
        }
        entry.total = add(entry.total, row.total);
    }
    // The merged rows: the old "$other" plus the hidden rows, shown when big enough.
    let mut other_users: HashMap<usize, u64> = HashMap::new();
    for (i, total) in &totals_by_series {
        let shown: u64 = keep
            .iter()
            .filter(|r| r.breakdown_value.as_deref() != Some(OTHER_BREAKDOWN))
            .filter(|r| spec.series.get(*i).is_some_and(|s| s.event == r.event))
            .filter_map(|r| per_row.get(&(*i, r.breakdown_value.as_deref())))
            .sum();
        other_users.insert(*i, total.saturating_sub(shown));
    }
    let big_enough = |i: usize| other_users.get(&i).copied().unwrap_or(0) >= k;
    keep.retain(|r| {
        r.breakdown_value.as_deref() != Some(OTHER_BREAKDOWN)
            || spec
                .series
                .iter()
                .position(|s| s.event == r.event)
                .is_none_or(big_enough)
    });
    let mut merged: Vec<(usize, TrendsSeries)> = merged.into_iter().collect();
    merged.sort_by_key(|(i, _)| *i);
    keep.extend(
        merged
            .into_iter()
            .filter(|(i, _)| big_enough(*i))
            .map(|(_, row)| row),
    );
    result.series = keep;
    hidden
}

/// Funnel breakdown rows with fewer than `k` users entering (step 1) are merged into
/// `"$other"` (users have one breakdown value each, so counts add up exactly), which is
/// dropped too if it stays under `k`.
pub(crate) fn funnel(result: &mut FunnelResult, k: u64) -> usize {
    let Some(rows) = result.breakdowns.take() else {
        return 0;
    };
    if k <= 1 {
        result.breakdowns = Some(rows);
        return 0;
    }
    let entering = |b: &FunnelBreakdown| b.steps.first().map_or(0, |s| s.count);
    let mut keep = Vec::new();
    let mut other: Option<FunnelBreakdown> = None;
    let mut hidden = 0;
    for row in rows {
        let is_other = row.breakdown_value.as_deref() == Some(OTHER_BREAKDOWN);
        if !is_other && entering(&row) >= k {
            keep.push(row);
            continue;
        }
        hidden += usize::from(!is_other);
        match &mut other {
            None => {
                let mut o = row;
                o.breakdown_value = Some(OTHER_BREAKDOWN.to_owned());
                other = Some(o);
            }
            Some(o) => {
                for (a, b) in o.steps.iter_mut().zip(&row.steps) {
                    a.count += b.count;
                    // A median of merged groups is not the merge of medians.
                    a.median_seconds_from_previous = None;
                }
            }
        }
    }
    if let Some(o) = other.filter(|o| entering(o) >= k) {
        keep.push(o);
    }
    result.breakdowns = Some(keep);
    hidden
}

#[cfg(test)]
mod tests {
    use super::*;
    use minim_query::FunnelStepResult;

    fn step(n: u64) -> FunnelStepResult {
        FunnelStepResult {
            event: "e".into(),
            count: n,
            median_seconds_from_previous: Some(1.0),
        }
    }

    fn row(v: &str, counts: &[u64]) -> FunnelBreakdown {
        FunnelBreakdown {
            breakdown_value: Some(v.into()),
            steps: counts.iter().map(|&n| step(n)).collect(),
        }
    }

    #[test]
    fn funnel_rows_under_k_merge_into_other() {
        let mut r = FunnelResult {
            steps: vec![step(20), step(9)],
            breakdowns: Some(vec![
                row("a", &[10, 5]),
                row("b", &[3, 2]),
                row("c", &[4, 1]),
            ]),
        };
        assert_eq!(funnel(&mut r, 5), 2);
        let b = r.breakdowns.unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[1].breakdown_value.as_deref(), Some(OTHER_BREAKDOWN));
        assert_eq!(b[1].steps[0].count, 7);
        assert_eq!(b[1].steps[1].count, 3);

        let mut r = FunnelResult {
            steps: vec![step(6)],
            breakdowns: Some(vec![row("a", &[5]), row("b", &[1])]),
        };
        funnel(&mut r, 5);
        assert_eq!(r.breakdowns.unwrap().len(), 1, "a 1-user other is dropped");
    }

    fn series(v: Option<&str>, total: u64) -> TrendsSeries {
        TrendsSeries {
            event: "e".into(),
            breakdown_value: v.map(Into::into),
            labels: vec!["d".into()],
            data: vec![Measure::Count(total)],
            total: Measure::Count(total),
        }
    }

    #[test]
    fn trends_rows_under_k_users_merge_or_vanish() {
        let spec: TrendsSpec = serde_json::from_value(serde_json::json!({
            "from": "2026-01-01", "to": "2026-01-01",
            "series": [{"event": "e"}], "breakdown": "country"
        }))
        .unwrap();
        let mut result = TrendsResult {
            series: vec![
                series(Some("GB"), 50),
                series(Some("IS"), 2),
                series(Some("NO"), 3),
            ],
        };
        let users = TrendsResult {
            series: vec![
                series(Some("GB"), 10),
                series(Some("IS"), 1),
                series(Some("NO"), 2),
            ],
        };
        assert_eq!(trends(&spec, &mut result.clone(), &users, 5), 2);
        trends(&spec, &mut result, &users, 5);
        let values: Vec<_> = result
            .series
            .iter()
            .map(|s| s.breakdown_value.clone())
            .collect();
        assert_eq!(
            values,
            vec![Some("GB".to_owned())],
            "3 users left: under k, dropped"
        );

        let mut result = TrendsResult {
            series: vec![
                series(Some("GB"), 50),
                series(Some("IS"), 20),
                series(Some("NO"), 30),
            ],
        };
        let users = TrendsResult {
            series: vec![
                series(Some("GB"), 10),
                series(Some("IS"), 3),
                series(Some("NO"), 4),
            ],
        };
        trends(&spec, &mut result, &users, 5);
        assert_eq!(result.series.len(), 2);
        assert_eq!(
            result.series[1].breakdown_value.as_deref(),
            Some(OTHER_BREAKDOWN)
        );
        assert_eq!(result.series[1].total, Measure::Count(50), "IS + NO merged");
    }
}
