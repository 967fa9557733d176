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
];
