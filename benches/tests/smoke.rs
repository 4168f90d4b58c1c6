//! Every benchmark still builds and runs: each subcommand of the real `naas-bench` binary, with
//! tiny sizes, from a directory that is not the repository (the benchmarks must not depend on
//! the working directory). The numbers are not checked; the tables' lines are.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::process::Command;

/// Runs `naas-bench ARGS` in `dir` and returns its standard output, failing the test on a
/// non-zero exit.
fn bench(dir: &std::path::Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_naas-bench")).args(args).current_dir(dir).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "naas-bench {args:?} failed:\n{stdout}\n{stderr}");
    stdout.into_owned()
}

#[test]
fn every_benchmark_runs_with_tiny_sizes_from_anywhere() {
    let dir = naas_test_support::temp_dir();
    let out = bench(dir.path(), &["frontend", "--size-mb", "1", "--runs", "1"]);
    assert!(out.contains("parse + check"), "{out}");
    let out = bench(dir.path(), &["interp", "--records", "100"]);
    assert!(out.contains("delay_stats (examples/reduce.naas)") && out.contains("top_k (examples/top_k.naas)"), "{out}");
    let out = bench(dir.path(), &["jit", "--records", "1000", "--keys", "10", "--runs", "1"]);
    assert!(out.contains("results identical") && out.contains("histogram"), "{out}");
    let out = bench(dir.path(), &["switch", "--records", "2000"]);
    assert!(out.contains("network simulator:") && out.contains("direct    81920"), "{out}");
    let csv = dir.path().join("flights.csv");
    let rows: String = (0..500).map(|i| format!("F{},{}\n", i % 7, i % 61 - 20)).collect();
    std::fs::write(&csv, format!("flight,delay\n{rows}")).unwrap();
    let out = bench(
        dir.path(),
        &["runtime", "--csv", csv.to_str().unwrap(), "--keys", "7", "--workers", "1", "--timely-records", "500"],
    );
    assert!(out.contains("naasc run (combining)") && out.contains("results identical"), "{out}");
    assert!(out.contains("DuckDB"), "{out}");
}

#[test]
fn a_missing_input_file_is_an_io_error() {
    let dir = naas_test_support::temp_dir();
    let output = Command::new(env!("CARGO_BIN_EXE_naas-bench"))
        .args(["interp", "--records", "10", "missing.naas"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("naas-bench: cannot read missing.naas: "), "{stderr}");
}
