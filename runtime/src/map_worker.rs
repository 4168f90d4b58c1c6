//! A map worker: parses units of input (CSV blocks, columnar batches), folds their records per
//! key into combiner tables with the compiled code, and seals the tables into wire buffers by
//! reduce partition (or by mapper, for a network). The local executor runs several on threads
//! that take turns reading the input; a timely worker runs one over the units it owns.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int32Type;
use arrow_array::{Array, ArrayRef};
use naas_target_native::values::ColumnBuf;
use naas_target_native::CallError;

use crate::aggregation::Aggregation;
use crate::columnar_input::{extend_cells, extend_keys, push_cell, push_key, Batches, ColumnarBatch, ColumnarFile};
use crate::csv_input::{
    count_line_ends, csv_reader, Block, BlockReader, ColumnBatch, Fields, Lines, RowError, Schema, SplitRow,
};
use crate::executor::{partition_of, Grouping, Input, JobConfig, JobError, JobInput, JobStats, BATCH_ROWS};
use crate::key_order;
use crate::table::{Distance, StateTable, ValueIndex};
use crate::value::last_is_finite;
use crate::wire::{WireError, WireWriter};

/// A unit of input for a map worker, numbered in input order.
#[derive(Debug)]
pub(crate) enum Work {
    Rows(Block),
    Columns(ColumnarBatch),
}

impl Work {
    pub(crate) fn index(&self) -> u64 {
        match self {
            Work::Rows(block) => block.index,
            Work::Columns(batch) => batch.index,
        }
    }
}

/// The input as units of work: blocks of CSV rows, or batches of a columnar file.
pub(crate) enum WorkReader<R> {
    Csv(BlockReader<R>, String),
    Columnar(Batches),
}

impl<R: Read> WorkReader<R> {
    pub(crate) fn next_work(&mut self) -> Result<Option<Work>, JobError> {
        match self {
            WorkReader::Csv(blocks, name) => {
                Ok(blocks.next_block().map_err(|e| JobError::from_read(e, name))?.map(Work::Rows))
            }
            WorkReader::Columnar(batches) => {
                Ok(batches.next_batch().map_err(|e| JobError::Input(e.to_string()))?.map(Work::Columns))
            }
        }
    }

    /// Bytes of the input read so far (rows read, for a columnar file).
    pub(crate) fn consumed(&self) -> u64 {
        match self {
            WorkReader::Csv(blocks, _) => blocks.consumed,
            WorkReader::Columnar(_) => 0,
        }
    }
}

/// An input opened for map workers: its name for messages, its size when known, the columns
/// the job binds, and the reader of its units.
pub(crate) struct OpenedInput<R> {
    pub(crate) name: String,
    pub(crate) size: Option<u64>,
    pub(crate) schema: Schema,
    pub(crate) units: WorkReader<R>,
}

/// Opens `input`: reads a CSV header (or a columnar file's schema) and binds the key and the
/// aggregation's inputs to its columns, checking a columnar file's column types.
pub(crate) fn open_input<R: Read>(
    aggregation: &Aggregation,
    input: JobInput<R>,
    key: &str,
    binds: &[(String, String)],
    config: &JobConfig,
) -> Result<OpenedInput<R>, JobError> {
    match input {
        JobInput::Csv(Input { name, reader, size }) => {
            let mut blocks = BlockReader::new(reader, config.block_size).with_max_row(config.max_row);
            let header = blocks.header(&name)?;
            let schema = Schema::bind(header, aggregation, key, binds, &name)?;
            Ok(OpenedInput { name: name.clone(), size, schema, units: WorkReader::Csv(blocks, name) })
        }
        JobInput::Columnar(file) => open_columnar(aggregation, &file, key, binds),
    }
}

fn open_columnar<R>(
    aggregation: &Aggregation,
    file: &ColumnarFile,
    key: &str,
    binds: &[(String, String)],
) -> Result<OpenedInput<R>, JobError> {
    let schema = Schema::bind(file.header().to_vec(), aggregation, key, binds, &file.name)?;
    let buffers: Vec<ColumnBuf> = aggregation.inputs().iter().map(|i| ColumnBuf::new(i.ty)).collect();
    file.check(&schema, &buffers).map_err(|e| JobError::Input(e.to_string()))?;
    let batches = file.batches(&schema).map_err(|e| JobError::Input(e.to_string()))?;
    Ok(OpenedInput { name: file.name.clone(), size: None, schema, units: WorkReader::Columnar(batches) })
}

/// Where the rows of a batch come from, to turn a row's locator into the line (or row number)
/// an error names.
#[derive(Clone, Copy)]
enum Origin<'a> {
    /// A CSV block: locators are byte positions in it.
    Block(&'a Block),
    /// A columnar file: locators are row numbers.
    Rows,
}

pub(crate) struct SealedBuffer {
    /// Entries, when counted (the wire header has them too).
    pub(crate) entries: Option<u32>,
    pub(crate) bytes: Vec<u8>,
}

/// Entries between a prefetch and its use when a table is sealed in key order.
const SEAL_AHEAD: usize = 16;

/// One map worker's state.
pub(crate) struct MapWorker<'a> {
    aggregation: &'a Aggregation,
    schema: &'a Schema,
    file: &'a str,
    config: &'a JobConfig,
    grouping: Grouping,
    /// Combiner tables by group (one for the host shuffle, one per mapper met otherwise).
    tables: Vec<(usize, StateTable)>,
    /// Without combining: the shuffle buffers being written, by partition.
    direct: Vec<WireWriter>,
    batch: ColumnBatch,
    /// The keys of the batch's rows, back to back; row `i`'s ends at `key_ends[i]`. They are
    /// looked up together when the batch is folded (see `KeyIndex::slots`).
    key_bytes: Vec<u8>,
    key_ends: Vec<usize>,
    slots: Vec<u32>,
    /// Where the fields of a row split at its commas are (see [`MapWorker::split_rows`]).
    spans: Vec<(usize, usize)>,
    /// The slots of a dictionary-encoded key column's distinct keys, met so far (see
    /// [`MapWorker::bulk`]).
    dictionary: DictionarySlots,
    /// Rows read and skipped (only the row counts of the stats are used).
    rows: JobStats,
    buffers: Vec<(usize, SealedBuffer)>,
}

/// The slots that the distinct keys of a dictionary-encoded key column have in one combiner
/// table, resolved when a row first names them; kept while batches share their dictionary
/// (the batches of one Parquet row group do).
#[derive(Default)]
struct DictionarySlots {
    values: Option<ArrayRef>,
    table: usize,
    /// By dictionary index; [`UNRESOLVED`] for a key no row has named yet.
    slots: Vec<u32>,
}

const UNRESOLVED: u32 = u32::MAX;

/// A map worker's row counts and its sealed buffers by group.
pub(crate) type MapperOutput = (JobStats, Vec<(usize, SealedBuffer)>);

pub(crate) type WorkerResult = Result<(), (u64, JobError)>;

impl<'a> MapWorker<'a> {
    pub(crate) fn new(
        aggregation: &'a Aggregation,
        schema: &'a Schema,
        file: &'a str,
        config: &'a JobConfig,
        grouping: Grouping,
    ) -> MapWorker<'a> {
        let direct = match grouping {
            Grouping::Partitions(n) if !config.combine => {
                (0..n).map(|_| WireWriter::new(aggregation.fingerprint(), aggregation.state_size())).collect()
            }
            _ => Vec::new(),
        };
        MapWorker {
            aggregation,
            schema,
            file,
            config,
            grouping,
            tables: Vec::new(),
            direct,
            batch: ColumnBatch { finite_floats: config.finite_floats, ..ColumnBatch::new(aggregation) },
            key_bytes: Vec::new(),
            key_ends: Vec::new(),
            slots: Vec::new(),
            spans: Vec::new(),
            dictionary: DictionarySlots::default(),
            rows: JobStats::default(),
            buffers: Vec::new(),
        }
    }

    /// Processes the units `next` gives until it gives none. After an error the worker
    /// stops taking units, and the job stops handing them out (`failed_at`): units after the
    /// failed one are not read, while units before it that other workers hold are still
    /// processed, since one of them may hold an earlier error (the job reports the first bad
    /// row of the file whichever worker meets it).
    pub(crate) fn run(&mut self, next: impl Fn() -> Option<Work>, failed_at: &AtomicU64) -> WorkerResult {
        while let Some(work) = next() {
            let index = work.index();
            if let Err(error) = self.work(&work) {
                failed_at.fetch_min(index, Ordering::Relaxed);
                return Err(error);
            }
        }
        self.seal()
    }

    /// Parses and folds one unit of input.
    pub(crate) fn work(&mut self, work: &Work) -> WorkerResult {
        match work {
            Work::Rows(block) => self.block(block),
            Work::Columns(batch) => self.columns(batch),
        }
    }

    /// The rows the worker read and skipped, and its sealed buffers by group (after [`Self::seal`]).
    pub(crate) fn into_output(self) -> MapperOutput {
        (self.rows, self.buffers)
    }

    /// The table of the group that input unit `index` belongs to.
    fn table_for(&mut self, index: u64) -> usize {
        let group = match self.grouping {
            Grouping::Partitions(_) => 0,
            Grouping::Mappers(m) => (index % m as u64) as usize,
        };
        match self.tables.iter().position(|(g, _)| *g == group) {
            Some(table) => table,
            None => {
                self.tables.push((group, StateTable::new(self.aggregation)));
                self.tables.len() - 1
            }
        }
    }

    /// Folds a batch of columns: a row at a time into the batch's typed columns (each value
    /// with the meaning its CSV text would have; a null makes the row invalid), then folded
    /// like rows of a CSV block. Rows are located by their number in the file.
    fn columns(&mut self, work: &ColumnarBatch) -> WorkerResult {
        let table = self.table_for(work.index);
        let batch = &work.batch;
        let key_column = batch.column_by_name(&self.schema.header[self.schema.key]).cloned();
        let inputs: Vec<Option<ArrayRef>> =
            self.schema.inputs.iter().map(|&c| batch.column_by_name(&self.schema.header[c]).cloned()).collect();
        let (Some(key_column), Some(inputs)) = (key_column, inputs.into_iter().collect::<Option<Vec<_>>>()) else {
            return Err((work.first_row, JobError::Other(format!("`{}`: a batch lacks a bound column", self.file))));
        };
        if self.bulk(table, &key_column, &inputs, work) {
            return self.fold(table, Origin::Rows);
        }
        for row in 0..batch.num_rows() {
            let number = work.first_row + row as u64;
            self.rows.rows += 1;
            match self.columnar_row(&key_column, &inputs, row, number, work) {
                Ok(()) => {}
                Err(error) if self.config.skip_invalid => self.rows.skip(error),
                Err(error) => {
                    self.fold(table, Origin::Rows)?;
                    return Err((error.line, JobError::Row(error)));
                }
            }
            if self.batch.len() == BATCH_ROWS {
                self.fold(table, Origin::Rows)?;
            }
        }
        self.fold(table, Origin::Rows)
    }

    /// Takes a whole batch in one copy per column, when none of its values needs converting or
    /// checking (see [`extend_keys`] and [`extend_cells`]); otherwise appends nothing and
    /// returns false, and the batch goes row by row.
    ///
    /// A dictionary-encoded key column (combining only) gives each row its slot directly: each
    /// distinct key is looked up once, when a row first names it, not once per row.
    fn bulk(&mut self, table: usize, key_column: &ArrayRef, inputs: &[ArrayRef], work: &ColumnarBatch) -> bool {
        let rows = work.batch.num_rows();
        // Checking for non-finite floats needs a look at every value: row by row.
        if !self.batch.is_empty() || self.batch.finite_floats || rows > BATCH_ROWS {
            return false;
        }
        let dictionary = key_column.as_dictionary_opt::<Int32Type>();
        match dictionary {
            Some(dictionary) if self.config.combine && key_column.null_count() == 0 => {
                if !self.dictionary_usable(table, dictionary.values()) {
                    return false;
                }
            }
            Some(_) => return false,
            None => {
                if !extend_keys(key_column, &mut self.key_bytes, &mut self.key_ends) {
                    return false;
                }
            }
        }
        for (i, column) in inputs.iter().enumerate() {
            if !extend_cells(column, &mut self.batch.columns[i]) {
                for column in &mut self.batch.columns[..i] {
                    column.truncate(0);
                }
                self.key_bytes.clear();
                self.key_ends.clear();
                return false;
            }
        }
        if let Some(dictionary) = dictionary {
            // Every row is valid (no null, every value taken): the keys they name get records.
            let (known, table) = (&mut self.dictionary.slots, &mut self.tables[table].1);
            for &index in dictionary.keys().values() {
                let Some(known) = usize::try_from(index).ok().and_then(|i| known.get_mut(i)) else {
                    continue;
                };
                if *known == UNRESOLVED {
                    let mut key = Vec::new();
                    if let Ok(true) = push_key(dictionary.values(), index as usize, &mut key) {
                        *known = table.slot(&key);
                    }
                }
                self.slots.push(*known);
            }
            if self.slots.len() != rows || self.slots.contains(&UNRESOLVED) {
                // An index outside the dictionary (the reader checks them): row by row.
                self.slots.clear();
                for column in &mut self.batch.columns {
                    column.truncate(0);
                }
                return false;
            }
        }
        self.batch.rows.extend((0..rows as u64).map(|row| work.first_row + row));
        self.rows.rows += rows as u64;
        true
    }

    /// Whether the dictionary `values` can give rows their slots in table `table`: its keys are
    /// strings or binaries, none null or empty (those are invalid rows, found row by row).
    /// Starts a new set of resolved slots unless `values` is the dictionary met last.
    fn dictionary_usable(&mut self, table: usize, values: &ArrayRef) -> bool {
        let same = self.dictionary.table == table
            && self.dictionary.values.as_ref().is_some_and(|known| Arc::ptr_eq(known, values));
        if same {
            return true;
        }
        let (mut keys, mut ends) = (Vec::new(), Vec::new());
        if !extend_keys(values, &mut keys, &mut ends) {
            return false;
        }
        self.dictionary = DictionarySlots { values: Some(values.clone()), table, slots: vec![UNRESOLVED; ends.len()] };
        true
    }

    /// Appends one row of a columnar batch (its key and every bound value), or nothing.
    fn columnar_row(
        &mut self,
        key_column: &ArrayRef,
        inputs: &[ArrayRef],
        row: usize,
        number: u64,
        work: &ColumnarBatch,
    ) -> Result<(), RowError> {
        let key_start = self.key_bytes.len();
        // Rows are numbered over the file, in place of CSV lines.
        let problem = |column: usize, message: String| RowError {
            file: self.file.to_string(),
            line: number,
            column: Some((column + 1, self.schema.header[column].clone())),
            message: format!("{message}{}", work.place(number)),
        };
        match push_key(key_column, row, &mut self.key_bytes) {
            Ok(true) if self.key_bytes.len() > key_start => {}
            Ok(true) => return Err(problem(self.schema.key, "the key field is empty".to_string())),
            Ok(false) => return Err(problem(self.schema.key, "the key is null".to_string())),
            Err(ty) => return Err(problem(self.schema.key, format!("a {ty} key"))),
        }
        let rows = self.batch.len();
        for (i, (column, &index)) in inputs.iter().zip(&self.schema.inputs).enumerate() {
            let pushed = match push_cell(column, row, &mut self.batch.columns[i]) {
                Ok(true) if self.batch.finite_floats && !last_is_finite(&self.batch.columns[i]) => Err(
                    "not a finite number: with `--fixed-point` float inputs must be finite (fixed point has no infinities or NaN)"
                        .to_string(),
                ),
                Ok(true) => Ok(()),
                Ok(false) => Err("null value".to_string()),
                Err(error) => Err(error.to_string()),
            };
            if let Err(message) = pushed {
                for column in &mut self.batch.columns[..=i] {
                    column.truncate(rows);
                }
                self.key_bytes.truncate(key_start);
                return Err(problem(index, message));
            }
        }
        self.batch.rows.push(number);
        self.key_ends.push(self.key_bytes.len());
        Ok(())
    }

    fn block(&mut self, block: &Block) -> WorkerResult {
        let table = self.table_for(block.index);
        let mut lines = Lines::new(block);
        // A block with no quote and no carriage return (nearly every block) is split at its
        // line ends and commas directly, several times faster than the CSV parser reads it;
        // the parser reads the rest of the block from the first line the split does not take.
        let start = match memchr::memchr2(b'"', b'\r', &block.bytes) {
            None => self.split_rows(table, block, &mut lines)?,
            Some(_) => 0,
        };
        if start < block.bytes.len() {
            self.parsed_rows(table, block, start, &mut lines)?;
        }
        self.fold(table, Origin::Block(block))
    }

    /// Takes the rows of a block with no quote or carriage return, split at `\n` and `,`, up to
    /// its end or to its first empty line (left to the parser, which skips empty lines); returns
    /// where it stopped.
    fn split_rows(&mut self, table: usize, block: &Block, lines: &mut Lines<'_>) -> Result<usize, (u64, JobError)> {
        let bytes = &block.bytes[..];
        let mut spans = std::mem::take(&mut self.spans);
        let mut at = 0;
        let outcome = loop {
            if at >= bytes.len() {
                break Ok(bytes.len());
            }
            let end = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |i| at + i);
            let line = &bytes[at..end];
            if line.is_empty() {
                break Ok(at);
            }
            spans.clear();
            let mut field = 0;
            for comma in memchr::memchr_iter(b',', line) {
                spans.push((field, comma));
                field = comma + 1;
            }
            spans.push((field, line.len()));
            if let Err(error) = self.row(table, block, &SplitRow { line, spans: &spans }, at as u64, lines) {
                break Err(error);
            }
            at = end + 1;
        };
        self.spans = spans;
        outcome
    }

    /// Reads the rows of a block from byte `start` on with the CSV parser.
    fn parsed_rows(&mut self, table: usize, block: &Block, start: usize, lines: &mut Lines<'_>) -> WorkerResult {
        let mut reader = csv_reader(&block.bytes[start..]);
        let mut record = csv::ByteRecord::new();
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(e) => {
                    let first = block.first_line + count_line_ends(&block.bytes[..start]);
                    let line = e.position().map_or(first, |p| first + p.line() - 1);
                    let error = RowError { file: self.file.to_string(), line, column: None, message: e.to_string() };
                    return Err((line, JobError::Row(error)));
                }
            }
            let position = start as u64 + record.position().map_or(0, csv::Position::byte);
            self.row(table, block, &record, position, lines)?;
        }
    }

    /// Takes one row (which starts at byte `position` of the block): its key and values into
    /// the batch, or an invalid row skipped or reported; folds a full batch.
    fn row<R: Fields>(
        &mut self,
        table: usize,
        block: &Block,
        record: &R,
        position: u64,
        lines: &mut Lines<'_>,
    ) -> WorkerResult {
        self.rows.rows += 1;
        // Lines are counted only for a row that fails (counting them for every row cost more
        // than parsing it); a row is located by its byte position in the block.
        let schema = self.schema;
        let parsed = schema.key_of(record, self.file, || lines.line_at(position)).and_then(|key| {
            self.batch.push_row(schema, record, self.file, position, || lines.line_at(position)).map(|()| key)
        });
        match parsed {
            Ok(key) => {
                self.key_bytes.extend_from_slice(key);
                self.key_ends.push(self.key_bytes.len());
            }
            Err(error) if self.config.skip_invalid => {
                self.rows.skip(error);
            }
            Err(error) => {
                // Records before this row that fault come first: fold them.
                self.fold(table, Origin::Block(block))?;
                return Err((error.line, JobError::Row(error)));
            }
        }
        if self.batch.len() == BATCH_ROWS {
            self.fold(table, Origin::Block(block))?;
        }
        Ok(())
    }

    /// Folds the batch (rows from `origin`) into table `table` (or, without combining, into
    /// fresh states that go straight to the shuffle).
    fn fold(&mut self, table: usize, origin: Origin<'_>) -> WorkerResult {
        if self.batch.is_empty() {
            return Ok(());
        }
        let columns = self.batch.columns();
        let result = if self.config.combine {
            let table = &mut self.tables[table].1;
            table.slots(&self.key_bytes, &self.key_ends, &mut self.slots);
            table.fold(self.aggregation, &self.slots, &columns)
        } else {
            // One fresh state per record: its row number is its key here.
            let mut fresh = StateTable::with_index(self.aggregation, ValueIndex::<usize>::default());
            let slots: Vec<u32> = (0..self.batch.len()).map(|i| fresh.slot(&i)).collect();
            fresh.fold(self.aggregation, &slots, &columns).and_then(|()| {
                let keys = self.key_ends.iter().scan(0, |start, &end| {
                    let key = &self.key_bytes[*start..end];
                    *start = end;
                    Some(key)
                });
                for (key, (_, state)) in keys.zip(fresh.entries()) {
                    let partition = partition_of(key, self.direct.len());
                    self.direct[partition].push(key, state).map_err(|e| CallError::Invalid(e.to_string()))?;
                }
                Ok(())
            })
        };
        if let Err(error) = result {
            let line = match &error {
                CallError::Fault(fault) => {
                    self.batch.rows.get(fault.record as usize).map_or(0, |&locator| match origin {
                        Origin::Block(block) => Lines::new(block).line_at(locator),
                        Origin::Rows => locator,
                    })
                }
                CallError::Invalid(_) => 0,
            };
            let error = match error {
                CallError::Fault(fault) => {
                    JobError::Fault { file: self.file.to_string(), line, key: None, fault: Box::new(fault) }
                }
                CallError::Invalid(message) => JobError::Other(message),
            };
            return Err((line, error));
        }
        self.batch.clear();
        self.slots.clear();
        self.key_bytes.clear();
        self.key_ends.clear();
        Ok(())
    }

    /// Writes the worker's tables into sealed wire buffers.
    pub(crate) fn seal(&mut self) -> WorkerResult {
        let new_writer = || WireWriter::new(self.aggregation.fingerprint(), self.aggregation.state_size());
        let wire = |e: WireError| (0, JobError::Wire(e));
        for writer in std::mem::take(&mut self.direct).into_iter().enumerate() {
            let (partition, writer) = writer;
            let entries = Some(writer.entries());
            self.buffers.push((partition, SealedBuffer { entries, bytes: writer.finish() }));
        }
        for (group, table) in std::mem::take(&mut self.tables) {
            match self.grouping {
                Grouping::Partitions(n) => {
                    // Each partition's entries in key order: the reducer merges the workers'
                    // runs (`key_order::merge_sorted_runs`) instead of looking every entry up
                    // in a hash table, and its results come out sorted.
                    let mut by_partition: Vec<Vec<(u64, u32)>> = vec![Vec::new(); n];
                    for slot in 0..table.len() as u32 {
                        let key = table.key(slot);
                        by_partition[partition_of(key, n)].push((key_order::prefix(key), slot));
                    }
                    for (partition, mut order) in by_partition.into_iter().enumerate() {
                        key_order::sort_ids(&mut order, |slot| table.key(slot));
                        let mut writer = new_writer();
                        let key_bytes = order.iter().map(|&(_, slot)| table.key(slot).len()).sum();
                        writer.reserve(order.len(), key_bytes);
                        // In key order the entries lie anywhere in the table: each is asked
                        // for ahead of its turn (a large table's entries all miss the cache).
                        for (i, &(_, slot)) in order.iter().enumerate() {
                            if let Some(&(_, far)) = order.get(i + 2 * SEAL_AHEAD) {
                                table.prefetch_entry(far, Distance::Far);
                            }
                            if let Some(&(_, near)) = order.get(i + SEAL_AHEAD) {
                                table.prefetch_entry(near, Distance::Near);
                            }
                            writer.push(table.key(slot), table.state(slot)).map_err(wire)?;
                        }
                        let entries = Some(writer.entries());
                        self.buffers.push((partition, SealedBuffer { entries, bytes: writer.finish() }));
                    }
                }
                Grouping::Mappers(_) => {
                    // Entries inside one mapper (between its worker threads) are not shuffle
                    // traffic: the network's own report counts what mappers send.
                    let mut writer = new_writer();
                    for (key, state) in table.entries() {
                        writer.push(key, state).map_err(wire)?;
                    }
                    self.buffers.push((group, SealedBuffer { entries: None, bytes: writer.finish() }));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use proptest::prelude::*;

    use super::*;

    const STATS: &str = "aggregate s(x: i32) -> tuple[i64, u64]:\n    return sum(x), count()\n";

    /// What a worker made of a block: rows, skipped rows and their messages, its first error,
    /// and its combined states by key.
    type Outcome = (u64, Vec<String>, Option<(u64, String)>, Vec<(Vec<u8>, Vec<u8>)>);

    fn outcome(aggregation: &Aggregation, text: &[u8], skip: bool, parser_only: bool) -> Outcome {
        let header = vec!["k".to_string(), "x".to_string()];
        let schema = Schema::bind(header, aggregation, "k", &[], "t.csv").unwrap();
        let config = JobConfig { workers: 1, skip_invalid: skip, ..JobConfig::default() };
        let mut worker = MapWorker::new(aggregation, &schema, "t.csv", &config, Grouping::Partitions(1));
        let block = Block { index: 0, first_line: 2, bytes: text.to_vec() };
        let done = if parser_only {
            let table = worker.table_for(0);
            let mut lines = Lines::new(&block);
            worker.parsed_rows(table, &block, 0, &mut lines).and_then(|()| worker.fold(table, Origin::Block(&block)))
        } else {
            worker.block(&block)
        };
        let error = done.err().map(|(line, error)| (line, error.to_string()));
        let skipped = worker.rows.first_skipped.iter().map(ToString::to_string).collect();
        let mut states: Vec<(Vec<u8>, Vec<u8>)> =
            worker.tables.iter().flat_map(|(_, t)| t.entries().map(|(k, s)| (k.to_vec(), s.to_vec()))).collect();
        states.sort();
        (worker.rows.rows, skipped, error, states)
    }

    proptest! {
        #![proptest_config(naas_test_support::proptest_config(4))]
        /// Splitting a block at commas and line ends gives what the CSV parser gives: the same
        /// rows, states, skipped rows and errors with their lines, on blocks with quotes,
        /// carriage returns, empty lines, ragged rows, empty keys and bad numbers.
        #[test]
        fn split_blocks_read_as_the_parser_reads_them(
            rows in prop::collection::vec("[ab,\"\r]{0,3}(,[-0-9x ]{0,3}){0,2}", 0..30),
            endings in prop::collection::vec(prop::sample::select(vec!["\n", "\n", "\n\n", "\r\n"]), 30),
            skip in any::<bool>(),
            plain in any::<bool>(),
        ) {
            let aggregation = Aggregation::from_source("s.naas", STATS, None).unwrap();
            let mut text = Vec::new();
            for (row, ending) in rows.iter().zip(&endings) {
                text.extend_from_slice(row.as_bytes());
                text.extend_from_slice(ending.as_bytes());
            }
            // Half the blocks have no quote or carriage return: those the split takes.
            if plain {
                text.retain(|&b| b != b'"' && b != b'\r');
            }
            let split = outcome(&aggregation, &text, skip, false);
            let parsed = outcome(&aggregation, &text, skip, true);
            prop_assert_eq!(split, parsed, "{:?}", String::from_utf8_lossy(&text));
        }
    }
}
