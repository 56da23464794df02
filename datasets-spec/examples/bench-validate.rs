//! Validation throughput on a generated CSV (default 1 GB, 30 columns): load with the
//! manifest (polars, typed fast path) + schema conformance + PHI scan + k-anonymity.
//!
//! ```sh
//! cargo build --release -p medarena-datasets-spec --example bench-validate
//! /usr/bin/time -v target/release/examples/bench-validate [SIZE_MB] [DIR]
//! ```
//! The file is written to DIR (default: a temporary directory) and removed afterwards;
//! with `BENCH_KEEP=1` it is kept as `DIR/bench-SIZE.csv` and reused by later runs.
//! `BENCH_PATH=file` or `BENCH_PATH=memory` runs only [`validate_file`] or only
//! `load_with_manifest` + `validate` (each in its own process gives each its own peak); by
//! default both run and their reports must agree.
//!
//! Besides wall time, each phase reports the CPU time of the process (user + system, from
//! `/proc/self/stat`; less sensitive to other load on a shared machine than wall time) and
//! its own peak resident set (VmHWM, reset between phases through `/proc/self/clear_refs`).

use std::io::Write;
use std::time::Instant;

use medarena_datasets_spec::{
    LoadOptions, Manifest, ValidationConfig, load_with_manifest, validate, validate_file,
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
    - {name: diabetes, type: boolean, privacy: sensitive}
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

/// User + system CPU seconds of this process so far (Linux `/proc/self/stat`).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Clock ticks are 100 per second on Linux (USER_HZ).
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident set size in MB since the last [`reset_peak`] (VmHWM).
fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1000.0)
}

/// Resets VmHWM to the current resident set.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let megabytes: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1000);
    let directory = args
        .next()
        .unwrap_or_else(|| std::env::temp_dir().display().to_string());
    let keep = std::env::var_os("BENCH_KEEP").is_some();
    let temporary = tempfile::tempdir_in(&directory)?;
    let path = if keep {
        std::path::Path::new(&directory).join(format!("bench-{megabytes}.csv"))
    } else {
        temporary.path().join("bench.csv")
    };
    let manifest = manifest();
    if !(keep && path.exists()) {
        let started = Instant::now();
        let rows = generate(&path, megabytes * 1_000_000)?;
        println!(
            "generated {rows} rows, 30 columns in {:.1?}",
            started.elapsed()
        );
    }
    let bytes = std::fs::metadata(&path)?.len();
    let mb = bytes as f64 / 1e6;
    println!(
        "file {} ({bytes} bytes); load average before: {}",
        path.display(),
        load_average()
    );

    let which = std::env::var("BENCH_PATH").unwrap_or_default();
    let mut streamed = None;
    if which != "memory" {
        // The file path: validated in chunks, loading overlapped with checking.
        reset_peak();
        let (started, cpu) = (Instant::now(), cpu_seconds());
        let report = validate_file(
            &manifest,
            &path,
            &LoadOptions::default(),
            &ValidationConfig::default(),
        )?;
        let (stream, stream_cpu, stream_peak) = (started.elapsed(), cpu_seconds() - cpu, peak_mb());
        print_report(&report);
        println!(
            "validate_file: {stream:.2?}: {:.0} MB/s, cpu {stream_cpu:.2} s ({:.0} MB per cpu-second), peak {stream_peak:.0} MB",
            mb / stream.as_secs_f64(),
            mb / stream_cpu,
        );
        println!("load average after: {}", load_average());
        streamed = Some(report);
    }
    if which == "file" {
        return Ok(());
    }

    // The in-memory path: load the whole table, then validate it.
    reset_peak();
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let loaded = load_with_manifest(&manifest, &path, &LoadOptions::default())?;
    let (load, load_cpu, load_peak) = (started.elapsed(), cpu_seconds() - cpu, peak_mb());
    reset_peak();
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let report = validate(&manifest, &loaded.batch, &ValidationConfig::default());
    let (check, check_cpu, check_peak) = (started.elapsed(), cpu_seconds() - cpu, peak_mb());
    drop(loaded);
    let total = load + check;
    if streamed
        .as_ref()
        .is_some_and(|streamed| *streamed != report)
    {
        return Err("the two paths disagree".into());
    }
    if streamed.is_none() {
        print_report(&report);
    }
    println!(
        "in memory: load {load:.2?} ({:.0} MB/s, cpu {load_cpu:.2} s, peak {load_peak:.0} MB), \
         validate {check:.2?} ({:.0} MB/s, cpu {check_cpu:.2} s, peak {check_peak:.0} MB), \
         total {total:.2?}: {:.0} MB/s, cpu {:.2} s ({:.0} MB per cpu-second)",
        mb / load.as_secs_f64(),
        mb / check.as_secs_f64(),
        mb / total.as_secs_f64(),
        load_cpu + check_cpu,
        mb / (load_cpu + check_cpu),
    );
    println!("load average after: {}", load_average());
    Ok(())
}

fn print_report(report: &medarena_datasets_spec::Report) {
    println!(
        "findings: {} ({} errors); k-anonymity smallest class {}, {} classes",
        report.findings.len(),
        report
            .with_severity(medarena_datasets_spec::Severity::Error)
            .count(),
        report.k_anonymity.as_ref().map_or(0, |k| k.smallest_class),
        report.k_anonymity.as_ref().map_or(0, |k| k.classes),
    );
    for finding in &report.findings {
        println!("  {} {:?} {:?}", finding.rule, finding.column, finding.rows);
    }
}
