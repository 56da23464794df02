//! Content hashes: of files (the bytes uploaded) and of tables (the values, independent of
//! the file format they came in).

use std::fmt;
use std::io::Read;
use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Date32Type, Float64Type, Int32Type, Int64Type};
use sha2::{Digest, Sha256};

use crate::values::{TextColumn, as_text};

/// A SHA-256 content hash, written `sha256:<64 lower-case hex>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    /// Parses `sha256:<hex>`.
    pub fn parse(text: &str) -> Option<ContentHash> {
        let hex_part = text.strip_prefix("sha256:")?;
        if hex_part.len() != 64 || hex_part.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut bytes).ok()?;
        Some(ContentHash(bytes))
    }

    /// SHA-256 of bytes.
    pub fn of_bytes(bytes: &[u8]) -> ContentHash {
        ContentHash(Sha256::digest(bytes).into())
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl serde::Serialize for ContentHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ContentHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ContentHash::parse(&text)
            .ok_or_else(|| serde::de::Error::custom("expected sha256:<64 lower-case hex>"))
    }
}

/// SHA-256 of a file's bytes, streamed.
pub fn hash_file(path: impl AsRef<Path>) -> std::io::Result<ContentHash> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(ContentHash(hasher.finalize().into()))
}

/// Hash of a table's names and values (`medarena-table-hash/1`), the same whether the table
/// came from CSV, Parquet or Arrow IPC once typed alike.
///
/// Encoding, column by column: the name (length-prefixed), a type tag, then each value:
/// `0` for null, or `1` followed by the value (i64/i32 little-endian, f64 bits
/// little-endian, booleans as one byte, text length-prefixed; other types as their Arrow
/// text rendering).
pub fn hash_table(batch: &RecordBatch) -> ContentHash {
    let mut hasher = Sha256::new();
    hasher.update(b"medarena-table-hash/1");
    hasher.update((batch.num_rows() as u64).to_le_bytes());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        hasher.update((field.name().len() as u64).to_le_bytes());
        hasher.update(field.name().as_bytes());
        let mut value = |row: usize, bytes: &[u8]| {
            if column.is_valid(row) {
                hasher.update([1]);
                hasher.update(bytes);
            } else {
                hasher.update([0]);
            }
        };
        match column.data_type() {
            DataType::Int64 => {
                let values = column.as_primitive::<Int64Type>();
                for row in 0..column.len() {
                    value(row, &values.value(row).to_le_bytes());
                }
            }
            DataType::Int32 => {
                let values = column.as_primitive::<Int32Type>();
                for row in 0..column.len() {
                    value(row, &values.value(row).to_le_bytes());
                }
            }
            DataType::Date32 => {
                let values = column.as_primitive::<Date32Type>();
                for row in 0..column.len() {
                    value(row, &values.value(row).to_le_bytes());
                }
            }
            DataType::Float64 => {
                let values = column.as_primitive::<Float64Type>();
                for row in 0..column.len() {
                    value(row, &values.value(row).to_bits().to_le_bytes());
                }
            }
            DataType::Boolean => {
                let values = column.as_boolean();
                for row in 0..column.len() {
                    value(row, &[u8::from(values.value(row))]);
                }
            }
            _ => {
                let text = as_text(column);
                let view = text.as_deref().and_then(TextColumn::of);
                for row in 0..column.len() {
                    let cell = view.as_ref().and_then(|v| v.get(row)).unwrap_or_default();
                    let mut bytes = (cell.len() as u64).to_le_bytes().to_vec();
                    bytes.extend_from_slice(cell.as_bytes());
                    value(row, &bytes);
                }
            }
        }
    }
    ContentHash(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let hash = ContentHash::of_bytes(b"abc");
        let text = hash.to_string();
        assert_eq!(
            text,
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(ContentHash::parse(&text), Some(hash));
        assert_eq!(ContentHash::parse(&text.to_uppercase()), None);
        assert_eq!(ContentHash::parse("sha256:abc"), None);
    }
}
