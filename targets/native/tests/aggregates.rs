//! Differential tests of the batch entry points: for every example, the JIT's `fold`,
//! `fold_keyed`, `merge` and `finish` agree exactly with the reference interpreter on
//! generated records (edge values included).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::sync::OnceLock;

use naas_ir::interp::{Interpreter, Slot};
use naas_stdx::Rng;
use naas_target_native::values::ColumnBuf;
use naas_target_native::JitAggregate;
use naas_test_support::{compile_example, random_records, EXAMPLES};
use proptest::prelude::*;

struct Example {
    compiled: naas_ir::Compiled,
    jit: JitAggregate,
}

fn example(name: &str) -> &'static Example {
    static ALL: OnceLock<Vec<Example>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        EXAMPLES
            .iter()
            .map(|name| {
                let compiled = compile_example(name);
                let jit = JitAggregate::compile(&compiled.optimized, &compiled.aggregates[0]).unwrap();
                Example { compiled, jit }
            })
            .collect()
    });
    &all[EXAMPLES.iter().position(|n| *n == name).unwrap()]
}

fn same(a: &[Slot], b: &[Slot]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y))
}

/// Records as interpreter slots and as native columns.
fn records(example: &Example, rng: &mut Rng, n: usize) -> (Vec<Vec<Slot>>, Vec<ColumnBuf>) {
    let mut columns: Vec<ColumnBuf> = example.jit.abi.columns.iter().map(|(_, ty)| ColumnBuf::new(*ty)).collect();
    let rows = random_records(&example.compiled, 0, rng, n);
    for row in &rows {
        for (column, slot) in columns.iter_mut().zip(row) {
            match slot {
                Slot::Scalar(value) => column.push(*value),
                Slot::Array(_) => unreachable!("examples take scalar inputs"),
            }
        }
    }
    (rows, columns)
}

fn interp_fold(example: &Example, rows: &[Vec<Slot>]) -> Vec<Slot> {
    let plan = &example.compiled.aggregates[0];
    let interp = Interpreter::new(&example.compiled.optimized);
    let mut state = plan.identity.clone();
    for row in rows {
        let lifted = interp.call(plan.lift, row.clone()).unwrap();
        state = interp.call(plan.merge, state.into_iter().chain(lifted).collect()).unwrap();
    }
    state
}

fn check(name: &str, seed: u64, n: usize, keys: u32) {
    let example = example(name);
    let plan = &example.compiled.aggregates[0];
    let interp = Interpreter::new(&example.compiled.optimized);
    let mut rng = Rng::new(seed);
    let (rows, columns) = records(example, &mut rng, n);
    let views: Vec<_> = columns.iter().map(ColumnBuf::column).collect();

    // fold
    let mut state = example.jit.new_state();
    assert!(same(&example.jit.state_slots(&state), &plan.identity), "{name}: init is not the identity");
    example.jit.fold(&mut state, &views).unwrap();
    let expected = interp_fold(example, &rows);
    assert!(same(&example.jit.state_slots(&state), &expected), "{name}: fold differs");

    // finish
    let result = example.jit.finish(&state).unwrap();
    let reference = interp.call(plan.finish, expected.clone()).unwrap();
    assert!(same(&result, &reference), "{name}: finish differs: {result:?} vs {reference:?}");

    // fold_keyed, then merge all keys into one
    let slots: Vec<u32> = (0..n).map(|_| rng.below(keys as usize) as u32).collect();
    let mut table = example.jit.new_table(keys as usize);
    example.jit.fold_keyed(&mut table, &slots, &views).unwrap();
    let size = example.jit.abi.state.size as usize;
    for key in 0..keys as usize {
        let mine: Vec<Vec<Slot>> =
            rows.iter().zip(&slots).filter(|(_, s)| **s as usize == key).map(|(r, _)| r.clone()).collect();
        let bytes = &table.as_bytes()[key * size..(key + 1) * size];
        let mut state = example.jit.new_state();
        state.as_mut_bytes().copy_from_slice(bytes);
        assert!(same(&example.jit.state_slots(&state), &interp_fold(example, &mine)), "{name}: key {key} differs");
    }

    // merge of two reachable states
    let (left, right) = rows.split_at(n / 2);
    let (a, b) = (interp_fold(example, left), interp_fold(example, right));
    let mut dst = example.jit.state_from_slots(&a);
    example.jit.merge(&mut dst, &example.jit.state_from_slots(&b)).unwrap();
    let merged = interp.call(plan.merge, a.into_iter().chain(b).collect()).unwrap();
    assert!(same(&example.jit.state_slots(&dst), &merged), "{name}: merge differs");
}

proptest! {
    // About 64 cases under CI's `PROPTEST_CASES=10000`: every case folds whole batches.
    #![proptest_config(naas_test_support::proptest_config(156))]

    #[test]
    fn jit_agrees_with_the_interpreter(seed in any::<u64>(), n in 0usize..300, keys in 1u32..16) {
        for name in EXAMPLES {
            check(name, seed, n, keys);
        }
    }
}

#[test]
fn bad_buffers_are_rejected_not_used() {
    let example = example("reduce");
    let mut state = example.jit.new_state();
    let short = ColumnBuf::I64(vec![1, 2]);
    let error = example.jit.fold(&mut state, &[short.column()]).unwrap_err();
    assert!(error.to_string().contains("must hold i32"), "{error}");
    let mut table = example.jit.new_table(2);
    let column = ColumnBuf::I32(vec![1, 2]);
    let error = example.jit.fold_keyed(&mut table, &[0, 7], &[column.column()]).unwrap_err();
    assert!(error.to_string().contains("slot 7 is outside a table of 2 states"), "{error}");
    let error = example.jit.fold(&mut state, &[]).unwrap_err();
    assert!(error.to_string().contains("reads 1 column"), "{error}");
}
