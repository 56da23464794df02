//! The competitor SDK for medarena submissions.
//!
//! A submission is a core WebAssembly module with **zero imports** that follows the ABI in
//! `sandbox/ABI.md` (version [`ABI_VERSION`]). This crate turns that ABI into a small API:
//!
//! - a [`Table`] of named, typed columns (numbers with `NaN` as missing, categories as codes
//!   plus levels, booleans, dates) that borrows the host's buffers without copying;
//! - the [`Model`] trait (`fit` on a training table and its [`Labels`], `predict` into an
//!   output slice of exactly the expected length) and the [`Analysis`] trait for
//!   sample-and-aggregate releases;
//! - the [`export!`] macro, which writes every export the host looks for;
//! - [`debug!`], printed by `medarena run` on dummy data and dropped on real data.
//!
//! ```ignore
//! use medarena_guest::{Context, Labels, Model, Table};
//! struct Mean(f64);
//! impl Model for Mean {
//!     fn fit(_: &Context, _: &Table, labels: &Labels) -> Result<Self, medarena_guest::Error> {
//!         let y = labels.target().ok_or(medarena_guest::Error::new("needs a target"))?;
//!         Ok(Mean(y.iter().sum::<f64>() / y.len().max(1) as f64))
//!     }
//!     fn predict(&self, _: &Context, _: &Table, out: &mut [f64]) -> Result<(), medarena_guest::Error> {
//!         out.fill(self.0);
//!         Ok(())
//!     }
//! }
//! medarena_guest::export!(model = Mean);
//! ```
//!
//! Build with `cargo build --release --target wasm32-unknown-unknown` and a
//! `crate-type = ["cdylib"]` library. The crate is `no_std` (it needs `alloc`), so the same
//! model code also links natively, which is how the platform benchmarks the sandbox.
//!
//! For speed, give the release profile `lto = true` and `codegen-units = 1` (the SDK, `alloc`
//! and `core` then inline into the model's loops), and consider
//! `RUSTFLAGS="-C target-feature=+simd128"`: the sandbox runs WebAssembly SIMD. Float
//! arithmetic costs more in the sandbox than natively, because every float result is
//! checked for NaN to keep runs bit-identical on every machine (see `BENCHMARKS.md`).
#![no_std]

extern crate alloc;

mod debug;
mod table;
pub mod util;

#[doc(hidden)]
pub mod rt;

pub use debug::debug_write;
pub use table::{AbiError, Column, ColumnData, Labels, MISSING_BOOL, MISSING_CODE, Table};

/// The ABI version this SDK implements; `medarena_abi_version` returns it.
pub const ABI_VERSION: u32 = 1;

/// What the host asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// Probability of the positive class, one value per row in `[0, 1]`.
    Binary,
    /// One probability per class per row (row-major), each row summing to 1.
    Multiclass,
    /// One finite value per row.
    Regression,
    /// One finite risk score per row (higher means an earlier event).
    Survival,
    /// A fixed-length vector of finite values over a block of rows.
    Analyze,
}

impl TaskKind {
    /// The ABI code of a task kind (the `task_kind` field of the call record).
    pub fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            0 => TaskKind::Analyze,
            1 => TaskKind::Binary,
            2 => TaskKind::Multiclass,
            3 => TaskKind::Regression,
            4 => TaskKind::Survival,
            _ => return None,
        })
    }
}

/// Everything the host says about one call besides the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    pub task: TaskKind,
    /// Number of classes (multiclass; 2 for binary; 0 otherwise).
    pub n_classes: usize,
    /// Values the host expects from this call (0 for fit).
    pub n_outputs: usize,
    /// The only source of randomness a submission has: chosen and recorded by the host.
    pub seed: u64,
}

impl Context {
    /// Output values per row for a prediction of this task.
    pub fn outputs_per_row(&self) -> usize {
        match self.task {
            TaskKind::Multiclass => self.n_classes,
            _ => 1,
        }
    }
}

/// A submission's own failure; the host reports it as a trap (its text only on dummy data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub &'static str);

impl Error {
    pub const fn new(reason: &'static str) -> Self {
        Error(reason)
    }
}

/// A model: trained once on the training table, then asked for predictions on the test table
/// in the same instance.
pub trait Model: Sized {
    fn fit(ctx: &Context, features: &Table<'_>, labels: &Labels<'_>) -> Result<Self, Error>;
    /// Writes exactly `out.len()` values (`rows × outputs_per_row`, row-major).
    fn predict(&self, ctx: &Context, features: &Table<'_>, out: &mut [f64]) -> Result<(), Error>;
}

/// A free-form analysis run on each of k disjoint blocks of rows, each in a fresh instance;
/// the platform clamps and averages the outputs and adds noise.
pub trait Analysis {
    /// Writes exactly `out.len()` finite values.
    fn analyze(ctx: &Context, block: &Table<'_>, out: &mut [f64]) -> Result<(), Error>;
}

/// Writes the exports of a submission: `medarena_abi_version`, `medarena_alloc`, and
/// `medarena_fit` + `medarena_predict` for a [`Model`] and/or `medarena_analyze` for an
/// [`Analysis`]. Use it once, at the root of a `cdylib` crate:
/// `export!(model = M)`, `export!(analysis = A)` or `export!(model = M, analysis = A)`.
#[macro_export]
macro_rules! export {
    (model = $model:ty) => {
        $crate::export!(@common);
        $crate::export!(@model $model);
    };
    (analysis = $analysis:ty) => {
        $crate::export!(@common);
        $crate::export!(@analysis $analysis);
    };
    (model = $model:ty, analysis = $analysis:ty) => {
        $crate::export!(@common);
        $crate::export!(@model $model);
        $crate::export!(@analysis $analysis);
    };
    (@common) => {
        #[cfg(target_family = "wasm")]
        #[unsafe(no_mangle)]
        pub extern "C" fn medarena_abi_version() -> u32 {
            $crate::ABI_VERSION
        }
        #[cfg(target_family = "wasm")]
        #[unsafe(no_mangle)]
        pub extern "C" fn medarena_alloc(size: u32, align: u32) -> u32 {
            $crate::rt::alloc(size, align)
        }
    };
    (@model $model:ty) => {
        #[cfg(target_family = "wasm")]
        static __MEDARENA_MODEL: $crate::rt::Slot<$model> = $crate::rt::Slot::new();
        #[cfg(target_family = "wasm")]
        #[unsafe(no_mangle)]
        pub extern "C" fn medarena_fit(call: u32) -> i32 {
            // SAFETY: the host passes the address of a call record it wrote in our memory.
            unsafe { $crate::rt::fit::<$model>(call, &__MEDARENA_MODEL) }
        }
        #[cfg(target_family = "wasm")]
        #[unsafe(no_mangle)]
        pub extern "C" fn medarena_predict(call: u32) -> i32 {
            // SAFETY: as for `medarena_fit`.
            unsafe { $crate::rt::predict::<$model>(call, &__MEDARENA_MODEL) }
        }
    };
    (@analysis $analysis:ty) => {
        #[cfg(target_family = "wasm")]
        #[unsafe(no_mangle)]
        pub extern "C" fn medarena_analyze(call: u32) -> i32 {
            // SAFETY: as for `medarena_fit`.
            unsafe { $crate::rt::analyze::<$analysis>(call) }
        }
    };
}

/// Formats a line into the debug log (kept to 64 KiB per call; shown only on dummy data).
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => {
        $crate::debug_write(&$crate::__format(format_args!($($arg)*)))
    };
}

#[doc(hidden)]
pub fn __format(args: core::fmt::Arguments<'_>) -> alloc::string::String {
    let mut line = alloc::fmt::format(args);
    line.push('\n');
    line
}
