//! [`SharedLedger`]: one ledger for many threads, with group commit.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::entry::NewEntry;
use crate::ledger::{Appended, Ledger, LedgerError};
use crate::store::{DynStore, LedgerStore};

struct State<S: LedgerStore> {
    /// `None` while a thread is writing a batch with it.
    ledger: Option<Ledger<S>>,
    queue: Vec<(u64, NewEntry)>,
    next_ticket: u64,
    outcomes: HashMap<u64, Result<Appended, String>>,
}

/// A [`Ledger`] shared between threads. Each [`SharedLedger::append`] returns only when
/// its entry is durable and covered by a signed checkpoint, but entries that arrive while
/// a batch is being written are written together as the next batch, with one sync: under
/// load, single appends get the throughput of batched ones.
pub struct SharedLedger<S: LedgerStore = DynStore> {
    state: Mutex<State<S>>,
    written: Condvar,
}

impl<S: LedgerStore> SharedLedger<S> {
    pub fn new(ledger: Ledger<S>) -> SharedLedger<S> {
        SharedLedger {
            state: Mutex::new(State {
                ledger: Some(ledger),
                queue: Vec::new(),
                next_ticket: 0,
                outcomes: HashMap::new(),
            }),
            written: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<S>> {
        // A panic while holding the lock leaves the state as consistent as any append
        // error does, so carry on with it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends one entry; returns when it is durable and covered by the checkpoint.
    pub fn append(&self, entry: NewEntry) -> Result<Appended, LedgerError> {
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.queue.push((ticket, entry));
        loop {
            if let Some(outcome) = state.outcomes.remove(&ticket) {
                return outcome.map_err(|reason| LedgerError::GroupAppend { reason });
            }
            if let Some(mut ledger) = state.ledger.take() {
                // Nobody is writing: write everything queued so far, this entry included.
                let batch = std::mem::take(&mut state.queue);
                drop(state);
                let (tickets, entries): (Vec<u64>, Vec<NewEntry>) = batch.into_iter().unzip();
                let result = ledger.append_batch(entries);
                state = self.lock();
                state.ledger = Some(ledger);
                match result {
                    Ok(appended) => {
                        for (ticket, appended) in tickets.into_iter().zip(appended) {
                            state.outcomes.insert(ticket, Ok(appended));
                        }
                    }
                    Err(error) => {
                        let reason = error.to_string();
                        for ticket in tickets {
                            state.outcomes.insert(ticket, Err(reason.clone()));
                        }
                    }
                }
                self.written.notify_all();
                continue;
            }
            state = self
                .written
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Runs `read` on the ledger (waiting for a batch being written, at most one sync).
    pub fn read<T>(&self, read: impl FnOnce(&Ledger<S>) -> T) -> T {
        let mut state = self.lock();
        loop {
            if let Some(ledger) = &state.ledger {
                return read(ledger);
            }
            state = self
                .written
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Runs `change` on the ledger between batches (a follower's [`Ledger::refresh`]).
    pub fn update<T>(&self, change: impl FnOnce(&mut Ledger<S>) -> T) -> T {
        let mut state = self.lock();
        loop {
            if let Some(ledger) = state.ledger.as_mut() {
                return change(ledger);
            }
            state = self
                .written
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Takes the ledger back (e.g. to close it).
    pub fn into_inner(self) -> Option<Ledger<S>> {
        self.state
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .ledger
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, Id, LogSigner, MemoryStore, Timestamp};
    use std::sync::Arc;

    #[test]
    fn concurrent_appends_all_land_once_with_valid_receipts() {
        let (signer, _) = LogSigner::generate("medarena.test/shared").unwrap();
        let (ledger, _) = Ledger::with_store(MemoryStore::new(), signer).unwrap();
        let shared = Arc::new(SharedLedger::new(ledger));
        let threads: Vec<_> = (0..8)
            .map(|thread| {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || {
                    (0..50)
                        .map(|n| {
                            let entry = NewEntry::new(
                                Timestamp::from_unix_millis(n).unwrap(),
                                Id::new(format!("thread-{thread}")).unwrap(),
                                Event::CompetitionClosed {
                                    competition: Id::new(format!("c-{n}")).unwrap(),
                                },
                            );
                            shared.append(entry).unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let appended: Vec<Appended> = threads
            .into_iter()
            .flat_map(|thread| thread.join().unwrap())
            .collect();
        let mut indexes: Vec<u64> = appended.iter().map(|a| a.index).collect();
        indexes.sort_unstable();
        assert_eq!(indexes, (0..400).collect::<Vec<_>>());
        shared.read(|ledger| {
            assert_eq!(ledger.len(), 400);
            // Ed25519 is slow unoptimised: check a sample of receipts.
            for appended in appended.iter().step_by(37) {
                let receipt = ledger.receipt_for(&appended.evidence_code).unwrap();
                receipt.verify(ledger.verifier_key()).unwrap();
            }
        });
    }
}
