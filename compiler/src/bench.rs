//! `naasc bench`: measurements of the compiler itself, printed as a table. Benchmarks live
//! here rather than in timed tests.

use std::process::ExitCode;
use std::time::Instant;

use clap::Subcommand;
use naas_lang::check::CheckOptions;

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
}

pub fn run(command: &BenchCommand) -> ExitCode {
    match command {
        BenchCommand::Frontend { size_mb, runs } => frontend(*size_mb, (*runs).max(1)),
    }
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
