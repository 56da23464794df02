//! The pre-check sees untrusted bytes first: it must never panic, and whatever it accepts
//! must really have zero imports and the required exports.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medarena_sandbox::{Limits, precheck};

fuzz_target!(|module: &[u8]| {
    let limits = Limits { max_module_bytes: 1 << 20, ..Limits::default() };
    if let Ok(info) = precheck(module, &limits) {
        assert_eq!(info.size, module.len());
        assert!(info.has_fit_predict || info.has_analyze);
        for payload in wasmparser_free_import_scan(module) {
            panic!("accepted a module with an import section entry: {payload}");
        }
    }
});

/// Independent check: scans top-level sections for a non-empty import section (id 2).
fn wasmparser_free_import_scan(module: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut at = 8;
    while at < module.len() {
        let id = module[at];
        at += 1;
        let (mut size, mut shift) = (0usize, 0);
        loop {
            let Some(&byte) = module.get(at) else { return found };
            at += 1;
            size |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 || shift > 28 {
                break;
            }
        }
        if id == 2 && module.get(at).is_some_and(|&count| count != 0) {
            found.push(format!("import section at byte {at}"));
        }
        at = at.saturating_add(size);
    }
    found
}
