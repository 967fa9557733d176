//! Insight queries: the spec of every query kind, its result shape, and a naive reference
//! implementation that defines what the answers are.
//!
//! This crate owns:
//! - [`spec`]: [`QuerySpec`] (`trends`, `funnel`, `retention`, `paths`, `events`) as
//!   CONTRACT.md "Queries" and issue 3 define them, parsed from JSON with errors that name
//!   the field ([`SpecError`], stable [`SpecError::code`]), and [`QuerySpec::validate`]
//!   against [`SpecLimits`];
//! - [`result`]: the result types, which serialize to the contract's JSON shapes;
//! - the shared semantics every engine must follow: UTC buckets and labels ([`time`]),
//!   property values ([`props`]), exact quantiles ([`quantile`]);
//! - [`reference`](mod@reference): one naive, obviously-correct implementation per kind over `&[Event]`.
//!   It is the oracle that tests compare engines against, never the production path.
//!
//! The production engine (Apache DataFusion over the store's segments and memtable, with
//! funnel and retention aggregate functions) is to come; it must return exactly what
//! [`reference::run`] returns for the same events. This crate knows nothing about HTTP,
//! storage or DataFusion; the server maps [`SpecError`] to 400.

pub mod engine;
pub mod error;
pub mod limits;
pub mod quantile;
pub mod reference;
pub mod result;
pub mod spec;
pub mod time;

/// Property values: defined in `minim-core` because storage reads them too (shredded
/// property columns).
pub use minim_core::props;

pub use error::{ErrorCode, SpecError};
pub use limits::SpecLimits;
pub use result::{
    Cohort, EventRow, EventsResult, FunnelBreakdown, FunnelResult, FunnelStepResult, Measure,
    OTHER_BREAKDOWN, PathNode, PathsResult, QueryResult, RetentionResult, TrendsResult,
    TrendsSeries,
};
pub use spec::{
    Date, EventsCursor, EventsSpec, Filter, FilterOp, FunnelSpec, FunnelStepSpec, Interval, Math,
    PathDirection, PathsSpec, Period, QuerySpec, RetentionSpec, RetentionType, SeriesSpec,
    TrendsSpec,
};
