//! The vectorised `fold` (see `naas_target_native::vector`): it is selected exactly for the
//! aggregates it can compute bit for bit, and on those it agrees with the interpreter's fold
//! at every length around the vector block (the scalar loop folds the remainder), from the
//! identity and from a reached state, on edge values and on sums that wrap.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::path::Path;
use std::sync::OnceLock;

use naas_ir::interp::{Interpreter, Slot};
use naas_ir::ir::{Scalar, ScalarTy};
use naas_ir::laws::random_scalar;
use naas_lang::types::IntTy;
use naas_stdx::Rng;
use naas_target_native::values::ColumnBuf;
use naas_target_native::JitAggregate;
use proptest::prelude::*;

/// Aggregates that must take the vector path: the canonical example and the test programs.
const VECTORISED: [&str; 3] =
    ["../../examples/reduce.naas", "tests/programs/vector_mixed.naas", "tests/programs/vector_casts.naas"];

struct Compiled {
    compiled: naas_ir::Compiled,
    jit: JitAggregate,
}

fn compile(source: &str) -> Compiled {
    let compiled = naas_test_support::compile_source(source);
    let jit = JitAggregate::compile(&compiled.optimized, &compiled.aggregates[0]).unwrap();
    Compiled { compiled, jit }
}

fn vectorised(index: usize) -> &'static Compiled {
    static ALL: OnceLock<Vec<Compiled>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        VECTORISED
            .iter()
            .map(|path| compile(&std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()))
            .collect()
    });
    &all[index]
}

/// `n` records: one row of slots each, and the same values as columns.
fn records(c: &Compiled, n: usize, mut value: impl FnMut(ScalarTy) -> Scalar) -> (Vec<Vec<Slot>>, Vec<ColumnBuf>) {
    let mut columns: Vec<ColumnBuf> = c.jit.abi.columns.iter().map(|(_, ty)| ColumnBuf::new(*ty)).collect();
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        let row: Vec<Slot> = c.jit.abi.columns.iter().map(|(_, ty)| Slot::Scalar(value(*ty))).collect();
        for (column, slot) in columns.iter_mut().zip(&row) {
            if let Slot::Scalar(v) = slot {
                column.push(*v);
            }
        }
        rows.push(row);
    }
    (rows, columns)
}

fn interp_fold(c: &Compiled, mut state: Vec<Slot>, rows: &[Vec<Slot>]) -> Vec<Slot> {
    let plan = &c.compiled.aggregates[0];
    let interp = Interpreter::new(&c.compiled.optimized);
    for row in rows {
        let lifted = interp.call(plan.lift, row.clone()).unwrap();
        state = interp.call(plan.merge, state.into_iter().chain(lifted).collect()).unwrap();
    }
    state
}

fn same(a: &[Slot], b: &[Slot]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y))
}

/// Folds `first` into a fresh state, then `second` into the state reached, and compares
/// both states with the interpreter's.
fn check(c: &Compiled, first: usize, second: usize, value: &mut impl FnMut(ScalarTy) -> Scalar) {
    let plan = &c.compiled.aggregates[0];
    let (rows_a, columns_a) = records(c, first, &mut *value);
    let (rows_b, columns_b) = records(c, second, &mut *value);
    let mut state = c.jit.new_state();
    c.jit.fold(&mut state, &columns_a.iter().map(ColumnBuf::column).collect::<Vec<_>>()).unwrap();
    let expected = interp_fold(c, plan.identity.clone(), &rows_a);
    assert!(same(&c.jit.state_slots(&state), &expected), "{}: fold of {first} records differs", plan.name);
    c.jit.fold(&mut state, &columns_b.iter().map(ColumnBuf::column).collect::<Vec<_>>()).unwrap();
    let expected = interp_fold(c, expected, &rows_b);
    assert!(
        same(&c.jit.state_slots(&state), &expected),
        "{}: fold of {second} more records differs: {:?} vs {expected:?}",
        plan.name,
        c.jit.state_slots(&state)
    );
}

proptest! {
    // About 256 cases under CI's `PROPTEST_CASES=10000`.
    #![proptest_config(naas_test_support::proptest_config(40))]

    /// Lengths 0..=67 cover empty folds, folds shorter than one block and every remainder
    /// of the largest block (32 records); `random_scalar` favours 0, ±1, MIN and MAX.
    #[test]
    fn vector_fold_agrees_with_the_interpreter(seed in any::<u64>(), first in 0usize..=67, second in 0usize..=67) {
        let mut rng = Rng::new(seed);
        for index in 0..VECTORISED.len() {
            check(vectorised(index), first, second, &mut |ty| random_scalar(&mut rng, ty));
        }
    }
}

/// Every record at its type's minimum or maximum: min and max see the extremes in every
/// lane, and the sums of 64-bit columns wrap around (many times).
#[test]
fn extremes_and_wrapping_sums() {
    for index in 0..VECTORISED.len() {
        let c = vectorised(index);
        for n in [1, 7, 8, 31, 32, 33, 67, 1000] {
            for pick in 0..3 {
                let mut k = 0u64;
                let mut value = |ty: ScalarTy| {
                    k += 1;
                    match ty {
                        ScalarTy::Bool => Scalar::Bool(pick == 1),
                        ScalarTy::Int(int) => {
                            let v = match pick {
                                0 => int.max_value(),
                                1 => int.min_value(),
                                _ if k % 2 == 0 => int.max_value(),
                                _ => int.min_value(),
                            };
                            Scalar::Int(int, v)
                        }
                        ScalarTy::Float(_) => unreachable!("no float columns here"),
                    }
                };
                check(c, n, n, &mut value);
            }
        }
    }
    // The i64 sum of `mixed` wraps: 1000 x I64_MAX is not representable.
    let c = vectorised(1);
    let (_, columns) = records(c, 1000, |ty| match ty {
        ScalarTy::Int(int) => Scalar::Int(int, int.max_value()),
        _ => Scalar::Bool(true),
    });
    let mut state = c.jit.new_state();
    c.jit.fold(&mut state, &columns.iter().map(ColumnBuf::column).collect::<Vec<_>>()).unwrap();
    let wrapped = naas_lang::ops::wrap(IntTy::I64, 1000 * i128::from(i64::MAX));
    assert!(c.jit.state_slots(&state)[4].same(&Slot::Scalar(Scalar::Int(IntTy::I64, wrapped))));
}

#[test]
fn the_vector_path_is_selected_for_integer_folds() {
    for (index, path) in VECTORISED.iter().enumerate() {
        let jit = &vectorised(index).jit;
        assert!(jit.vectorised, "{path}: the fold should run on vectors");
        let fold = jit.clif.iter().find(|f| f.contains("_fold\n")).unwrap();
        assert!(fold.contains("x4") || fold.contains("x2") || fold.contains("x8") || fold.contains("x16"), "{fold}");
    }
    let reduce = vectorised(0).jit.clif.iter().find(|f| f.starts_with("; delay_stats_fold\n")).unwrap();
    for instruction in ["load.i32x4", "smin.i32x4", "smax.i32x4", "swiden_low", "iadd.i64x2"] {
        assert!(reduce.contains(instruction), "reduce's fold lacks `{instruction}`:\n{reduce}");
    }
}

/// Folds that vectors would change (float sums), that lift through arithmetic or control
/// flow, that may fault, or whose merge is not field-wise keep the scalar loop.
#[test]
fn the_vector_path_is_not_selected_otherwise() {
    let scalar = [
        ("float sum", "aggregate s(x: f64) -> f64:\n    return sum(x)\n"),
        ("float avg", "aggregate s(x: f32) -> f64:\n    return avg(x)\n"),
        ("float min", "aggregate s(x: f64) -> f64:\n    return min(x)\n"),
        ("arithmetic lift", "aggregate s(x: i32) -> i64:\n    return sum(x * 2)\n"),
        ("faulting lift", "aggregate s(x: i32) -> i32:\n    return max(100 // x)\n"),
        ("narrowing lift", "aggregate s(x: i64) -> i32:\n    return max(i32(x))\n"),
        ("comparison lift", "aggregate s(x: i32) -> bool:\n    return any(x > 0)\n"),
    ];
    for (what, source) in scalar {
        let c = compile(source);
        assert!(!c.jit.vectorised, "{what}: the fold must stay scalar");
        let fold = c.jit.clif.iter().find(|f| f.starts_with("; s_fold\n")).unwrap();
        assert!(!fold.contains("x2") && !fold.contains("x4"), "{what}: vector code in\n{fold}");
        // The scalar path still agrees with the interpreter.
        let mut rng = Rng::new(7);
        for n in [0, 5, 67] {
            let plan = &c.compiled.aggregates[0];
            let (rows, columns) = records(&c, n, |ty| match ty {
                ScalarTy::Int(int) => Scalar::Int(int, (rng.below(2001) as i128) - 1000),
                _ => random_scalar(&mut rng, ty),
            });
            let mut state = c.jit.new_state();
            let result = c.jit.fold(&mut state, &columns.iter().map(ColumnBuf::column).collect::<Vec<_>>());
            let interp = Interpreter::new(&c.compiled.optimized);
            let mut expected = Ok(plan.identity.clone());
            for row in &rows {
                expected = expected.and_then(|state: Vec<Slot>| {
                    let lifted = interp.call(plan.lift, row.clone())?;
                    interp.call(plan.merge, state.into_iter().chain(lifted).collect())
                });
            }
            match (result, expected) {
                (Ok(()), Ok(expected)) => assert!(same(&c.jit.state_slots(&state), &expected), "{what}"),
                (Err(_), Err(_)) => {}
                (got, expected) => panic!("{what}: JIT {got:?}, interpreter {expected:?}"),
            }
        }
    }
    // Custom merges that are not field-wise (top_k) stay scalar too.
    let top_k = naas_test_support::example_source("top_k");
    assert!(!compile(&top_k).jit.vectorised);
}
