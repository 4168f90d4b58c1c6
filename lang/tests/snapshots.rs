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

/// Every front-end code has a test file here. E0002 (invalid UTF-8) is seen only by the driver
/// (`tests/e2e.rs` covers it); the law codes (E05xx, W05xx) come from the middle end and are
/// covered by `compiler/ir/tests/`.
#[test]
fn every_code_has_a_diagnostic_test() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diagnostics");
    let covered: BTreeSet<String> =
        std::fs::read_dir(dir).unwrap().map(|entry| file_name(&entry.unwrap().path())[..5].to_string()).collect();
    let missing: Vec<&str> = Code::ALL
        .iter()
        .map(|code| code.as_str())
        .filter(|code| is_front_end(code) && !covered.contains(*code))
        .collect();
    assert!(missing.is_empty(), "codes without a file in tests/diagnostics: {missing:?}");
}

#[test]
fn every_code_is_documented() {
    let spec = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec.md")).unwrap_or_default();
    let missing: Vec<&str> = Code::ALL.iter().map(|code| code.as_str()).filter(|code| !spec.contains(code)).collect();
    assert!(missing.is_empty(), "codes not described in spec.md: {missing:?}");
    for code in Code::ALL {
        assert!(!code.explanation().is_empty(), "{code} has no explanation");
    }
}

fn is_front_end(code: &str) -> bool {
    code != "E0002" && code.starts_with('E') && code < "E0500"
}
