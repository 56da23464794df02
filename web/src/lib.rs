//! The HTTP face of medarena: API and server-rendered pages over `medarena-arena`.
pub use medarena_arena as arena;
