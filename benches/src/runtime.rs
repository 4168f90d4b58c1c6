//! `naas-bench runtime`: the runtime in a shuffle, side by side in one run.
//! - `naasc run`'s executor on a large CSV (zipf keys) with and without map-side combining:
//!   time, records/s, shuffle entries and bytes;
//! - DuckDB's `GROUP BY` on the same file, through its Python package (when `python3 -c
//!   "import duckdb"` works; otherwise the row says how to install it);
//! - a timely job: the naasc operator against the same job written with timely's own operators.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use naas_runtime::executor::{self, Input, JobConfig};
use naas_runtime::timely_ops::{AggregationSource, KeyedResult, NaasAggregate, PerTime};
use naas_runtime::{Aggregation, Value};
use naas_stdx::Rng;
use naas_target_switch::network::{Dist, KeySampler};
use timely::dataflow::channels::pact::{Exchange, ParallelizationContract, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Inspect, Probe};
use timely::dataflow::{InputHandle, ProbeHandle, StreamVec};

use crate::error::BenchError;
use crate::paths::REDUCE;

pub struct RuntimeBench {
    pub rows: u64,
    pub keys: u32,
    pub csv: Option<PathBuf>,
    pub workers: usize,
    pub timely_records: u64,
}

pub fn run(bench: &RuntimeBench) -> Result<(), BenchError> {
    let aggregation = Aggregation::from_source(REDUCE.label, REDUCE.source, None)
        .map_err(|error| BenchError::compile(REDUCE.label, error))?;
    let path = match &bench.csv {
        Some(path) => path.clone(),
        None => {
            // Generating millions of rows takes seconds, so the file is kept for later runs
            // (its name says what it holds: the generator is deterministic).
            let path = std::env::temp_dir().join(format!("naas-bench-{}-{}.csv", bench.rows, bench.keys));
            if !path.exists() {
                let started = Instant::now();
                // Written under a temporary name and renamed, so an interrupted run never
                // leaves a truncated file that a later run would take as complete.
                let partial = path.with_extension("csv.partial");
                write_csv(&partial, bench.rows, bench.keys)
                    .and_then(|()| std::fs::rename(&partial, &path))
                    .map_err(|error| BenchError::Io { action: "write", path: partial.clone(), error })?;
                println!(
                    "generated {} ({} rows) in {:.1} s",
                    path.display(),
                    bench.rows,
                    started.elapsed().as_secs_f64()
                );
            }
            path
        }
    };
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    println!(
        "runtime benchmark: {} ({:.0} MB), {} workers, {} keyed by `flight`",
        path.display(),
        size as f64 / 1e6,
        bench.workers,
        REDUCE.label
    );
    println!("{:<34} {:>9} {:>12} {:>14} {:>14}", "job", "seconds", "M rows/s", "shuffle entries", "shuffle bytes");
    let mut best_naasc = f64::INFINITY;
    for combine in [true, false] {
        let config = JobConfig { workers: bench.workers, combine, ..JobConfig::default() };
        let mut best = f64::INFINITY;
        let mut last = None;
        for _ in 0..3 {
            let input = Input::open(&path).map_err(|error| BenchError::run("opening the CSV", error))?;
            let started = Instant::now();
            let out = executor::run(&aggregation, input, "flight", &[], &config)
                .map_err(|error| BenchError::run("the naasc run job", error))?;
            best = best.min(started.elapsed().as_secs_f64());
            last = Some(out);
        }
        let Some(out) = last else { return Err(BenchError::run("the naasc run job", "no run completed")) };
        if combine {
            best_naasc = best;
        }
        let label = if combine { "naasc run (combining)" } else { "naasc run (no combining)" };
        println!(
            "{label:<34} {best:>9.3} {:>12.1} {:>14} {:>14}",
            out.stats.rows as f64 / best / 1e6,
            out.stats.shuffle_entries,
            out.stats.shuffle_bytes
        );
    }
    match duckdb(&path) {
        Ok(seconds) => println!(
            "{:<34} {seconds:>9.3} {:>12.1}   naasc/DuckDB time ratio {:.2} (below 1: naasc is faster)",
            "DuckDB GROUP BY (python3 duckdb)",
            bench.rows as f64 / seconds / 1e6,
            best_naasc / seconds
        ),
        Err(why) => println!("DuckDB: not measured ({why})"),
    }
    timely_comparison(bench)
}

/// `flight,delay` rows: zipf(1.1) keys `F0..F{keys-1}`, delays in -60..=600.
fn write_csv(path: &Path, rows: u64, keys: u32) -> std::io::Result<()> {
    use std::io::Write;
    let sampler = KeySampler::new(Dist::Zipf(1.1), keys);
    let mut rng = Rng::new(42);
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(out, "flight,delay")?;
    for _ in 0..rows {
        let key = sampler.sample(&mut rng);
        let delay = (rng.next_u64() % 661) as i64 - 60;
        writeln!(out, "F{key},{delay}")?;
    }
    out.flush()
}

/// Why DuckDB was not measured.
#[derive(Debug, thiserror::Error)]
enum DuckDbError {
    #[error("cannot run python3: {0}")]
    NoPython(std::io::Error),
    #[error("the Python package `duckdb` is not installed: `pip install duckdb` (in a venv) adds it")]
    NotInstalled,
    #[error("the DuckDB query failed: {0}")]
    Query(String),
    #[error("unexpected DuckDB output `{0}`")]
    Output(String),
}

/// Times DuckDB's GROUP BY over the file (best of 3, inside Python, results fetched).
fn duckdb(path: &Path) -> Result<f64, DuckDbError> {
    let probe =
        std::process::Command::new("python3").args(["-c", "import duckdb"]).output().map_err(DuckDbError::NoPython)?;
    if !probe.status.success() {
        return Err(DuckDbError::NotInstalled);
    }
    let script = format!(
        "import duckdb, time\nbest = 1e9\nfor _ in range(3):\n    c = duckdb.connect()\n    t = time.perf_counter()\n    \
         rows = c.execute(\"SELECT flight, min(delay), max(delay), avg(delay), count(*) FROM read_csv('{}') GROUP BY flight ORDER BY flight\").fetchall()\n    \
         best = min(best, time.perf_counter() - t)\nprint(best)\n",
        path.display()
    );
    let output = std::process::Command::new("python3").arg("-c").arg(script).output().map_err(DuckDbError::NoPython)?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(DuckDbError::Query(stderr.lines().last().unwrap_or_default().to_string()));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim().parse().map_err(|_| DuckDbError::Output(naas_stdx::excerpt(text.trim(), 80).into_owned()))
}

/// A key and its result values.
type KeyedValues = (u32, Vec<Value>);

/// (min, max, sum, count) of the delays of one key: the hand-written state.
type Stats = (i32, i32, i64, u64);

fn timely_comparison(bench: &RuntimeBench) -> Result<(), BenchError> {
    let source =
        AggregationSource { file_name: REDUCE.label.to_string(), source: REDUCE.source.to_string(), aggregate: None };
    let records = bench.timely_records;
    let workers = bench.workers;
    println!(
        "\ntimely job: {records} in-memory records, {} zipf(1.1) keys, {workers} workers, one process",
        bench.keys
    );
    let mut outcomes = Vec::new();
    for naas in [true, false] {
        let source = source.clone();
        let keys = bench.keys;
        let barrier = Arc::new(Barrier::new(workers));
        let guards = timely::execute(timely::Config::process(workers), move |worker| {
            let (index, peers) = (worker.index(), worker.peers());
            let sampler = KeySampler::new(Dist::Zipf(1.1), keys);
            let mut rng = Rng::new(7 + index as u64);
            let mine = records / peers as u64 + u64::from((index as u64) < records % peers as u64);
            let data: Vec<(u32, i32)> =
                (0..mine).map(|_| (sampler.sample(&mut rng), (rng.next_u64() % 661) as i32 - 60)).collect();
            let mut input: InputHandle<u64, timely::container::CapacityContainerBuilder<Vec<(u32, i32)>>> =
                InputHandle::new();
            let probe = ProbeHandle::new();
            let results: std::rc::Rc<std::cell::RefCell<Vec<KeyedValues>>> = Default::default();
            let sink = results.clone();
            let built = worker.dataflow::<u64, _, _>(|scope| -> Result<(), BenchError> {
                let stream = input.to_stream(scope);
                let finished: StreamVec<'_, u64, (u32, Vec<Value>)> = if naas {
                    // A key whose result is an error gets no values: the comparison below fails.
                    let results = stream.naas_aggregate(&source).map_err(|e| BenchError::compile(REDUCE.label, e))?;
                    results.map(|(key, result): KeyedResult<u32>| (key, result.unwrap_or_default()))
                } else {
                    hand_written(stream)
                };
                finished
                    .inspect_core(move |event| {
                        if let Ok((_, batch)) = event {
                            sink.borrow_mut().extend(batch.iter().cloned());
                        }
                    })
                    .probe_with(&probe);
                Ok(())
            });
            built?;
            barrier.wait();
            let started = Instant::now();
            for chunk in data.chunks(1024) {
                for record in chunk {
                    input.send(*record);
                }
            }
            drop(input);
            while worker.step() {}
            barrier.wait();
            let seconds = started.elapsed().as_secs_f64();
            let results = std::mem::take(&mut *results.borrow_mut());
            Ok::<_, BenchError>((seconds, results))
        });
        let mut seconds = 0.0f64;
        let mut results = Vec::new();
        match guards {
            Ok(guards) => {
                for outcome in guards.join() {
                    match outcome {
                        Ok(Ok((s, mut r))) => {
                            seconds = seconds.max(s);
                            results.append(&mut r);
                        }
                        Ok(Err(error)) => return Err(error),
                        Err(panic) => return Err(BenchError::run("a timely worker", panic)),
                    }
                }
            }
            Err(e) => return Err(BenchError::run("starting timely", e)),
        }
        results.sort_by_key(|(k, _)| *k);
        let label = if naas { "naasc operator (JIT combine)" } else { "timely's own operators (HashMap)" };
        println!("{label:<34} {seconds:>9.3} s {:>8.1} M records/s", records as f64 / seconds / 1e6);
        outcomes.push((seconds, results));
    }
    if outcomes[0].1 != outcomes[1].1 {
        return Err(BenchError::Disagree(
            "the two timely jobs disagree: the benchmark compares different computations".to_string(),
        ));
    }
    println!("results identical; naasc operator / timely operators time ratio {:.2}", outcomes[0].0 / outcomes[1].0);
    Ok(())
}

/// The same job with timely's own operators: a HashMap combiner per timestamp, an exchange by
/// key, a HashMap merge, and the same finish (the mean as sum / count).
fn hand_written<'s>(stream: StreamVec<'s, u64, (u32, i32)>) -> StreamVec<'s, u64, (u32, Vec<Value>)> {
    let combined = fold_by_key(stream, Pipeline, "Combine", |e: &mut Stats, delay: i32| {
        *e = (e.0.min(delay), e.1.max(delay), e.2 + i64::from(delay), e.3 + 1);
    });
    let exchange = Exchange::new(|(key, _): &(u32, Stats)| u64::from(*key));
    let merged = fold_by_key(combined, exchange, "Merge", |e: &mut Stats, s: Stats| {
        *e = (e.0.min(s.0), e.1.max(s.1), e.2.wrapping_add(s.2), e.3 + s.3);
    });
    merged.map(|(key, (min, max, sum, count))| {
        let mean = sum as f64 / count as f64;
        (key, vec![Value::Int(min.into()), Value::Int(max.into()), Value::Float(mean), Value::UInt(count)])
    })
}

/// Folds `(key, x)` into one `Stats` per key and timestamp with `update`, and emits the table
/// once the frontier has passed the timestamp.
fn fold_by_key<'s, X: 'static, P>(
    stream: StreamVec<'s, u64, (u32, X)>,
    pact: P,
    name: &str,
    update: fn(&mut Stats, X),
) -> StreamVec<'s, u64, (u32, Stats)>
where
    P: ParallelizationContract<u64, Vec<(u32, X)>>,
{
    stream.unary_frontier(pact, name, move |_capability, _info| {
        let mut pending: PerTime<u64, HashMap<u32, Stats>> = PerTime::default();
        move |(input, frontier), output| {
            input.for_each_stamp(|capability, containers| {
                let Some(capability) = capability.retain_least(output.output_index()) else { return };
                let table = pending.state(capability, HashMap::new);
                for container in containers {
                    for (key, x) in container.drain(..) {
                        update(table.entry(key).or_insert((i32::MAX, i32::MIN, 0, 0)), x);
                    }
                }
            });
            pending.complete(frontier, |capability, table| {
                output.session(capability).give_iterator(table.into_iter());
            });
        }
    })
}
