//! The interpreter's run tests, on the JIT: every `# run:` line of the IR crate's test
//! programs and of the examples gives the same result (or the same fault, at the same source
//! location) in native code as in the reference interpreter.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use naas_ir::interp::Interpreter;
use naas_ir::laws::LawOptions;
use naas_ir::runfile::{parse_run_lines, resolve};
use naas_lang::check::CheckOptions;
use naas_target_native::{CallError, JitFunctions};

#[test]
fn run_lines_agree_with_the_interpreter() {
    let dir = naas_test_support::repo_root().join("compiler/ir/tests/programs");
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let source = std::fs::read_to_string(&path).unwrap();
        let (program, _) = naas_lang::frontend(&source, &CheckOptions::default()).unwrap();
        let compiled = naas_ir::compile(&program, LawOptions::default()).unwrap();
        let jit = JitFunctions::compile(&compiled.optimized).unwrap_or_else(|e| panic!("{file}: {e}"));
        let interp = Interpreter::new(&compiled.optimized);
        for line in parse_run_lines(&source).unwrap() {
            let case = resolve(&program, &line).unwrap();
            let id = compiled.optimized.find(&case.function).unwrap();
            let expected = interp.call(id, case.args.clone());
            let got = jit.call(&case.function, &case.args);
            match (&expected, &got) {
                (Ok(a), Ok(b)) => assert!(
                    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y)),
                    "{file}:{} `{}`: interpreter {a:?}, JIT {b:?}",
                    case.line,
                    case.function
                ),
                (Err(a), Err(CallError::Fault(b))) => {
                    assert_eq!(a.fault(), Some((b.fault, b.span)), "{file}:{} `{}`", case.line, case.function)
                }
                _ => panic!("{file}:{} `{}`: interpreter {expected:?}, JIT {got:?}", case.line, case.function),
            }
            total += 1;
        }
    }
    assert!(total >= 50, "only {total} run lines");
}
