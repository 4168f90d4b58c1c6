//! The property in-network aggregation rests on: for every example, splitting the input
//! records into random partitions, folding each, and merging the partial states in a random
//! tree gives exactly the result of one sequential fold (the examples keep integer state,
//! so equality is exact).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::sync::OnceLock;

use naas_ir::decompose::AggregatePlan;
use naas_ir::interp::{Interpreter, Slot};
use naas_stdx::Rng;
use naas_test_support::{compile_example, proptest_config, random_records, EXAMPLES};
use proptest::prelude::*;

/// The examples, compiled once for all cases.
fn compiled(name: &str) -> &'static naas_ir::Compiled {
    static COMPILED: OnceLock<Vec<naas_ir::Compiled>> = OnceLock::new();
    let all = COMPILED.get_or_init(|| EXAMPLES.iter().map(|name| compile_example(name)).collect());
    &all[EXAMPLES.iter().position(|n| *n == name).unwrap()]
}

fn fold(interp: &Interpreter<'_>, plan: &AggregatePlan, records: &[Vec<Slot>]) -> Vec<Slot> {
    let mut state = plan.identity.clone();
    for record in records {
        let lifted = interp.call(plan.lift, record.clone()).unwrap();
        state = interp.call(plan.merge, state.into_iter().chain(lifted).collect()).unwrap();
    }
    state
}

/// Checks the aggregate at `index` of the example `name`.
fn check_example(name: &str, index: usize, seed: u64, count: usize, parts: usize) {
    let compiled = compiled(name);
    let interp = Interpreter::new(&compiled.optimized);
    let plan = &compiled.aggregates[index];
    let mut rng = Rng::new(seed);
    let records = random_records(compiled, index, &mut rng, count);
    let sequential = interp.call(plan.finish, fold(&interp, plan, &records)).unwrap();

    // Random partitions (some may be empty, as when a mapper sees no record of a key).
    let mut partitions: Vec<Vec<Vec<Slot>>> = vec![Vec::new(); parts];
    for record in records {
        partitions[rng.below(parts)].push(record);
    }
    let mut states: Vec<Vec<Slot>> = partitions.iter().map(|p| fold(&interp, plan, p)).collect();
    // A random merge tree: repeatedly merge two random partial states, in random order.
    while states.len() > 1 {
        let a = states.swap_remove(rng.below(states.len()));
        let b = states.swap_remove(rng.below(states.len()));
        let (first, second) = if rng.below(2) == 0 { (a, b) } else { (b, a) };
        states.push(interp.call(plan.merge, first.into_iter().chain(second).collect()).unwrap());
    }
    let tree = interp.call(plan.finish, states.pop().unwrap()).unwrap();
    assert!(
        sequential.len() == tree.len() && sequential.iter().zip(&tree).all(|(a, b)| a.same(b)),
        "{name}: sequential {sequential:?} != tree {tree:?}"
    );
}

proptest! {
    #![proptest_config(proptest_config(5))]

    #[test]
    fn merge_order_does_not_change_results(seed in any::<u64>(), count in 0usize..120, parts in 1usize..9) {
        for name in EXAMPLES {
            for index in 0..compiled(name).aggregates.len() {
                check_example(name, index, seed, count, parts);
            }
        }
    }
}
