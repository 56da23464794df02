//! Validation throughput on a generated CSV (default 1 GB, 30 columns): load with the
//! manifest (polars, typed fast path) + schema conformance + PHI scan + k-anonymity.
//!
//! ```sh
//! cargo build --release -p medarena-datasets-spec --example bench-validate
//! /usr/bin/time -v target/release/examples/bench-validate [SIZE_MB] [DIR]
//! ```
//! The file is written to DIR (default: a temporary directory) and removed afterwards.

use std::io::Write;
use std::time::Instant;

use medarena_datasets_spec::{
    LoadOptions, Manifest, ValidationConfig, load_with_manifest, validate,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const NUMERIC: usize = 20;

fn manifest() -> Manifest {
    let mut fields = String::from(
        r#"
    - {name: record_id, type: string, role: row_id}
    - {name: site, type: string, role: site, categories: [north, south]}
    - {name: age_band, type: string, privacy: quasi_identifier, categories: ["18-49", "50-59", "60-69", "70-79", "80-89"]}
    - {name: sex, type: string, privacy: quasi_identifier, categories: [F, M]}
    - {name: region, type: string, privacy: quasi_identifier, categories: [east, west, central, coastal]}
    - {name: admission_month, type: date, precision: month, constraints: {minimum: "2018-01", maximum: "2021-12"}}
    - {name: heart_rate, type: integer, constraints: {minimum: 30, maximum: 200}}
    - {name: diabetes, type: boolean}
    - {name: pain, type: string, categories: [typical, atypical, none]}
    - {name: event, type: integer, role: label, categories: [0, 1]}"#,
    );
    for i in 0..NUMERIC {
        fields.push_str(&format!(
            "\n    - {{name: lab_{i:02}, type: number, constraints: {{minimum: 0, maximum: 1000}}}}"
        ));
    }
    let text = format!(
        r#"name: bench
title: Validation benchmark
version: "1"
provider: {{name: bench}}
provenance:
  collectionPeriod: {{start: "2018-01", end: "2021-12"}}
  ethicsApproval: none
  legalBasis: synthetic
  deidentification: {{method: other}}
permittedUses: {{purposes: [benchmark], terms: synthetic}}
licenses: [{{name: CC0-1.0}}]
schema:
  fields:{fields}
"#
    );
    match Manifest::from_str(&text) {
        Ok(manifest) => manifest,
        Err(error) => panic!("bench manifest: {error}"),
    }
}

fn generate(path: &std::path::Path, target_bytes: u64) -> std::io::Result<u64> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut header =
        "record_id,site,age_band,sex,region,admission_month,heart_rate,diabetes,pain,event"
            .to_string();
    for i in 0..NUMERIC {
        header.push_str(&format!(",lab_{i:02}"));
    }
    header.push('\n');
    out.write_all(header.as_bytes())?;
    let mut written = header.len() as u64;
    let bands = ["18-49", "50-59", "60-69", "70-79", "80-89"];
    let regions = ["east", "west", "central", "coastal"];
    let pains = ["typical", "atypical", "none"];
    let mut row = 0u64;
    let mut line = String::with_capacity(512);
    use std::fmt::Write as _;
    while written < target_bytes {
        line.clear();
        let _ = write!(
            line,
            "R{row:09},{},{},{},{},{}-{:02},{},{},{},{}",
            if row.is_multiple_of(2) {
                "north"
            } else {
                "south"
            },
            bands[rng.gen_range(0..5)],
            if rng.r#gen::<bool>() { "F" } else { "M" },
            regions[rng.gen_range(0..4)],
            rng.gen_range(2018..=2021),
            rng.gen_range(1..=12),
            rng.gen_range(40..=180),
            rng.r#gen::<bool>(),
            pains[rng.gen_range(0..3)],
            u8::from(rng.gen_bool(0.3)),
        );
        for _ in 0..NUMERIC {
            let _ = write!(line, ",{:.2}", rng.gen_range(0.0..1000.0));
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
        written += line.len() as u64;
        row += 1;
    }
    out.flush()?;
    Ok(row)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let megabytes: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let temporary = tempfile::tempdir_in(
        args.next()
            .unwrap_or_else(|| std::env::temp_dir().display().to_string()),
    )?;
    let path = temporary.path().join("bench.csv");
    let manifest = manifest();
    let started = Instant::now();
    let rows = generate(&path, megabytes * 1_000_000)?;
    let bytes = std::fs::metadata(&path)?.len();
    println!(
        "generated {rows} rows, {bytes} bytes, 30 columns in {:.1?}",
        started.elapsed()
    );

    let started = Instant::now();
    let loaded = load_with_manifest(&manifest, &path, &LoadOptions::default())?;
    let load = started.elapsed();
    let started = Instant::now();
    let report = validate(&manifest, &loaded.batch, &ValidationConfig::default());
    let check = started.elapsed();
    let total = load + check;
    let mb = bytes as f64 / 1e6;
    println!(
        "typed fast path: {}; findings: {} ({} errors); k-anonymity smallest class {}",
        loaded.typed_fast_path,
        report.findings.len(),
        report
            .with_severity(medarena_datasets_spec::Severity::Error)
            .count(),
        report.k_anonymity.as_ref().map_or(0, |k| k.smallest_class)
    );
    for finding in &report.findings {
        println!("  {} {:?} {:?}", finding.rule, finding.column, finding.rows);
    }
    println!(
        "load {load:.2?} ({:.0} MB/s), validate {check:.2?} ({:.0} MB/s), total {total:.2?}: {:.0} MB/s",
        mb / load.as_secs_f64(),
        mb / check.as_secs_f64(),
        mb / total.as_secs_f64()
    );
    Ok(())
}
