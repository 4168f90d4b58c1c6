//! Constant folding and propagation. Operators over constants are evaluated with the
//! interpreter's own functions (so folding cannot change a result); operations that would
//! fault are left in place so that the fault still happens at run time, where the source
//! says. Scalar variables holding a known constant are replaced by it, tracked forward
//! through straight-line code and conservatively across branches and loops.

use std::collections::{HashMap, HashSet};

use super::walk::{map_expr, written_vars};
use crate::interp;
use crate::ir::{Expr, Module, Scalar, Stmt, UnaryOp, Var, VarTy};

pub fn fold_constants(module: &mut Module) {
    for function in &mut module.functions {
        let body = std::mem::take(&mut function.body);
        let scalars: HashSet<Var> = function
            .vars
            .iter()
            .enumerate()
            .filter(|(_, decl)| matches!(decl.ty, VarTy::Scalar(_)))
            .map(|(i, _)| Var(i as u32))
            .collect();
        let mut known = HashMap::new();
        function.body = fold_block(body, &mut known, &scalars);
    }
}

type Known = HashMap<Var, Scalar>;

fn fold_block(block: Vec<Stmt>, known: &mut Known, scalars: &HashSet<Var>) -> Vec<Stmt> {
    let mut out = Vec::with_capacity(block.len());
    for stmt in block {
        match stmt {
            Stmt::Assign { dst, value } => {
                let value = fold_expr(&value, known);
                match value.as_const() {
                    Some(constant) if scalars.contains(&dst) => {
                        known.insert(dst, constant);
                    }
                    _ => {
                        known.remove(&dst);
                    }
                }
                out.push(Stmt::Assign { dst, value });
            }
            Stmt::Store { array, offset, value } => {
                out.push(Stmt::Store { array, offset: fold_expr(&offset, known), value: fold_expr(&value, known) });
            }
            Stmt::FillArray { dst, value } => out.push(Stmt::FillArray { dst, value: fold_expr(&value, known) }),
            Stmt::If { cond, then, orelse } => {
                let cond = fold_expr(&cond, known);
                match cond.as_const().and_then(Scalar::as_bool) {
                    Some(taken) => {
                        let branch = if taken { then } else { orelse };
                        // The branch's statements now run unconditionally in this block.
                        let folded = fold_block(branch, known, scalars);
                        out.push(Stmt::Block { label: crate::ir::Label(u32::MAX), body: folded });
                    }
                    None => {
                        let mut then_known = known.clone();
                        let mut else_known = known.clone();
                        let then = fold_block(then, &mut then_known, scalars);
                        let orelse = fold_block(orelse, &mut else_known, scalars);
                        known.retain(|var, value| {
                            then_known.get(var).is_some_and(|v| v.same(*value))
                                && else_known.get(var).is_some_and(|v| v.same(*value))
                        });
                        for (var, value) in then_known {
                            if else_known.get(&var).is_some_and(|v| v.same(value)) {
                                known.insert(var, value);
                            }
                        }
                        out.push(Stmt::If { cond, then, orelse });
                    }
                }
            }
            Stmt::Loop { label, counter, start, stop, step, body } => {
                let mut written = HashSet::new();
                written_vars(&body, &mut written);
                written.insert(counter);
                known.retain(|var, _| !written.contains(var));
                let mut inner = known.clone();
                let body = fold_block(body, &mut inner, scalars);
                out.push(Stmt::Loop { label, counter, start, stop, step, body });
            }
            Stmt::Block { label, body } => {
                let mut written = HashSet::new();
                written_vars(&body, &mut written);
                let mut inner = known.clone();
                let body = fold_block(body, &mut inner, scalars);
                // A `break` may leave the block early, so only facts untouched by it survive.
                known.retain(|var, _| !written.contains(var));
                out.push(Stmt::Block { label, body });
            }
            Stmt::Return(values) => out.push(Stmt::Return(
                values
                    .into_iter()
                    .map(|v| match v {
                        crate::ir::Operand::Scalar(e) => crate::ir::Operand::Scalar(fold_expr(&e, known)),
                        other => other,
                    })
                    .collect(),
            )),
            Stmt::Call { func, args, results } => {
                for result in &results {
                    known.remove(result);
                }
                out.push(Stmt::Call { func, args, results });
            }
            other => out.push(other),
        }
    }
    flatten_unlabelled(out)
}

/// Splices the bodies of blocks created for folded `if`s (label `u32::MAX`, never targeted).
fn flatten_unlabelled(block: Vec<Stmt>) -> Vec<Stmt> {
    let mut out = Vec::with_capacity(block.len());
    for stmt in block {
        match stmt {
            Stmt::Block { label, body } if label.0 == u32::MAX => out.extend(body),
            other => out.push(other),
        }
    }
    out
}

pub fn fold_expr(expr: &Expr, known: &Known) -> Expr {
    let substituted = map_expr(expr, &|e| match e {
        Expr::Var(var) => known.get(var).map(|value| Expr::Const(*value)),
        _ => None,
    });
    simplify(substituted)
}

/// Folds bottom-up: children first, then the node itself.
fn simplify(expr: Expr) -> Expr {
    let b = |e: Box<Expr>| Box::new(simplify(*e));
    match expr {
        Expr::Unary { op, arg } => {
            let arg = b(arg);
            // Operands the operation does not take are left for the verifier to report.
            match arg.as_const().map(|value| interp::unary(op, value)) {
                Some(Ok(value)) => Expr::Const(value),
                _ => match (op, *arg) {
                    (UnaryOp::Not, Expr::Unary { op: UnaryOp::Not, arg: inner }) => *inner,
                    (op, arg) => Expr::Unary { op, arg: Box::new(arg) },
                },
            }
        }
        Expr::Binary { op, lhs, rhs, span } => {
            let (lhs, rhs) = (b(lhs), b(rhs));
            if let (Some(x), Some(y)) = (lhs.as_const(), rhs.as_const()) {
                if let Ok(value) = interp::binary(op, x, y) {
                    return Expr::Const(value);
                }
            }
            Expr::Binary { op, lhs, rhs, span }
        }
        Expr::Compare { op, lhs, rhs } => {
            let (lhs, rhs) = (b(lhs), b(rhs));
            match (lhs.as_const(), rhs.as_const()) {
                (Some(x), Some(y)) => match interp::compare(op, x, y) {
                    Ok(value) => Expr::Const(Scalar::Bool(value)),
                    Err(_) => Expr::Compare { op, lhs, rhs },
                },
                _ => Expr::Compare { op, lhs, rhs },
            }
        }
        Expr::And(a, c) => {
            let a = b(a);
            match a.as_const().and_then(Scalar::as_bool) {
                Some(false) => Expr::Const(Scalar::Bool(false)),
                Some(true) => simplify(*c),
                None => Expr::And(a, b(c)),
            }
        }
        Expr::Or(a, c) => {
            let a = b(a);
            match a.as_const().and_then(Scalar::as_bool) {
                Some(true) => Expr::Const(Scalar::Bool(true)),
                Some(false) => simplify(*c),
                None => Expr::Or(a, b(c)),
            }
        }
        Expr::IfElse { cond, then, orelse } => {
            let cond = b(cond);
            match cond.as_const().and_then(Scalar::as_bool) {
                Some(true) => simplify(*then),
                Some(false) => simplify(*orelse),
                None => Expr::IfElse { cond, then: b(then), orelse: b(orelse) },
            }
        }
        Expr::Select { cond, then, orelse } => {
            let (cond, then, orelse) = (b(cond), b(then), b(orelse));
            match cond.as_const().and_then(Scalar::as_bool) {
                Some(true) => *then,
                Some(false) => *orelse,
                None => Expr::Select { cond, then, orelse },
            }
        }
        Expr::Cast { to, arg } => {
            let arg = b(arg);
            match arg.as_const() {
                Some(value) => Expr::Const(interp::cast(to, value)),
                None => Expr::Cast { to, arg },
            }
        }
        Expr::CheckIndex { index, len, span } => {
            let index = b(index);
            match index.as_const().and_then(Scalar::as_int) {
                Some(value) if (0..i128::from(len)).contains(&value) => Expr::i64(value),
                _ => Expr::CheckIndex { index, len, span },
            }
        }
        Expr::Load { array, offset } => Expr::Load { array, offset: b(offset) },
        other => other,
    }
}
