//! Deterministic, seeded train / public-test / private-test splits, stratified on the
//! label and the site.
//!
//! Each row gets an order key `SHA-256(seed as 8 little-endian bytes ‖ row key)`, where the
//! row key is the row id text (the row position when no row id is declared). Within each
//! stratum (label class × site) rows are sorted by that key and the first
//! `round(n · train)` go to train, the next `round(n · public_test)` to the public test, the
//! rest to the private test. Because the key depends on the row id and not on the row's
//! position, re-ordering the file does not move a row to another part. The [`SplitRecord`]
//! holds everything needed to reproduce and check the split.
//!
//! The platform scores real runs with [`assign_rows`] instead: no stratification, each row's
//! part *and* block (for partitioned scoring) decided by its own key alone, so that
//! changing one row moves no other (differential privacy over every row needs that).

use std::collections::BTreeMap;

use arrow::array::{RecordBatch, UInt32Array};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::hash::{ContentHash, hash_table};
use crate::manifest::Manifest;
use crate::values::{TextColumn, as_text};

/// The method name written into records; a change of algorithm gets a new number.
pub const SPLIT_METHOD: &str = "medarena-split/1";

/// Which part a row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// Given to submissions with labels.
    Train,
    /// Scored for the public leaderboard.
    PublicTest,
    /// Scored for the final, private leaderboard.
    PrivateTest,
}

/// Split fractions and seed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitConfig {
    /// The seed (recorded on the ledger by the platform).
    pub seed: u64,
    /// Share of rows for training.
    pub train: f64,
    /// Share of rows for the public test; the private test gets the rest.
    pub public_test: f64,
}

impl Default for SplitConfig {
    fn default() -> Self {
        SplitConfig {
            seed: 0,
            train: 0.6,
            public_test: 0.2,
        }
    }
}

/// Counts of one stratum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stratum {
    /// Label class (text), if a label stratifies.
    pub label: Option<String>,
    /// Site (text), if a site stratifies.
    pub site: Option<String>,
    /// Rows in the stratum.
    pub rows: u64,
    /// Rows sent to train.
    pub train: u64,
    /// Rows sent to the public test.
    pub public_test: u64,
    /// Rows sent to the private test.
    pub private_test: u64,
}

/// Everything needed to reproduce and check a split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitRecord {
    /// `medarena-split/1`.
    pub method: String,
    /// The configuration.
    pub config: SplitConfig,
    /// Columns stratified on (label, site).
    pub stratified_on: Vec<String>,
    /// The row key: the row id column, or `row position`.
    pub row_key: String,
    /// Hash of the table split (see [`hash_table`]).
    pub table_hash: ContentHash,
    /// SHA-256 of the assignment, one byte per row (0 train, 1 public, 2 private).
    pub assignment_hash: ContentHash,
    /// Per-stratum counts.
    pub strata: Vec<Stratum>,
}

/// A split: the part of each row, and its record.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Part of each row, in table order.
    pub assignment: Vec<Part>,
    /// Block of each row (`0..k`), in table order; all 0 for [`split`] and for one block.
    pub blocks: Vec<u32>,
    /// The record.
    pub record: SplitRecord,
}

/// Why a split could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    /// Fractions outside [0, 1] or adding up to more than 1.
    #[error("split fractions must be in [0, 1] and add up to at most 1")]
    Fractions,
    /// A declared column used by the split is absent.
    #[error("column `{0}` is missing from the table")]
    MissingColumn(String),
}

impl Split {
    /// Rows (0-based) of a part, in table order.
    pub fn rows(&self, part: Part) -> Vec<u32> {
        self.assignment
            .iter()
            .enumerate()
            .filter(|(_, p)| **p == part)
            .map(|(i, _)| i as u32)
            .collect()
    }

    /// Rows (0-based) of a part inside one block, in table order.
    pub fn block_rows(&self, part: Part, block: u32) -> Vec<u32> {
        self.assignment
            .iter()
            .zip(&self.blocks)
            .enumerate()
            .filter(|(_, (p, b))| **p == part && **b == block)
            .map(|(i, _)| i as u32)
            .collect()
    }

    /// The rows of a part inside one block, as a table.
    pub fn take_block(
        &self,
        batch: &RecordBatch,
        part: Part,
        block: u32,
    ) -> Result<RecordBatch, arrow::error::ArrowError> {
        let indices = UInt32Array::from(self.block_rows(part, block));
        arrow::compute::take_record_batch(batch, &indices)
    }

    /// The rows of a part as a table.
    pub fn take(
        &self,
        batch: &RecordBatch,
        part: Part,
    ) -> Result<RecordBatch, arrow::error::ArrowError> {
        let indices = UInt32Array::from(self.rows(part));
        arrow::compute::take_record_batch(batch, &indices)
    }
}

fn text_column(batch: &RecordBatch, name: &str) -> Result<arrow::array::ArrayRef, SplitError> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| SplitError::MissingColumn(name.to_string()))?;
    as_text(column).ok_or_else(|| SplitError::MissingColumn(name.to_string()))
}

/// (label class, site) of a stratum, as text.
type StratumKey = (Option<String>, Option<String>);

/// Splits a table per the manifest's label and site.
pub fn split(
    manifest: &Manifest,
    batch: &RecordBatch,
    config: &SplitConfig,
) -> Result<Split, SplitError> {
    let valid = |x: f64| (0.0..=1.0).contains(&x);
    if !valid(config.train)
        || !valid(config.public_test)
        || config.train + config.public_test > 1.0 + 1e-12
    {
        return Err(SplitError::Fractions);
    }
    let rows = batch.num_rows();
    let mut stratified_on = Vec::new();
    let label = match manifest.stratification_label() {
        Some(field) => {
            stratified_on.push(field.name.clone());
            Some(text_column(batch, &field.name)?)
        }
        None => None,
    };
    let site = match manifest.site() {
        Some(field) => {
            stratified_on.push(field.name.clone());
            Some(text_column(batch, &field.name)?)
        }
        None => None,
    };
    let row_id = match manifest.row_id() {
        Some(field) => Some(text_column(batch, &field.name)?),
        None => None,
    };
    let label_view = label.as_deref().and_then(TextColumn::of);
    let site_view = site.as_deref().and_then(TextColumn::of);
    let id_view = row_id.as_deref().and_then(TextColumn::of);
    let mut strata: BTreeMap<StratumKey, Vec<(u64, u32)>> = BTreeMap::new();
    for row in 0..rows {
        let mut hasher = Sha256::new();
        hasher.update(config.seed.to_le_bytes());
        match &id_view {
            Some(view) => hasher.update(view.get(row).unwrap_or_default().as_bytes()),
            None => hasher.update(row.to_string().as_bytes()),
        }
        let digest = hasher.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        let order = u64::from_be_bytes(first);
        let stratum = (
            label_view
                .as_ref()
                .map(|v| v.get(row).unwrap_or_default().to_string()),
            site_view
                .as_ref()
                .map(|v| v.get(row).unwrap_or_default().to_string()),
        );
        strata.entry(stratum).or_default().push((order, row as u32));
    }
    let mut assignment = vec![Part::PrivateTest; rows];
    let mut counts = Vec::new();
    for ((label, site), mut members) in strata {
        // Ties (equal row ids) fall back to row position, so the order is total.
        members.sort_unstable();
        let n = members.len();
        let train = ((n as f64) * config.train).round() as usize;
        let public = (((n as f64) * config.public_test).round() as usize).min(n - train.min(n));
        let train = train.min(n);
        for (rank, (_, row)) in members.iter().enumerate() {
            assignment[*row as usize] = if rank < train {
                Part::Train
            } else if rank < train + public {
                Part::PublicTest
            } else {
                Part::PrivateTest
            };
        }
        counts.push(Stratum {
            label,
            site,
            rows: n as u64,
            train: train as u64,
            public_test: public as u64,
            private_test: (n - train - public) as u64,
        });
    }
    let bytes: Vec<u8> = assignment.iter().map(|p| *p as u8).collect();
    let record = SplitRecord {
        method: SPLIT_METHOD.to_string(),
        config: *config,
        stratified_on,
        row_key: manifest
            .row_id()
            .map_or_else(|| "row position".to_string(), |f| f.name.clone()),
        table_hash: hash_table(batch),
        assignment_hash: ContentHash::of_bytes(&bytes),
        strata: counts,
    };
    Ok(Split {
        blocks: vec![0; assignment.len()],
        assignment,
        record,
    })
}

/// The method name of [`assign_rows`].
pub const ROW_LOCAL_METHOD: &str = "medarena-rows/1";

/// Splits a table into parts *and* `blocks` disjoint blocks so that every row's part and
/// block depend on that row's own key alone: `SHA-256(seed ‖ "rows/1" ‖ site ‖ row key)`,
/// whose first 8 bytes pick the part by the fractions and next 8 bytes the block. Replacing
/// one row (its values, its label, even its id) moves no other row; that is what a
/// differentially private release over every row needs, and what the stratified [`split`]
/// (whose cut points depend on every row's label) cannot give. Part sizes vary around their
/// fractions like binomial draws.
pub fn assign_rows(
    manifest: &Manifest,
    batch: &RecordBatch,
    config: &SplitConfig,
    blocks: u32,
) -> Result<Split, SplitError> {
    let valid = |x: f64| (0.0..=1.0).contains(&x);
    if !valid(config.train)
        || !valid(config.public_test)
        || config.train + config.public_test > 1.0 + 1e-12
        || blocks == 0
    {
        return Err(SplitError::Fractions);
    }
    let rows = batch.num_rows();
    let site = match manifest.site() {
        Some(field) => Some(text_column(batch, &field.name)?),
        None => batch
            .column_by_name(crate::union::DEFAULT_SITE_COLUMN)
            .and_then(as_text),
    };
    let row_id = match manifest.row_id() {
        Some(field) => Some(text_column(batch, &field.name)?),
        None => None,
    };
    let site_view = site.as_deref().and_then(TextColumn::of);
    let id_view = row_id.as_deref().and_then(TextColumn::of);
    // Thresholds on a uniform u64: below `train_cut` trains, below `public_cut` is public.
    let cut = |fraction: f64| -> u128 { (fraction.clamp(0.0, 1.0) * 2f64.powi(64)) as u128 };
    let train_cut = cut(config.train);
    let public_cut = cut(config.train + config.public_test);
    let mut assignment = Vec::with_capacity(rows);
    let mut block_of = Vec::with_capacity(rows);
    let mut counts = [0u64; 3];
    for row in 0..rows {
        let mut hasher = Sha256::new();
        hasher.update(config.seed.to_le_bytes());
        hasher.update(b"rows/1");
        if let Some(view) = &site_view {
            let site = view.get(row).unwrap_or_default();
            hasher.update((site.len() as u64).to_le_bytes());
            hasher.update(site.as_bytes());
        }
        match &id_view {
            Some(view) => hasher.update(view.get(row).unwrap_or_default().as_bytes()),
            None => hasher.update(row.to_string().as_bytes()),
        }
        let digest = hasher.finalize();
        let word = |at: usize| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&digest[at..at + 8]);
            u64::from_be_bytes(bytes)
        };
        let u = u128::from(word(0));
        let part = if u < train_cut {
            Part::Train
        } else if u < public_cut {
            Part::PublicTest
        } else {
            Part::PrivateTest
        };
        counts[part as usize] += 1;
        assignment.push(part);
        // Multiply-shift maps a uniform u64 onto 0..blocks without modulo bias.
        block_of.push(((u128::from(word(8)) * u128::from(blocks)) >> 64) as u32);
    }
    let bytes: Vec<u8> = assignment
        .iter()
        .zip(&block_of)
        .flat_map(|(part, block)| {
            let mut entry = vec![*part as u8];
            entry.extend_from_slice(&block.to_le_bytes());
            entry
        })
        .collect();
    let record = SplitRecord {
        method: ROW_LOCAL_METHOD.to_string(),
        config: *config,
        stratified_on: Vec::new(),
        row_key: manifest
            .row_id()
            .map_or_else(|| "row position".to_string(), |f| f.name.clone()),
        table_hash: hash_table(batch),
        assignment_hash: ContentHash::of_bytes(&bytes),
        strata: vec![Stratum {
            label: None,
            site: None,
            rows: rows as u64,
            train: counts[0],
            public_test: counts[1],
            private_test: counts[2],
        }],
    };
    Ok(Split {
        assignment,
        blocks: block_of,
        record,
    })
}
