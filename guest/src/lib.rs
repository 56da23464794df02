//! The competitor SDK for medarena submissions. Compiles to `wasm32-unknown-unknown`.
#![no_std]
