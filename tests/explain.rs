//! End-to-end tests of `naasc explain`: for every diagnostic code (the list in spec.md section
//! 16.5 and `Code::ALL` must agree), the printed explanation starts with the summary and holds
//! at least one erroneous and one fixed example; each erroneous program makes the real `naasc`
//! report that code, and each fixed program passes without any diagnostic.
//!
//! The fence syntax is documented in `lang/src/diagnostics/codes.rs` and spec.md section 16.4:
//! ```` ```naas,CODE[,--flag=value...] ```` for an erroneous program, ```` ```naas[,--flag...] ````
//! for a fixed one; `\t` and `\xHH` inside a program stand for a tab and the byte HH.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::collections::BTreeSet;

use common::{naasc, stderr, stdout, temp_file};
use naas_lang::Code;

/// One fenced program of an explanation.
#[derive(Debug)]
struct Example {
    /// The code the program must produce; `None` for a fixed program.
    expected: Option<String>,
    /// Flags passed to `naasc` besides the file.
    flags: Vec<String>,
    /// The program, with its escapes turned into the bytes they stand for.
    source: Vec<u8>,
    /// The fence's line in the explanation, for messages.
    line: usize,
}

/// The examples of an explanation, in order. Panics on a fence that is not a `naas` program or
/// is never closed, so that no example can be skipped silently.
fn examples(code: &str, text: &str) -> Vec<Example> {
    let mut examples = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((number, line)) = lines.next() {
        let Some(info) = line.strip_prefix("```") else { continue };
        let mut items = info.split(',');
        assert_eq!(items.next(), Some("naas"), "{code}, line {}: a fence that is not `naas`", number + 1);
        let (flags, codes): (Vec<&str>, Vec<&str>) = items.partition(|item| item.starts_with("--"));
        assert!(codes.len() <= 1, "{code}, line {}: more than one code in {info:?}", number + 1);
        let mut body = String::new();
        let mut closed = false;
        for (_, line) in lines.by_ref() {
            if line == "```" {
                closed = true;
                break;
            }
            body.push_str(line);
            body.push('\n');
        }
        assert!(closed, "{code}, line {}: the fence is never closed", number + 1);
        examples.push(Example {
            expected: codes.first().map(|c| c.to_string()),
            flags: flags.iter().map(|f| f.to_string()).collect(),
            source: unescape(&body),
            line: number + 1,
        });
    }
    examples
}

/// Turns `\t` into a tab and `\xHH` into the byte HH; any other backslash is kept.
fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if bytes.get(i + 1) == Some(&b't') {
                out.push(b'\t');
                i += 2;
                continue;
            }
            if bytes.get(i + 1) == Some(&b'x') {
                let hex = bytes.get(i + 2..i + 4).and_then(|h| std::str::from_utf8(h).ok());
                if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Removes ANSI colour sequences, in case colours are forced in the environment.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The codes of `naasc check --format json` on `path`, and its exit code.
fn check_codes(path: &str, flags: &[String]) -> (Vec<String>, Option<i32>, String) {
    let mut args = vec!["check", "--format", "json"];
    args.extend(flags.iter().map(String::as_str));
    args.push(path);
    let output = naasc(&args);
    let json: serde_json::Value = serde_json::from_str(&stdout(&output))
        .unwrap_or_else(|e| panic!("`naasc check` printed no JSON ({e}): {}", stderr(&output)));
    let codes = json
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|d| d["code"].as_str().expect("a code").to_string())
        .collect();
    (codes, output.status.code(), stdout(&output))
}

/// The codes in the headers of `naasc compile FILE --target switch-sim`, its exit code and
/// standard error.
fn switch_codes(path: &str, flags: &[String]) -> (Vec<String>, Option<i32>, String) {
    let mut args = vec!["compile", path, "--target", "switch-sim"];
    args.extend(flags.iter().map(String::as_str));
    let output = naasc(&args);
    let text = strip_ansi(&stderr(&output));
    let codes = text
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("error[").or_else(|| line.strip_prefix("warning["))?;
            Some(rest.split(']').next()?.to_string())
        })
        .collect();
    (codes, output.status.code(), text)
}

/// Runs one example the way its code is reported and checks the outcome.
fn run_example(code: Code, example: &Example) {
    let name = code.as_str();
    let place = format!("{name} example at line {}", example.line);
    let file = temp_file(&format!("{name}.naas"), &example.source);
    let path = file.to_str().unwrap();
    let on_switch = name.starts_with("E06");
    let (codes, status, output) =
        if on_switch { switch_codes(path, &example.flags) } else { check_codes(path, &example.flags) };
    match &example.expected {
        Some(expected) => {
            assert_eq!(expected, name, "{place}: the fence names another code");
            assert!(codes.contains(&name.to_string()), "{place}: expected {name}, got {codes:?}\n{output}");
            // Warnings do not fail a file; errors do.
            let exit = if name.starts_with('W') { 0 } else { 1 };
            assert_eq!(status, Some(exit), "{place}: exit code\n{output}");
            if on_switch {
                // The program is valid naas: only the switch target rejects it.
                let (codes, status, output) = check_codes(path, &example.flags_for_check());
                assert_eq!(status, Some(0), "{place}: `naasc check` should accept it ({codes:?})\n{output}");
            }
        }
        None => {
            assert!(codes.is_empty(), "{place}: the fixed program still reports {codes:?}\n{output}");
            assert_eq!(status, Some(0), "{place}: exit code\n{output}");
        }
    }
}

impl Example {
    /// The flags that `naasc check` also takes (the switch flags are `compile`'s only).
    fn flags_for_check(&self) -> Vec<String> {
        self.flags.iter().filter(|f| f.starts_with("--max-ops") || f.starts_with("--max-bytes")).cloned().collect()
    }
}

/// The codes of the table in spec.md section 16.5.
fn spec_table_codes() -> BTreeSet<String> {
    let spec = std::fs::read_to_string(common::root().join("spec.md")).unwrap();
    let start = spec.find("### 16.5 Codes").expect("spec.md has section 16.5");
    let section = &spec[start..];
    let end = section[4..].find("\n## ").map_or(section.len(), |i| i + 4);
    section[..end]
        .lines()
        .filter_map(|line| line.strip_prefix("| ")?.split(' ').next())
        .filter(|cell| cell.len() == 5 && (cell.starts_with('E') || cell.starts_with('W')))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_spec_table_lists_every_code() {
    let all: BTreeSet<String> = Code::ALL.iter().map(|c| c.as_str().to_string()).collect();
    assert_eq!(spec_table_codes(), all);
}

#[test]
fn every_code_has_a_summary_and_both_examples() {
    for &code in Code::ALL {
        let output = naasc(&["explain", code.as_str()]);
        assert_eq!(output.status.code(), Some(0), "{code}");
        let text = stdout(&output);
        let first = text.lines().next().unwrap_or_default();
        assert_eq!(first, format!("{code}: {}", code.summary()), "{code}: the summary comes first");
        assert!(text.lines().nth(1) == Some(""), "{code}: a blank line follows the summary");
        let examples = examples(code.as_str(), &text);
        let wrong = examples.iter().filter(|e| e.expected.is_some()).count();
        assert!(wrong >= 1, "{code} has no erroneous example");
        assert!(examples.len() > wrong, "{code} has no fixed example");
    }
}

#[test]
fn every_example_does_what_it_says() {
    for &code in Code::ALL {
        let text = stdout(&naasc(&["explain", code.as_str()]));
        for example in examples(code.as_str(), &text) {
            run_example(code, &example);
        }
    }
}

#[test]
fn escapes_stand_for_bytes() {
    assert_eq!(unescape("a\\tb\\xFFc\\xZZ\\n"), b"a\tb\xFFc\\xZZ\\n".to_vec());
    let parsed = examples("E0000", "text\n```naas,E0000,--min-slots=2\nx\n```\n\n```naas\ny\n```\n");
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[0].expected.as_deref(), Some("E0000"));
    assert_eq!(parsed[0].flags, ["--min-slots=2"]);
    assert_eq!(parsed[1].source, b"y\n");
}

#[test]
fn unknown_codes_are_usage_errors() {
    let output = naasc(&["explain", "E9999"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("unknown diagnostic code `E9999`"), "{}", stderr(&output));
    assert!(stdout(&output).is_empty());
}
