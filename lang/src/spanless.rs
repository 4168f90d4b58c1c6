//! Comparing syntax trees modulo source positions: [`erase_spans`] sets every span in a
//! module to the empty span at 0, so that trees parsed from different texts compare equal
//! when they have the same structure.

use crate::ast::{AggItem, Arg, Block, Expr, ExprKind, Ident, Item, Module, Stmt, StmtKind, TypeExpr, TypeExprKind};
use crate::span::Span;

pub fn erase_spans(module: &mut Module) {
    for item in &mut module.items {
        match item {
            Item::Const(def) => {
                def.span = Span::default();
                ident(&mut def.name);
                if let Some(ty) = &mut def.ty {
                    type_expr(ty);
                }
                expr(&mut def.value);
            }
            Item::Class(def) => {
                def.span = Span::default();
                ident(&mut def.name);
                for field in &mut def.fields {
                    ident(&mut field.name);
                    type_expr(&mut field.ty);
                }
            }
            Item::Function(def) => function(def),
            Item::Aggregate(def) => {
                def.span = Span::default();
                ident(&mut def.name);
                params(&mut def.params);
                if let Some(ty) = &mut def.ret {
                    type_expr(ty);
                }
                for entry in &mut def.body {
                    match entry {
                        AggItem::Def(part) => function(part),
                        AggItem::Stmt(s) => stmt(s),
                    }
                }
            }
        }
    }
}

fn function(def: &mut crate::ast::FunctionDef) {
    def.span = Span::default();
    ident(&mut def.name);
    params(&mut def.params);
    if let Some(ty) = &mut def.ret {
        type_expr(ty);
    }
    block(&mut def.body);
}

fn params(params: &mut [crate::ast::Param]) {
    for param in params {
        ident(&mut param.name);
        if let Some(ty) = &mut param.ty {
            type_expr(ty);
        }
    }
}

fn ident(ident: &mut Ident) {
    ident.span = Span::default();
}

fn type_expr(ty: &mut TypeExpr) {
    ty.span = Span::default();
    match &mut ty.kind {
        TypeExprKind::Named(name) => ident(name),
        TypeExprKind::Apply { head, args } => {
            ident(head);
            args.iter_mut().for_each(expr);
        }
    }
}

fn block(block: &mut Block) {
    block.iter_mut().for_each(stmt);
}

fn stmt(stmt: &mut Stmt) {
    stmt.span = Span::default();
    match &mut stmt.kind {
        StmtKind::Expr(e) | StmtKind::Return(Some(e)) => expr(e),
        StmtKind::Assign { target, value } | StmtKind::AugAssign { target, value, .. } => {
            expr(target);
            expr(value);
        }
        StmtKind::AnnAssign { target, ty, value } => {
            ident(target);
            type_expr(ty);
            if let Some(value) = value {
                expr(value);
            }
        }
        StmtKind::If { branches, orelse } => {
            for (cond, body) in branches {
                expr(cond);
                block(body);
            }
            if let Some(orelse) = orelse {
                block(orelse);
            }
        }
        StmtKind::For { var, iter, body } => {
            ident(var);
            expr(iter);
            block(body);
        }
        StmtKind::While { cond, body } => {
            expr(cond);
            block(body);
        }
        StmtKind::Return(None) | StmtKind::Break | StmtKind::Continue | StmtKind::Pass => {}
    }
}

fn expr(e: &mut Expr) {
    e.span = Span::default();
    match &mut e.kind {
        ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Bool(_) | ExprKind::Name(_) | ExprKind::Const(_) => {}
        ExprKind::Unary(_, a) => expr(a),
        ExprKind::Field(a, name) => {
            expr(a);
            ident(name);
        }
        ExprKind::Binary(_, a, b) | ExprKind::Compare(_, a, b) | ExprKind::Logic(_, a, b) | ExprKind::Index(a, b) => {
            expr(a);
            expr(b);
        }
        ExprKind::IfElse { cond, then, orelse } => {
            expr(cond);
            expr(then);
            expr(orelse);
        }
        ExprKind::Call { func, args } => {
            ident(func);
            for arg in args {
                match arg {
                    Arg::Positional(value) => expr(value),
                    Arg::Keyword(name, value) => {
                        ident(name);
                        expr(value);
                    }
                }
            }
        }
        ExprKind::Tuple(items) | ExprKind::Array(items) => items.iter_mut().for_each(expr),
    }
}
