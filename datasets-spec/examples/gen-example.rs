//! Writes the synthetic example dataset next to its manifest:
//! `cargo run -p medarena-datasets-spec --example gen-example`.
//! Also writes `bad-upload.csv`, a small upload that must fail validation.

use std::path::Path;

use medarena_datasets_spec::example::{HEART_MANIFEST, HEART_SITES, auc, heart_site};
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
    Ok(())
}
