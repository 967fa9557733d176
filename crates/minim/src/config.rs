//! `Config`: the one configuration of the binary. Layers, later wins: typed defaults,
//! an optional TOML file (`--config`, `MINIM_CONFIG`), `MINIM_*` environment variables
//! (`MINIM_DATA_DIR`, `MINIM_LISTEN`, nested fields as `MINIM_STORE__MEMTABLE_MAX_BYTES`),
//! then command-line flags. Any invalid value is a startup error naming the field.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::bail;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use minim_ingest::IngestLimits;
use minim_privacy::pipeline::PrivacyConfig;
use minim_query::engine::EngineConfig;
use minim_server::{SecurityConfig, ServerConfig};
use minim_store::StoreConfig;

use crate::allocator::MemoryConfig;
use crate::keys::CryptoConfig;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub logging: LogConfig,
    pub server: ServerConfig,
    pub ingest: IngestLimits,
    pub store: StoreConfig,
    /// Query execution limits (`[query]`).
    pub query: EngineConfig,
    /// The privacy pipeline (`[privacy]`): geo database, trusted proxies, retention runs.
    pub privacy: PrivacyConfig,
    /// Sessions, group sizes, exports, alert webhook and the audit log (`[security]`).
    pub security: SecurityConfig,
    /// Encryption at rest: where the keys live (`[crypto]`).
    pub crypto: CryptoConfig,
    /// How the process holds memory (`[memory]`): the allocator's purge delay.
    pub memory: MemoryConfig,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `minim_store=debug,info`. `MINIM_LOG` works too.
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./minim-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            logging: LogConfig::default(),
            server: ServerConfig::default(),
            ingest: IngestLimits::default(),
            store: StoreConfig::default(),
            query: EngineConfig::default(),
            privacy: PrivacyConfig::default(),
            security: SecurityConfig::default(),
            crypto: CryptoConfig::default(),
            memory: MemoryConfig::default(),
        }
    }
}

/// Top-level keys that environment variables may set; other `MINIM_*` variables
/// (e.g. `MINIM_INGEST_KEY` for the load tool) are not configuration.
const ENV_KEYS: &[&str] = &[
    "data_dir", "listen", "logging", "server", "ingest", "store", "query", "privacy", "security",
    "crypto", "memory",
];

/// Values given on the command line (highest precedence).
#[derive(Debug, Default, serde::Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
}

impl Config {
    pub fn load(file: Option<&Path>, overrides: Overrides) -> anyhow::Result<Self> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                bail!("config file {} does not exist", path.display());
            }
            fig = fig.merge(Toml::file(path));
        }
        let env = Env::prefixed("MINIM_")
            .filter(|k| {
                let k = k.as_str().to_ascii_lowercase();
                ENV_KEYS.iter().any(|top| {
                    k == *top
                        || k.starts_with(&format!("{top}__"))
                        || k.starts_with(&format!("{top}."))
                })
            })
            .split("__");
        fig = fig.merge(env).merge(Serialized::defaults(overrides));
        let cfg: Config = fig.extract().map_err(|e| anyhow::anyhow!(describe(e)))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        self.ingest
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        self.store
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        self.server
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        self.query
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: query.{e}"))?;
        self.security
            .validate()
            .and_then(|()| self.security.signing_key_path(&self.data_dir).map(|_| ()))
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        self.crypto
            .validate(&self.data_dir)
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        self.memory
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: memory.{e}"))?;
        self.privacy
            .trusted_proxy_nets()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        if let Some(path) = &self.privacy.geoip_path
            && !path.is_file()
        {
            bail!(
                "invalid configuration: privacy.geoip_path: {} is not a readable file",
                path.display()
            );
        }
        if self.server.ingest_memory_bytes < 2 * 3 * self.ingest.max_body_bytes {
            bail!(
                "invalid configuration: server.ingest_memory_bytes must be at least 6 x ingest.max_body_bytes \
                 (two maximal requests with parse overhead)"
            );
        }
        Ok(())
    }

    /// The store configuration with its data directory and encryption filled in.
    pub fn store_config(&self) -> anyhow::Result<StoreConfig> {
        let keyring = crate::keys::keyring(self)?;
        Ok(StoreConfig {
            data_dir: self.data_dir.join("events"),
            encryption: Some(minim_store::Encryption::new(keyring)),
            ..self.store.clone()
        })
    }

    pub fn meta_path(&self) -> PathBuf {
        self.data_dir.join("meta.db")
    }
}

/// Turns figment errors into one line per problem, naming field and source.
fn describe(e: figment::Error) -> String {
    let lines: Vec<String> = e
        .into_iter()
        .map(|err| {
            let field = if err.path.is_empty() {
                "(top level)".to_owned()
            } else {
                err.path.join(".")
            };
            let source = err
                .metadata
                .as_ref()
                .map(|m| m.name.to_string())
                .unwrap_or_default();
            format!(
                "invalid configuration: field `{field}`: {} ({source})",
                err.kind
            )
        })
        .collect();
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_values_apply_and_bad_values_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("minim.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:9000\"\n[store]\nmemtable_max_bytes = 1048576\n",
        )
        .unwrap();
        let cfg = Config::load(Some(&path), Overrides::default()).unwrap();
        assert_eq!(cfg.listen.port(), 9000);
        assert_eq!(cfg.store.memtable_max_bytes, 1 << 20);

        std::fs::write(&path, "[store]\nmemtable_max_bytes = \"lots\"\n").unwrap();
        let err = Config::load(Some(&path), Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("store.memtable_max_bytes"), "{err}");

        std::fs::write(&path, "[store]\nno_such_knob = 1\n").unwrap();
        let err = Config::load(Some(&path), Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no_such_knob"), "{err}");

        std::fs::write(&path, "[store]\ncompaction_zstd_level = 99\n").unwrap();
        let err = Config::load(Some(&path), Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("store.compaction_zstd_level"), "{err}");
    }

    #[test]
    fn example_file_lists_exactly_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../minim.example.toml");
        let file: toml::Value = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let defaults = toml::Value::try_from(Config::default()).unwrap();
        assert_eq!(
            file, defaults,
            "regenerate minim.example.toml with `minim config`"
        );
        Config::load(Some(&path), Overrides::default()).unwrap();
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("minim.toml");
        std::fs::write(&path, "listen = \"0.0.0.0:9000\"\n").unwrap();
        let o = Overrides {
            data_dir: Some("/x".into()),
            listen: Some("127.0.0.1:1".into()),
        };
        let cfg = Config::load(Some(&path), o).unwrap();
        assert_eq!(cfg.listen.port(), 1);
        assert_eq!(cfg.data_dir, PathBuf::from("/x"));
    }
}
