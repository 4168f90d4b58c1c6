//! `naasc run FILE --input data.csv --key COLUMN`: runs an aggregation over a CSV file with the
//! runtime's local MapReduce executor (host shuffle), through the switch-sim network, or as a
//! timely-dataflow job on one or several processes, and prints one row per key.

use std::io::IsTerminal;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use naas_lang::check::CheckOptions;
use naas_lang::span::LineIndex;
use naas_runtime::executor::{self, JobConfig, JobError, JobInput, Progress};
use naas_runtime::network::run_through_network;
use naas_runtime::output::OutputError;
use naas_runtime::timely_ops::AggregationSource;
use naas_runtime::{output, Aggregation, JobOutput, LoadError};
use naas_target_native::NativeError;
use naas_target_switch::network::{SimConfig, Topology};
use serde_json::json;

use crate::exit::Exit;
use crate::front_end::{report_errors_only_for, report_front_end_for, report_internal, FrontEnd};
use crate::run_timely;
use crate::source::SourceFile;
use crate::stdout;
use crate::switch::{lower_all, SwitchArgs};

pub use naas_runtime::executor::MAX_WORKERS;

/// The most processes `--processes` may start.
pub const MAX_PROCESSES: usize = 64;

/// The most timely workers of one job, over all its processes (`--processes` times
/// `--workers`): every pair of timely workers has its own channels, so memory grows with the
/// square of this number.
pub const MAX_TIMELY_WORKERS: usize = 1024;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Source file (`.naas`).
    pub file: PathBuf,
    /// The CSV input (with a header row).
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// The column whose text is the key.
    #[arg(long, value_name = "COLUMN")]
    pub key: String,
    /// Bind an input to a column of another name: `--bind delay=arr_delay` (repeatable).
    #[arg(long = "bind", value_name = "PARAM=COLUMN", value_parser = parse_bind)]
    pub binds: Vec<(String, String)>,
    /// Where partial states are merged: `host` (a shuffle between threads) or `switch-sim`
    /// (through the simulated network, whose switches run the pipeline program).
    #[arg(long, value_enum, default_value_t = Target::Host)]
    pub target: Target,
    /// The network for `--target switch-sim` (as in `naasc simulate`).
    #[arg(long, default_value = "tree:fanout=4,depth=2")]
    pub topology: String,
    /// Map workers and reduce partitions (default: one per core).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Skip rows that do not parse (counted on stderr) instead of stopping at the first.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Send every record through the shuffle on its own (no map-side combining).
    #[arg(long)]
    pub no_combine: bool,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    pub format: Format,
    /// Write the results here instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// How the job runs: `local` (threads and an in-memory shuffle) or `timely`
    /// (timely-dataflow operators; several processes with `--processes`).
    #[arg(long, value_enum, default_value_t = Engine::Local)]
    pub engine: Engine,
    /// Processes of a timely job, each with `--workers` threads, started by this command and
    /// connected over loopback TCP.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub processes: usize,
    /// A timely job's processes, one `host:port` per line (as timely's hostfile), started one
    /// by one (`--process I` each): this process binds line I's address and connects to the
    /// others; process 0 writes the results.
    #[arg(long, value_name = "FILE")]
    pub hostfile: Option<PathBuf>,
    /// This process's line of `--hostfile`, counted from 0.
    #[arg(long, value_name = "I")]
    pub process: Option<usize>,
    /// With `--hostfile`: each process reads its own `--input` whole, rather than its share of
    /// one file that every process opens by the same path.
    #[arg(long)]
    pub input_per_process: bool,
    /// (Internal) this process's index in a multi-process timely job (the launcher sends it
    /// the other processes' addresses on stdin).
    #[arg(long, hide = true)]
    pub timely_process: Option<usize>,
    /// Write the job's counts (rows, keys, shuffle bytes, times, network traffic) as JSON.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub switch: SwitchArgs,
    #[command(flatten)]
    pub net: crate::node_cmd::NetworkArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    Host,
    SwitchSim,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    Local,
    Timely,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Csv,
    Json,
}

/// `--bind` text that is not `PARAM=COLUMN` (clap reports it with the flag).
#[derive(Debug, thiserror::Error)]
#[error("expected PARAM=COLUMN, got `{0}`")]
struct BindError(String);

fn parse_bind(text: &str) -> Result<(String, String), BindError> {
    match text.split_once('=') {
        Some((param, column)) if !param.trim().is_empty() && !column.trim().is_empty() => {
            Ok((param.trim().to_string(), column.trim().to_string()))
        }
        _ => Err(BindError(text.to_string())),
    }
}

fn usage(message: impl std::fmt::Display) -> Exit {
    eprintln!("naasc: {message}");
    Exit::Usage
}

/// A count of workers or processes outside its documented limit (spec §17.3).
#[derive(Debug, thiserror::Error)]
enum CountError {
    #[error("--workers {0}: a job has 1 to {MAX_WORKERS} workers per process")]
    Workers(usize),
    #[error("--processes {0}: a job has 1 to {MAX_PROCESSES} processes")]
    Processes(usize),
    #[error(
        "--processes {processes} with {per_process} workers each: a timely job has at most \
         {MAX_TIMELY_WORKERS} workers in all"
    )]
    TimelyWorkers { processes: usize, per_process: usize },
}

/// Checks `--workers` and `--processes` against their documented limits (spec §17).
fn check_counts(workers: Option<usize>, processes: usize, engine: Engine) -> Result<(), CountError> {
    if let Some(workers) = workers {
        if !(1..=MAX_WORKERS).contains(&workers) {
            return Err(CountError::Workers(workers));
        }
    }
    if !(1..=MAX_PROCESSES).contains(&processes) {
        return Err(CountError::Processes(processes));
    }
    if engine == Engine::Timely {
        let per_process = workers.unwrap_or(JobConfig::default().workers);
        if processes.saturating_mul(per_process) > MAX_TIMELY_WORKERS {
            return Err(CountError::TimelyWorkers { processes, per_process });
        }
    }
    Ok(())
}

pub fn run(args: &RunArgs) -> Exit {
    if let Err(message) = check_counts(args.workers, args.processes, args.engine) {
        return usage(message);
    }
    let network = args.net.network.is_some();
    if let Some(message) = crate::node_cmd::check_network_flags(&args.net, args.target == Target::Host, args.no_combine)
    {
        return usage(message);
    }
    if args.target == Target::Host && !network {
        if let Some(flag) = args.switch.switch_only_flag() {
            return usage(format!(
                "{flag} applies to the switch (`--target switch-sim`); the host target has no use for it"
            ));
        }
    }
    if args.engine == Engine::Timely && (args.target == Target::SwitchSim || args.no_combine) {
        return usage("--engine timely runs on the host and always combines: drop --target switch-sim / --no-combine");
    }
    if args.target == Target::SwitchSim && args.no_combine {
        return usage("--target switch-sim sends each mapper's combined states into the network: drop --no-combine");
    }
    if args.engine == Engine::Local && args.processes > 1 {
        return usage("--processes needs --engine timely");
    }
    if let Some(message) = check_cluster_flags(args) {
        return usage(message);
    }
    // A timely process started by a launcher: the launcher has printed the warnings.
    let front_end = if args.timely_process.is_some() { report_errors_only_for } else { report_front_end_for };
    let (compiled, file) = match front_end(&args.file, &CheckOptions::default(), args.switch.aggregate.as_deref()) {
        FrontEnd::Compiled(compiled, file) => (compiled, file),
        FrontEnd::Failed(code) => return code,
    };
    let aggregation = match Aggregation::from_compiled(*compiled, args.switch.aggregate.as_deref()) {
        Ok(aggregation) => aggregation,
        Err(LoadError::Internal(error)) => return report_internal(&file, &error),
        Err(LoadError::Unsupported(NativeError::Internal(error))) => return report_internal(&file, &error),
        Err(error) => {
            eprintln!("naasc: {}: {error}", file.name);
            // Choosing an aggregate is the command line's job (`--aggregate`).
            return match error {
                LoadError::Selection(_) => Exit::Usage,
                _ => Exit::Program,
            };
        }
    };
    for (flag, path) in [("-o", &args.output), ("--report", &args.report)] {
        if let Some(path) = path {
            if same_file(path, &args.input) {
                return usage(format!(
                    "{flag} `{}` is the input file `{}`: writing it would destroy the input",
                    path.display(),
                    args.input.display()
                ));
            }
        }
    }
    if let (Some(output), Some(report)) = (&args.output, &args.report) {
        if output == report || same_file(output, report) {
            return usage(format!("-o and --report name the same file `{}`", output.display()));
        }
    }
    // Before opening it: opening a FIFO waits for a writer.
    if args.engine == Engine::Timely && args.timely_process.is_none() {
        if let Err(error) = run_timely::check_input(&args.input) {
            return usage(error);
        }
    }
    let input = match JobInput::open(&args.input) {
        Ok(input) => input,
        Err(error) => return usage(error),
    };
    let config = JobConfig {
        workers: args.workers.unwrap_or(JobConfig::default().workers),
        combine: !args.no_combine,
        skip_invalid: args.skip_invalid,
        progress: std::io::stderr().is_terminal().then_some(draw_progress as Progress),
        finite_floats: (args.target == Target::SwitchSim || network) && args.switch.fixed_point.is_some(),
        ..JobConfig::default()
    };
    let source = AggregationSource {
        file_name: file.name.clone(),
        source: file.text.clone(),
        aggregate: args.switch.aggregate.clone(),
    };
    // What a timely process runs once connected: timely's reduce, or the network's.
    let timely_network = match (args.engine, network) {
        (Engine::Timely, true) => match crate::node_cmd::TimelyNetwork::new(args, &aggregation, &file) {
            Ok(network) => Some(network),
            Err(crate::node_cmd::NetworkFailure::Job(error)) => return job_failed(&error, &file),
            Err(crate::node_cmd::NetworkFailure::Reported(code)) => return code,
        },
        _ => None,
    };
    let through_network = |job, cluster, process| match &timely_network {
        Some(network) => network.run(job, cluster, process),
        None => run_timely::reduce_in_timely(job, cluster, process),
    };
    let body: run_timely::Body<'_> = &through_network;
    if let Some(process) = args.timely_process {
        let job = run_timely::job(source, args, config.workers);
        let printed = run_timely::run_as_worker_process(job, process, body).and_then(|()| {
            match timely_network.as_ref().and_then(|network| network.report.borrow_mut().take()) {
                Some(report) => run_timely::print_network_report(&report),
                None => Ok(()),
            }
        });
        return match printed {
            Ok(()) => Exit::Ok,
            Err(error) => job_failed(&error, &file),
        };
    }
    let started = std::time::Instant::now();
    let outcome = match (args.engine, args.target) {
        _ if network && args.engine == Engine::Local => {
            match crate::node_cmd::run_network(args, &aggregation, &file, input, &config) {
                Ok(outcome) => Ok(outcome),
                Err(crate::node_cmd::NetworkFailure::Job(error)) => Err(error),
                Err(crate::node_cmd::NetworkFailure::Reported(code)) => return code,
            }
        }
        (Engine::Local, Target::Host) => {
            executor::run(&aggregation, input, &args.key, &args.binds, &config).map(|out| (out, None))
        }
        (Engine::Local, Target::SwitchSim) => {
            let topology = match Topology::parse(&args.topology) {
                Ok(topology) => topology,
                Err(error) => return usage(error),
            };
            let switch = SwitchArgs { aggregate: Some(aggregation.name().to_string()), ..args.switch.clone() };
            let pipeline = match lower_all(aggregation.compiled(), &file, &switch) {
                Ok(mut programs) if !programs.is_empty() => programs.swap_remove(0).1,
                Ok(_) => return Exit::Program,
                Err(code) => return code,
            };
            let sim = SimConfig { topology, ..SimConfig::default() };
            run_through_network(&aggregation, input, &args.key, &args.binds, &config, &pipeline, &sim).map(
                |(out, report)| {
                    report_network(&report);
                    (out, serde_json::to_value(&report).ok())
                },
            )
        }
        (Engine::Timely, _) => {
            // Check the header here, once, rather than in every process.
            if let Err(error) = executor::bind_input(&aggregation, input, &args.key, &args.binds) {
                return usage(error);
            }
            let mut launched_report = None;
            let outcome = if let (Some(hostfile), Some(process)) = (&args.hostfile, args.process) {
                let job = run_timely::job(source, args, config.workers);
                let timeout = std::time::Duration::from_secs_f64(args.net.timeout);
                match run_timely::run_in_cluster(job, hostfile, process, timeout, body) {
                    Ok(Some(outcome)) => Ok(outcome),
                    // Another process writes the results.
                    Ok(None) => return Exit::Ok,
                    Err(error) => Err(error),
                }
            } else if args.processes > 1 {
                let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
                run_timely::launch(args, &argv).map(|(results, stats, network)| {
                    launched_report = network;
                    (results, stats)
                })
            } else {
                run_timely::run_here(run_timely::job(source, args, config.workers), body)
            };
            let report =
                timely_network.as_ref().and_then(|network| network.report.borrow_mut().take()).or(launched_report);
            outcome.map(|(results, stats)| (JobOutput { results, stats }, report))
        }
    };
    let (job, network): (JobOutput, Option<serde_json::Value>) = match outcome {
        Ok(outcome) => outcome,
        Err(error) => return job_failed(&error, &file),
    };
    let seconds = started.elapsed().as_secs_f64();
    if job.stats.skipped > 0 {
        // The colon introduces the quoted rows below (spec §17.3).
        eprintln!("naasc: skipped {} invalid row(s) of {}:", job.stats.skipped, job.stats.rows);
        for error in &job.stats.first_skipped {
            eprintln!("  {error}");
        }
        let quoted = job.stats.first_skipped.len() as u64;
        if quoted > 0 && job.stats.skipped > quoted {
            eprintln!("  ... and {} more", job.stats.skipped - quoted);
        }
    }
    if let Err(code) = write_results(args, &aggregation, &job) {
        return code;
    }
    if let Some(path) = &args.report {
        let measured = args.engine == Engine::Local;
        let report = json!({
            "aggregate": aggregation.name(),
            "input": args.input.display().to_string(),
            "target": match args.target {
                _ if args.net.network.is_some() => "network",
                Target::Host => "host",
                Target::SwitchSim => "switch-sim",
            },
            "workers": config.workers,
            "combine": config.combine,
            "rows": job.stats.rows,
            "skipped": job.stats.skipped,
            "keys": job.stats.keys,
            // The timely engine does not measure its exchange or its phases separately.
            "shuffle_entries": measured.then_some(job.stats.shuffle_entries),
            "shuffle_bytes": measured.then_some(job.stats.shuffle_bytes),
            "map_seconds": measured.then_some(job.stats.map_seconds),
            "reduce_seconds": measured.then_some(job.stats.reduce_seconds),
            "seconds": seconds,
            "rows_per_second": job.stats.rows as f64 / seconds.max(1e-9),
            "network": network,
        });
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        if let Err(error) = write_file_atomically(path, |out| out.write_all((text + "\n").as_bytes())) {
            return usage(format!("cannot write `{}`: {error}", path.display()));
        }
    }
    // The process ends right after this: freeing a result per key (two allocations each, a
    // million keys and more) would only delay the exit, one thread at a time.
    std::mem::forget(job);
    Exit::Ok
}

/// Checks the cluster form's flags (`--hostfile`, `--process`, `--input-per-process`) against
/// each other and the rest; `None` when they fit.
fn check_cluster_flags(args: &RunArgs) -> Option<String> {
    match (&args.hostfile, args.process) {
        (Some(_), None) => return Some("--hostfile needs --process I (this process's line, from 0)".to_string()),
        (None, Some(_)) => return Some("--process needs --hostfile FILE (every process's address)".to_string()),
        (None, None) if args.input_per_process => return Some("--input-per-process applies to --hostfile".to_string()),
        (None, None) => return None,
        (Some(_), Some(_)) => {}
    }
    if args.engine != Engine::Timely {
        return Some("--hostfile runs a timely job: add --engine timely".to_string());
    }
    if args.processes > 1 {
        return Some("--hostfile lists the processes (one per line): drop --processes".to_string());
    }
    if args.net.network.is_some() && args.input_per_process {
        return Some(
            "--network spreads the units of one shared input over the topology's mappers: drop --input-per-process"
                .to_string(),
        );
    }
    if !(args.net.timeout > 0.0 && args.net.timeout <= crate::node_cmd::MAX_TIMEOUT_SECONDS) {
        return Some(format!(
            "--timeout {}: give 0 to {} seconds (more than 0)",
            args.net.timeout,
            crate::node_cmd::MAX_TIMEOUT_SECONDS
        ));
    }
    None
}

/// Says on stderr what the switches did, so that no entry silently bypasses the network's
/// aggregation: merged in a switch, forwarded unmerged (its slot held another key), or read out
/// at end of stream, and what reached the reducer against the fan-in bound. Per switch counts
/// are in `--report`.
fn report_network(report: &naas_target_switch::network::Report) {
    eprintln!(
        "naasc: network: {} entries from mappers; {} switch(es) made {} merges, forwarded {} entries \
         unmerged (slot held another key) and flushed {} at end of stream; {} reached the reducer \
         (fan-in bound {})",
        report.entries_from_mappers,
        report.switches,
        report.switch_merges,
        report.collisions,
        report.flushed_entries,
        report.entries_at_reducer,
        report.ideal_entries_at_reducer
    );
    if report.insertion_chain > 0 {
        eprintln!(
            "naasc: network: the reducer merged {} sorted-run values (bound {}: at most {} per key per child){}",
            report.values_at_reducer,
            report.values_bound_at_reducer,
            report.insertion_chain,
            match report.values_at_reducer <= report.values_bound_at_reducer {
                true => "",
                false => "; above it: entries forwarded unmerged",
            }
        );
    }
}

/// Whether two paths name one existing file (through links or different spellings alike).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Writes a file through a temporary file beside it, renamed over it only once everything
/// was written: a failure leaves an existing file as it was. A path that exists but is not a
/// regular file (`/dev/stdout`, a pipe) is written in place, as it cannot be replaced. A
/// symbolic link keeps pointing where it did: its target is replaced.
fn write_file_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let target = match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => {
            let mut file = std::io::BufWriter::new(std::fs::OpenOptions::new().write(true).open(path)?);
            write(&mut file)?;
            return file.flush();
        }
        Ok(_) => std::fs::canonicalize(path)?,
        Err(_) => path.to_path_buf(),
    };
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target.file_name().map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    let temp = dir.join(format!(".{name}.naasc-{}.tmp", std::process::id()));
    let written = (|| {
        let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&temp)?;
        if let Ok(meta) = std::fs::metadata(&target) {
            file.set_permissions(meta.permissions())?;
        }
        let mut out = std::io::BufWriter::new(file);
        write(&mut out)?;
        out.flush()?;
        out.get_ref().sync_all()?;
        drop(out);
        std::fs::rename(&temp, &target)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// Draws (and at the end clears) a progress bar on stderr, which is a terminal (the caller
/// checks). The executor calls this every 200 ms at most, from one thread.
fn draw_progress(consumed: u64, size: Option<u64>, finished: bool) {
    static BAR: OnceLock<ProgressBar> = OnceLock::new();
    let bar = BAR.get_or_init(|| match size {
        Some(size) if size > 0 => {
            let style = ProgressStyle::with_template(
                "[{bar:30}] {percent:>3}%  {bytes} of {total_bytes}  {binary_bytes_per_sec}",
            )
            .map(|style| style.progress_chars("#>-"))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr()).with_style(style)
        }
        // Standard input has no size: count what was read.
        _ => {
            let style = ProgressStyle::with_template("{bytes} read  {binary_bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(style)
        }
    });
    if finished {
        bar.finish_and_clear();
    } else {
        bar.set_position(consumed);
    }
}

fn job_failed(error: &JobError, file: &SourceFile) -> Exit {
    match error {
        JobError::Fault { fault, .. } => {
            let (line, column) = LineIndex::new(&file.text).line_col(fault.span.lo);
            eprintln!("naasc: error: {error}");
            eprintln!("  --> {}:{line}:{column}: the operation that faulted", file.name);
            Exit::Program
        }
        JobError::Input(message) => usage(message),
        JobError::Internal(error) => report_internal(file, error),
        JobError::Row(_) => {
            eprintln!("naasc: error: {error}");
            eprintln!("  help: fix the row, or pass `--skip-invalid` to skip invalid rows and count them");
            Exit::Program
        }
        _ => {
            eprintln!("naasc: error: {error}");
            Exit::Program
        }
    }
}

/// Writes the results to `-o FILE` (through a temporary file, so a failure leaves FILE as it
/// was) or to standard output.
fn write_results(args: &RunArgs, aggregation: &Aggregation, job: &JobOutput) -> Result<(), Exit> {
    // Results JSON cannot hold are found before a byte is written; this keeps that error apart
    // from the sink's own (the stream's kind decides between a closed pipe and a failure).
    let mut refused: Option<OutputError> = None;
    let mut write = |out: &mut dyn Write| -> std::io::Result<()> {
        let written = match args.format {
            Format::Csv => output::write_csv(out, aggregation, &args.key, &job.results),
            Format::Json => output::write_json(out, aggregation, &args.key, &job.results),
        };
        match written {
            Ok(()) => Ok(()),
            Err(OutputError::Io(error)) => Err(error),
            Err(error) => {
                refused = Some(error);
                Err(std::io::Error::other("the results cannot be written in this format"))
            }
        }
    };
    if let Some(path) = &args.output {
        let Err(error) = write_file_atomically(path, &mut write) else { return Ok(()) };
        if let Some(refused) = refused {
            eprintln!("naasc: cannot write the results: {refused}");
            return Err(Exit::Program);
        }
        return Err(usage(format!("cannot write `{}`: {error}", path.display())));
    }
    let written = stdout::writer().and_then(|out| {
        let mut out = std::io::BufWriter::new(out);
        write(&mut out)?;
        out.flush()?;
        Ok(())
    });
    let Err(error) = written else { return Ok(()) };
    if let Some(refused) = refused {
        eprintln!("naasc: cannot write the results: {refused}");
        return Err(Exit::Program);
    }
    Err(error.report("the results"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn counts_inside_their_limits_pass_and_others_name_the_flag_and_limit() {
        // Every combination around the limits, on both engines.
        let values = [0, 1, 2, 63, 64, 65, 255, 256, 257, 1024, 5000, usize::MAX];
        for engine in [Engine::Local, Engine::Timely] {
            for &workers in &values {
                for &processes in &values {
                    let result = check_counts(Some(workers), processes, engine);
                    let workers_ok = (1..=MAX_WORKERS).contains(&workers);
                    let processes_ok = (1..=MAX_PROCESSES).contains(&processes);
                    let total_ok = engine == Engine::Local || processes.saturating_mul(workers) <= MAX_TIMELY_WORKERS;
                    assert_eq!(result.is_ok(), workers_ok && processes_ok && total_ok, "{workers} x {processes}");
                    if let Err(error) = result {
                        let message = error.to_string();
                        let names_limit = message.contains("--workers") && message.contains("256")
                            || message.contains("--processes") && message.contains("64")
                            || message.contains("1024");
                        assert!(names_limit, "{message}");
                    }
                }
            }
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("naasc-run-cmd-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn an_atomic_write_keeps_the_old_file_on_failure_and_follows_links() {
        let dir = temp_dir("atomic");
        let path = dir.join("out.csv");
        std::fs::write(&path, "old\n").unwrap();
        let failed = write_file_atomically(&path, |out| {
            out.write_all(b"half")?;
            Err(std::io::Error::other("stop"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "the temporary file is removed");
        let link = dir.join("link.csv");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        write_file_atomically(&link, |out| out.write_all(b"new\n")).unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        assert!(same_file(&link, &path));
        assert!(!same_file(&path, &dir.join("missing.csv")));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
