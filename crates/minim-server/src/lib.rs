//! HTTP: the axum router, authentication of ingest keys, the one error-to-HTTP
//! mapping, health and metrics endpoints. The only crate that knows HTTP and JSON wire
//! shapes; it calls `minim-ingest` to decode, `minim-store` to persist and
//! `minim-meta` to resolve keys.
//!
//! Entry point: [`serve`] with an [`App`], a bound listener and a shutdown future (the
//! binary passes SIGTERM/SIGINT; tests pass a oneshot and port 0).

mod access;
mod accounts_api;
mod admin_api;
pub mod audit;
mod auth;
mod config;
mod error;
mod health;
mod ingest;
pub mod privacy;
mod privacy_api;
mod query;
mod routes;
mod suppress;
pub mod telemetry;
mod webhook;

use std::future::Future;
use std::sync::Arc;

use minim_core::time::Clock;
use minim_ingest::IngestLimits;
use minim_meta::MetaStore;
use minim_privacy::pipeline::PrivacyConfig;
use minim_query::engine::QueryEngine;
use minim_store::Store;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use admin_api::parse_ttl_ms;
pub use audit::{Audit, open_audit};
pub use config::{SecurityConfig, ServerConfig};
pub use error::ApiError;

/// Everything a request handler may use. Cheap to clone.
#[derive(Clone)]
pub struct App {
    inner: Arc<AppInner>,
}

struct AppInner {
    cfg: ServerConfig,
    limits: IngestLimits,
    store: Arc<Store>,
    meta: Arc<dyn MetaStore>,
    keys: auth::KeyCache,
    /// Ingest memory budget in KiB: request bodies and their parsed form must fit.
    ingest_memory: Arc<Semaphore>,
    /// Runs insight and SQL queries on its own thread pool, within its limits.
    engine: Arc<QueryEngine>,
    /// The privacy pipeline and its per-project rules and counters.
    privacy: Arc<privacy::Privacy>,
    /// How often the retention job runs (0 = never).
    retention_interval_ms: u64,
    clock: Clock,
    security: SecurityConfig,
    /// The audit log: every read of event data and every change leaves a record here.
    audit: Audit,
    /// Cedar policies: the one authorization decision.
    authorizer: minim_auth::policy::Authorizer,
    /// Read budgets per principal (in memory; suspensions persist in the metadata store).
    budgets: minim_auth::budget::Budgets,
    /// Failed logins per account and address.
    logins: minim_auth::limiter::LoginLimiter,
    orgs: access::OrgCache,
}

impl App {
    pub fn new(
        cfg: ServerConfig,
        limits: IngestLimits,
        store: Arc<Store>,
        meta: Arc<dyn MetaStore>,
        engine: Arc<QueryEngine>,
        clock: Clock,
        audit: Audit,
    ) -> Self {
        let kib = (cfg.ingest_memory_bytes / 1024).clamp(1, Semaphore::MAX_PERMITS);
        let keys = auth::KeyCache::new(cfg.key_cache_ttl_ms);
        Self {
            inner: Arc::new(AppInner {
                cfg,
                limits,
                store,
                meta,
                keys,
                ingest_memory: Arc::new(Semaphore::new(kib)),
                privacy: Arc::new(
                    privacy::Privacy::new(&PrivacyConfig::default(), clock.now_ms())
                        .unwrap_or_else(|_| unreachable!("the default privacy config is valid")),
                ),
                retention_interval_ms: PrivacyConfig::default().retention_interval_ms,
                engine,
                clock,
                security: SecurityConfig::default(),
                audit,
                authorizer: minim_auth::policy::Authorizer::new(),
                budgets: minim_auth::budget::Budgets::new(),
                logins: minim_auth::limiter::LoginLimiter::new(Default::default()),
                orgs: access::OrgCache::new(),
            }),
        }
    }

    /// Applies the `[security]` config (sessions, group sizes, exports, webhook). Call
    /// right after [`App::new`].
    pub fn with_security(mut self, cfg: &SecurityConfig) -> Result<Self, String> {
        cfg.validate()?;
        let inner = Arc::get_mut(&mut self.inner)
            .ok_or_else(|| "with_security must be called before the app is shared".to_owned())?;
        inner.security = cfg.clone();
        Ok(self)
    }

    pub fn audit(&self) -> &Audit {
        &self.inner.audit
    }

    /// Applies the `[privacy]` config (geo database, trusted proxies, retention
    /// interval). Call right after [`App::new`]; the error names the config field.
    pub fn with_privacy(mut self, cfg: &PrivacyConfig) -> Result<Self, String> {
        let now = self.inner.clock.now_ms();
        let privacy = Arc::new(privacy::Privacy::new(cfg, now)?);
        let inner = Arc::get_mut(&mut self.inner)
            .ok_or_else(|| "with_privacy must be called before the app is shared".to_owned())?;
        inner.privacy = privacy;
        inner.retention_interval_ms = cfg.retention_interval_ms;
        Ok(self)
    }

    pub fn privacy(&self) -> &Arc<privacy::Privacy> {
        &self.inner.privacy
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }
}

/// Serves HTTP on `listener` until `shutdown` resolves, then drains in-flight
/// requests and flushes the store. Returns once the store is flushed.
pub async fn serve(
    app: App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    telemetry::install();
    let store = app.inner.store.clone();
    let background = tokio::spawn(background(app.clone()));
    let final_app = app.clone();
    let router = routes::router(app);
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    background.abort();
    let _ = tokio::task::spawn_blocking(move || {
        let inner = &final_app.inner;
        if let Err(e) = inner.privacy.flush_counters(inner.meta.as_ref()) {
            tracing::warn!(error = %e, "could not save the privacy counters");
        }
        if let Err(e) = inner.audit.log.checkpoint() {
            tracing::warn!(error = %e, "could not sign the final audit checkpoint");
        }
    })
    .await;
    tracing::info!("HTTP drained; flushing the store");
    let flushed = tokio::task::spawn_blocking(move || store.shutdown()).await;
    match flushed {
        Ok(Ok(())) => tracing::info!("store flushed; bye"),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "final flush failed; the WAL keeps the data for the next start")
        }
        Err(e) => {
            tracing::error!(error = %e, "final flush panicked; the WAL keeps the data for the next start")
        }
    }
    Ok(())
}

/// Periodic work: privacy counters to the metadata store, the cookieless salt's
/// midnight rotation, and the retention job.
async fn background(app: App) {
    const TICK: std::time::Duration = std::time::Duration::from_secs(10);
    let retention_every = app.inner.retention_interval_ms;
    let mut last_retention = app.inner.clock.now_ms();
    loop {
        tokio::time::sleep(TICK).await;
        let a = app.clone();
        let now = a.inner.clock.now_ms();
        let run_retention = retention_every > 0
            && now.saturating_sub(last_retention)
                >= i64::try_from(retention_every).unwrap_or(i64::MAX);
        if run_retention {
            last_retention = now;
        }
        let _ = tokio::task::spawn_blocking(move || {
            let inner = &a.inner;
            inner.privacy.pipeline().tick(now);
            if let Err(e) = inner.privacy.flush_counters(inner.meta.as_ref()) {
                tracing::warn!(error = %e, "could not save the privacy counters; will retry");
            }
            if run_retention
                && let Err(e) = privacy::run_retention(&inner.store, inner.meta.as_ref(), now)
            {
                tracing::warn!(error = %e, "retention run failed; will retry");
            }
        })
        .await;
    }
}
