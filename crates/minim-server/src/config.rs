//! `ServerConfig`: HTTP-level limits and behaviour (the `[server]` config section).

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Memory that request bodies being ingested may hold at once (compressed plus
    /// decompressed, with parse overhead); beyond it requests get 503 + Retry-After.
    pub ingest_memory_bytes: usize,
    /// How long a resolved ingest key is cached (revocation takes effect within this).
    pub key_cache_ttl_ms: u64,
    /// A request body must arrive within this time, or the request fails with 408
    /// (slow or stalled clients cannot hold ingest memory forever).
    pub body_read_timeout_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            ingest_memory_bytes: 512 << 20,
            key_cache_ttl_ms: 5_000,
            body_read_timeout_ms: 30_000,
        }
    }
}

impl ServerConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.ingest_memory_bytes < 1 << 20 {
            return Err("server.ingest_memory_bytes must be at least 1 MiB".into());
        }
        if self.body_read_timeout_ms == 0 {
            return Err("server.body_read_timeout_ms must be greater than 0".into());
        }
        Ok(())
    }
}

/// Accounts, sessions, authorization, read budgets and the audit log (the `[security]`
/// config section).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// The Ed25519 key that signs audit checkpoints. Must be outside the data directory
    /// (a thief of the directory must not be able to re-sign a forged log). Empty =
    /// `<data_dir>.audit-key` beside the data directory, created on first start.
    pub audit_signing_key: Option<std::path::PathBuf>,
    /// Sign a checkpoint at most this often (0 = after every write).
    pub audit_checkpoint_interval_ms: u64,
    /// Continuous copy of every audit record to this append-only file (off-host storage).
    pub audit_mirror_file: Option<std::path::PathBuf>,
    /// Continuous copy of every audit record to this syslog datagram socket (e.g. /dev/log).
    pub audit_syslog_socket: Option<std::path::PathBuf>,
    /// Session lifetime and idle timeout.
    pub session_ttl_ms: i64,
    pub session_idle_ms: i64,
    /// How long a proved second factor counts as fresh for sensitive actions (step-up).
    pub step_up_ms: i64,
    /// Breakdown rows covering fewer distinct users are merged for `viewer`s.
    pub min_group_size: u64,
    /// Raw-event exports up to this many events need no approval.
    pub small_export_events: usize,
    /// Budget trips are POSTed here as JSON (plain `http://` only).
    pub alert_webhook: Option<String>,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            audit_signing_key: None,
            audit_checkpoint_interval_ms: 1_000,
            audit_mirror_file: None,
            audit_syslog_socket: None,
            session_ttl_ms: 12 * 3_600_000,
            session_idle_ms: 3_600_000,
            step_up_ms: 10 * 60_000,
            min_group_size: 5,
            small_export_events: 1_000,
            alert_webhook: None,
        }
    }
}

impl SecurityConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.session_ttl_ms <= 0 || self.session_idle_ms <= 0 || self.step_up_ms <= 0 {
            return Err(
                "security.session_ttl_ms, session_idle_ms and step_up_ms must be positive".into(),
            );
        }
        if let Some(url) = &self.alert_webhook
            && !url.starts_with("http://")
        {
            return Err("security.alert_webhook must be an http:// URL".into());
        }
        Ok(())
    }

    /// The signing key path for a data directory: the configured one, or the default
    /// beside the directory. Refused when it lies inside the data directory.
    pub fn signing_key_path(
        &self,
        data_dir: &std::path::Path,
    ) -> Result<std::path::PathBuf, String> {
        let path = match &self.audit_signing_key {
            Some(p) => p.clone(),
            None => {
                let mut name = data_dir
                    .file_name()
                    .map(std::ffi::OsStr::to_os_string)
                    .unwrap_or_else(|| "minim-data".into());
                name.push(".audit-key");
                data_dir.with_file_name(name)
            }
        };
        let abs = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        if abs(&path).starts_with(abs(data_dir)) {
            return Err(format!(
                "security.audit_signing_key ({}) must be outside the data directory",
                path.display()
            ));
        }
        Ok(path)
    }
}
