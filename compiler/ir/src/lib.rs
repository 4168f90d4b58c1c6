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

use naas_lang::check::Program;

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

/// Lowers and decomposes a checked program, optimises it and checks every merge's laws.
/// An `Err` is a compiler bug (the IR failed verification) and names the pass.
pub fn compile(program: &Program, law_options: laws::LawOptions) -> Result<Compiled, String> {
    let mut lowerer = lower::Lowerer::new(program);
    let mut aggregates = decompose::decompose(program, &mut lowerer);
    let lowered = lowerer.module;
    verify::verify_module(&lowered).map_err(|error| format!("after lowering: {error}"))?;
    let optimized = passes::optimize(&lowered, passes::PassOptions::default())?;
    let (laws, mut aggregate_diagnostics) = laws::check_laws(&optimized, &mut aggregates, law_options);
    for diagnostics in &mut aggregate_diagnostics {
        naas_lang::diagnostics::sort_and_dedup(diagnostics);
    }
    let mut diagnostics: Vec<_> = aggregate_diagnostics.iter().flatten().cloned().collect();
    naas_lang::diagnostics::sort_and_dedup(&mut diagnostics);
    Ok(Compiled { lowered, optimized, aggregates, laws, diagnostics, aggregate_diagnostics })
}
