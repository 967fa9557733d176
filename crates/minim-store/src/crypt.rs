//! How the store encrypts its files, given the keyring (`minim-crypto`).
//!
//! - **WAL records** of project P: the batch payload becomes an envelope under P's
//!   primary key, bound to (P, WAL file number, record sequence number); the record
//!   names P in clear before the envelope so recovery knows which keyset to use.
//! - **Segments** of P: Parquet modular encryption, encrypted footer, every column
//!   encrypted (AES-GCM, as the Parquet format specifies) with a key derived from P's
//!   key; the footer's key metadata `minim1:P:KEY_ID` lets any reader (this crate, the
//!   query engine) find the key through [`Encryption::decryption_properties`]. The
//!   `personal` column, where a segment has one, is encrypted under a column key derived
//!   from the project's *personal* keyset (key metadata `minim1p:P:KEY_ID`): a reader
//!   built without personal access never asks for it, so the column stays sealed and
//!   the rest of the file reads normally.
//! - **The manifest**: an envelope under the `system` keyset.
//!
//! A destroyed (crypto-shredded) project's records and segments read as
//! `CryptoError::Destroyed`: recovery skips them, nothing else can read them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use minim_core::ProjectId;
use minim_crypto::{CryptoError, Key, Keyring, KeysetName};
use parquet::encryption::decrypt::{FileDecryptionProperties, KeyRetriever};
use parquet::encryption::encrypt::FileEncryptionProperties;
use parquet::errors::ParquetError;
use zeroize::Zeroizing;

use crate::error::{Result, StoreError};

const PARQUET_KEY_PREFIX: &str = "minim1:";
const PARQUET_KEY_PURPOSE: &[u8] = b"minim/parquet/segment";
const PERSONAL_KEY_PREFIX: &str = "minim1p:";
const PERSONAL_KEY_PURPOSE: &[u8] = b"minim/parquet/personal";

/// The store's handle on the keyring. Cheap to clone.
#[derive(Clone)]
pub struct Encryption {
    keyring: Arc<Keyring>,
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryption")
            .field("keyring", &self.keyring.id())
            .finish()
    }
}

fn wal_ad(project: &str, file_no: u64, seq: u64) -> Vec<u8> {
    format!("minim/wal/{project}/{file_no}/{seq}").into_bytes()
}

const MANIFEST_AD: &[u8] = b"minim/manifest";

fn personal_ad(project: &str, pseudonym: &str) -> Vec<u8> {
    format!("minim/personal/{project}/{pseudonym}").into_bytes()
}

pub(crate) fn crypto_err(what: &str, e: CryptoError) -> StoreError {
    if e.is_destroyed() {
        StoreError::Destroyed(e.to_string())
    } else {
        StoreError::Crypto {
            what: what.to_owned(),
            reason: e.to_string(),
        }
    }
}

impl Encryption {
    pub fn new(keyring: Arc<Keyring>) -> Self {
        Self { keyring }
    }

    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
    }

    /// Encrypts a WAL record payload of `project`; returns (key id, envelope).
    pub(crate) fn seal_wal(
        &self,
        project: &ProjectId,
        file_no: u64,
        seq: u64,
        payload: &[u8],
    ) -> Result<(u32, Vec<u8>)> {
        let what = format!("WAL record {seq} of project {project}");
        let ks = self
            .keyring
            .get_or_create(&KeysetName::project(project.as_str()))
            .map_err(|e| crypto_err(&what, e))?;
        let ct = ks
            .seal(&wal_ad(project.as_str(), file_no, seq), payload)
            .map_err(|e| crypto_err(&what, e))?;
        Ok((ks.primary_id(), ct))
    }

    /// Decrypts a WAL record payload. `what` names the file and offset for errors.
    pub(crate) fn open_wal(
        &self,
        project: &str,
        file_no: u64,
        seq: u64,
        envelope: &[u8],
        what: &str,
    ) -> std::result::Result<Vec<u8>, CryptoError> {
        let ks = self.keyring.require(&KeysetName::project(project))?;
        ks.open(&wal_ad(project, file_no, seq), envelope, what)
    }

    /// The Parquet key of `project`'s segments (`personal`: of their personal column):
    /// key `key_id` of the keyset, or its primary.
    fn parquet_key(
        &self,
        project: &str,
        personal: bool,
        key_id: Option<u32>,
        what: &str,
    ) -> std::result::Result<(u32, Key), CryptoError> {
        let (name, purpose) = if personal {
            (
                KeysetName::Personal(project.to_owned()),
                PERSONAL_KEY_PURPOSE,
            )
        } else {
            (KeysetName::project(project), PARQUET_KEY_PURPOSE)
        };
        let ks = self.keyring.require(&name)?;
        let (id, key) = match key_id {
            Some(id) => (id, ks.require(id, what)?),
            None => {
                let (id, key) = ks.primary();
                (id, key)
            }
        };
        Ok((id, key.derive(purpose)))
    }

    /// Encryption properties for a new segment of `project`, under its primary key. With
    /// `personal`, the `personal` column is under its personal keyset's primary key and
    /// every other of `columns` gets the footer key as its column key: Parquet leaves
    /// columns without a key in plaintext once any column has one.
    pub(crate) fn encryption_properties(
        &self,
        project: &ProjectId,
        day: i32,
        columns: &[&str],
        personal: bool,
    ) -> Result<Arc<FileEncryptionProperties>> {
        let what = format!("a new segment of project {project}");
        let err = |e| crypto_err(&what, e);
        let p = project.as_str();
        self.keyring
            .get_or_create(&KeysetName::project(p))
            .map_err(err)?;
        let (id, key) = self.parquet_key(p, false, None, &what).map_err(err)?;
        let footer_meta = format!("{PARQUET_KEY_PREFIX}{project}:{id}").into_bytes();
        let mut builder = FileEncryptionProperties::builder(key.expose().to_vec())
            .with_footer_key_metadata(footer_meta.clone());
        if personal {
            self.keyring
                .get_or_create(&KeysetName::Personal(p.to_owned()))
                .map_err(err)?;
            let (pid, pkey) = self.parquet_key(p, true, None, &what).map_err(err)?;
            for &column in columns {
                builder = if column == crate::segment::COL_PERSONAL {
                    builder.with_column_key_and_metadata(
                        column,
                        pkey.expose().to_vec(),
                        format!("{PERSONAL_KEY_PREFIX}{project}:{pid}").into_bytes(),
                    )
                } else {
                    builder.with_column_key_and_metadata(
                        column,
                        key.expose().to_vec(),
                        footer_meta.clone(),
                    )
                };
            }
        }
        builder
            .with_aad_prefix(format!("minim/segment/{project}/{day}").into_bytes())
            .with_aad_prefix_storage(true)
            .build()
            .map_err(|e| crypto_err(&what, CryptoError::Mismatch(e.to_string())))
    }

    /// Decryption properties for any segment: keys are found from each file's key
    /// metadata. With `personal` false the personal column's key is refused (never
    /// loaded): the column stays sealed and every other column reads. This crate's
    /// readers (compaction, rewrites) pass true; the query engine passes the reader's
    /// right.
    pub fn decryption_properties(
        &self,
        personal: bool,
    ) -> std::result::Result<Arc<FileDecryptionProperties>, ParquetError> {
        FileDecryptionProperties::with_key_retriever(Arc::new(Retriever {
            enc: self.clone(),
            personal,
            keys: Mutex::new(HashMap::new()),
        }))
        .build()
    }

    /// The (project, key id) a segment's footer key metadata names, or None if it is not
    /// ours.
    pub fn parse_key_metadata(meta: &[u8]) -> Option<(String, u32)> {
        parse_prefixed(meta, PARQUET_KEY_PREFIX)
    }

    /// Seals a personal value kept outside events (an identity map entry's original
    /// id) under the project's *personal* keyset, bound to its pseudonym. Hex text, for
    /// a metadata column.
    pub fn seal_personal(
        &self,
        project: &ProjectId,
        pseudonym: &str,
        value: &str,
    ) -> Result<String> {
        let what = format!("a personal value of project {project}");
        let ks = self
            .keyring
            .get_or_create(&KeysetName::Personal(project.as_str().to_owned()))
            .map_err(|e| crypto_err(&what, e))?;
        let ct = ks
            .seal(&personal_ad(project.as_str(), pseudonym), value.as_bytes())
            .map_err(|e| crypto_err(&what, e))?;
        Ok(hex::encode(ct))
    }

    /// Opens what [`Encryption::seal_personal`] sealed. Only for principals allowed to
    /// read personal data (the personal keyset is otherwise loaded only to write
    /// segments' personal column and, by readers with personal access, to read it).
    pub fn open_personal(
        &self,
        project: &ProjectId,
        pseudonym: &str,
        sealed: &str,
    ) -> Result<String> {
        let what = format!("a personal value of project {project}");
        let bad = |reason: &str| StoreError::Crypto {
            what: what.clone(),
            reason: reason.to_owned(),
        };
        let ct = hex::decode(sealed).map_err(|_| bad("not hex"))?;
        let ks = self
            .keyring
            .require(&KeysetName::Personal(project.as_str().to_owned()))
            .map_err(|e| crypto_err(&what, e))?;
        let plain = ks
            .open(&personal_ad(project.as_str(), pseudonym), &ct, &what)
            .map_err(|e| crypto_err(&what, e))?;
        String::from_utf8(plain).map_err(|_| bad("not UTF-8"))
    }

    pub(crate) fn seal_manifest(&self, bytes: &[u8]) -> Result<Vec<u8>> {
        let ks = self
            .keyring
            .get_or_create(&KeysetName::System)
            .map_err(|e| crypto_err("manifest", e))?;
        ks.seal(MANIFEST_AD, bytes)
            .map_err(|e| crypto_err("manifest", e))
    }

    pub(crate) fn open_manifest(&self, envelope: &[u8], what: &str) -> Result<Vec<u8>> {
        let ks = self
            .keyring
            .require(&KeysetName::System)
            .map_err(|e| crypto_err(what, e))?;
        ks.open(MANIFEST_AD, envelope, what)
            .map_err(|e| crypto_err(what, e))
    }
}

fn parse_prefixed(meta: &[u8], prefix: &str) -> Option<(String, u32)> {
    let s = std::str::from_utf8(meta).ok()?.strip_prefix(prefix)?;
    let (project, id) = s.rsplit_once(':')?;
    Some((project.to_owned(), id.parse().ok()?))
}

/// Hands the Parquet reader the keys a file's key metadata names. Built per file open;
/// remembers what it derived, since every column of every row group asks.
struct Retriever {
    enc: Encryption,
    /// May hand out personal column keys.
    personal: bool,
    /// Zeroized when the retriever goes (with the file's metadata); the copies Parquet
    /// asks for are plain `Vec`s by its API.
    keys: Mutex<HashMap<Vec<u8>, Zeroizing<Vec<u8>>>>,
}

impl KeyRetriever for Retriever {
    fn retrieve_key(&self, key_metadata: &[u8]) -> parquet::errors::Result<Vec<u8>> {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = keys.get(key_metadata) {
            return Ok(key.to_vec());
        }
        let key = Zeroizing::new(self.derive(key_metadata)?);
        let copy = key.to_vec();
        keys.insert(key_metadata.to_vec(), key);
        Ok(copy)
    }
}

impl Retriever {
    fn derive(&self, key_metadata: &[u8]) -> parquet::errors::Result<Vec<u8>> {
        let (personal, (project, id)) = match parse_prefixed(key_metadata, PARQUET_KEY_PREFIX) {
            Some(found) => (false, found),
            None => (
                true,
                parse_prefixed(key_metadata, PERSONAL_KEY_PREFIX).ok_or_else(|| {
                    ParquetError::General("segment key metadata is not Minim's".into())
                })?,
            ),
        };
        if personal && !self.personal {
            return Err(ParquetError::General(
                "the personal column's key is only loaded for readers with personal access".into(),
            ));
        }
        let what = format!("a segment of project {project}");
        let (_, key) = self
            .enc
            .parquet_key(&project, personal, Some(id), &what)
            .map_err(|e| ParquetError::General(e.to_string()))?;
        Ok(key.expose().to_vec())
    }
}
