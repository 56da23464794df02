//! Kill the writer at random points, again and again: the log must reopen consistent,
//! with every acknowledged entry intact, and its checkpoint must verify.

use std::fs::OpenOptions;
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use medarena_ledger::store::ENTRIES_FILE;
use medarena_ledger::{Ledger, SignedCheckpoint};

mod support {
    pub mod crash_entries;
}
use support::crash_entries::expected_entry;

const ORIGIN: &str = "medarena.test/crash";

/// A small deterministic generator, so a failure can be replayed from its seed.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn killed_writers_never_lose_acknowledged_entries() {
    let dir = tempfile::tempdir().unwrap();
    let seed = std::env::var("LEDGER_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_1234_u64);
    let mut random = XorShift(seed);
    let mut acknowledged_so_far = 0u64;
    let mut checked_rounds = 0;
    for round in 0..12 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ledger-crash-writer"))
            .arg(dir.path())
            .arg((random.next() | 1).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let acked = Arc::new(Mutex::new(0u64));
        let reader = {
            let acked = Arc::clone(&acked);
            let stdout = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(len) = line.strip_prefix("acked ") {
                        *acked.lock().unwrap() = len.parse().unwrap();
                    }
                }
            })
        };
        std::thread::sleep(Duration::from_millis(30 + random.next() % 170));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        let acked = *acked.lock().unwrap();
        acknowledged_so_far = acknowledged_so_far.max(acked);

        // Every other round, also leave a torn frame behind, as a power cut would.
        if round % 2 == 1 {
            let garbage_len = 1 + random.next() % 60;
            let mut file = OpenOptions::new()
                .append(true)
                .open(dir.path().join(ENTRIES_FILE))
                .unwrap();
            let mut torn = vec![0u8; garbage_len as usize];
            torn[0] = 200; // a plausible frame length that runs past the end
            for byte in torn.iter_mut().skip(4) {
                *byte = random.next() as u8;
            }
            file.write_all(&torn).unwrap();
        }

        let (ledger, report) = Ledger::open(dir.path(), ORIGIN)
            .unwrap_or_else(|error| panic!("round {round} (seed {seed}): reopen failed: {error}"));
        assert!(
            ledger.len() >= acknowledged_so_far,
            "round {round}: {} entries after reopening, {acknowledged_so_far} were acknowledged",
            ledger.len()
        );
        if round % 2 == 1 {
            assert!(
                report.recovery.truncated_bytes > 0,
                "round {round}: torn tail not reported"
            );
        }
        for (index, entry) in (0..).zip(ledger.entries(0, ledger.len()).unwrap()) {
            assert_eq!(
                entry,
                expected_entry(index).unwrap().at_index(index),
                "round {round}"
            );
        }
        ledger.audit().unwrap();
        let checkpoint =
            SignedCheckpoint::verify(ledger.checkpoint().text(), ledger.verifier_key()).unwrap();
        assert_eq!(checkpoint.size(), ledger.len());
        if !ledger.is_empty() {
            let index = random.next() % ledger.len();
            ledger
                .receipt(index)
                .unwrap()
                .verify(ledger.verifier_key())
                .unwrap();
            checked_rounds += 1;
        }
    }
    assert!(
        checked_rounds > 6,
        "the writer barely ran; the test proved nothing"
    );
    assert!(acknowledged_so_far > 0);
}
