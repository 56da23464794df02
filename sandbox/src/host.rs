//! The parent side: pre-check, cache lookup, planning the tables, spawning the child and
//! writing the tables into its memory file meanwhile, enforcing the compile limit and the
//! deadline by killing the child, and validating what comes back.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, BufReader, BufWriter, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;

use crate::abi::{self, EncodeError, Labels, Task};
use crate::cache::ArtifactCache;
use crate::child::{JobHeader, ModuleSource, Request};
use crate::harden::ChildRlimits;
use crate::precheck::{ModuleInfo, precheck};
use crate::shared::{self, FilePool, SharedBlocks};
use crate::status::{Phase, RunFailure, Status};
use crate::wire::{self, WireReader, WireWriter};
use crate::{Interruption, Limits};

/// How to start the child: a program and its arguments. Tests use the crate's
/// `medarena-sandbox-child` binary; the `medarena` binary re-executes itself with its
/// hidden `sandbox-child` subcommand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

impl ChildCommand {
    pub fn new(program: impl Into<PathBuf>) -> Self {
        ChildCommand {
            program: program.into(),
            args: Vec::new(),
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// The running executable with one subcommand, e.g. `medarena sandbox-child`.
    pub fn current_exe(subcommand: &str) -> io::Result<Self> {
        Ok(ChildCommand::new(std::env::current_exe()?).arg(subcommand))
    }
}

/// Operating-system fences around the child (see the `harden` module docs). All on by
/// default; tests and benchmarks may turn one off to measure its cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hardening {
    pub rlimits: bool,
    pub seccomp: bool,
    /// Best effort: needs root or `CAP_SYS_ADMIN`, silently skipped otherwise.
    pub network_namespace: bool,
}

impl Default for Hardening {
    fn default() -> Self {
        Hardening {
            rlimits: true,
            seccomp: true,
            network_namespace: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub child: ChildCommand,
    /// Compiled artifacts, authenticated by the cache's key; `None` compiles every time.
    pub cache: Option<ArtifactCache>,
    pub hardening: Hardening,
    /// Canonicalise NaNs where a submission can observe them, so that results are
    /// bit-identical across CPU architectures and wasmtime versions too (on by default;
    /// see [`crate::nan`]).
    pub canonicalize_nans: bool,
}

impl SandboxConfig {
    pub fn new(child: ChildCommand) -> Self {
        SandboxConfig {
            child,
            cache: None,
            hardening: Hardening::default(),
            canonicalize_nans: true,
        }
    }
}

/// One training-and-prediction run. Only the *training* labels are here: test labels and
/// scoring stay with the caller.
#[derive(Debug, Clone, Copy)]
pub struct FitPredictJob<'a> {
    pub train_features: &'a RecordBatch,
    pub train_labels: &'a Labels,
    pub test_features: &'a RecordBatch,
    /// The only randomness the guest gets; record it with the run.
    pub seed: u64,
    pub limits: &'a Limits,
    /// True only for dummy data: detailed failure messages and the guest's debug output.
    pub debug: bool,
    /// The times at which the competition scores predicted survival curves (survival labels
    /// only; finite, greater than 0, strictly increasing; see [`abi::validate_grid`]).
    /// `Some` asks the module for S(t | row) at every grid time (ABI version 2, so a
    /// version-1 module is refused); `None` asks for one risk score per row, as in
    /// version 1. Borrowed like the tables: the grid belongs to the competition.
    pub survival_grid: Option<&'a [f64]>,
}

/// A sample-and-aggregate analysis: the same code on each disjoint block, each in a fresh
/// instance (clamping, averaging and noise are the scorer's job).
#[derive(Debug, Clone, Copy)]
pub struct AnalyzeJob<'a> {
    pub blocks: &'a [RecordBatch],
    /// Length of the vector each block must return.
    pub output_len: usize,
    /// Block `i` gets `seed + i`.
    pub seed: u64,
    pub limits: &'a Limits,
    pub debug: bool,
}

/// Where the time went. Show these only coarsened on real data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timings {
    pub precheck: Duration,
    /// Arrow to ABI blocks, in the parent.
    pub encode: Duration,
    /// Compilation in the child; `None` when the artifact came from the cache.
    pub compile: Option<Duration>,
    /// From spawning the child to its module being ready (compiled or loaded).
    pub startup: Duration,
    /// Copying blocks into guest memory, summed over calls.
    pub data_in: Duration,
    pub fit: Duration,
    pub predict: Duration,
    /// Per block, for analyses.
    pub analyze: Vec<Duration>,
    pub total: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunOutput {
    /// `test rows × outputs per row`, row-major, validated for the task:
    ///
    /// - binary, regression, survival without a grid: one value per row (probability of
    ///   class 1, the value, a risk score where higher means an earlier event);
    /// - multiclass: one probability per class per row, in the order of the classes;
    /// - survival with [`FitPredictJob::survival_grid`]: one survival curve per row,
    ///   `predictions[i * grid.len() + j]` = S(grid\[j\] | test row i), in [0, 1] and
    ///   non-increasing along the row (up to [`abi::CURVE_TOLERANCE`]).
    pub predictions: Vec<f64>,
    pub task: Task,
    pub module: ModuleInfo,
    pub cache_hit: bool,
    pub timings: Timings,
    /// The guest's debug output per phase (dummy-data runs only; empty otherwise).
    pub debug_log: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzeOutput {
    /// One vector of `output_len` finite values per block, in block order.
    pub blocks: Vec<Vec<f64>>,
    pub module: ModuleInfo,
    pub cache_hit: bool,
    pub timings: Timings,
    pub debug_log: String,
}

/// The sandbox host. Cheap to share: every run spawns its own child. It keeps the tables'
/// memory files of its last two runs for later runs to reuse (allocating fresh pages costs
/// more than writing the tables), so idle it holds up to twice its largest recent run in
/// shared memory.
#[derive(Debug)]
pub struct Sandbox {
    config: SandboxConfig,
    /// Engine compatibility hashes per kind of instrumentation (fuel and epoch change code).
    engine_hashes: Mutex<HashMap<u8, String>>,
    /// The tables' files of finished runs, reused by later ones (see `shared`).
    files: FilePool,
}

/// Frames from the child, as the reader thread passes them on.
enum Frame {
    Ready {
        compile: Duration,
        artifact: Vec<u8>,
    },
    Phase {
        phase: Phase,
        input: Duration,
        run: Duration,
        debug: Vec<u8>,
        values: Vec<u8>,
    },
    Failed {
        status: Status,
        phase: Phase,
        detail: String,
        debug: Vec<u8>,
    },
    Started(Phase),
    Closed(Option<String>),
    /// From the parent's writer: every block is in the tables' file, after this long.
    DataReady {
        fill: Duration,
    },
    /// From the parent's writer: the tables' file could not be written.
    HostError(String),
}

/// The tables of one run, planned: their sizes are known (so the tables' file can be made
/// before the child starts), and `fill` writes them into the file while the child starts
/// and compiles.
struct Tables<'a> {
    lens: Vec<usize>,
    fill: Box<FillBlocks<'a>>,
}

/// Writes every byte of every block through the piece writer it is given.
type FillBlocks<'a> = dyn FnOnce(&mut shared::PutPiece<'_>) -> io::Result<()> + Send + 'a;

/// What the sandbox children reaped on one thread used: CPU time (user and system) and the
/// largest resident set. A run's children are spawned and reaped on the thread that calls
/// the host (every host method is synchronous), so a caller measures a run by taking the
/// usage before and after it ([`take_child_usage`]); concurrent runs on other threads do
/// not mix in, as they would with `getrusage(RUSAGE_CHILDREN)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChildUsage {
    pub cpu: Duration,
    pub max_rss_bytes: u64,
    pub children: u32,
}

thread_local! {
    static CHILD_USAGE: std::cell::Cell<ChildUsage> = const {
        std::cell::Cell::new(ChildUsage { cpu: Duration::ZERO, max_rss_bytes: 0, children: 0 })
    };
}

impl ChildUsage {
    /// Adds `other`'s children: CPU times add up, the peak is the larger one.
    pub fn add(&mut self, other: ChildUsage) {
        self.cpu += other.cpu;
        self.max_rss_bytes = self.max_rss_bytes.max(other.max_rss_bytes);
        self.children += other.children;
    }
}

/// The usage of the children reaped on this thread since the last call, and resets it.
pub fn take_child_usage() -> ChildUsage {
    CHILD_USAGE.with(|usage| usage.take())
}

/// Reaps `child` with `wait4`, which also returns its resource usage, added to this thread's
/// [`ChildUsage`]. Replaces `Child::wait`, which discards the usage; the child must not be
/// waited for (or killed) through `Child` afterwards, its pid being free for reuse.
fn wait_measured(child: &mut Child) -> io::Result<std::process::ExitStatus> {
    use std::os::unix::process::ExitStatusExt;
    let pid = libc::pid_t::try_from(child.id())
        .map_err(|_| io::Error::other("a child pid out of range"))?;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, not reaped yet (nothing else waits for it), and the
        // two pointers are to live locals of the right types.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut rusage) };
        if reaped == pid {
            break;
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    // Linux reports ru_maxrss in KiB.
    let rss = u64::try_from(rusage.ru_maxrss)
        .unwrap_or(0)
        .saturating_mul(1024);
    CHILD_USAGE.with(|usage| {
        let mut total = usage.get();
        total.add(ChildUsage {
            cpu: time(rusage.ru_utime) + time(rusage.ru_stime),
            max_rss_bytes: rss,
            children: 1,
        });
        usage.set(total);
    });
    Ok(std::process::ExitStatus::from_raw(status))
}

/// What a successful child run produced.
struct Transcript {
    cache_hit: bool,
    compile: Option<Duration>,
    /// Writing the blocks into the tables' file (the part of encoding after planning).
    fill: Duration,
    startup: Duration,
    phases: Vec<(Phase, Duration, Duration, Vec<f64>)>,
    debug_log: String,
}

fn interruption_kind(interruption: Interruption) -> u8 {
    match interruption {
        Interruption::DeadlineKill => 0,
        Interruption::Epoch => 1,
        Interruption::Fuel(_) => 2,
    }
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Self {
        Sandbox {
            config,
            engine_hashes: Mutex::new(HashMap::new()),
            files: FilePool::default(),
        }
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// Trains on the training table and predicts the test table, in one child process.
    pub fn fit_predict(
        &self,
        module: &[u8],
        job: &FitPredictJob<'_>,
    ) -> Result<RunOutput, RunFailure> {
        let started = Instant::now();
        let info = precheck(module, job.limits).map_err(|refusal| refused(&refusal.to_string()))?;
        if !info.has_fit_predict {
            return Err(refused(
                "module does not export medarena_fit and medarena_predict",
            ));
        }
        let precheck_time = started.elapsed();
        let task = job.train_labels.task();
        if let Some(grid) = job.survival_grid {
            abi::validate_grid(task, grid)
                .map_err(|error| internal(format!("invalid survival grid: {error}")))?;
        }
        // Values per test row: a curve over the grid, or what the task itself needs.
        let per_row = job
            .survival_grid
            .map_or(task.outputs_per_row(), <[f64]>::len);
        let encode_started = Instant::now();
        let n_train = job.train_features.num_rows();
        let n_test = job.test_features.num_rows();
        let planned = (|| {
            if job.train_labels.len() != n_train {
                return Err(EncodeError::RowCount {
                    what: "training labels",
                    expected: n_train,
                    found: job.train_labels.len(),
                });
            }
            let mut plans = abi::plan_tables(&[job.train_features, job.test_features])?;
            let (Some(test), Some(train)) = (plans.pop(), plans.pop()) else {
                return Err(EncodeError::Invalid("two tables planned, fewer found"));
            };
            let n_outputs = n_test
                .checked_mul(per_row)
                .and_then(|n| u32::try_from(n).ok())
                .ok_or(EncodeError::Invalid("too many predictions for one run"))?;
            Ok((train, job.train_labels.encode()?, test, n_outputs))
        })();
        let (train, labels, test, n_outputs) = planned.map_err(host_input_error)?;
        let tables = Tables {
            lens: vec![train.len(), labels.len(), test.len()],
            fill: Box::new(move |put: &mut shared::PutPiece<'_>| {
                let mut scratch = Vec::new();
                train.emit(&mut scratch, &mut |at, bytes| put(0, at, bytes))?;
                put(1, 0, &labels)?;
                test.emit(&mut scratch, &mut |at, bytes| put(2, at, bytes))
            }),
        };
        let planning = encode_started.elapsed();
        let header = JobHeader::FitPredict {
            task_code: task.code(),
            n_classes: task.n_classes(),
            seed: job.seed,
            n_outputs,
            survival_grid: job.survival_grid.map(<[f64]>::to_vec).unwrap_or_default(),
        };
        let transcript = self.execute(
            module,
            &info,
            job.limits,
            job.debug,
            header,
            tables,
            2,
            n_outputs as usize,
        )?;
        let encode = planning + transcript.fill;
        let (_, fit_input, fit, _) = &transcript.phases[0];
        let (_, predict_input, predict, predictions) = &transcript.phases[1];
        let validated = match job.survival_grid {
            Some(grid) => abi::validate_survival_curves(n_test, grid, predictions),
            None => abi::validate_predictions(task, n_test, predictions),
        };
        validated.map_err(|error| {
            failure(
                Status::BadOutput,
                Phase::Predict,
                job.debug,
                error.to_string(),
                String::new(),
            )
        })?;
        Ok(RunOutput {
            predictions: predictions.clone(),
            task,
            module: info,
            cache_hit: transcript.cache_hit,
            timings: Timings {
                precheck: precheck_time,
                encode,
                compile: transcript.compile,
                startup: transcript.startup,
                data_in: *fit_input + *predict_input,
                fit: *fit,
                predict: *predict,
                analyze: Vec::new(),
                total: started.elapsed(),
            },
            debug_log: transcript.debug_log,
        })
    }

    /// Runs `medarena_analyze` on each block in a fresh instance and returns the per-block
    /// vectors, validated (exact length, finite) but not clamped.
    pub fn analyze_blocks(
        &self,
        module: &[u8],
        job: &AnalyzeJob<'_>,
    ) -> Result<AnalyzeOutput, RunFailure> {
        let started = Instant::now();
        let info = precheck(module, job.limits).map_err(|refusal| refused(&refusal.to_string()))?;
        if !info.has_analyze {
            return Err(refused("module does not export medarena_analyze"));
        }
        let precheck_time = started.elapsed();
        let encode_started = Instant::now();
        let batches: Vec<&RecordBatch> = job.blocks.iter().collect();
        let plans = abi::plan_tables(&batches).map_err(host_input_error)?;
        let n_outputs = u32::try_from(job.output_len)
            .map_err(|_| host_input_error(EncodeError::Invalid("output too long")))?;
        let n_blocks = u32::try_from(plans.len())
            .map_err(|_| host_input_error(EncodeError::Invalid("too many blocks")))?;
        let count = plans.len();
        let tables = Tables {
            lens: plans.iter().map(|plan| plan.len()).collect(),
            fill: Box::new(move |put: &mut shared::PutPiece<'_>| {
                let mut scratch = Vec::new();
                for (index, plan) in plans.iter().enumerate() {
                    plan.emit(&mut scratch, &mut |at, bytes| put(index, at, bytes))?;
                }
                Ok(())
            }),
        };
        let planning = encode_started.elapsed();
        let header = JobHeader::Analyze {
            seed: job.seed,
            n_outputs,
            n_blocks,
        };
        let transcript = self.execute(
            module,
            &info,
            job.limits,
            job.debug,
            header,
            tables,
            count,
            job.output_len,
        )?;
        let encode = planning + transcript.fill;
        let mut outputs = Vec::with_capacity(count);
        let mut timings = Timings {
            precheck: precheck_time,
            encode,
            ..Timings::default()
        };
        for (_, input, run, values) in transcript.phases {
            abi::validate_analysis(job.output_len, &values).map_err(|error| {
                failure(
                    Status::BadOutput,
                    Phase::Analyze,
                    job.debug,
                    error.to_string(),
                    String::new(),
                )
            })?;
            timings.data_in += input;
            timings.analyze.push(run);
            outputs.push(values);
        }
        timings.compile = transcript.compile;
        timings.startup = transcript.startup;
        timings.total = started.elapsed();
        Ok(AnalyzeOutput {
            blocks: outputs,
            module: info,
            cache_hit: transcript.cache_hit,
            timings,
            debug_log: transcript.debug_log,
        })
    }

    fn engine_hash(&self, limits: &Limits) -> Result<String, RunFailure> {
        let kind = interruption_kind(limits.interruption);
        let mut hashes = self
            .engine_hashes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(hash) = hashes.get(&kind) {
            return Ok(hash.clone());
        }
        let engine = crate::engine::engine(limits.interruption, limits.max_wasm_stack)
            .map_err(|e| internal(format!("cannot configure the engine: {e}")))?;
        let mut hash = crate::engine::compatibility_hash(&engine);
        // The NaN rewrite changes the compiled code without changing the engine.
        if self.config.canonicalize_nans {
            hash.push_str(&format!("-nan{}", crate::nan::REWRITE_VERSION));
        }
        hashes.insert(kind, hash.clone());
        Ok(hash)
    }

    /// Starts the child with the tables' file as its descriptor [`shared::CHILD_FD`].
    fn spawn(&self, limits: &Limits, tables_fd: RawFd) -> Result<Child, RunFailure> {
        let mut command = Command::new(&self.config.child.program);
        command
            .args(&self.config.child.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_clear();
        let hardening = self.config.hardening;
        let mut rlimits = None;
        if hardening.rlimits || hardening.network_namespace {
            let total = limits.compile_timeout + limits.deadline;
            rlimits = Some(ChildRlimits {
                // The 4 GiB + guard reservation of a 32-bit linear memory, the memory
                // itself when it could exceed it, and room for the runtime and compiler.
                address_space_bytes: if hardening.rlimits {
                    (8 << 30) + limits.max_memory_bytes
                } else {
                    u64::MAX
                },
                cpu_seconds: if hardening.rlimits {
                    total.as_secs() + 2
                } else {
                    u64::MAX - 1
                },
                open_files: if hardening.rlimits { 64 } else { 4096 },
                new_network_namespace: hardening.network_namespace,
            });
        }
        // SAFETY: `install_in_child` and `apply` only make async-signal-safe system calls.
        unsafe {
            command.pre_exec(move || {
                shared::install_in_child(tables_fd)?;
                rlimits.as_ref().map_or(Ok(()), ChildRlimits::apply)
            });
        }
        command.spawn().map_err(|e| {
            internal(format!(
                "cannot start the sandbox child {:?}: {e}",
                self.config.child.program
            ))
        })
    }

    /// Runs one request in a fresh child and collects `phases` phase frames. The tables are
    /// written into their file while the child starts and compiles.
    #[allow(clippy::too_many_arguments)]
    fn execute(
        &self,
        module: &[u8],
        info: &ModuleInfo,
        limits: &Limits,
        debug: bool,
        job: JobHeader,
        tables: Tables<'_>,
        phases: usize,
        values_per_phase: usize,
    ) -> Result<Transcript, RunFailure> {
        let engine_hash = self.engine_hash(limits)?;
        let artifact = self
            .config
            .cache
            .as_ref()
            .and_then(|cache| cache.load(&info.sha256, &engine_hash));
        let cache_hit = artifact.is_some();
        let cannot = |e: io::Error| internal(format!("cannot create the tables' file: {e}"));
        // Dropped (and handed back to the pool) only at the end, once the child is gone.
        let shared = SharedBlocks::create(&self.files, &tables.lens).map_err(cannot)?;
        let child_file = shared.child_file().map_err(cannot)?;
        let request = Request {
            debug,
            seccomp: self.config.hardening.seccomp,
            canonicalize_nans: self.config.canonicalize_nans,
            max_memory_bytes: limits.max_memory_bytes,
            max_table_elements: limits.max_table_elements,
            max_instances: limits.max_instances as u32,
            max_memories: limits.max_memories as u32,
            max_tables: limits.max_tables as u32,
            max_wasm_stack: limits.max_wasm_stack as u64,
            max_debug_bytes: limits.max_debug_bytes.min(u32::MAX as usize) as u32,
            interruption: limits.interruption,
            // The guest traps well before the parent's kill, so that the interruption is
            // observed from inside when epochs are on.
            epoch_deadline: limits.deadline.mul_f64(0.8),
            job,
            blocks: shared.blocks().to_vec(),
        };

        let spawned = Instant::now();
        let mut child = self.spawn(limits, child_file.as_raw_fd())?;
        drop(child_file);
        let (Some(stdin), Some(stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = wait_measured(&mut child);
            return Err(internal("the sandbox child has no pipes".to_string()));
        };
        enlarge_pipe(&stdin);
        let (frames_tx, frames) = mpsc::channel();
        let writer_frames = frames_tx.clone();
        let max_values = values_per_phase as u64 * 8;
        let max_debug = limits.max_debug_bytes as u64;
        let reader = thread::spawn(move || read_frames(stdout, &frames_tx, max_values, max_debug));
        let stderr_reader = thread::spawn(move || {
            let mut text = String::new();
            let _ = (&mut stderr).take(8 << 10).read_to_string(&mut text);
            text
        });

        let (outcome, exit) = thread::scope(|scope| {
            // Writer: the request and the module (so that the child starts compiling), then
            // the blocks into the tables' file, then the data-ready mark. A dead child
            // surfaces through the frames, not here.
            let shared = &shared;
            let source = match &artifact {
                Some(artifact) => ModuleSource::Artifact(artifact),
                None => ModuleSource::Wasm(module),
            };
            scope.spawn(move || {
                let mut out = WireWriter(BufWriter::with_capacity(1 << 16, stdin));
                if request
                    .write(&mut out, &source)
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    return;
                }
                let started = Instant::now();
                if let Err(error) = shared.fill(tables.fill) {
                    let message = format!("cannot write the tables for the sandbox child: {error}");
                    let _ = writer_frames.send(Frame::HostError(message));
                    return;
                }
                // Queued before the mark is sent, so that it precedes every frame the child
                // sends after reading the mark.
                let _ = writer_frames.send(Frame::DataReady {
                    fill: started.elapsed(),
                });
                let _ = out.u8(wire::DATA_READY).and_then(|()| out.flush());
            });
            let outcome = self.collect(
                &frames,
                &mut child,
                limits,
                debug,
                info,
                &engine_hash,
                cache_hit,
                spawned,
                phases,
            );
            // The child has answered, failed or missed its deadline: in every case it is
            // done. Killing it also unblocks a writer stuck on a full pipe.
            let _ = child.kill();
            (outcome, wait_measured(&mut child))
        });
        let _ = reader.join();
        let stderr_text = stderr_reader.join().unwrap_or_default();
        match outcome {
            Ok(transcript) => Ok(transcript),
            Err(Collected::Failure(failure)) => Err(failure),
            Err(Collected::Closed {
                phase,
                compiling,
                reason,
            }) => {
                let signal = exit.ok().and_then(|status| status.signal());
                let status = match signal {
                    Some(libc::SIGXCPU) => Status::Deadline,
                    _ if compiling => Status::CompileLimit,
                    _ => Status::Internal,
                };
                let detail = format!(
                    "the sandbox child ended unexpectedly (signal {signal:?}{}): {}",
                    reason.map(|r| format!(", {r}")).unwrap_or_default(),
                    stderr_text.trim()
                );
                Err(failure(status, phase, debug, detail, String::new()))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn collect(
        &self,
        frames: &Receiver<Frame>,
        child: &mut Child,
        limits: &Limits,
        debug: bool,
        info: &ModuleInfo,
        engine_hash: &str,
        cache_hit: bool,
        spawned: Instant,
        phases: usize,
    ) -> Result<Transcript, Collected> {
        let mut debug_log = String::new();
        let compile_deadline = spawned + limits.compile_timeout;
        // Two things before the run starts: the child's module (within the compile limit)
        // and the parent's blocks. The run's deadline counts from the later of the two.
        let (mut compile, mut ready, mut fill) = (None, None, None);
        while compile.is_none() || fill.is_none() {
            let frame = if compile.is_none() {
                recv_until(frames, compile_deadline)
            } else {
                Some(frames.recv().unwrap_or(Frame::Closed(None)))
            };
            match frame {
                Some(Frame::Ready {
                    compile: compiled,
                    artifact,
                }) if compile.is_none() => {
                    if !cache_hit && let Some(cache) = &self.config.cache {
                        // A failed cache write only costs a recompilation next time.
                        let _ = cache.store(&info.sha256, engine_hash, &artifact);
                    }
                    compile = Some(compiled);
                    ready = Some(Instant::now());
                }
                Some(Frame::DataReady { fill: filled }) => fill = Some(filled),
                Some(Frame::HostError(message)) => {
                    return Err(Collected::Failure(internal(message)));
                }
                Some(Frame::Failed {
                    status,
                    phase,
                    detail,
                    debug: guest_debug,
                }) => {
                    return Err(Collected::Failure(failure(
                        status,
                        phase,
                        debug,
                        detail,
                        lossy(&guest_debug),
                    )));
                }
                Some(Frame::Ready { .. } | Frame::Phase { .. } | Frame::Started(_)) => {
                    return Err(Collected::Failure(internal(
                        "the sandbox child ran out of order".to_string(),
                    )));
                }
                Some(Frame::Closed(reason)) => {
                    let compiling = compile.is_none();
                    return Err(Collected::Closed {
                        phase: if compiling {
                            Phase::Compile
                        } else {
                            Phase::Instantiate
                        },
                        compiling,
                        reason,
                    });
                }
                None => {
                    let _ = child.kill();
                    let detail = format!(
                        "compilation did not finish within {:?}",
                        limits.compile_timeout
                    );
                    return Err(Collected::Failure(failure(
                        Status::CompileLimit,
                        Phase::Compile,
                        debug,
                        detail,
                        String::new(),
                    )));
                }
            }
        }
        let (Some(compile), Some(ready), Some(fill)) = (compile, ready, fill) else {
            unreachable!("the loop above ends only with all three");
        };
        let deadline = Instant::now() + limits.deadline;
        let mut collected = Vec::with_capacity(phases);
        let mut current = Phase::Instantiate;
        while collected.len() < phases {
            match recv_until(frames, deadline) {
                Some(Frame::Phase {
                    phase,
                    input,
                    run,
                    debug: guest_debug,
                    values,
                }) => {
                    append_debug(&mut debug_log, phase, &guest_debug);
                    current = phase;
                    collected.push((phase, input, run, wire::bytes_to_f64s(&values)));
                }
                Some(Frame::Failed {
                    status,
                    phase,
                    detail,
                    debug: guest_debug,
                }) => {
                    append_debug(&mut debug_log, phase, &guest_debug);
                    return Err(Collected::Failure(failure(
                        status, phase, debug, detail, debug_log,
                    )));
                }
                Some(Frame::Started(phase)) => current = phase,
                Some(Frame::Ready { .. } | Frame::DataReady { .. } | Frame::HostError(_)) => {
                    return Err(Collected::Failure(internal(
                        "the sandbox child ran out of order".to_string(),
                    )));
                }
                Some(Frame::Closed(reason)) => {
                    return Err(Collected::Closed {
                        phase: current,
                        compiling: false,
                        reason,
                    });
                }
                None => {
                    let _ = child.kill();
                    let detail = format!("the run did not finish within {:?}", limits.deadline);
                    return Err(Collected::Failure(failure(
                        Status::Deadline,
                        current,
                        debug,
                        detail,
                        debug_log,
                    )));
                }
            }
        }
        if !debug {
            debug_log.clear();
        }
        Ok(Transcript {
            cache_hit,
            compile: (!cache_hit).then_some(compile),
            fill,
            startup: ready - spawned,
            phases: collected,
            debug_log,
        })
    }
}

enum Collected {
    Failure(RunFailure),
    /// The child's stdout closed before the answer was complete.
    Closed {
        phase: Phase,
        compiling: bool,
        reason: Option<String>,
    },
}

/// A 1 MiB pipe instead of the default 64 KiB: fewer wake-ups while sending a module of
/// several megabytes (best effort; the kernel caps it at `/proc/sys/fs/pipe-max-size`).
fn enlarge_pipe(stdin: &std::process::ChildStdin) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: fcntl on a pipe descriptor we own.
        unsafe { libc::fcntl(stdin.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = stdin;
}

fn recv_until(frames: &Receiver<Frame>, deadline: Instant) -> Option<Frame> {
    match frames.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(frame) => Some(frame),
        Err(RecvTimeoutError::Timeout) => None,
        Err(RecvTimeoutError::Disconnected) => Some(Frame::Closed(None)),
    }
}

fn read_frames(stdout: impl Read, frames: &mpsc::Sender<Frame>, max_values: u64, max_debug: u64) {
    let mut input = WireReader(BufReader::with_capacity(1 << 16, stdout));
    let mut next = || -> io::Result<Frame> {
        Ok(match input.u8()? {
            wire::FRAME_READY => Frame::Ready {
                compile: Duration::from_nanos(input.u64()?),
                artifact: input.bytes(wire::MAX_FRAME_BYTES)?,
            },
            wire::FRAME_PHASE => Frame::Phase {
                phase: Phase::from_code(input.u8()?).ok_or_else(|| invalid("phase"))?,
                input: Duration::from_nanos(input.u64()?),
                run: Duration::from_nanos(input.u64()?),
                debug: input.bytes(max_debug)?,
                values: input.bytes(max_values)?,
            },
            wire::FRAME_FAILED => Frame::Failed {
                status: Status::from_code(input.u8()?).ok_or_else(|| invalid("status"))?,
                phase: Phase::from_code(input.u8()?).ok_or_else(|| invalid("phase"))?,
                detail: String::from_utf8_lossy(&input.bytes(1 << 16)?).into_owned(),
                debug: input.bytes(max_debug)?,
            },
            wire::FRAME_STARTED => {
                Frame::Started(Phase::from_code(input.u8()?).ok_or_else(|| invalid("phase"))?)
            }
            other => return Err(invalid(&format!("frame tag {other}"))),
        })
    };
    loop {
        match next() {
            Ok(frame) => {
                if frames.send(frame).is_err() {
                    return;
                }
            }
            Err(error) => {
                let reason =
                    (error.kind() != io::ErrorKind::UnexpectedEof).then(|| error.to_string());
                let _ = frames.send(Frame::Closed(reason));
                return;
            }
        }
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("bad frame from the sandbox child: {what}"),
    )
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn append_debug(log: &mut String, phase: Phase, bytes: &[u8]) {
    if !bytes.is_empty() {
        log.push_str(&format!("[{phase}]\n{}", lossy(bytes)));
        if !log.ends_with('\n') {
            log.push('\n');
        }
    }
}

/// A failure whose message is detailed only on dummy-data runs.
fn failure(
    status: Status,
    phase: Phase,
    debug: bool,
    detail: String,
    debug_log: String,
) -> RunFailure {
    if debug {
        RunFailure {
            status,
            phase,
            message: detail,
            debug_log,
        }
    } else {
        RunFailure {
            status,
            phase,
            message: status.sealed_message().to_string(),
            debug_log: String::new(),
        }
    }
}

/// Pre-check refusals describe the module only, so their text is always shown.
fn refused(message: &str) -> RunFailure {
    RunFailure {
        status: Status::Refused,
        phase: Phase::Precheck,
        message: message.to_string(),
        debug_log: String::new(),
    }
}

fn internal(message: String) -> RunFailure {
    RunFailure {
        status: Status::Internal,
        phase: Phase::Precheck,
        message,
        debug_log: String::new(),
    }
}

/// The caller's tables or labels could not be encoded: a platform-side problem, reported as
/// internal (the message names columns and rows, never values).
fn host_input_error(error: EncodeError) -> RunFailure {
    internal(format!("cannot encode the input tables: {error}"))
}

/// Splits a table into `k` disjoint, contiguous blocks of near-equal size (shuffle first if
/// row order carries meaning).
pub fn disjoint_blocks(batch: &RecordBatch, k: usize) -> Vec<RecordBatch> {
    let k = k.max(1);
    let n = batch.num_rows();
    (0..k)
        .map(|i| {
            let start = i * n / k;
            let end = (i + 1) * n / k;
            batch.slice(start, end - start)
        })
        .collect()
}
