//! Receipts and consistency proofs: the JSON documents an auditor checks offline.

use serde::{Deserialize, Serialize};

use crate::Hash;
use crate::checkpoint::{CheckpointError, SignedCheckpoint, VerifierKey};
use crate::entry::{Entry, EntryError};
use crate::evidence::EvidenceCode;
use crate::merkle::{self, ProofError};

/// The `format` of a receipt document.
pub const RECEIPT_FORMAT: &str = "medarena-ledger-receipt/v1";
/// The `format` of a consistency proof document.
pub const CONSISTENCY_FORMAT: &str = "medarena-ledger-consistency/v1";

/// Proof that an entry is in the log: everything needed to check it offline except the
/// log's public key, which the auditor must get from a source they trust.
///
/// ```json
/// {
///   "format": "medarena-ledger-receipt/v1",
///   "evidence_code": "5QH2K-8W0ZP-...-R4T",
///   "leaf_index": 41,
///   "entry": "medarena-ledger-entry/v1\nindex 41\ntime ...\n",
///   "inclusion_proof": ["base64 hash", "..."],
///   "checkpoint": "medarena.example/ledger\n1204\nbase64 root\n\n— medarena.example/ledger ...\n"
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub format: String,
    /// The leaf hash of `entry`, written for people.
    pub evidence_code: EvidenceCode,
    pub leaf_index: u64,
    /// The entry's canonical text: the exact leaf bytes.
    pub entry: String,
    /// The audit path from the leaf to the checkpoint's root.
    pub inclusion_proof: Vec<Hash>,
    /// The signed checkpoint the proof leads to.
    pub checkpoint: String,
}

/// Why a receipt or a consistency proof failed to check.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VerifyError {
    #[error("unknown document format `{found}` (expected `{expected}`)")]
    Format { found: String, expected: String },
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("entry: {0}")]
    Entry(#[from] EntryError),
    #[error("the entry says index {entry} but the receipt says leaf {receipt}")]
    IndexMismatch { entry: u64, receipt: u64 },
    #[error(
        "the evidence code {code} is not the hash of the entry (which is {actual}): the entry was altered"
    )]
    EvidenceMismatch {
        code: EvidenceCode,
        actual: EvidenceCode,
    },
    #[error("{0}")]
    Proof(#[from] ProofError),
    #[error(
        "the proof is for sizes {proof_old} -> {proof_new} but the checkpoints have sizes {old} -> {new}"
    )]
    SizeMismatch {
        proof_old: u64,
        proof_new: u64,
        old: u64,
        new: u64,
    },
    #[error("the checkpoints are of different logs (`{old}` and `{new}`)")]
    OriginMismatch { old: String, new: String },
}

impl Receipt {
    /// Step 1: the embedded checkpoint is validly signed by `key`.
    pub fn verify_checkpoint(&self, key: &VerifierKey) -> Result<SignedCheckpoint, VerifyError> {
        if self.format != RECEIPT_FORMAT {
            return Err(VerifyError::Format {
                found: self.format.clone(),
                expected: RECEIPT_FORMAT.to_owned(),
            });
        }
        Ok(SignedCheckpoint::verify(&self.checkpoint, key)?)
    }

    /// Step 2: the entry is canonical, names the receipt's leaf index, and hashes to the
    /// evidence code.
    pub fn verify_entry(&self) -> Result<Entry, VerifyError> {
        let entry = Entry::from_canonical(self.entry.as_bytes())?;
        if entry.index != self.leaf_index {
            return Err(VerifyError::IndexMismatch {
                entry: entry.index,
                receipt: self.leaf_index,
            });
        }
        let actual = EvidenceCode::from_leaf_hash(Hash::of_leaf(self.entry.as_bytes()));
        if actual != self.evidence_code {
            return Err(VerifyError::EvidenceMismatch {
                code: self.evidence_code,
                actual,
            });
        }
        Ok(entry)
    }

    /// Step 3: the inclusion proof leads from the leaf to the checkpoint's root.
    pub fn verify_inclusion(&self, checkpoint: &SignedCheckpoint) -> Result<(), VerifyError> {
        merkle::verify_inclusion(
            self.evidence_code.leaf_hash(),
            self.leaf_index,
            checkpoint.size(),
            &self.inclusion_proof,
            checkpoint.root(),
        )?;
        Ok(())
    }

    /// All three steps.
    pub fn verify(&self, key: &VerifierKey) -> Result<(Entry, SignedCheckpoint), VerifyError> {
        let checkpoint = self.verify_checkpoint(key)?;
        let entry = self.verify_entry()?;
        self.verify_inclusion(&checkpoint)?;
        Ok((entry, checkpoint))
    }
}

/// Proof that the log at `new_size` extends the log at `old_size`.
///
/// ```json
/// {"format": "medarena-ledger-consistency/v1", "old_size": 10, "new_size": 14, "proof": ["base64 hash", "..."]}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    pub format: String,
    pub old_size: u64,
    pub new_size: u64,
    pub proof: Vec<Hash>,
}

impl ConsistencyProof {
    pub fn new(old_size: u64, new_size: u64, proof: Vec<Hash>) -> ConsistencyProof {
        ConsistencyProof {
            format: CONSISTENCY_FORMAT.to_owned(),
            old_size,
            new_size,
            proof,
        }
    }
}

/// Checks that `new` extends `old` (both already signature-checked). Equal sizes need no
/// proof but must have equal roots, otherwise the log has forked; a proof is needed (and
/// must be for exactly these sizes) when the sizes differ. The two may be given in either
/// order.
pub fn verify_checkpoint_consistency(
    first: &SignedCheckpoint,
    second: &SignedCheckpoint,
    proof: Option<&ConsistencyProof>,
) -> Result<(), VerifyError> {
    if first.origin() != second.origin() {
        return Err(VerifyError::OriginMismatch {
            old: first.origin().to_owned(),
            new: second.origin().to_owned(),
        });
    }
    let (old, new) = if first.size() <= second.size() {
        (first, second)
    } else {
        (second, first)
    };
    let hashes: &[Hash] = match proof {
        None => &[],
        Some(proof) => {
            if proof.format != CONSISTENCY_FORMAT {
                return Err(VerifyError::Format {
                    found: proof.format.clone(),
                    expected: CONSISTENCY_FORMAT.to_owned(),
                });
            }
            if (proof.old_size, proof.new_size) != (old.size(), new.size()) {
                return Err(VerifyError::SizeMismatch {
                    proof_old: proof.old_size,
                    proof_new: proof.new_size,
                    old: old.size(),
                    new: new.size(),
                });
            }
            &proof.proof
        }
    };
    merkle::verify_consistency(old.size(), old.root(), new.size(), new.root(), hashes)?;
    Ok(())
}
