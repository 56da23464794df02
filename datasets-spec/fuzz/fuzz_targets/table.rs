//! Any bytes fed to the table loader (as CSV, Parquet or Arrow IPC) give a table or an error;
//! a table then validates against the example manifest without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medarena_datasets_spec::example::HEART_MANIFEST;
use medarena_datasets_spec::{Format, Manifest, ValidationConfig, load_table_bytes, validate};

fuzz_target!(|data: &[u8]| {
    let Some((selector, bytes)) = data.split_first() else { return };
    let format = match selector % 3 {
        0 => Format::Csv,
        1 => Format::Parquet,
        _ => Format::ArrowIpc,
    };
    if let Ok(table) = load_table_bytes(bytes, format)
        && let Ok(manifest) = Manifest::from_str(HEART_MANIFEST)
    {
        let _ = validate(&manifest, &table, &ValidationConfig::default());
    }
});
