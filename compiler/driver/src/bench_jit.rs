//! `naasc bench jit`: the native backend measured side by side with hand-written Rust and the
//! reference interpreter, in one run, so the ratios are meaningful on whatever machine runs it.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use naas_ir::interp::{Interpreter, Slot};
use naas_ir::ir::Scalar;
use naas_ir::laws::LawOptions;
use naas_lang::check::CheckOptions;
use naas_lang::types::IntTy;
use naas_stdx::Rng;
use naas_target_native::values::Column;
use naas_target_native::JitAggregate;

const REDUCE: &str = include_str!("../../../examples/reduce.naas");
const EXAMPLES: [(&str, &str); 4] = [
    ("reduce", include_str!("../../../examples/reduce.naas")),
    ("robust_mean", include_str!("../../../examples/robust_mean.naas")),
    ("top_k", include_str!("../../../examples/top_k.naas")),
    ("histogram", include_str!("../../../examples/histogram.naas")),
];

/// The hand-written equivalent of examples/reduce.naas: min, max, sum (in i64) and count.
fn reduce_by_hand(xs: &[i32]) -> (i32, i32, i64, u64) {
    let (mut lo, mut hi, mut sum, mut count) = (i32::MAX, i32::MIN, 0i64, 0u64);
    for &x in xs {
        lo = lo.min(x);
        hi = hi.max(x);
        sum += i64::from(x);
        count += 1;
    }
    (lo, hi, sum, count)
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let value = f();
        best = best.min(start.elapsed().as_secs_f64());
        last = Some(value);
    }
    (best, last.unwrap_or_else(f))
}

fn compile(source: &str) -> Result<(naas_ir::Compiled, JitAggregate), String> {
    let (program, _) =
        naas_lang::frontend(source, &CheckOptions::default()).map_err(|d| format!("{} error(s)", d.len()))?;
    let compiled = naas_ir::compile(&program, LawOptions { cases: 0, ..LawOptions::default() })?;
    let jit = JitAggregate::compile(&compiled.optimized, &compiled.aggregates[0]).map_err(|e| e.to_string())?;
    Ok((compiled, jit))
}

/// A zipf(1.1)-distributed key in `0..keys`, by inverse transform over the CDF.
fn zipf_slots(rng: &mut Rng, keys: usize, n: usize) -> Vec<u32> {
    let weights: Vec<f64> = (1..=keys).map(|k| 1.0 / (k as f64).powf(1.1)).collect();
    let total: f64 = weights.iter().sum();
    let mut cdf = Vec::with_capacity(keys);
    let mut acc = 0.0;
    for w in weights {
        acc += w / total;
        cdf.push(acc);
    }
    (0..n)
        .map(|_| {
            let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            cdf.partition_point(|&c| c < u).min(keys - 1) as u32
        })
        .collect()
}

pub fn run(records: usize, keys: usize, runs: usize) -> ExitCode {
    let (compiled, jit) = match compile(REDUCE) {
        Ok(pair) => pair,
        Err(error) => {
            eprintln!("naasc: cannot compile examples/reduce.naas: {error}");
            return ExitCode::from(1);
        }
    };
    let mut rng = Rng::new(1);
    let column: Vec<i32> = (0..records).map(|_| (rng.next_u64() % 2_000_001) as i32 - 1_000_000).collect();
    println!("JIT benchmark: examples/reduce.naas over {records} i32 records (40 bytes per 10), best of {runs}");

    let (hand, by_hand) = best_of(runs, || reduce_by_hand(black_box(&column)));
    let (native, state) = best_of(runs, || {
        let mut state = jit.new_state();
        let result = jit.fold(&mut state, &[Column::I32(black_box(&column))]);
        (result, state)
    });
    if let Err(error) = &state.0 {
        eprintln!("naasc: the JIT fold failed: {error}");
        return ExitCode::from(1);
    }
    let slots = jit.state_slots(&state.1);
    let expected = [
        Slot::Scalar(Scalar::Int(IntTy::I32, i128::from(by_hand.0))),
        Slot::Scalar(Scalar::Int(IntTy::I32, i128::from(by_hand.1))),
        Slot::Scalar(Scalar::Int(IntTy::I64, i128::from(by_hand.2))),
        Slot::Scalar(Scalar::Int(IntTy::U64, i128::from(by_hand.3))),
    ];
    let agree = slots.iter().zip(&expected).all(|(a, b)| a.same(b));

    // The interpreter on a tenth of the records (it is far slower), as records per second.
    let plan = &compiled.aggregates[0];
    let interp = Interpreter::new(&compiled.optimized);
    let sample = &column[..(records / 10).max(1)];
    let (interp_time, _) = best_of(1, || {
        let mut state = plan.identity.clone();
        for &x in sample {
            let Ok(lifted) = interp.call(plan.lift, vec![Slot::Scalar(Scalar::Int(IntTy::I32, i128::from(x)))]) else {
                break;
            };
            match interp.call(plan.merge, state.iter().cloned().chain(lifted).collect()) {
                Ok(next) => state = next,
                Err(_) => break,
            }
        }
        state
    });
    let rate = |n: usize, t: f64| n as f64 / t;
    let (hand_rate, native_rate, interp_rate) =
        (rate(records, hand), rate(records, native), rate(sample.len(), interp_time));
    println!("  hand-written Rust   {:>8.1} M records/s", hand_rate / 1e6);
    println!(
        "  JIT fold            {:>8.1} M records/s  ({:.2}x hand-written, results {})",
        native_rate / 1e6,
        native_rate / hand_rate,
        if agree { "identical" } else { "DIFFER" }
    );
    println!(
        "  interpreter         {:>8.2} M records/s  (JIT is {:.0}x faster)",
        interp_rate / 1e6,
        native_rate / interp_rate
    );

    // Keyed fold: one state per key in a table, keys zipf-distributed.
    let key_slots = zipf_slots(&mut rng, keys, records);
    let (keyed, _) = best_of(runs, || {
        let mut table = jit.new_table(keys);
        let result = jit.fold_keyed(&mut table, black_box(&key_slots), &[Column::I32(&column)]);
        (result.is_ok(), table)
    });
    println!(
        "  keyed fold          {:>8.1} M records/s  ({keys} zipf(1.1) keys, table of states)",
        rate(records, keyed) / 1e6
    );

    println!("compile latency (source to callable machine code, best of {runs}):");
    for (name, source) in EXAMPLES {
        let (latency, result) = best_of(runs, || compile(source).map(|_| ()));
        if let Err(error) = result {
            eprintln!("naasc: cannot compile {name}: {error}");
            return ExitCode::from(1);
        }
        println!("  {name:<12} {:>6.2} ms", latency * 1e3);
    }
    if agree {
        ExitCode::SUCCESS
    } else {
        eprintln!("naasc: the JIT and the hand-written loop disagree");
        ExitCode::from(1)
    }
}
