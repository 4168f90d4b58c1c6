//! End-to-end tests of `naasc run`: every canonical example over a generated CSV, compared
//! with an independent computation in plain Rust; the host, switch-sim and timely (one and two
//! processes) paths agree; malformed input is rejected (or skipped and counted) cleanly.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{naasc, stderr, stdout, temp_file, TempFile};
use naas_stdx::Rng;

/// A value in `lo..=hi`.
fn range(rng: &mut Rng, lo: i64, hi: i64) -> i64 {
    let span = (i128::from(hi) - i128::from(lo) + 1) as u128;
    (i128::from(lo) + (u128::from(rng.next_u64()) % span) as i128) as i64
}

/// `rows` rows of `key,<column>` with keys `k0..k{keys-1}` (some with a comma or quote, so
/// that quoting is exercised) and values in `lo..=hi`, plus a few extreme values.
fn generate(column: &str, rows: usize, keys: i64, lo: i64, hi: i64, seed: u64) -> (TempFile, Vec<(String, i64)>) {
    let mut rng = Rng::new(seed);
    let mut data = Vec::new();
    for i in 0..rows {
        let key = match range(&mut rng, 0, keys - 1) {
            0 => "k0,\"quoted\"".to_string(),
            k => format!("k{k}"),
        };
        let value = match i % 97 {
            0 => lo,
            1 => hi,
            _ => range(&mut rng, lo, hi),
        };
        data.push((key, value));
    }
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(["key", column, "note"]).unwrap();
    for (key, value) in &data {
        writer.write_record([key.as_str(), &value.to_string(), "x"]).unwrap();
    }
    (temp_file("data.csv", &writer.into_inner().unwrap()), data)
}

fn group(data: &[(String, i64)]) -> BTreeMap<String, Vec<i64>> {
    let mut groups: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (key, value) in data {
        groups.entry(key.clone()).or_default().push(*value);
    }
    groups
}

/// Runs `naasc run` and returns its CSV output, parsed, header first.
fn run(example: &str, input: &Path, extra: &[&str]) -> Vec<Vec<String>> {
    let mut args = vec!["run", example, "--input", input.to_str().unwrap(), "--key", "key"];
    args.extend_from_slice(extra);
    let output = naasc(&args);
    assert_eq!(output.status.code(), Some(0), "naasc {args:?}: {}", stderr(&output));
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(output.stdout.as_slice());
    reader.records().map(|r| r.unwrap().iter().map(String::from).collect()).collect()
}

fn expected_rows(header: &[&str], rows: Vec<(String, Vec<String>)>) -> Vec<Vec<String>> {
    let mut out = vec![header.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
    out.extend(rows.into_iter().map(|(k, mut v)| {
        v.insert(0, k);
        v
    }));
    out
}

/// The mean as naas computes it: the integer sum and count, divided once at the end.
fn mean(values: &[i64]) -> f64 {
    values.iter().sum::<i64>() as f64 / values.len() as f64
}

fn float(x: f64) -> String {
    format!("{x:?}")
}

#[test]
fn reduce_matches_an_independent_computation_on_every_path() {
    let (input, data) = generate("delay", 30_000, 40, i64::from(i32::MIN), i64::from(i32::MAX), 1);
    let expected = expected_rows(
        &["key", "delay_stats.0", "delay_stats.1", "delay_stats.2", "delay_stats.3"],
        group(&data)
            .into_iter()
            .map(|(k, v)| {
                let cells = vec![
                    v.iter().min().unwrap().to_string(),
                    v.iter().max().unwrap().to_string(),
                    float(mean(&v)),
                    v.len().to_string(),
                ];
                (k, cells)
            })
            .collect(),
    );
    assert_eq!(run("examples/reduce.naas", &input, &[]), expected);
    assert_eq!(run("examples/reduce.naas", &input, &["--workers", "3", "--no-combine"]), expected);
    assert_eq!(run("examples/reduce.naas", &input, &["--target", "switch-sim"]), expected);
    assert_eq!(
        run("examples/reduce.naas", &input, &["--target", "switch-sim", "--topology", "tree:fanout=2,depth=3"]),
        expected
    );
    assert_eq!(
        run(
            "examples/reduce.naas",
            &input,
            &["--target", "switch-sim", "--topology", "examples/topologies/small.topo"]
        ),
        expected
    );
    assert_eq!(run("examples/reduce.naas", &input, &["--engine", "timely", "--workers", "2"]), expected);
    assert_eq!(
        run("examples/reduce.naas", &input, &["--engine", "timely", "--workers", "2", "--processes", "2"]),
        expected
    );
}

#[test]
fn robust_mean_matches_an_independent_computation() {
    let (input, data) = generate("sample", 20_000, 25, -5_000, 5_000, 2);
    let expected = expected_rows(
        &["key", "robust_mean"],
        group(&data)
            .into_iter()
            .map(|(k, v)| {
                let clamped: Vec<i64> = v.iter().map(|x| (*x).clamp(-1000, 1000)).collect();
                (k, vec![float(mean(&clamped))])
            })
            .collect(),
    );
    assert_eq!(run("examples/robust_mean.naas", &input, &[]), expected);
    assert_eq!(run("examples/robust_mean.naas", &input, &["--target", "switch-sim"]), expected);
    assert_eq!(run("examples/robust_mean.naas", &input, &["--engine", "timely", "--workers", "2"]), expected);
}

#[test]
fn top_k_matches_an_independent_computation_on_the_host_and_the_switch() {
    let (input, data) = generate("x", 10_000, 30, i64::MIN, i64::MAX, 3);
    let header: Vec<String> = (0..4).map(|i| format!("top_k[{i}]")).collect();
    let header: Vec<&str> = std::iter::once("key").chain(header.iter().map(String::as_str)).collect();
    let expected = expected_rows(
        &header,
        group(&data)
            .into_iter()
            .map(|(k, mut v)| {
                v.sort_unstable_by(|a, b| b.cmp(a));
                v.resize(v.len().max(4), i64::MIN);
                (k, v[..4].iter().map(i64::to_string).collect())
            })
            .collect(),
    );
    assert_eq!(run("examples/top_k.naas", &input, &["--workers", "2"]), expected);
    // The switches keep each key's top 4 in an insertion chain (spec.md 15.3).
    assert_eq!(run("examples/top_k.naas", &input, &["--target", "switch-sim"]), expected);
}

#[test]
fn histogram_binds_a_record_field_by_name_and_matches() {
    let (input, data) = generate("micros", 20_000, 10, 0, 5_000, 4);
    let bucket = |us: i64| -> usize {
        // Bucket b counts samples below 2**(b + 4); the last bucket counts the rest.
        (0..7).find(|b| us < 1 << (b + 4)).unwrap_or(7)
    };
    let header: Vec<String> = (0..8).map(|i| format!("latency_histogram[{i}]")).collect();
    let header: Vec<&str> = std::iter::once("key").chain(header.iter().map(String::as_str)).collect();
    let expected = expected_rows(
        &header,
        group(&data)
            .into_iter()
            .map(|(k, v)| {
                let mut counts = [0u64; 8];
                for us in v {
                    counts[bucket(us)] += 1;
                }
                (k, counts.iter().map(u64::to_string).collect())
            })
            .collect(),
    );
    assert_eq!(run("examples/histogram.naas", &input, &[]), expected);
    assert_eq!(run("examples/histogram.naas", &input, &["--target", "switch-sim"]), expected);
    // The same data under another column name, bound explicitly.
    let renamed = std::fs::read_to_string(&input).unwrap().replacen("micros", "latency_us", 1);
    let renamed = temp_file("renamed.csv", renamed.as_bytes());
    assert_eq!(run("examples/histogram.naas", &renamed, &["--bind", "micros=latency_us"]), expected);
}

fn run_failing(csv: &str, extra: &[&str]) -> (Option<i32>, String, String) {
    let input = temp_file("bad.csv", csv.as_bytes());
    let mut args = vec!["run", "examples/reduce.naas", "--input", input.to_str().unwrap(), "--key", "flight"];
    args.extend_from_slice(extra);
    let output = naasc(&args);
    let text = stderr(&output).replace(input.to_str().unwrap(), "bad.csv");
    (output.status.code(), text, stdout(&output))
}

#[test]
fn bad_rows_name_file_line_column_and_value() {
    let cases = [
        ("flight,delay\nA,1\nB,abc\n", "bad.csv:3:2: column `delay`: `abc` is not a valid i32"),
        ("flight,delay\nA,1\nB,\n", "bad.csv:3:2: column `delay`: the field is empty"),
        ("flight,delay\nA,NA\n", "bad.csv:2:2: column `delay`: `NA` marks a missing value"),
        ("flight,delay\nA,1\nB,2,3\n", "bad.csv:3: the row has 3 fields, the header has 2"),
        ("flight,delay\nA,99999999999\n", "bad.csv:2:2: column `delay`: `99999999999` is out of range for i32"),
        ("flight,delay\n,5\n", "bad.csv:2:1: column `flight`: the key field is empty"),
    ];
    for (csv, message) in cases {
        for engine in ["local", "timely"] {
            let (code, text, out) = run_failing(csv, &["--engine", engine]);
            assert_eq!(code, Some(1), "{engine}: {text}");
            assert!(text.contains(message), "{engine}: expected `{message}` in:\n{text}");
            assert!(out.is_empty(), "no partial results are printed: {out}");
        }
    }
}

#[test]
fn skip_invalid_skips_and_counts_every_bad_row() {
    let csv = "flight,delay\nA,1\nB,abc\nA,3\nC,\nB,4,5\nB,7\n";
    let (code, text, out) = run_failing(csv, &["--skip-invalid"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("naasc: skipped 3 invalid row(s) of 6:\n"), "{text}");
    assert!(text.contains("bad.csv:3:2"), "{text}");
    assert_eq!(out, "flight,delay_stats.0,delay_stats.1,delay_stats.2,delay_stats.3\nA,1,3,2.0,2\nB,7,7,7.0,1\n");
}

#[test]
fn schema_and_usage_errors_exit_with_2() {
    let (code, text, _) = run_failing("flight,late\nA,1\n", &[]);
    assert_eq!(code, Some(2));
    assert!(text.contains("has no column `delay`") && text.contains("--bind delay=COLUMN"), "{text}");
    let (code, text, _) = run_failing("", &[]);
    assert_eq!(code, Some(2));
    assert!(text.contains("is empty: expected a header row"), "{text}");
    let (code, text, _) = run_failing("flight,delay\nA,1\n", &["--bind", "nope=delay"]);
    assert_eq!(code, Some(2));
    assert!(text.contains("names no input"), "{text}");
    let output = naasc(&["run", "examples/reduce.naas", "--input", "/nonexistent.csv", "--key", "k"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("cannot open `/nonexistent.csv`"));
}

#[test]
fn json_output_and_report() {
    let report = temp_file("report.json", b"");
    let (code, text, out) = run_failing(
        "flight,delay\nB,2\nA,1\nA,-4\n",
        &["--format", "json", "--report", report.to_str().unwrap(), "--workers", "2"],
    );
    assert_eq!(code, Some(0), "{text}");
    let results: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(results[0]["flight"], "A");
    assert_eq!(results[0]["delay_stats.2"], -1.5);
    assert_eq!(results[1]["delay_stats.3"], 1);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["rows"], 3);
    assert_eq!(report["keys"], 2);
    assert!(report["shuffle_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn a_fault_names_the_row_and_the_source_operation() {
    let program = temp_file("q.naas", b"aggregate q(x: i64, d: i64) -> i64:\n    return sum(x // d)\n");
    let input = temp_file("q.csv", b"k,x,d\na,1,1\nb,2,0\n");
    for engine in ["local", "timely"] {
        let output = naasc(&[
            "run",
            program.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--key",
            "k",
            "--engine",
            engine,
        ]);
        assert_eq!(output.status.code(), Some(1), "{engine}");
        let text = stderr(&output);
        assert!(text.contains("division by zero"), "{engine}: {text}");
        assert!(stdout(&output).is_empty());
    }
    let output = naasc(&["run", program.to_str().unwrap(), "--input", input.to_str().unwrap(), "--key", "k"]);
    assert!(stderr(&output).contains("q.csv:3: integer division by zero"), "{}", stderr(&output));
    assert!(stderr(&output).contains("q.naas:2:16"), "{}", stderr(&output));
}

/// Runs `naasc` with `args` and returns (exit code, stderr, stdout).
fn outcome(args: &[&str]) -> (Option<i32>, String, String) {
    let output = naasc(args);
    (output.status.code(), stderr(&output), stdout(&output))
}

#[test]
fn bare_carriage_return_files_give_the_same_results_and_true_line_numbers() {
    let rows: Vec<String> = (0..3000).map(|i| format!("F{},{}", i % 11, (i * 7) % 50 - 20)).collect();
    let lf = temp_file("lf.csv", format!("key,delay\n{}\n", rows.join("\n")).as_bytes());
    let cr = temp_file("cr.csv", format!("key,delay\r{}\r", rows.join("\r")).as_bytes());
    let expected = run("examples/reduce.naas", &lf, &[]);
    assert_eq!(expected.len(), 12);
    for engine in ["local", "timely"] {
        let args = ["--engine", engine, "--workers", "2"];
        assert_eq!(run("examples/reduce.naas", &cr, &args), expected, "{engine}");
    }
    for engine in ["local", "timely"] {
        let (code, text, _) = run_failing("flight,delay\rA,1\rB,2\rC,x\r", &["--engine", engine]);
        assert_eq!(code, Some(1), "{text}");
        assert!(text.contains("bad.csv:4:2: column `delay`: `x` is not a valid i32"), "{engine}: {text}");
    }
}

#[test]
fn a_stream_without_line_ends_is_an_error_not_unbounded_memory() {
    let (code, text, out) = outcome(&["run", "examples/reduce.naas", "--input", "/dev/zero", "--key", "flight"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("line 1: the row holds more than 16777216 bytes"), "{text}");
    assert!(out.is_empty());
    // A data row past the limit is a bad row of the data (exit 1), named by its line.
    let mut csv = b"flight,delay\nA,1\nB,".to_vec();
    csv.extend(std::iter::repeat_n(b'7', 17 << 20));
    let input = temp_file("long.csv", &csv);
    for extra in [&[][..], &["--skip-invalid"][..]] {
        let mut args = vec!["run", "examples/reduce.naas", "--input", input.to_str().unwrap(), "--key", "flight"];
        args.extend_from_slice(extra);
        let (code, text, _) = outcome(&args);
        assert_eq!(code, Some(1), "{text}");
        assert!(text.contains("long.csv:3: the row holds more than 16777216 bytes"), "{text}");
    }
}

#[test]
fn worker_and_process_counts_are_checked_against_their_limits() {
    let input = temp_file("w.csv", b"flight,delay\nA,1\n");
    let input = input.to_str().unwrap();
    let base = ["run", "examples/reduce.naas", "--input", input, "--key", "flight"];
    let cases: [(&[&str], &str); 6] = [
        (&["--workers", "18446744073709551615"], "a job has 1 to 256 workers per process"),
        (&["--workers", "5000"], "a job has 1 to 256 workers per process"),
        (&["--workers", "0"], "a job has 1 to 256 workers per process"),
        (&["--engine", "timely", "--workers", "20000"], "a job has 1 to 256 workers per process"),
        (&["--engine", "timely", "--processes", "65"], "a job has 1 to 64 processes"),
        (&["--engine", "timely", "--processes", "8", "--workers", "200"], "at most 1024 workers in all"),
    ];
    for (extra, message) in cases {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let (code, text, out) = outcome(&args);
        assert_eq!(code, Some(2), "{extra:?}: {text}");
        assert!(text.contains(message), "{extra:?}: {text}");
        assert!(!text.contains("panicked"), "{text}");
        assert!(out.is_empty());
    }
    let args: Vec<&str> = base.iter().chain(&["--workers", "256"]).copied().collect();
    assert_eq!(outcome(&args).0, Some(0));
}

#[test]
fn fixed_point_rejects_non_finite_inputs_with_their_row() {
    let program = temp_file("total.naas", b"aggregate total(x: f64) -> f64:\n    return sum(x)\n");
    for bad in ["inf", "-inf", "NaN"] {
        let input = temp_file("f.csv", format!("k,x\na,1.5\nb,{bad}\n").as_bytes());
        let (code, text, out) = outcome(&[
            "run",
            program.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--key",
            "k",
            "--target",
            "switch-sim",
            "--fixed-point",
            "1000",
        ]);
        assert_eq!(code, Some(1), "{bad}: {text}");
        assert!(text.contains("f.csv:3:2: column `x`") && text.contains("not a finite number"), "{bad}: {text}");
        assert!(out.is_empty(), "{out}");
    }
}

#[test]
fn output_files_are_replaced_only_on_success_and_never_the_input() {
    let input = temp_file("in.csv", b"flight,delay\nA,1\n\xffB,2\n");
    let inp = input.to_str().unwrap();
    let target = temp_file("out.json", b"previous contents\n");
    let out = target.to_str().unwrap();
    let (code, text, _) =
        outcome(&["run", "examples/reduce.naas", "--input", inp, "--key", "flight", "--format", "json", "-o", out]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("is not valid UTF-8 and cannot be written as JSON"), "{text}");
    assert_eq!(std::fs::read(&target).unwrap(), b"previous contents\n");
    let leftovers: Vec<_> = std::fs::read_dir(target.parent().unwrap()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    // CSV can hold the key: the file is replaced.
    let (code, text, _) = outcome(&["run", "examples/reduce.naas", "--input", inp, "--key", "flight", "-o", out]);
    assert_eq!(code, Some(0), "{text}");
    assert!(std::fs::read(&target).unwrap().starts_with(b"flight,delay_stats.0"));
    // The input itself, by its own path, another spelling, or a symbolic link.
    let link = input.with_file_name("link.csv");
    std::os::unix::fs::symlink(&input, &link).unwrap();
    let dotted = format!("{}/./in.csv", input.parent().unwrap().display());
    for path in [inp, dotted.as_str(), link.to_str().unwrap()] {
        for flag in ["-o", "--report"] {
            let (code, text, _) =
                outcome(&["run", "examples/reduce.naas", "--input", inp, "--key", "flight", flag, path]);
            assert_eq!(code, Some(2), "{flag} {path}: {text}");
            assert!(text.contains("is the input file"), "{text}");
        }
    }
    assert_eq!(std::fs::read(&input).unwrap(), b"flight,delay\nA,1\n\xffB,2\n");
}

#[test]
fn a_key_column_named_like_a_result_column_keeps_a_distinct_name() {
    let input = temp_file("c.csv", b"delay_stats.0,delay\nA,4\n");
    let (code, text, out) = outcome(&[
        "run",
        "examples/reduce.naas",
        "--input",
        input.to_str().unwrap(),
        "--key",
        "delay_stats.0",
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(0), "{text}");
    let results: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(results[0]["delay_stats.0_key"], "A");
    assert_eq!(results[0]["delay_stats.0"], 4);
    let (_, _, out) =
        outcome(&["run", "examples/reduce.naas", "--input", input.to_str().unwrap(), "--key", "delay_stats.0"]);
    assert!(out.starts_with("delay_stats.0_key,delay_stats.0,delay_stats.1,"), "{out}");
}

#[test]
fn a_closed_stdout_is_an_error_and_a_closed_pipe_ends_quietly() {
    let rows: String = (0..200_000).map(|i| format!("K{i},{}\n", i % 100)).collect();
    let input = temp_file("many.csv", format!("flight,delay\n{rows}").as_bytes());
    let exe = env!("CARGO_BIN_EXE_naasc");
    let root = common::root();
    for command in [
        vec!["run", "examples/reduce.naas", "--input", input.to_str().unwrap(), "--key", "flight"],
        vec!["compile", "examples/reduce.naas"],
        vec!["explain", "E0301"],
        vec!["check", "--costs", "examples/reduce.naas"],
        vec!["check", "--format", "json", "examples/reduce.naas"],
        vec!["simulate", "examples/reduce.naas", "--records", "1000", "--keys", "10"],
    ] {
        let closed = std::process::Command::new("sh")
            .arg("-c")
            .arg("\"$0\" \"$@\" >&-")
            .arg(exe)
            .args(&command)
            .current_dir(&root)
            .output()
            .unwrap();
        assert_eq!(closed.status.code(), Some(1), "{command:?}: {}", stderr(&closed));
        assert!(stderr(&closed).contains("standard output is closed"), "{}", stderr(&closed));
    }
    // The reader takes one line and goes away.
    let mut child = std::process::Command::new(exe)
        .args(["run", "examples/reduce.naas", "--input", input.to_str().unwrap(), "--key", "flight"])
        .current_dir(&root)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut first).unwrap();
    assert!(first.starts_with("flight,"), "{first}");
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
}

#[test]
fn long_keys_and_long_values_are_reported_briefly_with_their_row() {
    let mut csv = b"flight,delay\nA,1\n".to_vec();
    csv.extend(std::iter::repeat_n(b'k', 2 << 20));
    csv.extend_from_slice(b",5\nB,");
    csv.extend(std::iter::repeat_n(b'9', 10_000_000));
    csv.extend_from_slice(b"\n");
    let input = temp_file("long.csv", &csv);
    for engine in ["local", "timely"] {
        let (code, text, _) = outcome(&[
            "run",
            "examples/reduce.naas",
            "--input",
            input.to_str().unwrap(),
            "--key",
            "flight",
            "--engine",
            engine,
            "--skip-invalid",
        ]);
        assert_eq!(code, Some(0), "{engine}: {}", &text[..text.len().min(500)]);
        assert!(
            text.contains(
                "long.csv:3:1: column `flight`: the key is 2097152 bytes long; a key may hold at most 1048576 bytes"
            ),
            "{engine}: {}",
            &text[..text.len().min(500)]
        );
        assert!(text.contains("long.csv:4:2: column `delay`: `9999"), "{engine}: {}", &text[..text.len().min(500)]);
        assert!(
            text.contains("… (10000000 characters)` is out of range for i32"),
            "{engine}: {}",
            &text[..text.len().min(500)]
        );
        assert!(text.len() < 2000, "{engine}: {} bytes of messages", text.len());
    }
}

#[test]
fn integer_columns_accept_decimals_with_a_zero_fraction() {
    let (code, text, out) = run_failing("flight,delay\nA,11.0\nA,-18.0\nB,1e3\n", &[]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        out,
        "flight,delay_stats.0,delay_stats.1,delay_stats.2,delay_stats.3\nA,-18,11,-3.5,2\nB,1000,1000,1000.0,1\n"
    );
    let (code, text, _) = run_failing("flight,delay\nA,11.0\nB,11.5\n", &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("bad.csv:3:2: column `delay`: `11.5` is not an integer (i32 expected)"), "{text}");
}

#[test]
fn usage_mistakes_exit_with_2_on_every_command() {
    let input = temp_file("u.csv", b"flight,delay\nA,1\n");
    let inp = input.to_str().unwrap();
    let two = temp_file("two.naas", b"aggregate a(delay: i32) -> i32:\n    return max(delay)\n\naggregate b(delay: i32) -> i32:\n    return min(delay)\n");
    let two = two.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["run", "examples/reduce.naas", "--input", inp, "--key", "flight", "--aggregate", "nope"],
            "no aggregate `nope`",
        ),
        (vec!["run", two, "--input", inp, "--key", "flight"], "--aggregate"),
        (
            vec!["run", "examples/reduce.naas", "--input", inp, "--key", "flight", "--fixed-point", "1000"],
            "--fixed-point applies to the switch",
        ),
        (
            vec![
                "run",
                "examples/reduce.naas",
                "--input",
                inp,
                "--key",
                "flight",
                "--target",
                "switch-sim",
                "--fixed-point",
                "0",
            ],
            "0 is not in 1..",
        ),
        (
            vec!["compile", "examples/reduce.naas", "--target", "switch-sim", "--emit", "header"],
            "produces `--emit pipeline`",
        ),
        (vec!["compile", "examples/reduce.naas", "--arch", "aarch64"], "--arch chooses the NIC core's architecture"),
        (vec!["compile", "examples/reduce.naas", "--fixed-point", "10"], "--fixed-point applies to the switch"),
        (
            vec!["compile", "examples/robust_mean.naas", "--target", "switch-sim", "--fixed-point", "0"],
            "0 is not in 1..",
        ),
    ];
    for (args, message) in cases {
        let (code, text, out) = outcome(&args);
        assert_eq!(code, Some(2), "{args:?}: {text}");
        assert!(text.contains(message), "{args:?}: {text}");
        assert!(out.is_empty(), "{args:?}: {out}");
    }
    let (code, text, _) = outcome(&["run", two, "--input", inp, "--key", "flight", "--aggregate", "b"]);
    assert_eq!(code, Some(0), "{text}");
}

#[test]
fn a_row_past_the_limit_is_named_by_its_line_on_the_timely_engine_too() {
    let mut csv = b"flight,delay\nA,1\nB,".to_vec();
    csv.extend(std::iter::repeat_n(b'7', 17 << 20));
    let input = temp_file("long_timely.csv", &csv);
    let args =
        ["run", "examples/reduce.naas", "--input", input.to_str().unwrap(), "--key", "flight", "--engine", "timely"];
    let (code, text, _) = outcome(&args);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("long_timely.csv:3: the row holds more than 16777216 bytes"), "{text}");
}

/// Through the network, stderr says what the switches did with the mappers' entries (merged,
/// forwarded unmerged, flushed) and what reached the reducer against the fan-in bound, so that
/// no entry silently bypasses the in-network aggregation.
#[test]
fn the_network_mode_reports_merged_and_unmerged_entries() {
    let output = naasc(&[
        "run",
        "examples/reduce.naas",
        "--input",
        "examples/data/flights.csv",
        "--key",
        "carrier",
        "--target",
        "switch-sim",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stderr(&output);
    let line = text.lines().find(|line| line.starts_with("naasc: network: ")).unwrap_or_else(|| panic!("{text}"));
    let numbers: Vec<u64> =
        line.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
    // entries from mappers, switches, merges, unmerged, flushed, at the reducer, fan-in bound
    assert_eq!(numbers.len(), 7, "{line}");
    assert!(numbers[2] > 0, "the switches merged nothing: {line}");
    assert!(numbers[5] >= numbers[6], "fewer entries than the fan-in bound: {line}");
    assert!(line.contains("forwarded") && line.contains("flushed"), "{line}");
    assert!(!text.contains("sorted-run values"), "{text}");

    // With an insertion chain (top-k), the values of the sorted runs against K per key per child.
    let output = naasc(&[
        "run",
        "examples/top_k.naas",
        "--input",
        "examples/data/flights.csv",
        "--key",
        "carrier",
        "--bind",
        "x=delay",
        "--target",
        "switch-sim",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stderr(&output);
    let line = text.lines().find(|line| line.contains("sorted-run values")).unwrap_or_else(|| panic!("{text}"));
    let numbers: Vec<u64> =
        line.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
    assert_eq!(numbers.len(), 3, "{line}");
    assert_eq!(numbers[2], 4, "{line}");
    assert!(numbers[0] <= numbers[1], "{line}");
}
