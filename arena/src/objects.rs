//! The object store: immutable blobs addressed by the SHA-256 of their bytes.
//!
//! The store sees only ciphertext (the [`crate::vault`] encrypts before `put`), so its
//! address is the hash of the stored bytes, and every `get` re-hashes what it read: a file
//! altered or swapped on disk is reported as corrupt before decryption is even tried.
//! [`LocalObjectStore`] keeps one file per object under a directory (the embedded default);
//! [`S3ObjectStore`] keeps them in a bucket of any S3-compatible service, for deployments whose
//! servers and workers share no file system. [`open`] picks one from a location.

use std::path::{Path, PathBuf};
use std::sync::Arc;

mod s3;
pub use s3::{S3ObjectStore, is_s3_url};

use async_trait::async_trait;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The SHA-256 of an object's bytes; printed and stored as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId([u8; 32]);

impl ObjectId {
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Result<Self, ObjectStoreError> {
        let bad = || ObjectStoreError::BadId(text.chars().take(80).collect());
        if text.len() != 64
            || !text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad());
        }
        let bytes = hex::decode(text).map_err(|_| bad())?;
        bytes.try_into().map(Self).map_err(|_| bad())
    }
}

impl std::fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ObjectId({})", self.to_hex())
    }
}

impl std::fmt::Display for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// 64 lowercase hex digits, as serialized.
impl schemars::JsonSchema for ObjectId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ObjectId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "pattern": "^[0-9a-f]{64}$" })
    }
}

impl Serialize for ObjectId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ObjectId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ObjectStoreError {
    #[error("object {0} not found")]
    NotFound(ObjectId),
    #[error("object {id} is corrupt: its bytes hash to {actual}")]
    Corrupt { id: ObjectId, actual: ObjectId },
    #[error("`{0}` is not an object id (64 lowercase hex digits)")]
    BadId(String),
    #[error("object store I/O at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The S3-compatible service refused or failed a request about `key`.
    #[error("object storage at {key}: {source}")]
    Remote {
        key: String,
        #[source]
        source: object_store::Error,
    },
    /// An `s3://` location or its environment is not usable.
    #[error("object storage {location}: {reason}")]
    Config { location: String, reason: String },
}

/// Opens the object store a location names: `s3://bucket/prefix` for [`S3ObjectStore`]
/// (endpoint, region and credentials from the `AWS_*` environment), anything else a
/// directory for [`LocalObjectStore`].
pub fn open(location: &str) -> Result<Arc<dyn ObjectStore>, ObjectStoreError> {
    if is_s3_url(location) {
        Ok(Arc::new(S3ObjectStore::from_env(location)?))
    } else {
        Ok(Arc::new(LocalObjectStore::open(location)?))
    }
}

/// Immutable, content-addressed blob storage.
#[async_trait]
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    /// Stores `bytes` and returns their address; storing the same bytes twice is a no-op.
    async fn put(&self, bytes: &[u8]) -> Result<ObjectId, ObjectStoreError>;
    /// Reads an object back, verifying that its bytes still hash to `id`.
    async fn get(&self, id: &ObjectId) -> Result<Vec<u8>, ObjectStoreError>;
    async fn contains(&self, id: &ObjectId) -> Result<bool, ObjectStoreError>;
    /// Removes an object; removing a missing object is not an error.
    async fn delete(&self, id: &ObjectId) -> Result<(), ObjectStoreError>;
}

/// Objects as files: `<root>/<first two hex digits>/<remaining 62>`, written atomically
/// (temporary file, fsync, rename, fsync of the directory) so a crash leaves either the whole
/// object or nothing.
#[derive(Debug, Clone)]
pub struct LocalObjectStore {
    root: PathBuf,
}

impl LocalObjectStore {
    /// Opens (creating when needed) a store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, ObjectStoreError> {
        let root = root.into();
        let tmp = root.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|source| ObjectStoreError::Io {
            path: tmp.clone(),
            source,
        })?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where an object lives on disk (tests use it to tamper with files).
    pub fn path_of(&self, id: &ObjectId) -> PathBuf {
        let hex = id.to_hex();
        self.root.join(&hex[..2]).join(&hex[2..])
    }

    /// Every object stored here (for copying them to another store).
    pub fn ids(&self) -> Result<Vec<ObjectId>, ObjectStoreError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ObjectStoreError::Io { path, source }
        };
        let mut ids = Vec::new();
        for shard in std::fs::read_dir(&self.root).map_err(io(&self.root))? {
            let shard = shard.map_err(io(&self.root))?;
            let name = shard.file_name().to_string_lossy().into_owned();
            if name.len() != 2 || !shard.path().is_dir() {
                continue; // tmp/, or anything that is not a shard
            }
            for object in std::fs::read_dir(shard.path()).map_err(io(&shard.path()))? {
                let object = object.map_err(io(&shard.path()))?;
                let rest = object.file_name().to_string_lossy().into_owned();
                if let Ok(id) = ObjectId::from_hex(&format!("{name}{rest}")) {
                    ids.push(id);
                }
            }
        }
        ids.sort();
        Ok(ids)
    }

    fn put_blocking(&self, bytes: &[u8]) -> Result<ObjectId, ObjectStoreError> {
        use std::io::Write;
        let id = ObjectId::of(bytes);
        let path = self.path_of(&id);
        if path.exists() {
            return Ok(id);
        }
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ObjectStoreError::Io { path, source }
        };
        let dir = path
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| self.root.clone());
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let mut suffix = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut suffix);
        let tmp = self
            .root
            .join("tmp")
            .join(format!("{}.{}", id.to_hex(), hex::encode(suffix)));
        let result = (|| {
            let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
            file.write_all(bytes).map_err(io(&tmp))?;
            file.sync_all().map_err(io(&tmp))?;
            std::fs::rename(&tmp, &path).map_err(io(&path))?;
            // The rename is durable only once the directory entry is.
            std::fs::File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(io(&dir))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map(|()| id)
    }

    fn get_blocking(&self, id: &ObjectId) -> Result<Vec<u8>, ObjectStoreError> {
        let path = self.path_of(id);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(ObjectStoreError::NotFound(*id));
            }
            Err(source) => return Err(ObjectStoreError::Io { path, source }),
        };
        let actual = ObjectId::of(&bytes);
        if actual != *id {
            return Err(ObjectStoreError::Corrupt { id: *id, actual });
        }
        Ok(bytes)
    }
}

/// File system calls block; they run on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ObjectStoreError> + Send + 'static,
) -> Result<T, ObjectStoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|join| {
            Err(ObjectStoreError::Io {
                path: PathBuf::new(),
                source: std::io::Error::other(join.to_string()),
            })
        })
}

#[async_trait]
impl ObjectStore for LocalObjectStore {
    async fn put(&self, bytes: &[u8]) -> Result<ObjectId, ObjectStoreError> {
        let store = self.clone();
        let bytes = bytes.to_vec();
        blocking(move || store.put_blocking(&bytes)).await
    }

    async fn get(&self, id: &ObjectId) -> Result<Vec<u8>, ObjectStoreError> {
        let store = self.clone();
        let id = *id;
        blocking(move || store.get_blocking(&id)).await
    }

    async fn contains(&self, id: &ObjectId) -> Result<bool, ObjectStoreError> {
        let path = self.path_of(id);
        blocking(move || Ok(path.exists())).await
    }

    async fn delete(&self, id: &ObjectId) -> Result<(), ObjectStoreError> {
        let path = self.path_of(id);
        blocking(move || match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(ObjectStoreError::Io { path, source }),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn content_addressing_and_integrity() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalObjectStore::open(dir.path()).expect("open");
        let id = store.put(b"hello").await.expect("put");
        assert_eq!(
            id.to_hex(),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(store.put(b"hello").await.expect("put again"), id);
        assert_eq!(store.get(&id).await.expect("get"), b"hello");
        assert!(store.contains(&id).await.expect("contains"));

        std::fs::write(store.path_of(&id), b"jello").expect("tamper");
        assert!(matches!(
            store.get(&id).await,
            Err(ObjectStoreError::Corrupt { .. })
        ));

        store.delete(&id).await.expect("delete");
        store.delete(&id).await.expect("delete twice");
        assert!(matches!(
            store.get(&id).await,
            Err(ObjectStoreError::NotFound(_))
        ));
        // No temporary files are left behind.
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp"))
                .expect("tmp")
                .count(),
            0
        );
    }

    #[test]
    fn object_ids_parse_only_canonical_hex() {
        let id = ObjectId::of(b"x");
        assert_eq!(ObjectId::from_hex(&id.to_hex()).ok(), Some(id));
        assert!(ObjectId::from_hex(&id.to_hex().to_uppercase()).is_err());
        assert!(ObjectId::from_hex("../../etc/passwd").is_err());
        assert!(ObjectId::from_hex("").is_err());
    }
}
