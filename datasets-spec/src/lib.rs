//! The dataset contract: how a hospital describes, uploads and the platform checks a
//! de-identified dataset. See `SPEC.md`.

pub mod cells;
pub mod dates;
pub mod hash;
pub mod kanon;
pub mod load;
pub mod manifest;
pub mod phi;
pub mod validate;
pub mod values;

pub use hash::{ContentHash, hash_file, hash_table};
pub use kanon::KAnonymity;
pub use load::{
    Format, LoadError, LoadOptions, LoadedTable, WriteError, load_bytes_with_manifest, load_table,
    load_table_bytes, load_with_manifest, write_table, write_table_bytes,
};
pub use manifest::{
    Bound, Category, CategoryValue, Constraints, DatePrecision, Field, FieldType, Manifest,
    ManifestError, PrivacyClass, Role, TableSchema,
};
pub use validate::{Finding, Report, Severity, ValidationConfig, validate};
