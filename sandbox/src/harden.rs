//! Operating-system fences around the child, on top of WebAssembly's own isolation (a
//! submission has zero imports, so it cannot make a system call even in principle; these
//! fences limit the damage of a bug in wasmtime or Cranelift).
//!
//! - rlimits, set between fork and exec: address space, CPU seconds, no file writes
//!   (`RLIMIT_FSIZE` 0), no core dumps, few file descriptors;
//! - a fresh network namespace (no interfaces but a down loopback) when the host may
//!   create one (root or `CAP_SYS_ADMIN`); skipped silently otherwise;
//! - a seccomp-bpf allow-list installed by the child after it has read its request and
//!   before it compiles anything: memory management, reads and writes on its inherited
//!   pipes, signals (wasmtime's trap handling), futexes and exit. Everything else —
//!   `open`, `socket`, `execve`, `clone` (new threads or processes), `ptrace`, ... —
//!   fails with `EPERM`.
//!
//! The child also inherits one more descriptor, the tables' memory file (`shared`), opened
//! read-only. Mapping it into guest memory needs only `mmap` and `madvise`, which the
//! memory-management part of the list already allowed for wasmtime, so the list did not
//! change. `mmap` is not filtered by descriptor: the only descriptors the child has are its
//! three pipes and this read-only file, and it cannot open others.

use std::io;

/// Resource limits for the child, applied in `pre_exec` (async-signal-safe: only
/// `setrlimit` and `unshare`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChildRlimits {
    pub address_space_bytes: u64,
    pub cpu_seconds: u64,
    pub open_files: u64,
    pub new_network_namespace: bool,
}

#[cfg(target_os = "linux")]
impl ChildRlimits {
    /// Runs in the forked child before exec.
    pub fn apply(&self) -> io::Result<()> {
        fn set(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> io::Result<()> {
            let limit = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            // SAFETY: plain syscall on a valid struct.
            if unsafe { libc::setrlimit(resource, &limit) } != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }
        set(
            libc::RLIMIT_AS,
            self.address_space_bytes,
            self.address_space_bytes,
        )?;
        set(libc::RLIMIT_CPU, self.cpu_seconds, self.cpu_seconds + 1)?;
        set(libc::RLIMIT_FSIZE, 0, 0)?;
        set(libc::RLIMIT_CORE, 0, 0)?;
        set(libc::RLIMIT_NOFILE, self.open_files, self.open_files)?;
        if self.new_network_namespace {
            // Best effort: without the privilege the child keeps the host's namespace, and
            // seccomp still forbids sockets.
            // SAFETY: plain syscall.
            let _ = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        }
        Ok(())
    }
}

#[cfg(not(target_os = "linux"))]
impl ChildRlimits {
    pub fn apply(&self) -> io::Result<()> {
        Ok(())
    }
}

/// Installs the child's seccomp allow-list on every thread of the process.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub(crate) fn install_seccomp() -> Result<(), String> {
    use std::collections::BTreeMap;

    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

    let arch = if cfg!(target_arch = "x86_64") {
        TargetArch::x86_64
    } else {
        TargetArch::aarch64
    };
    let mut allowed = vec![
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_readv,
        libc::SYS_writev,
        libc::SYS_close,
        libc::SYS_fstat,
        libc::SYS_lseek,
        libc::SYS_mmap,
        libc::SYS_munmap,
        libc::SYS_mprotect,
        libc::SYS_madvise,
        libc::SYS_mremap,
        libc::SYS_brk,
        libc::SYS_futex,
        libc::SYS_sched_yield,
        libc::SYS_sigaltstack,
        libc::SYS_rt_sigaction,
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigreturn,
        libc::SYS_clock_gettime,
        libc::SYS_clock_nanosleep,
        libc::SYS_nanosleep,
        libc::SYS_getrandom,
        libc::SYS_gettid,
        libc::SYS_getpid,
        libc::SYS_tgkill,
        libc::SYS_exit,
        libc::SYS_exit_group,
        libc::SYS_fcntl,
        libc::SYS_membarrier,
        libc::SYS_prctl,
        libc::SYS_sched_getaffinity,
        libc::SYS_statx,
        libc::SYS_newfstatat,
    ];
    #[cfg(target_arch = "x86_64")]
    allowed.extend([libc::SYS_poll, libc::SYS_arch_prctl]);
    allowed.extend([libc::SYS_ppoll, libc::SYS_rseq]);
    let rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> =
        allowed.into_iter().map(|nr| (nr, Vec::new())).collect();
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        arch,
    )
    .map_err(|e| e.to_string())?;
    let program: BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())?;
    seccompiler::apply_filter_all_threads(&program).map_err(|e| e.to_string())
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
pub(crate) fn install_seccomp() -> Result<(), String> {
    Ok(())
}
