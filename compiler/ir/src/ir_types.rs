//! Queries over IR expressions: their type and the variables they read.

use std::collections::HashSet;

use naas_lang::types::IntTy;

use crate::ir::{Expr, Function, ScalarTy, UnaryOp, Var};

/// The type of an expression (its operands are assumed well typed; the verifier checks that).
pub fn expr_ty(f: &Function, expr: &Expr) -> ScalarTy {
    match expr {
        Expr::Const(value) => value.ty(),
        Expr::Var(var) | Expr::Load { array: var, .. } => f.var_ty(*var).scalar(),
        Expr::Unary { op: UnaryOp::Not, .. } | Expr::Compare { .. } | Expr::And(..) | Expr::Or(..) => ScalarTy::Bool,
        Expr::Unary { arg, .. } => expr_ty(f, arg),
        Expr::Binary { lhs, .. } => expr_ty(f, lhs),
        Expr::IfElse { then, .. } | Expr::Select { then, .. } => expr_ty(f, then),
        Expr::Cast { to, .. } => *to,
        Expr::CheckIndex { .. } => ScalarTy::Int(IntTy::I64),
    }
}

/// Every variable an expression reads (array variables included).
pub fn expr_reads(expr: &Expr) -> HashSet<Var> {
    let mut out = HashSet::new();
    visit_reads(expr, &mut |var| {
        out.insert(var);
    });
    out
}

pub fn visit_reads(expr: &Expr, visit: &mut impl FnMut(Var)) {
    match expr {
        Expr::Const(_) => {}
        Expr::Var(var) => visit(*var),
        Expr::Load { array, offset } => {
            visit(*array);
            visit_reads(offset, visit);
        }
        Expr::Unary { arg, .. } | Expr::Cast { arg, .. } | Expr::CheckIndex { index: arg, .. } => {
            visit_reads(arg, visit)
        }
        Expr::Binary { lhs, rhs, .. } | Expr::Compare { lhs, rhs, .. } | Expr::And(lhs, rhs) | Expr::Or(lhs, rhs) => {
            visit_reads(lhs, visit);
            visit_reads(rhs, visit);
        }
        Expr::IfElse { cond, then, orelse } | Expr::Select { cond, then, orelse } => {
            visit_reads(cond, visit);
            visit_reads(then, visit);
            visit_reads(orelse, visit);
        }
    }
}

/// True when evaluating the expression can fault.
pub fn can_fault(expr: &Expr) -> bool {
    match expr {
        Expr::Const(_) | Expr::Var(_) => false,
        Expr::CheckIndex { .. } => true,
        Expr::Binary { op, lhs, rhs, .. } => op.can_fault() || can_fault(lhs) || can_fault(rhs),
        Expr::Load { offset: a, .. } | Expr::Unary { arg: a, .. } | Expr::Cast { arg: a, .. } => can_fault(a),
        Expr::Compare { lhs, rhs, .. } | Expr::And(lhs, rhs) | Expr::Or(lhs, rhs) => can_fault(lhs) || can_fault(rhs),
        Expr::IfElse { cond, then, orelse } | Expr::Select { cond, then, orelse } => {
            can_fault(cond) || can_fault(then) || can_fault(orelse)
        }
    }
}

/// The number of statements in a block, nested ones included.
pub fn statement_count(block: &[crate::ir::Stmt]) -> usize {
    let mut count = 0;
    crate::visit::for_each_stmt(block, &mut |_| count += 1);
    count
}
