//! Ledger benchmarks (numbers in BENCHMARKS.md, `## ledger`):
//!
//! - durable appends per second, batched and single, to the embedded file store (every
//!   batch is fdatasync'ed and covered by a new signed, synced checkpoint), and single
//!   appends from many threads through `SharedLedger` (group commit);
//! - inclusion proof generation and verification at 1M leaves, and a whole receipt.
//!
//! Run: `cargo bench -p medarena-ledger --bench ledger`

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use medarena_ledger::merkle::verify_inclusion;
use medarena_ledger::{
    Event, Hash, Id, Ledger, LogSigner, MemoryStore, MerkleTree, NewEntry, Number, SharedLedger,
    Timestamp,
};

const MILLION: u64 = 1 << 20;

fn entry(n: u64) -> NewEntry {
    NewEntry::new(
        Timestamp::from_unix_millis(1_790_000_000_000 + n).unwrap(),
        Id::new("organizer:olga").unwrap(),
        Event::ScoreReleased {
            competition: Id::new("sepsis-2026").unwrap(),
            submission: Id::new(format!("sub-{n}")).unwrap(),
            split: Id::new("public").unwrap(),
            metric: Id::new("auroc").unwrap(),
            value: Number::new(0.5 + (n % 1000) as f64 / 2000.0).unwrap(),
            epsilon: Number::new(0.1).unwrap(),
        },
    )
}

fn appends(c: &mut Criterion) {
    let mut group = c.benchmark_group("durable_append");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    for batch in [1u64, 100, 1000, 10_000] {
        let dir = tempfile::tempdir().unwrap();
        let (mut ledger, _) = Ledger::open(dir.path(), "medarena.bench/ledger").unwrap();
        group.throughput(Throughput::Elements(batch));
        let next = std::cell::Cell::new(0u64);
        group.bench_function(format!("batch_{batch}"), |b| {
            b.iter_batched(
                || {
                    let first = next.get();
                    next.set(first + batch);
                    (first..first + batch).map(entry).collect::<Vec<_>>()
                },
                |entries| ledger.append_batch(entries).unwrap(),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    // Concurrent single appends through SharedLedger: each returns when durable, and the
    // entries that queue up behind a sync are written together by the next one.
    let mut group = c.benchmark_group("durable_append_concurrent");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for threads in [16u64, 64] {
        let per_thread = 50u64;
        let dir = tempfile::tempdir().unwrap();
        let (ledger, _) = Ledger::open(dir.path(), "medarena.bench/ledger").unwrap();
        let shared = SharedLedger::new(ledger);
        group.throughput(Throughput::Elements(threads * per_thread));
        group.bench_function(format!("{threads}_threads_single_appends"), |b| {
            b.iter(|| {
                std::thread::scope(|scope| {
                    for thread in 0..threads {
                        let shared = &shared;
                        scope.spawn(move || {
                            for n in 0..per_thread {
                                shared.append(entry(thread * 1_000_000 + n)).unwrap();
                            }
                        });
                    }
                });
            })
        });
    }
    group.finish();
}

fn proofs(c: &mut Criterion) {
    let mut tree = MerkleTree::new();
    for n in 0..MILLION {
        tree.push(Hash::of_leaf(&n.to_be_bytes()));
    }
    let size = tree.len();
    let root = tree.root(size).unwrap();
    let mut group = c.benchmark_group("proofs_1M_leaves");
    let mut index = 0u64;
    group.bench_function("inclusion_proof", |b| {
        b.iter(|| {
            index = (index + 7919) % size;
            black_box(tree.inclusion_proof(index, size).unwrap())
        })
    });
    let proof = tree.inclusion_proof(123_456, size).unwrap();
    let leaf = Hash::of_leaf(&123_456u64.to_be_bytes());
    group.bench_function("verify_inclusion", |b| {
        b.iter(|| {
            verify_inclusion(black_box(leaf), 123_456, size, black_box(&proof), root).unwrap()
        })
    });
    group.bench_function("consistency_proof", |b| {
        b.iter(|| {
            index = (index + 7919) % size;
            black_box(tree.consistency_proof(index, size).unwrap())
        })
    });
    drop(tree);

    // A whole receipt (read the entry, proof, checkpoint) from a ledger of 1M entries.
    let (signer, _) = LogSigner::generate("medarena.bench/ledger").unwrap();
    let (mut ledger, _) = Ledger::with_store(MemoryStore::new(), signer).unwrap();
    for start in (0..MILLION).step_by(65_536) {
        ledger
            .append_batch((start..start + 65_536).map(entry).collect())
            .unwrap();
    }
    group.bench_function("receipt", |b| {
        b.iter(|| {
            index = (index + 7919) % MILLION;
            black_box(ledger.receipt(index).unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, appends, proofs);
criterion_main!(benches);
