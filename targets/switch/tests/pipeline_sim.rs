//! The pipeline simulator agrees exactly with the IR interpreter's merge: for every example and
//! test program that lowers (merges of sorted runs among them: top-k and bottom-k insertion
//! chains, on reachable states), random states (edge values over-represented) are encoded into a
//! slot and an entry, run through the pipeline, decoded, and compared with `merge(a, b)`.
//! An empty slot merges the entry into the identity, and a different resident key collides.
//! Running a whole packet at once (`execute_packet`) equals running its entries one by one.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::sync::OnceLock;

use naas_ir::interp::{Interpreter, Slot};
use naas_ir::ir::VarTy;
use naas_ir::laws::random_scalar;
use naas_stdx::Rng;
use naas_target_switch::pipeline_sim::{Outcome, PipelineSim, SlotTable};
use naas_target_switch::word::fits_u32;
use naas_target_switch::{lower, LowerOptions, PipelineProgram, TargetProfile};
use proptest::prelude::*;

struct Case {
    compiled: naas_ir::Compiled,
    programs: Vec<PipelineProgram>,
}

/// Every program that lowers, on the default profile and on profiles with 8-, 16- and 64-bit
/// register words (wide values split into many words, narrow ones into one).
fn cases() -> &'static Vec<Case> {
    static CASES: OnceLock<Vec<Case>> = OnceLock::new();
    CASES.get_or_init(|| {
        let mut sources: Vec<String> = common::EXAMPLES.iter().map(|n| common::example_source(n)).collect();
        // The latest-value example: one register pair compared lexicographically.
        sources.push(common::example_source("latest"));
        for name in ["flags", "min_max_wide", "bottom_k"] {
            sources.push(common::program_source(name));
        }
        // Latest-value pairs of other widths, both directions and both field orders (the
        // 64-bit one fits only 64-bit words).
        for (primary, secondary, largest, primary_first) in
            [("u8", "i16", false, false), ("i32", "u32", true, false), ("u64", "i64", true, true)]
        {
            sources.push(common::latest_source(primary, secondary, largest, primary_first));
        }
        // Merges of sorted runs of both directions, both forms and mixed widths (top_k.naas
        // is among the examples).
        for (ty, k, largest, two) in [("u8", 3, true, false), ("i16", 2, false, true), ("u64", 4, false, false)] {
            sources.push(common::sorted_run_source(ty, k, largest, two));
        }
        let profiles: Vec<TargetProfile> = [32, 8, 16, 64]
            .iter()
            .map(|bits| TargetProfile {
                register_word_bits: *bits,
                stages: 64,
                max_packet_fields: 1024,
                key_bits: (*bits).min(32),
                ..TargetProfile::default()
            })
            .collect();
        sources
            .iter()
            .filter_map(|source| {
                let compiled = common::compile_source(source);
                let programs: Vec<PipelineProgram> = profiles
                    .iter()
                    .filter_map(|profile| lower(&compiled, 0, profile, &LowerOptions::default()).ok())
                    .collect();
                (!programs.is_empty()).then_some(Case { compiled, programs })
            })
            .collect()
    })
}

/// A random state the program can reach: any state for field-wise merges; for a merge of
/// sorted runs (an insertion chain), a run of random values sorted in the chain's order and
/// padded with the identity element after a random length (what lifts and merges make; the
/// merge is only proved on such states).
fn random_state(case: &Case, rng: &mut Rng) -> Vec<Slot> {
    let compiled = &case.compiled;
    if let Some(chain) = case.programs.first().and_then(|program| program.insertion) {
        let plan = &compiled.aggregates[0];
        let (VarTy::Array(ty, len), [Slot::Array(padding)]) = (plan.state.fields[0].ty, plan.identity.as_slice())
        else {
            panic!("a sorted run that is not one array")
        };
        let values = rng.below(len as usize + 1);
        let mut run: Vec<naas_ir::ir::Scalar> = (0..values).map(|_| random_scalar(rng, ty)).collect();
        let key = |s: &naas_ir::ir::Scalar| match s {
            naas_ir::ir::Scalar::Int(_, v) => *v,
            _ => 0,
        };
        run.sort_by(|x, y| if chain.max { key(y).cmp(&key(x)) } else { key(x).cmp(&key(y)) });
        run.extend_from_slice(&padding[values..]);
        return vec![Slot::Array(run)];
    }
    compiled.aggregates[0]
        .state
        .fields
        .iter()
        .map(|field| match field.ty {
            VarTy::Scalar(ty) => Slot::Scalar(random_scalar(rng, ty)),
            VarTy::Array(ty, len) => Slot::Array((0..len).map(|_| random_scalar(rng, ty)).collect()),
        })
        .collect()
}

#[test]
fn the_examples_that_fit_are_covered() {
    // reduce, robust_mean, top_k, histogram, latest, flags, min_max_wide, bottom_k, three
    // generated latest-value pairs and three generated merges of sorted runs.
    assert_eq!(cases().len(), 14);
    assert_eq!(cases().iter().filter(|case| case.programs[0].insertion.is_some()).count(), 5);
    for case in cases() {
        // A latest-value pair needs each field in one word: the word sizes (of 8, 16, 32 and
        // 64) that hold its wider field.
        let plan = &case.compiled.aggregates[0];
        let expected = if plan.name == "latest" {
            let widest = plan
                .state
                .fields
                .iter()
                .map(|field| match field.ty {
                    VarTy::Scalar(naas_ir::ir::ScalarTy::Int(int)) => int.bits(),
                    _ => 64,
                })
                .max()
                .unwrap();
            [8, 16, 32, 64].iter().filter(|bits| **bits >= widest).count()
        } else {
            4
        };
        assert_eq!(case.programs.len(), expected, "{}", plan.name);
        if plan.name == "latest" {
            // One access per lane: the pair, evaluated by two comparison units.
            for program in &case.programs {
                let pairs: Vec<_> = program
                    .lane_atoms(0)
                    .filter(|(_, atom)| matches!(atom.op, naas_target_switch::program::AtomOp::Latest { .. }))
                    .collect();
                assert_eq!(pairs.len(), 1, "{}", program.text());
                assert_eq!(pairs[0].1.comparisons(), 2);
            }
        }
    }
}

proptest! {
    #![proptest_config(naas_test_support::proptest_config(1))]

    #[test]
    fn pipeline_agrees_with_interpreter(seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        for case in cases() {
            let plan = &case.compiled.aggregates[0];
            let interp = Interpreter::new(&case.compiled.optimized);
            let a = random_state(case, &mut rng);
            let mut b = random_state(case, &mut rng);
            if plan.name == "latest" {
                // Ties in one field or the other, which decide between the pair's two
                // predicated updates (the secondary words' max only runs on a primary tie).
                let field = rng.below(3);
                if field < 2 {
                    b[field] = a[field].clone();
                }
            }
            let expected = interp.call(plan.merge, a.iter().cloned().chain(b.iter().cloned()).collect()).unwrap();
            for program in &case.programs {
                let sim = PipelineSim::new(program);
                let mut table = SlotTable::new(program, 4);
                let key = rng.next_u64() % 1000;
                let (wa, wb) = (program.encode_state(&a).unwrap(), program.encode_state(&b).unwrap());
                prop_assert!(program.decode_state(&wa).unwrap().iter().zip(&a).all(|(x, y)| x.same(y)));

                // An occupied slot of the same key: the merge.
                table.install(1, key, &wa);
                prop_assert_eq!(sim.execute(&mut table, 1, key, &wb), Outcome::Merged);
                let (resident, words) = table.resident(1).unwrap();
                prop_assert_eq!(resident, key);
                let got = program.decode_state(words).unwrap();
                prop_assert!(
                    got.iter().zip(&expected).all(|(x, y)| x.same(y)),
                    "{} on {}-bit words: merge({:?}, {:?}) = {:?}, pipeline gave {:?}",
                    program.aggregate, program.profile.register_word_bits, a, b, expected, got
                );

                // An empty slot: the entry is merged into the identity.
                prop_assert_eq!(sim.execute(&mut table, 2, key, &wb), Outcome::Merged);
                let into_identity = interp
                    .call(plan.merge, plan.identity.iter().cloned().chain(b.iter().cloned()).collect())
                    .unwrap();
                let got = program.decode_state(table.resident(2).unwrap().1).unwrap();
                prop_assert!(got.iter().zip(&into_identity).all(|(x, y)| x.same(y)));

                // Another key: a collision leaves the slot unchanged.
                let before = words_after(&table, 1);
                prop_assert_eq!(sim.execute(&mut table, 1, key + 1, &wb), Outcome::Collision);
                prop_assert_eq!(words_after(&table, 1), before);
                prop_assert_eq!(table.resident(1).unwrap().0, key);
            }
        }
    }
}

proptest! {
    #![proptest_config(naas_test_support::proptest_config(10))]

    #[test]
    fn a_packet_at_once_equals_entry_by_entry(seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        for case in cases() {
            for program in &case.programs {
                let sim = PipelineSim::new(program);
                let stride = 1 + program.state_words();
                // Few slots and keys, so that entries collide and share slots within a packet;
                // more entries than one batch.
                // Entry `i` goes to lane `i mod lanes`, which has its own `slots` slots of the
                // table (as in the network simulator, whose packets have at most `lanes`).
                let slots = 1 + rng.below(6);
                let lanes = 1 + rng.below(3);
                let (mut batched, mut single) =
                    (SlotTable::new(program, slots * lanes), SlotTable::new(program, slots * lanes));
                // The same packets in 32-bit fields on a table of 32-bit words, where the
                // profile's words fit them.
                let mut narrow =
                    fits_u32(&program.profile).then(|| SlotTable::<u32>::new(program, slots * lanes));
                for _ in 0..3 {
                    let mut data = Vec::new();
                    for _ in 0..rng.below(40) {
                        data.push(rng.below(9) as u64);
                        data.extend(program.encode_state(&random_state(case, &mut rng)).unwrap());
                    }
                    let slot = |index: usize, key: u64| (index % lanes) * slots + (key as usize * 7) % slots;
                    let mut collisions = Vec::new();
                    let merged = sim.execute_packet(&mut batched, &data, stride, slot, &mut collisions);
                    let mut expected = Vec::new();
                    for (index, entry) in data.chunks_exact(stride).enumerate() {
                        if sim.execute(&mut single, slot(index, entry[0]), entry[0], &entry[1..]) == Outcome::Collision {
                            expected.push(index as u32);
                        }
                    }
                    prop_assert_eq!(&collisions, &expected);
                    prop_assert_eq!(merged as usize, data.len() / stride - expected.len());
                    prop_assert_eq!(batched.occupied(), single.occupied());
                    for slot in batched.occupied() {
                        prop_assert_eq!(batched.resident(slot), single.resident(slot));
                    }
                    if let Some(narrow) = &mut narrow {
                        let fields: Vec<u32> = data.iter().map(|word| u32::try_from(*word).unwrap()).collect();
                        let mut narrow_collisions = Vec::new();
                        sim.execute_packet(narrow, &fields, stride, slot, &mut narrow_collisions);
                        prop_assert_eq!(&narrow_collisions, &expected);
                        prop_assert_eq!(narrow.occupied(), single.occupied());
                        for slot in narrow.occupied() {
                            let widened = narrow
                                .resident(slot)
                                .map(|(key, words)| (key, words.iter().map(|w| u64::from(*w)).collect::<Vec<u64>>()));
                            prop_assert_eq!(widened, single.resident(slot).map(|(key, words)| (key, words.to_vec())));
                        }
                    }
                }
            }
        }
    }
}

fn words_after(table: &SlotTable, slot: usize) -> Vec<u64> {
    table.resident(slot).unwrap().1.to_vec()
}
