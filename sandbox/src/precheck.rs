//! The pre-check: everything that can be said about a module without compiling it, done in
//! the parent before any child process is spawned.

use wasmparser::{ExternalKind, FuncType, Parser, Payload, ValType, Validator, WasmFeatures};

use crate::Limits;

/// Why a module was refused; the text names the offending import, export or section and is
/// safe to show (it says nothing about data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("module is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("module is not valid WebAssembly: {0}")]
    Invalid(String),
    #[error("module imports `{module}`.`{name}`: submissions must have zero imports")]
    Import { module: String, name: String },
    #[error("module does not export `{0}` (see ABI.md)")]
    MissingExport(&'static str),
    #[error("export `{name}` has the wrong type: expected {expected}")]
    WrongExportType {
        name: String,
        expected: &'static str,
    },
    #[error("module declares {what} of at least {declared}, over the limit of {limit}")]
    DeclaredTooLarge {
        what: &'static str,
        declared: u64,
        limit: u64,
    },
    #[error("module uses {0}, which the sandbox does not allow")]
    Forbidden(&'static str),
}

/// What the pre-check learned about an accepted module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleInfo {
    /// SHA-256 of the module bytes, hex: the module's identity (and cache key part).
    pub sha256: String,
    pub size: usize,
    pub has_fit_predict: bool,
    pub has_analyze: bool,
}

/// The WebAssembly features a submission may use: WebAssembly 2.0 plus tail calls,
/// extended constants and relaxed SIMD (made deterministic by the engine). No threads,
/// no shared memory, no memory64, no multi-memory, no GC or exceptions.
pub fn allowed_features() -> WasmFeatures {
    WasmFeatures::WASM2
        | WasmFeatures::TAIL_CALL
        | WasmFeatures::EXTENDED_CONST
        | WasmFeatures::RELAXED_SIMD
}

pub const EXPORT_MEMORY: &str = "memory";
pub const EXPORT_ABI_VERSION: &str = "medarena_abi_version";
pub const EXPORT_ALLOC: &str = "medarena_alloc";
pub const EXPORT_FIT: &str = "medarena_fit";
pub const EXPORT_PREDICT: &str = "medarena_predict";
pub const EXPORT_ANALYZE: &str = "medarena_analyze";

/// The signature each exported function must have.
fn expected_signature(
    name: &str,
) -> Option<(&'static [ValType], &'static [ValType], &'static str)> {
    const I32: &[ValType] = &[ValType::I32];
    const I32_I32: &[ValType] = &[ValType::I32, ValType::I32];
    Some(match name {
        EXPORT_ABI_VERSION => (&[], I32, "() -> i32"),
        EXPORT_ALLOC => (I32_I32, I32, "(i32, i32) -> i32"),
        EXPORT_FIT | EXPORT_PREDICT | EXPORT_ANALYZE => (I32, I32, "(i32) -> i32"),
        _ => return None,
    })
}

/// Checks a module against the ABI and the limits without compiling it: size, validity
/// (with [`allowed_features`]), zero imports, declared memory and table minimums, and the
/// required exports with their types.
pub fn precheck(module: &[u8], limits: &Limits) -> Result<ModuleInfo, Refusal> {
    use sha2::Digest;
    if module.len() > limits.max_module_bytes {
        return Err(Refusal::TooLarge {
            size: module.len(),
            limit: limits.max_module_bytes,
        });
    }
    // Imports first, so that the refusal names the import even when it is of a kind the
    // validator would reject for another reason.
    let mut func_types: Vec<Option<FuncType>> = Vec::new();
    let mut func_type_index: Vec<u32> = Vec::new();
    let mut exports: Vec<(String, ExternalKind, u32)> = Vec::new();
    let mut memories: Vec<wasmparser::MemoryType> = Vec::new();
    for payload in Parser::new(0).parse_all(module) {
        let payload = payload.map_err(|e| Refusal::Invalid(e.to_string()))?;
        match payload {
            Payload::ImportSection(reader) => {
                // Any import at all is a refusal; the first one is named.
                if let Some(import) = reader.into_imports().next() {
                    let import = import.map_err(|e| Refusal::Invalid(e.to_string()))?;
                    return Err(Refusal::Import {
                        module: import.module.to_string(),
                        name: import.name.to_string(),
                    });
                }
            }
            Payload::TypeSection(reader) => {
                for group in reader.into_iter_err_on_gc_types() {
                    func_types.push(group.ok());
                }
            }
            Payload::FunctionSection(reader) => {
                for index in reader {
                    func_type_index.push(index.map_err(|e| Refusal::Invalid(e.to_string()))?);
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    memories.push(memory.map_err(|e| Refusal::Invalid(e.to_string()))?);
                }
            }
            Payload::TableSection(reader) => {
                for table in reader {
                    let table = table.map_err(|e| Refusal::Invalid(e.to_string()))?;
                    check_declared("a table", table.ty.initial, limits.max_table_elements)?;
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(|e| Refusal::Invalid(e.to_string()))?;
                    exports.push((export.name.to_string(), export.kind, export.index));
                }
            }
            _ => {}
        }
    }
    Validator::new_with_features(allowed_features())
        .validate_all(module)
        .map_err(|e| Refusal::Invalid(e.to_string()))?;

    for memory in &memories {
        if memory.shared {
            return Err(Refusal::Forbidden("a shared memory"));
        }
        let page = 1u64 << memory.page_size_log2.unwrap_or(16);
        check_declared(
            "a memory (bytes)",
            memory.initial.saturating_mul(page),
            limits.max_memory_bytes,
        )?;
    }
    let find = |wanted: &str| exports.iter().find(|(name, _, _)| name == wanted);
    match find(EXPORT_MEMORY) {
        Some((_, ExternalKind::Memory, _)) => {}
        Some(_) => {
            return Err(Refusal::WrongExportType {
                name: EXPORT_MEMORY.into(),
                expected: "a memory",
            });
        }
        None => return Err(Refusal::MissingExport(EXPORT_MEMORY)),
    }
    let check_function = |name: &'static str, required: bool| -> Result<bool, Refusal> {
        let Some((_, kind, index)) = find(name) else {
            return if required {
                Err(Refusal::MissingExport(name))
            } else {
                Ok(false)
            };
        };
        let (params, results, expected) = expected_signature(name).unwrap_or((&[], &[], "?"));
        let wrong = || Refusal::WrongExportType {
            name: name.to_string(),
            expected,
        };
        if *kind != ExternalKind::Func {
            return Err(wrong());
        }
        // No imports, so function index i is the i-th defined function.
        let ty = func_type_index
            .get(*index as usize)
            .and_then(|type_index| func_types.get(*type_index as usize))
            .and_then(Option::as_ref)
            .ok_or_else(wrong)?;
        if ty.params() != params || ty.results() != results {
            return Err(wrong());
        }
        Ok(true)
    };
    check_function(EXPORT_ABI_VERSION, true)?;
    check_function(EXPORT_ALLOC, true)?;
    let has_fit = check_function(EXPORT_FIT, false)?;
    let has_predict = check_function(EXPORT_PREDICT, false)?;
    let has_analyze = check_function(EXPORT_ANALYZE, false)?;
    match (has_fit, has_predict) {
        (true, false) => return Err(Refusal::MissingExport(EXPORT_PREDICT)),
        (false, true) => return Err(Refusal::MissingExport(EXPORT_FIT)),
        (false, false) if !has_analyze => return Err(Refusal::MissingExport(EXPORT_FIT)),
        _ => {}
    }
    Ok(ModuleInfo {
        sha256: hex::encode(sha2::Sha256::digest(module)),
        size: module.len(),
        has_fit_predict: has_fit && has_predict,
        has_analyze,
    })
}

fn check_declared(what: &'static str, declared: u64, limit: u64) -> Result<(), Refusal> {
    if declared > limit {
        return Err(Refusal::DeclaredTooLarge {
            what,
            declared,
            limit,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MINIMAL: &str = r#"(module
        (memory (export "memory") 1)
        (func (export "medarena_abi_version") (result i32) (i32.const 1))
        (func (export "medarena_alloc") (param i32 i32) (result i32) (i32.const 8))
        (func (export "medarena_analyze") (param i32) (result i32) (i32.const 0)))"#;

    #[test]
    fn an_analysis_only_module_is_accepted() {
        let module = wat::parse_str(MINIMAL).unwrap();
        let info = precheck(&module, &Limits::default()).unwrap();
        assert!(info.has_analyze && !info.has_fit_predict);
        assert_eq!(info.sha256.len(), 64);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Corrupting any byte of a valid module never panics, and whatever is still
        /// accepted has no import (the fuzz target explores this further).
        #[test]
        fn corrupted_modules_never_panic(position in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
            let mut module = wat::parse_str(MINIMAL).unwrap();
            let at = position.index(module.len());
            module[at] = byte;
            let keep = cut.index(module.len() + 1);
            for candidate in [&module[..], &module[..keep]] {
                if let Ok(info) = precheck(candidate, &Limits::default()) {
                    prop_assert_eq!(info.size, candidate.len());
                }
            }
        }
    }
}
