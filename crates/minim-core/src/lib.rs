//! Domain types shared by every layer: project ids, the canonical event, how properties text is read, and time helpers.
//!
//! This crate is deliberately tiny and dependency-light: every other crate depends on
//! it, and it depends on none of them. It knows nothing about HTTP, SQL or disk formats.

mod event;
mod ids;
pub mod props;
pub mod time;

pub use event::{Event, EventBatch};
pub use ids::{InvalidId, ProjectId};
