//! Writes the synthetic example datasets next to their manifests (`examples/heart/`,
//! `examples/liver/`): `cargo run -p medarena-datasets-spec --example gen-example`.
//! Also writes `heart/bad-upload.csv`, a small upload that must fail validation.

use std::path::Path;

use medarena_datasets_spec::example::{
    HEART_MANIFEST, HEART_SITES, LIVER_MANIFEST, LIVER_SITES, auc, harrell_c, heart_site,
    liver_site, survival_labels,
};
use medarena_datasets_spec::{Manifest, write_table};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/heart");
    let manifest = Manifest::from_str(HEART_MANIFEST)?;
    for (site, prefix, rows, seed) in HEART_SITES {
        let (batch, scores) = heart_site(&manifest, site, prefix, rows, seed);
        let labels: Vec<bool> = medarena_datasets_spec::example::labels(&batch);
        println!(
            "{site}: {rows} rows, event rate {:.2}, oracle AUC {:.3}",
            labels.iter().filter(|l| **l).count() as f64 / rows as f64,
            auc(&scores, &labels)
        );
        write_table(&batch, directory.join(format!("{site}.csv")))?;
    }
    std::fs::write(
        directory.join("bad-upload.csv"),
        medarena_datasets_spec::example::bad_upload_csv(),
    )?;
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/liver");
    let manifest = Manifest::from_str(LIVER_MANIFEST)?;
    for (site, prefix, rows, seed) in LIVER_SITES {
        let (batch, risk) = liver_site(&manifest, site, prefix, rows, seed);
        let (time, event) = survival_labels(&batch);
        println!(
            "{site}: {rows} rows, deaths {:.2}, median follow-up {} d, oracle C {:.3}",
            event.iter().filter(|e| **e).count() as f64 / rows as f64,
            {
                let mut sorted = time.clone();
                sorted.sort_by(f64::total_cmp);
                sorted[sorted.len() / 2]
            },
            harrell_c(&risk, &time, &event)
        );
        write_table(&batch, directory.join(format!("{site}.csv")))?;
    }
    Ok(())
}
