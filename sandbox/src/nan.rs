//! Deterministic NaNs at a fraction of the cost: canonicalise a NaN where a submission can
//! observe its bits, not after every float operation.
//!
//! WebAssembly lets arithmetic return any NaN: its sign and payload follow the hardware
//! (x86's default NaN is negative, Arm's positive) and the compiler's operand order. Such
//! bits only matter where the program can see them, and for scalar `f32`/`f64` values there
//! are exactly four places:
//!
//! - a store to linear memory (`f32.store`, `f64.store`), which the program can read back
//!   as integers and the host reads as outputs;
//! - a reinterpretation as an integer (`i32.reinterpret_f32`, `i64.reinterpret_f64`);
//! - the sign operand of `copysign`;
//! - a move into a vector (`splat`, `replace_lane`), whose lanes can be read as integers.
//!
//! Everything else a program can do with a float (compare, convert to an integer, branch
//! on it, pass it around in locals, globals and calls) depends only on whether it is a
//! NaN, which is deterministic. So this pass rewrites the module to canonicalise at those
//! four places (`x == x` then a `select` on the bits: Cranelift emits `ucomisd` and two
//! `cmov`s) and leaves chains of float arithmetic untouched. A float that comes straight
//! from a load, a constant or an integer needs nothing: its bits are the program's own.
//! Vector values have no such boundary (a `v128` is read as integers by any integer lane
//! instruction), so every vector instruction that may make a new NaN is followed by a
//! canonicalisation of its lanes, as Cranelift's own option does.
//!
//! Cranelift's `cranelift_nan_canonicalization` instead follows every scalar float
//! operation with a compare-and-blend through the vector unit, which roughly doubles the
//! latency of a dependent chain (a dot product, a polynomial): the reference models ran
//! 1.8-2.3x slower than natively with it, 1.4-1.7x with this pass (BENCHMARKS.md,
//! `## sandbox`).
//!
//! One visible difference from the WebAssembly specification, by design: a NaN that was
//! loaded from memory with another payload and then passed through a local, a call or a
//! `select` before being stored or reinterpreted comes out canonical. No numerical code
//! depends on NaN payloads; a NaN-boxing interpreter compiled into a submission would.

use wasm_encoder::reencode::{self, Reencode};
use wasm_encoder::{Function, Instruction, ValType};
use wasmparser::{Operator, Parser, Payload};

/// Changes whenever the rewrite does, so that cached artifacts of an older rewrite are not
/// mistaken for this one's.
pub const REWRITE_VERSION: u32 = 2;

const CANONICAL_F32_BITS: i32 = 0x7fc0_0000;
const CANONICAL_F64_BITS: i64 = 0x7ff8_0000_0000_0000;

/// Why a module could not be rewritten. The pre-check validates modules first, so this is
/// only seen for modules that skipped it.
#[derive(Debug, thiserror::Error)]
#[error("cannot canonicalise the module's NaNs: {0}")]
pub struct RewriteError(String);

/// Returns `module` with every observable NaN canonical (see the module docs).
pub fn canonicalize_observable_nans(module: &[u8]) -> Result<Vec<u8>, RewriteError> {
    let param_counts = defined_function_param_counts(module)?;
    let mut rewriter = Rewriter {
        param_counts,
        next_function: 0,
    };
    let mut out = wasm_encoder::Module::new();
    rewriter
        .parse_core_module(&mut out, Parser::new(0), module)
        .map_err(|e| RewriteError(e.to_string()))?;
    Ok(out.finish())
}

/// The number of parameters of each function defined in the module (submissions have no
/// imports, but imported functions are skipped correctly anyway), in code-section order:
/// the scratch locals this pass adds are numbered after a function's parameters and locals.
fn defined_function_param_counts(module: &[u8]) -> Result<Vec<u32>, RewriteError> {
    let invalid = |e: wasmparser::BinaryReaderError| RewriteError(e.to_string());
    let mut type_params: Vec<u32> = Vec::new();
    let mut counts = Vec::new();
    for payload in Parser::new(0).parse_all(module) {
        match payload.map_err(invalid)? {
            Payload::TypeSection(reader) => {
                for ty in reader.into_iter_err_on_gc_types() {
                    type_params.push(ty.map_err(invalid)?.params().len() as u32);
                }
            }
            Payload::FunctionSection(reader) => {
                for index in reader {
                    let index = index.map_err(invalid)? as usize;
                    let params = type_params.get(index).copied().ok_or_else(|| {
                        RewriteError(format!("function type {index} does not exist"))
                    })?;
                    counts.push(params);
                }
            }
            _ => {}
        }
    }
    Ok(counts)
}

struct Rewriter {
    param_counts: Vec<u32>,
    next_function: usize,
}

/// The float type an action is about: a scalar, or a vector's lanes.
#[derive(Clone, Copy)]
enum Float {
    F32,
    F64,
}

/// Where a function's scratch locals are, once added.
#[derive(Default, Clone, Copy)]
struct Scratch {
    f32: Option<u32>,
    f64: Option<u32>,
    v128: Option<u32>,
}

impl Scratch {
    fn scalar(&self, float: Float) -> Option<u32> {
        match float {
            Float::F32 => self.f32,
            Float::F64 => self.f64,
        }
    }
}

/// What an operator needs from the rewrite. Every scalar case turns the float on top of the
/// stack into canonical bits ([`float_to_canonical_bits`]).
enum Action {
    Keep,
    /// Canonicalise the scalar operand on top of the stack before the operator.
    Before(Float),
    /// Replace the operator (a reinterpretation) with canonical bits.
    ToBits(Float),
    /// Store canonical bits instead of the float.
    Store(Float, wasmparser::MemArg),
    /// Canonicalise the lanes of the vector the operator leaves on top.
    AfterLanes(Float),
}

fn action(op: &Operator<'_>) -> Action {
    use Operator as O;
    match op {
        O::F32Store { memarg } => Action::Store(Float::F32, *memarg),
        O::F64Store { memarg } => Action::Store(Float::F64, *memarg),
        O::I32ReinterpretF32 => Action::ToBits(Float::F32),
        O::I64ReinterpretF64 => Action::ToBits(Float::F64),
        O::F32Copysign | O::F32x4Splat | O::F32x4ReplaceLane { .. } => Action::Before(Float::F32),
        O::F64Copysign | O::F64x2Splat | O::F64x2ReplaceLane { .. } => Action::Before(Float::F64),
        // Vector operations that can make a NaN. `abs`, `neg`, `pmin`, `pmax` and lane moves
        // only move bits they were given, conversions from integers make no NaN.
        O::F32x4Add
        | O::F32x4Sub
        | O::F32x4Mul
        | O::F32x4Div
        | O::F32x4Min
        | O::F32x4Max
        | O::F32x4Sqrt
        | O::F32x4Ceil
        | O::F32x4Floor
        | O::F32x4Trunc
        | O::F32x4Nearest
        | O::F32x4DemoteF64x2Zero
        | O::F32x4RelaxedMadd
        | O::F32x4RelaxedNmadd
        | O::F32x4RelaxedMin
        | O::F32x4RelaxedMax => Action::AfterLanes(Float::F32),
        O::F64x2Add
        | O::F64x2Sub
        | O::F64x2Mul
        | O::F64x2Div
        | O::F64x2Min
        | O::F64x2Max
        | O::F64x2Sqrt
        | O::F64x2Ceil
        | O::F64x2Floor
        | O::F64x2Trunc
        | O::F64x2Nearest
        | O::F64x2PromoteLowF32x4
        | O::F64x2RelaxedMadd
        | O::F64x2RelaxedNmadd
        | O::F64x2RelaxedMin
        | O::F64x2RelaxedMax => Action::AfterLanes(Float::F64),
        _ => Action::Keep,
    }
}

/// Whether `op` leaves a float whose bits are fixed by the program and its input, never by
/// the hardware: a float that operators needing the rewrite can take as it is.
fn makes_deterministic_bits(op: &Operator<'_>) -> bool {
    use Operator as O;
    matches!(
        op,
        O::F32Load { .. }
            | O::F64Load { .. }
            | O::F32Const { .. }
            | O::F64Const { .. }
            | O::F32ReinterpretI32
            | O::F64ReinterpretI64
            | O::F32ConvertI32S
            | O::F32ConvertI32U
            | O::F32ConvertI64S
            | O::F32ConvertI64U
            | O::F64ConvertI32S
            | O::F64ConvertI32U
            | O::F64ConvertI64S
            | O::F64ConvertI64U
    )
}

/// What `op` needs, given the operator just before it: a float straight from a load, a
/// constant or an integer (`scores[i] = w[0]`, a copy) needs no canonicalisation. The value
/// on top of the stack is the previous operator's result whenever that operator produces
/// one, which all of these do.
fn action_after(op: &Operator<'_>, previous: Option<&Operator<'_>>) -> Action {
    let act = action(op);
    let scalar_operand = matches!(
        act,
        Action::Before(_) | Action::ToBits(_) | Action::Store(..)
    );
    if scalar_operand && previous.is_some_and(makes_deterministic_bits) {
        Action::Keep
    } else {
        act
    }
}

impl Reencode for Rewriter {
    type Error = RewriteError;

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        let params = *self.param_counts.get(self.next_function).ok_or_else(|| {
            reencode::Error::UserError(RewriteError("more function bodies than functions".into()))
        })?;
        self.next_function += 1;

        let mut locals: Vec<(u32, ValType)> = Vec::new();
        let mut declared: u32 = 0;
        for pair in func.get_locals_reader()? {
            let (count, ty) = pair?;
            declared = declared.saturating_add(count);
            locals.push((count, self.val_type(ty)?));
        }
        // Two passes over the operators (which never live in memory all at once: a
        // function may be megabytes): the first finds the scratch locals this function
        // needs, the second writes the rewritten body.
        let mut scratch = Scratch::default();
        let mut next_local = params.saturating_add(declared);
        let mut add = |slot: &mut Option<u32>, ty: ValType, locals: &mut Vec<(u32, ValType)>| {
            if slot.is_none() {
                *slot = Some(next_local);
                next_local += 1;
                locals.push((1, ty));
            }
        };
        let mut reader = func.get_operators_reader()?;
        let mut previous = None;
        while !reader.eof() {
            let op = reader.read()?;
            let act = action_after(&op, previous.as_ref());
            previous = Some(op);
            match act {
                Action::Keep => {}
                Action::Before(float) | Action::ToBits(float) | Action::Store(float, _) => {
                    match float {
                        Float::F32 => add(&mut scratch.f32, ValType::F32, &mut locals),
                        Float::F64 => add(&mut scratch.f64, ValType::F64, &mut locals),
                    }
                }
                Action::AfterLanes(_) => add(&mut scratch.v128, ValType::V128, &mut locals),
            }
        }

        let mut f = Function::new(locals);
        let mut reader = func.get_operators_reader()?;
        let mut previous = None;
        while !reader.eof() {
            let op = reader.read()?;
            let act = action_after(&op, previous.as_ref());
            previous = Some(op.clone());
            match act {
                Action::Keep => {}
                Action::Before(float) => {
                    float_to_canonical_bits(&mut f, scratch.scalar(float), float);
                    f.instruction(&match float {
                        Float::F32 => Instruction::F32ReinterpretI32,
                        Float::F64 => Instruction::F64ReinterpretI64,
                    });
                }
                Action::ToBits(float) => {
                    float_to_canonical_bits(&mut f, scratch.scalar(float), float);
                    continue;
                }
                Action::Store(float, memarg) => {
                    float_to_canonical_bits(&mut f, scratch.scalar(float), float);
                    let memarg = self.mem_arg(memarg)?;
                    f.instruction(&match float {
                        Float::F32 => Instruction::I32Store(memarg),
                        Float::F64 => Instruction::I64Store(memarg),
                    });
                    continue;
                }
                Action::AfterLanes(_) => {}
            }
            f.instruction(&self.instruction(op)?);
            if let Action::AfterLanes(float) = act {
                canonical_lanes(&mut f, scratch.v128, float);
            }
        }
        code.function(&f);
        Ok(())
    }
}

/// `[x: f32 or f64] -> [x's bits, or the canonical NaN's]`: `x == x` is false exactly for a
/// NaN, and `select` keeps the bits where it is true. Cranelift turns it into a `ucomisd`
/// and two conditional moves, fewer instructions than testing the bits for a NaN.
fn float_to_canonical_bits(f: &mut Function, scratch: Option<u32>, float: Float) {
    let Some(local) = scratch else { return };
    f.instruction(&Instruction::LocalTee(local));
    let eq = match float {
        Float::F32 => {
            f.instruction(&Instruction::I32ReinterpretF32)
                .instruction(&Instruction::I32Const(CANONICAL_F32_BITS));
            Instruction::F32Eq
        }
        Float::F64 => {
            f.instruction(&Instruction::I64ReinterpretF64)
                .instruction(&Instruction::I64Const(CANONICAL_F64_BITS));
            Instruction::F64Eq
        }
    };
    f.instruction(&Instruction::LocalGet(local))
        .instruction(&Instruction::LocalGet(local))
        .instruction(&eq)
        .instruction(&Instruction::Select);
}

/// `[v: v128] -> [v with every NaN lane canonical]`: `x == x` is false exactly for NaN
/// lanes, and `bitselect` keeps `v` where the mask is set and takes the canonical NaN
/// elsewhere.
fn canonical_lanes(f: &mut Function, scratch: Option<u32>, lanes: Float) {
    let Some(local) = scratch else { return };
    let (canonical, eq) = match lanes {
        Float::F64 => {
            let lane = CANONICAL_F64_BITS as u64 as u128;
            ((lane << 64 | lane) as i128, Instruction::F64x2Eq)
        }
        Float::F32 => {
            let lane = CANONICAL_F32_BITS as u32 as u128;
            (
                (lane << 96 | lane << 64 | lane << 32 | lane) as i128,
                Instruction::F32x4Eq,
            )
        }
    };
    f.instruction(&Instruction::LocalTee(local))
        .instruction(&Instruction::V128Const(canonical))
        .instruction(&Instruction::LocalGet(local))
        .instruction(&Instruction::LocalGet(local))
        .instruction(&eq)
        .instruction(&Instruction::V128Bitselect);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_f64_bits(wat_body: &str) -> u64 {
        // `(func (result i64))` exported as `f`; compiled without Cranelift's own
        // canonicalisation, so what comes out is the rewrite's doing.
        let wat = format!(
            r#"(module (memory (export "memory") 1)
                 (func (export "f") (result i64) {wat_body}))"#
        );
        let module = canonicalize_observable_nans(&wat::parse_str(wat).unwrap()).unwrap();
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, module).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let f = instance.get_typed_func::<(), i64>(&mut store, "f").unwrap();
        f.call(&mut store, ()).unwrap() as u64
    }

    const NEGATIVE_NAN: &str = "(f64.reinterpret_i64 (i64.const 0xfff4000000000001))";

    #[test]
    fn reinterpreting_a_nan_gives_the_canonical_bits() {
        let bits = run_f64_bits(&format!(
            "(i64.reinterpret_f64 (f64.add {NEGATIVE_NAN} (f64.const 1)))"
        ));
        assert_eq!(bits, CANONICAL_F64_BITS as u64);
    }

    #[test]
    fn a_stored_nan_reads_back_canonical() {
        let bits = run_f64_bits(&format!(
            "(f64.store (i32.const 8) (f64.mul {NEGATIVE_NAN} (f64.const 2))) (i64.load (i32.const 8))"
        ));
        assert_eq!(bits, CANONICAL_F64_BITS as u64);
    }

    #[test]
    fn a_float_copied_from_memory_keeps_its_bits() {
        let bits = run_f64_bits(
            "(i64.store (i32.const 0) (i64.const 0xfff4000000000001))
             (f64.store (i32.const 8) (f64.load (i32.const 0)))
             (i64.load (i32.const 8))",
        );
        assert_eq!(bits, 0xfff4_0000_0000_0001);
    }

    #[test]
    fn copysign_takes_the_canonical_nans_sign() {
        let bits = run_f64_bits(&format!(
            "(i64.reinterpret_f64 (f64.copysign (f64.const 1) (f64.sqrt {NEGATIVE_NAN})))"
        ));
        assert_eq!(f64::from_bits(bits), 1.0);
    }

    #[test]
    fn vector_lanes_are_canonical() {
        let bits = run_f64_bits(&format!(
            "(i64x2.extract_lane 1 (f64x2.add (f64x2.splat {NEGATIVE_NAN}) (f64x2.splat (f64.const 1))))"
        ));
        assert_eq!(bits, CANONICAL_F64_BITS as u64);
        let bits = run_f64_bits(
            "(i64.extend_i32_u (i32x4.extract_lane 2 (f32x4.div (f32x4.splat (f32.const 0)) (f32x4.splat (f32.const 0)))))",
        );
        assert_eq!(bits, CANONICAL_F32_BITS as u32 as u64);
    }

    #[test]
    fn ordinary_values_are_untouched() {
        for value in [
            0.0,
            -0.0,
            1.5,
            -2.25,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            5e-324,
        ] {
            let bits = run_f64_bits(&format!(
                "(f64.store (i32.const 0) (f64.add (f64.const {value:e}) (f64.const 0))) (i64.load (i32.const 0))"
            ));
            assert_eq!(f64::from_bits(bits), value + 0.0, "{value}");
        }
        let bits =
            run_f64_bits("(i64.extend_i32_u (i32.reinterpret_f32 (f32.neg (f32.const 3.5))))");
        assert_eq!(bits as u32, (-3.5f32).to_bits());
    }

    #[test]
    fn functions_with_parameters_and_locals_get_fresh_scratch_locals() {
        let wat = r#"(module (memory (export "memory") 1)
            (func $g (param f64 i32) (result i64) (local i64 f64)
                (local.set 2 (i64.const 42))
                (f64.store (local.get 1) (f64.div (local.get 0) (local.get 0)))
                (i64.add (local.get 2) (i64.load (local.get 1))))
            (func (export "f") (result i64) (call $g (f64.const 0) (i32.const 16))))"#;
        let module = canonicalize_observable_nans(&wat::parse_str(wat).unwrap()).unwrap();
        wasmparser::Validator::new_with_features(crate::precheck::allowed_features())
            .validate_all(&module)
            .unwrap();
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, module).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let f = instance.get_typed_func::<(), i64>(&mut store, "f").unwrap();
        assert_eq!(f.call(&mut store, ()).unwrap(), 42 + CANONICAL_F64_BITS);
    }
}
