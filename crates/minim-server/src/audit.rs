//! The audit trail of HTTP requests. The [`layer`] middleware gives every audited
//! request an [`AuditSlot`]; the authorization point and the handlers fill it (who, what
//! action on which resource, rows and users returned, the query's fingerprint), and the
//! middleware appends one record once the response is ready — before it is sent. If the
//! record cannot be written, the client gets 503 instead of the response: no read
//! without a trace. Extra records (logins, budget trips, approvals) go through
//! [`record`] with the same durability.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use minim_audit::{AuditConfig, AuditEvent, AuditLog, Decision, Mirror};
use sha2::Sha256;

use crate::config::SecurityConfig;
use crate::error::ErrorCode;
use crate::{ApiError, App};

/// An open audit log and the key that hashes client IPs for it.
pub struct Audit {
    pub log: Arc<AuditLog>,
    ip_key: zeroize::Zeroizing<Vec<u8>>,
}

/// Opens the audit log of a data directory (`DATA_DIR/audit`) with the signing key from
/// `cfg` (created on first use). The server and the admin CLI both open it this way and
/// share one chain.
pub fn open_audit(data_dir: &Path, cfg: &SecurityConfig) -> Result<Audit, String> {
    let signing_key_path = cfg.signing_key_path(data_dir)?;
    let (key, _) = minim_audit::load_or_create_signing_key(&signing_key_path)
        .map_err(|e| format!("audit signing key: {e}"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key.to_bytes())
        .map_err(|e| format!("audit ip key: {e}"))?;
    mac.update(b"minim.audit.client-ip.v1");
    let ip_key = zeroize::Zeroizing::new(mac.finalize().into_bytes().to_vec());
    let mirror = match (&cfg.audit_mirror_file, &cfg.audit_syslog_socket) {
        (Some(f), _) => Some(Mirror::File(f.clone())),
        (None, Some(s)) => Some(Mirror::Syslog { socket: s.clone() }),
        (None, None) => None,
    };
    let log = AuditLog::open(AuditConfig {
        dir: data_dir.join("audit"),
        signing_key_path,
        checkpoint_interval_ms: cfg.audit_checkpoint_interval_ms,
        mirror,
    })
    .map_err(|e| format!("opening the audit log: {e}"))?;
    Ok(Audit {
        log: Arc::new(log),
        ip_key,
    })
}

impl Audit {
    /// The keyed hash of a client address as the log stores it.
    pub fn ip_hash(&self, ip: IpAddr) -> String {
        match Hmac::<Sha256>::new_from_slice(&self.ip_key) {
            Ok(mut mac) => {
                mac.update(ip.to_string().as_bytes());
                hex::encode(&mac.finalize().into_bytes()[..16])
            }
            Err(_) => String::new(),
        }
    }
}

/// What a request did, filled in while it is handled.
#[derive(Clone, Default)]
pub(crate) struct AuditSlot(Arc<Mutex<SlotData>>);

#[derive(Default)]
struct SlotData {
    principal: Option<(String, &'static str)>,
    action: Option<&'static str>,
    resource: Option<String>,
    rows: u64,
    distinct_users: u64,
    fingerprint: Option<String>,
    /// Not audited (health checks): set by routes that opt out.
    skip: bool,
}

impl AuditSlot {
    fn with<R>(&self, f: impl FnOnce(&mut SlotData) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn principal(&self, id: &str, kind: &'static str) {
        self.with(|d| d.principal = Some((id.to_owned(), kind)));
    }

    pub fn action(&self, action: &'static str, resource: String) {
        self.with(|d| {
            d.action = Some(action);
            d.resource = Some(resource);
        });
    }

    pub fn returned(&self, rows: u64, distinct_users: u64) {
        self.with(|d| {
            d.rows = rows;
            d.distinct_users = distinct_users;
        });
    }

    pub fn fingerprint(&self, text: &str) {
        let fp = minim_audit::hash_fingerprint(text);
        self.with(|d| d.fingerprint = Some(fp));
    }
}

/// The client address of the connection (never stored: only its keyed hash is).
pub(crate) fn peer(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip())
}

/// The audit form of a client IP: HMAC-SHA256 under a key derived from the audit signing
/// key (kept outside the data directory), so the log cannot be brute-forced back to
/// addresses by someone who only has the data.
pub(crate) fn ip_hash(app: &App, ip: Option<IpAddr>) -> Option<String> {
    ip.map(|ip| app.inner.audit.ip_hash(ip))
}

/// A record the middleware does not write by itself (logins, trips, approvals).
pub(crate) struct Extra<'a> {
    pub principal: &'a str,
    pub principal_kind: &'a str,
    pub action: &'a str,
    pub resource: String,
    pub decision: Decision,
    pub status: u16,
    pub reason: Option<String>,
    pub ip: Option<IpAddr>,
}

/// Appends one record durably (blocking work off the async threads).
pub(crate) async fn record(app: &App, extra: Extra<'_>) -> Result<(), ApiError> {
    let event = AuditEvent {
        time_ms: app.inner.clock.now_ms(),
        principal: extra.principal.to_owned(),
        principal_kind: extra.principal_kind.to_owned(),
        action: extra.action.to_owned(),
        resource: extra.resource,
        decision: extra.decision,
        status: extra.status,
        rows: 0,
        bytes: 0,
        distinct_users: 0,
        fingerprint: None,
        client_ip_hash: ip_hash(app, extra.ip),
        reason: extra.reason,
        request_id: None,
    };
    append(app, event).await
}

async fn append(app: &App, event: AuditEvent) -> Result<(), ApiError> {
    let log = app.inner.audit.log.clone();
    match tokio::task::spawn_blocking(move || log.append_one(event)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot write the audit log; refusing the request");
            Err(ApiError::AuditUnavailable)
        }
        Err(e) => {
            tracing::error!(error = %e, "audit task failed; refusing the request");
            Err(ApiError::AuditUnavailable)
        }
    }
}

fn decision(status: StatusCode) -> Decision {
    match status.as_u16() {
        s if s < 400 => Decision::Allow,
        401 | 403 | 429 => Decision::Deny,
        _ => Decision::Error,
    }
}

/// Middleware: one durable audit record per request, written before the response leaves.
pub(crate) async fn layer(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let slot = AuditSlot::default();
    req.extensions_mut().insert(slot.clone());
    let ip = peer(&req);
    let path_resource = format!("route:{}", req.uri().path());
    let started = app.inner.clock.now_ms();
    let response = next.run(req).await;
    let status = response.status();
    let reason = response
        .extensions()
        .get::<ErrorCode>()
        .map(|c| c.0.to_owned());
    let bytes = axum::body::HttpBody::size_hint(response.body())
        .exact()
        .unwrap_or(0);
    let data = std::mem::take(&mut *slot.0.lock().unwrap_or_else(PoisonError::into_inner));
    if data.skip {
        return response;
    }
    let (principal, kind) = data
        .principal
        .unwrap_or_else(|| ("anonymous".to_owned(), "anonymous"));
    let event = AuditEvent {
        time_ms: started,
        principal,
        principal_kind: kind.to_owned(),
        action: data.action.unwrap_or("request").to_owned(),
        resource: data.resource.unwrap_or(path_resource),
        decision: decision(status),
        status: status.as_u16(),
        rows: data.rows,
        bytes,
        distinct_users: data.distinct_users,
        fingerprint: data.fingerprint,
        client_ip_hash: ip_hash(&app, ip),
        reason,
        request_id: None,
    };
    match append(&app, event).await {
        Ok(()) => response,
        Err(e) => e.into_response(),
    }
}
