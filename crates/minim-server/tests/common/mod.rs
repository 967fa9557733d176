//! The in-process test server: a fresh data directory, a project with an ingest key,
//! `serve` on port 0, and shutdown on `stop`.

#![allow(dead_code)]

use std::sync::Arc;

use minim_core::time::Clock;
use minim_core::{Event, ProjectId};
use minim_meta::{MetaStore, SqliteMeta};
use minim_privacy::pipeline::PrivacyConfig;
use minim_server::{App, SecurityConfig, ServerConfig};
use minim_store::{Store, StoreConfig};

/// A logged-in session.
#[derive(Clone, Debug)]
pub struct Session {
    pub set_cookie: String,
    /// `name=value` for the Cookie header.
    pub cookie: String,
    pub csrf: String,
    pub user_id: String,
}

pub enum Auth<'a> {
    None,
    Bearer(&'a str),
    Session(&'a Session),
}

pub struct TestServer {
    pub url: String,
    pub client: reqwest::Client,
    pub ingest_key: String,
    pub project: ProjectId,
    pub store: Arc<Store>,
    pub meta: Arc<SqliteMeta>,
    pub dir: tempfile::TempDir,
    /// Holds the audit signing key (outside the data directory, as in production).
    pub key_dir: tempfile::TempDir,
    pub security: SecurityConfig,
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
        Self::start_secure(store_cfg, server_cfg, privacy, SecurityConfig::default()).await
    }

    pub async fn start_security(security: SecurityConfig) -> Self {
        Self::start_secure(
            StoreConfig::default(),
            ServerConfig::default(),
            PrivacyConfig::default(),
            security,
        )
        .await
    }

    pub async fn start_secure(
        store_cfg: StoreConfig,
        server_cfg: ServerConfig,
        privacy: PrivacyConfig,
        security: SecurityConfig,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key_dir = tempfile::tempdir().unwrap();
        let security = SecurityConfig {
            audit_signing_key: Some(key_dir.path().join("audit.key")),
            ..security
        };
        let audit = minim_server::open_audit(dir.path(), &security).unwrap();
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
            audit,
        )
        .with_privacy(&privacy)
        .unwrap()
        .with_security(&security)
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
            key_dir,
            security,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// A user with `role` organization-wide and `password`; returns its id.
    pub fn user(&self, email: &str, role: minim_meta::Role, password: &str) -> String {
        let hash = minim_auth::password::hash_password(password).unwrap();
        self.meta
            .create_user(email, Some(&hash), role, Clock::system().now_ms())
            .unwrap()
            .id
    }

    /// Enrolls a TOTP second factor for a user directly; returns the seed.
    pub fn enroll_mfa(&self, user_id: &str) -> minim_auth::totp::TotpSecret {
        let secret = minim_auth::totp::TotpSecret::generate();
        self.meta
            .set_mfa(user_id, Some(secret.as_bytes()), true)
            .unwrap();
        secret
    }

    /// Logs in; `Ok(session)` or `Err((status, error code))`.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        totp: Option<&minim_auth::totp::TotpSecret>,
    ) -> Result<Session, (u16, String)> {
        let mut body = serde_json::json!({ "email": email, "password": password });
        if let Some(secret) = totp {
            let now = Clock::system().now_ms() / 1000;
            body["totp"] = minim_auth::totp::code_at(secret, now).into();
        }
        let r = self
            .client
            .post(format!("{}/api/v1/auth/login", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let cookie = r
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned());
        let json: serde_json::Value = r.json().await.unwrap();
        if status != 200 {
            return Err((
                status,
                json["error"]["code"].as_str().unwrap_or("").to_owned(),
            ));
        }
        let cookie = cookie.expect("login sets the session cookie");
        let pair = cookie.split(';').next().unwrap().to_owned();
        Ok(Session {
            set_cookie: cookie,
            cookie: pair,
            csrf: json["csrf_token"].as_str().unwrap().to_owned(),
            user_id: json["user_id"].as_str().unwrap().to_owned(),
        })
    }

    /// Sends `method path` with a bearer token or a session (cookie + CSRF), and an
    /// optional JSON body; returns the status and the body text.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        auth: &Auth<'_>,
        body: Option<serde_json::Value>,
    ) -> (u16, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = self.client.request(method, format!("{}{}", self.url, path));
        match auth {
            Auth::None => {}
            Auth::Bearer(t) => rb = rb.bearer_auth(t),
            Auth::Session(s) => {
                rb = rb
                    .header("cookie", &s.cookie)
                    .header("x-csrf-token", &s.csrf);
            }
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// A fresh API token for this server's project with `role`, valid for a day.
    pub fn token(&self, role: minim_meta::Role) -> String {
        let now = Clock::system().now_ms();
        self.meta
            .create_token(&self.project, role, 86_400_000, now)
            .unwrap()
            .token
    }

    /// A token with `role` plus explicit `permissions` (e.g. `read_personal`).
    pub fn token_with(&self, role: minim_meta::Role, permissions: &[&str]) -> String {
        let now = Clock::system().now_ms();
        self.meta
            .create_token_with(
                &minim_meta::TokenSpec {
                    project: self.project.clone(),
                    role: Some(role),
                    permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
                    ttl_ms: 86_400_000,
                    ip_allow: Vec::new(),
                    name: None,
                    created_by: None,
                },
                now,
            )
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

    /// Verifies the audit chain of this server's data directory.
    pub fn verify_audit(&self) -> minim_audit::VerifyReport {
        minim_audit::verify(
            &self.dir.path().join("audit"),
            &self.key_dir.path().join("audit.key"),
        )
        .unwrap()
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
