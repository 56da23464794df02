//! The leak probe: what a team or the public can read about real-data runs must not depend
//! on any one hidden row, beyond the differentially private numbers.
//!
//! Two platforms, through the real binary and real HTTP, are set up identically but for
//! one row: in the second, one patient's systolic blood pressure is a marker value. The
//! same team submits the same five hostile modules to both; each looks for the marker in
//! the rows it is given and, when it finds it, spins for about a second, traps, grows its
//! memory past the limit, returns NaN, or predicts differently. Organizers see the
//! difference (block statuses, sandbox time, exact scores): the probes work. Everything the
//! team and an anonymous visitor can read (every API answer, the pages, the whole public
//! ledger, receipts, the metrics endpoint's refusal) is then compared byte for byte between
//! the two platforms, after masking
//!
//! - the released (noisy) scores, whose distributions the scorer's `dp_empirical` test
//!   checks against ε, and here only that their exact values differ by at most Δ (and which
//!   run is a team's best on the board, chosen by those noisy scores);
//! - times: the two platforms run at different moments; what a time may depend on is
//!   checked separately: every time about a real run is its release time, fixed when the
//!   run was queued;
//! - evidence codes (hashes of entries holding times and noisy scores), the uploads'
//!   commitments (salted with fresh randomness), certificates' digests (their bodies hold a
//!   fresh random nonce) and worker names (process ids).
//!
//! Jobs are run by a separate `medarena worker` started after every submission is in, so
//! that ids are assigned in the same order on both platforms.

use std::collections::BTreeMap;
use std::time::Duration;

use medarena_tests::*;
use regex::Regex;
use serde_json::Value;

/// A probe: `fit` and `predict` look for a row whose systolic blood pressure (feature 3, a
/// number) is the marker, remember whether they saw it, and act (`;;ACT`) or predict
/// (`;;VALUE`) accordingly.
const PROBE: &str = r#"(module
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 4096))
  (global $seen (mut i32) (i32.const 0))
  (func (export "medarena_abi_version") (result i32) (i32.const 1))
  (func $bump (param $size i32) (result i32)
    (local $ptr i32)
    (local.set $ptr (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
    (global.set $heap (i32.add (local.get $ptr) (local.get $size)))
    (block $ok
      (loop $grow
        (br_if $ok (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
        (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then (return (i32.const 0))))
        (br $grow)))
    (local.get $ptr))
  (func (export "medarena_alloc") (param $size i32) (param $align i32) (result i32)
    (call $bump (local.get $size)))
  ;; Column entry 3 starts at 16 + 3 * 32 = 112; its data offset is at 112 + 12 = 124.
  (func $scan (param $table i32)
    (local $rows i32) (local $data i32) (local $i i32)
    (local.set $rows (i32.load offset=4 (local.get $table)))
    (local.set $data (i32.add (local.get $table) (i32.load offset=124 (local.get $table))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $rows)))
        (if (f64.eq (f64.load (i32.add (local.get $data) (i32.shl (local.get $i) (i32.const 3))))
                    (f64.const 249.937))
          (then (global.set $seen (i32.const 1))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next))))
  (func $act
    (local $n i64)
    (if (global.get $seen) (then
      ;;ACT
      (nop))))
  (func (export "medarena_fit") (param $call i32) (result i32)
    (call $scan (i32.load offset=24 (local.get $call)))
    (call $act)
    (i32.const 0))
  (func (export "medarena_predict") (param $call i32) (result i32)
    (local $ptr i32) (local $i i32) (local $n i32) (local $value f64)
    (call $scan (i32.load offset=24 (local.get $call)))
    (call $act)
    (local.set $n (i32.load offset=12 (local.get $call)))
    (local.set $ptr (call $bump (i32.shl (local.get $n) (i32.const 3))))
    (block $done
      (loop $fill
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $value (f64.const 0.5))
        (if (global.get $seen) (then
          ;;VALUE
          (nop)))
        (f64.store (i32.add (local.get $ptr) (i32.shl (local.get $i) (i32.const 3))) (local.get $value))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $fill)))
    (i32.store offset=32 (local.get $call) (local.get $ptr))
    (i32.store offset=36 (local.get $call) (local.get $n))
    (i32.const 0))
)"#;

/// The marker, in a CSV cell (the example rows have one decimal; dummy data three, and
/// never this value for the competition's dummy seed).
const MARKER: &str = "249.937";

/// Each probe: its name and what it does once it has seen the marker.
const PROBES: [(&str, &str, &str); 5] = [
    // About a second of work, then an answer.
    (
        "spin",
        "(loop $spin (local.set $n (i64.add (local.get $n) (i64.const 1))) (br_if $spin (i64.lt_u (local.get $n) (i64.const 2000000000))))",
        "",
    ),
    ("trap", "unreachable", ""),
    // Grows by 16 MiB until the limiter refuses, then traps.
    (
        "memory",
        "(block $full (loop $more (br_if $full (i32.eq (memory.grow (i32.const 256)) (i32.const -1))) (br $more))) unreachable",
        "",
    ),
    ("nan", "", "(local.set $value (f64.const nan))"),
    // Predictions that depend on the row order: the block's AUC moves off 0.5.
    (
        "values",
        "",
        "(local.set $value (f64.div (f64.convert_i32_u (local.get $i)) (f64.convert_i32_u (local.get $n))))",
    ),
];

fn probe(act: &str, value: &str) -> Vec<u8> {
    let text = PROBE.replace(";;ACT", act).replace(";;VALUE", value);
    wat::parse_str(text).expect("probe WAT")
}

/// One platform of the pair.
struct Side {
    server: Server,
    organizer: Client,
    team: Client,
    competition: i64,
    submissions: Vec<i64>,
    _worker: Option<Worker>,
}

fn side(root: &std::path::Path, name: &str, hospital_a: Vec<u8>, bundle: &str) -> Side {
    let data_dir = root.join(name);
    create_organizer(&data_dir, "organizer@probe.test");
    let server = Server::start(&data_dir, &["--workers", "0"]);
    let organizer = server.sign_in("organizer@probe.test");
    let hospital_b = std::fs::read(heart_example("hospital-b.csv")).expect("rows");
    let competition = open_competition_with(
        &server,
        &organizer,
        bundle,
        &[
            ("hospital-a.csv", hospital_a),
            ("hospital-b.csv", hospital_b),
        ],
    );
    let team = team(&server, &organizer, "Probe Team", competition);
    Side {
        server,
        organizer,
        team,
        competition,
        submissions: Vec::new(),
        _worker: None,
    }
}

/// Hospital A's rows with one patient's systolic blood pressure set to the marker.
fn with_marker(csv: &str) -> Vec<u8> {
    let mut lines: Vec<String> = csv.lines().map(str::to_owned).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let column = header
        .iter()
        .position(|h| *h == "systolic_bp")
        .expect("a systolic_bp column");
    let mut cells: Vec<String> = lines[7].split(',').map(str::to_owned).collect();
    cells[column] = MARKER.to_owned();
    lines[7] = cells.join(",");
    let mut text = lines.join("\n");
    text.push('\n');
    text.into_bytes()
}

/// Everything the team and an anonymous visitor can read, by name, as text.
fn observe(side: &Side) -> BTreeMap<String, String> {
    let c = side.competition;
    let anonymous = side.server.client(None);
    let mut seen = BTreeMap::new();
    let mut team_paths = vec![
        format!("/api/v1/competitions/{c}"),
        format!("/api/v1/competitions/{c}/privacy"),
        format!("/api/v1/competitions/{c}/submissions"),
        format!("/api/v1/competitions/{c}/budget"),
        format!("/api/v1/competitions/{c}/leaderboard"),
        format!("/api/v1/competitions/{c}/history"),
        format!("/competitions/{c}"),
        format!("/competitions/{c}/submissions"),
    ];
    for id in &side.submissions {
        team_paths.push(format!("/api/v1/submissions/{id}"));
        team_paths.push(format!("/api/v1/submissions/{id}/receipts"));
        team_paths.push(format!("/api/v1/submissions/{id}/dummy-report"));
    }
    for path in team_paths {
        let answer = side.team.get(&path);
        seen.insert(
            format!("team GET {path}"),
            format!("{} {}", answer.status, answer.text),
        );
    }
    for path in [
        format!("/api/v1/competitions/{c}/leaderboard"),
        format!("/api/v1/competitions/{c}/history"),
        format!("/competitions/{c}"),
        "/metrics".to_owned(),
        "/api/v1/queue".to_owned(),
    ] {
        let answer = anonymous.get(&path);
        seen.insert(
            format!("anonymous GET {path}"),
            format!("{} {}", answer.status, answer.text),
        );
    }
    for path in ["/metrics", "/api/v1/queue"] {
        let answer = side.team.get(path);
        seen.insert(format!("team GET {path}"), format!("{}", answer.status));
    }
    // The whole public ledger, entry by entry.
    let mut from = 0;
    loop {
        let page = anonymous.ok(&format!("/api/ledger/entries?from={from}&limit=100"));
        let entries = page["entries"].as_array().cloned().unwrap_or_default();
        for entry in &entries {
            let index = entry["index"].as_u64().unwrap_or_default();
            seen.insert(
                format!("ledger entry {index:04}"),
                entry["canonical"].as_str().unwrap_or_default().to_owned(),
            );
        }
        if entries.len() < 100 {
            break;
        }
        from += 100;
    }
    seen
}

/// The masks of the module docs.
fn normalize(text: &str) -> String {
    let masks = [
        // Noisy released scores: JSON fields, ledger fields, the pages' "0.5123 ± 0.0599".
        (
            r#""(released_public_score|released_private_score|score)":-?[0-9.eE+-]+"#,
            r#""$1":"<noisy>""#,
        ),
        (
            r"released_public_score [^\n]*",
            "released_public_score <noisy>",
        ),
        (r"[0-9]+\.[0-9]{4}( ± )", "<noisy>$1"),
        // A board's entry is each team's best run by released score: post-processing of
        // the noisy scores.
        (
            r#""submission":[0-9]+,("score")"#,
            r#""submission":"<best by noisy score>",$1"#,
        ),
        // The score chart is drawn from noisy scores and times.
        (r"(?s)<svg.*?</svg>", "<chart/>"),
        // Times.
        (
            r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:[0-9]{2})?",
            "<time>",
        ),
        (r"\b1[6-9][0-9]{11}\b", "<ms>"),
        // Evidence codes (whole and shortened on pages).
        (r"\b[0-9A-Z]{5}(-[0-9A-Z]{1,5}){5,}", "<code>"),
        (r"\b[0-9A-Z]{5}-[0-9A-Z]{5}…", "<code>…"),
        // Salted commitments to the uploads and their reports, and the digests of
        // certificates (whose bodies hold a fresh random nonce).
        (
            r"(content_commitment|report_commitment|certificate_sha256)( |\x22:\x22)[0-9a-f]{64}",
            "$1$2<commitment>",
        ),
        // Worker names carry process ids.
        (r"(worker( |\x22:\x22))[a-z]+-[0-9]+-", "$1<worker>-"),
        // A contract's terms hold their proposal time (its validity window), so their digest
        // differs with the time the organizer proposed them.
        (
            r"(terms_sha256( |\x22:\x22))[0-9a-f]{64}",
            "$1<terms digest>",
        ),
    ];
    let mut text = text.to_owned();
    for (pattern, replacement) in masks {
        let regex = Regex::new(pattern).expect("mask pattern");
        text = regex.replace_all(&text, replacement).into_owned();
    }
    text
}

fn released(side: &Side) -> bool {
    side.submissions.iter().all(|id| {
        let view = side.team.ok(&format!("/api/v1/submissions/{id}"));
        matches!(view["status"].as_str(), Some("completed" | "failed"))
    }) && {
        // Every event has reached the ledger (the worker leaves them to the server).
        let trail = side.organizer.ok("/api/v1/audit?limit=1000");
        trail
            .as_array()
            .is_some_and(|events| events.iter().all(|e| e["evidence"].is_string()))
    }
}

#[test]
fn what_teams_and_the_public_read_does_not_depend_on_a_row() {
    let root = tempfile::tempdir().expect("tempdir");
    let original = std::fs::read_to_string(heart_example("hospital-a.csv")).expect("rows");
    assert!(!original.contains(MARKER));
    // Blocks of 4; each block up to 3 s; results released when the worst case has passed.
    let bundle = open_bundle_with(|bundle| bundle.sandbox.time_limit_seconds = 3);
    let mut sides = [
        side(
            root.path(),
            "without",
            original.clone().into_bytes(),
            &bundle,
        ),
        side(root.path(), "with", with_marker(&original), &bundle),
    ];
    for side in &mut sides {
        for (_, act, value) in PROBES {
            let id = side.team.submit(side.competition, probe(act, value));
            side.submissions.push(id);
        }
    }
    for side in &mut sides {
        side._worker = Some(Worker::start(&side.server.data_dir, &["--workers", "2"]));
    }
    for side in &sides {
        wait_for(
            "every run released and on the ledger",
            Duration::from_secs(300),
            || released(side).then_some(()),
        );
    }

    // The probes work: organizers see each of them act on the marker's platform only.
    let [without, with] = &sides;
    for ((name, _, _), (a, b)) in PROBES
        .iter()
        .zip(without.submissions.iter().zip(&with.submissions))
    {
        let exact = |side: &Side, id: &i64| {
            side.organizer.ok(&format!("/api/v1/submissions/{id}"))["exact"].clone()
        };
        let (plain, marked) = (exact(without, a), exact(with, b));
        let evaluation = |e: &Value| e["result"]["evaluation"].clone();
        let statuses = |e: &Value| evaluation(e)["block_statuses"].clone();
        match *name {
            "spin" => {
                let ms = |e: &Value| evaluation(e)["sandbox_ms"].as_f64().unwrap_or(0.0);
                assert!(
                    ms(&marked) > ms(&plain) + 300.0,
                    "the spin probe took longer with the marker: {} ms vs {} ms",
                    ms(&marked),
                    ms(&plain)
                );
            }
            "trap" | "memory" | "nan" => {
                assert_eq!(statuses(&plain)["ok"], 4, "{name}: {plain}");
                assert_ne!(
                    statuses(&marked)["ok"],
                    4,
                    "{name} failed a block: {marked}"
                );
            }
            _ => {
                let score = |e: &Value| e["exact_public_score"].as_f64().unwrap_or(f64::NAN);
                let private = |e: &Value| e["private_score"].as_f64().unwrap_or(f64::NAN);
                assert!(
                    score(&marked) != score(&plain) || private(&marked) != private(&plain),
                    "the values probe moved an exact score: {plain} / {marked}"
                );
            }
        }
        // One row moves an exact score by at most Δ = range / blocks.
        for key in ["exact_public_score", "private_score"] {
            let (x, y) = (
                plain[key].as_f64().unwrap_or(f64::NAN),
                marked[key].as_f64().unwrap_or(f64::NAN),
            );
            assert!((x - y).abs() <= 0.25 + 1e-12, "{name} {key}: {x} vs {y}");
        }
    }

    // Times about real runs are release times, fixed when each run was queued.
    for side in &sides {
        for id in &side.submissions {
            let view = side.team.ok(&format!("/api/v1/submissions/{id}"));
            let release_at = view["release_at"].as_i64().expect("a release time");
            let receipts = side.team.ok(&format!("/api/v1/submissions/{id}/receipts"));
            for event in receipts.as_array().into_iter().flatten() {
                let kind = event["event"]["type"].as_str().unwrap_or_default();
                let at = event["at"].as_i64().unwrap_or_default();
                if matches!(kind, "run_finished" | "submission_finished")
                    && event["event"]["kind"] != "dummy_run"
                {
                    assert_eq!(
                        at, release_at,
                        "{kind} of submission {id} is stamped at its release"
                    );
                }
            }
        }
    }

    // Byte for byte, after the masks.
    let (a, b) = (observe(without), observe(with));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the same things are readable on both platforms"
    );
    let mut differences = Vec::new();
    for (what, text) in &a {
        let (x, y) = (normalize(text), normalize(&b[what]));
        if x != y {
            let line = x
                .lines()
                .zip(y.lines())
                .find(|(p, q)| p != q)
                .map(|(p, q)| format!("\n    - {p}\n    + {q}"))
                .unwrap_or_else(|| format!("\n    - {x}\n    + {y}"));
            differences.push(format!("{what}:{line}"));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} readable things differ between the platforms:\n{}",
        differences.len(),
        a.len(),
        differences.join("\n")
    );
    let ledger_entries = a.keys().filter(|k| k.starts_with("ledger entry")).count();
    assert!(
        a.len() > 80 && ledger_entries > 50,
        "{} readable things compared, {ledger_entries} of them ledger entries",
        a.len()
    );
    for side in sides {
        assert!(side.server.stop().success());
    }
}
