//! Inlining: every call is replaced by the callee's body, with the callee's variables and
//! labels renamed, parameters bound by copying the arguments (values have copy semantics),
//! and each `return` turned into assignments to the result variables and a `break` out of a
//! block around the body. The call graph is acyclic (the checker rejects recursion), so
//! inlining repeatedly terminates.

use std::collections::HashMap;
use std::ops::ControlFlow;

use super::walk::Renamer;
use crate::ir::{Function, Module, Operand, Stmt, VarTy};
use crate::visit::map_block;

pub fn inline_calls(module: &mut Module) {
    let snapshot = module.clone();
    for function in &mut module.functions {
        // Each round inlines the calls present; callees' own calls appear in the next round.
        // Rounds are bounded by the depth of the (acyclic) call graph.
        for _ in 0..=snapshot.functions.len() {
            let body = std::mem::take(&mut function.body);
            let mut changed = false;
            function.body = inline_block(function, &snapshot, body, &mut changed);
            if !changed {
                break;
            }
        }
    }
}

fn inline_block(f: &mut Function, module: &Module, block: Vec<Stmt>, changed: &mut bool) -> Vec<Stmt> {
    map_block(block, &mut |stmt, out| {
        match stmt {
            Stmt::Call { func, args, results } => {
                *changed = true;
                out.push(inline_call(f, module.function(func), args, &results));
            }
            other => out.push(other),
        }
        ControlFlow::Continue(())
    })
}

fn inline_call(f: &mut Function, callee: &Function, args: Vec<Operand>, results: &[crate::ir::Var]) -> Stmt {
    let vars: HashMap<_, _> = callee
        .vars
        .iter()
        .enumerate()
        .map(|(i, decl)| (crate::ir::Var(i as u32), f.new_var(format!("{}.{}", callee.name, decl.name), decl.ty)))
        .collect();
    let labels: HashMap<_, _> = (0..callee.next_label).map(|l| (crate::ir::Label(l), f.new_label())).collect();
    let exit = f.new_label();
    let renamer = Renamer { vars: &vars, labels: &labels };
    let mut body = Vec::new();
    for (param, arg) in callee.params.iter().zip(args) {
        let dst = renamer.var(*param);
        body.push(match arg {
            Operand::Scalar(value) => Stmt::Assign { dst, value },
            Operand::Array(src) => Stmt::CopyArray { dst, src },
        });
    }
    body.extend(rewrite_returns(renamer.block(&callee.body), f, results, exit));
    Stmt::Block { label: exit, body }
}

/// Turns `return v...` into `results = v...; break @exit`.
fn rewrite_returns(block: Vec<Stmt>, f: &Function, results: &[crate::ir::Var], exit: crate::ir::Label) -> Vec<Stmt> {
    map_block(block, &mut |stmt, out| {
        match stmt {
            Stmt::Return(values) => {
                for (result, value) in results.iter().zip(values) {
                    match (value, f.var_ty(*result)) {
                        (Operand::Scalar(value), _) => out.push(Stmt::Assign { dst: *result, value }),
                        (Operand::Array(src), VarTy::Array(..)) => out.push(Stmt::CopyArray { dst: *result, src }),
                        (Operand::Array(_), VarTy::Scalar(_)) => {}
                    }
                }
                out.push(Stmt::Break(exit));
            }
            other => out.push(other),
        }
        ControlFlow::Continue(())
    })
}
