//! Encrypted, content-addressed storage of uploads and modules: the [`crate::crypto`] key
//! hierarchy on top of an [`ObjectStore`].
//!
//! Each object is sealed with its scope's data key; the associated data binds the scope and
//! the plaintext's SHA-256, so a blob copied to another scope, or swapped for another blob of
//! the same scope, fails to open. Reads check the object's address (ciphertext hash), the
//! AEAD tag and finally the plaintext digest.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::crypto::{CryptoError, DataKey, MasterKey};
use crate::ids::{DatasetId, JobId, OrgId};
use crate::objects::{ObjectId, ObjectStore, ObjectStoreError};
use crate::store::{KeyRepo, StoreError};
use crate::time::Clock;

/// Whose data key encrypts an object.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyScope {
    /// Contributions to a dataset uploaded before per-upload keys.
    Dataset(DatasetId),
    /// One upload (a random id): destroying its key makes that contribution unreadable
    /// without touching any other, which is how a hospital withdraws it.
    Upload(String),
    /// Every module a team submits.
    Team(OrgId),
}

impl KeyScope {
    /// A fresh upload scope.
    pub fn new_upload() -> KeyScope {
        let mut id = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
        KeyScope::Upload(hex::encode(id))
    }

    /// An upload scope as stored (`upload:<hex>`), or `None` for anything else.
    pub fn parse_upload(text: &str) -> Option<KeyScope> {
        let id = text.strip_prefix("upload:")?;
        (!id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| KeyScope::Upload(id.to_owned()))
    }
}

impl std::fmt::Display for KeyScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyScope::Dataset(id) => write!(f, "dataset:{}", id.0),
            KeyScope::Upload(id) => write!(f, "upload:{id}"),
            KeyScope::Team(id) => write!(f, "team:{}", id.0),
        }
    }
}

/// Where a sealed object went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedObject {
    pub object: ObjectId,
    /// SHA-256 (hex) of the plaintext.
    pub content_sha256: String,
    pub size_bytes: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Objects(#[from] ObjectStoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The scope's data key does not exist (never made, or destroyed by a withdrawal).
    #[error("the data key of {0} is destroyed: its objects cannot be read")]
    KeyDestroyed(String),
    /// Work that needs the master key, asked of a host that has none (a worker host).
    #[error("{0} needs the master key, which this host does not hold (it is a worker host)")]
    NoMasterKey(&'static str),
    /// The key service refused or could not answer.
    #[error("the key service: {0}")]
    KeyService(String),
    #[error("object {object} decrypted to content with digest {actual}, expected {expected}")]
    DigestMismatch {
        object: ObjectId,
        expected: String,
        actual: String,
    },
}

/// A job claimed by a worker: the key service grants the data keys of that job's inputs to
/// whoever holds its lease, and nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLease {
    pub job: JobId,
    /// The claim's fencing token ([`crate::store::ClaimRequest::lease_token`]).
    pub token: String,
}

/// Opens data keys on a host that holds no master key (a worker host): asks the key service
/// of a server host, which unwraps the key only for a scope the leased job reads
/// ([`crate::Arena::grant_data_key`]).
#[async_trait::async_trait]
pub trait KeyBroker: Send + Sync + std::fmt::Debug {
    async fn data_key(&self, lease: &JobLease, scope: &KeyScope) -> Result<DataKey, VaultError>;

    /// The key that authenticates this host's compiled-module cache (it never leaves it).
    fn cache_key(&self) -> [u8; 32];
}

/// Who opens wrapped data keys here.
enum Custody {
    /// A server host: the master key unwraps any scope's key.
    Master(MasterKey),
    /// A worker host: keys come from the key service, one leased job at a time.
    Broker(Arc<dyn KeyBroker>),
}

/// Seals and opens objects. Shared by the arena and the run inputs.
pub struct Vault {
    custody: Custody,
    objects: Arc<dyn ObjectStore>,
    keys: Arc<dyn KeyRepo>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("objects", &self.objects)
            .finish_non_exhaustive()
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A fresh random salt for [`commitment`] (32 bytes, hex).
pub fn commitment_salt() -> String {
    let mut salt = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
    hex::encode(salt)
}

/// The hiding commitment to a digest that the public ledger carries instead of the digest:
/// `SHA-256("medarena/commitment/v1" ‖ 0x00 ‖ salt ‖ digest)` over the hex texts. The salt
/// goes only to the contributing hospital (and organizers), who can check their receipt;
/// without it, nobody can test a guess of a file or of its validation report against the
/// ledger (a plain digest of a report, whose counts are easy to guess, would confirm them).
pub fn commitment(salt_hex: &str, digest_hex: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"medarena/commitment/v1\0");
    hasher.update(salt_hex.as_bytes());
    hasher.update(digest_hex.as_bytes());
    hex::encode(hasher.finalize())
}

fn object_aad(scope: &KeyScope, content_sha256: &str) -> Vec<u8> {
    format!("medarena/object/v1|{scope}|{content_sha256}").into_bytes()
}

impl Vault {
    pub fn new(
        master: MasterKey,
        objects: Arc<dyn ObjectStore>,
        keys: Arc<dyn KeyRepo>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::with_custody(Custody::Master(master), objects, keys, clock)
    }

    /// A worker host's vault: it reads only what the key service grants its leased jobs,
    /// and seals nothing.
    pub fn with_broker(
        broker: Arc<dyn KeyBroker>,
        objects: Arc<dyn ObjectStore>,
        keys: Arc<dyn KeyRepo>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::with_custody(Custody::Broker(broker), objects, keys, clock)
    }

    fn with_custody(
        custody: Custody,
        objects: Arc<dyn ObjectStore>,
        keys: Arc<dyn KeyRepo>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            custody,
            objects,
            keys,
            clock,
        }
    }

    fn master(&self, work: &'static str) -> Result<&MasterKey, VaultError> {
        match &self.custody {
            Custody::Master(master) => Ok(master),
            Custody::Broker(_) => Err(VaultError::NoMasterKey(work)),
        }
    }

    /// The master key; `None` on a worker host.
    pub fn master_key(&self) -> Option<&MasterKey> {
        match &self.custody {
            Custody::Master(master) => Some(master),
            Custody::Broker(_) => None,
        }
    }

    pub fn objects(&self) -> &Arc<dyn ObjectStore> {
        &self.objects
    }

    /// The scope's data key, created and stored (wrapped) on first use. Concurrent first uses
    /// agree on one key: the store keeps the first insert and returns it to both.
    async fn data_key(&self, scope: &KeyScope) -> Result<DataKey, VaultError> {
        let master = self.master("sealing an object")?;
        let scope_text = scope.to_string();
        let wrapped = match self.keys.data_key(&scope_text).await? {
            Some(wrapped) => wrapped,
            None => {
                let fresh = master.wrap(&DataKey::generate(), &scope_text)?;
                self.keys
                    .insert_data_key(&scope_text, &fresh, self.clock.now())
                    .await?
            }
        };
        Ok(master.unwrap(&wrapped, &scope_text)?)
    }

    /// The existing data key of `scope`, unwrapped with the master key. Reading never makes
    /// a key: a missing one was destroyed (or never existed).
    pub async fn existing_data_key(&self, scope: &KeyScope) -> Result<DataKey, VaultError> {
        let master = self.master("opening a data key")?;
        let scope_text = scope.to_string();
        let wrapped = self
            .keys
            .data_key(&scope_text)
            .await?
            .ok_or_else(|| VaultError::KeyDestroyed(scope_text.clone()))?;
        Ok(master.unwrap(&wrapped, &scope_text)?)
    }

    /// Encrypts and stores `plaintext` under `scope`.
    pub async fn put(
        &self,
        scope: &KeyScope,
        plaintext: &[u8],
    ) -> Result<SealedObject, VaultError> {
        let content_sha256 = sha256_hex(plaintext);
        let key = self.data_key(scope).await?;
        let sealed = key.seal(plaintext, &object_aad(scope, &content_sha256))?;
        let object = self.objects.put(&sealed).await?;
        Ok(SealedObject {
            object,
            content_sha256,
            size_bytes: i64::try_from(plaintext.len()).unwrap_or(i64::MAX),
        })
    }

    /// Reads, authenticates and decrypts an object; the plaintext must hash to
    /// `content_sha256`.
    pub async fn get(
        &self,
        scope: &KeyScope,
        object: &ObjectId,
        content_sha256: &str,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let key = self.existing_data_key(scope).await?;
        self.open_object(&key, scope, object, content_sha256).await
    }

    /// [`Vault::get`] for a run's input: on a worker host the key service grants the key
    /// against the job's lease.
    pub async fn get_for_job(
        &self,
        lease: &JobLease,
        scope: &KeyScope,
        object: &ObjectId,
        content_sha256: &str,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let key = match &self.custody {
            Custody::Master(_) => self.existing_data_key(scope).await?,
            Custody::Broker(broker) => broker.data_key(lease, scope).await?,
        };
        self.open_object(&key, scope, object, content_sha256).await
    }

    async fn open_object(
        &self,
        key: &DataKey,
        scope: &KeyScope,
        object: &ObjectId,
        content_sha256: &str,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let sealed = self.objects.get(object).await?;
        let plaintext = Zeroizing::new(key.open(&sealed, &object_aad(scope, content_sha256))?);
        let actual = sha256_hex(&plaintext);
        if actual != content_sha256 {
            return Err(VaultError::DigestMismatch {
                object: *object,
                expected: content_sha256.to_owned(),
                actual,
            });
        }
        Ok(plaintext)
    }

    pub async fn delete(&self, object: &ObjectId) -> Result<(), VaultError> {
        Ok(self.objects.delete(object).await?)
    }
}
