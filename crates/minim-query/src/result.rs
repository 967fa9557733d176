//! Result types; they serialize to exactly the shapes of CONTRACT.md "Queries" (plus
//! documented extension fields).
//!
//! Numbers: user and event counts are JSON integers ([`Measure::Count`]); property maths
//! are JSON floats ([`Measure::Value`], always written with a fraction or exponent, e.g.
//! `3.0`). A non-finite float cannot occur for inputs that are JSON numbers unless a sum
//! overflows f64, in which case serde_json writes `null`.

use serde::{Deserialize, Serialize};

/// Breakdown value of the bucket that merges every value beyond the breakdown limit.
pub const OTHER_BREAKDOWN: &str = "$other";

/// The answer to a [`crate::QuerySpec`]; serializes as the kind's own object (no tag).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum QueryResult {
    Trends(TrendsResult),
    Funnel(FunnelResult),
    Retention(RetentionResult),
    Paths(PathsResult),
    Events(EventsResult),
}

/// One number of a trend: a count (integer) or a property math (float).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Measure {
    Count(u64),
    Value(f64),
}

/// `{"series": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendsResult {
    pub series: Vec<TrendsSeries>,
}

/// One line of a trend. `labels` and `data` have one entry per bucket in range, in order,
/// zero-filled. Series come in spec order; with a breakdown, each spec series yields one
/// series per kept breakdown value (ranked) and then `"$other"` if values were merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendsSeries {
    pub event: String,
    /// `null` without breakdown, and for events where the breakdown property is not set.
    pub breakdown_value: Option<String>,
    pub labels: Vec<String>,
    pub data: Vec<Measure>,
    pub total: Measure,
}

/// `{"steps": [...], "breakdowns": [...]}` (`breakdowns` only when the spec has one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunnelResult {
    pub steps: Vec<FunnelStepResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breakdowns: Option<Vec<FunnelBreakdown>>,
}

/// One funnel step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunnelStepResult {
    pub event: String,
    /// Users whose furthest step is at least this one.
    pub count: u64,
    /// Extension: median over the users counted here of the seconds between their
    /// previous step and this one (`null` for the first step and when `count` is 0).
    pub median_seconds_from_previous: Option<f64>,
}

/// The funnel of the users with one breakdown value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunnelBreakdown {
    pub breakdown_value: Option<String>,
    pub steps: Vec<FunnelStepResult>,
}

/// `{"cohorts": [...]}`: one cohort per period in `[from, to]`, empty ones included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetentionResult {
    pub cohorts: Vec<Cohort>,
}

/// One retention cohort.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cohort {
    /// First day of the cohort period, `YYYY-MM-DD`.
    pub cohort: String,
    pub size: u64,
    /// `periods` entries: users of the cohort with a `return_event` in period `cohort + k`.
    pub returned: Vec<u64>,
}

/// `{"root": {...}}`: a tree of event names with user counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathsResult {
    pub root: PathNode,
}

/// A node: the users whose path so far is the names from the root to here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathNode {
    pub event: String,
    pub count: u64,
    /// By count descending, then name; at most `top_n`, the rest merged into a leaf
    /// named `"$other"` (last). Users whose path ends here are `count - sum(children)`.
    pub children: Vec<PathNode>,
}

/// `{"events": [...], "next_cursor": ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventsResult {
    pub events: Vec<EventRow>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// One event in the native ingest shape, plus when the server received it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    pub event: String,
    pub distinct_id: String,
    /// RFC 3339 UTC with milliseconds, e.g. `2026-01-05T10:00:00.000Z`.
    pub timestamp: String,
    pub insert_id: Option<String>,
    pub properties: serde_json::Value,
    pub received_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shapes_match_the_contract() {
        let t = QueryResult::Trends(TrendsResult {
            series: vec![TrendsSeries {
                event: "signup".into(),
                breakdown_value: None,
                labels: vec!["2026-01-01".into()],
                data: vec![Measure::Count(3)],
                total: Measure::Value(1.5),
            }],
        });
        assert_eq!(
            serde_json::to_value(&t).unwrap(),
            json!({"series": [{"event": "signup", "breakdown_value": null,
                "labels": ["2026-01-01"], "data": [3], "total": 1.5}]})
        );
        let f = QueryResult::Funnel(FunnelResult {
            steps: vec![FunnelStepResult {
                event: "view".into(),
                count: 2,
                median_seconds_from_previous: None,
            }],
            breakdowns: None,
        });
        assert_eq!(
            serde_json::to_value(&f).unwrap(),
            json!({"steps": [{"event": "view", "count": 2, "median_seconds_from_previous": null}]})
        );
        let r = QueryResult::Retention(RetentionResult {
            cohorts: vec![Cohort {
                cohort: "2026-01-01".into(),
                size: 2,
                returned: vec![2, 1],
            }],
        });
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"cohorts": [{"cohort": "2026-01-01", "size": 2, "returned": [2, 1]}]})
        );
        // Floats stay floats even when integral, counts stay integers.
        assert_eq!(serde_json::to_string(&Measure::Value(3.0)).unwrap(), "3.0");
        assert_eq!(serde_json::to_string(&Measure::Count(3)).unwrap(), "3");
    }
}
