//! The entries `ledger-crash-writer` appends, shared with `tests/crash.rs` so the test can
//! check every recovered entry byte for byte.

use medarena_ledger::{EntryError, Event, Id, NewEntry, Timestamp};

/// The entry the crash writer appends at `index`.
pub fn expected_entry(index: u64) -> Result<NewEntry, EntryError> {
    Ok(NewEntry::new(
        Timestamp::from_unix_millis(1_700_000_000_000 + index)?,
        Id::new("worker:crash-test")?,
        Event::RunStarted {
            run: Id::new(format!("run-{index}"))?,
            submission: Id::new(format!("sub-{}", index % 7))?,
            dataset: Id::new("ds-1")?,
            split: Id::new("public")?,
            seed: index.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        },
    ))
}
