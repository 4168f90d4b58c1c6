//! Data-driven snapshot tests of the front end: the token stream of every file in
//! `tests/lexer/`, the parsed tree (printed with explicit parentheses) of every example and
//! every file in `tests/parser/`, and the rendered report of every file in
//! `tests/diagnostics/`, whose name starts with the code it must produce.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::Path;

use naas_lang::check::CheckOptions;
use naas_lang::diagnostics::render::render_text;
use naas_lang::span::LineIndex;
use naas_lang::{lexer, parse, printer, Code};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn lexer_golden() {
    insta::glob!("lexer/*.naas", |path| {
        let source = read(path);
        let lines = LineIndex::new(&source);
        let (tokens, errors) = lexer::tokenize(&source);
        let mut out = String::new();
        for (lo, token, _) in &tokens {
            let (line, column) = lines.line_col(*lo as u32);
            writeln!(out, "{line}:{column} {token:?}").unwrap();
        }
        for error in &errors {
            writeln!(out, "{}", render_text(error, &file_name(path), &source, false)).unwrap();
        }
        insta::assert_snapshot!(out);
    });
}

#[test]
fn parser_snapshots() {
    let check = |path: &Path| {
        let source = read(path);
        let module = parse(&source).unwrap_or_else(|d| panic!("{} does not parse: {d:?}", path.display()));
        insta::assert_snapshot!(printer::print_module_explicit(&module));
    };
    insta::glob!("parser/*.naas", |path| check(path));
    insta::glob!("../../examples", "*.naas", |path| check(path));
}

#[test]
fn diagnostics_snapshots() {
    insta::glob!("diagnostics/*.naas", |path| {
        let name = file_name(path);
        let expected = Code::parse(&name[..5]).unwrap_or_else(|| panic!("{name} must start with a code"));
        let source = read(path);
        let diagnostics = match naas_lang::frontend(&source, &CheckOptions::default()) {
            Ok((_, warnings)) => warnings,
            Err(errors) => errors,
        };
        assert!(
            diagnostics.iter().any(|d| d.code == expected),
            "{name} should report {expected}, got {:?}",
            diagnostics.iter().map(|d| d.code).collect::<Vec<_>>()
        );
        let mut out = format!("{source}\n----\n");
        for diagnostic in &diagnostics {
            out.push_str(&render_text(diagnostic, &name, &source, false));
        }
        insta::assert_snapshot!(out);
    });
}

/// The codes of the table in spec.md §16.5: the first cell of each row (`| E0601 | when it fires | ... |`).
fn spec_code_table() -> Vec<String> {
    let spec = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec.md"));
    let section = spec.split("\n### 16.5 Codes").nth(1).expect("spec.md has a section 16.5 Codes");
    let section = section.split("\n## ").next().unwrap_or(section);
    let section = section.split("\n### ").next().unwrap_or(section);
    section
        .lines()
        .filter_map(|line| line.strip_prefix('|')?.split('|').next().map(str::trim))
        .filter(|cell| cell.len() == 5 && cell.starts_with(['E', 'W']) && cell[1..].bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string)
        .collect()
}

/// Codes only the driver can produce, so no `.naas` file can show them, with the end-to-end
/// test that covers each and the text that test file must contain.
const DRIVER_ONLY: [(&str, &str, &str); 1] = [("E0002", "tests/e2e.rs", "fn invalid_utf8_is_a_diagnostic")];

/// The folder whose files, named `<code>_<what>.naas`, test the diagnostic `code`: the stage
/// that reports it owns the test (E05xx/W05xx: the law checks; E06xx: the switch target;
/// the rest: the front end).
fn diagnostic_test_dir(code: &str) -> &'static str {
    match &code[..3] {
        "E05" | "W05" => "compiler/ir/tests/laws",
        "E06" | "W06" => "targets/switch/tests/diagnostics",
        _ => "lang/tests/diagnostics",
    }
}

/// Every code in spec.md's table has a test file whose name starts with the code, in the
/// folder of the stage that reports it (or, for the few only the driver can produce, a named
/// end-to-end test), and every `Code` is in the table: the table is what users read, so it
/// must list exactly what the compiler reports.
#[test]
fn every_code_is_documented_and_tested() {
    let table = spec_code_table();
    assert!(table.len() >= 50, "the table in spec.md §16.5 has only {} code rows", table.len());
    let documented: BTreeSet<&str> = table.iter().map(String::as_str).collect();
    let undocumented: Vec<&str> =
        Code::ALL.iter().map(|code| code.as_str()).filter(|code| !documented.contains(code)).collect();
    assert!(undocumented.is_empty(), "codes missing from the table in spec.md §16.5: {undocumented:?}");
    let known: BTreeSet<&str> = Code::ALL.iter().map(|code| code.as_str()).collect();
    let unknown: Vec<&str> = documented.iter().copied().filter(|code| !known.contains(code)).collect();
    assert!(unknown.is_empty(), "spec.md §16.5 lists codes the compiler does not have: {unknown:?}");
    for code in Code::ALL {
        assert!(!code.explanation().is_empty(), "{code} has no explanation");
    }

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let files_in = |dir: &str| -> Vec<String> {
        match std::fs::read_dir(root.join(dir)) {
            Ok(entries) => entries.map(|entry| file_name(&entry.unwrap().path())).collect(),
            Err(_) => Vec::new(),
        }
    };
    let mut missing = Vec::new();
    for code in &table {
        if let Some((_, file, needle)) = DRIVER_ONLY.iter().find(|(driver_code, ..)| driver_code == code) {
            let text = read(&root.join(file));
            assert!(text.contains(needle), "{code} is said to be covered by `{needle}` in {file}, which is not there");
            continue;
        }
        let dir = diagnostic_test_dir(code);
        if !files_in(dir).iter().any(|name| name.starts_with(&format!("{code}_"))) {
            missing.push(format!("{dir}/{code}_<what>.naas"));
        }
    }
    assert!(missing.is_empty(), "codes in spec.md §16.5 without a test file; add: {missing:#?}");
}
