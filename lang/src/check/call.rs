//! Type checking of calls: conversions (`i64(x)`), built-in helpers (`min`, `max`, `abs`,
//! `len`), aggregate calls (`sum(e)`, `count()`, ...), user functions and record constructors.

use super::builtins;
use super::env::{ItemKind, Untyped};
use super::expr::{AggMode, Checked, FnChecker};
use crate::ast::{Arg, Expr, ExprKind, Ident};
use crate::diagnostics::{Code, Diagnostic};
use crate::span::Span;
use crate::types::{IntTy, Type, VarKind};
use crate::value::Value;

impl FnChecker<'_> {
    pub fn call(&mut self, func: &Ident, args: &[Arg], span: Span) -> Checked {
        let name = func.name.as_str();
        if self.names.contains_key(name) {
            self.error(Diagnostic::error(
                Code::E0204,
                format!("`{name}` is a variable, not a function"),
                func.span,
                "not callable",
            ));
            self.positional_args(name, args);
            return Checked::error(span);
        }
        if let Some(target) = builtins::conversion_target(name) {
            return self.conversion(func, target, args, span);
        }
        let is_aggregate_call = match name {
            "min" | "max" => args.len() == 1,
            _ => builtins::AGGREGATE_CALLS.contains(&name),
        };
        if is_aggregate_call {
            return self.aggregate_call(func, args, span);
        }
        match name {
            "min" | "max" => return self.min_max(func, args, span),
            "abs" => return self.abs(func, args, span),
            "len" => return self.len(func, args, span),
            "range" => {
                self.error(
                    Diagnostic::error(
                        Code::E0308,
                        "`range(...)` can only be iterated by a `for` loop",
                        span,
                        "not a value",
                    )
                    .with_help("write `for i in range(N):`"),
                );
                return Checked::error(span);
            }
            _ => {}
        }
        if let Some(signature) = self.env.function(name).cloned() {
            let checked = self.positional_args(name, args);
            if checked.len() != signature.params.len() {
                self.error(
                    Diagnostic::error(
                        Code::E0203,
                        format!(
                            "`{name}` takes {} argument(s) but {} were given",
                            signature.params.len(),
                            checked.len()
                        ),
                        span,
                        "wrong number of arguments",
                    )
                    .with_label(signature.span, "defined here"),
                );
            }
            for (arg, (param, ty)) in checked.iter().zip(&signature.params) {
                self.expect(arg.ty(), ty, arg.expr.span, &format!("parameter `{param}` of `{name}`"));
            }
            self.calls.push((name.to_string(), func.span));
            let args = checked.into_iter().map(|arg| Arg::Positional(arg.expr)).collect();
            return Checked {
                expr: Expr { kind: ExprKind::Call { func: func.clone(), args }, span, ty: signature.ret },
                untyped: None,
            };
        }
        if self.env.record(name).is_some() {
            return self.construct(func, args, span);
        }
        if self.env.is_failed(name) {
            self.positional_args(name, args);
            return Checked::error(span);
        }
        let diagnostic = match self.env.item(name) {
            Some((ItemKind::Aggregate, _)) => Diagnostic::error(
                Code::E0204,
                format!("aggregate `{name}` cannot be called"),
                func.span,
                "aggregates are run by the runtime",
            )
            .with_help("move shared logic into a `def` helper and call that"),
            Some((ItemKind::Class, defined)) => Diagnostic::error(
                Code::E0101,
                format!("class `{name}` is used before its definition"),
                func.span,
                "not defined yet",
            )
            .with_label(defined, "defined here"),
            Some((ItemKind::Function, _)) if self.in_constant => Diagnostic::error(
                Code::E0212,
                format!("`{name}(...)` cannot be evaluated at compile time"),
                func.span,
                "function call in a constant",
            )
            .with_help("constants are built from literals, other constants, operators and conversions"),
            Some((kind, _)) => Diagnostic::error(
                Code::E0204,
                format!("`{name}` is {} and cannot be called", kind.describe()),
                func.span,
                "not callable",
            ),
            None => self.unknown_name(name, func.span),
        };
        self.error(diagnostic);
        self.positional_args(name, args);
        Checked::error(span)
    }

    fn arity(&mut self, func: &Ident, got: usize, expected: &str, span: Span) -> bool {
        let ok = match expected {
            "1" => got == 1,
            "0" => got == 0,
            _ => got >= 2,
        };
        if !ok {
            self.error(Diagnostic::error(
                Code::E0203,
                format!("`{}` takes {expected} argument(s) but {got} were given", func.name),
                span,
                "wrong number of arguments",
            ));
        }
        ok
    }

    fn conversion(&mut self, func: &Ident, target: Type, args: &[Arg], span: Span) -> Checked {
        let mut checked = self.positional_args(&func.name, args);
        if !self.arity(func, checked.len(), "1", span) {
            return Checked::error(span);
        }
        let arg = checked.remove(0);
        if let Some(untyped) = arg.untyped {
            // Converting a constant is checked like Go's: the value must be representable.
            let value = match (&target, untyped) {
                (Type::Bool, Untyped::Int(v)) => Ok(Value::Bool(v != 0)),
                (Type::Bool, Untyped::Float(v)) => Ok(Value::Bool(v != 0.0)),
                (target, untyped) => untyped.at_type(target),
            };
            return match value {
                Ok(value) => Checked { expr: Expr { kind: ExprKind::Const(value), span, ty: target }, untyped: None },
                Err(message) => {
                    self.error(
                        Diagnostic::error(Code::E0205, message.to_string(), arg.expr.span, "constant out of range")
                            .with_help("a conversion of a constant must not change its value"),
                    );
                    Checked::error(span)
                }
            };
        }
        let source = self.infer.shallow(arg.ty());
        let convertible = matches!(source, Type::Bool | Type::Int(_) | Type::Float(_) | Type::Var(..) | Type::Error);
        if !convertible {
            let shown = self.infer.display(&source);
            self.error(Diagnostic::error(
                Code::E0202,
                format!("cannot convert `{shown}` to `{target}`"),
                arg.expr.span,
                "only numbers and bools convert",
            ));
            return Checked::error(span);
        }
        let kind = ExprKind::Call { func: func.clone(), args: vec![Arg::Positional(arg.expr)] };
        Checked { expr: Expr { kind, span, ty: target }, untyped: None }
    }

    fn min_max(&mut self, func: &Ident, args: &[Arg], span: Span) -> Checked {
        let checked = self.positional_args(&func.name, args);
        if !self.arity(func, checked.len(), "2 or more", span) {
            return Checked::error(span);
        }
        let ty = checked[0].ty().clone();
        for arg in &checked[1..] {
            self.expect(arg.ty(), &ty, arg.expr.span, &format!("an argument of `{}`", func.name));
        }
        if !self.infer.is_numeric(&ty) && !ty.is_error() {
            let shown = self.infer.display(&ty);
            self.error(Diagnostic::error(
                Code::E0202,
                format!("`{}` is not defined for `{shown}`", func.name),
                span,
                "only numbers are ordered",
            ));
        }
        let args = checked.into_iter().map(|arg| Arg::Positional(arg.expr)).collect();
        Checked { expr: Expr { kind: ExprKind::Call { func: func.clone(), args }, span, ty }, untyped: None }
    }

    fn abs(&mut self, func: &Ident, args: &[Arg], span: Span) -> Checked {
        let mut checked = self.positional_args(&func.name, args);
        if !self.arity(func, checked.len(), "1", span) {
            return Checked::error(span);
        }
        let arg = checked.remove(0);
        match arg.untyped {
            Some(Untyped::Int(v)) => match v.checked_abs() {
                Some(value) => return self.untyped_value(Untyped::Int(value), span),
                None => {
                    self.error(Diagnostic::error(
                        Code::E0212,
                        "constant overflows 128-bit arithmetic",
                        span,
                        "in this constant expression",
                    ));
                    return Checked::error(span);
                }
            },
            Some(Untyped::Float(v)) => return self.untyped_value(Untyped::Float(v.abs()), span),
            None => {}
        }
        let ty = arg.ty().clone();
        if !self.infer.is_numeric(&ty) && !ty.is_error() {
            let shown = self.infer.display(&ty);
            self.error(Diagnostic::error(
                Code::E0202,
                format!("`abs` is not defined for `{shown}`"),
                span,
                "not a number",
            ));
        }
        let kind = ExprKind::Call { func: func.clone(), args: vec![Arg::Positional(arg.expr)] };
        Checked { expr: Expr { kind, span, ty }, untyped: None }
    }

    fn len(&mut self, func: &Ident, args: &[Arg], span: Span) -> Checked {
        let checked = self.positional_args(&func.name, args);
        if !self.arity(func, checked.len(), "1", span) {
            return Checked::error(span);
        }
        match self.infer.shallow(checked[0].ty()) {
            Type::Array(_, len) => self.untyped_value(Untyped::Int(i128::from(len)), span),
            Type::Tuple(items) => self.untyped_value(Untyped::Int(items.len() as i128), span),
            Type::Error => Checked::error(span),
            other => {
                let shown = self.infer.display(&other);
                self.error(Diagnostic::error(
                    Code::E0202,
                    format!("`len` is not defined for `{shown}`"),
                    span,
                    "not an array",
                ));
                Checked::error(span)
            }
        }
    }

    /// `sum(e)`, `avg(e)`, `min(e)`, `max(e)`, `count()`, `any(c)`, `all(c)` in the return of a
    /// built-in aggregate.
    fn aggregate_call(&mut self, func: &Ident, args: &[Arg], span: Span) -> Checked {
        let name = func.name.as_str();
        match self.agg {
            AggMode::Off => {
                let mut diagnostic = Diagnostic::error(
                    Code::E0403,
                    format!("aggregate call `{name}(...)` outside an aggregate's return"),
                    span,
                    "aggregates over all records of a key",
                )
                .with_help("aggregate calls appear only in `return` of a built-in `aggregate`");
                if matches!(name, "min" | "max") {
                    diagnostic = diagnostic.with_note(format!("the smaller/larger of two values is `{name}(a, b)`"));
                }
                self.error(diagnostic);
                self.positional_args(name, args);
                return Checked::error(span);
            }
            AggMode::InsideCall => {
                self.error(Diagnostic::error(
                    Code::E0404,
                    format!("aggregate call `{name}(...)` nested inside another aggregate call"),
                    span,
                    "nested aggregate",
                ));
                self.positional_args(name, args);
                return Checked::error(span);
            }
            AggMode::Return => {}
        }
        self.agg = AggMode::InsideCall;
        self.agg_calls += 1;
        let mut checked = self.positional_args(name, args);
        self.agg = AggMode::Return;
        let expected = if name == "count" { "0" } else { "1" };
        if !self.arity(func, checked.len(), expected, span) {
            return Checked::error(span);
        }
        let (args, ty) = if name == "count" {
            (Vec::new(), Type::Int(IntTy::U64))
        } else {
            let arg = checked.remove(0);
            let arg_ty = arg.ty().clone();
            let ty = self.aggregate_result(name, &arg_ty, arg.expr.span, span);
            (vec![Arg::Positional(arg.expr)], ty)
        };
        Checked { expr: Expr { kind: ExprKind::Call { func: func.clone(), args }, span, ty }, untyped: None }
    }

    /// The result type of an aggregate call over values of `arg` (see spec.md, "Built-in aggregates").
    fn aggregate_result(&mut self, name: &str, arg: &Type, span: Span, call_span: Span) -> Type {
        if arg.is_error() {
            return Type::Error;
        }
        if matches!(name, "any" | "all") {
            self.expect(arg, &Type::Bool, span, &format!("the argument of `{name}`"));
            return Type::Bool;
        }
        // An argument whose literal type is still open (`sum(1)`, `max(0)`) stays open, so that
        // the declared result type can decide it (spec.md 10.1): `min`/`max` return the
        // argument's type, and `sum` of an open integer returns the argument's own variable,
        // which the aggregate's result must leave as `i64` or `u64` (the two types a `sum` of
        // integers can have; `check_open_sums` reports any other). Nothing but the result can
        // constrain that variable any more: the argument has been checked.
        match (name, self.infer.shallow(arg)) {
            ("min" | "max", Type::Var(..)) => return arg.clone(),
            ("sum", Type::Var(_, VarKind::Int)) => {
                self.open_sums.push((arg.clone(), call_span));
                return arg.clone();
            }
            (_, Type::Var(_, kind)) => {
                let default = if kind == VarKind::Int { Type::I64 } else { Type::F64 };
                let _ = self.infer.unify(arg, &default);
            }
            _ => {}
        }
        let resolved = self.infer.shallow(arg);
        match (name, &resolved) {
            ("min" | "max", Type::Int(_) | Type::Float(_)) => resolved,
            ("sum", Type::Int(int)) => Type::Int(if int.signed() { IntTy::I64 } else { IntTy::U64 }),
            ("sum", Type::Float(_)) | ("avg", Type::Int(_) | Type::Float(_)) => Type::F64,
            _ => {
                let shown = self.infer.display(&resolved);
                self.error(Diagnostic::error(
                    Code::E0202,
                    format!("`{name}` is not defined for `{shown}`"),
                    span,
                    "expected a number",
                ));
                Type::Error
            }
        }
    }

    /// Reports each `sum` over an open integer literal type that the declared result type made
    /// something other than `i64` or `u64` (`return sum(1)` declared `-> u32`): a `sum` of
    /// integers is never narrower. Call once the result type has been unified.
    pub fn check_open_sums(&mut self) {
        for (ty, span) in std::mem::take(&mut self.open_sums) {
            if let Type::Int(int) = self.infer.shallow(&ty) {
                if !matches!(int, IntTy::I64 | IntTy::U64) {
                    let int = int.name();
                    self.error(
                        Diagnostic::error(
                            Code::E0201,
                            format!("this `sum` would have to be `{int}`"),
                            span,
                            "`sum` of integers is `i64` or `u64`",
                        )
                        .with_help(format!("declare the result as `i64` or `u64`, or convert: `{int}(sum(...))`")),
                    );
                }
            }
        }
    }

    /// `Name(field=value, ...)`: every field exactly once, by keyword. The typed call lists the
    /// values positionally in field order.
    fn construct(&mut self, func: &Ident, args: &[Arg], span: Span) -> Checked {
        let Some(record) = self.env.record(&func.name).cloned() else {
            return Checked::error(span);
        };
        let mut values: Vec<Option<Expr<crate::types::Type>>> = vec![None; record.fields.len()];
        let mut ok = true;
        for arg in args {
            match arg {
                Arg::Positional(value) => {
                    let checked = self.expr(value);
                    let example = record.fields.first().map_or_else(String::new, |(name, _)| format!("{name}=..."));
                    self.error(
                        Diagnostic::error(
                            Code::E0207,
                            format!("`{}` fields must be given by name", record.name),
                            checked.expr.span,
                            "positional argument",
                        )
                        .with_help(format!("write `{}({example})`", record.name)),
                    );
                    ok = false;
                }
                Arg::Keyword(name, value) => {
                    let checked = self.expr(value);
                    match record.field(&name.name) {
                        Some((index, ty)) => {
                            let ty = ty.clone();
                            self.expect(checked.ty(), &ty, checked.expr.span, &format!("field `{}`", name.name));
                            if values[index].is_some() {
                                self.error(Diagnostic::error(
                                    Code::E0207,
                                    format!("field `{}` is given twice", name.name),
                                    name.span,
                                    "repeated field",
                                ));
                                ok = false;
                            }
                            values[index] = Some(checked.expr);
                        }
                        None => {
                            self.error(Diagnostic::error(
                                Code::E0207,
                                format!("`{}` has no field `{}`", record.name, name.name),
                                name.span,
                                "unknown field",
                            ));
                            ok = false;
                        }
                    }
                }
            }
        }
        let missing: Vec<&str> = record
            .fields
            .iter()
            .zip(&values)
            .filter(|(_, value)| value.is_none())
            .map(|((name, _), _)| name.as_str())
            .collect();
        if ok && !missing.is_empty() {
            self.error(Diagnostic::error(
                Code::E0207,
                format!("missing field(s) {} in `{}`", missing.join(", "), record.name),
                span,
                "every field needs a value",
            ));
        }
        if !ok || !missing.is_empty() {
            return Checked::error(span);
        }
        let args = values.into_iter().flatten().map(Arg::Positional).collect();
        Checked {
            expr: Expr { kind: ExprKind::Call { func: func.clone(), args }, span, ty: Type::Record(record) },
            untyped: None,
        }
    }
}
