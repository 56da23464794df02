//! The glue behind [`crate::export!`]: reads the host's call record, runs the model, and
//! writes the output and debug fields back. Hidden from docs: only the macro calls it.

use alloc::vec;
use core::alloc::Layout;
use core::cell::UnsafeCell;

use crate::table::{Labels, Table};
use crate::{Analysis, Context, Model, TaskKind, debug};

/// Byte offsets of the call record's fields (ABI.md, "The call record").
pub mod call {
    pub const ABI_VERSION: usize = 0;
    pub const TASK_KIND: usize = 4;
    pub const N_CLASSES: usize = 8;
    pub const N_OUTPUTS: usize = 12;
    pub const SEED: usize = 16;
    pub const FEATURES: usize = 24;
    pub const LABELS: usize = 28;
    pub const OUT_PTR: usize = 32;
    pub const OUT_LEN: usize = 36;
    pub const DEBUG_PTR: usize = 40;
    pub const DEBUG_LEN: usize = 44;
    /// Version 2: address of the survival time grid (survival predict of a curves job).
    pub const GRID: usize = 48;
    /// Version 2: number of f64 grid times; 0 when the host asks for risk scores.
    pub const GRID_LEN: usize = 52;
    pub const BYTES: usize = 64;
}

/// Return codes of the entry points.
pub const OK: i32 = 0;
pub const ABI_ERROR: i32 = 1;
pub const MODEL_ERROR: i32 = 2;

/// A single-threaded global: wasm32-unknown-unknown has one thread, and the macro only
/// instantiates this on wasm targets.
pub struct Slot<T>(UnsafeCell<Option<T>>);

// SAFETY: only used on single-threaded wasm targets (see `export!`).
unsafe impl<T> Sync for Slot<T> {}

impl<T> Slot<T> {
    pub const fn new() -> Self {
        Slot(UnsafeCell::new(None))
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self::new()
    }
}

pub fn alloc(size: u32, align: u32) -> u32 {
    let Ok(layout) = Layout::from_size_align(size.max(1) as usize, align.max(1) as usize) else {
        return 0;
    };
    // SAFETY: the layout has a non-zero size.
    unsafe { alloc::alloc::alloc(layout) as usize as u32 }
}

/// # Safety
/// `record + at` must be a readable, 4-aligned address (the host's call record).
unsafe fn field(record: u32, at: usize) -> u32 {
    unsafe { core::ptr::read((record as usize + at) as *const u32) }
}

/// # Safety
/// As for [`field`], writable.
pub(crate) unsafe fn set_field(record: u32, at: usize, value: u32) {
    unsafe { core::ptr::write((record as usize + at) as *mut u32, value) }
}

/// # Safety
/// `ptr` must be the address of a table block the host wrote.
unsafe fn table<'a>(ptr: u32) -> Result<Table<'a>, crate::AbiError> {
    if ptr == 0 {
        return Err(crate::AbiError("missing table"));
    }
    let total = unsafe { field(ptr, 12) } as usize;
    // SAFETY: the host wrote `total` bytes at `ptr`.
    let block = unsafe { core::slice::from_raw_parts(ptr as usize as *const u8, total) };
    Table::from_block(block)
}

/// The survival grid of a call record, borrowed from host-written memory that the guest
/// never frees (the host allocated it with `medarena_alloc` for this instance).
///
/// # Safety
/// `record` must be a call record the host wrote.
unsafe fn survival_grid<'a>(record: u32) -> Result<Option<&'a [f64]>, crate::AbiError> {
    let (ptr, len) = unsafe { (field(record, call::GRID), field(record, call::GRID_LEN)) };
    if len == 0 {
        return Ok(None);
    }
    if ptr == 0 || ptr % 8 != 0 {
        return Err(crate::AbiError("survival grid is misplaced"));
    }
    // SAFETY: the host wrote `len` f64 values, 8-aligned, at `ptr`.
    Ok(Some(unsafe {
        core::slice::from_raw_parts(ptr as usize as *const f64, len as usize)
    }))
}

/// # Safety
/// `record` must be a call record the host wrote.
unsafe fn context<'a>(record: u32) -> Result<Context<'a>, crate::AbiError> {
    unsafe {
        // The host writes the version this module declared, so anything else is not a
        // record this SDK can read.
        if field(record, call::ABI_VERSION) != crate::ABI_VERSION {
            return Err(crate::AbiError("unsupported ABI version"));
        }
        let task = TaskKind::from_code(field(record, call::TASK_KIND))
            .ok_or(crate::AbiError("unknown task kind"))?;
        let seed_lo = u64::from(field(record, call::SEED));
        let seed_hi = u64::from(field(record, call::SEED + 4));
        Ok(Context {
            task,
            n_classes: field(record, call::N_CLASSES) as usize,
            n_outputs: field(record, call::N_OUTPUTS) as usize,
            seed: seed_lo | (seed_hi << 32),
            survival_grid: survival_grid(record)?,
        })
    }
}

fn report(code: i32, what: &str, reason: &str) -> i32 {
    debug!("{what}: {reason}");
    code
}

/// Runs `produce` over a fresh output buffer of `n_outputs` values and hands it to the host.
///
/// # Safety
/// `record` must be a call record the host wrote.
unsafe fn with_output(
    record: u32,
    n_outputs: usize,
    produce: impl FnOnce(&mut [f64]) -> Result<(), crate::Error>,
) -> i32 {
    let mut out = vec![0.0f64; n_outputs];
    if let Err(error) = produce(&mut out) {
        return report(MODEL_ERROR, "model error", error.0);
    }
    let out = out.leak();
    unsafe {
        set_field(record, call::OUT_PTR, out.as_ptr() as usize as u32);
        set_field(record, call::OUT_LEN, out.len() as u32);
    }
    OK
}

/// # Safety
/// Called only by the `medarena_fit` export with the host's call record.
pub unsafe fn fit<M: Model>(record: u32, slot: &Slot<M>) -> i32 {
    crate::debug::begin_call(record);
    let prepared = unsafe {
        context(record).and_then(|ctx| {
            let features = table(field(record, call::FEATURES))?;
            let label_table = table(field(record, call::LABELS))?;
            let labels = Labels::from_table(ctx.task, &label_table)?;
            Ok((ctx, features, labels))
        })
    };
    let (ctx, features, labels) = match prepared {
        Ok(parts) => parts,
        Err(error) => return report(ABI_ERROR, "fit", error.0),
    };
    match M::fit(&ctx, &features, &labels) {
        Ok(model) => {
            // SAFETY: single-threaded; no reference into the slot outlives this call.
            unsafe { *slot.0.get() = Some(model) };
            OK
        }
        Err(error) => report(MODEL_ERROR, "fit", error.0),
    }
}

/// # Safety
/// Called only by the `medarena_predict` export with the host's call record.
pub unsafe fn predict<M: Model>(record: u32, slot: &Slot<M>) -> i32 {
    crate::debug::begin_call(record);
    // SAFETY: single-threaded; fit has returned.
    let Some(model) = (unsafe { &*slot.0.get() }) else {
        return report(ABI_ERROR, "predict", "called before a successful fit");
    };
    let prepared =
        unsafe { context(record).and_then(|ctx| Ok((ctx, table(field(record, call::FEATURES))?))) };
    match prepared {
        Ok((ctx, features)) => unsafe {
            with_output(record, ctx.n_outputs, |out| {
                model.predict(&ctx, &features, out)
            })
        },
        Err(error) => report(ABI_ERROR, "predict", error.0),
    }
}

/// # Safety
/// Called only by the `medarena_analyze` export with the host's call record.
pub unsafe fn analyze<A: Analysis>(record: u32) -> i32 {
    crate::debug::begin_call(record);
    let prepared =
        unsafe { context(record).and_then(|ctx| Ok((ctx, table(field(record, call::FEATURES))?))) };
    match prepared {
        Ok((ctx, block)) => unsafe {
            with_output(record, ctx.n_outputs, |out| A::analyze(&ctx, &block, out))
        },
        Err(error) => report(ABI_ERROR, "analyze", error.0),
    }
}
