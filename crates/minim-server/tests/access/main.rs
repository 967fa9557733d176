//! Access control end to end (one test binary: each links DataFusion, so they are few):
//! the incident acted out (`incident.rs`) and the authorization matrix (`matrix.rs`).

#[path = "../common/mod.rs"]
mod common;
mod incident;
mod matrix;
