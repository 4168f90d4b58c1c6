//! Dead-code elimination: drops statements after an unconditional exit, assignments to
//! variables nothing reads, empty constructs and blocks no `break` targets. Work whose
//! evaluation could fault is kept even when its result is unused, because the fault is part
//! of the program's meaning.

use std::collections::HashSet;
use std::ops::ControlFlow;

use crate::ir::{Expr, Label, Module, Operand, Stmt, Var};
use crate::ir_types::{can_fault, visit_reads};
use crate::visit::{for_each_stmt, map_block};

pub fn eliminate_dead_code(module: &mut Module) {
    for function in &mut module.functions {
        // Removing an assignment can make another one dead; iterate to a fixed point.
        loop {
            let mut read = HashSet::new();
            reads_block(&function.body, &mut read);
            let mut targeted = HashSet::new();
            targets_block(&function.body, &mut targeted);
            let before = crate::ir_types::statement_count(&function.body);
            let body = std::mem::take(&mut function.body);
            function.body = clean_block(body, &read, &targeted);
            if crate::ir_types::statement_count(&function.body) == before {
                break;
            }
        }
        drop_unused_vars(function);
    }
}

/// Removes the declarations of variables the body no longer mentions (a local whose every
/// assignment folding made dead), renumbering the rest in order. Parameters are kept, and so
/// is every variable up to the last parameter, so parameter numbers never change.
fn drop_unused_vars(function: &mut crate::ir::Function) {
    let mut used = HashSet::new();
    reads_block(&function.body, &mut used);
    super::walk::written_vars(&function.body, &mut used);
    let keep_below = function.params.iter().map(|param| param.index() + 1).max().unwrap_or(0);
    let mut renamed = std::collections::HashMap::new();
    let mut vars = Vec::with_capacity(function.vars.len());
    for (index, decl) in std::mem::take(&mut function.vars).into_iter().enumerate() {
        let old = Var(u32::try_from(index).unwrap_or(u32::MAX));
        if index < keep_below || used.contains(&old) {
            renamed.insert(old, Var(u32::try_from(vars.len()).unwrap_or(u32::MAX)));
            vars.push(decl);
        }
    }
    function.vars = vars;
    if renamed.iter().any(|(old, new)| old != new) {
        let labels = std::collections::HashMap::new();
        let renamer = super::walk::Renamer { vars: &renamed, labels: &labels };
        function.body = renamer.block(&function.body);
    }
}

fn clean_block(block: Vec<Stmt>, read: &HashSet<Var>, targeted: &HashSet<Label>) -> Vec<Stmt> {
    map_block(block, &mut |stmt, out| {
        let exits = matches!(stmt, Stmt::Break(_) | Stmt::Continue(_) | Stmt::Return(_));
        match stmt {
            Stmt::Assign { dst, value } if !read.contains(&dst) && !can_fault(&value) => {}
            Stmt::Store { array, offset, value }
                if !read.contains(&array) && !can_fault(&offset) && !can_fault(&value) => {}
            Stmt::FillArray { dst, value } if !read.contains(&dst) && !can_fault(&value) => {}
            Stmt::CopyArray { dst, .. } if !read.contains(&dst) => {}
            Stmt::If { cond, then, orelse } => {
                if !(then.is_empty() && orelse.is_empty() && !can_fault(&cond)) {
                    out.push(Stmt::If { cond, then, orelse });
                }
            }
            Stmt::Loop { label, counter, start, stop, step, body } => {
                let trips = crate::passes::unroll::trip_count(start, stop, step);
                if !body.is_empty() && trips != 0 {
                    out.push(Stmt::Loop { label, counter, start, stop, step, body });
                }
            }
            Stmt::Block { label, mut body } => {
                // Leaving a block at its very end is a no-op.
                if body.last() == Some(&Stmt::Break(label)) {
                    body.pop();
                }
                if targeted.contains(&label) {
                    if !body.is_empty() {
                        out.push(Stmt::Block { label, body });
                    }
                } else {
                    out.extend(body);
                }
            }
            other => out.push(other),
        }
        // Nothing after an unconditional exit in the same block can run.
        if exits {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
}

fn reads_block(block: &[Stmt], read: &mut HashSet<Var>) {
    let mut visit = |expr: &Expr| {
        visit_reads(expr, &mut |v| {
            read.insert(v);
        })
    };
    for_each_stmt(block, &mut |stmt| match stmt {
        Stmt::Assign { value, .. } | Stmt::FillArray { value, .. } => visit(value),
        Stmt::Store { offset, value, .. } => {
            visit(offset);
            visit(value);
        }
        Stmt::CopyArray { src, .. } => visit(&Expr::Var(*src)),
        Stmt::If { cond, .. } => visit(cond),
        Stmt::Return(values) | Stmt::Call { args: values, .. } => {
            for value in values {
                match value {
                    Operand::Scalar(expr) => visit(expr),
                    Operand::Array(var) => visit(&Expr::Var(*var)),
                }
            }
        }
        Stmt::Loop { .. } | Stmt::Block { .. } | Stmt::Break(_) | Stmt::Continue(_) => {}
    });
}

fn targets_block(block: &[Stmt], targeted: &mut HashSet<Label>) {
    for_each_stmt(block, &mut |stmt| {
        if let Stmt::Break(label) | Stmt::Continue(label) = stmt {
            targeted.insert(*label);
        }
    });
}
