//! `SqliteMeta`: the embedded metadata store on SQLite (WAL mode, safe across processes).

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use minim_core::ProjectId;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::keys::{KeyKind, generate_id, generate_secret, hash_secret, looks_valid};
use crate::migrations::MIGRATIONS;
use crate::{
    CreatedProject, CreatedToken, DeletionRecord, MetaError, MetaStore, PlanSuggestion, Project,
    Result, Role, TokenInfo, privacy,
};

pub struct SqliteMeta {
    conn: Mutex<Connection>,
}

const DEFAULT_ORG: &str = "default";

impl SqliteMeta {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
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

fn project_id(s: String) -> rusqlite::Result<ProjectId> {
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

    fn create_token(
        &self,
        project: &ProjectId,
        role: Role,
        ttl_ms: i64,
        now_ms: i64,
    ) -> Result<CreatedToken> {
        if ttl_ms <= 0 {
            return Err(MetaError::Invalid("token ttl must be positive".into()));
        }
        if self.project(project)?.is_none() {
            return Err(MetaError::NotFound(format!("project {project}")));
        }
        let token = generate_secret(KeyKind::ApiToken);
        let token_id = generate_id("t_");
        let expires_at_ms = now_ms.saturating_add(ttl_ms);
        self.conn().execute(
            "INSERT INTO api_tokens (id, token_hash, project_id, role, created_at_ms, expires_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![token_id, hash_secret(&token), project.as_str(), role.as_str(), now_ms, expires_at_ms],
        )?;
        Ok(CreatedToken {
            token_id,
            token,
            expires_at_ms,
        })
    }

    fn revoke_token(&self, token_id: &str, now_ms: i64) -> Result<bool> {
        let n = self.conn().execute(
            "UPDATE api_tokens SET revoked_at_ms = ?2 WHERE id = ?1 AND revoked_at_ms IS NULL",
            params![token_id, now_ms],
        )?;
        Ok(n > 0)
    }

    fn verify_token(&self, token: &str, now_ms: i64) -> Result<Option<TokenInfo>> {
        if !looks_valid(KeyKind::ApiToken, token) {
            return Ok(None);
        }
        let conn = self.conn();
        let row: Option<(String, String, String, i64)> = conn
            .query_row(
                "SELECT id, project_id, role, expires_at_ms FROM api_tokens
                 WHERE token_hash = ?1 AND revoked_at_ms IS NULL AND expires_at_ms > ?2",
                params![hash_secret(token), now_ms],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((token_id, project, role, expires_at_ms)) = row else {
            return Ok(None);
        };
        conn.execute(
            "UPDATE api_tokens SET last_used_at_ms = ?2 WHERE id = ?1",
            params![token_id, now_ms],
        )?;
        let project = ProjectId::new(project).map_err(|e| MetaError::Db(e.to_string()))?;
        Ok(Some(TokenInfo {
            token_id,
            project,
            role: role.parse()?,
            expires_at_ms,
        }))
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
        assert_eq!((info.role, info.project), (Role::Analyst, p.clone()));
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
        assert_eq!(m.schema_version().unwrap(), 2);
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
}
