//! Reading and writing tables: CSV, Parquet and Arrow IPC through polars, handed to the rest
//! of the workspace as one arrow-rs [`RecordBatch`].
//!
//! # The hand-off from polars to arrow-rs
//! polars 0.55 keeps its own Arrow implementation (`polars-arrow`). We move each column across
//! with the Arrow C data interface: polars exports the array's buffers, arrow-rs imports the
//! same buffers and takes over their release callback. Nothing is copied or re-encoded, which
//! matters at the 1 GB scale (an IPC round trip would serialise and parse every buffer and
//! hold two copies at once). The only `unsafe` is the move of the two `#[repr(C)]` structs
//! that the C data interface defines identically in both crates.
//!
//! # CSV typing
//! CSV has no types. [`load_table`] reads every CSV column as text, so that [`validate`]
//! can name each row whose text is not of the declared type. [`load_with_manifest`] first
//! tries polars' fast typed parser for the manifest's `number`/`integer` columns and falls
//! back to all-text when any cell does not parse, so clean files take the fast path and
//! dirty files still get exact row numbers.
//!
//! Before polars sees a CSV, one pass over the bytes refuses what it would misread or choke
//! on: an empty file, binary content, a file that is not UTF-8 (with the line, and a hint
//! when it looks like GBK/GB18030), and a line longer than [`LoadOptions::max_line_bytes`].
//!
//! [`validate`]: fn@crate::validate

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, make_array, new_empty_array};
use arrow::datatypes::{Field as ArrowField, Schema};
use arrow::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use polars::prelude::{
    CompatLevel, CsvEncoding, CsvReadOptions, CsvWriter, DataFrame, DataType as PlDataType,
    IpcReader, IpcWriter, NullValues, ParquetReader, ParquetWriter, PlSmallStr, Schema as PlSchema,
    SerReader, SerWriter, Series,
};
use rayon::prelude::*;

use crate::manifest::{FieldType, Manifest};

/// Table file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Comma-separated values, UTF-8, with a header row.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// Arrow IPC file format (Feather v2).
    ArrowIpc,
}

impl Format {
    /// The format named by a file extension (`csv`, `parquet`/`pq`, `arrow`/`feather`/`ipc`).
    pub fn from_extension(path: &Path) -> Option<Format> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "csv" => Some(Format::Csv),
            "parquet" | "pq" => Some(Format::Parquet),
            "arrow" | "feather" | "ipc" => Some(Format::ArrowIpc),
            _ => None,
        }
    }

    /// The format announced by a file's first bytes (Parquet and Arrow IPC have magic
    /// numbers; anything else is treated as CSV).
    pub fn sniff(bytes: &[u8]) -> Format {
        if bytes.starts_with(b"PAR1") {
            Format::Parquet
        } else if bytes.starts_with(b"ARROW1") {
            Format::ArrowIpc
        } else {
            Format::Csv
        }
    }
}

/// Limits and dialect for loading.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Longest CSV line accepted, in bytes (default 1 MiB). A longer line is refused before
    /// parsing: it is either not a table or a field stuffed with free text.
    pub max_line_bytes: usize,
    /// CSV field separator (default `,`).
    pub separator: u8,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            max_line_bytes: 1 << 20,
            separator: b',',
        }
    }
}

/// Why a table could not be loaded. Every variant names the file (or `<bytes>`).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be opened or read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Zero bytes, or no header.
    #[error("{file}: the file is empty")]
    Empty {
        /// The file.
        file: String,
    },
    /// Contains NUL bytes: not a text table.
    #[error(
        "{file}: not a CSV file (binary content at byte {offset}); expected CSV, Parquet or Arrow IPC"
    )]
    Binary {
        /// The file.
        file: String,
        /// Offset of the first NUL byte.
        offset: usize,
    },
    /// Not valid UTF-8.
    #[error("{file}: line {line}: not valid UTF-8{hint}; save the file as UTF-8")]
    Encoding {
        /// The file.
        file: String,
        /// 1-based line of the first invalid byte.
        line: usize,
        /// A guess at the real encoding, e.g. " (looks like GBK/GB18030)".
        hint: String,
    },
    /// A line longer than the limit.
    #[error("{file}: line {line} is longer than {limit} bytes; a table row should be much shorter")]
    LineTooLong {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The reader refused the content.
    #[error("{file}: not a readable {format} file: {message}")]
    Malformed {
        /// The file.
        file: String,
        /// The format tried.
        format: &'static str,
        /// The reader's explanation.
        message: String,
    },
    /// The columns could not be handed over to arrow-rs.
    #[error("{file}: cannot convert column `{column}` to Arrow: {message}")]
    Convert {
        /// The file.
        file: String,
        /// The column.
        column: String,
        /// Why.
        message: String,
    },
}

/// Why a table could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// No known format for this file name.
    #[error("{0}: unknown table format; use .csv, .parquet or .arrow")]
    UnknownFormat(String),
    /// The file could not be created or written.
    #[error("{file}: cannot write: {source}")]
    Io {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The writer failed.
    #[error("{file}: cannot write table: {message}")]
    Encode {
        /// The file.
        file: String,
        /// Why.
        message: String,
    },
}

/// A table read with a manifest, and whether polars' typed fast path was taken.
#[derive(Debug, Clone)]
pub struct LoadedTable {
    /// The table.
    pub batch: RecordBatch,
    /// The detected format.
    pub format: Format,
    /// `true` when numeric CSV columns were parsed by polars directly; `false` when they are
    /// text (fallback, or not CSV).
    pub typed_fast_path: bool,
}

/// Loads a table from a file: the format from its magic bytes, else its extension. CSV
/// columns come back as text (see the module docs).
pub fn load_table(path: impl AsRef<Path>) -> Result<RecordBatch, LoadError> {
    let path = path.as_ref();
    let bytes = FileBytes::open(path)?;
    let format = detect(path, bytes.as_slice());
    read(
        bytes.as_slice(),
        format,
        &file_name(path),
        None,
        &LoadOptions::default(),
        &|| bytes.release(0, bytes.as_slice().len()),
    )
}

/// Loads a table from bytes in a given format. CSV columns come back as text.
pub fn load_table_bytes(bytes: &[u8], format: Format) -> Result<RecordBatch, LoadError> {
    read(
        bytes,
        format,
        "<bytes>",
        None,
        &LoadOptions::default(),
        &|| {},
    )
}

/// Loads a table for validation against a manifest: missing-value texts become nulls and
/// numeric CSV columns are parsed directly when every cell parses (see the module docs).
pub fn load_with_manifest(
    manifest: &Manifest,
    path: impl AsRef<Path>,
    options: &LoadOptions,
) -> Result<LoadedTable, LoadError> {
    let path = path.as_ref();
    let bytes = FileBytes::open(path)?;
    let format = detect(path, bytes.as_slice());
    load_bytes_releasing(
        manifest,
        bytes.as_slice(),
        format,
        &file_name(path),
        options,
        &|| bytes.release(0, bytes.as_slice().len()),
    )
}

/// [`load_with_manifest`] on bytes; `origin` names the source in errors.
pub fn load_bytes_with_manifest(
    manifest: &Manifest,
    bytes: &[u8],
    format: Format,
    origin: &str,
    options: &LoadOptions,
) -> Result<LoadedTable, LoadError> {
    load_bytes_releasing(manifest, bytes, format, origin, options, &|| {})
}

/// [`load_bytes_with_manifest`], calling `parsed()` once the bytes are parsed (before the
/// conversion to Arrow), so that a mapped file's pages can be released before the peak.
pub(crate) fn load_bytes_releasing(
    manifest: &Manifest,
    bytes: &[u8],
    format: Format,
    origin: &str,
    options: &LoadOptions,
    parsed: &dyn Fn(),
) -> Result<LoadedTable, LoadError> {
    if format != Format::Csv {
        let batch = read(bytes, format, origin, None, options, parsed)?;
        return Ok(LoadedTable {
            batch,
            format,
            typed_fast_path: false,
        });
    }
    match read(bytes, format, origin, Some(manifest), options, parsed) {
        Ok(batch) => Ok(LoadedTable {
            batch,
            format,
            typed_fast_path: true,
        }),
        // A cell that does not parse as its declared type: read all text so validation
        // can name the rows.
        Err(LoadError::Malformed { .. }) => {
            let text_only = manifest_without_numeric_types(manifest);
            let batch = read(bytes, format, origin, Some(&text_only), options, parsed)?;
            Ok(LoadedTable {
                batch,
                format,
                typed_fast_path: false,
            })
        }
        Err(other) => Err(other),
    }
}

fn manifest_without_numeric_types(manifest: &Manifest) -> Manifest {
    let mut text_only = manifest.clone();
    for field in &mut text_only.schema.fields {
        field.field_type = FieldType::String;
    }
    text_only
}

/// The file's bytes: memory-mapped (the loader only reads them once, and a 1 GB upload
/// should not also be a 1 GB heap allocation).
pub(crate) struct FileBytes {
    map: Option<memmap2::Mmap>,
}

impl FileBytes {
    /// Lets the kernel drop the pages of a byte range that will not be read again, so that a
    /// file read batch by batch does not stay resident. Reading them again is still correct
    /// (they come back from the file), only slower.
    pub(crate) fn release(&self, offset: usize, length: usize) {
        if let Some(map) = &self.map {
            // SAFETY: the map is read-only and never written, so dropping its pages loses
            // nothing: a later read faults them back in from the file. Failure is harmless.
            let _ = unsafe {
                map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, length)
            };
        }
    }

    pub(crate) fn open(path: &Path) -> Result<FileBytes, LoadError> {
        let io = |source| LoadError::Io {
            file: file_name(path),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let length = file.metadata().map_err(io)?.len();
        if length == 0 {
            return Ok(FileBytes { map: None });
        }
        // SAFETY: the map is read-only and private to this load; as with any reader, a file
        // truncated by another process while we read it is outside our contract (the
        // platform loads from its own content-addressed store).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Ok(FileBytes { map: Some(map) })
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        self.map.as_deref().unwrap_or_default()
    }
}

pub(crate) fn file_name(path: &Path) -> String {
    path.display().to_string()
}

pub(crate) fn detect(path: &Path, bytes: &[u8]) -> Format {
    // Magic bytes win; a `.parquet` without them is still read as Parquet so that a
    // truncated upload gets the Parquet reader's error rather than a CSV one.
    match Format::sniff(bytes) {
        Format::Csv => Format::from_extension(path).unwrap_or(Format::Csv),
        binary => binary,
    }
}

fn read(
    bytes: &[u8],
    format: Format,
    origin: &str,
    manifest: Option<&Manifest>,
    options: &LoadOptions,
    parsed: &dyn Fn(),
) -> Result<RecordBatch, LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::Empty {
            file: origin.to_string(),
        });
    }
    let malformed = |format: &'static str| {
        move |error: polars::error::PolarsError| LoadError::Malformed {
            file: origin.to_string(),
            format,
            message: short(&error.to_string()),
        }
    };
    // polars has panicked on corrupt input in the past; a bad upload must stay an error.
    let guarded = |f: &dyn Fn() -> Result<DataFrame, LoadError>, format: &'static str| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
            Err(LoadError::Malformed {
                file: origin.to_string(),
                format,
                message: "the reader failed on corrupt content".to_string(),
            })
        })
    };
    let frame = match format {
        Format::Csv => {
            let (body, _) = prescan_csv(bytes, origin, options)?;
            guarded(
                &|| {
                    csv_options(manifest, options)
                        .into_reader_with_file_handle(Cursor::new(body))
                        .finish()
                        .map_err(malformed("CSV"))
                },
                "CSV",
            )?
        }
        Format::Parquet => guarded(
            &|| {
                ParquetReader::new(Cursor::new(bytes))
                    .finish()
                    .map_err(malformed("Parquet"))
            },
            "Parquet",
        )?,
        Format::ArrowIpc => guarded(
            &|| {
                IpcReader::new(Cursor::new(bytes))
                    .finish()
                    .map_err(malformed("Arrow IPC"))
            },
            "Arrow IPC",
        )?,
    };
    if frame.width() == 0 {
        return Err(LoadError::Empty {
            file: origin.to_string(),
        });
    }
    parsed();
    polars_to_arrow(frame, origin)
}

pub(crate) fn csv_options(manifest: Option<&Manifest>, options: &LoadOptions) -> CsvReadOptions {
    let mut null_values = vec![PlSmallStr::from("")];
    let mut overwrite = PlSchema::default();
    if let Some(manifest) = manifest {
        null_values = manifest
            .schema
            .missing_values
            .iter()
            .map(|m| PlSmallStr::from(m.as_str()))
            .collect();
        for field in &manifest.schema.fields {
            let dtype = match field.field_type {
                FieldType::Number => PlDataType::Float64,
                FieldType::Integer => PlDataType::Int64,
                _ => continue,
            };
            overwrite.insert(PlSmallStr::from(field.name.as_str()), dtype);
        }
    }
    CsvReadOptions::default()
        // Zero rows of inference: every column not overwritten is text.
        .with_infer_schema_length(Some(0))
        .with_schema_overwrite(Some(Arc::new(overwrite)))
        // `polars_to_arrow` rechunks column by column, after the file's pages are released.
        .with_rechunk(false)
        .map_parse_options(|parse| {
            parse
                .with_separator(options.separator)
                .with_encoding(CsvEncoding::Utf8)
                .with_null_values(Some(match null_values.as_slice() {
                    // The same test, without a loop over one value per cell.
                    [single] => NullValues::AllColumnsSingle(single.clone()),
                    _ => NullValues::AllColumns(null_values.clone()),
                }))
        })
}

/// Checks the raw CSV bytes and returns them without a UTF-8 byte-order mark, with the
/// number of line feeds in them.
///
/// The checks run in parallel on segments that end at line feeds (NUL bytes, line lengths,
/// UTF-8), and the first error is chosen as a sequential scan would: a NUL byte anywhere
/// first, then the first line too long, then the first invalid UTF-8.
pub(crate) fn prescan_csv<'a>(
    bytes: &'a [u8],
    origin: &str,
    options: &LoadOptions,
) -> Result<(&'a [u8], usize), LoadError> {
    prescan_in_segments(bytes, origin, options, PRESCAN_SEGMENT, &|_, _| {})
}

/// [`prescan_csv`], calling `done(offset, length)` on each range of `bytes` once checked
/// (to release its pages).
pub(crate) fn prescan_csv_releasing<'a>(
    bytes: &'a [u8],
    origin: &str,
    options: &LoadOptions,
    done: &(dyn Fn(usize, usize) + Sync),
) -> Result<(&'a [u8], usize), LoadError> {
    prescan_in_segments(bytes, origin, options, PRESCAN_SEGMENT, done)
}

fn prescan_in_segments<'a>(
    bytes: &'a [u8],
    origin: &str,
    options: &LoadOptions,
    segment: usize,
    done: &(dyn Fn(usize, usize) + Sync),
) -> Result<(&'a [u8], usize), LoadError> {
    let file = || origin.to_string();
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(LoadError::Encoding {
            file: file(),
            line: 1,
            hint: " (looks like UTF-16)".to_string(),
        });
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(LoadError::Empty { file: file() });
    }
    let segments = segments(body, segment);
    let scans: Vec<SegmentScan> = segments
        .par_iter()
        .map(|range| {
            let scan = scan_segment(&body[range.clone()], range.start, options.max_line_bytes);
            done(bytes.len() - body.len() + range.start, range.len());
            scan
        })
        .collect();
    if let Some(offset) = scans.iter().find_map(|scan| scan.nul) {
        return Err(LoadError::Binary {
            file: file(),
            offset,
        });
    }
    let mut lines_before = 0;
    for scan in &scans {
        if let Some(index) = scan.long_line {
            return Err(LoadError::LineTooLong {
                file: file(),
                line: lines_before + index + 1,
                limit: options.max_line_bytes,
            });
        }
        lines_before += scan.newlines;
    }
    if let Some(offset) = scans.iter().find_map(|scan| scan.invalid_utf8) {
        let hint = if looks_like_gb18030(&body[offset..]) {
            " (looks like GBK/GB18030)"
        } else {
            ""
        };
        return Err(LoadError::Encoding {
            file: file(),
            line: memchr::memchr_iter(b'\n', &body[..offset]).count() + 1,
            hint: hint.to_string(),
        });
    }
    Ok((body, lines_before))
}

/// Bytes per prescan segment.
const PRESCAN_SEGMENT: usize = 16 << 20;

/// Splits bytes into ranges of about `target` bytes that end just after a line feed (the
/// last one at the end).
fn segments(bytes: &[u8], target: usize) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    while start < bytes.len() {
        let end = match bytes.get(start + target..) {
            Some(rest) => {
                memchr::memchr(b'\n', rest).map_or(bytes.len(), |i| start + target + i + 1)
            }
            None => bytes.len(),
        };
        ranges.push(start..end);
        start = end;
    }
    ranges
}

/// What the prescan found in one segment (offsets in the whole body).
struct SegmentScan {
    nul: Option<usize>,
    /// 0-based index within the segment of the first line too long.
    long_line: Option<usize>,
    newlines: usize,
    invalid_utf8: Option<usize>,
}

fn scan_segment(segment: &[u8], offset: usize, max_line_bytes: usize) -> SegmentScan {
    let nul = memchr::memchr(0, segment).map(|i| offset + i);
    let mut long_line = None;
    let mut newlines = 0;
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', segment) {
        if long_line.is_none() && end - start > max_line_bytes {
            long_line = Some(newlines);
        }
        newlines += 1;
        start = end + 1;
    }
    if long_line.is_none() && segment.len() - start > max_line_bytes {
        long_line = Some(newlines);
    }
    let invalid_utf8 = std::str::from_utf8(segment)
        .err()
        .map(|error| offset + error.valid_up_to());
    SegmentScan {
        nul,
        long_line,
        newlines,
        invalid_utf8,
    }
}

/// GBK/GB18030 double-byte characters: a lead byte 0x81-0xFE and a trail 0x40-0xFE (not
/// 0x7F). UTF-8 never pairs bytes this way at the point where it failed.
pub(crate) fn looks_like_gb18030(rest: &[u8]) -> bool {
    match rest {
        [lead, trail, ..] => {
            (0x81..=0xFE).contains(lead) && (0x40..=0xFE).contains(trail) && *trail != 0x7F
        }
        _ => false,
    }
}

pub(crate) fn short(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default();
    if line.chars().count() > 300 {
        line.chars().take(300).collect::<String>() + "..."
    } else {
        line.to_string()
    }
}

/// Moves every column of a polars frame into arrow-rs through the C data interface.
pub(crate) fn polars_to_arrow(
    mut frame: DataFrame,
    origin: &str,
) -> Result<RecordBatch, LoadError> {
    frame.rechunk_mut_par();
    let height = frame.height();
    if height > 0 {
        let mut batches = frame_to_batches(&frame, origin)?;
        if batches.len() == 1 {
            return Ok(batches.remove(0));
        }
    }
    // No rows (columns may have no chunk at all): empty columns of the right types.
    let (fields, columns): (Vec<ArrowField>, Vec<ArrayRef>) = frame
        .columns()
        .iter()
        .map(|column| {
            let series = column.as_materialized_series();
            let arrow_field = series
                .dtype()
                .to_arrow_field(series.name().clone(), CompatLevel::newest());
            let field = import_field(&arrow_field).map_err(|message| LoadError::Convert {
                file: origin.to_string(),
                column: series.name().to_string(),
                message,
            })?;
            let empty = new_empty_array(field.data_type());
            Ok((field.with_nullable(true), empty))
        })
        .collect::<Result<Vec<_>, LoadError>>()?
        .into_iter()
        .unzip();
    batch(fields, columns, height, origin)
}

/// One record batch per chunk of a polars frame whose columns are chunked alike (a CSV read
/// without rechunking is: each piece read in parallel is a chunk of every column), else
/// after rechunking. No buffer is copied.
pub(crate) fn frame_to_batches(
    frame: &DataFrame,
    origin: &str,
) -> Result<Vec<RecordBatch>, LoadError> {
    let series: Vec<&Series> = frame
        .columns()
        .iter()
        .map(|column| column.as_materialized_series())
        .collect();
    let aligned = series
        .windows(2)
        .all(|pair| pair[0].chunk_lengths().eq(pair[1].chunk_lengths()));
    if !aligned {
        let mut frame = frame.clone();
        frame.rechunk_mut_par();
        let series: Vec<&Series> = frame
            .columns()
            .iter()
            .map(|column| column.as_materialized_series())
            .collect();
        if series.iter().any(|s| s.chunks().len() != 1) {
            return Err(LoadError::Convert {
                file: origin.to_string(),
                column: String::new(),
                message: "columns of different lengths".to_string(),
            });
        }
        return frame_to_batches(&frame, origin);
    }
    let chunks = series.first().map_or(0, |s| s.chunks().len());
    let mut batches = Vec::with_capacity(chunks);
    for chunk in 0..chunks {
        let mut fields = Vec::with_capacity(series.len());
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(series.len());
        for series in &series {
            let convert = |message: String| LoadError::Convert {
                file: origin.to_string(),
                column: series.name().to_string(),
                message,
            };
            let arrow_field = series
                .dtype()
                .to_arrow_field(series.name().clone(), CompatLevel::newest());
            let array = series.to_arrow(chunk, CompatLevel::newest());
            let (field, array) = import_array(array, &arrow_field).map_err(convert)?;
            fields.push(field.with_nullable(true));
            columns.push(array);
        }
        let rows = columns.first().map_or(0, |c| c.len());
        batches.push(batch(fields, columns, rows, origin)?);
    }
    Ok(batches)
}

fn batch(
    fields: Vec<ArrowField>,
    columns: Vec<ArrayRef>,
    rows: usize,
    origin: &str,
) -> Result<RecordBatch, LoadError> {
    let schema = Arc::new(Schema::new(fields));
    let options = arrow::array::RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(schema, columns, &options).map_err(|e| LoadError::Convert {
        file: origin.to_string(),
        column: String::new(),
        message: e.to_string(),
    })
}

/// Moves one polars array into arrow-rs.
fn import_array(
    array: Box<dyn polars_arrow::array::Array>,
    arrow_field: &polars_arrow::datatypes::Field,
) -> Result<(ArrowField, ArrayRef), String> {
    let mut c_array = polars_arrow::ffi::export_array_to_c(array);
    let mut c_schema = polars_arrow::ffi::export_field_to_c(arrow_field);
    // SAFETY: polars' `ArrowArray`/`ArrowSchema` and arrow-rs's `FFI_ArrowArray`/
    // `FFI_ArrowSchema` are both the `#[repr(C)]` structs of the Arrow C data interface.
    // `from_raw` moves the struct out and leaves a released one behind, so polars' `Drop` does
    // nothing and arrow-rs owns the release callback.
    let (ffi_array, ffi_schema) = unsafe {
        (
            FFI_ArrowArray::from_raw((&mut c_array as *mut polars_arrow::ffi::ArrowArray).cast()),
            FFI_ArrowSchema::from_raw(
                (&mut c_schema as *mut polars_arrow::ffi::ArrowSchema).cast(),
            ),
        )
    };
    let field = ArrowField::try_from(&ffi_schema).map_err(|e| e.to_string())?;
    // SAFETY: the structs were just exported by polars from a live array.
    let data =
        unsafe { arrow::ffi::from_ffi(ffi_array, &ffi_schema) }.map_err(|e| e.to_string())?;
    Ok((field, make_array(data)))
}

/// The arrow-rs field of a polars field.
fn import_field(arrow_field: &polars_arrow::datatypes::Field) -> Result<ArrowField, String> {
    let c_schema = polars_arrow::ffi::export_field_to_c(arrow_field);
    let mut c_schema = std::mem::ManuallyDrop::new(c_schema);
    // SAFETY: as in `import_array`, for the schema alone.
    let ffi_schema = unsafe {
        FFI_ArrowSchema::from_raw((&mut *c_schema as *mut polars_arrow::ffi::ArrowSchema).cast())
    };
    ArrowField::try_from(&ffi_schema).map_err(|e| e.to_string())
}

/// Moves a record batch into a polars frame through the C data interface.
fn arrow_to_polars(batch: &RecordBatch) -> Result<DataFrame, String> {
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let data = column.to_data();
        let (ffi_array, ffi_schema) =
            arrow::ffi::to_ffi(&data).map_err(|e| format!("{}: {e}", field.name()))?;
        let ffi_array = std::mem::ManuallyDrop::new(ffi_array);
        let ffi_schema = std::mem::ManuallyDrop::new(ffi_schema);
        // SAFETY: same C data interface structs in both crates; we read them bit for bit and
        // never drop the arrow-rs originals, so exactly one owner calls each release callback.
        let (c_array, c_schema): (
            polars_arrow::ffi::ArrowArray,
            polars_arrow::ffi::ArrowSchema,
        ) = unsafe {
            (
                std::ptr::read((&*ffi_array as *const FFI_ArrowArray).cast()),
                std::ptr::read((&*ffi_schema as *const FFI_ArrowSchema).cast()),
            )
        };
        // SAFETY: the structs were exported by arrow-rs from a live array.
        let array = unsafe {
            let polars_field = polars_arrow::ffi::import_field_from_c(&c_schema)
                .map_err(|e| format!("{}: {e}", field.name()))?;
            polars_arrow::ffi::import_array_from_c(c_array, polars_field.dtype().clone())
                .map_err(|e| format!("{}: {e}", field.name()))?
        };
        let series = Series::from_arrow(PlSmallStr::from(field.name().as_str()), array)
            .map_err(|e| format!("{}: {e}", field.name()))?;
        columns.push(series.into());
    }
    DataFrame::new(batch.num_rows(), columns).map_err(|e| e.to_string())
}

/// Writes a table to a file; the format comes from the extension.
pub fn write_table(batch: &RecordBatch, path: impl AsRef<Path>) -> Result<(), WriteError> {
    let path: PathBuf = path.as_ref().to_path_buf();
    let format =
        Format::from_extension(&path).ok_or_else(|| WriteError::UnknownFormat(file_name(&path)))?;
    let bytes = write_table_bytes(batch, format).map_err(|message| WriteError::Encode {
        file: file_name(&path),
        message,
    })?;
    std::fs::write(&path, bytes).map_err(|source| WriteError::Io {
        file: file_name(&path),
        source,
    })
}

/// Encodes a table in a format.
pub fn write_table_bytes(batch: &RecordBatch, format: Format) -> Result<Vec<u8>, String> {
    let mut frame = arrow_to_polars(batch)?;
    let mut out = Vec::new();
    let result = match format {
        Format::Csv => CsvWriter::new(&mut out).finish(&mut frame),
        Format::Parquet => ParquetWriter::new(&mut out).finish(&mut frame).map(|_| ()),
        Format::ArrowIpc => IpcWriter::new(&mut out)
            .with_compat_level(CompatLevel::newest())
            .finish(&mut frame),
    };
    result.map_err(|e| short(&e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// The parallel prescan finds what the sequential one found, error for error.
        #[test]
        fn segmented_prescan_matches_the_sequential_one(
            bytes in proptest::collection::vec(
                prop_oneof![
                    8 => Just(b'a'),
                    3 => Just(b'\n'),
                    1 => Just(0u8),
                    1 => Just(0xC3u8),
                    1 => Just(0xA9u8),
                    1 => Just(b' '),
                ],
                0..120,
            ),
            segment in 1usize..40,
            max_line_bytes in 1usize..30,
        ) {
            let options = LoadOptions { max_line_bytes, ..LoadOptions::default() };
            let new = prescan_in_segments(&bytes, "f", &options, segment, &|_, _| {});
            let old = crate::reference::prescan_csv(&bytes, "f", &options);
            match (new, old) {
                (Ok((body, newlines)), Ok(old_body)) => {
                    prop_assert_eq!(body, old_body);
                    prop_assert_eq!(newlines, body.iter().filter(|b| **b == b'\n').count());
                }
                (Err(new), Err(old)) => prop_assert_eq!(new.to_string(), old.to_string()),
                (new, old) => prop_assert!(false, "{:?} vs {:?}", new.map(|r| r.1), old.map(|_| ())),
            }
        }
    }
}
