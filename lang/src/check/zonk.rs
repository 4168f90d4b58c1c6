//! The final pass over a checked body: replaces inference variables with their resolved
//! (or default) types and checks that every literal left in the tree fits its type.

use super::infer::Infer;
use crate::ast::{Arg, Expr, ExprKind, Stmt, StmtKind};
use crate::diagnostics::{Code, Diagnostic};
use crate::types::Type;

pub fn zonk_block(infer: &Infer, block: &mut [Stmt<Type>], problems: &mut Vec<Diagnostic>) {
    for stmt in block {
        zonk_stmt(infer, stmt, problems);
    }
}

fn zonk_stmt(infer: &Infer, stmt: &mut Stmt<Type>, problems: &mut Vec<Diagnostic>) {
    match &mut stmt.kind {
        StmtKind::Expr(e) => zonk_expr(infer, e, problems),
        StmtKind::Assign { target, value } | StmtKind::AugAssign { target, value, .. } => {
            zonk_expr(infer, target, problems);
            zonk_expr(infer, value, problems);
        }
        StmtKind::AnnAssign { value, .. } => {
            if let Some(value) = value {
                zonk_expr(infer, value, problems);
            }
        }
        StmtKind::If { branches, orelse } => {
            for (cond, body) in branches {
                zonk_expr(infer, cond, problems);
                zonk_block(infer, body, problems);
            }
            if let Some(orelse) = orelse {
                zonk_block(infer, orelse, problems);
            }
        }
        StmtKind::For { iter, body, .. } => {
            zonk_expr(infer, iter, problems);
            zonk_block(infer, body, problems);
        }
        StmtKind::While { cond, body } => {
            zonk_expr(infer, cond, problems);
            zonk_block(infer, body, problems);
        }
        StmtKind::Return(Some(value)) => zonk_expr(infer, value, problems),
        StmtKind::Return(None) | StmtKind::Break | StmtKind::Continue | StmtKind::Pass => {}
    }
}

pub fn zonk_expr(infer: &Infer, expr: &mut Expr<Type>, problems: &mut Vec<Diagnostic>) {
    expr.ty = infer.finalize(&expr.ty);
    match &mut expr.kind {
        ExprKind::Int(value) => {
            if let Type::Int(ty) = &expr.ty {
                if !ty.contains(*value) {
                    problems.push(
                        Diagnostic::error(
                            Code::E0205,
                            format!("literal `{value}` does not fit in `{}`", ty.name()),
                            expr.span,
                            format!("`{}` holds {}..={}", ty.name(), ty.min_value(), ty.max_value()),
                        )
                        .with_help("use a wider type, or convert explicitly where wrap-around is intended"),
                    );
                }
            }
        }
        ExprKind::Float(value) => {
            if let Type::Float(ty) = &expr.ty {
                let rounded = crate::ops::float_round(*ty, *value);
                if !rounded.is_finite() {
                    problems.push(Diagnostic::error(
                        Code::E0205,
                        format!("literal `{value:?}` is out of range for `{}`", ty.name()),
                        expr.span,
                        "too large",
                    ));
                }
                *value = rounded;
            }
        }
        ExprKind::Bool(_) | ExprKind::Name(_) | ExprKind::Const(_) => {}
        ExprKind::Unary(_, operand) | ExprKind::Field(operand, _) => zonk_expr(infer, operand, problems),
        ExprKind::Binary(_, a, b) | ExprKind::Compare(_, a, b) | ExprKind::Logic(_, a, b) | ExprKind::Index(a, b) => {
            zonk_expr(infer, a, problems);
            zonk_expr(infer, b, problems);
        }
        ExprKind::IfElse { cond, then, orelse } => {
            zonk_expr(infer, cond, problems);
            zonk_expr(infer, then, problems);
            zonk_expr(infer, orelse, problems);
        }
        ExprKind::Call { func, args } if func.name == "range" => {
            // `range(start, stop, step)` bounds are plain numbers; the values the loop variable
            // takes were range-checked by the statement checker.
            for arg in args {
                let (Arg::Positional(value) | Arg::Keyword(_, value)) = arg;
                value.ty = infer.finalize(&value.ty);
            }
        }
        ExprKind::Call { args, .. } => {
            for arg in args {
                match arg {
                    Arg::Positional(value) | Arg::Keyword(_, value) => zonk_expr(infer, value, problems),
                }
            }
        }
        ExprKind::Tuple(items) | ExprKind::Array(items) => {
            for item in items {
                zonk_expr(infer, item, problems);
            }
        }
    }
}
