//! `SqliteMeta`: the embedded metadata store on SQLite (WAL mode, safe across processes).

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use minim_core::ProjectId;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::accounts::{self, DEFAULT_ORG};
use crate::keys::{KeyKind, generate_id, generate_secret, hash_secret, looks_valid};
use crate::migrations::MIGRATIONS;
use crate::{
    Alert, CreatedProject, CreatedToken, DeletionRecord, ExportRequest, Membership, MetaError,
    MetaStore, PlanSuggestion, Project, Result, Role, Session, TokenInfo, TokenSpec, User, privacy,
};

pub struct SqliteMeta {
    conn: Mutex<Connection>,
}

impl SqliteMeta {
    /// Opens (creating if needed) an unencrypted database at `path` and applies pending
    /// migrations. Tests and tools only: the binary uses [`SqliteMeta::open_encrypted`].
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    /// Opens (creating if needed) the database at `path`, encrypted as a whole with
    /// SQLCipher (AES-256 pages with an HMAC each, its WAL included) under `key`, and
    /// applies pending migrations. A wrong key or a tampered page is an error.
    pub fn open_encrypted(path: &Path, key: &minim_crypto::Key) -> Result<Self> {
        let conn = Connection::open(path)?;
        // SQLCipher logs its own errors to stderr by default; ours say it better.
        conn.execute_batch("PRAGMA cipher_log_level = NONE;")?;
        set_key(&conn, key)?;
        // The key is checked on first read: make that read happen here.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))
            .map_err(|_| {
                MetaError::Db(format!(
                    "{} cannot be decrypted with the metadata key: wrong keys directory, or the file is corrupt",
                    path.display()
                ))
            })?;
        Self::init(conn)
    }

    /// An in-memory database (tests).
    pub fn in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Self> {
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// Writes a consistent copy of the whole database to `dest` (a new file), encrypted
    /// under `key` like the original (SQLite's online backup: other processes may go on
    /// writing meanwhile).
    pub fn backup_encrypted(&self, dest: &Path, key: &minim_crypto::Key) -> Result<()> {
        if dest.exists() {
            return Err(MetaError::Invalid(format!(
                "{} already exists",
                dest.display()
            )));
        }
        let mut dst = Connection::open(dest)?;
        dst.execute_batch("PRAGMA cipher_log_level = NONE;")?;
        set_key(&dst, key)?;
        let src = self.conn();
        rusqlite::backup::Backup::new(&src, &mut dst)?.run_to_completion(
            256,
            Duration::ZERO,
            None,
        )?;
        Ok(())
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The schema version in use.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self.conn().query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )?)
    }
}

/// Keys a SQLCipher connection with a raw 256-bit key (no passphrase derivation).
fn set_key(conn: &Connection, key: &minim_crypto::Key) -> Result<()> {
    let pragma = zeroize::Zeroizing::new(format!("PRAGMA key = \"x'{}'\";", key.to_hex().as_str()));
    conn.execute_batch(&pragma)?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at_ms INTEGER NOT NULL)",
    )?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > known {
        return Err(MetaError::NewerSchema {
            found: current,
            known,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at_ms) VALUES (?1, ?2)",
            params![version, chrono::Utc::now().timestamp_millis()],
        )?;
        tracing::info!(version, "applied metadata migration");
    }
    tx.commit()?;
    Ok(())
}

pub(crate) fn project_id(s: String) -> rusqlite::Result<ProjectId> {
    ProjectId::new(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn row_to_project(r: &rusqlite::Row<'_>) -> rusqlite::Result<Project> {
    Ok(Project {
        id: project_id(r.get(0)?)?,
        org_id: r.get(1)?,
        name: r.get(2)?,
        created_at_ms: r.get(3)?,
    })
}

impl MetaStore for SqliteMeta {
    fn create_project(&self, name: &str, now_ms: i64) -> Result<CreatedProject> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(MetaError::Invalid(
                "project name must be 1-200 characters".into(),
            ));
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT OR IGNORE INTO organizations (id, name, created_at_ms) VALUES (?1, 'Default', ?2)",
            params![DEFAULT_ORG, now_ms],
        )?;
        let id =
            ProjectId::new(generate_id("p_")).map_err(|e| MetaError::Invalid(e.to_string()))?;
        tx.execute(
            "INSERT INTO projects (id, org_id, name, created_at_ms) VALUES (?1, ?2, ?3, ?4)",
            params![id.as_str(), DEFAULT_ORG, name, now_ms],
        )?;
        let key = generate_secret(KeyKind::Ingest);
        tx.execute(
            "INSERT INTO ingest_keys (key_hash, project_id, created_at_ms) VALUES (?1, ?2, ?3)",
            params![hash_secret(&key), id.as_str(), now_ms],
        )?;
        tx.commit()?;
        let project = Project {
            id,
            org_id: DEFAULT_ORG.into(),
            name: name.into(),
            created_at_ms: now_ms,
        };
        Ok(CreatedProject {
            project,
            ingest_key: key,
        })
    }

    fn project(&self, id: &ProjectId) -> Result<Option<Project>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, org_id, name, created_at_ms FROM projects WHERE id = ?1",
                params![id.as_str()],
                row_to_project,
            )
            .optional()?)
    }

    fn list_projects(&self) -> Result<Vec<Project>> {
        let conn = self.conn();
        let mut st = conn.prepare(
            "SELECT id, org_id, name, created_at_ms FROM projects ORDER BY created_at_ms, id",
        )?;
        let rows = st.query_map([], row_to_project)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn delete_project(&self, project: &ProjectId) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Children first (foreign keys are on).
        for table in [
            "export_requests",
            "deletions",
            "privacy_counters",
            "identities",
            "plan_suggestions",
            "tracking_plans",
            "project_secrets",
            "api_tokens",
            "ingest_keys",
            "memberships",
            "alerts",
        ] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE project_id = ?1"),
                [project.as_str()],
            )?;
        }
        let n = tx.execute("DELETE FROM projects WHERE id = ?1", [project.as_str()])?;
        tx.commit()?;
        Ok(n > 0)
    }

    fn rotate_ingest_key(&self, project: &ProjectId, now_ms: i64) -> Result<String> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: Option<String> = tx
            .query_row(
                "SELECT id FROM projects WHERE id = ?1",
                params![project.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_none() {
            return Err(MetaError::NotFound(format!("project {project}")));
        }
        tx.execute(
            "UPDATE ingest_keys SET revoked_at_ms = ?2 WHERE project_id = ?1 AND revoked_at_ms IS NULL",
            params![project.as_str(), now_ms],
        )?;
        let key = generate_secret(KeyKind::Ingest);
        tx.execute(
            "INSERT INTO ingest_keys (key_hash, project_id, created_at_ms) VALUES (?1, ?2, ?3)",
            params![hash_secret(&key), project.as_str(), now_ms],
        )?;
        tx.commit()?;
        Ok(key)
    }

    fn project_for_ingest_key(&self, key: &str) -> Result<Option<ProjectId>> {
        if !looks_valid(KeyKind::Ingest, key) {
            return Ok(None);
        }
        let id: Option<String> = self
            .conn()
            .query_row(
                "SELECT project_id FROM ingest_keys WHERE key_hash = ?1 AND revoked_at_ms IS NULL",
                params![hash_secret(key)],
                |r| r.get(0),
            )
            .optional()?;
        id.map(|s| ProjectId::new(s).map_err(|e| MetaError::Db(e.to_string())))
            .transpose()
    }

    fn create_token_with(&self, spec: &TokenSpec, now_ms: i64) -> Result<CreatedToken> {
        accounts::create_token(&self.conn(), spec, now_ms)
    }

    fn revoke_token(&self, token_id: &str, now_ms: i64) -> Result<bool> {
        let n = self.conn().execute(
            "UPDATE api_tokens SET revoked_at_ms = ?2 WHERE id = ?1 AND revoked_at_ms IS NULL",
            params![token_id, now_ms],
        )?;
        Ok(n > 0)
    }

    fn verify_token(&self, token: &str, now_ms: i64) -> Result<Option<TokenInfo>> {
        accounts::verify_token(&self.conn(), token, now_ms)
    }

    fn tokens(&self, project: &ProjectId) -> Result<Vec<TokenInfo>> {
        accounts::tokens(&self.conn(), project)
    }

    fn create_user(
        &self,
        email: &str,
        password_hash: Option<&str>,
        role: Role,
        now_ms: i64,
    ) -> Result<User> {
        accounts::create_user(&mut self.conn(), email, password_hash, role, now_ms)
    }

    fn user(&self, id: &str) -> Result<Option<User>> {
        accounts::user(&self.conn(), id)
    }

    fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        accounts::user_by_email(&self.conn(), email)
    }

    fn list_users(&self, org: &str) -> Result<Vec<User>> {
        accounts::list_users(&self.conn(), org)
    }

    fn set_password(&self, user: &str, password_hash: &str) -> Result<()> {
        accounts::set_password(&self.conn(), user, password_hash)
    }

    fn set_mfa(&self, user: &str, secret: Option<&[u8]>, enabled: bool) -> Result<()> {
        accounts::set_mfa(&self.conn(), user, secret, enabled)
    }

    fn use_mfa_step(&self, user: &str, step: i64) -> Result<bool> {
        accounts::use_mfa_step(&self.conn(), user, step)
    }

    fn set_recovery_codes(&self, user: &str, hashes: &[String]) -> Result<()> {
        accounts::set_recovery_codes(&mut self.conn(), user, hashes)
    }

    fn use_recovery_code(&self, user: &str, hash: &str, now_ms: i64) -> Result<bool> {
        accounts::use_recovery_code(&self.conn(), user, hash, now_ms)
    }

    fn memberships(&self, user: &str) -> Result<Vec<Membership>> {
        accounts::memberships(&self.conn(), user)
    }

    fn set_membership(&self, user: &str, membership: &Membership) -> Result<()> {
        accounts::set_membership(&self.conn(), user, membership)
    }

    fn remove_membership(&self, user: &str, project: Option<&ProjectId>) -> Result<bool> {
        accounts::remove_membership(&self.conn(), user, project)
    }

    fn create_session(
        &self,
        user: &str,
        secret_hash: &str,
        csrf_hash: &str,
        mfa_at_ms: Option<i64>,
        ttl_ms: i64,
        now_ms: i64,
    ) -> Result<Session> {
        accounts::create_session(
            &self.conn(),
            user,
            secret_hash,
            csrf_hash,
            mfa_at_ms,
            ttl_ms,
            now_ms,
        )
    }

    fn session(&self, secret_hash: &str, idle_ms: i64, now_ms: i64) -> Result<Option<Session>> {
        accounts::session(&self.conn(), secret_hash, idle_ms, now_ms)
    }

    fn sessions_of(&self, user: &str, now_ms: i64) -> Result<Vec<Session>> {
        accounts::sessions_of(&self.conn(), user, now_ms)
    }

    fn set_session_mfa(&self, session_id: &str, at_ms: i64) -> Result<()> {
        accounts::set_session_mfa(&self.conn(), session_id, at_ms)
    }

    fn revoke_sessions(&self, user: &str, session_id: Option<&str>, now_ms: i64) -> Result<usize> {
        accounts::revoke_sessions(&self.conn(), user, session_id, now_ms)
    }

    fn org_settings(&self, org: &str) -> Result<Option<String>> {
        accounts::org_settings(&self.conn(), org)
    }

    fn set_org_settings(&self, org: &str, json: &str, now_ms: i64) -> Result<()> {
        accounts::set_org_settings(&self.conn(), org, json, now_ms)
    }

    fn suspend(&self, principal: &str, org: &str, reason: &str, now_ms: i64) -> Result<()> {
        accounts::suspend(&self.conn(), principal, org, reason, now_ms)
    }

    fn restore(&self, principal: &str) -> Result<bool> {
        accounts::restore(&self.conn(), principal)
    }

    fn is_suspended(&self, principal: &str) -> Result<bool> {
        accounts::suspended(&self.conn(), principal)
    }

    fn suspensions(&self, org: &str) -> Result<Vec<(String, String, i64)>> {
        accounts::suspensions(&self.conn(), org)
    }

    fn add_alert(&self, alert: &Alert) -> Result<i64> {
        accounts::add_alert(&self.conn(), alert)
    }

    fn alerts(&self, org: &str, limit: usize) -> Result<Vec<Alert>> {
        accounts::alerts(&self.conn(), org, limit)
    }

    fn create_export(
        &self,
        project: &ProjectId,
        requester: &str,
        spec_json: &str,
        now_ms: i64,
    ) -> Result<ExportRequest> {
        accounts::create_export(&self.conn(), project, requester, spec_json, now_ms)
    }

    fn export_request(&self, id: &str) -> Result<Option<ExportRequest>> {
        accounts::export(&self.conn(), id)
    }

    fn export_requests(&self, project: &ProjectId, limit: usize) -> Result<Vec<ExportRequest>> {
        accounts::exports(&self.conn(), project, limit)
    }

    fn decide_export(&self, id: &str, to: &str, who: &str, now_ms: i64) -> Result<bool> {
        accounts::decide_export(&self.conn(), id, "pending", to, who, now_ms)
    }

    fn set_export_status(&self, id: &str, from: &str, to: &str) -> Result<bool> {
        accounts::set_export_status(&self.conn(), id, from, to)
    }

    fn project_secret(&self, project: &ProjectId, purpose: &str, now_ms: i64) -> Result<Vec<u8>> {
        privacy::project_secret(&self.conn(), project, purpose, now_ms)
    }

    fn tracking_plan(&self, project: &ProjectId) -> Result<Option<String>> {
        privacy::tracking_plan(&self.conn(), project)
    }

    fn set_tracking_plan(&self, project: &ProjectId, plan_json: &str, now_ms: i64) -> Result<()> {
        privacy::set_tracking_plan(&self.conn(), project, plan_json, now_ms)
    }

    fn add_plan_suggestions(&self, project: &ProjectId, items: &[PlanSuggestion]) -> Result<()> {
        privacy::add_plan_suggestions(&mut self.conn(), project, items)
    }

    fn plan_suggestions(&self, project: &ProjectId) -> Result<Vec<PlanSuggestion>> {
        privacy::plan_suggestions(&self.conn(), project)
    }

    fn clear_plan_suggestions(&self, project: &ProjectId) -> Result<()> {
        privacy::clear_plan_suggestions(&self.conn(), project)
    }

    fn add_identities(
        &self,
        project: &ProjectId,
        items: &[(String, String)],
        now_ms: i64,
    ) -> Result<()> {
        privacy::add_identities(&mut self.conn(), project, items, now_ms)
    }

    fn identity(&self, project: &ProjectId, pseudonym: &str) -> Result<Option<(String, i64)>> {
        privacy::identity(&self.conn(), project, pseudonym)
    }

    fn delete_identity(&self, project: &ProjectId, pseudonym: &str) -> Result<bool> {
        privacy::delete_identity(&self.conn(), project, pseudonym)
    }

    fn add_privacy_counters(&self, project: &ProjectId, deltas: &[(String, u64)]) -> Result<()> {
        privacy::add_privacy_counters(&mut self.conn(), project, deltas)
    }

    fn privacy_counters(&self, project: &ProjectId) -> Result<Vec<(String, u64)>> {
        privacy::privacy_counters(&self.conn(), project)
    }

    fn record_deletion(
        &self,
        project: &ProjectId,
        kind: &str,
        report_json: &str,
        now_ms: i64,
    ) -> Result<()> {
        privacy::record_deletion(&self.conn(), project, kind, report_json, now_ms)
    }

    fn deletions(&self, project: &ProjectId, limit: usize) -> Result<Vec<DeletionRecord>> {
        privacy::deletions(&self.conn(), project, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_and_ingest_key_lifecycle() {
        let m = SqliteMeta::in_memory().unwrap();
        let c = m.create_project("Shop", 1).unwrap();
        assert_eq!(
            m.project_for_ingest_key(&c.ingest_key).unwrap(),
            Some(c.project.id.clone())
        );
        let new_key = m.rotate_ingest_key(&c.project.id, 2).unwrap();
        assert_eq!(
            m.project_for_ingest_key(&c.ingest_key).unwrap(),
            None,
            "rotated key is revoked"
        );
        assert_eq!(
            m.project_for_ingest_key(&new_key).unwrap(),
            Some(c.project.id.clone())
        );
        assert_eq!(m.list_projects().unwrap().len(), 1);
        assert!(m.create_project("  ", 1).is_err());
    }

    #[test]
    fn tokens_expire_and_revoke_and_are_stored_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.db");
        let m = SqliteMeta::open(&path).unwrap();
        let p = m.create_project("x", 0).unwrap().project.id;
        let t = m.create_token(&p, Role::Analyst, 1000, 0).unwrap();
        let info = m.verify_token(&t.token, 500).unwrap().unwrap();
        assert_eq!((info.role, info.project), (Some(Role::Analyst), p.clone()));
        assert!(m.verify_token(&t.token, 1000).unwrap().is_none(), "expired");
        assert!(m.revoke_token(&t.token_id, 1).unwrap());
        assert!(m.verify_token(&t.token, 2).unwrap().is_none(), "revoked");
        drop(m);
        let bytes = std::fs::read(&path).unwrap();
        let needle = &t.token.as_bytes()[4..];
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "plaintext token on disk"
        );
    }

    #[test]
    fn reopening_does_not_reapply_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.db");
        SqliteMeta::open(&path)
            .unwrap()
            .create_project("a", 0)
            .unwrap();
        let m = SqliteMeta::open(&path).unwrap();
        assert_eq!(m.schema_version().unwrap(), 3);
        assert_eq!(m.list_projects().unwrap().len(), 1);
    }

    #[test]
    fn privacy_metadata_round_trips() {
        let m = SqliteMeta::in_memory().unwrap();
        let p = m.create_project("a", 0).unwrap().project.id;
        let s1 = m.project_secret(&p, "pseudonym", 1).unwrap();
        assert_eq!(s1.len(), 32);
        assert_eq!(
            m.project_secret(&p, "pseudonym", 2).unwrap(),
            s1,
            "created once"
        );
        assert_ne!(m.project_secret(&p, "other", 2).unwrap(), s1);

        assert_eq!(m.tracking_plan(&p).unwrap(), None);
        m.set_tracking_plan(&p, "{\"mode\":\"strict\"}", 3).unwrap();
        m.set_tracking_plan(&p, "{\"mode\":\"learn\"}", 4).unwrap();
        assert_eq!(
            m.tracking_plan(&p).unwrap().as_deref(),
            Some("{\"mode\":\"learn\"}")
        );

        let sug = |e: &str, prop: Option<&str>, at| PlanSuggestion {
            event: e.into(),
            property: prop.map(Into::into),
            seen_type: "string".into(),
            first_seen_ms: at,
        };
        m.add_plan_suggestions(&p, &[sug("buy", None, 5), sug("buy", Some("x"), 5)])
            .unwrap();
        m.add_plan_suggestions(&p, &[sug("buy", None, 9)]).unwrap();
        let got = m.plan_suggestions(&p).unwrap();
        assert_eq!(got, vec![sug("buy", None, 5), sug("buy", Some("x"), 5)]);
        m.clear_plan_suggestions(&p).unwrap();
        assert!(m.plan_suggestions(&p).unwrap().is_empty());

        m.add_identities(&p, &[("h1".into(), "user-1".into())], 6)
            .unwrap();
        assert_eq!(m.identity(&p, "h1").unwrap(), Some(("user-1".into(), 6)));
        assert!(m.delete_identity(&p, "h1").unwrap());
        assert!(!m.delete_identity(&p, "h1").unwrap());

        m.add_privacy_counters(&p, &[("received".into(), 3), ("accepted".into(), 2)])
            .unwrap();
        m.add_privacy_counters(&p, &[("received".into(), 4)])
            .unwrap();
        assert_eq!(
            m.privacy_counters(&p).unwrap(),
            vec![("accepted".into(), 2), ("received".into(), 7)]
        );

        m.record_deletion(&p, "retention", "{\"events_deleted\":1}", 7)
            .unwrap();
        m.record_deletion(&p, "erasure", "{}", 8).unwrap();
        let d = m.deletions(&p, 10).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].kind, "erasure", "newest first");
        assert_eq!(m.deletions(&p, 1).unwrap().len(), 1);
    }

    #[test]
    fn accounts_sessions_tokens_and_exports_round_trip() {
        let m = SqliteMeta::in_memory().unwrap();
        let p = m.create_project("a", 0).unwrap().project.id;
        let u = m
            .create_user(" Ann@Example.COM ", Some("phc"), Role::Analyst, 1)
            .unwrap();
        assert_eq!(u.email, "ann@example.com");
        assert!(
            m.create_user("ann@example.com", None, Role::Viewer, 2)
                .is_err(),
            "unique email"
        );
        assert!(
            m.create_user("not-an-email", None, Role::Viewer, 2)
                .is_err()
        );
        assert_eq!(
            m.user_by_email("ANN@example.com").unwrap().unwrap().id,
            u.id
        );
        assert_eq!(
            m.memberships(&u.id).unwrap(),
            vec![Membership {
                project: None,
                role: Some(Role::Analyst),
                permissions: vec![]
            }]
        );
        m.set_membership(
            &u.id,
            &Membership {
                project: Some(p.clone()),
                role: None,
                permissions: vec!["read_personal".into()],
            },
        )
        .unwrap();
        assert_eq!(m.memberships(&u.id).unwrap().len(), 2);
        assert!(m.remove_membership(&u.id, Some(&p)).unwrap());

        m.set_mfa(&u.id, Some(b"seed"), true).unwrap();
        assert!(m.use_mfa_step(&u.id, 10).unwrap());
        assert!(!m.use_mfa_step(&u.id, 10).unwrap(), "replay");
        assert!(m.use_mfa_step(&u.id, 11).unwrap());
        m.set_recovery_codes(&u.id, &["h1".into(), "h2".into()])
            .unwrap();
        assert!(m.use_recovery_code(&u.id, "h1", 5).unwrap());
        assert!(!m.use_recovery_code(&u.id, "h1", 6).unwrap(), "used once");

        let s = m.create_session(&u.id, "sh", "ch", None, 1000, 10).unwrap();
        assert_eq!(m.session("sh", 100, 50).unwrap().unwrap().id, s.id);
        assert!(m.session("sh", 100, 200).unwrap().is_none(), "idle");
        let s2 = m
            .create_session(&u.id, "sh2", "ch", Some(10), 1000, 300)
            .unwrap();
        m.set_session_mfa(&s2.id, 301).unwrap();
        assert_eq!(
            m.session("sh2", 100, 302).unwrap().unwrap().mfa_at_ms,
            Some(301)
        );
        assert_eq!(m.revoke_sessions(&u.id, Some(&s2.id), 303).unwrap(), 1);
        assert!(m.session("sh2", 100, 304).unwrap().is_none(), "revoked");

        let t = m
            .create_token_with(
                &TokenSpec {
                    project: p.clone(),
                    role: None,
                    permissions: vec!["query_aggregate".into()],
                    ttl_ms: 100,
                    ip_allow: vec!["10.0.0.0/8".into()],
                    name: Some("ci".into()),
                    created_by: Some(u.id.clone()),
                },
                0,
            )
            .unwrap();
        let info = m.verify_token(&t.token, 5).unwrap().unwrap();
        assert_eq!(info.role, None);
        assert_eq!(info.permissions, vec!["query_aggregate".to_owned()]);
        assert_eq!(info.ip_allow, vec!["10.0.0.0/8".to_owned()]);
        assert_eq!(m.tokens(&p).unwrap()[0].last_used_at_ms, Some(5));
        let bad = TokenSpec {
            project: p.clone(),
            role: None,
            permissions: vec![],
            ttl_ms: 1,
            ip_allow: vec![],
            name: None,
            created_by: None,
        };
        assert!(
            m.create_token_with(&bad, 0).is_err(),
            "role or permissions required"
        );

        m.suspend("t_x", "default", "budget", 1).unwrap();
        assert!(m.is_suspended("t_x").unwrap());
        assert_eq!(m.suspensions("default").unwrap().len(), 1);
        assert!(m.restore("t_x").unwrap());
        assert!(!m.is_suspended("t_x").unwrap());

        m.add_alert(&Alert {
            id: 0,
            org_id: "default".into(),
            project: Some(p.clone()),
            principal: "t_x".into(),
            kind: "budget_exceeded".into(),
            detail_json: "{}".into(),
            at_ms: 1,
            acknowledged: false,
        })
        .unwrap();
        assert_eq!(m.alerts("default", 10).unwrap()[0].kind, "budget_exceeded");

        let x = m.create_export(&p, &u.id, "{}", 1).unwrap();
        assert_eq!(x.status, "pending");
        assert!(
            !m.decide_export(&x.id, "approved", &u.id, 2).unwrap(),
            "no self-approval"
        );
        assert!(m.decide_export(&x.id, "approved", "u_other", 2).unwrap());
        assert!(
            !m.decide_export(&x.id, "rejected", "u_third", 3).unwrap(),
            "decided once"
        );
        assert!(
            m.set_export_status(&x.id, "approved", "downloaded")
                .unwrap()
        );
        assert_eq!(
            m.export_request(&x.id)
                .unwrap()
                .unwrap()
                .approver
                .as_deref(),
            Some("u_other")
        );
        assert_eq!(m.export_requests(&p, 10).unwrap().len(), 1);

        m.set_org_settings("default", "{\"k\":5}", 1).unwrap();
        assert_eq!(
            m.org_settings("default").unwrap().as_deref(),
            Some("{\"k\":5}")
        );
    }
}
