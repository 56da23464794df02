//! The sealed sandbox: the submission ABI and the wasmtime host that runs it. See `ABI.md`.
