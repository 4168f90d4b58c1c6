//! Compile-time and run-time values. Integers carry their type and an `i128` in its range.

use std::fmt;
use std::sync::Arc;

use crate::types::{FloatTy, IntTy, RecordType, Type};

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Bool(bool),
    Int(IntTy, i128),
    /// f32 values are carried as the f64 with the same value.
    Float(FloatTy, f64),
    Tuple(Vec<Value>),
    Array(Vec<Value>),
    Record(Arc<RecordType>, Vec<Value>),
}

impl Value {
    /// The value every scalar slot of `ty` starts from: zero, `False`, `0.0`.
    pub fn zero(ty: &Type) -> Value {
        match ty {
            Type::Bool | Type::Var(..) | Type::Error => Value::Bool(false),
            Type::Int(int) => Value::Int(*int, 0),
            Type::Float(float) => Value::Float(*float, 0.0),
            Type::Tuple(items) => Value::Tuple(items.iter().map(Value::zero).collect()),
            Type::Array(elem, len) => Value::Array(vec![Value::zero(elem); *len as usize]),
            Type::Record(record) => {
                Value::Record(record.clone(), record.fields.iter().map(|(_, ty)| Value::zero(ty)).collect())
            }
        }
    }

    pub fn as_int(&self) -> Option<i128> {
        match self {
            Value::Int(_, value) => Some(*value),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(value) => Some(*value),
            _ => None,
        }
    }
}

/// Prints values in naas syntax: `(1, -2.5)`, `[0, 0]`, `Latency(micros=3)`. Floats print
/// with enough digits to parse back to the same value.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::Int(_, value) => write!(f, "{value}"),
            Value::Float(FloatTy::F32, value) => write!(f, "{:?}", *value as f32),
            Value::Float(FloatTy::F64, value) => write!(f, "{value:?}"),
            Value::Tuple(items) => {
                f.write_str("(")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                if items.len() == 1 {
                    f.write_str(",")?;
                }
                f.write_str(")")
            }
            Value::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Record(record, values) => {
                write!(f, "{}(", record.name)?;
                for (i, ((name, _), value)) in record.fields.iter().zip(values).enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{name}={value}")?;
                }
                f.write_str(")")
            }
        }
    }
}
