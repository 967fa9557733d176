//! The privacy pipeline: what happens to every event between decoding and the WAL so
//! that Minim keeps less. Tracking plan (`plan`), PII detection (`detect`) and
//! scrubbing, pseudonymous identity (`pseudo`), cookieless visitor ids (`salt`), URL
//! hygiene (`url`), user-agent (`ua`) and geo (`geo`) enrichment, and per-project
//! counters (`counters`). `pipeline::Pipeline` runs them in order.
//!
//! Knows nothing about HTTP or disk formats: it takes canonical events plus the
//! request's client context (IP, user agent) and returns events that are safe to store,
//! or the reason they were dropped. The client IP never leaves this crate.

pub mod counters;
pub mod detect;
pub mod geo;
mod json;
pub mod pipeline;
pub mod plan;
pub mod pseudo;
pub mod salt;
pub mod ua;
pub mod url;

pub use counters::PrivacyStats;
pub use pipeline::{ClientContext, Outcome, Pipeline, PrivacyConfig, ProjectContext, Suggestion};
pub use plan::{CompiledPlan, PlanError, TrackingPlan};
pub use pseudo::Secret;
