//! `naasc bench`: measurements of the compiler itself, printed as a table. Benchmarks live
//! here rather than in timed tests.

use std::process::ExitCode;
use std::time::Instant;

use std::path::PathBuf;

use clap::Subcommand;
use naas_ir::interp::{Interpreter, Slot};
use naas_ir::laws::random_args;
use naas_lang::check::CheckOptions;
use naas_stdx::Rng;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Front-end throughput (parse + check) on a large generated program, in MB/s.
    Frontend {
        /// Approximate size of the generated program in MB.
        #[arg(long, default_value_t = 8)]
        size_mb: usize,
        /// How many times to check it; the best run is reported.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// JIT fold of examples/reduce.naas against hand-written Rust and the interpreter, a keyed
    /// fold over zipf-distributed keys, and compile latency of every example.
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
    /// The switch-sim network on examples/reduce.naas: simulated packets per second and the
    /// traffic at the reducer against the ideal fan-in bound, as tables shrink.
    Switch {
        /// Records generated (the setting is 10 million).
        #[arg(long, default_value_t = 10_000_000)]
        records: u64,
    },
    /// The runtime: `naasc run` on a large CSV with and without map-side combining, DuckDB on
    /// the same file, and a timely job with the naasc operator against timely's own operators.
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
    /// Reference-interpreter throughput (records/s) of each aggregate's lift and merge.
    Interp {
        /// Records folded per aggregate.
        #[arg(long, default_value_t = 1_000_000)]
        records: usize,
        /// Programs to measure (default: examples/reduce.naas and examples/top_k.naas).
        files: Vec<PathBuf>,
    },
}

pub fn run(command: &BenchCommand) -> ExitCode {
    match command {
        BenchCommand::Frontend { size_mb, runs } => frontend(*size_mb, (*runs).max(1)),
        BenchCommand::Interp { records, files } => interp(*records, files),
        BenchCommand::Jit { records, keys, runs } => crate::bench_jit::run(*records, *keys, (*runs).max(1)),
        BenchCommand::Switch { records } => switch(*records),
        BenchCommand::Runtime { rows, keys, csv, workers, timely_records } => {
            crate::bench_runtime::run(&crate::bench_runtime::RuntimeBench {
                rows: *rows,
                keys: (*keys).max(1),
                csv: csv.clone(),
                workers: workers.unwrap_or(naas_runtime::JobConfig::default().workers).max(1),
                timely_records: *timely_records,
            })
        }
    }
}

/// Folds generated records into one state with the reference interpreter (lift, then merge
/// into the running state, as a combiner does) and reports records per second.
fn interp(records: usize, files: &[PathBuf]) -> ExitCode {
    let files: Vec<PathBuf> = if files.is_empty() {
        vec![PathBuf::from("examples/reduce.naas"), PathBuf::from("examples/top_k.naas")]
    } else {
        files.to_vec()
    };
    println!("interpreter benchmark: {records} records per aggregate, one key");
    for path in &files {
        let compiled = match crate::front_end::report_front_end(path, &CheckOptions::default()) {
            crate::front_end::FrontEnd::Compiled(compiled, _) => compiled,
            crate::front_end::FrontEnd::Failed(code) => return code.into(),
        };
        let module = &compiled.optimized;
        let interp = Interpreter::new(module);
        for plan in &compiled.aggregates {
            let lift = module.function(plan.lift);
            let mut rng = Rng::new(7);
            let inputs: Vec<Vec<Slot>> = (0..records.min(1 << 16)).map(|_| random_args(&mut rng, lift)).collect();
            let start = Instant::now();
            let mut state = plan.identity.clone();
            for i in 0..records {
                let record = inputs[i % inputs.len()].clone();
                let step = interp
                    .call(plan.lift, record)
                    .and_then(|lifted| interp.call(plan.merge, state.iter().cloned().chain(lifted).collect()));
                match step {
                    Ok(next) => state = next,
                    Err(error) => {
                        eprintln!("naasc: `{}` faulted during the benchmark: {error}", plan.name);
                        return ExitCode::from(1);
                    }
                }
            }
            let seconds = start.elapsed().as_secs_f64();
            println!(
                "  {:<24} {:>10.0} records/s  ({:.1} ns/record)  final state {}",
                format!("{} ({})", plan.name, path.display()),
                records as f64 / seconds,
                seconds * 1e9 / records as f64,
                naas_ir::laws::show_state(plan, &state)
            );
        }
    }
    ExitCode::SUCCESS
}

fn frontend(size_mb: usize, runs: usize) -> ExitCode {
    let source = generate_program(size_mb * 1_000_000);
    let options = CheckOptions::default();
    let mut best = f64::INFINITY;
    let mut parse_best = f64::INFINITY;
    for _ in 0..runs {
        let start = Instant::now();
        let parsed = naas_lang::parse(&source);
        parse_best = parse_best.min(start.elapsed().as_secs_f64());
        let start = Instant::now();
        let result = naas_lang::frontend(&source, &options);
        best = best.min(start.elapsed().as_secs_f64());
        if let Err(diagnostics) = parsed.map(|_| ()).and(result.map(|_| ())) {
            eprintln!(
                "naasc: the generated benchmark program has {} error(s); this is a bug in the generator",
                diagnostics.len()
            );
            return ExitCode::from(1);
        }
    }
    let mb = source.len() as f64 / 1e6;
    println!("front-end benchmark: {mb:.1} MB of generated source, {} lines, best of {runs}", source.lines().count());
    println!("  parse only      {:>8.1} ms  {:>8.1} MB/s", parse_best * 1e3, mb / parse_best);
    println!("  parse + check   {:>8.1} ms  {:>8.1} MB/s", best * 1e3, mb / best);
    ExitCode::SUCCESS
}

/// A realistic program of about `bytes` bytes: helpers with loops, branches, arithmetic and
/// records, and aggregates in both forms that call them.
pub fn generate_program(bytes: usize) -> String {
    let mut out = String::from("const N = 16\n\nclass Sample:\n    value: i64\n    weight: u32\n\n");
    let mut i = 0;
    while out.len() < bytes {
        out.push_str(&format!(
            "def helper_{i}(x: i64, s: Sample) -> i64:\n    acc = x\n    for k in range(N):\n        if acc > {i}:\n            acc = acc - k * 3 + s.value\n        elif acc < -{i}:\n            acc = acc + (k << 2)\n        else:\n            acc = acc ^ i64(s.weight)\n    return min(acc, I64_MAX // 2)\n\n\
             aggregate stats_{i}(x: i64, s: Sample) -> tuple[i64, i64, f64, u64]:\n    return min(helper_{i}(x, s)), max(x), avg(x * 2 + {i}), count()\n\n\
             aggregate top_{i}(x: i64) -> array[i64, 4]:\n    identity = [I64_MIN] * 4\n\n    def lift(x: i64) -> array[i64, 4]:\n        out = [I64_MIN] * 4\n        out[0] = x\n        return out\n\n    def merge(a: array[i64, 4], b: array[i64, 4]) -> array[i64, 4]:\n        out = [I64_MIN] * 4\n        i = 0\n        j = 0\n        for n in range(4):\n            if a[i] >= b[j]:\n                out[n] = a[i]\n                i += 1\n            else:\n                out[n] = b[j]\n                j += 1\n        return out\n\n"
        ));
        i += 1;
    }
    out
}

fn switch(records: u64) -> ExitCode {
    use naas_target_switch::bench::{run, BenchConfig};
    let compiled = match crate::front_end::report_front_end(
        std::path::Path::new("examples/reduce.naas"),
        &CheckOptions::default(),
    ) {
        crate::front_end::FrontEnd::Compiled(compiled, _) => compiled,
        crate::front_end::FrontEnd::Failed(code) => return code.into(),
    };
    let profile = naas_target_switch::TargetProfile::default();
    let pipeline = match naas_target_switch::lower(&compiled, 0, &profile, &naas_target_switch::LowerOptions::default())
    {
        Ok(pipeline) => pipeline,
        Err(diagnostics) => {
            eprintln!("naasc: examples/reduce.naas does not lower: {} diagnostic(s)", diagnostics.len());
            return ExitCode::from(1);
        }
    };
    let config = BenchConfig { records, ..BenchConfig::default() };
    match run(&compiled, 0, &pipeline, &config) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("naasc: the switch benchmark failed: {error}");
            ExitCode::from(1)
        }
    }
}
