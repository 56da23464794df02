//! How close MST's synthetic rows come to the real ones, and how long they take.
//!
//! For the heart example (`datasets_spec::example`, the generator of the example CSVs:
//! 1,080 rows at its own sizes, and larger tables drawn from the same model) and for a
//! generated 30-column table with real structure (four correlated latent factors behind
//! numbers, integers, booleans and categories, a label, a few columns with missing values):
//! fit at ε ∈ {1, 4} (at δ = 1e-6, ρ by `rho_for_epsilon`; substitution adjacency, the
//! platform's setting, unless `--adjacency=add-remove`), sample as many rows as the real
//! table has, and report the average and largest total variation distance between the
//! synthetic and the REAL table over every column and every pair of columns, on the
//! synthesizer's bins; and the time of fit and sample.
//!
//! `cargo bench -p medarena-synth --bench utility [-- --rows=10000,1000000 --eps=1,4
//!   --tables=heart,wide --reps=3 --adjacency=substitute --export=DIR]`
//!
//! `--export=DIR` writes each real table's binned codes (`DIR/<table>-<rows>.csv`, one
//! integer level per cell, and `.domain.json`, the level count of each column) for
//! `scripts/bench-smartnoise`, which runs smartnoise-synth's MST on identical bins.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use medarena_datasets_spec::Manifest;
use medarena_datasets_spec::example::{HEART_MANIFEST, HEART_SITES, heart_site};
use medarena_datasets_spec::typed::arrow_schema;
use medarena_synth::{Adjacency, ColumnBins, SynthConfig, fit, rho_for_epsilon, sample};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn arg(name: &str) -> Option<String> {
    std::env::args().find_map(|a| a.strip_prefix(&format!("--{name}=")).map(str::to_owned))
}

fn list<T: std::str::FromStr>(name: &str, default: &str) -> Vec<T> {
    arg(name)
        .unwrap_or_else(|| default.to_owned())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect()
}

/// The heart model at `rows` rows, split between the two example sites as the CSVs are.
fn heart_table(manifest: &Manifest, rows: usize) -> RecordBatch {
    let example: usize = HEART_SITES.iter().map(|s| s.2).sum();
    let parts: Vec<(String, RecordBatch)> = HEART_SITES
        .iter()
        .map(|(site, prefix, n, seed)| {
            let n = if rows == example {
                *n
            } else {
                rows * n / example
            };
            (
                site.to_string(),
                heart_site(manifest, site, prefix, n, *seed).0,
            )
        })
        .collect();
    medarena_synth::site_table(manifest, &parts).expect("the example sites unite")
}

/// Columns of the wide table after the label.
const WIDE_FEATURES: usize = 29;

/// Which type the wide table's feature `i` has.
fn wide_kind(i: usize) -> usize {
    i % 5
}

/// A 30-column manifest: the heart example's metadata with a generated schema.
fn wide_manifest() -> Manifest {
    let head = HEART_MANIFEST
        .split("\nschema:")
        .next()
        .expect("the example has a schema");
    let mut yaml = format!("{head}\nschema:\n  missingValues: [\"\", \"NA\"]\n  fields:\n");
    yaml.push_str(
        "    - name: outcome\n      type: integer\n      role: label\n      categories: [0, 1]\n",
    );
    for i in 0..WIDE_FEATURES {
        let name = format!("x{i:02}");
        let required = if i % 7 == 3 {
            ""
        } else {
            "\n      constraints: {required: true}"
        };
        let field = match wide_kind(i) {
            0 => {
                let (m, s) = (10.0 * i as f64, 1.0 + i as f64 / 4.0);
                format!(
                    "    - name: {name}\n      type: number\n      constraints: {{minimum: {}, maximum: {}{}}}\n",
                    m - 4.0 * s,
                    m + 4.0 * s,
                    if required.is_empty() {
                        ""
                    } else {
                        ", required: true"
                    }
                )
            }
            1 => format!(
                "    - name: {name}\n      type: integer\n      constraints: {{minimum: 0, maximum: 100{}}}\n",
                if required.is_empty() {
                    ""
                } else {
                    ", required: true"
                }
            ),
            2 => format!("    - name: {name}\n      type: boolean{required}\n"),
            k => {
                let levels = if k == 3 { 4 } else { 6 };
                let categories: Vec<String> = (0..levels).map(|l| format!("c{l}")).collect();
                format!(
                    "    - name: {name}\n      type: string\n      categories: [{}]{required}\n",
                    categories.join(", ")
                )
            }
        };
        yaml.push_str(&field);
    }
    Manifest::from_str(&yaml).expect("the wide manifest parses")
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.r#gen::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.r#gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The wide table: four correlated latent factors; feature `i` loads on factor `i % 4`
/// (loading 0.5 to 0.9), the label is logistic in three of them, every seventh feature is
/// missing in 3% of rows.
fn wide_table(manifest: &Manifest, rows: usize, seed: u64) -> RecordBatch {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut latent = vec![[0.0f64; 4]; rows];
    let mut outcome = Vec::with_capacity(rows);
    for z in latent.iter_mut() {
        let g0 = normal(&mut rng);
        let g1 = 0.7 * g0 + 0.71 * normal(&mut rng);
        let g2 = 0.5 * g1 + 0.87 * normal(&mut rng);
        let g3 = normal(&mut rng);
        *z = [g0, g1, g2, g3];
        let linear = -1.2 + 0.9 * g0 + 0.6 * g2 - 0.5 * g3;
        outcome.push(i64::from(
            rng.r#gen::<f64>() < 1.0 / (1.0 + (-linear).exp()),
        ));
    }
    let mut columns: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(outcome))];
    for i in 0..WIDE_FEATURES {
        let loading = 0.5 + 0.4 * ((i * 7) % 10) as f64 / 9.0;
        let rest = (1.0 - loading * loading).sqrt();
        let values: Vec<f64> = latent
            .iter()
            .map(|z| loading * z[i % 4] + rest * normal(&mut rng))
            .collect();
        let missing: Vec<bool> = (0..rows)
            .map(|_| i % 7 == 3 && rng.r#gen::<f64>() < 0.03)
            .collect();
        let keep = |r: usize| !missing[r];
        let column: ArrayRef = match wide_kind(i) {
            0 => {
                let (m, s) = (10.0 * i as f64, 1.0 + i as f64 / 4.0);
                Arc::new(Float64Array::from_iter((0..rows).map(|r| {
                    keep(r).then(|| (m + s * values[r]).clamp(m - 4.0 * s, m + 4.0 * s))
                })))
            }
            1 => Arc::new(Int64Array::from_iter((0..rows).map(|r| {
                keep(r).then(|| (50.0 + 15.0 * values[r]).round().clamp(0.0, 100.0) as i64)
            }))),
            2 => Arc::new(BooleanArray::from_iter(
                (0..rows).map(|r| keep(r).then(|| values[r] > 0.3)),
            )),
            k => {
                let cuts: &[f64] = if k == 3 {
                    &[-0.8, 0.0, 0.9]
                } else {
                    &[-1.5, -0.7, 0.0, 0.5, 1.4]
                };
                Arc::new(StringArray::from_iter((0..rows).map(|r| {
                    keep(r).then(|| {
                        let level = cuts.iter().filter(|c| values[r] > **c).count();
                        format!("c{level}")
                    })
                })))
            }
        };
        columns.push(column);
    }
    RecordBatch::try_new(arrow_schema(manifest), columns).expect("the wide table assembles")
}

/// Every modelled column's levels, column-major.
fn codes(columns: &[ColumnBins], batch: &RecordBatch) -> Vec<Vec<u32>> {
    columns
        .iter()
        .map(|c| {
            c.encode(batch.column_by_name(&c.name).expect("modelled column"))
                .expect("encodes")
        })
        .collect()
}

fn histogram(levels: usize, index: impl Iterator<Item = usize>) -> Vec<f64> {
    let mut counts = vec![0.0; levels];
    for i in index {
        counts[i] += 1.0;
    }
    let total: f64 = counts.iter().sum();
    counts.iter_mut().for_each(|c| *c /= total.max(1.0));
    counts
}

fn tvd(p: &[f64], q: &[f64]) -> f64 {
    0.5 * p.iter().zip(q).map(|(a, b)| (a - b).abs()).sum::<f64>()
}

/// Average and largest TVD over every column and over every pair of columns.
#[derive(Debug, Clone, Copy, Default)]
struct Distances {
    one_way: f64,
    one_way_max: f64,
    two_way: f64,
    two_way_max: f64,
}

fn distances(columns: &[ColumnBins], real: &[Vec<u32>], synthetic: &[Vec<u32>]) -> Distances {
    let levels: Vec<usize> = columns.iter().map(ColumnBins::levels).collect();
    let n = columns.len();
    let mut d = Distances::default();
    for c in 0..n {
        let t = tvd(
            &histogram(levels[c], real[c].iter().map(|v| *v as usize)),
            &histogram(levels[c], synthetic[c].iter().map(|v| *v as usize)),
        );
        d.one_way += t / n as f64;
        d.one_way_max = d.one_way_max.max(t);
    }
    let pairs = n * (n - 1) / 2;
    for a in 0..n {
        for b in (a + 1)..n {
            let joint = |codes: &[Vec<u32>]| {
                histogram(
                    levels[a] * levels[b],
                    codes[a]
                        .iter()
                        .zip(&codes[b])
                        .map(|(x, y)| *x as usize * levels[b] + *y as usize),
                )
            };
            let t = tvd(&joint(real), &joint(synthetic));
            d.two_way += t / pairs.max(1) as f64;
            d.two_way_max = d.two_way_max.max(t);
        }
    }
    d
}

fn export(dir: &str, name: &str, columns: &[ColumnBins], codes: &[Vec<u32>]) {
    std::fs::create_dir_all(dir).expect("export directory");
    let rows = codes.first().map_or(0, Vec::len);
    let mut csv = String::with_capacity(rows * columns.len() * 3);
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    csv.push_str(&names.join(","));
    csv.push('\n');
    for r in 0..rows {
        for (i, column) in codes.iter().enumerate() {
            if i > 0 {
                csv.push(',');
            }
            write!(csv, "{}", column[r]).expect("write to string");
        }
        csv.push('\n');
    }
    std::fs::write(format!("{dir}/{name}.csv"), csv).expect("write the binned table");
    let domain: Vec<String> = columns
        .iter()
        .map(|c| format!("\"{}\": {}", c.name, c.levels()))
        .collect();
    std::fs::write(
        format!("{dir}/{name}.domain.json"),
        format!("{{{}}}\n", domain.join(", ")),
    )
    .expect("write the domain");
}

fn main() {
    let rows: Vec<usize> = list("rows", "1080,10000,1000000");
    let epsilons: Vec<f64> = list("eps", "1,4");
    let tables: Vec<String> = list("tables", "heart,wide");
    let reps: usize = list("reps", "3").first().copied().unwrap_or(3).max(1);
    let adjacency = match arg("adjacency").as_deref() {
        Some("add-remove") | Some("add_remove") => Adjacency::AddRemove,
        _ => Adjacency::Substitute,
    };
    let export_dir = arg("export");
    let delta = 1e-6;
    let heart = Manifest::from_str(HEART_MANIFEST).expect("the example manifest parses");
    let wide = wide_manifest();

    println!(
        "## Synthetic vs real: total variation distance on the synthesizer's bins\n\n\
         adjacency: {adjacency:?}, δ = {delta}, ρ = rho_for_epsilon(ε, δ); synthetic rows = real rows; \
         mean over {reps} fits (1 at 1M rows), each with a fresh sample\n"
    );
    println!(
        "| table | columns | rows | ε | ρ | 1-way TVD mean (max) | 2-way TVD mean (max) | fit (s) | sample (s) | fit + sample (s) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for table in &tables {
        let manifest = if table == "wide" { &wide } else { &heart };
        for &n in &rows {
            if table == "wide" && n == 1080 {
                continue;
            }
            let real = if table == "wide" {
                wide_table(manifest, n, 20_251_206)
            } else {
                heart_table(manifest, n)
            };
            let config = SynthConfig {
                adjacency,
                delta,
                ..SynthConfig::default()
            };
            let bins = medarena_synth::column_bins(manifest, &config).expect("bins");
            let real_codes = codes(&bins, &real);
            if let Some(dir) = &export_dir {
                export(dir, &format!("{table}-{n}"), &bins, &real_codes);
            }
            let reps = if n >= 1_000_000 { 1 } else { reps };
            for &epsilon in &epsilons {
                let rho = rho_for_epsilon(epsilon, delta).expect("ρ for ε");
                let mut mean = Distances::default();
                let (mut fit_s, mut sample_s) = (0.0, 0.0);
                let mut worst = Distances::default();
                for rep in 0..reps {
                    let started = Instant::now();
                    let release = fit(manifest, &real, rho, &config).expect("fit");
                    let fitted = started.elapsed().as_secs_f64();
                    let started = Instant::now();
                    let synthetic = sample(&release, manifest, n, 1 + rep as u64).expect("sample");
                    let sampled = started.elapsed().as_secs_f64();
                    let d = distances(&bins, &real_codes, &codes(&bins, &synthetic));
                    let k = reps as f64;
                    mean.one_way += d.one_way / k;
                    mean.two_way += d.two_way / k;
                    worst.one_way_max = worst.one_way_max.max(d.one_way_max);
                    worst.two_way_max = worst.two_way_max.max(d.two_way_max);
                    fit_s += fitted / k;
                    sample_s += sampled / k;
                }
                println!(
                    "| {table} | {} | {n} | {epsilon} | {rho:.5} | {:.4} ({:.3}) | {:.4} ({:.3}) | {fit_s:.2} | {sample_s:.2} | {:.2} |",
                    bins.len(),
                    mean.one_way,
                    worst.one_way_max,
                    mean.two_way,
                    worst.two_way_max,
                    fit_s + sample_s
                );
            }
        }
    }
}
