//! `SpecLimits`: the bounds a spec must stay within to be accepted (every one has a unit).

/// Bounds checked by [`crate::QuerySpec::validate_with`]. They bound the size of a result
/// and the work of a query before it runs; the engine adds memory and time limits of its
/// own. [`SpecLimits::default`] is what [`crate::QuerySpec::validate`] uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecLimits {
    /// Trend buckets in `[from, to]` at the chosen interval; also retention cohorts.
    /// 10,000 hours is about 416 days of hourly buckets.
    pub max_buckets: u64,
    /// Cells in a result: trends `buckets x series x (breakdown_limit + 1)`,
    /// retention `cohorts x periods`.
    pub max_result_cells: u64,
    /// Entries in trends `series`.
    pub max_series: usize,
    /// Upper bound of `breakdown_limit` (trends and funnel).
    pub max_breakdown_limit: u32,
    /// Funnel `steps` (ClickHouse `windowFunnel` allows 32 conditions).
    pub max_steps: usize,
    /// Funnel `window_seconds`.
    pub max_window_seconds: i64,
    /// Retention `periods`.
    pub max_retention_periods: u32,
    /// Paths `depth` (events after/before the start event).
    pub max_path_depth: u32,
    /// Paths `top_n` (children kept per node).
    pub max_path_top_n: u32,
    /// Events `limit` (rows per page).
    pub max_events_limit: u32,
    /// Entries in a `filters` list.
    pub max_filters: usize,
    /// Entries in an `in` filter's value list.
    pub max_in_values: usize,
    /// Event names, property names and string filter values, in bytes.
    pub max_name_bytes: usize,
    /// A `regex` filter's pattern, in bytes.
    pub max_regex_bytes: usize,
    /// Compiled size of a `regex` filter (the `regex` crate's `size_limit`), in bytes.
    pub max_regex_compiled_bytes: usize,
}

/// `breakdown_limit` when the spec does not set one.
pub const DEFAULT_BREAKDOWN_LIMIT: u32 = 25;
/// Paths `depth` when the spec does not set one.
pub const DEFAULT_PATH_DEPTH: u32 = 3;
/// Paths `top_n` when the spec does not set one.
pub const DEFAULT_PATH_TOP_N: u32 = 5;
/// Events `limit` when the spec does not set one.
pub const DEFAULT_EVENTS_LIMIT: u32 = 100;

impl Default for SpecLimits {
    fn default() -> Self {
        Self {
            max_buckets: 10_000,
            max_result_cells: 1_000_000,
            max_series: 20,
            max_breakdown_limit: 1_000,
            max_steps: 32,
            max_window_seconds: 3_660 * 86_400,
            max_retention_periods: 366,
            max_path_depth: 10,
            max_path_top_n: 100,
            max_events_limit: 1_000,
            max_filters: 50,
            max_in_values: 1_000,
            max_name_bytes: 1_024,
            max_regex_bytes: 1_024,
            max_regex_compiled_bytes: 1 << 20,
        }
    }
}
