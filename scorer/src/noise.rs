//! Calibrated noise through OpenDP. This module owns every random draw the privacy layer
//! makes; it never samples a float distribution itself.
//!
//! OpenDP's Laplace and Gaussian mechanisms sample exactly (discrete Laplace / discrete
//! Gaussian on a fine grid, then rounded), so the stated ε (and δ) hold on real
//! floating-point machines, which naive float sampling does not guarantee (Mironov 2012).
//! OpenDP is built with its `use-openssl` feature: every random bit comes from OpenSSL's
//! `RAND_priv_bytes` (a vetted DRBG, built from source by `openssl-src` so that no system
//! library is needed), not from `rand`'s `thread_rng`, which OpenDP itself calls insecure.

use opendp::combinators::{make_fix_delta, make_zCDP_to_approxDP};
use opendp::core::Measurement;
use opendp::domains::{AtomDomain, VectorDomain};
use opendp::measurements::{make_gaussian, make_laplace};
use opendp::measures::{MaxDivergence, ZeroConcentratedDivergence};
use opendp::metrics::{L1Distance, L2Distance};
use opendp::utilities::binary_search;
use serde::{Deserialize, Serialize};

use crate::error::PrivacyError;

/// Which noise a release uses. The organizer or the task chooses; both are OpenDP's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum NoiseMechanism {
    /// ε-DP; the sensitivity is an L1 bound.
    Laplace,
    /// (ε, δ)-DP through zero-concentrated DP; the sensitivity is an L2 bound.
    Gaussian { delta: f64 },
}

/// What a release costs, in the currency the budget is kept in.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PrivacyCost {
    pub epsilon: f64,
    pub delta: f64,
}

impl PrivacyCost {
    pub fn pure(epsilon: f64) -> Self {
        PrivacyCost {
            epsilon,
            delta: 0.0,
        }
    }
}

/// Half-width `t` of the central interval holding `level` of Laplace(b) noise:
/// P(|X| > t) = e^(−t/b), so t = b·ln(1/(1 − level)); b·ln 20 ≈ 3.0·b at 95%.
pub fn laplace_half_width(scale: f64, level: f64) -> f64 {
    scale * (1.0 / (1.0 - level.clamp(0.0, 1.0 - 1e-12))).ln()
}

/// A mechanism calibrated for one release, not yet run. Charge [`PreparedNoise::cost`]
/// to the budget, then call [`PreparedNoise::apply`].
pub struct PreparedNoise {
    kind: Prepared,
    /// The noise scale (Laplace b, or Gaussian σ) on the sensitivity-1 scale of the input.
    pub scale: f64,
    /// The cost OpenDP's privacy map states for this sensitivity: what gets charged.
    pub cost: PrivacyCost,
    pub mechanism: NoiseMechanism,
}

type VectorF64 = VectorDomain<AtomDomain<f64>>;

enum Prepared {
    Laplace(Measurement<VectorF64, L1Distance<f64>, MaxDivergence, Vec<f64>>),
    Gaussian(Measurement<VectorF64, L2Distance<f64>, ZeroConcentratedDivergence, Vec<f64>>),
}

fn check_positive(what: &str, value: f64) -> Result<(), PrivacyError> {
    if !(value.is_finite() && value > 0.0) {
        return Err(PrivacyError::InvalidParameter(format!(
            "{what} must be a positive finite number, got {value}"
        )));
    }
    Ok(())
}

fn laplace(
    scale: f64,
) -> Result<Measurement<VectorF64, L1Distance<f64>, MaxDivergence, Vec<f64>>, PrivacyError> {
    Ok(make_laplace(
        VectorDomain::new(AtomDomain::<f64>::new_non_nan()),
        L1Distance::<f64>::default(),
        scale,
        None,
    )?)
}

fn gaussian(
    scale: f64,
) -> Result<
    Measurement<VectorF64, L2Distance<f64>, ZeroConcentratedDivergence, Vec<f64>>,
    PrivacyError,
> {
    Ok(make_gaussian(
        VectorDomain::new(AtomDomain::<f64>::new_non_nan()),
        L2Distance::<f64>::default(),
        scale,
        None,
    )?)
}

/// (ε, δ) of a Gaussian measurement at sensitivity `sensitivity`, through OpenDP's zCDP to
/// approximate-DP conversion.
fn gaussian_cost(scale: f64, sensitivity: f64, delta: f64) -> Result<f64, PrivacyError> {
    let measurement = make_fix_delta(&make_zCDP_to_approxDP(gaussian(scale)?)?, delta)?;
    Ok(measurement.map(&sensitivity)?.0)
}

/// Calibrates `mechanism` so that a query with the given sensitivity (L1 for Laplace, L2
/// for Gaussian) costs at most `epsilon` (and the Gaussian's `delta`).
pub fn prepare(
    mechanism: NoiseMechanism,
    sensitivity: f64,
    epsilon: f64,
) -> Result<PreparedNoise, PrivacyError> {
    check_positive("ε", epsilon)?;
    check_positive("sensitivity", sensitivity)?;
    match mechanism {
        NoiseMechanism::Laplace => {
            let mut scale = sensitivity / epsilon;
            let fits = |s: &f64| {
                laplace(*s)
                    .and_then(|m| Ok(m.map(&sensitivity)?))
                    .is_ok_and(|e| e <= epsilon)
            };
            // OpenDP rounds the sensitivity up to its noise grid; if that pushes ε over the
            // target, let its binary search find the smallest scale that fits.
            if !fits(&scale) {
                scale = binary_search(fits, (scale, scale * 2.0))?;
            }
            let measurement = laplace(scale)?;
            let spent = measurement.map(&sensitivity)?;
            Ok(PreparedNoise {
                kind: Prepared::Laplace(measurement),
                scale,
                cost: PrivacyCost::pure(spent),
                mechanism,
            })
        }
        NoiseMechanism::Gaussian { delta } => {
            check_positive("δ", delta)?;
            if delta >= 1.0 {
                return Err(PrivacyError::InvalidParameter(format!(
                    "δ must be below 1, got {delta}"
                )));
            }
            let fits = |s: &f64| gaussian_cost(*s, sensitivity, delta).is_ok_and(|e| e <= epsilon);
            // The upper end is generous: σ = Δ·(2 + 2·ln(1/δ))/ε always satisfies it.
            let upper = sensitivity * (2.0 + 2.0 * (1.0 / delta).ln()) / epsilon;
            let scale = binary_search(fits, (upper * 1e-6, upper))?;
            let spent = gaussian_cost(scale, sensitivity, delta)?;
            Ok(PreparedNoise {
                kind: Prepared::Gaussian(gaussian(scale)?),
                scale,
                cost: PrivacyCost {
                    epsilon: spent,
                    delta,
                },
                mechanism,
            })
        }
    }
}

impl PreparedNoise {
    /// Adds the noise. Call only after the cost has been charged.
    pub fn apply(&self, values: &[f64]) -> Result<Vec<f64>, PrivacyError> {
        if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
            return Err(PrivacyError::InvalidParameter(format!(
                "cannot add noise to the non-finite value {bad}"
            )));
        }
        let input = values.to_vec();
        Ok(match &self.kind {
            Prepared::Laplace(m) => m.invoke(&input)?,
            Prepared::Gaussian(m) => m.invoke(&input)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laplace_costs_what_was_asked() {
        let noise = prepare(NoiseMechanism::Laplace, 0.01, 0.5).unwrap();
        assert!(noise.cost.epsilon <= 0.5 && noise.cost.epsilon > 0.499);
        assert_eq!(noise.cost.delta, 0.0);
        assert!((noise.scale - 0.02).abs() < 1e-6);
        let noisy = noise.apply(&[0.7, 0.2]).unwrap();
        assert_eq!(noisy.len(), 2);
        assert!(noisy.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn laplace_noise_has_the_calibrated_spread() {
        // Mean absolute deviation of Laplace(b) is b: 4000 draws pin it within ~5%.
        let noise = prepare(NoiseMechanism::Laplace, 1.0, 1.0).unwrap();
        let draws = noise.apply(&vec![0.0; 4000]).unwrap();
        let mad = draws.iter().map(|v| v.abs()).sum::<f64>() / draws.len() as f64;
        assert!((mad - 1.0).abs() < 0.1, "mean absolute deviation {mad}");
    }

    #[test]
    fn gaussian_records_epsilon_and_delta() {
        let noise = prepare(NoiseMechanism::Gaussian { delta: 1e-6 }, 0.1, 1.0).unwrap();
        assert!(
            noise.cost.epsilon <= 1.0 && noise.cost.epsilon > 0.95,
            "{:?}",
            noise.cost
        );
        assert_eq!(noise.cost.delta, 1e-6);
        assert!(noise.scale > 0.1);
    }

    #[test]
    fn refuses_bad_parameters() {
        assert!(prepare(NoiseMechanism::Laplace, 1.0, 0.0).is_err());
        assert!(prepare(NoiseMechanism::Laplace, f64::INFINITY, 1.0).is_err());
        assert!(prepare(NoiseMechanism::Gaussian { delta: 0.0 }, 1.0, 1.0).is_err());
        let noise = prepare(NoiseMechanism::Laplace, 1.0, 1.0).unwrap();
        assert!(noise.apply(&[f64::NAN]).is_err());
    }
}
