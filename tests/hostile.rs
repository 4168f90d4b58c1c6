//! End-to-end tests of `naasc` on hostile input: huge or garbage sources, unreadable
//! paths, programs whose cost hides in copies or in code size, and expensive merges. Each
//! must give a bounded, clear answer quickly, never a flood of output, a crash or a hang.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::time::{Duration, Instant};

use common::{naasc, stderr, stdout, temp_file};

fn check(path: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["check", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    naasc(&args)
}

#[test]
fn a_run_of_invalid_characters_is_one_short_diagnostic() {
    for (len, name) in [(30_000, "dollars.naas"), (3_000_000, "dollars_3m.naas")] {
        let source = format!("{}\n", "$".repeat(len));
        let path = temp_file(name, source.as_bytes());
        let output = check(&path, &[]);
        assert_eq!(output.status.code(), Some(1));
        let text = stderr(&output);
        assert!(text.len() < 3_000, "{} bytes of diagnostics", text.len());
        assert_eq!(text.matches("error[E0001]").count(), 1, "{text}");
        assert!(text.contains(&format!("{len} unexpected characters")), "{text}");
        let json = check(&path, &["--format", "json"]);
        assert!(json.stdout.len() < 3_000, "{} bytes of JSON", json.stdout.len());
        let parsed: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        assert_eq!(parsed.as_array().map(Vec::len), Some(1));
    }
}

#[test]
fn other_invalid_characters_also_coalesce_but_separate_runs_do_not() {
    let path = temp_file("mixed.naas", b"def f() -> i64:\n    return 1 $?$ + 2 ` 3\n");
    let text = stderr(&check(&path, &[]));
    assert!(text.contains("3 unexpected characters, starting with '$'"), "{text}");
    assert!(text.contains("unexpected character '`'"), "{text}");
    assert!(text.contains("mixed.naas:2:14"), "{text}");
}

#[test]
fn diagnostics_per_file_are_capped_and_the_rest_counted() {
    // Separated invalid characters cannot coalesce; lexing stops after 50 errors.
    let source = format!("{}\n", "$ ".repeat(200_000));
    let path = temp_file("spaced.naas", source.as_bytes());
    let start = Instant::now();
    let output = check(&path, &[]);
    assert!(start.elapsed() < Duration::from_secs(20));
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(text.len() < 200_000, "{} bytes", text.len());
    assert!(text.contains("more than 50 lexical errors"), "{text}");
    // Every excerpt shows a window of the 400,000-character line, not the line.
    assert!(text.lines().all(|line| line.chars().count() < 400), "a line is not cut");

    // Many errors of the checker: 300 unknown names, shown 100 at a time by default.
    let mut source = String::from("def f() -> i64:\n    x: i64 = 0\n");
    for i in 0..300 {
        source.push_str(&format!("    x = x + unknown_{i}\n"));
    }
    source.push_str("    return x\n");
    let path = temp_file("many.naas", source.as_bytes());
    let text = stderr(&check(&path, &[]));
    assert_eq!(text.matches("error[").count(), 100, "{text}");
    assert!(text.contains("200 more error(s) and 0 more warning(s) in"), "{text}");
    assert!(text.contains("(300 error(s) in all)"), "{text}");
    let text = stderr(&check(&path, &["--max-diagnostics", "5"]));
    assert_eq!(text.matches("error[").count(), 5, "{text}");
    assert!(text.contains("at most 5 diagnostics per file"), "{text}");
}

#[test]
fn huge_values_are_not_echoed_in_full() {
    let source = format!("const X: u64 = {}\n", "9".repeat(100_000));
    let path = temp_file("bigint.naas", source.as_bytes());
    let output = check(&path, &[]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(text.contains("E0007"), "{text}");
    assert!(text.contains("(100000 characters, cut to 64)"), "{text}");
    assert!(text.len() < 5_000, "{} bytes", text.len());
    let name = "n".repeat(50_000);
    let source = format!("def f() -> i64:\n    return {name}\n");
    let path = temp_file("bigname.naas", source.as_bytes());
    let text = stderr(&check(&path, &[]));
    assert!(text.len() < 5_000, "{} bytes", text.len());
}

#[test]
fn an_unreadable_file_is_not_reported_as_success() {
    let output = naasc(&["check", "/nonexistent/missing.naas"]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(!text.contains("no errors"), "{text}");
    assert!(text.contains("1 could not be read"), "{text}");
    let output = naasc(&["check", "/nonexistent/missing.naas", "examples/reduce.naas"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("checked 1 file(s): 1 ok, 1 could not be read"), "{}", stderr(&output));
}

const TWO_AGGREGATES: &str = "\
aggregate total(v: i64) -> i64:
    return sum(v)

aggregate temp_stats(t: f64) -> tuple[f64, u64]:
    return sum(t), count()
";

#[test]
fn run_and_compile_warn_only_about_the_aggregate_they_run() {
    let program = temp_file("multi.naas", TWO_AGGREGATES.as_bytes());
    let input = temp_file("multi.csv", b"k,v,t\na,1,1.5\nb,2,2.5\na,3,0.5\n");
    let (program, input) = (program.to_str().unwrap(), input.to_str().unwrap());
    // `check` reports every aggregate.
    assert!(stderr(&naasc(&["check", program])).contains("W0501"));
    let output = naasc(&["run", program, "--input", input, "--key", "k", "--aggregate", "total"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!stderr(&output).contains("W0501"), "{}", stderr(&output));
    assert!(stdout(&output).contains('4'), "{}", stdout(&output));
    let output = naasc(&["run", program, "--input", input, "--key", "k", "--aggregate", "temp_stats"]);
    assert!(stderr(&output).contains("W0501"), "{}", stderr(&output));
    let output = naasc(&["compile", program, "--emit", "state", "--aggregate", "total"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!stderr(&output).contains("W0501"), "{}", stderr(&output));
}

#[test]
fn passing_an_array_to_a_helper_is_charged_for_the_copy() {
    let source = "\
def g(big: array[u8, 100000], i: i64) -> u64:
    return u64(big[i])

def f() -> u64:
    big: array[u8, 100000] = [0] * 100000
    total: u64 = 0
    for i in range(100000):
        total += g(big, i)
    return total
";
    let path = temp_file("copies.naas", source.as_bytes());
    let output = check(&path, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("E0304") && text.contains("`f` may execute up to"), "{text}");
    // Returning, iterating over and nesting arrays copy them too.
    for body in [
        "def h(a: array[u8, 100000]) -> array[u8, 100000]:\n    return a\n\ndef f() -> u64:\n    a: array[u8, 100000] = [0] * 100000\n    for i in range(20):\n        a = h(a)\n    return u64(a[0])\n",
        "def f() -> u64:\n    a: array[u8, 100000] = [0] * 100000\n    t: u64 = 0\n    for i in range(20):\n        for x in a:\n            t += u64(x)\n    return t\n",
    ] {
        let path = temp_file("copies2.naas", body.as_bytes());
        let output = check(&path, &["--costs"]);
        let text = format!("{}{}", stdout(&output), stderr(&output));
        assert_eq!(output.status.code(), Some(1), "{text}");
        assert!(text.contains("E0304"), "{text}");
    }
}

#[test]
fn code_too_large_to_compile_is_rejected_by_check_quickly() {
    let mut source = String::from("def g(x: i64) -> i64:\n");
    for _ in 0..60_000 {
        source.push_str("    x = x * 3 + 1\n");
    }
    source.push_str("    return x\n\naggregate a(v: i64) -> i64:\n    return sum(g(v))\n");
    let path = temp_file("straight.naas", source.as_bytes());
    let start = Instant::now();
    let output = check(&path, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("is too large to compile") && text.contains("over the limit of 100000"), "{text}");
    assert!(start.elapsed() < Duration::from_secs(60));
    // A helper called from both branches of an `if`, nested: the budget counts one branch,
    // code generation compiles both.
    let mut source = String::from("def h0(x: i64) -> i64:\n    return x * 3 + 1\n");
    for level in 1..=24 {
        let prev = level - 1;
        source.push_str(&format!(
            "\ndef h{level}(x: i64) -> i64:\n    if x > 0:\n        return h{prev}(x - 1)\n    return h{prev}(x + 1)\n"
        ));
    }
    let path = temp_file("doubling.naas", source.as_bytes());
    let output = check(&path, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("is too large to compile"), "{}", stderr(&output));
}

#[test]
fn expensive_merges_are_law_tested_in_bounded_time() {
    let source = "\
aggregate spin(v: i64) -> i64:
    identity = 0

    def lift(v: i64) -> i64:
        return v

    def merge(a: i64, b: i64) -> i64:
        s: i64 = 0
        for i in range(100000):
            s = s + 1
        return a + b + s - 100000
";
    let filling = "\
aggregate fill(v: i64) -> i64:
    identity = 0

    def lift(v: i64) -> i64:
        return v

    def merge(a: i64, b: i64) -> i64:
        t = [0] * 100000
        t[0] = a
        return t[0] - (0 - b)
";
    for (name, source) in [("spin.naas", source), ("fill.naas", filling)] {
        let path = temp_file(name, source.as_bytes());
        let start = Instant::now();
        let output = check(&path, &[]);
        let elapsed = start.elapsed();
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        // Unbounded, 2,000 cases of six such merges took one to three minutes in a release
        // build; bounded, about two seconds in a debug build.
        assert!(elapsed < Duration::from_secs(30), "{name}: {elapsed:?}");
        // The law test still ran, on fewer cases.
        let state = naasc(&["compile", path.to_str().unwrap(), "--emit", "state"]);
        let text = stdout(&state);
        let cases: usize = text
            .split("merge laws: tested on ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no law status in:\n{text}"));
        assert!((4..2_000).contains(&cases), "{name}: {cases} cases");
    }
}

#[test]
fn a_builtin_aggregate_that_inlines_a_large_helper_many_times_is_rejected() {
    let mut source = String::from("def g(x: i64) -> i64:\n");
    for _ in 0..4_000 {
        source.push_str("    x = x * 3 + 1\n");
    }
    source.push_str("    return x\n\naggregate a(v: i64) -> i64:\n    return sum(");
    source.push_str(&(0..8).map(|i| format!("g(v + {i})")).collect::<Vec<_>>().join(" + "));
    source.push_str(")\n");
    let path = temp_file("inlined.naas", source.as_bytes());
    let output = check(&path, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("`a.lift` is too large to compile"), "{}", stderr(&output));
}
