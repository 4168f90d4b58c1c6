//! `naasc run FILE --input data.csv --key COLUMN`: runs an aggregation over a CSV file with the
//! runtime's local MapReduce executor (host shuffle), through the switch-sim network, or as a
//! timely-dataflow job on one or several processes, and prints one row per key.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use naas_lang::check::CheckOptions;
use naas_lang::span::LineIndex;
use naas_runtime::csv_input::bind_file;
use naas_runtime::executor::{self, Input, JobConfig, JobError, Progress};
use naas_runtime::network::run_through_network;
use naas_runtime::timely_ops::AggregationSource;
use naas_runtime::{output, Aggregation, JobOutput};
use naas_target_switch::network::{SimConfig, Topology};
use serde_json::json;

use crate::check_cmd::{report_front_end, FrontEnd};
use crate::run_timely;
use crate::source::SourceFile;
use crate::switch::{lower_all, SwitchArgs};

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
    /// (Internal) this process's index in a multi-process timely job (the launcher sends it
    /// the other processes' addresses on stdin).
    #[arg(long, hide = true)]
    pub timely_process: Option<usize>,
    /// Write the job's counts (rows, keys, shuffle bytes, times, network traffic) as JSON.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub switch: SwitchArgs,
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

fn parse_bind(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((param, column)) if !param.trim().is_empty() && !column.trim().is_empty() => {
            Ok((param.trim().to_string(), column.trim().to_string()))
        }
        _ => Err(format!("expected PARAM=COLUMN, got `{text}`")),
    }
}

fn usage(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("naasc: {message}");
    ExitCode::from(2)
}

pub fn run(args: &RunArgs) -> ExitCode {
    if args.workers == Some(0) || args.processes == 0 {
        return usage("--workers and --processes must be at least 1");
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
    let (compiled, file) = match report_front_end(&args.file, &CheckOptions::default()) {
        FrontEnd::Compiled(compiled, file) => (compiled, file),
        FrontEnd::Failed(code) => return code,
    };
    let aggregation = match Aggregation::from_compiled(*compiled, args.switch.aggregate.as_deref()) {
        Ok(aggregation) => aggregation,
        Err(error) => {
            eprintln!("naasc: {}: {error}", file.name);
            return ExitCode::from(1);
        }
    };
    // Before opening it: opening a FIFO waits for a writer.
    if args.engine == Engine::Timely && args.timely_process.is_none() {
        if let Err(error) = run_timely::check_input(&args.input) {
            return usage(error);
        }
    }
    let input = match Input::open(&args.input) {
        Ok(input) => input,
        Err(error) => return usage(error),
    };
    let config = JobConfig {
        workers: args.workers.unwrap_or(JobConfig::default().workers),
        combine: !args.no_combine,
        skip_invalid: args.skip_invalid,
        progress: std::io::stderr().is_terminal().then_some(draw_progress as Progress),
        ..JobConfig::default()
    };
    let source = AggregationSource {
        file_name: file.name.clone(),
        source: file.text.clone(),
        aggregate: args.switch.aggregate.clone(),
    };
    if let Some(process) = args.timely_process {
        return match run_timely::run_as_worker_process(run_timely::job(source, args, config.workers), process) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => job_failed(&error, &file),
        };
    }
    let started = std::time::Instant::now();
    let outcome = match (args.engine, args.target) {
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
                Ok(_) => return ExitCode::from(1),
                Err(code) => return code,
            };
            let sim = SimConfig { topology, ..SimConfig::default() };
            run_through_network(&aggregation, input, &args.key, &args.binds, &config, &pipeline, &sim)
                .map(|(out, report)| (out, serde_json::to_value(&report).ok()))
        }
        (Engine::Timely, _) => {
            // Check the header here, once, rather than in every process.
            if let Err(error) = bind_file(&args.input, &aggregation, &args.key, &args.binds) {
                return usage(error);
            }
            let outcome = if args.processes > 1 {
                let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
                run_timely::launch(args, &argv)
            } else {
                run_timely::run_here(run_timely::job(source, args, config.workers))
            };
            outcome.map(|(results, stats)| (JobOutput { results, stats }, None))
        }
    };
    let (job, network): (JobOutput, Option<serde_json::Value>) = match outcome {
        Ok(outcome) => outcome,
        Err(error) => return job_failed(&error, &file),
    };
    let seconds = started.elapsed().as_secs_f64();
    if job.stats.skipped > 0 {
        eprintln!("naasc: skipped {} invalid row(s) of {}", job.stats.skipped, job.stats.rows);
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
            "target": match args.target { Target::Host => "host", Target::SwitchSim => "switch-sim" },
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
        if let Err(error) = std::fs::write(path, text + "\n") {
            return usage(format!("cannot write `{}`: {error}", path.display()));
        }
    }
    ExitCode::SUCCESS
}

/// Draws (and at the end clears) a progress bar on stderr.
fn draw_progress(consumed: u64, size: Option<u64>, finished: bool) {
    if finished {
        eprint!("\r\x1b[2K");
        return;
    }
    let mb = consumed as f64 / 1e6;
    match size {
        Some(size) if size > 0 => {
            let done = (consumed as f64 / size as f64).min(1.0);
            let filled = (done * 30.0) as usize;
            eprint!("\r[{}{}] {:5.1}%  {mb:.0} MB", "#".repeat(filled), " ".repeat(30 - filled), done * 100.0);
        }
        _ => eprint!("\r{mb:.0} MB read"),
    }
}

fn job_failed(error: &JobError, file: &SourceFile) -> ExitCode {
    match error {
        JobError::Fault { fault, .. } => {
            let (line, column) = LineIndex::new(&file.text).line_col(fault.span.lo);
            eprintln!("naasc: error: {error}");
            eprintln!("  --> {}:{line}:{column}: the operation that faulted", file.name);
            ExitCode::from(1)
        }
        JobError::Input(message) => usage(message),
        JobError::Row(_) => {
            eprintln!("naasc: error: {error}");
            eprintln!("  help: fix the row, or pass `--skip-invalid` to skip invalid rows and count them");
            ExitCode::from(1)
        }
        _ => {
            eprintln!("naasc: error: {error}");
            ExitCode::from(1)
        }
    }
}

fn write_results(args: &RunArgs, aggregation: &Aggregation, job: &JobOutput) -> Result<(), ExitCode> {
    let mut sink: Box<dyn std::io::Write> = match &args.output {
        Some(path) => match std::fs::File::create(path) {
            Ok(file) => Box::new(std::io::BufWriter::new(file)),
            Err(error) => return Err(usage(format!("cannot create `{}`: {error}", path.display()))),
        },
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let written = match args.format {
        Format::Csv => output::write_csv(&mut sink, aggregation, &args.key, &job.results).map_err(|e| e.to_string()),
        Format::Json => output::write_json(&mut sink, aggregation, &args.key, &job.results),
    };
    match written.and_then(|()| sink.flush().map_err(|e| e.to_string())) {
        Ok(()) => Ok(()),
        Err(error) => {
            eprintln!("naasc: cannot write the results: {error}");
            Err(ExitCode::from(1))
        }
    }
}
