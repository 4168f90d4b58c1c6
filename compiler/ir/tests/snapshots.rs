//! Snapshots of what the middle end produces for every example and every test program: the
//! IR as lowered and after optimisation, the state layouts, and the rendered diagnostics of
//! the law-violating programs in `tests/laws/` (whose names start with the expected code).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::path::Path;

use naas_lang::diagnostics::render::render_text;
use naas_lang::Code;

fn compile(path: &Path) -> (String, naas_ir::Compiled) {
    let source = std::fs::read_to_string(path).unwrap();
    let compiled = naas_test_support::compile_source(&source);
    (source, compiled)
}

#[test]
fn ir_snapshots() {
    let check = |path: &Path| {
        let (_, compiled) = compile(path);
        let text = format!(
            "== lowered\n{}\n== optimised\n{}",
            naas_ir::print::print_module(&compiled.lowered),
            naas_ir::print::print_module(&compiled.optimized)
        );
        insta::assert_snapshot!(text);
    };
    insta::glob!("../../../examples", "*.naas", |path| check(path));
    insta::glob!("programs/*.naas", |path| check(path));
    insta::glob!("laws/*.naas", |path| check(path));
}

#[test]
fn state_layout_snapshots() {
    insta::glob!("../../../examples", "*.naas", |path| {
        let (_, compiled) = compile(path);
        let text: String = compiled
            .aggregates
            .iter()
            .zip(&compiled.laws)
            .map(|(plan, laws)| naas_ir::print::print_state(plan, laws))
            .collect();
        insta::assert_snapshot!(text);
    });
}

#[test]
fn law_diagnostics() {
    insta::glob!("laws/*.naas", |path| {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let expected = Code::parse(&name[..5]).unwrap();
        let (source, compiled) = compile(path);
        assert!(
            compiled.diagnostics.iter().any(|d| d.code == expected),
            "{name} should report {expected}: {:?}",
            compiled.diagnostics.iter().map(|d| d.code).collect::<Vec<_>>()
        );
        let mut out = format!("{source}\n----\n");
        for diagnostic in &compiled.diagnostics {
            out.push_str(&render_text(diagnostic, &name, &source, false));
        }
        insta::assert_snapshot!(out);
    });
}

/// Every law code has a program in `tests/laws/`.
#[test]
fn every_law_code_has_a_test() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/laws");
    let files: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    for code in Code::ALL.iter().filter(|c| c.as_str().starts_with("E05") || c.as_str().starts_with("W05")) {
        assert!(files.iter().any(|f| f.starts_with(code.as_str())), "no test program for {code}");
    }
}

/// How every aggregate of every example establishes its merge laws. Every aggregate is listed,
/// so a new one (or a new example) must state what it expects.
#[test]
fn examples_prove_or_test_their_laws_as_expected() {
    use naas_ir::laws::LawStatus;
    #[derive(Debug)]
    enum Expect {
        Proved,
        TestedAtLeast(usize),
    }
    let expected: [(&str, &[(&str, Expect)]); 4] = [
        ("reduce", &[("delay_stats", Expect::Proved)]),
        ("robust_mean", &[("robust_mean", Expect::Proved)]),
        // The element-wise add must be found by symbolic execution.
        ("histogram", &[("latency_histogram", Expect::Proved)]),
        ("top_k", &[("top_k", Expect::TestedAtLeast(1000))]),
    ];
    let examples: Vec<&str> = expected.iter().map(|(example, _)| *example).collect();
    assert_eq!(
        examples.iter().copied().collect::<std::collections::BTreeSet<_>>(),
        naas_test_support::EXAMPLES.iter().copied().collect(),
        "every example, and only the examples, has expectations"
    );
    for (example, aggregates) in expected {
        let compiled = naas_test_support::compile_example(example);
        assert!(!compiled.has_errors(), "{example}: {:?}", compiled.diagnostics);
        assert_eq!(compiled.laws.len(), compiled.aggregates.len(), "{example}: one law status per aggregate");
        let names: Vec<&str> = compiled.aggregates.iter().map(|plan| plan.name.as_str()).collect();
        let listed: Vec<&str> = aggregates.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, listed, "{example}: the aggregates with expectations");
        for ((name, expect), status) in aggregates.iter().zip(&compiled.laws) {
            let holds = match expect {
                Expect::Proved => *status == LawStatus::Proved,
                Expect::TestedAtLeast(least) => matches!(status, LawStatus::Tested { cases } if cases >= least),
            };
            assert!(holds, "{example}: `{name}` should be {expect:?}, is {status:?}");
        }
    }
}
