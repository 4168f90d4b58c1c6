//! Full unrolling of counted loops, for targets without loops (the switch pipeline). Each
//! iteration becomes a copy of the body inside its own block, preceded by the assignment of
//! the counter; `continue` leaves the iteration's block and `break` the block around all
//! iterations. Loops whose unrolled size would exceed [`UNROLL_LIMIT`] statements stay loops,
//! and the target that needs straight-line code reports them.

use std::collections::HashMap;
use std::ops::ControlFlow;

use super::walk::Renamer;
use crate::ir::{Expr, Function, Label, Module, Scalar, ScalarTy, Stmt, Var, VarTy};
use crate::visit::{for_each_stmt, for_each_stmt_mut, map_block};

/// The most statements unrolling may produce from one loop.
pub const UNROLL_LIMIT: usize = 200_000;

pub fn unroll_loops(module: &mut Module) {
    for function in &mut module.functions {
        let body = std::mem::take(&mut function.body);
        function.body = unroll_block(function, body);
    }
}

pub fn trip_count(start: i128, stop: i128, step: i128) -> u128 {
    naas_lang::check::trip_count(start, stop, step)
}

/// Unrolls bottom-up: a loop's body has had its inner loops unrolled when the loop is.
fn unroll_block(f: &mut Function, block: Vec<Stmt>) -> Vec<Stmt> {
    map_block(block, &mut |stmt, out| {
        match stmt {
            Stmt::Loop { label, counter, start, stop, step, body } => {
                out.push(unroll_loop(f, label, counter, (start, stop, step), body));
            }
            other => out.push(other),
        }
        ControlFlow::Continue(())
    })
}

/// One loop whose body is straight-line: a block of one block per iteration, or the loop
/// unchanged when the copies would exceed [`UNROLL_LIMIT`].
fn unroll_loop(f: &mut Function, label: Label, counter: Var, range: (i128, i128, i128), body: Vec<Stmt>) -> Stmt {
    let (start, stop, step) = range;
    let trips = trip_count(start, stop, step);
    let unrolled_size = (crate::ir_types::statement_count(&body) as u128 + 2).saturating_mul(trips);
    if unrolled_size > UNROLL_LIMIT as u128 {
        return Stmt::Loop { label, counter, start, stop, step, body };
    }
    let ty = match f.var_ty(counter) {
        VarTy::Scalar(ScalarTy::Int(ty)) => ty,
        // The verifier rejects a loop whose counter is not an integer, so this is never
        // reached; the i64 constants it would assign fail the verifier after this pass.
        _ => naas_lang::types::IntTy::I64,
    };
    let mut iterations = Vec::new();
    let mut value = start;
    for _ in 0..trips {
        let iteration = f.new_label();
        let mut labels: HashMap<Label, Label> = HashMap::new();
        for_each_stmt(&body, &mut |stmt| {
            if let Stmt::Loop { label: inner, .. } | Stmt::Block { label: inner, .. } = stmt {
                labels.insert(*inner, f.new_label());
            }
        });
        labels.insert(label, iteration);
        let no_vars = HashMap::new();
        let renamer = Renamer { vars: &no_vars, labels: &labels };
        // `continue @label` becomes `break @iteration`; `break @label` must leave every
        // iteration, so it is re-targeted to the outer block below.
        let copy = retarget(renamer.block(&body), iteration, label);
        let mut iteration_body = vec![Stmt::Assign { dst: counter, value: Expr::Const(Scalar::Int(ty, value)) }];
        iteration_body.extend(copy);
        iterations.push(Stmt::Block { label: iteration, body: iteration_body });
        value += step;
    }
    Stmt::Block { label, body: iterations }
}

/// In a renamed copy where the loop label became `iteration`: `Continue(iteration)` becomes
/// `Break(iteration)`, and `Break(iteration)` becomes `Break(outer)`.
fn retarget(mut block: Vec<Stmt>, iteration: Label, outer: Label) -> Vec<Stmt> {
    for_each_stmt_mut(&mut block, &mut |stmt| match stmt {
        Stmt::Continue(l) if *l == iteration => *stmt = Stmt::Break(iteration),
        Stmt::Break(l) if *l == iteration => *stmt = Stmt::Break(outer),
        _ => {}
    });
    block
}
