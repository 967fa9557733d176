//! The canonical event: what every wire format decodes into and what the store keeps.

use crate::ProjectId;

/// One analytics event after decoding and validation.
///
/// `properties` is the canonical JSON text of an object (`{}` when empty). It is kept
/// as text because the store writes it as-is and queries parse it lazily; decoders
/// guarantee it is a valid JSON object within the configured limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Event time, milliseconds since the Unix epoch, UTC.
    pub timestamp_ms: i64,
    pub event: String,
    pub distinct_id: String,
    /// Client-supplied idempotency key; a repeated `(project, insert_id)` is stored once.
    pub insert_id: Option<String>,
    pub properties: String,
    /// The values of top-level properties the tracking plan classed `personal` when the
    /// event was received, as canonical JSON object text; `properties` holds
    /// [`crate::props::REDACTED`] in their place. Kept apart so that the store can encrypt
    /// them under a key only `read_personal` readers load; [`crate::props::merge_personal`]
    /// puts them back. `None` when the event has none.
    pub personal: Option<String>,
    /// Server receive time, milliseconds since the Unix epoch, UTC.
    pub received_at_ms: i64,
}

impl Event {
    /// Rough in-memory footprint, used for memtable and queue accounting.
    pub fn approx_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.event.len()
            + self.distinct_id.len()
            + self.insert_id.as_ref().map_or(0, String::len)
            + self.properties.len()
            + self.personal.as_ref().map_or(0, String::len)
    }

    /// `properties` with the personal values in place (what a `read_personal` reader sees).
    pub fn full_properties(&self) -> std::borrow::Cow<'_, str> {
        match &self.personal {
            Some(p) => std::borrow::Cow::Owned(crate::props::merge_personal(&self.properties, p)),
            None => std::borrow::Cow::Borrowed(&self.properties),
        }
    }
}

/// Events of one project that travel together (one request, one WAL record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBatch {
    pub project: ProjectId,
    pub events: Vec<Event>,
}
