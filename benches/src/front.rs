//! `naas-bench frontend` (parse and check throughput on a large generated program) and
//! `naas-bench interp` (the reference interpreter's records per second).

use std::path::PathBuf;
use std::time::Instant;

use naas_ir::interp::{Interpreter, Slot};
use naas_ir::laws::random_args;
use naas_lang::check::CheckOptions;
use naas_stdx::Rng;

use crate::error::BenchError;
use crate::paths::{REDUCE, TOP_K};

/// Folds generated records into one state with the reference interpreter (lift, then merge
/// into the running state, as a combiner does) and reports records per second. `files` are
/// read as given (relative to the working directory, as any command-line path); without
/// them the embedded examples are measured.
pub fn interp(records: usize, files: &[PathBuf]) -> Result<(), BenchError> {
    let mut programs: Vec<(String, String)> = Vec::new();
    if files.is_empty() {
        for example in [REDUCE, TOP_K] {
            programs.push((example.label.to_string(), example.source.to_string()));
        }
    }
    for path in files {
        let source = std::fs::read_to_string(path).map_err(|error| BenchError::Io {
            action: "read",
            path: path.clone(),
            error,
        })?;
        programs.push((path.display().to_string(), source));
    }
    println!("interpreter benchmark: {records} records per aggregate, one key");
    for (label, source) in &programs {
        let compiled = crate::compile(label, source, None)?;
        let module = &compiled.optimized;
        let interp = Interpreter::new(module);
        for plan in &compiled.aggregates {
            let lift = module.function(plan.lift);
            let mut rng = Rng::new(7);
            let inputs: Vec<Vec<Slot>> = (0..records.clamp(1, 1 << 16)).map(|_| random_args(&mut rng, lift)).collect();
            let start = Instant::now();
            let mut state = plan.identity.clone();
            for i in 0..records {
                let record = inputs[i % inputs.len()].clone();
                state = interp
                    .call(plan.lift, record)
                    .and_then(|lifted| interp.call(plan.merge, state.iter().cloned().chain(lifted).collect()))
                    .map_err(|error| BenchError::run(format!("`{}`", plan.name), error))?;
            }
            let seconds = start.elapsed().as_secs_f64().max(1e-9);
            println!(
                "  {:<24} {:>10.0} records/s  ({:.1} ns/record)  final state {}",
                format!("{} ({label})", plan.name),
                records as f64 / seconds,
                seconds * 1e9 / records.max(1) as f64,
                naas_ir::laws::show_state(plan, &state)
            );
        }
    }
    Ok(())
}

pub fn frontend(size_mb: usize, runs: usize) -> Result<(), BenchError> {
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
            return Err(BenchError::compile(
                "the generated benchmark program",
                format!("{} error(s); this is a bug in the generator", diagnostics.len()),
            ));
        }
    }
    let mb = source.len() as f64 / 1e6;
    println!("front-end benchmark: {mb:.1} MB of generated source, {} lines, best of {runs}", source.lines().count());
    println!("  parse only      {:>8.1} ms  {:>8.1} MB/s", parse_best * 1e3, mb / parse_best);
    println!("  parse + check   {:>8.1} ms  {:>8.1} MB/s", best * 1e3, mb / best);
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The generated program is valid naas, so the front-end benchmark measures a full check.
    #[test]
    fn the_generated_program_checks() {
        let source = generate_program(20_000);
        assert!(source.len() >= 20_000);
        let result = naas_lang::frontend(&source, &CheckOptions::default());
        assert!(result.is_ok(), "{:?}", result.err());
    }
}
