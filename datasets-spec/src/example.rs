//! The synthetic example dataset `examples/heart/` (one-year cardiac events), generated from
//! a logistic model so that the label is learnable: the generating model reaches an AUC
//! near 0.8 and a constant guess 0.5. Used by the platform's end-to-end tests and demo; the
//! committed CSV files are exactly what [`heart_site`] produces (a test checks it).

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::dates::{days_from_civil, format_day};
use crate::manifest::{DatePrecision, Manifest};
use crate::typed::arrow_schema;

/// The example manifest, as committed.
pub const HEART_MANIFEST: &str = include_str!("../examples/heart/manifest.yaml");

/// The example sites: (site name, record-id prefix, rows, seed).
pub const HEART_SITES: [(&str, &str, usize, u64); 2] = [
    ("hospital-a", "A", 600, 20_240_101),
    ("hospital-b", "B", 480, 20_240_202),
];

fn normal(rng: &mut ChaCha8Rng, mean: f64, sd: f64) -> f64 {
    // Box-Muller; rand_distr is not worth a dependency for one distribution.
    let u1: f64 = rng.r#gen::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.r#gen();
    mean + sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// One site's synthetic table, in the typed form of the example manifest, with the
/// generating model's linear predictor for each row (the oracle score).
pub fn heart_site(
    manifest: &Manifest,
    site: &str,
    prefix: &str,
    rows: usize,
    seed: u64,
) -> (RecordBatch, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let older = site == "hospital-b";
    let bands = ["18-49", "50-59", "60-69", "70-79", "80-89"];
    let pain_types = ["typical", "atypical", "non_anginal", "asymptomatic"];
    let (first_month, last_month) = (days_from_civil(2018, 1, 1), days_from_civil(2021, 12, 31));
    let mut ids: Vec<String> = Vec::with_capacity(rows);
    let mut used = std::collections::HashSet::new();
    let mut columns: (Vec<&str>, Vec<&str>, Vec<String>) = (vec![], vec![], vec![]);
    let (mut sbp, mut ldl, mut bmi, mut ef, mut trop) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut hr, mut diabetes, mut smoker, mut prior, mut pain, mut label, mut score) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..rows {
        let id = loop {
            let candidate = format!("{prefix}-{:06}", rng.gen_range(0..1_000_000));
            if used.insert(candidate.clone()) {
                break candidate;
            }
        };
        ids.push(id);
        let age = normal(&mut rng, if older { 66.0 } else { 60.0 }, 12.0).clamp(18.0, 89.0);
        let band = match age as u32 {
            0..=49 => 0,
            50..=59 => 1,
            60..=69 => 2,
            70..=79 => 3,
            _ => 4,
        };
        let male = rng.gen_bool(0.58);
        let is_diabetic = rng.gen_bool(0.15 + 0.004 * (age - 50.0).max(0.0));
        let is_smoker = rng.gen_bool(if male { 0.35 } else { 0.18 });
        let had_mi = rng.gen_bool(0.08 + 0.003 * (age - 50.0).max(0.0));
        let pain_type = rng.gen_range(0..4);
        let systolic = normal(&mut rng, 128.0 + 0.4 * (age - 60.0), 18.0).clamp(80.0, 230.0);
        let cholesterol = normal(&mut rng, 3.1, 0.9).clamp(0.8, 8.5);
        let mass_index = normal(&mut rng, 26.0, 4.5).clamp(15.0, 50.0);
        let ejection =
            normal(&mut rng, 57.0 - if had_mi { 9.0 } else { 0.0 }, 9.0).clamp(15.0, 75.0);
        let troponin_t = (normal(&mut rng, 2.3 + if had_mi { 0.4 } else { 0.0 }, 1.0))
            .exp()
            .clamp(0.0, 480.0);
        let rate = normal(&mut rng, 78.0, 13.0).clamp(40.0, 170.0).round() as i64;
        let pain_effect = [0.7, 0.1, -0.4, 0.2][pain_type];
        let linear = -1.75
            + 0.045 * (age - 62.0)
            + 0.35 * f64::from(u8::from(male))
            + 0.012 * (systolic - 130.0)
            + 0.30 * (cholesterol - 3.1)
            - 0.045 * (ejection - 55.0)
            + 0.45 * (troponin_t.ln() - 2.3)
            + 0.65 * f64::from(u8::from(is_diabetic))
            + 0.45 * f64::from(u8::from(is_smoker))
            + 0.85 * f64::from(u8::from(had_mi))
            + pain_effect
            + if older { 0.15 } else { 0.0 };
        let event = rng.r#gen::<f64>() < 1.0 / (1.0 + (-linear).exp());
        columns.0.push(bands[band]);
        columns.1.push(if male { "M" } else { "F" });
        columns.2.push(format_day(
            rng.gen_range(first_month..=last_month),
            DatePrecision::Month,
        ));
        sbp.push(round1(systolic));
        ldl.push((cholesterol * 100.0).round() / 100.0);
        bmi.push(round1(mass_index));
        ef.push(round1(ejection));
        trop.push(round1(troponin_t));
        hr.push(rate);
        diabetes.push(is_diabetic);
        smoker.push(is_smoker);
        prior.push(had_mi);
        pain.push(pain_types[pain_type]);
        label.push(i64::from(event));
        score.push(linear);
    }
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(ids)),
        Arc::new(StringArray::from(vec![site; rows])),
        Arc::new(StringArray::from(columns.0)),
        Arc::new(StringArray::from(columns.1)),
        Arc::new(StringArray::from(columns.2)),
        Arc::new(Float64Array::from(sbp)),
        Arc::new(Float64Array::from(ldl)),
        Arc::new(Float64Array::from(bmi)),
        Arc::new(Float64Array::from(ef)),
        Arc::new(Float64Array::from(trop)),
        Arc::new(Int64Array::from(hr)),
        Arc::new(BooleanArray::from(diabetes)),
        Arc::new(BooleanArray::from(smoker)),
        Arc::new(BooleanArray::from(prior)),
        Arc::new(StringArray::from(pain)),
        Arc::new(Int64Array::from(label)),
    ];
    let batch = RecordBatch::try_new(arrow_schema(manifest), arrays)
        .unwrap_or_else(|_| RecordBatch::new_empty(arrow_schema(manifest)));
    (batch, score)
}

/// The survival example manifest, as committed.
pub const LIVER_MANIFEST: &str = include_str!("../examples/liver/manifest.yaml");

/// The survival example's sites: (site name, record-id prefix, rows, seed).
pub const LIVER_SITES: [(&str, &str, usize, u64); 2] = [
    ("hospital-a", "L", 420, 20_240_303),
    ("hospital-b", "M", 380, 20_240_404),
];

/// One site's synthetic survival table, in the typed form of the liver manifest, with the
/// generating model's log hazard ratio for each row (the oracle risk score). Event times
/// are Weibull (shape 1.3) with proportional hazards; follow-up ends at a uniform time
/// between 1,500 and 4,500 days, or earlier for the 10 % lost to follow-up.
pub fn liver_site(
    manifest: &Manifest,
    site: &str,
    prefix: &str,
    rows: usize,
    seed: u64,
) -> (RecordBatch, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let bands = ["18-49", "50-64", "65-89"];
    let edemas = ["none", "treated", "present"];
    let mut used = std::collections::HashSet::new();
    let mut ids = Vec::with_capacity(rows);
    let (mut band, mut sex, mut treatment, mut stage) = (vec![], vec![], vec![], vec![]);
    let (mut bili, mut alb, mut protime, mut ascites, mut edema) =
        (vec![], vec![], vec![], vec![], vec![]);
    let (mut days, mut died, mut risk) = (vec![], vec![], vec![]);
    let site_effect = if site == "hospital-b" { 0.15 } else { 0.0 };
    for _ in 0..rows {
        let id = loop {
            let candidate = format!("{prefix}-{:06}", rng.gen_range(0..1_000_000));
            if used.insert(candidate.clone()) {
                break candidate;
            }
        };
        ids.push(id);
        let age = normal(&mut rng, 52.0, 10.5).clamp(26.0, 88.0);
        let male = rng.gen_bool(0.3);
        let on_drug = rng.gen_bool(0.5);
        let histologic = 1 + (normal(&mut rng, 2.9, 0.9).round() as i64 - 1).clamp(0, 3);
        let log_bili = normal(&mut rng, 0.55 + 0.25 * (histologic as f64 - 3.0), 0.95);
        let bilirubin = log_bili.exp().clamp(0.3, 28.0);
        let albumin = normal(&mut rng, 3.5 - 0.1 * (histologic as f64 - 3.0), 0.4).clamp(1.9, 4.8);
        let prothrombin = normal(&mut rng, 10.7 + 0.2 * log_bili, 0.9).clamp(9.0, 18.0);
        let has_ascites = rng.gen_bool(if histologic == 4 { 0.18 } else { 0.03 });
        let edema_level = match rng.r#gen::<f64>() {
            u if u < 0.85 => 0,
            u if u < 0.94 => 1,
            _ => 2,
        };
        let linear = 0.035 * (age - 52.0) + 0.85 * (bilirubin.ln() - 0.55) - 1.1 * (albumin - 3.5)
            + 0.25 * (prothrombin - 10.7)
            + 0.3 * (histologic as f64 - 3.0)
            + if has_ascites { 0.5 } else { 0.0 }
            + [0.0, 0.3, 0.8][edema_level]
            + if male { 0.2 } else { 0.0 }
            - if on_drug { 0.1 } else { 0.0 }
            + site_effect;
        // Weibull: S(t) = exp(-(t / scale)^shape · e^linear).
        let (shape, scale) = (1.3, 5200.0);
        let u: f64 = rng.r#gen::<f64>().max(f64::MIN_POSITIVE);
        let event_time = scale * (-u.ln() / linear.exp()).powf(1.0 / shape);
        let end_of_study = rng.gen_range(1500.0..4500.0);
        let follow_up = if rng.gen_bool(0.1) {
            rng.gen_range(30.0..end_of_study)
        } else {
            end_of_study
        };
        let observed = event_time <= follow_up;
        let time = event_time.min(follow_up).ceil().clamp(1.0, 4500.0) as i64;
        band.push(
            bands[match age as u32 {
                0..=49 => 0,
                50..=64 => 1,
                _ => 2,
            }],
        );
        sex.push(if male { "M" } else { "F" });
        treatment.push(if on_drug { "drug" } else { "placebo" });
        stage.push(histologic);
        bili.push(round1(bilirubin));
        alb.push((albumin * 100.0).round() / 100.0);
        protime.push(round1(prothrombin));
        ascites.push(has_ascites);
        edema.push(edemas[edema_level]);
        days.push(time);
        died.push(i64::from(observed));
        risk.push(linear);
    }
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(ids)),
        Arc::new(StringArray::from(vec![site; rows])),
        Arc::new(StringArray::from(band)),
        Arc::new(StringArray::from(sex)),
        Arc::new(StringArray::from(treatment)),
        Arc::new(Int64Array::from(stage)),
        Arc::new(Float64Array::from(bili)),
        Arc::new(Float64Array::from(alb)),
        Arc::new(Float64Array::from(protime)),
        Arc::new(BooleanArray::from(ascites)),
        Arc::new(StringArray::from(edema)),
        Arc::new(Int64Array::from(days)),
        Arc::new(Int64Array::from(died)),
    ];
    let batch = RecordBatch::try_new(arrow_schema(manifest), arrays)
        .unwrap_or_else(|_| RecordBatch::new_empty(arrow_schema(manifest)));
    (batch, risk)
}

/// Harrell's concordance of risk scores (higher = earlier event) with survival times, by
/// counting pairs: for the example generator's printout and tests, not for scoring (the
/// scorer's O(n log n) version is the platform's).
pub fn harrell_c(risk: &[f64], time: &[f64], event: &[bool]) -> f64 {
    let (mut concordant, mut comparable) = (0.0, 0.0);
    for i in 0..time.len() {
        for j in 0..time.len() {
            let earlier = time[i] < time[j] || (time[i] == time[j] && !event[j]);
            if event[i] && earlier && i != j {
                comparable += 1.0;
                if risk[i] > risk[j] {
                    concordant += 1.0;
                } else if risk[i] == risk[j] {
                    concordant += 0.5;
                }
            }
        }
    }
    if comparable == 0.0 {
        0.5
    } else {
        concordant / comparable
    }
}

/// The `days` and `died` columns of a liver example table.
pub fn survival_labels(batch: &RecordBatch) -> (Vec<f64>, Vec<bool>) {
    use arrow::array::AsArray;
    let column = |name: &str| -> Vec<i64> {
        batch
            .column_by_name(name)
            .map(|c| {
                c.as_primitive::<arrow::datatypes::Int64Type>()
                    .iter()
                    .map(|v| v.unwrap_or(0))
                    .collect()
            })
            .unwrap_or_default()
    };
    (
        column("days").into_iter().map(|d| d as f64).collect(),
        column("died").into_iter().map(|d| d == 1).collect(),
    )
}

/// Area under the ROC curve of scores against 0/1 labels (ties count one half).
pub fn auc(scores: &[f64], labels: &[bool]) -> f64 {
    let mut pairs: Vec<(f64, bool)> = scores.iter().copied().zip(labels.iter().copied()).collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let positives = labels.iter().filter(|l| **l).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return 0.5;
    }
    // Rank-sum (Mann-Whitney U) with average ranks for ties.
    let mut rank_sum = 0.0;
    let mut index = 0;
    while index < pairs.len() {
        let mut end = index;
        while end + 1 < pairs.len() && pairs[end + 1].0 == pairs[index].0 {
            end += 1;
        }
        let average_rank = (index + end) as f64 / 2.0 + 1.0;
        rank_sum += pairs[index..=end].iter().filter(|p| p.1).count() as f64 * average_rank;
        index = end + 1;
    }
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

/// The `event_1y` labels of an example table as booleans.
pub fn labels(batch: &RecordBatch) -> Vec<bool> {
    use arrow::array::AsArray;
    batch
        .column_by_name("event_1y")
        .map(|c| {
            c.as_primitive::<arrow::datatypes::Int64Type>()
                .iter()
                .map(|v| v == Some(1))
                .collect()
        })
        .unwrap_or_default()
}

/// A small upload that breaks the rules: an undeclared phone column holding mobile numbers,
/// a notes column of free text with a resident ID, an out-of-bounds blood pressure, an
/// unknown category, a day-precision admission date, a duplicate record id, and too few
/// rows per age band and sex for k = 5.
pub fn bad_upload_csv() -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut out = String::from(
        "record_id,site,age_band,sex,admission_month,systolic_bp,ldl_cholesterol,bmi,ejection_fraction,troponin,heart_rate,diabetes,smoker,prior_mi,chest_pain_type,event_1y,phone,notes\n",
    );
    let bands = ["18-49", "50-59", "60-69", "70-79"];
    for row in 0..24 {
        let id = if row == 5 {
            "X-000003".to_string()
        } else {
            format!("X-{row:06}")
        };
        let systolic = if row == 7 {
            400.0
        } else {
            round1(normal(&mut rng, 130.0, 15.0))
        };
        let month = if row == 9 {
            "2020-05-17".to_string()
        } else {
            format!("2020-{:02}", 1 + row % 12)
        };
        let pain = if row == 11 { "crushing" } else { "typical" };
        let phone = format!("13{}{:08}", 5 + row % 4, rng.gen_range(0..100_000_000u32));
        let notes = if row == 3 {
            "patient id 11010519491231002X, called family at home to discuss results".to_string()
        } else {
            "seen in clinic, follow-up arranged with cardiology next month".to_string()
        };
        out.push_str(&format!(
            "{id},hospital-a,{},{},{month},{systolic},3.2,25.1,55.0,12.5,{},false,true,false,{pain},{},{phone},\"{notes}\"\n",
            bands[row % 4],
            if row % 3 == 0 { "M" } else { "F" },
            70 + row,
            row % 2,
        ));
    }
    out
}
