//! The network simulation's final result equals the centralised reference for every example
//! that lowers and the test programs, on every topology below, with and without loss,
//! duplication and reordering, with large tables and with tiny ones (many collisions).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use naas_ir::interp::Slot;
use naas_ir::ir::Scalar;
use naas_target_switch::network::{plot_svg, simulate, simulate_entries, Dist, SimConfig, Topology, TopologyError};
use naas_target_switch::{lower, LowerOptions, TargetProfile};

const TOPOLOGIES: [&str; 3] =
    ["tree:fanout=3,depth=2", "tree:fanout=4,depth=0", "leaf-spine:leaves=3,spines=2,hosts=2"];

fn sources() -> Vec<(String, String)> {
    let mut sources: Vec<(String, String)> =
        ["reduce", "robust_mean", "histogram"].iter().map(|n| (n.to_string(), common::example_source(n))).collect();
    for name in ["flags", "min_max_wide"] {
        sources.push((name.to_string(), common::program_source(name)));
    }
    sources
}

#[test]
fn results_match_the_reference() {
    for (name, source) in sources() {
        let compiled = common::compile_source(&source);
        let program = lower(&compiled, 0, &TargetProfile::default(), &LowerOptions::default()).unwrap();
        for topology in TOPOLOGIES {
            for (faults, (loss, dup, reorder)) in [(false, (0.0, 0.0, 0.0)), (true, (0.05, 0.05, 0.2))] {
                for slots in [Some(8), None] {
                    let config = SimConfig {
                        topology: Topology::parse(topology).unwrap(),
                        records: 600,
                        keys: 40,
                        dist: if faults { Dist::Zipf(1.1) } else { Dist::Uniform },
                        seed: 11,
                        loss,
                        dup,
                        reorder,
                        table_slots: slots,
                        window: 8,
                        ..SimConfig::default()
                    };
                    let report = simulate(&compiled, 0, &program, &config).unwrap();
                    let what = format!("{name} on {topology}, faults {faults}, slots {slots:?}");
                    assert!(report.result_matches_reference, "{what}: {}", report.text());
                    assert_eq!(report.records_in, 600, "{what}");
                    assert_eq!(report.entries_from_mappers, 600, "{what}");
                    if faults {
                        assert!(report.lost > 0 && report.retransmissions > 0, "{what}: {}", report.text());
                        assert!(report.duplicated > 0 && report.reordered > 0, "{what}");
                    } else {
                        assert_eq!(report.retransmissions + report.duplicates_dropped, 0, "{what}");
                    }
                    if slots.is_none() && !topology.contains("depth=0") && !faults {
                        // Large tables: the fan-in bound is reached exactly.
                        assert_eq!(report.entries_at_reducer, report.ideal_entries_at_reducer, "{what}");
                    }
                }
            }
        }
    }
}

/// Packets carry 32-bit fields on profiles of at most 32-bit words and 64-bit fields on wider
/// ones: both give the reference's result, with and without faults.
#[test]
fn results_match_the_reference_with_narrow_and_wide_fields() {
    let mut simulated = std::collections::BTreeMap::new();
    for (name, source) in sources() {
        let compiled = common::compile_source(&source);
        for bits in [16, 64] {
            let profile = TargetProfile {
                register_word_bits: bits,
                key_bits: bits.min(32),
                stages: 64,
                max_packet_fields: 1024,
                ..TargetProfile::default()
            };
            let Ok(program) = lower(&compiled, 0, &profile, &LowerOptions::default()) else { continue };
            for (loss, dup, reorder) in [(0.0, 0.0, 0.0), (0.05, 0.05, 0.2)] {
                let config = SimConfig {
                    topology: Topology::parse("tree:fanout=3,depth=2").unwrap(),
                    records: 500,
                    keys: 30,
                    seed: 5,
                    loss,
                    dup,
                    reorder,
                    table_slots: Some(12),
                    window: 8,
                    ..SimConfig::default()
                };
                let report = simulate(&compiled, 0, &program, &config).unwrap();
                assert!(report.result_matches_reference, "{name}, {bits}-bit words, loss {loss}: {}", report.text());
                assert!(report.collisions > 0, "{name}, {bits}-bit words: tables this small collide");
                *simulated.entry(bits).or_insert(0) += 1;
            }
        }
    }
    // Every source lowers on both profiles (reduce, robust_mean, histogram, flags, min_max_wide).
    assert_eq!(simulated, [(16, 10), (64, 10)].into_iter().collect());
}

#[test]
fn contribution_tracking_only_for_non_idempotent_state() {
    for (name, tracked) in [("reduce", true), ("min_max_wide", false)] {
        let source = sources().into_iter().find(|(n, _)| n == name).unwrap().1;
        let compiled = common::compile_source(&source);
        let program = lower(&compiled, 0, &TargetProfile::default(), &LowerOptions::default()).unwrap();
        let config = SimConfig { dup: 0.3, loss: 0.1, records: 500, ..SimConfig::default() };
        let report = simulate(&compiled, 0, &program, &config).unwrap();
        assert_eq!(report.contribution_tracking, tracked, "{name}");
        assert!(report.result_matches_reference, "{name}: {}", report.text());
    }
}

#[test]
fn report_json_and_plot() {
    let (compiled, program) = common::lowered_example("reduce");
    let config = SimConfig { records: 2_000, keys: 20, ..SimConfig::default() };
    let report = simulate(&compiled, 0, &program, &config).unwrap();
    let json: serde_json::Value = serde_json::to_value(&report).unwrap();
    for field in ["records_in", "entries_at_reducer", "bytes_at_reducer", "result_matches_reference", "links"] {
        assert!(json.get(field).is_some(), "missing {field}");
    }
    assert!(json["links"][0].get("packets").is_some() && json["links"][0].get("bytes").is_some());
    assert_eq!(report.tiers.len(), 3);
    // 2,000 records over 64 mappers; each of the reducer's 4 children sends one entry per key.
    assert_eq!(report.entries_at_reducer, 80, "{}", report.text());
    assert_eq!(report.ideal_entries_at_reducer, 80);
    assert_eq!(report.tiers[0].entries, 2_000);
    let svg = plot_svg(&report);
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("mapper → level 2") && svg.contains("level 1 → reducer"));
    // Same seed, same report (wall-clock timings aside).
    let again = simulate(&compiled, 0, &program, &config).unwrap();
    assert_eq!(again.links, report.links);
    assert_eq!(again.events, report.events);
}

#[test]
fn bad_configurations_are_errors() {
    let (compiled, program) = common::lowered_example("reduce");
    let error =
        simulate(&compiled, 0, &program, &SimConfig { loss: 1.0, ..SimConfig::default() }).unwrap_err().to_string();
    assert!(error.contains("`loss` must be a probability"), "{error}");
    let error =
        simulate(&compiled, 0, &program, &SimConfig { keys: 0, ..SimConfig::default() }).unwrap_err().to_string();
    assert!(error.contains("`keys` must be at least 1"), "{error}");
    let error = simulate(&compiled, 3, &program, &SimConfig::default()).unwrap_err().to_string();
    assert!(error.contains("no aggregate number 3"), "{error}");
    // A profile changed after lowering is checked again: with no key bits every key would
    // be an identifier, and too many packet fields would not fit the simulator's buffers.
    for (profile, field) in [
        (TargetProfile { key_bits: 0, ..program.profile.clone() }, "`key_bits`"),
        (TargetProfile { max_packet_fields: 1 << 24, ..program.profile.clone() }, "`max_packet_fields`"),
    ] {
        let changed = naas_target_switch::PipelineProgram { profile, ..program.clone() };
        let error = simulate(&compiled, 0, &changed, &SimConfig::default()).unwrap_err().to_string();
        assert!(error.contains("invalid target profile") && error.contains(field), "{error}");
    }
}

/// Records drawn for a float program carried in fixed point fit the scale (the generator's
/// `1e300` and infinities would fit none), and the network's sums, rounded once per entry,
/// are compared with the float reference within the bound of spec section 15.5 (N / (2S)
/// per sum), not within a float tolerance: every run used to stop on `1e300`.
#[test]
fn fixed_point_floats_simulate_within_the_rounding_bound() {
    let compiled = common::compile_source(&common::program_source("float_sum"));
    for scale in [1, 10, 1000, 1_000_000] {
        let options = LowerOptions { fixed_point_scale: Some(scale), ..LowerOptions::default() };
        let program = lower(&compiled, 0, &TargetProfile::default(), &options).unwrap();
        for (records, keys) in [(200, 100), (20_000, 3)] {
            let config = SimConfig { records, keys, ..SimConfig::default() };
            let report = simulate(&compiled, 0, &program, &config).unwrap();
            assert!(report.result_matches_reference, "scale {scale}, {records} records: {report:?}");
        }
    }
}

/// A state whose value does not fit the fixed-point encoding is a clear error naming the
/// field and the scale, with the value shortened (`1e300`, not its 301 digits).
#[test]
fn fixed_point_overflow_is_a_clear_error() {
    let compiled = common::compile_source(&common::program_source("float_sum"));
    let options = LowerOptions { fixed_point_scale: Some(1000), ..LowerOptions::default() };
    let program = lower(&compiled, 0, &TargetProfile::default(), &options).unwrap();
    let state = compiled.aggregates[0].identity.clone();
    let huge: Vec<Slot> = state
        .iter()
        .map(|slot| match slot {
            Slot::Scalar(Scalar::Float(ty, _)) => Slot::Scalar(Scalar::Float(*ty, 1e300)),
            other => other.clone(),
        })
        .collect();
    let error =
        simulate_entries(&compiled, 0, &program, &SimConfig::default(), vec![vec![(1, huge)]]).unwrap_err().to_string();
    assert!(error.contains("does not fit in fixed point with scale 1000"), "{error}");
    assert!(error.contains("1e300") && error.len() < 300, "{error}");
}

#[test]
fn topology_files_simulate_exactly() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/topologies/small.topo");
    let topology = Topology::parse(&format!("file:{}", path.display())).unwrap();
    assert_eq!(Topology::parse(path.to_str().unwrap()).unwrap(), topology, "a plain path to a file");
    assert_eq!(topology.mappers(), 8);
    let (compiled, program) = common::lowered_example("reduce");
    for faults in [false, true] {
        let p = if faults { 0.05 } else { 0.0 };
        let config = SimConfig {
            topology: topology.clone(),
            records: 800,
            keys: 40,
            loss: p,
            dup: p,
            reorder: p,
            slot_index: naas_target_switch::network::SlotIndex::Direct,
            ..SimConfig::default()
        };
        let report = simulate(&compiled, 0, &program, &config).unwrap();
        assert!(report.result_matches_reference, "{}", report.text());
        assert_eq!((report.mappers, report.switches, report.records_in), (8, 4, 800));
        assert_eq!(report.tiers.len(), 3, "{}", report.text());
        assert!(report.topology.starts_with("file:") && report.topology.ends_with("small.topo"));
        if !faults {
            // The reducer's children: `agg` and `rack2` send one entry per key of their subtree,
            // the mapper `m7` every record (100).
            assert_eq!(report.entries_at_reducer, report.ideal_entries_at_reducer, "{}", report.text());
            assert_eq!(report.ideal_entries_at_reducer, 40 + 40 + 100, "{}", report.text());
        }
    }
    let error = Topology::parse("file:/nonexistent/x.topo").unwrap_err();
    // An I/O failure keeps its kind, so a caller can tell a missing file from a bad one.
    assert!(
        matches!(&error, TopologyError::Read { error, .. } if error.kind() == std::io::ErrorKind::NotFound),
        "{error:?}"
    );
    assert!(error.to_string().starts_with("cannot read topology file `/nonexistent/x.topo`: "), "{error}");
}

#[test]
fn heavy_faults_and_every_window_stay_exact() {
    // Many seeds, windows from stop-and-wait to the largest, and fault rates far above any
    // real network's: the protocol (delayed selective acknowledgements, retransmissions,
    // contribution tracking) must still deliver every contribution exactly once.
    for (name, source) in sources().into_iter().filter(|(n, _)| n == "reduce" || n == "min_max_wide") {
        let compiled = common::compile_source(&source);
        let program = lower(&compiled, 0, &TargetProfile::default(), &LowerOptions::default()).unwrap();
        for seed in 0..6 {
            for window in [1, 3, 8, 64] {
                let config = SimConfig {
                    topology: Topology::parse(TOPOLOGIES[(seed % 3) as usize]).unwrap(),
                    records: 400,
                    keys: 25,
                    seed,
                    loss: 0.3,
                    dup: 0.3,
                    reorder: 0.5,
                    table_slots: Some(6),
                    window,
                    ..SimConfig::default()
                };
                let report = simulate(&compiled, 0, &program, &config).unwrap();
                let what = format!("{name}, seed {seed}, window {window}");
                assert!(report.result_matches_reference, "{what}: {}", report.text());
                assert!(report.retransmissions > 0 && report.duplicates_dropped > 0, "{what}: {}", report.text());
            }
        }
    }
    let (compiled, program) = common::lowered_example("reduce");
    let error =
        simulate(&compiled, 0, &program, &SimConfig { window: 65, ..SimConfig::default() }).unwrap_err().to_string();
    assert!(error.contains("`window` must be between 1 and 64"), "{error}");
}

/// A packet that recirculates occupies a switch's pipeline once per pass: the same traffic
/// takes longer in simulated time with three passes than with one, the result stays exact, and
/// the report says how many passes and what share of line rate is left.
#[test]
fn extra_passes_are_charged() {
    let compiled = common::compile_source(&common::example_source("reduce"));
    let one = lower(&compiled, 0, &TargetProfile::default(), &LowerOptions::default()).unwrap();
    let mut three = one.clone();
    three.passes = 3;
    let config = SimConfig {
        topology: Topology::parse("tree:fanout=4,depth=1").unwrap(),
        records: 4000,
        keys: 50,
        seed: 3,
        // Slow links and a full window: serialisation, not latency, sets the time.
        link_gbps: 0.1,
        window: 64,
        ..SimConfig::default()
    };
    let fast = simulate(&compiled, 0, &one, &config).unwrap();
    let slow = simulate(&compiled, 0, &three, &config).unwrap();
    assert!(fast.result_matches_reference && slow.result_matches_reference);
    assert_eq!((fast.passes, slow.passes), (1, 3));
    assert_eq!(slow.line_rate_fraction, 1.0 / 3.0);
    assert_eq!(fast.entries_at_reducer, slow.entries_at_reducer);
    // Only the links into switches are charged (the reducer is a host, and acknowledgements
    // and the last hop take the same time), so the whole run slows by less than 3x.
    assert!(
        slow.simulated_time_us > 1.3 * fast.simulated_time_us,
        "{} us with three passes, {} us with one",
        slow.simulated_time_us,
        fast.simulated_time_us
    );
    assert!(slow.text().contains("3 passes (recirculated: 0.333 of line rate)"), "{}", slow.text());
}

/// A packet carries one entry per lane (a key's lane is the same at every switch, so that a
/// key is merged in one table per switch and the fan-in bound is reached), and senders keep
/// packets nearly full anyway: mappers hold an entry whose lane is taken for a later packet,
/// and switches read their tables out lane by lane in turn.
#[test]
fn packets_carry_one_entry_per_lane_and_stay_full() {
    let compiled = common::compile_source(&common::example_source("reduce"));
    let program = lower(&compiled, 0, &TargetProfile::default(), &LowerOptions::default()).unwrap();
    let lanes = program.entries_per_packet();
    assert!(lanes > 1);
    let config = SimConfig {
        topology: Topology::parse("tree:fanout=4,depth=2").unwrap(),
        records: 20_000,
        keys: 500,
        seed: 9,
        // Dense key ids: no key collides, so every merge the lanes allow happens.
        slot_index: naas_target_switch::network::SlotIndex::Direct,
        ..SimConfig::default()
    };
    let report = simulate(&compiled, 0, &program, &config).unwrap();
    assert!(report.result_matches_reference, "{}", report.text());
    assert_eq!(report.lanes, lanes);
    assert_eq!(report.collisions, 0, "{}", report.text());
    assert_eq!(report.entries_at_reducer, report.ideal_entries_at_reducer, "{}", report.text());
    for tier in &report.tiers {
        let per_packet = tier.entries as f64 / tier.packets as f64;
        assert!(per_packet <= f64::from(lanes), "{}", report.text());
        assert!(
            per_packet >= 0.7 * f64::from(lanes),
            "tier {}: {per_packet} entries per packet\n{}",
            tier.tier,
            report.text()
        );
    }
}

/// Every switch reports how many entries it merged, forwarded unmerged and flushed; the
/// per-switch counts add up to the totals, so nothing falls back to the host silently.
#[test]
fn merged_and_unmerged_entries_are_reported_per_switch() {
    let compiled = common::compile_source(&common::example_source("reduce"));
    let program = lower(&compiled, 0, &TargetProfile::default(), &LowerOptions::default()).unwrap();
    let config = SimConfig {
        topology: Topology::parse("tree:fanout=3,depth=2").unwrap(),
        records: 3000,
        keys: 200,
        seed: 4,
        table_slots: Some(16),
        ..SimConfig::default()
    };
    let report = simulate(&compiled, 0, &program, &config).unwrap();
    assert!(report.result_matches_reference, "{}", report.text());
    assert_eq!(report.per_switch.len() as u64, report.switches);
    let merged: u64 = report.per_switch.iter().map(|s| s.merged).sum();
    let unmerged: u64 = report.per_switch.iter().map(|s| s.unmerged).sum();
    let flushed: u64 = report.per_switch.iter().map(|s| s.flushed).sum();
    assert_eq!((merged, unmerged, flushed), (report.switch_merges, report.collisions, report.flushed_entries));
    assert!(unmerged > 0, "tiny tables collide: {}", report.text());
    let first = &report.per_switch[0];
    let line = format!(
        "  switch {}: merged {}, forwarded unmerged {}, flushed {}\n",
        first.name, first.merged, first.unmerged, first.flushed
    );
    assert!(report.text().contains(&line), "{}", report.text());
}
