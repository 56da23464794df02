//! Small numeric helpers that most models need. The SDK is `no_std`, and `core` has no
//! `exp`, `ln` or `sqrt` on stable Rust, so they are written here (deterministic, and the
//! same code natively and in the sandbox). The small ones are `#[inline]` so that they
//! inline into a submission's hot loops even without link-time optimisation.

use alloc::vec::Vec;

/// SplitMix64: a tiny deterministic generator to expand the host's seed.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    #[inline]
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `e^x` to about 1e-15 relative error, written out because `core` has no `exp`:
/// range reduction by ln 2 and a degree-13 Taylor series on |r| <= ln2/2.
#[inline]
pub fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x > 709.0 {
        return f64::INFINITY;
    }
    if x < -745.0 {
        return 0.0;
    }
    let k = (x * core::f64::consts::LOG2_E + if x >= 0.0 { 0.5 } else { -0.5 }) as i64;
    let r = x - k as f64 * core::f64::consts::LN_2;
    let mut term = 1.0;
    let mut sum = 1.0;
    for n in 1..14 {
        term *= r / n as f64;
        sum += term;
    }
    // 2^k by building the exponent bits (k is within the normal range after the clamps
    // above, except near the subnormal edge, where we scale in two steps).
    let half = k / 2;
    sum * pow2(half) * pow2(k - half)
}

#[inline]
fn pow2(k: i64) -> f64 {
    f64::from_bits(((k + 1023).clamp(0, 2046) as u64) << 52)
}

/// Natural logarithm for `x > 0`, by frexp-style reduction and an atanh series.
#[inline]
pub fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return x;
    }
    let (mut mantissa, mut exponent) = (x, 0i64);
    while mantissa >= 2.0 {
        mantissa /= 2.0;
        exponent += 1;
    }
    while mantissa < 1.0 {
        mantissa *= 2.0;
        exponent -= 1;
    }
    if mantissa > core::f64::consts::SQRT_2 {
        mantissa /= 2.0;
        exponent += 1;
    }
    let s = (mantissa - 1.0) / (mantissa + 1.0);
    let s2 = s * s;
    let (mut term, mut sum) = (s, 0.0);
    for n in 0..20 {
        sum += term / (2 * n + 1) as f64;
        term *= s2;
    }
    2.0 * sum + exponent as f64 * core::f64::consts::LN_2
}

#[inline]
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + exp(-x))
    } else {
        let e = exp(x);
        e / (1.0 + e)
    }
}

/// In-place softmax of one row of scores.
#[inline]
pub fn softmax(scores: &mut [f64]) {
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut total = 0.0;
    for score in scores.iter_mut() {
        *score = exp(*score - max);
        total += *score;
    }
    for score in scores.iter_mut() {
        *score /= total;
    }
}

/// Mean and standard deviation of the non-missing values (0 and 1 when there are none).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let (mut n, mut sum, mut sum_sq) = (0usize, 0.0, 0.0);
    for &v in values.iter().filter(|v| !v.is_nan()) {
        n += 1;
        sum += v;
        sum_sq += v * v;
    }
    if n == 0 {
        return (0.0, 1.0);
    }
    let mean = sum / n as f64;
    let var = (sum_sq / n as f64 - mean * mean).max(0.0);
    let std = if var > 1e-24 { sqrt(var) } else { 1.0 };
    (mean, std)
}

/// Gradient and diagonal Hessian of the Cox partial log-likelihood (Breslow ties) with
/// respect to the risk scores `eta`, for minimisation. `time` > 0, `event` 1.0 / 0.0.
pub fn cox_gradients(time: &[f64], event: &[f64], eta: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let n = time.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| time[a].total_cmp(&time[b]).then(a.cmp(&b)));
    let risk: Vec<f64> = eta.iter().map(|&e| exp(e.clamp(-30.0, 30.0))).collect();
    // Risk-set sums S(t) = sum of risk over rows with time >= t, walking from the latest.
    let mut at_risk = vec_zero(n);
    let mut suffix = 0.0;
    let mut i = n;
    while i > 0 {
        let mut j = i;
        while j > 0 && time[order[j - 1]] == time[order[i - 1]] {
            j -= 1;
            suffix += risk[order[j]];
        }
        for &row in &order[j..i] {
            at_risk[row] = suffix;
        }
        i = j;
    }
    // For each row, sum over event times t_k <= t_row of 1/S(t_k) and 1/S(t_k)^2.
    let (mut grad, mut hess) = (vec_zero(n), vec_zero(n));
    let (mut c1, mut c2) = (0.0, 0.0);
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j < n && time[order[j]] == time[order[i]] {
            let row = order[j];
            if event[row] > 0.5 {
                c1 += 1.0 / at_risk[row];
                c2 += 1.0 / (at_risk[row] * at_risk[row]);
            }
            j += 1;
        }
        for &row in &order[i..j] {
            grad[row] = risk[row] * c1 - if event[row] > 0.5 { 1.0 } else { 0.0 };
            hess[row] = (risk[row] * c1 - risk[row] * risk[row] * c2).max(1e-6);
        }
        i = j;
    }
    (grad, hess)
}

fn vec_zero(n: usize) -> Vec<f64> {
    alloc::vec![0.0; n]
}

/// Square root by Newton's method from a bit-level first guess (exact to the last bit or two).
#[inline]
pub fn sqrt(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 || x.is_infinite() {
        return x;
    }
    let mut y = f64::from_bits((x.to_bits() >> 1) + (1023u64 << 51));
    for _ in 0..6 {
        y = 0.5 * (y + x / y);
    }
    y
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    #[test]
    fn math_matches_std_closely() {
        for i in -200..200 {
            let x = f64::from(i) * 0.37;
            assert!(
                (exp(x) - x.exp()).abs() <= 1e-13 * x.exp().max(1e-300),
                "exp({x})"
            );
            let y = x.abs() + 1e-3;
            assert!(
                (ln(y) - y.ln()).abs() <= 1e-13 * y.ln().abs().max(1.0),
                "ln({y})"
            );
            assert!((sqrt(y) - y.sqrt()).abs() <= 1e-15 * y.sqrt(), "sqrt({y})");
        }
        assert_eq!(exp(1000.0), f64::INFINITY);
        assert_eq!(exp(-1000.0), 0.0);
        assert!(ln(-1.0).is_nan());
    }

    #[test]
    fn cox_gradient_matches_finite_differences() {
        let time = [5.0, 3.0, 3.0, 8.0, 1.0];
        let event = [1.0, 1.0, 0.0, 0.0, 1.0];
        let eta = [0.2, -0.1, 0.4, 0.0, 0.3];
        // Breslow negative log partial likelihood.
        let loss = |eta: &[f64]| {
            let mut total = 0.0;
            for i in 0..5 {
                if event[i] > 0.5 {
                    let risk: f64 = (0..5)
                        .filter(|&j| time[j] >= time[i])
                        .map(|j| eta[j].exp())
                        .sum();
                    total -= eta[i] - risk.ln();
                }
            }
            total
        };
        let (grad, _) = cox_gradients(&time, &event, &eta);
        for k in 0..5 {
            let mut plus = eta;
            plus[k] += 1e-6;
            let mut minus = eta;
            minus[k] -= 1e-6;
            let numeric = (loss(&plus) - loss(&minus)) / 2e-6;
            assert!(
                (grad[k] - numeric).abs() < 1e-5,
                "row {k}: {} vs {numeric}",
                grad[k]
            );
        }
    }
}
