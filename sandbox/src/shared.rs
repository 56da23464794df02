//! The tables' way into the child: one memory file (a Linux `memfd`; an unlinked temporary
//! file elsewhere) that the parent fills and the child maps, copy-on-write, straight into
//! guest memory.
//!
//! Streaming the blocks through a pipe cost a copy into the pipe, a copy out of it, and
//! fresh zeroed pages twice (the encoded blocks in the parent, guest memory in the child),
//! after encoding had finished. Now the parent encodes each block piece by piece into a
//! small buffer and `pwrite`s it into the file while the child starts and compiles, and
//! the child places each block in guest memory with one `mmap`: no copy, and the guest's
//! pages are the file's until the guest writes to them (then that page alone is copied,
//! in the child).
//!
//! New pages cost more than writing them (BENCHMARKS.md), so finished runs hand their file
//! back to a small [`FilePool`] and later runs reuse its pages. A reused file is resized to
//! the new run and every byte the child can see is rewritten, so nothing of an earlier run
//! reaches a later one; the child that used it has been killed and reaped before the file
//! goes back to the pool.
//!
//! The child gets the file read-only (reopened through `/proc/self/fd` where available), so
//! it can neither write nor resize it; its private mapping is writable copy-on-write.
//! Every block starts at a multiple of [`BLOCK_ALIGN`], so that it can be mapped on any
//! host page size.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

/// The file descriptor the child finds the file on (the parent `dup2`s it there between
/// fork and exec; everything else the parent has open is close-on-exec).
pub(crate) const CHILD_FD: RawFd = 3;

/// Alignment of every block in the file: the WebAssembly page size, a multiple of every
/// host page size in use (4 KiB, 16 KiB, 64 KiB).
pub(crate) const BLOCK_ALIGN: u64 = 64 << 10;

/// Idle files kept for reuse: enough for a worker running one or two sandboxes at a time.
/// Their pages stay allocated while idle (as large as the largest recent run).
const MAX_IDLE_FILES: usize = 2;

/// Where one block lies in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockRef {
    pub offset: u64,
    pub len: u64,
}

/// Files of finished runs, whose pages the next runs reuse.
#[derive(Debug, Default)]
pub(crate) struct FilePool {
    idle: Mutex<Vec<File>>,
}

impl FilePool {
    fn take(&self) -> io::Result<File> {
        let reused = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        reused.map_or_else(memory_file, Ok)
    }

    fn give_back(&self, file: File) {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < MAX_IDLE_FILES {
            idle.push(file);
        }
    }
}

/// Writes a piece of a block: `(block index, offset in the block, bytes)`.
pub(crate) type PutPiece<'a> = dyn FnMut(usize, usize, &[u8]) -> io::Result<()> + 'a;

/// The parent's side of one run: the file and where each block goes. Dropping it hands
/// the file back to its pool; drop it only once the child is gone.
pub(crate) struct SharedBlocks<'p> {
    pool: &'p FilePool,
    file: Option<File>,
    blocks: Vec<BlockRef>,
    total: u64,
}

impl<'p> SharedBlocks<'p> {
    /// Takes a file from the pool (or makes one) sized for blocks of these lengths, each at
    /// an aligned offset.
    pub fn create(pool: &'p FilePool, lens: &[usize]) -> io::Result<Self> {
        let mut blocks = Vec::with_capacity(lens.len());
        let mut total = 0u64;
        for &len in lens {
            let len = len as u64;
            blocks.push(BlockRef { offset: total, len });
            total = (total + len).next_multiple_of(BLOCK_ALIGN);
        }
        let file = pool.take()?;
        // Shrinking frees the pages past the end; growing adds holes (read as zeros).
        file.set_len(total)?;
        Ok(SharedBlocks {
            pool,
            file: Some(file),
            blocks,
            total,
        })
    }

    pub fn blocks(&self) -> &[BlockRef] {
        &self.blocks
    }

    fn file(&self) -> &File {
        self.file.as_ref().expect("the file is only taken on drop")
    }

    /// A read-only descriptor of the file for the child: it can map the file privately but
    /// not write or resize it. Where `/proc` is missing, the read-write descriptor (then a
    /// compromised child could only spoil its own run: the next run rewrites every byte).
    pub fn child_file(&self) -> io::Result<File> {
        let path = format!("/proc/self/fd/{}", self.file().as_raw_fd());
        File::open(path).or_else(|_| self.file().try_clone())
    }

    /// Lets `fill` write every block, piece by piece, with `pwrite`: the parent never maps
    /// the file, so it pays neither for page tables nor for zeroing pages it then
    /// overwrites (both cost more than the copy on this platform's VMs; BENCHMARKS.md).
    /// Every byte of every block must be written (a reused file holds an earlier run's
    /// bytes); the gaps between blocks are zeroed here.
    pub fn fill(&self, fill: impl FnOnce(&mut PutPiece<'_>) -> io::Result<()>) -> io::Result<()> {
        let file = self.file();
        let zeros = vec![0u8; BLOCK_ALIGN as usize];
        for (index, block) in self.blocks.iter().enumerate() {
            let end = block.offset + block.len;
            let next = self.blocks.get(index + 1).map_or(self.total, |b| b.offset);
            file.write_all_at(&zeros[..(next - end) as usize], end)?;
        }
        fill(&mut |index, at, bytes| {
            let block = self
                .blocks
                .get(index)
                .copied()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no such block"))?;
            if at as u64 + bytes.len() as u64 > block.len {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "piece past the end of its block",
                ));
            }
            file.write_all_at(bytes, block.offset + at as u64)
        })
    }
}

impl Drop for SharedBlocks<'_> {
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            self.pool.give_back(file);
        }
    }
}

#[cfg(target_os = "linux")]
fn memory_file() -> io::Result<File> {
    let memfd = memfd::MemfdOptions::new()
        .close_on_exec(true)
        .create("medarena-tables")
        .map_err(io::Error::other)?;
    Ok(memfd.into_file())
}

#[cfg(not(target_os = "linux"))]
fn memory_file() -> io::Result<File> {
    // Unlinked at creation, close-on-exec like every file Rust opens.
    tempfile::tempfile()
}

/// Makes `fd` the child's [`CHILD_FD`]. Runs between fork and exec, so only
/// async-signal-safe calls.
pub(crate) fn install_in_child(fd: RawFd) -> io::Result<()> {
    if fd < CHILD_FD {
        // Standard I/O was just set up there (Rust keeps 0-2 open, so this cannot happen).
        return Err(io::Error::other(
            "the tables' file is on a standard descriptor",
        ));
    }
    // SAFETY: plain system calls on descriptors of this process.
    let result = unsafe {
        if fd == CHILD_FD {
            // `dup2` onto itself would keep close-on-exec.
            libc::fcntl(fd, libc::F_SETFD, 0)
        } else {
            libc::dup2(fd, CHILD_FD)
        }
    };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The child's side: maps `block` of the file at `guest_at`, a page-aligned address inside
/// guest memory. The mapping is private: guest writes stay in the child.
///
/// # Safety
/// `[guest_at, guest_at + round_up(block.len, page))` must lie inside accessible guest
/// memory that the guest's allocator handed to the host, with no Rust reference into it
/// alive.
pub(crate) unsafe fn map_into_guest(guest_at: *mut u8, block: BlockRef) -> io::Result<()> {
    let len = (block.len as usize).next_multiple_of(page_size());
    let offset = libc::off_t::try_from(block.offset).map_err(io::Error::other)?;
    // SAFETY: the caller guarantees the range is guest memory that wasmtime mapped
    // read-write; MAP_FIXED replaces those pages with the file's, privately (a guest write
    // copies just that page, in the child).
    unsafe {
        let mapped = libc::mmap(
            guest_at.cast(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_FIXED,
            CHILD_FD,
            offset,
        );
        if mapped == libc::MAP_FAILED || mapped != guest_at.cast() {
            return Err(io::Error::last_os_error());
        }
        populate_readable(guest_at, len);
    }
    Ok(())
}

/// Maps the file's pages into the page tables now, read-only, in one call (the guest then
/// reads without faults, and the cost shows as data in rather than as guest compute).
/// Best effort: before Linux 5.14 the guest's first reads fault the pages in instead.
#[cfg(target_os = "linux")]
unsafe fn populate_readable(at: *mut u8, len: usize) {
    // SAFETY: advice on a range the caller just mapped. Unlike `MAP_POPULATE` on a
    // writable private mapping, `MADV_POPULATE_READ` (Linux 5.14) copies no page.
    let _ = unsafe { libc::madvise(at.cast(), len, libc::MADV_POPULATE_READ) };
}

#[cfg(not(target_os = "linux"))]
unsafe fn populate_readable(_at: *mut u8, _len: usize) {}

/// The child's check of the parent's block list against the file it was given, so that a
/// mapping can never reach past the end of the file.
pub(crate) fn check_blocks(blocks: &[BlockRef]) -> io::Result<()> {
    // SAFETY: fstat on a descriptor number; a missing descriptor is an error, not UB.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(CHILD_FD, &mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let size = stat.st_size as u64;
    for block in blocks {
        if !block.offset.is_multiple_of(page_size() as u64)
            || block
                .offset
                .checked_add(block.len)
                .is_none_or(|end| end > size)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("block {block:?} does not fit the tables' file of {size} bytes"),
            ));
        }
    }
    Ok(())
}

pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096).max(4096)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn access_mode(file: &File) -> libc::c_int {
        // SAFETY: fcntl on an open descriptor.
        unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) & libc::O_ACCMODE }
    }

    fn fill_each(shared: &SharedBlocks<'_>, byte: impl Fn(usize) -> u8) {
        shared
            .fill(|put| {
                for (index, block) in shared.blocks().to_vec().into_iter().enumerate() {
                    put(index, 0, &vec![byte(index); block.len as usize])?;
                }
                Ok(())
            })
            .unwrap();
    }

    fn contents(shared: &SharedBlocks<'_>) -> Vec<u8> {
        let mut bytes = Vec::new();
        shared
            .child_file()
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        bytes
    }

    #[test]
    fn blocks_are_aligned_filled_and_reach_the_child_read_only() {
        let pool = FilePool::default();
        let shared = SharedBlocks::create(&pool, &[10, 70_000, 1]).unwrap();
        let offsets: Vec<u64> = shared.blocks().iter().map(|b| b.offset).collect();
        assert_eq!(offsets, [0, BLOCK_ALIGN, 3 * BLOCK_ALIGN]);
        fill_each(&shared, |i| i as u8 + 1);
        let child = shared.child_file().unwrap();
        if cfg!(target_os = "linux") {
            assert_eq!(access_mode(&child), libc::O_RDONLY);
        }
        let bytes = contents(&shared);
        assert_eq!(bytes.len() as u64, 4 * BLOCK_ALIGN);
        assert!(bytes[..10].iter().all(|&b| b == 1));
        assert!(bytes[10..BLOCK_ALIGN as usize].iter().all(|&b| b == 0));
        assert_eq!(bytes[3 * BLOCK_ALIGN as usize], 3);
        // A piece past its block is refused, not written into the next one.
        let refused = shared.fill(|put| put(0, 5, &[9; 6]));
        assert!(refused.is_err());
    }

    #[test]
    fn a_reused_file_holds_nothing_of_the_earlier_run() {
        let pool = FilePool::default();
        let first = SharedBlocks::create(&pool, &[200_000, 100]).unwrap();
        fill_each(&first, |_| 0xEE);
        drop(first);
        // Smaller: the file shrinks; the gap after the block is zeroed.
        let second = SharedBlocks::create(&pool, &[5]).unwrap();
        fill_each(&second, |_| 7);
        let bytes = contents(&second);
        assert_eq!(bytes.len() as u64, BLOCK_ALIGN);
        assert_eq!(&bytes[..5], &[7; 5]);
        assert!(bytes[5..].iter().all(|&b| b == 0));
        drop(second);
        // Larger again: the earlier bytes are gone.
        let third = SharedBlocks::create(&pool, &[3, 150_000]).unwrap();
        fill_each(&third, |i| i as u8 + 1);
        let bytes = contents(&third);
        assert_eq!(&bytes[..3], &[1; 3]);
        assert!(bytes[3..BLOCK_ALIGN as usize].iter().all(|&b| b == 0));
        let second_block = &bytes[BLOCK_ALIGN as usize..];
        assert!(second_block[..150_000].iter().all(|&b| b == 2));
        assert!(second_block[150_000..].iter().all(|&b| b == 0));
    }
}
