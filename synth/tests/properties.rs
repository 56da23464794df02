//! Properties of every fit, over random tables, budgets and neighbouring relations: the
//! tree spans the columns, the accounting is OpenDP's, the compressed domains are the
//! ones the noisy 1-ways determine, and a seed fixes the rows.

use medarena_datasets_spec::Manifest;
use medarena_datasets_spec::arrow::compute::concat_batches;
use medarena_datasets_spec::example::{HEART_MANIFEST, heart_site};
use medarena_datasets_spec::typed::arrow_schema;
use medarena_synth::{Adjacency, SynthConfig, fit, gaussian, quality, sample, selector};
use proptest::prelude::*;

fn manifest() -> Manifest {
    Manifest::from_str(HEART_MANIFEST).expect("the example manifest parses")
}

fn heart(manifest: &Manifest, rows: usize, seed: u64) -> medarena_datasets_spec::RecordBatch {
    let (a, _) = heart_site(manifest, "hospital-a", "A", rows, seed);
    let (b, _) = heart_site(manifest, "hospital-b", "B", rows, seed + 1);
    concat_batches(&arrow_schema(manifest), &[a, b]).expect("same schema")
}

fn root(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        x = parent[x];
    }
    x
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn every_fit_is_a_spanning_tree_within_budget(
        rows in 20usize..400,
        seed in 0u64..1000,
        log_rho in -3.0f64..1.5,
        substitute in any::<bool>(),
    ) {
        let manifest = manifest();
        let data = heart(&manifest, rows, seed);
        let rho = 10f64.powf(log_rho);
        let config = SynthConfig {
            adjacency: if substitute { Adjacency::Substitute } else { Adjacency::AddRemove },
            ..SynthConfig::default()
        };
        let m = fit(&manifest, &data, rho, &config).unwrap();

        // A spanning tree: n − 1 edges, none closing a cycle, so all columns connected.
        let n = m.columns.len();
        prop_assert_eq!(m.tree.len(), n - 1);
        let mut parent: Vec<usize> = (0..n).collect();
        for &(a, b) in &m.tree {
            let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
            prop_assert_ne!(ra, rb, "edge ({}, {}) closes a cycle", a, b);
            parent[ra] = rb;
        }
        let first = root(&mut parent, 0);
        prop_assert!((0..n).all(|c| root(&mut parent, c) == first));

        // Every step's ρ is OpenDP's map at its scale and sensitivity; they sum to the
        // total, which never exceeds the budget.
        let mut total = 0.0;
        for step in &m.steps {
            let map = if step.mechanism == "gaussian" {
                gaussian(step.scale).unwrap().map(&step.sensitivity).unwrap()
            } else {
                selector(step.scale).unwrap().map(&step.sensitivity).unwrap()
            };
            prop_assert_eq!(map, step.rho);
            total += map;
        }
        prop_assert!((total - m.privacy.rho).abs() <= 1e-12 * rho.max(1.0));
        prop_assert!(m.privacy.rho <= rho);

        // Compression: a level is merged exactly when its noisy count is below 3σ, and the
        // 2-way marginals count over the compressed domains.
        for (c, groups) in m.groups.iter().enumerate() {
            let one = &m.one_way[c];
            if groups.is_empty() {
                continue;
            }
            let merged = *groups.iter().max().unwrap();
            for (level, g) in groups.iter().enumerate() {
                prop_assert_eq!(*g == merged, one.counts[level] < 3.0 * one.sigma);
            }
        }
        let size = |c: usize| {
            m.groups[c].iter().max().map_or(m.columns[c].levels(), |g| *g as usize + 1)
        };
        for pair in m.two_way.iter().chain(&m.label_pairs) {
            prop_assert_eq!(pair.counts.len(), size(pair.attrs[0]) * size(pair.attrs[1]));
        }

        // The same measurements and seed give the same rows; a stored release too.
        let rows_a = sample(&m, &manifest, 300, seed).unwrap();
        prop_assert_eq!(&rows_a, &sample(&m, &manifest, 300, seed).unwrap());
        let stored: medarena_synth::Measurements =
            serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        prop_assert_eq!(&rows_a, &sample(&stored, &manifest, 300, seed).unwrap());
    }
}

/// At a small budget the measurements differ visibly from the data; a large sample must
/// follow the measurements (after consistency), not the data.
#[test]
fn a_large_sample_follows_the_noisy_measurements() {
    let manifest = manifest();
    let data = heart(&manifest, 500, 21);
    let m = fit(&manifest, &data, 0.05, &SynthConfig::default()).unwrap();
    let synthetic = sample(&m, &manifest, 200_000, 3).unwrap();
    let against_model = quality(&m, &manifest, &synthetic).unwrap();
    let data_against_model = quality(&m, &manifest, &data).unwrap();
    eprintln!(
        "max column TVD: sample {:.4}, data {:.4}; max tree pair: sample {:.4}, data {:.4}",
        against_model.max_column(),
        data_against_model.max_column(),
        against_model.max_tree_pair(),
        data_against_model.max_tree_pair()
    );
    // The noise moved the measurements away from the data...
    assert!(
        data_against_model.max_column() > 0.03,
        "{data_against_model:#?}"
    );
    // ...and the sample sits on the measurements, much closer than the data does.
    assert!(against_model.max_column() < 0.005, "{against_model:#?}");
    assert!(against_model.max_tree_pair() < 0.01, "{against_model:#?}");
    assert!(against_model.max_column() * 5.0 < data_against_model.max_column());
}

/// Compressed domains are read off the 1-ways on load: a release whose groups disagree
/// with its noisy counts is refused.
#[test]
fn tampered_compression_is_refused() {
    let manifest = manifest();
    let data = heart(&manifest, 500, 22);
    let m = fit(&manifest, &data, 0.05, &SynthConfig::default()).unwrap();
    let compressed = m
        .groups
        .iter()
        .position(|g| !g.is_empty())
        .expect("at a small budget some column is compressed");
    let mut tampered = m.clone();
    tampered.groups[compressed].clear();
    assert!(sample(&tampered, &manifest, 10, 1).is_err());
    let mut moved = m.clone();
    moved.one_way[compressed].counts = vec![1e6; moved.one_way[compressed].counts.len()];
    assert!(sample(&moved, &manifest, 10, 1).is_err());
    assert!(sample(&m, &manifest, 10, 1).is_ok());
}
