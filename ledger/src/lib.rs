//! The tamper-evident ledger: an append-only RFC 6962 Merkle log of typed entries, signed
//! checkpoints and receipts that anyone can check offline.
//!
//! # Model
//!
//! Every operation of the platform (a dataset registered, a run finished, a score
//! released with its ε...) becomes an [`Entry`]: who, when, what, and the digests of the
//! contents involved, never the contents. Its canonical text ([`entry`] documents the
//! encoding) is a leaf of a Merkle tree hashed exactly as RFC 6962 / RFC 9162:
//! `SHA-256(0x00 || leaf)` for leaves, `SHA-256(0x01 || left || right)` for nodes.
//!
//! After each append the ledger signs a *checkpoint* (tree size and root hash) with its
//! Ed25519 key, in the C2SP tlog-checkpoint / signed-note text format ([`checkpoint`]),
//! so ordinary transparency-log tooling reads it. The actor of an entry gets a
//! [`Receipt`]: the entry, its *evidence code* (the leaf hash written for people,
//! [`EvidenceCode`]), its inclusion proof and the checkpoint. With the log's public key,
//! anyone can check a receipt, and check with a consistency proof that a later checkpoint
//! extends an earlier one. Two validly signed checkpoints of the same size with
//! different roots prove the log forked.
//!
//! ```
//! use medarena_ledger::{Digest, Event, Id, Ledger, NewEntry, Timestamp};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let (mut ledger, _report) = Ledger::open(dir.path(), "medarena.example/ledger")?;
//! let appended = ledger.append(NewEntry::new(
//!     Timestamp::now(),
//!     Id::new("team:alpha")?,
//!     Event::SubmissionReceived {
//!         competition: Id::new("sepsis-2026")?,
//!         team: Id::new("team:alpha")?,
//!         submission: Id::new("sub-1")?,
//!         module: Digest::of(b"\0asm..."),
//!     },
//! ))?;
//! let receipt = ledger.receipt_for(&appended.evidence_code)?;
//! let (entry, checkpoint) = receipt.verify(ledger.verifier_key())?;
//! assert_eq!(entry.index, appended.index);
//! assert_eq!(checkpoint.size(), 1);
//! # Ok(()) }
//! ```
//!
//! # Storage
//!
//! [`Ledger`] works over a [`LedgerStore`]. The embedded [`FileStore`] keeps a data
//! directory with `entries.log` (checksummed frames, synced before an append returns,
//! torn tails truncated on open), `checkpoint` (the latest signed checkpoint, replaced
//! atomically), `ledger-signing.key` (the private key, created on first start, mode
//! 0600) and `ledger.pub` (the public verifier key). The checkpoint is signed only after
//! the entries it covers are synced, and on open the ledger refuses a log that no longer
//! hashes to its stored checkpoint, or is shorter than it. The arena's PostgreSQL store
//! implements the same trait for deployments on several hosts: one process writes, the
//! others follow with [`Ledger::refresh`].
//!
//! # Verification procedure (what `medarena ledger verify` does)
//!
//! Given the log's verifier key, obtained from a trusted source:
//!
//! 1. Checkpoint: parse the signed note, find the signature line whose key name and key
//!    ID match the verifier key, check the Ed25519 signature over the note text, and
//!    check the origin line equals the key name ([`SignedCheckpoint::verify`]).
//! 2. Entry: the receipt's `entry` must be canonical ([`Entry::from_canonical`]), its
//!    `index` line must equal `leaf_index`, and `SHA-256(0x00 || entry)` must equal the
//!    evidence code ([`Receipt::verify_entry`]).
//! 3. Inclusion: the RFC 9162 inclusion proof of that leaf hash at `leaf_index` must lead
//!    to the checkpoint's root for its size ([`Receipt::verify_inclusion`]).
//! 4. Consistency, for two checkpoints (e.g. the receipt's and one published later):
//!    equal sizes need equal roots (otherwise: fork); different sizes need an RFC 9162
//!    consistency proof from the smaller to the larger
//!    ([`verify_checkpoint_consistency`]).
//!
//! A shell can redo step 2 by hand: `(printf '\0'; printf '%s' "$entry") | sha256sum`.
//!
//! # HTTP API the server must serve
//!
//! The web crate serves these read-only paths (no authentication: everything here is
//! public by design, since entries hold only identifiers and digests). `medarena ledger
//! verify --url` uses the first four; the fifth lets auditors fetch older checkpoints.
//!
//! | method and path | 200 response | errors |
//! |---|---|---|
//! | `GET /api/ledger/checkpoint` | `text/plain; charset=utf-8`: [`Ledger::checkpoint`]`.text()`, the signed note | — |
//! | `GET /api/ledger/key` | `text/plain; charset=utf-8`: [`Ledger::verifier_key`] and a line feed | — |
//! | `GET /api/ledger/receipts/{evidence_code}` | `application/json`: [`Receipt`] from [`Ledger::receipt_for`] (the code is parsed with [`EvidenceCode::parse`], so any spelling a person types works) | 400 unparsable code, 404 unknown code |
//! | `GET /api/ledger/consistency?from=N&to=M` | `application/json`: [`ConsistencyProof`] from [`Ledger::consistency_proof`] | 400 if `N > M` or `M` > the log's size |
//! | `GET /api/ledger/checkpoints/{size}` | `text/plain`: [`Ledger::checkpoint_at`], the checkpoint of the log at an earlier size | 400 if beyond the log |
//!
//! Error bodies are JSON `{"error": "<message>"}`. Receipt JSON:
//!
//! ```json
//! {
//!   "format": "medarena-ledger-receipt/v1",
//!   "evidence_code": "5QH2K-8W0ZP-...-R4T",
//!   "leaf_index": 41,
//!   "entry": "medarena-ledger-entry/v1\nindex 41\ntime 2026-11-01T09:30:00.250Z\n...",
//!   "inclusion_proof": ["<base64 hash>", "..."],
//!   "checkpoint": "<origin>\n<size>\n<base64 root>\n\n— <origin> <base64 signature>\n"
//! }
//! ```
//!
//! Consistency JSON: `{"format": "medarena-ledger-consistency/v1", "old_size": N,
//! "new_size": M, "proof": ["<base64 hash>", ...]}`.

pub mod checkpoint;
pub mod entry;
pub mod evidence;
mod hash;
mod ledger;
pub mod merkle;
pub mod receipt;
mod shared;
pub mod store;

pub use checkpoint::{
    Checkpoint, CheckpointError, KeyError, LogSigner, NoteError, SIGNING_KEY_FILE,
    SignedCheckpoint, VerifierKey, verify_note,
};
pub use entry::{
    Digest, Entry, EntryError, Event, Extension, FieldValue, Id, NewEntry, Number, RunStatus,
    Timestamp, ValidationOutcome,
};
pub use evidence::{EvidenceCode, EvidenceCodeError};
pub use hash::{Hash, HashParseError};
pub use ledger::{Appended, Ledger, LedgerError, OpenReport};
pub use merkle::{MerkleTree, ProofError};
pub use receipt::{ConsistencyProof, Receipt, VerifyError, verify_checkpoint_consistency};
pub use shared::SharedLedger;
pub use store::{DynStore, FileStore, LedgerStore, MemoryStore, Recovery, StoreError};
