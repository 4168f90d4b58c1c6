//! Values crossing the runtime's edges: text fields parsed into typed input columns, typed
//! [`Value`]s from embedding programs, and results flattened and printed so that they parse
//! back exactly.

use naas_ir::interp::Slot;
use naas_ir::ir::{Scalar, ScalarTy};
use naas_lang::types::FloatTy;
use naas_target_native::values::ColumnBuf;
use serde::{Deserialize, Serialize};

/// A value given by an embedding program (a timely record's field) or produced as a result.
/// Integers keep their sign class; they are range-checked against the column they fill.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(v) => write!(f, "{v}"),
            Value::UInt(v) => write!(f, "{v}"),
            // `{:?}` is the shortest text that parses back to the same f64.
            Value::Float(x) => write!(f, "{x:?}"),
        }
    }
}

/// Texts that mean "no value" in data files; they are rejected rather than read as zero.
const MISSING: [&str; 5] = ["NA", "N/A", "NULL", "null", "None"];

/// Parses a text field as `buf`'s type and appends it. The error says what is wrong with the
/// text (the caller adds where it is).
pub fn push_text(buf: &mut ColumnBuf, field: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(field).map_err(|_| "the field is not valid UTF-8".to_string())?;
    let text = text.trim_matches(|c: char| c == ' ' || c == '\t');
    if text.is_empty() {
        return Err("the field is empty".to_string());
    }
    // Missing-value markers start with a letter; numbers never do (except `inf`/`nan`, which
    // are not markers), so most fields skip the comparison.
    if text.as_bytes()[0].is_ascii_alphabetic() && MISSING.contains(&text) {
        return Err(format!("`{text}` marks a missing value"));
    }
    macro_rules! int {
        ($v:expr, $t:ty) => {
            match text.parse::<$t>() {
                Ok(x) => {
                    $v.push(x);
                    Ok(())
                }
                Err(_) => Err(int_problem(text, stringify!($t), <$t>::MIN as i128, <$t>::MAX as i128)),
            }
        };
    }
    match buf {
        ColumnBuf::Bool(v) => match text {
            "true" | "True" | "TRUE" | "1" => {
                v.push(1);
                Ok(())
            }
            "false" | "False" | "FALSE" | "0" => {
                v.push(0);
                Ok(())
            }
            _ => Err(format!("`{text}` is not a bool (write true, false, 1 or 0)")),
        },
        ColumnBuf::I8(v) => int!(v, i8),
        ColumnBuf::I16(v) => int!(v, i16),
        ColumnBuf::I32(v) => int!(v, i32),
        ColumnBuf::I64(v) => int!(v, i64),
        ColumnBuf::U8(v) => int!(v, u8),
        ColumnBuf::U16(v) => int!(v, u16),
        ColumnBuf::U32(v) => int!(v, u32),
        ColumnBuf::U64(v) => int!(v, u64),
        ColumnBuf::F32(v) => match text.parse::<f32>() {
            Ok(x) => {
                v.push(x);
                Ok(())
            }
            Err(_) => Err(format!("`{text}` is not a valid f32")),
        },
        ColumnBuf::F64(v) => match text.parse::<f64>() {
            Ok(x) => {
                v.push(x);
                Ok(())
            }
            Err(_) => Err(format!("`{text}` is not a valid f64")),
        },
    }
}

/// Parses a text field as a value of type `ty` (see [`push_text`]).
pub fn parse_value(ty: ScalarTy, field: &[u8]) -> Result<Value, String> {
    let mut buf = ColumnBuf::new(ty);
    push_text(&mut buf, field)?;
    let value = match buf {
        ColumnBuf::Bool(v) => Value::Bool(v[0] != 0),
        ColumnBuf::I8(v) => Value::Int(i64::from(v[0])),
        ColumnBuf::I16(v) => Value::Int(i64::from(v[0])),
        ColumnBuf::I32(v) => Value::Int(i64::from(v[0])),
        ColumnBuf::I64(v) => Value::Int(v[0]),
        ColumnBuf::U8(v) => Value::UInt(u64::from(v[0])),
        ColumnBuf::U16(v) => Value::UInt(u64::from(v[0])),
        ColumnBuf::U32(v) => Value::UInt(u64::from(v[0])),
        ColumnBuf::U64(v) => Value::UInt(v[0]),
        ColumnBuf::F32(v) => Value::Float(f64::from(v[0])),
        ColumnBuf::F64(v) => Value::Float(v[0]),
    };
    Ok(value)
}

fn int_problem(text: &str, ty: &str, min: i128, max: i128) -> String {
    match text.parse::<i128>() {
        Ok(_) => format!("`{text}` is out of range for {ty} ({min} to {max})"),
        Err(_) if text.parse::<f64>().is_ok() => format!("`{text}` is not an integer ({ty} expected)"),
        Err(_) => format!("`{text}` is not a valid {ty}"),
    }
}

/// Appends a [`Value`] to `buf`, checking that it fits the column's type exactly.
pub fn push_value(buf: &mut ColumnBuf, value: Value) -> Result<(), String> {
    let ty = buf.column().ty();
    let scalar = match (ty, value) {
        (ScalarTy::Bool, Value::Bool(b)) => Scalar::Bool(b),
        (ScalarTy::Int(int), Value::Int(v)) if int.contains(i128::from(v)) => Scalar::Int(int, i128::from(v)),
        (ScalarTy::Int(int), Value::UInt(v)) if int.contains(i128::from(v)) => Scalar::Int(int, i128::from(v)),
        (ScalarTy::Float(FloatTy::F64), Value::Float(x)) => Scalar::Float(FloatTy::F64, x),
        (ScalarTy::Float(FloatTy::F32), Value::Float(x))
            if f64::from(x as f32).to_bits() == x.to_bits() || x.is_nan() =>
        {
            Scalar::Float(FloatTy::F32, x)
        }
        _ => return Err(format!("{value:?} does not fit a column of type {}", ty.name())),
    };
    buf.push(scalar);
    Ok(())
}

/// The result slots of one key, flattened into one value per result column.
pub fn flatten(slots: &[Slot]) -> Vec<Value> {
    let mut out = Vec::new();
    for slot in slots {
        match slot {
            Slot::Scalar(s) => out.push(to_value(*s)),
            Slot::Array(items) => out.extend(items.iter().map(|s| to_value(*s))),
        }
    }
    out
}

fn to_value(scalar: Scalar) -> Value {
    match scalar {
        Scalar::Bool(b) => Value::Bool(b),
        Scalar::Int(ty, v) if ty.signed() => Value::Int(v as i64),
        Scalar::Int(_, v) => Value::UInt(v as u64),
        // An f32 widened to f64 prints its own shortest text through the f32 formatter.
        Scalar::Float(_, x) => Value::Float(x),
    }
}

/// Prints a result value of column type `ty` so that it parses back exactly as that type.
pub fn format_value(value: Value, ty: ScalarTy) -> String {
    match (value, ty) {
        (Value::Float(x), ScalarTy::Float(FloatTy::F32)) => format!("{:?}", x as f32),
        (value, _) => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use naas_lang::types::IntTy;

    fn parse(ty: ScalarTy, text: &str) -> Result<ColumnBuf, String> {
        let mut buf = ColumnBuf::new(ty);
        push_text(&mut buf, text.as_bytes()).map(|()| buf)
    }

    #[test]
    fn parses_each_type_and_rejects_bad_text_with_a_reason() {
        let i32_ty = ScalarTy::Int(IntTy::I32);
        assert_eq!(parse(i32_ty, " -17 ").unwrap(), ColumnBuf::I32(vec![-17]));
        assert_eq!(parse(ScalarTy::Int(IntTy::U8), "300").unwrap_err(), "`300` is out of range for u8 (0 to 255)");
        assert_eq!(parse(i32_ty, "1.5").unwrap_err(), "`1.5` is not an integer (i32 expected)");
        assert_eq!(parse(i32_ty, "abc").unwrap_err(), "`abc` is not a valid i32");
        assert_eq!(parse(i32_ty, "").unwrap_err(), "the field is empty");
        assert_eq!(parse(i32_ty, "NA").unwrap_err(), "`NA` marks a missing value");
        assert_eq!(parse(ScalarTy::Bool, "true").unwrap(), ColumnBuf::Bool(vec![1]));
        assert_eq!(parse(ScalarTy::Float(FloatTy::F64), "2.5e3").unwrap(), ColumnBuf::F64(vec![2500.0]));
    }

    #[test]
    fn floats_print_so_that_they_parse_back() {
        for x in [0.1, 1.0 / 3.0, 1e300, -2.5e-310, f64::MAX, 123456789.0] {
            let text = format_value(Value::Float(x), ScalarTy::Float(FloatTy::F64));
            assert_eq!(text.parse::<f64>().unwrap().to_bits(), x.to_bits(), "{text}");
        }
        let x = 0.1f32;
        let text = format_value(Value::Float(f64::from(x)), ScalarTy::Float(FloatTy::F32));
        assert_eq!(text, "0.1");
    }

    #[test]
    fn values_are_range_checked_against_their_column() {
        let mut buf = ColumnBuf::new(ScalarTy::Int(IntTy::U8));
        assert!(push_value(&mut buf, Value::Int(255)).is_ok());
        assert!(push_value(&mut buf, Value::Int(256)).is_err());
        assert!(push_value(&mut buf, Value::Int(-1)).is_err());
        assert!(push_value(&mut buf, Value::Float(1.0)).is_err());
        assert_eq!(buf, ColumnBuf::U8(vec![255]));
    }
}
