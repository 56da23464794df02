//! Sample-and-aggregate (Smith 2011; GUPT, Mohan et al. 2012) for free-form analyses by
//! untrusted code.
//!
//! The platform cannot trust a submission to state its own sensitivity, so it never asks:
//! the rows are split into `k` disjoint blocks ([`partition_blocks`]), the submission runs
//! once per block in a fresh sandbox instance (the `sandbox` crate), and this module gets
//! the `k` output vectors. Each dimension is clamped to the bounds the task declares, the
//! blocks are averaged, and OpenDP adds noise. One row lives in one block, so it can move
//! each dimension's mean by at most `(high − low)/k`.
//!
//! Dimensions are put on a common scale before the noise (each divided by its width), so
//! the budget is split evenly across dimensions: on that scale the mean's L1 sensitivity is
//! `d/k` (Laplace) and its L2 sensitivity `√d/k` (Gaussian).
//!
//! A block whose run failed, or whose output has the wrong length or a non-finite value,
//! counts as the midpoint of the bounds: dropping it would make `k` depend on the data.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use crate::budget::ChargeReceipt;
use crate::error::PrivacyError;
use crate::noise::{NoiseMechanism, PrivacyCost, prepare};
use crate::release::Payer;

/// Splits rows `0..n_rows` into `k` disjoint blocks of near-equal size, shuffled by
/// `seed` (record the seed: the same seed gives the same blocks).
pub fn partition_blocks(
    n_rows: usize,
    k: usize,
    seed: u64,
) -> Result<Vec<Vec<usize>>, PrivacyError> {
    if k == 0 || k > n_rows {
        return Err(PrivacyError::InvalidParameter(format!(
            "cannot split {n_rows} rows into {k} non-empty blocks"
        )));
    }
    let mut rows: Vec<usize> = (0..n_rows).collect();
    rows.shuffle(&mut ChaCha20Rng::seed_from_u64(seed));
    let mut blocks = vec![Vec::with_capacity(n_rows / k + 1); k];
    for (position, row) in rows.into_iter().enumerate() {
        blocks[position % k].push(row);
    }
    Ok(blocks)
}

/// What the task declares about the analysis output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggregateSpec {
    /// `[low, high]` for every output dimension, in order.
    pub bounds: Vec<(f64, f64)>,
    pub mechanism: NoiseMechanism,
    /// The ε this release may cost (δ comes with a Gaussian mechanism).
    pub epsilon: f64,
}

/// The noisy aggregate and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggregateRelease {
    /// One value per declared dimension.
    pub values: Vec<f64>,
    pub blocks: usize,
    pub mechanism: NoiseMechanism,
    /// ε and δ (0 for Laplace) as OpenDP's privacy map states them; what was charged.
    pub cost: PrivacyCost,
    /// Noise scale per dimension, in that dimension's units.
    pub noise_scale: Vec<f64>,
    /// Blocks replaced by the midpoint. Data-dependent: organizers only.
    pub replaced_blocks: usize,
    pub charge: ChargeReceipt,
}

/// Clamps, averages and noises per-block outputs (`None` = the block's run failed),
/// charging `payer` before any noise is drawn.
pub fn sample_and_aggregate(
    payer: &Payer<'_>,
    block_outputs: &[Option<Vec<f64>>],
    spec: &AggregateSpec,
) -> Result<AggregateRelease, PrivacyError> {
    let d = spec.bounds.len();
    let k = block_outputs.len();
    if d == 0 {
        return Err(PrivacyError::InvalidParameter(
            "the task declares no output dimension".into(),
        ));
    }
    if k < 2 {
        return Err(PrivacyError::InvalidParameter(format!(
            "sample-and-aggregate needs at least 2 blocks, got {k}"
        )));
    }
    for (dim, &(low, high)) in spec.bounds.iter().enumerate() {
        if !(low < high && (high - low).is_finite()) {
            return Err(PrivacyError::InvalidParameter(format!(
                "output dimension {dim}: bounds must be finite with low < high, got [{low}, {high}]"
            )));
        }
    }
    // Mean of each dimension on the unit scale: 0 = low, 1 = high.
    let mut unit_mean = vec![0.0; d];
    let mut replaced_blocks = 0;
    for output in block_outputs {
        match output {
            Some(values) if values.len() == d && values.iter().all(|v| v.is_finite()) => {
                for (dim, (&value, &(low, high))) in values.iter().zip(&spec.bounds).enumerate() {
                    unit_mean[dim] += (value.clamp(low, high) - low) / (high - low);
                }
            }
            _ => {
                replaced_blocks += 1;
                unit_mean.iter_mut().for_each(|m| *m += 0.5);
            }
        }
    }
    unit_mean.iter_mut().for_each(|m| *m /= k as f64);

    let sensitivity = match spec.mechanism {
        NoiseMechanism::Laplace => d as f64 / k as f64,
        NoiseMechanism::Gaussian { .. } => (d as f64).sqrt() / k as f64,
    };
    let noise = prepare(spec.mechanism, sensitivity, spec.epsilon)?;
    let charge = payer
        .accountant
        .charge(payer.team, payer.dataset, noise.cost)?;
    let noisy = noise.apply(&unit_mean)?;
    let values = noisy
        .iter()
        .zip(&spec.bounds)
        .map(|(&u, &(low, high))| low + u * (high - low))
        .collect();
    Ok(AggregateRelease {
        values,
        blocks: k,
        mechanism: spec.mechanism,
        cost: noise.cost,
        noise_scale: spec
            .bounds
            .iter()
            .map(|(low, high)| noise.scale * (high - low))
            .collect(),
        replaced_blocks,
        charge,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::{BudgetAccountant, DatasetBudget, InMemoryAccountant};

    fn accountant() -> InMemoryAccountant {
        let accountant = InMemoryAccountant::new();
        accountant
            .set_budget(
                "icu",
                DatasetBudget {
                    per_team: PrivacyCost {
                        epsilon: 10.0,
                        delta: 1e-5,
                    },
                    total: None,
                },
            )
            .unwrap();
        accountant
    }

    fn red_on_icu(accountant: &InMemoryAccountant) -> Payer<'_> {
        Payer {
            accountant,
            team: "red",
            dataset: "icu",
        }
    }

    #[test]
    fn blocks_are_disjoint_cover_all_rows_and_follow_the_seed() {
        let blocks = partition_blocks(103, 10, 7).unwrap();
        let mut all: Vec<usize> = blocks.concat();
        all.sort_unstable();
        assert_eq!(all, (0..103).collect::<Vec<_>>());
        assert!(blocks.iter().all(|b| b.len() == 10 || b.len() == 11));
        assert_eq!(blocks, partition_blocks(103, 10, 7).unwrap());
        assert_ne!(blocks, partition_blocks(103, 10, 8).unwrap());
        assert!(partition_blocks(3, 4, 0).is_err());
    }

    #[test]
    fn bounds_are_checked_before_anything_is_charged() {
        let accountant = accountant();
        let payer = red_on_icu(&accountant);
        let outputs = vec![Some(vec![1.0]); 10];
        for bounds in [
            (1.0, 1.0),
            (0.0, f64::INFINITY),
            (-f64::MAX, f64::MAX),
            (f64::NAN, 1.0),
        ] {
            let spec = AggregateSpec {
                bounds: vec![bounds],
                mechanism: NoiseMechanism::Laplace,
                epsilon: 1.0,
            };
            assert!(matches!(
                sample_and_aggregate(&payer, &outputs, &spec),
                Err(PrivacyError::InvalidParameter(_))
            ));
        }
        assert_eq!(accountant.spent("red", "icu").unwrap().epsilon, 0.0);
    }

    #[test]
    fn clamps_averages_and_charges() {
        let accountant = accountant();
        let payer = red_on_icu(&accountant);
        // 1000 blocks: noise scale on [0, 100] is 100·2/(1000·5) = 0.04.
        let mut outputs: Vec<Option<Vec<f64>>> =
            (0..1000).map(|_| Some(vec![40.0, 0.25])).collect();
        outputs[0] = Some(vec![1e9, -5.0]); // clamped to 100 and 0
        outputs[1] = None; // counts as the midpoint
        outputs[2] = Some(vec![f64::NAN, 0.1]);
        let spec = AggregateSpec {
            bounds: vec![(0.0, 100.0), (0.0, 1.0)],
            mechanism: NoiseMechanism::Laplace,
            epsilon: 5.0,
        };
        let release = sample_and_aggregate(&payer, &outputs, &spec).unwrap();
        assert_eq!(release.replaced_blocks, 2);
        assert!((release.cost.epsilon - 5.0).abs() < 1e-9);
        assert!((release.noise_scale[0] - 0.04).abs() < 1e-6);
        let expected_first = (997.0 * 40.0 + 100.0 + 2.0 * 50.0) / 1000.0;
        assert!(
            (release.values[0] - expected_first).abs() < 1.0,
            "{:?}",
            release.values
        );
        assert!((accountant.spent("red", "icu").unwrap().epsilon - 5.0).abs() < 1e-9);
    }

    #[test]
    fn gaussian_release_records_delta() {
        let accountant = accountant();
        let payer = red_on_icu(&accountant);
        let outputs: Vec<Option<Vec<f64>>> = (0..50).map(|i| Some(vec![f64::from(i)])).collect();
        let spec = AggregateSpec {
            bounds: vec![(0.0, 49.0)],
            mechanism: NoiseMechanism::Gaussian { delta: 1e-6 },
            epsilon: 1.0,
        };
        let release = sample_and_aggregate(&payer, &outputs, &spec).unwrap();
        assert_eq!(release.cost.delta, 1e-6);
        assert!(release.cost.epsilon <= 1.0);
        assert!((release.charge.charged.delta - 1e-6).abs() < 1e-15);
    }

    #[test]
    fn refusal_charges_nothing() {
        let accountant = accountant();
        let payer = red_on_icu(&accountant);
        let outputs = vec![Some(vec![1.0]); 10];
        let spec = AggregateSpec {
            bounds: vec![(0.0, 1.0)],
            mechanism: NoiseMechanism::Laplace,
            epsilon: 11.0,
        };
        assert!(matches!(
            sample_and_aggregate(&payer, &outputs, &spec),
            Err(PrivacyError::BudgetExceeded { .. })
        ));
        assert_eq!(accountant.spent("red", "icu").unwrap().epsilon, 0.0);
    }
}
