//! Integration tests of the dataset spec: manifest parsing, loading, validation, splits,
//! dummy data and union, on the committed example dataset and on bad inputs.

use std::path::{Path, PathBuf};

use medarena_datasets_spec::example::{HEART_MANIFEST, HEART_SITES, auc, heart_site, labels};
use medarena_datasets_spec::manifest::Role;
use medarena_datasets_spec::{example, *};
use proptest::prelude::*;

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/heart")
}

fn manifest() -> Manifest {
    Manifest::from_path(example_dir().join("manifest.yaml")).expect("example manifest")
}

fn rules(report: &Report) -> Vec<&str> {
    report.findings.iter().map(|f| f.rule.as_str()).collect()
}

#[test]
fn committed_json_schema_is_the_generated_one() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifest.schema.json");
    let generated = schema::json_schema_text();
    if std::env::var_os("MEDARENA_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "manifest.schema.json is stale: run `MEDARENA_BLESS=1 cargo test -p medarena-datasets-spec --test spec`"
    );
}

#[test]
fn manifest_errors_name_the_field_and_line() {
    let yaml = HEART_MANIFEST.replace(
        "type: number\n      unit: mm[Hg]",
        "type: numbr\n      unit: mm[Hg]",
    );
    let error = Manifest::from_str(&yaml).unwrap_err().to_string();
    assert!(error.contains("schema.fields[5].type"), "{error}");
    assert!(error.contains("line "), "{error}");
    let json = Manifest::from_str(HEART_MANIFEST).unwrap().to_json();
    let broken = json.replacen("\"licenses\"", "\"licences\"", 1);
    let error = Manifest::from_str(&broken).unwrap_err().to_string();
    assert!(error.contains("line "), "{error}");
    assert!(error.contains("licences"), "{error}");
    let unbounded = HEART_MANIFEST.replace("constraints: {minimum: 70, maximum: 250}", "");
    let error = Manifest::from_str(&unbounded).unwrap_err().to_string();
    assert!(
        error.contains("schema.fields[5].constraints") && error.contains("maximum"),
        "{error}"
    );
    let no_label = HEART_MANIFEST.replace("role: label", "role: feature");
    assert!(
        Manifest::from_str(&no_label)
            .unwrap_err()
            .to_string()
            .contains("no target")
    );
    // JSON and YAML give the same manifest.
    assert_eq!(Manifest::from_str(&json).unwrap(), manifest());
}

#[test]
fn the_example_validates_clean_and_is_learnable() {
    let manifest = manifest();
    for (site, _, rows, _) in HEART_SITES {
        let loaded = load_with_manifest(
            &manifest,
            example_dir().join(format!("{site}.csv")),
            &LoadOptions::default(),
        )
        .unwrap();
        assert!(loaded.typed_fast_path);
        let report = validate(&manifest, &loaded.batch, &ValidationConfig::default());
        assert!(!report.has_errors(), "{}", report.to_text());
        assert_eq!(report.rows, rows as u64);
        let k = report.k_anonymity.as_ref().unwrap();
        assert!(k.smallest_class >= 5);
        // The site is inferred (admission_month is declared `none`); the sensitive
        // diabetes column takes both values in every class.
        assert_eq!(k.quasi_identifiers, ["site", "age_band", "sex"]);
        assert_eq!(k.inferred, ["site"]);
        assert_eq!(k.l_diversity.len(), 1);
        assert_eq!(k.l_diversity[0].column, "diabetes");
        assert_eq!(k.l_diversity[0].rows_below_l, 0);
        // The same file read all-text gives the same report.
        let text = load_table(example_dir().join(format!("{site}.csv"))).unwrap();
        assert_eq!(
            validate(&manifest, &text, &ValidationConfig::default()),
            report
        );
    }
    let mut scores = Vec::new();
    let mut all_labels = Vec::new();
    for (site, prefix, rows, seed) in HEART_SITES {
        let (batch, oracle) = heart_site(&manifest, site, prefix, rows, seed);
        scores.extend(oracle);
        all_labels.extend(labels(&batch));
    }
    let oracle_auc = auc(&scores, &all_labels);
    assert!((0.75..0.9).contains(&oracle_auc), "{oracle_auc}");
    assert_eq!(auc(&vec![0.0; all_labels.len()], &all_labels), 0.5);
}

#[test]
fn committed_example_files_are_what_the_generator_writes() {
    let manifest = manifest();
    for (site, prefix, rows, seed) in HEART_SITES {
        let (batch, _) = heart_site(&manifest, site, prefix, rows, seed);
        let generated = write_table_bytes(&batch, Format::Csv).unwrap();
        let committed = std::fs::read(example_dir().join(format!("{site}.csv"))).unwrap();
        assert!(
            generated == committed,
            "{site}.csv differs: run `cargo run -p medarena-datasets-spec --example gen-example`"
        );
    }
    let bad = std::fs::read_to_string(example_dir().join("bad-upload.csv")).unwrap();
    assert_eq!(bad, example::bad_upload_csv());
    let liver = Manifest::from_str(example::LIVER_MANIFEST).unwrap();
    for (site, prefix, rows, seed) in example::LIVER_SITES {
        let (batch, _) = example::liver_site(&liver, site, prefix, rows, seed);
        let generated = write_table_bytes(&batch, Format::Csv).unwrap();
        let committed = std::fs::read(liver_dir().join(format!("{site}.csv"))).unwrap();
        assert!(
            generated == committed,
            "liver/{site}.csv differs: run `cargo run -p medarena-datasets-spec --example gen-example`"
        );
    }
}

fn liver_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/liver")
}

#[test]
fn the_survival_example_validates_clean_and_is_learnable() {
    let manifest = Manifest::from_str(example::LIVER_MANIFEST).unwrap();
    let time = manifest.fields_with_role(Role::TimeToEvent).next().unwrap();
    let event = manifest.fields_with_role(Role::Event).next().unwrap();
    assert_eq!((time.name.as_str(), event.name.as_str()), ("days", "died"));
    let (mut risks, mut times, mut events) = (Vec::new(), Vec::new(), Vec::new());
    for (site, prefix, rows, seed) in example::LIVER_SITES {
        let loaded = load_with_manifest(
            &manifest,
            liver_dir().join(format!("{site}.csv")),
            &LoadOptions::default(),
        )
        .unwrap();
        let report = validate(&manifest, &loaded.batch, &ValidationConfig::default());
        assert!(!report.has_errors(), "{}", report.to_text());
        assert_eq!(report.rows, rows as u64);
        let (batch, risk) = example::liver_site(&manifest, site, prefix, rows, seed);
        let (time, event) = example::survival_labels(&batch);
        // Between a third and two thirds of the patients die during follow-up.
        let deaths = event.iter().filter(|e| **e).count() as f64 / rows as f64;
        assert!((0.33..0.67).contains(&deaths), "{deaths}");
        risks.extend(risk);
        times.extend(time);
        events.extend(event);
    }
    let oracle = example::harrell_c(&risks, &times, &events);
    assert!((0.7..0.85).contains(&oracle), "{oracle}");
    assert_eq!(
        example::harrell_c(&vec![0.0; times.len()], &times, &events),
        0.5
    );
}

#[test]
fn the_bad_upload_is_refused_without_showing_values() {
    let manifest = manifest();
    let loaded = load_with_manifest(
        &manifest,
        example_dir().join("bad-upload.csv"),
        &LoadOptions::default(),
    )
    .unwrap();
    // The out-of-bounds value still parses; the bad types are elsewhere.
    let report = validate(&manifest, &loaded.batch, &ValidationConfig::default());
    let fired = rules(&report);
    for rule in [
        "schema.extra_column",
        "phi.mobile",
        "phi.resident_id",
        "phi.free_text",
        "schema.bounds",
        "schema.category",
        "schema.date_precision",
        "row_id.duplicate",
        "privacy.k_anonymity",
    ] {
        assert!(fired.contains(&rule), "{rule} missing from {fired:?}");
    }
    let bounds = report
        .findings
        .iter()
        .find(|f| f.rule == "schema.bounds")
        .unwrap();
    assert_eq!((bounds.rows, bounds.row_numbers.clone()), (1, vec![8]));
    let duplicate = report
        .findings
        .iter()
        .find(|f| f.rule == "row_id.duplicate")
        .unwrap();
    assert_eq!(duplicate.row_numbers, vec![6]);
    let json = serde_json::to_string(&report).unwrap();
    let text = report.to_text();
    for secret in [
        "11010519491231002X",
        "crushing",
        "400",
        "2020-05-17",
        "X-000003",
        "called family",
    ] {
        assert!(
            !json.contains(secret) && !text.contains(secret),
            "report leaks {secret}"
        );
    }
    let raw = std::fs::read_to_string(example_dir().join("bad-upload.csv")).unwrap();
    let phone = raw.lines().nth(1).unwrap().split(',').nth(16).unwrap();
    assert!(!json.contains(phone));
}

#[test]
fn type_errors_are_named_by_row_on_the_fallback_path() {
    let manifest = manifest();
    let mut csv = std::fs::read_to_string(example_dir().join("hospital-a.csv")).unwrap();
    csv = csv.replacen(
        ",98,false,true,false,typical,0",
        ",ninety,false,true,false,typical,0",
        1,
    );
    let loaded = load_bytes_with_manifest(
        &manifest,
        csv.as_bytes(),
        Format::Csv,
        "edited.csv",
        &LoadOptions::default(),
    )
    .unwrap();
    assert!(!loaded.typed_fast_path);
    let report = validate(&manifest, &loaded.batch, &ValidationConfig::default());
    let finding = report
        .findings
        .iter()
        .find(|f| f.rule == "schema.type")
        .unwrap();
    assert_eq!(finding.column.as_deref(), Some("heart_rate"));
    assert_eq!(finding.row_numbers, vec![1]);
    assert!(!report.to_text().contains("ninety"));
}

#[test]
fn formats_round_trip_to_the_same_table() {
    let manifest = manifest();
    let csv = load_with_manifest(
        &manifest,
        example_dir().join("hospital-b.csv"),
        &LoadOptions::default(),
    )
    .unwrap();
    let typed = conform(&manifest, &csv.batch).unwrap();
    let reference = hash_table(&typed);
    for format in [Format::Parquet, Format::ArrowIpc, Format::Csv] {
        let bytes = write_table_bytes(&typed, format).unwrap();
        assert_eq!(
            Format::sniff(&bytes) == format,
            format != Format::Csv || Format::sniff(&bytes) == Format::Csv
        );
        let back = load_table_bytes(&bytes, format).unwrap();
        let report = validate(&manifest, &back, &ValidationConfig::default());
        assert!(!report.has_errors(), "{format:?}: {}", report.to_text());
        assert_eq!(
            hash_table(&conform(&manifest, &back).unwrap()),
            reference,
            "{format:?}"
        );
    }
}

fn load_error(bytes: &[u8], name: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let error = load_table(&path).unwrap_err().to_string();
    assert!(
        error.contains(name),
        "error does not name the file: {error}"
    );
    error
}

#[test]
fn bad_files_get_clear_errors() {
    assert!(load_error(b"", "empty.csv").contains("empty"));
    assert!(load_error(b"\n\n", "blank.csv").contains("empty"));
    assert!(load_error(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "image.csv").contains("not a CSV"));
    // "姓名,年龄" and a row in GBK.
    let gbk = b"a,b\n1,2\n\xd0\xd5\xc3\xfb,3\n";
    let error = load_error(gbk, "gbk.csv");
    assert!(error.contains("line 3") && error.contains("GBK"), "{error}");
    let mut long = b"a,b\n1,".to_vec();
    long.extend(std::iter::repeat_n(b'x', 2 << 20));
    long.extend(b"\n");
    let error = load_error(&long, "long.csv");
    assert!(
        error.contains("line 2") && error.contains("longer"),
        "{error}"
    );
    let typed = conform(
        &manifest(),
        &load_table(example_dir().join("hospital-b.csv")).unwrap(),
    )
    .unwrap();
    let parquet = write_table_bytes(&typed, Format::Parquet).unwrap();
    let error = load_error(&parquet[..parquet.len() / 2], "truncated.parquet");
    assert!(error.contains("Parquet"), "{error}");
    let ipc = write_table_bytes(&typed, Format::ArrowIpc).unwrap();
    let error = load_error(&ipc[..ipc.len() / 3], "truncated.arrow");
    assert!(error.contains("Arrow IPC"), "{error}");
    let ragged = load_error(b"a,b\n1,2,3,4\n", "ragged.csv");
    assert!(ragged.contains("CSV"), "{ragged}");
}

fn example_union() -> RecordBatch {
    let manifest = manifest();
    let parts: Vec<(String, RecordBatch)> = HEART_SITES
        .iter()
        .map(|(site, ..)| {
            (
                site.to_string(),
                load_table(example_dir().join(format!("{site}.csv"))).unwrap(),
            )
        })
        .collect();
    union_sites(&manifest, &parts).unwrap()
}

#[test]
fn union_keeps_the_site() {
    let union = example_union();
    assert_eq!(union.num_rows(), 1080);
    let report = validate(&manifest(), &union, &ValidationConfig::default());
    assert!(!report.has_errors(), "{}", report.to_text());
    // Without a declared site column, one named `site` is added.
    let mut manifest = manifest();
    manifest.schema.fields.retain(|f| f.role != Role::Site);
    let part = conform(
        &manifest,
        &load_table(example_dir().join("hospital-a.csv")).unwrap(),
    )
    .unwrap();
    let united = union_sites(&manifest, &[("a".into(), part.clone()), ("b".into(), part)]).unwrap();
    assert!(united.column_by_name("site").is_some());
}

#[test]
fn splits_are_deterministic_stratified_and_order_independent() {
    let manifest = manifest();
    let union = example_union();
    let config = SplitConfig {
        seed: 42,
        train: 0.6,
        public_test: 0.2,
    };
    let first = split(&manifest, &union, &config).unwrap();
    assert_eq!(first, split(&manifest, &union, &config).unwrap());
    let other = split(&manifest, &union, &SplitConfig { seed: 43, ..config }).unwrap();
    assert_ne!(first.assignment, other.assignment);
    assert_eq!(first.record.stratified_on, vec!["event_1y", "site"]);
    assert_eq!(first.record.strata.len(), 4);
    for stratum in &first.record.strata {
        let n = stratum.rows as f64;
        assert!((stratum.train as f64 - 0.6 * n).abs() <= 1.0);
        assert!((stratum.public_test as f64 - 0.2 * n).abs() <= 1.0);
        assert_eq!(
            stratum.train + stratum.public_test + stratum.private_test,
            stratum.rows
        );
    }
    // Reversing the rows keeps every row id in its part.
    let reversed_indices =
        arrow::array::UInt32Array::from((0..union.num_rows() as u32).rev().collect::<Vec<_>>());
    let reversed = arrow::compute::take_record_batch(&union, &reversed_indices).unwrap();
    let again = split(&manifest, &reversed, &config).unwrap();
    let n = union.num_rows();
    for row in 0..n {
        assert_eq!(first.assignment[row], again.assignment[n - 1 - row]);
    }
    let train = first.take(&union, Part::Train).unwrap();
    assert_eq!(train.num_rows(), first.rows(Part::Train).len());
    assert!(
        split(
            &manifest,
            &union,
            &SplitConfig {
                train: 0.9,
                public_test: 0.2,
                seed: 1
            }
        )
        .is_err()
    );
}

#[test]
fn row_local_assignment_moves_only_the_changed_row() {
    let manifest = manifest();
    let union = example_union();
    let config = SplitConfig {
        seed: 42,
        train: 0.6,
        public_test: 0.2,
    };
    let first = assign_rows(&manifest, &union, &config, 10).unwrap();
    assert_eq!(first, assign_rows(&manifest, &union, &config, 10).unwrap());
    assert_eq!(first.record.method, "medarena-rows/1");
    let n = union.num_rows();
    // Parts near their fractions; every block used.
    let train = first.rows(Part::Train).len() as f64;
    assert!((train / n as f64 - 0.6).abs() < 0.06, "{train} of {n}");
    for block in 0..10 {
        assert!(first.blocks.iter().filter(|b| **b == block).count() > 60);
    }
    let covered: usize = (0..10)
        .map(|b| {
            [Part::Train, Part::PublicTest, Part::PrivateTest]
                .iter()
                .map(|p| first.block_rows(*p, b).len())
                .sum::<usize>()
        })
        .sum();
    assert_eq!(covered, n);
    // Change the label of one row: stratification would move others; this moves none.
    let label = union.schema().index_of("event_1y").unwrap();
    let values = union
        .column(label)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .expect("the example label is an integer column");
    let flipped: arrow::array::Int64Array = values
        .iter()
        .enumerate()
        .map(|(i, v)| if i == 17 { v.map(|v| 1 - v) } else { v })
        .collect();
    let mut columns = union.columns().to_vec();
    columns[label] = std::sync::Arc::new(flipped);
    let changed = RecordBatch::try_new(union.schema(), columns).unwrap();
    let again = assign_rows(&manifest, &changed, &config, 10).unwrap();
    assert_eq!(first.assignment, again.assignment);
    assert_eq!(first.blocks, again.blocks);
    // Re-ordering keeps each row in its part and block (keys are row ids).
    let reversed_indices = arrow::array::UInt32Array::from((0..n as u32).rev().collect::<Vec<_>>());
    let reversed = arrow::compute::take_record_batch(&union, &reversed_indices).unwrap();
    let reordered = assign_rows(&manifest, &reversed, &config, 10).unwrap();
    for row in 0..n {
        assert_eq!(first.assignment[row], reordered.assignment[n - 1 - row]);
        assert_eq!(first.blocks[row], reordered.blocks[n - 1 - row]);
    }
    let block = first.take_block(&union, Part::PublicTest, 3).unwrap();
    assert_eq!(
        block.num_rows(),
        first.block_rows(Part::PublicTest, 3).len()
    );
    assert!(assign_rows(&manifest, &union, &config, 0).is_err());
}

#[test]
fn dummy_data_is_deterministic_and_writes_every_format() {
    let manifest = manifest();
    let table = dummy(&manifest, 500, 9);
    assert_eq!(hash_table(&table), hash_table(&dummy(&manifest, 500, 9)));
    assert_ne!(hash_table(&table), hash_table(&dummy(&manifest, 500, 10)));
    let dir = tempfile::tempdir().unwrap();
    for name in ["d.csv", "d.parquet", "d.arrow"] {
        write_table(&table, dir.path().join(name)).unwrap();
        let back =
            load_with_manifest(&manifest, dir.path().join(name), &LoadOptions::default()).unwrap();
        let report = validate(&manifest, &back.batch, &ValidationConfig::default());
        assert!(!report.has_errors(), "{name}: {}", report.to_text());
    }
    assert!(write_table(&table, dir.path().join("d.xlsx")).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn dummy_data_validates_clean(rows in 400usize..1500, seed in any::<u64>()) {
        let manifest = manifest();
        let table = dummy(&manifest, rows, seed);
        let report = validate(&manifest, &table, &ValidationConfig::default());
        prop_assert!(!report.has_errors(), "{}", report.to_text());
        // Label balance follows the declared frequencies (0.75 / 0.25).
        let events = report.label_counts.get("1").copied().unwrap_or(0) as f64;
        prop_assert!((events / rows as f64 - 0.25).abs() < 0.08);
    }
}
