//! Parquet segments, format version 1: schema, write (zstd, dictionary) and read back.
//!
//! A segment holds one project's events of one UTC day, rows sorted by
//! (`event`, `distinct_id`, `timestamp`) ([`RowOrder`]; segments written before that
//! order are sorted by (`distinct_id`, `timestamp`) and stay so): the base columns of
//! [`schema`], then any shredded property columns (`shred.rs`), which readers that do
//! not know them ignore. Footer key-value metadata carries the format version,
//! project, day and `minim.key_id` (0 = plaintext). With [`Encryption`] the file uses
//! Parquet modular encryption (encrypted footer, every column encrypted; `crypt.rs`)
//! and `minim.key_id` names the project key it was written under.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, RecordBatch, StringArray, StringBuilder, StringDictionaryBuilder,
    TimestampMillisecondArray, TimestampMillisecondBuilder,
};
use arrow::compute::interleave_record_batch;
use arrow::datatypes::Int32Type;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use minim_core::{Event, ProjectId, time::day_string};
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::Encryption;
use crate::error::{Result, StoreError};
use crate::shred;

pub const SEGMENT_VERSION: &str = "1";
pub const META_VERSION: &str = "minim.segment_version";
pub const META_PROJECT: &str = "minim.project";
pub const META_DAY: &str = "minim.day";
pub const META_KEY_ID: &str = "minim.key_id";
pub const META_SORT: &str = "minim.sort";

pub const COL_TIMESTAMP: &str = "timestamp";
pub const COL_EVENT: &str = "event";
pub const COL_DISTINCT_ID: &str = "distinct_id";
pub const COL_INSERT_ID: &str = "insert_id";
pub const COL_PROPERTIES: &str = "properties";
pub const COL_RECEIVED_AT: &str = "received_at";
/// The event's personal values ([`Event::personal`]), null when it has none. A segment
/// has the column only if some row has a value; with [`Encryption`] it is encrypted under
/// the project's *personal* key, which only `read_personal` readers load.
pub const COL_PERSONAL: &str = "personal";

/// The Arrow type of `event`: dictionary-encoded strings. Parquet stores the column
/// dictionary-encoded either way; with this type in the file's Arrow schema a reader gets
/// the page dictionary and integer keys instead of one string per row (segments written
/// before this read back as plain strings: [`conform`] casts them).
pub fn event_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// The Arrow schema of segment format version 1 (base columns; see [`crate::shred`]).
/// `personal` is last; files of segments without personal values leave it out
/// ([`without_personal`]).
pub fn schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new(COL_TIMESTAMP, ts.clone(), false),
        Field::new(COL_EVENT, event_type(), false),
        Field::new(COL_DISTINCT_ID, DataType::Utf8, false),
        Field::new(COL_INSERT_ID, DataType::Utf8, true),
        Field::new(COL_PROPERTIES, DataType::Utf8, false),
        Field::new(COL_RECEIVED_AT, ts, false),
        Field::new(COL_PERSONAL, DataType::Utf8, true),
    ]))
}

/// `schema` without the `personal` column.
pub fn without_personal(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .filter(|f| f.name() != COL_PERSONAL)
        .map(|f| f.as_ref().clone())
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// How a segment's rows are ordered: the footer's `minim.sort` and the manifest's
/// `sort` name it. Queries answer the same over either (the order only makes them
/// cheaper); compaction merges only segments of one order and keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RowOrder {
    /// (`distinct_id`, `timestamp`): every segment written before [`RowOrder::EventUser`].
    User,
    /// (`event`, `distinct_id`, `timestamp`), what is written now: the page statistics of
    /// `event` then let a question about some events skip the pages of all others, and
    /// within an event a user's rows stay together and in time order.
    EventUser,
}

impl RowOrder {
    /// The order new segments are written in.
    pub const CURRENT: RowOrder = RowOrder::EventUser;

    /// The columns, comma-separated, as the footer and the manifest name the order.
    pub fn as_str(self) -> &'static str {
        match self {
            RowOrder::User => "distinct_id,timestamp",
            RowOrder::EventUser => "event,distinct_id,timestamp",
        }
    }

    pub fn parse(s: &str) -> Option<RowOrder> {
        [RowOrder::User, RowOrder::EventUser]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

/// Builds a record batch from events, sorted in [`RowOrder::CURRENT`] (ties keep their
/// input order).
pub fn events_to_batch<'a>(events: impl IntoIterator<Item = &'a Event>) -> Result<RecordBatch> {
    let mut evs: Vec<&Event> = events.into_iter().collect();
    evs.sort_by(|a, b| {
        (a.event.as_str(), a.distinct_id.as_str(), a.timestamp_ms).cmp(&(
            b.event.as_str(),
            b.distinct_id.as_str(),
            b.timestamp_ms,
        ))
    });
    let n = evs.len();
    let mut ts = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut recv = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut name = StringDictionaryBuilder::<Int32Type>::new();
    let mut did = StringBuilder::with_capacity(n, n * 16);
    let mut iid = StringBuilder::with_capacity(n, n * 32);
    let mut props = StringBuilder::with_capacity(n, evs.iter().map(|e| e.properties.len()).sum());
    let mut personal = StringBuilder::new();
    for e in &evs {
        ts.append_value(e.timestamp_ms);
        recv.append_value(e.received_at_ms);
        name.append_value(&e.event);
        did.append_value(&e.distinct_id);
        iid.append_option(e.insert_id.as_deref());
        props.append_value(&e.properties);
        personal.append_option(e.personal.as_deref());
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(ts.finish()),
        Arc::new(name.finish()),
        Arc::new(did.finish()),
        Arc::new(iid.finish()),
        Arc::new(props.finish()),
        Arc::new(recv.finish()),
        Arc::new(personal.finish()),
    ];
    RecordBatch::try_new(schema(), cols).map_err(|e| parquet_err("<memory>", e))
}

/// The base columns of `batch`, in [`schema`] order and types (casting what older
/// segments stored differently, e.g. `event` as plain strings; a nullable column the file
/// does not have, e.g. `personal`, reads as nulls).
pub fn conform(batch: &RecordBatch) -> std::result::Result<RecordBatch, String> {
    let base = schema();
    let columns = base
        .fields()
        .iter()
        .map(|f| {
            let Some(c) = batch.column_by_name(f.name()) else {
                if f.is_nullable() {
                    return Ok(arrow::array::new_null_array(
                        f.data_type(),
                        batch.num_rows(),
                    ));
                }
                return Err(format!("column {} missing", f.name()));
            };
            if c.data_type() == f.data_type() {
                Ok(c.clone())
            } else {
                arrow::compute::cast(c, f.data_type()).map_err(|e| e.to_string())
            }
        })
        .collect::<std::result::Result<Vec<ArrayRef>, String>>()?;
    RecordBatch::try_new(base, columns).map_err(|e| e.to_string())
}

/// Rows per batch produced by [`SortedMerge`].
const MERGE_BATCH_ROWS: usize = 8192;

/// A streaming k-way merge of segments that are each sorted in one [`RowOrder`]: yields
/// batches sorted in that order while holding only the current batch of each input, so
/// compaction memory does not grow with segment size.
pub struct SortedMerge {
    cursors: Vec<Cursor>,
}

struct Cursor {
    reader: ParquetRecordBatchReader,
    path: PathBuf,
    batch: Option<RecordBatch>,
    /// The batch's event names, for [`RowOrder::EventUser`] (`None` for
    /// [`RowOrder::User`]: every row then compares as the same event).
    events: Option<StringArray>,
    did: StringArray,
    ts: TimestampMillisecondArray,
    row: usize,
    /// Index of `batch` in the output chunk being assembled.
    held: usize,
}

impl Cursor {
    /// Moves to the next non-empty batch; `Ok(false)` at the end.
    fn advance(&mut self) -> Result<bool> {
        self.batch = None;
        for next in self.reader.by_ref() {
            let b = next.map_err(|e| parquet_err(&self.path, e))?;
            if b.num_rows() == 0 {
                continue;
            }
            let b = conform(&b).map_err(|reason| parquet_err(&self.path, reason))?;
            if self.events.is_some() {
                self.events = Some(event_names(&b, &self.path)?);
            }
            self.did = string_col(&b, COL_DISTINCT_ID, &self.path)?.clone();
            self.ts = ts_col(&b, COL_TIMESTAMP, &self.path)?.clone();
            self.row = 0;
            self.batch = Some(b);
            return Ok(true);
        }
        Ok(false)
    }

    fn key(&self) -> (&str, &str, i64) {
        let event = self.events.as_ref().map_or("", |e| e.value(self.row));
        (event, self.did.value(self.row), self.ts.value(self.row))
    }
}

impl SortedMerge {
    /// Merges `paths`, every one of them sorted in `order`.
    pub fn new(paths: &[&Path], order: RowOrder, enc: Option<&Encryption>) -> Result<Self> {
        let mut cursors = Vec::with_capacity(paths.len());
        for p in paths {
            let mut c = Cursor {
                reader: open_segment(p, Some(&base_columns()), MERGE_BATCH_ROWS, enc)?,
                path: p.to_path_buf(),
                batch: None,
                events: (order == RowOrder::EventUser)
                    .then(|| StringArray::from(Vec::<&str>::new())),
                did: StringArray::from(Vec::<&str>::new()),
                ts: TimestampMillisecondArray::from(Vec::<i64>::new()),
                row: 0,
                held: 0,
            };
            if c.advance()? {
                cursors.push(c);
            }
        }
        Ok(Self { cursors })
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let mut held: Vec<RecordBatch> = Vec::with_capacity(self.cursors.len());
        for c in &mut self.cursors {
            if let Some(b) = &c.batch {
                c.held = held.len();
                held.push(b.clone());
            }
        }
        let mut indices = Vec::with_capacity(MERGE_BATCH_ROWS);
        while indices.len() < MERGE_BATCH_ROWS {
            // Linear scan: k is small; ties go to the earlier input (stable).
            let mut best: Option<usize> = None;
            for (i, c) in self.cursors.iter().enumerate() {
                if c.batch.is_some() && best.is_none_or(|b| c.key() < self.cursors[b].key()) {
                    best = Some(i);
                }
            }
            let Some(i) = best else { break };
            let c = &mut self.cursors[i];
            indices.push((c.held, c.row));
            c.row += 1;
            if c.batch.as_ref().is_some_and(|b| c.row == b.num_rows()) && c.advance()? {
                c.held = held.len();
                held.extend(c.batch.clone());
            }
        }
        if indices.is_empty() {
            return Ok(None);
        }
        let refs: Vec<&RecordBatch> = held.iter().collect();
        interleave_record_batch(&refs, &indices)
            .map(Some)
            .map_err(|e| parquet_err("<merge>", e))
    }
}

impl Iterator for SortedMerge {
    type Item = Result<RecordBatch>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().transpose()
    }
}

/// Statistics of a written segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrittenSegment {
    pub rows: u64,
    pub bytes: u64,
    pub min_ts_ms: i64,
    pub max_ts_ms: i64,
    /// The project key the file is encrypted under (0: plaintext).
    pub key_id: u32,
}

/// The names of the base columns.
pub fn base_columns() -> Vec<&'static str> {
    vec![
        COL_TIMESTAMP,
        COL_EVENT,
        COL_DISTINCT_ID,
        COL_INSERT_ID,
        COL_PROPERTIES,
        COL_RECEIVED_AT,
        COL_PERSONAL,
    ]
}

/// How a segment is written.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions<'a> {
    pub row_group_rows: usize,
    pub zstd_level: i32,
    /// Properties to shred into their own columns (see [`crate::shred`]).
    pub shredded: &'a [String],
    /// Encrypt the file under the project's key (None: plaintext).
    pub encryption: Option<&'a Encryption>,
    /// Write the `personal` column (some row may have personal values). Without it, a row
    /// with a personal value is an error rather than a silent loss.
    pub personal: bool,
    /// The order the batches are in, recorded in the footer.
    pub order: RowOrder,
}

/// Writes `batches` (already sorted in `options.order`; base columns) as a segment at `path`,
/// adding the shredded columns, and fsyncs it. On failure the partial file is removed.
pub fn write_segment(
    path: &Path,
    project: &ProjectId,
    day: i32,
    batches: impl IntoIterator<Item = Result<RecordBatch>>,
    options: WriteOptions<'_>,
) -> Result<WrittenSegment> {
    let res = write_segment_inner(path, project, day, batches, options);
    if res.is_err() {
        let _ = std::fs::remove_file(path);
    }
    res
}

fn write_segment_inner(
    path: &Path,
    project: &ProjectId,
    day: i32,
    batches: impl IntoIterator<Item = Result<RecordBatch>>,
    options: WriteOptions<'_>,
) -> Result<WrittenSegment> {
    let level = ZstdLevel::try_new(options.zstd_level).map_err(|e| parquet_err(path, e))?;
    let mut file_schema = shred::schema_with(options.shredded);
    if !options.personal {
        file_schema = without_personal(&file_schema);
    }
    let encryption = match options.encryption {
        Some(enc) => {
            let columns: Vec<&str> = file_schema
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            Some(enc.encryption_properties(project, day, &columns, options.personal)?)
        }
        None => None,
    };
    let key_id = encryption
        .as_ref()
        .and_then(|p| p.footer_key_metadata())
        .and_then(|m| Encryption::parse_key_metadata(m))
        .map_or(0, |(_, id)| id);
    let meta = vec![
        KeyValue::new(META_VERSION.to_owned(), SEGMENT_VERSION.to_owned()),
        KeyValue::new(META_PROJECT.to_owned(), project.as_str().to_owned()),
        KeyValue::new(META_DAY.to_owned(), day_string(day)),
        KeyValue::new(META_KEY_ID.to_owned(), key_id.to_string()),
        KeyValue::new(META_SORT.to_owned(), options.order.as_str().to_owned()),
    ];
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_dictionary_enabled(true);
    // Millisecond timestamps are near-unique (dictionaries fall back) but close to each
    // other within a user's run: delta encoding packs them small before zstd.
    for ts in [COL_TIMESTAMP, COL_RECEIVED_AT] {
        props = props
            .set_column_dictionary_enabled(ColumnPath::from(ts), false)
            .set_column_encoding(ColumnPath::from(ts), Encoding::DELTA_BINARY_PACKED);
    }
    // No statistics for personal values: min/max would be values (the column index too).
    props = props
        .set_column_statistics_enabled(ColumnPath::from(COL_PERSONAL), EnabledStatistics::None);
    if let Some(e) = encryption {
        props = props.with_file_encryption_properties(e);
    }
    let props = props
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(options.row_group_rows))
        .set_key_value_metadata(Some(meta))
        .build();
    let file = File::create(path).map_err(|e| StoreError::io(path, e))?;
    let mut w = ArrowWriter::try_new(file, file_schema.clone(), Some(props))
        .map_err(|e| parquet_err(path, e))?;
    let (mut rows, mut min_ts_ms, mut max_ts_ms) = (0u64, i64::MAX, i64::MIN);
    for batch in batches {
        let mut batch = shred::with_columns(&batch?, options.shredded)
            .map_err(|reason| parquet_err(path, reason))?;
        if !options.personal {
            batch = drop_personal(&batch, &file_schema).map_err(|r| parquet_err(path, r))?;
        }
        let ts = ts_col(&batch, COL_TIMESTAMP, path)?;
        if let (Some(lo), Some(hi)) = (arrow::compute::min(ts), arrow::compute::max(ts)) {
            min_ts_ms = min_ts_ms.min(lo);
            max_ts_ms = max_ts_ms.max(hi);
        }
        rows += batch.num_rows() as u64;
        w.write(&batch).map_err(|e| parquet_err(path, e))?;
    }
    let file = w.into_inner().map_err(|e| parquet_err(path, e))?;
    file.sync_all().map_err(|e| StoreError::io(path, e))?;
    let bytes = file.metadata().map_err(|e| StoreError::io(path, e))?.len();
    if rows == 0 {
        (min_ts_ms, max_ts_ms) = (0, 0);
    }
    Ok(WrittenSegment {
        rows,
        bytes,
        min_ts_ms,
        max_ts_ms,
        key_id,
    })
}

/// `batch` without its `personal` column, which must hold no value.
fn drop_personal(batch: &RecordBatch, to: &SchemaRef) -> std::result::Result<RecordBatch, String> {
    let idx = batch
        .schema()
        .index_of(COL_PERSONAL)
        .map_err(|e| e.to_string())?;
    if batch.column(idx).null_count() != batch.num_rows() {
        return Err("rows with personal values, written without the personal column".into());
    }
    let mut columns = batch.columns().to_vec();
    columns.remove(idx);
    RecordBatch::try_new(to.clone(), columns).map_err(|e| e.to_string())
}

/// Reads a whole segment, checking its format version. `columns` limits the read to
/// those columns (by name) when given.
pub fn read_segment(
    path: &Path,
    columns: Option<&[&str]>,
    enc: Option<&Encryption>,
) -> Result<Vec<RecordBatch>> {
    let reader = open_segment(path, columns, 8192, enc)?;
    reader
        .map(|b| b.map_err(|e| parquet_err(path, e)))
        .collect()
}

/// Opens a segment for reading, checking its format version.
fn open_builder(
    path: &Path,
    enc: Option<&Encryption>,
) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let file = File::open(path).map_err(|e| StoreError::io(path, e))?;
    let mut options = ArrowReaderOptions::new();
    if let Some(enc) = enc {
        options = options.with_file_decryption_properties(
            enc.decryption_properties(true)
                .map_err(|e| parquet_err(path, e))?,
        );
    }
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(file, options)
        .map_err(|e| parquet_err(path, e))?;
    let kv = builder.metadata().file_metadata().key_value_metadata();
    let version = kv
        .and_then(|kv| kv.iter().find(|k| k.key == META_VERSION))
        .and_then(|k| k.value.clone());
    if version.as_deref() != Some(SEGMENT_VERSION) {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("unsupported segment version {version:?}"),
        });
    }
    Ok(builder)
}

fn project(
    builder: ParquetRecordBatchReaderBuilder<File>,
    columns: &[&str],
) -> ParquetRecordBatchReaderBuilder<File> {
    let schema = builder.schema().clone();
    let idx: Vec<usize> = columns
        .iter()
        .filter_map(|c| schema.index_of(c).ok())
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), idx);
    builder.with_projection(mask)
}

/// Opens a segment as a stream of batches of `batch_rows`, checking its format version.
pub fn open_segment(
    path: &Path,
    columns: Option<&[&str]>,
    batch_rows: usize,
    enc: Option<&Encryption>,
) -> Result<ParquetRecordBatchReader> {
    let builder = open_builder(path, enc)?;
    let builder = match columns {
        Some(cols) => project(builder, cols),
        None => builder,
    };
    builder
        .with_batch_size(batch_rows)
        .build()
        .map_err(|e| parquet_err(path, e))
}

/// How many rows of a segment have one `distinct_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DistinctIdCount {
    pub matching: u64,
    /// All rows of the file, from its footer.
    pub rows: u64,
}

/// Counts the rows of a segment whose `distinct_id` is exactly `id`. Within an event
/// (or a whole segment in [`RowOrder::User`]) rows are sorted by `distinct_id`, so the
/// row groups whose min/max statistics exclude `id` (those of an event's rows, except
/// where one event's rows end and the next one's begin) are skipped without reading; the
/// others' `distinct_id` column is scanned. Statistics may be truncated, but truncation
/// keeps them valid bounds.
pub fn count_distinct_id(
    path: &Path,
    id: &str,
    enc: Option<&Encryption>,
) -> Result<DistinctIdCount> {
    let builder = open_builder(path, enc)?;
    let meta = builder.metadata().clone();
    let rows = u64::try_from(meta.file_metadata().num_rows()).unwrap_or(0);
    let leaf = builder
        .parquet_schema()
        .columns()
        .iter()
        .position(|c| c.name() == COL_DISTINCT_ID);
    let groups: Vec<usize> = (0..meta.num_row_groups())
        .filter(|&i| {
            let stats = leaf.and_then(|l| meta.row_group(i).column(l).statistics());
            let Some(stats) = stats else { return true };
            let below = stats.min_bytes_opt().is_some_and(|min| id.as_bytes() < min);
            let above = stats.max_bytes_opt().is_some_and(|max| id.as_bytes() > max);
            !below && !above
        })
        .collect();
    if groups.is_empty() {
        return Ok(DistinctIdCount { matching: 0, rows });
    }
    let reader = project(builder, &[COL_DISTINCT_ID])
        .with_row_groups(groups)
        .with_batch_size(8192)
        .build()
        .map_err(|e| parquet_err(path, e))?;
    let mut n = 0u64;
    for b in reader {
        let b = b.map_err(|e| parquet_err(path, e))?;
        let col = string_col(&b, COL_DISTINCT_ID, path)?;
        n += col.iter().filter(|v| *v == Some(id)).count() as u64;
    }
    Ok(DistinctIdCount { matching: n, rows })
}

/// The `event` column of a batch as plain strings (it is dictionary-encoded in segments
/// written now, plain in older ones).
pub fn event_names(batch: &RecordBatch, path: &Path) -> Result<StringArray> {
    let mistyped = || StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("column {COL_EVENT} missing or mistyped"),
    };
    let col = batch.column_by_name(COL_EVENT).ok_or_else(mistyped)?;
    let plain = arrow::compute::cast(col, &DataType::Utf8).map_err(|_| mistyped())?;
    plain
        .as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .ok_or_else(mistyped)
}

/// The insert ids stored in a segment (for rebuilding the dedupe index).
pub fn read_insert_ids(path: &Path, enc: Option<&Encryption>) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for b in read_segment(path, Some(&[COL_INSERT_ID]), enc)? {
        let col = string_col(&b, COL_INSERT_ID, path)?;
        out.extend(col.iter().flatten().map(str::to_owned));
    }
    Ok(out)
}

/// Converts a full-schema batch back into events.
pub fn batch_to_events(batch: &RecordBatch, path: &Path) -> Result<Vec<Event>> {
    let ts = ts_col(batch, COL_TIMESTAMP, path)?;
    let recv = ts_col(batch, COL_RECEIVED_AT, path)?;
    let name = event_names(batch, path)?;
    let did = string_col(batch, COL_DISTINCT_ID, path)?;
    let iid = string_col(batch, COL_INSERT_ID, path)?;
    let props = string_col(batch, COL_PROPERTIES, path)?;
    let personal = string_col(batch, COL_PERSONAL, path).ok();
    Ok((0..batch.num_rows())
        .map(|i| Event {
            timestamp_ms: ts.value(i),
            event: name.value(i).to_owned(),
            distinct_id: did.value(i).to_owned(),
            insert_id: iid.is_valid(i).then(|| iid.value(i).to_owned()),
            properties: props.value(i).to_owned(),
            personal: personal
                .filter(|p| p.is_valid(i))
                .map(|p| p.value(i).to_owned()),
            received_at_ms: recv.value(i),
        })
        .collect())
}

pub(crate) fn string_col<'a>(
    b: &'a RecordBatch,
    name: &str,
    path: &Path,
) -> Result<&'a StringArray> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("column {name} missing or mistyped"),
        })
}

fn ts_col<'a>(
    b: &'a RecordBatch,
    name: &str,
    path: &Path,
) -> Result<&'a TimestampMillisecondArray> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<TimestampMillisecondArray>())
        .ok_or_else(|| StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("column {name} missing or mistyped"),
        })
}

pub(crate) fn parquet_err(path: impl AsRef<Path>, e: impl std::fmt::Display) -> StoreError {
    StoreError::Parquet {
        path: path.as_ref().to_path_buf(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(u: &str, ts: i64) -> Event {
        named("view", u, ts)
    }

    fn named(event: &str, u: &str, ts: i64) -> Event {
        Event {
            timestamp_ms: ts,
            event: event.into(),
            distinct_id: u.into(),
            insert_id: Some(format!("{u}-{ts}")),
            properties: r#"{"k":"v"}"#.into(),
            personal: None,
            received_at_ms: 1,
        }
    }

    fn opts(row_group_rows: usize, shredded: &[String]) -> WriteOptions<'_> {
        WriteOptions {
            row_group_rows,
            zstd_level: 1,
            shredded,
            encryption: None,
            personal: false,
            order: RowOrder::CURRENT,
        }
    }

    /// `batch` re-sorted by (`distinct_id`, `timestamp`): a [`RowOrder::User`] segment's
    /// rows, as written before event-first order.
    fn in_user_order(batch: &RecordBatch) -> RecordBatch {
        let sort = |name: &str| arrow::compute::SortColumn {
            values: batch.column_by_name(name).unwrap().clone(),
            options: None,
        };
        let idx =
            arrow::compute::lexsort_to_indices(&[sort(COL_DISTINCT_ID), sort(COL_TIMESTAMP)], None)
                .unwrap();
        arrow::compute::take_record_batch(batch, &idx).unwrap()
    }

    fn footer_sort(path: &Path) -> Option<String> {
        let b = open_builder(path, None).unwrap();
        let kv = b.metadata().file_metadata().key_value_metadata().cloned();
        kv.unwrap_or_default()
            .into_iter()
            .find(|kv| kv.key == META_SORT)
            .and_then(|kv| kv.value)
    }

    #[test]
    fn row_orders_round_trip_by_name() {
        for o in [RowOrder::User, RowOrder::EventUser] {
            assert_eq!(RowOrder::parse(o.as_str()), Some(o));
        }
        assert_eq!(RowOrder::parse("timestamp"), None);
    }

    #[test]
    fn write_read_round_trip_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.parquet");
        let events = vec![
            ev("b", 3),
            named("buy", "b", 0),
            ev("a", 2),
            ev("b", 1),
            named("buy", "a", 9),
            ev("a", 1),
        ];
        let batch = events_to_batch(&events).unwrap();
        let p = ProjectId::new("p").unwrap();
        let shredded = vec!["k".to_owned()];
        let w = write_segment(&path, &p, 0, [Ok(batch)], opts(1024, &shredded)).unwrap();
        assert_eq!((w.rows, w.min_ts_ms, w.max_ts_ms), (6, 0, 9));
        assert_eq!(
            footer_sort(&path).as_deref(),
            Some("event,distinct_id,timestamp")
        );
        let back: Vec<Event> = read_segment(&path, None, None)
            .unwrap()
            .iter()
            .flat_map(|b| batch_to_events(b, &path).unwrap())
            .collect();
        let order: Vec<_> = back
            .iter()
            .map(|e| (e.event.as_str(), e.distinct_id.as_str(), e.timestamp_ms))
            .collect();
        assert_eq!(
            order,
            vec![
                ("buy", "a", 9),
                ("buy", "b", 0),
                ("view", "a", 1),
                ("view", "a", 2),
                ("view", "b", 1),
                ("view", "b", 3)
            ]
        );
        assert_eq!(read_insert_ids(&path, None).unwrap().len(), 6);
        let batches = read_segment(&path, None, None).unwrap();
        let shred_col = batches[0].column_by_name("prop:k").unwrap();
        assert_eq!(shred_col.len(), 6);
    }

    #[test]
    fn streaming_merge_equals_a_full_sort_across_batch_boundaries() {
        for order in [RowOrder::EventUser, RowOrder::User] {
            let dir = tempfile::tempdir().unwrap();
            let p = ProjectId::new("p").unwrap();
            let mut all = Vec::new();
            let mut paths = Vec::new();
            for seg in 0..3u64 {
                // 10k rows per input: several reader batches and output batches.
                let evs: Vec<Event> = (0..10_000u64)
                    .map(|i| {
                        let x = (i * 7919 + seg * 104_729) % 1_000;
                        let name = ["view", "buy", "click"][(x % 7 % 3) as usize];
                        named(name, &format!("u{:03}", x % 97), (x * 13 % 50) as i64)
                    })
                    .collect();
                let path = dir.path().join(format!("{seg}.parquet"));
                let shredded = vec!["k".to_owned()];
                let mut batch = events_to_batch(&evs).unwrap();
                if order == RowOrder::User {
                    batch = in_user_order(&batch);
                }
                let opts = WriteOptions {
                    order,
                    ..opts(4096, &shredded)
                };
                write_segment(&path, &p, 0, [Ok(batch)], opts).unwrap();
                all.extend(evs);
                paths.push(path);
            }
            let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
            let out = dir.path().join("merged.parquet");
            // Inputs carry a shredded column; the merge reads base columns only.
            let merged = SortedMerge::new(&refs, order, None).unwrap();
            let opts = WriteOptions {
                order,
                ..opts(4096, &[])
            };
            let w = write_segment(&out, &p, 0, merged, opts).unwrap();
            assert_eq!(w.rows, 30_000);
            assert_eq!(footer_sort(&out).as_deref(), Some(order.as_str()));
            let key = |e: Event| match order {
                RowOrder::EventUser => (e.event, e.distinct_id, e.timestamp_ms),
                RowOrder::User => (String::new(), e.distinct_id, e.timestamp_ms),
            };
            let got: Vec<_> = read_segment(&out, None, None)
                .unwrap()
                .iter()
                .flat_map(|b| batch_to_events(b, &out).unwrap())
                .map(key)
                .collect();
            let mut want: Vec<_> = all.into_iter().map(key).collect();
            want.sort();
            assert_eq!(got, want, "{order:?}");
        }
    }

    #[test]
    fn segments_with_plain_string_events_still_merge_and_read() {
        // Segments written before `event` became dictionary-encoded store it as Utf8.
        let dir = tempfile::tempdir().unwrap();
        let p = ProjectId::new("p").unwrap();
        let old = dir.path().join("old.parquet");
        let batch = events_to_batch(&[ev("b", 2), ev("a", 5)]).unwrap();
        let mut fields: Vec<Field> = schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields[1] = Field::new(COL_EVENT, DataType::Utf8, false);
        let mut columns = batch.columns().to_vec();
        columns[1] = arrow::compute::cast(&columns[1], &DataType::Utf8).unwrap();
        let plain = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
        let props = WriterProperties::builder()
            .set_key_value_metadata(Some(vec![KeyValue::new(
                META_VERSION.to_owned(),
                SEGMENT_VERSION.to_owned(),
            )]))
            .build();
        let mut w =
            ArrowWriter::try_new(File::create(&old).unwrap(), plain.schema(), Some(props)).unwrap();
        w.write(&plain).unwrap();
        w.close().unwrap();
        let new = dir.path().join("new.parquet");
        write_segment(&new, &p, 0, [events_to_batch(&[ev("a", 1)])], opts(16, &[])).unwrap();

        let out = dir.path().join("merged.parquet");
        let merged =
            SortedMerge::new(&[old.as_path(), new.as_path()], RowOrder::User, None).unwrap();
        write_segment(&out, &p, 0, merged, opts(16, &[])).unwrap();
        let got: Vec<(String, String, i64)> = read_segment(&out, None, None)
            .unwrap()
            .iter()
            .flat_map(|b| batch_to_events(b, &out).unwrap())
            .map(|e| (e.event, e.distinct_id, e.timestamp_ms))
            .collect();
        let want =
            [("a", 1), ("a", 5), ("b", 2)].map(|(u, t)| ("view".to_owned(), u.to_owned(), t));
        assert_eq!(got, want);
        assert_eq!(batch_to_events(&plain, &old).unwrap().len(), 2);
    }

    #[test]
    fn distinct_id_count_prunes_row_groups_without_missing_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.parquet");
        // Ids longer than the 64-byte statistics truncation share long prefixes.
        let long = |i: usize| format!("{}{i:03}", "x".repeat(70));
        let mut users: Vec<String> = (0..20).map(|i| format!("u{i:02}")).collect();
        users.extend((0..5).map(long));
        let events: Vec<Event> = (0..200)
            .map(|i| {
                named(
                    ["view", "buy"][i % 3 / 2],
                    &users[(i * 7) % users.len()],
                    i as i64,
                )
            })
            .collect();
        let p = ProjectId::new("p").unwrap();
        let batch = events_to_batch(&events).unwrap();
        write_segment(&path, &p, 0, [Ok(batch)], opts(8, &[])).unwrap();
        for u in users
            .iter()
            .chain([&"absent".to_owned(), &long(999), &"".to_owned()])
        {
            let want = events.iter().filter(|e| &e.distinct_id == u).count() as u64;
            let got = count_distinct_id(&path, u, None).unwrap();
            assert_eq!(got.matching, want, "{u}");
            assert_eq!(got.rows, 200);
        }
    }

    #[test]
    fn garbage_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.parquet");
        std::fs::write(&path, b"PAR1 this is not parquet PAR1").unwrap();
        assert!(read_segment(&path, None, None).is_err());
    }

    fn keyring(dir: &Path) -> Encryption {
        let data = dir.join("data");
        let keys = dir.join("keys");
        let (ring, _) = minim_crypto::Keyring::open_for_data_dir(&data, &keys, None).unwrap();
        Encryption::new(Arc::new(ring))
    }

    #[test]
    fn encrypted_segment_round_trips_hides_everything_and_detects_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let enc = keyring(dir.path());
        let path = dir.path().join("s.parquet");
        let p = ProjectId::new("p").unwrap();
        let mut events: Vec<Event> = (0..50).map(|i| ev(&format!("user{i}"), i)).collect();
        events[3].properties = r#"{"email":"planted@example.com","k":"v"}"#.into();
        events[3].event = "planted_event_name".into();
        let shredded = vec!["k".to_owned()];
        let mut o = opts(16, &shredded);
        o.encryption = Some(&enc);
        let w = write_segment(&path, &p, 0, [events_to_batch(&events)], o).unwrap();
        assert_ne!(w.key_id, 0);
        let bytes = std::fs::read(&path).unwrap();
        for needle in [
            "planted@example.com",
            "planted_event_name",
            "user1",
            "email",
            "prop:k",
            "minim.project",
        ] {
            assert!(
                !bytes
                    .windows(needle.len())
                    .any(|win| win == needle.as_bytes()),
                "{needle} in the clear"
            );
        }
        let back: Vec<Event> = read_segment(&path, None, Some(&enc))
            .unwrap()
            .iter()
            .flat_map(|b| batch_to_events(b, &path).unwrap())
            .collect();
        assert_eq!(back.len(), 50);
        assert!(back.iter().any(|e| e.event == "planted_event_name"));
        assert_eq!(
            count_distinct_id(&path, "user7", Some(&enc))
                .unwrap()
                .matching,
            1
        );
        // Without the keys: an error, not data.
        assert!(read_segment(&path, None, None).is_err());
        // Every flipped byte (sampled) is an error naming the file, never other data.
        for i in (0..bytes.len()).step_by(97) {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            std::fs::write(&path, &bad).unwrap();
            match read_segment(&path, None, Some(&enc)) {
                Err(e) => assert!(e.to_string().contains("s.parquet"), "{e}"),
                Ok(b) => {
                    let got: Vec<Event> = b
                        .iter()
                        .flat_map(|b| batch_to_events(b, &path).unwrap())
                        .collect();
                    assert_eq!(got, back, "byte {i} changed the data without an error");
                }
            }
        }
    }

    /// Reads `columns` of `path` as a reader without personal access would.
    fn read_without_personal(
        path: &Path,
        enc: &Encryption,
        columns: &[&str],
    ) -> std::result::Result<Vec<RecordBatch>, String> {
        let options = ArrowReaderOptions::new()
            .with_file_decryption_properties(enc.decryption_properties(false).unwrap());
        let file = File::open(path).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(file, options)
            .map_err(|e| e.to_string())?;
        let reader = project(builder, columns)
            .build()
            .map_err(|e| e.to_string())?;
        reader
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn personal_values_have_their_own_key_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let enc = keyring(dir.path());
        let path = dir.path().join("s.parquet");
        let p = ProjectId::new("p").unwrap();
        let mut events: Vec<Event> = (0..40).map(|i| ev(&format!("user{i}"), i)).collect();
        for e in events.iter_mut().step_by(3) {
            e.properties = r#"{"email":"[redacted]","k":"v"}"#.into();
            e.personal = Some(format!(r#"{{"email":"{}@example.com"}}"#, e.distinct_id));
        }
        let batch = || events_to_batch(&events);
        let shredded = vec!["k".to_owned()];
        // Personal values never go silently missing.
        let mut o = opts(16, &shredded);
        o.encryption = Some(&enc);
        assert!(write_segment(&path, &p, 0, [batch()], o).is_err());
        assert!(!path.exists());

        o.personal = true;
        write_segment(&path, &p, 0, [batch()], o).unwrap();
        // Every column is ciphertext, not only the one with its own key.
        let bytes = std::fs::read(&path).unwrap();
        for needle in ["@example.com", "user1", "email", "prop:k", "view"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle} in the clear"
            );
        }
        assert!(dir.path().join("keys/projects/p.personal.keyset").exists());
        let back: Vec<Event> = read_segment(&path, None, Some(&enc))
            .unwrap()
            .iter()
            .flat_map(|b| batch_to_events(b, &path).unwrap())
            .collect();
        let mut want = events.clone();
        want.sort_by(|a, b| {
            a.distinct_id
                .cmp(&b.distinct_id)
                .then(a.timestamp_ms.cmp(&b.timestamp_ms))
        });
        assert_eq!(back, want);

        // A flipped byte anywhere (sampled) is an error, or lands in a field nothing
        // uses (e.g. a module's length prefix): never other data.
        let good = read_segment(&path, None, Some(&enc)).unwrap();
        for i in (0..bytes.len()).step_by(7) {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            std::fs::write(&path, &bad).unwrap();
            match read_segment(&path, None, Some(&enc)) {
                Ok(b) => assert!(b == good, "byte {i} changed the data without an error"),
                Err(e) => assert!(e.to_string().contains("s.parquet"), "{e}"),
            }
        }
        std::fs::write(&path, &bytes).unwrap();
        // Without personal access: every other column reads, the personal one does not.
        let others =
            read_without_personal(&path, &enc, &[COL_DISTINCT_ID, COL_PROPERTIES]).unwrap();
        assert_eq!(others.iter().map(RecordBatch::num_rows).sum::<usize>(), 40);
        assert!(read_without_personal(&path, &enc, &[COL_PERSONAL]).is_err());

        // A segment of events without personal values has no such column and no key use.
        let plain = dir.path().join("plain.parquet");
        let none: Vec<Event> = (0..5).map(|i| ev("u", i)).collect();
        let mut o = opts(16, &shredded);
        o.encryption = Some(&enc);
        write_segment(&plain, &p, 0, [events_to_batch(&none)], o).unwrap();
        let b = read_segment(&plain, None, Some(&enc)).unwrap();
        assert!(b[0].schema().index_of(COL_PERSONAL).is_err());
        let b = conform(&b[0]).unwrap();
        assert_eq!(b.column_by_name(COL_PERSONAL).unwrap().null_count(), 5);
    }
}
