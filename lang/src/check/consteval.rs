//! Compile-time evaluation of typed constant expressions (typed `const`s, aggregate
//! identities), and the value-level operators it is built from. Scalar semantics come from
//! [`crate::ops`]; this module only lifts them to [`Value`]s.
//!
//! The checker has typed every expression that reaches here, so an operand of a kind the
//! operator does not take is a compiler bug: it comes back as [`EvalError::Internal`], never
//! as a plausible value.

use crate::ast::{BinOp, CmpOp, Expr, ExprKind, LogicOp, UnOp};
use crate::bail_internal;
use crate::diagnostics::{Code, Diagnostic};
use crate::internal::InternalError;
use crate::ops::{self, Fault, FloatOp};
use crate::span::Span;
use crate::types::Type;
use crate::value::Value;

#[derive(Debug)]
pub enum EvalError {
    /// The expression reads a variable or calls a user function.
    NotConstant(Span),
    /// Evaluation faulted (division by zero, bad index, ...).
    Fault(Fault, Span),
    /// A broken invariant of the checker (a compiler bug).
    Internal(InternalError),
}

impl From<InternalError> for EvalError {
    fn from(error: InternalError) -> EvalError {
        EvalError::Internal(error)
    }
}

impl EvalError {
    pub fn into_diagnostic(self) -> Diagnostic {
        match self {
            EvalError::NotConstant(span) => Diagnostic::error(
                Code::E0212,
                "this value must be computable at compile time",
                span,
                "not a constant expression",
            )
            .with_help(
                "use literals, constants, operators, conversions and constructors; not variables or `def` calls",
            ),
            EvalError::Fault(fault, span) => {
                Diagnostic::error(Code::E0212, format!("constant evaluation failed: {fault}"), span, "fails here")
            }
            // The front end reports only diagnostics, so a compiler bug met while evaluating a
            // constant becomes an error that says what it is: the compilation stops loudly
            // instead of using a wrong value.
            EvalError::Internal(error) => Diagnostic::error(
                Code::E0212,
                format!("{error}"),
                error.span.unwrap_or_default(),
                "the compiler failed here",
            )
            .with_help("this is a bug in naasc, not in the program: please report it"),
        }
    }
}

type Eval<T> = Result<T, EvalError>;

/// Evaluates a checked expression whose types are all concrete.
pub fn eval(expr: &Expr<Type>) -> Eval<Value> {
    let span = expr.span;
    let fault = |f: Fault| EvalError::Fault(f, span);
    match &expr.kind {
        ExprKind::Int(value) => match &expr.ty {
            Type::Int(ty) => Ok(Value::Int(*ty, *value)),
            Type::Float(ty) => Ok(Value::Float(*ty, ops::int_to_float(*ty, *value))),
            other => bail_internal!(span, "constant evaluation: an integer literal of type `{other}`"),
        },
        ExprKind::Float(value) => match &expr.ty {
            Type::Float(ty) => Ok(Value::Float(*ty, ops::float_round(*ty, *value))),
            other => bail_internal!(span, "constant evaluation: a float literal of type `{other}`"),
        },
        ExprKind::Bool(value) => Ok(Value::Bool(*value)),
        ExprKind::Const(value) => Ok(value.clone()),
        ExprKind::Name(_) => Err(EvalError::NotConstant(span)),
        ExprKind::Unary(op, operand) => Ok(unary(*op, &eval(operand)?, span)?),
        ExprKind::Binary(op, a, b) => binary(*op, &eval(a)?, &eval(b)?, span),
        ExprKind::Compare(op, a, b) => Ok(Value::Bool(compare(*op, &eval(a)?, &eval(b)?, span)?)),
        ExprKind::Logic(op, a, b) => {
            let a = condition(&eval(a)?, span)?;
            match (op, a) {
                (LogicOp::And, false) => Ok(Value::Bool(false)),
                (LogicOp::Or, true) => Ok(Value::Bool(true)),
                _ => eval(b),
            }
        }
        ExprKind::IfElse { cond, then, orelse } => {
            if condition(&eval(cond)?, span)? {
                eval(then)
            } else {
                eval(orelse)
            }
        }
        ExprKind::Call { func, args } => {
            let values = args.iter().map(|arg| eval(arg.value())).collect::<Result<Vec<_>, _>>()?;
            match (func.name.as_str(), values.as_slice()) {
                ("min", [first, rest @ ..]) => {
                    Ok(rest.iter().try_fold(first.clone(), |acc, v| min_max(true, &acc, v, span))?)
                }
                ("max", [first, rest @ ..]) => {
                    Ok(rest.iter().try_fold(first.clone(), |acc, v| min_max(false, &acc, v, span))?)
                }
                ("abs", [value]) => Ok(abs(value, span)?),
                (name, [value]) if super::builtins::conversion_target(name).is_some() => {
                    Ok(convert(&expr.ty, value, span)?)
                }
                _ => match &expr.ty {
                    Type::Record(record) if record.name == func.name => Ok(Value::Record(record.clone(), values)),
                    _ => Err(EvalError::NotConstant(span)),
                },
            }
        }
        ExprKind::Index(base, index) => {
            let base = eval(base)?;
            let index = match eval(index)? {
                Value::Int(_, index) => index,
                other => bail_internal!(span, "constant evaluation: the index {other:?} is not an integer"),
            };
            element(&base, index, span)?.map_err(fault)
        }
        ExprKind::Field(base, field) => match eval(base)? {
            Value::Record(record, values) => match record.field(&field.name).and_then(|(i, _)| values.get(i)) {
                Some(value) => Ok(value.clone()),
                None => bail_internal!(span, "constant evaluation: no field `{}` in `{}`", field.name, record.name),
            },
            other => bail_internal!(span, "constant evaluation: field `{}` of {other:?}", field.name),
        },
        ExprKind::Tuple(items) => Ok(Value::Tuple(items.iter().map(eval).collect::<Result<_, _>>()?)),
        ExprKind::Array(items) => Ok(Value::Array(items.iter().map(eval).collect::<Result<_, _>>()?)),
    }
}

/// The truth value of a condition the checker typed `bool`.
fn condition(value: &Value, span: Span) -> Result<bool, InternalError> {
    match value {
        Value::Bool(b) => Ok(*b),
        other => bail_internal!(span, "constant evaluation: the condition {other:?} is not a bool"),
    }
}

/// Reads element `index` of an array or tuple: the value, or the fault of an index out of
/// bounds; a base that is neither is a compiler bug.
pub fn element(base: &Value, index: i128, span: Span) -> Result<Result<Value, Fault>, InternalError> {
    let items = match base {
        Value::Array(items) | Value::Tuple(items) => items,
        other => bail_internal!(span, "constant evaluation: indexing {other:?}"),
    };
    Ok(usize::try_from(index)
        .ok()
        .and_then(|i| items.get(i).cloned())
        .ok_or(Fault::IndexOutOfBounds { index, len: u32::try_from(items.len()).unwrap_or(u32::MAX) }))
}

pub fn unary(op: UnOp, value: &Value, span: Span) -> Result<Value, InternalError> {
    Ok(match (op, value) {
        (UnOp::Pos, v) => v.clone(),
        (UnOp::Neg, Value::Int(ty, v)) => Value::Int(*ty, ops::int_neg(*ty, *v)),
        (UnOp::Neg, Value::Float(ty, v)) => Value::Float(*ty, -v),
        (UnOp::BitNot, Value::Int(ty, v)) => Value::Int(*ty, ops::int_bit_not(*ty, *v)),
        (UnOp::Not, Value::Bool(b)) => Value::Bool(!b),
        (op, v) => bail_internal!(span, "constant evaluation: `{}` applied to {v:?}", op.symbol()),
    })
}

/// `a op b` on values of the checked types. `[v] * n` repeats arrays.
pub fn binary(op: BinOp, a: &Value, b: &Value, span: Span) -> Eval<Value> {
    let fault = |f: Fault| EvalError::Fault(f, span);
    Ok(match (a, b) {
        (Value::Int(ty, x), Value::Int(_, y)) => {
            let (ty, x, y) = (*ty, *x, *y);
            Value::Int(
                ty,
                match op {
                    BinOp::Add => ops::int_add(ty, x, y),
                    BinOp::Sub => ops::int_sub(ty, x, y),
                    BinOp::Mul => ops::int_mul(ty, x, y),
                    BinOp::FloorDiv => ops::int_floor_div(ty, x, y).map_err(fault)?,
                    BinOp::Mod => ops::int_mod(ty, x, y).map_err(fault)?,
                    BinOp::Shl => ops::int_shl(ty, x, y).map_err(fault)?,
                    BinOp::Shr => ops::int_shr(ty, x, y).map_err(fault)?,
                    BinOp::BitAnd => ops::int_and(x, y),
                    BinOp::BitOr => ops::int_or(x, y),
                    BinOp::BitXor => ops::int_xor(x, y),
                    // The checker rejects `/` on integers (E0202) and `**` (E0214).
                    BinOp::Div | BinOp::Pow => {
                        bail_internal!(span, "constant evaluation: `{}` applied to integers", op.symbol())
                    }
                },
            )
        }
        (Value::Float(ty, x), Value::Float(_, y)) => {
            let float_op = match op {
                BinOp::Add => FloatOp::Add,
                BinOp::Sub => FloatOp::Sub,
                BinOp::Mul => FloatOp::Mul,
                BinOp::Div => FloatOp::Div,
                other => bail_internal!(span, "constant evaluation: `{}` applied to floats", other.symbol()),
            };
            Value::Float(*ty, ops::float_arith(*ty, float_op, *x, *y))
        }
        (Value::Bool(x), Value::Bool(y)) => Value::Bool(match op {
            BinOp::BitAnd => x & y,
            BinOp::BitOr => x | y,
            BinOp::BitXor => x ^ y,
            other => bail_internal!(span, "constant evaluation: `{}` applied to bools", other.symbol()),
        }),
        (Value::Array(items), Value::Int(_, count)) if op == BinOp::Mul => {
            // The checker bounds array lengths, so a negative count cannot reach here.
            let Ok(count) = usize::try_from(*count) else {
                bail_internal!(span, "constant evaluation: an array repeated {count} times")
            };
            let mut repeated = Vec::with_capacity(items.len() * count);
            for _ in 0..count {
                repeated.extend(items.iter().cloned());
            }
            Value::Array(repeated)
        }
        (a, b) => bail_internal!(span, "constant evaluation: `{}` applied to {a:?} and {b:?}", op.symbol()),
    })
}

/// Comparison: IEEE for floats (NaN is unequal to everything); `==` is structural on
/// tuples, arrays and records.
pub fn compare(op: CmpOp, a: &Value, b: &Value, span: Span) -> Result<bool, InternalError> {
    Ok(match op {
        CmpOp::Eq => equal(a, b),
        CmpOp::Ne => !equal(a, b),
        _ => {
            let ordering = match (a, b) {
                (Value::Int(_, x), Value::Int(_, y)) => x.partial_cmp(y),
                (Value::Float(_, x), Value::Float(_, y)) => x.partial_cmp(y),
                _ => bail_internal!(span, "constant evaluation: ordering {a:?} and {b:?}"),
            };
            match ordering {
                None => false,
                Some(ordering) => match op {
                    CmpOp::Lt => ordering.is_lt(),
                    CmpOp::Le => ordering.is_le(),
                    CmpOp::Gt => ordering.is_gt(),
                    _ => ordering.is_ge(),
                },
            }
        }
    })
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(_, x), Value::Float(_, y)) => x == y,
        (Value::Tuple(xs), Value::Tuple(ys))
        | (Value::Array(xs), Value::Array(ys))
        | (Value::Record(_, xs), Value::Record(_, ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| equal(x, y))
        }
        _ => a == b,
    }
}

/// `min(a, b)` / `max(a, b)`; floats use IEEE 754-2019 minimum/maximum.
pub fn min_max(is_min: bool, a: &Value, b: &Value, span: Span) -> Result<Value, InternalError> {
    Ok(match (a, b) {
        (Value::Int(ty, x), Value::Int(_, y)) => Value::Int(*ty, if is_min { *x.min(y) } else { *x.max(y) }),
        (Value::Float(ty, x), Value::Float(_, y)) => {
            Value::Float(*ty, if is_min { ops::float_min(*x, *y) } else { ops::float_max(*x, *y) })
        }
        _ => bail_internal!(span, "constant evaluation: `min`/`max` of {a:?} and {b:?}"),
    })
}

pub fn abs(value: &Value, span: Span) -> Result<Value, InternalError> {
    Ok(match value {
        Value::Int(ty, v) => Value::Int(*ty, ops::int_abs(*ty, *v)),
        Value::Float(ty, v) => Value::Float(*ty, v.abs()),
        other => bail_internal!(span, "constant evaluation: `abs` of {other:?}"),
    })
}

/// A conversion `T(x)` of a scalar to the scalar type `target`.
pub fn convert(target: &Type, value: &Value, span: Span) -> Result<Value, InternalError> {
    Ok(match (target, value) {
        (Type::Bool, Value::Bool(b)) => Value::Bool(*b),
        (Type::Bool, Value::Int(_, v)) => Value::Bool(*v != 0),
        (Type::Bool, Value::Float(_, v)) => Value::Bool(*v != 0.0),
        (Type::Int(to), Value::Bool(b)) => Value::Int(*to, i128::from(*b)),
        (Type::Int(to), Value::Int(_, v)) => Value::Int(*to, ops::int_to_int(*to, *v)),
        (Type::Int(to), Value::Float(_, v)) => Value::Int(*to, ops::float_to_int(*to, *v)),
        (Type::Float(to), Value::Bool(b)) => Value::Float(*to, if *b { 1.0 } else { 0.0 }),
        (Type::Float(to), Value::Int(_, v)) => Value::Float(*to, ops::int_to_float(*to, *v)),
        (Type::Float(to), Value::Float(_, v)) => Value::Float(*to, ops::float_to_float(*to, *v)),
        (target, other) => bail_internal!(span, "constant evaluation: converting {other:?} to `{target}`"),
    })
}

#[cfg(test)]
mod tests {
    //! Operand kinds the checker never lets through, evaluated directly: each is an internal
    //! error with the expression's span, never a plausible value.

    use super::*;
    use crate::types::IntTy;

    const SPAN: Span = Span { lo: 2, hi: 9 };

    fn int(value: i128) -> Value {
        Value::Int(IntTy::I64, value)
    }

    fn internal(result: Eval<Value>) -> InternalError {
        match result {
            Err(EvalError::Internal(error)) => error,
            other => panic!("expected an internal error, got {other:?}"),
        }
    }

    #[test]
    fn integer_true_division_is_an_internal_error_not_its_left_operand() {
        let error = internal(binary(BinOp::Div, &int(7), &int(2), SPAN));
        assert_eq!(error.span, Some(SPAN));
        assert!(error.message.contains("`/` applied to integers"), "{}", error.message);
        internal(binary(BinOp::Pow, &int(2), &int(3), SPAN));
    }

    #[test]
    fn operators_on_the_wrong_kinds_are_internal_errors() {
        let float = Value::Float(crate::types::FloatTy::F64, 1.5);
        internal(binary(BinOp::FloorDiv, &float, &float, SPAN));
        internal(binary(BinOp::Add, &Value::Bool(true), &Value::Bool(false), SPAN));
        internal(binary(BinOp::Add, &int(1), &Value::Bool(false), SPAN));
        internal(binary(BinOp::Mul, &Value::Array(vec![int(1)]), &int(-1), SPAN));
        assert!(unary(UnOp::Not, &int(1), SPAN).is_err());
        assert!(compare(CmpOp::Lt, &Value::Bool(true), &Value::Bool(false), SPAN).is_err());
        assert!(min_max(true, &int(1), &Value::Bool(true), SPAN).is_err());
        assert!(abs(&Value::Bool(true), SPAN).is_err());
        assert!(convert(&Type::Tuple(Vec::new()), &int(1), SPAN).is_err());
        assert!(element(&int(1), 0, SPAN).is_err());
        // A real fault stays the program's.
        assert!(matches!(
            binary(BinOp::FloorDiv, &int(1), &int(0), SPAN),
            Err(EvalError::Fault(Fault::DivisionByZero, _))
        ));
        assert_eq!(
            element(&Value::Array(vec![int(1)]), 3, SPAN),
            Ok(Err(Fault::IndexOutOfBounds { index: 3, len: 1 }))
        );
    }

    #[test]
    fn a_non_bool_condition_is_an_internal_error_and_says_so_in_its_diagnostic() {
        let cond = Expr { kind: ExprKind::Int(1), span: SPAN, ty: Type::Int(IntTy::I64) };
        let one = Expr { kind: ExprKind::Int(1), span: SPAN, ty: Type::Int(IntTy::I64) };
        let expr = Expr {
            kind: ExprKind::IfElse { cond: Box::new(cond), then: Box::new(one.clone()), orelse: Box::new(one) },
            span: SPAN,
            ty: Type::Int(IntTy::I64),
        };
        let Err(error) = eval(&expr) else { panic!("an integer condition must not evaluate") };
        let diagnostic = error.into_diagnostic();
        assert!(diagnostic.message.starts_with("internal compiler error: "), "{}", diagnostic.message);
        assert_eq!(diagnostic.primary.span, SPAN);
    }
}
