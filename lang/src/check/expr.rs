//! Type checking of expressions, with integer and float literals inferred from their uses
//! and constant subexpressions folded exactly (Go-style untyped constants).

use std::collections::{HashMap, HashSet};

use super::env::{ConstValue, Env, ItemKind, Untyped, MAX_ARRAY_LEN};
use super::infer::Infer;
use super::{builtins, Local, LocalId, LocalKind};
use crate::ast::{BinOp, CmpOp, Expr, ExprKind, UnOp};
use crate::diagnostics::{Code, Diagnostic};
use crate::span::Span;
use crate::types::{Type, VarKind};
use crate::value::Value;

/// A checked expression. `untyped` is set when the expression is an untyped constant: its
/// type is then a fresh literal variable and its value is known exactly.
pub struct Checked {
    pub expr: Expr<Type>,
    pub untyped: Option<Untyped>,
}

impl Checked {
    fn typed(kind: ExprKind<Type>, span: Span, ty: Type) -> Checked {
        Checked { expr: Expr { kind, span, ty }, untyped: None }
    }

    pub(super) fn error(span: Span) -> Checked {
        Checked::typed(ExprKind::Tuple(Vec::new()), span, Type::Error)
    }

    pub fn ty(&self) -> &Type {
        &self.expr.ty
    }
}

/// What a finished body check hands to the final pass.
pub struct CheckerParts<'a> {
    pub infer: Infer,
    pub locals: Vec<Local>,
    pub calls: Vec<(String, Span)>,
    pub diagnostics: &'a mut Vec<Diagnostic>,
}

/// Where aggregate calls (`sum(e)`, `count()`, ...) are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggMode {
    /// Ordinary code: aggregate calls are errors.
    Off,
    /// The return expression of a built-in aggregate: aggregate calls allowed, parameters not.
    Return,
    /// Inside an aggregate call's argument: parameters allowed, aggregate calls not.
    InsideCall,
}

/// Checks one function body (or one constant expression).
pub struct FnChecker<'a> {
    pub env: &'a Env,
    diagnostics: &'a mut Vec<Diagnostic>,
    errors_before: usize,
    pub infer: Infer,
    pub locals: Vec<Local>,
    pub names: HashMap<String, LocalId>,
    pub ret: Type,
    pub ret_span: Option<Span>,
    pub loop_depth: u32,
    pub agg: AggMode,
    /// Locals definitely assigned at this point; `None` where the code is unreachable.
    pub flow: Option<Vec<bool>>,
    reported_unassigned: HashSet<LocalId>,
    /// Explicit range checks done once types are final: (span, value, type).
    pub fits: Vec<(Span, i128, Type)>,
    /// Calls of module-level functions, for the call graph.
    pub calls: Vec<(String, Span)>,
    /// Aggregate calls checked so far (built-in aggregates need at least one).
    pub agg_calls: usize,
    /// `sum` calls whose argument's integer literal type was still open: the argument's type
    /// variable (also the call's result type) and the call's span, checked by
    /// `check_open_sums` once the declared result type has been unified.
    pub open_sums: Vec<(Type, Span)>,
    /// True while checking a `const` definition (no locals, evaluated at compile time).
    pub in_constant: bool,
    /// Variables of the enclosing `for` loops, innermost last.
    pub active_loops: Vec<String>,
}

impl<'a> FnChecker<'a> {
    pub fn new(env: &'a Env, diagnostics: &'a mut Vec<Diagnostic>, ret: Type, ret_span: Option<Span>) -> FnChecker<'a> {
        let errors_before = diagnostics.iter().filter(|d| d.is_error()).count();
        FnChecker {
            env,
            diagnostics,
            errors_before,
            infer: Infer::default(),
            locals: Vec::new(),
            names: HashMap::new(),
            ret,
            ret_span,
            loop_depth: 0,
            agg: AggMode::Off,
            flow: Some(Vec::new()),
            reported_unassigned: HashSet::new(),
            fits: Vec::new(),
            calls: Vec::new(),
            agg_calls: 0,
            open_sums: Vec::new(),
            in_constant: false,
            active_loops: Vec::new(),
        }
    }

    pub fn for_constant(env: &'a Env, diagnostics: &'a mut Vec<Diagnostic>) -> FnChecker<'a> {
        let mut checker = FnChecker::new(env, diagnostics, Type::Error, None);
        checker.in_constant = true;
        checker
    }

    pub fn error(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    pub fn diagnostics_handle(&mut self) -> &mut Vec<Diagnostic> {
        self.diagnostics
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().filter(|d| d.is_error()).count() > self.errors_before
    }

    /// Requires `found` to unify with `expected`; reports E0201 naming `context` otherwise.
    pub fn expect(&mut self, found: &Type, expected: &Type, span: Span, context: &str) -> bool {
        if self.infer.unify(found, expected).is_ok() {
            return true;
        }
        let (found, expected) = (self.infer.display(found), self.infer.display(expected));
        let mut diagnostic = Diagnostic::error(
            Code::E0201,
            format!("mismatched types: expected `{expected}`, found `{found}`"),
            span,
            format!("expected `{expected}` for {context}"),
        );
        diagnostic = match (&found, &expected) {
            (Type::Var(_, VarKind::Int), Type::Float(_)) => diagnostic.with_help("write a float literal such as `1.0`"),
            (Type::Int(_) | Type::Float(_) | Type::Var(..), Type::Int(_) | Type::Float(_)) => {
                diagnostic.with_help(format!("convert explicitly, e.g. `{expected}(...)`"))
            }
            _ => diagnostic,
        };
        self.error(diagnostic);
        false
    }

    /// Declares a local and returns its id.
    pub fn declare(&mut self, name: &str, ty: Type, kind: LocalKind, span: Span) -> LocalId {
        let id = self.locals.len();
        self.locals.push(Local { name: name.to_string(), ty, kind, span });
        self.names.insert(name.to_string(), id);
        id
    }

    pub fn mark_assigned(&mut self, id: LocalId) {
        if let Some(assigned) = &mut self.flow {
            if assigned.len() <= id {
                assigned.resize(id + 1, false);
            }
            assigned[id] = true;
        }
    }

    pub fn is_assigned(&self, id: LocalId) -> bool {
        match &self.flow {
            None => true,
            Some(assigned) => assigned.get(id).copied().unwrap_or(false),
        }
    }

    /// Resolves the types of a finished expression and checks that its literals fit them.
    pub fn finish_expr(&mut self, expr: &mut Expr<Type>) {
        let mut problems = Vec::new();
        super::zonk::zonk_expr(&self.infer, expr, &mut problems);
        self.diagnostics.extend(problems);
    }

    /// Takes the recorded explicit range checks, for the final pass over a function.
    pub fn take_fits(&mut self) -> Vec<(Span, i128, Type)> {
        std::mem::take(&mut self.fits)
    }

    pub fn into_parts(self) -> CheckerParts<'a> {
        CheckerParts { infer: self.infer, locals: self.locals, calls: self.calls, diagnostics: self.diagnostics }
    }

    pub fn expr(&mut self, e: &Expr) -> Checked {
        match &e.kind {
            ExprKind::Int(value) => self.untyped(Untyped::Int(*value), e.span),
            ExprKind::Float(value) => self.untyped(Untyped::Float(*value), e.span),
            ExprKind::Bool(value) => Checked::typed(ExprKind::Bool(*value), e.span, Type::Bool),
            ExprKind::Const(value) => Checked::typed(ExprKind::Const(value.clone()), e.span, value_type(value)),
            ExprKind::Name(name) => self.name(name, e.span),
            ExprKind::Unary(op, operand) => self.unary(*op, operand, e.span),
            ExprKind::Binary(op, a, b) => self.binary(*op, a, b, e.span),
            ExprKind::Compare(op, a, b) => self.compare(*op, a, b, e.span),
            ExprKind::Logic(op, a, b) => {
                let (a, b) = (self.expr(a), self.expr(b));
                let context = format!("an operand of `{}`", op.symbol());
                self.expect(a.ty(), &Type::Bool, a.expr.span, &context);
                self.expect(b.ty(), &Type::Bool, b.expr.span, &context);
                Checked::typed(ExprKind::Logic(*op, Box::new(a.expr), Box::new(b.expr)), e.span, Type::Bool)
            }
            ExprKind::IfElse { cond, then, orelse } => {
                let cond = self.expr(cond);
                self.expect(cond.ty(), &Type::Bool, cond.expr.span, "a condition");
                let then = self.expr(then);
                let orelse = self.expr(orelse);
                let ty = then.ty().clone();
                self.expect(orelse.ty(), &ty, orelse.expr.span, "the other branch of this conditional");
                let kind = ExprKind::IfElse {
                    cond: Box::new(cond.expr),
                    then: Box::new(then.expr),
                    orelse: Box::new(orelse.expr),
                };
                Checked::typed(kind, e.span, ty)
            }
            ExprKind::Call { func, args } => self.call(func, args, e.span),
            ExprKind::Index(base, index) => self.index(base, index, e.span),
            ExprKind::Field(base, field) => {
                let base = self.expr(base);
                let ty = match self.infer.shallow(base.ty()) {
                    Type::Record(record) => match record.field(&field.name) {
                        Some((_, ty)) => ty.clone(),
                        None => {
                            let names: Vec<&str> = record.fields.iter().map(|(n, _)| n.as_str()).collect();
                            self.error(
                                Diagnostic::error(
                                    Code::E0207,
                                    format!("`{}` has no field `{}`", record.name, field.name),
                                    field.span,
                                    "unknown field",
                                )
                                .with_note(format!("its fields are: {}", names.join(", "))),
                            );
                            Type::Error
                        }
                    },
                    Type::Error => Type::Error,
                    other => {
                        let other = self.infer.display(&other);
                        self.error(Diagnostic::error(
                            Code::E0207,
                            format!("`{other}` has no fields"),
                            field.span,
                            "only records have fields",
                        ));
                        Type::Error
                    }
                };
                Checked::typed(ExprKind::Field(Box::new(base.expr), field.clone()), e.span, ty)
            }
            ExprKind::Tuple(items) => {
                let items: Vec<Expr<Type>> = items.iter().map(|item| self.expr(item).expr).collect();
                let ty = Type::Tuple(items.iter().map(|item| item.ty.clone()).collect());
                Checked::typed(ExprKind::Tuple(items), e.span, ty)
            }
            ExprKind::Array(items) => self.array(items, e.span),
        }
    }

    fn untyped(&mut self, value: Untyped, span: Span) -> Checked {
        let (kind, var) = match value {
            Untyped::Int(v) => (ExprKind::Int(v), self.infer.fresh(VarKind::Int)),
            Untyped::Float(v) => (ExprKind::Float(v), self.infer.fresh(VarKind::Float)),
        };
        Checked { expr: Expr { kind, span, ty: var }, untyped: Some(value) }
    }

    fn name(&mut self, name: &str, span: Span) -> Checked {
        if let Some(&id) = self.names.get(name) {
            let local = &self.locals[id];
            let ty = local.ty.clone();
            if self.agg == AggMode::Return && local.kind == LocalKind::Param {
                self.error(
                    Diagnostic::error(
                        Code::E0404,
                        format!("parameter `{name}` is used outside an aggregate call"),
                        span,
                        "per-record value here",
                    )
                    .with_help(format!("the result can only combine aggregates, e.g. `max({name}) - min({name})`")),
                );
            }
            if !self.is_assigned(id) && self.reported_unassigned.insert(id) {
                let kind = self.locals[id].kind;
                let mut diagnostic = Diagnostic::error(
                    Code::E0104,
                    format!("`{name}` may be used before it is assigned"),
                    span,
                    "not assigned on every path to here",
                );
                diagnostic = if kind == LocalKind::LoopVar {
                    diagnostic.with_help("a loop variable exists only inside its loop: copy it into another variable")
                } else {
                    diagnostic.with_help(format!(
                        "assign `{name}` before this point on every path, e.g. before the `if` or loop"
                    ))
                };
                self.error(diagnostic);
            }
            return Checked::typed(ExprKind::Name(name.to_string()), span, ty);
        }
        match self.env.constant(name) {
            Some(ConstValue::UntypedInt(value)) => return self.untyped(Untyped::Int(*value), span),
            Some(ConstValue::UntypedFloat(value)) => return self.untyped(Untyped::Float(*value), span),
            Some(ConstValue::Typed(value, ty)) => {
                return Checked::typed(ExprKind::Const(value.clone()), span, ty.clone())
            }
            None => {}
        }
        if let Some(value) = builtins::constant(name) {
            let ty = value_type(&value);
            return Checked::typed(ExprKind::Const(value), span, ty);
        }
        if self.env.is_failed(name) {
            return Checked::error(span);
        }
        let diagnostic = match self.env.item(name) {
            Some((ItemKind::Const, defined)) => Diagnostic::error(
                Code::E0101,
                format!("constant `{name}` is used before its definition"),
                span,
                "not defined yet",
            )
            .with_label(defined, "defined here")
            .with_help(format!("move `const {name}` above this use")),
            Some((kind, _)) => Diagnostic::error(
                Code::E0204,
                format!("`{name}` is {} and cannot be used as a value", kind.describe()),
                span,
                "not a value",
            )
            .with_help("functions are called with `name(args)`; records are built with `Name(field=value)`"),
            None if builtins::is_reserved(name) => Diagnostic::error(
                Code::E0204,
                format!("the built-in `{name}` cannot be used as a value"),
                span,
                "call it instead",
            ),
            None => self.unknown_name(name, span),
        };
        self.error(diagnostic);
        Checked::error(span)
    }

    pub fn unknown_name(&self, name: &str, span: Span) -> Diagnostic {
        let mut diagnostic =
            Diagnostic::error(Code::E0101, format!("cannot find `{name}` in this scope"), span, "not defined");
        let candidates = self.names.keys().map(String::as_str).chain(self.env.item_names());
        if let Some(suggestion) = closest(name, candidates) {
            diagnostic = diagnostic.with_help(format!("did you mean `{suggestion}`?"));
        } else if matches!(name, "true" | "false") {
            diagnostic = diagnostic.with_help("booleans are written `True` and `False`");
        }
        diagnostic
    }

    fn unary(&mut self, op: UnOp, operand: &Expr, span: Span) -> Checked {
        let operand = self.expr(operand);
        if let Some(value) = operand.untyped {
            if let (UnOp::Neg, Untyped::Int(v)) = (op, value) {
                if v.checked_neg().is_none() {
                    self.error(Diagnostic::error(
                        Code::E0212,
                        "constant overflows 128-bit arithmetic",
                        span,
                        "in this constant expression",
                    ));
                    return Checked::error(span);
                }
            }
            let folded = match (op, value) {
                (UnOp::Pos, v) => Some(v),
                (UnOp::Neg, Untyped::Int(v)) => v.checked_neg().map(Untyped::Int),
                (UnOp::Neg, Untyped::Float(v)) => Some(Untyped::Float(-v)),
                (UnOp::BitNot, Untyped::Int(v)) => Some(Untyped::Int(!v)),
                _ => None,
            };
            if let Some(folded) = folded {
                return self.untyped(folded, span);
            }
        }
        let ty = operand.ty().clone();
        let ok = match op {
            UnOp::Neg | UnOp::Pos => self.infer.is_numeric(&ty),
            UnOp::BitNot => self.infer.is_int(&ty),
            UnOp::Not => self.infer.unify(&ty, &Type::Bool).is_ok(),
        };
        if !ok && !ty.is_error() {
            let shown = self.infer.display(&ty);
            let mut diagnostic = Diagnostic::error(
                Code::E0202,
                format!("`{}` cannot be applied to `{shown}`", op.symbol().trim()),
                span,
                format!("operand has type `{shown}`"),
            );
            if op == UnOp::Not {
                diagnostic = diagnostic.with_help("`not` takes a bool; compare first, e.g. `x == 0`");
            }
            self.error(diagnostic);
        }
        let result = if op == UnOp::Not { Type::Bool } else { ty };
        Checked::typed(ExprKind::Unary(op, Box::new(operand.expr)), span, result)
    }

    fn binary(&mut self, op: BinOp, a_src: &Expr, b_src: &Expr, span: Span) -> Checked {
        let a = self.expr(a_src);
        let b = self.expr(b_src);
        if op == BinOp::Pow {
            self.error(
                Diagnostic::error(Code::E0214, "`**` is not supported", span, "power operator")
                    .with_help("write `1 << k` for powers of two, or multiply explicitly"),
            );
            return Checked::error(span);
        }
        if let (Some(x), Some(y)) = (a.untyped, b.untyped) {
            return match fold_untyped(op, x, y) {
                Ok(folded) => self.untyped(folded, span),
                Err((code, message, help)) => {
                    let mut diagnostic = Diagnostic::error(code, message, span, "in this constant expression");
                    if let Some(help) = help {
                        diagnostic = diagnostic.with_help(help);
                    }
                    self.error(diagnostic);
                    Checked::error(span)
                }
            };
        }
        if op == BinOp::Mul {
            if let Type::Array(elem, len) = self.infer.shallow(a.ty()) {
                return self.repeat(a, b, b_src, *elem, len, span);
            }
        }
        let ty = self.binary_type(op, a.ty(), b.ty(), a.expr.span, b.expr.span, span);
        Checked::typed(ExprKind::Binary(op, Box::new(a.expr), Box::new(b.expr)), span, ty)
    }

    /// The result type of `a op b` for typed operands, reporting operator misuse.
    pub fn binary_type(&mut self, op: BinOp, a: &Type, b: &Type, a_span: Span, b_span: Span, span: Span) -> Type {
        if a.is_error() || b.is_error() {
            return Type::Error;
        }
        match op {
            BinOp::Shl | BinOp::Shr => {
                let ok = self.infer.is_int(a) && self.infer.is_int(b);
                if !ok {
                    self.operator_error(op, a, b, span, Some("shifts take integers on both sides"));
                    return Type::Error;
                }
                return a.clone();
            }
            _ => {}
        }
        if self.infer.unify(a, b).is_err() {
            let (x, y) = (self.infer.display(a), self.infer.display(b));
            self.error(
                Diagnostic::error(
                    Code::E0202,
                    format!("mismatched operand types for `{}`: `{x}` and `{y}`", op.symbol()),
                    span,
                    "operands differ",
                )
                .with_label(a_span, format!("`{x}`"))
                .with_label(b_span, format!("`{y}`"))
                .with_help(format!("convert one side explicitly, e.g. `{x}(...)`; naas has no implicit conversions")),
            );
            return Type::Error;
        }
        let ok = match op {
            BinOp::Add | BinOp::Sub | BinOp::Mul => self.infer.is_numeric(a),
            BinOp::Div => self.infer.is_float(a),
            BinOp::FloorDiv | BinOp::Mod => self.infer.is_int(a),
            BinOp::BitAnd | BinOp::BitOr | BinOp::BitXor => self.infer.is_int(a) || self.infer.shallow(a) == Type::Bool,
            BinOp::Pow | BinOp::Shl | BinOp::Shr => false,
        };
        if !ok {
            let help = match op {
                BinOp::Div if self.infer.is_int(a) => Some(
                    "`/` is true division on floats: use `//` for integer floor division, or convert with `f64(x)`",
                ),
                BinOp::FloorDiv | BinOp::Mod if self.infer.is_float(a) => {
                    Some("`//` and `%` are integer operations: use `/` for floats")
                }
                _ => None,
            };
            self.operator_error(op, a, b, span, help);
            return Type::Error;
        }
        a.clone()
    }

    fn operator_error(&mut self, op: BinOp, a: &Type, b: &Type, span: Span, help: Option<&str>) {
        let (x, y) = (self.infer.display(a), self.infer.display(b));
        let mut diagnostic = Diagnostic::error(
            Code::E0202,
            format!("`{}` is not defined for `{x}` and `{y}`", op.symbol()),
            span,
            "unsupported operation",
        );
        if let Some(help) = help {
            diagnostic = diagnostic.with_help(help);
        }
        self.error(diagnostic);
    }

    /// `[v] * N` (or any array times a constant): the array repeated N times.
    fn repeat(&mut self, a: Checked, b: Checked, b_src: &Expr, elem: Type, len: u32, span: Span) -> Checked {
        let count = match self.const_int_of(&b, b_src) {
            Ok(count) => count,
            Err(diagnostic) => {
                self.error(diagnostic.with_note("the repeat count of `[v] * N` must be known at compile time"));
                return Checked::error(span);
            }
        };
        let total = i128::from(len) * count;
        if count < 1 || total > i128::from(MAX_ARRAY_LEN) {
            self.error(Diagnostic::error(
                Code::E0305,
                format!("an array of {total} elements is outside the allowed 1..={MAX_ARRAY_LEN}"),
                span,
                "invalid array size",
            ));
            return Checked::error(span);
        }
        let ty = Type::Array(Box::new(elem), total as u32);
        let count = Expr { kind: ExprKind::Int(count), span: b.expr.span, ty: Type::I64 };
        Checked::typed(ExprKind::Binary(BinOp::Mul, Box::new(a.expr), Box::new(count)), span, ty)
    }

    fn compare(&mut self, op: CmpOp, a: &Expr, b: &Expr, span: Span) -> Checked {
        let (a, b) = (self.expr(a), self.expr(b));
        if let (Some(x), Some(y)) = (a.untyped, b.untyped) {
            let ordering = match (x, y) {
                (Untyped::Int(x), Untyped::Int(y)) => Some(x.cmp(&y)),
                (Untyped::Float(x), Untyped::Float(y)) => x.partial_cmp(&y),
                _ => None,
            };
            if let Some(ordering) = ordering {
                let result = match op {
                    CmpOp::Eq => ordering.is_eq(),
                    CmpOp::Ne => ordering.is_ne(),
                    CmpOp::Lt => ordering.is_lt(),
                    CmpOp::Le => ordering.is_le(),
                    CmpOp::Gt => ordering.is_gt(),
                    CmpOp::Ge => ordering.is_ge(),
                };
                return Checked::typed(ExprKind::Bool(result), span, Type::Bool);
            }
        }
        let (ta, tb) = (a.ty().clone(), b.ty().clone());
        if !ta.is_error() && !tb.is_error() {
            if self.infer.unify(&ta, &tb).is_err() {
                let (x, y) = (self.infer.display(&ta), self.infer.display(&tb));
                self.error(
                    Diagnostic::error(Code::E0202, format!("cannot compare `{x}` with `{y}`"), span, "operands differ")
                        .with_label(a.expr.span, format!("`{x}`"))
                        .with_label(b.expr.span, format!("`{y}`"))
                        .with_help("convert one side explicitly; naas has no implicit conversions"),
                );
            } else if !matches!(op, CmpOp::Eq | CmpOp::Ne) && !self.infer.is_numeric(&ta) {
                let shown = self.infer.display(&ta);
                self.error(Diagnostic::error(
                    Code::E0202,
                    format!("`{}` is not defined for `{shown}`", op.symbol()),
                    span,
                    "only numbers are ordered",
                ));
            }
        }
        Checked::typed(ExprKind::Compare(op, Box::new(a.expr), Box::new(b.expr)), span, Type::Bool)
    }

    fn index(&mut self, base_src: &Expr, index_src: &Expr, span: Span) -> Checked {
        let base = self.expr(base_src);
        let index = self.expr(index_src);
        let ty = match self.infer.shallow(base.ty()) {
            Type::Array(elem, len) => {
                if !self.infer.is_int(index.ty()) && !index.ty().is_error() {
                    let shown = self.infer.display(index.ty());
                    self.error(Diagnostic::error(
                        Code::E0206,
                        format!("array index must be an integer, found `{shown}`"),
                        index.expr.span,
                        "not an integer",
                    ));
                } else if let Some(Untyped::Int(at)) = index.untyped {
                    if !(0..i128::from(len)).contains(&at) {
                        self.error(
                            Diagnostic::error(
                                Code::E0206,
                                format!("index {at} is out of bounds for `array[_, {len}]`"),
                                index.expr.span,
                                format!("valid indexes are 0..={}", i128::from(len) - 1),
                            )
                            .with_note("naas has no negative indexing"),
                        );
                    }
                }
                *elem
            }
            Type::Tuple(items) => match self.const_int_of(&index, index_src) {
                Ok(at) if (0..items.len() as i128).contains(&at) => items[at as usize].clone(),
                Ok(at) => {
                    self.error(Diagnostic::error(
                        Code::E0206,
                        format!("tuple index {at} is out of range for a tuple of {} elements", items.len()),
                        index.expr.span,
                        "no such element",
                    ));
                    Type::Error
                }
                Err(_) => {
                    self.error(
                        Diagnostic::error(
                            Code::E0206,
                            "tuple index must be a constant",
                            index.expr.span,
                            "not known at compile time",
                        )
                        .with_help("tuples are indexed with literals, e.g. `t[0]`; use an array for computed indexes"),
                    );
                    Type::Error
                }
            },
            Type::Error => Type::Error,
            other => {
                let shown = self.infer.display(&other);
                self.error(Diagnostic::error(
                    Code::E0206,
                    format!("`{shown}` cannot be indexed"),
                    base.expr.span,
                    "not an array or tuple",
                ));
                Type::Error
            }
        };
        Checked::typed(ExprKind::Index(Box::new(base.expr), Box::new(index.expr)), span, ty)
    }

    fn array(&mut self, items: &[Expr], span: Span) -> Checked {
        let Some(first) = items.first() else {
            self.error(
                Diagnostic::error(Code::E0211, "empty array literal", span, "arrays have at least one element")
                    .with_help("write `[v] * N` for an array of N copies of v"),
            );
            return Checked::error(span);
        };
        let first = self.expr(first);
        let elem = first.ty().clone();
        let mut checked = vec![first.expr];
        for item in &items[1..] {
            let item = self.expr(item);
            self.expect(item.ty(), &elem, item.expr.span, "an element of this array");
            checked.push(item.expr);
        }
        if checked.len() > MAX_ARRAY_LEN as usize {
            self.error(Diagnostic::error(Code::E0305, "array literal is too long", span, "too many elements"));
            return Checked::error(span);
        }
        let ty = Type::Array(Box::new(elem), checked.len() as u32);
        Checked::typed(ExprKind::Array(checked), span, ty)
    }

    /// Checks a call's positional arguments, reporting keyword arguments.
    pub fn positional_args(&mut self, func: &str, args: &[crate::ast::Arg]) -> Vec<Checked> {
        args.iter()
            .map(|arg| match arg {
                crate::ast::Arg::Positional(value) => self.expr(value),
                crate::ast::Arg::Keyword(name, value) => {
                    self.error(
                        Diagnostic::error(
                            Code::E0203,
                            format!("`{func}` takes no keyword arguments"),
                            name.span,
                            "keyword argument",
                        )
                        .with_help("only record constructors take `field=value` arguments"),
                    );
                    self.expr(value)
                }
            })
            .collect()
    }

    /// The value of an integer constant: folded while checking (literals, untyped constants,
    /// `len(a)`, typed integer constants), or an integer constant expression over typed constants.
    pub fn const_int_of(&self, checked: &Checked, source: &Expr) -> Result<i128, Box<Diagnostic>> {
        match (&checked.untyped, &checked.expr.kind) {
            (Some(Untyped::Int(value)), _) | (None, ExprKind::Const(Value::Int(_, value))) => Ok(*value),
            _ => self.env.const_int(source),
        }
    }

    pub fn untyped_value(&mut self, value: Untyped, span: Span) -> Checked {
        self.untyped(value, span)
    }
}

/// The type of a folded constant value.
pub fn value_type(value: &Value) -> Type {
    match value {
        Value::Bool(_) => Type::Bool,
        Value::Int(ty, _) => Type::Int(*ty),
        Value::Float(ty, _) => Type::Float(*ty),
        Value::Tuple(items) => Type::Tuple(items.iter().map(value_type).collect()),
        Value::Array(items) => {
            let elem = items.first().map_or(Type::Error, value_type);
            Type::Array(Box::new(elem), u32::try_from(items.len()).unwrap_or(u32::MAX))
        }
        Value::Record(record, _) => Type::Record(record.clone()),
    }
}

type FoldError = (Code, String, Option<&'static str>);

/// Folds an operator over two untyped constants, exactly.
fn fold_untyped(op: BinOp, x: Untyped, y: Untyped) -> Result<Untyped, FoldError> {
    let overflow = || (Code::E0212, "constant overflows 128-bit arithmetic".to_string(), None);
    match (x, y) {
        (Untyped::Int(x), Untyped::Int(y)) => {
            let value =
                match op {
                    BinOp::Add => x.checked_add(y).ok_or_else(overflow)?,
                    BinOp::Sub => x.checked_sub(y).ok_or_else(overflow)?,
                    BinOp::Mul => x.checked_mul(y).ok_or_else(overflow)?,
                    BinOp::FloorDiv | BinOp::Mod if y == 0 => {
                        return Err((Code::E0212, "division by zero in a constant expression".to_string(), None))
                    }
                    BinOp::FloorDiv => {
                        x.checked_div(y).ok_or_else(overflow)?;
                        crate::ops::floor_div_exact(x, y)
                    }
                    BinOp::Mod => {
                        x.checked_div(y).ok_or_else(overflow)?;
                        x - crate::ops::floor_div_exact(x, y) * y
                    }
                    BinOp::Shl | BinOp::Shr if y < 0 => {
                        return Err((Code::E0212, "negative shift count in a constant expression".to_string(), None))
                    }
                    BinOp::Shl => u32::try_from(y)
                        .ok()
                        .filter(|&n| n < 127)
                        .and_then(|n| x.checked_mul(1i128 << n))
                        .ok_or_else(overflow)?,
                    BinOp::Shr => x >> y.min(127),
                    BinOp::BitAnd => x & y,
                    BinOp::BitOr => x | y,
                    BinOp::BitXor => x ^ y,
                    BinOp::Div => return Err((
                        Code::E0202,
                        "`/` is not defined for integers".to_string(),
                        Some(
                            "`/` is true division on floats: use `//` for integer floor division, or write `7.0 / 2.0`",
                        ),
                    )),
                    BinOp::Pow => return Err((Code::E0214, "`**` is not supported".to_string(), None)),
                };
            Ok(Untyped::Int(value))
        }
        (Untyped::Float(x), Untyped::Float(y)) => {
            let value = match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                BinOp::Div => x / y,
                _ => {
                    return Err((
                        Code::E0202,
                        format!("`{}` is not defined for floats", op.symbol()),
                        Some("`//`, `%`, shifts and bitwise operators take integers"),
                    ))
                }
            };
            if value.is_finite() {
                Ok(Untyped::Float(value))
            } else {
                Err((Code::E0212, "float constant expression is not finite".to_string(), None))
            }
        }
        _ => Err((
            Code::E0202,
            format!("`{}` mixes an integer and a float constant", op.symbol()),
            Some("write integer constants used as floats with a decimal point, e.g. `2.0`"),
        )),
    }
}

/// The candidate closest to `name` by edit distance, if close enough to be a likely typo.
pub fn closest<'c>(name: &str, candidates: impl Iterator<Item = &'c str>) -> Option<&'c str> {
    // One- and two-letter names are too short for a guess to be more than noise.
    if name.chars().count() < 3 {
        return None;
    }
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .filter(|candidate| *candidate != name)
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, candidate)| candidate)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of
/// adjacent characters each cost 1 (so `clmap` is one edit from `clamp`).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_find_typos_only() {
        let names = ["clamp", "bucket", "LIMIT"];
        assert_eq!(closest("clmap", names.iter().copied()), Some("clamp"));
        assert_eq!(closest("LIMT", names.iter().copied()), Some("LIMIT"));
        assert_eq!(closest("zzz", names.iter().copied()), None);
    }
}
