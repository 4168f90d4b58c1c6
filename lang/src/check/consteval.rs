//! Compile-time evaluation of typed constant expressions (typed `const`s, aggregate
//! identities), and the value-level operators it is built from. Scalar semantics come from
//! [`crate::ops`]; this module only lifts them to [`Value`]s.

use crate::ast::{BinOp, CmpOp, Expr, ExprKind, LogicOp, UnOp};
use crate::diagnostics::{Code, Diagnostic};
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
        }
    }
}

/// Evaluates a checked expression whose types are all concrete.
pub fn eval(expr: &Expr<Type>) -> Result<Value, EvalError> {
    let fault = |f: Fault| EvalError::Fault(f, expr.span);
    match &expr.kind {
        ExprKind::Int(value) => match &expr.ty {
            Type::Int(ty) => Ok(Value::Int(*ty, *value)),
            Type::Float(ty) => Ok(Value::Float(*ty, ops::int_to_float(*ty, *value))),
            _ => Err(EvalError::NotConstant(expr.span)),
        },
        ExprKind::Float(value) => match &expr.ty {
            Type::Float(ty) => Ok(Value::Float(*ty, ops::float_round(*ty, *value))),
            _ => Err(EvalError::NotConstant(expr.span)),
        },
        ExprKind::Bool(value) => Ok(Value::Bool(*value)),
        ExprKind::Const(value) => Ok(value.clone()),
        ExprKind::Name(_) => Err(EvalError::NotConstant(expr.span)),
        ExprKind::Unary(op, operand) => Ok(unary(*op, &eval(operand)?)),
        ExprKind::Binary(op, a, b) => binary(*op, &eval(a)?, &eval(b)?).map_err(fault),
        ExprKind::Compare(op, a, b) => Ok(Value::Bool(compare(*op, &eval(a)?, &eval(b)?))),
        ExprKind::Logic(op, a, b) => {
            let a = eval(a)?.as_bool().unwrap_or(false);
            match (op, a) {
                (LogicOp::And, false) => Ok(Value::Bool(false)),
                (LogicOp::Or, true) => Ok(Value::Bool(true)),
                _ => eval(b),
            }
        }
        ExprKind::IfElse { cond, then, orelse } => {
            if eval(cond)?.as_bool().unwrap_or(false) {
                eval(then)
            } else {
                eval(orelse)
            }
        }
        ExprKind::Call { func, args } => {
            let values = args.iter().map(|arg| eval(arg.value())).collect::<Result<Vec<_>, _>>()?;
            match (func.name.as_str(), values.as_slice()) {
                ("min", [first, rest @ ..]) => Ok(rest.iter().fold(first.clone(), |acc, v| min_max(true, &acc, v))),
                ("max", [first, rest @ ..]) => Ok(rest.iter().fold(first.clone(), |acc, v| min_max(false, &acc, v))),
                ("abs", [value]) => Ok(abs(value)),
                (name, [value]) if super::builtins::conversion_target(name).is_some() => Ok(convert(&expr.ty, value)),
                _ => match &expr.ty {
                    Type::Record(record) if record.name == func.name => Ok(Value::Record(record.clone(), values)),
                    _ => Err(EvalError::NotConstant(expr.span)),
                },
            }
        }
        ExprKind::Index(base, index) => {
            let base = eval(base)?;
            let index = eval(index)?.as_int().unwrap_or(-1);
            element(&base, index).map_err(fault)
        }
        ExprKind::Field(base, field) => match eval(base)? {
            Value::Record(record, values) => record
                .field(&field.name)
                .and_then(|(i, _)| values.get(i).cloned())
                .ok_or(EvalError::NotConstant(expr.span)),
            _ => Err(EvalError::NotConstant(expr.span)),
        },
        ExprKind::Tuple(items) => Ok(Value::Tuple(items.iter().map(eval).collect::<Result<_, _>>()?)),
        ExprKind::Array(items) => Ok(Value::Array(items.iter().map(eval).collect::<Result<_, _>>()?)),
    }
}

/// Reads element `index` of an array or tuple.
pub fn element(base: &Value, index: i128) -> Result<Value, Fault> {
    let items = match base {
        Value::Array(items) | Value::Tuple(items) => items,
        _ => return Err(Fault::IndexOutOfBounds { index, len: 0 }),
    };
    usize::try_from(index)
        .ok()
        .and_then(|i| items.get(i).cloned())
        .ok_or(Fault::IndexOutOfBounds { index, len: u32::try_from(items.len()).unwrap_or(u32::MAX) })
}

pub fn unary(op: UnOp, value: &Value) -> Value {
    match (op, value) {
        (UnOp::Pos, v) => v.clone(),
        (UnOp::Neg, Value::Int(ty, v)) => Value::Int(*ty, ops::int_neg(*ty, *v)),
        (UnOp::Neg, Value::Float(ty, v)) => Value::Float(*ty, -v),
        (UnOp::BitNot, Value::Int(ty, v)) => Value::Int(*ty, ops::int_bit_not(*ty, *v)),
        (UnOp::Not, Value::Bool(b)) => Value::Bool(!b),
        (_, v) => v.clone(),
    }
}

/// `a op b` on values of the checked types. `[v] * n` repeats arrays.
pub fn binary(op: BinOp, a: &Value, b: &Value) -> Result<Value, Fault> {
    Ok(match (a, b) {
        (Value::Int(ty, x), Value::Int(_, y)) => {
            let (ty, x, y) = (*ty, *x, *y);
            Value::Int(
                ty,
                match op {
                    BinOp::Add => ops::int_add(ty, x, y),
                    BinOp::Sub => ops::int_sub(ty, x, y),
                    BinOp::Mul => ops::int_mul(ty, x, y),
                    BinOp::FloorDiv => ops::int_floor_div(ty, x, y)?,
                    BinOp::Mod => ops::int_mod(ty, x, y)?,
                    BinOp::Shl => ops::int_shl(ty, x, y)?,
                    BinOp::Shr => ops::int_shr(ty, x, y)?,
                    BinOp::BitAnd => ops::int_and(x, y),
                    BinOp::BitOr => ops::int_or(x, y),
                    BinOp::BitXor => ops::int_xor(x, y),
                    BinOp::Div | BinOp::Pow => x,
                },
            )
        }
        (Value::Float(ty, x), Value::Float(_, y)) => {
            let float_op = match op {
                BinOp::Add => FloatOp::Add,
                BinOp::Sub => FloatOp::Sub,
                BinOp::Mul => FloatOp::Mul,
                _ => FloatOp::Div,
            };
            Value::Float(*ty, ops::float_arith(*ty, float_op, *x, *y))
        }
        (Value::Bool(x), Value::Bool(y)) => Value::Bool(match op {
            BinOp::BitAnd => x & y,
            BinOp::BitOr => x | y,
            _ => x ^ y,
        }),
        (Value::Array(items), count) => {
            let count = usize::try_from(count.as_int().unwrap_or(0)).unwrap_or(0);
            let mut repeated = Vec::with_capacity(items.len() * count);
            for _ in 0..count {
                repeated.extend(items.iter().cloned());
            }
            Value::Array(repeated)
        }
        (a, _) => a.clone(),
    })
}

/// Comparison: IEEE for floats (NaN is unequal to everything); `==` is structural on
/// tuples, arrays and records.
pub fn compare(op: CmpOp, a: &Value, b: &Value) -> bool {
    match op {
        CmpOp::Eq => equal(a, b),
        CmpOp::Ne => !equal(a, b),
        _ => {
            let ordering = match (a, b) {
                (Value::Int(_, x), Value::Int(_, y)) => x.partial_cmp(y),
                (Value::Float(_, x), Value::Float(_, y)) => x.partial_cmp(y),
                _ => None,
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
    }
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
pub fn min_max(is_min: bool, a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Int(ty, x), Value::Int(_, y)) => Value::Int(*ty, if is_min { *x.min(y) } else { *x.max(y) }),
        (Value::Float(ty, x), Value::Float(_, y)) => {
            Value::Float(*ty, if is_min { ops::float_min(*x, *y) } else { ops::float_max(*x, *y) })
        }
        _ => a.clone(),
    }
}

pub fn abs(value: &Value) -> Value {
    match value {
        Value::Int(ty, v) => Value::Int(*ty, ops::int_abs(*ty, *v)),
        Value::Float(ty, v) => Value::Float(*ty, v.abs()),
        other => other.clone(),
    }
}

/// A conversion `T(x)` of a scalar to the scalar type `target`.
pub fn convert(target: &Type, value: &Value) -> Value {
    match (target, value) {
        (Type::Bool, Value::Bool(b)) => Value::Bool(*b),
        (Type::Bool, Value::Int(_, v)) => Value::Bool(*v != 0),
        (Type::Bool, Value::Float(_, v)) => Value::Bool(*v != 0.0),
        (Type::Int(to), Value::Bool(b)) => Value::Int(*to, i128::from(*b)),
        (Type::Int(to), Value::Int(_, v)) => Value::Int(*to, ops::int_to_int(*to, *v)),
        (Type::Int(to), Value::Float(_, v)) => Value::Int(*to, ops::float_to_int(*to, *v)),
        (Type::Float(to), Value::Bool(b)) => Value::Float(*to, if *b { 1.0 } else { 0.0 }),
        (Type::Float(to), Value::Int(_, v)) => Value::Float(*to, ops::int_to_float(*to, *v)),
        (Type::Float(to), Value::Float(_, v)) => Value::Float(*to, ops::float_to_float(*to, *v)),
        (_, other) => other.clone(),
    }
}
