//! Runs the `# run:` lines of every program in `tests/programs/` and every example with the
//! reference interpreter, on the IR as lowered and after optimisation: both must give the
//! expected results (or faults), so the passes are tested against the semantics too.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::path::Path;

use naas_ir::interp::{Interpreter, RuntimeError, Slot};
use naas_ir::ir::Module;
use naas_ir::laws::LawOptions;
use naas_ir::runfile::{parse_run_lines, resolve, Outcome, RunCase};
use naas_lang::check::CheckOptions;
use naas_lang::ops::Fault;

/// Runs a case; an internal error of the interpreter fails the test at once.
fn run(module: &Module, case: &RunCase) -> Result<Vec<Slot>, Fault> {
    let id = module.find(&case.function).unwrap();
    Interpreter::new(module).call(id, case.args.clone()).map_err(|error| match error {
        RuntimeError::Fault { fault, .. } => fault,
        RuntimeError::Internal(error) => panic!("`{}`: {error}", case.function),
    })
}

fn check_case(module: &Module, case: &RunCase, what: &str, file: &str) {
    let got = run(module, case);
    match (&case.expected, &got) {
        (Outcome::Values(expected), Ok(got))
            if expected.len() == got.len() && expected.iter().zip(got).all(|(a, b)| a.same(b)) => {}
        (Outcome::Fault(message), Err(fault)) if fault.to_string().contains(message.as_str()) => {}
        _ => panic!("{file}:{} `{}` ({what}): expected {:?}, got {got:?}", case.line, case.function, case.expected),
    }
}

#[test]
fn run_lines_hold_before_and_after_optimisation() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs");
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let source = std::fs::read_to_string(&path).unwrap();
        let (program, _) =
            naas_lang::frontend(&source, &CheckOptions::default()).unwrap_or_else(|d| panic!("{file}: {d:?}"));
        let compiled = naas_ir::compile(&program, LawOptions::default()).unwrap();
        let lines = parse_run_lines(&source).unwrap();
        assert!(!lines.is_empty(), "{file} has no run lines");
        for line in &lines {
            let case = resolve(&program, line).unwrap_or_else(|e| panic!("{file}: {e}"));
            check_case(&compiled.lowered, &case, "lowered", &file);
            check_case(&compiled.optimized, &case, "optimised", &file);
            total += 1;
        }
    }
    assert!(total >= 50, "only {total} run lines");
}

/// A fault names the source text of the operation that failed.
#[test]
fn faults_point_at_their_source() {
    let source = "def f(a: i64, b: i64, xs: array[i64, 3]) -> i64:\n    return xs[a] + a // b\n";
    let (program, _) = naas_lang::frontend(source, &CheckOptions::default()).unwrap();
    let compiled = naas_ir::compile(&program, LawOptions::default()).unwrap();
    let module = &compiled.optimized;
    let id = module.find("f").unwrap();
    let xs = Slot::Array(vec![naas_ir::ir::Scalar::Int(naas_lang::types::IntTy::I64, 0); 3]);
    let int = |v| Slot::Scalar(naas_ir::ir::Scalar::Int(naas_lang::types::IntTy::I64, v));
    let Err(RuntimeError::Fault { span, function, .. }) =
        Interpreter::new(module).call(id, vec![int(1), int(0), xs.clone()])
    else {
        panic!("dividing by zero must fault")
    };
    assert_eq!(&source[span.range()], "a // b");
    assert_eq!(function, "f");
    let Err(RuntimeError::Fault { fault, span, .. }) = Interpreter::new(module).call(id, vec![int(7), int(1), xs])
    else {
        panic!("an index out of bounds must fault")
    };
    assert_eq!(&source[span.range()], "a");
    assert_eq!(fault.to_string(), "index 7 is out of bounds for an array of length 3");
}
