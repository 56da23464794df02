//! Validation of a file without holding the whole table: a CSV is cut into chunks of whole
//! records, each chunk is parsed by polars on one thread while the previous one is checked on
//! the others, and the checks accumulate (see [`crate::check`]). Memory stays at a few chunks
//! plus what the checks keep (k-anonymity classes, the row ids until the end).
//!
//! [`validate_file`] gives exactly the report, or the error, of [`load_with_manifest`] then
//! [`validate`]: the chunks are polars' own parse of the same records, and whenever anything
//! is unusual (a quoted header, a cell that does not parse as its declared type, a reader
//! error) it falls back to that very path. Parquet and Arrow IPC files take that path too.

use std::path::Path;
use std::sync::mpsc::sync_channel;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use polars::prelude::{CsvReadOptions, DataFrame, SerReader};

use crate::load::{
    FileBytes, Format, LoadError, LoadOptions, csv_options, detect, file_name, frame_to_batches,
    load_bytes_releasing, polars_to_arrow, prescan_csv_releasing,
};
use crate::manifest::Manifest;
use crate::validate::{Report, TableCheck, ValidationConfig, validate};

/// Bytes of CSV parsed at a time.
const CHUNK_BYTES: usize = 32 << 20;

/// Validates a table file against a manifest, reading it batch by batch when it is a CSV.
/// Same report (or error) as [`load_with_manifest`] followed by [`validate`], in less time
/// and a fraction of the memory.
///
/// [`load_with_manifest`]: crate::load_with_manifest
pub fn validate_file(
    manifest: &Manifest,
    path: impl AsRef<Path>,
    options: &LoadOptions,
    config: &ValidationConfig,
) -> Result<Report, LoadError> {
    validate_file_in_chunks_of(manifest, path.as_ref(), options, config, CHUNK_BYTES)
}

fn validate_file_in_chunks_of(
    manifest: &Manifest,
    path: &Path,
    options: &LoadOptions,
    config: &ValidationConfig,
    chunk_bytes: usize,
) -> Result<Report, LoadError> {
    let file = FileBytes::open(path)?;
    let origin = file_name(path);
    let format = detect(path, file.as_slice());
    if format == Format::Csv
        && let Some(report) =
            validate_csv_in_chunks(manifest, &file, &origin, options, config, chunk_bytes)?
    {
        return Ok(report);
    }
    let loaded =
        load_bytes_releasing(manifest, file.as_slice(), format, &origin, options, &|| {
            file.release(0, file.as_slice().len())
        })?;
    Ok(validate(manifest, &loaded.batch, config))
}

/// The chunked path; `None` when the file should take the whole-table path instead.
fn validate_csv_in_chunks(
    manifest: &Manifest,
    file: &FileBytes,
    origin: &str,
    options: &LoadOptions,
    config: &ValidationConfig,
    chunk_bytes: usize,
) -> Result<Option<Report>, LoadError> {
    let bytes = file.as_slice();
    if bytes.is_empty() {
        return Ok(None);
    }
    // The same checks, in the same order, as the whole-table path: same errors.
    let (body, newlines) = prescan_csv_releasing(bytes, origin, options, &|offset, length| {
        file.release(offset, length)
    })?;
    let body_offset = bytes.len() - body.len();
    // The header: one plain line (anything else takes the whole-table path).
    let Some(header_end) = memchr::memchr(b'\n', body).map(|i| i + 1) else {
        return Ok(None);
    };
    let header = &body[..header_end];
    if header.trim_ascii().is_empty() || memchr::memchr(b'"', header).is_some() {
        return Ok(None);
    }
    let data = &body[header_end..];
    if data.is_empty() {
        return Ok(None);
    }
    let read_options = csv_options(Some(manifest), options);
    let Ok(header_frame) = parse(header, read_options.clone()) else {
        return Ok(None);
    };
    if header_frame.width() == 0 {
        return Ok(None);
    }
    let polars_schema = header_frame.schema().clone();
    let Ok(header_batch) = polars_to_arrow(header_frame, origin) else {
        return Ok(None);
    };
    let schema = header_batch.schema();
    let chunk_options = read_options
        .with_has_header(false)
        .with_schema(Some(polars_schema))
        .with_rechunk(false);

    let mut check = TableCheck::new(manifest, &schema, config, newlines + 1);
    let mut complete = false;
    std::thread::scope(|scope| {
        // One chunk parsed ahead of the one being checked. The reader says `Done` at the
        // end: a reader that stopped without saying so (it cannot have, but) makes the
        // result incomplete, never a report on part of the file.
        let (sender, receiver) = sync_channel::<Message>(1);
        let reader = std::thread::Builder::new()
            .name("csv-chunks".into())
            .spawn_scoped(scope, move || {
                let mut start = 0;
                while start < data.len() {
                    let end = chunk_end(data, start, chunk_bytes);
                    let batches = parse(&data[start..end], chunk_options.clone())
                        .ok()
                        .and_then(|frame| frame_to_batches(&frame, origin).ok())
                        .filter(|batches| same_schema(batches, &schema));
                    file.release(body_offset + header_end + start, end - start);
                    let message = batches.map_or(Message::Failed, Message::Batches);
                    let failed = matches!(message, Message::Failed);
                    if sender.send(message).is_err() || failed {
                        return;
                    }
                    start = end;
                }
                let _ = sender.send(Message::Done);
            });
        if reader.is_err() {
            return;
        }
        for message in receiver {
            match message {
                Message::Batches(batches) => check.feed_all(&batches),
                Message::Failed => break,
                Message::Done => {
                    complete = true;
                    break;
                }
            }
        }
    });
    #[cfg(test)]
    tests::CHUNKED.fetch_add(usize::from(complete), std::sync::atomic::Ordering::Relaxed);
    Ok(complete.then(|| check.finish()))
}

/// From the chunk reader to the checks.
enum Message {
    Batches(Vec<RecordBatch>),
    /// A chunk polars did not read as the header said: the whole-table path decides.
    Failed,
    Done,
}

fn same_schema(batches: &[RecordBatch], schema: &SchemaRef) -> bool {
    batches
        .iter()
        .all(|batch| batch.schema().fields() == schema.fields())
}

/// Parses CSV bytes with polars; a panic in the reader is an error like any other.
fn parse(bytes: &[u8], options: CsvReadOptions) -> Result<DataFrame, ()> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        options
            .into_reader_with_file_handle(std::io::Cursor::new(bytes))
            .finish()
    }))
    .map_err(|_| ())?
    .map_err(|_| ())
}

/// The end of the chunk starting at `start`: just after the first line feed at or past
/// `start + target` that is not inside a quoted field (even number of `"` since `start`,
/// which itself is a record start), or the end of the data.
fn chunk_end(data: &[u8], start: usize, target: usize) -> usize {
    let from = start + target;
    if from >= data.len() {
        return data.len();
    }
    let mut quoted = memchr::memchr_iter(b'"', &data[start..from]).count() % 2 == 1;
    for at in memchr::memchr2_iter(b'"', b'\n', &data[from..]) {
        let at = from + at;
        if data[at] == b'"' {
            quoted = !quoted;
        } else if !quoted {
            return at + 1;
        }
    }
    data.len()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use proptest::prelude::*;

    use super::*;
    use crate::load::load_with_manifest;
    use crate::testgen::generated_case;
    use crate::write_table_bytes;

    fn whole_path(
        manifest: &Manifest,
        path: &Path,
        options: &LoadOptions,
        config: &ValidationConfig,
    ) -> Result<Report, String> {
        load_with_manifest(manifest, path, options)
            .map(|loaded| validate(manifest, &loaded.batch, config))
            .map_err(|e| e.to_string())
    }

    /// The columns whose text polars' typed parser reads as the declared type.
    fn typed_columns_only(manifest: &Manifest, batch: &RecordBatch) -> RecordBatch {
        use crate::manifest::FieldType;
        use arrow::datatypes::DataType;
        let keep: Vec<usize> = batch
            .schema()
            .fields()
            .iter()
            .enumerate()
            .filter(
                |(_, field)| match manifest.field(field.name()).map(|f| f.field_type) {
                    Some(FieldType::Number) => field.data_type().is_numeric(),
                    Some(FieldType::Integer) => field.data_type().is_integer(),
                    _ => !matches!(field.data_type(), DataType::Float64),
                },
            )
            .map(|(index, _)| index)
            .collect();
        batch.project(&keep).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Files validated to the end in chunks (the test below checks the path is taken).
    pub(super) static CHUNKED: std::sync::atomic::AtomicUsize =
        std::sync::atomic::AtomicUsize::new(0);

    #[test]
    fn chunks_end_after_records() {
        let data = b"a,1\nb,\"x\ny\"\nc,3\n";
        assert_eq!(chunk_end(data, 0, 1), 4);
        // The line feed inside quotes does not end a record.
        assert_eq!(chunk_end(data, 4, 3), 12);
        assert_eq!(chunk_end(data, 12, 1), data.len());
        assert_eq!(chunk_end(data, 12, 100), data.len());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]

        /// A CSV validated in chunks gives the report (or error) of the whole-table path,
        /// including on files that take the fallbacks (type errors, quotes, bad bytes).
        #[test]
        fn file_validation_matches_load_then_validate(
            seed in any::<u64>(),
            chunk in 1usize..400,
            damage in 0usize..8,
        ) {
            let (manifest, batch) = generated_case(seed);
            // Half the files keep only columns polars' typed parser reads (the chunked path
            // runs to the end), the others may need the fallback.
            let batch = if damage >= 3 { typed_columns_only(&manifest, &batch) } else { batch };
            prop_assume!(batch.num_columns() > 0);
            let written = write_table_bytes(&batch, Format::Csv);
            prop_assume!(written.is_ok());
            let mut bytes = written.map_err(TestCaseError::fail)?;
            match damage {
                1 if bytes.len() > 10 => {
                    let middle = bytes.len() / 2;
                    bytes[middle] = 0xFF;
                }
                2 => bytes.extend_from_slice(b"\"unterminated,1\n"),
                3 => bytes.splice(0..0, b"\n".iter().copied()).for_each(drop),
                _ => {}
            }
            let mut file = tempfile::NamedTempFile::with_suffix(".csv").map_err(|e| TestCaseError::fail(e.to_string()))?;
            file.write_all(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let options = LoadOptions::default();
            let config = ValidationConfig::default();
            let expected = whole_path(&manifest, file.path(), &options, &config);
            let streamed = validate_file_in_chunks_of(&manifest, file.path(), &options, &config, chunk)
                .map_err(|e| e.to_string());
            prop_assert_eq!(streamed, expected);
        }
    }

    #[test]
    fn clean_files_take_the_chunked_path() {
        let before = CHUNKED.load(std::sync::atomic::Ordering::Relaxed);
        let manifest = Manifest::from_str(crate::example::HEART_MANIFEST).unwrap();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/heart/hospital-a.csv");
        let config = ValidationConfig::default();
        let options = LoadOptions::default();
        let streamed = validate_file_in_chunks_of(&manifest, &path, &options, &config, 1000);
        assert_eq!(
            streamed.ok(),
            whole_path(&manifest, &path, &options, &config).ok()
        );
        assert!(CHUNKED.load(std::sync::atomic::Ordering::Relaxed) > before);
    }
}
