//! The local MapReduce executor: map workers take turns cutting the input into blocks of
//! whole rows, parse them and fold records into per-key combiner tables with the compiled
//! code, the shuffle carries (key, partial state) entries in the wire format, and reduce
//! workers merge and finish them.
//!
//! Memory is bounded by the number of keys (per worker) plus a few blocks in flight, not by
//! the number of rows, unless combining is turned off (then every row is a shuffle entry).

use std::hash::BuildHasher;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use naas_lang::InternalError;
use naas_target_native::abi::NativeFault;
use naas_target_native::CallError;
use rustc_hash::FxBuildHasher;
use serde::Serialize;

use crate::aggregation::Aggregation;
use crate::columnar_input::{ColumnarFile, ColumnarFormat};
use crate::csv_input::{InputError, ReadError, RowError, MAX_ROW_BYTES};
use crate::key_order::{self, SortedResults};
use crate::map_worker::{open_input, MapWorker, OpenedInput, Work, WorkReader};
use crate::results::KeyResults;
use crate::table::StateTable;
use crate::wire::{decode, entry_count_hint, WireError};

/// Records folded per native call.
pub(crate) const BATCH_ROWS: usize = 4096;
/// Invalid rows quoted in the summary.
const QUOTED_SKIPS: usize = 5;

/// The most map workers (and reduce partitions) a job may have. Each is an OS thread with its
/// own combiner table; far more threads than cores only costs memory, and thousands exhaust
/// the process's thread limit.
pub const MAX_WORKERS: usize = 256;

/// How to run a job.
#[derive(Clone, Debug)]
pub struct JobConfig {
    /// Map workers, and reduce partitions (at least 1).
    pub workers: usize,
    /// Fold records into per-key tables before the shuffle (map-side combining). Without it
    /// every record crosses the shuffle as its own partial state.
    pub combine: bool,
    /// Skip rows that do not parse, and count them, instead of failing on the first one.
    pub skip_invalid: bool,
    /// Bytes per block handed to a worker.
    pub block_size: usize,
    /// Called from the worker reading the input about every 200 ms with the bytes read and the input's
    /// size (when known), and once more with `finished` set at the end of the input.
    pub progress: Option<Progress>,
    /// Reject non-finite values in float inputs (for fixed point, which cannot carry them).
    pub finite_floats: bool,
    /// The most bytes one row may hold ([`MAX_ROW_BYTES`] unless a test sets less).
    pub max_row: usize,
}

impl Default for JobConfig {
    fn default() -> JobConfig {
        JobConfig {
            workers: std::thread::available_parallelism().map_or(1, usize::from),
            combine: true,
            skip_invalid: false,
            block_size: 1 << 20,
            progress: None,
            finite_floats: false,
            max_row: MAX_ROW_BYTES,
        }
    }
}

/// A progress callback: `(bytes read, input size, finished)`.
pub type Progress = fn(u64, Option<u64>, bool);

/// What a job counted.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct JobStats {
    /// Data rows read (valid and skipped).
    pub rows: u64,
    pub skipped: u64,
    /// The first few skipped rows and why.
    #[serde(skip)]
    pub first_skipped: Vec<RowError>,
    pub keys: u64,
    /// (key, partial state) entries and bytes that crossed the shuffle.
    pub shuffle_entries: u64,
    pub shuffle_bytes: u64,
    pub map_seconds: f64,
    pub reduce_seconds: f64,
}

impl JobStats {
    /// Counts a skipped row, quoting the first few.
    pub fn skip(&mut self, error: RowError) {
        self.skipped += 1;
        if self.first_skipped.len() < QUOTED_SKIPS {
            self.first_skipped.push(error);
        }
    }

    /// Adds another worker's row counts; the quoted skips stay the lowest lines of both.
    pub fn absorb_rows(&mut self, other: JobStats) {
        self.rows += other.rows;
        self.skipped += other.skipped;
        self.first_skipped.extend(other.first_skipped);
        self.first_skipped.sort_by_key(|e| e.line);
        self.first_skipped.truncate(QUOTED_SKIPS);
    }
}

/// Why a job failed.
#[derive(Clone, Debug, PartialEq)]
pub enum JobError {
    /// The input cannot be read, or its header does not fit the aggregation.
    Input(String),
    /// A row is invalid (and `skip_invalid` is off).
    Row(RowError),
    /// The aggregation faulted on a record (or, with `line` 0, while merging or finishing).
    Fault { file: String, line: u64, key: Option<String>, fault: Box<NativeFault> },
    /// A shuffle buffer was rejected.
    Wire(WireError),
    /// Anything else (a native call refused its buffers, a network simulation failed).
    Other(String),
    /// A broken invariant inside naasc (the simulator's or the compiler's): a bug to report.
    Internal(InternalError),
}

impl JobError {
    /// A failed read of the input, on either engine: a row that is too long is a bad row of
    /// `file` (exit 1, with its line), a failing source an input error (exit 2).
    pub fn from_read(error: ReadError, file: &str) -> JobError {
        match error.into_row_error(file) {
            Ok(row) => JobError::Row(row),
            Err(error) => JobError::Input(format!("`{file}`: read error: {error}")),
        }
    }
}

/// A file that cannot be opened or read, or whose header does not bind: the command line's
/// or the environment's problem (exit 2), rendered once here.
impl From<InputError> for JobError {
    fn from(error: InputError) -> JobError {
        JobError::Input(error.to_string())
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobError::Input(message) | JobError::Other(message) => f.write_str(message),
            JobError::Row(error) => write!(f, "{error}"),
            JobError::Fault { file, line, key, fault } => {
                match (line, key) {
                    (0, Some(key)) => write!(f, "key `{key}`: ")?,
                    (0, None) => {}
                    (line, _) => write!(f, "{file}:{line}: ")?,
                }
                write!(f, "{fault}")
            }
            JobError::Wire(error) => write!(f, "shuffle buffer rejected: {error}"),
            JobError::Internal(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for JobError {}

/// Turns an error of a merge or finish of `key` into a job error.
pub fn call_error(error: CallError, key: Option<&[u8]>) -> JobError {
    match error {
        CallError::Fault(fault) => JobError::Fault {
            file: String::new(),
            line: 0,
            key: key.map(|k| String::from_utf8_lossy(k).into_owned()),
            fault: Box::new(fault),
        },
        CallError::Invalid(message) => JobError::Other(message),
    }
}

/// Every key's result, sorted by key bytes, and the job's counts.
#[derive(Clone, Debug, PartialEq)]
pub struct JobOutput {
    pub results: KeyResults,
    pub stats: JobStats,
}

/// How map outputs are grouped for what comes after the map phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grouping {
    /// By key hash into this many reduce partitions (the host shuffle).
    Partitions(usize),
    /// By block into this many mappers (block `b` belongs to mapper `b mod M`), each mapper
    /// sending its own combined entries into a network.
    Mappers(usize),
}

/// The map phase's output: for each group, the wire buffers of every worker.
#[derive(Debug)]
pub struct MapOutput {
    pub groups: Vec<Vec<Vec<u8>>>,
    pub stats: JobStats,
}

/// An input: a readable CSV source, its name for messages and its size when known.
pub struct Input<R> {
    pub name: String,
    pub reader: R,
    pub size: Option<u64>,
}

impl Input<std::fs::File> {
    pub fn open(path: &std::path::Path) -> Result<Input<std::fs::File>, JobError> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| JobError::Input(format!("cannot open `{name}`: {e}")))?;
        let size = file.metadata().ok().map(|m| m.len());
        Ok(Input { name, reader: file, size })
    }
}

/// A job's input: CSV from any reader, or a columnar file (Parquet, Arrow IPC).
pub enum JobInput<R> {
    Csv(Input<R>),
    Columnar(ColumnarFile),
}

impl<R> From<Input<R>> for JobInput<R> {
    fn from(input: Input<R>) -> JobInput<R> {
        JobInput::Csv(input)
    }
}

impl JobInput<std::fs::File> {
    /// Opens `path`: columnar when its extension says so ([`ColumnarFormat::of`]), else CSV.
    pub fn open(path: &std::path::Path) -> Result<JobInput<std::fs::File>, JobError> {
        match ColumnarFormat::of(path) {
            Some(format) => {
                ColumnarFile::open(path, format).map(JobInput::Columnar).map_err(|e| JobError::Input(e.to_string()))
            }
            None => Input::open(path).map(JobInput::Csv),
        }
    }
}

/// Reads the input's header (or a columnar file's schema) and binds the job's key and inputs
/// to its columns, without reading a row: to check a job before starting processes that
/// would all fail the same way.
pub fn bind_input<R: Read>(
    aggregation: &Aggregation,
    input: impl Into<JobInput<R>>,
    key: &str,
    binds: &[(String, String)],
) -> Result<(), JobError> {
    open_input(aggregation, input.into(), key, binds, &JobConfig::default()).map(|_| ())
}

/// Runs a whole job on the host: map, shuffle through wire buffers, reduce, sort by key.
pub fn run<R: Read + Send>(
    aggregation: &Aggregation,
    input: impl Into<JobInput<R>>,
    key: &str,
    binds: &[(String, String)],
    config: &JobConfig,
) -> Result<JobOutput, JobError> {
    let partitions = config.workers.max(1);
    let map = map_phase(aggregation, input, key, binds, config, Grouping::Partitions(partitions))?;
    let mut stats = map.stats;
    let started = Instant::now();
    let reduced = std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(map.groups.len());
        let mut spawn_failed = None;
        for buffers in map.groups {
            match std::thread::Builder::new().name("naas-reduce".to_string()).spawn_scoped(scope, move || {
                // Each reducer sorts its own keys, in parallel; the runs are merged below.
                reduce_buffers(aggregation, buffers)
            }) {
                Ok(handle) => handles.push(handle),
                Err(error) => {
                    spawn_failed = Some(spawn_error("reduce worker", error));
                    break;
                }
            }
        }
        let joined = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(JobError::Other("a reduce worker panicked".to_string()))))
            .collect::<Result<Vec<_>, _>>();
        match spawn_failed {
            Some(error) => Err(error),
            None => joined,
        }
    })?;
    // The partitions are sorted runs: merged, not sorted again.
    let results = key_order::merge(reduced).into_results();
    stats.keys = results.len() as u64;
    stats.reduce_seconds = started.elapsed().as_secs_f64();
    Ok(JobOutput { results, stats })
}

/// Decodes every buffer (rejecting any malformed one), merges its entries by key and
/// finishes them, in key order. Buffers that are runs of distinct keys in key order (as map
/// workers seal them) are merged as runs; any others (`--no-combine`'s entries, one per
/// record) through a hash table, each buffer freed as soon as it is merged, so that the
/// shuffle's bytes and the results are not held at once.
pub fn reduce_buffers(aggregation: &Aggregation, buffers: Vec<Vec<u8>>) -> Result<SortedResults, JobError> {
    let runs = buffers
        .iter()
        .map(|buffer| decode(buffer, aggregation.fingerprint(), aggregation.state_size()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(JobError::Wire)?;
    if runs.iter().all(|entries| key_order::strictly_increasing(entries)) {
        // Sealed by map workers: runs of distinct keys in key order.
        return key_order::merge_sorted_runs(aggregation, &runs).map_err(|(key, error)| call_error(error, Some(key)));
    }
    drop(runs);
    let mut table = StateTable::new(aggregation);
    // The partition has at least as many keys as its largest buffer has entries.
    let largest = buffers.iter().map(|b| entry_count_hint(b, aggregation.state_size())).max();
    table.reserve(largest.unwrap_or(0));
    let mut slots = Vec::new();
    for buffer in buffers {
        merge_buffer(aggregation, &mut table, &buffer, &mut slots)?;
    }
    key_order::finish_sorted(&table, aggregation).map_err(|(slot, error)| call_error(error, Some(table.key(slot))))
}

/// Decodes and merges buffers into one table of partial states.
pub fn merge_buffers(aggregation: &Aggregation, buffers: &[Vec<u8>]) -> Result<StateTable, JobError> {
    let mut table = StateTable::new(aggregation);
    let mut slots = Vec::new();
    for buffer in buffers {
        merge_buffer(aggregation, &mut table, buffer, &mut slots)?;
    }
    Ok(table)
}

/// Decodes one buffer and merges its entries into `table`. Keys are looked up where they lie
/// in the buffer (a chunk at a time, so that their cache misses overlap); the table keeps the
/// only copy of a new key.
fn merge_buffer(
    aggregation: &Aggregation,
    table: &mut StateTable,
    buffer: &[u8],
    slots: &mut Vec<u32>,
) -> Result<(), JobError> {
    let entries = decode(buffer, aggregation.fingerprint(), aggregation.state_size()).map_err(JobError::Wire)?;
    let mut states = Vec::with_capacity(BATCH_ROWS.min(entries.len()));
    for chunk in entries.chunks(BATCH_ROWS) {
        slots.clear();
        table.slots_of(chunk.len(), |i| chunk[i].0, slots);
        states.clear();
        states.extend(chunk.iter().map(|(_, state)| *state));
        table.merge_slots(aggregation, slots, &states).map_err(|(i, e)| call_error(e, Some(chunk[i].0)))?;
    }
    Ok(())
}

/// Reads the input with `config.workers` map workers, and returns the map outputs grouped as
/// asked.
///
/// The workers take turns at the input: a worker reads the next unit (under a lock) and then
/// processes it, so a unit is processed by the core that just read it, and no thread only
/// reads (against a reader thread handing units over a channel: the same time on CSV, 7% less
/// on Parquet, whose decoding then runs on every worker). Units keep their numbers in input
/// order, so the first bad row of the file is still the one reported.
pub fn map_phase<R: Read + Send>(
    aggregation: &Aggregation,
    input: impl Into<JobInput<R>>,
    key: &str,
    binds: &[(String, String)],
    config: &JobConfig,
    grouping: Grouping,
) -> Result<MapOutput, JobError> {
    if config.workers == 0 || config.workers > MAX_WORKERS {
        return Err(JobError::Input(format!("a job needs 1 to {MAX_WORKERS} workers, not {}", config.workers)));
    }
    let started = Instant::now();
    let OpenedInput { name, size, schema, units } = open_input(aggregation, input.into(), key, binds, config)?;
    // The first unit of input (by index) that failed: later ones need not be read.
    let failed_at = AtomicU64::new(u64::MAX);
    let reading = Mutex::new(Reading { units, last_draw: Instant::now(), error: None, finished: false });
    let progress = config.progress;
    // The next unit of input for a worker; `None` once the input is read or the job failed.
    let next = || -> Option<Work> {
        if failed_at.load(Ordering::Relaxed) != u64::MAX {
            return None;
        }
        // A poisoned lock: a worker panicked while reading, and its panic is the job's error.
        let mut reading = reading.lock().ok()?;
        if reading.error.is_some() || reading.finished {
            return None;
        }
        match reading.units.next_work() {
            Ok(Some(work)) => {
                if let Some(report) = progress.filter(|_| reading.last_draw.elapsed() > Duration::from_millis(200)) {
                    report(reading.units.consumed(), size, false);
                    reading.last_draw = Instant::now();
                }
                Some(work)
            }
            Ok(None) => {
                reading.finished = true;
                if let Some(report) = progress {
                    report(reading.units.consumed(), size, true);
                }
                None
            }
            Err(error) => {
                reading.error = Some(error);
                None
            }
        }
    };
    let workers = std::thread::scope(|scope| {
        let (failed_at, next, name, schema) = (&failed_at, &next, &name, &schema);
        let mut workers = Vec::with_capacity(config.workers);
        for _ in 0..config.workers {
            let mut worker = MapWorker::new(aggregation, schema, name, config, grouping);
            let spawned = std::thread::Builder::new().name("naas-map".to_string()).spawn_scoped(scope, move || {
                let _guard = StopOnPanic { failed_at };
                worker.run(next, failed_at).map(|()| worker)
            });
            match spawned {
                Ok(handle) => workers.push(handle),
                Err(error) => {
                    // The workers already running stop at their next unit.
                    failed_at.store(0, Ordering::Relaxed);
                    for worker in workers {
                        let _ = worker.join();
                    }
                    return Err(spawn_error("map worker", error));
                }
            }
        }
        Ok(workers
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err((0, JobError::Other("a map worker panicked".to_string())))))
            .collect::<Vec<_>>())
    })?;
    let read = match reading.into_inner() {
        Ok(reading) => reading.error.map_or(Ok(()), Err),
        Err(_) => Err(JobError::Other("a map worker panicked while reading the input".to_string())),
    };
    let mut done = Vec::new();
    let mut first_error: Option<(u64, JobError)> = None;
    for worker in workers {
        match worker {
            Ok(worker) => done.push(worker),
            Err((line, error)) => {
                if first_error.as_ref().is_none_or(|(l, _)| line < *l) {
                    first_error = Some((line, error));
                }
            }
        }
    }
    if let Some((_, error)) = first_error {
        return Err(error);
    }
    read?;
    let groups = match grouping {
        Grouping::Partitions(n) | Grouping::Mappers(n) => n,
    };
    let mut out = MapOutput { groups: vec![Vec::new(); groups], stats: JobStats::default() };
    for worker in done {
        let (rows, buffers) = worker.into_output();
        let stats = &mut out.stats;
        stats.absorb_rows(rows);
        for (group, buffer) in buffers {
            if let Some(entries) = buffer.entries {
                stats.shuffle_entries += u64::from(entries);
            }
            stats.shuffle_bytes += buffer.bytes.len() as u64;
            out.groups[group].push(buffer.bytes);
        }
    }
    out.stats.map_seconds = started.elapsed().as_secs_f64();
    Ok(out)
}

/// A thread that could not be started (the system's thread or memory limit), as a job error.
fn spawn_error(what: &str, error: std::io::Error) -> JobError {
    JobError::Other(format!("cannot start a {what} thread: {error}; try fewer `--workers`"))
}

/// Marks the job failed when a map worker unwinds, so that the others stop reading.
struct StopOnPanic<'a> {
    failed_at: &'a AtomicU64,
}

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.failed_at.store(0, Ordering::Relaxed);
        }
    }
}

/// The input as the map workers share it (see [`map_phase`]).
struct Reading<R> {
    units: WorkReader<R>,
    last_draw: Instant,
    /// The input failed to read (the workers stop taking units).
    error: Option<JobError>,
    finished: bool,
}

/// The reduce partition of a key.
pub fn partition_of(key: &[u8], partitions: usize) -> usize {
    (FxBuildHasher.hash_one(key) % partitions.max(1) as u64) as usize
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    const STATS: &str = "aggregate stats(x: i64) -> tuple[i64, i64, u64]:\n    return min(x), max(x), count()\n";

    fn job(text: &str, config: &JobConfig) -> Result<JobOutput, JobError> {
        let agg = Aggregation::from_source("t.naas", STATS, None).unwrap();
        let input = Input { name: "t.csv".to_string(), reader: text.as_bytes(), size: None };
        run(&agg, input, "k", &[], config)
    }

    fn small(workers: usize, combine: bool) -> JobConfig {
        JobConfig { workers, combine, block_size: 64, ..JobConfig::default() }
    }

    fn table(rows: usize) -> String {
        let mut text = String::from("k,x\n");
        for i in 0..rows {
            text.push_str(&format!("key{},{}\n", i % 7, (i * 37) % 101));
        }
        text
    }

    #[test]
    fn workers_and_combining_do_not_change_results() {
        let text = table(5000);
        let reference = job(&text, &small(1, true)).unwrap();
        assert_eq!(reference.results.len(), 7);
        assert_eq!(reference.results.key(0), b"key0");
        assert_eq!(reference.stats.rows, 5000);
        for (workers, combine) in [(1, false), (2, true), (3, false), (4, true)] {
            let out = job(&text, &small(workers, combine)).unwrap();
            assert_eq!(out.results, reference.results, "{workers} workers, combine {combine}");
        }
        let combined = job(&text, &small(2, true)).unwrap().stats;
        let direct = job(&text, &small(2, false)).unwrap().stats;
        assert_eq!(direct.shuffle_entries, 5000);
        assert!(combined.shuffle_entries <= 2 * 7 * 2, "{combined:?}");
        assert!(combined.shuffle_bytes * 10 < direct.shuffle_bytes);
    }

    #[test]
    fn the_first_bad_row_is_reported_whichever_worker_meets_it() {
        let mut text = table(3000);
        text.push_str("key1,oops\n");
        text.insert_str(4, "key2,12x\n");
        for workers in [1, 3] {
            let error = job(&text, &small(workers, true)).unwrap_err();
            assert_eq!(error.to_string(), "t.csv:2:2: column `x`: `12x` is not a valid i64");
        }
        let skipped = job(&text, &JobConfig { skip_invalid: true, ..small(2, true) }).unwrap();
        assert_eq!((skipped.stats.rows, skipped.stats.skipped), (3002, 2));
        assert_eq!(skipped.stats.first_skipped[1].line, 3003);
    }

    /// Lines are counted only when a row fails; they must still be exact wherever the row is:
    /// after `\r\n` and lone `\r` line ends, blank lines and quoted newlines, for a skipped row
    /// after other skipped rows, and for a fault in the middle of a batch.
    #[test]
    fn failing_rows_and_faults_name_their_true_lines() {
        const DIV: &str = "aggregate q(x: i64) -> i64:\n    return sum(100 // x)\n";
        let agg = Aggregation::from_source("t.naas", DIV, None).unwrap();
        let text = "k,x\r\na,1\r\n\r\n\"b\nc\",2\rd,bad\n\ne,3\nf,bad\ng,4\nh,0\ni,5\n";
        // Lines: 1 header, 2 a, 3 blank, 4-5 "b\nc", 6 d (bad), 7 blank, 8 e, 9 f (bad), 10 g,
        // 11 h (divides by zero), 12 i.
        let run_with = |config: &JobConfig| {
            let input = Input { name: "t.csv".to_string(), reader: text.as_bytes(), size: None };
            run(&agg, input, "k", &[], config)
        };
        for block_size in [1 << 20, 16] {
            let config = JobConfig { workers: 1, block_size, ..JobConfig::default() };
            let error = run_with(&config).unwrap_err();
            assert!(error.to_string().starts_with("t.csv:6:2: column `x`"), "{error}");
            let skipping = JobConfig { skip_invalid: true, ..config };
            let error = run_with(&skipping).unwrap_err();
            assert!(matches!(error, JobError::Fault { line: 11, .. }), "block size {block_size}: {error:?}");
        }
        let config = JobConfig { workers: 1, skip_invalid: true, ..JobConfig::default() };
        let input = Input { name: "t.csv".to_string(), reader: text.replace("h,0", "h,1").into_bytes(), size: None };
        let out = run(&agg, Input { reader: input.reader.as_slice(), name: input.name, size: None }, "k", &[], &config)
            .unwrap();
        let lines: Vec<u64> = out.stats.first_skipped.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![6, 9]);
    }

    #[test]
    fn ragged_rows_and_empty_keys_are_errors() {
        let error = job("k,x\na,1\nb\n", &small(1, true)).unwrap_err();
        assert_eq!(error.to_string(), "t.csv:3: the row has 1 fields, the header has 2");
        let error = job("k,x\n,1\n", &small(1, true)).unwrap_err();
        assert_eq!(error.to_string(), "t.csv:2:1: column `k`: the key field is empty");
        let error = job("k,y\n", &small(1, true)).unwrap_err();
        assert!(error.to_string().contains("has no column `x`"), "{error}");
    }

    #[test]
    fn fixed_point_jobs_reject_non_finite_floats_with_the_row() {
        let agg =
            Aggregation::from_source("f.naas", "aggregate total(x: f64) -> f64:\n    return sum(x)\n", None).unwrap();
        for bad in ["inf", "-inf", "NaN", " -Infinity "] {
            let text = format!("k,x\na,1.5\nb,{bad}\n");
            let input = Input { name: "f.csv".to_string(), reader: text.as_bytes(), size: None };
            let config = JobConfig { finite_floats: true, ..small(1, true) };
            match run(&agg, input, "k", &[], &config).unwrap_err() {
                JobError::Row(error) => {
                    assert_eq!((error.line, error.column.clone()), (3, Some((2, "x".to_string()))), "{bad}");
                    assert!(error.message.contains("not a finite number"), "{}", error.message);
                }
                other => panic!("{other}"),
            }
            // Without fixed point the host reads them as floats.
            let input = Input { name: "f.csv".to_string(), reader: text.as_bytes(), size: None };
            assert!(run(&agg, input, "k", &[], &small(1, true)).is_ok(), "{bad}");
        }
    }

    #[test]
    fn a_row_over_the_limit_stops_the_job_with_its_line_even_when_skipping() {
        let mut text = table(100);
        text.push_str(&"x".repeat(4000));
        for skip_invalid in [false, true] {
            let config = JobConfig { max_row: 1000, skip_invalid, ..small(2, true) };
            let error = job(&text, &config).unwrap_err();
            assert!(matches!(&error, JobError::Row(row) if row.line == 102), "{error}");
        }
    }

    #[test]
    fn worker_counts_beyond_the_limit_are_refused_not_spawned() {
        for workers in [0, MAX_WORKERS + 1, usize::MAX] {
            let error = job(&table(10), &small(workers, true)).unwrap_err();
            assert!(error.to_string().contains("1 to 256 workers"), "{error}");
        }
        assert!(job(&table(10), &small(MAX_WORKERS, true)).is_ok());
    }

    /// An endless CSV source: a header, one bad row after `good` good ones, then good rows
    /// forever. It counts the bytes it served.
    struct Endless {
        served: std::sync::Arc<AtomicU64>,
        rows: u64,
        good: u64,
        pending: Vec<u8>,
    }

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            while self.pending.len() < buf.len() {
                let row = match self.rows {
                    0 => "k,x\n".to_string(),
                    n if n == self.good + 1 => "bad,oops\n".to_string(),
                    n => format!("key{},{n}\n", n % 13),
                };
                self.pending.extend_from_slice(row.as_bytes());
                self.rows += 1;
            }
            let n = buf.len();
            buf.copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            self.served.fetch_add(n as u64, Ordering::Relaxed);
            Ok(n)
        }
    }

    #[test]
    fn a_failing_worker_stops_the_reader_and_the_others_promptly() {
        let agg = Aggregation::from_source("t.naas", STATS, None).unwrap();
        for (workers, good) in [(1, 0), (2, 10), (4, 5000)] {
            let served = std::sync::Arc::new(AtomicU64::new(0));
            let source = Endless { served: std::sync::Arc::clone(&served), rows: 0, good, pending: Vec::new() };
            let input = Input { name: "t.csv".to_string(), reader: source, size: None };
            let started = Instant::now();
            let error = run(&agg, input, "k", &[], &small(workers, true)).unwrap_err();
            assert_eq!(
                error.to_string(),
                format!("t.csv:{}:2: column `x`: `oops` is not a valid i64", good + 2),
                "{workers} workers"
            );
            // The reader stopped a few blocks after the bad one instead of reading forever.
            assert!(served.load(Ordering::Relaxed) < 1 << 24, "{} bytes read", served.load(Ordering::Relaxed));
            assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
        }
    }

    proptest::proptest! {
        // Each case compiles the aggregation twice: a twentieth of the workspace's case count.
        #![proptest_config(naas_test_support::proptest_config(20))]
        /// Arbitrary bytes after a valid header, and mutated valid files, never panic: the job
        /// succeeds, or fails with a bad row that names a data line of the file.
        #[test]
        fn any_input_runs_or_names_a_line(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            mutations in proptest::collection::vec((0usize..2000, proptest::prelude::any::<u8>()), 0..6),
            workers in 1usize..4,
            skip_invalid in proptest::prelude::any::<bool>(),
        ) {
            let mut mutated = table(60).into_bytes();
            for (at, byte) in &mutations {
                let at = at % mutated.len();
                mutated[at] = *byte;
            }
            let raw = [b"k,x\n".to_vec(), body].concat();
            for text in [raw, mutated] {
                let agg = Aggregation::from_source("t.naas", STATS, None).unwrap();
                let input = Input { name: "t.csv".to_string(), reader: &text[..], size: None };
                let config = JobConfig { skip_invalid, max_row: 200, ..small(workers, true) };
                match run(&agg, input, "k", &[], &config) {
                    Ok(out) => proptest::prop_assert!(out.stats.skipped <= out.stats.rows),
                    Err(JobError::Row(row)) => {
                        proptest::prop_assert!(row.line >= 2, "{}", row);
                        proptest::prop_assert!(row.to_string().starts_with("t.csv:"), "{}", row);
                    }
                    // A mutated header may lose the key or the input column.
                    Err(JobError::Input(message)) => proptest::prop_assert!(message.contains("t.csv"), "{}", message),
                    Err(other) => proptest::prop_assert!(false, "{}", other),
                }
            }
        }
    }
}
