//! Type checking of statements and function bodies, with definite-assignment analysis
//! (E0104), missing-return detection (E0209) and the loop rules (E0301, E0303, E0306-E0308).

use super::builtins;
use super::env::{reserved_name, Env, ItemKind};
use super::expr::{Checked, FnChecker};
use super::{Function, LocalKind};
use crate::ast::{Arg, Block, Expr, ExprKind, FunctionDef, Ident, Stmt, StmtKind, TypeExpr};
use crate::diagnostics::{Code, Diagnostic};
use crate::span::Span;
use crate::types::{Type, VarKind};

/// Checks a module-level `def` (or, with `expected`, an aggregate part whose signature the
/// caller already resolved). Returns the function and the module functions it calls.
pub fn check_function(
    env: &Env,
    def: &FunctionDef,
    expected: Option<(Vec<(String, Type)>, Type)>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<(Function, Vec<(String, Span)>)> {
    let (params, ret) = match expected {
        Some(signature) => signature,
        None => match env.function(&def.name.name) {
            Some(signature) => (signature.params.clone(), signature.ret.clone()),
            // A duplicate or reserved name: its first definition is checked, this one is not.
            None => return None,
        },
    };
    let param_idents: Vec<&Ident> = def.params.iter().map(|p| &p.name).collect();
    check_body(env, &def.name.name, def.span, &param_idents, params, ret, def.ret.as_ref(), &def.body, diagnostics)
}

#[allow(clippy::too_many_arguments, reason = "the pieces of one signature, kept apart for aggregate parts")]
pub fn check_body(
    env: &Env,
    name: &str,
    span: Span,
    param_idents: &[&Ident],
    params: Vec<(String, Type)>,
    ret: Type,
    ret_expr: Option<&TypeExpr>,
    body: &Block,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<(Function, Vec<(String, Span)>)> {
    let mut checker = FnChecker::new(env, diagnostics, ret.clone(), ret_expr.map(|ty| ty.span));
    for (ident, (_, ty)) in param_idents.iter().zip(params) {
        if checker.names.contains_key(&ident.name) {
            checker.error(Diagnostic::error(
                Code::E0102,
                format!("parameter `{}` is declared twice", ident.name),
                ident.span,
                "repeated parameter",
            ));
            continue;
        }
        // A badly named parameter is reported but still declared, so that its uses in the
        // body do not cascade into more errors.
        checker.local_name_allowed(ident);
        let id = checker.declare(&ident.name, ty, LocalKind::Param, ident.span);
        checker.mark_assigned(id);
    }
    let param_count = checker.locals.len();
    let mut body = checker.block(body);
    if checker.flow.is_some() && !ret.is_error() {
        checker.error(
            Diagnostic::error(
                Code::E0209,
                format!("`{name}` may reach its end without returning a value"),
                span,
                format!("declared to return `{ret}`"),
            )
            .with_help("end every path with `return <value>`"),
        );
    }
    let fits = checker.take_fits();
    let super::expr::CheckerParts { infer, mut locals, calls, diagnostics } = checker.into_parts();
    let mut problems = Vec::new();
    super::zonk::zonk_block(&infer, &mut body, &mut problems);
    for local in &mut locals {
        local.ty = infer.finalize(&local.ty);
    }
    for (span, value, ty) in fits {
        if let Type::Int(int) = infer.finalize(&ty) {
            if !int.contains(value) {
                problems.push(
                    Diagnostic::error(
                        Code::E0205,
                        format!("the loop variable takes the value {value}, which does not fit in `{}`", int.name()),
                        span,
                        format!("`{}` holds {}..={}", int.name(), int.min_value(), int.max_value()),
                    )
                    .with_help("give the loop variable a wider type through its uses"),
                );
            }
        }
    }
    diagnostics.extend(problems);
    let function = Function { name: name.to_string(), span, params: param_count, ret, locals, body };
    Some((function, calls))
}

impl FnChecker<'_> {
    pub fn block(&mut self, stmts: &[Stmt]) -> Block<Type> {
        stmts.iter().map(|stmt| self.stmt(stmt)).collect()
    }

    fn stmt(&mut self, stmt: &Stmt) -> Stmt<Type> {
        let span = stmt.span;
        let kind = match &stmt.kind {
            StmtKind::Expr(e) => {
                let checked = self.expr(e);
                self.error(
                    Diagnostic::error(Code::E0210, "this expression's value is unused", e.span, "value discarded")
                        .with_help(
                            "naas functions are pure, so a statement must assign or return; did you mean `x = ...`?",
                        ),
                );
                StmtKind::Expr(checked.expr)
            }
            StmtKind::Assign { target, value } => {
                let value = self.expr(value);
                let target = self.assign_target(target, value.ty(), value.expr.span);
                StmtKind::Assign { target, value: value.expr }
            }
            StmtKind::AnnAssign { target, ty, value } => self.ann_assign(target, ty, value.as_ref(), span),
            StmtKind::AugAssign { target, op, value } => {
                let value = self.expr(value);
                let place = self.place(target, false);
                let result = self.binary_type(*op, place.ty(), value.ty(), place.expr.span, value.expr.span, span);
                if !result.is_error() {
                    self.expect(&result, &place.expr.ty.clone(), value.expr.span, "the updated variable");
                }
                StmtKind::AugAssign { target: place.expr, op: *op, value: value.expr }
            }
            StmtKind::If { branches, orelse } => {
                let before = self.flow.clone();
                let mut outcomes = Vec::new();
                let mut typed_branches = Vec::new();
                for (cond, body) in branches {
                    self.flow = before.clone();
                    let cond = self.expr(cond);
                    self.expect(cond.ty(), &Type::Bool, cond.expr.span, "an `if` condition");
                    let body = self.block(body);
                    outcomes.push(self.flow.take());
                    typed_branches.push((cond.expr, body));
                }
                self.flow = before.clone();
                let orelse = orelse.as_ref().map(|body| self.block(body));
                outcomes.push(self.flow.take());
                self.flow = meet(outcomes);
                StmtKind::If { branches: typed_branches, orelse }
            }
            StmtKind::For { var, iter, body } => self.for_loop(var, iter, body),
            StmtKind::While { cond, body } => {
                self.error(
                    Diagnostic::error(Code::E0301, "`while` loops are not allowed", span, "unbounded loop")
                        .with_help("iteration must be bounded: use `for i in range(N)` with a constant N, and `break`"),
                );
                let cond = self.expr(cond);
                let before = self.flow.clone();
                self.loop_depth += 1;
                let body = self.block(body);
                self.loop_depth -= 1;
                self.flow = before;
                StmtKind::While { cond: cond.expr, body }
            }
            StmtKind::Break | StmtKind::Continue => {
                if self.loop_depth == 0 {
                    let word = if matches!(stmt.kind, StmtKind::Break) { "break" } else { "continue" };
                    self.error(Diagnostic::error(
                        Code::E0306,
                        format!("`{word}` outside a loop"),
                        span,
                        "not inside `for`",
                    ));
                }
                self.flow = None;
                if matches!(stmt.kind, StmtKind::Break) {
                    StmtKind::Break
                } else {
                    StmtKind::Continue
                }
            }
            StmtKind::Return(value) => {
                let ret = self.ret.clone();
                let value = match value {
                    Some(value) => {
                        let checked = self.expr(value);
                        self.expect_return(&checked, &ret);
                        Some(checked.expr)
                    }
                    None => {
                        if !ret.is_error() {
                            self.error(
                                Diagnostic::error(
                                    Code::E0201,
                                    "`return` without a value",
                                    span,
                                    format!("expected `{ret}`"),
                                )
                                .with_help("naas functions always return a value"),
                            );
                        }
                        None
                    }
                };
                self.flow = None;
                StmtKind::Return(value)
            }
            StmtKind::Pass => StmtKind::Pass,
        };
        Stmt { kind, span }
    }

    fn expect_return(&mut self, value: &Checked, ret: &Type) {
        if self.infer.unify(value.ty(), ret).is_ok() {
            return;
        }
        let found = self.infer.display(value.ty());
        let mut diagnostic = Diagnostic::error(
            Code::E0201,
            format!("mismatched types: expected `{ret}`, found `{found}`"),
            value.expr.span,
            format!("this is `{found}`"),
        );
        if let Some(ret_span) = self.ret_span {
            diagnostic = diagnostic.with_label(ret_span, format!("expected `{ret}` because of this return type"));
        }
        if matches!(
            (&self.infer.shallow(value.ty()), ret),
            (Type::Int(_) | Type::Float(_) | Type::Var(..), Type::Int(_) | Type::Float(_))
        ) {
            diagnostic = diagnostic.with_help(format!("convert explicitly, e.g. `{ret}(...)`"));
        }
        self.error(diagnostic);
    }

    /// Reports names a local may not take: built-ins and module items.
    pub fn local_name_allowed(&mut self, ident: &Ident) -> bool {
        if builtins::is_reserved(&ident.name) {
            self.error(reserved_name(&ident.name, ident.span));
            return false;
        }
        if let Some((kind, defined)) = self.env.item(&ident.name) {
            let code = if kind == ItemKind::Const { Code::E0208 } else { Code::E0102 };
            self.error(
                Diagnostic::error(
                    code,
                    format!("`{}` is already {} of this module", ident.name, kind.describe()),
                    ident.span,
                    "cannot be used as a local name",
                )
                .with_label(defined, "defined here")
                .with_help("choose another name for the local variable"),
            );
            return false;
        }
        true
    }

    fn ann_assign(&mut self, target: &Ident, ty: &TypeExpr, value: Option<&Expr>, span: Span) -> StmtKind<Type> {
        let env = self.env;
        let declared = env.resolve_type(ty, self.diagnostics_handle());
        let Some(value) = value else {
            self.error(
                Diagnostic::error(
                    Code::E0213,
                    format!("`{}` is declared without a value", target.name),
                    span,
                    "needs `= value`",
                )
                .with_help(format!("give it an initial value, e.g. `{}: {} = ...`", target.name, declared)),
            );
            return StmtKind::AnnAssign { target: target.clone(), ty: ty.clone(), value: None };
        };
        let checked = self.expr(value);
        self.expect(checked.ty(), &declared, checked.expr.span, &format!("`{}`", target.name));
        match self.names.get(&target.name).copied() {
            Some(id) => {
                let existing = self.locals[id].ty.clone();
                if self.locals[id].kind == LocalKind::LoopVar {
                    self.error(loop_var_assignment(&target.name, target.span));
                } else if self.infer.unify(&existing, &declared).is_err() {
                    let shown = self.infer.display(&existing);
                    self.error(
                        Diagnostic::error(
                            Code::E0201,
                            format!("`{}` is redeclared with a different type", target.name),
                            ty.span,
                            format!("declared as `{declared}` here"),
                        )
                        .with_label(self.locals[id].span, format!("first declared as `{shown}` here"))
                        .with_help("a variable keeps one type in the whole function; use a new name"),
                    );
                }
                self.mark_assigned(id);
            }
            None => {
                if self.local_name_allowed(target) {
                    let id = self.declare(&target.name, declared, LocalKind::Var, target.span);
                    self.mark_assigned(id);
                }
            }
        }
        StmtKind::AnnAssign { target: target.clone(), ty: ty.clone(), value: Some(checked.expr) }
    }

    /// Checks an assignment target against the assigned value's type, declaring new locals.
    fn assign_target(&mut self, target: &Expr, ty: &Type, value_span: Span) -> Expr<Type> {
        match &target.kind {
            ExprKind::Name(name) => {
                if let Some(id) = self.names.get(name).copied() {
                    if self.locals[id].kind == LocalKind::LoopVar {
                        self.error(loop_var_assignment(name, target.span));
                    } else {
                        let existing = self.locals[id].ty.clone();
                        self.expect(ty, &existing, value_span, &format!("`{name}`"));
                    }
                    self.mark_assigned(id);
                    return Expr {
                        kind: ExprKind::Name(name.clone()),
                        span: target.span,
                        ty: self.locals[id].ty.clone(),
                    };
                }
                let ident = Ident { name: name.clone(), span: target.span };
                if self.local_name_allowed(&ident) {
                    let id = self.declare(name, ty.clone(), LocalKind::Var, target.span);
                    self.mark_assigned(id);
                }
                Expr { kind: ExprKind::Name(name.clone()), span: target.span, ty: ty.clone() }
            }
            ExprKind::Tuple(targets) => {
                let items = match self.infer.shallow(ty) {
                    Type::Tuple(items) if items.len() == targets.len() => items,
                    Type::Error => vec![Type::Error; targets.len()],
                    other => {
                        let shown = self.infer.display(&other);
                        self.error(Diagnostic::error(
                            Code::E0201,
                            format!("cannot unpack `{shown}` into {} targets", targets.len()),
                            value_span,
                            "value has a different shape",
                        ));
                        vec![Type::Error; targets.len()]
                    }
                };
                let typed: Vec<Expr<Type>> = targets
                    .iter()
                    .zip(&items)
                    .map(|(target, item)| self.assign_target(target, item, value_span))
                    .collect();
                Expr { kind: ExprKind::Tuple(typed), span: target.span, ty: Type::Tuple(items) }
            }
            ExprKind::Index(..) | ExprKind::Field(..) => {
                let place = self.place(target, true);
                self.expect(ty, &place.expr.ty.clone(), value_span, "this element");
                place.expr
            }
            _ => {
                self.error(
                    Diagnostic::error(
                        Code::E0208,
                        "cannot assign to this expression",
                        target.span,
                        "not a variable or element",
                    )
                    .with_help("assign to a variable, an element `a[i]` or a field `r.f`"),
                );
                Checked::error(target.span).expr
            }
        }
    }

    /// Checks a place (`x`, `a[i]`, `r.f`, nested) that is updated in place.
    fn place(&mut self, target: &Expr, element_only: bool) -> Checked {
        let mut root = target;
        while let ExprKind::Index(base, _) | ExprKind::Field(base, _) = &root.kind {
            root = base;
        }
        let ExprKind::Name(name) = &root.kind else {
            self.error(Diagnostic::error(
                Code::E0208,
                "cannot assign to this expression",
                target.span,
                "not a variable",
            ));
            return Checked::error(target.span);
        };
        match self.names.get(name).map(|&id| self.locals[id].kind) {
            Some(LocalKind::LoopVar) => self.error(loop_var_assignment(name, root.span)),
            Some(_) => {}
            None if !element_only => {}
            None => {
                if self.env.item(name).is_some() || builtins::constant(name).is_some() {
                    self.error(Diagnostic::error(
                        Code::E0208,
                        format!("cannot assign into `{name}`: it is not a local variable"),
                        root.span,
                        "constants are immutable",
                    ));
                    return Checked::error(target.span);
                }
            }
        }
        if !element_only
            && !self.names.contains_key(name)
            && (self.env.item(name).is_some() || builtins::constant(name).is_some())
        {
            self.error(Diagnostic::error(
                Code::E0208,
                format!("cannot assign to `{name}`: it is not a local variable"),
                root.span,
                "constants are immutable",
            ));
        }
        self.expr(target)
    }

    fn for_loop(&mut self, var: &Ident, iter: &Expr, body: &Block) -> StmtKind<Type> {
        if self.active_loops.contains(&var.name) {
            self.error(
                Diagnostic::error(
                    Code::E0208,
                    format!("`{}` is already the variable of an enclosing loop", var.name),
                    var.span,
                    "reused loop variable",
                )
                .with_help("give the inner loop's variable another name"),
            );
        }
        let var_ty = self.infer.fresh(VarKind::Int);
        let typed_iter = match &iter.kind {
            ExprKind::Call { func, args } if func.name == "range" => {
                let typed = self.range(func, args, iter.span, &var_ty);
                self.bind_loop_var(var, var_ty.clone());
                typed
            }
            _ => {
                let checked = self.expr(iter);
                match self.infer.shallow(checked.ty()) {
                    Type::Array(elem, _) => {
                        self.bind_loop_var(var, *elem);
                        checked.expr
                    }
                    Type::Error => {
                        self.bind_loop_var(var, Type::Error);
                        checked.expr
                    }
                    other => {
                        let shown = self.infer.display(&other);
                        self.error(
                            Diagnostic::error(
                                Code::E0308,
                                format!("cannot iterate over `{shown}`"),
                                iter.span,
                                "not `range(...)` or an array",
                            )
                            .with_help("loop over `range(N)` with a constant N, or over an array"),
                        );
                        self.bind_loop_var(var, Type::Error);
                        checked.expr
                    }
                }
            }
        };
        let before = self.flow.clone();
        if let Some(&id) = self.names.get(&var.name) {
            self.mark_assigned(id);
        }
        self.loop_depth += 1;
        self.active_loops.push(var.name.clone());
        let body = self.block(body);
        self.active_loops.pop();
        self.loop_depth -= 1;
        self.flow = before;
        // The loop variable exists only inside the loop body.
        if let (Some(flow), Some(&id)) = (&mut self.flow, self.names.get(&var.name)) {
            if let Some(slot) = flow.get_mut(id) {
                *slot = false;
            }
        }
        StmtKind::For { var: var.clone(), iter: typed_iter, body }
    }

    /// Declares (or reuses) the loop variable `var` with type `ty`.
    fn bind_loop_var(&mut self, var: &Ident, ty: Type) {
        match self.names.get(&var.name).copied() {
            Some(id) if self.locals[id].kind == LocalKind::LoopVar => {
                let existing = self.locals[id].ty.clone();
                self.expect(&ty, &existing, var.span, &format!("loop variable `{}`", var.name));
            }
            Some(id) => {
                self.error(
                    Diagnostic::error(
                        Code::E0208,
                        format!("`{}` is already a variable and cannot also be a loop variable", var.name),
                        var.span,
                        "loop variable",
                    )
                    .with_label(self.locals[id].span, "assigned here")
                    .with_help("give the loop variable a fresh name"),
                );
            }
            None => {
                if self.local_name_allowed(var) {
                    self.declare(&var.name, ty, LocalKind::LoopVar, var.span);
                }
            }
        }
    }

    /// `range(stop)`, `range(start, stop)`, `range(start, stop, step)` with constant bounds.
    /// The typed iterable is always the three-argument form with literal bounds.
    fn range(&mut self, func: &Ident, args: &[Arg], span: Span, var_ty: &Type) -> Expr<Type> {
        let checked = self.positional_args("range", args);
        let error_expr = Checked::error(span).expr;
        if !(1..=3).contains(&checked.len()) {
            self.error(Diagnostic::error(
                Code::E0203,
                format!("`range` takes 1 to 3 arguments but {} were given", checked.len()),
                span,
                "wrong number of arguments",
            ));
            return error_expr;
        }
        for arg in &checked {
            if !self.infer.is_int(arg.ty()) && !arg.ty().is_error() {
                let shown = self.infer.display(arg.ty());
                self.error(Diagnostic::error(
                    Code::E0201,
                    format!("`range` bounds are integers, found `{shown}`"),
                    arg.expr.span,
                    "not an integer",
                ));
            }
        }
        // The bounds are independent of the loop variable's type: only the values the variable
        // takes must fit it (checked once types are final).
        let mut values = Vec::new();
        for (arg, checked) in args.iter().zip(&checked) {
            match self.const_int_of(checked, arg.value()) {
                Ok(value) => values.push(value),
                Err(_) => {
                    self.error(
                        Diagnostic::error(
                            Code::E0303,
                            "`range` bound is not a compile-time constant",
                            arg.value().span,
                            "not known at compile time",
                        )
                        .with_help("iteration must be bounded: use a constant bound and `break` out early when done"),
                    );
                    return error_expr;
                }
            }
        }
        let (start, stop, step) = match values.as_slice() {
            [stop] => (0, *stop, 1),
            [start, stop] => (*start, *stop, 1),
            [start, stop, step] => (*start, *stop, *step),
            _ => return error_expr,
        };
        if step == 0 {
            self.error(Diagnostic::error(Code::E0307, "`range` step is zero", span, "this loop would never end"));
            return error_expr;
        }
        let trips = trip_count(start, stop, step);
        if trips > 0 {
            // The last value lies between start and stop, so it fits an i128.
            let last = (start as u128).wrapping_add((step as u128).wrapping_mul(trips - 1)) as i128;
            self.fits.push((span, start, var_ty.clone()));
            self.fits.push((span, last, var_ty.clone()));
        }
        let literal = |value: i128| Arg::Positional(Expr { kind: ExprKind::Int(value), span, ty: var_ty.clone() });
        Expr {
            kind: ExprKind::Call { func: func.clone(), args: vec![literal(start), literal(stop), literal(step)] },
            span,
            ty: var_ty.clone(),
        }
    }
}

/// How many times `range(start, stop, step)` iterates (`step != 0`).
pub fn trip_count(start: i128, stop: i128, step: i128) -> u128 {
    // Computed in u128 on the distance, so no bound can overflow.
    let distance = |hi: i128, lo: i128| hi.abs_diff(lo);
    if step > 0 && stop > start {
        distance(stop, start).div_ceil(step.unsigned_abs())
    } else if step < 0 && start > stop {
        distance(start, stop).div_ceil(step.unsigned_abs())
    } else {
        0
    }
}

fn loop_var_assignment(name: &str, span: Span) -> Diagnostic {
    Diagnostic::error(Code::E0208, format!("cannot assign to loop variable `{name}`"), span, "assigned by the loop")
        .with_help("copy it into another variable first")
}

/// The definitely-assigned set after branches that fall through (`None` ones do not).
fn meet(outcomes: Vec<Option<Vec<bool>>>) -> Option<Vec<bool>> {
    let mut result: Option<Vec<bool>> = None;
    for outcome in outcomes.into_iter().flatten() {
        result = Some(match result {
            None => outcome,
            Some(acc) => {
                let len = acc.len().max(outcome.len());
                (0..len)
                    .map(|i| acc.get(i).copied().unwrap_or(false) && outcome.get(i).copied().unwrap_or(false))
                    .collect()
            }
        });
    }
    result
}

#[cfg(test)]
mod tests {
    use super::trip_count;

    #[test]
    fn trip_counts_match_python_ranges() {
        assert_eq!(trip_count(0, 10, 1), 10);
        assert_eq!(trip_count(0, 10, 3), 4);
        assert_eq!(trip_count(10, 0, -3), 4);
        assert_eq!(trip_count(5, 5, 1), 0);
        assert_eq!(trip_count(5, 0, 1), 0);
    }
}
