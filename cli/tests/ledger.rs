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

    let output = medarena(&[
        "ledger",
        "verify",
        "--key",
        &key_file,
        "--receipt",
        &receipt_file,
    ]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}");
    for line in [
        "ok    receipt checkpoint signature",
        "ok    entry: canonical, index 1, score.released",
        "ok    inclusion: leaf 1 is in the tree of size 3",
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }

    // A receipt against a later checkpoint, with the key given inline.
    let output = medarena(&[
        "ledger",
        "verify",
        "--key",
        &key_text,
        "--receipt",
        &receipt_file,
        "--checkpoint",
        &cp7,
        "--consistency",
        &proof,
    ]);
    assert!(output.status.success(), "{}", stdout(&output));
    assert!(stdout(&output).contains("size 7 extends size 3"));

    // Two checkpoints and their consistency proof.
    let output = medarena(&[
        "ledger",
        "verify",
        "--key",
        &key_file,
        "--checkpoint",
        &cp7,
        "--checkpoint",
        &cp3,
        "--consistency",
        &proof,
    ]);
    assert!(output.status.success(), "{}", stdout(&output));

    // Without the proof, the check cannot be made: a failure, saying what is missing.
    let output = medarena(&[
        "ledger",
        "verify",
        "--key",
        &key_file,
        "--receipt",
        &receipt_file,
        "--checkpoint",
        &cp7,
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("pass --consistency"),
        "{}",
        stdout(&output)
    );

    // An altered entry.
    let mut altered: Receipt = receipt.clone();
    altered.entry = altered.entry.replace("value 0.51", "value 0.99");
    let altered_file = write(
        work.path(),
        "altered.json",
        &serde_json::to_string(&altered).unwrap(),
    );
    let output = medarena(&[
        "ledger",
        "verify",
        "--key",
        &key_file,
        "--receipt",
        &altered_file,
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("FAIL  entry"),
        "{}",
        stdout(&output)
    );

    // Another log's key.
    let (stranger, _) = LogSigner::generate(ORIGIN).unwrap();
    let stranger_key = stranger.verifier_key().to_string();
    let output = medarena(&[
        "ledger",
        "verify",
        "--key",
        &stranger_key,
        "--receipt",
        &receipt_file,
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("FAIL  receipt checkpoint signature"));

    // A fork: the same key signing a different history of the same size.
    let signer = LogSigner::load_or_generate(&data, ORIGIN).unwrap();
    let (mut fork, _) = Ledger::with_store(MemoryStore::new(), signer).unwrap();
    append(&mut fork, 7, "b");
    let forked = write(work.path(), "fork7.txt", fork.checkpoint().text());
    let output = medarena(&[
        "ledger",
        "verify",
        "--key",
        &key_file,
        "--checkpoint",
        &cp7,
        "--checkpoint",
        &forked,
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("forked"), "{}", stdout(&output));

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
    let output = medarena(&[
        "ledger",
        "verify",
        "--url",
        &url,
        "--key",
        &key,
        "--evidence",
        &code.to_lowercase(),
    ]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}");
    for line in [
        "ok    server key",
        "ok    inclusion: leaf 6 is in the tree of size 8",
        "ok    server checkpoint",
        "ok    consistency receipt -> server",
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }

    // A saved receipt and checkpoint from when the log was smaller: proofs are fetched.
    let output = medarena(&[
        "ledger",
        "verify",
        "--url",
        &url,
        "--key",
        &key,
        "--receipt",
        &early_file,
        "--checkpoint",
        &early_checkpoint,
    ]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}");
    assert!(text.contains("size 8 extends size 3"), "{text}");

    // Without a pinned key the server's own key is used, and the output says so.
    let output = medarena(&["ledger", "verify", "--url", &url, "--evidence", &code]);
    assert!(output.status.success());
    assert!(stdout(&output).contains("note  key: trusting the server's own key"));

    // An unknown evidence code.
    let unknown =
        EvidenceCode::from_leaf_hash(medarena_ledger::Hash::of_leaf(b"nothing")).to_string();
    let output = medarena(&[
        "ledger",
        "verify",
        "--url",
        &url,
        "--key",
        &key,
        "--evidence",
        &unknown,
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("404"), "{}", stdout(&output));

    // A server that publishes another key than the pinned one.
    let (other, _) = LogSigner::generate(ORIGIN).unwrap();
    let output = medarena(&[
        "ledger",
        "verify",
        "--url",
        &url,
        "--key",
        other.verifier_key().as_str(),
        "--evidence",
        &code,
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("FAIL  server key"));

    // A forked server (same key, other history) cannot link the early receipt.
    let (mut fork, _) = Ledger::with_store(MemoryStore::new(), signer.clone()).unwrap();
    append(&mut fork, 8, "b");
    let fork_url = serve(Arc::new(Mutex::new(fork)));
    let output = medarena(&[
        "ledger",
        "verify",
        "--url",
        &fork_url,
        "--key",
        &key,
        "--receipt",
        &early_file,
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("FAIL  consistency receipt -> server"),
        "{}",
        stdout(&output)
    );

    // A server rolled back below a checkpoint it signed before.
    let (mut short, _) = Ledger::with_store(MemoryStore::new(), signer).unwrap();
    append(&mut short, 2, "a");
    let short_url = serve(Arc::new(Mutex::new(short)));
    let output = medarena(&[
        "ledger",
        "verify",
        "--url",
        &short_url,
        "--key",
        &key,
        "--checkpoint",
        &early_checkpoint,
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("rolled back"),
        "{}",
        stdout(&output)
    );
}
