//! Anchors to SwitchML (Sapio et al., NSDI 2021; microsoft/SwitchML): a `sum` over
//! `array[i32, 64]` (64 32-bit elements per 256-byte payload) fits one pass of `tofino1` at
//! line rate, and `array[i32, 256]` does not fit one pass but runs with recirculation. Both
//! simulate exactly, with dense key slots (`--slot-index direct`, as SwitchML's workers
//! address slots) under loss, duplication and reordering.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use naas_lang::diagnostics::Code;
use naas_target_switch::network::{simulate, Dist, SimConfig, SlotIndex, Topology};
use naas_target_switch::{lower, LowerError, LowerOptions, PipelineProgram, TargetProfile};

/// SwitchML's aggregation: element-wise integer sums of a vector of `n` i32.
fn switchml_source(n: usize) -> String {
    format!(
        "aggregate switchml(x: i32) -> array[i32, {n}]:\n    identity = [0] * {n}\n\n    def lift(x: i32) -> array[i32, {n}]:\n        h: array[i32, {n}] = [0] * {n}\n        h[0] = x\n        h[{n} - 1] = x\n        return h\n\n    def merge(a: array[i32, {n}], b: array[i32, {n}]) -> array[i32, {n}]:\n        out = a\n        for i in range({n}):\n            out[i] += b[i]\n        return out\n"
    )
}

fn simulate_exactly(source: &str, program: &PipelineProgram) {
    let compiled = common::compile_source(source);
    let config = SimConfig {
        topology: Topology::parse("tree:fanout=4,depth=1").unwrap(),
        records: 400,
        keys: 16,
        dist: Dist::Uniform,
        seed: 5,
        loss: 0.01,
        dup: 0.001,
        reorder: 0.05,
        slot_index: SlotIndex::Direct,
        ..SimConfig::default()
    };
    let report = simulate(&compiled, 0, program, &config).unwrap();
    assert!(report.result_matches_reference, "{}", report.text());
    assert_eq!(report.collisions, 0, "{}", report.text());
    assert_eq!(report.passes, program.passes);
    assert_eq!(report.line_rate_fraction, 1.0 / f64::from(program.passes));
}

#[test]
fn switchml_64_int32_elements_fit_one_pass_on_tofino1() {
    let source = switchml_source(64);
    let compiled = common::compile_source(&source);
    let program = lower(&compiled, 0, &TargetProfile::default(), &LowerOptions::default()).unwrap();
    let report = program.resource_report();
    assert_eq!(program.passes, 1, "{}", program.text());
    assert_eq!(report.line_rate_fraction, 1.0);
    // One entry of 64 elements per packet, its 64 words in 32 register pairs: 33 of the 48
    // stateful ALUs with the key claim.
    assert_eq!(program.entries_per_packet(), 1);
    assert_eq!(report.register_pairs, 32);
    assert_eq!(report.stateful_alus_per_stage.iter().sum::<u32>(), 33);
    // 2,080 bits (the key and 64 32-bit elements) of the 3,632 a pass has for entries.
    assert_eq!(report.phv_entry_bits_per_pass, 2080);
    simulate_exactly(&source, &program);
}

#[test]
fn switchml_256_elements_need_recirculation() {
    let source = switchml_source(256);
    let compiled = common::compile_source(&source);
    let profile = TargetProfile::default();
    match lower(&compiled, 0, &profile, &LowerOptions::default()) {
        Err(LowerError::Diagnostics(diagnostics)) => {
            assert!(diagnostics.iter().any(|d| d.code == Code::E0605), "{diagnostics:?}");
        }
        other => panic!("256 elements fit one pass: {:?}", other.map(|p| p.text())),
    }
    let options = LowerOptions { max_passes: Some(4), ..LowerOptions::default() };
    let program = lower(&compiled, 0, &profile, &options).unwrap();
    // 128 register pairs and the key claim need 129 ALUs (three passes of 48), and 8,224 bits
    // of entry fields need three passes of 3,632.
    assert_eq!(program.passes, 3, "{}", program.text());
    let report = program.resource_report();
    assert!((report.line_rate_fraction - 1.0 / 3.0).abs() < 1e-12);
    assert!(report.phv_entry_bits_per_pass <= 3632);
    assert_eq!(program.entries_per_packet(), 1);
    // Two passes are not enough.
    let two = LowerOptions { max_passes: Some(2), ..LowerOptions::default() };
    assert!(lower(&compiled, 0, &profile, &two).is_err());
    simulate_exactly(&source, &program);
}
