//! The keyring of the data directory (encryption at rest), opened once per process
//! before anything is written into the data directory, and the `minim keys` commands.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use minim_crypto::{Keyring, KeyringOpened, MASTER_KEY_ENV, NEW_MASTER_KEY_ENV};

use crate::config::Config;

/// The `[crypto]` section.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CryptoConfig {
    /// The keys directory: master key file (unless `MINIM_MASTER_KEY` is set) and the
    /// wrapped keysets. Must be outside the data directory. Default `<data_dir>.keys`.
    pub keys_dir: Option<PathBuf>,
}

impl CryptoConfig {
    pub fn keys_dir(&self, data_dir: &std::path::Path) -> PathBuf {
        self.keys_dir
            .clone()
            .unwrap_or_else(|| Keyring::default_dir(data_dir))
    }

    /// The keys directory may not be inside the data directory: a copy of the data
    /// directory would then carry its keys.
    pub fn validate(&self, data_dir: &std::path::Path) -> Result<(), String> {
        let keys = self.keys_dir(data_dir);
        let abs = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        if abs(&keys).starts_with(abs(data_dir)) {
            return Err(format!(
                "crypto.keys_dir {} is inside the data directory {}; keys must live outside it",
                keys.display(),
                data_dir.display()
            ));
        }
        Ok(())
    }
}

static KEYRING: Mutex<Option<Arc<Keyring>>> = Mutex::new(None);

/// The SQLCipher key of `meta.db`: derived from the `meta` keyset's primary key.
pub(crate) fn meta_key(ring: &Keyring) -> anyhow::Result<minim_crypto::Key> {
    let (_, key) = ring
        .derived(&minim_crypto::KeysetName::Meta, "minim/sqlcipher")
        .context("the metadata database key")?;
    Ok(key)
}

/// The keyring of `cfg`'s data directory. The first call in a process opens it (on a
/// new data directory: creates it, generating a master key unless the environment
/// supplies one, and says where it went).
pub(crate) fn keyring(cfg: &Config) -> anyhow::Result<Arc<Keyring>> {
    let mut slot = KEYRING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(k) = slot.as_ref() {
        return Ok(k.clone());
    }
    let keys_dir = cfg.crypto.keys_dir(&cfg.data_dir);
    let env = std::env::var(MASTER_KEY_ENV).ok();
    let (ring, how) = Keyring::open_for_data_dir(&cfg.data_dir, &keys_dir, env.as_deref())
        .with_context(|| format!("opening the keyring of {}", cfg.data_dir.display()))?;
    if let KeyringOpened::Created { master_key_file } = how {
        match master_key_file {
            Some(path) => tracing::warn!(
                master_key = %path.display(),
                "generated a new master key for this data directory; back up the keys directory {} off-host: without it the data cannot be read",
                keys_dir.display()
            ),
            None => tracing::info!(keys_dir = %keys_dir.display(),
                "created a new keyring under the master key from {MASTER_KEY_ENV}"),
        }
    }
    let ring = Arc::new(ring);
    *slot = Some(ring.clone());
    Ok(ring)
}

#[derive(clap::Subcommand, Debug)]
pub enum KeysCmd {
    /// Show the keyring: its id and directory, each keyset's keys, and how far segments
    /// have been re-encrypted under each project's current key.
    Status,
    /// Give a project a new data key (and personal key). New writes use them at once;
    /// existing segments are re-encrypted in the background by the server's compactor
    /// (see `keys status`); the old key stays, decrypt-only, until `keys retire`.
    Rotate {
        /// The project whose data key to replace.
        #[arg(long, required_unless_present = "master", conflicts_with = "master")]
        project: Option<String>,
        /// Replace the master key instead: every keyset is re-wrapped under a new one.
        /// With a key file, Minim generates it (crash-safe; the next open finishes a
        /// rotation cut short; running processes follow). With MINIM_MASTER_KEY, give
        /// the new key in MINIM_NEW_MASTER_KEY, stop the server first, and rerun the
        /// same command if it is cut short; then start every process with the new key.
        #[arg(long)]
        master: bool,
    },
    /// Drop a project's old keys once nothing is encrypted under them any more
    /// (refused while a segment or WAL record still uses one).
    Retire {
        #[arg(long)]
        project: String,
    },
}

fn manifest(cfg: &Config, ring: &Arc<Keyring>) -> anyhow::Result<minim_store::manifest::Manifest> {
    let enc = minim_store::Encryption::new(ring.clone());
    minim_store::manifest::Manifest::load(&cfg.data_dir.join("events"), Some(&enc))
        .context("reading the event store manifest")
}

fn progress(
    cfg: &Config,
    ring: &Arc<Keyring>,
) -> anyhow::Result<Vec<minim_store::rekey::KeyProgress>> {
    let enc = minim_store::Encryption::new(ring.clone());
    Ok(minim_store::rekey::progress(&manifest(cfg, ring)?, &enc)?)
}

pub(crate) fn keys(cfg: &Config, cmd: KeysCmd, json: bool) -> anyhow::Result<()> {
    use minim_crypto::KeysetName;
    let ring = keyring(cfg)?;
    match cmd {
        KeysCmd::Status => {
            let projects = progress(cfg, &ring)?;
            let mut keysets = Vec::new();
            let mut names = vec![KeysetName::System, KeysetName::Meta];
            for p in &projects {
                names.push(KeysetName::project(&p.project));
                names.push(KeysetName::Personal(p.project.clone()));
            }
            for name in names {
                if let Some(ks) = ring.get(&name)? {
                    keysets.push(serde_json::json!({"keyset": name.label(), "keys": ks.info()}));
                }
            }
            let mut human = format!("keyring {} in {}\n", ring.id(), ring.dir().display());
            for p in &projects {
                human.push_str(&format!(
                    "project {}: key {:#010x}, {} of {} segments still under older keys\n",
                    p.project, p.primary_key_id, p.segments_stale, p.segments
                ));
            }
            crate::print(
                json,
                serde_json::json!({
                    "keyring": ring.id(),
                    "keys_dir": ring.dir(),
                    "keysets": keysets,
                    "projects": projects,
                }),
                human.trim_end().to_owned(),
            )
        }
        KeysCmd::Rotate { project: None, .. }
            if std::env::var(MASTER_KEY_ENV).is_ok_and(|v| !v.trim().is_empty()) =>
        {
            let new = std::env::var(NEW_MASTER_KEY_ENV).map_err(|_| {
                anyhow::anyhow!(
                    "the master key comes from {MASTER_KEY_ENV}: set {NEW_MASTER_KEY_ENV} to the new key (64 hex digits, e.g. `openssl rand -hex 32`)"
                )
            })?;
            let new = minim_crypto::Key::from_hex(new.trim()).ok_or_else(|| {
                anyhow::anyhow!("{NEW_MASTER_KEY_ENV} must be 64 hex digits (a 256-bit key)")
            })?;
            // A running server holds only the old key: it could not read what is
            // re-wrapped under the new one.
            if minim_store::in_use(&cfg.data_dir.join("events"))? {
                anyhow::bail!(
                    "a server is running on {}: stop it, rotate, then start it with {MASTER_KEY_ENV} set to the new key",
                    cfg.data_dir.display()
                );
            }
            let id = ring.rotate_env_master(new)?;
            crate::print(
                json,
                serde_json::json!({"master_key_id": id}),
                format!(
                    "every keyset is re-wrapped under the new master key {id:#010x}. Set {MASTER_KEY_ENV} to it for every process (server and admin commands) and destroy copies of the old key"
                ),
            )
        }
        KeysCmd::Rotate { project: None, .. } => {
            let id = ring.rotate_master()?;
            crate::print(
                json,
                serde_json::json!({"master_key_id": id}),
                format!(
                    "new master key {id:#010x} in {}; every keyset is re-wrapped under it. Back up the keys directory again and destroy copies of the old master key",
                    ring.dir().display()
                ),
            )
        }
        KeysCmd::Rotate {
            project: Some(project),
            ..
        } => {
            let id = minim_core::ProjectId::new(&project)
                .map_err(|e| anyhow::anyhow!("--project: {e}"))?;
            let key_id = ring.rotate(&KeysetName::project(id.as_str()))?;
            // The personal key with it: re-encrypted segments take both current keys.
            // Its old keys stay (identity map entries are sealed under them).
            let personal_key_id = ring.rotate(&KeysetName::Personal(id.as_str().to_owned()))?;
            crate::print(
                json,
                serde_json::json!({"project": project, "key_id": key_id,
                    "personal_key_id": personal_key_id}),
                format!(
                    "project {project}: new data key {key_id:#010x}; segments are re-encrypted in the background (minim keys status)"
                ),
            )
        }
        KeysCmd::Retire { project } => {
            let name = KeysetName::project(&project);
            let ks = ring.require(&name)?;
            let primary = ks.primary_id();
            let stale = progress(cfg, &ring)?
                .into_iter()
                .find(|p| p.project == project)
                .map_or(0, |p| p.segments_stale);
            if stale > 0 {
                anyhow::bail!(
                    "{stale} segments of project {project} are still encrypted under older keys; retire after re-encryption finishes (minim keys status)"
                );
            }
            let wal_users = wal_records_under_other_keys(cfg, &project, primary)?;
            if wal_users > 0 {
                anyhow::bail!(
                    "{wal_users} WAL records of project {project} still use older keys; retire after the next flush"
                );
            }
            let retired = ring.retire_old(&name)?;
            crate::print(
                json,
                serde_json::json!({"project": project, "retired": retired}),
                format!("project {project}: {retired} old keys dropped"),
            )
        }
    }
}

/// WAL records of `project` under a key other than `primary` (the record headers name
/// project key ids in clear, so this reads no event data).
fn wal_records_under_other_keys(
    cfg: &Config,
    project: &str,
    primary: u32,
) -> anyhow::Result<usize> {
    let dir = cfg.data_dir.join("events").join("wal");
    let mut n = 0;
    for no in minim_store::wal::list_files(&dir)? {
        let data = std::fs::read(minim_store::wal::wal_path(&dir, no))?;
        n += minim_store::wal::count_foreign_keys(&data, project, primary);
    }
    Ok(n)
}
