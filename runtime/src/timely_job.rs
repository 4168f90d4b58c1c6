//! A CSV aggregation job as a timely-dataflow computation: every worker (of every process)
//! reads its share of the file's blocks, feeds `(key, record)` into
//! [`NaasAggregate::naas_aggregate`], and returns the results of the keys the exchange gave it.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use naas_ir::ir::ScalarTy;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::{Inspect, Probe};
use timely::dataflow::{InputHandle, ProbeHandle, StreamVec};
use timely::{CommunicationConfig, Config, WorkerConfig};

use crate::csv_input::{csv_reader, BlockReader, Lines, RowError, Schema};
use crate::executor::{JobError, JobStats, KeyResults};
use crate::timely_ops::{AggregationSource, KeyedResult, NaasAggregate};
use crate::value::{parse_value, Value};

/// Which processes take part, for a job spread over several.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// This process's index in `addresses`.
    pub process: usize,
    /// `host:port` of every process, the same list everywhere.
    pub addresses: Vec<String>,
}

/// A timely job over one CSV file.
#[derive(Clone, Debug, PartialEq)]
pub struct TimelyJob {
    pub source: AggregationSource,
    pub input: PathBuf,
    pub key: String,
    pub binds: Vec<(String, String)>,
    pub skip_invalid: bool,
    /// Worker threads in this process.
    pub workers: usize,
    /// `None` runs every worker in this process.
    pub cluster: Option<Cluster>,
    pub block_size: usize,
}

/// The results of the keys this process's workers own (unsorted) and what they counted.
pub type TimelyOutput = (KeyResults, JobStats);

/// A key and its record.
type Row = (Vec<u8>, Vec<Value>);
/// A key and why it has no result.
type Failure = (Vec<u8>, String);

/// Runs the job's workers in this process and waits for the whole computation.
pub fn run_timely(job: TimelyJob) -> Result<TimelyOutput, JobError> {
    if job.workers == 0 {
        return Err(JobError::Input("at least one worker is needed".to_string()));
    }
    let communication = match &job.cluster {
        None => CommunicationConfig::Process(job.workers),
        Some(cluster) => CommunicationConfig::Cluster {
            threads: job.workers,
            process: cluster.process,
            addresses: cluster.addresses.clone(),
            report: false,
            zerocopy: false,
        },
    };
    let config = Config { communication, worker: WorkerConfig::default() };
    let guards = timely::execute(config, move |worker| worker_main(worker, &job))
        .map_err(|e| JobError::Other(format!("cannot start timely: {e}")))?;
    let mut results = Vec::new();
    let mut stats = JobStats::default();
    let mut first_error: Option<(u64, JobError)> = None;
    for outcome in guards.join() {
        match outcome {
            Ok(Ok((mut part, part_stats))) => {
                results.append(&mut part);
                stats.absorb_rows(part_stats);
            }
            Ok(Err((line, error))) => {
                if first_error.as_ref().is_none_or(|(l, _)| line < *l) {
                    first_error = Some((line, error));
                }
            }
            Err(panic) => return Err(JobError::Other(format!("a timely worker failed: {panic}"))),
        }
    }
    if let Some((_, error)) = first_error {
        return Err(error);
    }
    stats.keys = results.len() as u64;
    Ok((results, stats))
}

type WorkerOutput = Result<TimelyOutput, (u64, JobError)>;

fn worker_main(worker: &mut timely::worker::Worker, job: &TimelyJob) -> WorkerOutput {
    let early = |error: JobError| (0, error);
    let aggregation = job.source.load().map_err(|e| early(JobError::Input(e.to_string())))?;
    let (index, peers) = (worker.index(), worker.peers());
    let mut input: InputHandle<u64, CapacityContainerBuilder<Vec<Row>>> = InputHandle::new();
    let probe = ProbeHandle::new();
    let results: Rc<RefCell<KeyResults>> = Rc::default();
    let failures: Rc<RefCell<Vec<Failure>>> = Rc::default();
    let (sink, failed) = (Rc::clone(&results), Rc::clone(&failures));
    worker
        .dataflow::<u64, _, _>(|scope| {
            input.to_stream(scope).naas_aggregate(&job.source).map(
                |stream: StreamVec<'_, u64, KeyedResult<Vec<u8>>>| {
                    stream
                        .inspect_core(move |event| {
                            let Ok((_, batch)) = event else { return };
                            for (key, result) in batch {
                                match result {
                                    Ok(values) => sink.borrow_mut().push((key.clone(), values.clone())),
                                    Err(message) => failed.borrow_mut().push((key.clone(), message.clone())),
                                }
                            }
                        })
                        .probe_with(&probe);
                },
            )
        })
        .map_err(|e| early(JobError::Input(e.to_string())))?;

    let name = job.input.display().to_string();
    let file =
        std::fs::File::open(&job.input).map_err(|e| early(JobError::Input(format!("cannot open `{name}`: {e}"))))?;
    let mut blocks = BlockReader::new(file, job.block_size);
    let header = blocks.header(&name).map_err(|e| early(JobError::Input(e)))?;
    let schema =
        Schema::bind(header, &aggregation, &job.key, &job.binds, &name).map_err(|e| early(JobError::Input(e)))?;
    let types: Vec<ScalarTy> = aggregation.inputs().iter().map(|i| i.ty).collect();
    let mut stats = JobStats::default();
    let mut record = csv::ByteRecord::new();
    while let Some(block) = blocks.next_block().map_err(|e| early(JobError::Input(format!("`{name}`: {e}"))))? {
        if block.index % peers as u64 != index as u64 {
            continue;
        }
        let mut reader = csv_reader(&block.bytes);
        let mut lines = Lines::new(&block);
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    let line = block.first_line;
                    let error = RowError { file: name.clone(), line, column: None, message: e.to_string() };
                    return Err((line, JobError::Row(error)));
                }
            }
            stats.rows += 1;
            let line = lines.line_of(&record);
            match parse_row(&schema, &types, &record, line, &name) {
                Ok(row) => input.send(row),
                Err(error) if job.skip_invalid => {
                    stats.skip(error);
                }
                Err(error) => return Err((error.line, JobError::Row(error))),
            }
        }
        // Let the dataflow work while the file is read.
        worker.step();
    }
    drop(input);
    while worker.step() {}
    if let Some((key, message)) = failures.borrow().first() {
        let error = JobError::Other(format!("key `{}`: {message}", String::from_utf8_lossy(key)));
        return Err((0, error));
    }
    let results = std::mem::take(&mut *results.borrow_mut());
    Ok((results, stats))
}

fn parse_row(
    schema: &Schema,
    types: &[ScalarTy],
    record: &csv::ByteRecord,
    line: u64,
    file: &str,
) -> Result<Row, RowError> {
    let error = |column: Option<usize>, message: String| RowError {
        file: file.to_string(),
        line,
        column: column.map(|c| (c + 1, schema.header[c].clone())),
        message,
    };
    let key = schema.key_of(record, line, file)?;
    let mut values = Vec::with_capacity(types.len());
    for (&column, &ty) in schema.inputs.iter().zip(types) {
        let value = parse_value(ty, record.get(column).unwrap_or_default()).map_err(|m| error(Some(column), m))?;
        values.push(value);
    }
    Ok((key.to_vec(), values))
}
