//! Signed checkpoints (C2SP tlog-checkpoint in a C2SP signed note) and the log's key.
//!
//! A checkpoint commits to the whole log: its origin (the log's name), its size and its
//! root hash, signed with the log's Ed25519 key:
//!
//! ```text
//! medarena.example/ledger
//! 1204
//! 0bH3XuPa0V3S8rXnQ4tT4Sl0mB1Pj0pVd2RkY5m4r3Q=
//!
//! — medarena.example/ledger Az3grn...base64(key id || signature)...
//! ```
//!
//! The body is three lines (origin, decimal size, base64 root); the signature line is an
//! em dash, a space, the key name, a space, and base64 of the 4-byte key ID followed by
//! the 64-byte Ed25519 signature of the body. The key ID is the first four bytes of
//! `SHA-256(name || 0x0A || 0x01 || public key)`. The public key is published as a note
//! verifier key, `name+keyid+base64(0x01 || public key)`; the private key is stored in
//! the Go `note` signer format, `PRIVATE+KEY+name+keyid+base64(0x01 || seed)`. The note
//! code is `signed_note` and the checkpoint code `tlog_tiles` (Cloudflare's ports of Go's
//! `sumdb/note` and `sumdb/tlog`), so Go tooling reads and writes the same bytes.
//!
//! The same key signs other notes for the platform (certificates: [`LogSigner::sign_note`],
//! [`verify_note`]), whose first line holds a space and so can never be read as a
//! checkpoint's origin, nor a checkpoint as one of them.

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use signed_note::{Note, StandardSigner, StandardVerifier, VerifierList};

use crate::Hash;

/// The private key file in a ledger's data directory.
pub const SIGNING_KEY_FILE: &str = "ledger-signing.key";
/// The public verifier key file, published next to the checkpoints.
pub const VERIFIER_KEY_FILE: &str = "ledger.pub";

/// Problems with keys and their files.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("`{0}` cannot name a log: it must be non-empty, without spaces or `+`")]
    BadOrigin(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a note signer key (`PRIVATE+KEY+name+id+key`): {reason}")]
    BadSigningKey { path: PathBuf, reason: String },
    #[error("not a note verifier key (`name+id+key`): `{text}`: {reason}")]
    BadVerifierKey { text: String, reason: String },
    #[error(
        "the key in {path} is for log `{found}`, not `{expected}`: use the origin the ledger was created with"
    )]
    OriginMismatch {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("{path} holds `{found}` but the signing key's public key is `{expected}`")]
    PublicKeyMismatch {
        path: PathBuf,
        found: String,
        expected: String,
    },
}

/// Why a checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("not a signed note: {0}")]
    MalformedNote(String),
    #[error("the checkpoint carries no signature by key `{key}` (signed by: {signers})")]
    NotSignedByKey { key: String, signers: String },
    #[error(
        "the signature by key `{key}` does not match the checkpoint text: it was altered or forged"
    )]
    BadSignature { key: String },
    #[error("the signed text is not a tlog checkpoint (origin, size, base64 root hash lines)")]
    MalformedBody,
    #[error("the checkpoint is for log `{found}`, but the key is for log `{expected}`")]
    WrongOrigin { found: String, expected: String },
}

/// A public key that checks checkpoint signatures, in note verifier key form.
#[derive(Clone)]
pub struct VerifierKey {
    text: String,
    verifier: StandardVerifier,
}

impl VerifierKey {
    /// Reads `name+keyid+base64key` (surrounding white space ignored).
    pub fn parse(text: &str) -> Result<VerifierKey, KeyError> {
        let text = text.trim();
        let verifier = StandardVerifier::new(text).map_err(|error| KeyError::BadVerifierKey {
            text: text.to_owned(),
            reason: error.to_string(),
        })?;
        Ok(VerifierKey {
            text: text.to_owned(),
            verifier,
        })
    }

    /// The key name, which is the origin of the log's checkpoints.
    pub fn name(&self) -> &str {
        signed_note::Verifier::name(&self.verifier)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifierKey({})", self.text)
    }
}

impl PartialEq for VerifierKey {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

/// The unsigned content of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The checkpoint body: `origin\nsize\nbase64 root\n`.
    pub fn body(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, self.root)
    }
}

/// A checkpoint with its signed-note text, whose signature has been made or checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    checkpoint: Checkpoint,
    note: String,
}

impl SignedCheckpoint {
    /// Parses a signed note and checks it carries a valid signature by `key` over a
    /// checkpoint of `key`'s log. Signatures by other keys (witnesses) are ignored.
    pub fn verify(note_text: &str, key: &VerifierKey) -> Result<SignedCheckpoint, CheckpointError> {
        let note = Note::from_bytes(note_text.as_bytes())
            .map_err(|error| CheckpointError::MalformedNote(error.to_string()))?;
        let known = VerifierList::new(vec![Box::new(key.verifier.clone())]);
        if let Err(error) = note.verify(&known) {
            return Err(match error {
                signed_note::NoteError::InvalidSignature { .. } => CheckpointError::BadSignature {
                    key: key.as_str().to_owned(),
                },
                signed_note::NoteError::UnverifiedNote => CheckpointError::NotSignedByKey {
                    key: key.as_str().to_owned(),
                    signers: signer_names(note_text),
                },
                other => CheckpointError::MalformedNote(other.to_string()),
            });
        }
        let body = tlog_tiles::Checkpoint::from_bytes(note.text())
            .map_err(|_| CheckpointError::MalformedBody)?;
        if body.origin() != key.name() {
            return Err(CheckpointError::WrongOrigin {
                found: body.origin().to_owned(),
                expected: key.name().to_owned(),
            });
        }
        Ok(SignedCheckpoint {
            checkpoint: Checkpoint {
                origin: body.origin().to_owned(),
                size: body.size(),
                root: (*body.hash()).into(),
            },
            note: note_text.to_owned(),
        })
    }

    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    pub fn origin(&self) -> &str {
        &self.checkpoint.origin
    }

    pub fn size(&self) -> u64 {
        self.checkpoint.size
    }

    pub fn root(&self) -> Hash {
        self.checkpoint.root
    }

    /// The signed note, as published at `GET /api/ledger/checkpoint`.
    pub fn text(&self) -> &str {
        &self.note
    }
}

fn signer_names(note_text: &str) -> String {
    let names: Vec<&str> = note_text
        .lines()
        .filter_map(|line| line.strip_prefix("— "))
        .filter_map(|rest| rest.split(' ').next())
        .collect();
    if names.is_empty() {
        "nobody".to_owned()
    } else {
        names.join(", ")
    }
}

/// The log's private key: signs checkpoints.
#[derive(Clone)]
pub struct LogSigner {
    signer: StandardSigner,
    verifier_key: VerifierKey,
}

impl fmt::Debug for LogSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the private key.
        write!(f, "LogSigner({})", self.verifier_key)
    }
}

impl LogSigner {
    /// A fresh random key for the log named `origin` (e.g. `medarena.example/ledger`).
    /// Returns the signer and its private key text, to be kept secret.
    pub fn generate(origin: &str) -> Result<(LogSigner, String), KeyError> {
        if !signed_note::is_key_name_valid(origin) {
            return Err(KeyError::BadOrigin(origin.to_owned()));
        }
        let (private, _) = signed_note::generate_key(&mut rand::rngs::OsRng, origin);
        let signer = LogSigner::from_private_key(&private, Path::new("<generated>"))?;
        Ok((signer, private))
    }

    /// Reads a key in Go note signer form; `source` names where it came from in errors.
    pub fn from_private_key(text: &str, source: &Path) -> Result<LogSigner, KeyError> {
        let text = text.trim();
        let bad = |reason: &str| KeyError::BadSigningKey {
            path: source.to_owned(),
            reason: reason.to_owned(),
        };
        let signer = StandardSigner::new(text).map_err(|error| bad(&error.to_string()))?;
        // StandardSigner keeps its public key to itself; derive it from the seed. The
        // fields are `PRIVATE+KEY+name+id+key`; names have no `+`, base64 keys may.
        let mut fields = text.splitn(5, '+');
        let name = fields.nth(2).ok_or_else(|| bad("no key name"))?;
        let key_base64 = fields.nth(1).ok_or_else(|| bad("no key data"))?;
        let key = BASE64
            .decode(key_base64)
            .map_err(|_| bad("key data is not base64"))?;
        let seed: [u8; 32] = key
            .get(1..)
            .and_then(|seed| seed.try_into().ok())
            .ok_or_else(|| bad("key data is not an Ed25519 seed"))?;
        let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
        let verifier_key =
            VerifierKey::parse(&signed_note::new_ed25519_verifier_key(name, &public))?;
        Ok(LogSigner {
            signer,
            verifier_key,
        })
    }

    /// Loads the key of the ledger in `dir`, or creates it (and its public key file) on
    /// first start. The files are written to a temporary name, synced and renamed, so a
    /// crash never leaves half a key.
    pub fn load_or_generate(dir: &Path, origin: &str) -> Result<LogSigner, KeyError> {
        let key_path = dir.join(SIGNING_KEY_FILE);
        let public_path = dir.join(VERIFIER_KEY_FILE);
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| KeyError::Io { path, source }
        };
        let signer = match fs::read_to_string(&key_path) {
            // Exactly the key and a line feed, as written: any other byte is damage.
            Ok(text) => match text.strip_suffix('\n') {
                Some(key) if key.trim() == key => LogSigner::from_private_key(key, &key_path)?,
                _ => {
                    return Err(KeyError::BadSigningKey {
                        path: key_path,
                        reason: "the file must hold the key on one line".to_owned(),
                    });
                }
            },
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let (signer, private) = LogSigner::generate(origin)?;
                write_durably(&key_path, format!("{private}\n").as_bytes(), true)
                    .map_err(io(&key_path))?;
                signer
            }
            Err(error) => return Err(io(&key_path)(error)),
        };
        if signer.origin() != origin {
            return Err(KeyError::OriginMismatch {
                path: key_path,
                found: signer.origin().to_owned(),
                expected: origin.to_owned(),
            });
        }
        let expected = signer.verifier_key().as_str();
        match fs::read_to_string(&public_path) {
            Ok(found) if found.strip_suffix('\n') == Some(expected) => {}
            Ok(found) => {
                return Err(KeyError::PublicKeyMismatch {
                    path: public_path,
                    found: found.trim().to_owned(),
                    expected: expected.to_owned(),
                });
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                write_durably(&public_path, format!("{expected}\n").as_bytes(), false)
                    .map_err(io(&public_path))?;
            }
            Err(error) => return Err(io(&public_path)(error)),
        }
        Ok(signer)
    }

    /// The log's name: the key name and every checkpoint's origin line.
    pub fn origin(&self) -> &str {
        self.verifier_key.name()
    }

    pub fn verifier_key(&self) -> &VerifierKey {
        &self.verifier_key
    }

    /// Signs the checkpoint of a tree of `size` leaves with root `root`.
    pub fn sign(&self, size: u64, root: Hash) -> SignedCheckpoint {
        let checkpoint = Checkpoint {
            origin: self.origin().to_owned(),
            size,
            root,
        };
        let note = Note::new(checkpoint.body().as_bytes(), &[]).and_then(|mut note| {
            note.add_sigs(&[&self.signer])?;
            Ok(note)
        });
        match note {
            // Ed25519 signing of a valid body cannot fail; the origin was checked when the
            // key was made.
            Ok(note) => SignedCheckpoint {
                checkpoint,
                note: String::from_utf8_lossy(&note.to_bytes()).into_owned(),
            },
            Err(error) => unreachable!("signing a checkpoint failed: {error}"),
        }
    }
}

/// Why a signed note other than a checkpoint (a certificate's signature) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("not a signed note: {0}")]
    Malformed(String),
    #[error("the note carries no signature by key `{key}` (signed by: {signers})")]
    NotSignedByKey { key: String, signers: String },
    #[error(
        "the signature by key `{key}` does not match the signed text: it was altered or forged"
    )]
    BadSignature { key: String },
}

impl LogSigner {
    /// Signs `text` (lines ending in a line feed) as a C2SP signed note with the log's key.
    ///
    /// The same key signs checkpoints, so the caller must make `text` impossible to read as
    /// one: a checkpoint's first line is the log's origin, which has no spaces, so a text
    /// whose first line holds a space (`medarena certificate v1`) is never accepted by
    /// [`SignedCheckpoint::verify`], and a checkpoint never passes a check that requires
    /// that first line.
    pub fn sign_note(&self, text: &str) -> Result<String, NoteError> {
        let mut note = Note::new(text.as_bytes(), &[])
            .map_err(|error| NoteError::Malformed(error.to_string()))?;
        note.add_sigs(&[&self.signer])
            .map_err(|error| NoteError::Malformed(error.to_string()))?;
        Ok(String::from_utf8_lossy(&note.to_bytes()).into_owned())
    }
}

/// Checks that `note_text` carries a valid signature by `key` and returns the signed text.
/// The caller checks that the text is the one it expects (see [`LogSigner::sign_note`]).
pub fn verify_note(note_text: &str, key: &VerifierKey) -> Result<String, NoteError> {
    let note = Note::from_bytes(note_text.as_bytes())
        .map_err(|error| NoteError::Malformed(error.to_string()))?;
    let known = VerifierList::new(vec![Box::new(key.verifier.clone())]);
    if let Err(error) = note.verify(&known) {
        return Err(match error {
            signed_note::NoteError::InvalidSignature { .. } => NoteError::BadSignature {
                key: key.as_str().to_owned(),
            },
            signed_note::NoteError::UnverifiedNote => NoteError::NotSignedByKey {
                key: key.as_str().to_owned(),
                signers: signer_names(note_text),
            },
            other => NoteError::Malformed(other.to_string()),
        });
    }
    Ok(String::from_utf8_lossy(note.text()).into_owned())
}

/// Writes `bytes` to `path` through a synced temporary file and a rename, so a crash
/// leaves either the old or the new content. When `path` is new, the directory is synced
/// too so the file survives a crash; replacing an existing file skips that sync (after a
/// crash the old content may come back, which for the checkpoint only lowers the
/// recovery floor: the ledger re-signs the same checkpoint on open).
pub(crate) fn write_durably(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    let existed = path.exists();
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{file_name}.tmp"));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temporary, path)?;
    if existed { Ok(()) } else { sync_dir(dir) }
}

/// Makes a directory's entries (created, renamed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A published key pair and checkpoint signed with Go's golang.org/x/mod/sumdb/note
    // (transparency-dev tessera test data). Ed25519 is deterministic, so signing the same
    // body must give the same signature, byte for byte.
    const GO_PRIVATE: &str = "PRIVATE+KEY+example.com/log/testdata+33d7b496+AeymY/SZAX0jZcJ8enZ5FY1Dz+wTML2yWSkK+9DSF3eg";
    const GO_PUBLIC: &str =
        "example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx";
    const GO_CHECKPOINT: &str = "example.com/log/testdata\n100270\nGRV1O0dCqmjjPvYi7CtOT79zb/fPwLNsMFWsynwU8Ac=\n\n— example.com/log/testdata M9e0lkcvy5bAe7rrC8tCyAP+my+CLzswA91zOpBNWVU7qCojkUOHnfdQzDImoYeYH8G8PJSwOqsx0RkSa261OmKVwwM=\n";

    #[test]
    fn signing_matches_go_sumdb_note_byte_for_byte() {
        let signer = LogSigner::from_private_key(GO_PRIVATE, Path::new("test")).unwrap();
        assert_eq!(signer.verifier_key().as_str(), GO_PUBLIC);
        assert_eq!(signer.origin(), "example.com/log/testdata");
        let root = Hash::from_base64("GRV1O0dCqmjjPvYi7CtOT79zb/fPwLNsMFWsynwU8Ac=").unwrap();
        let signed = signer.sign(100_270, root);
        assert_eq!(signed.text(), GO_CHECKPOINT);

        let key = VerifierKey::parse(GO_PUBLIC).unwrap();
        let verified = SignedCheckpoint::verify(GO_CHECKPOINT, &key).unwrap();
        assert_eq!(verified.size(), 100_270);
        assert_eq!(verified.root(), root);
    }

    #[test]
    fn altered_or_foreign_checkpoints_are_refused() {
        let key = VerifierKey::parse(GO_PUBLIC).unwrap();
        let altered = GO_CHECKPOINT.replace("100270", "100271");
        assert!(matches!(
            SignedCheckpoint::verify(&altered, &key),
            Err(CheckpointError::BadSignature { .. })
        ));
        let (other, _) = LogSigner::generate("example.com/log/testdata").unwrap();
        assert!(matches!(
            SignedCheckpoint::verify(GO_CHECKPOINT, other.verifier_key()),
            Err(CheckpointError::NotSignedByKey { .. })
        ));
        assert!(matches!(
            SignedCheckpoint::verify("just text\n", &key),
            Err(CheckpointError::MalformedNote(_))
        ));
        // A valid signature over something that is not a checkpoint.
        let signer = LogSigner::from_private_key(GO_PRIVATE, Path::new("test")).unwrap();
        let mut note = Note::new(b"example.com/log/testdata\nnot a size\n", &[]).unwrap();
        note.add_sigs(&[&signer.signer]).unwrap();
        let text = String::from_utf8(note.to_bytes()).unwrap();
        assert_eq!(
            SignedCheckpoint::verify(&text, &key),
            Err(CheckpointError::MalformedBody)
        );
    }

    #[test]
    fn notes_are_signed_apart_from_checkpoints() {
        let signer = LogSigner::from_private_key(GO_PRIVATE, Path::new("test")).unwrap();
        let key = VerifierKey::parse(GO_PUBLIC).unwrap();
        let text = "medarena certificate v1\nreg-1\nsha256 00\n";
        let note = signer.sign_note(text).unwrap();
        assert_eq!(verify_note(&note, &key).unwrap(), text);
        // Never a checkpoint, whatever it says.
        assert!(SignedCheckpoint::verify(&note, &key).is_err());
        assert!(matches!(
            verify_note(&note.replace("reg-1", "reg-2"), &key),
            Err(NoteError::BadSignature { .. })
        ));
        let (other, _) = LogSigner::generate("example.com/log/testdata").unwrap();
        assert!(matches!(
            verify_note(&note, other.verifier_key()),
            Err(NoteError::NotSignedByKey { .. })
        ));
        assert!(signer.sign_note("no final line feed").is_err());
    }

    #[test]
    fn keys_are_created_once_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let first = LogSigner::load_or_generate(dir.path(), "medarena.test/ledger").unwrap();
        let second = LogSigner::load_or_generate(dir.path(), "medarena.test/ledger").unwrap();
        assert_eq!(first.verifier_key(), second.verifier_key());
        let published = fs::read_to_string(dir.path().join(VERIFIER_KEY_FILE)).unwrap();
        assert_eq!(published.trim(), first.verifier_key().as_str());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(dir.path().join(SIGNING_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(
                mode & 0o077,
                0,
                "the private key must not be readable by others"
            );
        }
        assert!(matches!(
            LogSigner::load_or_generate(dir.path(), "other.test/ledger"),
            Err(KeyError::OriginMismatch { .. })
        ));
        fs::write(dir.path().join(VERIFIER_KEY_FILE), format!("{GO_PUBLIC}\n")).unwrap();
        assert!(matches!(
            LogSigner::load_or_generate(dir.path(), "medarena.test/ledger"),
            Err(KeyError::PublicKeyMismatch { .. })
        ));
        assert!(matches!(
            LogSigner::generate("has space"),
            Err(KeyError::BadOrigin(_))
        ));
    }
}
