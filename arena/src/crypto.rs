//! Encryption at rest: a key hierarchy of one master key and one data key per scope
//! (a dataset, a team's submissions).
//!
//! - The **master key** (32 bytes) comes from configuration: a hex string (e.g. from the
//!   environment) or a key file, generated on first start with mode 0600 when absent. It only
//!   ever wraps data keys.
//! - A **data key** (32 bytes, random) encrypts the objects of one scope. It is stored in SQL
//!   wrapped (encrypted) by the master key, bound to its scope as associated data, so a
//!   wrapped key copied to another scope's row does not open.
//! - The cipher is XChaCha20-Poly1305 (RustCrypto `chacha20poly1305`): its 192-bit random
//!   nonces make nonce reuse negligible without a counter to persist. Every sealed blob is
//!   `MAGIC (4) || nonce (24) || ciphertext || tag (16)`; the associated data names what the
//!   blob is (scope and purpose), so ciphertext moved between scopes fails to open.

use std::io::Write;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::Zeroizing;

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// What the worker token is derived for ([`MasterKey::worker_token`]).
const WORKER_TOKEN_PURPOSE: &str = "medarena/worker-token/v1";
/// Format tag of a sealed blob: "medarena encrypted, version 1".
const MAGIC: &[u8; 4] = b"MDE1";

/// What can go wrong with keys and sealed blobs. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("sealed data is malformed: {0}")]
    Malformed(&'static str),
    #[error("decryption failed: wrong key, wrong scope or tampered data")]
    Tampered,
    #[error("encryption failed")]
    Encrypt,
    #[error("master key {origin}: {problem}")]
    BadMasterKey { origin: String, problem: String },
    #[error("master key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where the master key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    /// A key file holding 64 hex digits; created (mode 0600) when absent.
    File(PathBuf),
    /// 64 hex digits given directly (e.g. `MEDARENA_MASTER_KEY`); never written to disk.
    Hex(String),
}

/// The key that wraps every data key. Zeroed on drop.
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        OsRng.fill_bytes(key.as_mut());
        Self(key)
    }

    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Parses 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str, origin: &str) -> Result<Self, CryptoError> {
        let bad = |problem: &str| CryptoError::BadMasterKey {
            origin: origin.to_owned(),
            problem: problem.to_owned(),
        };
        let decoded = Zeroizing::new(
            hex::decode(text.trim()).map_err(|_| bad("expected 64 hexadecimal digits"))?,
        );
        let bytes: [u8; KEY_LEN] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| bad("expected 64 hexadecimal digits (32 bytes)"))?;
        Ok(Self::from_bytes(bytes))
    }

    /// Resolves a [`MasterKeySource`]; a missing key file is created.
    pub fn load(source: &MasterKeySource) -> Result<Self, CryptoError> {
        match source {
            MasterKeySource::Hex(text) => Self::from_hex(text, "from configuration"),
            MasterKeySource::File(path) => Self::load_or_create_file(path),
        }
    }

    /// Reads the key file, or creates it with a fresh key (mode 0600, refusing to overwrite a
    /// file that appears concurrently).
    pub fn load_or_create_file(path: &Path) -> Result<Self, CryptoError> {
        let io_err = |source| CryptoError::KeyFile {
            path: path.to_owned(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                warn_if_readable_by_others(path);
                return Self::from_hex(&text, &format!("in {}", path.display()));
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(io_err(err)),
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_err)?;
        }
        let key = Self::generate();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(path) {
            Ok(mut file) => {
                let text = Zeroizing::new(format!("{}\n", hex::encode(key.0.as_ref())));
                file.write_all(text.as_bytes()).map_err(io_err)?;
                file.sync_all().map_err(io_err)?;
                tracing::info!(path = %path.display(), "generated a new master key");
                Ok(key)
            }
            // Another process created it between our read and our create: use theirs.
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(path).map_err(io_err)?;
                Self::from_hex(&text, &format!("in {}", path.display()))
            }
            Err(err) => Err(io_err(err)),
        }
    }

    /// A key for another purpose, derived with HMAC-SHA256 (as HKDF-Expand does for one
    /// block): independent of the master key for anyone without it, never stored.
    pub fn derive_key(&self, purpose: &str) -> [u8; KEY_LEN] {
        derive_from_secret(self.0.as_slice(), purpose)
    }

    /// The bearer token worker hosts present to the key service
    /// ([`crate::key_client`]). Derived, so every server host agrees on it and none stores
    /// it; rotating the master key changes it.
    pub fn worker_token(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.derive_key(WORKER_TOKEN_PURPOSE)))
    }

    /// Encrypts a data key for storage, bound to `scope`.
    pub fn wrap(&self, key: &DataKey, scope: &str) -> Result<Vec<u8>, CryptoError> {
        seal_with(&self.0, key.0.as_ref(), &wrap_aad(scope))
    }

    /// Decrypts a wrapped data key; fails if it was wrapped for another scope or altered.
    pub fn unwrap(&self, wrapped: &[u8], scope: &str) -> Result<DataKey, CryptoError> {
        let plain = Zeroizing::new(open_with(&self.0, wrapped, &wrap_aad(scope))?);
        let bytes: [u8; KEY_LEN] = plain
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Malformed("wrapped key has the wrong length"))?;
        Ok(DataKey(Zeroizing::new(bytes)))
    }
}

/// A key for `purpose` derived from `secret` with HMAC-SHA256 (HKDF-Expand's first block).
pub fn derive_from_secret(secret: &[u8], purpose: &str) -> [u8; KEY_LEN] {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(purpose.as_bytes());
    mac.update(&[1]);
    mac.finalize().into_bytes().into()
}

fn wrap_aad(scope: &str) -> Vec<u8> {
    format!("medarena/data-key/v1|{scope}").into_bytes()
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", meta.permissions().mode() & 0o777),
            "master key file is readable by group or others; chmod 600 it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// A per-scope data key. Zeroed on drop.
pub struct DataKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        OsRng.fill_bytes(key.as_mut());
        Self(key)
    }

    /// Encrypts `plaintext`; `aad` must be given again to open it.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal_with(&self.0, plaintext, aad)
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        open_with(&self.0, sealed, aad)
    }

    /// The key as 64 hex digits, for the key service's answer to a worker host (see
    /// [`crate::vault::KeyBroker`]); zeroed when dropped.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.as_slice()))
    }

    /// Parses [`DataKey::to_hex`]'s form.
    pub fn from_hex(text: &str) -> Result<Self, CryptoError> {
        let decoded = Zeroizing::new(
            hex::decode(text.trim()).map_err(|_| CryptoError::Malformed("data key is not hex"))?,
        );
        let bytes: [u8; KEY_LEN] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Malformed("data key has the wrong length"))?;
        Ok(Self(Zeroizing::new(bytes)))
    }
}

fn seal_with(key: &[u8; KEY_LEN], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let ciphertext = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| CryptoError::Encrypt)?;
    let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + ciphertext.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

fn open_with(key: &[u8; KEY_LEN], sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let rest = sealed
        .strip_prefix(MAGIC.as_slice())
        .ok_or(CryptoError::Malformed("missing format tag"))?;
    if rest.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Malformed("too short"));
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let cipher = XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| CryptoError::Tampered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip() {
        let key = DataKey::generate();
        let sealed = key
            .seal(b"age,event\n61,1\n", b"scope-a")
            .unwrap_or_default();
        assert!(sealed.starts_with(MAGIC));
        let plaintext: &[u8] = b"age,event\n61,1\n";
        assert!(!sealed.windows(plaintext.len()).any(|w| w == plaintext));
        assert_eq!(
            key.open(&sealed, b"scope-a").ok(),
            Some(b"age,event\n61,1\n".to_vec())
        );
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let key = DataKey::generate();
        let sealed = key.seal(b"hidden labels", b"aad").unwrap_or_default();
        for index in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[index] ^= 0x01;
            assert!(
                key.open(&tampered, b"aad").is_err(),
                "flip at {index} went unnoticed"
            );
        }
    }

    #[test]
    fn wrong_aad_or_key_fails() {
        let key = DataKey::generate();
        let sealed = key.seal(b"x", b"dataset:1").unwrap_or_default();
        assert!(matches!(
            key.open(&sealed, b"dataset:2"),
            Err(CryptoError::Tampered)
        ));
        assert!(matches!(
            DataKey::generate().open(&sealed, b"dataset:1"),
            Err(CryptoError::Tampered)
        ));
        assert!(matches!(
            key.open(b"MDE1short", b""),
            Err(CryptoError::Malformed(_))
        ));
        assert!(matches!(key.open(b"", b""), Err(CryptoError::Malformed(_))));
    }

    #[test]
    fn wrapped_keys_are_bound_to_their_scope() {
        let master = MasterKey::generate();
        let data = DataKey::generate();
        let wrapped = master.wrap(&data, "dataset:7").unwrap_or_default();
        let unwrapped = master.unwrap(&wrapped, "dataset:7");
        let sealed = data.seal(b"payload", b"").unwrap_or_default();
        assert_eq!(
            unwrapped.ok().and_then(|k| k.open(&sealed, b"").ok()),
            Some(b"payload".to_vec())
        );
        assert!(master.unwrap(&wrapped, "dataset:8").is_err());
        assert!(MasterKey::generate().unwrap(&wrapped, "dataset:7").is_err());
    }

    #[test]
    fn key_file_is_created_once_with_private_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys/master.key");
        let first = MasterKey::load_or_create_file(&path).expect("create");
        let second = MasterKey::load_or_create_file(&path).expect("load");
        assert_eq!(first.0.as_ref(), second.0.as_ref());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn bad_hex_names_its_origin() {
        let err = MasterKey::from_hex("abc", "in MEDARENA_MASTER_KEY").unwrap_err();
        assert!(err.to_string().contains("MEDARENA_MASTER_KEY"), "{err}");
        assert!(MasterKey::from_hex(&"ab".repeat(32), "x").is_ok());
        assert!(MasterKey::from_hex(&"ab".repeat(33), "x").is_err());
    }
}
