//! WAL on-disk format, version 1: a file header and checksummed, length-prefixed records.
//!
//! ```text
//! file   := header record*
//! header := magic "MINIMWAL" | version u16 | flags u16 | key_id u32 | file_no u64 | crc32c u32 | reserved u32   (32 bytes)
//! record := len u32 | crc32c u32 | kind u8 | flags u8 | key_id u32 | seq u64 | payload[len]
//! ```
//! All integers little-endian. The record CRC covers `kind..payload` (it detects torn
//! writes; authenticity comes from the encryption). `key_id` 0 with flag bit 0 clear
//! means plaintext. An encrypted record ([`FLAG_ENCRYPTED`]) names the project key in
//! `key_id` and its payload is `project: str16 | envelope`, the envelope holding the
//! plaintext payload (`crypt.rs`). The payload of kind 2 (event batch) is described at
//! [`encode_batch`]; kind 1, written before events carried personal values, is the same
//! without the `personal` field and is still read.

use minim_core::{Event, EventBatch, ProjectId};

pub const MAGIC: &[u8; 8] = b"MINIMWAL";
pub const VERSION: u16 = 1;
pub const FILE_HEADER_LEN: usize = 32;
pub const RECORD_HEADER_LEN: usize = 22;
pub const KIND_EVENT_BATCH: u8 = 2;
/// An event batch without `personal` values (written by earlier versions).
pub const KIND_EVENT_BATCH_V1: u8 = 1;
pub const FLAG_ENCRYPTED: u8 = 1;

const NONE_LEN: u32 = u32::MAX;

/// The parsed file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    pub version: u16,
    pub flags: u16,
    pub key_id: u32,
    pub file_no: u64,
}

impl FileHeader {
    pub fn new(file_no: u64) -> Self {
        Self {
            version: VERSION,
            flags: 0,
            key_id: 0,
            file_no,
        }
    }

    pub fn encode(&self) -> [u8; FILE_HEADER_LEN] {
        let mut b = [0u8; FILE_HEADER_LEN];
        b[0..8].copy_from_slice(MAGIC);
        b[8..10].copy_from_slice(&self.version.to_le_bytes());
        b[10..12].copy_from_slice(&self.flags.to_le_bytes());
        b[12..16].copy_from_slice(&self.key_id.to_le_bytes());
        b[16..24].copy_from_slice(&self.file_no.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..24]);
        b[24..28].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Result<Self, String> {
        if b.len() < FILE_HEADER_LEN {
            return Err("file shorter than its header".into());
        }
        if &b[0..8] != MAGIC {
            return Err("not a minim WAL file (bad magic)".into());
        }
        let crc = u32::from_le_bytes(le4(&b[24..28]));
        if crc != crc32c::crc32c(&b[0..24]) {
            return Err("file header checksum mismatch".into());
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != VERSION {
            return Err(format!("unsupported WAL version {version}"));
        }
        Ok(Self {
            version,
            flags: u16::from_le_bytes([b[10], b[11]]),
            key_id: u32::from_le_bytes(le4(&b[12..16])),
            file_no: u64::from_le_bytes(le8(&b[16..24])),
        })
    }
}

/// One framed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: u8,
    pub flags: u8,
    pub key_id: u32,
    pub seq: u64,
    pub payload: Vec<u8>,
}

/// Appends a framed record (header + payload) to `out`.
pub fn write_record(out: &mut Vec<u8>, kind: u8, flags: u8, key_id: u32, seq: u64, payload: &[u8]) {
    debug_assert!(payload.len() < u32::MAX as usize);
    let start = out.len();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&key_id.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32c::crc32c(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Outcome of reading one record at the start of `buf`.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// A valid record and the number of bytes it occupied.
    Record(Record, usize),
    /// `buf` ends before the record does (a torn write at the tail).
    Incomplete,
    /// The bytes are not a valid record (checksum or structure).
    Invalid(String),
}

/// Reads one record from the start of `buf`.
pub fn read_record(buf: &[u8], max_record_bytes: usize) -> ReadOutcome {
    if buf.len() < RECORD_HEADER_LEN {
        return ReadOutcome::Incomplete;
    }
    let len = u32::from_le_bytes(le4(&buf[0..4])) as usize;
    if len > max_record_bytes {
        return ReadOutcome::Invalid(format!("record length {len} exceeds the limit"));
    }
    let total = RECORD_HEADER_LEN + len;
    if buf.len() < total {
        return ReadOutcome::Incomplete;
    }
    let crc = u32::from_le_bytes(le4(&buf[4..8]));
    if crc != crc32c::crc32c(&buf[8..total]) {
        return ReadOutcome::Invalid("record checksum mismatch".into());
    }
    let rec = Record {
        kind: buf[8],
        flags: buf[9],
        key_id: u32::from_le_bytes(le4(&buf[10..14])),
        seq: u64::from_le_bytes(le8(&buf[14..22])),
        payload: buf[RECORD_HEADER_LEN..total].to_vec(),
    };
    ReadOutcome::Record(rec, total)
}

/// Encodes an event batch payload (kind 2):
///
/// ```text
/// project: str16 | count u32 | event*count
/// event := timestamp_ms i64 | received_at_ms i64 | event str32 | distinct_id str32 | insert_id opt_str32 | properties str32 | personal opt_str32
/// str16 := len u16 | utf8   str32 := len u32 | utf8   opt_str32 := str32 | 0xFFFFFFFF (absent)
/// ```
pub fn encode_batch<'a>(
    out: &mut Vec<u8>,
    project: &ProjectId,
    events: impl ExactSizeIterator<Item = &'a Event>,
) {
    let p = project.as_str().as_bytes();
    out.extend_from_slice(&(p.len() as u16).to_le_bytes());
    out.extend_from_slice(p);
    out.extend_from_slice(&(events.len() as u32).to_le_bytes());
    for e in events {
        out.extend_from_slice(&e.timestamp_ms.to_le_bytes());
        out.extend_from_slice(&e.received_at_ms.to_le_bytes());
        put_str(out, &e.event);
        put_str(out, &e.distinct_id);
        put_opt_str(out, e.insert_id.as_deref());
        put_str(out, &e.properties);
        put_opt_str(out, e.personal.as_deref());
    }
}

/// The payload of an encrypted record: the project in clear (to pick its keyset), then
/// the envelope.
pub fn encrypted_payload(out: &mut Vec<u8>, project: &ProjectId, envelope: &[u8]) {
    out.clear();
    let p = project.as_str().as_bytes();
    out.extend_from_slice(&(p.len() as u16).to_le_bytes());
    out.extend_from_slice(p);
    out.extend_from_slice(envelope);
}

/// Splits an encrypted record's payload into (project, envelope).
pub fn split_encrypted_payload(payload: &[u8]) -> Result<(&str, &[u8]), String> {
    if payload.len() < 2 {
        return Err("encrypted record shorter than its project".into());
    }
    let plen = usize::from(u16::from_le_bytes([payload[0], payload[1]]));
    let p = payload
        .get(2..2 + plen)
        .ok_or("encrypted record shorter than its project")?;
    let project = std::str::from_utf8(p).map_err(|_| "project id is not UTF-8")?;
    Ok((project, &payload[2 + plen..]))
}

/// Decodes an event batch payload of `kind` ([`KIND_EVENT_BATCH`] or
/// [`KIND_EVENT_BATCH_V1`]); every length is checked against the buffer.
pub fn decode_batch(payload: &[u8], kind: u8) -> Result<EventBatch, String> {
    if kind != KIND_EVENT_BATCH && kind != KIND_EVENT_BATCH_V1 {
        return Err(format!("unsupported record kind {kind}"));
    }
    let mut r = Reader {
        buf: payload,
        pos: 0,
    };
    let plen = usize::from(u16::from_le_bytes(r.take::<2>()?));
    let project = std::str::from_utf8(r.bytes(plen)?).map_err(|_| "project id is not UTF-8")?;
    let project = ProjectId::new(project).map_err(|e| e.to_string())?;
    let count = u32::from_le_bytes(r.take::<4>()?) as usize;
    // Each event needs at least 32 bytes: refuse counts the payload cannot hold.
    if count > payload.len() / 32 + 1 {
        return Err("event count larger than the payload".into());
    }
    let mut events = Vec::with_capacity(count);
    for _ in 0..count {
        let timestamp_ms = i64::from_le_bytes(r.take::<8>()?);
        let received_at_ms = i64::from_le_bytes(r.take::<8>()?);
        let event = r.string()?;
        let distinct_id = r.string()?;
        let insert_id = r.opt_string()?;
        let properties = r.string()?;
        let personal = if kind == KIND_EVENT_BATCH {
            r.opt_string()?
        } else {
            None
        };
        events.push(Event {
            timestamp_ms,
            event,
            distinct_id,
            insert_id,
            properties,
            personal,
            received_at_ms,
        });
    }
    if r.pos != payload.len() {
        return Err("trailing bytes after the last event".into());
    }
    Ok(EventBatch { project, events })
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_str(out, s),
        None => out.extend_from_slice(&NONE_LEN.to_le_bytes()),
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    debug_assert!(s.len() < NONE_LEN as usize);
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or("truncated payload")?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }
    fn opt_string(&mut self) -> Result<Option<String>, String> {
        let len = u32::from_le_bytes(self.take::<4>()?);
        if len == NONE_LEN {
            return Ok(None);
        }
        let b = self.bytes(len as usize)?;
        Ok(Some(
            std::str::from_utf8(b)
                .map_err(|_| "string is not UTF-8")?
                .to_owned(),
        ))
    }
    fn string(&mut self) -> Result<String, String> {
        self.opt_string()?
            .ok_or_else(|| "missing required string".to_owned())
    }
}

fn le4(b: &[u8]) -> [u8; 4] {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    a
}

fn le8(b: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: i64) -> Event {
        Event {
            timestamp_ms: 1_700_000_000_000 + i,
            event: format!("e{i}"),
            distinct_id: "u".into(),
            insert_id: (i % 2 == 0).then(|| format!("id{i}")),
            properties: r#"{"a":1,"email":"[redacted]"}"#.into(),
            personal: (i % 3 == 0).then(|| format!(r#"{{"email":"u{i}@example.com"}}"#)),
            received_at_ms: 5,
        }
    }

    #[test]
    fn batch_round_trip() {
        let p = ProjectId::new("p1").unwrap();
        let events: Vec<Event> = (0..5).map(ev).collect();
        let mut buf = Vec::new();
        encode_batch(&mut buf, &p, events.iter());
        let b = decode_batch(&buf, KIND_EVENT_BATCH).unwrap();
        assert_eq!(b.project, p);
        assert_eq!(b.events, events);
        assert!(decode_batch(&buf, 9).is_err());
    }

    #[test]
    fn version_1_batches_still_decode() {
        // project "p1", one event: ts, received, "e", "u", no insert id, "{}".
        let mut v1 = Vec::new();
        v1.extend_from_slice(&2u16.to_le_bytes());
        v1.extend_from_slice(b"p1");
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(&7i64.to_le_bytes());
        v1.extend_from_slice(&8i64.to_le_bytes());
        put_str(&mut v1, "e");
        put_str(&mut v1, "u");
        put_opt_str(&mut v1, None);
        put_str(&mut v1, "{}");
        let b = decode_batch(&v1, KIND_EVENT_BATCH_V1).unwrap();
        assert_eq!(b.events.len(), 1);
        assert_eq!(b.events[0].properties, "{}");
        assert_eq!(b.events[0].personal, None);
        assert_eq!(b.events[0].received_at_ms, 8);
        // Read as kind 2, the same bytes lack the personal field.
        assert!(decode_batch(&v1, KIND_EVENT_BATCH).is_err());
    }

    #[test]
    fn record_detects_flipped_bits_and_truncation() {
        let mut buf = Vec::new();
        write_record(&mut buf, KIND_EVENT_BATCH, 0, 0, 7, b"hello");
        assert!(
            matches!(read_record(&buf, 1 << 20), ReadOutcome::Record(ref r, n) if r.seq == 7 && n == buf.len())
        );
        for cut in 0..buf.len() {
            assert_eq!(read_record(&buf[..cut], 1 << 20), ReadOutcome::Incomplete);
        }
        for i in 4..buf.len() {
            let mut b = buf.clone();
            b[i] ^= 0x40;
            assert!(
                matches!(read_record(&b, 1 << 20), ReadOutcome::Invalid(_)),
                "flip at {i}"
            );
        }
    }

    #[test]
    fn decode_batch_never_panics_on_garbage() {
        for n in 0..200u32 {
            let bytes: Vec<u8> = (0..n)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
                .collect();
            let _ = decode_batch(&bytes, KIND_EVENT_BATCH);
            let _ = decode_batch(&bytes, KIND_EVENT_BATCH_V1);
        }
    }

    #[test]
    fn header_round_trip() {
        let h = FileHeader::new(42);
        assert_eq!(FileHeader::decode(&h.encode()).unwrap(), h);
        let mut b = h.encode();
        b[17] ^= 1;
        assert!(FileHeader::decode(&b).is_err());
    }
}
