//! The property in-network aggregation rests on: for every example, splitting the input
//! records into random partitions, folding each, and merging the partial states in a random
//! tree gives exactly the result of one sequential fold (the examples keep integer state,
//! so equality is exact).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::path::Path;
use std::sync::OnceLock;

use naas_ir::decompose::AggregatePlan;
use naas_ir::interp::{Interpreter, Slot};
use naas_ir::ir::Module;
use naas_ir::laws::{random_args, LawOptions};
use naas_lang::check::CheckOptions;
use naas_stdx::Rng;
use proptest::prelude::*;

const EXAMPLES: [&str; 4] = ["reduce.naas", "robust_mean.naas", "top_k.naas", "histogram.naas"];

/// The examples, compiled once for all cases.
fn compiled(name: &str) -> &'static naas_ir::Compiled {
    static COMPILED: OnceLock<Vec<naas_ir::Compiled>> = OnceLock::new();
    let all = COMPILED.get_or_init(|| {
        EXAMPLES
            .iter()
            .map(|name| {
                let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name);
                let source = std::fs::read_to_string(path).unwrap();
                let (program, _) = naas_lang::frontend(&source, &CheckOptions::default()).unwrap();
                naas_ir::compile(&program, LawOptions::default()).unwrap()
            })
            .collect()
    });
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

fn records(module: &Module, plan: &AggregatePlan, rng: &mut Rng, count: usize) -> Vec<Vec<Slot>> {
    (0..count).map(|_| random_args(rng, module.function(plan.lift))).collect()
}

fn check_example(name: &str, seed: u64, count: usize, parts: usize) {
    let compiled = compiled(name);
    let module = &compiled.optimized;
    let interp = Interpreter::new(module);
    let plan = &compiled.aggregates[0];
    let mut rng = Rng::new(seed);
    let records = records(module, plan, &mut rng, count);
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

fn cases() -> u32 {
    std::env::var("NAAS_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).map_or(256, |n: u32| (n / 5).max(64))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn merge_order_does_not_change_results(seed in any::<u64>(), count in 0usize..120, parts in 1usize..9) {
        for name in EXAMPLES {
            check_example(name, seed, count, parts);
        }
    }
}
