//! The middle of naasc: a typed, structured IR, lowering from the checked AST, optimisation
//! passes, the reference interpreter, the decomposition of aggregates into
//! identity/lift/merge/finish over a state layout, and the checking of merge's laws.

pub mod decompose;
pub mod interp;
pub mod ir;
pub mod ir_types;
pub mod laws;
pub mod layout;
pub mod lower;
pub mod passes;
pub mod print;
pub mod runfile;
pub mod verify;
pub mod visit;

use naas_lang::check::Program;
use naas_lang::internal::InternalError;
use naas_lang::span::Span;

use crate::passes::PassError;
use crate::verify::VerifyError;

/// A program in IR form: its helpers and the parts of every aggregate, as lowered and after
/// optimisation (inlining, folding, dead-code elimination), with one plan per aggregate.
#[derive(Debug)]
pub struct Compiled {
    pub lowered: ir::Module,
    pub optimized: ir::Module,
    pub aggregates: Vec<decompose::AggregatePlan>,
    /// How each aggregate's merge laws were established, in `aggregates` order.
    pub laws: Vec<laws::LawStatus>,
    /// Law violations (errors) and warnings such as non-associative float fields, of all
    /// aggregates, sorted by position.
    pub diagnostics: Vec<naas_lang::Diagnostic>,
    /// The same diagnostics by aggregate, in `aggregates` order.
    pub aggregate_diagnostics: Vec<Vec<naas_lang::Diagnostic>>,
}

impl Compiled {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(naas_lang::Diagnostic::is_error)
    }

    /// The index of the aggregate called `name`.
    pub fn aggregate_index(&self, name: &str) -> Option<usize> {
        self.aggregates.iter().position(|plan| plan.name == name)
    }
}

/// Why [`compile`] failed. Every variant is a compiler bug, never a problem with the program:
/// the driver reports it as an internal compiler error (exit code 101).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CompileError {
    /// Lowering met a broken invariant (see [`lower`]); carries the source span when known.
    #[error(transparent)]
    Internal(#[from] InternalError),
    /// The lowered IR failed verification.
    #[error("after lowering: {0}")]
    Lowering(VerifyError),
    /// The IR failed verification after an optimisation pass.
    #[error(transparent)]
    Pass(#[from] PassError),
}

impl CompileError {
    /// The source construct being compiled when the bug showed, when known.
    pub fn span(&self) -> Option<Span> {
        match self {
            CompileError::Internal(error) => error.span,
            CompileError::Lowering(_) | CompileError::Pass(_) => None,
        }
    }
}

impl From<CompileError> for InternalError {
    /// Every compile error is a compiler bug; this gives all of them the one shape the driver
    /// reports.
    fn from(error: CompileError) -> InternalError {
        match error {
            CompileError::Internal(error) => error,
            other => InternalError { span: other.span(), message: other.to_string() },
        }
    }
}

/// Lowers and decomposes a checked program, optimises it and checks every merge's laws.
/// An `Err` is a compiler bug: a broken invariant in lowering, or IR that failed
/// verification (naming the pass).
pub fn compile(program: &Program, law_options: laws::LawOptions) -> Result<Compiled, CompileError> {
    let mut lowerer = lower::Lowerer::new(program)?;
    let mut aggregates = decompose::decompose(program, &mut lowerer)?;
    let lowered = lowerer.module;
    verify::verify_module(&lowered).map_err(CompileError::Lowering)?;
    let optimized = passes::optimize(&lowered, passes::PassOptions::default())?;
    let (laws, mut aggregate_diagnostics) = laws::check_laws(&optimized, &mut aggregates, law_options)?;
    for diagnostics in &mut aggregate_diagnostics {
        naas_lang::diagnostics::sort_and_dedup(diagnostics);
    }
    let mut diagnostics: Vec<_> = aggregate_diagnostics.iter().flatten().cloned().collect();
    naas_lang::diagnostics::sort_and_dedup(&mut diagnostics);
    Ok(Compiled { lowered, optimized, aggregates, laws, diagnostics, aggregate_diagnostics })
}

#[cfg(test)]
mod tests {
    use naas_lang::ast::{ExprKind, StmtKind};
    use naas_lang::check::CheckOptions;

    use super::*;

    /// A broken invariant in lowering reaches `compile`'s caller as `CompileError::Internal`
    /// with the span of the construct, which the driver reports as an internal compiler error.
    #[test]
    fn a_lowering_bug_reaches_the_caller_as_an_internal_error() {
        let source = "def f(x: i64) -> i64:\n    return x\n";
        let Ok((mut program, _)) = naas_lang::frontend(source, &CheckOptions::default()) else {
            panic!("the program checks")
        };
        let Some(StmtKind::Return(Some(value))) = program.functions[0].body.first_mut().map(|stmt| &mut stmt.kind)
        else {
            panic!("the body is one return")
        };
        value.kind = ExprKind::Name("ghost".into());
        let span = value.span;
        match compile(&program, laws::LawOptions::default()) {
            Err(CompileError::Internal(error)) => {
                assert_eq!(error.span, Some(span));
                assert_eq!(&source[span.range()], "x");
                assert!(error.to_string().starts_with("internal compiler error: lowering `f`: `ghost`"), "{error}");
            }
            other => panic!("expected an internal error, got {other:?}"),
        }
    }

    /// A merge the interpreter cannot run (here: one that ends without `return`) is a
    /// compiler bug while its laws are tested, not a law violation of the program.
    #[test]
    fn an_interpreter_bug_while_testing_laws_is_an_internal_error() {
        // `top_k`'s merge is not field-wise, so its laws are tested with the interpreter.
        let source = include_str!("../../../examples/top_k.naas");
        let Ok((program, _)) = naas_lang::frontend(source, &CheckOptions::default()) else {
            panic!("the program checks")
        };
        let Ok(mut compiled) = compile(&program, laws::LawOptions::default()) else { panic!("the program compiles") };
        assert!(matches!(compiled.laws[0], laws::LawStatus::Tested { .. }), "{:?}", compiled.laws);
        let merge = compiled.aggregates[0].merge;
        compiled.optimized.functions[merge.0 as usize].body.clear();
        match laws::check_laws(&compiled.optimized, &mut compiled.aggregates, laws::LawOptions::default()) {
            Err(CompileError::Internal(error)) => {
                assert!(error.message.contains("ended without `return`"), "{error}");
            }
            other => panic!("expected an internal error, got {other:?}"),
        }
    }

    #[test]
    fn verification_failures_keep_their_text_and_become_internal_errors() {
        let function = ir::Function {
            name: "g".into(),
            span: Span::default(),
            params: Vec::new(),
            results: vec![ir::VarTy::Scalar(ir::ScalarTy::Bool)],
            vars: Vec::new(),
            body: vec![ir::Stmt::Return(Vec::new())],
            next_label: 0,
        };
        let module = ir::Module { functions: vec![function] };
        let Err(error) = verify::verify_module(&module) else { panic!("a wrong return count fails verification") };
        assert_eq!(error.violation, verify::Violation::ReturnCount { found: 0, expected: 1 });
        let error = CompileError::Lowering(error);
        assert!(error
            .to_string()
            .starts_with("after lowering: IR verification failed in `g`: return of 0 values, expected 1\n"));
        let internal = InternalError::from(error.clone());
        assert_eq!(internal.message, error.to_string());
    }
}
