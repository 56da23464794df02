//! Test support for `tests/crash.rs`: appends batches of predictable entries to the
//! ledger in a directory and prints `acked <len>` after every append returns, until it
//! is killed (or has written `limit` entries).
//!
//! Usage: `ledger-crash-writer <dir> <seed> [limit]`

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use medarena_ledger::Ledger;

#[path = "../../tests/support/crash_entries.rs"]
mod crash_entries;
use crash_entries::expected_entry;

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .ok_or("usage: ledger-crash-writer <dir> <seed> [limit]")?,
    );
    let mut state: u64 = args.next().ok_or("missing seed")?.parse()?;
    let limit: u64 = args
        .next()
        .map(|l| l.parse())
        .transpose()?
        .unwrap_or(200_000);
    let (mut ledger, _) = Ledger::open(&dir, "medarena.test/crash")?;
    let mut stdout = std::io::stdout().lock();
    while ledger.len() < limit {
        // xorshift: batch sizes from 1 to 40, mixing single appends and batches.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let batch = 1 + state % 40;
        let first = ledger.len();
        let entries = (first..first + batch)
            .map(expected_entry)
            .collect::<Result<Vec<_>, _>>()?;
        ledger.append_batch(entries)?;
        writeln!(stdout, "acked {}", ledger.len())?;
        stdout.flush()?;
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ledger-crash-writer: {error}");
            ExitCode::FAILURE
        }
    }
}
