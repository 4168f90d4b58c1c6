//! CSV input: binding columns to an aggregation's inputs, cutting a file into blocks that
//! workers parse in parallel, and turning a block's rows into typed columns with errors that
//! name the file, line, column and value.
//!
//! A block always ends just after a line end that lies outside quotes (`\n`, `\r\n`, or a
//! `\r` alone, as the csv crate reads them; quotes toggle the state, and an escaped quote `""`
//! toggles it twice), so no row spans two blocks and the workers' parsers agree with a single
//! sequential parser. A row may hold at most [`MAX_ROW_BYTES`] bytes and a key at most
//! [`MAX_KEY_BYTES`]: memory stays bounded by a few blocks whatever the input holds.

use std::collections::HashSet;
use std::io::Read;

use naas_target_native::values::{Column, ColumnBuf};

use crate::aggregation::Aggregation;
use crate::value::{excerpt, last_is_finite, push_text};

/// The most bytes one row (header included) may hold. A longer stretch without a line end
/// outside quotes is an error naming the row's line: without the limit a file with no line
/// ends (or `/dev/zero`) would be buffered whole.
pub const MAX_ROW_BYTES: usize = 16 << 20;

/// The longest key, in bytes (the wire format's limit, checked where rows are parsed so that
/// every engine reports it with the row's position).
pub const MAX_KEY_BYTES: usize = crate::wire::MAX_KEY_LEN;

/// Column names quoted in an error that lists a header's columns.
const LISTED_COLUMNS: usize = 20;

/// The header's column names for an error message, at most [`LISTED_COLUMNS`] of them.
fn list_columns(header: &[String]) -> String {
    let mut listed: Vec<String> = header.iter().take(LISTED_COLUMNS).map(|name| excerpt(name)).collect();
    if header.len() > LISTED_COLUMNS {
        listed.push(format!("... ({} more)", header.len() - LISTED_COLUMNS));
    }
    listed.join(", ")
}

/// Why an input file cannot be used: it cannot be opened or read, its header is malformed, or
/// the header does not bind the key and the aggregation's inputs. Quoted names are cut with
/// [`excerpt`] where they come from the file.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot open `{file}`: {source}")]
    Open { file: String, source: std::io::Error },
    /// Reading failed, or the header row is longer than a row may be.
    #[error("`{file}`: {source}")]
    Read { file: String, source: ReadError },
    #[error("`{file}` is empty: expected a header row")]
    Empty { file: String },
    /// The CSV parser refused the header row (its message is kept as rendered).
    #[error("`{file}`: cannot read the header: {message}")]
    HeaderUnreadable { file: String, message: String },
    #[error("{file}:1:{column}: the header's column name is not UTF-8")]
    HeaderNotUtf8 { file: String, column: usize },
    #[error("{file}:1:{column}: the header names column `{name}` twice")]
    DuplicateColumn { file: String, column: usize, name: String },
    #[error("`{file}` has no key column `{key}`; its columns are: {columns}")]
    NoKeyColumn { file: String, key: String, columns: String },
    /// `--bind INPUT=COLUMN` names an input the aggregation does not have.
    #[error("`--bind {input}=...` names no input of `{aggregate}`; its inputs are: {inputs}")]
    UnknownBind { input: String, aggregate: String, inputs: String },
    /// No column feeds an input of the aggregation (boxed: it is the largest variant).
    #[error(transparent)]
    NoInputColumn(Box<MissingInput>),
    /// A Parquet or Arrow file that cannot be read, or whose columns cannot fill the inputs.
    #[error(transparent)]
    Columnar(Box<crate::columnar_input::ColumnarError>),
}

/// An input of the aggregation that no column of the file feeds.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{aggregate}` reads `{input}` ({ty}) but `{file}` has no column `{column}`; its columns are: {columns}\n  \
     help: name the column with `--bind {input}=COLUMN`"
)]
pub struct MissingInput {
    pub aggregate: String,
    pub input: String,
    pub ty: &'static str,
    pub file: String,
    /// The column it would bind to: its own name, or the one `--bind` gave.
    pub column: String,
    pub columns: String,
}

/// Which CSV column feeds the key and each input of the aggregation.
#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    pub header: Vec<String>,
    pub key: usize,
    /// The CSV column of each input, in the aggregation's input order.
    pub inputs: Vec<usize>,
}

impl Schema {
    /// Binds inputs to columns of the same name, or to the column a `(input, column)` pair
    /// in `binds` names (the input may be written as its binding name or its full path).
    pub fn bind(
        header: Vec<String>,
        aggregation: &Aggregation,
        key: &str,
        binds: &[(String, String)],
        file: &str,
    ) -> Result<Schema, InputError> {
        let columns = || list_columns(&header);
        let find = |name: &str| header.iter().position(|h| h == name);
        let key_index = find(key).ok_or_else(|| InputError::NoKeyColumn {
            file: file.to_string(),
            key: key.to_string(),
            columns: columns(),
        })?;
        for (input, _) in binds {
            if !aggregation.inputs().iter().any(|i| &i.name == input || &i.path == input) {
                let names: Vec<&str> = aggregation.inputs().iter().map(|i| i.name.as_str()).collect();
                return Err(InputError::UnknownBind {
                    input: input.clone(),
                    aggregate: aggregation.name().to_string(),
                    inputs: names.join(", "),
                });
            }
        }
        let mut inputs = Vec::new();
        for input in aggregation.inputs() {
            let wanted = binds
                .iter()
                .rev()
                .find(|(name, _)| name == &input.name || name == &input.path)
                .map_or(input.name.as_str(), |(_, column)| column.as_str());
            let index = find(wanted).ok_or_else(|| {
                InputError::NoInputColumn(Box::new(MissingInput {
                    aggregate: aggregation.name().to_string(),
                    input: input.name.clone(),
                    ty: input.ty.name(),
                    file: file.to_string(),
                    column: wanted.to_string(),
                    columns: columns(),
                }))
            })?;
            inputs.push(index);
        }
        Ok(Schema { header, key: key_index, inputs })
    }
}

impl Schema {
    /// Checks a row's shape and returns its key: a ragged row or an empty key is an error.
    /// `line` gives the row's line, called only for an error (counting lines costs more than
    /// checking a valid row).
    pub fn key_of<'r, R: Fields>(
        &self,
        record: &'r R,
        file: &str,
        line: impl FnOnce() -> u64,
    ) -> Result<&'r [u8], RowError> {
        if record.count() != self.header.len() {
            return Err(RowError {
                file: file.to_string(),
                line: line(),
                column: None,
                message: format!("the row has {} fields, the header has {}", record.count(), self.header.len()),
            });
        }
        let problem = match record.field(self.key) {
            Some(key) if key.len() > MAX_KEY_BYTES => {
                format!("the key is {} bytes long; a key may hold at most {MAX_KEY_BYTES} bytes (1 MiB)", key.len())
            }
            Some(key) if !key.is_empty() => return Ok(key),
            _ => "the key field is empty".to_string(),
        };
        Err(RowError {
            file: file.to_string(),
            line: line(),
            column: Some((self.key + 1, self.header[self.key].clone())),
            message: problem,
        })
    }
}

/// A bad row: where it is and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    pub file: String,
    pub line: u64,
    /// 1-based column number and name, when one field is at fault.
    pub column: Option<(usize, String)>,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some((number, name)) => {
                write!(f, "{}:{}:{number}: column `{name}`: {}", self.file, self.line, self.message)
            }
            None => write!(f, "{}:{}: {}", self.file, self.line, self.message),
        }
    }
}

/// A run of whole rows of the file.
#[derive(Debug)]
pub struct Block {
    /// Position in the file, from 0.
    pub index: u64,
    /// The line of the block's first byte (1-based).
    pub first_line: u64,
    pub bytes: Vec<u8>,
}

const READ_SIZE: usize = 1 << 20;

/// Why the next block could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The source failed.
    Io(std::io::Error),
    /// The row starting on `line` holds more than `limit` bytes without a line end.
    RowTooLong { line: u64, limit: usize },
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(error) => write!(f, "read error: {error}"),
            ReadError::RowTooLong { line, limit } => write!(f, "line {line}: {}", row_too_long(*limit)),
        }
    }
}

impl std::error::Error for ReadError {}

impl ReadError {
    /// The error as a bad row of `file` (a row that is too long is the data's fault) or, for
    /// a failing source, the source's own error.
    pub fn into_row_error(self, file: &str) -> Result<RowError, std::io::Error> {
        match self {
            ReadError::RowTooLong { line, limit } => {
                Ok(RowError { file: file.to_string(), line, column: None, message: row_too_long(limit) })
            }
            ReadError::Io(error) => Err(error),
        }
    }
}

fn row_too_long(limit: usize) -> String {
    format!(
        "the row holds more than {limit} bytes without a line end outside quotes (the limit on one row); \
         is the file CSV, and are its quotes balanced?"
    )
}

/// Line ends in `bytes`: each `\n`, each `\r\n` (once) and each `\r` not followed by `\n`.
/// A slice must not end between the `\r` and the `\n` of one line end.
pub fn count_line_ends(bytes: &[u8]) -> u64 {
    let newlines = memchr::memchr_iter(b'\n', bytes).count();
    let lone_returns = memchr::memchr_iter(b'\r', bytes).filter(|&i| bytes.get(i + 1) != Some(&b'\n')).count();
    (newlines + lone_returns) as u64
}

/// Reads a CSV source as a header and then blocks of whole rows.
pub struct BlockReader<R> {
    source: R,
    carry: Vec<u8>,
    block_size: usize,
    next_index: u64,
    next_line: u64,
    done: bool,
    scanner: RowScanner,
    max_row: usize,
    /// Bytes read from the source so far.
    pub consumed: u64,
}

impl<R: Read> BlockReader<R> {
    pub fn new(source: R, block_size: usize) -> BlockReader<R> {
        BlockReader {
            source,
            carry: Vec::new(),
            block_size: block_size.max(64),
            next_index: 0,
            next_line: 1,
            done: false,
            scanner: RowScanner::default(),
            max_row: MAX_ROW_BYTES,
            consumed: 0,
        }
    }

    /// Sets the most bytes one row may hold (default [`MAX_ROW_BYTES`]; tests use less).
    pub fn with_max_row(mut self, max_row: usize) -> BlockReader<R> {
        self.max_row = max_row.max(1);
        self
    }

    /// Reads the header row. An empty source has no header: that is an error.
    pub fn header(&mut self, file: &str) -> Result<Vec<String>, InputError> {
        let empty = || InputError::Empty { file: file.to_string() };
        let block = self
            .next_block()
            .map_err(|source| InputError::Read { file: file.to_string(), source })?
            .ok_or_else(empty)?;
        let mut reader = csv_reader(&block.bytes);
        let mut record = csv::ByteRecord::new();
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return Err(empty()),
            Err(e) => return Err(InputError::HeaderUnreadable { file: file.to_string(), message: e.to_string() }),
        }
        let header = record
            .iter()
            .enumerate()
            .map(|(i, field)| {
                std::str::from_utf8(field)
                    .map(|s| s.trim().to_string())
                    .map_err(|_| InputError::HeaderNotUtf8 { file: file.to_string(), column: i + 1 })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // One pass with a set: a header may have hundreds of thousands of columns.
        let mut seen = HashSet::with_capacity(header.len());
        for (i, name) in header.iter().enumerate() {
            if !seen.insert(name.as_str()) {
                return Err(InputError::DuplicateColumn { file: file.to_string(), column: i + 1, name: excerpt(name) });
            }
        }
        // Put the rows after the header back in front of the stream.
        let mut used = reader.position().byte() as usize;
        // After `\r\n` the parser stops before the `\n`: it belongs to the header's line.
        if block.bytes.get(used) == Some(&b'\n') {
            used += 1;
        }
        let mut rest = block.bytes[used..].to_vec();
        rest.extend_from_slice(&self.carry);
        self.carry = rest;
        self.scanner = RowScanner::default();
        self.next_line = 1 + count_line_ends(&block.bytes[..used]);
        self.next_index = 0;
        Ok(header)
    }

    /// The next block of whole rows, or `None` at the end.
    pub fn next_block(&mut self) -> Result<Option<Block>, ReadError> {
        loop {
            self.scanner.scan(&self.carry);
            if self.carry.len() >= self.block_size {
                if let Some(cut) = self.scanner.last_end {
                    let rest = self.carry.split_off(cut);
                    let bytes = std::mem::replace(&mut self.carry, rest);
                    self.scanner.cut(cut);
                    return Ok(Some(self.emit(bytes)));
                }
            }
            // The buffer holds whole rows up to `last_end`, then the row being read.
            let row_start = self.scanner.last_end.unwrap_or(0);
            if self.carry.len() - row_start > self.max_row {
                let line = self.next_line + count_line_ends(&self.carry[..row_start]);
                return Err(ReadError::RowTooLong { line, limit: self.max_row });
            }
            if self.done {
                if self.carry.is_empty() {
                    return Ok(None);
                }
                let bytes = std::mem::take(&mut self.carry);
                self.scanner = RowScanner::default();
                return Ok(Some(self.emit(bytes)));
            }
            let start = self.carry.len();
            // Read in slices of at most 1 MiB: a large block size must not mean a large read.
            self.carry.resize(start + self.block_size.min(READ_SIZE), 0);
            let read = loop {
                match self.source.read(&mut self.carry[start..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(ReadError::Io(e)),
                }
            };
            self.carry.truncate(start + read);
            self.consumed += read as u64;
            if read == 0 {
                self.done = true;
            }
        }
    }

    fn emit(&mut self, bytes: Vec<u8>) -> Block {
        let block = Block { index: self.next_index, first_line: self.next_line, bytes };
        self.next_index += 1;
        self.next_line += count_line_ends(&block.bytes);
        block
    }
}

/// Where a byte leaves the CSV parser, as far as row ends are concerned. It follows the csv
/// crate's rules: a quote opens a quoted field only at the start of a field, `""` inside quotes
/// is a quote, and a quote inside an unquoted field is an ordinary character.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Quoting {
    #[default]
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: it closes the field unless another quote follows.
    QuoteInQuoted,
    /// A `\r` outside quotes: it ends the row, together with the next byte if that is `\n`.
    AfterCr,
}

impl Quoting {
    fn outside(self) -> bool {
        matches!(self, Quoting::FieldStart | Quoting::Unquoted | Quoting::AfterCr)
    }
}

/// Finds row ends (line ends outside quoted fields) incrementally: bytes are scanned once, even
/// when a block needs several reads. A `\r` at the end of the bytes seen so far is a row end
/// only once the next byte is known (it may be the first half of `\r\n`).
#[derive(Clone, Copy, Debug, Default)]
struct RowScanner {
    state: Quoting,
    /// Bytes of the buffer already scanned.
    scanned: usize,
    /// Just after the last row end found.
    last_end: Option<usize>,
}

impl RowScanner {
    fn scan(&mut self, bytes: &[u8]) {
        let new = &bytes[self.scanned.min(bytes.len())..];
        if self.state.outside() && memchr::memchr(b'"', new).is_none() {
            // No quote (the common case): the last line end is the last row end, so only the
            // bytes from it on need the state machine. Outside quotes the state before a byte
            // matters only after a `\r`, so the machine starts on that `\r` when there is one.
            if let Some(last) = memchr::memrchr2(b'\n', b'\r', new) {
                let start = match last {
                    0 => 0,
                    _ => {
                        self.state = Quoting::Unquoted;
                        last - usize::from(new[last - 1] == b'\r')
                    }
                };
                self.step(bytes, self.scanned + start);
                return;
            }
        }
        self.step(bytes, self.scanned);
    }

    /// Runs the state machine over `bytes[from..]`.
    fn step(&mut self, bytes: &[u8], from: usize) {
        for (i, &b) in bytes.iter().enumerate().skip(from) {
            let mut state = self.state;
            if state == Quoting::AfterCr {
                if b == b'\n' {
                    self.last_end = Some(i + 1);
                    self.state = Quoting::FieldStart;
                    continue;
                }
                // A `\r` alone ended the row; this byte starts the next one.
                self.last_end = Some(i);
                state = Quoting::FieldStart;
            }
            self.state = match (state, b) {
                (Quoting::FieldStart, b'"') => Quoting::Quoted,
                (Quoting::Quoted, b'"') => Quoting::QuoteInQuoted,
                (Quoting::Quoted, _) => Quoting::Quoted,
                (Quoting::QuoteInQuoted, b'"') => Quoting::Quoted,
                (_, b'\n') => {
                    self.last_end = Some(i + 1);
                    Quoting::FieldStart
                }
                (_, b'\r') => Quoting::AfterCr,
                (_, b',') => Quoting::FieldStart,
                _ => Quoting::Unquoted,
            };
        }
        self.scanned = bytes.len();
    }

    /// The first `cut` bytes (whole rows) were taken off the buffer.
    fn cut(&mut self, cut: usize) {
        self.scanned -= cut;
        self.last_end = None;
    }
}

/// Line numbers of the records of one block: counts newlines between record starts, once.
#[derive(Debug)]
pub struct Lines<'b> {
    bytes: &'b [u8],
    at: usize,
    line: u64,
}

impl<'b> Lines<'b> {
    pub fn new(block: &'b Block) -> Lines<'b> {
        Lines { bytes: &block.bytes, at: 0, line: block.first_line }
    }

    /// The line on which `record` (the next record of the block) starts.
    pub fn line_of(&mut self, record: &csv::ByteRecord) -> u64 {
        self.line_at(record.position().map_or(self.at as u64, |p| p.byte()))
    }

    /// The line of the record that starts at byte `position` of the block (the parser's
    /// [`csv::Position::byte`]); records are asked for in order, so each line end is counted
    /// once.
    pub fn line_at(&mut self, position: u64) -> u64 {
        let mut start = usize::try_from(position).unwrap_or(usize::MAX).min(self.bytes.len());
        // The parser may report a record as starting on the `\n` of the previous `\r\n`.
        while start < self.bytes.len() && matches!(self.bytes[start], b'\n' | b'\r') {
            start += 1;
        }
        if start > self.at {
            self.line += count_line_ends(&self.bytes[self.at..start]);
            self.at = start;
        }
        self.line
    }
}

pub fn csv_reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes)
}

/// The fields of one CSV row, however it was split.
pub trait Fields {
    /// How many fields the row has.
    fn count(&self) -> usize;
    /// Field `i` (from 0), if the row has it.
    fn field(&self, i: usize) -> Option<&[u8]>;
}

impl Fields for csv::ByteRecord {
    fn count(&self) -> usize {
        self.len()
    }

    fn field(&self, i: usize) -> Option<&[u8]> {
        self.get(i)
    }
}

/// A row with no quotes split at its commas: field `i` is `line[spans[i].0..spans[i].1]`.
pub struct SplitRow<'a> {
    pub line: &'a [u8],
    pub spans: &'a [(usize, usize)],
}

impl Fields for SplitRow<'_> {
    fn count(&self) -> usize {
        self.spans.len()
    }

    fn field(&self, i: usize) -> Option<&[u8]> {
        self.spans.get(i).map(|&(start, end)| &self.line[start..end])
    }
}

/// The typed columns of a batch of rows, ready for one native fold.
#[derive(Debug)]
pub struct ColumnBatch {
    pub columns: Vec<ColumnBuf>,
    /// Where each row is, as the caller locates rows: its line, or (the local executor, which
    /// counts lines only for a row that fails) its byte position in its block.
    pub rows: Vec<u64>,
    /// Reject `inf`, `-inf` and `NaN` in float columns (fixed point cannot carry them).
    pub finite_floats: bool,
}

impl ColumnBatch {
    pub fn new(aggregation: &Aggregation) -> ColumnBatch {
        ColumnBatch {
            columns: aggregation.inputs().iter().map(|i| ColumnBuf::new(i.ty)).collect(),
            rows: Vec::new(),
            finite_floats: false,
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn columns(&self) -> Vec<Column<'_>> {
        self.columns.iter().map(ColumnBuf::column).collect()
    }

    pub fn clear(&mut self) {
        for column in &mut self.columns {
            column.truncate(0);
        }
        self.rows.clear();
    }

    /// Parses the bound fields of a row that passed [`Schema::key_of`] and keeps `locator` as
    /// where it is. On an error nothing of the row is kept, and the error names the row's line
    /// (`line` is called only then).
    pub fn push_row<R: Fields>(
        &mut self,
        schema: &Schema,
        record: &R,
        file: &str,
        locator: u64,
        line: impl FnOnce() -> u64,
    ) -> Result<(), RowError> {
        let rows = self.rows.len();
        for (i, &index) in schema.inputs.iter().enumerate() {
            let field = record.field(index).unwrap_or_default();
            let mut pushed = push_text(&mut self.columns[i], field).map_err(|error| error.to_string());
            if pushed.is_ok() && self.finite_floats && !last_is_finite(&self.columns[i]) {
                pushed = Err(format!(
                    "`{}` is not a finite number: with `--fixed-point` float inputs must be finite \
                     (fixed point has no infinities or NaN)",
                    excerpt(String::from_utf8_lossy(field).trim_matches([' ', '\t']))
                ));
            }
            if let Err(message) = pushed {
                for column in &mut self.columns[..=i] {
                    column.truncate(rows);
                }
                return Err(RowError {
                    file: file.to_string(),
                    line: line(),
                    column: Some((index + 1, schema.header[index].clone())),
                    message,
                });
            }
        }
        self.rows.push(locator);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use proptest::prelude::*;

    /// Rows as (line, fields).
    type Rows = Vec<(u64, Vec<Vec<u8>>)>;

    fn rows_of(blocks: &[Block]) -> Rows {
        let mut out = Vec::new();
        for block in blocks {
            let mut reader = csv_reader(&block.bytes);
            let mut record = csv::ByteRecord::new();
            let mut lines = Lines::new(block);
            while reader.read_byte_record(&mut record).unwrap() {
                let line = lines.line_of(&record);
                out.push((line, record.iter().map(<[u8]>::to_vec).collect()));
            }
        }
        out
    }

    fn read_all(text: &[u8], block_size: usize) -> (Vec<String>, Rows) {
        let mut reader = BlockReader::new(text, block_size);
        let header = reader.header("t.csv").unwrap();
        let mut blocks = Vec::new();
        while let Some(block) = reader.next_block().unwrap() {
            blocks.push(block);
        }
        (header, rows_of(&blocks))
    }

    #[test]
    fn blocks_keep_rows_whole_and_count_lines() {
        let text = b"k,x\na,1\n\"b\nc\",2\n\"d\"\"\",3\ne,4";
        for size in [64, 65, 100, 1000] {
            let (header, rows) = read_all(text, size);
            assert_eq!(header, vec!["k", "x"]);
            let lines: Vec<u64> = rows.iter().map(|(l, _)| *l).collect();
            assert_eq!(lines, vec![2, 3, 5, 6], "block size {size}");
            assert_eq!(rows[1].1[0], b"b\nc".to_vec());
            assert_eq!(rows[2].1[0], b"d\"".to_vec());
        }
    }

    #[test]
    fn line_numbers_count_crlf_and_blank_lines() {
        let (_, rows) = read_all(b"k,x\r\na,1\r\n\r\nb,2\r\nc,3\nd,4\r\n", 64);
        let lines: Vec<u64> = rows.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![2, 4, 5, 6]);
    }

    #[test]
    fn a_quote_inside_an_unquoted_field_is_an_ordinary_character() {
        // `F"1` does not open a quoted field (the csv crate's rule), so the newline inside the
        // later quoted field must not be taken for a row end whatever the block size.
        let mut text = b"k,x\nF\"1,5\n".to_vec();
        for i in 0..50 {
            text.extend_from_slice(format!("r{i},{i}\n").as_bytes());
        }
        text.extend_from_slice(b"\"M\nL\",7\nz,9\n");
        let whole = read_all(&text, 1 << 20);
        assert_eq!(whole.1.len(), 53);
        assert_eq!(whole.1[51].1[0], b"M\nL".to_vec());
        for size in 64..200 {
            assert_eq!(read_all(&text, size), whole, "block size {size}");
        }
    }

    proptest! {
        // Cheap cases: proptest's default count when `PROPTEST_CASES` is unset, and about as
        // many under CI's 10,000.
        #![proptest_config(naas_test_support::proptest_config(40))]
        #[test]
        fn any_block_size_reads_what_one_sequential_parser_reads(
            rows in proptest::collection::vec(proptest::collection::vec("[a-c,\"\n ]{0,6}", 2), 0..40),
            size in 64usize..200,
        ) {
            let mut writer = csv::Writer::from_writer(Vec::new());
            writer.write_record(["k", "x"]).unwrap();
            for row in &rows {
                writer.write_record(row).unwrap();
            }
            let text = writer.into_inner().unwrap();
            let whole = read_all(&text, 1 << 20);
            let cut = read_all(&text, size);
            prop_assert_eq!(whole, cut);
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_errors_carry_a_line(
            bytes in proptest::collection::vec(any::<u8>(), 0..400),
            size in 64usize..200,
            max_row in 1usize..300,
        ) {
            let mut reader = BlockReader::new(&bytes[..], size).with_max_row(max_row);
            if reader.header("a.csv").is_ok() {
                let mut last_line = 0;
                loop {
                    match reader.next_block() {
                        Ok(Some(block)) => {
                            prop_assert!(block.first_line > last_line);
                            last_line = block.first_line;
                        }
                        Ok(None) => break,
                        Err(error) => {
                            let row = error.into_row_error("a.csv").unwrap();
                            prop_assert!(row.line >= 2);
                            break;
                        }
                    }
                }
            }
        }

        #[test]
        fn bare_cr_text_cuts_like_one_parser_and_like_its_lf_twin(
            rows in proptest::collection::vec("[a-c]{1,4},[0-9]{1,3}", 0..60),
            size in 64usize..200,
        ) {
            let cr = format!("k,x\r{}", rows.join("\r")).into_bytes();
            let lf = format!("k,x\n{}", rows.join("\n")).into_bytes();
            let whole = read_all(&cr, 1 << 20);
            prop_assert_eq!(&whole, &read_all(&cr, size));
            prop_assert_eq!(&whole, &read_all(&lf, size));
        }

        #[test]
        fn raw_text_with_stray_quotes_and_crlf_cuts_like_one_parser(
            body in "[ab,\"\r\n]{0,300}",
            size in 64usize..200,
        ) {
            let text = format!("k,x\n{body}").into_bytes();
            prop_assert_eq!(read_all(&text, 1 << 20), read_all(&text, size));
        }
    }

    #[test]
    fn bare_carriage_returns_end_rows_cut_blocks_and_count_lines() {
        let mut text = b"k,x\r".to_vec();
        for i in 0..200 {
            text.extend_from_slice(format!("r{i},{i}\r").as_bytes());
        }
        let whole = read_all(&text, 1 << 20);
        assert_eq!(whole.1.len(), 200);
        assert_eq!(whole.1[2].0, 4, "the third row is on line 4");
        assert_eq!(whole.1[199].0, 201);
        // Small blocks: the file is cut into many, each of whole rows.
        let mut reader = BlockReader::new(&text[..], 64);
        reader.header("t.csv").unwrap();
        let mut blocks = 0;
        while let Some(block) = reader.next_block().unwrap() {
            assert!(block.bytes.len() < 200, "a block of {} bytes", block.bytes.len());
            blocks += 1;
        }
        assert!(blocks > 10, "{blocks} blocks");
        for size in [64, 65, 77, 100] {
            assert_eq!(read_all(&text, size), whole, "block size {size}");
        }
    }

    #[test]
    fn mixed_line_ends_count_one_line_each() {
        // `\r\n` is one line end, `\r\r` two, `\n\r` two.
        let (_, rows) = read_all(b"k,x\ra,1\r\nb,2\r\rc,3\n\rd,4\re,5", 64);
        let lines: Vec<u64> = rows.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![2, 3, 5, 7, 8]);
        assert_eq!(count_line_ends(b"a\r\nb\rc\nd\r"), 4);
    }

    #[test]
    fn a_row_without_a_line_end_is_bounded_and_named_by_its_line() {
        let mut text = b"k,x\na,1\nb,2\n".to_vec();
        text.extend(std::iter::repeat_n(b'z', 5000));
        let mut reader = BlockReader::new(&text[..], 64).with_max_row(1000);
        reader.header("t.csv").unwrap();
        let error = loop {
            match reader.next_block() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("the long row was accepted"),
                Err(error) => break error,
            }
        };
        let row = error.into_row_error("t.csv").unwrap();
        assert_eq!(row.line, 4);
        assert!(row.message.contains("more than 1000 bytes"), "{}", row.message);
        // The reader never held much more than the limit.
        assert!(reader.carry.len() < 1000 + READ_SIZE.min(64) + 64, "{}", reader.carry.len());
        // The same inside an unterminated quoted field, and for a header without a line end.
        let text = [b"k,x\na,\"".to_vec(), vec![b'q'; 5000]].concat();
        let mut reader = BlockReader::new(&text[..], 64).with_max_row(1000);
        reader.header("t.csv").unwrap();
        assert!(matches!(reader.next_block(), Err(ReadError::RowTooLong { line: 2, limit: 1000 })));
        let mut reader = BlockReader::new(&[b'h'; 5000][..], 64).with_max_row(1000);
        let error = reader.header("h.csv").unwrap_err();
        assert!(matches!(error, InputError::Read { source: ReadError::RowTooLong { line: 1, limit: 1000 }, .. }));
        assert!(error.to_string().starts_with("`h.csv`: line 1: the row holds more than 1000 bytes"), "{error}");
    }

    #[test]
    fn a_wide_header_is_checked_in_linear_time() {
        // 400,000 columns took minutes with a quadratic duplicate check.
        let names: Vec<String> = (0..400_000).map(|i| format!("c{i}")).collect();
        let mut text = names.join(",").into_bytes();
        text.extend_from_slice(b",c17\n");
        let started = std::time::Instant::now();
        let error = BlockReader::new(&text[..], 1 << 20).header("w.csv").unwrap_err();
        assert_eq!(error.to_string(), "w.csv:1:400001: the header names column `c17` twice");
        assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
        // Errors that list the columns quote only the first few.
        let listed = list_columns(&names);
        assert!(listed.ends_with("... (399980 more)"), "{}", &listed[listed.len() - 40..]);
    }

    #[test]
    fn an_oversized_key_is_a_row_error() {
        let schema = Schema { header: vec!["k".into(), "x".into()], key: 0, inputs: vec![1] };
        let long = vec![b'a'; MAX_KEY_BYTES + 1];
        let record = csv::ByteRecord::from(vec![&long[..], b"1"]);
        let error = schema.key_of(&record, "t.csv", || 9).unwrap_err();
        assert_eq!(error.line, 9);
        assert_eq!(error.column, Some((1, "k".to_string())));
        assert!(error.message.contains("at most 1048576 bytes"), "{}", error.message);
        let fits = vec![b'a'; MAX_KEY_BYTES];
        let record = csv::ByteRecord::from(vec![&fits[..], b"1"]);
        assert_eq!(schema.key_of(&record, "t.csv", || 9).unwrap().len(), MAX_KEY_BYTES);
    }

    #[test]
    fn headers_that_do_not_bind_are_typed_errors_with_their_messages() {
        let source = "aggregate s(delay: i64) -> i64:\n    return sum(delay)\n";
        let agg = Aggregation::from_source("s.naas", source, None).unwrap();
        let header = || vec!["k".to_string(), "late".to_string()];
        let error = Schema::bind(header(), &agg, "key", &[], "f.csv").unwrap_err();
        assert!(matches!(&error, InputError::NoKeyColumn { key, .. } if key == "key"), "{error:?}");
        assert_eq!(error.to_string(), "`f.csv` has no key column `key`; its columns are: k, late");
        let error = Schema::bind(header(), &agg, "k", &[], "f.csv").unwrap_err();
        assert!(matches!(&error, InputError::NoInputColumn(missing) if missing.column == "delay"), "{error:?}");
        assert!(error.to_string().ends_with("help: name the column with `--bind delay=COLUMN`"), "{error}");
        let binds = [("speed".to_string(), "late".to_string())];
        let error = Schema::bind(header(), &agg, "k", &binds, "f.csv").unwrap_err();
        assert_eq!(error.to_string(), "`--bind speed=...` names no input of `s`; its inputs are: delay");
        let binds = [("delay".to_string(), "late".to_string())];
        assert_eq!(Schema::bind(header(), &agg, "k", &binds, "f.csv").unwrap().inputs, vec![1]);
    }

    #[test]
    fn empty_files_and_duplicate_columns_are_errors() {
        let mut reader = BlockReader::new(&b""[..], 1024);
        assert_eq!(reader.header("e.csv").unwrap_err().to_string(), "`e.csv` is empty: expected a header row");
        let mut reader = BlockReader::new(&b"a,b,a\n"[..], 1024);
        assert_eq!(reader.header("d.csv").unwrap_err().to_string(), "d.csv:1:3: the header names column `a` twice");
    }
}
