//! The manifest: the durable list of live segments and the WAL replay point.
//!
//! On disk it is `manifest.json` (versioned, replaced atomically by rename). A segment
//! file exists on disk before the manifest that lists it; a file no manifest lists is
//! garbage from an interrupted flush, compaction, erasure or retention run and is
//! removed on start. It also lists erasures that were requested but not yet completed
//! (`erasure.rs`), so that a crash cannot bring their events back.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use minim_core::ProjectId;
use minim_core::time::{day_string, parse_day};

use crate::Encryption;
use crate::error::{Result, StoreError};
use crate::fsutil::write_atomic;
use crate::segment::RowOrder;

pub const MANIFEST_FILE: &str = "manifest.json";
pub const MANIFEST_VERSION: u32 = 1;

/// On-disk manifest, version 1.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFileV1 {
    pub version: u32,
    pub generation: u64,
    pub next_segment_id: u64,
    /// WAL files numbered below this are fully contained in segments.
    pub wal_replay_from: u64,
    pub segments: Vec<SegmentEntryV1>,
    /// Erasures recorded but not yet completed (added after the first v1 files: absent
    /// means none, and it is only written when non-empty, so manifests without one stay
    /// byte-compatible. A binary that predates it refuses a manifest that has one,
    /// which is right: it could not complete the erasure).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_erasures: Vec<PendingErasureV1>,
}

/// On-disk form of a pending erasure.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingErasureV1 {
    pub project: String,
    pub distinct_id: String,
}

impl std::fmt::Debug for PendingErasureV1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingErasureV1")
            .field("project", &self.project)
            .field("distinct_id", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentEntryV1 {
    pub id: u64,
    pub project: String,
    /// `YYYY-MM-DD`.
    pub day: String,
    pub rows: u64,
    pub bytes: u64,
    pub min_ts_ms: i64,
    pub max_ts_ms: i64,
    /// 0 = written by a flush, 1 = written by compaction.
    pub level: u32,
    /// Properties with a shredded column in the file (see `shred.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shredded: Vec<String>,
    /// The project key the file is encrypted under (0: plaintext).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub key_id: u32,
    /// The file has the `personal` column.
    #[serde(default, skip_serializing_if = "is_false")]
    pub personal: bool,
    /// How the rows are ordered ([`RowOrder::as_str`]). Absent for
    /// [`RowOrder::User`], the order of every segment written before the field existed,
    /// so their entries stay byte-compatible; a binary that predates it refuses a
    /// manifest listing a segment in another order, which is right: its compaction
    /// would merge that segment as if it were sorted by user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<String>,
}

fn is_false(v: &bool) -> bool {
    !*v
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// In-memory description of a live segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentMeta {
    pub id: u64,
    pub project: ProjectId,
    pub day: i32,
    pub rows: u64,
    pub bytes: u64,
    pub min_ts_ms: i64,
    pub max_ts_ms: i64,
    pub level: u32,
    /// Properties with a shredded column in the file, sorted (see `shred.rs`).
    pub shredded: Vec<String>,
    /// The project key the file is encrypted under (0: plaintext).
    pub key_id: u32,
    /// The file has the `personal` column (some row has personal values).
    pub personal: bool,
    /// How its rows are ordered.
    pub order: RowOrder,
}

/// An erasure of every event of `distinct_id` in `project`, recorded durably before it
/// starts and removed by the manifest swap that completes it. Its `Debug` form leaves
/// the distinct id out, so it can never reach a log line.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PendingErasure {
    pub project: ProjectId,
    pub distinct_id: String,
}

impl std::fmt::Debug for PendingErasure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingErasure")
            .field("project", &self.project)
            .field("distinct_id", &"<redacted>")
            .finish()
    }
}

/// Relative path of a segment under the data directory.
pub fn segment_rel_path(project: &ProjectId, day: i32, id: u64) -> PathBuf {
    PathBuf::from("segments")
        .join(project.as_str())
        .join(day_string(day))
        .join(format!("{id:020}.parquet"))
}

/// A live segment file. When compaction replaces it, it is marked obsolete and the
/// file is deleted when the last reader's snapshot lets go of it.
#[derive(Debug)]
pub struct SegmentFile {
    pub meta: SegmentMeta,
    pub path: PathBuf,
    obsolete: AtomicBool,
}

impl SegmentFile {
    pub fn new(data_dir: &Path, meta: SegmentMeta) -> Self {
        let path = data_dir.join(segment_rel_path(&meta.project, meta.day, meta.id));
        Self {
            meta,
            path,
            obsolete: AtomicBool::new(false),
        }
    }

    pub fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::Release);
    }
}

impl Drop for SegmentFile {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Acquire)
            && let Err(e) = std::fs::remove_file(&self.path)
        {
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove obsolete segment");
        }
    }
}

/// The in-memory manifest.
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    pub generation: u64,
    pub next_segment_id: u64,
    pub wal_replay_from: u64,
    pub segments: Vec<Arc<SegmentFile>>,
    /// Erasures recorded but not completed, oldest first.
    pub pending_erasures: Vec<PendingErasure>,
}

impl Manifest {
    /// Loads the manifest; with `enc`, the file must be an envelope under the `system`
    /// keyset (a plaintext manifest is refused: it would mean tampering).
    pub fn load(data_dir: &Path, enc: Option<&Encryption>) -> Result<Self> {
        let path = data_dir.join(MANIFEST_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(StoreError::io(&path, e)),
        };
        let bytes = match enc {
            Some(enc) => enc.open_manifest(&bytes, &path.display().to_string())?,
            None => bytes,
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            path: path.clone(),
            reason,
        };
        let probe: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        let version = probe.get("version").and_then(serde_json::Value::as_u64);
        if version != Some(u64::from(MANIFEST_VERSION)) {
            return Err(corrupt(format!("unsupported manifest version {version:?}")));
        }
        let file: ManifestFileV1 =
            serde_json::from_value(probe).map_err(|e| corrupt(e.to_string()))?;
        let mut segments = Vec::with_capacity(file.segments.len());
        for s in file.segments {
            let project = ProjectId::new(s.project).map_err(|e| corrupt(e.to_string()))?;
            let day = parse_day(&s.day).ok_or_else(|| corrupt(format!("bad day {:?}", s.day)))?;
            let meta = SegmentMeta {
                id: s.id,
                project,
                day,
                rows: s.rows,
                bytes: s.bytes,
                min_ts_ms: s.min_ts_ms,
                max_ts_ms: s.max_ts_ms,
                level: s.level,
                shredded: s.shredded,
                key_id: s.key_id,
                personal: s.personal,
                order: match s.sort.as_deref() {
                    None => RowOrder::User,
                    Some(name) => RowOrder::parse(name).ok_or_else(|| {
                        corrupt(format!("segment {}: unknown row order {name:?}", s.id))
                    })?,
                },
            };
            segments.push(Arc::new(SegmentFile::new(data_dir, meta)));
        }
        let mut pending_erasures = Vec::with_capacity(file.pending_erasures.len());
        for p in file.pending_erasures {
            let project = ProjectId::new(p.project).map_err(|e| corrupt(e.to_string()))?;
            pending_erasures.push(PendingErasure {
                project,
                distinct_id: p.distinct_id,
            });
        }
        Ok(Self {
            generation: file.generation,
            next_segment_id: file.next_segment_id,
            wal_replay_from: file.wal_replay_from,
            segments,
            pending_erasures,
        })
    }

    pub fn to_file(&self) -> ManifestFileV1 {
        ManifestFileV1 {
            version: MANIFEST_VERSION,
            generation: self.generation,
            next_segment_id: self.next_segment_id,
            wal_replay_from: self.wal_replay_from,
            segments: self
                .segments
                .iter()
                .map(|s| SegmentEntryV1 {
                    id: s.meta.id,
                    project: s.meta.project.as_str().to_owned(),
                    day: day_string(s.meta.day),
                    rows: s.meta.rows,
                    bytes: s.meta.bytes,
                    min_ts_ms: s.meta.min_ts_ms,
                    max_ts_ms: s.meta.max_ts_ms,
                    level: s.meta.level,
                    shredded: s.meta.shredded.clone(),
                    key_id: s.meta.key_id,
                    personal: s.meta.personal,
                    sort: (s.meta.order != RowOrder::User)
                        .then(|| s.meta.order.as_str().to_owned()),
                })
                .collect(),
            pending_erasures: self
                .pending_erasures
                .iter()
                .map(|p| PendingErasureV1 {
                    project: p.project.as_str().to_owned(),
                    distinct_id: p.distinct_id.clone(),
                })
                .collect(),
        }
    }

    /// Writes this manifest durably (bumping the generation first).
    /// With `enc`, the file is sealed under the `system` keyset.
    pub fn store(&mut self, data_dir: &Path, enc: Option<&Encryption>) -> Result<()> {
        self.generation += 1;
        let json = serde_json::to_vec_pretty(&self.to_file()).map_err(|e| StoreError::Corrupt {
            path: data_dir.join(MANIFEST_FILE),
            reason: e.to_string(),
        })?;
        let bytes = match enc {
            Some(enc) => enc.seal_manifest(&json)?,
            None => json,
        };
        write_atomic(&data_dir.join(MANIFEST_FILE), &bytes)
    }

    pub fn allocate_segment_id(&mut self) -> u64 {
        self.next_segment_id += 1;
        self.next_segment_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_and_rejects_unknown_versions() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::default();
        let p = ProjectId::new("p").unwrap();
        let id = m.allocate_segment_id();
        let meta = SegmentMeta {
            id,
            project: p,
            day: 20000,
            rows: 3,
            bytes: 10,
            min_ts_ms: 1,
            max_ts_ms: 2,
            level: 0,
            shredded: vec!["$country".into()],
            key_id: 0,
            personal: true,
            order: RowOrder::EventUser,
        };
        m.segments
            .push(Arc::new(SegmentFile::new(dir.path(), meta.clone())));
        let legacy = SegmentMeta {
            id: m.allocate_segment_id(),
            order: RowOrder::User,
            ..meta.clone()
        };
        m.segments
            .push(Arc::new(SegmentFile::new(dir.path(), legacy.clone())));
        m.wal_replay_from = 4;
        m.store(dir.path(), None).unwrap();
        let back = Manifest::load(dir.path(), None).unwrap();
        assert_eq!(back.segments[0].meta, meta);
        assert_eq!(back.segments[1].meta, legacy);
        assert_eq!(
            (back.wal_replay_from, back.next_segment_id, back.generation),
            (4, id + 1, 1)
        );
        let json = std::fs::read_to_string(dir.path().join(MANIFEST_FILE)).unwrap();
        assert_eq!(
            (
                json.matches(r#""sort""#).count(),
                json.matches("event,distinct_id,timestamp").count()
            ),
            (1, 1),
            "only the event-first segment names its order: {json}"
        );
        // An order this binary does not know is corruption, not a guess.
        std::fs::write(
            dir.path().join(MANIFEST_FILE),
            json.replace("event,distinct_id,timestamp", "timestamp"),
        )
        .unwrap();
        assert!(matches!(
            Manifest::load(dir.path(), None),
            Err(StoreError::Corrupt { .. })
        ));

        assert!(back.pending_erasures.is_empty());
        let json = std::fs::read_to_string(dir.path().join(MANIFEST_FILE)).unwrap();
        assert!(
            !json.contains("pending_erasures"),
            "an empty list is not written: older readers still read the file"
        );

        std::fs::write(dir.path().join(MANIFEST_FILE), br#"{"version": 99}"#).unwrap();
        assert!(matches!(
            Manifest::load(dir.path(), None),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn pending_erasures_round_trip_and_never_show_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::default();
        let pending = PendingErasure {
            project: ProjectId::new("p").unwrap(),
            distinct_id: "secret-pseudonym".into(),
        };
        m.pending_erasures.push(pending.clone());
        m.store(dir.path(), None).unwrap();
        let back = Manifest::load(dir.path(), None).unwrap();
        assert_eq!(back.pending_erasures, vec![pending.clone()]);
        assert!(!format!("{pending:?}").contains("secret"));
        assert!(!format!("{:?}", back.to_file()).contains("secret"));
        assert!(!format!("{back:?}").contains("secret"));

        // A manifest written before the field existed reads as "none pending".
        std::fs::write(
            dir.path().join(MANIFEST_FILE),
            br#"{"version":1,"generation":3,"next_segment_id":0,"wal_replay_from":2,"segments":[]}"#,
        )
        .unwrap();
        let old = Manifest::load(dir.path(), None).unwrap();
        assert!(old.pending_erasures.is_empty());
        assert_eq!((old.generation, old.wal_replay_from), (3, 2));

        // A pending erasure with a bad project id is corruption, not a silent skip.
        std::fs::write(
            dir.path().join(MANIFEST_FILE),
            br#"{"version":1,"generation":3,"next_segment_id":0,"wal_replay_from":2,"segments":[],"pending_erasures":[{"project":"../x","distinct_id":"u"}]}"#,
        )
        .unwrap();
        assert!(matches!(
            Manifest::load(dir.path(), None),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
