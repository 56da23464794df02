//! The small-number policy on counts of patients shown to anyone but the contributing
//! hospital: validation reports, row counts, and organizers' views of runs (rows per part,
//! per site, per stratum of the split). A count at or below the policy's threshold is
//! shown as `[REDACTED]`, the others rounded (OpenSAFELY's output checking: ≤ 7 redacted,
//! others to the nearest 5, by default; a competition's `suppression_threshold` sets its
//! own). Row numbers go too: how many there are would give a small count away.

use medarena_scorer::{ShownCount, SuppressionPolicy};
use serde_json::Value;

/// Keys whose integer values count patients (rows), in reports and run details.
const COUNT_KEYS: [&str; 11] = [
    "rows",
    "with_target",
    "without_target",
    "train",
    "public_test",
    "private_test",
    "classes",
    "smallest_class",
    "rows_below_k",
    "classes_below_l",
    "rows_below_l",
];

/// A count as shown: a number, or `"[REDACTED]"`.
pub fn shown(count: u64, policy: &SuppressionPolicy) -> Value {
    match policy.apply(count) {
        ShownCount::Count(n) => Value::from(n),
        ShownCount::Suppressed => Value::from(ShownCount::Suppressed.to_string()),
    }
}

/// Applies the policy to every patient count in a report or run details, in place: the
/// values of [`COUNT_KEYS`] and of `label_counts`, at any depth; `row_numbers` emptied.
pub fn redact_counts(value: &mut Value, policy: &SuppressionPolicy) {
    match value {
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                match (key.as_str(), &*item) {
                    (key, Value::Number(n)) if COUNT_KEYS.contains(&key) => {
                        if let Some(count) = n.as_u64() {
                            *item = shown(count, policy);
                        }
                    }
                    ("row_numbers", _) => *item = Value::Array(Vec::new()),
                    ("label_counts", Value::Object(_)) => {
                        if let Value::Object(classes) = item {
                            for count in classes.values_mut() {
                                if let Some(n) = count.as_u64() {
                                    *count = shown(n, policy);
                                }
                            }
                        }
                    }
                    _ => redact_counts(item, policy),
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| redact_counts(item, policy)),
        _ => {}
    }
}

/// The policy of a competition: counts below its `suppression_threshold` redacted, the
/// others rounded to 5.
pub fn competition_policy(bundle: &crate::bundle::Bundle) -> SuppressionPolicy {
    SuppressionPolicy {
        threshold: u64::from(bundle.privacy.suppression_threshold.saturating_sub(1)),
        round_to: 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_at_any_depth_are_redacted_or_rounded() {
        let policy = SuppressionPolicy::default();
        let mut report = json!({
            "rows": 1234,
            "columns": 18,
            "findings": [{ "rule": "phi.mobile", "rows": 3, "row_numbers": [4, 9, 12] }],
            "label_counts": { "0": 903, "1": 6 },
            "k_anonymity": { "k": 5, "classes": 40, "smallest_class": 2, "rows_below_k": 7 },
            "evaluation": { "pooled": { "private": { "per_site": [{ "site": "a", "rows": 52, "score": 0.7 }] } } },
        });
        redact_counts(&mut report, &policy);
        assert_eq!(
            report,
            json!({
                "rows": 1235,
                "columns": 18,
                "findings": [{ "rule": "phi.mobile", "rows": "[REDACTED]", "row_numbers": [] }],
                "label_counts": { "0": 905, "1": "[REDACTED]" },
                "k_anonymity": { "k": 5, "classes": 40, "smallest_class": "[REDACTED]", "rows_below_k": "[REDACTED]" },
                "evaluation": { "pooled": { "private": { "per_site": [{ "site": "a", "rows": 50, "score": 0.7 }] } } },
            })
        );
    }
}
