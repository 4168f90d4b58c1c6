//! End-to-end tests of `naasc run`: every canonical example over a generated CSV, compared
//! with an independent computation in plain Rust; the host, switch-sim and timely (one and two
//! processes) paths agree; malformed input is rejected (or skipped and counted) cleanly.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{naasc, stderr, stdout, temp_file};

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (i128::from(hi) - i128::from(lo) + 1) as u128;
        (i128::from(lo) + (u128::from(self.next()) % span) as i128) as i64
    }
}

/// `rows` rows of `key,<column>` with keys `k0..k{keys-1}` (some with a comma or quote, so
/// that quoting is exercised) and values in `lo..=hi`, plus a few extreme values.
fn generate(column: &str, rows: usize, keys: i64, lo: i64, hi: i64, seed: u64) -> (PathBuf, Vec<(String, i64)>) {
    let mut rng = Rng(seed);
    let mut data = Vec::new();
    for i in 0..rows {
        let key = match rng.range(0, keys - 1) {
            0 => "k0,\"quoted\"".to_string(),
            k => format!("k{k}"),
        };
        let value = match i % 97 {
            0 => lo,
            1 => hi,
            _ => rng.range(lo, hi),
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
fn top_k_matches_an_independent_computation_and_is_rejected_by_the_switch() {
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
    let input = input.to_str().unwrap();
    let output = naasc(&["run", "examples/top_k.naas", "--input", input, "--key", "key", "--target", "switch-sim"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("E0602"), "{}", stderr(&output));
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
    assert!(text.contains("skipped 3 invalid row(s) of 6"), "{text}");
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
