//! `naasc run --engine timely`: the job as a timely-dataflow computation, in this process or
//! spread over `--processes N` copies of `naasc` that talk over loopback TCP.
//!
//! With several processes, this process is the launcher: it picks free loopback ports, starts
//! every process with the hidden flags `--timely-process I --timely-addresses A,B,...`, and
//! gathers their results (one JSON line per key on their stdout, after a marker; timely's own
//! connection messages on stdout are passed on to stderr) into one sorted output.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use naas_runtime::executor::{JobError, JobStats, KeyResults};
use naas_runtime::timely_job::{run_timely, Cluster, TimelyJob};
use naas_runtime::timely_ops::AggregationSource;
use naas_runtime::Value;

/// The prefixes of a worker process's result and closing lines.
const RESULT_MARK: &str = "naasc-result ";
const STATS_MARK: &str = "naasc-stats ";

/// One result line of a worker process.
#[derive(serde::Serialize, serde::Deserialize)]
struct ResultLine {
    key: Vec<u8>,
    values: Vec<LineValue>,
}

/// A result value on a line: floats as their bits, because JSON has no NaN or infinities.
#[derive(serde::Serialize, serde::Deserialize)]
enum LineValue {
    Bool(bool),
    Int(i64),
    UInt(u64),
    FloatBits(u64),
}

impl From<Value> for LineValue {
    fn from(value: Value) -> LineValue {
        match value {
            Value::Bool(b) => LineValue::Bool(b),
            Value::Int(v) => LineValue::Int(v),
            Value::UInt(v) => LineValue::UInt(v),
            Value::Float(x) => LineValue::FloatBits(x.to_bits()),
        }
    }
}

impl From<LineValue> for Value {
    fn from(value: LineValue) -> Value {
        match value {
            LineValue::Bool(b) => Value::Bool(b),
            LineValue::Int(v) => Value::Int(v),
            LineValue::UInt(v) => Value::UInt(v),
            LineValue::FloatBits(bits) => Value::Float(f64::from_bits(bits)),
        }
    }
}

/// The closing line of a worker process.
#[derive(serde::Serialize, serde::Deserialize)]
struct StatsLine {
    rows: u64,
    skipped: u64,
}

/// Runs the job in this process (`cluster` names this process's place in a larger job).
pub fn run_here(job: TimelyJob) -> Result<(KeyResults, JobStats), JobError> {
    let (mut results, stats) = run_timely(job)?;
    results.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok((results, stats))
}

/// Runs one process of a multi-process job and prints its results for the launcher.
pub fn run_as_worker_process(job: TimelyJob) -> Result<(), JobError> {
    let (results, stats) = run_timely(job)?;
    for error in &stats.first_skipped {
        eprintln!("naasc: skipped {error}");
    }
    let mut out = std::io::stdout().lock();
    let write = |out: &mut dyn std::io::Write, line: String| {
        writeln!(out, "{line}").map_err(|e| JobError::Other(format!("cannot write results: {e}")))
    };
    for (key, values) in results {
        let values = values.into_iter().map(LineValue::from).collect();
        let line = serde_json::to_string(&ResultLine { key, values }).map_err(|e| JobError::Other(e.to_string()))?;
        write(&mut out, format!("{RESULT_MARK}{line}"))?;
    }
    let stats = StatsLine { rows: stats.rows, skipped: stats.skipped };
    let line = serde_json::to_string(&stats).map_err(|e| JobError::Other(e.to_string()))?;
    write(&mut out, format!("{STATS_MARK}{line}"))
}

/// Free loopback addresses for `n` processes.
fn free_addresses(n: usize) -> Result<Vec<String>, JobError> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| JobError::Other(format!("cannot find free loopback ports: {e}")))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.to_string()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| JobError::Other(format!("cannot find free loopback ports: {e}")))
}

/// Starts `processes` copies of this `naasc run` command and merges their outputs.
pub fn launch(processes: usize, args: &[std::ffi::OsString]) -> Result<(KeyResults, JobStats), JobError> {
    let exe = std::env::current_exe().map_err(|e| JobError::Other(format!("cannot find the naasc binary: {e}")))?;
    let addresses = free_addresses(processes)?;
    let mut children: Vec<std::process::Child> = Vec::new();
    for process in 0..processes {
        let spawned = Command::new(&exe)
            .args(args)
            .arg("--timely-process")
            .arg(process.to_string())
            .arg("--timely-addresses")
            .arg(addresses.join(","))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        match spawned {
            Ok(child) => children.push(child),
            Err(e) => {
                // The processes already started would wait for this one forever.
                for mut child in children {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                return Err(JobError::Other(format!("cannot start process {process}: {e}")));
            }
        }
    }
    let mut results = Vec::new();
    let mut stats = JobStats::default();
    let mut failed: Option<String> = None;
    // Every child is read to its end and waited for, even after another failed: none is left behind.
    for (process, mut child) in children.into_iter().enumerate() {
        let mut closed = false;
        if let Some(stdout) = child.stdout.take() {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let parsed = if let Some(json) = line.strip_prefix(RESULT_MARK) {
                    serde_json::from_str::<ResultLine>(json)
                        .map(|r| results.push((r.key, r.values.into_iter().map(Value::from).collect())))
                } else if let Some(json) = line.strip_prefix(STATS_MARK) {
                    serde_json::from_str::<StatsLine>(json).map(|s| {
                        stats.rows += s.rows;
                        stats.skipped += s.skipped;
                        closed = true;
                    })
                } else {
                    eprintln!("{line}");
                    Ok(())
                };
                if let Err(error) = parsed {
                    failed.get_or_insert(format!("process {process} printed a malformed result line: {error}"));
                }
            }
        }
        match child.wait() {
            Ok(status) if status.success() && closed => {}
            Ok(_) => {
                failed.get_or_insert(format!("process {process} of {processes} failed (its error is above)"));
            }
            Err(error) => {
                failed.get_or_insert(format!("process {process}: {error}"));
            }
        }
    }
    if let Some(message) = failed {
        return Err(JobError::Other(message));
    }
    results.sort_unstable_by(|a: &(Vec<u8>, Vec<Value>), b| a.0.cmp(&b.0));
    stats.keys = results.len() as u64;
    Ok((results, stats))
}

/// The job described by `naasc run`'s arguments.
pub fn job(
    source: AggregationSource,
    args: &crate::run_cmd::RunArgs,
    workers: usize,
    cluster: Option<Cluster>,
) -> TimelyJob {
    TimelyJob {
        source,
        input: args.input.clone(),
        key: args.key.clone(),
        binds: args.binds.clone(),
        skip_invalid: args.skip_invalid,
        workers,
        cluster,
        block_size: 1 << 20,
    }
}
