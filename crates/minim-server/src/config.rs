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
