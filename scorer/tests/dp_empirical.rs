//! The released score's distribution on neighbouring datasets, checked empirically.
//!
//! On the `row` level one patient lives in one block, so two neighbouring datasets give
//! block means at most Δ = range/k apart (the property test in `sensitivity.rs`). Here the
//! worst case is taken (means exactly Δ apart) and many releases are drawn through OpenDP
//! for each: in every well-populated bin, the log ratio of the two histograms must stay
//! within ε plus its sampling error. The same check on noise scaled for half of Δ must
//! fail, so that the check is known to be able to fail.

use medarena_scorer::noise::{NoiseMechanism, prepare};
use medarena_scorer::release::{block_mean, row_sensitivity};
use medarena_scorer::{Range, calibrate};

const DRAWS: usize = 40_000;
const BINS: usize = 40;

fn histogram(values: &[f64], low: f64, high: f64) -> Vec<f64> {
    let mut counts = vec![0.0; BINS];
    for v in values {
        let bin = (((v - low) / (high - low)) * BINS as f64).floor();
        if bin >= 0.0 && (bin as usize) < BINS {
            counts[bin as usize] += 1.0;
        }
    }
    counts
}

/// The largest |ln(p/q)| over bins holding at least 200 draws of each, minus four standard
/// errors of that log ratio (so that sampling noise alone does not count).
fn worst_log_ratio(a: &[f64], b: &[f64], low: f64, high: f64) -> f64 {
    let (ha, hb) = (histogram(a, low, high), histogram(b, low, high));
    ha.iter()
        .zip(&hb)
        .filter(|(x, y)| **x >= 200.0 && **y >= 200.0)
        .map(|(x, y)| (x / y).ln().abs() - 4.0 * (1.0 / x + 1.0 / y).sqrt())
        .fold(0.0, f64::max)
}

fn draws(exact: f64, sensitivity: f64, epsilon: f64) -> Vec<f64> {
    let noise = prepare(NoiseMechanism::Laplace, sensitivity, epsilon).expect("noise");
    noise.apply(&vec![exact; DRAWS]).expect("draws")
}

#[test]
fn neighbouring_block_means_release_within_epsilon() {
    let range = Range { min: 0.0, max: 1.0 };
    let blocks = 10;
    let epsilon = 1.0;
    let delta = row_sensitivity(range, blocks).expect("sensitivity").value;
    // Worst-case neighbours: one block's score goes from 0 to 1, the rest stay.
    let mut scores = vec![Some(0.5); blocks];
    scores[0] = Some(0.0);
    let before = block_mean(&scores, range).expect("mean");
    scores[0] = Some(1.0);
    let after = block_mean(&scores, range).expect("mean");
    assert!(((after - before) - delta).abs() < 1e-12);

    let calibration = calibrate(delta, epsilon).expect("calibration");
    assert!(calibration.epsilon <= epsilon);
    let (low, high) = (before - 3.0 * delta, after + 3.0 * delta);
    let honest = worst_log_ratio(
        &draws(before, delta, epsilon),
        &draws(after, delta, epsilon),
        low,
        high,
    );
    assert!(
        honest <= epsilon + 0.05,
        "log ratio {honest} exceeds ε = {epsilon}"
    );
    eprintln!("honest {honest:.3}");
    // Noise for half the sensitivity leaks 2ε: the check catches it.
    let leaky = worst_log_ratio(
        &draws(before, delta / 2.0, epsilon),
        &draws(after, delta / 2.0, epsilon),
        low,
        high,
    );
    eprintln!("leaky {leaky:.3}");
    assert!(
        leaky > epsilon + 0.5,
        "the check must be able to fail: {leaky}"
    );
}
