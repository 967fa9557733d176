//! Minim's aggregate functions (funnel, retention, exact quantile), registered from one list.

use datafusion::prelude::SessionContext;

/// Registers every Minim aggregate function on `ctx`.
pub(crate) fn register(_ctx: &SessionContext) {}
