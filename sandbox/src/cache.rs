//! The compiled-artifact cache. Wasmtime artifacts are native code that `Module::deserialize`
//! trusts blindly, so a cache file is only ever loaded if it carries an HMAC-SHA256 tag made
//! with this host's secret key over the artifact *and* its identity (module hash, engine
//! compatibility hash): a file planted, altered or renamed by anyone else is ignored and
//! deleted.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const TAG_BYTES: usize = 32;
const DOMAIN: &[u8] = b"medarena-sandbox-artifact-v1\0";

/// The secret that authenticates cache files. Keep it out of the cache directory.
#[derive(Clone)]
pub struct CacheKey([u8; 32]);

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheKey(..)")
    }
}

impl CacheKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        CacheKey(bytes)
    }

    /// A fresh key from the OS (cache files then live as long as the key is kept).
    pub fn random() -> io::Result<Self> {
        let mut bytes = [0; 32];
        fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        Ok(CacheKey(bytes))
    }
}

/// A directory of authenticated artifacts, named `<module sha256>-<engine hash>.cwasm`.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: PathBuf,
    key: CacheKey,
}

impl ArtifactCache {
    pub fn new(dir: impl Into<PathBuf>, key: CacheKey) -> io::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(ArtifactCache { dir, key })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, module_sha256: &str, engine_hash: &str) -> PathBuf {
        self.dir
            .join(format!("{module_sha256}-{engine_hash}.cwasm"))
    }

    fn mac(&self, module_sha256: &str, engine_hash: &str, artifact: &[u8]) -> HmacSha256 {
        // A 32-byte key is always a valid HMAC key.
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(&self.key.0).unwrap_or_else(|_| unreachable!());
        mac.update(DOMAIN);
        mac.update(module_sha256.as_bytes());
        mac.update(b"\0");
        mac.update(engine_hash.as_bytes());
        mac.update(b"\0");
        mac.update(artifact);
        mac
    }

    /// The authenticated artifact, or `None` (missing, unreadable or forged: then deleted).
    pub fn load(&self, module_sha256: &str, engine_hash: &str) -> Option<Vec<u8>> {
        let path = self.path(module_sha256, engine_hash);
        let mut file = fs::read(&path).ok()?;
        if file.len() < TAG_BYTES {
            let _ = fs::remove_file(&path);
            return None;
        }
        let artifact = file.split_off(TAG_BYTES);
        match self
            .mac(module_sha256, engine_hash, &artifact)
            .verify_slice(&file)
        {
            Ok(()) => Some(artifact),
            Err(_) => {
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores an artifact atomically (temporary file, then rename).
    pub fn store(&self, module_sha256: &str, engine_hash: &str, artifact: &[u8]) -> io::Result<()> {
        let tag = self
            .mac(module_sha256, engine_hash, artifact)
            .finalize()
            .into_bytes();
        let path = self.path(module_sha256, engine_hash);
        let temporary = path.with_extension(format!("tmp{}", std::process::id()));
        let mut file = fs::File::create(&temporary)?;
        file.write_all(&tag)?;
        file.write_all(artifact)?;
        file.sync_all()?;
        fs::rename(&temporary, &path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_and_renamed_artifacts_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::new(dir.path(), CacheKey::from_bytes([7; 32])).unwrap();
        cache.store("aa", "e1", b"native code").unwrap();
        assert_eq!(cache.load("aa", "e1").as_deref(), Some(&b"native code"[..]));
        // Another engine hash or module: not found.
        assert_eq!(cache.load("aa", "e2"), None);
        // Renamed to another module's name: the tag binds the identity, so it is refused.
        fs::copy(
            dir.path().join("aa-e1.cwasm"),
            dir.path().join("bb-e1.cwasm"),
        )
        .unwrap();
        assert_eq!(cache.load("bb", "e1"), None);
        assert!(
            !dir.path().join("bb-e1.cwasm").exists(),
            "a forged file is deleted"
        );
        // Written with another key: refused.
        let other = ArtifactCache::new(dir.path(), CacheKey::from_bytes([8; 32])).unwrap();
        assert_eq!(other.load("aa", "e1"), None);
        // Tampered bytes: refused.
        cache.store("cc", "e1", b"native code").unwrap();
        let path = dir.path().join("cc-e1.cwasm");
        let mut bytes = fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        fs::write(&path, bytes).unwrap();
        assert_eq!(cache.load("cc", "e1"), None);
    }
}
