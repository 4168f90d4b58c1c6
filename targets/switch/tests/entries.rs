//! `simulate_entries`: caller-supplied partial states sent through the network reach the
//! reducer merged exactly as the interpreter merges them centrally, under loss, duplication
//! and reordering, with large and tiny tables; bad inputs are errors, not panics.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::collections::BTreeMap;

use naas_ir::interp::{Interpreter, Slot};
use naas_ir::Compiled;
use naas_stdx::Rng;
use naas_target_switch::network::{simulate_entries, MapperEntries, SimConfig, SimError, SlotIndex, Topology};
use naas_target_switch::{lower, LowerOptions, TargetProfile};

/// Random partial states: each is the merge of one to three lifted random records (what a
/// mapper-side combiner would send), under keys `0..keys`.
fn random_entries(compiled: &Compiled, mappers: usize, per_mapper: usize, keys: u64, seed: u64) -> Vec<MapperEntries> {
    let plan = &compiled.aggregates[0];
    let interp = Interpreter::new(&compiled.optimized);
    let mut rng = Rng::new(seed);
    let lifted = |rng: &mut Rng| {
        let record = naas_test_support::random_records(compiled, 0, rng, 1).remove(0);
        interp.call(plan.lift, record).unwrap()
    };
    (0..mappers)
        .map(|_| {
            (0..per_mapper)
                .map(|_| {
                    let key = rng.next_u64() % keys;
                    let mut state = lifted(&mut rng);
                    for _ in 0..rng.next_u64() % 3 {
                        let more = lifted(&mut rng);
                        state = interp.call(plan.merge, state.into_iter().chain(more).collect()).unwrap();
                    }
                    (key, state)
                })
                .collect()
        })
        .collect()
}

/// The interpreter's centralised merge of every entry, per key.
fn merged_centrally(compiled: &Compiled, mappers: &[MapperEntries]) -> Vec<(u64, Vec<Slot>)> {
    let plan = &compiled.aggregates[0];
    let interp = Interpreter::new(&compiled.optimized);
    let mut merged: BTreeMap<u64, Vec<Slot>> = BTreeMap::new();
    for (key, state) in mappers.iter().flatten() {
        let old = merged.remove(key).unwrap_or_else(|| plan.identity.clone());
        merged.insert(*key, interp.call(plan.merge, old.into_iter().chain(state.clone()).collect()).unwrap());
    }
    merged.into_iter().collect()
}

fn same_states(a: &[(u64, Vec<Slot>)], b: &[(u64, Vec<Slot>)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, sa), (kb, sb))| ka == kb && sa.len() == sb.len() && sa.iter().zip(sb).all(|(x, y)| x.same(y)))
}

#[test]
fn reduced_states_equal_the_central_merge_under_faults() {
    for name in ["reduce", "histogram"] {
        let compiled = common::compile_source(&common::example_source(name));
        let program = lower(&compiled, 0, &TargetProfile::default(), &LowerOptions::default()).unwrap();
        for topology in ["tree:fanout=3,depth=2", "leaf-spine:leaves=3,spines=2,hosts=2"] {
            let topology = Topology::parse(topology).unwrap();
            // Fewer mappers than the topology has: the rest send nothing.
            let given = topology.mappers() - 1;
            let mappers = random_entries(&compiled, given, 70, 30, 5);
            let expected = merged_centrally(&compiled, &mappers);
            let total: u64 = mappers.iter().map(|m| m.len() as u64).sum();
            // The fan-in bound, counted here: in the tree, mappers 9c..9c+9 are under the
            // reducer's child c; in the leaf-spine network every mapper is under `tor`.
            let group = if topology.to_string().starts_with("tree") { 9 } else { mappers.len() };
            let ideal: u64 = mappers
                .chunks(group)
                .map(|under| {
                    under.iter().flatten().map(|(key, _)| *key).collect::<std::collections::BTreeSet<u64>>().len()
                        as u64
                })
                .sum();
            let mut faults = [0u64; 3];
            for (slot_index, slots) in [(SlotIndex::Hash, Some(8)), (SlotIndex::Direct, None), (SlotIndex::Hash, None)]
            {
                let config = SimConfig {
                    topology: topology.clone(),
                    keys: 30,
                    loss: 0.05,
                    dup: 0.05,
                    reorder: 0.2,
                    seed: 13,
                    table_slots: slots,
                    slot_index,
                    window: 8,
                    // Ignored: entries are supplied.
                    records: 1,
                    ..SimConfig::default()
                };
                let outcome = simulate_entries(&compiled, 0, &program, &config, mappers.clone()).unwrap();
                let what = format!("{name} on {topology}, {slot_index} slots {slots:?}");
                assert!(same_states(&outcome.reduced, &expected), "{what}: {:?}", outcome.reduced.first());
                let report = &outcome.report;
                assert!(report.result_matches_reference, "{what}: {}", report.text());
                assert_eq!(report.records_in, total, "{what}");
                assert_eq!(report.entries_from_mappers, total, "{what}");
                assert_eq!(report.ideal_entries_at_reducer, ideal, "{what}");
                faults[0] += report.lost;
                faults[1] += report.duplicated;
                faults[2] += report.reordered;
                if slots == Some(8) {
                    assert!(report.collisions > 0, "{what}: {}", report.text());
                }
            }
            assert!(faults.iter().all(|n| *n > 0), "{name} on {topology}: lost, duplicated, reordered {faults:?}");
        }
    }
}

/// The widest keys a profile allows travel exactly: on the default profile keys are 32-bit
/// identifiers below 2^32 - 1, and packets and tables hold them in 32-bit words.
#[test]
fn the_widest_keys_travel_exactly() {
    let (compiled, program) = common::lowered_example("reduce");
    let max_key = program.profile.max_key();
    assert_eq!(max_key, u64::from(u32::MAX) - 1);
    let mut mappers = random_entries(&compiled, 4, 40, 6, 9);
    for (index, (key, _)) in mappers.iter_mut().flatten().enumerate() {
        // Keys at the top of the range, and small ones that share their low bits.
        *key = if index % 2 == 0 { max_key - *key } else { *key };
    }
    let expected = merged_centrally(&compiled, &mappers);
    for (loss, slots) in [(0.0, None), (0.05, Some(3))] {
        let config = SimConfig {
            topology: Topology::parse("tree:fanout=2,depth=1").unwrap(),
            loss,
            dup: loss,
            table_slots: slots,
            window: 8,
            ..SimConfig::default()
        };
        let outcome = simulate_entries(&compiled, 0, &program, &config, mappers.clone()).unwrap();
        assert!(same_states(&outcome.reduced, &expected), "loss {loss}: {:?}", outcome.reduced.last());
        assert!(outcome.report.result_matches_reference, "{}", outcome.report.text());
    }
}

#[test]
fn no_entries_reduce_to_nothing() {
    let (compiled, program) = common::lowered_example("reduce");
    let outcome = simulate_entries(&compiled, 0, &program, &SimConfig::default(), Vec::new()).unwrap();
    assert!(outcome.reduced.is_empty());
    assert_eq!(outcome.report.records_in, 0);
    assert!(outcome.report.result_matches_reference);
}

#[test]
fn bad_entries_are_errors() {
    let (compiled, program) = common::lowered_example("reduce");
    let config = SimConfig { topology: Topology::parse("tree:fanout=2,depth=1").unwrap(), ..SimConfig::default() };
    assert_eq!(config.topology.mappers(), 4);
    let entries = random_entries(&compiled, 1, 3, 10, 1);
    let state = entries[0][0].1.clone();
    // Every one is a rejected setting (a usage error for the CLI), reported before anything
    // is simulated.
    let rejected = |mappers: Vec<MapperEntries>, config: &SimConfig| -> String {
        match simulate_entries(&compiled, 0, &program, config, mappers) {
            Err(SimError::Invalid(message)) => message,
            other => panic!("expected a rejected setting, got {other:?}"),
        }
    };

    let error = rejected(vec![entries[0].clone(); 5], &config);
    assert!(error.contains("entries for 5 mappers were given, but the topology has only 4 mappers"), "{error}");

    let error = rejected(vec![vec![(1 << 32, state.clone())]], &config);
    assert!(error.contains("mapper 0, entry 0: key 4294967296 does not fit the profile's 32-bit keys"), "{error}");

    let direct = SimConfig { slot_index: SlotIndex::Direct, keys: 10, ..config.clone() };
    let error = rejected(vec![Vec::new(), vec![(3, state.clone()), (10, state.clone())]], &direct);
    assert!(error.contains("mapper 1, entry 1: key 10 is outside the dense key space 0..10"), "{error}");

    let error = rejected(vec![vec![(1, state[1..].to_vec())]], &config);
    assert!(error.contains("the state has"), "{error}");
    let mut wrong = state.clone();
    wrong[0] = Slot::Array(Vec::new());
    let error = rejected(vec![vec![(1, wrong)]], &config);
    assert!(error.contains("mapper 0, entry 0: state field"), "{error}");
}
