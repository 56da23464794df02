//! MST end to end on the heart example.

use std::collections::HashMap;

use medarena_datasets_spec::arrow::compute::concat_batches;
use medarena_datasets_spec::example::{HEART_MANIFEST, auc, heart_site, labels};
use medarena_datasets_spec::typed::arrow_schema;
use medarena_datasets_spec::{Manifest, RecordBatch};
use medarena_synth::{
    Adjacency, BinKind, Measurements, Phase, SynthConfig, column_bins, epsilon_of_rho, fit,
    gaussian, quality, sample, selector,
};

fn manifest() -> Manifest {
    Manifest::from_str(HEART_MANIFEST).expect("the example manifest parses")
}

/// Both example sites, `rows` each.
fn heart(manifest: &Manifest, rows: usize, seed: u64) -> RecordBatch {
    let (a, _) = heart_site(manifest, "hospital-a", "A", rows, seed);
    let (b, _) = heart_site(manifest, "hospital-b", "B", rows, seed + 1);
    concat_batches(&arrow_schema(manifest), &[a, b]).expect("same schema")
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        x = parent[x];
    }
    x
}

#[test]
fn the_selected_edges_form_a_spanning_tree() {
    let manifest = manifest();
    let data = heart(&manifest, 500, 1);
    let m = fit(&manifest, &data, 1.0, &SynthConfig::default()).unwrap();
    let n = m.columns.len();
    // record_id is regenerated, everything else modelled.
    assert_eq!(n, manifest.schema.fields.len() - 1);
    assert_eq!(m.tree.len(), n - 1);
    assert_eq!(m.two_way.len(), n - 1);
    let mut parent: Vec<usize> = (0..n).collect();
    for &(a, b) in &m.tree {
        assert_ne!(a, b);
        let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
        assert_ne!(ra, rb, "edge ({a}, {b}) closes a cycle");
        parent[ra] = rb;
    }
    let root = find(&mut parent, 0);
    assert!(
        (0..n).all(|c| find(&mut parent, c) == root),
        "not connected"
    );
    // The label is the root, and its pairs were measured in the first phase.
    assert_eq!(m.columns[m.root].name, "event_1y");
    assert_eq!(m.label_pairs.len(), n - 1);
    assert_eq!(m.one_way.len(), n);
}

#[test]
fn privacy_accounting_is_the_sum_of_opendp_maps() {
    let manifest = manifest();
    let data = heart(&manifest, 300, 2);
    let rho = 0.5;
    let m = fit(&manifest, &data, rho, &SynthConfig::default()).unwrap();
    let mut total = 0.0;
    for step in &m.steps {
        let map = match step.mechanism.as_str() {
            "gaussian" => gaussian(step.scale)
                .unwrap()
                .map(&step.sensitivity)
                .unwrap(),
            "exponential" => selector(step.scale)
                .unwrap()
                .map(&step.sensitivity)
                .unwrap(),
            other => panic!("unknown mechanism {other}"),
        };
        assert_eq!(map, step.rho);
        total += map;
    }
    assert!((total - m.privacy.rho).abs() < 1e-12);
    assert!(m.privacy.rho <= rho, "{:?}", m.privacy);
    assert!(m.privacy.rho > rho * 0.999, "{:?}", m.privacy);
    for phase in [Phase::Marginals, Phase::Selection, Phase::Tree] {
        let spent: f64 = m
            .steps
            .iter()
            .filter(|s| s.phase == phase)
            .map(|s| s.rho)
            .sum();
        assert!(spent <= rho / 3.0 && spent > rho / 3.0 * 0.999);
    }
    let n = m.columns.len();
    assert_eq!(m.steps.len(), n + (n - 1) + (n - 1) + (n - 1));
    assert_eq!(
        m.privacy.epsilon,
        epsilon_of_rho(m.privacy.rho, m.privacy.delta).unwrap()
    );
    // ε(δ) = ρ + 2√(ρ ln(1/δ)) is the classic bound; OpenDP's conversion is tighter.
    let classic = rho + 2.0 * (rho * (1.0 / m.privacy.delta).ln()).sqrt();
    assert!(m.privacy.epsilon > 0.0 && m.privacy.epsilon <= classic);
}

#[test]
fn same_seed_same_rows_and_measurements_round_trip() {
    let manifest = manifest();
    let data = heart(&manifest, 300, 3);
    let m = fit(&manifest, &data, 1.0, &SynthConfig::default()).unwrap();
    let first = sample(&m, &manifest, 500, 7).unwrap();
    let again = sample(&m, &manifest, 500, 7).unwrap();
    assert_eq!(first, again);
    assert_ne!(first, sample(&m, &manifest, 500, 8).unwrap());
    let stored: Measurements = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
    assert_eq!(stored, m);
    assert_eq!(sample(&stored, &manifest, 500, 7).unwrap(), first);
    // The typed form of the manifest, required columns filled.
    assert_eq!(first.schema(), arrow_schema(&manifest));
    assert_eq!(first.num_rows(), 500);
    for field in &manifest.schema.fields {
        if field.is_required() {
            let column = first.column_by_name(&field.name).unwrap();
            assert_eq!(column.null_count(), 0, "{}", field.name);
        }
    }
}

#[test]
fn synthetic_marginals_converge_to_the_measured_ones() {
    let manifest = manifest();
    let data = heart(&manifest, 2000, 4);
    let m = fit(&manifest, &data, 1e4, &SynthConfig::default()).unwrap();
    let synthetic = sample(&m, &manifest, 100_000, 11).unwrap();
    let q = quality(&m, &manifest, &synthetic).unwrap();
    eprintln!(
        "max TVD: column {:.4}, tree pair {:.4}",
        q.max_column(),
        q.max_tree_pair()
    );
    assert!(q.max_column() < 0.02, "{q:#?}");
    assert!(q.max_tree_pair() < 0.04, "{q:#?}");
    assert_eq!(q.pairs.iter().filter(|p| p.in_tree).count(), m.tree.len());
    // With this much budget the measurements are the data: the 1-ways match it too.
    let exact = quality(&m, &manifest, &data).unwrap();
    assert!(exact.max_column() < 0.02, "{exact:#?}");
}

/// Naive Bayes on the binned columns, trained on one table and scored on another.
fn naive_bayes_auc(
    m: &Measurements,
    manifest: &Manifest,
    train: &RecordBatch,
    test: &RecordBatch,
) -> f64 {
    let columns = column_bins(manifest, &m.config).unwrap();
    let label = columns.iter().position(|c| c.name == "event_1y").unwrap();
    let encode = |batch: &RecordBatch| -> Vec<Vec<u32>> {
        columns
            .iter()
            .map(|c| c.encode(batch.column_by_name(&c.name).unwrap()).unwrap())
            .collect()
    };
    let (train_codes, test_codes) = (encode(train), encode(test));
    let mut counts: HashMap<(usize, u32, u32), f64> = HashMap::new();
    let mut label_counts = [0.0f64; 2];
    for row in 0..train.num_rows() {
        let y = train_codes[label][row];
        label_counts[y as usize] += 1.0;
        for (c, codes) in train_codes.iter().enumerate() {
            if c != label {
                *counts.entry((c, y, codes[row])).or_default() += 1.0;
            }
        }
    }
    let scores: Vec<f64> = (0..test.num_rows())
        .map(|row| {
            let mut score = (label_counts[1] / label_counts[0]).ln();
            for (c, codes) in test_codes.iter().enumerate() {
                if c == label {
                    continue;
                }
                let k = columns[c].levels() as f64;
                let p = |y: u32| {
                    (counts.get(&(c, y, codes[row])).copied().unwrap_or(0.0) + 1.0)
                        / (label_counts[y as usize] + k)
                };
                score += (p(1) / p(0)).ln();
            }
            score
        })
        .collect();
    auc(&scores, &labels(test))
}

#[test]
fn the_label_keeps_its_dependence() {
    let manifest = manifest();
    let data = heart(&manifest, 5000, 5);
    let test = heart(&manifest, 1500, 99);
    let m = fit(&manifest, &data, 1.0, &SynthConfig::default()).unwrap();
    let synthetic = sample(&m, &manifest, 10_000, 3).unwrap();
    let real = naive_bayes_auc(&m, &manifest, &data, &test);
    let synth = naive_bayes_auc(&m, &manifest, &synthetic, &test);
    let edges: Vec<String> = m
        .tree
        .iter()
        .map(|&(a, b)| format!("{}-{}", m.columns[a].name, m.columns[b].name))
        .collect();
    eprintln!("AUC real {real:.3} synthetic {synth:.3}; tree {edges:?}");
    assert!(real > 0.7, "naive Bayes on the real rows: AUC {real}");
    assert!(
        synth > 0.68,
        "trained on synthetic rows, tested on real ones: AUC {synth} (real {real})"
    );
}

#[test]
fn refuses_bad_input() {
    let manifest = manifest();
    let data = heart(&manifest, 50, 6);
    assert!(fit(&manifest, &data, 0.0, &SynthConfig::default()).is_err());
    assert!(fit(&manifest, &data, f64::NAN, &SynthConfig::default()).is_err());
    let without = data.project(&[0, 1, 2]).unwrap();
    assert!(fit(&manifest, &without, 1.0, &SynthConfig::default()).is_err());
}

#[test]
fn synthetic_rows_pass_validation() {
    use medarena_datasets_spec::{ValidationConfig, validate};
    let manifest = manifest();
    let data = heart(&manifest, 1000, 8);
    let m = fit(&manifest, &data, 1.0, &SynthConfig::default()).unwrap();
    let synthetic = sample(&m, &manifest, 2000, 1).unwrap();
    let report = validate(&manifest, &synthetic, &ValidationConfig::default());
    assert!(!report.has_errors(), "{}", report.to_text());
}

#[test]
fn substitution_doubles_the_sensitivities_and_keeps_the_budget() {
    let manifest = manifest();
    let data = heart(&manifest, 200, 9);
    let config = SynthConfig {
        adjacency: Adjacency::Substitute,
        ..SynthConfig::default()
    };
    let m = fit(&manifest, &data, 0.3, &config).unwrap();
    for step in &m.steps {
        let expected = if step.mechanism == "gaussian" {
            std::f64::consts::SQRT_2
        } else {
            2.0
        };
        assert_eq!(step.sensitivity, expected, "{step:?}");
    }
    assert!(m.privacy.rho <= 0.3 && m.privacy.rho > 0.3 * 0.999);
    let add_remove = fit(&manifest, &data, 0.3, &SynthConfig::default()).unwrap();
    assert!(m.one_way[0].sigma > add_remove.one_way[0].sigma * 1.4);
}

#[test]
fn one_column_spends_everything_on_its_marginal() {
    let mut manifest = manifest();
    manifest
        .schema
        .fields
        .retain(|f| f.name == "event_1y" || f.name == "record_id");
    let full = self::manifest();
    let data = heart(&full, 300, 10);
    let m = fit(&manifest, &data, 0.2, &SynthConfig::default()).unwrap();
    assert_eq!(m.columns.len(), 1);
    assert!(m.tree.is_empty() && m.two_way.is_empty() && m.label_pairs.is_empty());
    assert!(m.privacy.rho <= 0.2 && m.privacy.rho > 0.2 * 0.999);
    let synthetic = sample(&m, &manifest, 100, 1).unwrap();
    assert_eq!(synthetic.num_columns(), 2);
    assert_eq!(synthetic.num_rows(), 100);
}

#[test]
fn excluded_columns_are_neither_measured_nor_released() {
    use medarena_datasets_spec::Role;
    let mut manifest = manifest();
    for field in &mut manifest.schema.fields {
        if field.name == "bmi" {
            field.role = Role::Excluded;
        }
    }
    let data = heart(&self::manifest(), 200, 11);
    let m = fit(&manifest, &data, 1.0, &SynthConfig::default()).unwrap();
    assert!(m.columns.iter().all(|c| c.name != "bmi"));
    let synthetic = sample(&m, &manifest, 50, 2).unwrap();
    let bmi = synthetic.column_by_name("bmi").unwrap();
    assert_eq!(bmi.null_count(), 50);
    // Measurements fitted under one manifest are refused under another.
    assert!(sample(&m, &self::manifest(), 10, 1).is_err());
}

#[test]
fn bins_come_from_the_manifest_not_the_data() {
    use medarena_datasets_spec::arrow::array::AsArray;
    use medarena_datasets_spec::arrow::array::Float64Array;
    use medarena_datasets_spec::arrow::datatypes::Float64Type;
    use std::sync::Arc;
    let manifest = manifest();
    let columns = column_bins(&manifest, &SynthConfig::default()).unwrap();
    let sbp = columns.iter().find(|c| c.name == "systolic_bp").unwrap();
    assert_eq!(
        sbp.kind,
        BinKind::Number {
            lo: 70.0,
            hi: 250.0,
            bins: 16
        }
    );
    // Out-of-range values are clamped into the edge bins, nulls go to the missing level.
    let values: medarena_datasets_spec::arrow::array::ArrayRef =
        Arc::new(Float64Array::from(vec![
            Some(-5.0),
            Some(70.0),
            Some(249.99),
            Some(1e9),
            None,
        ]));
    assert_eq!(sbp.encode(&values).unwrap(), vec![0, 0, 15, 15, 16]);
    let month = columns
        .iter()
        .find(|c| c.name == "admission_month")
        .unwrap();
    // 48 months in 16 bins of 3.
    assert!(matches!(month.kind, BinKind::Date { bins: 16, .. }));
    assert_eq!(month.levels(), 17);
    let data = heart(&manifest, 300, 12);
    let m = fit(&manifest, &data, 1.0, &SynthConfig::default()).unwrap();
    let synthetic = sample(&m, &manifest, 2000, 4).unwrap();
    let decoded = synthetic.column_by_name("systolic_bp").unwrap();
    let decoded = decoded.as_primitive::<Float64Type>();
    assert!(
        decoded
            .iter()
            .flatten()
            .all(|v| (70.0..=250.0).contains(&v))
    );
}

#[test]
fn the_budget_is_never_exceeded() {
    let manifest = manifest();
    let data = heart(&manifest, 100, 13);
    for rho in [1e-3, 0.1, 1.0 / 3.0, 0.37, 1.0, 2.5, 7.77, 100.0] {
        let m = fit(&manifest, &data, rho, &SynthConfig::default()).unwrap();
        assert!(m.privacy.rho <= rho, "{rho}: {:?}", m.privacy);
        assert!(m.privacy.rho > rho * 0.999, "{rho}: {:?}", m.privacy);
    }
}

#[test]
fn malformed_measurements_are_refused() {
    let manifest = manifest();
    let data = heart(&manifest, 100, 14);
    let m = fit(&manifest, &data, 1.0, &SynthConfig::default()).unwrap();
    let mut short = m.clone();
    short.two_way[0].counts.pop();
    assert!(sample(&short, &manifest, 10, 1).is_err());
    let mut cycle = m.clone();
    cycle.tree[1] = cycle.tree[0];
    cycle.two_way[1] = cycle.two_way[0].clone();
    assert!(sample(&cycle, &manifest, 10, 1).is_err());
    let mut root = m.clone();
    root.root = 99;
    assert!(sample(&root, &manifest, 10, 1).is_err());
    let mut nan = m;
    nan.one_way[0].counts[0] = f64::NAN;
    assert!(quality(&nan, &manifest, &data).is_err());
}

#[test]
fn a_site_without_categories_takes_the_configured_sites() {
    let mut manifest = manifest();
    for field in &mut manifest.schema.fields {
        if field.name == "site" {
            field.categories = None;
        }
    }
    let data = heart(&self::manifest(), 100, 15);
    assert!(fit(&manifest, &data, 1.0, &SynthConfig::default()).is_err());
    let config = SynthConfig {
        sites: Some(vec!["hospital-a".into(), "hospital-b".into()]),
        ..SynthConfig::default()
    };
    let m = fit(&manifest, &data, 1.0, &config).unwrap();
    let synthetic = sample(&m, &manifest, 200, 5).unwrap();
    assert_eq!(synthetic.column_by_name("site").unwrap().null_count(), 0);
}

#[test]
fn the_survival_example_round_trips() {
    use medarena_datasets_spec::example::{LIVER_MANIFEST, liver_site};
    use medarena_datasets_spec::{ValidationConfig, validate};
    let manifest = Manifest::from_str(LIVER_MANIFEST).unwrap();
    let (a, _) = liver_site(&manifest, "hospital-a", "A", 800, 1);
    let (b, _) = liver_site(&manifest, "hospital-b", "B", 800, 2);
    let data = concat_batches(&arrow_schema(&manifest), &[a, b]).unwrap();
    let m = fit(&manifest, &data, 2.0, &SynthConfig::default()).unwrap();
    assert_eq!(
        Some(m.columns[m.root].name.as_str()),
        manifest.stratification_label().map(|f| f.name.as_str())
    );
    let synthetic = sample(&m, &manifest, 3000, 9).unwrap();
    let report = validate(&manifest, &synthetic, &ValidationConfig::default());
    assert!(!report.has_errors(), "{}", report.to_text());
}

/// A budget in ε becomes the largest ρ whose OpenDP conversion stays within it.
#[test]
fn rho_for_epsilon_inverts_the_conversion_from_below() {
    for (epsilon, delta) in [(0.5, 1e-6), (1.0, 1e-6), (4.0, 1e-6), (8.0, 1e-9)] {
        let rho = medarena_synth::rho_for_epsilon(epsilon, delta).unwrap();
        let back = medarena_synth::epsilon_of_rho(rho, delta).unwrap();
        assert!(back <= epsilon, "ε({rho}) = {back} > {epsilon}");
        assert!(
            back > epsilon * 0.999_999,
            "ε({rho}) = {back} far below {epsilon}"
        );
    }
    assert!(medarena_synth::rho_for_epsilon(0.0, 1e-6).is_err());
    assert!(medarena_synth::rho_for_epsilon(1.0, 0.0).is_err());
}
