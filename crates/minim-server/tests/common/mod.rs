//! The in-process test server: a fresh data directory, a project with an ingest key,
//! `serve` on port 0, and shutdown on `stop`.

#![allow(dead_code)]

use std::sync::Arc;

use minim_core::time::Clock;
use minim_core::{Event, ProjectId};
use minim_meta::{MetaStore, SqliteMeta};
use minim_privacy::pipeline::PrivacyConfig;
use minim_server::{App, ServerConfig};
use minim_store::{Store, StoreConfig};

pub struct TestServer {
    pub url: String,
    pub client: reqwest::Client,
    pub ingest_key: String,
    pub project: ProjectId,
    pub store: Arc<Store>,
    pub meta: Arc<SqliteMeta>,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(StoreConfig::default()).await
    }

    pub async fn start_with(store_cfg: StoreConfig) -> Self {
        Self::start_full(store_cfg, ServerConfig::default()).await
    }

    pub async fn start_with_server(server_cfg: ServerConfig) -> Self {
        Self::start_full(StoreConfig::default(), server_cfg).await
    }

    pub async fn start_full(store_cfg: StoreConfig, server_cfg: ServerConfig) -> Self {
        Self::start_privacy(store_cfg, server_cfg, PrivacyConfig::default()).await
    }

    pub async fn start_privacy(
        store_cfg: StoreConfig,
        server_cfg: ServerConfig,
        privacy: PrivacyConfig,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let meta = Arc::new(SqliteMeta::open(&dir.path().join("meta.db")).unwrap());
        let created = meta.create_project("test", 0).unwrap();
        let store_cfg = StoreConfig {
            data_dir: dir.path().join("events"),
            ..store_cfg
        };
        let store = Arc::new(Store::open(store_cfg).unwrap());
        let app = App::new(
            server_cfg,
            minim_ingest::IngestLimits::default(),
            store.clone(),
            meta.clone() as Arc<dyn MetaStore>,
            Arc::new(
                minim_query::engine::QueryEngine::new(minim_query::engine::EngineConfig {
                    threads: 2,
                    ..Default::default()
                })
                .unwrap(),
            ),
            Clock::system(),
        )
        .with_privacy(&privacy)
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            minim_server::serve(app, listener, async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self {
            url,
            client: reqwest::Client::new(),
            ingest_key: created.ingest_key,
            project: created.project.id,
            store,
            meta,
            dir,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// A fresh API token for this server's project with `role`, valid for a day.
    pub fn token(&self, role: minim_meta::Role) -> String {
        let now = Clock::system().now_ms();
        self.meta
            .create_token(&self.project, role, 86_400_000, now)
            .unwrap()
            .token
    }

    /// An analyst token of another project.
    pub fn other_project_token(&self) -> String {
        let now = Clock::system().now_ms();
        let p = self.meta.create_project("elsewhere", now).unwrap();
        self.meta
            .create_token(&p.project.id, minim_meta::Role::Analyst, 86_400_000, now)
            .unwrap()
            .token
    }

    /// A token that was valid and has been revoked.
    pub fn revoked_token(&self) -> String {
        let now = Clock::system().now_ms();
        let t = self
            .meta
            .create_token(&self.project, minim_meta::Role::Admin, 86_400_000, now)
            .unwrap();
        self.meta.revoke_token(&t.token_id, now).unwrap();
        t.token
    }

    /// A key that was valid and has been revoked (by rotation).
    pub fn revoked_key(&self) -> String {
        let p = self.meta.create_project("revoked", 0).unwrap();
        self.meta.rotate_ingest_key(&p.project.id, 1).unwrap();
        p.ingest_key
    }

    /// The stored form of a `distinct_id` in this server's project.
    pub fn pseudonym(&self, distinct_id: &str) -> String {
        minim_server::privacy::pseudonym_of(self.meta.as_ref(), &self.project, distinct_id, 0)
            .unwrap()
    }

    pub fn stored_events(&self) -> Vec<Event> {
        self.store.snapshot().events(&self.project).unwrap()
    }

    /// Stops the server and hands over its data directory (deleted when dropped).
    pub async fn stop_keeping_dir(mut self) -> tempfile::TempDir {
        self.shutdown().await;
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }

    pub async fn stop(mut self) {
        self.shutdown().await;
    }

    async fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }
}
