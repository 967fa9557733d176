//! Names of the store's metrics (recorded through the `metrics` facade) and their help text.

pub const WAL_BYTES: &str = "minim_wal_bytes_total";
pub const WAL_RECORDS: &str = "minim_wal_records_total";
pub const WAL_GROUP_COMMITS: &str = "minim_wal_group_commits_total";
pub const WAL_FSYNC_SECONDS: &str = "minim_wal_fsync_seconds";
pub const WAL_ROTATE_SECONDS: &str = "minim_wal_rotate_seconds";
pub const WAL_ERRORS: &str = "minim_wal_errors_total";
pub const WAL_QUEUE_DEPTH: &str = "minim_wal_queue_depth";
pub const EVENTS_STORED: &str = "minim_store_events_stored_total";
pub const EVENTS_DEDUPLICATED: &str = "minim_store_events_deduplicated_total";
pub const DEDUPE_KEYS: &str = "minim_store_dedupe_keys";
pub const MEMTABLE_BYTES: &str = "minim_store_memtable_bytes";
pub const MEMTABLE_ROWS: &str = "minim_store_memtable_rows";
pub const FLUSHES: &str = "minim_store_flushes_total";
pub const FLUSH_ERRORS: &str = "minim_store_flush_errors_total";
pub const FLUSH_SECONDS: &str = "minim_store_flush_seconds";
pub const COMPACTIONS: &str = "minim_store_compactions_total";
pub const COMPACTION_ERRORS: &str = "minim_store_compaction_errors_total";
pub const SEGMENTS: &str = "minim_store_segments";
pub const SEGMENT_BYTES: &str = "minim_store_segment_bytes";
pub const ERASURES: &str = "minim_store_erasures_total";
pub const EVENTS_ERASED: &str = "minim_store_events_erased_total";
pub const RETENTION_RUNS: &str = "minim_store_retention_runs_total";
pub const EVENTS_EXPIRED: &str = "minim_store_events_expired_total";
pub const PROPERTIES_EXPIRED: &str = "minim_store_properties_expired_total";

/// Registers help text for every store metric with the installed recorder.
pub fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(WAL_BYTES, "Bytes appended to the write-ahead log.");
    describe_counter!(
        WAL_RECORDS,
        "Records (one per ingest batch) appended to the WAL."
    );
    describe_counter!(WAL_GROUP_COMMITS, "Group commits (one fsync each).");
    describe_histogram!(
        WAL_FSYNC_SECONDS,
        "Latency of WAL write+fsync per group commit."
    );
    describe_histogram!(
        WAL_ROTATE_SECONDS,
        "Latency of starting a new WAL file (create, header, fsync file and directory)."
    );
    describe_counter!(WAL_ERRORS, "WAL write or fsync failures.");
    describe_gauge!(
        WAL_QUEUE_DEPTH,
        "Append requests waiting for the WAL writer."
    );
    describe_counter!(EVENTS_STORED, "Events made durable.");
    describe_counter!(EVENTS_DEDUPLICATED, "Events dropped as repeated insert_id.");
    describe_gauge!(DEDUPE_KEYS, "insert_id hashes held by the dedupe index.");
    describe_gauge!(MEMTABLE_BYTES, "Approximate bytes in the active memtable.");
    describe_gauge!(MEMTABLE_ROWS, "Rows in the active memtable.");
    describe_counter!(FLUSHES, "Memtable flushes to segments.");
    describe_counter!(FLUSH_ERRORS, "Failed flush attempts (retried).");
    describe_histogram!(FLUSH_SECONDS, "Duration of memtable flushes.");
    describe_counter!(COMPACTIONS, "Partitions compacted.");
    describe_counter!(COMPACTION_ERRORS, "Failed compactions.");
    describe_gauge!(SEGMENTS, "Live segments.");
    describe_gauge!(SEGMENT_BYTES, "Bytes in live segments.");
    describe_counter!(ERASURES, "User erasures completed.");
    describe_counter!(EVENTS_ERASED, "Events removed by user erasures.");
    describe_counter!(RETENTION_RUNS, "Retention policy runs completed.");
    describe_counter!(EVENTS_EXPIRED, "Events deleted by retention.");
    describe_counter!(
        PROPERTIES_EXPIRED,
        "Property entries removed from kept events by retention."
    );
}
