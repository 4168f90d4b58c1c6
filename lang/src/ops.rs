//! The meaning of every scalar operation: integer wrap-around, floor division and modulo,
//! shifts, IEEE floats, min/max and conversions. This module *is* the semantics that spec.md
//! describes; the constant evaluator and the reference interpreter call it, and every
//! backend is tested against it bit for bit.
//!
//! Integers are carried as `i128` holding a value in the range of their type, so each
//! operation is computed exactly and then wrapped to the type (two's complement).

use crate::types::{FloatTy, IntTy};

/// A runtime fault: the operation has no value. Programs stop with a report naming the
/// source location; no target may produce a value instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `//` or `%` with a zero divisor.
    DivisionByZero,
    /// `<<` or `>>` with a negative shift count.
    NegativeShift,
    /// An array index outside `0..len`.
    IndexOutOfBounds { index: i128, len: u32 },
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::DivisionByZero => f.write_str("integer division by zero"),
            Fault::NegativeShift => f.write_str("negative shift count"),
            Fault::IndexOutOfBounds { index, len } => {
                write!(f, "index {index} is out of bounds for an array of length {len}")
            }
        }
    }
}

/// Reduces an exact integer to `ty` by two's-complement wrap-around.
pub fn wrap(ty: IntTy, value: i128) -> i128 {
    let bits = ty.bits();
    let mask = (1i128 << bits) - 1;
    let low = value & mask;
    if ty.signed() && low >= 1i128 << (bits - 1) {
        low - (1i128 << bits)
    } else {
        low
    }
}

/// Integer operators other than shifts. `a` and `b` must already lie in `ty`'s range.
pub fn int_add(ty: IntTy, a: i128, b: i128) -> i128 {
    wrap(ty, a + b)
}

pub fn int_sub(ty: IntTy, a: i128, b: i128) -> i128 {
    wrap(ty, a - b)
}

pub fn int_mul(ty: IntTy, a: i128, b: i128) -> i128 {
    // The exact product of two 64-bit values may not fit an i128; wrapping modulo 2^128 and
    // then to the type's width gives the same low bits.
    wrap(ty, a.wrapping_mul(b))
}

/// Floor division (rounds toward negative infinity), as Python's `//`. `MIN // -1` wraps to `MIN`.
pub fn int_floor_div(ty: IntTy, a: i128, b: i128) -> Result<i128, Fault> {
    if b == 0 {
        return Err(Fault::DivisionByZero);
    }
    Ok(wrap(ty, floor_div_exact(a, b)))
}

/// The remainder of floor division: the result has the sign of the divisor, as Python's `%`.
pub fn int_mod(ty: IntTy, a: i128, b: i128) -> Result<i128, Fault> {
    if b == 0 {
        return Err(Fault::DivisionByZero);
    }
    let q = floor_div_exact(a, b);
    Ok(wrap(ty, a - q * b))
}

/// Exact floor division of values that cannot overflow (both lie in a 64-bit range).
pub fn floor_div_exact(a: i128, b: i128) -> i128 {
    let q = a / b;
    if (a % b != 0) && ((a < 0) != (b < 0)) {
        q - 1
    } else {
        q
    }
}

pub fn int_and(a: i128, b: i128) -> i128 {
    a & b
}

pub fn int_or(a: i128, b: i128) -> i128 {
    a | b
}

pub fn int_xor(a: i128, b: i128) -> i128 {
    a ^ b
}

/// `a << n`: the exact product `a * 2**n` wrapped to the type, so counts at or above the
/// width give 0. A negative count faults.
pub fn int_shl(ty: IntTy, a: i128, n: i128) -> Result<i128, Fault> {
    if n < 0 {
        return Err(Fault::NegativeShift);
    }
    if n >= i128::from(ty.bits()) {
        return Ok(0);
    }
    Ok(wrap(ty, a << n))
}

/// `a >> n`: floor(a / 2**n), so counts at or above the width give 0 or -1. A negative
/// count faults.
pub fn int_shr(ty: IntTy, a: i128, n: i128) -> Result<i128, Fault> {
    if n < 0 {
        return Err(Fault::NegativeShift);
    }
    let n = n.min(i128::from(ty.bits()));
    Ok(a >> n)
}

pub fn int_neg(ty: IntTy, a: i128) -> i128 {
    wrap(ty, -a)
}

pub fn int_bit_not(ty: IntTy, a: i128) -> i128 {
    wrap(ty, !a)
}

/// `abs`: wraps for the most negative value (`abs(I32_MIN) == I32_MIN`).
pub fn int_abs(ty: IntTy, a: i128) -> i128 {
    wrap(ty, a.abs())
}

/// Rounds an f64 to the precision of `ty` (f32 values are carried as f64).
pub fn float_round(ty: FloatTy, value: f64) -> f64 {
    match ty {
        FloatTy::F32 => f64::from(value as f32),
        FloatTy::F64 => value,
    }
}

/// `+ - * /` on floats, computed in the operands' precision (IEEE 754, round to nearest).
pub fn float_arith(ty: FloatTy, op: FloatOp, a: f64, b: f64) -> f64 {
    match ty {
        FloatTy::F32 => {
            let (a, b) = (a as f32, b as f32);
            f64::from(match op {
                FloatOp::Add => a + b,
                FloatOp::Sub => a - b,
                FloatOp::Mul => a * b,
                FloatOp::Div => a / b,
            })
        }
        FloatTy::F64 => match op {
            FloatOp::Add => a + b,
            FloatOp::Sub => a - b,
            FloatOp::Mul => a * b,
            FloatOp::Div => a / b,
        },
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatOp {
    Add,
    Sub,
    Mul,
    Div,
}

/// IEEE 754-2019 `minimum`: NaN if either operand is NaN, and -0.0 below +0.0. Unlike
/// `a if a < b else b`, this is commutative and associative, so it can merge in any order.
pub fn float_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b {
        if a.is_sign_negative() {
            a
        } else {
            b
        }
    } else if a < b {
        a
    } else {
        b
    }
}

/// IEEE 754-2019 `maximum`: NaN if either operand is NaN, and +0.0 above -0.0.
pub fn float_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b {
        if a.is_sign_negative() {
            b
        } else {
            a
        }
    } else if a > b {
        a
    } else {
        b
    }
}

/// Integer to integer conversion: two's-complement truncation or extension.
pub fn int_to_int(to: IntTy, value: i128) -> i128 {
    wrap(to, value)
}

/// Integer to float: rounds to the nearest representable value (ties to even).
pub fn int_to_float(to: FloatTy, value: i128) -> f64 {
    match to {
        FloatTy::F32 => f64::from(value as f32),
        FloatTy::F64 => value as f64,
    }
}

/// Float to integer: truncates toward zero and saturates at the type's bounds; NaN gives 0.
pub fn float_to_int(to: IntTy, value: f64) -> i128 {
    if value.is_nan() {
        return 0;
    }
    let truncated = value.trunc();
    if truncated <= to.min_value() as f64 {
        to.min_value()
    } else if truncated >= to.max_value() as f64 {
        to.max_value()
    } else {
        truncated as i128
    }
}

pub fn float_to_float(to: FloatTy, value: f64) -> f64 {
    float_round(to, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_is_twos_complement() {
        assert_eq!(wrap(IntTy::I8, 128), -128);
        assert_eq!(wrap(IntTy::U8, -1), 255);
        assert_eq!(wrap(IntTy::I64, i128::from(i64::MAX) + 1), i128::from(i64::MIN));
        assert_eq!(int_mul(IntTy::U64, i128::from(u64::MAX), i128::from(u64::MAX)), 1);
    }

    #[test]
    fn floor_division_follows_python() {
        assert_eq!(int_floor_div(IntTy::I32, 7, 2), Ok(3));
        assert_eq!(int_floor_div(IntTy::I32, -7, 2), Ok(-4));
        assert_eq!(int_floor_div(IntTy::I32, 7, -2), Ok(-4));
        assert_eq!(int_floor_div(IntTy::I32, -7, -2), Ok(3));
        assert_eq!(int_mod(IntTy::I32, -7, 2), Ok(1));
        assert_eq!(int_mod(IntTy::I32, 7, -2), Ok(-1));
        assert_eq!(int_floor_div(IntTy::I8, -128, -1), Ok(-128));
        assert_eq!(int_mod(IntTy::I8, -128, -1), Ok(0));
        assert_eq!(int_floor_div(IntTy::I8, 1, 0), Err(Fault::DivisionByZero));
    }

    #[test]
    fn shifts_are_arithmetic_and_saturate_the_count() {
        assert_eq!(int_shl(IntTy::U8, 1, 7), Ok(128));
        assert_eq!(int_shl(IntTy::U8, 1, 8), Ok(0));
        assert_eq!(int_shl(IntTy::I8, 1, 7), Ok(-128));
        assert_eq!(int_shr(IntTy::I8, -128, 100), Ok(-1));
        assert_eq!(int_shr(IntTy::U8, 255, 3), Ok(31));
        assert_eq!(int_shl(IntTy::U8, 1, -1), Err(Fault::NegativeShift));
    }

    #[test]
    fn conversions_saturate_and_wrap() {
        assert_eq!(float_to_int(IntTy::U8, 300.7), 255);
        assert_eq!(float_to_int(IntTy::I8, -1e9), -128);
        assert_eq!(float_to_int(IntTy::I32, f64::NAN), 0);
        assert_eq!(float_to_int(IntTy::I32, -2.9), -2);
        assert_eq!(int_to_int(IntTy::U8, 300), 44);
        assert_eq!(int_to_float(FloatTy::F32, 16_777_217), 16_777_216.0);
    }

    #[test]
    fn float_min_max_are_order_independent() {
        assert!(float_min(f64::NAN, 1.0).is_nan() && float_min(1.0, f64::NAN).is_nan());
        assert!(float_min(0.0, -0.0).is_sign_negative() && float_min(-0.0, 0.0).is_sign_negative());
        assert!(float_max(0.0, -0.0).is_sign_positive() && float_max(-0.0, 0.0).is_sign_positive());
        assert_eq!(float_max(2.0, 3.0), 3.0);
    }
}
