//! The DataFusion side of the query layer (issue 3, in progress): a per-query session
//! whose `events` table is one project's segments plus its memtable, and the scalar
//! functions that read event properties with the same meaning as `crate::props`.
//!
//! Insight kinds will compile to plans over this session; `reference/` stays the oracle.

mod table;
mod udaf;
mod udf;

use datafusion::error::Result;
use datafusion::prelude::{SessionConfig, SessionContext};
use minim_core::ProjectId;
use minim_store::Snapshot;

pub use table::EVENTS_TABLE;
pub use udf::{PROP_NUM, PROP_STR};

/// A DataFusion session over `project`'s events in `snapshot`, with Minim's functions
/// registered. Only that project's data is reachable from it.
pub async fn session(snapshot: &Snapshot, project: &ProjectId) -> Result<SessionContext> {
    let config = SessionConfig::new().with_target_partitions(
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
    );
    let ctx = SessionContext::new_with_config(config);
    udf::register(&ctx);
    udaf::register(&ctx);
    table::register_events(&ctx, snapshot, project).await?;
    Ok(ctx)
}
