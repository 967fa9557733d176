//! Versioned schema migrations, applied in order, each in its own transaction.

/// (version, SQL). Append only: never edit a released migration.
pub const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE organizations (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL
    );
    CREATE TABLE projects (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL REFERENCES organizations(id),
        name TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL
    );
    CREATE TABLE ingest_keys (
        key_hash TEXT PRIMARY KEY,
        project_id TEXT NOT NULL REFERENCES projects(id),
        created_at_ms INTEGER NOT NULL,
        revoked_at_ms INTEGER
    );
    CREATE INDEX ingest_keys_project ON ingest_keys(project_id);
    CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        project_id TEXT NOT NULL REFERENCES projects(id),
        role TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL,
        revoked_at_ms INTEGER,
        last_used_at_ms INTEGER
    );",
    ),
    (
        2,
        "CREATE TABLE project_secrets (
        project_id TEXT NOT NULL REFERENCES projects(id),
        purpose TEXT NOT NULL,
        secret BLOB NOT NULL,
        created_at_ms INTEGER NOT NULL,
        PRIMARY KEY (project_id, purpose)
    );
    CREATE TABLE tracking_plans (
        project_id TEXT PRIMARY KEY REFERENCES projects(id),
        plan_json TEXT NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE TABLE plan_suggestions (
        project_id TEXT NOT NULL REFERENCES projects(id),
        event TEXT NOT NULL,
        property TEXT NOT NULL,
        seen_type TEXT NOT NULL,
        first_seen_ms INTEGER NOT NULL,
        PRIMARY KEY (project_id, event, property)
    );
    CREATE TABLE identities (
        project_id TEXT NOT NULL REFERENCES projects(id),
        pseudonym TEXT NOT NULL,
        distinct_id TEXT NOT NULL,
        first_seen_ms INTEGER NOT NULL,
        PRIMARY KEY (project_id, pseudonym)
    );
    CREATE TABLE privacy_counters (
        project_id TEXT NOT NULL REFERENCES projects(id),
        counter TEXT NOT NULL,
        value INTEGER NOT NULL,
        PRIMARY KEY (project_id, counter)
    );
    CREATE TABLE deletions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        project_id TEXT NOT NULL REFERENCES projects(id),
        kind TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        report_json TEXT NOT NULL
    );
    CREATE INDEX deletions_project ON deletions(project_id, id);",
    ),
    (
        3,
        "ALTER TABLE api_tokens ADD COLUMN permissions TEXT;
    ALTER TABLE api_tokens ADD COLUMN ip_allow TEXT;
    ALTER TABLE api_tokens ADD COLUMN name TEXT;
    ALTER TABLE api_tokens ADD COLUMN created_by TEXT;
    CREATE INDEX api_tokens_project ON api_tokens(project_id);
    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL REFERENCES organizations(id),
        email TEXT NOT NULL UNIQUE,
        password_hash TEXT,
        created_at_ms INTEGER NOT NULL,
        disabled_at_ms INTEGER,
        mfa_secret BLOB,
        mfa_enabled INTEGER NOT NULL DEFAULT 0,
        mfa_last_step INTEGER
    );
    CREATE TABLE memberships (
        user_id TEXT NOT NULL REFERENCES users(id),
        project_id TEXT NOT NULL,
        role TEXT,
        permissions TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (user_id, project_id)
    );
    CREATE TABLE recovery_codes (
        user_id TEXT NOT NULL REFERENCES users(id),
        code_hash TEXT NOT NULL,
        used_at_ms INTEGER,
        PRIMARY KEY (user_id, code_hash)
    );
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        secret_hash TEXT NOT NULL UNIQUE,
        csrf_hash TEXT NOT NULL,
        user_id TEXT NOT NULL REFERENCES users(id),
        created_at_ms INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL,
        last_seen_ms INTEGER NOT NULL,
        mfa_at_ms INTEGER,
        revoked_at_ms INTEGER
    );
    CREATE INDEX sessions_user ON sessions(user_id);
    CREATE TABLE org_settings (
        org_id TEXT PRIMARY KEY REFERENCES organizations(id),
        settings_json TEXT NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE TABLE suspensions (
        principal_id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        reason TEXT NOT NULL,
        at_ms INTEGER NOT NULL
    );
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        org_id TEXT NOT NULL,
        project_id TEXT,
        principal_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        detail_json TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        acknowledged_at_ms INTEGER
    );
    CREATE INDEX alerts_org ON alerts(org_id, id);
    CREATE TABLE export_requests (
        id TEXT PRIMARY KEY,
        project_id TEXT NOT NULL REFERENCES projects(id),
        requester TEXT NOT NULL,
        spec_json TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        approver TEXT,
        decided_at_ms INTEGER
    );
    CREATE INDEX export_requests_project ON export_requests(project_id, created_at_ms);",
    ),
];
