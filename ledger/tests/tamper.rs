//! Tampering with a ledger's stored bytes, reordering, truncating or forking it is
//! detected: by the ledger when it opens, or by receipt and checkpoint verification.

use std::fs;
use std::path::Path;

use medarena_ledger::checkpoint::{SIGNING_KEY_FILE, VERIFIER_KEY_FILE};
use medarena_ledger::store::{CHECKPOINT_FILE, ENTRIES_FILE, FILE_MAGIC};
use medarena_ledger::{
    ConsistencyProof, Digest, Event, Id, Ledger, LedgerError, NewEntry, ProofError, Receipt,
    SignedCheckpoint, Timestamp, VerifyError, verify_checkpoint_consistency,
};

const ORIGIN: &str = "medarena.test/ledger";

fn entry(n: u64, team: &str) -> NewEntry {
    NewEntry::new(
        Timestamp::from_unix_millis(1_790_000_000_000 + n * 1000).unwrap(),
        Id::new(format!("team:{team}")).unwrap(),
        Event::SubmissionReceived {
            competition: Id::new("sepsis-2026").unwrap(),
            team: Id::new(format!("team:{team}")).unwrap(),
            submission: Id::new(format!("sub-{n}")).unwrap(),
            module: Digest::of(format!("module {n} of {team}").as_bytes()),
        },
    )
}

/// A ledger of `count` entries in `dir`, and the receipt of each.
fn build(dir: &Path, count: u64, team: &str) -> Vec<Receipt> {
    let (mut ledger, _) = Ledger::open(dir, ORIGIN).unwrap();
    let first = ledger.len();
    ledger
        .append_batch((first..first + count).map(|n| entry(n, team)).collect())
        .unwrap();
    (0..ledger.len())
        .map(|i| ledger.receipt(i).unwrap())
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    for name in [
        ENTRIES_FILE,
        CHECKPOINT_FILE,
        SIGNING_KEY_FILE,
        VERIFIER_KEY_FILE,
    ] {
        fs::copy(from.join(name), to.join(name)).unwrap();
    }
}

/// Frames of entries.log: (offset, whole frame bytes).
fn frames(bytes: &[u8]) -> Vec<(usize, Vec<u8>)> {
    let mut offset = FILE_MAGIC.len();
    let mut frames = Vec::new();
    while offset < bytes.len() {
        let len = u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize;
        frames.push((offset, bytes[offset..offset + 8 + len].to_vec()));
        offset += 8 + len;
    }
    frames
}

fn frame(leaf: &[u8]) -> Vec<u8> {
    let len = (leaf.len() as u32).to_le_bytes();
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len);
    hasher.update(leaf);
    [&len[..], leaf, &hasher.finalize().to_le_bytes()].concat()
}

#[test]
fn flipping_any_stored_byte_is_detected_on_open() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 3, "alpha");
    for name in [
        ENTRIES_FILE,
        CHECKPOINT_FILE,
        SIGNING_KEY_FILE,
        VERIFIER_KEY_FILE,
    ] {
        let path = dir.path().join(name);
        let original = fs::read(&path).unwrap();
        for position in 0..original.len() {
            // Low and high bits, alternately, keep the test fast.
            let mask = if position % 2 == 0 { 0x01u8 } else { 0x80 };
            let mut bytes = original.clone();
            bytes[position] ^= mask;
            fs::write(&path, &bytes).unwrap();
            if let Ok((ledger, _)) = Ledger::open(dir.path(), ORIGIN) {
                panic!(
                    "{name} byte {position} ^ {mask:#x} went unnoticed (ledger of {} entries)",
                    ledger.len()
                );
            }
            // A refused open changes nothing, so restoring this one file is enough.
            fs::write(&path, &original).unwrap();
        }
    }
    let (ledger, report) = Ledger::open(dir.path(), ORIGIN).unwrap();
    assert_eq!((ledger.len(), report.signed_new_checkpoint), (3, false));
}

#[test]
fn rewriting_entries_with_valid_checksums_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let receipts = build(dir.path(), 4, "alpha");
    let path = dir.path().join(ENTRIES_FILE);
    let bytes = fs::read(&path).unwrap();
    let frames = frames(&bytes);

    // Swap two whole frames: their index lines no longer match their positions.
    let mut swapped = bytes[..FILE_MAGIC.len()].to_vec();
    for i in [0, 2, 1, 3] {
        swapped.extend_from_slice(&frames[i].1);
    }
    fs::write(&path, &swapped).unwrap();
    assert!(matches!(
        Ledger::open(dir.path(), ORIGIN),
        Err(LedgerError::OutOfOrder {
            position: 1,
            found: 2
        })
    ));

    // Reorder and renumber (with fresh checksums), as someone with the files but not the
    // key could: the root no longer matches the signed checkpoint.
    let mut renumbered = bytes[..FILE_MAGIC.len()].to_vec();
    for (position, i) in [0usize, 2, 1, 3].into_iter().enumerate() {
        let text = receipts[i]
            .entry
            .replace(&format!("index {i}\n"), &format!("index {position}\n"));
        renumbered.extend_from_slice(&frame(text.as_bytes()));
    }
    fs::write(&path, &renumbered).unwrap();
    assert!(matches!(
        Ledger::open(dir.path(), ORIGIN),
        Err(LedgerError::RootMismatch { size: 4, .. })
    ));

    // Alter one entry's content and fix its checksum.
    let mut altered = bytes.clone();
    let (offset, original) = &frames[2];
    let text = String::from_utf8(original[4..original.len() - 4].to_vec()).unwrap();
    let forged = frame(text.replace("sub-2", "sub-9").as_bytes());
    altered.splice(*offset..offset + original.len(), forged);
    fs::write(&path, &altered).unwrap();
    assert!(matches!(
        Ledger::open(dir.path(), ORIGIN),
        Err(LedgerError::RootMismatch { .. })
    ));
}

#[test]
fn truncation_is_detected() {
    let pristine = tempfile::tempdir().unwrap();
    build(pristine.path(), 4, "alpha");
    let bytes = fs::read(pristine.path().join(ENTRIES_FILE)).unwrap();
    let frames = frames(&bytes);
    for cut in [
        frames[3].0,
        frames[3].0 + 5,
        frames[1].0,
        FILE_MAGIC.len(),
        bytes.len() - 1,
    ] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(pristine.path(), dir.path());
        fs::write(dir.path().join(ENTRIES_FILE), &bytes[..cut]).unwrap();
        let error = Ledger::open(dir.path(), ORIGIN).unwrap_err();
        assert!(
            matches!(
                error,
                LedgerError::CheckpointBeyondLog { .. } | LedgerError::Store(_)
            ),
            "cut at {cut}: {error}"
        );
        assert_eq!(
            fs::read(dir.path().join(ENTRIES_FILE)).unwrap(),
            &bytes[..cut],
            "a refused open must not change the file"
        );
    }
    // Truncating and rolling the checkpoint back to an older one (which the attacker kept)
    // opens, but an auditor holding a receipt of a later entry sees the log shrink.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(pristine.path(), dir.path());
    let (ledger, _) = Ledger::open(dir.path(), ORIGIN).unwrap();
    let old_checkpoint = ledger.checkpoint_at(2).unwrap();
    let late_receipt = ledger.receipt(3).unwrap();
    drop(ledger);
    fs::write(dir.path().join(ENTRIES_FILE), &bytes[..frames[2].0]).unwrap();
    fs::write(dir.path().join(CHECKPOINT_FILE), old_checkpoint.text()).unwrap();
    let (rolled_back, _) = Ledger::open(dir.path(), ORIGIN).unwrap();
    let (_, receipt_checkpoint) = late_receipt.verify(rolled_back.verifier_key()).unwrap();
    assert!(receipt_checkpoint.size() > rolled_back.checkpoint().size());
    assert!(
        rolled_back
            .consistency_proof(receipt_checkpoint.size(), 4)
            .is_err()
    );
}

#[test]
fn forks_under_one_key_are_detected() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    build(first.path(), 2, "alpha");
    // The same key, the same first two entries, then the histories diverge.
    copy_dir(first.path(), second.path());
    let receipts_a = build(first.path(), 3, "alpha");
    let receipts_b = build(second.path(), 3, "bravo");
    let (a, _) = Ledger::open(first.path(), ORIGIN).unwrap();
    let (b, _) = Ledger::open(second.path(), ORIGIN).unwrap();
    assert_eq!(a.verifier_key(), b.verifier_key());
    assert_eq!(a.len(), b.len());
    let key = a.verifier_key();
    let checkpoint_a = SignedCheckpoint::verify(a.checkpoint().text(), key).unwrap();
    let checkpoint_b = SignedCheckpoint::verify(b.checkpoint().text(), key).unwrap();

    // Two validly signed checkpoints of the same size with different roots.
    assert_eq!(
        verify_checkpoint_consistency(&checkpoint_a, &checkpoint_b, None),
        Err(VerifyError::Proof(ProofError::Fork { size: 5 }))
    );
    // A consistency proof from the common prefix is honest on each side...
    let common = SignedCheckpoint::verify(a.checkpoint_at(2).unwrap().text(), key).unwrap();
    let proof_a = a.consistency_proof(2, 5).unwrap();
    verify_checkpoint_consistency(&common, &checkpoint_a, Some(&proof_a)).unwrap();
    // ...but no proof from one branch can connect to the other.
    let small_b = SignedCheckpoint::verify(b.checkpoint_at(3).unwrap().text(), key).unwrap();
    let proof_b = b.consistency_proof(3, 5).unwrap();
    assert!(verify_checkpoint_consistency(&small_b, &checkpoint_a, Some(&proof_b)).is_err());
    let proof_a3 = a.consistency_proof(3, 5).unwrap();
    assert!(verify_checkpoint_consistency(&small_b, &checkpoint_a, Some(&proof_a3)).is_err());

    // A receipt of one branch does not verify against the other branch's checkpoint.
    let mut crossed = receipts_a[4].clone();
    crossed.checkpoint = b.checkpoint().text().to_owned();
    assert!(crossed.verify(key).is_err());
    receipts_b[4].verify(key).unwrap();
    let mut mismatched_sizes = ConsistencyProof::new(2, 4, proof_a.proof.clone());
    mismatched_sizes.old_size = 1;
    assert!(
        verify_checkpoint_consistency(&common, &checkpoint_a, Some(&mismatched_sizes)).is_err()
    );
}

#[test]
fn altered_receipts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let receipts = build(dir.path(), 6, "alpha");
    let (ledger, _) = Ledger::open(dir.path(), ORIGIN).unwrap();
    let key = ledger.verifier_key();
    let good = &receipts[3];
    good.verify(key).unwrap();

    let mut entry = good.clone();
    entry.entry = entry.entry.replace("sub-3", "sub-4");
    assert!(matches!(
        entry.verify(key),
        Err(VerifyError::EvidenceMismatch { .. })
    ));

    let mut code = good.clone();
    code.evidence_code = receipts[4].evidence_code;
    assert!(matches!(
        code.verify(key),
        Err(VerifyError::EvidenceMismatch { .. })
    ));

    let mut index = good.clone();
    index.leaf_index = 4;
    assert!(matches!(
        index.verify(key),
        Err(VerifyError::IndexMismatch { .. })
    ));

    let mut proof = good.clone();
    proof.inclusion_proof[0].0[5] ^= 1;
    assert!(matches!(proof.verify(key), Err(VerifyError::Proof(_))));

    let mut checkpoint = good.clone();
    checkpoint.checkpoint = checkpoint.checkpoint.replacen("\n6\n", "\n7\n", 1);
    assert!(matches!(
        checkpoint.verify(key),
        Err(VerifyError::Checkpoint(_))
    ));

    // JSON round trip keeps a receipt verifiable, and unknown fields are refused.
    let json = serde_json::to_string_pretty(good).unwrap();
    let parsed: Receipt = serde_json::from_str(&json).unwrap();
    parsed.verify(key).unwrap();
    let with_extra = json.replacen('{', "{\"extra\": 1,", 1);
    assert!(serde_json::from_str::<Receipt>(&with_extra).is_err());
}
