//! HTTP: the axum router, authentication of ingest keys, the one error-to-HTTP
//! mapping, health and metrics endpoints. The only crate that knows HTTP and JSON wire
//! shapes; it calls `minim-ingest` to decode, `minim-store` to persist and
//! `minim-meta` to resolve keys.
//!
//! Entry point: [`serve`] with an [`App`], a bound listener and a shutdown future (the
//! binary passes SIGTERM/SIGINT; tests pass a oneshot and port 0).

mod auth;
mod config;
mod error;
mod health;
mod ingest;
mod query;
mod routes;
pub mod telemetry;

use std::future::Future;
use std::sync::Arc;

use minim_core::time::Clock;
use minim_ingest::IngestLimits;
use minim_meta::MetaStore;
use minim_query::engine::QueryEngine;
use minim_store::Store;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use config::ServerConfig;
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
    clock: Clock,
}

impl App {
    pub fn new(
        cfg: ServerConfig,
        limits: IngestLimits,
        store: Arc<Store>,
        meta: Arc<dyn MetaStore>,
        engine: Arc<QueryEngine>,
        clock: Clock,
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
                engine,
                clock,
            }),
        }
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
    let router = routes::router(app);
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
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
