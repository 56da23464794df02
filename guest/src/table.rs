//! Reading the ABI's table block (see `sandbox/ABI.md`, "Tables") without copying.

use alloc::vec::Vec;

use crate::TaskKind;

/// `"MDAT"` read as a little-endian u32: the first word of every table block.
pub const TABLE_MAGIC: u32 = u32::from_le_bytes(*b"MDAT");
pub const HEADER_BYTES: usize = 16;
pub const COLUMN_BYTES: usize = 32;
/// Category code of a missing value.
pub const MISSING_CODE: u32 = u32::MAX;
/// Boolean byte of a missing value.
pub const MISSING_BOOL: u8 = 2;

pub const KIND_NUMBER: u32 = 1;
pub const KIND_CATEGORY: u32 = 2;
pub const KIND_BOOLEAN: u32 = 3;
pub const KIND_DATE: u32 = 4;

/// A table block that does not follow the ABI (a host bug or a hand-written harness).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbiError(pub &'static str);

/// One column's values; missing is `NaN`, [`MISSING_CODE`] or [`MISSING_BOOL`].
#[derive(Debug, Clone)]
pub enum ColumnData<'a> {
    Number(&'a [f64]),
    /// Days since 1970-01-01.
    Date(&'a [f64]),
    Category {
        codes: &'a [u32],
        levels: Vec<&'a str>,
    },
    /// 0 = false, 1 = true, 2 = missing.
    Boolean(&'a [u8]),
}

#[derive(Debug, Clone)]
pub struct Column<'a> {
    pub name: &'a str,
    pub data: ColumnData<'a>,
}

impl Column<'_> {
    /// The value of row `row` as a number: categories give their code, booleans 0/1, and
    /// missing values `NaN`. Handy for tree models.
    #[inline]
    pub fn value_f64(&self, row: usize) -> f64 {
        match &self.data {
            ColumnData::Number(v) | ColumnData::Date(v) => v[row],
            ColumnData::Category { codes, .. } => match codes[row] {
                MISSING_CODE => f64::NAN,
                code => f64::from(code),
            },
            ColumnData::Boolean(v) => match v[row] {
                0 => 0.0,
                1 => 1.0,
                _ => f64::NAN,
            },
        }
    }

    /// Numbers and dates as a slice, without copying.
    #[inline]
    pub fn as_f64(&self) -> Option<&[f64]> {
        match &self.data {
            ColumnData::Number(v) | ColumnData::Date(v) => Some(v),
            _ => None,
        }
    }
}

/// A column-major table borrowed from the host's block.
#[derive(Debug, Clone)]
pub struct Table<'a> {
    n_rows: usize,
    columns: Vec<Column<'a>>,
}

fn read_u32(block: &[u8], at: usize) -> Result<u32, AbiError> {
    let bytes = block
        .get(at..at + 4)
        .ok_or(AbiError("field past the end of the block"))?;
    Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

fn range(block: &[u8], offset: u32, len: usize) -> Result<&[u8], AbiError> {
    let start = offset as usize;
    block
        .get(start..start.checked_add(len).ok_or(AbiError("length overflows"))?)
        .ok_or(AbiError("buffer past the end of the block"))
}

fn str_at(block: &[u8], offset: u32, len: u32) -> Result<&str, AbiError> {
    core::str::from_utf8(range(block, offset, len as usize)?)
        .map_err(|_| AbiError("name is not UTF-8"))
}

/// Reinterprets bytes as a slice of a plain number type, checking alignment.
fn cast<T: Copy>(bytes: &[u8]) -> Result<&[T], AbiError> {
    let size = core::mem::size_of::<T>();
    if !(bytes.as_ptr() as usize).is_multiple_of(core::mem::align_of::<T>()) {
        return Err(AbiError("misaligned column buffer"));
    }
    // SAFETY: the range is in bounds and aligned, and T is f64/u32 (every bit pattern valid).
    Ok(unsafe { core::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), bytes.len() / size) })
}

impl<'a> Table<'a> {
    /// Parses a table block; `block` must start 8-byte aligned (the host guarantees it).
    pub fn from_block(block: &'a [u8]) -> Result<Self, AbiError> {
        if read_u32(block, 0)? != TABLE_MAGIC {
            return Err(AbiError("table block does not start with MDAT"));
        }
        let n_rows = read_u32(block, 4)? as usize;
        let n_columns = read_u32(block, 8)? as usize;
        let mut columns = Vec::with_capacity(n_columns.min(4096));
        for index in 0..n_columns {
            let at = HEADER_BYTES + index * COLUMN_BYTES;
            let kind = read_u32(block, at)?;
            let name = str_at(block, read_u32(block, at + 4)?, read_u32(block, at + 8)?)?;
            let data_offset = read_u32(block, at + 12)?;
            let data = match kind {
                KIND_NUMBER | KIND_DATE => {
                    let values = cast::<f64>(range(block, data_offset, n_rows * 8)?)?;
                    if kind == KIND_NUMBER {
                        ColumnData::Number(values)
                    } else {
                        ColumnData::Date(values)
                    }
                }
                KIND_CATEGORY => {
                    let codes = cast::<u32>(range(block, data_offset, n_rows * 4)?)?;
                    let n_levels = read_u32(block, at + 16)? as usize;
                    let levels_offset = read_u32(block, at + 20)? as usize;
                    let mut levels = Vec::with_capacity(n_levels.min(4096));
                    for level in 0..n_levels {
                        let entry = levels_offset + level * 8;
                        levels.push(str_at(
                            block,
                            read_u32(block, entry)?,
                            read_u32(block, entry + 4)?,
                        )?);
                    }
                    ColumnData::Category { codes, levels }
                }
                KIND_BOOLEAN => ColumnData::Boolean(range(block, data_offset, n_rows)?),
                _ => return Err(AbiError("unknown column kind")),
            };
            columns.push(Column { name, data });
        }
        Ok(Table { n_rows, columns })
    }

    #[inline]
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    #[inline]
    pub fn columns(&self) -> &[Column<'a>] {
        &self.columns
    }

    pub fn column(&self, name: &str) -> Option<&Column<'a>> {
        self.columns.iter().find(|column| column.name == name)
    }

    /// Every column as numbers ([`Column::value_f64`]), column-major: one `Vec` per column.
    pub fn numeric_columns(&self) -> Vec<Vec<f64>> {
        self.columns
            .iter()
            .map(|column| match column.as_f64() {
                Some(values) => values.to_vec(),
                None => (0..self.n_rows).map(|row| column.value_f64(row)).collect(),
            })
            .collect()
    }

    /// Mean and standard deviation of every column ([`crate::util::mean_std`]), for
    /// [`Table::standardized`]: fitted on the training table, kept for prediction.
    pub fn column_scaling(&self) -> Vec<(f64, f64)> {
        self.numeric_columns()
            .iter()
            .map(|column| crate::util::mean_std(column))
            .collect()
    }

    /// Every column standardised with `scaling` (one `(mean, std)` per column), missing
    /// values imputed with the mean (0 after standardising); column-major.
    pub fn standardized(&self, scaling: &[(f64, f64)]) -> Vec<Vec<f64>> {
        self.numeric_columns()
            .into_iter()
            .zip(scaling)
            .map(|(values, &(mean, std))| {
                values
                    .into_iter()
                    .map(|v| if v.is_nan() { 0.0 } else { (v - mean) / std })
                    .collect()
            })
            .collect()
    }
}

/// Training labels, by task (see ABI.md, "Labels").
#[derive(Debug, Clone)]
pub enum Labels<'a> {
    /// 0.0 or 1.0 per row.
    Binary(&'a [f64]),
    /// Class index per row, into `classes` (the order of the predicted probabilities).
    Multiclass {
        codes: &'a [u32],
        classes: Vec<&'a str>,
    },
    Regression(&'a [f64]),
    /// Time to event or censoring (> 0) and event indicator (1.0 event, 0.0 censored).
    Survival {
        time: &'a [f64],
        event: &'a [f64],
    },
}

impl<'a> Labels<'a> {
    /// Reads the labels table of a fit call.
    pub fn from_table(task: TaskKind, table: &Table<'a>) -> Result<Self, AbiError> {
        let numbers = |name: &str| match table.column(name).map(|column| &column.data) {
            Some(ColumnData::Number(values)) => Ok(*values),
            _ => Err(AbiError("labels table lacks a number column it needs")),
        };
        match task {
            TaskKind::Binary => Ok(Labels::Binary(numbers("label")?)),
            TaskKind::Regression => Ok(Labels::Regression(numbers("label")?)),
            TaskKind::Survival => Ok(Labels::Survival {
                time: numbers("time")?,
                event: numbers("event")?,
            }),
            TaskKind::Multiclass => match table.column("label").map(|column| &column.data) {
                Some(ColumnData::Category { codes, levels }) => Ok(Labels::Multiclass {
                    codes,
                    classes: levels.clone(),
                }),
                _ => Err(AbiError("multiclass labels must be a category column")),
            },
            TaskKind::Analyze => Err(AbiError("an analysis has no labels")),
        }
    }

    /// The single numeric target of binary and regression tasks.
    #[inline]
    pub fn target(&self) -> Option<&'a [f64]> {
        match self {
            Labels::Binary(y) | Labels::Regression(y) => Some(y),
            _ => None,
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        match self {
            Labels::Binary(y) | Labels::Regression(y) => y.len(),
            Labels::Multiclass { codes, .. } => codes.len(),
            Labels::Survival { time, .. } => time.len(),
        }
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
