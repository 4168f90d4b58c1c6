//! Columnar input: Parquet and Arrow IPC (`.arrow`, `.feather`) files, read as batches of
//! columns that go to the map workers as they are (no rows, no text).
//!
//! Columns bind by name exactly as a CSV header does ([`Schema::bind`]). A batch's key column
//! becomes key bytes: strings and binaries as they are, integers as their decimal text (so a
//! key prints the same as from a CSV file). A bound column fills the aggregation's input of
//! type `T` with the same meaning as the CSV text of the same value would: integers that fit
//! `T`, floats that are integers for an integer `T` (`11.0`), integers that a float `T` holds
//! exactly, strings parsed as CSV fields are. A null (in the key or a bound column) makes its
//! row invalid: an error naming the row, or with `--skip-invalid` a skipped row. Rows are
//! numbered from 1 over the whole file in place of CSV line numbers, and a Parquet error also
//! names the row group.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchReader};
use arrow_schema::DataType;
use naas_lang::types::FloatTy;
use naas_target_native::values::ColumnBuf;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;

use crate::csv_input::{InputError, Schema};
use crate::value::{excerpt, push_text, push_value, Value, ValueError};

/// Rows per batch handed to a worker (the executor folds this many records per native call).
pub const BATCH_ROWS: usize = 4096;

/// A columnar file format, told by the file name's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnarFormat {
    Parquet,
    /// The Arrow IPC file format (Feather version 2 is the same format).
    ArrowIpc,
}

impl ColumnarFormat {
    /// `.parquet` → Parquet; `.arrow`, `.feather`, `.ipc` → Arrow IPC (any case); anything else
    /// is read as CSV.
    pub fn of(path: &Path) -> Option<ColumnarFormat> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "parquet" | "parq" => Some(ColumnarFormat::Parquet),
            "arrow" | "feather" | "ipc" => Some(ColumnarFormat::ArrowIpc),
            _ => None,
        }
    }
}

/// Why a columnar file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ColumnarError {
    #[error("cannot open `{name}`: {source}")]
    Open { name: String, source: std::io::Error },
    #[error("`{name}` is not a readable {format} file: {message}")]
    Format { name: String, format: &'static str, message: String },
    #[error("`{name}`: {message}")]
    Read { name: String, message: String },
    #[error("`{name}`: the key column `{column}` holds {ty}; a key must be a string, binary or integer column (cast it to a string)")]
    KeyType { name: String, column: String, ty: String },
    #[error("`{name}`: column `{column}` holds {ty}, which cannot fill the aggregation's {target} input")]
    ColumnType { name: String, column: String, ty: String, target: &'static str },
}

impl From<ColumnarError> for InputError {
    fn from(error: ColumnarError) -> InputError {
        InputError::Columnar(Box::new(error))
    }
}

/// An open columnar file: its columns' names and how to read it in order.
#[derive(Debug)]
pub struct ColumnarFile {
    pub name: String,
    path: PathBuf,
    format: ColumnarFormat,
    header: Vec<String>,
    /// Each column's type, in file order.
    types: Vec<DataType>,
    parquet: Option<ArrowReaderMetadata>,
    /// Bytes in the file, for progress.
    pub size: u64,
}

impl ColumnarFile {
    pub fn open(path: &Path, format: ColumnarFormat) -> Result<ColumnarFile, ColumnarError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|source| ColumnarError::Open { name: name.clone(), source })?;
        let size = file.metadata().map_or(0, |m| m.len());
        let bad = |message: String| ColumnarError::Format {
            name: name.clone(),
            format: match format {
                ColumnarFormat::Parquet => "Parquet",
                ColumnarFormat::ArrowIpc => "Arrow IPC",
            },
            message,
        };
        let (schema, parquet) = match format {
            ColumnarFormat::Parquet => {
                let metadata = ArrowReaderMetadata::load(&file, Default::default()).map_err(|e| bad(e.to_string()))?;
                (metadata.schema().clone(), Some(metadata))
            }
            ColumnarFormat::ArrowIpc => {
                let reader = arrow_ipc::reader::FileReader::try_new(file, None).map_err(|e| bad(e.to_string()))?;
                (reader.schema(), None)
            }
        };
        let header = schema.fields().iter().map(|field| field.name().clone()).collect();
        let types = schema.fields().iter().map(|field| field.data_type().clone()).collect();
        Ok(ColumnarFile { name, path: path.to_path_buf(), format, header, types, parquet, size })
    }

    /// Checks that the columns `schema` binds can fill the aggregation's inputs (`buffers`, one
    /// per input, in input order) and that the key column can be a key.
    pub fn check(&self, schema: &Schema, buffers: &[ColumnBuf]) -> Result<(), ColumnarError> {
        let types = &self.types;
        let key = &types[schema.key];
        if !is_key_type(key) {
            return Err(ColumnarError::KeyType {
                name: self.name.clone(),
                column: self.header[schema.key].clone(),
                ty: key.to_string(),
            });
        }
        for (&column, buf) in schema.inputs.iter().zip(buffers) {
            if !fills(&types[column], buf) {
                return Err(ColumnarError::ColumnType {
                    name: self.name.clone(),
                    column: self.header[column].clone(),
                    ty: types[column].to_string(),
                    target: buf.column().ty().name(),
                });
            }
        }
        Ok(())
    }

    /// The columns' names, in file order: what a CSV header would hold.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// Reads the columns `schema` binds, in file order, as batches of at most [`BATCH_ROWS`]
    /// rows, each with the number of its first row (from 1) and its Parquet row group.
    pub fn batches(&self, schema: &Schema) -> Result<Batches, ColumnarError> {
        let file = File::open(&self.path).map_err(|source| ColumnarError::Open { name: self.name.clone(), source })?;
        let mut columns: Vec<usize> = schema.inputs.iter().copied().chain([schema.key]).collect();
        columns.sort_unstable();
        columns.dedup();
        let read = |e: &dyn std::fmt::Display| ColumnarError::Read { name: self.name.clone(), message: e.to_string() };
        let (reader, group_rows): (Box<dyn RecordBatchReader + Send>, Vec<u64>) = match (&self.format, &self.parquet) {
            (ColumnarFormat::Parquet, Some(metadata)) => {
                let metadata = &with_dictionary_key(metadata, schema.key).map_err(|e| read(&e))?;
                let mask = ProjectionMask::roots(metadata.metadata().file_metadata().schema_descr(), columns);
                let groups =
                    metadata.metadata().row_groups().iter().map(|g| u64::try_from(g.num_rows()).unwrap_or(0)).collect();
                let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, metadata.clone())
                    .with_projection(mask)
                    .with_batch_size(BATCH_ROWS)
                    .build()
                    .map_err(|e| read(&e))?;
                (Box::new(reader), groups)
            }
            _ => {
                let reader = arrow_ipc::reader::FileReader::try_new(file, Some(columns)).map_err(|e| read(&e))?;
                (Box::new(reader), Vec::new())
            }
        };
        Ok(Batches { name: self.name.clone(), reader, next_row: 1, group_rows, index: 0 })
    }
}

/// `metadata`, reading key column `key` as a dictionary array when every row group stores it
/// dictionary-encoded (what Parquet writers do for strings with few distinct values): the
/// reader then hands over each distinct key once with an index per row, instead of copying
/// every row's key out of the dictionary, and a map worker looks each distinct key up once
/// per batch. Otherwise (or for a nested schema) `metadata` as it is.
fn with_dictionary_key(metadata: &ArrowReaderMetadata, key: usize) -> parquet::errors::Result<ArrowReaderMetadata> {
    let schema = metadata.schema();
    let descriptor = metadata.metadata().file_metadata().schema_descr();
    let Some(field) = schema.fields().get(key) else { return Ok(metadata.clone()) };
    let keyed =
        matches!(field.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary | DataType::LargeBinary);
    // Flat schemas only: there, column `key` of the Arrow schema is leaf `key` of Parquet's.
    if !keyed || descriptor.num_columns() != schema.fields().len() {
        return Ok(metadata.clone());
    }
    let all_dictionary = metadata.metadata().row_groups().iter().all(|group| {
        let chunk = group.column(key);
        chunk.dictionary_page_offset().is_some()
            && chunk.page_encoding_stats_mask().is_some_and(|mask| {
                mask.is_only(parquet::basic::Encoding::PLAIN_DICTIONARY)
                    || mask.is_only(parquet::basic::Encoding::RLE_DICTIONARY)
            })
    });
    if !all_dictionary {
        return Ok(metadata.clone());
    }
    let fields: Vec<arrow_schema::FieldRef> =
        schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, field)| match i == key {
                true => std::sync::Arc::new(field.as_ref().clone().with_data_type(DataType::Dictionary(
                    Box::new(DataType::Int32),
                    Box::new(field.data_type().clone()),
                ))),
                false => field.clone(),
            })
            .collect();
    let schema = std::sync::Arc::new(arrow_schema::Schema::new_with_metadata(fields, schema.metadata().clone()));
    ArrowReaderMetadata::try_new(metadata.metadata().clone(), ArrowReaderOptions::new().with_schema(schema))
}

/// The batches of a columnar file, in order.
pub struct Batches {
    name: String,
    reader: Box<dyn RecordBatchReader + Send>,
    next_row: u64,
    /// Rows in each Parquet row group (empty for Arrow IPC).
    group_rows: Vec<u64>,
    index: u64,
}

impl std::fmt::Debug for Batches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batches").field("name", &self.name).field("next_row", &self.next_row).finish()
    }
}

/// A batch of columns and where it is in its file.
#[derive(Debug)]
pub struct ColumnarBatch {
    /// The batch's position among the file's batches, from 0.
    pub index: u64,
    /// The number of the batch's first row in the file, from 1.
    pub first_row: u64,
    /// The Parquet row group of each of `row_groups`' rows: `(first row, group)` pairs, in
    /// order (empty for Arrow IPC).
    pub row_groups: Vec<(u64, usize)>,
    pub batch: RecordBatch,
}

impl ColumnarBatch {
    /// Where row `row` (a file row number) is, for a message: ` (row group G)` for Parquet.
    pub fn place(&self, row: u64) -> String {
        match self.row_groups.iter().rev().find(|(first, _)| *first <= row) {
            Some((_, group)) => format!(" (row group {group})"),
            None => String::new(),
        }
    }
}

impl Batches {
    /// The next batch, or `None` at the end of the file.
    pub fn next_batch(&mut self) -> Result<Option<ColumnarBatch>, ColumnarError> {
        let Some(batch) = self.reader.next() else { return Ok(None) };
        let batch = batch.map_err(|e| ColumnarError::Read { name: self.name.clone(), message: e.to_string() })?;
        let first_row = self.next_row;
        let rows = batch.num_rows() as u64;
        self.next_row += rows;
        // The row groups this batch overlaps (a batch may span the end of a group).
        let mut row_groups = Vec::new();
        let mut start = 1;
        for (group, &count) in self.group_rows.iter().enumerate() {
            let end = start + count;
            if start < first_row + rows && end > first_row {
                row_groups.push((start.max(first_row), group));
            }
            start = end;
        }
        let index = self.index;
        self.index += 1;
        Ok(Some(ColumnarBatch { index, first_row, row_groups, batch }))
    }
}

/// Appends row `row`'s key (of `column`) to `keys`; `Ok(false)` for a null key.
pub fn push_key(column: &ArrayRef, row: usize, keys: &mut Vec<u8>) -> Result<bool, DataType> {
    if column.is_null(row) {
        return Ok(false);
    }
    macro_rules! int {
        ($t:ty) => {{
            let value = column.as_primitive::<$t>().value(row);
            keys.extend_from_slice(value.to_string().as_bytes());
        }};
    }
    if let Some(dictionary) = column.as_dictionary_opt::<Int32Type>() {
        // A dictionary-encoded key (see `with_dictionary_key`): the value its index names.
        let Ok(index) = usize::try_from(dictionary.keys().value(row)) else { return Ok(false) };
        return push_key(dictionary.values(), index, keys);
    }
    match column.data_type() {
        DataType::Utf8 => keys.extend_from_slice(column.as_string::<i32>().value(row).as_bytes()),
        DataType::LargeUtf8 => keys.extend_from_slice(column.as_string::<i64>().value(row).as_bytes()),
        DataType::Utf8View => keys.extend_from_slice(column.as_string_view().value(row).as_bytes()),
        DataType::Binary => keys.extend_from_slice(column.as_binary::<i32>().value(row)),
        DataType::LargeBinary => keys.extend_from_slice(column.as_binary::<i64>().value(row)),
        DataType::BinaryView => keys.extend_from_slice(column.as_binary_view().value(row)),
        DataType::Int8 => int!(Int8Type),
        DataType::Int16 => int!(Int16Type),
        DataType::Int32 => int!(Int32Type),
        DataType::Int64 => int!(Int64Type),
        DataType::UInt8 => int!(UInt8Type),
        DataType::UInt16 => int!(UInt16Type),
        DataType::UInt32 => int!(UInt32Type),
        DataType::UInt64 => int!(UInt64Type),
        other => return Err(other.clone()),
    }
    Ok(true)
}

/// Appends the keys of every row of `column` to `keys`, each one's end to `ends`, in one pass
/// over the column's buffers; `false` (and nothing appended) unless every key can be taken as
/// it is: a string or binary column with no null and no empty key. The caller then goes row
/// by row, where such keys are invalid rows with their place.
pub fn extend_keys(column: &ArrayRef, keys: &mut Vec<u8>, ends: &mut Vec<usize>) -> bool {
    if column.null_count() != 0 {
        return false;
    }
    macro_rules! offsets {
        ($array:expr) => {{
            let array = $array;
            let offsets = array.value_offsets();
            if offsets.windows(2).any(|w| w[0] == w[1]) {
                return false;
            }
            let (Some(&first), Some(&last)) = (offsets.first(), offsets.last()) else { return true };
            let (Ok(first), Ok(last)) = (usize::try_from(first), usize::try_from(last)) else { return false };
            let base = keys.len();
            keys.extend_from_slice(&array.value_data()[first..last]);
            ends.extend(offsets[1..].iter().map(|&end| base + end as usize - first));
        }};
    }
    match column.data_type() {
        DataType::Utf8 => offsets!(column.as_string::<i32>()),
        DataType::LargeUtf8 => offsets!(column.as_string::<i64>()),
        DataType::Binary => offsets!(column.as_binary::<i32>()),
        DataType::LargeBinary => offsets!(column.as_binary::<i64>()),
        _ => return false,
    }
    true
}

/// Appends every value of `column` to `buf` in one copy, when they need no conversion (the
/// column's type is the input's, with no null); `false` (and nothing appended) otherwise, and
/// the caller converts row by row as [`push_cell`] does.
pub fn extend_cells(column: &ArrayRef, buf: &mut ColumnBuf) -> bool {
    if column.null_count() != 0 {
        return false;
    }
    macro_rules! copy {
        ($t:ty, $values:expr) => {{
            $values.extend_from_slice(column.as_primitive::<$t>().values());
            true
        }};
    }
    match (column.data_type(), buf) {
        (DataType::Int8, ColumnBuf::I8(values)) => copy!(Int8Type, values),
        (DataType::Int16, ColumnBuf::I16(values)) => copy!(Int16Type, values),
        (DataType::Int32, ColumnBuf::I32(values)) => copy!(Int32Type, values),
        (DataType::Int64, ColumnBuf::I64(values)) => copy!(Int64Type, values),
        (DataType::UInt8, ColumnBuf::U8(values)) => copy!(UInt8Type, values),
        (DataType::UInt16, ColumnBuf::U16(values)) => copy!(UInt16Type, values),
        (DataType::UInt32, ColumnBuf::U32(values)) => copy!(UInt32Type, values),
        (DataType::UInt64, ColumnBuf::U64(values)) => copy!(UInt64Type, values),
        (DataType::Float32, ColumnBuf::F32(values)) => copy!(Float32Type, values),
        (DataType::Float64, ColumnBuf::F64(values)) => copy!(Float64Type, values),
        _ => false,
    }
}

/// Whether `ty` can be a key column: the types [`push_key`] reads.
pub fn is_key_type(ty: &DataType) -> bool {
    ty.is_integer()
        || matches!(
            ty,
            DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::BinaryView
        )
}

/// Whether a column of type `ty` can fill an input of `buf`'s type (values may still not fit):
/// the types [`push_cell`] reads, booleans only into booleans and numbers only into numbers.
pub fn fills(ty: &DataType, buf: &ColumnBuf) -> bool {
    let boolean = matches!(buf, ColumnBuf::Bool(_));
    match ty {
        DataType::Boolean => boolean,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Float32 | DataType::Float64 => !boolean,
        ty => ty.is_integer() && !boolean,
    }
}

/// Why a value of a columnar file cannot fill its input; the caller adds where it is.
#[derive(Debug, thiserror::Error)]
pub enum CellError {
    /// A string value that does not parse, or a value out of the input's range.
    #[error(transparent)]
    Value(#[from] ValueError),
    #[error("`{0}` is not a boolean")]
    NotBoolean(Value),
    #[error("`{}` is not an integer", excerpt(&.0.to_string()))]
    NotInteger(Value),
    #[error("`{0}` is out of range")]
    OutOfRange(Value),
    #[error("`{value}` cannot be held exactly by {ty}")]
    Inexact { value: i128, ty: &'static str },
    #[error("a {0} value cannot fill this input")]
    Unsupported(DataType),
}

/// Appends row `row` of `column` to `buf`, with the meaning the same value has as CSV text.
/// `Ok(false)` for a null.
pub fn push_cell(column: &ArrayRef, row: usize, buf: &mut ColumnBuf) -> Result<bool, CellError> {
    if column.is_null(row) {
        return Ok(false);
    }
    macro_rules! int {
        ($t:ty, $variant:ident) => {{
            let value = column.as_primitive::<$t>().value(row);
            push_number(buf, Value::$variant(value.into()))
        }};
    }
    let pushed = match column.data_type() {
        DataType::Boolean => Ok(push_value(buf, Value::Bool(column.as_boolean().value(row)))?),
        DataType::Utf8 => Ok(push_text(buf, column.as_string::<i32>().value(row).as_bytes())?),
        DataType::LargeUtf8 => Ok(push_text(buf, column.as_string::<i64>().value(row).as_bytes())?),
        DataType::Utf8View => Ok(push_text(buf, column.as_string_view().value(row).as_bytes())?),
        DataType::Int8 => int!(Int8Type, Int),
        DataType::Int16 => int!(Int16Type, Int),
        DataType::Int32 => int!(Int32Type, Int),
        DataType::Int64 => int!(Int64Type, Int),
        DataType::UInt8 => int!(UInt8Type, UInt),
        DataType::UInt16 => int!(UInt16Type, UInt),
        DataType::UInt32 => int!(UInt32Type, UInt),
        DataType::UInt64 => int!(UInt64Type, UInt),
        DataType::Float32 => push_number(buf, Value::Float(f64::from(column.as_primitive::<Float32Type>().value(row)))),
        DataType::Float64 => push_number(buf, Value::Float(column.as_primitive::<Float64Type>().value(row))),
        other => Err(CellError::Unsupported(other.clone())),
    };
    pushed.map(|()| true)
}

/// A number into a numeric column, as its CSV text would go: an integer into a float column
/// only if the float holds it exactly, a float into an integer column only if it is an integer
/// (`11.0`) in range, a float into `f32` rounded to nearest as text parsing rounds.
fn push_number(buf: &mut ColumnBuf, value: Value) -> Result<(), CellError> {
    let value = match (&*buf, value) {
        (ColumnBuf::F32(_) | ColumnBuf::F64(_), Value::Int(v)) => exact_float(v as f64, i128::from(v), buf)?,
        (ColumnBuf::F32(_) | ColumnBuf::F64(_), Value::UInt(v)) => exact_float(v as f64, i128::from(v), buf)?,
        (ColumnBuf::F32(_), Value::Float(x)) => Value::Float(f64::from(x as f32)),
        (ColumnBuf::Bool(_), _) => return Err(CellError::NotBoolean(value)),
        (ColumnBuf::F64(_), Value::Float(_)) => value,
        (_, Value::Float(x)) => {
            // An integer column: only integral floats, and they must fit (checked below).
            if x.fract() != 0.0 || !x.is_finite() {
                return Err(CellError::NotInteger(value));
            }
            if x < 0.0 {
                if x < i64::MIN as f64 {
                    return Err(CellError::OutOfRange(value));
                }
                Value::Int(x as i64)
            } else {
                if x >= u64::MAX as f64 {
                    return Err(CellError::OutOfRange(value));
                }
                Value::UInt(x as u64)
            }
        }
        _ => value,
    };
    Ok(push_value(buf, value)?)
}

/// `x`, the float of the integer `exact`, if the column's float type holds `exact` exactly.
fn exact_float(x: f64, exact: i128, buf: &ColumnBuf) -> Result<Value, CellError> {
    let (back, ty) = match buf {
        ColumnBuf::F32(_) => (f64::from(x as f32) as i128, FloatTy::F32),
        _ => (x as i128, FloatTy::F64),
    };
    if back == exact && (x as i128) == exact {
        Ok(Value::Float(match ty {
            FloatTy::F32 => f64::from(x as f32),
            FloatTy::F64 => x,
        }))
    } else {
        let ty = match ty {
            FloatTy::F32 => "f32",
            FloatTy::F64 => "f64",
        };
        Err(CellError::Inexact { value: exact, ty })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use std::sync::Arc;

    use arrow_array::{BinaryArray, Float64Array, Int32Array, Int64Array, StringArray};

    use super::*;

    /// The bulk paths take exactly what the row-by-row paths take, also from a slice of an
    /// array (whose offsets and values start inside its buffers).
    #[test]
    fn whole_columns_are_taken_as_row_by_row() {
        let keys: ArrayRef = Arc::new(StringArray::from(vec!["a", "bb", "ccc", "dddd", "é"]));
        let binary: ArrayRef = Arc::new(BinaryArray::from(vec![&b"x"[..], b"\xff\x00", b"zz"]));
        for column in [keys.slice(1, 3), keys.clone(), binary.slice(1, 2)] {
            let (mut keys, mut ends) = (vec![b'#'], vec![1]);
            assert!(extend_keys(&column, &mut keys, &mut ends));
            let mut expected = vec![b'#'];
            let mut expected_ends = vec![1];
            for row in 0..column.len() {
                assert!(push_key(&column, row, &mut expected).unwrap());
                expected_ends.push(expected.len());
            }
            assert_eq!((keys, ends), (expected, expected_ends));
        }
        let values: ArrayRef = Arc::new(Int32Array::from(vec![5, -7, 9, 11]));
        let mut buf = ColumnBuf::I32(vec![1]);
        assert!(extend_cells(&values.slice(1, 2), &mut buf));
        assert_eq!(buf, ColumnBuf::I32(vec![1, -7, 9]));
    }

    /// A Parquet key column stored dictionary-encoded in every row group is read as a
    /// dictionary (each distinct key once per batch); one stored plainly is read as strings.
    #[test]
    fn dictionary_encoded_key_columns_are_read_as_dictionaries() {
        use parquet::arrow::ArrowWriter;
        use parquet::file::properties::WriterProperties;

        let dir = naas_test_support::temp_dir();
        let keys: ArrayRef = Arc::new(StringArray::from_iter_values((0..5000).map(|i| format!("k{}", i % 7))));
        let values: ArrayRef = Arc::new(Int32Array::from_iter_values(0..5000));
        let batch = RecordBatch::try_from_iter([("key", keys), ("delay", values)]).unwrap();
        let agg =
            crate::Aggregation::from_source("r.naas", "aggregate r(delay: i32) -> i32:\n    return max(delay)\n", None)
                .unwrap();
        for dictionary in [true, false] {
            let path = dir.path().join(format!("keys-{dictionary}.parquet"));
            let properties = WriterProperties::builder()
                .set_dictionary_enabled(dictionary)
                .set_max_row_group_row_count(Some(1500))
                .build();
            let mut writer =
                ArrowWriter::try_new(File::create(&path).unwrap(), batch.schema(), Some(properties)).unwrap();
            writer.write(&batch).unwrap();
            writer.close().unwrap();
            let file = ColumnarFile::open(&path, ColumnarFormat::Parquet).unwrap();
            let schema = Schema::bind(file.header().to_vec(), &agg, "key", &[], "keys.parquet").unwrap();
            let mut batches = file.batches(&schema).unwrap();
            let mut rows = 0;
            while let Some(batch) = batches.next_batch().unwrap() {
                let key = batch.batch.column_by_name("key").unwrap();
                assert_eq!(key.as_dictionary_opt::<Int32Type>().is_some(), dictionary, "{:?}", key.data_type());
                let mut text = Vec::new();
                for row in 0..key.len() {
                    text.clear();
                    assert!(push_key(key, row, &mut text).unwrap());
                    assert_eq!(text, format!("k{}", (rows + row) % 7).as_bytes());
                }
                rows += key.len();
            }
            assert_eq!(rows, 5000);
        }
    }

    /// What needs converting or checking is left to the row-by-row paths, untouched.
    #[test]
    fn columns_that_need_a_look_at_each_value_are_refused_whole() {
        let (mut keys, mut ends) = (Vec::new(), Vec::new());
        for column in [
            Arc::new(StringArray::from(vec![Some("a"), None])) as ArrayRef,
            Arc::new(StringArray::from(vec!["a", ""])),
            Arc::new(Int64Array::from(vec![1, 2])),
        ] {
            assert!(!extend_keys(&column, &mut keys, &mut ends));
            assert!(keys.is_empty() && ends.is_empty());
        }
        let mut buf = ColumnBuf::I32(Vec::new());
        for column in [
            Arc::new(Int32Array::from(vec![Some(1), None])) as ArrayRef,
            Arc::new(Int64Array::from(vec![1, 2])),
            Arc::new(Float64Array::from(vec![1.0])),
        ] {
            assert!(!extend_cells(&column, &mut buf));
        }
        assert_eq!(buf, ColumnBuf::I32(Vec::new()));
    }
}
