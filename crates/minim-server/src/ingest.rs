//! `POST /api/v1/events`: native ingest. Authenticate, bound memory, read the body
//! within limits, decode (per-event rejections), append durably, answer.

use axum::body::Body;
use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use minim_core::EventBatch;
use minim_ingest::{BodyFormat, ContentEncoding, Decoded, decode_native, decompress};
use minim_privacy::pipeline::ClientContext;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::telemetry as t;
use crate::{ApiError, App, auth};

#[derive(Serialize)]
struct IngestResponse {
    accepted: usize,
    rejected: Vec<RejectedEvent>,
    /// Events the privacy pipeline dropped (tracking plan, bots, PII rules); they are
    /// not stored. Only the reason is given, never the offending value.
    dropped: Vec<DroppedEvent>,
    /// Accepted events that were already stored (same insert_id); stored once.
    deduplicated: usize,
}

#[derive(Serialize)]
struct DroppedEvent {
    index: usize,
    reason: String,
}

#[derive(Serialize)]
struct RejectedEvent {
    index: usize,
    code: &'static str,
    message: String,
}

/// Parsing overhead assumed per body byte when reserving ingest memory.
const PARSE_OVERHEAD: usize = 3;

pub(crate) async fn native(
    State(app): State<App>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let client = app
        .inner
        .privacy
        .client_context(peer.map(|Extension(ConnectInfo(a))| a), &headers);
    let result = handle(&app, &headers, body, client).await;
    let status = match &result {
        Ok(_) => "200".to_owned(),
        Err(e) => e.status().as_str().to_owned(),
    };
    ::metrics::counter!(t::INGEST_REQUESTS, "status" => status).increment(1);
    result
}

async fn handle(
    app: &App,
    headers: &HeaderMap,
    body: Body,
    client: ClientContext,
) -> Result<Response, ApiError> {
    // Early refusals still drain the body, so the client reads the answer.
    let project = match auth::ingest_project(app, auth::bearer(headers)).await {
        Ok(p) => p,
        Err(e) => {
            drain(body).await;
            return Err(e);
        }
    };
    let limits = &app.inner.limits;
    let max = limits.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        drain(body).await;
        return Err(ApiError::BodyTooLarge { limit: max });
    }
    let encoding = match ContentEncoding::from_header(
        headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok()),
    ) {
        Ok(e) => e,
        Err(e) => {
            drain(body).await;
            return Err(e.into());
        }
    };
    let format = BodyFormat::from_content_type(
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );

    let _body_permit = match reserve(&app.inner.ingest_memory, declared.unwrap_or(max)) {
        Ok(p) => p,
        Err(e) => {
            drain(body).await;
            return Err(e);
        }
    };
    let timeout = Duration::from_millis(app.inner.cfg.body_read_timeout_ms);
    let bytes = tokio::time::timeout(timeout, read_body(body, max))
        .await
        .map_err(|_| ApiError::RequestTimeout)??;
    ::metrics::counter!(t::INGEST_BYTES).increment(bytes.len() as u64);
    let now = app.inner.clock.now_ms();
    let limits = limits.clone();
    let memory = app.inner.ingest_memory.clone();
    let a = app.clone();
    let target = project.clone();
    // Decoding and the privacy pipeline run together off the async threads; nothing
    // reaches the WAL without passing the pipeline.
    let (decoded, outcome) = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let plain = decompress(&bytes, encoding, limits.max_body_bytes)?;
        let _plain_permit = match encoding {
            ContentEncoding::Identity => None,
            _ => Some(reserve(&memory, plain.len())?),
        };
        let mut decoded = decode_native(&plain, format, ContentEncoding::Identity, &limits, now)?;
        let events = std::mem::take(&mut decoded.events);
        let outcome = a.inner.privacy.process(
            a.inner.meta.as_ref(),
            a.inner.store.encryption(),
            &target,
            &client,
            events,
            now,
        )?;
        Ok((decoded, outcome))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("decode task failed: {e}")))??;
    let Decoded {
        indices, rejected, ..
    } = decoded;
    let events = outcome.events;
    let dropped: Vec<DroppedEvent> = outcome
        .dropped
        .into_iter()
        .map(|(i, reason)| DroppedEvent {
            index: indices.get(i).copied().unwrap_or(i),
            reason,
        })
        .collect();

    let received = events.len() + dropped.len() + rejected.len();
    ::metrics::counter!(t::EVENTS_RECEIVED).increment(received as u64);
    for r in &rejected {
        ::metrics::counter!(t::EVENTS_REJECTED, "reason" => r.code).increment(1);
    }
    let accepted = events.len();
    let deduplicated = if events.is_empty() {
        0
    } else {
        let outcome = app
            .inner
            .store
            .append(EventBatch { project, events })
            .await?;
        outcome.duplicates
    };
    ::metrics::counter!(t::EVENTS_ACCEPTED).increment(accepted as u64);
    let rejected = rejected
        .into_iter()
        .map(|r| RejectedEvent {
            index: r.index,
            code: r.code,
            message: r.message,
        })
        .collect();
    Ok(axum::Json(IngestResponse {
        accepted,
        rejected,
        dropped,
        deduplicated,
    })
    .into_response())
}

/// Oversized bodies are read and discarded up to this many bytes before the 413 is
/// sent, so that ordinary clients (which send the whole body before reading the
/// answer) see the 413 rather than a reset connection; beyond it the connection closes.
const DRAIN_CAP_BYTES: usize = 64 << 20;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the body up to `max` bytes; past that, drains it and answers 413.
async fn read_body(mut body: Body, max: usize) -> Result<Bytes, ApiError> {
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ApiError::BadRequest {
            code: "body_read_failed",
            message: "could not read the request body".into(),
        })?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > max {
                drain(body).await;
                return Err(ApiError::BodyTooLarge { limit: max });
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Discards what is left of a body, bounded in bytes and time.
async fn drain(mut body: Body) {
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len());
            if seen > DRAIN_CAP_BYTES {
                break;
            }
        }
    })
    .await;
}

/// Reserves ingest memory for `bytes` of body, or answers 503 when the budget is spent.
fn reserve(memory: &Arc<Semaphore>, bytes: usize) -> Result<OwnedSemaphorePermit, ApiError> {
    let kib = (bytes.saturating_mul(PARSE_OVERHEAD) / 1024).max(1);
    let kib = u32::try_from(kib).unwrap_or(u32::MAX);
    memory
        .clone()
        .try_acquire_many_owned(kib)
        .map_err(|_| ApiError::Overloaded("ingest memory budget spent"))
}
