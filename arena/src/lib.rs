//! The medarena core: composes datasets-spec, sandbox, scorer and ledger into competitions.
pub use medarena_datasets_spec as datasets_spec;
pub use medarena_ledger as ledger;
pub use medarena_sandbox as sandbox;
pub use medarena_scorer as scorer;
