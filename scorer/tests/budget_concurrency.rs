//! Many threads charging one budget at once must never overspend it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use medarena_scorer::budget::{BudgetAccountant, DatasetBudget, InMemoryAccountant};
use medarena_scorer::noise::PrivacyCost;

#[test]
fn concurrent_charges_never_overspend() {
    let accountant = Arc::new(InMemoryAccountant::new());
    accountant
        .set_budget(
            "icu",
            DatasetBudget {
                per_team: PrivacyCost::pure(1.0),
                // Four teams could spend 4.0 alone; the total caps them at 2.5.
                total: Some(PrivacyCost::pure(2.5)),
            },
        )
        .unwrap();
    let granted = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let accountant = Arc::clone(&accountant);
            let granted = Arc::clone(&granted);
            let refused = Arc::clone(&refused);
            thread::spawn(move || {
                let team = format!("team-{}", t % 4);
                for _ in 0..500 {
                    match accountant.charge(&team, "icu", PrivacyCost::pure(0.001)) {
                        Ok(_) => granted.fetch_add(1, Ordering::Relaxed),
                        Err(_) => refused.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    // 16 × 500 = 8000 attempts of 0.001; exactly 2500 fit under the total.
    assert_eq!(granted.load(Ordering::Relaxed), 2500);
    assert_eq!(refused.load(Ordering::Relaxed), 8000 - 2500);
    let mut total = 0.0;
    for t in 0..4 {
        let spent = accountant
            .spent(&format!("team-{t}"), "icu")
            .unwrap()
            .epsilon;
        assert!(spent <= 1.0 + 1e-12, "team-{t} spent {spent}");
        total += spent;
    }
    assert!((total - 2.5).abs() < 1e-9, "all teams spent {total}");
}
