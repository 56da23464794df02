//! Any text fed to the manifest parser gives a manifest or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medarena_datasets_spec::Manifest;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Manifest::from_str(text);
    }
});
