//! Where the log's bytes live: the [`LedgerStore`] trait, the embedded [`FileStore`]
//! and an in-memory [`MemoryStore`].
//!
//! A store keeps the leaves (entry bytes) in order and the latest signed checkpoint. It
//! knows nothing of hashes or signatures; the [`crate::Ledger`] above it checks, on every
//! open, that the leaves hash to the stored checkpoint's root.
//!
//! # The embedded file format
//!
//! A directory holds `entries.log` and `checkpoint`. `entries.log` starts with the 23
//! bytes `medarena-ledger-log/v1\n`, followed by one frame per leaf:
//!
//! ```text
//! length: u32 little-endian | leaf bytes (length of them) | CRC-32 (IEEE) of length bytes and leaf, u32 little-endian
//! ```
//!
//! Appends write all frames of a batch at the end of the file and `fdatasync` before
//! returning: an append that returned is on disk. The ledger saves a checkpoint only
//! after that, so the leaves the stored checkpoint covers are all durable. On open the
//! file is scanned up to the first frame that is cut short or fails its checksum. If
//! that damage lies among the leaves the checkpoint covers, the store refuses to open
//! and changes nothing (corruption or tampering: restore from a backup). Otherwise it is
//! the append that was in flight when the process or the machine stopped, which never
//! returned: the file is truncated back to the last whole frame before it, and the
//! truncation is reported. `checkpoint` is the signed note text, replaced
//! atomically (write to a temporary file, sync, rename, sync the directory).

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read as _};
#[cfg(unix)]
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use crate::checkpoint::write_durably;

/// The leaves file in a ledger's data directory.
pub const ENTRIES_FILE: &str = "entries.log";
/// The latest signed checkpoint in a ledger's data directory.
pub const CHECKPOINT_FILE: &str = "checkpoint";
/// The first bytes of [`ENTRIES_FILE`].
pub const FILE_MAGIC: &[u8] = b"medarena-ledger-log/v1\n";
/// The largest leaf a store accepts.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

const FRAME_OVERHEAD: u64 = 8;

/// Failures of a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is damaged at byte {offset} (leaf {index}): {reason}. Nothing was changed; restore the file from a backup"
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        index: u64,
        reason: String,
    },
    #[error(
        "{path} is not a medarena ledger log (it does not start with `medarena-ledger-log/v1`)"
    )]
    NotALedger { path: PathBuf },
    #[error("leaf {index} is {len} bytes, more than the {MAX_RECORD_BYTES} a store accepts")]
    RecordTooLarge { index: u64, len: usize },
    #[error("{path} is open in another process (a running server?): ask it, or stop it first")]
    InUse { path: PathBuf },
    #[error("leaf {index} does not exist (the log has {len})")]
    OutOfRange { index: u64, len: u64 },
    /// A shared store refused or failed (its own message says which and why).
    #[error("ledger storage: {0}")]
    Shared(String),
    /// This process follows the writer and may not append or sign.
    #[error("this process follows the ledger's writer and cannot append to it")]
    ReadOnly,
}

/// What [`FileStore::open`] repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Bytes of a torn final append that were truncated away (0 after a clean stop).
    pub truncated_bytes: u64,
    /// What was wrong with the first truncated frame.
    pub reason: Option<String>,
}

/// Durable storage of the leaves and the latest checkpoint.
///
/// Implementations must make [`LedgerStore::append`] and
/// [`LedgerStore::save_checkpoint`] durable before returning, keep leaves in append
/// order forever, and on opening recover to a prefix that contains at least every leaf
/// whose append returned. A store shared by several processes (the PostgreSQL one in the
/// arena) has one writer; the others follow it read-only (see [`LedgerStore::writable`]).
pub trait LedgerStore {
    /// The number of leaves (for a follower: those its latest checkpoint covers).
    fn len(&self) -> u64;

    /// Whether this process may append and sign. A follower reads what the writer wrote
    /// ([`crate::Ledger::refresh`]) and never signs.
    fn writable(&self) -> bool {
        true
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The leaves `from..to`, in order.
    fn read_range(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Appends leaves at the end, durably, all or none.
    fn append(&mut self, leaves: &[Vec<u8>]) -> Result<(), StoreError>;

    /// The latest saved checkpoint (signed note text), if any.
    fn load_checkpoint(&self) -> Result<Option<String>, StoreError>;

    /// Replaces the saved checkpoint, durably and atomically.
    fn save_checkpoint(&mut self, note: &str) -> Result<(), StoreError>;
}

/// Any store, chosen at run time (the file, or a shared database).
pub type DynStore = Box<dyn LedgerStore + Send>;

impl LedgerStore for DynStore {
    fn len(&self) -> u64 {
        (**self).len()
    }

    fn writable(&self) -> bool {
        (**self).writable()
    }

    fn read_range(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        (**self).read_range(from, to)
    }

    fn append(&mut self, leaves: &[Vec<u8>]) -> Result<(), StoreError> {
        (**self).append(leaves)
    }

    fn load_checkpoint(&self) -> Result<Option<String>, StoreError> {
        (**self).load_checkpoint()
    }

    fn save_checkpoint(&mut self, note: &str) -> Result<(), StoreError> {
        (**self).save_checkpoint(note)
    }
}

/// Leaves and checkpoint in memory: for tests and for tools that build a log to inspect.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    leaves: Vec<Vec<u8>>,
    checkpoint: Option<String>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

impl LedgerStore for MemoryStore {
    fn len(&self) -> u64 {
        self.leaves.len() as u64
    }

    fn read_range(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let len = self.len();
        if from > to || to > len {
            return Err(StoreError::OutOfRange { index: to, len });
        }
        Ok(self.leaves[from as usize..to as usize].to_vec())
    }

    fn append(&mut self, leaves: &[Vec<u8>]) -> Result<(), StoreError> {
        self.leaves.extend_from_slice(leaves);
        Ok(())
    }

    fn load_checkpoint(&self) -> Result<Option<String>, StoreError> {
        Ok(self.checkpoint.clone())
    }

    fn save_checkpoint(&mut self, note: &str) -> Result<(), StoreError> {
        self.checkpoint = Some(note.to_owned());
        Ok(())
    }
}

/// The embedded store: an append-only file of checksummed frames (see the module docs).
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    /// Byte offset of each frame; the file ends at `end`.
    offsets: Vec<u64>,
    end: u64,
}

fn frame_crc(len_bytes: [u8; 4], leaf: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len_bytes);
    hasher.update(leaf);
    hasher.finalize()
}

enum Scan {
    /// Every frame is whole and valid.
    Clean,
    /// The first frame that is cut short or fails its checksum starts at `offset`.
    Damaged { offset: u64, reason: String },
}

impl FileStore {
    /// Opens (or creates) the store in `dir`, recovering from a torn final append.
    pub fn open(dir: &Path) -> Result<(FileStore, Recovery), StoreError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join(ENTRIES_FILE);
        if !path.exists() {
            write_durably(&path, FILE_MAGIC, false).map_err(io(&path))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        // One writer per log: a second process would see the first one's unfinished
        // append as a torn tail. The lock ends with the process.
        if let Err(error) = file.try_lock() {
            return Err(match error {
                std::fs::TryLockError::WouldBlock => StoreError::InUse { path },
                std::fs::TryLockError::Error(source) => StoreError::Io { path, source },
            });
        }
        let file_len = file.metadata().map_err(io(&path))?.len();
        let mut store = FileStore {
            dir: dir.to_owned(),
            path: path.clone(),
            file,
            offsets: Vec::new(),
            end: 0,
        };
        let scan = store.scan(file_len)?;
        let mut recovery = Recovery::default();
        if let Scan::Damaged { offset, reason } = scan {
            // Leaves covered by the stored checkpoint were synced before it was signed:
            // damage among them is not a crash, it is corruption or tampering.
            let covered = store.checkpoint_size()?;
            let intact = store.offsets.len() as u64;
            if intact < covered {
                return Err(StoreError::Corrupt {
                    path,
                    offset,
                    index: intact,
                    reason: format!(
                        "{reason}, and the signed checkpoint covers {covered} leaves but only {intact} precede the damage"
                    ),
                });
            }
            // Past the checkpoint lies at most the append in flight when the process
            // stopped, never acknowledged: drop it from the first damaged frame on (a
            // power cut can persist its later pages and lose earlier ones).
            store.file.set_len(offset).map_err(io(&path))?;
            store.file.sync_all().map_err(io(&path))?;
            recovery.truncated_bytes = file_len - offset;
            recovery.reason = Some(reason);
        }
        Ok((store, recovery))
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads frames up to the end or the first damaged one, filling `offsets` and `end`.
    fn scan(&mut self, file_len: u64) -> Result<Scan, StoreError> {
        let io = |source| StoreError::Io {
            path: self.path.clone(),
            source,
        };
        let mut reader = BufReader::with_capacity(1 << 20, &self.file);
        let mut magic = vec![0u8; FILE_MAGIC.len()];
        if file_len < FILE_MAGIC.len() as u64
            || reader.read_exact(&mut magic).is_err()
            || magic != FILE_MAGIC
        {
            return Err(StoreError::NotALedger {
                path: self.path.clone(),
            });
        }
        let mut offset = FILE_MAGIC.len() as u64;
        let mut leaf = Vec::new();
        loop {
            self.end = offset;
            let remaining = file_len - offset;
            if remaining == 0 {
                return Ok(Scan::Clean);
            }
            let damaged = |reason: &str| {
                Ok(Scan::Damaged {
                    offset,
                    reason: reason.to_owned(),
                })
            };
            if remaining < FRAME_OVERHEAD {
                return damaged("a frame is cut short");
            }
            let mut len_bytes = [0u8; 4];
            reader.read_exact(&mut len_bytes).map_err(io)?;
            let len = u64::from(u32::from_le_bytes(len_bytes));
            if len as usize > MAX_RECORD_BYTES {
                return damaged(&format!("frame length {len} is impossible"));
            }
            if FRAME_OVERHEAD + len > remaining {
                return damaged("a frame runs past the end of the file");
            }
            leaf.resize(len as usize, 0);
            reader.read_exact(&mut leaf).map_err(io)?;
            let mut crc_bytes = [0u8; 4];
            reader.read_exact(&mut crc_bytes).map_err(io)?;
            if u32::from_le_bytes(crc_bytes) != frame_crc(len_bytes, &leaf) {
                return damaged("checksum mismatch");
            }
            self.offsets.push(offset);
            offset += FRAME_OVERHEAD + len;
        }
    }

    /// The size line of the saved checkpoint, or 0 without one. Only a floor for
    /// recovery; the ledger checks the signature.
    fn checkpoint_size(&self) -> Result<u64, StoreError> {
        let Some(note) = self.load_checkpoint()? else {
            return Ok(0);
        };
        note.lines()
            .nth(1)
            .and_then(|line| line.parse::<u64>().ok())
            .ok_or_else(|| StoreError::Corrupt {
                path: self.dir.join(CHECKPOINT_FILE),
                offset: 0,
                index: 0,
                reason: "the checkpoint has no size line".to_owned(),
            })
    }

    fn read_at(&self, buffer: &mut [u8], offset: u64) -> Result<(), StoreError> {
        #[cfg(unix)]
        let result = self.file.read_exact_at(buffer, offset);
        #[cfg(not(unix))]
        let result = {
            use std::io::{Read as _, Seek as _, SeekFrom};
            let mut file = &self.file;
            file.seek(SeekFrom::Start(offset))
                .and_then(|_| file.read_exact(buffer))
        };
        result.map_err(|source| StoreError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

impl LedgerStore for FileStore {
    fn len(&self) -> u64 {
        self.offsets.len() as u64
    }

    fn read_range(&self, from: u64, to: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let len = self.len();
        if from > to || to > len {
            return Err(StoreError::OutOfRange { index: to, len });
        }
        if from == to {
            return Ok(Vec::new());
        }
        let start = self.offsets[from as usize];
        let stop = self.offsets.get(to as usize).copied().unwrap_or(self.end);
        let mut bytes = vec![0u8; (stop - start) as usize];
        self.read_at(&mut bytes, start)?;
        let mut leaves = Vec::with_capacity((to - from) as usize);
        let mut position = 0usize;
        for index in from..to {
            // Re-check each frame: the file may have been altered since it was opened.
            let frame_offset = start + position as u64;
            let damaged = |reason: &str| StoreError::Corrupt {
                path: self.path.clone(),
                offset: frame_offset,
                index,
                reason: reason.to_owned(),
            };
            let len_bytes: [u8; 4] = bytes
                .get(position..position + 4)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| damaged("frame cut short"))?;
            let len = u32::from_le_bytes(len_bytes) as usize;
            let leaf = bytes
                .get(position + 4..position + 4 + len)
                .ok_or_else(|| damaged("frame length changed"))?;
            let crc_bytes: [u8; 4] = bytes
                .get(position + 4 + len..position + 8 + len)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| damaged("frame cut short"))?;
            if u32::from_le_bytes(crc_bytes) != frame_crc(len_bytes, leaf) {
                return Err(damaged("checksum mismatch"));
            }
            leaves.push(leaf.to_vec());
            position += 8 + len;
        }
        Ok(leaves)
    }

    fn append(&mut self, leaves: &[Vec<u8>]) -> Result<(), StoreError> {
        let mut buffer = Vec::with_capacity(leaves.iter().map(|l| l.len() + 8).sum());
        let mut offsets = Vec::with_capacity(leaves.len());
        for (number, leaf) in leaves.iter().enumerate() {
            if leaf.len() > MAX_RECORD_BYTES {
                return Err(StoreError::RecordTooLarge {
                    index: self.len() + number as u64,
                    len: leaf.len(),
                });
            }
            offsets.push(self.end + buffer.len() as u64);
            let len_bytes = (leaf.len() as u32).to_le_bytes();
            buffer.extend_from_slice(&len_bytes);
            buffer.extend_from_slice(leaf);
            buffer.extend_from_slice(&frame_crc(len_bytes, leaf).to_le_bytes());
        }
        let io = |source| StoreError::Io {
            path: self.path.clone(),
            source,
        };
        #[cfg(unix)]
        let written = self.file.write_all_at(&buffer, self.end);
        #[cfg(not(unix))]
        let written = {
            use std::io::{Seek as _, SeekFrom, Write as _};
            let mut file = &self.file;
            file.seek(SeekFrom::Start(self.end))
                .and_then(|_| file.write_all(&buffer))
        };
        if let Err(error) = written.and_then(|()| self.file.sync_data()) {
            // Leave no partial batch behind a failed append (e.g. a full disk).
            let _ = self.file.set_len(self.end);
            let _ = self.file.sync_data();
            return Err(io(error));
        }
        self.offsets.extend(offsets);
        self.end += buffer.len() as u64;
        Ok(())
    }

    fn load_checkpoint(&self) -> Result<Option<String>, StoreError> {
        let path = self.dir.join(CHECKPOINT_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    fn save_checkpoint(&mut self, note: &str) -> Result<(), StoreError> {
        let path = self.dir.join(CHECKPOINT_FILE);
        write_durably(&path, note.as_bytes(), false)
            .map_err(|source| StoreError::Io { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(count: usize) -> Vec<Vec<u8>> {
        (0..count)
            .map(|i| format!("leaf {i}\n").into_bytes())
            .collect()
    }

    #[test]
    fn appends_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, recovery) = FileStore::open(dir.path()).unwrap();
        assert_eq!(recovery, Recovery::default());
        store.append(&leaves(3)).unwrap();
        store.append(&leaves(2)).unwrap();
        drop(store);
        let (store, recovery) = FileStore::open(dir.path()).unwrap();
        assert_eq!(recovery.truncated_bytes, 0);
        assert_eq!(store.len(), 5);
        assert_eq!(store.read_range(3, 5).unwrap(), leaves(2));
        assert!(store.read_range(4, 6).is_err());
    }

    #[test]
    fn torn_tails_are_truncated_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = FileStore::open(dir.path()).unwrap();
        store.append(&leaves(4)).unwrap();
        drop(store);
        let path = dir.path().join(ENTRIES_FILE);
        let whole = fs::read(&path).unwrap();
        let mut next = whole.clone();
        // A fifth leaf whose append was cut at every possible byte.
        let extra = {
            let leaf = b"torn leaf".to_vec();
            let len = (leaf.len() as u32).to_le_bytes();
            [&len[..], &leaf, &frame_crc(len, &leaf).to_le_bytes()].concat()
        };
        for cut in 1..extra.len() {
            next.truncate(whole.len());
            next.extend_from_slice(&extra[..cut]);
            fs::write(&path, &next).unwrap();
            let (store, recovery) = FileStore::open(dir.path()).unwrap();
            assert_eq!(store.len(), 4, "cut at {cut}");
            assert_eq!(recovery.truncated_bytes, cut as u64);
            assert_eq!(fs::read(&path).unwrap(), whole);
        }
        // A zero-filled tail (size updated before the data reached the disk).
        next.truncate(whole.len());
        next.extend_from_slice(&[0u8; 100]);
        fs::write(&path, &next).unwrap();
        let (store, recovery) = FileStore::open(dir.path()).unwrap();
        assert_eq!((store.len(), recovery.truncated_bytes), (4, 100));
    }

    #[test]
    fn damage_past_the_checkpoint_is_an_unfinished_append() {
        // A power cut can persist the later pages of an append and lose earlier ones:
        // zeros, then data. Past the checkpoint, that is recovered by truncation.
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = FileStore::open(dir.path()).unwrap();
        store.append(&leaves(2)).unwrap();
        store.save_checkpoint("origin\n2\nroot\n\n— sig\n").unwrap();
        store.append(&leaves(3)).unwrap();
        drop(store);
        let path = dir.path().join(ENTRIES_FILE);
        let whole = fs::read(&path).unwrap();
        let third_leaf = FILE_MAGIC.len() + 2 * (8 + leaves(1)[0].len());
        let mut torn = whole.clone();
        torn[third_leaf..third_leaf + 12].fill(0);
        fs::write(&path, &torn).unwrap();
        let (store, recovery) = FileStore::open(dir.path()).unwrap();
        assert_eq!(store.len(), 2);
        assert_eq!(recovery.truncated_bytes, (whole.len() - third_leaf) as u64);
        assert_eq!(recovery.reason.as_deref(), Some("checksum mismatch"));
    }

    #[test]
    fn damage_under_the_checkpoint_refuses_to_open_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = FileStore::open(dir.path()).unwrap();
        store.append(&leaves(4)).unwrap();
        store.save_checkpoint("origin\n4\nroot\n\n— sig\n").unwrap();
        drop(store);
        let path = dir.path().join(ENTRIES_FILE);
        let original = fs::read(&path).unwrap();
        for position in [FILE_MAGIC.len() + 6, original.len() - 2] {
            let mut bytes = original.clone();
            bytes[position] ^= 0x20;
            fs::write(&path, &bytes).unwrap();
            let error = FileStore::open(dir.path()).unwrap_err().to_string();
            assert!(
                error.contains("checksum") && error.contains("covers 4 leaves"),
                "{error}"
            );
            assert_eq!(fs::read(&path).unwrap(), bytes, "nothing truncated");
        }
    }

    #[test]
    fn a_second_writer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_first, _) = FileStore::open(dir.path()).unwrap();
        assert!(matches!(
            FileStore::open(dir.path()),
            Err(StoreError::InUse { .. })
        ));
    }

    #[test]
    fn a_foreign_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(ENTRIES_FILE), b"hello").unwrap();
        assert!(matches!(
            FileStore::open(dir.path()),
            Err(StoreError::NotALedger { .. })
        ));
    }
}
