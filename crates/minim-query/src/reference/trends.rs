//! Trends reference: per series, the events in range that match, bucketed and measured.
//!
//! Semantics:
//! - An event counts for a series when its name equals the series' `event`, its timestamp
//!   is in `[from 00:00, to + 1 day 00:00)` UTC and every filter matches.
//! - One label per bucket overlapping the range ([`crate::time`]), zero-filled.
//! - `data[i]` is the series' [`Math`] over the counted events in bucket `i`; `total` is
//!   the same math over all counted events of the series (so for `unique_users` it is
//!   the distinct count over the whole range, for `avg` the mean of all values, ...).
//! - Breakdown: counted events are grouped by the string form of the breakdown property
//!   (not set = `null` group). Groups are ranked by number of counted events descending,
//!   then by value ascending (`null` first). The first `breakdown_limit` keep their own
//!   series; all others are merged into one series with value `"$other"` (its maths are
//!   computed over the merged events: users are distinct across the merged values).
//!   A user with events in several values is counted in each. A spec series with no
//!   counted events yields no series when broken down (there is no value to show), and
//!   one zero-filled series otherwise. Ranking is per spec series.

use std::collections::{BTreeMap, BTreeSet};

use minim_core::Event;

use super::filter::Filters;
use crate::props::{Properties, get, parse_properties, property_string, value_number};
use crate::quantile::{quantile_exact, sorted, sum_sorted};
use crate::result::{Measure, OTHER_BREAKDOWN, TrendsResult, TrendsSeries};
use crate::spec::{Date, Math, SeriesSpec, TrendsSpec};
use crate::time::{bucket_start, bucket_starts, label};

type Counted<'a> = (&'a Event, Properties);

pub fn trends(spec: &TrendsSpec, events: &[Event]) -> TrendsResult {
    let (start, end) = Date::range_ms(spec.from, spec.to);
    let starts = bucket_starts(spec.interval, spec.from, spec.to);
    let labels: Vec<String> = starts.iter().map(|s| label(spec.interval, *s)).collect();
    let filters = Filters::new(&spec.filters);
    let mut out = Vec::new();

    for series in &spec.series {
        let counted: Vec<Counted> = events
            .iter()
            .filter(|e| e.event == series.event && start <= e.timestamp_ms && e.timestamp_ms < end)
            .map(|e| (e, parse_properties(&e.properties)))
            .filter(|(_, props)| filters.matches(props))
            .collect();
        let line = |value: Option<String>, group: &[&Counted]| TrendsSeries {
            event: series.event.clone(),
            breakdown_value: value,
            labels: labels.clone(),
            data: starts
                .iter()
                .map(|b| {
                    let in_bucket: Vec<&Counted> = group
                        .iter()
                        .copied()
                        .filter(|(e, _)| bucket_start(spec.interval, e.timestamp_ms) == Some(*b))
                        .collect();
                    measure(series, &in_bucket)
                })
                .collect(),
            total: measure(series, group),
        };

        let Some(prop) = &spec.breakdown else {
            let all: Vec<&Counted> = counted.iter().collect();
            out.push(line(None, &all));
            continue;
        };
        let mut groups: BTreeMap<Option<String>, Vec<&Counted>> = BTreeMap::new();
        for c in &counted {
            groups
                .entry(property_string(&c.1, prop))
                .or_default()
                .push(c);
        }
        let mut ranked: Vec<(Option<String>, Vec<&Counted>)> = groups.into_iter().collect();
        // By counted events descending, then value ascending (`None` first).
        ranked.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
        let rest = ranked.split_off(spec.breakdown_limit().min(ranked.len()));
        for (value, group) in &ranked {
            out.push(line(value.clone(), group));
        }
        if !rest.is_empty() {
            let merged: Vec<&Counted> = rest.into_iter().flat_map(|(_, g)| g).collect();
            out.push(line(Some(OTHER_BREAKDOWN.to_string()), &merged));
        }
    }
    TrendsResult { series: out }
}

/// The series' math over `group`.
fn measure(series: &SeriesSpec, group: &[&Counted]) -> Measure {
    match series.math {
        Math::Total => Measure::Count(group.len() as u64),
        Math::UniqueUsers => {
            let users: BTreeSet<&str> = group.iter().map(|(e, _)| e.distinct_id.as_str()).collect();
            Measure::Count(users.len() as u64)
        }
        math => {
            let prop = series.property.as_deref().unwrap_or_default();
            let values = sorted(
                group
                    .iter()
                    .filter_map(|(_, props)| get(props, prop).and_then(value_number))
                    .collect(),
            );
            let v = match math {
                Math::Sum => Some(sum_sorted(&values)),
                Math::Avg if values.is_empty() => None,
                Math::Avg => Some(sum_sorted(&values) / values.len() as f64),
                Math::Min => values.first().copied(),
                Math::Max => values.last().copied(),
                other => other
                    .quantile_level()
                    .and_then(|level| quantile_exact(&values, level)),
            };
            Measure::Value(v.unwrap_or(0.0))
        }
    }
}
