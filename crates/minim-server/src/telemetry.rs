//! The Prometheus recorder (installed once per process) and the server's metric names.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub const INGEST_REQUESTS: &str = "minim_ingest_requests_total";
pub const INGEST_BYTES: &str = "minim_ingest_request_bytes_total";
pub const EVENTS_RECEIVED: &str = "minim_ingest_events_received_total";
pub const EVENTS_ACCEPTED: &str = "minim_ingest_events_accepted_total";
pub const EVENTS_REJECTED: &str = "minim_ingest_events_rejected_total";
pub const INGEST_MEMORY_AVAILABLE_BYTES: &str = "minim_ingest_memory_available_bytes";
pub const QUERY_SECONDS: &str = "minim_query_seconds";
pub const PRIVACY_EVENTS: &str = "minim_privacy_total";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the global recorder (idempotent; a no-op if another recorder is installed).
pub fn install() {
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets(&[
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ])
            .ok()
            .and_then(|b| b.install_recorder().ok());
        if handle.is_some() {
            describe();
            minim_store::metrics::describe();
        }
        handle
    });
}

/// The Prometheus text exposition of every metric.
pub fn render() -> String {
    install();
    HANDLE
        .get()
        .and_then(Option::as_ref)
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        QUERY_SECONDS,
        "Query latency by kind (trends, funnel, retention, paths, events, sql), answered or not."
    );
    describe_counter!(INGEST_REQUESTS, "Ingest HTTP requests by status code.");
    describe_counter!(
        INGEST_BYTES,
        "Ingest request body bytes received (as sent, before decompression)."
    );
    describe_counter!(
        EVENTS_RECEIVED,
        "Events received in ingest requests that were decoded."
    );
    describe_counter!(EVENTS_ACCEPTED, "Events accepted (stored or deduplicated).");
    describe_counter!(EVENTS_REJECTED, "Events rejected, by reason code.");
    describe_counter!(
        PRIVACY_EVENTS,
        "Privacy pipeline counters by project and counter (received, accepted, events_dropped.<reason>, values_scrubbed.<detector>, properties_dropped.<reason>, urls_cleaned); never values."
    );
    describe_gauge!(
        INGEST_MEMORY_AVAILABLE_BYTES,
        "Unused ingest memory budget."
    );
}
