//! The child process: reads one request on stdin, compiles or loads the module, runs it,
//! and answers with frames on stdout. The parent kills it at the deadline; nothing here
//! needs to be trusted by the parent, which re-validates everything it receives.

use std::io::{self, BufWriter, Read, Write};
use std::time::{Duration, Instant};

use wasmtime::{Engine, Instance, Memory, Module, ResourceLimiter, Store, Trap, TypedFunc};

use crate::Interruption;
use crate::abi::{self, call};
use crate::precheck::{
    EXPORT_ABI_VERSION, EXPORT_ALLOC, EXPORT_ANALYZE, EXPORT_FIT, EXPORT_MEMORY, EXPORT_PREDICT,
};
use crate::shared::{self, BlockRef};
use crate::status::{Phase, Status};
use crate::wire::{self, WireReader, WireWriter};

/// Largest module or artifact the child accepts on its stdin.
const MAX_MODULE_BYTES: u64 = 1 << 30;
/// Largest single table block (the ABI addresses 4 GiB).
const MAX_BLOCK_BYTES: u64 = u32::MAX as u64;
/// Most blocks one request may name (an analysis has one per disjoint block of rows).
const MAX_BLOCKS: u32 = 1 << 20;

/// What the parent asks. The blocks themselves are in the tables' file ([`shared`]); the
/// parent sends [`wire::DATA_READY`] on the same stream once it has written them.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub debug: bool,
    pub seccomp: bool,
    pub canonicalize_nans: bool,
    pub max_memory_bytes: u64,
    pub max_table_elements: u64,
    pub max_instances: u32,
    pub max_memories: u32,
    pub max_tables: u32,
    pub max_wasm_stack: u64,
    pub max_debug_bytes: u32,
    pub interruption: Interruption,
    /// For [`Interruption::Epoch`]: when the guest should trap, slightly before the kill.
    pub epoch_deadline: Duration,
    pub job: JobHeader,
    /// Where the blocks are in the tables' file: train, labels, test for a fit and predict;
    /// one per block for an analysis.
    pub blocks: Vec<BlockRef>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum JobHeader {
    /// Blocks: train, labels, test.
    FitPredict {
        task_code: u32,
        n_classes: u32,
        seed: u64,
        n_outputs: u32,
        /// The survival time grid written beside the predict call record (ABI version 2);
        /// empty for one value (or one per class) per row.
        survival_grid: Vec<f64>,
    },
    /// `n_blocks` blocks, each run in a fresh instance with seed `seed + index`.
    Analyze {
        seed: u64,
        n_outputs: u32,
        n_blocks: u32,
    },
}

/// How the module reaches the child.
pub enum ModuleSource<'a> {
    Wasm(&'a [u8]),
    /// An artifact this host produced and authenticated (see `cache`).
    Artifact(&'a [u8]),
}

impl Request {
    pub fn write<W: Write>(
        &self,
        out: &mut WireWriter<W>,
        module: &ModuleSource<'_>,
    ) -> io::Result<()> {
        out.0.write_all(wire::REQUEST_MAGIC)?;
        out.u8(u8::from(self.debug))?;
        out.u8(u8::from(self.seccomp))?;
        out.u8(u8::from(self.canonicalize_nans))?;
        out.u64(self.max_memory_bytes)?;
        out.u64(self.max_table_elements)?;
        out.u32(self.max_instances)?;
        out.u32(self.max_memories)?;
        out.u32(self.max_tables)?;
        out.u64(self.max_wasm_stack)?;
        out.u32(self.max_debug_bytes)?;
        match self.interruption {
            Interruption::DeadlineKill => out.u8(0)?,
            Interruption::Epoch => out.u8(1)?,
            Interruption::Fuel(fuel) => {
                out.u8(2)?;
                out.u64(fuel)?;
            }
        }
        out.u64(self.epoch_deadline.as_millis() as u64)?;
        match &self.job {
            JobHeader::FitPredict {
                task_code,
                n_classes,
                seed,
                n_outputs,
                survival_grid,
            } => {
                out.u8(1)?;
                out.u32(*task_code)?;
                out.u32(*n_classes)?;
                out.u64(*seed)?;
                out.u32(*n_outputs)?;
                out.u32(u32::try_from(survival_grid.len()).map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidInput, "survival grid too long")
                })?)?;
                for time in survival_grid {
                    out.u64(time.to_bits())?;
                }
            }
            JobHeader::Analyze {
                seed,
                n_outputs,
                n_blocks,
            } => {
                out.u8(2)?;
                out.u64(*seed)?;
                out.u32(*n_outputs)?;
                out.u32(*n_blocks)?;
            }
        }
        out.u32(self.blocks.len() as u32)?;
        for block in &self.blocks {
            out.u64(block.offset)?;
            out.u64(block.len)?;
        }
        match module {
            ModuleSource::Wasm(bytes) => {
                out.u8(0)?;
                out.bytes(bytes)
            }
            ModuleSource::Artifact(bytes) => {
                out.u8(1)?;
                out.bytes(bytes)
            }
        }
    }

    fn read<R: Read>(input: &mut WireReader<R>) -> io::Result<(Self, bool, Vec<u8>)> {
        let mut magic = [0; 8];
        input.inner().read_exact(&mut magic)?;
        if &magic != wire::REQUEST_MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a medarena sandbox request",
            ));
        }
        let bad =
            |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("bad request: {what}"));
        let debug = input.u8()? != 0;
        let seccomp = input.u8()? != 0;
        let canonicalize_nans = input.u8()? != 0;
        let max_memory_bytes = input.u64()?;
        let max_table_elements = input.u64()?;
        let max_instances = input.u32()?;
        let max_memories = input.u32()?;
        let max_tables = input.u32()?;
        let max_wasm_stack = input.u64()?;
        let max_debug_bytes = input.u32()?;
        let interruption = match input.u8()? {
            0 => Interruption::DeadlineKill,
            1 => Interruption::Epoch,
            2 => Interruption::Fuel(input.u64()?),
            _ => return Err(bad("interruption")),
        };
        let epoch_deadline = Duration::from_millis(input.u64()?);
        let job = match input.u8()? {
            1 => {
                let task_code = input.u32()?;
                let n_classes = input.u32()?;
                let seed = input.u64()?;
                let n_outputs = input.u32()?;
                let grid_len = input.u32()? as usize;
                if grid_len > abi::MAX_GRID_LEN {
                    return Err(bad("survival grid too long"));
                }
                let survival_grid = (0..grid_len)
                    .map(|_| Ok(f64::from_bits(input.u64()?)))
                    .collect::<io::Result<Vec<f64>>>()?;
                JobHeader::FitPredict {
                    task_code,
                    n_classes,
                    seed,
                    n_outputs,
                    survival_grid,
                }
            }
            2 => JobHeader::Analyze {
                seed: input.u64()?,
                n_outputs: input.u32()?,
                n_blocks: input.u32()?,
            },
            _ => return Err(bad("job")),
        };
        let n_blocks = input.u32()?;
        if n_blocks > MAX_BLOCKS {
            return Err(bad("too many blocks"));
        }
        let blocks = (0..n_blocks)
            .map(|_| {
                let offset = input.u64()?;
                let len = input.u64()?;
                if len > MAX_BLOCK_BYTES {
                    return Err(bad("block too large"));
                }
                Ok(BlockRef { offset, len })
            })
            .collect::<io::Result<Vec<_>>>()?;
        let expected = match &job {
            JobHeader::FitPredict { .. } => 3,
            JobHeader::Analyze { n_blocks, .. } => *n_blocks,
        };
        if blocks.len() != expected as usize {
            return Err(bad("block count"));
        }
        let is_artifact = match input.u8()? {
            0 => false,
            1 => true,
            _ => return Err(bad("module source")),
        };
        let module = input.bytes(MAX_MODULE_BYTES)?;
        let request = Request {
            debug,
            seccomp,
            canonicalize_nans,
            max_memory_bytes,
            max_table_elements,
            max_instances,
            max_memories,
            max_tables,
            max_wasm_stack: usize::try_from(max_wasm_stack).map_err(|_| bad("stack"))? as u64,
            max_debug_bytes,
            interruption,
            epoch_deadline,
            job,
            blocks,
        };
        Ok((request, is_artifact, module))
    }
}

/// The child's entry point (the `medarena-sandbox-child` binary and `medarena
/// sandbox-child` call it). Returns the process exit code: 0 when a complete answer was
/// sent (success or a guest failure), non-zero when the protocol itself failed.
pub fn run_child() -> i32 {
    let stdin = io::stdin().lock();
    let stdout = io::stdout().lock();
    let mut input = WireReader(stdin);
    let mut output = WireWriter(BufWriter::with_capacity(1 << 16, stdout));
    match serve(&mut input, &mut output) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("medarena sandbox child: {error}");
            3
        }
    }
}

/// A guest failure on its way to the parent.
struct Failure {
    status: Status,
    phase: Phase,
    detail: String,
}

impl Failure {
    fn new(status: Status, phase: Phase, detail: impl Into<String>) -> Self {
        Failure {
            status,
            phase,
            detail: detail.into(),
        }
    }
}

/// Counts resources and remembers the first denial, so that a trap that follows a refused
/// `memory.grow` is reported as a memory limit rather than a plain trap.
struct Limiter {
    max_memory_bytes: usize,
    max_table_elements: usize,
    max_instances: usize,
    max_memories: usize,
    max_tables: usize,
    denied: Option<String>,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory_bytes {
            self.denied.get_or_insert(format!(
                "linear memory growth from {current} to {desired} bytes denied (limit {} bytes)",
                self.max_memory_bytes
            ));
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_table_elements {
            self.denied.get_or_insert(format!(
                "table growth from {current} to {desired} elements denied (limit {} elements)",
                self.max_table_elements
            ));
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.max_instances
    }
    fn tables(&self) -> usize {
        self.max_tables
    }
    fn memories(&self) -> usize {
        self.max_memories
    }
}

fn send_failure<W: Write>(
    out: &mut WireWriter<W>,
    failure: &Failure,
    debug: &[u8],
) -> io::Result<()> {
    out.u8(wire::FRAME_FAILED)?;
    out.u8(failure.status.code())?;
    out.u8(failure.phase.code())?;
    out.bytes(failure.detail.as_bytes())?;
    out.bytes(debug)?;
    out.flush()
}

/// One finished call: timings, debug output, and the values produced (if any).
struct PhaseReport {
    phase: Phase,
    input: Duration,
    run: Duration,
    debug: Vec<u8>,
    values: Vec<u8>,
}

fn send_phase<W: Write>(out: &mut WireWriter<W>, report: &PhaseReport) -> io::Result<()> {
    out.u8(wire::FRAME_PHASE)?;
    out.u8(report.phase.code())?;
    out.u64(report.input.as_nanos() as u64)?;
    out.u64(report.run.as_nanos() as u64)?;
    out.bytes(&report.debug)?;
    out.bytes(&report.values)?;
    out.flush()
}

fn send_started<W: Write>(out: &mut WireWriter<W>, phase: Phase) -> io::Result<()> {
    out.u8(wire::FRAME_STARTED)?;
    out.u8(phase.code())?;
    out.flush()
}

fn serve<R: Read, W: Write>(input: &mut WireReader<R>, out: &mut WireWriter<W>) -> io::Result<()> {
    let (request, is_artifact, module_bytes) = Request::read(input)?;
    let internal = |e: wasmtime::Error| io::Error::other(format!("{e:?}"));
    let engine = crate::engine::engine(request.interruption, request.max_wasm_stack as usize)
        .map_err(internal)?;
    // Epoch mode: a ticker thread, started before the seccomp filter (which forbids new
    // threads), waits for the module to be ready, sleeps until the epoch deadline, then
    // ticks every 10 ms; stores trap at the first tick after their creation. Measured in
    // real time, so a loaded machine delays the trap by at most one tick.
    let ticker_start = if request.interruption == Interruption::Epoch {
        let (start, started) = std::sync::mpsc::channel::<()>();
        let ticker = engine.clone();
        let wait = request.epoch_deadline;
        std::thread::spawn(move || {
            if started.recv().is_err() {
                return;
            }
            std::thread::sleep(wait);
            loop {
                ticker.increment_epoch();
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Some(start)
    } else {
        None
    };
    if request.seccomp {
        crate::harden::install_seccomp().map_err(|e| io::Error::other(format!("seccomp: {e}")))?;
    }

    let started = Instant::now();
    let module = if is_artifact {
        // SAFETY: the parent only sends artifacts this host compiled and authenticated with
        // its HMAC key (see `cache`), for this engine's compatibility hash.
        unsafe { Module::deserialize(&engine, &module_bytes) }.map_err(internal)?
    } else {
        let compiled = if request.canonicalize_nans {
            crate::nan::canonicalize_observable_nans(&module_bytes)
                .map_err(|e| wasmtime::Error::msg(e.to_string()))
                .and_then(|rewritten| Module::new(&engine, &rewritten))
        } else {
            Module::new(&engine, &module_bytes)
        };
        match compiled {
            Ok(module) => module,
            Err(error) => {
                let failure = Failure::new(
                    Status::Refused,
                    Phase::Compile,
                    format!("compilation failed: {error}"),
                );
                return send_failure(out, &failure, &[]);
            }
        }
    };
    let compile = started.elapsed();
    // The artifact goes to the parent before any guest code runs, so that a guest can
    // never influence what is cached.
    let artifact = if is_artifact {
        Vec::new()
    } else {
        module.serialize().map_err(internal)?
    };
    drop(module_bytes);
    out.u8(wire::FRAME_READY)?;
    out.u64(compile.as_nanos() as u64)?;
    out.bytes(&artifact)?;
    out.flush()?;
    drop(artifact);
    // The parent writes the blocks into the tables' file while this child starts and
    // compiles; it says so once they are all there.
    if input.u8()? != wire::DATA_READY {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "expected the parent's data-ready mark",
        ));
    }
    shared::check_blocks(&request.blocks)?;
    if let Some(start) = ticker_start {
        let _ = start.send(());
    }

    let runner = Runner {
        engine: &engine,
        module: &module,
        request: &request,
    };
    match &request.job {
        JobHeader::FitPredict {
            task_code,
            n_classes,
            seed,
            n_outputs,
            survival_grid,
        } => runner.fit_predict(
            out,
            *task_code,
            *n_classes,
            *seed,
            *n_outputs,
            survival_grid,
        ),
        &JobHeader::Analyze {
            seed,
            n_outputs,
            n_blocks,
        } => {
            for index in 0..n_blocks {
                let block = request.blocks[index as usize];
                let seed = seed.wrapping_add(u64::from(index));
                if !runner.analyze(out, block, seed, n_outputs)? {
                    break;
                }
            }
            Ok(())
        }
    }
}

struct Runner<'a> {
    engine: &'a Engine,
    module: &'a Module,
    request: &'a Request,
}

/// A live instance with the exports the ABI needs.
struct Guest {
    store: Store<Limiter>,
    memory: Memory,
    alloc: TypedFunc<(u32, u32), u32>,
    instance: Instance,
    /// What `medarena_abi_version` returned; written into every call record, so that a
    /// module sees the version it was built for and the fields that version defines.
    version: u32,
}

impl Guest {
    fn fail(&self, phase: Phase, error: wasmtime::Error) -> Failure {
        if let Some(denied) = &self.store.data().denied {
            return Failure::new(
                Status::MemoryLimit,
                phase,
                format!("{denied}; then: {error}"),
            );
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => {
                Failure::new(Status::Deadline, phase, "interrupted at the epoch deadline")
            }
            Some(Trap::OutOfFuel) => Failure::new(Status::Deadline, phase, "all fuel consumed"),
            Some(Trap::StackOverflow) => {
                Failure::new(Status::Trap, phase, format!("stack overflow: {error:?}"))
            }
            _ => Failure::new(Status::Trap, phase, format!("{error:?}")),
        }
    }

    fn memory_len(&self) -> usize {
        self.memory.data_size(&self.store)
    }

    fn alloc(&mut self, phase: Phase, size: usize) -> Result<usize, Failure> {
        let size32 = u32::try_from(size).map_err(|_| {
            Failure::new(
                Status::MemoryLimit,
                phase,
                format!("a block of {size} bytes exceeds 4 GiB"),
            )
        })?;
        let ptr = self
            .alloc
            .call(&mut self.store, (size32, 8))
            .map_err(|e| self.fail(phase, e))? as usize;
        if ptr == 0 || !ptr.is_multiple_of(8) || ptr + size > self.memory_len() {
            if let Some(denied) = &self.store.data().denied {
                return Err(Failure::new(Status::MemoryLimit, phase, denied.clone()));
            }
            return Err(Failure::new(
                Status::BadOutput,
                phase,
                format!(
                    "medarena_alloc({size}, 8) returned {ptr:#x}, not an aligned block inside memory"
                ),
            ));
        }
        Ok(ptr)
    }

    /// Allocates room for a block in the guest and maps the block there from the tables'
    /// file. The host asks the guest's allocator for the block's size rounded up to whole
    /// pages plus one page, so that a page-aligned stretch of that size lies inside the
    /// allocation; the block starts there.
    fn map_block(&mut self, phase: Phase, block: BlockRef) -> Result<usize, Failure> {
        let page = shared::page_size();
        let span = (block.len as usize).next_multiple_of(page);
        let ptr = self.alloc(phase, span + page)?;
        let at = ptr.next_multiple_of(page);
        let base = self.memory.data_ptr(&self.store);
        if !(base as usize).is_multiple_of(page) {
            return Err(Failure::new(
                Status::Internal,
                phase,
                "guest memory is not page-aligned",
            ));
        }
        // SAFETY: `alloc` checked that `[ptr, ptr + span + page)` lies inside guest memory,
        // and `[at, at + span)` lies inside that; no reference into guest memory is alive.
        unsafe { shared::map_into_guest(base.add(at), block) }.map_err(|error| {
            Failure::new(
                Status::Internal,
                phase,
                format!("cannot map a table block into guest memory: {error}"),
            )
        })?;
        Ok(at)
    }

    fn write_u32(&mut self, at: usize, value: u32) {
        let memory = self.memory;
        memory.data_mut(&mut self.store)[at..at + 4].copy_from_slice(&value.to_le_bytes());
    }

    /// Copies `values` into a fresh guest allocation and returns its address; nothing is
    /// allocated (and 0 returned) for no values, so that a version-1 call record keeps its
    /// zero fields.
    fn write_f64s(&mut self, phase: Phase, values: &[f64]) -> Result<usize, Failure> {
        if values.is_empty() {
            return Ok(0);
        }
        let ptr = self.alloc(phase, values.len() * 8)?;
        let memory = self.memory;
        let data = &mut memory.data_mut(&mut self.store)[ptr..ptr + values.len() * 8];
        for (chunk, value) in data.chunks_exact_mut(8).zip(values) {
            chunk.copy_from_slice(&value.to_le_bytes());
        }
        Ok(ptr)
    }

    fn read_u32(&self, at: usize) -> u32 {
        let data = self.memory.data(&self.store);
        data.get(at..at + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Writes a call record (ABI.md, "The call record") and returns its address.
    fn call_record(
        &mut self,
        phase: Phase,
        fields: &[(usize, u32)],
        seed: u64,
    ) -> Result<usize, Failure> {
        let record = self.alloc(phase, call::BYTES)?;
        let memory = self.memory;
        memory.data_mut(&mut self.store)[record..record + call::BYTES].fill(0);
        self.write_u32(record + call::ABI_VERSION, self.version);
        self.write_u32(record + call::SEED, seed as u32);
        self.write_u32(record + call::SEED + 4, (seed >> 32) as u32);
        for &(at, value) in fields {
            self.write_u32(record + at, value);
        }
        Ok(record)
    }

    fn debug_output(&self, record: usize, max: usize) -> Vec<u8> {
        let ptr = self.read_u32(record + call::DEBUG_PTR) as usize;
        let len = (self.read_u32(record + call::DEBUG_LEN) as usize).min(max);
        self.memory
            .data(&self.store)
            .get(ptr..ptr.saturating_add(len))
            .map(<[u8]>::to_vec)
            .unwrap_or_default()
    }

    /// Calls an entry point on a record; a non-zero return is the guest reporting failure.
    fn enter(&mut self, phase: Phase, name: &str, record: usize) -> Result<(), Failure> {
        let func = self
            .instance
            .get_typed_func::<u32, i32>(&mut self.store, name)
            .map_err(|e| Failure::new(Status::Refused, phase, format!("export `{name}`: {e}")))?;
        match func.call(&mut self.store, record as u32) {
            Ok(0) => Ok(()),
            Ok(code) => Err(Failure::new(
                Status::Trap,
                phase,
                format!("`{name}` returned error code {code}"),
            )),
            Err(error) => Err(self.fail(phase, error)),
        }
    }

    /// Reads exactly `expected` f64 values from the record's output fields.
    fn output(&self, phase: Phase, record: usize, expected: usize) -> Result<Vec<u8>, Failure> {
        let ptr = self.read_u32(record + call::OUT_PTR) as u64;
        let len = self.read_u32(record + call::OUT_LEN) as usize;
        if len != expected {
            let error = abi::OutputError::WrongLength {
                expected,
                found: len,
            };
            return Err(Failure::new(Status::BadOutput, phase, error.to_string()));
        }
        let bytes = expected as u64 * 8;
        let memory = self.memory_len() as u64;
        if ptr + bytes > memory || !ptr.is_multiple_of(8) {
            let error = abi::OutputError::OutOfBounds { ptr, bytes, memory };
            return Err(Failure::new(Status::BadOutput, phase, error.to_string()));
        }
        Ok(self.memory.data(&self.store)[ptr as usize..(ptr + bytes) as usize].to_vec())
    }
}

impl Runner<'_> {
    fn instantiate(&self) -> Result<Guest, Failure> {
        let request = self.request;
        let limiter = Limiter {
            max_memory_bytes: usize::try_from(request.max_memory_bytes).unwrap_or(usize::MAX),
            max_table_elements: usize::try_from(request.max_table_elements).unwrap_or(usize::MAX),
            max_instances: request.max_instances as usize,
            max_memories: request.max_memories as usize,
            max_tables: request.max_tables as usize,
            denied: None,
        };
        let mut store = Store::new(self.engine, limiter);
        store.limiter(|limiter| limiter);
        match request.interruption {
            Interruption::DeadlineKill => {}
            Interruption::Epoch => {
                store.epoch_deadline_trap();
                store.set_epoch_deadline(1);
            }
            Interruption::Fuel(fuel) => {
                store.set_fuel(fuel).map_err(|e| {
                    Failure::new(Status::Internal, Phase::Instantiate, e.to_string())
                })?;
            }
        }
        let phase = Phase::Instantiate;
        let instance = match Instance::new(&mut store, self.module, &[]) {
            Ok(instance) => instance,
            Err(error) => {
                let status = if store.data().denied.is_some() || error.to_string().contains("limit")
                {
                    Status::MemoryLimit
                } else if error.downcast_ref::<Trap>().is_some() {
                    Status::Trap
                } else {
                    Status::Refused
                };
                return Err(Failure::new(status, phase, format!("{error:?}")));
            }
        };
        let refused = |what: &str, e: wasmtime::Error| {
            Failure::new(Status::Refused, phase, format!("{what}: {e}"))
        };
        let memory = instance
            .get_memory(&mut store, EXPORT_MEMORY)
            .ok_or_else(|| Failure::new(Status::Refused, phase, "no exported memory"))?;
        let alloc = instance
            .get_typed_func::<(u32, u32), u32>(&mut store, EXPORT_ALLOC)
            .map_err(|e| refused(EXPORT_ALLOC, e))?;
        let version = instance
            .get_typed_func::<(), u32>(&mut store, EXPORT_ABI_VERSION)
            .map_err(|e| refused(EXPORT_ABI_VERSION, e))?;
        let mut guest = Guest {
            store,
            memory,
            alloc,
            instance,
            version: 0,
        };
        let found = version
            .call(&mut guest.store, ())
            .map_err(|e| guest.fail(phase, e))?;
        if !(abi::MIN_ABI_VERSION..=abi::ABI_VERSION).contains(&found) {
            return Err(Failure::new(
                Status::Refused,
                phase,
                format!(
                    "medarena_abi_version() returned {found}; this host speaks versions {} to {}",
                    abi::MIN_ABI_VERSION,
                    abi::ABI_VERSION
                ),
            ));
        }
        guest.version = found;
        Ok(guest)
    }

    fn fit_predict<W: Write>(
        &self,
        out: &mut WireWriter<W>,
        task_code: u32,
        n_classes: u32,
        seed: u64,
        n_outputs: u32,
        survival_grid: &[f64],
    ) -> io::Result<()> {
        let max_debug = if self.request.debug {
            self.request.max_debug_bytes as usize
        } else {
            0
        };
        send_started(out, Phase::Instantiate)?;
        let mut guest = match self.instantiate() {
            Ok(guest) => guest,
            Err(failure) => return send_failure(out, &failure, &[]),
        };
        // A version-1 module knows nothing of the grid and would answer with risk scores:
        // refuse it before it runs, with the fix in the message.
        if !survival_grid.is_empty() && guest.version < abi::CURVES_ABI_VERSION {
            let failure = Failure::new(
                Status::Refused,
                Phase::Instantiate,
                format!(
                    "the competition scores survival curves at a time grid; build the module \
                     for ABI version {} (medarena_abi_version() returned {})",
                    abi::CURVES_ABI_VERSION,
                    guest.version
                ),
            );
            return send_failure(out, &failure, &[]);
        }
        send_started(out, Phase::Fit)?;
        let started = Instant::now();
        let blocks = &self.request.blocks;
        let train = match guest.map_block(Phase::Fit, blocks[0]) {
            Ok(ptr) => ptr,
            Err(failure) => return send_failure(out, &failure, &[]),
        };
        let labels = match guest.map_block(Phase::Fit, blocks[1]) {
            Ok(ptr) => ptr,
            Err(failure) => return send_failure(out, &failure, &[]),
        };
        let fields = [
            (call::TASK_KIND, task_code),
            (call::N_CLASSES, n_classes),
            (call::FEATURES, train as u32),
            (call::LABELS, labels as u32),
        ];
        let record = match guest.call_record(Phase::Fit, &fields, seed) {
            Ok(record) => record,
            Err(failure) => return send_failure(out, &failure, &[]),
        };
        let data_in = started.elapsed();
        let started = Instant::now();
        let result = guest.enter(Phase::Fit, EXPORT_FIT, record);
        let run = started.elapsed();
        let debug = guest.debug_output(record, max_debug);
        if let Err(failure) = result {
            return send_failure(out, &failure, &debug);
        }
        send_phase(
            out,
            &PhaseReport {
                phase: Phase::Fit,
                input: data_in,
                run,
                debug,
                values: Vec::new(),
            },
        )?;

        send_started(out, Phase::Predict)?;
        let started = Instant::now();
        let test = match guest.map_block(Phase::Predict, blocks[2]) {
            Ok(ptr) => ptr,
            Err(failure) => return send_failure(out, &failure, &[]),
        };
        let grid = match guest.write_f64s(Phase::Predict, survival_grid) {
            Ok(ptr) => ptr,
            Err(failure) => return send_failure(out, &failure, &[]),
        };
        let fields = [
            (call::TASK_KIND, task_code),
            (call::N_CLASSES, n_classes),
            (call::N_OUTPUTS, n_outputs),
            (call::FEATURES, test as u32),
            (call::GRID, grid as u32),
            (call::GRID_LEN, survival_grid.len() as u32),
        ];
        let record = match guest.call_record(Phase::Predict, &fields, seed) {
            Ok(record) => record,
            Err(failure) => return send_failure(out, &failure, &[]),
        };
        let data_in = started.elapsed();
        let started = Instant::now();
        let result = guest.enter(Phase::Predict, EXPORT_PREDICT, record);
        let run = started.elapsed();
        let debug = guest.debug_output(record, max_debug);
        match result.and_then(|()| guest.output(Phase::Predict, record, n_outputs as usize)) {
            Ok(values) => send_phase(
                out,
                &PhaseReport {
                    phase: Phase::Predict,
                    input: data_in,
                    run,
                    debug,
                    values,
                },
            ),
            Err(failure) => send_failure(out, &failure, &debug),
        }
    }

    /// Runs one block in a fresh instance; `false` once a failure has been sent.
    fn analyze<W: Write>(
        &self,
        out: &mut WireWriter<W>,
        block: BlockRef,
        seed: u64,
        n_outputs: u32,
    ) -> io::Result<bool> {
        let max_debug = if self.request.debug {
            self.request.max_debug_bytes as usize
        } else {
            0
        };
        let phase = Phase::Analyze;
        send_started(out, Phase::Instantiate)?;
        let mut guest = match self.instantiate() {
            Ok(guest) => guest,
            Err(failure) => return send_failure(out, &failure, &[]).map(|()| false),
        };
        send_started(out, phase)?;
        let started = Instant::now();
        let block = match guest.map_block(phase, block) {
            Ok(ptr) => ptr,
            Err(failure) => return send_failure(out, &failure, &[]).map(|()| false),
        };
        let fields = [
            (call::TASK_KIND, 0),
            (call::N_OUTPUTS, n_outputs),
            (call::FEATURES, block as u32),
        ];
        let record = match guest.call_record(phase, &fields, seed) {
            Ok(record) => record,
            Err(failure) => return send_failure(out, &failure, &[]).map(|()| false),
        };
        let data_in = started.elapsed();
        let started = Instant::now();
        let result = guest.enter(phase, EXPORT_ANALYZE, record);
        let run = started.elapsed();
        let debug = guest.debug_output(record, max_debug);
        match result.and_then(|()| guest.output(phase, record, n_outputs as usize)) {
            Ok(values) => {
                send_phase(
                    out,
                    &PhaseReport {
                        phase,
                        input: data_in,
                        run,
                        debug,
                        values,
                    },
                )?;
                Ok(true)
            }
            Err(failure) => send_failure(out, &failure, &debug).map(|()| false),
        }
    }
}
