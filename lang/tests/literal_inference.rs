//! The declared result type of a built-in aggregate decides the type of aggregate-call
//! arguments whose literal type is still open (spec.md 6.1 and 10.1): accepted programs get
//! the types the declaration asks for, and every other typing rule still rejects what it did.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use naas_lang::ast::{Expr, ExprKind};
use naas_lang::check::{AggregateForm, CheckOptions};
use naas_lang::types::{IntTy, Type};
use naas_lang::Code;

/// The typed result expression of the file's only aggregate.
fn result_of(source: &str) -> Expr<Type> {
    let (program, _) = naas_lang::frontend(source, &CheckOptions::default())
        .unwrap_or_else(|errors| panic!("expected no errors in\n{source}\ngot {errors:#?}"));
    match program.aggregates.into_iter().next().map(|aggregate| aggregate.form) {
        Some(AggregateForm::Builtin { result }) => result,
        other => panic!("expected one built-in aggregate, got {other:?}"),
    }
}

/// The codes of the errors `source` produces.
fn error_codes(source: &str) -> Vec<Code> {
    match naas_lang::frontend(source, &CheckOptions::default()) {
        Ok(_) => panic!("expected errors in\n{source}"),
        Err(errors) => errors.iter().filter(|d| d.is_error()).map(|d| d.code).collect(),
    }
}

/// Every aggregate call in `expr` as (name, argument type, result type), in source order.
fn aggregate_calls(expr: &Expr<Type>, out: &mut Vec<(String, Option<Type>, Type)>) {
    match &expr.kind {
        ExprKind::Call { func, args } if matches!(func.name.as_str(), "sum" | "min" | "max" | "avg" | "count") => {
            let arg = args.first().map(|arg| arg.value().ty.clone());
            out.push((func.name.clone(), arg, expr.ty.clone()));
        }
        ExprKind::Tuple(items) => items.iter().for_each(|item| aggregate_calls(item, out)),
        ExprKind::Binary(_, lhs, rhs) => {
            aggregate_calls(lhs, out);
            aggregate_calls(rhs, out);
        }
        _ => {}
    }
}

fn calls_of(source: &str) -> Vec<(String, Option<Type>, Type)> {
    let mut calls = Vec::new();
    aggregate_calls(&result_of(source), &mut calls);
    calls
}

const U64: Type = Type::Int(IntTy::U64);
const I64: Type = Type::Int(IntTy::I64);

#[test]
fn count_of_late_flights_is_a_sum_of_u64() {
    let source = "aggregate late(d: i32) -> tuple[u64, u64]:\n    return sum(1 if d > 15 else 0), count()\n";
    assert_eq!(result_of(source).ty, Type::Tuple(vec![U64, U64]));
    assert_eq!(calls_of(source)[0], ("sum".to_string(), Some(U64), U64));
}

#[test]
fn min_and_max_of_a_literal_take_the_declared_type() {
    let source = "aggregate m(d: i32) -> tuple[u8, i16]:\n    return max(0), min(-1)\n";
    let calls = calls_of(source);
    assert_eq!(calls[0], ("max".to_string(), Some(Type::Int(IntTy::U8)), Type::Int(IntTy::U8)));
    assert_eq!(calls[1], ("min".to_string(), Some(Type::Int(IntTy::I16)), Type::Int(IntTy::I16)));
}

#[test]
fn the_declared_type_flows_through_operators_into_a_sum() {
    // `sum(d)` of a u16 is a u64, so `sum(2)` must be one too; the subtraction's other side
    // decides the second sum.
    let source =
        "aggregate s(d: u16) -> tuple[u64, u64]:\n    return sum(2) * sum(d), sum(1 if d > 3 else 0) - min(u64(d))\n";
    let calls = calls_of(source);
    assert_eq!(calls[0], ("sum".to_string(), Some(U64), U64));
    assert_eq!(calls[2], ("sum".to_string(), Some(U64), U64));
}

#[test]
fn an_undecided_literal_still_defaults_to_i64() {
    let source = "aggregate s(d: i32) -> tuple[i64, f64, i64]:\n    return sum(1) + sum(d), avg(1), sum(3)\n";
    let calls = calls_of(source);
    assert_eq!(calls[0], ("sum".to_string(), Some(I64), I64));
    assert_eq!(calls[2], ("avg".to_string(), Some(I64), Type::F64));
    assert_eq!(calls[3], ("sum".to_string(), Some(I64), I64));
}

#[test]
fn a_sum_of_a_signed_parameter_is_still_not_u64() {
    let codes = error_codes("aggregate s(d: i32) -> u64:\n    return sum(d)\n");
    assert_eq!(codes, vec![Code::E0201]);
}

#[test]
fn a_sum_is_never_narrower_than_64_bits() {
    let codes = error_codes("aggregate s(d: i32) -> u32:\n    return sum(1)\n");
    assert_eq!(codes, vec![Code::E0201]);
}

#[test]
fn a_negative_literal_does_not_fit_an_unsigned_sum() {
    let codes = error_codes("aggregate s(d: i32) -> u64:\n    return sum(-1)\n");
    assert_eq!(codes, vec![Code::E0205]);
}

#[test]
fn a_float_literal_sum_is_still_f64() {
    let codes = error_codes("aggregate s(d: i32) -> u64:\n    return sum(1.5)\n");
    assert_eq!(codes, vec![Code::E0201]);
}

#[test]
fn a_literal_sum_mixed_with_a_narrow_result_is_rejected() {
    // `min(d)` is an i32, so the literal sum would have to be one: a sum is i64 or u64.
    let codes = error_codes("aggregate s(d: i32) -> i32:\n    return sum(1) + min(d)\n");
    assert_eq!(codes, vec![Code::E0201]);
}
