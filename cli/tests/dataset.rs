//! End-to-end tests of `medarena dataset ...` through the built binary, on the committed
//! example dataset and on bad files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../datasets-spec/examples/heart")
        .join(name)
}

fn medarena(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medarena"))
        .args(args)
        .output()
        .expect("run medarena")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn validates_the_example_dataset() {
    let manifest = example("manifest.yaml");
    let (a, b) = (example("hospital-a.csv"), example("hospital-b.csv"));
    let output = medarena(&["dataset", "validate", path(&manifest), path(&a), path(&b)]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let out = text(&output);
    assert!(
        out.contains("all files valid")
            && out.contains("k-anonymity over [site, age_band, sex]")
            && out.contains("inferred, not declared: site")
            && out.contains("l-diversity of diabetes"),
        "{out}"
    );

    let output = medarena(&["dataset", "validate", "--json", path(&manifest), path(&a)]);
    assert_eq!(output.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["valid"], true);
    assert_eq!(json["files"][0]["report"]["rows"], 600);
    assert!(
        json["files"][0]["hash"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );

    // A k above the smallest class makes the same file fail.
    let output = medarena(&[
        "dataset",
        "validate",
        "--k",
        "1000",
        path(&manifest),
        path(&a),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).contains("privacy.k_anonymity"));
}

#[test]
fn refuses_the_bad_upload_without_printing_values() {
    let manifest = example("manifest.yaml");
    let bad = example("bad-upload.csv");
    for json in [false, true] {
        let mut args = vec!["dataset", "validate", path(&manifest), path(&bad)];
        if json {
            args.insert(2, "--json");
        }
        let output = medarena(&args);
        assert_eq!(output.status.code(), Some(1), "{}", text(&output));
        let out = text(&output);
        for rule in [
            "phi.mobile",
            "phi.resident_id",
            "schema.bounds",
            "schema.extra_column",
            "row_id.duplicate",
        ] {
            assert!(out.contains(rule), "{rule} missing: {out}");
        }
        for secret in [
            "11010519491231002X",
            "crushing",
            "2020-05-17",
            "called family",
        ] {
            assert!(!out.contains(secret), "output leaks {secret}");
        }
    }
}

#[test]
fn bad_files_fail_cleanly_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = example("manifest.yaml");
    let mut long_line = b"record_id,site\nA,".to_vec();
    long_line.extend(std::iter::repeat_n(b'y', 3 << 20));
    let typed_parquet = dir.path().join("good.parquet");
    let dummy = medarena(&[
        "dataset",
        "dummy",
        path(&manifest),
        "--rows",
        "300",
        "-o",
        path(&typed_parquet),
    ]);
    assert_eq!(dummy.status.code(), Some(0), "{}", text(&dummy));
    let parquet = std::fs::read(&typed_parquet).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.csv", Vec::new(), "empty"),
        (
            "picture.csv",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0".to_vec(),
            "not a CSV",
        ),
        (
            "gbk.csv",
            b"record_id,site\n\xd0\xd5\xc3\xfb,x\n".to_vec(),
            "UTF-8",
        ),
        ("long.csv", long_line, "longer than"),
        (
            "truncated.parquet",
            parquet[..parquet.len() / 2].to_vec(),
            "Parquet",
        ),
    ];
    for (name, bytes, expected) in cases {
        let file = dir.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        let output = medarena(&["dataset", "validate", path(&manifest), path(&file)]);
        let out = text(&output);
        assert_eq!(output.status.code(), Some(1), "{name}: {out}");
        assert!(
            out.contains(name) && out.contains(expected),
            "{name}: {out}"
        );
        assert!(!out.contains("panicked"), "{name}: {out}");
    }
    // A missing manifest is an unusable input (exit 2), named.
    let output = medarena(&["dataset", "validate", "nope.yaml", path(&typed_parquet)]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("nope.yaml"));
}

#[test]
fn dummy_data_validates_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = example("manifest.yaml");
    for name in ["dummy.csv", "dummy.parquet", "dummy.arrow"] {
        let file = dir.path().join(name);
        let output = medarena(&[
            "dataset",
            "dummy",
            path(&manifest),
            "--rows",
            "400",
            "--seed",
            "3",
            "-o",
            path(&file),
        ]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        let output = medarena(&["dataset", "validate", path(&manifest), path(&file)]);
        assert_eq!(output.status.code(), Some(0), "{name}: {}", text(&output));
    }
    let output = medarena(&["dataset", "schema"]);
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(schema["title"], "Manifest");
}
