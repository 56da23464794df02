//! The host side of the ABI (`ABI.md`): Arrow tables and labels encoded as table blocks,
//! the call record, and the validation of what a guest returns.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;

/// The ABI version this host speaks.
pub const ABI_VERSION: u32 = 1;
/// `"MDAT"` as a little-endian u32.
pub const TABLE_MAGIC: u32 = u32::from_le_bytes(*b"MDAT");
pub const HEADER_BYTES: usize = 16;
pub const COLUMN_BYTES: usize = 32;
pub const MISSING_CODE: u32 = u32::MAX;
pub const MISSING_BOOL: u8 = 2;
/// The one NaN the host writes for a missing number.
pub const CANONICAL_NAN: f64 = f64::from_bits(0x7FF8_0000_0000_0000);

pub const KIND_NUMBER: u32 = 1;
pub const KIND_CATEGORY: u32 = 2;
pub const KIND_BOOLEAN: u32 = 3;
pub const KIND_DATE: u32 = 4;

/// Byte offsets in the 64-byte call record.
pub mod call {
    pub const ABI_VERSION: usize = 0;
    pub const TASK_KIND: usize = 4;
    pub const N_CLASSES: usize = 8;
    pub const N_OUTPUTS: usize = 12;
    pub const SEED: usize = 16;
    pub const FEATURES: usize = 24;
    pub const LABELS: usize = 28;
    pub const OUT_PTR: usize = 32;
    pub const OUT_LEN: usize = 36;
    pub const DEBUG_PTR: usize = 40;
    pub const DEBUG_LEN: usize = 44;
    pub const BYTES: usize = 64;
}

/// A table or label set the ABI cannot carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error(
        "column `{column}` has Arrow type {data_type}, which the ABI does not carry (numbers, booleans, dictionary/strings, dates)"
    )]
    UnsupportedType { column: String, data_type: String },
    #[error("test table column {index} is `{found}`, but the training table's is `{expected}`")]
    ColumnMismatch {
        index: usize,
        expected: String,
        found: String,
    },
    #[error("test table has {found} columns, the training table {expected}")]
    ColumnCount { expected: usize, found: usize },
    #[error("{what} has {found} rows, expected {expected}")]
    RowCount {
        what: &'static str,
        expected: usize,
        found: usize,
    },
    #[error("label at row {row} is invalid: {reason}")]
    BadLabel { row: usize, reason: &'static str },
    #[error("a table block would be {bytes} bytes, over the 4 GiB the ABI addresses")]
    TooLarge { bytes: usize },
    #[error("{0}")]
    Invalid(&'static str),
}

/// What the model is asked to predict. The ABI's `task_kind` codes are 1 to 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Task {
    Binary,
    Multiclass { n_classes: u32 },
    Regression,
    Survival,
}

impl Task {
    pub fn code(self) -> u32 {
        match self {
            Task::Binary => 1,
            Task::Multiclass { .. } => 2,
            Task::Regression => 3,
            Task::Survival => 4,
        }
    }

    pub fn n_classes(self) -> u32 {
        match self {
            Task::Binary => 2,
            Task::Multiclass { n_classes } => n_classes,
            _ => 0,
        }
    }

    /// Values per predicted row.
    pub fn outputs_per_row(self) -> usize {
        match self {
            Task::Multiclass { n_classes } => n_classes as usize,
            _ => 1,
        }
    }
}

/// Training labels; only ever sent for `fit`, never the test labels.
#[derive(Debug, Clone, PartialEq)]
pub enum Labels {
    Binary(Vec<bool>),
    /// `codes[i]` indexes `classes`; prediction columns follow the order of `classes`.
    Multiclass {
        classes: Vec<String>,
        codes: Vec<u32>,
    },
    Regression(Vec<f64>),
    /// Time to event or censoring (finite, >= 0) and whether the event happened.
    Survival {
        time: Vec<f64>,
        event: Vec<bool>,
    },
}

impl Labels {
    pub fn task(&self) -> Task {
        match self {
            Labels::Binary(_) => Task::Binary,
            Labels::Multiclass { classes, .. } => Task::Multiclass {
                n_classes: classes.len() as u32,
            },
            Labels::Regression(_) => Task::Regression,
            Labels::Survival { .. } => Task::Survival,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Labels::Binary(y) => y.len(),
            Labels::Multiclass { codes, .. } => codes.len(),
            Labels::Regression(y) => y.len(),
            Labels::Survival { time, .. } => time.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The labels table block of a fit call (ABI.md, "Labels").
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let n = self.len();
        let flags = |values: &[bool]| -> Vec<f64> {
            values.iter().map(|&v| if v { 1.0 } else { 0.0 }).collect()
        };
        let finite = |values: &[f64], nonnegative: bool| -> Result<(), EncodeError> {
            match values
                .iter()
                .position(|v| !v.is_finite() || (nonnegative && *v < 0.0))
            {
                Some(row) => Err(EncodeError::BadLabel {
                    row,
                    reason: "not a finite (non-negative) number",
                }),
                None => Ok(()),
            }
        };
        match self {
            Labels::Binary(y) => {
                let mut block = BlockWriter::new(n, 1)?;
                block.number("label", KIND_NUMBER, &flags(y))?;
                block.finish()
            }
            Labels::Regression(y) => {
                finite(y, false)?;
                let mut block = BlockWriter::new(n, 1)?;
                block.number("label", KIND_NUMBER, y)?;
                block.finish()
            }
            Labels::Multiclass { classes, codes } => {
                if classes.len() < 2 {
                    return Err(EncodeError::Invalid(
                        "multiclass labels need at least two classes",
                    ));
                }
                if let Some(row) = codes.iter().position(|&c| c as usize >= classes.len()) {
                    return Err(EncodeError::BadLabel {
                        row,
                        reason: "class code out of range",
                    });
                }
                let mut block = BlockWriter::new(n, 1)?;
                block.category("label", codes, classes)?;
                block.finish()
            }
            Labels::Survival { time, event } => {
                if event.len() != n {
                    return Err(EncodeError::RowCount {
                        what: "survival events",
                        expected: n,
                        found: event.len(),
                    });
                }
                finite(time, true)?;
                let mut block = BlockWriter::new(n, 2)?;
                block.number("time", KIND_NUMBER, time)?;
                block.number("event", KIND_NUMBER, &flags(event))?;
                block.finish()
            }
        }
    }
}

/// Builds one table block: header, column entries, then names, data and levels, each data
/// buffer 8-byte aligned. Offsets are relative to the block start.
pub struct BlockWriter {
    bytes: Vec<u8>,
    n_rows: usize,
    n_columns: usize,
    added: usize,
}

impl BlockWriter {
    pub fn new(n_rows: usize, n_columns: usize) -> Result<Self, EncodeError> {
        if n_rows > u32::MAX as usize || n_columns > u32::MAX as usize {
            return Err(EncodeError::TooLarge { bytes: usize::MAX });
        }
        Ok(BlockWriter {
            bytes: vec![0; HEADER_BYTES + COLUMN_BYTES * n_columns],
            n_rows,
            n_columns,
            added: 0,
        })
    }

    fn offset(&self) -> Result<u32, EncodeError> {
        u32::try_from(self.bytes.len()).map_err(|_| EncodeError::TooLarge {
            bytes: self.bytes.len(),
        })
    }

    fn align8(&mut self) {
        let padded = self.bytes.len().next_multiple_of(8);
        self.bytes.resize(padded, 0);
    }

    fn put_u32(&mut self, at: usize, value: u32) {
        self.bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
    }

    /// Writes a column entry and its name, leaving the data to the caller.
    fn entry(&mut self, name: &str, kind: u32) -> Result<usize, EncodeError> {
        if self.added == self.n_columns {
            return Err(EncodeError::Invalid("more columns than declared"));
        }
        let at = HEADER_BYTES + self.added * COLUMN_BYTES;
        self.added += 1;
        let name_offset = self.offset()?;
        self.bytes.extend_from_slice(name.as_bytes());
        self.put_u32(at, kind);
        self.put_u32(at + 4, name_offset);
        self.put_u32(at + 8, name.len() as u32);
        self.align8();
        let data_offset = self.offset()?;
        self.put_u32(at + 12, data_offset);
        Ok(at)
    }

    pub fn number(&mut self, name: &str, kind: u32, values: &[f64]) -> Result<(), EncodeError> {
        self.check_rows(values.len())?;
        self.entry(name, kind)?;
        self.extend_f64(values);
        Ok(())
    }

    /// Appends f64 values as little-endian bytes in one copy (this is the hot path of
    /// "data into the sandbox").
    fn extend_f64(&mut self, values: &[f64]) {
        #[cfg(target_endian = "little")]
        {
            // SAFETY: any f64 is 8 plain bytes; on a little-endian host they are already
            // in the ABI's byte order.
            let bytes = unsafe {
                std::slice::from_raw_parts(
                    values.as_ptr().cast::<u8>(),
                    std::mem::size_of_val(values),
                )
            };
            self.bytes.extend_from_slice(bytes);
        }
        #[cfg(not(target_endian = "little"))]
        for value in values {
            self.bytes.extend_from_slice(&value.to_le_bytes());
        }
    }

    /// A Float64 column: bulk copy, then the canonical NaN written over null slots.
    fn float64_column(
        &mut self,
        name: &str,
        kind: u32,
        array: &arrow_array::Float64Array,
    ) -> Result<(), EncodeError> {
        self.check_rows(array.len())?;
        self.entry(name, kind)?;
        let start = self.bytes.len();
        self.extend_f64(array.values());
        if let Some(nulls) = array.nulls().filter(|nulls| nulls.null_count() > 0) {
            let nan = CANONICAL_NAN.to_le_bytes();
            for (row, valid) in nulls.iter().enumerate() {
                if !valid {
                    self.bytes[start + row * 8..start + row * 8 + 8].copy_from_slice(&nan);
                }
            }
        }
        Ok(())
    }

    /// Numbers from an iterator of optional values (None and NaN become the canonical NaN).
    fn numbers_from(
        &mut self,
        name: &str,
        kind: u32,
        values: impl Iterator<Item = Option<f64>>,
    ) -> Result<(), EncodeError> {
        self.entry(name, kind)?;
        let start = self.bytes.len();
        self.bytes.reserve(self.n_rows * 8);
        for value in values {
            let value = match value {
                Some(v) if !v.is_nan() => v,
                _ => CANONICAL_NAN,
            };
            self.bytes.extend_from_slice(&value.to_le_bytes());
        }
        self.check_rows((self.bytes.len() - start) / 8)
    }

    pub fn boolean(
        &mut self,
        name: &str,
        values: impl Iterator<Item = Option<bool>>,
    ) -> Result<(), EncodeError> {
        self.entry(name, KIND_BOOLEAN)?;
        let start = self.bytes.len();
        self.bytes.extend(values.map(|v| match v {
            Some(false) => 0,
            Some(true) => 1,
            None => MISSING_BOOL,
        }));
        self.check_rows(self.bytes.len() - start)
    }

    pub fn category(
        &mut self,
        name: &str,
        codes: &[u32],
        levels: &[String],
    ) -> Result<(), EncodeError> {
        self.check_rows(codes.len())?;
        let at = self.entry(name, KIND_CATEGORY)?;
        for code in codes {
            self.bytes.extend_from_slice(&code.to_le_bytes());
        }
        self.align8();
        let table_offset = self.offset()?;
        self.put_u32(at + 16, levels.len() as u32);
        self.put_u32(at + 20, table_offset);
        let strings_start = self.bytes.len() + levels.len() * 8;
        let mut string_offset = strings_start;
        for level in levels {
            let offset = u32::try_from(string_offset).map_err(|_| EncodeError::TooLarge {
                bytes: string_offset,
            })?;
            self.bytes.extend_from_slice(&offset.to_le_bytes());
            self.bytes
                .extend_from_slice(&(level.len() as u32).to_le_bytes());
            string_offset += level.len();
        }
        for level in levels {
            self.bytes.extend_from_slice(level.as_bytes());
        }
        Ok(())
    }

    fn check_rows(&self, found: usize) -> Result<(), EncodeError> {
        if found != self.n_rows {
            return Err(EncodeError::RowCount {
                what: "a column",
                expected: self.n_rows,
                found,
            });
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<Vec<u8>, EncodeError> {
        if self.added != self.n_columns {
            return Err(EncodeError::Invalid("fewer columns than declared"));
        }
        self.align8();
        let total = self.offset()?;
        self.put_u32(0, TABLE_MAGIC);
        self.put_u32(4, self.n_rows as u32);
        self.put_u32(8, self.n_columns as u32);
        self.put_u32(12, total);
        Ok(self.bytes)
    }
}

/// How one Arrow column crosses: its ABI kind and, for categories, the shared levels.
enum ColumnPlan {
    Number(u32),
    Boolean,
    Category {
        levels: Vec<String>,
        index: HashMap<String, u32>,
    },
}

fn plan_for(name: &str, data_type: &DataType) -> Result<ColumnPlan, EncodeError> {
    use DataType::*;
    Ok(match data_type {
        Float16 | Float32 | Float64 | Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32
        | UInt64 => ColumnPlan::Number(KIND_NUMBER),
        Date32 | Date64 | Timestamp(_, _) => ColumnPlan::Number(KIND_DATE),
        Boolean => ColumnPlan::Boolean,
        Utf8 | LargeUtf8 | Utf8View => ColumnPlan::Category {
            levels: Vec::new(),
            index: HashMap::new(),
        },
        Dictionary(_, value) if matches!(value.as_ref(), Utf8 | LargeUtf8 | Utf8View) => {
            ColumnPlan::Category {
                levels: Vec::new(),
                index: HashMap::new(),
            }
        }
        other => {
            return Err(EncodeError::UnsupportedType {
                column: name.to_string(),
                data_type: other.to_string(),
            });
        }
    })
}

/// Reads any string-like array (plain or the values of a dictionary) as optional strings.
fn strings(array: &dyn Array) -> Option<Vec<Option<&str>>> {
    if let Some(a) = array.as_string_opt::<i32>() {
        return Some(a.iter().collect());
    }
    if let Some(a) = array.as_string_opt::<i64>() {
        return Some(a.iter().collect());
    }
    array.as_string_view_opt().map(|a| a.iter().collect())
}

fn intern(levels: &mut Vec<String>, index: &mut HashMap<String, u32>, level: &str) -> u32 {
    if let Some(&code) = index.get(level) {
        return code;
    }
    let code = levels.len() as u32;
    levels.push(level.to_string());
    index.insert(level.to_string(), code);
    code
}

/// Category codes of a string or dictionary column against shared levels.
fn category_codes(
    array: &ArrayRef,
    levels: &mut Vec<String>,
    index: &mut HashMap<String, u32>,
) -> Vec<u32> {
    if let Some(dictionary) = array.as_any_dictionary_opt() {
        let values = strings(dictionary.values().as_ref()).unwrap_or_default();
        // The dictionary's own entries mapped to shared codes, in dictionary order, so that
        // level order follows the dictionary rather than first appearance.
        let mapped: Vec<u32> = values
            .iter()
            .map(|value| value.map_or(MISSING_CODE, |v| intern(levels, index, v)))
            .collect();
        // Read the keys ourselves: arrow's `normalized_keys` panics on an empty dictionary.
        let keys = f64_values(dictionary.keys()).unwrap_or_default();
        return (0..array.len())
            .map(|row| match keys.get(row).copied().flatten() {
                Some(key) if !array.is_null(row) && key >= 0.0 => {
                    mapped.get(key as usize).copied().unwrap_or(MISSING_CODE)
                }
                _ => MISSING_CODE,
            })
            .collect();
    }
    strings(array.as_ref())
        .unwrap_or_default()
        .into_iter()
        .map(|value| value.map_or(MISSING_CODE, |v| intern(levels, index, v)))
        .collect()
}

macro_rules! numbers_of {
    ($array:expr, $($ty:ty => $convert:expr),+ $(,)?) => {{
        let array: &dyn Array = $array;
        let mut out: Option<Vec<Option<f64>>> = None;
        $(
            if out.is_none() {
                if let Some(a) = array.as_primitive_opt::<$ty>() {
                    let convert = $convert;
                    out = Some(a.iter().map(|v| v.map(|v| convert(v))).collect());
                }
            }
        )+
        out
    }};
}

fn f64_values(array: &dyn Array) -> Option<Vec<Option<f64>>> {
    const DAY_SECONDS: f64 = 86_400.0;
    numbers_of!(array,
        Int8Type => |v: i8| f64::from(v),
        Int16Type => |v: i16| f64::from(v),
        Int32Type => |v: i32| f64::from(v),
        Int64Type => |v: i64| v as f64,
        UInt8Type => |v: u8| f64::from(v),
        UInt16Type => |v: u16| f64::from(v),
        UInt32Type => |v: u32| f64::from(v),
        UInt64Type => |v: u64| v as f64,
        Float32Type => |v: f32| f64::from(v),
        Date32Type => |v: i32| f64::from(v),
        Date64Type => |v: i64| v as f64 / (DAY_SECONDS * 1e3),
        TimestampSecondType => |v: i64| v as f64 / DAY_SECONDS,
        TimestampMillisecondType => |v: i64| v as f64 / (DAY_SECONDS * 1e3),
        TimestampMicrosecondType => |v: i64| v as f64 / (DAY_SECONDS * 1e6),
        TimestampNanosecondType => |v: i64| v as f64 / (DAY_SECONDS * 1e9),
    )
}

/// Encodes batches that share one schema (train and test, or the blocks of an analysis)
/// into table blocks whose category columns share one list of levels, so that a code
/// means the same level in every block.
pub fn encode_tables(batches: &[&RecordBatch]) -> Result<Vec<Vec<u8>>, EncodeError> {
    let Some(first) = batches.first() else {
        return Ok(Vec::new());
    };
    let schema = first.schema();
    for batch in &batches[1..] {
        let other = batch.schema();
        if other.fields().len() != schema.fields().len() {
            return Err(EncodeError::ColumnCount {
                expected: schema.fields().len(),
                found: other.fields().len(),
            });
        }
        for (index, (expected, found)) in schema.fields().iter().zip(other.fields()).enumerate() {
            let same_kind =
                std::mem::discriminant(&plan_for(expected.name(), expected.data_type())?)
                    == std::mem::discriminant(&plan_for(found.name(), found.data_type())?);
            if expected.name() != found.name() || !same_kind {
                return Err(EncodeError::ColumnMismatch {
                    index,
                    expected: format!("{}: {}", expected.name(), expected.data_type()),
                    found: format!("{}: {}", found.name(), found.data_type()),
                });
            }
        }
    }
    let mut plans = schema
        .fields()
        .iter()
        .map(|field| plan_for(field.name(), field.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    // Levels first, over every batch, so that every block carries the complete list.
    let mut codes: Vec<Vec<Vec<u32>>> = vec![Vec::new(); batches.len()];
    for (b, batch) in batches.iter().enumerate() {
        for (plan, column) in plans.iter_mut().zip(batch.columns()) {
            if let ColumnPlan::Category { levels, index } = plan {
                codes[b].push(category_codes(column, levels, index));
            }
        }
    }
    let mut blocks = Vec::with_capacity(batches.len());
    for (b, batch) in batches.iter().enumerate() {
        let mut block = BlockWriter::new(batch.num_rows(), batch.num_columns())?;
        // One allocation for the whole block (numbers dominate; categories add their levels).
        block
            .bytes
            .reserve(batch.num_columns() * (batch.num_rows() * 8 + 64));
        let mut category = 0;
        for ((field, column), plan) in schema.fields().iter().zip(batch.columns()).zip(&plans) {
            let name = field.name();
            match plan {
                ColumnPlan::Number(kind) => {
                    if let Some(a) = column.as_primitive_opt::<Float64Type>() {
                        block.float64_column(name, *kind, a)?;
                    } else {
                        let values = f64_values(column.as_ref()).ok_or_else(|| {
                            EncodeError::UnsupportedType {
                                column: name.to_string(),
                                data_type: column.data_type().to_string(),
                            }
                        })?;
                        block.numbers_from(name, *kind, values.into_iter())?;
                    }
                }
                ColumnPlan::Boolean => {
                    let a = column
                        .as_boolean_opt()
                        .ok_or(EncodeError::Invalid("boolean column is not boolean"))?;
                    block.boolean(name, a.iter())?;
                }
                ColumnPlan::Category { levels, .. } => {
                    block.category(name, &codes[b][category], levels)?;
                    category += 1;
                }
            }
        }
        blocks.push(block.finish()?);
    }
    Ok(blocks)
}

/// Why a guest's output was rejected. `Display` is detailed (for dummy-data runs); the
/// host shows a fixed text on real data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OutputError {
    #[error("returned {found} values, expected exactly {expected}")]
    WrongLength { expected: usize, found: usize },
    #[error(
        "output pointer {ptr:#x} + {bytes} bytes is outside linear memory ({memory} bytes) or misaligned"
    )]
    OutOfBounds { ptr: u64, bytes: u64, memory: u64 },
    #[error("value at index {index} is not finite")]
    NotFinite { index: usize },
    #[error("probability at index {index} is outside [0, 1]")]
    OutOfRange { index: usize },
    #[error("probabilities of row {row} sum to {sum}, not 1")]
    NotNormalised { row: usize, sum: f64 },
}

/// Checks predictions for a task: all finite; probabilities in [0, 1]; each multiclass row
/// summing to 1 within 1e-6 per class.
pub fn validate_predictions(task: Task, n_rows: usize, values: &[f64]) -> Result<(), OutputError> {
    let expected = n_rows * task.outputs_per_row();
    if values.len() != expected {
        return Err(OutputError::WrongLength {
            expected,
            found: values.len(),
        });
    }
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(OutputError::NotFinite { index });
    }
    if matches!(task, Task::Binary | Task::Multiclass { .. })
        && let Some(index) = values.iter().position(|v| !(0.0..=1.0).contains(v))
    {
        return Err(OutputError::OutOfRange { index });
    }
    if let Task::Multiclass { n_classes } = task {
        let tolerance = 1e-6 * f64::from(n_classes.max(1));
        for (row, chunk) in values.chunks(n_classes.max(1) as usize).enumerate() {
            let sum: f64 = chunk.iter().sum();
            if (sum - 1.0).abs() > tolerance {
                return Err(OutputError::NotNormalised { row, sum });
            }
        }
    }
    Ok(())
}

/// Checks an analysis vector: exact length, all finite (clamping is the scorer's job).
pub fn validate_analysis(expected: usize, values: &[f64]) -> Result<(), OutputError> {
    if values.len() != expected {
        return Err(OutputError::WrongLength {
            expected,
            found: values.len(),
        });
    }
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(OutputError::NotFinite { index }),
        None => Ok(()),
    }
}
