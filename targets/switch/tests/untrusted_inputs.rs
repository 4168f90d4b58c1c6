//! Property tests of every input the switch target takes from users: topology strings and
//! topology files, target profiles (TOML), and the simulator's settings (`naasc simulate`'s
//! flags). Arbitrary input never panics: it is rejected with an error, or accepted within
//! the documented limits (spec section 15), and an accepted simulation runs to a report.
//!
//! The number of cases follows proptest's `PROPTEST_CASES` (see
//! `naas_test_support::proptest_config`); the simulation property, which runs a small network
//! per case, runs a quarter of them.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::collections::HashMap;
use std::sync::OnceLock;

use naas_target_switch::network::{
    simulate, Dist, NodeKind, SimConfig, SlotIndex, Topology, MAX_LINKS, MAX_NODES, MAX_TABLE_SLOTS,
};
use naas_target_switch::{lower, LowerOptions, TargetProfile};
use proptest::prelude::*;

/// A count: small, near a limit, or anything a `u32` (or more) can spell.
fn count() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..6).prop_map(|n| n.to_string()),
        (0u64..40).prop_map(|n| n.to_string()),
        prop_oneof![Just(MAX_NODES - 2), Just(MAX_NODES - 1), Just(MAX_NODES), Just(1 << 19), Just(1024)]
            .prop_map(|n| n.to_string()),
        any::<u32>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        Just("-1".to_string()),
        Just("x".to_string()),
        Just(String::new()),
    ]
}

/// Topology strings: well-formed ones with any counts, near misses, and arbitrary text.
fn topology_text() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("fanout"),
        Just("depth"),
        Just("leaves"),
        Just("spines"),
        Just("hosts"),
        Just("width"),
        Just(""),
    ];
    let params = prop::collection::vec((name, count()), 0..5)
        .prop_map(|pairs| pairs.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join(","));
    prop_oneof![
        (count(), count()).prop_map(|(f, d)| format!("tree:fanout={f},depth={d}")),
        (count(), count(), count()).prop_map(|(l, s, h)| format!("leaf-spine:leaves={l},spines={s},hosts={h}")),
        (prop_oneof![Just("tree"), Just("leaf-spine"), Just("ring"), Just("")], params)
            .prop_map(|(kind, params)| format!("{kind}:{params}")),
        "[a-z:=,0-9 -]{0,40}",
        ".{0,60}",
    ]
}

/// The node and link counts of a graph, and whether it is a tree-shaped network: node 0 the
/// reducer, every other node with an uplink, mappers without downlinks.
fn well_formed(topology: &Topology) -> (u64, u64) {
    let graph = topology.graph();
    assert_eq!(graph.nodes[0].kind, NodeKind::Reducer);
    assert!(graph.nodes[1..].iter().all(|node| !node.uplinks.is_empty()));
    assert!(graph.nodes.iter().filter(|n| n.kind == NodeKind::Mapper).all(|n| n.downlinks.is_empty()));
    assert_eq!(graph.nodes.iter().filter(|n| n.kind == NodeKind::Mapper).count(), topology.mappers());
    (graph.nodes.len() as u64, graph.links.len() as u64)
}

proptest! {
    #![proptest_config(naas_test_support::proptest_config(1))]

    /// Any topology string is an error or a topology within the node and link limits; an
    /// accepted one small enough to build here has exactly the counted nodes and links.
    #[test]
    fn topology_strings_are_rejected_or_within_the_limits(text in topology_text()) {
        // Plain paths name files; keep to strings that cannot name one in the test's directory.
        prop_assume!(!std::path::Path::new(&text).exists() && !text.starts_with("file:"));
        match Topology::parse(&text) {
            Err(error) => {
                let error = error.to_string();
                prop_assert!(!error.is_empty() && error.len() < 400, "{error}")
            }
            Ok(topology) => {
                prop_assert!(topology.check().is_ok());
                let mappers = topology.mappers() as u64;
                prop_assert!((1..MAX_NODES).contains(&mappers));
                if mappers <= 4_096 {
                    let (nodes, links) = well_formed(&topology);
                    prop_assert!(nodes <= MAX_NODES && links <= MAX_LINKS);
                }
            }
        }
    }

    /// Any topology file text is an error naming the file, or a tree rooted at its one
    /// reducer with every declared node in the graph.
    #[test]
    fn topology_files_are_rejected_or_trees(
        lines in prop::collection::vec(
            (
                prop_oneof![Just("reducer"), Just("switch"), Just("mapper"), Just("host"), Just("#"), Just("")],
                "[a-e]{1,2}",
                prop_oneof![Just(" parent "), Just(" "), Just(" parent")],
                "[a-e]{0,2}",
            ),
            0..24,
        ),
        noise in ".{0,20}",
    ) {
        let mut text: String =
            lines.iter().map(|(kind, name, parent, of)| format!("{kind} {name}{parent}{of}\n")).collect();
        text.push_str(&noise);
        check_file_text(&text)?;
    }

    /// Valid trees of any shape (parents drawn among earlier nodes, declared in any order):
    /// accepted, with as many links as non-root nodes.
    #[test]
    fn generated_tree_files_are_accepted(
        parents in prop::collection::vec(any::<prop::sample::Index>(), 1..200),
        reversed in any::<bool>(),
    ) {
        let n = parents.len() + 1;
        let parent: Vec<usize> = (1..n).map(|i| parents[i - 1].index(i)).collect();
        let mut has_child = vec![false; n];
        for p in &parent {
            has_child[*p] = true;
        }
        let mut lines = vec!["reducer n0".to_string()];
        for i in 1..n {
            let kind = if has_child[i] { "switch" } else { "mapper" };
            lines.push(format!("{kind} n{i} parent n{}", parent[i - 1]));
        }
        if reversed {
            lines.reverse();
        }
        let topology = Topology::from_file_text("t.topo", &lines.join("\n")).unwrap();
        prop_assert_eq!(well_formed(&topology), (n as u64, n as u64 - 1));
        check_file_text(&lines.join("\n"))?;
    }
}

fn check_file_text(text: &str) -> Result<(), TestCaseError> {
    {
        match Topology::from_file_text("t.topo", text) {
            Err(error) => prop_assert!(error.to_string().starts_with("topology file `t.topo`"), "{error}"),
            Ok(topology) => {
                let Topology::File(file) = &topology else { unreachable!() };
                let (nodes, links) = well_formed(&topology);
                prop_assert_eq!(nodes, file.nodes().len() as u64);
                prop_assert_eq!(links, nodes - 1);
                prop_assert!(topology.check().is_ok(), "{:?}", topology.check());
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(naas_test_support::proptest_config(1))]

    /// Any profile text is an error naming the problem, or a profile the lowering and the
    /// simulator accept without panicking.
    #[test]
    fn profiles_are_rejected_or_usable(
        edits in prop::collection::vec((0usize..9, prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            (0u64..80).prop_map(|n| n.to_string()),
            Just("-3".to_string()),
            Just("\"x\"".to_string()),
            Just("1.5".to_string()),
        ]), 0..4),
        extra in prop_oneof![Just(String::new()), Just("bogus = 1\n".to_string()), ".{0,12}"],
    ) {
        const KEYS: [&str; 9] = [
            "stages", "stateful_alus_per_stage", "register_word_bits", "register_sram_bytes_per_stage",
            "max_packet_fields", "packet_field_bits", "packet_header_bytes", "key_bits", "name",
        ];
        let mut values: HashMap<&str, String> = HashMap::new();
        for (key, value) in &edits {
            values.insert(KEYS[*key], value.clone());
        }
        let text: String = naas_target_switch::profile::TOFINO1_TOML
            .lines()
            .map(|line| {
                let key = line.split('=').next().unwrap_or("").trim();
                match values.get(key) {
                    Some(value) => format!("{key} = {value}\n"),
                    None => format!("{line}\n"),
                }
            })
            .collect::<String>()
            + &extra;
        match TargetProfile::from_toml(&text) {
            Err(error) => prop_assert!(error.to_string().starts_with("invalid target profile"), "{error}"),
            Ok(profile) => {
                let compiled = reduce();
                if let Ok(program) = lower(compiled, 0, &profile, &LowerOptions::default()) {
                    let config = SimConfig {
                        topology: Topology::Tree { fanout: 2, depth: 1 },
                        records: 50,
                        keys: 5,
                        ..SimConfig::default()
                    };
                    if let Ok(report) = simulate(compiled, 0, &program, &config) {
                        prop_assert!(report.result_matches_reference, "{report:?}");
                    }
                }
            }
        }
    }
}

fn reduce() -> &'static naas_ir::Compiled {
    static COMPILED: OnceLock<naas_ir::Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| common::compile_source(&common::example_source("reduce")))
}

/// A float that a flag could hold: probabilities, limits, and the values no parser stops.
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => 0.0..1.0f64,
        1 => Just(0.0),
        1 => Just(0.99),
        1 => Just(0.999),
        1 => Just(1.0),
        1 => Just(-0.5),
        1 => Just(1e300),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
    ]
}

proptest! {
    #![proptest_config(naas_test_support::proptest_config(4))]

    /// Any combination of the simulator's settings (as `naasc simulate`'s flags give them:
    /// key spaces up to 2^32 - 1, any distribution text, probabilities, table sizes, windows)
    /// is an error or a simulation whose result matches the reference. Loss stays low when
    /// accepted here only to keep each case short.
    #[test]
    fn simulation_settings_are_rejected_or_simulated(
        keys in prop_oneof![Just(0u32), 1u32..100, Just(u32::MAX), any::<u32>(), Just(100_000_000)],
        dist in prop_oneof![
            Just("uniform".to_string()),
            (0.01..3.0f64).prop_map(|s| format!("zipf:{s}")),
            Just("zipf:0".to_string()),
            Just("zipf:1e400".to_string()),
            Just(format!("zipf:{}", "9".repeat(400))),
            ".{0,12}",
        ],
        slot_index in prop_oneof![Just("hash"), Just("direct"), Just("Hash"), Just("")],
        (loss, dup, reorder) in (float(), float(), float()),
        slots in prop_oneof![Just(None), (0u64..300).prop_map(Some), Just(Some(MAX_TABLE_SLOTS + 1)), Just(Some(u64::MAX))],
        window in prop_oneof![Just(0u32), 1u32..65, Just(65), Just(u32::MAX)],
        link_gbps in prop_oneof![Just(100.0), float(), Just(1e-300), Just(1e300)],
        latency_ns in prop_oneof![Just(1_000u64), any::<u64>()],
        records in 0u64..300,
    ) {
        let Ok(dist) = Dist::parse(&dist) else { return Ok(()) };
        let Ok(slot_index) = SlotIndex::parse(slot_index) else { return Ok(()) };
        let compiled = reduce();
        let program = lower(compiled, 0, &TargetProfile::default(), &LowerOptions::default()).unwrap();
        let config = SimConfig {
            topology: Topology::Tree { fanout: 2, depth: 1 },
            records,
            keys,
            dist,
            loss: if loss < 0.3 { loss } else { loss + 1.0 },
            dup,
            reorder,
            table_slots: slots,
            slot_index,
            window,
            link_gbps,
            latency_ns,
            ..SimConfig::default()
        };
        match simulate(compiled, 0, &program, &config) {
            Err(error) => {
                let error = error.to_string();
                prop_assert!(!error.is_empty() && error.len() < 400, "{error}");
            }
            Ok(report) => {
                prop_assert!(report.result_matches_reference, "{report:?}");
                prop_assert_eq!(report.records_in, records);
            }
        }
    }
}
