//! Merges of sorted runs (spec.md section 15.3, step 2): every integer type, both directions
//! and both written forms lower onto an insertion chain; merges that look alike but are not
//! a merge of sorted runs (or cannot be proved one) keep their diagnostic, with a note that
//! says why.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use naas_lang::diagnostics::{Code, Diagnostic};
use naas_target_switch::program::AtomOp;
use naas_target_switch::{lower, LowerError, LowerOptions, PipelineProgram, TargetProfile};

fn lowered(source: &str) -> Result<PipelineProgram, Vec<Diagnostic>> {
    let compiled = common::compile_source(source);
    let profile = TargetProfile { stages: 64, ..TargetProfile::default() };
    match lower(&compiled, 0, &profile, &LowerOptions::default()) {
        Ok(program) => Ok(program),
        Err(LowerError::Diagnostics(diagnostics)) => Err(diagnostics),
        Err(LowerError::Internal(error)) => panic!("{error}"),
    }
}

/// Every type, direction and form, K = 1 to 4: an insertion chain of K elements in the
/// right direction, signed as the type is.
#[test]
fn every_type_direction_and_form_is_recognised() {
    for ty in common::RUN_TYPES {
        for k in 1..=4 {
            for largest in [true, false] {
                for two_counters in [true, false] {
                    let source = common::sorted_run_source(ty, k, largest, two_counters);
                    let program = lowered(&source).unwrap_or_else(|d| panic!("{source}\n{d:?}"));
                    let chain = program.insertion.expect("an insertion chain");
                    assert_eq!((chain.k, chain.max), (k, largest), "{source}");
                    let top = program.lane_atoms(0).find(|(_, a)| matches!(a.op, AtomOp::Insert { .. })).unwrap().1;
                    assert_eq!(top.op, AtomOp::Insert { max: largest, signed: ty.starts_with('i') }, "{source}");
                }
            }
        }
    }
}

/// K = 6 is proved (287,648 order types); K = 7 has ten times as many and keeps E0602 with
/// the limit in a note.
#[test]
fn the_proof_has_a_limit_on_k() {
    assert!(lowered(&common::sorted_run_source("i16", 6, true, true)).unwrap().insertion.is_some());
    let diagnostics = lowered(&common::sorted_run_source("i16", 7, true, true)).unwrap_err();
    assert_eq!(diagnostics[0].code, Code::E0602);
    assert!(diagnostics[0].notes.iter().any(|n| n.contains("more than the limit of 300000")), "{diagnostics:?}");
}

/// Near misses: each keeps a diagnostic at the construct, with a note naming what differs.
#[test]
fn near_misses_keep_their_diagnostic_with_a_reason() {
    let top = common::sorted_run_source("i64", 3, true, true);
    let cases = [
        // The wrong comparison for runs kept largest first.
        (top.replace("a[i] >= b[j]", "a[i] <= b[j]"), "it is not one: for the sorted runs"),
        // Reads one run twice.
        (top.replace("out[n] = b[j]", "out[n] = a[j]"), "it is not one: for the sorted runs"),
        // Padding that is not the type's minimum.
        (top.replace("identity = [I64_MIN] * 3", "identity = [0] * 3"), "its identity is not 3 copies"),
        // A lift whose value is not first.
        (top.replace("        out[0] = x\n", "        out[1] = x\n"), "`lift` does not return a run"),
    ];
    for (source, why) in cases {
        let diagnostics = lowered(&source).expect_err(&source);
        let first = &diagnostics[0];
        assert_eq!(first.code, Code::E0602, "{source}\n{diagnostics:?}");
        assert!(first.notes.iter().any(|n| n.contains(why)), "{source}\n{:?}", first.notes);
    }
    // Comparing an element with a constant is not the shape at all: E0602 without the note.
    let constant = top.replace("a[i] >= b[j]", "a[i] >= 0");
    let diagnostics = lowered(&constant).unwrap_err();
    assert_eq!(diagnostics[0].code, Code::E0602);
    assert!(!diagnostics[0].notes.iter().any(|n| n.contains("merge of sorted runs")), "{diagnostics:?}");
}

/// Ties taken from either run give the same runs: `>` is recognised as well as `>=`.
#[test]
fn ties_may_go_either_way() {
    let source = common::sorted_run_source("i32", 4, true, true).replace("a[i] >= b[j]", "a[i] > b[j]");
    assert!(lowered(&source).unwrap().insertion.is_some());
}

/// A chain longer than a pass (i64 elements take two stages each) is E0605, naming the
/// passes: an insertion chain runs within one pass.
#[test]
fn a_chain_longer_than_a_pass_is_e0605() {
    let compiled = common::compile_source(&common::sorted_run_source("i64", 6, true, true));
    match lower(&compiled, 0, &TargetProfile::default(), &LowerOptions::default()) {
        Err(LowerError::Diagnostics(diagnostics)) => {
            assert_eq!(diagnostics[0].code, Code::E0605, "{diagnostics:?}")
        }
        other => panic!("{:?}", other.map(|p| p.text())),
    }
}

/// A packet is charged the passes of its longest run: one per value before the padding (one
/// for an entry of padding only, whose key claim still runs), and the lanes insert in
/// parallel; a program without an insertion chain is charged its passes.
#[test]
fn a_packet_takes_a_pass_per_value_of_its_longest_run() {
    use naas_ir::interp::Slot;
    use naas_ir::ir::Scalar;
    use naas_lang::types::IntTy;
    use naas_target_switch::pipeline_sim::PipelineSim;

    let (_, program) = common::lowered_example("top_k");
    let sim = PipelineSim::new(&program);
    let run = |values: &[i128]| {
        let mut state: Vec<Scalar> = values.iter().map(|v| Scalar::Int(IntTy::I64, *v)).collect();
        state.resize(4, Scalar::Int(IntTy::I64, i128::from(i64::MIN)));
        program.encode_state(&[Slot::Array(state)]).unwrap()
    };
    let packet = |runs: &[&[i128]]| -> Vec<u64> {
        runs.iter().enumerate().flat_map(|(key, values)| std::iter::once(key as u64).chain(run(values))).collect()
    };
    let stride = 1 + program.state_words();
    assert_eq!(sim.packet_passes(&packet(&[&[5]]), stride), 1);
    assert_eq!(sim.packet_passes(&packet(&[&[]]), stride), 1);
    assert_eq!(sim.packet_passes(&packet(&[&[9, 3], &[7], &[8, 8, -1]]), stride), 3);
    assert_eq!(sim.packet_passes(&packet(&[&[4, 3, 2, 1]]), stride), 4);
    assert_eq!(program.max_entry_passes(), 4);
    let words = run(&[9, 3]);
    assert_eq!(program.run_values(|i| words[i]), 2);

    let (_, reduce) = common::lowered_example("reduce");
    let data = vec![1u64; 1 + reduce.state_words()];
    assert_eq!(PipelineSim::new(&reduce).packet_passes(&data, data.len()), reduce.passes);
}

/// Other spellings of the same merge are recognised: counters of another integer type, and
/// the comparison written the other way round (b's head first).
#[test]
fn other_spellings_are_recognised() {
    let source = "aggregate top3(x: u16) -> array[u16, 3]:\n    identity = [U16_MIN] * 3\n\n    def lift(x: u16) -> array[u16, 3]:\n        out = [U16_MIN] * 3\n        out[0] = x\n        return out\n\n    def merge(a: array[u16, 3], b: array[u16, 3]) -> array[u16, 3]:\n        out = [U16_MIN] * 3\n        i: u8 = 0\n        j: u8 = 0\n        for n in range(3):\n            if b[j] > a[i]:\n                out[n] = b[j]\n                j += 1\n            else:\n                out[n] = a[i]\n                i += 1\n        return out\n";
    let chain = lowered(source).unwrap().insertion.unwrap();
    assert_eq!((chain.k, chain.words, chain.max), (3, 1, true));
}
