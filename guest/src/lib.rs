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

/// The ABI version this SDK implements; `medarena_abi_version` returns it. Version 2 adds
/// the survival time grid ([`Context::survival_grid`]); the host still runs version-1
/// modules, except in competitions that score survival curves.
pub const ABI_VERSION: u32 = 2;

/// What the host asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// Probability of the positive class, one value per row in `[0, 1]`.
    Binary,
    /// One probability per class per row (row-major), each row summing to 1.
    Multiclass,
    /// One finite value per row.
    Regression,
    /// One finite risk score per row (higher means an earlier event), or, when the host
    /// sends a [`Context::survival_grid`], one survival curve per row.
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

/// Everything the host says about one call besides the tables. Borrows the survival grid
/// from the host's memory, like [`Table`] borrows its block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Context<'a> {
    pub task: TaskKind,
    /// Number of classes (multiclass; 2 for binary; 0 otherwise).
    pub n_classes: usize,
    /// Values the host expects from this call (0 for fit).
    pub n_outputs: usize,
    /// The only source of randomness a submission has: chosen and recorded by the host.
    pub seed: u64,
    /// Survival `predict` calls of a competition that scores survival curves: the times
    /// t_j (finite, > 0, strictly increasing) at which to predict S(t_j | row). Then `out`
    /// holds `rows × grid.len()` values, row-major (`out[i * grid.len() + j]`), each in
    /// [0, 1] and non-increasing along the row. `None` (every other call) asks for one
    /// risk score per row.
    pub survival_grid: Option<&'a [f64]>,
}

impl Context<'_> {
    /// Output values per row for a prediction of this task: classes for multiclass, grid
    /// times for survival curves, else 1.
    pub fn outputs_per_row(&self) -> usize {
        match (self.task, self.survival_grid) {
            (TaskKind::Multiclass, _) => self.n_classes,
            (TaskKind::Survival, Some(grid)) => grid.len(),
            _ => 1,
        }
    }

    /// The output split into one survival curve per row (`None` unless this call asks for
    /// curves): `curves(out).nth(i)` is row i's curve, one value per grid time.
    pub fn curves<'o>(&self, out: &'o mut [f64]) -> Option<core::slice::ChunksExactMut<'o, f64>> {
        match (self.task, self.survival_grid) {
            (TaskKind::Survival, Some(grid)) if !grid.is_empty() => {
                Some(out.chunks_exact_mut(grid.len()))
            }
            _ => None,
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
    fn fit(ctx: &Context<'_>, features: &Table<'_>, labels: &Labels<'_>) -> Result<Self, Error>;
    /// Writes exactly `out.len()` values (`rows × outputs_per_row`, row-major). For survival,
    /// check [`Context::survival_grid`]: with a grid, write a survival curve per row (see
    /// [`Context::curves`]); without, one risk score per row.
    fn predict(
        &self,
        ctx: &Context<'_>,
        features: &Table<'_>,
        out: &mut [f64],
    ) -> Result<(), Error>;
}

/// A free-form analysis run on each of k disjoint blocks of rows, each in a fresh instance;
/// the platform clamps and averages the outputs and adds noise.
pub trait Analysis {
    /// Writes exactly `out.len()` finite values.
    fn analyze(ctx: &Context<'_>, block: &Table<'_>, out: &mut [f64]) -> Result<(), Error>;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn context(task: TaskKind, grid: Option<&[f64]>) -> Context<'_> {
        Context {
            task,
            n_classes: if task == TaskKind::Multiclass { 3 } else { 0 },
            n_outputs: 0,
            seed: 0,
            survival_grid: grid,
        }
    }

    #[test]
    fn a_survival_grid_makes_one_curve_per_row() {
        let grid = [1.0, 2.5, 4.0];
        let ctx = context(TaskKind::Survival, Some(&grid));
        assert_eq!(ctx.outputs_per_row(), 3);
        let mut out = [0.0; 6];
        let curves = ctx.curves(&mut out).expect("a curves call");
        for (row, curve) in curves.enumerate() {
            assert_eq!(curve.len(), 3);
            curve.fill(row as f64);
        }
        assert_eq!(out, [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn without_a_grid_survival_is_one_risk_score_per_row() {
        let ctx = context(TaskKind::Survival, None);
        assert_eq!(ctx.outputs_per_row(), 1);
        assert!(ctx.curves(&mut [0.0; 2]).is_none());
        assert_eq!(context(TaskKind::Multiclass, None).outputs_per_row(), 3);
        // A grid means nothing outside survival.
        assert!(
            context(TaskKind::Binary, Some(&[1.0]))
                .curves(&mut [0.0])
                .is_none()
        );
    }
}
