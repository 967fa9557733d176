//! The keyring: the master key plus the keysets it wraps, kept in the keys directory
//! outside the data directory.
//!
//! ```text
//! KEYS_DIR/master.key              the master key, 64 hex digits (absent when MINIM_MASTER_KEY supplies it)
//! KEYS_DIR/keyring.json            keyring id, master key id, a check value sealed under the master key
//! KEYS_DIR/system.keyset           the event store's own files (manifest)
//! KEYS_DIR/meta.keyset             the metadata database
//! KEYS_DIR/projects/P.keyset       project P: WAL records and segments
//! KEYS_DIR/projects/P.destroyed    tombstone: P's keys were destroyed (crypto-shredded)
//! KEYS_DIR/LOCK                    serializes keyring changes across processes
//! DATA_DIR/KEYRING                 the id of the keyring this data directory belongs to
//! ```
//! Keysets are cached in memory; each use checks the file's modification time, so a
//! rotation by another process (the CLI while a server runs) is seen at once.

use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::fsutil::{Flock, create_dir_private, shred_file, write_atomic, write_new};
use crate::{CryptoError, Key, Keyset, envelope};

/// The environment variable that supplies the master key (64 hex digits).
pub const MASTER_KEY_ENV: &str = "MINIM_MASTER_KEY";
/// The new master key for a rotation when the current one comes from [`MASTER_KEY_ENV`].
pub const NEW_MASTER_KEY_ENV: &str = "MINIM_NEW_MASTER_KEY";
/// The data directory's marker naming its keyring.
pub const DATA_DIR_MARKER: &str = "KEYRING";

/// Which keyset.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeysetName {
    /// The event store's own files (manifest).
    System,
    /// The metadata database.
    Meta,
    /// One project's events.
    Project(String),
    /// One project's personal data kept outside events (the identity map's original
    /// ids): a key apart from the project's, so reading events never loads it.
    Personal(String),
}

impl KeysetName {
    pub fn project(id: &str) -> Self {
        Self::Project(id.to_owned())
    }

    /// The name bound into the keyset's wrapped keys.
    pub fn label(&self) -> String {
        match self {
            Self::System => "system".into(),
            Self::Meta => "meta".into(),
            Self::Project(p) => format!("project:{p}"),
            Self::Personal(p) => format!("personal:{p}"),
        }
    }

    fn file(&self, dir: &Path) -> PathBuf {
        match self {
            Self::System => dir.join("system.keyset"),
            Self::Meta => dir.join("meta.keyset"),
            Self::Project(p) => dir.join("projects").join(format!("{p}.keyset")),
            Self::Personal(p) => dir.join("projects").join(format!("{p}.personal.keyset")),
        }
    }

    fn tombstone(&self, dir: &Path) -> Option<PathBuf> {
        match self {
            Self::Project(p) | Self::Personal(p) => {
                Some(dir.join("projects").join(format!("{p}.destroyed")))
            }
            _ => None,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    version: u32,
    id: String,
    master_id: u32,
    /// Hex envelope of the keyring id under the master key.
    check: String,
}

/// How [`Keyring::open_for_data_dir`] found things.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyringOpened {
    /// An existing keyring, opened with the supplied master key.
    Existing,
    /// A new keyring for a new data directory; `master_key_file` is where a generated
    /// master key was written (None when the environment supplied it).
    Created { master_key_file: Option<PathBuf> },
}

struct Cached {
    mtime: Option<SystemTime>,
    keyset: Arc<Keyset>,
}

pub struct Keyring {
    dir: PathBuf,
    id: String,
    /// The master key; replaced when another process rotates it (file mode only).
    master: RwLock<Key>,
    /// The master key came from the environment: it is never read from or written to
    /// the keys directory.
    master_from_env: bool,
    cache: Mutex<HashMap<KeysetName, Cached>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("dir", &self.dir)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn check_ad(id: &str) -> Vec<u8> {
    format!("minim/keyring-check/{id}").into_bytes()
}

/// The next master key while a rotation is in progress.
const MASTER_NEXT: &str = "master.key.next";

fn keyring_file_bytes(id: &str, master: &Key) -> Result<Vec<u8>, CryptoError> {
    let check = envelope::seal(master, master.fingerprint(), &check_ad(id), id.as_bytes())?;
    let file = KeyringFile {
        version: 1,
        id: id.to_owned(),
        master_id: master.fingerprint(),
        check: hex::encode(check),
    };
    let mut bytes = serde_json::to_vec_pretty(&file).expect("keyring serializes");
    bytes.push(b'\n');
    Ok(bytes)
}

/// Every keyset file of a keys directory.
fn keyset_files(dir: &Path) -> Result<Vec<(PathBuf, String)>, CryptoError> {
    let mut out = Vec::new();
    for (file, name) in [("system.keyset", "system"), ("meta.keyset", "meta")] {
        out.push((dir.join(file), name.to_owned()));
    }
    let projects = dir.join("projects");
    if let Ok(rd) = fs::read_dir(&projects) {
        for e in rd {
            let e = e.map_err(|e| CryptoError::io(&projects, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(p) = name.strip_suffix(".personal.keyset") {
                out.push((e.path(), format!("personal:{p}")));
            } else if let Some(p) = name.strip_suffix(".keyset") {
                out.push((e.path(), format!("project:{p}")));
            }
        }
    }
    Ok(out.into_iter().filter(|(p, _)| p.exists()).collect())
}

/// Finishes a master rotation: `master.key.next` holds the new key, `master.key` the
/// old. Re-wraps what is still under the old key, then promotes the new one.
/// Idempotent; holds the keyring lock.
fn resume_master_rotation(dir: &Path) -> Result<(), CryptoError> {
    let _lock = Flock::exclusive(&dir.join("LOCK"))?;
    let Some(new) = read_key_file(&dir.join(MASTER_NEXT))? else {
        return Ok(()); // finished by another process
    };
    let old = read_key_file(&dir.join("master.key"))?;
    rewrap(dir, old.as_ref(), &new)?;
    fs::rename(dir.join(MASTER_NEXT), dir.join("master.key"))
        .map_err(|e| CryptoError::io(dir.join("master.key"), e))?;
    crate::fsutil::sync_parent(&dir.join("master.key"))?;
    Ok(())
}

/// Re-wraps every keyset not yet under `new` (from `old`), then the keyring check: each
/// file replaced atomically, the check last, so a rotation cut short is finished by
/// running this again with the same keys. Call with the directory lock held.
fn rewrap(dir: &Path, old: Option<&Key>, new: &Key) -> Result<(), CryptoError> {
    for (path, name) in keyset_files(dir)? {
        let bytes = fs::read(&path).map_err(|e| CryptoError::io(&path, e))?;
        if Keyset::stored_master_id(&bytes) == Some(new.fingerprint()) {
            continue;
        }
        let old = old.as_ref().ok_or_else(|| {
            CryptoError::Mismatch(format!(
                "{} is not under the new master key and the old one is gone",
                path.display()
            ))
        })?;
        let ks = Keyset::from_stored(&bytes, &name, old, &path.display().to_string())?;
        write_atomic(&path, &ks.to_stored(new, new.fingerprint())?)?;
    }
    let ring_path = dir.join("keyring.json");
    let ring_bytes = fs::read(&ring_path).map_err(|e| CryptoError::io(&ring_path, e))?;
    let file: KeyringFile = serde_json::from_slice(&ring_bytes)
        .map_err(|e| CryptoError::format(&ring_path, format!("not a keyring file: {e}")))?;
    if file.master_id != new.fingerprint() {
        write_atomic(&ring_path, &keyring_file_bytes(&file.id, new)?)?;
    }
    Ok(())
}

/// Whether a data directory holds anything (a fresh one may exist but be empty).
fn has_contents(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut it| it.next().is_some())
}

fn read_opt(path: &Path) -> Result<Option<Vec<u8>>, CryptoError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CryptoError::io(path, e)),
    }
}

/// Where the master key comes from.
enum MasterSource {
    Env(Key),
    File(PathBuf, Key),
    None,
}

fn load_master(dir: &Path, env_value: Option<&str>) -> Result<MasterSource, CryptoError> {
    if let Some(v) = env_value.filter(|v| !v.trim().is_empty()) {
        let key = Key::from_hex(v).ok_or_else(|| {
            CryptoError::Mismatch(format!(
                "{MASTER_KEY_ENV} must be 64 hex digits (a 256-bit key); generate one with `openssl rand -hex 32`"
            ))
        })?;
        return Ok(MasterSource::Env(key));
    }
    let path = dir.join("master.key");
    Ok(match read_key_file(&path)? {
        Some(key) => MasterSource::File(path, key),
        None => MasterSource::None,
    })
}

/// A key file (64 hex digits), if it exists.
fn read_key_file(path: &Path) -> Result<Option<Key>, CryptoError> {
    let Some(bytes) = read_opt(path)? else {
        return Ok(None);
    };
    let text = zeroize::Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned());
    Key::from_hex(&text)
        .map(Some)
        .ok_or_else(|| CryptoError::format(path, "expected 64 hex digits (a 256-bit key)"))
}

impl Keyring {
    /// The default keys directory of a data directory: `<data_dir>.keys`, beside it.
    pub fn default_dir(data_dir: &Path) -> PathBuf {
        let mut s = data_dir.as_os_str().to_owned();
        s.push(".keys");
        PathBuf::from(s)
    }

    /// Opens the keyring of `data_dir` from `keys_dir`, with the master key from
    /// `env_value` (the value of [`MASTER_KEY_ENV`], if set) or `keys_dir/master.key`.
    ///
    /// A data directory with nothing in it gets a new keyring (and, without an
    /// environment key, a generated master key file). Anything else without its keyring
    /// or master key is refused with an error that says what is missing.
    pub fn open_for_data_dir(
        data_dir: &Path,
        keys_dir: &Path,
        env_value: Option<&str>,
    ) -> Result<(Self, KeyringOpened), CryptoError> {
        let marker_path = data_dir.join(DATA_DIR_MARKER);
        let marker = read_opt(&marker_path)?.map(|b| String::from_utf8_lossy(&b).trim().to_owned());
        let ring_path = keys_dir.join("keyring.json");
        if ring_path.exists() {
            let ring = Self::open(keys_dir, env_value)?;
            match marker {
                Some(m) if m != ring.id => {
                    return Err(CryptoError::Mismatch(format!(
                        "the data directory {} belongs to keyring {m}, but the keys directory {} holds keyring {}",
                        data_dir.display(),
                        keys_dir.display(),
                        ring.id
                    )));
                }
                Some(_) => {}
                None if has_contents(data_dir) => {
                    return Err(CryptoError::Mismatch(format!(
                        "the data directory {} has no {DATA_DIR_MARKER} file: it is not encrypted with the keyring at {}",
                        data_dir.display(),
                        keys_dir.display()
                    )));
                }
                None => ring.mark(data_dir)?,
            }
            return Ok((ring, KeyringOpened::Existing));
        }
        if let Some(m) = marker {
            return Err(CryptoError::Mismatch(format!(
                "the data directory {} is encrypted with keyring {m}, but there is no keyring at {}; point [crypto] keys_dir at the directory holding it",
                data_dir.display(),
                keys_dir.display()
            )));
        }
        if has_contents(data_dir) {
            return Err(CryptoError::Mismatch(format!(
                "the data directory {} holds data but no {DATA_DIR_MARKER} file: it was not created by this version (which encrypts everything) or its marker was removed",
                data_dir.display()
            )));
        }
        let (ring, file) = Self::create(keys_dir, env_value)?;
        ring.mark(data_dir)?;
        Ok((
            ring,
            KeyringOpened::Created {
                master_key_file: file,
            },
        ))
    }

    /// Opens an existing keyring.
    pub fn open(keys_dir: &Path, env_value: Option<&str>) -> Result<Self, CryptoError> {
        if env_value.is_none_or(|v| v.trim().is_empty()) && keys_dir.join(MASTER_NEXT).exists() {
            // A master rotation was cut short: finish it first.
            resume_master_rotation(keys_dir)?;
        }
        let ring_path = keys_dir.join("keyring.json");
        let bytes = read_opt(&ring_path)?.ok_or_else(|| {
            CryptoError::Mismatch(format!("there is no keyring at {}", keys_dir.display()))
        })?;
        let file: KeyringFile = serde_json::from_slice(&bytes)
            .map_err(|e| CryptoError::format(&ring_path, format!("not a keyring file: {e}")))?;
        let (master, source_name) = match load_master(keys_dir, env_value)? {
            MasterSource::Env(k) => (k, MASTER_KEY_ENV.to_owned()),
            MasterSource::File(p, k) => (k, p.display().to_string()),
            MasterSource::None => {
                return Err(CryptoError::MasterMissing {
                    env: MASTER_KEY_ENV,
                    path: keys_dir.join("master.key"),
                });
            }
        };
        let wrong = || CryptoError::MasterWrong {
            source_name: source_name.clone(),
            path: ring_path.clone(),
        };
        if master.fingerprint() != file.master_id {
            return Err(wrong());
        }
        let check = hex::decode(&file.check)
            .map_err(|_| CryptoError::format(&ring_path, "check is not hex"))?;
        let id = envelope::open(
            &master,
            &check_ad(&file.id),
            &check,
            &ring_path.display().to_string(),
        )
        .map_err(|_| wrong())?;
        if id != file.id.as_bytes() {
            return Err(wrong());
        }
        Ok(Self {
            dir: keys_dir.to_owned(),
            id: file.id,
            master_from_env: source_name == MASTER_KEY_ENV,
            master: RwLock::new(master),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Creates a new keyring in `keys_dir` (which must not hold one).
    fn create(
        keys_dir: &Path,
        env_value: Option<&str>,
    ) -> Result<(Self, Option<PathBuf>), CryptoError> {
        create_dir_private(&keys_dir.join("projects"))?;
        let (master, generated) = match load_master(keys_dir, env_value)? {
            MasterSource::Env(k) | MasterSource::File(_, k) => (k, None),
            MasterSource::None => {
                let k = Key::generate()?;
                let path = keys_dir.join("master.key");
                let mut text = k.to_hex();
                text.push('\n');
                if !write_new(&path, text.as_bytes())? {
                    return Err(CryptoError::Mismatch(format!(
                        "{} appeared while a new keyring was being created; retry",
                        path.display()
                    )));
                }
                (k, Some(path))
            }
        };
        let id = hex::encode(&Key::generate()?.expose()[..16]);
        let bytes = keyring_file_bytes(&id, &master)?;
        let ring_path = keys_dir.join("keyring.json");
        if !write_new(&ring_path, &bytes)? {
            return Err(CryptoError::Mismatch(format!(
                "{} appeared while being created; retry",
                ring_path.display()
            )));
        }
        Ok((
            Self {
                dir: keys_dir.to_owned(),
                id,
                master_from_env: env_value.is_some_and(|v| !v.trim().is_empty()),
                master: RwLock::new(master),
                cache: Mutex::new(HashMap::new()),
            },
            generated,
        ))
    }

    fn mark(&self, data_dir: &Path) -> Result<(), CryptoError> {
        create_dir_private(data_dir)?;
        write_atomic(
            &data_dir.join(DATA_DIR_MARKER),
            format!("{}\n", self.id).as_bytes(),
        )
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> Result<Flock, CryptoError> {
        Flock::exclusive(&self.dir.join("LOCK"))
    }

    fn mtime(path: &Path) -> Option<SystemTime> {
        fs::metadata(path).and_then(|m| m.modified()).ok()
    }

    fn load(&self, name: &KeysetName) -> Result<Option<Keyset>, CryptoError> {
        if let Some(t) = name.tombstone(&self.dir)
            && t.exists()
        {
            return Err(CryptoError::Destroyed {
                keyset: name.label(),
            });
        }
        let path = name.file(&self.dir);
        match read_opt(&path)? {
            Some(bytes) => {
                let master = self.master_for(Keyset::stored_master_id(&bytes), &path)?;
                Keyset::from_stored(&bytes, &name.label(), &master, &path.display().to_string())
                    .map(Some)
            }
            None => Ok(None),
        }
    }

    /// The master key, cloned (32 bytes, zeroized on drop).
    fn master(&self) -> Key {
        self.master.read().expect("master lock").clone()
    }

    /// The master key with id `wanted` (what a stored keyset names): the one in use, or,
    /// after another process rotated it, the one now in the keys directory.
    fn master_for(&self, wanted: Option<u32>, path: &Path) -> Result<Key, CryptoError> {
        let current = self.master();
        let Some(wanted) = wanted.filter(|&w| w != current.fingerprint()) else {
            return Ok(current);
        };
        if !self.master_from_env {
            for file in [MASTER_NEXT, "master.key"] {
                if let Some(k) =
                    read_key_file(&self.dir.join(file))?.filter(|k| k.fingerprint() == wanted)
                {
                    *self.master.write().expect("master lock") = k.clone();
                    return Ok(k);
                }
            }
        }
        Err(CryptoError::Mismatch(format!(
            "{} is wrapped under master key {wanted:#010x}, which this process does not have: the master key was rotated; restart with the current one",
            path.display()
        )))
    }

    /// Replaces the master key (file mode): writes `master.key.next`, re-wraps every
    /// keyset and the keyring check under it, then makes it `master.key`. Each step is
    /// an atomic file replacement; a crash at any point is finished by the next
    /// [`Keyring::open`], and until then both keys are on disk, so nothing is unreadable
    /// at any moment. Returns the new master key's id. Other processes pick the new key
    /// up from the keys directory when they next load a keyset.
    pub fn rotate_master(&self) -> Result<u32, CryptoError> {
        if self.master_from_env {
            return Err(CryptoError::Mismatch(format!(
                "the master key comes from {MASTER_KEY_ENV}: give the new one in {NEW_MASTER_KEY_ENV} to rotate it"
            )));
        }
        {
            let _lock = self.lock()?;
            let next = self.dir.join(MASTER_NEXT);
            if !next.exists() {
                let key = Key::generate()?;
                let mut text = key.to_hex();
                text.push('\n');
                write_new(&next, text.as_bytes())?;
            }
        }
        resume_master_rotation(&self.dir)?;
        let master = match load_master(&self.dir, None)? {
            MasterSource::File(_, k) => k,
            _ => {
                return Err(CryptoError::Mismatch(
                    "master.key vanished during rotation".into(),
                ));
            }
        };
        let id = master.fingerprint();
        *self.master.write().expect("master lock") = master;
        self.cache.lock().expect("keyring cache").clear();
        Ok(id)
    }

    /// Replaces a master key that comes from [`MASTER_KEY_ENV`] by `new` (the operator's,
    /// e.g. from [`NEW_MASTER_KEY_ENV`]): every keyset and the keyring check are re-wrapped
    /// under it, each file atomically, the check last. Nothing is written that holds
    /// either key. Cut short, it is finished by running it again with the same two keys
    /// (until then the old key still opens the keyring). Afterwards every process must
    /// be given the new key; one still holding the old key gets a clear error when it
    /// next loads a keyset. Returns the new master key's id.
    pub fn rotate_env_master(&self, new: Key) -> Result<u32, CryptoError> {
        if !self.master_from_env {
            return Err(CryptoError::Mismatch(format!(
                "the master key is the file {}: rotate it without {NEW_MASTER_KEY_ENV}",
                self.dir.join("master.key").display()
            )));
        }
        let old = self.master();
        if old.fingerprint() == new.fingerprint() {
            return Err(CryptoError::Mismatch(
                "the new master key is the current one".into(),
            ));
        }
        {
            let _lock = self.lock()?;
            rewrap(&self.dir, Some(&old), &new)?;
        }
        let id = new.fingerprint();
        *self.master.write().expect("master lock") = new;
        self.cache.lock().expect("keyring cache").clear();
        Ok(id)
    }

    /// The keyset `name`, if it exists (and was not destroyed).
    pub fn get(&self, name: &KeysetName) -> Result<Option<Arc<Keyset>>, CryptoError> {
        let path = name.file(&self.dir);
        let mtime = Self::mtime(&path);
        {
            let cache = self.cache.lock().expect("keyring cache");
            if let Some(c) = cache.get(name)
                && c.mtime == mtime
                && mtime.is_some()
            {
                return Ok(Some(c.keyset.clone()));
            }
        }
        let Some(ks) = self.load(name)? else {
            self.cache.lock().expect("keyring cache").remove(name);
            return Ok(None);
        };
        let ks = Arc::new(ks);
        self.cache.lock().expect("keyring cache").insert(
            name.clone(),
            Cached {
                mtime,
                keyset: ks.clone(),
            },
        );
        Ok(Some(ks))
    }

    /// The keyset `name` for reading: an error if it does not exist.
    pub fn require(&self, name: &KeysetName) -> Result<Arc<Keyset>, CryptoError> {
        self.get(name)?.ok_or_else(|| CryptoError::Destroyed {
            keyset: name.label(),
        })
    }

    /// The keyset `name`, created (one fresh primary key) if it does not exist yet.
    /// A destroyed project's keyset is never re-created.
    pub fn get_or_create(&self, name: &KeysetName) -> Result<Arc<Keyset>, CryptoError> {
        if let Some(ks) = self.get(name)? {
            return Ok(ks);
        }
        let _lock = self.lock()?;
        if let Some(ks) = self.get(name)? {
            return Ok(ks);
        }
        let ks = Keyset::generate(&name.label(), now_ms())?;
        let path = name.file(&self.dir);
        if let Some(parent) = path.parent() {
            create_dir_private(parent)?;
        }
        let master = self.master();
        write_new(&path, &ks.to_stored(&master, master.fingerprint())?)?;
        self.require(name)
    }

    /// Adds a new primary key to `name` (creating the keyset if needed); old keys stay
    /// decrypt-only. Returns the new key id.
    pub fn rotate(&self, name: &KeysetName) -> Result<u32, CryptoError> {
        self.get_or_create(name)?;
        let _lock = self.lock()?;
        let mut ks = (*self.require(name)?).clone();
        let id = ks.rotate(now_ms())?;
        self.store(name, &ks)?;
        Ok(id)
    }

    /// Drops every key of `name` but the primary; call only once no data uses them.
    pub fn retire_old(&self, name: &KeysetName) -> Result<usize, CryptoError> {
        let _lock = self.lock()?;
        let mut ks = (*self.require(name)?).clone();
        let n = ks.retire_old();
        if n > 0 {
            self.store(name, &ks)?;
        }
        Ok(n)
    }

    fn store(&self, name: &KeysetName, ks: &Keyset) -> Result<(), CryptoError> {
        let master = self.master();
        write_atomic(
            &name.file(&self.dir),
            &ks.to_stored(&master, master.fingerprint())?,
        )?;
        self.cache.lock().expect("keyring cache").remove(name);
        Ok(())
    }

    /// Crypto-shreds a project: writes its tombstone, then overwrites and removes its
    /// keyset file. Everything encrypted under it, wherever copies are, is unreadable
    /// from then on. Returns whether a keyset existed.
    pub fn destroy_project(&self, project: &str) -> Result<bool, CryptoError> {
        let name = KeysetName::project(project);
        let _lock = self.lock()?;
        if let Some(t) = name.tombstone(&self.dir) {
            if let Some(parent) = t.parent() {
                create_dir_private(parent)?;
            }
            write_atomic(&t, format!("{}\n", now_ms()).as_bytes())?;
        }
        let personal = KeysetName::Personal(project.to_owned());
        let existed = shred_file(&name.file(&self.dir))?;
        shred_file(&personal.file(&self.dir))?;
        let mut cache = self.cache.lock().expect("keyring cache");
        cache.remove(&name);
        cache.remove(&personal);
        Ok(existed)
    }

    /// Whether a project's keys were destroyed.
    pub fn is_destroyed(&self, project: &str) -> bool {
        KeysetName::project(project)
            .tombstone(&self.dir)
            .is_some_and(|t| t.exists())
    }

    /// A stable subkey of the keyset's primary key for one purpose (e.g. the metadata
    /// database's SQLCipher key). Changes when the keyset rotates.
    pub fn derived(&self, name: &KeysetName, purpose: &str) -> Result<(u32, Key), CryptoError> {
        let ks = self.get_or_create(name)?;
        let (id, key) = ks.primary();
        Ok((id, key.derive(purpose.as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let t = tempfile::tempdir().expect("tempdir");
        let data = t.path().join("data");
        let keys = Keyring::default_dir(&data);
        (t, data, keys)
    }

    #[test]
    fn first_start_generates_then_reopens() {
        let (_t, data, keys) = dirs();
        let (ring, how) = Keyring::open_for_data_dir(&data, &keys, None).expect("create");
        assert_eq!(
            how,
            KeyringOpened::Created {
                master_key_file: Some(keys.join("master.key"))
            }
        );
        let ks = ring.get_or_create(&KeysetName::project("p1")).expect("ks");
        let ct = ks.seal(b"ad", b"secret").expect("seal");
        fs::write(data.join("meta.db"), b"x").expect("write");
        let (again, how) = Keyring::open_for_data_dir(&data, &keys, None).expect("open");
        assert_eq!(how, KeyringOpened::Existing);
        assert_eq!(again.id(), ring.id());
        let ks2 = again.require(&KeysetName::project("p1")).expect("ks");
        assert_eq!(ks2.open(b"ad", &ct, "t").expect("open"), b"secret");
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(keys.join("master.key"))
            .expect("m")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn missing_or_wrong_master_key_is_refused_clearly() {
        let (_t, data, keys) = dirs();
        let env = "11".repeat(32);
        Keyring::open_for_data_dir(&data, &keys, Some(&env)).expect("create");
        assert!(
            !keys.join("master.key").exists(),
            "an env key is never written"
        );
        fs::write(data.join("meta.db"), b"x").expect("write");
        let err = Keyring::open_for_data_dir(&data, &keys, None).expect_err("no key");
        assert!(matches!(err, CryptoError::MasterMissing { .. }), "{err}");
        assert!(err.to_string().contains(MASTER_KEY_ENV));
        let err =
            Keyring::open_for_data_dir(&data, &keys, Some(&"22".repeat(32))).expect_err("wrong");
        assert!(matches!(err, CryptoError::MasterWrong { .. }), "{err}");
        let err = Keyring::open_for_data_dir(&data, &keys, Some("nothex")).expect_err("bad");
        assert!(err.to_string().contains("64 hex digits"), "{err}");
        // The data directory without its keys directory.
        let err = Keyring::open_for_data_dir(&data, &data.join("elsewhere"), Some(&env))
            .expect_err("moved");
        assert!(err.to_string().contains("no keyring at"), "{err}");
    }

    #[test]
    fn an_unencrypted_data_directory_is_not_adopted_silently() {
        let (_t, data, keys) = dirs();
        fs::create_dir_all(&data).expect("mkdir");
        fs::write(data.join("meta.db"), b"x").expect("write");
        let err = Keyring::open_for_data_dir(&data, &keys, None).expect_err("refuse");
        assert!(err.to_string().contains(DATA_DIR_MARKER), "{err}");
    }

    #[test]
    fn rotation_is_seen_by_another_handle_and_destroy_shreds() {
        let (_t, data, keys) = dirs();
        let (a, _) = Keyring::open_for_data_dir(&data, &keys, None).expect("create");
        let b = Keyring::open(&keys, None).expect("open");
        let name = KeysetName::project("p1");
        let old = a
            .get_or_create(&name)
            .expect("ks")
            .seal(b"", b"v1")
            .expect("seal");
        assert_eq!(b.require(&name).expect("ks").key_ids().len(), 1);
        // Same-second mtimes: make sure the change is visible even then.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let new_id = a.rotate(&name).expect("rotate");
        let ks = b.require(&name).expect("ks");
        assert_eq!(ks.primary_id(), new_id);
        assert_eq!(ks.open(b"", &old, "t").expect("old readable"), b"v1");

        let personal = KeysetName::Personal("p1".into());
        a.get_or_create(&personal).expect("personal keyset");
        assert!(keys.join("projects/p1.personal.keyset").exists());
        assert!(a.destroy_project("p1").expect("destroy"));
        assert!(!keys.join("projects/p1.personal.keyset").exists());
        assert!(b.get(&personal).expect_err("gone").is_destroyed());
        assert!(a.is_destroyed("p1"));
        for ring in [&a, &b] {
            assert!(ring.get(&name).expect_err("gone").is_destroyed());
            assert!(
                ring.get_or_create(&name)
                    .expect_err("never re-created")
                    .is_destroyed()
            );
        }
        assert!(!keys.join("projects/p1.keyset").exists());
    }

    #[test]
    fn master_rotation_rewraps_everything_and_other_handles_follow() {
        let (_t, data, keys) = dirs();
        let (a, _) = Keyring::open_for_data_dir(&data, &keys, None).expect("create");
        let b = Keyring::open(&keys, None).expect("second process");
        let p1 = KeysetName::project("p1");
        let ct = a
            .get_or_create(&p1)
            .expect("ks")
            .seal(b"", b"v")
            .expect("seal");
        a.get_or_create(&KeysetName::System).expect("system");
        let old = fs::read_to_string(keys.join("master.key")).expect("old");
        std::thread::sleep(std::time::Duration::from_millis(20));
        let new_id = a.rotate_master().expect("rotate");
        let new = fs::read_to_string(keys.join("master.key")).expect("new");
        assert_ne!(old, new);
        assert!(!keys.join(MASTER_NEXT).exists());
        for (path, _) in keyset_files(&keys).expect("files") {
            let bytes = fs::read(&path).expect("read");
            assert_eq!(
                Keyset::stored_master_id(&bytes),
                Some(new_id),
                "{}",
                path.display()
            );
        }
        // The other handle reloads the key from the directory when it meets it.
        assert_eq!(
            b.require(&p1)
                .expect("ks")
                .open(b"", &ct, "t")
                .expect("open"),
            b"v"
        );
        let c = Keyring::open(&keys, None).expect("reopen");
        assert_eq!(
            c.require(&p1)
                .expect("ks")
                .open(b"", &ct, "t")
                .expect("open"),
            b"v"
        );
        // The old master key opens nothing any more.
        let err = Keyring::open(&keys, Some(old.trim())).expect_err("old key");
        assert!(matches!(err, CryptoError::MasterWrong { .. }), "{err}");
    }

    #[test]
    fn an_environment_master_key_rotates_and_a_rotation_cut_short_is_rerun() {
        let (_t, data, keys) = dirs();
        let old = Key::generate().expect("key");
        let old_hex = old.to_hex();
        let (a, _) =
            Keyring::open_for_data_dir(&data, &keys, Some(old_hex.as_str())).expect("create");
        assert!(!keys.join("master.key").exists());
        let names = [
            KeysetName::System,
            KeysetName::project("p1"),
            KeysetName::Personal("p1".into()),
        ];
        let cts: Vec<Vec<u8>> = names
            .iter()
            .map(|n| {
                let ks = a.get_or_create(n).expect("ks");
                ks.seal(b"", n.label().as_bytes()).expect("seal")
            })
            .collect();
        let new = Key::generate().expect("key");
        let new_hex = new.to_hex();
        // A crash after the first keyset was re-wrapped: the old key still opens the
        // keyring, and running the rotation again finishes it.
        let first = names[0].file(&keys);
        let ks = Keyset::from_stored(&fs::read(&first).expect("r"), &names[0].label(), &old, "t")
            .expect("ks");
        write_atomic(&first, &ks.to_stored(&new, new.fingerprint()).expect("s")).expect("w");
        let again = Keyring::open(&keys, Some(old_hex.as_str())).expect("old key still opens");
        assert!(again.rotate_env_master(old.clone()).is_err(), "same key");
        assert_eq!(
            again.rotate_env_master(new.clone()).expect("rotates"),
            new.fingerprint()
        );
        for (n, ct) in names.iter().zip(&cts) {
            let ks = again.require(n).expect("ks");
            assert_eq!(ks.open(b"", ct, "t").expect("open"), n.label().as_bytes());
        }
        // No key was written anywhere; the old key no longer opens; the new one does.
        assert!(!keys.join("master.key").exists() && !keys.join(MASTER_NEXT).exists());
        assert!(Keyring::open(&keys, Some(old_hex.as_str())).is_err());
        let ring = Keyring::open(&keys, Some(new_hex.as_str())).expect("new key opens");
        for (n, ct) in names.iter().zip(&cts) {
            let ks = ring.require(n).expect("ks");
            assert_eq!(ks.open(b"", ct, "t").expect("open"), n.label().as_bytes());
        }
        // A process still holding the old key is told what happened.
        let err = a.require(&names[1]).expect_err("old master").to_string();
        assert!(err.contains("rotated"), "{err}");
        // A key file is rotated the file way.
        let (_t2, data2, keys2) = dirs();
        let (f, _) = Keyring::open_for_data_dir(&data2, &keys2, None).expect("create");
        assert!(f.rotate_env_master(Key::generate().expect("k")).is_err());
    }

    #[test]
    fn a_master_rotation_cut_short_is_finished_by_the_next_open() {
        let (_t, data, keys) = dirs();
        let (a, _) = Keyring::open_for_data_dir(&data, &keys, None).expect("create");
        let names = [
            KeysetName::System,
            KeysetName::project("p1"),
            KeysetName::project("p2"),
        ];
        let cts: Vec<Vec<u8>> = names
            .iter()
            .map(|n| {
                a.get_or_create(n)
                    .expect("ks")
                    .seal(b"", n.label().as_bytes())
                    .expect("seal")
            })
            .collect();
        // Crash after the new key was written and one keyset re-wrapped, at every point.
        for rewrapped in 0..=names.len() {
            let (_t2, _data2, keys2) = dirs();
            let copy = |from: &Path, to: &Path| {
                fs::create_dir_all(to.join("projects")).expect("mkdir");
                for f in [
                    "master.key",
                    "keyring.json",
                    "system.keyset",
                    "projects/p1.keyset",
                    "projects/p2.keyset",
                ] {
                    fs::copy(from.join(f), to.join(f)).expect("copy");
                }
            };
            copy(&keys, &keys2);
            let new = Key::generate().expect("key");
            fs::write(
                keys2.join(MASTER_NEXT),
                format!("{}\n", new.to_hex().as_str()),
            )
            .expect("next");
            let old = Key::from_hex(&fs::read_to_string(keys2.join("master.key")).expect("m"))
                .expect("k");
            for n in names.iter().take(rewrapped) {
                let path = n.file(&keys2);
                let ks = Keyset::from_stored(&fs::read(&path).expect("r"), &n.label(), &old, "t")
                    .expect("ks");
                write_atomic(&path, &ks.to_stored(&new, new.fingerprint()).expect("s")).expect("w");
            }
            // The next open finishes the rotation; everything reads.
            let ring = Keyring::open(&keys2, None).expect("resume");
            assert!(!keys2.join(MASTER_NEXT).exists());
            assert_eq!(ring.master().fingerprint(), new.fingerprint());
            for (n, ct) in names.iter().zip(&cts) {
                let ks = ring.require(n).expect("ks");
                assert_eq!(ks.open(b"", ct, "t").expect("open"), n.label().as_bytes());
            }
        }
    }
}
