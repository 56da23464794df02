//! The host side of the ABI (`ABI.md`): Arrow tables and labels encoded as table blocks,
//! the call record, and the validation of what a guest returns.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, BooleanArray, Float64Array, RecordBatch};
use arrow_buffer::NullBuffer;
use arrow_schema::DataType;

/// The newest ABI version this host speaks. The host writes the version the *module*
/// declared into every call record, so that a module built for an older version sees the
/// number it was built for.
pub const ABI_VERSION: u32 = 2;
/// The oldest ABI version this host still runs (version 1 modules keep working).
pub const MIN_ABI_VERSION: u32 = 1;
/// The first ABI version whose `predict` call can carry a survival time grid.
pub const CURVES_ABI_VERSION: u32 = 2;
/// Most grid times one job may ask for: far beyond any scoring grid, and small enough that
/// `rows × grid_len` cannot surprise anyone.
pub const MAX_GRID_LEN: usize = 1 << 16;
/// How much a survival curve may rise from one grid time to the next and still count as
/// non-increasing: `S0(t)^exp(η)` computed in floating point can wobble by an ulp or two.
pub const CURVE_TOLERANCE: f64 = 1e-9;
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
    /// Version 2: address of the survival time grid (predict of a curves job only, else 0).
    pub const GRID: usize = 48;
    /// Version 2: number of f64 grid times (predict of a curves job only, else 0).
    pub const GRID_LEN: usize = 52;
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

/// Builds one table block column by column: header, column entries, then names, data and
/// levels, each data buffer 8-byte aligned. Offsets are relative to the block start. The
/// values are kept until [`BlockWriter::finish`], which lays the block out with the same
/// `BlockPlan` the host uses for Arrow tables.
pub struct BlockWriter {
    plan: BlockPlan<'static>,
}

impl BlockWriter {
    pub fn new(n_rows: usize, n_columns: usize) -> Result<Self, EncodeError> {
        Ok(BlockWriter {
            plan: BlockPlan::new(n_rows, n_columns)?,
        })
    }

    /// A number (or date) column, written exactly as given.
    pub fn number(&mut self, name: &str, kind: u32, values: &[f64]) -> Result<(), EncodeError> {
        self.plan.check_rows(values.len())?;
        self.plan.push(
            Cow::Owned(name.to_string()),
            kind,
            ColumnValues::Numbers(Cow::Owned(values.to_vec())),
        )
    }

    pub fn boolean(
        &mut self,
        name: &str,
        values: impl Iterator<Item = Option<bool>>,
    ) -> Result<(), EncodeError> {
        let bytes: Vec<u8> = values
            .map(|v| match v {
                Some(false) => 0,
                Some(true) => 1,
                None => MISSING_BOOL,
            })
            .collect();
        self.plan.check_rows(bytes.len())?;
        self.plan.push(
            Cow::Owned(name.to_string()),
            KIND_BOOLEAN,
            ColumnValues::BooleanBytes(bytes),
        )
    }

    pub fn category(
        &mut self,
        name: &str,
        codes: &[u32],
        levels: &[String],
    ) -> Result<(), EncodeError> {
        self.plan.check_rows(codes.len())?;
        self.plan.push(
            Cow::Owned(name.to_string()),
            KIND_CATEGORY,
            ColumnValues::Category {
                codes: codes.to_vec(),
                levels: levels.into(),
            },
        )
    }

    pub fn finish(self) -> Result<Vec<u8>, EncodeError> {
        self.plan.check_complete()?;
        let mut bytes = vec![0; self.plan.len()];
        self.plan.write(&mut bytes);
        Ok(bytes)
    }
}

/// Where one column's values come from. Arrow arrays are borrowed and converted while the
/// block is written, so that a block goes from Arrow to its destination in one pass.
enum ColumnValues<'a> {
    /// Written exactly as given (labels).
    Numbers(Cow<'a, [f64]>),
    /// Every NaN and every null becomes the canonical NaN.
    Float64(&'a Float64Array),
    /// Integers, `f32`, dates and timestamps as f64; nulls become the canonical NaN.
    Converted(&'a dyn Array),
    Boolean(&'a BooleanArray),
    /// Already encoded: 0, 1 or [`MISSING_BOOL`].
    BooleanBytes(Vec<u8>),
    Category {
        codes: Vec<u32>,
        /// Shared by every block of one encoding.
        levels: Arc<[String]>,
    },
}

struct PlannedColumn<'a> {
    name: Cow<'a, str>,
    kind: u32,
    values: ColumnValues<'a>,
    name_offset: usize,
    data_offset: usize,
    /// Category columns: the `(offset, len)` table of levels, then the level strings.
    levels_offset: usize,
}

/// The layout of one table block, computed before any byte is written (so that the host can
/// size a shared mapping and write every block straight into it). All size checks happen
/// here; [`BlockPlan::write`] cannot fail.
pub(crate) struct BlockPlan<'a> {
    n_rows: usize,
    n_columns: usize,
    columns: Vec<PlannedColumn<'a>>,
    /// End of the last byte placed so far.
    end: usize,
}

fn align8(offset: usize) -> usize {
    offset.next_multiple_of(8)
}

fn value_width(kind: u32) -> usize {
    match kind {
        KIND_BOOLEAN => 1,
        KIND_CATEGORY => 4,
        _ => 8,
    }
}

impl<'a> BlockPlan<'a> {
    fn new(n_rows: usize, n_columns: usize) -> Result<Self, EncodeError> {
        if n_rows > u32::MAX as usize || n_columns > u32::MAX as usize {
            return Err(EncodeError::TooLarge { bytes: usize::MAX });
        }
        let end = n_columns
            .checked_mul(COLUMN_BYTES)
            .and_then(|entries| entries.checked_add(HEADER_BYTES))
            .ok_or(EncodeError::TooLarge { bytes: usize::MAX })?;
        Ok(BlockPlan {
            n_rows,
            n_columns,
            columns: Vec::with_capacity(n_columns.min(1 << 16)),
            end,
        })
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

    fn check_complete(&self) -> Result<(), EncodeError> {
        if self.columns.len() != self.n_columns {
            return Err(EncodeError::Invalid("fewer columns than declared"));
        }
        Ok(())
    }

    /// Places a column after the previous one: its name, then (8-aligned) its values, then
    /// for a category (8-aligned) its levels.
    fn push(
        &mut self,
        name: Cow<'a, str>,
        kind: u32,
        values: ColumnValues<'a>,
    ) -> Result<(), EncodeError> {
        if self.columns.len() == self.n_columns {
            return Err(EncodeError::Invalid("more columns than declared"));
        }
        let too_large = || EncodeError::TooLarge { bytes: usize::MAX };
        let name_offset = self.end;
        let data_offset = align8(name_offset.checked_add(name.len()).ok_or_else(too_large)?);
        let mut end = data_offset
            .checked_add(self.n_rows * value_width(kind))
            .ok_or_else(too_large)?;
        let mut levels_offset = 0;
        if let ColumnValues::Category { levels, .. } = &values {
            levels_offset = align8(end);
            end = levels
                .iter()
                .try_fold(levels_offset + levels.len() * 8, |at, level| {
                    at.checked_add(level.len())
                })
                .ok_or_else(too_large)?;
        }
        if align8(end) > u32::MAX as usize {
            return Err(EncodeError::TooLarge { bytes: align8(end) });
        }
        self.columns.push(PlannedColumn {
            name,
            kind,
            values,
            name_offset,
            data_offset,
            levels_offset,
        });
        self.end = end;
        Ok(())
    }

    /// The block's size in bytes (`total_bytes`).
    pub(crate) fn len(&self) -> usize {
        align8(self.end)
    }

    /// Writes the block into `out`, which must be exactly [`BlockPlan::len`] bytes. Every
    /// byte is written, padding and reserved fields as zeros, so `out` may hold anything
    /// before.
    pub(crate) fn write(&self, out: &mut [u8]) {
        assert_eq!(
            out.len(),
            self.len(),
            "block destination has the wrong size"
        );
        let mut scratch = Vec::new();
        let copied: io::Result<()> = self.emit(&mut scratch, &mut |at, bytes| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            Ok(())
        });
        debug_assert!(copied.is_ok(), "copying into a slice cannot fail");
    }

    /// Produces the block as consecutive pieces, each handed to `put` with its offset in
    /// the block: header and entries, then per column its name, its values
    /// [`PIECE_ROWS`] rows at a time, and its levels, then the final padding. Every byte of
    /// the block is in exactly one piece (padding and reserved fields as zeros). Pieces
    /// are built in `scratch`, which stays small enough to stay in cache, so a block can
    /// go to a file by `pwrite` without ever being whole in memory.
    pub(crate) fn emit(
        &self,
        scratch: &mut Vec<u8>,
        put: &mut dyn FnMut(usize, &[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        debug_assert_eq!(self.columns.len(), self.n_columns, "an incomplete block");
        let u32le = |buffer: &mut Vec<u8>, value: usize| {
            buffer.extend_from_slice(&(value as u32).to_le_bytes());
        };
        scratch.clear();
        for value in [
            TABLE_MAGIC as usize,
            self.n_rows,
            self.n_columns,
            self.len(),
        ] {
            u32le(scratch, value);
        }
        for column in &self.columns {
            let (n_levels, levels_offset) = match &column.values {
                ColumnValues::Category { levels, .. } => (levels.len(), column.levels_offset),
                _ => (0, 0),
            };
            for value in [
                column.kind as usize,
                column.name_offset,
                column.name.len(),
                column.data_offset,
                n_levels,
                levels_offset,
            ] {
                u32le(scratch, value);
            }
            scratch.extend_from_slice(&[0; 8]);
        }
        put(0, scratch)?;
        for column in &self.columns {
            // The name, then zeros up to the 8-aligned values.
            scratch.clear();
            scratch.extend_from_slice(column.name.as_bytes());
            scratch.resize(column.data_offset - column.name_offset, 0);
            put(column.name_offset, scratch)?;
            let width = value_width(column.kind);
            for start in (0..self.n_rows).step_by(PIECE_ROWS) {
                let rows = PIECE_ROWS.min(self.n_rows - start);
                scratch.clear();
                scratch.resize(rows * width, 0);
                column.values.write_rows(start, width, scratch);
                put(column.data_offset + start * width, scratch)?;
            }
            if let ColumnValues::Category { levels, .. } = &column.values {
                // Zeros up to the 8-aligned `(offset, len)` table, then the strings.
                let data_end = column.data_offset + self.n_rows * width;
                scratch.clear();
                scratch.resize(column.levels_offset - data_end, 0);
                let mut string_at = column.levels_offset + levels.len() * 8;
                for level in levels.iter() {
                    u32le(scratch, string_at);
                    u32le(scratch, level.len());
                    string_at += level.len();
                }
                for level in levels.iter() {
                    scratch.extend_from_slice(level.as_bytes());
                }
                put(data_end, scratch)?;
            }
        }
        scratch.clear();
        scratch.resize(self.len() - self.end, 0);
        put(self.end, scratch)
    }
}

/// Rows per piece of a column's values (512 KiB of f64).
const PIECE_ROWS: usize = 1 << 16;

impl ColumnValues<'_> {
    /// Writes rows `start..start + out.len() / width` into `out`.
    fn write_rows(&self, start: usize, width: usize, out: &mut [u8]) {
        let rows = out.len() / width;
        match self {
            ColumnValues::Numbers(values) => {
                for (slot, value) in as_words(out).iter_mut().zip(&values[start..start + rows]) {
                    *slot = value.to_le_bytes();
                }
            }
            ColumnValues::Float64(array) => {
                let piece = Float64Array::slice(array, start, rows);
                let values = piece.values();
                write_numbers(out, piece.nulls(), |row| values[row]);
            }
            ColumnValues::Converted(array) => {
                write_converted(array.slice(start, rows).as_ref(), out)
            }
            ColumnValues::Boolean(array) => {
                write_booleans(&BooleanArray::slice(array, start, rows), out);
            }
            ColumnValues::BooleanBytes(bytes) => out.copy_from_slice(&bytes[start..start + rows]),
            ColumnValues::Category { codes, .. } => {
                for (slot, code) in out.chunks_exact_mut(4).zip(&codes[start..start + rows]) {
                    slot.copy_from_slice(&code.to_le_bytes());
                }
            }
        }
    }
}

/// A column's bytes as 8-byte little-endian slots.
fn as_words(data: &mut [u8]) -> &mut [[u8; 8]] {
    data.as_chunks_mut::<8>().0
}

/// Writes `value(row)` for every row as a little-endian f64, with the canonical NaN for every
/// null and every NaN. Works 64 rows at a time on the validity bitmap, so that columns
/// without nulls (and the valid stretches of the others) stay a straight, vectorisable loop:
/// this is the hot path of "data into the sandbox".
fn write_numbers(data: &mut [u8], nulls: Option<&NullBuffer>, value: impl Fn(usize) -> f64) {
    let canonical = |v: f64| if v.is_nan() { CANONICAL_NAN } else { v };
    let words = as_words(data);
    let n = words.len();
    match nulls.filter(|nulls| nulls.null_count() > 0) {
        None => {
            for (row, slot) in words.iter_mut().enumerate() {
                *slot = canonical(value(row)).to_le_bytes();
            }
        }
        Some(nulls) => {
            for (chunk, valid) in nulls.inner().bit_chunks().iter_padded().enumerate() {
                let start = chunk * 64;
                let end = (start + 64).min(n);
                for (bit, row) in (start..end).enumerate() {
                    let v = if valid >> bit & 1 == 1 {
                        canonical(value(row))
                    } else {
                        CANONICAL_NAN
                    };
                    words[row] = v.to_le_bytes();
                }
            }
        }
    }
}

fn write_booleans(array: &BooleanArray, data: &mut [u8]) {
    let values = array.values().bit_chunks();
    let valid: Box<dyn Iterator<Item = u64>> = match array.nulls() {
        Some(nulls) => Box::new(nulls.inner().bit_chunks().iter_padded()),
        None => Box::new(std::iter::repeat(u64::MAX)),
    };
    for ((chunk, (bits, valid)), out) in values
        .iter_padded()
        .zip(valid)
        .enumerate()
        .zip(data.chunks_mut(64))
    {
        let _ = chunk;
        for (bit, slot) in out.iter_mut().enumerate() {
            *slot = if valid >> bit & 1 == 0 {
                MISSING_BOOL
            } else {
                (bits >> bit & 1) as u8
            };
        }
    }
}

/// The Arrow types that cross as converted numbers, and how: one list for both the
/// planning check and the conversion.
macro_rules! converted_types {
    ($array:expr, $data:expr, $($ty:ty => $convert:expr),+ $(,)?) => {{
        let array: &dyn Array = $array;
        let mut data: Option<&mut [u8]> = $data;
        let mut done = false;
        $(
            if !done && let Some(a) = array.as_primitive_opt::<$ty>() {
                done = true;
                if let Some(data) = data.take() {
                    let values = a.values();
                    let convert = $convert;
                    write_numbers(data, a.nulls(), |row| convert(values[row]));
                }
            }
        )+
        done
    }};
}

/// Writes (or, without `data`, only checks it can write) a column that is not Float64.
fn convert_numbers(array: &dyn Array, data: Option<&mut [u8]>) -> bool {
    const DAY_SECONDS: f64 = 86_400.0;
    converted_types!(array, data,
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

fn write_converted(array: &dyn Array, data: &mut [u8]) {
    // Planning checked the type; a mismatch here would leave the column zeroed.
    let converted = convert_numbers(array, Some(data));
    debug_assert!(converted, "column type was checked when planning");
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

/// Dictionary keys as indices (`None` for nulls and negative keys).
fn dictionary_keys(keys: &dyn Array) -> Vec<Option<usize>> {
    macro_rules! keys_of {
        ($($ty:ty),+) => {{
            $(
                if let Some(a) = keys.as_primitive_opt::<$ty>() {
                    return a.iter().map(|k| k.and_then(|k| usize::try_from(k).ok())).collect();
                }
            )+
            Vec::new()
        }};
    }
    keys_of!(
        Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type
    )
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
        let keys = dictionary_keys(dictionary.keys());
        return (0..array.len())
            .map(|row| match keys.get(row).copied().flatten() {
                Some(key) if !array.is_null(row) => {
                    mapped.get(key).copied().unwrap_or(MISSING_CODE)
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

/// Plans the blocks of batches that share one schema (train and test, or the blocks of an
/// analysis): every check and the category levels, shared by all blocks so that a code
/// means the same level in every block. Nothing is copied yet.
pub(crate) fn plan_tables<'a>(
    batches: &[&'a RecordBatch],
) -> Result<Vec<BlockPlan<'a>>, EncodeError> {
    let Some(first) = batches.first() else {
        return Ok(Vec::new());
    };
    let schema = first.schema_ref();
    for batch in &batches[1..] {
        let other = batch.schema_ref();
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
    let shared_levels: Vec<Option<Arc<[String]>>> = plans
        .iter()
        .map(|plan| match plan {
            ColumnPlan::Category { levels, .. } => Some(levels.as_slice().into()),
            _ => None,
        })
        .collect();
    let mut blocks = Vec::with_capacity(batches.len());
    for (batch, mut block_codes) in batches.iter().zip(codes) {
        let mut block = BlockPlan::new(batch.num_rows(), batch.num_columns())?;
        block_codes.reverse();
        for (((field, column), plan), levels) in schema
            .fields()
            .iter()
            .zip(batch.columns())
            .zip(&plans)
            .zip(&shared_levels)
        {
            let name = Cow::Borrowed(field.name().as_str());
            block.check_rows(column.len())?;
            match plan {
                ColumnPlan::Number(kind) => {
                    let values = if let Some(a) = column.as_primitive_opt::<Float64Type>() {
                        ColumnValues::Float64(a)
                    } else if convert_numbers(column.as_ref(), None) {
                        ColumnValues::Converted(column.as_ref())
                    } else {
                        return Err(EncodeError::UnsupportedType {
                            column: field.name().to_string(),
                            data_type: column.data_type().to_string(),
                        });
                    };
                    block.push(name, *kind, values)?;
                }
                ColumnPlan::Boolean => {
                    let a = column
                        .as_boolean_opt()
                        .ok_or(EncodeError::Invalid("boolean column is not boolean"))?;
                    block.push(name, KIND_BOOLEAN, ColumnValues::Boolean(a))?;
                }
                ColumnPlan::Category { .. } => {
                    let codes = block_codes.pop().unwrap_or_default();
                    let levels = levels.clone().unwrap_or_else(|| Arc::from([]));
                    block.push(
                        name,
                        KIND_CATEGORY,
                        ColumnValues::Category { codes, levels },
                    )?;
                }
            }
        }
        blocks.push(block);
    }
    Ok(blocks)
}

/// Encodes batches that share one schema (train and test, or the blocks of an analysis)
/// into table blocks whose category columns share one list of levels, so that a code
/// means the same level in every block.
pub fn encode_tables(batches: &[&RecordBatch]) -> Result<Vec<Vec<u8>>, EncodeError> {
    Ok(plan_tables(batches)?
        .iter()
        .map(|plan| {
            let mut bytes = vec![0; plan.len()];
            plan.write(&mut bytes);
            bytes
        })
        .collect())
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
    #[error("survival probability of row {row} at grid time {time} (index {index}) is not finite")]
    CurveNotFinite { row: usize, index: usize, time: f64 },
    #[error(
        "survival probability of row {row} at grid time {time} (index {index}) is outside [0, 1]"
    )]
    CurveOutOfRange { row: usize, index: usize, time: f64 },
    #[error("survival curve of row {row} rises at grid time {time} (index {index})")]
    CurveRises { row: usize, index: usize, time: f64 },
}

/// A survival time grid the host cannot send: the caller's mistake, caught before any child
/// starts (a guest must be able to rely on the grid's shape).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GridError {
    #[error("a survival grid is only for survival tasks, not {task:?}")]
    NotSurvival { task: Task },
    #[error("the survival grid is empty (ask for risk scores with no grid instead)")]
    Empty,
    #[error("the survival grid has {len} times, more than the {max} the host sends")]
    TooLong { len: usize, max: usize },
    #[error("survival grid time at index {index} is not finite")]
    NotFinite { index: usize },
    #[error("survival grid time at index {index} is {time}, not greater than 0")]
    NotPositive { index: usize, time: f64 },
    #[error("survival grid time at index {index} ({time}) does not exceed the one before it")]
    NotIncreasing { index: usize, time: f64 },
}

/// Checks a survival time grid for a job of `task`: survival only, 1 to [`MAX_GRID_LEN`]
/// times, each finite and greater than 0, strictly increasing (ABI.md, "The call record").
pub fn validate_grid(task: Task, grid: &[f64]) -> Result<(), GridError> {
    if task != Task::Survival {
        return Err(GridError::NotSurvival { task });
    }
    if grid.is_empty() {
        return Err(GridError::Empty);
    }
    if grid.len() > MAX_GRID_LEN {
        return Err(GridError::TooLong {
            len: grid.len(),
            max: MAX_GRID_LEN,
        });
    }
    for (index, &time) in grid.iter().enumerate() {
        if !time.is_finite() {
            return Err(GridError::NotFinite { index });
        }
        if time <= 0.0 {
            return Err(GridError::NotPositive { index, time });
        }
        if index > 0 && time <= grid[index - 1] {
            return Err(GridError::NotIncreasing { index, time });
        }
    }
    Ok(())
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

/// Checks survival curves (ABI version 2): `n_rows × grid.len()` values, row-major
/// (`values[i * grid.len() + j]` is S(grid\[j\] | row i)), each finite and in [0, 1], and
/// each row non-increasing up to [`CURVE_TOLERANCE`]. Errors name the row and the grid
/// time, so that a competitor can find the bug on dummy data.
pub fn validate_survival_curves(
    n_rows: usize,
    grid: &[f64],
    values: &[f64],
) -> Result<(), OutputError> {
    let expected = n_rows.saturating_mul(grid.len());
    if values.len() != expected {
        return Err(OutputError::WrongLength {
            expected,
            found: values.len(),
        });
    }
    if grid.is_empty() {
        return Ok(());
    }
    for (row, curve) in values.chunks_exact(grid.len()).enumerate() {
        for (index, (&value, &time)) in curve.iter().zip(grid).enumerate() {
            if !value.is_finite() {
                return Err(OutputError::CurveNotFinite { row, index, time });
            }
            if !(0.0..=1.0).contains(&value) {
                return Err(OutputError::CurveOutOfRange { row, index, time });
            }
            if index > 0 && value > curve[index - 1] + CURVE_TOLERANCE {
                return Err(OutputError::CurveRises { row, index, time });
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{
        ArrayRef, BooleanArray, Float32Array, Int32Array, LargeStringArray, StringArray,
        TimestampMillisecondArray, UInt8Array,
    };

    use super::*;

    fn mixed(n: usize) -> RecordBatch {
        let maybe = |i: usize, every: usize| !i.is_multiple_of(every);
        let columns: Vec<(&str, ArrayRef)> = vec![
            (
                "x",
                Arc::new(Float64Array::from_iter(
                    (0..n).map(|i| maybe(i, 7).then_some(i as f64 - 3.5)),
                )),
            ),
            (
                "a_longer_name",
                Arc::new(Float32Array::from_iter(
                    (0..n).map(|i| maybe(i, 5).then_some(i as f32)),
                )),
            ),
            (
                "i",
                Arc::new(Int32Array::from_iter(
                    (0..n).map(|i| maybe(i, 3).then_some(i as i32)),
                )),
            ),
            (
                "u",
                Arc::new(UInt8Array::from_iter_values((0..n).map(|i| i as u8))),
            ),
            (
                "t",
                Arc::new(TimestampMillisecondArray::from_iter(
                    (0..n).map(|i| maybe(i, 4).then_some(i as i64 * 1000)),
                )),
            ),
            (
                "b",
                Arc::new(BooleanArray::from_iter(
                    (0..n).map(|i| maybe(i, 6).then_some(i % 2 == 0)),
                )),
            ),
            (
                "s",
                Arc::new(StringArray::from_iter(
                    (0..n).map(|i| maybe(i, 9).then(|| ["p", "qq", "rrr"][i % 3])),
                )),
            ),
            (
                "l",
                Arc::new(LargeStringArray::from_iter_values(
                    (0..n).map(|i| ["m", "n"][i % 2]),
                )),
            ),
        ];
        RecordBatch::try_from_iter(columns).unwrap()
    }

    #[test]
    fn planned_blocks_overwrite_every_byte_of_their_destination() {
        let batch = mixed(150);
        let (head, tail) = (batch.slice(0, 61), batch.slice(61, 89));
        for plan in plan_tables(&[&head, &tail]).unwrap() {
            let mut zeroed = vec![0u8; plan.len()];
            let mut dirty = vec![0xA5u8; plan.len()];
            plan.write(&mut zeroed);
            plan.write(&mut dirty);
            assert_eq!(zeroed, dirty);
        }
    }

    #[test]
    fn block_writer_and_planned_blocks_agree() {
        let batch = mixed(20);
        let planned = encode_tables(&[&batch]).unwrap().remove(0);
        let mut writer = BlockWriter::new(20, batch.num_columns()).unwrap();
        let numbers = |column: usize| -> Vec<f64> {
            let mut data = vec![0u8; 20 * 8];
            let array = batch.column(column);
            match array.as_primitive_opt::<Float64Type>() {
                Some(a) => write_numbers(&mut data, a.nulls(), |row| a.values()[row]),
                None => write_converted(array.as_ref(), &mut data),
            }
            data.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect()
        };
        writer.number("x", KIND_NUMBER, &numbers(0)).unwrap();
        writer
            .number("a_longer_name", KIND_NUMBER, &numbers(1))
            .unwrap();
        writer.number("i", KIND_NUMBER, &numbers(2)).unwrap();
        writer.number("u", KIND_NUMBER, &numbers(3)).unwrap();
        writer.number("t", KIND_DATE, &numbers(4)).unwrap();
        writer
            .boolean("b", batch.column(5).as_boolean().iter())
            .unwrap();
        let (mut levels, mut index) = (Vec::new(), HashMap::new());
        let codes = category_codes(batch.column(6), &mut levels, &mut index);
        writer.category("s", &codes, &levels).unwrap();
        let (mut levels, mut index) = (Vec::new(), HashMap::new());
        let codes = category_codes(batch.column(7), &mut levels, &mut index);
        writer.category("l", &codes, &levels).unwrap();
        assert_eq!(writer.finish().unwrap(), planned);
    }

    #[test]
    fn every_nan_and_null_becomes_the_canonical_nan() {
        let odd_nan = f64::from_bits(0xFFF8_0000_DEAD_BEEF);
        let batch = RecordBatch::try_from_iter([(
            "x",
            Arc::new(Float64Array::from(vec![
                Some(1.0),
                Some(odd_nan),
                None,
                Some(f64::NAN),
            ])) as ArrayRef,
        )])
        .unwrap();
        let block = encode_tables(&[&batch]).unwrap().remove(0);
        let data_offset = u32::from_le_bytes(block[28..32].try_into().unwrap()) as usize;
        let bits: Vec<u64> = block[data_offset..data_offset + 32]
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let canonical = CANONICAL_NAN.to_bits();
        assert_eq!(bits, [1.0f64.to_bits(), canonical, canonical, canonical]);
    }

    #[test]
    fn unsupported_and_mismatched_columns_are_refused_when_planning() {
        let half =
            RecordBatch::try_from_iter([("h", arrow_array::new_null_array(&DataType::Float16, 2))])
                .unwrap();
        // Float16 plans as a number but has no conversion: refused, naming the column.
        let error = plan_tables(&[&half]).err().expect("refused");
        assert!(error.to_string().contains("`h`"), "{error}");
        let a = mixed(3);
        let b = mixed(3).project(&[1, 0, 2, 3, 4, 5, 6, 7]).unwrap();
        assert!(matches!(
            plan_tables(&[&a, &b]).err(),
            Some(EncodeError::ColumnMismatch { index: 0, .. })
        ));
    }
    #[test]
    fn grids_must_be_finite_positive_and_strictly_increasing() {
        assert_eq!(validate_grid(Task::Survival, &[0.5, 1.0, 30.0]), Ok(()));
        let error = |grid: &[f64]| validate_grid(Task::Survival, grid).unwrap_err();
        assert_eq!(error(&[]), GridError::Empty);
        assert_eq!(error(&[1.0, f64::NAN]), GridError::NotFinite { index: 1 });
        assert_eq!(error(&[f64::INFINITY]), GridError::NotFinite { index: 0 });
        assert_eq!(
            error(&[0.0]),
            GridError::NotPositive {
                index: 0,
                time: 0.0
            }
        );
        assert_eq!(
            error(&[1.0, 2.0, 2.0]),
            GridError::NotIncreasing {
                index: 2,
                time: 2.0
            }
        );
        assert!(matches!(
            error(&vec![1.0; MAX_GRID_LEN + 1]),
            GridError::TooLong { .. }
        ));
        assert_eq!(
            validate_grid(Task::Regression, &[1.0]),
            Err(GridError::NotSurvival {
                task: Task::Regression
            })
        );
    }

    #[test]
    fn curves_are_checked_row_by_row_and_named_by_grid_time() {
        let grid = [1.0, 2.0, 4.0];
        let good = [1.0, 0.5, 0.0, 0.9, 0.9, 0.9];
        assert_eq!(validate_survival_curves(2, &grid, &good), Ok(()));
        assert_eq!(
            validate_survival_curves(2, &grid, &good[..5]),
            Err(OutputError::WrongLength {
                expected: 6,
                found: 5
            })
        );
        let with = |at: usize, value: f64| {
            let mut values = good.to_vec();
            values[at] = value;
            validate_survival_curves(2, &grid, &values)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            with(4, 0.95),
            "survival curve of row 1 rises at grid time 2 (index 1)"
        );
        assert_eq!(
            with(2, -1e-300),
            "survival probability of row 0 at grid time 4 (index 2) is outside [0, 1]"
        );
        assert_eq!(
            with(3, f64::NAN),
            "survival probability of row 1 at grid time 1 (index 0) is not finite"
        );
        // Float noise below the tolerance is not a rise.
        let mut noisy = good;
        noisy[5] = 0.9 + CURVE_TOLERANCE / 2.0;
        assert_eq!(validate_survival_curves(2, &grid, &noisy), Ok(()));
    }
}
