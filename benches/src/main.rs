//! `naas-bench`: the benchmarks of naasc, one subcommand each, outside the product (the `naasc`
//! binary and the libraries hold no benchmark code). Each prints a table; BENCHMARKS.md gives
//! the command of each, what it measures, and the numbers measured so far. Run them from a
//! release build (`cargo run --release -p naas-bench -- <benchmark>`): a debug build measures
//! the debug build.

mod error;
mod front;
mod jit;
mod paths;
mod runtime;
mod switch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use naas_ir::laws::LawOptions;
use naas_ir::Compiled;
use naas_lang::check::CheckOptions;
use naas_lang::diagnostics::render::render_text;

use crate::error::BenchError;

#[derive(Parser, Debug)]
#[command(name = "naas-bench", about = "Benchmarks of the naas compiler, simulators and runtime")]
struct Cli {
    #[command(subcommand)]
    benchmark: Benchmark,
}

#[derive(Subcommand, Debug)]
enum Benchmark {
    /// Front-end throughput (parse + check) on a large generated program, in MB/s.
    #[command(alias = "front")]
    Frontend {
        /// Approximate size of the generated program in MB.
        #[arg(long, default_value_t = 8)]
        size_mb: usize,
        /// How many times to check it; the best run is reported.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Reference-interpreter throughput (records/s) of each aggregate's lift and merge.
    Interp {
        /// Records folded per aggregate.
        #[arg(long, default_value_t = 1_000_000)]
        records: usize,
        /// Programs to measure (default: examples/reduce.naas and examples/top_k.naas).
        files: Vec<PathBuf>,
    },
    /// The JIT fold of examples/reduce.naas against hand-written Rust and the interpreter, a
    /// keyed fold over zipf-distributed keys, and the compile latency of every example.
    Jit {
        /// Records in the column folded.
        #[arg(long, default_value_t = 10_000_000)]
        records: usize,
        /// Distinct keys for the keyed fold.
        #[arg(long, default_value_t = 1_000)]
        keys: usize,
        /// Repetitions; the best run is reported.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// The switch-sim target on examples/reduce.naas: the pipeline simulator's entry rate, the
    /// network simulator's packet rate, and the traffic at the reducer against the ideal
    /// fan-in bound as tables shrink.
    Switch {
        /// Records generated (the reference setting is 10 million).
        #[arg(long, default_value_t = 10_000_000)]
        records: u64,
    },
    /// The runtime: `naasc run`'s executor on a large CSV with and without map-side combining,
    /// DuckDB on the same file (when its Python package is installed), and a timely job with
    /// the naasc operator against timely's own operators.
    Runtime {
        /// Rows of the generated CSV (flight, delay).
        #[arg(long, default_value_t = 5_000_000)]
        rows: u64,
        /// Distinct zipf(1.1) keys.
        #[arg(long, default_value_t = 1_000)]
        keys: u32,
        /// Use this CSV (columns `flight`, `delay`) instead of generating one.
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
        /// Workers (default: one per core).
        #[arg(long)]
        workers: Option<usize>,
        /// Records of the timely job.
        #[arg(long, default_value_t = 10_000_000)]
        timely_records: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.benchmark {
        Benchmark::Frontend { size_mb, runs } => front::frontend(size_mb, runs.max(1)),
        Benchmark::Interp { records, files } => front::interp(records, &files),
        Benchmark::Jit { records, keys, runs } => jit::run(records.max(1), keys.max(1), runs.max(1)),
        Benchmark::Switch { records } => switch::run_reduce(records),
        Benchmark::Runtime { rows, keys, csv, workers, timely_records } => runtime::run(&runtime::RuntimeBench {
            rows,
            keys: keys.max(1),
            csv,
            workers: workers.unwrap_or(naas_runtime::JobConfig::default().workers).max(1),
            timely_records,
        }),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("naas-bench: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// Runs the front end and the middle end on `source` (named `label` in messages), with the
/// law checks (`law_cases` random cases; 0 for benchmarks that time compilation).
fn compile(label: &str, source: &str, law_cases: Option<usize>) -> Result<Compiled, BenchError> {
    let rendered = |diagnostics: &[naas_lang::diagnostics::Diagnostic]| -> String {
        diagnostics.iter().map(|d| render_text(d, label, source, false)).collect()
    };
    let (program, _warnings) = naas_lang::frontend(source, &CheckOptions::default())
        .map_err(|diagnostics| BenchError::compile(label, format!("\n{}", rendered(&diagnostics))))?;
    let mut options = LawOptions::default();
    if let Some(cases) = law_cases {
        options.cases = cases;
    }
    let compiled = naas_ir::compile(&program, options).map_err(|error| BenchError::compile(label, error))?;
    let errors: Vec<_> = compiled.diagnostics.iter().filter(|d| d.is_error()).cloned().collect();
    if !errors.is_empty() {
        return Err(BenchError::compile(label, format!("\n{}", rendered(&errors))));
    }
    Ok(compiled)
}
