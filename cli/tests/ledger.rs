//! `medarena ledger ...` end to end, through the real binary: offline verification of
//! receipts and checkpoints, operator commands, and `--url` against a small HTTP server
//! started here on the loopback interface.

use std::fs;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use medarena_ledger::{
    Event, EvidenceCode, Id, Ledger, LedgerStore, LogSigner, MemoryStore, NewEntry, Receipt,
    Timestamp,
};

const ORIGIN: &str = "medarena.test/ledger";

fn medarena(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medarena"))
        .args(args)
        .output()
        .expect("the medarena binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `medarena ledger verify ARGS` must pass and print each of `lines`.
fn assert_verifies(args: &[&str], lines: &[&str]) {
    let output = medarena(&[&["ledger", "verify"], args].concat());
    let text = stdout(&output);
    assert!(output.status.success(), "verify {args:?} failed:\n{text}");
    for line in lines {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
}

/// `medarena ledger verify ARGS` must report a failed check (exit 1) mentioning `needle`.
fn assert_verify_fails(args: &[&str], needle: &str) {
    let output = medarena(&[&["ledger", "verify"], args].concat());
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "verify {args:?}:\n{text}");
    assert!(text.contains(needle), "missing `{needle}` in\n{text}");
}

fn entry(n: u64, team: &str) -> NewEntry {
    NewEntry::new(
        Timestamp::from_unix_millis(1_790_000_000_000 + n).unwrap(),
        Id::new("organizer:olga").unwrap(),
        Event::ScoreReleased {
            competition: Id::new("sepsis-2026").unwrap(),
            submission: Id::new(format!("sub-{team}-{n}")).unwrap(),
            split: Id::new("public").unwrap(),
            metric: Id::new("auroc").unwrap(),
            value: medarena_ledger::Number::new(0.5 + n as f64 / 100.0).unwrap(),
            epsilon: medarena_ledger::Number::new(0.1).unwrap(),
        },
    )
}

fn append<S: LedgerStore>(ledger: &mut Ledger<S>, count: u64, team: &str) {
    let first = ledger.len();
    ledger
        .append_batch((first..first + count).map(|n| entry(n, team)).collect())
        .unwrap();
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    fs::write(&path, contents).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn offline_verification_of_receipts_and_checkpoints() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let (mut ledger, _) = Ledger::open(&data, ORIGIN).unwrap();
    append(&mut ledger, 3, "a");
    let receipt = ledger.receipt(1).unwrap();
    let receipt_file = write(
        work.path(),
        "receipt.json",
        &serde_json::to_string_pretty(&receipt).unwrap(),
    );
    let cp3 = write(work.path(), "cp3.txt", ledger.checkpoint().text());
    append(&mut ledger, 4, "a");
    let cp7 = write(work.path(), "cp7.txt", ledger.checkpoint().text());
    let proof = write(
        work.path(),
        "consistency.json",
        &serde_json::to_string(&ledger.consistency_proof(3, 7).unwrap()).unwrap(),
    );
    let key_file = data.join("ledger.pub").to_string_lossy().into_owned();
    let key_text = ledger.verifier_key().to_string();

    assert_verifies(
        &["--key", &key_file, "--receipt", &receipt_file],
        &[
            "ok    receipt checkpoint signature",
            "ok    entry: canonical, index 1, score.released",
            "ok    inclusion: leaf 1 is in the tree of size 3",
        ],
    );
    // A receipt against a later checkpoint, with the key given inline.
    let later = ["--receipt", &receipt_file, "--checkpoint", &cp7];
    assert_verifies(
        &[&["--key", &key_text, "--consistency", &proof], &later[..]].concat(),
        &["size 7 extends size 3"],
    );
    // Two checkpoints and their consistency proof, in either order.
    let both = ["--checkpoint", &cp7, "--checkpoint", &cp3];
    assert_verifies(
        &[&["--key", &key_file, "--consistency", &proof], &both[..]].concat(),
        &[],
    );
    // Without the proof the check cannot be made: a failure that says what is missing.
    assert_verify_fails(
        &[&["--key", &key_file], &later[..]].concat(),
        "pass --consistency",
    );

    // An altered entry.
    let mut altered: Receipt = receipt.clone();
    altered.entry = altered.entry.replace("value 0.51", "value 0.99");
    let altered_file = write(
        work.path(),
        "altered.json",
        &serde_json::to_string(&altered).unwrap(),
    );
    assert_verify_fails(
        &["--key", &key_file, "--receipt", &altered_file],
        "FAIL  entry",
    );

    // Another log's key.
    let (stranger, _) = LogSigner::generate(ORIGIN).unwrap();
    let stranger_key = stranger.verifier_key().to_string();
    assert_verify_fails(
        &["--key", &stranger_key, "--receipt", &receipt_file],
        "FAIL  receipt checkpoint signature",
    );

    // A fork: the same key signing a different history of the same size.
    let signer = LogSigner::load_or_generate(&data, ORIGIN).unwrap();
    let (mut fork, _) = Ledger::with_store(MemoryStore::new(), signer).unwrap();
    append(&mut fork, 7, "b");
    let forked = write(work.path(), "fork7.txt", fork.checkpoint().text());
    assert_verify_fails(
        &[
            "--key",
            &key_file,
            "--checkpoint",
            &cp7,
            "--checkpoint",
            &forked,
        ],
        "forked",
    );

    // Unreadable input is an error (exit 2) that names the file.
    let output = medarena(&["ledger", "verify", "--key", &key_file, "--receipt", &cp3]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cp3.txt"));

    // Operators: inspect and export a receipt (the ledger must be closed first).
    let output = medarena(&["ledger", "inspect", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "the running ledger holds the lock"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("another process"));
    drop(ledger);
    let output = medarena(&[
        "ledger",
        "inspect",
        "--data-dir",
        data.to_str().unwrap(),
        "--limit",
        "3",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout(&output).contains("entries     7"),
        "{}",
        stdout(&output)
    );
    assert_eq!(stdout(&output).matches("score.released").count(), 3);
    let output = medarena(&[
        "ledger",
        "receipt",
        "--data-dir",
        data.to_str().unwrap(),
        "--index",
        "5",
    ]);
    assert!(output.status.success());
    let exported: Receipt = serde_json::from_slice(&output.stdout).unwrap();
    let key = medarena_ledger::VerifierKey::parse(&key_text).unwrap();
    assert_eq!(exported.verify(&key).unwrap().0.index, 5);
}

/// A tiny HTTP/1.1 server for the four ledger paths, over a shared ledger.
fn serve(ledger: Arc<Mutex<Ledger<MemoryStore>>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request_line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
            }
            let path = request_line.split(' ').nth(1).unwrap_or("").to_owned();
            let (status, body) = respond(&ledger.lock().unwrap(), &path);
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{address}")
}

fn respond(ledger: &Ledger<MemoryStore>, path: &str) -> (&'static str, String) {
    let not_found = ("404 Not Found", "{\"error\": \"not found\"}".to_owned());
    if path == "/api/ledger/key" {
        return ("200 OK", format!("{}\n", ledger.verifier_key()));
    }
    if path == "/api/ledger/checkpoint" {
        return ("200 OK", ledger.checkpoint().text().to_owned());
    }
    if let Some(code) = path.strip_prefix("/api/ledger/receipts/") {
        return match EvidenceCode::parse(code)
            .ok()
            .and_then(|code| ledger.receipt_for(&code).ok())
        {
            Some(receipt) => ("200 OK", serde_json::to_string(&receipt).unwrap()),
            None => not_found,
        };
    }
    if let Some(query) = path.strip_prefix("/api/ledger/consistency?") {
        let mut sizes = query.split('&').filter_map(|pair| pair.split_once('='));
        let (Some(("from", from)), Some(("to", to))) = (sizes.next(), sizes.next()) else {
            return ("400 Bad Request", "{\"error\": \"from and to\"}".to_owned());
        };
        return match ledger.consistency_proof(
            from.parse().unwrap_or(u64::MAX),
            to.parse().unwrap_or(u64::MAX),
        ) {
            Ok(proof) => ("200 OK", serde_json::to_string(&proof).unwrap()),
            Err(error) => ("400 Bad Request", format!("{{\"error\": \"{error}\"}}")),
        };
    }
    not_found
}

#[test]
fn url_mode_fetches_what_it_needs() {
    let work = tempfile::tempdir().unwrap();
    let (signer, _) = LogSigner::generate(ORIGIN).unwrap();
    let key = signer.verifier_key().to_string();
    let (mut ledger, _) = Ledger::with_store(MemoryStore::new(), signer.clone()).unwrap();
    append(&mut ledger, 3, "a");
    let early = ledger.receipt(2).unwrap();
    let early_file = write(
        work.path(),
        "early.json",
        &serde_json::to_string(&early).unwrap(),
    );
    let early_checkpoint = write(work.path(), "cp3.txt", ledger.checkpoint().text());
    append(&mut ledger, 5, "a");
    let code = ledger.receipt(6).unwrap().evidence_code.to_string();
    let ledger = Arc::new(Mutex::new(ledger));
    let url = serve(Arc::clone(&ledger));

    // A receipt fetched by evidence code (typed in lower case, as a person might).
    let lower = code.to_lowercase();
    assert_verifies(
        &["--url", &url, "--key", &key, "--evidence", &lower],
        &[
            "ok    server key",
            "ok    inclusion: leaf 6 is in the tree of size 8",
            "ok    server checkpoint",
            "ok    consistency receipt -> server",
        ],
    );
    // A saved receipt and checkpoint from when the log was smaller: proofs are fetched.
    let early_files = ["--receipt", &early_file, "--checkpoint", &early_checkpoint];
    assert_verifies(
        &[&["--url", &url, "--key", &key], &early_files[..]].concat(),
        &["size 8 extends size 3"],
    );
    // Without a pinned key the server's own key is used, and the output says so.
    assert_verifies(
        &["--url", &url, "--evidence", &code],
        &["note  key: trusting the server's own key"],
    );
    // An unknown evidence code.
    let unknown = EvidenceCode::from_leaf_hash(medarena_ledger::Hash::of_leaf(b"nothing"));
    let unknown = unknown.to_string();
    assert_verify_fails(
        &["--url", &url, "--key", &key, "--evidence", &unknown],
        "404",
    );
    // A server that publishes another key than the pinned one.
    let (other, _) = LogSigner::generate(ORIGIN).unwrap();
    let other_key = other.verifier_key().to_string();
    assert_verify_fails(
        &["--url", &url, "--key", &other_key, "--evidence", &code],
        "FAIL  server key",
    );

    // A forked server (same key, other history) cannot link the early receipt.
    let (mut fork, _) = Ledger::with_store(MemoryStore::new(), signer.clone()).unwrap();
    append(&mut fork, 8, "b");
    let fork_url = serve(Arc::new(Mutex::new(fork)));
    assert_verify_fails(
        &["--url", &fork_url, "--key", &key, "--receipt", &early_file],
        "FAIL  consistency receipt -> server",
    );
    // A server rolled back below a checkpoint it signed before.
    let (mut short, _) = Ledger::with_store(MemoryStore::new(), signer).unwrap();
    append(&mut short, 2, "a");
    let short_url = serve(Arc::new(Mutex::new(short)));
    assert_verify_fails(
        &[
            "--url",
            &short_url,
            "--key",
            &key,
            "--checkpoint",
            &early_checkpoint,
        ],
        "rolled back",
    );
}
