//! Names the language predefines: conversions, helper functions, aggregate calls and
//! numeric limits. None of them can be redefined (E0105).

use crate::types::{FloatTy, IntTy, Type};
use crate::value::Value;

/// Functions callable anywhere (besides conversions, which are named after their type).
pub const FUNCTIONS: &[&str] = &["min", "max", "abs", "len", "range"];

/// Aggregate calls, allowed only in the return of a built-in aggregate.
pub const AGGREGATE_CALLS: &[&str] = &["min", "max", "sum", "count", "avg", "any", "all"];

/// Type names that are also conversion functions.
pub fn conversion_target(name: &str) -> Option<Type> {
    match name {
        "bool" => Some(Type::Bool),
        _ => IntTy::from_name(name).map(Type::Int).or_else(|| FloatTy::from_name(name).map(Type::Float)),
    }
}

/// The predefined numeric limits: `I8_MIN` ... `U64_MAX`, `F32_MAX`, `F64_MIN`, ...
/// `F64_MIN` is the most negative finite f64 (as in Rust), not the smallest positive one.
pub fn constant(name: &str) -> Option<Value> {
    if let Some(prefix) = name.strip_suffix("_MIN").or_else(|| name.strip_suffix("_MAX")) {
        let is_max = name.ends_with("_MAX");
        let lower = prefix.to_ascii_lowercase();
        if lower.to_ascii_uppercase() != prefix {
            return None;
        }
        if let Some(ty) = IntTy::from_name(&lower) {
            return Some(Value::Int(ty, if is_max { ty.max_value() } else { ty.min_value() }));
        }
        return match lower.as_str() {
            "f32" => Some(Value::Float(FloatTy::F32, f64::from(if is_max { f32::MAX } else { f32::MIN }))),
            "f64" => Some(Value::Float(FloatTy::F64, if is_max { f64::MAX } else { f64::MIN })),
            _ => None,
        };
    }
    None
}

pub fn is_type_name(name: &str) -> bool {
    conversion_target(name).is_some() || matches!(name, "tuple" | "array")
}

/// True for every name a program may not define itself.
pub fn is_reserved(name: &str) -> bool {
    FUNCTIONS.contains(&name) || AGGREGATE_CALLS.contains(&name) || is_type_name(name) || constant(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_cover_every_numeric_type() {
        assert_eq!(constant("I64_MIN"), Some(Value::Int(IntTy::I64, i128::from(i64::MIN))));
        assert_eq!(constant("U32_MAX"), Some(Value::Int(IntTy::U32, i128::from(u32::MAX))));
        assert_eq!(constant("F64_MAX"), Some(Value::Float(FloatTy::F64, f64::MAX)));
        assert_eq!(constant("i64_MIN"), None);
        assert_eq!(constant("X_MIN"), None);
        assert!(is_reserved("range") && is_reserved("u8") && is_reserved("count") && !is_reserved("clamp"));
    }
}
