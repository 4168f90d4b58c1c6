//! End-to-end tests: run the built `naasc` binary on the examples and on invalid programs,
//! and check exit codes, diagnostics (text and JSON) and the cost report.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use common::{naasc, root, stderr, stdout, temp_file};

fn examples() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "naas"))
        .map(|path| format!("examples/{}", path.file_name().unwrap().to_string_lossy()))
        .collect();
    files.sort();
    files
}

#[test]
fn canonical_examples_check_cleanly() {
    let files = examples();
    for canonical in ["reduce", "robust_mean", "top_k", "histogram"] {
        assert!(files.contains(&format!("examples/{canonical}.naas")), "examples/{canonical}.naas is missing");
    }
    let args: Vec<&str> = std::iter::once("check").chain(files.iter().map(String::as_str)).collect();
    let output = naasc(&args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).contains("no errors"));
}

#[test]
fn every_invalid_program_fails_with_its_code() {
    let dir = root().join("lang/tests/diagnostics");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let code = &name[..5];
        let output = naasc(&["check", "--color", "never", path.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(1), "{name}: {}", stderr(&output));
        assert!(
            stderr(&output).contains(&format!("error[{code}]")),
            "{name} should report {code}:\n{}",
            stderr(&output)
        );
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} invalid programs found");
}

#[test]
fn several_files_are_checked_together_and_the_worst_result_wins() {
    let bad = root().join("lang/tests/diagnostics/E0301_while_loop.naas");
    let output = naasc(&["check", "examples/reduce.naas", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("1 ok, 1 with errors"), "{}", stderr(&output));
}

#[test]
fn json_diagnostics_are_machine_readable() {
    let path = temp_file("two_errors.naas", b"def f(x: i64) -> i64:\n    while x > 0:\n        x -= 1\n    return y\n");
    let output = naasc(&["check", "--format", "json", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let diagnostics: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let diagnostics = diagnostics.as_array().unwrap();
    let codes: Vec<&str> = diagnostics.iter().map(|d| d["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["E0301", "E0101"]);
    let first = &diagnostics[0];
    assert_eq!(first["severity"], "error");
    assert_eq!(first["line"], 2);
    assert_eq!(first["column"], 5);
    assert_eq!(first["span"]["start"], 26);
    assert!(first["file"].as_str().unwrap().ends_with("two_errors.naas"));
    assert!(first["message"].as_str().unwrap().contains("while"));
    assert!(first["help"].as_str().unwrap().contains("range"));
    let clean = naasc(&["check", "--format", "json", "examples/top_k.naas"]);
    assert_eq!(clean.status.code(), Some(0));
    assert_eq!(stdout(&clean).trim(), "[]");
}

#[test]
fn invalid_utf8_is_a_diagnostic() {
    let path = temp_file("latin1.naas", b"# caf\xe9\nconst K = 1\n");
    let output = naasc(&["check", "--color", "never", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output).replace(path.to_str().unwrap(), "latin1.naas");
    insta::assert_snapshot!(text);
}

#[test]
fn io_and_usage_errors_exit_with_2() {
    let missing = naasc(&["check", "does/not/exist.naas"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("cannot read"), "{}", stderr(&missing));
    assert_eq!(naasc(&["check"]).status.code(), Some(2));
    assert_eq!(naasc(&["check", "--format", "yaml", "examples/reduce.naas"]).status.code(), Some(2));
    assert_eq!(naasc(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(naasc(&["explain", "E9999"]).status.code(), Some(2));
}

#[test]
fn costs_report_bounds_for_every_part() {
    let output = naasc(&["check", "--costs", "examples/top_k.naas", "examples/histogram.naas"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    insta::assert_snapshot!(stdout(&output));
}

#[test]
fn the_budget_is_configurable() {
    let output = naasc(&["check", "--color", "never", "--max-ops", "20", "examples/top_k.naas"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("error[E0304]: `top_k.merge` may execute up to"), "{}", stderr(&output));
}

#[test]
fn absurd_nesting_is_reported_not_crashed() {
    let parens = format!("const X = {}1{}\n", "(".repeat(20_000), ")".repeat(20_000));
    let sum = format!("const X = 1{}\n", " + 1".repeat(100_000));
    let indent: String = (0..2_000).map(|depth| format!("{}if True:\n", " ".repeat(depth))).collect();
    for (name, source) in [("parens", parens), ("sum", sum), ("indent", format!("def f() -> i64:\n{indent}"))] {
        let path = temp_file(&format!("{name}.naas"), source.as_bytes());
        let output = naasc(&["check", "--color", "never", path.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(1), "{name}: {}", stderr(&output));
        assert!(stderr(&output).contains("error[E0006]"), "{name}: {}", stderr(&output));
    }
}

#[test]
fn explain_prints_the_code_summary() {
    let output = naasc(&["explain", "e0301"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout(&output).starts_with("E0301: A `while` loop"), "{}", stdout(&output));
}

#[test]
fn compile_emits_ir_state_header_and_objects() {
    let ir = naasc(&["compile", "examples/reduce.naas", "--emit", "ir"]);
    assert_eq!(ir.status.code(), Some(0));
    assert!(stdout(&ir).contains("fn delay_stats.merge("), "{}", stdout(&ir));
    let state = naasc(&["compile", "examples/top_k.naas", "--emit", "state"]);
    assert!(stdout(&state).contains("merge laws: tested on"), "{}", stdout(&state));
    let header = naasc(&["compile", "examples/reduce.naas", "--target", "nic", "--emit", "header"]);
    assert!(stdout(&header).contains("uint32_t delay_stats_fold(delay_stats_state *state"), "{}", stdout(&header));
    for arch in ["x86_64", "aarch64"] {
        let path = temp_file(&format!("reduce-{arch}.o"), b"");
        let object = naasc(&[
            "compile",
            "examples/reduce.naas",
            "--target",
            "nic",
            "--arch",
            arch,
            "-o",
            path.to_str().unwrap(),
        ]);
        assert_eq!(object.status.code(), Some(0), "{}", stderr(&object));
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..4], b"\x7fELF", "{arch}: not an ELF object");
        let machine = u16::from_le_bytes([bytes[18], bytes[19]]);
        assert_eq!(machine, if arch == "x86_64" { 62 } else { 183 }, "{arch}: wrong ELF machine");
    }
    let no_output = naasc(&["compile", "examples/reduce.naas", "--target", "nic"]);
    assert_eq!(no_output.status.code(), Some(2));
    assert!(stderr(&no_output).contains("-o FILE"), "{}", stderr(&no_output));
    assert_eq!(naasc(&["compile", "examples/reduce.naas", "--target", "nic", "--arch", "mips"]).status.code(), Some(2));
    let invalid = naasc(&["compile", "--color", "never", "lang/tests/diagnostics/E0301_while_loop.naas"]);
    assert_eq!(invalid.status.code(), Some(2), "compile has no --color flag");
    let invalid = naasc(&["compile", "lang/tests/diagnostics/E0301_while_loop.naas"]);
    assert_eq!(invalid.status.code(), Some(1));
    let law = naasc(&["compile", "compiler/ir/tests/laws/E0502_not_associative.naas", "--emit", "state"]);
    assert_eq!(law.status.code(), Some(1));
    assert!(stderr(&law).contains("error[E0502]"), "{}", stderr(&law));
}

#[test]
fn switch_sim_lowers_field_wise_merges_and_top_k() {
    let ok = naasc(&["compile", "examples/reduce.naas", "--target", "switch-sim"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert!(stdout(&ok).contains("stages used"), "{}", stdout(&ok));
    // A merge of sorted runs lowers onto an insertion chain (spec.md 15.3).
    let top_k = naasc(&["compile", "examples/top_k.naas", "--target", "switch-sim"]);
    assert_eq!(top_k.status.code(), Some(0), "{}", stderr(&top_k));
    assert!(stdout(&top_k).contains("insertion chain: 4 elements"), "{}", stdout(&top_k));
    assert!(stdout(&top_k).contains("up to 4 passes for a run of 4"), "{}", stdout(&top_k));
    let bad_profile = temp_file("bad.toml", b"stages = \"many\"\n");
    let out = naasc(&[
        "compile",
        "examples/reduce.naas",
        "--target",
        "switch-sim",
        "--profile",
        bad_profile.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// Simulates `histogram.naas` (5,000 records over 50 keys, direct slots, seed 3) with `extra`
/// flags and returns the JSON report.
fn simulate_histogram(extra: &[&str]) -> serde_json::Value {
    let report = temp_file("report.json", b"");
    let mut args = vec![
        "simulate",
        "examples/histogram.naas",
        "--topology",
        "tree:fanout=4,depth=2",
        "--records",
        "5000",
        "--keys",
        "50",
        "--seed",
        "3",
        "--slot-index",
        "direct",
        "--report",
        report.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = naasc(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap()
}

#[test]
fn simulate_reports_exact_results_and_traffic_under_loss() {
    let plot = temp_file("plot.svg", b"");
    let faults = ["--dist", "zipf:1.1", "--loss", "0.02", "--dup", "0.01", "--reorder", "0.05"];
    let json = simulate_histogram(&[&faults[..], &["--plot", plot.to_str().unwrap()]].concat());
    assert_eq!(json["records_in"], 5000);
    assert_eq!(json["result_matches_reference"], true);
    // Retransmitted copies count as traffic, so under loss the reducer sees a little more
    // than the ideal one entry per key and child.
    assert_eq!(json["ideal_entries_at_reducer"], 4 * 50);
    assert!(json["entries_at_reducer"].as_u64().unwrap() >= 200, "{json}");
    assert!(json["retransmissions"].as_u64().unwrap() > 0, "{json}");
    // Without faults, direct slots in tables larger than the key space reach the bound exactly.
    let json = simulate_histogram(&[]);
    assert_eq!(json["entries_at_reducer"], 200);
    assert!(json["bytes_at_reducer"].as_u64().unwrap() > 0);
    let link = &json["links"][0];
    assert!(link["packets"].as_u64().is_some() && link["bytes"].as_u64().is_some(), "{link}");
    assert!(std::fs::read_to_string(&plot).unwrap().starts_with("<svg"));
    for bad in [["--topology", "ring:5"], ["--dist", "normal"], ["--loss", "1.5"]] {
        let out = naasc(&["simulate", "examples/reduce.naas", bad[0], bad[1]]);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
    }
}

#[test]
fn topologies_can_be_read_from_files() {
    let output = naasc(&[
        "simulate",
        "examples/reduce.naas",
        "--topology",
        "file:examples/topologies/small.topo",
        "--records",
        "20000",
        "--keys",
        "50",
        "--loss",
        "0.02",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let bad = temp_file("bad.topo", b"reducer r\nswitch s parent r\nmapper m parent nowhere\n");
    let output = naasc(&["simulate", "examples/reduce.naas", "--topology", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("line 3"), "{}", stderr(&output));
}
