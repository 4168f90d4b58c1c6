//! Rewriting helpers shared by the passes: substitution of variables and labels.

use std::collections::HashMap;

use crate::ir::{Expr, Label, Operand, Stmt, Var};
use crate::visit::{for_each_stmt, for_each_stmt_mut};

/// Renames variables and labels throughout a block (used when copying code).
pub struct Renamer<'a> {
    pub vars: &'a HashMap<Var, Var>,
    pub labels: &'a HashMap<Label, Label>,
}

impl Renamer<'_> {
    pub fn var(&self, var: Var) -> Var {
        self.vars.get(&var).copied().unwrap_or(var)
    }

    pub fn label(&self, label: Label) -> Label {
        self.labels.get(&label).copied().unwrap_or(label)
    }

    pub fn block(&self, block: &[Stmt]) -> Vec<Stmt> {
        let mut copy = block.to_vec();
        for_each_stmt_mut(&mut copy, &mut |stmt| self.rename(stmt));
        copy
    }

    /// Renames what `stmt` itself mentions; its nested blocks are reached by the traversal.
    fn rename(&self, stmt: &mut Stmt) {
        match stmt {
            Stmt::Assign { dst, value } | Stmt::FillArray { dst, value } => {
                *dst = self.var(*dst);
                *value = self.expr(value);
            }
            Stmt::Store { array, offset, value } => {
                *array = self.var(*array);
                *offset = self.expr(offset);
                *value = self.expr(value);
            }
            Stmt::CopyArray { dst, src } => {
                *dst = self.var(*dst);
                *src = self.var(*src);
            }
            Stmt::If { cond, .. } => *cond = self.expr(cond),
            Stmt::Loop { label, counter, .. } => {
                *label = self.label(*label);
                *counter = self.var(*counter);
            }
            Stmt::Block { label, .. } | Stmt::Break(label) | Stmt::Continue(label) => *label = self.label(*label),
            Stmt::Return(values) => values.iter_mut().for_each(|value| *value = self.operand(value)),
            Stmt::Call { args, results, .. } => {
                args.iter_mut().for_each(|arg| *arg = self.operand(arg));
                results.iter_mut().for_each(|result| *result = self.var(*result));
            }
        }
    }

    pub fn operand(&self, operand: &Operand) -> Operand {
        match operand {
            Operand::Scalar(expr) => Operand::Scalar(self.expr(expr)),
            Operand::Array(var) => Operand::Array(self.var(*var)),
        }
    }

    pub fn expr(&self, expr: &Expr) -> Expr {
        map_expr(expr, &|e| match e {
            Expr::Var(var) => Some(Expr::Var(self.var(*var))),
            Expr::Load { array, offset } => {
                Some(Expr::Load { array: self.var(*array), offset: Box::new(self.expr(offset)) })
            }
            _ => None,
        })
    }
}

/// Rebuilds an expression bottom-up, letting `f` replace any node (returning `Some`) before
/// its children are visited.
pub fn map_expr(expr: &Expr, f: &dyn Fn(&Expr) -> Option<Expr>) -> Expr {
    if let Some(replaced) = f(expr) {
        return replaced;
    }
    let m = |e: &Expr| Box::new(map_expr(e, f));
    match expr {
        Expr::Const(_) | Expr::Var(_) => expr.clone(),
        Expr::Load { array, offset } => Expr::Load { array: *array, offset: m(offset) },
        Expr::Unary { op, arg } => Expr::Unary { op: *op, arg: m(arg) },
        Expr::Binary { op, lhs, rhs, span } => Expr::Binary { op: *op, lhs: m(lhs), rhs: m(rhs), span: *span },
        Expr::Compare { op, lhs, rhs } => Expr::Compare { op: *op, lhs: m(lhs), rhs: m(rhs) },
        Expr::And(a, b) => Expr::And(m(a), m(b)),
        Expr::Or(a, b) => Expr::Or(m(a), m(b)),
        Expr::IfElse { cond, then, orelse } => Expr::IfElse { cond: m(cond), then: m(then), orelse: m(orelse) },
        Expr::Select { cond, then, orelse } => Expr::Select { cond: m(cond), then: m(then), orelse: m(orelse) },
        Expr::Cast { to, arg } => Expr::Cast { to: *to, arg: m(arg) },
        Expr::CheckIndex { index, len, span } => Expr::CheckIndex { index: m(index), len: *len, span: *span },
    }
}

/// Every scalar or array variable a block may write.
pub fn written_vars(block: &[Stmt], out: &mut std::collections::HashSet<Var>) {
    for_each_stmt(block, &mut |stmt| match stmt {
        Stmt::Assign { dst, .. } | Stmt::CopyArray { dst, .. } | Stmt::FillArray { dst, .. } => {
            out.insert(*dst);
        }
        Stmt::Store { array, .. } => {
            out.insert(*array);
        }
        Stmt::Loop { counter, .. } => {
            out.insert(*counter);
        }
        Stmt::Call { results, .. } => out.extend(results.iter().copied()),
        Stmt::If { .. } | Stmt::Block { .. } | Stmt::Break(_) | Stmt::Continue(_) | Stmt::Return(_) => {}
    });
}
