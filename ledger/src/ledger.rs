//! The [`Ledger`]: typed entries in, receipts and signed checkpoints out.

use std::collections::HashMap;
use std::path::Path;

use crate::Hash;
use crate::checkpoint::{CheckpointError, KeyError, LogSigner, SignedCheckpoint, VerifierKey};
use crate::entry::{Entry, EntryError, MAX_ENTRY_BYTES, NewEntry};
use crate::evidence::EvidenceCode;
use crate::merkle::{MerkleTree, ProofError};
use crate::receipt::{ConsistencyProof, RECEIPT_FORMAT, Receipt};
use crate::store::{FileStore, LedgerStore, Recovery, StoreError};

/// Leaves read per store call while opening or auditing.
const READ_CHUNK: u64 = 8192;

/// Everything that can go wrong with a ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error("stored leaf {index} is not a valid entry: {source}")]
    StoredEntry { index: u64, source: EntryError },
    #[error(
        "stored leaf {position} says it is entry {found}: leaves were reordered, removed or inserted"
    )]
    OutOfOrder { position: u64, found: u64 },
    #[error("the stored checkpoint is not valid for this ledger's key: {0}")]
    StoredCheckpoint(CheckpointError),
    #[error(
        "the stored checkpoint covers {checkpoint} entries but the log holds only {len}: acknowledged entries are missing"
    )]
    CheckpointBeyondLog { checkpoint: u64, len: u64 },
    #[error(
        "the first {size} stored entries hash to {computed}, not to the signed root {signed}: stored entries were altered"
    )]
    RootMismatch {
        size: u64,
        signed: Hash,
        computed: Hash,
    },
    #[error("entry {index} is {len} bytes, more than the {MAX_ENTRY_BYTES} allowed")]
    EntryTooLarge { index: u64, len: usize },
    #[error("the batch this entry was written with failed: {reason}")]
    GroupAppend { reason: String },
    #[error("no entry has evidence code {0}")]
    UnknownEvidence(EvidenceCode),
    #[error("entry {index} does not exist (the log has {len})")]
    NoSuchEntry { index: u64, len: u64 },
}

/// What an append gives back to the caller, who may hand the evidence code to the actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub index: u64,
    pub leaf_hash: Hash,
    pub evidence_code: EvidenceCode,
}

/// What [`Ledger::open`] found and repaired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    pub entries: u64,
    pub recovery: Recovery,
    /// A new checkpoint was signed on open (first start, or entries that were written
    /// but not yet covered when the process stopped).
    pub signed_new_checkpoint: bool,
}

/// An append-only log of [`Entry`]s with an RFC 6962 tree over them and a signed
/// checkpoint that always covers every entry whose append returned.
///
/// One writer at a time: use [`Ledger::append_batch`] to amortise the disk syncs over
/// many entries, or share it between threads as a [`crate::SharedLedger`], which batches
/// concurrent appends by itself.
pub struct Ledger<S: LedgerStore = FileStore> {
    store: S,
    signer: LogSigner,
    tree: MerkleTree,
    by_leaf: HashMap<Hash, u64>,
    checkpoint: SignedCheckpoint,
}

impl<S: LedgerStore> std::fmt::Debug for Ledger<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("origin", &self.signer.origin())
            .field("len", &self.tree.len())
            .finish()
    }
}

impl Ledger<FileStore> {
    /// Opens the embedded ledger in `dir` (created on first start, with a new key) for the
    /// log named `origin`, e.g. `medarena.example/ledger`.
    pub fn open(dir: &Path, origin: &str) -> Result<(Ledger<FileStore>, OpenReport), LedgerError> {
        let (store, recovery) = FileStore::open(dir)?;
        let signer = LogSigner::load_or_generate(dir, origin)?;
        let (ledger, mut report) = Ledger::with_store(store, signer)?;
        report.recovery = recovery;
        Ok((ledger, report))
    }
}

impl Ledger<FileStore> {
    /// Opens the embedded ledger in `dir`, which must already exist; its origin is read
    /// from its key (for operator tools, which should not create ledgers).
    pub fn open_existing(dir: &Path) -> Result<(Ledger<FileStore>, OpenReport), LedgerError> {
        let key_path = dir.join(crate::checkpoint::SIGNING_KEY_FILE);
        let text = std::fs::read_to_string(&key_path).map_err(|source| KeyError::Io {
            path: key_path.clone(),
            source,
        })?;
        let origin = LogSigner::from_private_key(&text, &key_path)?
            .origin()
            .to_owned();
        Ledger::open(dir, &origin)
    }
}

impl<S: LedgerStore> Ledger<S> {
    /// Opens a ledger over any store: reads every entry, rebuilds the tree and checks the
    /// stored checkpoint against it.
    pub fn with_store(store: S, signer: LogSigner) -> Result<(Ledger<S>, OpenReport), LedgerError> {
        let mut tree = MerkleTree::new();
        let mut by_leaf = HashMap::new();
        let len = store.len();
        ingest(&store, &mut tree, &mut by_leaf, len)?;
        let stored = match store.load_checkpoint()? {
            Some(text) => Some(
                SignedCheckpoint::verify(&text, signer.verifier_key())
                    .map_err(LedgerError::StoredCheckpoint)?,
            ),
            None => None,
        };
        if let Some(stored) = &stored {
            if stored.size() > len {
                return Err(LedgerError::CheckpointBeyondLog {
                    checkpoint: stored.size(),
                    len,
                });
            }
            let computed = tree.root(stored.size())?;
            if computed != stored.root() {
                return Err(LedgerError::RootMismatch {
                    size: stored.size(),
                    signed: stored.root(),
                    computed,
                });
            }
        }
        let current = stored.filter(|stored| stored.size() == len);
        if current.is_none() && !store.writable() && len > 0 {
            // A follower's store reports what the checkpoint covers: this cannot happen
            // unless the writer's checkpoint moved between the two reads; the next
            // refresh catches up.
            return Err(LedgerError::Store(StoreError::Shared(
                "the writer's checkpoint moved while opening; open again".to_owned(),
            )));
        }
        let signed_new_checkpoint = current.is_none();
        let checkpoint = match current {
            Some(checkpoint) => checkpoint,
            None => signer.sign(len, tree.root(len)?),
        };
        let mut ledger = Ledger {
            store,
            signer,
            tree,
            by_leaf,
            checkpoint,
        };
        // A follower of a writer that has not started yet holds its empty checkpoint in
        // memory only.
        if signed_new_checkpoint && ledger.store.writable() {
            let text = ledger.checkpoint.text().to_owned();
            ledger.store.save_checkpoint(&text)?;
        }
        let report = OpenReport {
            entries: len,
            recovery: Recovery::default(),
            signed_new_checkpoint,
        };
        Ok((ledger, report))
    }

    /// Catches up with what another process wrote to a shared store: reads the entries
    /// up to the store's latest checkpoint, checks them against it and adopts it. A writer
    /// that takes over from one that stopped also signs the entries that writer stored but
    /// did not sign. Returns how many entries were added.
    pub fn refresh(&mut self) -> Result<u64, LedgerError> {
        let before = self.len();
        // A follower's view moves only with the writer's checkpoints: read it, then the
        // entries it covers; a newer checkpoint in between is adopted on the next round.
        for _ in 0..3 {
            let stored = match self.store.load_checkpoint()? {
                Some(text) => SignedCheckpoint::verify(&text, self.signer.verifier_key())
                    .map_err(LedgerError::StoredCheckpoint)?,
                None => return Ok(0),
            };
            let len = self.store.len().max(stored.size());
            ingest(&self.store, &mut self.tree, &mut self.by_leaf, len)?;
            let computed = self.tree.root(stored.size())?;
            if computed != stored.root() {
                return Err(LedgerError::RootMismatch {
                    size: stored.size(),
                    signed: stored.root(),
                    computed,
                });
            }
            if stored.size() == self.len() {
                self.checkpoint = stored;
                return Ok(self.len() - before);
            }
            if self.store.writable() {
                self.checkpoint = self.signer.sign(self.len(), self.tree.root(self.len())?);
                let text = self.checkpoint.text().to_owned();
                self.store.save_checkpoint(&text)?;
                return Ok(self.len() - before);
            }
        }
        Ok(self.len() - before)
    }

    /// Whether this process may append (see [`LedgerStore::writable`]).
    pub fn writable(&self) -> bool {
        self.store.writable()
    }

    /// The number of entries.
    pub fn len(&self) -> u64 {
        self.tree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// The log's name (the checkpoint origin).
    pub fn origin(&self) -> &str {
        self.signer.origin()
    }

    /// The public key, as published at `GET /api/ledger/key`.
    pub fn verifier_key(&self) -> &VerifierKey {
        self.signer.verifier_key()
    }

    /// The latest signed checkpoint; it covers every entry.
    pub fn checkpoint(&self) -> &SignedCheckpoint {
        &self.checkpoint
    }

    /// Appends one entry durably and signs a checkpoint covering it.
    pub fn append(&mut self, entry: NewEntry) -> Result<Appended, LedgerError> {
        let mut appended = self.append_batch(vec![entry])?;
        Ok(appended.remove(0))
    }

    /// Appends entries with one disk sync and one checkpoint for all of them. On return
    /// they are durable and covered by [`Ledger::checkpoint`]. On error nothing was
    /// appended, unless only saving the new checkpoint failed (then [`Ledger::len`] shows
    /// the entries, and the next append or open signs them).
    pub fn append_batch(&mut self, entries: Vec<NewEntry>) -> Result<Vec<Appended>, LedgerError> {
        let first = self.len();
        let mut leaves = Vec::with_capacity(entries.len());
        for (index, entry) in (first..).zip(entries) {
            let bytes = entry.at_index(index).to_canonical().into_bytes();
            if bytes.len() > MAX_ENTRY_BYTES {
                return Err(LedgerError::EntryTooLarge {
                    index,
                    len: bytes.len(),
                });
            }
            leaves.push(bytes);
        }
        if leaves.is_empty() {
            return Ok(Vec::new());
        }
        self.store.append(&leaves)?;
        let mut appended = Vec::with_capacity(leaves.len());
        for (index, leaf) in (first..).zip(&leaves) {
            let leaf_hash = Hash::of_leaf(leaf);
            self.tree.push(leaf_hash);
            self.by_leaf.insert(leaf_hash, index);
            appended.push(Appended {
                index,
                leaf_hash,
                evidence_code: EvidenceCode::from_leaf_hash(leaf_hash),
            });
        }
        // Signed only now that the entries are durable: a checkpoint never covers an
        // entry a crash could take back.
        self.checkpoint = self.signer.sign(self.len(), self.tree.root(self.len())?);
        let text = self.checkpoint.text().to_owned();
        self.store.save_checkpoint(&text)?;
        Ok(appended)
    }

    /// The entry at `index`.
    pub fn entry(&self, index: u64) -> Result<Entry, LedgerError> {
        Ok(self.entries(index, index + 1)?.remove(0))
    }

    /// The entries `from..to`.
    pub fn entries(&self, from: u64, to: u64) -> Result<Vec<Entry>, LedgerError> {
        // An empty range inside the log (an empty log, a reader that is up to date) is
        // simply no entries.
        if from == to && to <= self.len() {
            return Ok(Vec::new());
        }
        if from > to || to > self.len() {
            return Err(LedgerError::NoSuchEntry {
                index: to.saturating_sub(1).max(from),
                len: self.len(),
            });
        }
        self.store
            .read_range(from, to)?
            .iter()
            .zip(from..)
            .map(|(leaf, index)| {
                Entry::from_canonical(leaf)
                    .map_err(|source| LedgerError::StoredEntry { index, source })
            })
            .collect()
    }

    /// The index of the entry with this evidence code.
    pub fn find(&self, code: &EvidenceCode) -> Option<u64> {
        self.by_leaf.get(&code.leaf_hash()).copied()
    }

    /// The receipt of entry `index` against the latest checkpoint.
    pub fn receipt(&self, index: u64) -> Result<Receipt, LedgerError> {
        let len = self.len();
        if index >= len {
            return Err(LedgerError::NoSuchEntry { index, len });
        }
        let leaf = self
            .store
            .read_range(index, index + 1)?
            .pop()
            .unwrap_or_default();
        let leaf_hash = Hash::of_leaf(&leaf);
        if Some(leaf_hash) != self.tree.leaf_hash(index) {
            // The file changed under a running ledger.
            return Err(LedgerError::RootMismatch {
                size: index + 1,
                signed: self.tree.leaf_hash(index).unwrap_or_default(),
                computed: leaf_hash,
            });
        }
        Ok(Receipt {
            format: RECEIPT_FORMAT.to_owned(),
            evidence_code: EvidenceCode::from_leaf_hash(leaf_hash),
            leaf_index: index,
            entry: String::from_utf8_lossy(&leaf).into_owned(),
            inclusion_proof: self.tree.inclusion_proof(index, self.checkpoint.size())?,
            checkpoint: self.checkpoint.text().to_owned(),
        })
    }

    /// The receipt of the entry with this evidence code.
    pub fn receipt_for(&self, code: &EvidenceCode) -> Result<Receipt, LedgerError> {
        let index = self.find(code).ok_or(LedgerError::UnknownEvidence(*code))?;
        self.receipt(index)
    }

    /// The proof that the log at `new_size` extends the log at `old_size`.
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<ConsistencyProof, LedgerError> {
        let proof = self.tree.consistency_proof(old_size, new_size)?;
        Ok(ConsistencyProof::new(old_size, new_size, proof))
    }

    /// The signed checkpoint of the log at an earlier `size` (Ed25519 is deterministic,
    /// so this is byte for byte the checkpoint published when the log had that size).
    pub fn checkpoint_at(&self, size: u64) -> Result<SignedCheckpoint, LedgerError> {
        Ok(self.signer.sign(size, self.tree.root(size)?))
    }

    /// Re-reads every stored entry and checks it against the tree in memory and the
    /// signed checkpoint: detects anything altered on disk since the ledger was opened.
    pub fn audit(&self) -> Result<u64, LedgerError> {
        let len = self.len();
        let mut from = 0;
        while from < len {
            let to = (from + READ_CHUNK).min(len);
            for (index, leaf) in (from..to).zip(self.store.read_range(from, to)?) {
                let entry = Entry::from_canonical(&leaf)
                    .map_err(|source| LedgerError::StoredEntry { index, source })?;
                if entry.index != index {
                    return Err(LedgerError::OutOfOrder {
                        position: index,
                        found: entry.index,
                    });
                }
                let computed = Hash::of_leaf(&leaf);
                let expected = self.tree.leaf_hash(index).unwrap_or_default();
                if computed != expected {
                    return Err(LedgerError::RootMismatch {
                        size: index + 1,
                        signed: expected,
                        computed,
                    });
                }
            }
            from = to;
        }
        let computed = self.tree.root(self.checkpoint.size())?;
        if computed != self.checkpoint.root() {
            return Err(LedgerError::RootMismatch {
                size: self.checkpoint.size(),
                signed: self.checkpoint.root(),
                computed,
            });
        }
        Ok(len)
    }
}

/// Reads the stored leaves from `tree.len()` up to `len` into the tree and the index,
/// checking that each is a canonical entry at its own position.
fn ingest<S: LedgerStore>(
    store: &S,
    tree: &mut MerkleTree,
    by_leaf: &mut HashMap<Hash, u64>,
    len: u64,
) -> Result<(), LedgerError> {
    let mut from = tree.len();
    while from < len {
        let to = (from + READ_CHUNK).min(len);
        for (position, leaf) in (from..to).zip(store.read_range(from, to)?) {
            let entry =
                Entry::from_canonical(&leaf).map_err(|source| LedgerError::StoredEntry {
                    index: position,
                    source,
                })?;
            if entry.index != position {
                return Err(LedgerError::OutOfOrder {
                    position,
                    found: entry.index,
                });
            }
            let hash = Hash::of_leaf(&leaf);
            tree.push(hash);
            by_leaf.insert(hash, position);
        }
        from = to;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, Id, LogSigner, MemoryStore, Timestamp};

    #[test]
    fn an_empty_range_inside_the_log_has_no_entries_and_outside_is_an_error() {
        let (signer, _) = LogSigner::generate("medarena.test/ranges").unwrap();
        let (mut ledger, _) = Ledger::with_store(MemoryStore::new(), signer).unwrap();
        assert!(ledger.entries(0, 0).unwrap().is_empty());
        let entry = NewEntry::new(
            Timestamp::from_unix_millis(1).unwrap(),
            Id::new("organizer").unwrap(),
            Event::CompetitionClosed {
                competition: Id::new("c-1").unwrap(),
            },
        );
        let appended = ledger.append(entry).unwrap();
        assert_eq!(ledger.entries(0, 1).unwrap().len(), 1);
        assert!(ledger.entries(1, 1).unwrap().is_empty());
        assert!(ledger.entries(2, 2).is_err());
        assert!(ledger.entries(1, 0).is_err());
        assert!(ledger.entries(0, 2).is_err());
        // The evidence code is the leaf hash of the canonical entry.
        let stored = ledger.entry(0).unwrap();
        assert_eq!(
            EvidenceCode::from_leaf_hash(Hash::of_leaf(stored.to_canonical().as_bytes())),
            appended.evidence_code
        );
    }

    /// One store seen by two processes: the writer's view, or a follower's (which reports
    /// only what the checkpoint covers and may not write), as a shared database does.
    #[derive(Clone)]
    struct Shared {
        store: std::sync::Arc<std::sync::Mutex<MemoryStore>>,
        writer: bool,
    }

    impl LedgerStore for Shared {
        fn len(&self) -> u64 {
            let store = self.store.lock().unwrap();
            if self.writer {
                store.len()
            } else {
                store
                    .load_checkpoint()
                    .unwrap()
                    .map_or(0, |note| note.lines().nth(1).unwrap().parse().unwrap())
            }
        }
        fn writable(&self) -> bool {
            self.writer
        }
        fn read_range(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>, StoreError> {
            self.store.lock().unwrap().read_range(from, to)
        }
        fn append(&mut self, leaves: &[Vec<u8>]) -> Result<(), StoreError> {
            if !self.writer {
                return Err(StoreError::ReadOnly);
            }
            self.store.lock().unwrap().append(leaves)
        }
        fn load_checkpoint(&self) -> Result<Option<String>, StoreError> {
            self.store.lock().unwrap().load_checkpoint()
        }
        fn save_checkpoint(&mut self, note: &str) -> Result<(), StoreError> {
            if !self.writer {
                return Err(StoreError::ReadOnly);
            }
            self.store.lock().unwrap().save_checkpoint(note)
        }
    }

    fn closed(n: u64) -> NewEntry {
        NewEntry::new(
            Timestamp::from_unix_millis(n).unwrap(),
            Id::new("organizer").unwrap(),
            Event::CompetitionClosed {
                competition: Id::new(format!("c-{n}")).unwrap(),
            },
        )
    }

    #[test]
    fn a_follower_catches_up_serves_receipts_never_writes_and_can_take_over() {
        let (signer, _) = LogSigner::generate("medarena.test/shared").unwrap();
        let store = std::sync::Arc::new(std::sync::Mutex::new(MemoryStore::new()));
        let writer_store = Shared {
            store: store.clone(),
            writer: true,
        };
        let (mut writer, _) = Ledger::with_store(writer_store, signer.clone()).unwrap();
        writer.append(closed(1)).unwrap();
        let mut follower_store = Shared {
            store: store.clone(),
            writer: false,
        };
        let (mut follower, _) = Ledger::with_store(follower_store.clone(), signer.clone()).unwrap();
        assert_eq!(follower.len(), 1);
        assert!(matches!(
            follower.append(closed(9)),
            Err(LedgerError::Store(StoreError::ReadOnly))
        ));

        let later = writer.append_batch(vec![closed(2), closed(3)]).unwrap();
        assert_eq!(follower.refresh().unwrap(), 2);
        assert_eq!(follower.checkpoint().text(), writer.checkpoint().text());
        let receipt = follower.receipt_for(&later[1].evidence_code).unwrap();
        receipt.verify(follower.verifier_key()).unwrap();

        // The writer stores an entry and stops before signing it: the follower does not see
        // it (no checkpoint covers it) until it takes over, and then signs it.
        let leaf = closed(4).at_index(3).to_canonical().into_bytes();
        store.lock().unwrap().append(&[leaf]).unwrap();
        assert_eq!(follower.refresh().unwrap(), 0);
        assert_eq!(follower.len(), 3);
        follower_store.writer = true;
        let (mut taken_over, report) = Ledger::with_store(follower_store, signer).unwrap();
        assert_eq!(report.entries, 4);
        assert!(report.signed_new_checkpoint);
        assert_eq!(taken_over.refresh().unwrap(), 0);
        assert_eq!(taken_over.checkpoint().size(), 4);
        taken_over.append(closed(5)).unwrap();
        assert_eq!(taken_over.audit().unwrap(), 5);
    }
}
