//! Optimisation passes over IR modules, and the pipeline that runs them. In debug builds the
//! verifier runs after every pass; a verification failure is a compiler bug and comes back
//! as an error naming the pass.

mod dce;
mod fold;
mod inline;
mod unroll;
mod walk;

pub use dce::eliminate_dead_code;
pub use fold::fold_constants;
pub use inline::inline_calls;
pub use unroll::{trip_count, unroll_loops, UNROLL_LIMIT};

use crate::ir::Module;
use crate::verify::VerifyError;

#[derive(Clone, Copy, Debug, Default)]
pub struct PassOptions {
    /// Fully unroll counted loops (the switch target needs straight-line code).
    pub unroll: bool,
}

/// The IR failed verification after a pass: a compiler bug in that pass.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("after pass `{pass}`: {error}")]
pub struct PassError {
    pub pass: &'static str,
    pub error: VerifyError,
}

/// Inlines every call, then folds constants and removes dead code; with `unroll`, also
/// unrolls every loop and simplifies again.
pub fn optimize(module: &Module, options: PassOptions) -> Result<Module, PassError> {
    let mut module = module.clone();
    run(&mut module, "inline", inline_calls)?;
    run(&mut module, "fold", fold_constants)?;
    run(&mut module, "dce", eliminate_dead_code)?;
    if options.unroll {
        run(&mut module, "unroll", unroll_loops)?;
        run(&mut module, "fold", fold_constants)?;
        run(&mut module, "dce", eliminate_dead_code)?;
    }
    Ok(module)
}

fn run(module: &mut Module, pass: &'static str, transform: fn(&mut Module)) -> Result<(), PassError> {
    transform(module);
    if cfg!(debug_assertions) {
        crate::verify::verify_module(module).map_err(|error| PassError { pass, error })?;
    }
    Ok(())
}
