//! `GeneratedEvent`: one event as plain owned data, and its NDJSON line.

use std::io::Write;

use serde_json::{Map, Value};

use crate::generator::Generator;
use crate::render;

/// One synthetic event in the native ingest shape.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedEvent {
    pub event: String,
    pub distinct_id: String,
    /// Milliseconds since the Unix epoch, UTC.
    pub timestamp_ms: i64,
    /// 32 lowercase hex characters, unique within one generated stream.
    pub insert_id: String,
    pub properties: Map<String, Value>,
}

impl GeneratedEvent {
    /// Writes the event as one JSON line, without the trailing newline:
    /// `{"event":..,"distinct_id":..,"timestamp":"2026-01-05T10:00:00.123Z","insert_id":..,"properties":{..}}`.
    ///
    /// Properties are written in ascending key order whatever the map's own order
    /// (so the bytes do not depend on serde_json's `preserve_order` feature), which
    /// makes this identical to the line [`crate::write_ndjson`] writes.
    pub fn write_json(&self, out: &mut impl Write) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(512);
        buf.extend_from_slice(b"{\"event\":");
        render::push_json_str(&mut buf, &self.event);
        buf.extend_from_slice(b",\"distinct_id\":");
        render::push_json_str(&mut buf, &self.distinct_id);
        buf.extend_from_slice(b",\"timestamp\":\"");
        crate::time::push_timestamp(&mut buf, self.timestamp_ms);
        buf.extend_from_slice(b"\",\"insert_id\":");
        render::push_json_str(&mut buf, &self.insert_id);
        buf.extend_from_slice(b",\"properties\":{");
        let mut props: Vec<(&String, &Value)> = self.properties.iter().collect();
        props.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (i, (key, value)) in props.into_iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            render::push_json_str(&mut buf, key);
            buf.push(b':');
            serde_json::to_writer(&mut buf, value)?;
        }
        buf.extend_from_slice(b"}}");
        out.write_all(&buf)
    }
}

impl Iterator for Generator {
    type Item = GeneratedEvent;

    fn next(&mut self) -> Option<GeneratedEvent> {
        let raw = self.next_raw()?;
        let keys = *self.keys();
        render::prepare(&raw, &keys, &mut self.render);
        Some(GeneratedEvent {
            event: raw.kind.name().to_owned(),
            distinct_id: self.render.distinct_id.clone(),
            timestamp_ms: raw.ts_ms,
            insert_id: self.render.insert_id.clone(),
            properties: render::to_map(&raw, &self.render),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.remaining()).unwrap_or(usize::MAX);
        (n, usize::try_from(self.remaining()).ok())
    }
}

impl std::iter::FusedIterator for Generator {}
