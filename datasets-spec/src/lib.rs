//! The dataset contract: how a hospital describes, uploads and the platform checks a
//! de-identified dataset. See `SPEC.md`.

pub mod cells;
pub mod dates;
pub mod dummy;
pub mod example;
pub mod hash;
pub mod kanon;
pub mod load;
pub mod manifest;
pub mod phi;
pub mod schema;
pub mod split;
pub mod typed;
pub mod union;
pub mod validate;
pub mod values;

/// The arrow-rs version tables are handed over in.
pub use arrow;
pub use arrow::array::RecordBatch;
pub use dummy::dummy;
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
pub use schema::json_schema;
pub use split::{Part, Split, SplitConfig, SplitRecord, split};
pub use typed::{ConformError, arrow_schema, conform};
pub use union::{UnionError, union_sites};
pub use validate::{Finding, Report, Severity, ValidationConfig, validate};
