//! The debug log: there are no imports, so lines are kept in a guest buffer whose address
//! and length the SDK writes into the current call record for the host to read.

use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Per call; the host applies its own (smaller or equal) cap.
const MAX_DEBUG_BYTES: usize = 64 * 1024;

struct Log {
    busy: AtomicBool,
    record: AtomicU32,
    bytes: UnsafeCell<Vec<u8>>,
}

// SAFETY: `bytes` is only touched while `busy` is held.
unsafe impl Sync for Log {}

static LOG: Log = Log {
    busy: AtomicBool::new(false),
    record: AtomicU32::new(0),
    bytes: UnsafeCell::new(Vec::new()),
};

fn with_log(action: impl FnOnce(&mut Vec<u8>, u32)) {
    while LOG.busy.swap(true, Ordering::Acquire) {
        core::hint::spin_loop();
    }
    // SAFETY: we hold `busy`.
    action(
        unsafe { &mut *LOG.bytes.get() },
        LOG.record.load(Ordering::Relaxed),
    );
    LOG.busy.store(false, Ordering::Release);
}

pub(crate) fn begin_call(record: u32) {
    LOG.record.store(record, Ordering::Relaxed);
    with_log(|bytes, _| bytes.clear());
}

/// Appends text to this call's debug log (what [`crate::debug!`] calls); text past 64 KiB
/// is dropped.
pub fn debug_write(text: &str) {
    with_log(|bytes, record| {
        let room = MAX_DEBUG_BYTES.saturating_sub(bytes.len());
        bytes.extend_from_slice(&text.as_bytes()[..text.len().min(room)]);
        #[cfg(target_family = "wasm")]
        if record != 0 {
            // SAFETY: `record` is the live call record the host passed to this call.
            unsafe {
                crate::rt::set_field(
                    record,
                    crate::rt::call::DEBUG_PTR,
                    bytes.as_ptr() as usize as u32,
                );
                crate::rt::set_field(record, crate::rt::call::DEBUG_LEN, bytes.len() as u32);
            }
        }
        #[cfg(not(target_family = "wasm"))]
        let _ = record;
    });
}
