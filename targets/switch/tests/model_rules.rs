//! The machine model's rules, checked on every program the lowering produces for random
//! aggregates, random profiles and random lowering options (spec.md section 15.1): a program
//! that breaks one (two accesses to one register array in a pass, more atoms in a stage than
//! it has stateful ALUs, registers beyond a stage's SRAM, entry fields beyond a pass's PHV, a
//! flag used before or in another pass than it is produced, an access that needs more
//! relations than a stateful ALU's comparison units evaluate) must be impossible to produce.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::collections::{HashMap, HashSet};

use naas_stdx::Rng;
use naas_target_switch::program::{AtomOp, RegisterRole, COMPARISON_UNITS};
use naas_target_switch::{lower, LowerError, LowerOptions, PipelineProgram, TargetProfile};
use proptest::prelude::*;

/// Built-in aggregate calls with their result types, over the parameters of [`HEADER`].
const CALLS: [(&str, &str); 11] = [
    ("min(x)", "i32"),
    ("max(x)", "i32"),
    ("min(y)", "u8"),
    ("max(y)", "u8"),
    ("sum(z)", "i64"),
    ("sum(x)", "i64"),
    ("max(z)", "i64"),
    ("min(w)", "u64"),
    ("count()", "u64"),
    ("any(f)", "bool"),
    ("all(f)", "bool"),
];

/// A random aggregate: a tuple of built-in calls, or an array merged element-wise.
fn random_program(rng: &mut Rng) -> String {
    if rng.below(6) == 0 {
        let types = common::RUN_TYPES;
        let (primary, secondary) = (types[rng.below(types.len())], types[rng.below(types.len())]);
        return common::latest_source(primary, secondary, rng.below(2) == 0, rng.below(2) == 0);
    }
    if rng.below(4) == 0 {
        let ty = common::RUN_TYPES[rng.below(common::RUN_TYPES.len())];
        return common::sorted_run_source(ty, 1 + rng.below(5) as u32, rng.below(2) == 0, rng.below(2) == 0);
    }
    if rng.below(3) == 0 {
        let n = 1 + rng.below(40);
        let (ty, op) = [("u32", "+"), ("u64", "+"), ("i32", "min"), ("u8", "max")][rng.below(4)];
        let combine = if op == "+" { "out[i] += b[i]".to_string() } else { format!("out[i] = {op}(a[i], b[i])") };
        return format!(
            "aggregate g(x: u32) -> array[{ty}, {n}]:\n    identity = [0] * {n}\n\n    def lift(x: u32) -> array[{ty}, {n}]:\n        h: array[{ty}, {n}] = [0] * {n}\n        return h\n\n    def merge(a: array[{ty}, {n}], b: array[{ty}, {n}]) -> array[{ty}, {n}]:\n        out = a\n        for i in range({n}):\n            {combine}\n        return out\n"
        );
    }
    let count = 1 + rng.below(8);
    let calls: Vec<(&str, &str)> = (0..count).map(|_| CALLS[rng.below(CALLS.len())]).collect();
    let types: Vec<&str> = calls.iter().map(|c| c.1).collect();
    let exprs: Vec<&str> = calls.iter().map(|c| c.0).collect();
    let result = if count == 1 { types[0].to_string() } else { format!("tuple[{}]", types.join(", ")) };
    format!("aggregate g(x: i32, y: u8, z: i64, w: u64, f: bool) -> {result}:\n    return {}\n", exprs.join(", "))
}

fn random_profile(rng: &mut Rng) -> TargetProfile {
    let mut profile = TargetProfile {
        stages: 1 + rng.below(24) as u32,
        stateful_alus_per_stage: 1 + rng.below(6) as u32,
        register_word_bits: [32, 64][rng.below(2)],
        register_sram_bytes_per_stage: 1024 + rng.below(1 << 20) as u64,
        max_packet_fields: 8 + rng.below(400) as u32,
        register_pair: rng.below(2) == 0,
        phv_bits_per_pass: 1024 + rng.below(4096) as u32,
        ..TargetProfile::default()
    };
    profile.key_bits = 32;
    profile.validate().unwrap();
    profile
}

fn random_options(rng: &mut Rng) -> LowerOptions {
    LowerOptions {
        fixed_point_scale: None,
        min_key_slots: (rng.below(4) == 0).then(|| 1 + rng.below(200_000) as u64),
        lanes: (rng.below(3) == 0).then(|| 1 + rng.below(8) as u32),
        max_passes: (rng.below(2) == 0).then(|| 1 + rng.below(4) as u32),
    }
}

/// Every rule of the model, on one lowered program.
fn check_rules(program: &PipelineProgram, options: &LowerOptions) -> Result<(), String> {
    let profile = &program.profile;
    let stages = profile.stages as usize;
    let max_passes = options.max_passes.unwrap_or(1);
    let fail = |what: String| Err(format!("{what}\n{}", program.text()));
    if program.passes < 1 || program.passes > max_passes {
        return fail(format!("{} passes, {max_passes} allowed", program.passes));
    }
    if program.stages.len() > stages * program.passes as usize {
        return fail(format!("{} steps in {} passes of {stages} stages", program.stages.len(), program.passes));
    }
    if program.lanes < 1 || program.lanes > program.packet_lane_bound() || program.entries_per_packet() != program.lanes
    {
        return fail(format!("{} lanes, packet bound {}", program.lanes, program.packet_lane_bound()));
    }
    if options.lanes.is_some_and(|lanes| lanes != program.lanes) {
        return fail(format!("{} lanes, {:?} asked for", program.lanes, options.lanes));
    }
    // Per-step ALUs, and one access per register array per pass (here: exactly one access
    // per lane's register in the whole schedule, which is stronger).
    let mut accessed: HashSet<(u32, usize)> = HashSet::new();
    let mut produced: HashMap<(u32, u32), usize> = HashMap::new();
    let mut claim_step: HashMap<u32, usize> = HashMap::new();
    for (step, stage) in program.stages.iter().enumerate() {
        if stage.atoms.len() > profile.stateful_alus_per_stage as usize {
            return fail(format!("step {step} runs {} atoms", stage.atoms.len()));
        }
        for atom in &stage.atoms {
            // One access evaluates at most the ALU's comparison units' relations: a
            // lexicographic comparison of two words (three relations) is never one atom.
            if atom.comparisons() > COMPARISON_UNITS {
                return fail(format!("{atom:?} needs {} comparison units", atom.comparisons()));
            }
            let mut registers = vec![atom.register];
            if let Some((hi, op)) = atom.hi {
                let latest = matches!(atom.op, AtomOp::Latest { .. }) && op == atom.op;
                if !profile.register_pair || !(latest || (op.pairable() && atom.op.pairable())) {
                    return fail(format!(
                        "a pair {:?} on a profile without pairs or of an operation with a predicate",
                        atom
                    ));
                }
                if atom.flag_in.is_some() || atom.flag_out.is_some() {
                    return fail(format!("a pair with a flag: {atom:?}"));
                }
                registers.push(hi);
            }
            for register in registers {
                if !accessed.insert((atom.lane, register)) {
                    return fail(format!("lane {} accesses r{register} twice", atom.lane));
                }
            }
            if atom.op == AtomOp::KeyClaim {
                claim_step.insert(atom.lane, step);
            } else if claim_step.get(&atom.lane).is_none_or(|claim| *claim >= step) {
                return fail(format!("an atom of lane {} before its key claim", atom.lane));
            }
            if let Some(flag) = atom.flag_in {
                match produced.get(&(atom.lane, flag)) {
                    Some(&at) if at < step && at / stages == step / stages => {}
                    _ => {
                        return fail(format!("flag f{flag} of lane {} is not produced earlier in its pass", atom.lane))
                    }
                }
            }
            if let Some(flag) = atom.flag_out {
                produced.insert((atom.lane, flag), step);
            }
        }
    }
    // An insertion chain: the only atoms besides the key claims, never paired, and each
    // lane's in consecutive steps of one pass, in chain order (element by element, the most
    // significant word first): the value a stage passes on reaches the next in the packet.
    if let Some(chain) = program.insertion {
        for lane in 0..program.lanes {
            let atoms: Vec<(usize, _)> =
                program.lane_atoms(lane).filter(|(_, atom)| atom.op != AtomOp::KeyClaim).collect();
            let order: Vec<usize> = (0..chain.k as usize)
                .flat_map(|e| (0..chain.words as usize).rev().map(move |w| 1 + e * chain.words as usize + w))
                .collect();
            let registers: Vec<usize> = atoms.iter().map(|(_, atom)| atom.register).collect();
            if registers != order {
                return fail(format!("lane {lane}'s chain visits {registers:?}, not {order:?}"));
            }
            for pair in atoms.windows(2) {
                let ((a, _), (b, _)) = (pair[0], pair[1]);
                if b != a + 1 || a / stages != b / stages {
                    return fail(format!("lane {lane}'s chain steps {a} and {b} are not consecutive in one pass"));
                }
            }
            if atoms.iter().any(|(_, atom)| !matches!(atom.op, AtomOp::Insert { .. }) || atom.hi.is_some()) {
                return fail(format!("lane {lane} mixes other atoms or pairs into its insertion chain"));
            }
        }
        if program.max_entry_passes() != program.passes * chain.k {
            return fail(format!("an entry of {} values is charged {} passes", chain.k, program.max_entry_passes()));
        }
    }
    // Every lane updates every register.
    for lane in 0..program.lanes {
        for register in 0..program.registers.len() {
            if !accessed.contains(&(lane, register)) {
                return fail(format!("lane {lane} never updates r{register}"));
            }
        }
    }
    if program.registers[0].role != RegisterRole::Key {
        return fail("register 0 is not the key".to_string());
    }
    // SRAM: every physical stage holds its words (all lanes, all passes) for every slot.
    let (slots, _) = program.key_slots();
    if slots == 0 {
        return fail("no key slot fits".to_string());
    }
    for (stage, words) in program.words_per_stage().into_iter().enumerate() {
        if words * slots * profile.word_bytes() > profile.register_sram_bytes_per_stage {
            return fail(format!("stage {stage}: {words} words x {slots} slots exceed its SRAM"));
        }
    }
    if let Some(min) = options.min_key_slots {
        if slots < min {
            return fail(format!("{slots} slots, {min} required"));
        }
    }
    // PHV: the entry fields each pass brings in.
    for (pass, bits) in program.phv_entry_bits().into_iter().enumerate() {
        if bits > profile.entry_phv_bits() {
            return fail(format!("pass {pass} brings {bits} bits, {} fit", profile.entry_phv_bits()));
        }
    }
    Ok(())
}

proptest! {
    // A case compiles and lowers a random program on a random profile (0.3 to over 1 s in a
    // debug build): 200 cases under CI's 10,000.
    #![proptest_config(naas_test_support::proptest_config(50))]

    /// Random aggregates, profiles and options: every program the lowering produces obeys
    /// every rule, and a rejection is diagnostics (never an internal error or a panic).
    #[test]
    fn every_lowered_program_obeys_the_model(seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let source = random_program(&mut rng);
        let compiled = common::compile_source(&source);
        let profile = random_profile(&mut rng);
        let options = random_options(&mut rng);
        match lower(&compiled, 0, &profile, &options) {
            Ok(program) => {
                if let Err(message) = check_rules(&program, &options) {
                    prop_assert!(false, "{source}\n{profile:?}\n{options:?}\n{message}");
                }
            }
            Err(LowerError::Diagnostics(diagnostics)) => prop_assert!(!diagnostics.is_empty()),
            Err(LowerError::Internal(error)) => prop_assert!(false, "{source}\n{profile:?}\n{options:?}\n{error}"),
        }
    }
}

/// The rules hold for every example and test program on the built-in profiles, with and
/// without recirculation.
#[test]
fn examples_obey_the_model_on_both_profiles() {
    for profile in [TargetProfile::builtin("tofino1").unwrap(), TargetProfile::builtin("tofino2").unwrap()] {
        for name in common::EXAMPLES {
            let compiled = common::compile_source(&common::example_source(name));
            for max_passes in [None, Some(3)] {
                let options = LowerOptions { max_passes, ..LowerOptions::default() };
                if let Ok(program) = lower(&compiled, 0, &profile, &options) {
                    check_rules(&program, &options).unwrap();
                }
            }
        }
    }
}

/// A latest-value pair of any two integer types: where both fields fit a register word and
/// the profile has pairs, one access per lane whose comparison units evaluate two relations
/// of the primary words (the secondary words' order is a sub-ALU's max or min), within the
/// model's rules; otherwise E0601, never another pair form.
#[test]
fn latest_pairs_are_one_access_of_two_relations_or_rejected() {
    let types = common::RUN_TYPES;
    for word_bits in [32, 64] {
        for register_pair in [true, false] {
            let profile = TargetProfile { register_word_bits: word_bits, register_pair, ..TargetProfile::default() };
            for (primary, secondary) in types.iter().flat_map(|p| types.iter().map(move |s| (*p, *s))) {
                for (largest, primary_first) in [(true, true), (false, false), (true, false)] {
                    let source = common::latest_source(primary, secondary, largest, primary_first);
                    let compiled = common::compile_source(&source);
                    let fits = register_pair
                        && [primary, secondary].iter().all(|ty| ty[1..].parse::<u32>().unwrap() <= word_bits);
                    match lower(&compiled, 0, &profile, &LowerOptions::default()) {
                        Ok(program) => {
                            assert!(fits, "{source}\n{}", program.text());
                            check_rules(&program, &LowerOptions::default()).unwrap();
                            for lane in 0..program.lanes {
                                let atoms: Vec<_> = program
                                    .lane_atoms(lane)
                                    .filter(|(_, atom)| atom.op != AtomOp::KeyClaim)
                                    .map(|(_, atom)| *atom)
                                    .collect();
                                assert_eq!(atoms.len(), 1, "{source}\n{}", program.text());
                                assert!(matches!(atoms[0].op, AtomOp::Latest { max, .. } if max == largest));
                                assert!(atoms[0].hi.is_some() && atoms[0].comparisons() == 2);
                            }
                            let text = program.text();
                            let wins = if largest { ">" } else { "<" };
                            let p = if primary_first { 0 } else { 1 };
                            assert!(text.contains(&format!("c0 = e{p} {wins}.")), "{text}");
                        }
                        Err(LowerError::Diagnostics(diagnostics)) => {
                            assert!(!fits, "{source}: {diagnostics:?}");
                            assert!(diagnostics.iter().all(|d| d.code.as_str() == "E0601"), "{diagnostics:?}");
                        }
                        Err(LowerError::Internal(error)) => panic!("{source}: {error}"),
                    }
                }
            }
        }
    }
}
