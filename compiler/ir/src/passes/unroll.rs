//! Full unrolling of counted loops, for targets without loops (the switch pipeline). Each
//! iteration becomes a copy of the body inside its own block, preceded by the assignment of
//! the counter; `continue` leaves the iteration's block and `break` the block around all
//! iterations. Loops whose unrolled size would exceed [`UNROLL_LIMIT`] statements stay loops,
//! and the target that needs straight-line code reports them.

use std::collections::HashMap;

use super::walk::Renamer;
use crate::ir::{Expr, Function, Label, Module, Scalar, ScalarTy, Stmt, VarTy};

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

fn unroll_block(f: &mut Function, block: Vec<Stmt>) -> Vec<Stmt> {
    let mut out = Vec::with_capacity(block.len());
    for stmt in block {
        match stmt {
            Stmt::Loop { label, counter, start, stop, step, body } => {
                // Inner loops first, so the copies are straight-line.
                let body = unroll_block(f, body);
                let trips = trip_count(start, stop, step);
                let unrolled_size = (crate::ir_types::statement_count(&body) as u128 + 2).saturating_mul(trips);
                if unrolled_size > UNROLL_LIMIT as u128 {
                    out.push(Stmt::Loop { label, counter, start, stop, step, body });
                    continue;
                }
                let ty = match f.var_ty(counter) {
                    VarTy::Scalar(ScalarTy::Int(ty)) => ty,
                    _ => naas_lang::types::IntTy::I64,
                };
                let mut iterations = Vec::new();
                let mut value = start;
                for _ in 0..trips {
                    let iteration = f.new_label();
                    let mut labels: HashMap<Label, Label> = HashMap::new();
                    collect_labels(&body, &mut |inner| {
                        labels.insert(inner, f.new_label());
                    });
                    labels.insert(label, iteration);
                    let no_vars = HashMap::new();
                    let renamer = Renamer { vars: &no_vars, labels: &labels };
                    // `continue @label` becomes `break @iteration`; `break @label` must leave
                    // every iteration, so it is re-targeted to the outer block below.
                    let copy = retarget(renamer.block(&body), iteration, label);
                    let mut iteration_body =
                        vec![Stmt::Assign { dst: counter, value: Expr::Const(Scalar::Int(ty, value)) }];
                    iteration_body.extend(copy);
                    iterations.push(Stmt::Block { label: iteration, body: iteration_body });
                    value += step;
                }
                out.push(Stmt::Block { label, body: iterations });
            }
            Stmt::If { cond, then, orelse } => {
                let then = unroll_block(f, then);
                let orelse = unroll_block(f, orelse);
                out.push(Stmt::If { cond, then, orelse });
            }
            Stmt::Block { label, body } => {
                let body = unroll_block(f, body);
                out.push(Stmt::Block { label, body });
            }
            other => out.push(other),
        }
    }
    out
}

fn collect_labels(block: &[Stmt], visit: &mut impl FnMut(Label)) {
    for stmt in block {
        match stmt {
            Stmt::Loop { label, body, .. } | Stmt::Block { label, body } => {
                visit(*label);
                collect_labels(body, visit);
            }
            Stmt::If { then, orelse, .. } => {
                collect_labels(then, visit);
                collect_labels(orelse, visit);
            }
            _ => {}
        }
    }
}

/// In a renamed copy where the loop label became `iteration`: `Continue(iteration)` becomes
/// `Break(iteration)`, and `Break(iteration)` becomes `Break(outer)`.
fn retarget(block: Vec<Stmt>, iteration: Label, outer: Label) -> Vec<Stmt> {
    block
        .into_iter()
        .map(|stmt| match stmt {
            Stmt::Continue(l) if l == iteration => Stmt::Break(iteration),
            Stmt::Break(l) if l == iteration => Stmt::Break(outer),
            Stmt::If { cond, then, orelse } => {
                Stmt::If { cond, then: retarget(then, iteration, outer), orelse: retarget(orelse, iteration, outer) }
            }
            Stmt::Loop { label, counter, start, stop, step, body } => {
                Stmt::Loop { label, counter, start, stop, step, body: retarget(body, iteration, outer) }
            }
            Stmt::Block { label, body } => Stmt::Block { label, body: retarget(body, iteration, outer) },
            other => other,
        })
        .collect()
}
