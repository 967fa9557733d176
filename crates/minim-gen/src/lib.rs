//! Deterministic synthetic analytics events (`minim gen`), as NDJSON in the native
//! ingest shape.
//!
//! ```
//! let cfg = minim_gen::GenConfig::new(1_000);
//! let mut out = Vec::new();
//! let n = minim_gen::write_ndjson(cfg, &mut out).unwrap();
//! assert_eq!(n, 1_000);
//! assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1_000);
//! ```
//!
//! # The data
//! Sessions (bursts of events seconds to minutes apart, sharing a `$session_id`) by
//! registered users `user-1 ..= user-{users}` with heavy-tailed (Zipf-like, exponent
//! 0.75) activity, plus anonymous visitors `anon-{hex}`. Events: `$pageview`
//! (with `$current_url`, `$pathname`, `duration_ms`; the session's first pageview
//! carries `$referrer`/`$referring_domain` and sometimes `utm_*`), `button_clicked`,
//! `search`, `feature_used`, `login` (returning users), and the funnel `signup ->
//! activated -> purchase` (`revenue` in USD with cents, `plan`, `seats`), each step
//! strictly later than the previous one for the same user. Every event has
//! `$browser`, `$os`, `$device_type`, `$country` (fixed per user); registered users'
//! events have `plan`. Traffic follows a daily and weekly rhythm with slight growth.
//!
//! A few percent of events carry fake personal data for the privacy pipeline to
//! catch: `email`/`name`/`phone` on `signup`, emails, names and phone numbers typed
//! into `search` queries, and in pageview URLs (`/account?email=jane.doe%40gmail.com`,
//! `/users/jane.doe@gmail.com`, `/invite/accept?name=..&email=..`,
//! `/reset-password?email=..`, `/support/callback?phone=..`).
//!
//! # Guarantees
//! - Same [`GenConfig`] => byte-identical output on every platform: ChaCha8 seeded
//!   from the config, integer arithmetic and correctly rounded float operations only
//!   (no libm `ln`/`exp`/`powf`, no hash-map order, no clock).
//! - Exactly `events` lines; `insert_id`s unique within the stream (a bijection of
//!   the stream position, keyed by the config), timestamps in `[start, start + days)`.
//! - Memory: 4 bytes per registered user, O(1) per event; output is streamed.
//! - Lines are in session start order, so timestamps are nearly (not strictly) sorted.

mod config;
mod event;
mod generator;
mod mix;
mod render;
mod tables;
mod time;

use std::io::Write;

pub use config::{DEFAULT_MAX_USERS, EVENTS_PER_USER, GenConfig, GenError, MAX_DAYS, MAX_USERS};
pub use event::GeneratedEvent;
pub use generator::Generator;

/// Output is flushed to the writer in chunks of about this many bytes.
const WRITE_CHUNK_BYTES: usize = 256 * 1024;

/// Streams exactly `cfg.events` NDJSON lines (each ending in `\n`) to `out`, buffered
/// internally; returns the number of events written. Rendering is allocation-free
/// per event. A closed pipe surfaces as `GenError::Io` with `ErrorKind::BrokenPipe`.
pub fn write_ndjson(cfg: GenConfig, mut out: impl Write) -> Result<u64, GenError> {
    let mut generator = Generator::new(cfg)?;
    let mut buf = Vec::with_capacity(WRITE_CHUNK_BYTES + 4096);
    let mut count = 0u64;
    while let Some(raw) = generator.next_raw() {
        let keys = *generator.keys();
        render::prepare(&raw, &keys, &mut generator.render);
        render::write_event(&raw, &generator.render, &mut buf);
        buf.push(b'\n');
        count += 1;
        if buf.len() >= WRITE_CHUNK_BYTES {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()?;
    Ok(count)
}
