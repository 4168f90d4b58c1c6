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

/// The most characters of a value (or a column name) that an error message quotes; the rest
/// is cut and its length given, so a 10 MB field does not become a 10 MB message.
pub const ECHO_LIMIT: usize = 64;

/// `text` as an error message quotes it (see [`naas_stdx::excerpt`]): whole if short, else
/// its first [`ECHO_LIMIT`] characters and its length in characters.
pub fn excerpt(text: &str) -> String {
    naas_stdx::excerpt(text, ECHO_LIMIT).into_owned()
}

/// Why a text field or a value does not fit a column. Quoted texts are already cut with
/// [`excerpt`]; the caller adds where the field is.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ValueError {
    #[error("the field is not valid UTF-8")]
    NotUtf8,
    #[error("the field is empty")]
    Empty,
    /// A missing-value marker (`NA`, `NULL`, ...), which is refused rather than read as zero.
    #[error("`{0}` marks a missing value")]
    Missing(String),
    #[error("`{text}` is out of range for {ty} ({min} to {max})")]
    OutOfRange { text: String, ty: &'static str, min: i128, max: i128 },
    /// A number with a non-zero fraction in an integer column.
    #[error("`{text}` is not an integer ({ty} expected)")]
    NotInteger { text: String, ty: &'static str },
    #[error("`{text}` is not a valid {ty}")]
    Malformed { text: String, ty: &'static str },
    #[error("`{0}` is not a bool (write true, false, 1 or 0)")]
    NotBool(String),
    /// A [`Value`] of another type, or out of the column type's range.
    #[error("{value:?} does not fit a column of type {ty}")]
    DoesNotFit { value: Value, ty: &'static str },
}

/// What a decimal number with a fraction or an exponent (`11.0`, `-1.8e1`) says about
/// integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decimal {
    /// Not a decimal number at all.
    Malformed,
    /// Its value is this integer exactly (`11.0`, `1e3`).
    Integral(i128),
    /// Its value has a non-zero fraction (`11.5`).
    Fractional,
    /// Its value is an integer beyond 128 bits.
    Huge,
}

/// Reads `[+-]digits[.digits][(e|E)[+-]digits]` exactly, in decimal (no rounding through a
/// float): data tools write integer columns as `11.0` (pandas, for a nullable column), and
/// such a value is an integer.
fn decimal(text: &str) -> Decimal {
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.len() + fraction.len() == 0 || !all_digits(whole) || !all_digits(fraction) {
        return Decimal::Malformed;
    }
    // The exponent saturates: beyond a few dozen digits only its sign matters.
    let exponent: i128 = match exponent {
        None => 0,
        Some(e) => {
            let (sign, digits) = match e.as_bytes().first() {
                Some(b'-') => (-1, &e[1..]),
                Some(b'+') => (1, &e[1..]),
                _ => (1, e),
            };
            if digits.is_empty() || !all_digits(digits) {
                return Decimal::Malformed;
            }
            let magnitude = digits.bytes().fold(0i128, |n, d| (n * 10 + i128::from(d - b'0')).min(1 << 40));
            sign * magnitude
        }
    };
    // The value is `digits * 10^scale`.
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Decimal::Integral(0);
    }
    let scale = exponent - fraction.len() as i128;
    let integral = if scale < 0 {
        let cut = usize::try_from(-scale).unwrap_or(usize::MAX);
        if cut > digits.len() || !digits[digits.len() - cut..].bytes().all(|b| b == b'0') {
            return Decimal::Fractional;
        }
        digits[..digits.len() - cut].to_string()
    } else {
        // i128 has 39 digits: more is out of every integer type's range.
        if digits.len() as i128 + scale > 39 {
            return Decimal::Huge;
        }
        format!("{digits}{}", "0".repeat(scale as usize))
    };
    // `digits` starts with a non-zero digit, so `integral` is not empty: only overflow fails.
    match integral.parse::<i128>() {
        Ok(value) => Decimal::Integral(if negative { -value } else { value }),
        Err(_) => Decimal::Huge,
    }
}

/// Parses an integer field of type `T`: plain decimal, or a decimal number whose fraction is
/// zero (`11.0`, `-18.0`, `1e3`).
fn parse_int<T: TryFrom<i128> + std::str::FromStr>(
    text: &str,
    ty: &'static str,
    min: i128,
    max: i128,
) -> Result<T, ValueError> {
    if let Ok(value) = text.parse::<T>() {
        return Ok(value);
    }
    let out_of_range = || ValueError::OutOfRange { text: excerpt(text), ty, min, max };
    match decimal(text) {
        Decimal::Integral(value) => T::try_from(value).map_err(|_| out_of_range()),
        Decimal::Huge => Err(out_of_range()),
        Decimal::Fractional => Err(ValueError::NotInteger { text: excerpt(text), ty }),
        Decimal::Malformed => Err(int_problem(text, ty, min, max)),
    }
}

/// `field` as an integer when it is an optional `-` and 1 to 18 decimal digits (so it fits an
/// `i64`), the form nearly every integer field has; `None` for anything else.
#[inline]
fn plain_integer(field: &[u8]) -> Option<i64> {
    let (negative, digits) = match field.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, field),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut value: i64 = 0;
    for &byte in digits {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value * 10 + i64::from(digit);
    }
    Some(if negative { -value } else { value })
}

/// Parses a text field as `buf`'s type and appends it. The error says what is wrong with the
/// text (the caller adds where it is).
pub fn push_text(buf: &mut ColumnBuf, field: &[u8]) -> Result<(), ValueError> {
    // Most integer fields are plain decimal digits: read them without validating UTF-8,
    // trimming or looking for markers (none of which can change what such a field means).
    macro_rules! plain {
        ($v:expr, $t:ty) => {
            if let Some(value) = plain_integer(field).and_then(|n| <$t>::try_from(n).ok()) {
                $v.push(value);
                return Ok(());
            }
        };
    }
    match buf {
        ColumnBuf::I8(v) => plain!(v, i8),
        ColumnBuf::I16(v) => plain!(v, i16),
        ColumnBuf::I32(v) => plain!(v, i32),
        ColumnBuf::I64(v) => plain!(v, i64),
        ColumnBuf::U8(v) => plain!(v, u8),
        ColumnBuf::U16(v) => plain!(v, u16),
        ColumnBuf::U32(v) => plain!(v, u32),
        ColumnBuf::U64(v) => plain!(v, u64),
        _ => {}
    }
    push_parsed(buf, field)
}

/// [`push_text`] for any field: validated, trimmed, markers and decimal forms recognised.
fn push_parsed(buf: &mut ColumnBuf, field: &[u8]) -> Result<(), ValueError> {
    let text = std::str::from_utf8(field).map_err(|_| ValueError::NotUtf8)?;
    let text = text.trim_matches(|c: char| c == ' ' || c == '\t');
    if text.is_empty() {
        return Err(ValueError::Empty);
    }
    // Missing-value markers start with a letter; numbers never do (except `inf`/`nan`, which
    // are not markers), so most fields skip the comparison.
    if text.as_bytes()[0].is_ascii_alphabetic() && MISSING.contains(&text) {
        return Err(ValueError::Missing(text.to_string()));
    }
    macro_rules! int {
        ($v:expr, $t:ty) => {
            parse_int::<$t>(text, stringify!($t), <$t>::MIN as i128, <$t>::MAX as i128).map(|x| $v.push(x))
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
            _ => Err(ValueError::NotBool(excerpt(text))),
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
            Err(_) => Err(ValueError::Malformed { text: excerpt(text), ty: "f32" }),
        },
        ColumnBuf::F64(v) => match text.parse::<f64>() {
            Ok(x) => {
                v.push(x);
                Ok(())
            }
            Err(_) => Err(ValueError::Malformed { text: excerpt(text), ty: "f64" }),
        },
    }
}

/// Parses a text field as a value of type `ty` (see [`push_text`]).
pub fn parse_value(ty: ScalarTy, field: &[u8]) -> Result<Value, ValueError> {
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

fn int_problem(text: &str, ty: &'static str, min: i128, max: i128) -> ValueError {
    let shown = excerpt(text);
    match text.parse::<i128>() {
        Ok(_) => ValueError::OutOfRange { text: shown, ty, min, max },
        Err(_) if text.parse::<f64>().is_ok() => ValueError::NotInteger { text: shown, ty },
        Err(_) => ValueError::Malformed { text: shown, ty },
    }
}

/// Whether the last value of a float column is finite (true for every other column).
pub fn last_is_finite(buf: &ColumnBuf) -> bool {
    match buf {
        ColumnBuf::F32(v) => v.last().is_none_or(|x| x.is_finite()),
        ColumnBuf::F64(v) => v.last().is_none_or(|x| x.is_finite()),
        _ => true,
    }
}

/// Appends a [`Value`] to `buf`, checking that it fits the column's type exactly.
pub fn push_value(buf: &mut ColumnBuf, value: Value) -> Result<(), ValueError> {
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
        _ => return Err(ValueError::DoesNotFit { value, ty: ty.name() }),
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

/// A result scalar as a value: signed integers as `Int`, unsigned as `UInt`, floats widened.
pub fn to_value(scalar: Scalar) -> Value {
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
    let mut text = Vec::new();
    write_value(&mut text, value, ty);
    String::from_utf8_lossy(&text).into_owned()
}

/// Appends [`format_value`]'s text to `out`, without allocating a string of its own.
pub fn write_value(out: &mut Vec<u8>, value: Value, ty: ScalarTy) {
    use std::io::Write;
    // Integers take most of a result row: `itoa` writes them without the formatting
    // machinery (same digits as `{}`). Writing into a `Vec` cannot fail.
    let _ = match (value, ty) {
        (Value::Int(v), _) => {
            out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
            Ok(())
        }
        (Value::UInt(v), _) => {
            out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
            Ok(())
        }
        (Value::Float(x), ScalarTy::Float(FloatTy::F32)) => write!(out, "{:?}", x as f32),
        (Value::Float(x), _) => write!(out, "{x:?}"),
        (Value::Bool(b), _) => write!(out, "{b}"),
    };
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use naas_lang::types::IntTy;
    use proptest::prelude::*;

    /// The column holding `text` parsed as `ty`.
    fn parse(ty: ScalarTy, text: &str) -> Result<ColumnBuf, ValueError> {
        let mut buf = ColumnBuf::new(ty);
        push_text(&mut buf, text.as_bytes()).map(|()| buf)
    }

    #[test]
    fn parses_each_type_and_rejects_bad_text_with_a_reason() {
        let i32_ty = ScalarTy::Int(IntTy::I32);
        assert_eq!(parse(i32_ty, " -17 ").unwrap(), ColumnBuf::I32(vec![-17]));
        assert_eq!(
            parse(ScalarTy::Int(IntTy::U8), "300").unwrap_err().to_string(),
            "`300` is out of range for u8 (0 to 255)"
        );
        assert_eq!(parse(i32_ty, "1.5").unwrap_err().to_string(), "`1.5` is not an integer (i32 expected)");
        assert_eq!(parse(i32_ty, "abc").unwrap_err().to_string(), "`abc` is not a valid i32");
        assert_eq!(parse(i32_ty, "").unwrap_err().to_string(), "the field is empty");
        assert_eq!(parse(i32_ty, "NA").unwrap_err().to_string(), "`NA` marks a missing value");
        assert_eq!(parse(ScalarTy::Bool, "true").unwrap(), ColumnBuf::Bool(vec![1]));
        assert_eq!(parse(ScalarTy::Float(FloatTy::F64), "2.5e3").unwrap(), ColumnBuf::F64(vec![2500.0]));
    }

    #[test]
    fn integers_written_as_decimals_with_a_zero_fraction_are_read_exactly() {
        let i32_ty = ScalarTy::Int(IntTy::I32);
        let i64_ty = ScalarTy::Int(IntTy::I64);
        let u8_ty = ScalarTy::Int(IntTy::U8);
        assert_eq!(parse(i32_ty, "11.0").unwrap(), ColumnBuf::I32(vec![11]));
        assert_eq!(parse(i32_ty, "-18.0").unwrap(), ColumnBuf::I32(vec![-18]));
        assert_eq!(parse(i32_ty, "1e3").unwrap(), ColumnBuf::I32(vec![1000]));
        assert_eq!(parse(i32_ty, "2.50E1").unwrap(), ColumnBuf::I32(vec![25]));
        assert_eq!(parse(i32_ty, "1500e-2").unwrap(), ColumnBuf::I32(vec![15]));
        assert_eq!(parse(i32_ty, "-0.0").unwrap(), ColumnBuf::I32(vec![0]));
        assert_eq!(parse(i32_ty, "0e99999999999999999999").unwrap(), ColumnBuf::I32(vec![0]));
        // Exact, where a float would round: 2^53 + 1.
        assert_eq!(parse(i64_ty, "9007199254740993.0").unwrap(), ColumnBuf::I64(vec![9_007_199_254_740_993]));
        assert_eq!(parse(i64_ty, "-9223372036854775808.000").unwrap(), ColumnBuf::I64(vec![i64::MIN]));
        assert_eq!(parse(i32_ty, "11.5").unwrap_err().to_string(), "`11.5` is not an integer (i32 expected)");
        assert_eq!(parse(i32_ty, "1e-1").unwrap_err().to_string(), "`1e-1` is not an integer (i32 expected)");
        assert_eq!(
            parse(i32_ty, "1.00000000000000000001").unwrap_err().to_string(),
            "`1.00000000000000000001` is not an integer (i32 expected)"
        );
        assert_eq!(parse(u8_ty, "256.0").unwrap_err().to_string(), "`256.0` is out of range for u8 (0 to 255)");
        assert_eq!(parse(u8_ty, "-1.0").unwrap_err().to_string(), "`-1.0` is out of range for u8 (0 to 255)");
        assert_eq!(
            parse(i64_ty, "1e300").unwrap_err().to_string(),
            "`1e300` is out of range for i64 (-9223372036854775808 to 9223372036854775807)"
        );
        for bad in ["1e", "e3", ".", "1.2.3", "--1", "1e+", "inf", "NaN", "0x10", "1_000"] {
            assert!(parse(i32_ty, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let field = "9".repeat(10_000_000);
        let error = parse(ScalarTy::Int(IntTy::I32), &field).unwrap_err().to_string();
        assert!(error.len() < 200, "{} bytes", error.len());
        assert!(error.contains("… (10000000 characters)"), "{error}");
        let word = "é".repeat(100);
        let cut = excerpt(&word);
        assert_eq!(cut, format!("{}… (100 characters)", "é".repeat(ECHO_LIMIT)));
        assert_eq!(excerpt("short"), "short");
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
        assert_eq!(
            push_value(&mut buf, Value::Float(1.0)),
            Err(ValueError::DoesNotFit { value: Value::Float(1.0), ty: "u8" })
        );
        assert_eq!(
            push_value(&mut buf, Value::Int(256)).map_err(|e| e.to_string()),
            Err("Int(256) does not fit a column of type u8".to_string())
        );
        assert_eq!(buf, ColumnBuf::U8(vec![255]));
    }

    proptest! {
        // Cheap cases: proptest's default count when `PROPTEST_CASES` is unset, and about as
        // many under CI's 10,000.
        #![proptest_config(naas_test_support::proptest_config(40))]
        #[test]
        fn an_integer_and_its_decimal_forms_read_the_same(v in any::<i64>(), zeros in 0usize..4, shift in 0u32..3) {
            let i64_ty = ScalarTy::Int(IntTy::I64);
            let plain = parse(i64_ty, &v.to_string()).unwrap();
            prop_assert_eq!(&parse(i64_ty, &format!("{v}.{}", "0".repeat(zeros))).unwrap(), &plain);
            let scaled = i128::from(v) * 10i128.pow(shift);
            prop_assert_eq!(&parse(i64_ty, &format!("{scaled}e-{shift}")).unwrap(), &plain);
        }

        /// The shortcut for plain integer fields reads what the full parser reads, and leaves
        /// everything else (signs, spaces, overflow, decimals) to it.
        #[test]
        fn plain_integers_read_as_the_full_parser_reads_them(
            text in "[-+ 0-9.e]{0,22}|-?[0-9]{17,20}",
        ) {
            for ty in [IntTy::I8, IntTy::I16, IntTy::I32, IntTy::I64, IntTy::U8, IntTy::U16, IntTy::U32, IntTy::U64] {
                let (mut fast, mut full) = (ColumnBuf::new(ScalarTy::Int(ty)), ColumnBuf::new(ScalarTy::Int(ty)));
                let fast_result = push_text(&mut fast, text.as_bytes()).map_err(|e| e.to_string());
                let full_result = push_parsed(&mut full, text.as_bytes()).map_err(|e| e.to_string());
                prop_assert_eq!(fast_result, full_result);
                prop_assert_eq!(fast, full);
            }
        }

        /// The fast paths of `write_value` write what `Display` writes, for every value.
        #[test]
        fn written_values_are_their_display_text(i in any::<i64>(), u in any::<u64>(), bits in any::<u64>(), b in any::<bool>()) {
            let x = f64::from_bits(bits);
            for (value, ty) in [
                (Value::Int(i), ScalarTy::Int(IntTy::I64)),
                (Value::UInt(u), ScalarTy::Int(IntTy::U64)),
                (Value::Float(x), ScalarTy::Float(FloatTy::F64)),
                (Value::Bool(b), ScalarTy::Bool),
            ] {
                prop_assert_eq!(format_value(value, ty), value.to_string());
            }
        }

        #[test]
        fn any_text_parses_or_says_why_and_never_panics(text in "\\PC{0,24}") {
            for ty in [ScalarTy::Int(IntTy::I8), ScalarTy::Int(IntTy::U64), ScalarTy::Float(FloatTy::F32), ScalarTy::Bool] {
                if let Err(message) = parse(ty, &text) {
                    prop_assert!(!message.to_string().is_empty());
                }
            }
        }
    }
}
