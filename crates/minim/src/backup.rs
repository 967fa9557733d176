//! `minim backup create|restore`: an encrypted, verified snapshot of a data directory.
//!
//! ```text
//! file   := "MINIMBK1" | id_len u8 | keyring id | backup id [16] | created_at_ms i64 LE | sealed stream
//! stream := entry* | 0u8 | files u32          (sealed with the system keyset, `minim_crypto::stream`)
//! entry  := 1u8 | path_len u16 | path (relative, UTF-8) | size u64 | sha256 [32] | bytes
//! ```
//! What it holds: `meta.db` (an online SQLite backup, still SQLCipher-encrypted), the
//! segment manifest with exactly the segments it lists, the WAL files from its replay
//! point, the audit log and its checkpoints. Segments and WAL records stay under their
//! project keys inside the sealed stream, so a backup never holds a key: restoring needs
//! the keys directory, and a project deleted later (its keys destroyed) stays unreadable
//! in every older backup. Works while a server runs: if the store changed the manifest
//! while files were being copied, the copy starts over.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use minim_crypto::stream::{OpenedReader, SealedWriter};
use minim_crypto::{Keyring, KeysetName, MASTER_KEY_ENV};
use sha2::{Digest, Sha256};

use crate::config::Config;

const MAGIC: &[u8; 8] = b"MINIMBK1";

/// Files of a backup: path relative to the data directory, bytes.
type Files = Vec<(String, Vec<u8>)>;
const ATTEMPTS: usize = 20;

#[derive(clap::Subcommand, Debug)]
pub enum BackupCmd {
    /// Write an encrypted snapshot of the data directory to a new file.
    Create {
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a backup into the (new or empty) data directory, verifying every byte.
    /// Needs the keys directory the backup was made under.
    Restore {
        #[arg(long)]
        from: PathBuf,
    },
}

fn stream_ad(keyring: &str, backup_id: &[u8]) -> Vec<u8> {
    let mut ad = format!("minim/backup/{keyring}/").into_bytes();
    ad.extend_from_slice(backup_id);
    ad
}

fn put_entry(w: &mut impl Write, rel: &str, bytes: &[u8]) -> std::io::Result<()> {
    w.write_all(&[1])?;
    w.write_all(&(rel.len() as u16).to_le_bytes())?;
    w.write_all(rel.as_bytes())?;
    w.write_all(&(bytes.len() as u64).to_le_bytes())?;
    w.write_all(&Sha256::digest(bytes))?;
    w.write_all(bytes)
}

/// The store's files for one consistent snapshot: (relative path, bytes). `None` if the
/// manifest changed while reading (the caller retries).
fn store_files(cfg: &Config, ring: &std::sync::Arc<Keyring>) -> anyhow::Result<Option<Files>> {
    let events = cfg.data_dir.join("events");
    let manifest_path = events.join(minim_store::manifest::MANIFEST_FILE);
    // None: no flush yet, everything is in the WAL.
    let read_manifest = || match fs::read(&manifest_path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| manifest_path.display().to_string()),
    };
    let raw = read_manifest()?;
    let enc = minim_store::Encryption::new(ring.clone());
    let manifest = minim_store::manifest::Manifest::load(&events, Some(&enc))?;
    if read_manifest()? != raw {
        return Ok(None);
    }
    let mut files = Vec::new();
    if let Some(raw) = &raw {
        files.push(("events/manifest.json".to_owned(), raw.clone()));
    }
    for s in &manifest.segments {
        match fs::read(&s.path) {
            Ok(b) => {
                let rel = s
                    .path
                    .strip_prefix(&cfg.data_dir)
                    .context("segment outside the data directory")?;
                files.push((rel.to_string_lossy().into_owned(), b));
            }
            // Compacted away meanwhile: the manifest changed, start over.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| s.path.display().to_string()),
        }
    }
    let wal_dir = events.join("wal");
    for no in minim_store::wal::list_files(&wal_dir)? {
        if no < manifest.wal_replay_from {
            continue;
        }
        let path = minim_store::wal::wal_path(&wal_dir, no);
        match fs::read(&path) {
            Ok(b) => files.push((
                format!(
                    "events/wal/{}",
                    path.file_name().unwrap_or_default().to_string_lossy()
                ),
                b,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| path.display().to_string()),
        }
    }
    // WAL files are deleted only after a manifest covering them is written: unchanged
    // manifest bytes mean none of the copied ones was needed and dropped meanwhile.
    if read_manifest()? != raw {
        return Ok(None);
    }
    Ok(Some(files))
}

fn create(cfg: &Config, out: &Path, json: bool) -> anyhow::Result<()> {
    if out.exists() {
        bail!("{} already exists", out.display());
    }
    let ring = crate::keys::keyring(cfg)?;
    let system = ring.get_or_create(&KeysetName::System)?;
    let mut tmp_name = out.as_os_str().to_owned();
    tmp_name.push(".partial");
    let tmp = PathBuf::from(tmp_name);
    let meta_copy = tmp.with_extension("meta.partial");
    let _ = fs::remove_file(&meta_copy);
    crate::open_meta(cfg)?
        .backup_encrypted(&meta_copy, &crate::keys::meta_key(&ring)?)
        .context("copying the metadata database")?;
    let meta_bytes = fs::read(&meta_copy)?;
    fs::remove_file(&meta_copy)?;
    let mut store = None;
    for _ in 0..ATTEMPTS {
        if let Some(f) = store_files(cfg, &ring)? {
            store = Some(f);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let Some(store) = store else {
        bail!("the event store kept changing while being copied; retry");
    };
    let mut files = vec![("meta.db".to_owned(), meta_bytes)];
    files.extend(store);
    for name in ["audit.log", "checkpoints.log"] {
        let p = cfg.data_dir.join("audit").join(name);
        if let Ok(b) = fs::read(&p) {
            files.push((format!("audit/{name}"), b));
        }
    }

    let backup_id = minim_crypto::Key::generate()?.expose()[..16].to_vec();
    let file = File::create(&tmp).with_context(|| tmp.display().to_string())?;
    let mut w = BufWriter::new(file);
    w.write_all(MAGIC)?;
    w.write_all(&[ring.id().len() as u8])?;
    w.write_all(ring.id().as_bytes())?;
    w.write_all(&backup_id)?;
    w.write_all(&crate::now_ms().to_le_bytes())?;
    let mut sealed = SealedWriter::new(w, &system, &stream_ad(ring.id(), &backup_id));
    let mut bytes = 0u64;
    for (rel, b) in &files {
        put_entry(&mut sealed, rel, b)?;
        bytes += b.len() as u64;
    }
    sealed.write_all(&[0])?;
    sealed.write_all(&(files.len() as u32).to_le_bytes())?;
    let file = sealed
        .finish()?
        .into_inner()
        .map_err(|e| anyhow::anyhow!("writing the backup: {}", e.error()))?;
    file.sync_all()?;
    fs::rename(&tmp, out)?;
    crate::print(
        json,
        serde_json::json!({"backup": out, "backup_id": hex::encode(&backup_id), "files": files.len(), "bytes": bytes}),
        format!(
            "wrote {} ({} files, {bytes} bytes before encryption)",
            out.display(),
            files.len()
        ),
    )
}

/// A relative path with only normal components (no `..`, no root).
fn safe_rel(rel: &str) -> anyhow::Result<PathBuf> {
    let p = PathBuf::from(rel);
    if rel.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
        bail!("the backup names an unsafe path {rel:?}");
    }
    Ok(p)
}

fn restore(cfg: &Config, from: &Path, json: bool) -> anyhow::Result<()> {
    let target = &cfg.data_dir;
    if fs::read_dir(target).is_ok_and(|mut d| d.next().is_some()) {
        bail!(
            "{} is not empty; restore into a new data directory",
            target.display()
        );
    }
    let keys_dir = cfg.crypto.keys_dir(target);
    let env = std::env::var(MASTER_KEY_ENV).ok();
    let ring = Keyring::open(&keys_dir, env.as_deref()).with_context(|| {
        format!(
            "opening the keys directory {} (restoring needs the keys the backup was made under)",
            keys_dir.display()
        )
    })?;
    let what = from.display().to_string();
    let mut input = BufReader::new(File::open(from).with_context(|| what.clone())?);
    let mut magic = [0u8; 8];
    input
        .read_exact(&mut magic)
        .with_context(|| format!("{what}: not a Minim backup"))?;
    if &magic != MAGIC {
        bail!("{what}: not a Minim backup");
    }
    let mut len = [0u8; 1];
    input.read_exact(&mut len)?;
    let mut id = vec![0u8; usize::from(len[0])];
    input.read_exact(&mut id)?;
    let keyring_id = String::from_utf8(id).context("bad keyring id")?;
    if keyring_id != ring.id() {
        bail!(
            "{what} was made under keyring {keyring_id}, but {} holds keyring {}",
            keys_dir.display(),
            ring.id()
        );
    }
    let mut backup_id = [0u8; 16];
    input.read_exact(&mut backup_id)?;
    let mut created = [0u8; 8];
    input.read_exact(&mut created)?;
    let system = ring.require(&KeysetName::System)?;
    let mut r = OpenedReader::new(input, &system, &stream_ad(ring.id(), &backup_id), &what);

    // Everything goes to a staging directory first; it becomes the data directory only
    // once every byte was authenticated and every file's digest matched.
    let mut staging_name = target.as_os_str().to_owned();
    staging_name.push(".restoring");
    let staging = PathBuf::from(staging_name);
    let _ = fs::remove_dir_all(&staging);
    let res = (|| -> anyhow::Result<usize> {
        let mut files = 0usize;
        loop {
            let mut tag = [0u8; 1];
            r.read_exact(&mut tag)?;
            if tag[0] == 0 {
                let mut n = [0u8; 4];
                r.read_exact(&mut n)?;
                if u32::from_le_bytes(n) as usize != files {
                    bail!(
                        "{what}: lists {} files, holds {files}",
                        u32::from_le_bytes(n)
                    );
                }
                let mut rest = Vec::new();
                r.read_to_end(&mut rest)?;
                return Ok(files);
            }
            let mut plen = [0u8; 2];
            r.read_exact(&mut plen)?;
            let mut path = vec![0u8; usize::from(u16::from_le_bytes(plen))];
            r.read_exact(&mut path)?;
            let rel = safe_rel(&String::from_utf8(path).context("bad path")?)?;
            let mut size = [0u8; 8];
            r.read_exact(&mut size)?;
            let mut digest = [0u8; 32];
            r.read_exact(&mut digest)?;
            let mut bytes = vec![0u8; usize::try_from(u64::from_le_bytes(size))?];
            r.read_exact(&mut bytes)?;
            if Sha256::digest(&bytes).as_slice() != digest {
                bail!("{what}: {} does not match its digest", rel.display());
            }
            let dest = staging.join(&rel);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(&dest, &bytes)?;
            files += 1;
        }
    })();
    let files = match res {
        Ok(n) => n,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e.context(format!("restoring {what}: nothing was restored")));
        }
    };
    fs::write(
        staging.join(minim_crypto::keyring::DATA_DIR_MARKER),
        format!("{}\n", ring.id()),
    )?;
    if target.exists() {
        fs::remove_dir(target).with_context(|| target.display().to_string())?;
    }
    fs::rename(&staging, target)?;

    // Verify that it opens: metadata with its key, the store with its manifest and WAL.
    let projects = minim_meta::MetaStore::list_projects(&crate::open_meta(cfg)?)?.len();
    let store = minim_store::Store::open(cfg.store_config()?)
        .context("opening the restored event store")?;
    let events = store.snapshot().rows();
    store.shutdown()?;
    crate::print(
        json,
        serde_json::json!({"restored": target, "files": files, "projects": projects, "events": events}),
        format!(
            "restored {files} files into {}: {projects} projects, {events} events",
            target.display()
        ),
    )
}

pub(crate) fn backup(cfg: &Config, cmd: BackupCmd, json: bool) -> anyhow::Result<()> {
    match cmd {
        BackupCmd::Create { out } => create(cfg, &out, json),
        BackupCmd::Restore { from } => restore(cfg, &from, json),
    }
}
