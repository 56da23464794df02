//! Objects in a bucket of an S3-compatible service, through the `object_store` crate.
//!
//! The layout is the local store's (`<prefix>/<first two hex digits>/<remaining 62>`), the
//! bytes are the vault's ciphertext, and every read is re-hashed: the service is trusted with
//! availability only, never with confidentiality or integrity.

use async_trait::async_trait;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as StorePath;
use object_store::{ObjectStoreExt as _, PutPayload};

use super::{ObjectId, ObjectStore, ObjectStoreError};

/// Whether `location` names S3-compatible storage.
pub fn is_s3_url(location: &str) -> bool {
    location.starts_with("s3://")
}

#[derive(Debug)]
pub struct S3ObjectStore {
    store: object_store::aws::AmazonS3,
    prefix: String,
}

impl S3ObjectStore {
    /// `s3://bucket/prefix`, configured from the environment as the AWS tools are:
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, and for other services
    /// `AWS_ENDPOINT` (and `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint on a private
    /// network).
    pub fn from_env(location: &str) -> Result<Self, ObjectStoreError> {
        let config = |reason: String| ObjectStoreError::Config {
            location: location.to_owned(),
            reason,
        };
        let rest = location
            .strip_prefix("s3://")
            .ok_or_else(|| config("does not start with s3://".to_owned()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(config("names no bucket (s3://bucket/prefix)".to_owned()));
        }
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|err| config(err.to_string()))?;
        Ok(Self {
            store,
            prefix: prefix.trim_matches('/').to_owned(),
        })
    }

    fn key(&self, id: &ObjectId) -> StorePath {
        let hex = id.to_hex();
        let key = if self.prefix.is_empty() {
            format!("{}/{}", &hex[..2], &hex[2..])
        } else {
            format!("{}/{}/{}", self.prefix, &hex[..2], &hex[2..])
        };
        StorePath::from(key)
    }

    /// Writes raw bytes under `id`'s key, bypassing content addressing (tests tamper with
    /// objects this way, as they would with files).
    pub async fn overwrite(&self, id: &ObjectId, bytes: &[u8]) -> Result<(), ObjectStoreError> {
        let key = self.key(id);
        self.store
            .put(&key, PutPayload::from(bytes.to_vec()))
            .await
            .map(|_| ())
            .map_err(|source| remote(&key, source))
    }
}

fn remote(key: &StorePath, source: object_store::Error) -> ObjectStoreError {
    ObjectStoreError::Remote {
        key: key.to_string(),
        source,
    }
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn put(&self, bytes: &[u8]) -> Result<ObjectId, ObjectStoreError> {
        let id = ObjectId::of(bytes);
        if self.contains(&id).await? {
            return Ok(id);
        }
        // A PUT is atomic on S3: readers see the whole object or none. Two writers of the
        // same address write the same bytes.
        self.overwrite(&id, bytes).await?;
        Ok(id)
    }

    async fn get(&self, id: &ObjectId) -> Result<Vec<u8>, ObjectStoreError> {
        let key = self.key(id);
        let bytes = match self.store.get(&key).await {
            Ok(found) => found.bytes().await.map_err(|source| remote(&key, source))?,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(ObjectStoreError::NotFound(*id));
            }
            Err(source) => return Err(remote(&key, source)),
        };
        let actual = ObjectId::of(&bytes);
        if actual != *id {
            return Err(ObjectStoreError::Corrupt { id: *id, actual });
        }
        Ok(bytes.to_vec())
    }

    async fn contains(&self, id: &ObjectId) -> Result<bool, ObjectStoreError> {
        let key = self.key(id);
        match self.store.head(&key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(source) => Err(remote(&key, source)),
        }
    }

    async fn delete(&self, id: &ObjectId) -> Result<(), ObjectStoreError> {
        let key = self.key(id);
        match self.store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(remote(&key, source)),
        }
    }
}
