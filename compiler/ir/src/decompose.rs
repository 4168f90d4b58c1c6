//! Aggregate decomposition: every aggregate becomes three IR functions over a *state
//! layout* (a flat list of typed fields) plus an identity value:
//! `lift(inputs...) -> state`, `merge(state, state) -> state`, `finish(state) -> result`.
//!
//! Built-in aggregates decompose by rule and share state: `avg(e)` is a sum and a count with
//! the division in `finish`, `count()` used twice is one field, sums widen (signed integers
//! to i64, unsigned to u64, floats to f64). Custom aggregates keep the user's functions; the
//! merge operator of each field is then found by [`crate::laws`].

use naas_lang::ast::{Arg, ExprKind};
use naas_lang::bail_internal;
use naas_lang::check::{self, AggregateForm, Program};
use naas_lang::internal::InternalError;
use naas_lang::span::Span;
use naas_lang::types::{FloatTy, IntTy, Type};
use naas_lang::value::Value;

use crate::interp::Slot;
use crate::ir::{BinaryOp, Expr, FuncId, Operand, Scalar, ScalarTy, Stmt, VarTy};
use crate::layout::{leaves, scalar_ty, Leaf};
use crate::lower::{aggregate_key, Lowered, Lowerer, Repr};

/// How a state field combines in `merge`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MergeOp {
    Add,
    Min,
    Max,
    /// Logical or on bools, bitwise or on integers.
    Or,
    /// Logical and on bools, bitwise and on integers.
    And,
    /// Any other combination: only the whole `merge` function describes it.
    Custom,
}

impl MergeOp {
    /// Idempotent operators tolerate duplicated contributions (min, max, or, and).
    pub fn idempotent(self) -> bool {
        matches!(self, MergeOp::Min | MergeOp::Max | MergeOp::Or | MergeOp::And)
    }

    pub fn name(self) -> &'static str {
        match self {
            MergeOp::Add => "add",
            MergeOp::Min => "min",
            MergeOp::Max => "max",
            MergeOp::Or => "or",
            MergeOp::And => "and",
            MergeOp::Custom => "custom",
        }
    }

    /// The unit of the operator at `ty` (`None` for `Custom`).
    pub fn identity(self, ty: ScalarTy) -> Option<Scalar> {
        Some(match (self, ty) {
            (MergeOp::Custom, _) => return None,
            (MergeOp::Add, ty) => Scalar::zero(ty),
            (MergeOp::Or, ScalarTy::Bool) => Scalar::Bool(false),
            (MergeOp::And, ScalarTy::Bool) => Scalar::Bool(true),
            (MergeOp::Or, ScalarTy::Int(int)) => Scalar::Int(int, 0),
            (MergeOp::And, ScalarTy::Int(int)) => Scalar::Int(int, naas_lang::ops::wrap(int, -1)),
            (MergeOp::Min, ScalarTy::Int(int)) => Scalar::Int(int, int.max_value()),
            (MergeOp::Max, ScalarTy::Int(int)) => Scalar::Int(int, int.min_value()),
            (MergeOp::Min, ScalarTy::Float(float)) => Scalar::Float(float, f64::INFINITY),
            (MergeOp::Max, ScalarTy::Float(float)) => Scalar::Float(float, f64::NEG_INFINITY),
            (_, _) => return None,
        })
    }
}

/// One field of a state: a scalar or a fixed-length array of scalars.
#[derive(Clone, Debug, PartialEq)]
pub struct StateField {
    pub name: String,
    pub ty: VarTy,
    pub merge: MergeOp,
    /// Byte offset in the packed state record (fields aligned to their scalar size).
    pub offset: u32,
}

impl StateField {
    pub fn size_bytes(&self) -> u32 {
        u32::try_from(self.ty.size_bytes()).unwrap_or(u32::MAX)
    }
}

/// The state layout of an aggregate, with its size and alignment as a C struct.
#[derive(Clone, Debug, PartialEq)]
pub struct StateLayout {
    pub fields: Vec<StateField>,
    pub size: u32,
    pub align: u32,
}

impl StateLayout {
    fn new(fields: Vec<(String, VarTy, MergeOp)>) -> StateLayout {
        // Fields keep their order; each is aligned to its scalar size, like a C struct.
        let mut offset = 0u32;
        let mut align = 1u32;
        let fields = fields
            .into_iter()
            .map(|(name, ty, merge)| {
                let a = ty.scalar().size_bytes();
                align = align.max(a);
                offset = offset.div_ceil(a) * a;
                let field = StateField { name, ty, merge, offset };
                offset += field.size_bytes();
                field
            })
            .collect();
        StateLayout { fields, size: offset.div_ceil(align) * align, align }
    }

    pub fn var_types(&self) -> Vec<VarTy> {
        self.fields.iter().map(|field| field.ty).collect()
    }
}

/// An aggregate, decomposed.
#[derive(Clone, Debug)]
pub struct AggregatePlan {
    pub name: String,
    pub span: Span,
    /// The input record's scalar fields, in order (record parameters are flattened:
    /// `sample.micros`).
    pub inputs: Vec<Leaf>,
    pub state: StateLayout,
    /// The result's scalar fields, in order (tuples and arrays flattened).
    pub results: Vec<Leaf>,
    pub result_type: Type,
    pub identity: Vec<Slot>,
    pub lift: FuncId,
    pub merge: FuncId,
    pub finish: FuncId,
    /// Where the merge function is written (custom form), for law diagnostics.
    pub merge_span: Span,
    /// True for the built-in form, whose merge is field-wise by construction.
    pub builtin: bool,
}

/// Decomposes every aggregate of a checked program, adding its parts to the lowerer's module.
/// An error is a compiler bug (see [`crate::lower`]).
pub fn decompose(program: &Program, lowerer: &mut Lowerer) -> Lowered<Vec<AggregatePlan>> {
    program.aggregates.iter().map(|aggregate| decompose_one(aggregate, lowerer)).collect()
}

fn param_leaves(aggregate: &check::Aggregate) -> Vec<Leaf> {
    aggregate.params.iter().flat_map(|param| leaves(&param.ty, &param.name)).collect()
}

fn decompose_one(aggregate: &check::Aggregate, lowerer: &mut Lowerer) -> Lowered<AggregatePlan> {
    let inputs = param_leaves(aggregate);
    let results = leaves(&aggregate.ret, "result");
    match &aggregate.form {
        AggregateForm::Builtin { result } => decompose_builtin(aggregate, result, inputs, results, lowerer),
        AggregateForm::Custom(custom) => {
            let name = &aggregate.name;
            let state_leaves = leaves(&custom.state, "state");
            let state = StateLayout::new(
                state_leaves.iter().map(|leaf| (leaf.path.clone(), leaf.var_ty(), MergeOp::Custom)).collect(),
            );
            let lift = lowerer.lower_function(&custom.lift, &format!("{name}.lift"))?;
            let merge = lowerer.lower_function(&custom.merge, &format!("{name}.merge"))?;
            let finish = match &custom.finish {
                Some(finish) => lowerer.lower_function(finish, &format!("{name}.finish"))?,
                None => lowerer.synthesize(
                    &format!("{name}.finish"),
                    aggregate.span,
                    &[("state".to_string(), custom.state.clone())],
                    &aggregate.ret,
                    |lower, params| {
                        let operands = params.iter().flat_map(flatten_operands).collect();
                        lower.emit(Stmt::Return(operands));
                        Ok(())
                    },
                )?,
            };
            let merge_span = custom.merge.span;
            let (lift, merge, finish) = (lowerer.add(lift), lowerer.add(merge), lowerer.add(finish));
            Ok(AggregatePlan {
                name: name.clone(),
                span: aggregate.span,
                inputs,
                state,
                results,
                result_type: aggregate.ret.clone(),
                identity: value_slots(&custom.identity, &custom.state)?,
                lift,
                merge,
                finish,
                merge_span,
                builtin: false,
            })
        }
    }
}

/// The operands that return a freshly allocated value unchanged.
fn flatten_operands(repr: &Repr) -> Vec<Operand> {
    match repr {
        Repr::Scalar(expr) => vec![Operand::Scalar(expr.clone())],
        Repr::Group(items) => items.iter().flat_map(flatten_operands).collect(),
        Repr::Array(view) => view.leaves.iter().map(|(var, _)| Operand::Array(*var)).collect(),
    }
}

/// Flattens a value of type `ty` into slots, one per leaf (arrays of composites become one
/// array per component, as in the IR). A value that does not have type `ty` is a compiler bug.
pub fn value_slots(value: &Value, ty: &Type) -> Result<Vec<Slot>, InternalError> {
    let leaves = leaves(ty, "");
    let mut scalars: Vec<Vec<Scalar>> = vec![Vec::new(); leaves.len()];
    let mut cursor = 0;
    collect_scalars(value, ty, &mut scalars, &mut cursor)?;
    leaves
        .iter()
        .zip(scalars)
        .map(|(leaf, values)| match (leaf.var_ty(), values.as_slice()) {
            (VarTy::Scalar(_), [value]) => Ok(Slot::Scalar(*value)),
            (VarTy::Scalar(_), _) => bail_internal!("the value {value:?} has no single scalar at `{}`", leaf.path),
            (VarTy::Array(..), _) => Ok(Slot::Array(values)),
        })
        .collect()
}

fn collect_scalars(value: &Value, ty: &Type, out: &mut [Vec<Scalar>], cursor: &mut usize) -> Result<(), InternalError> {
    match (value, ty) {
        (Value::Tuple(items), Type::Tuple(types)) if items.len() == types.len() => {
            for (item, ty) in items.iter().zip(types) {
                collect_scalars(item, ty, out, cursor)?;
            }
        }
        (Value::Record(_, items), Type::Record(record)) if items.len() == record.fields.len() => {
            for (item, (_, ty)) in items.iter().zip(&record.fields) {
                collect_scalars(item, ty, out, cursor)?;
            }
        }
        (Value::Array(items), Type::Array(elem, _)) => {
            // Each element contributes to the same leaves, in element order.
            let start = *cursor;
            for item in items {
                *cursor = start;
                collect_scalars(item, elem, out, cursor)?;
            }
        }
        (scalar, ty) => {
            let converted = match (scalar, ty) {
                (Value::Bool(b), Type::Bool) => Scalar::Bool(*b),
                (Value::Int(t, v), Type::Int(_)) => Scalar::Int(*t, *v),
                (Value::Float(t, v), Type::Float(_)) => Scalar::Float(*t, *v),
                _ => bail_internal!("the value {scalar:?} does not have type `{ty}`"),
            };
            let Some(slot) = out.get_mut(*cursor) else {
                bail_internal!("the value {scalar:?} has more leaves than its type `{ty}`")
            };
            slot.push(converted);
            *cursor += 1;
        }
    }
    Ok(())
}

/// A state field an aggregate call contributes: combined with `merge`, holding the (possibly
/// widened) argument, or 1 for `count()`.
#[derive(Clone, Debug)]
struct Contribution {
    key: String,
    ty: ScalarTy,
    merge: MergeOp,
    arg: Option<naas_lang::ast::Expr<Type>>,
}

fn decompose_builtin(
    aggregate: &check::Aggregate,
    result: &naas_lang::ast::Expr<Type>,
    inputs: Vec<Leaf>,
    results: Vec<Leaf>,
    lowerer: &mut Lowerer,
) -> Lowered<AggregatePlan> {
    let mut calls = Vec::new();
    collect_aggregate_calls(result, &mut calls);
    // The fields, deduplicated by key, in order of first use.
    let mut fields: Vec<Contribution> = Vec::new();
    let add_field = |fields: &mut Vec<Contribution>, contribution: Contribution| {
        if !fields.iter().any(|field| field.key == contribution.key) {
            fields.push(contribution);
        }
    };
    for (name, args) in &calls {
        let arg = args.first().map(|a| a.value().clone());
        let arg_ty = arg.as_ref().and_then(|a| scalar_ty(&a.ty));
        let key = aggregate_key(name, args);
        // Every aggregate call but `count()` takes one scalar argument (the checker made sure).
        let scalar_arg = || -> Lowered<ScalarTy> {
            match arg_ty {
                Some(ty) => Ok(ty),
                None => bail_internal!(aggregate.span, "`{key}` in `{}` has no scalar argument", aggregate.name),
            }
        };
        match name.as_str() {
            "count" => add_field(&mut fields, count_field()),
            "sum" | "avg" => {
                let sum_key = key.replacen("avg(", "sum(", 1);
                let ty = widened(scalar_arg()?);
                add_field(&mut fields, Contribution { key: sum_key, ty, merge: MergeOp::Add, arg: arg.clone() });
                if name == "avg" {
                    add_field(&mut fields, count_field());
                }
            }
            "min" | "max" => {
                let merge = if name == "min" { MergeOp::Min } else { MergeOp::Max };
                let ty = scalar_arg()?;
                add_field(&mut fields, Contribution { key, ty, merge, arg });
            }
            "any" | "all" => {
                let merge = if name == "any" { MergeOp::Or } else { MergeOp::And };
                add_field(&mut fields, Contribution { key, ty: ScalarTy::Bool, merge, arg });
            }
            other => bail_internal!(aggregate.span, "`{other}` in `{}` is not an aggregate call", aggregate.name),
        }
    }
    let layout = StateLayout::new(
        fields.iter().map(|Contribution { key, ty, merge, .. }| (key.clone(), VarTy::Scalar(*ty), *merge)).collect(),
    );
    let state_params: Vec<(String, Type)> =
        layout.fields.iter().map(|field| (field.name.clone(), scalar_type(field.ty.scalar()))).collect();
    let state_type = Type::Tuple(state_params.iter().map(|(_, ty)| ty.clone()).collect());
    let name = &aggregate.name;
    let params: Vec<(String, Type)> = aggregate.params.iter().map(|p| (p.name.clone(), p.ty.clone())).collect();

    let lift = lowerer.synthesize(&format!("{name}.lift"), aggregate.span, &params, &state_type, |lower, _| {
        let mut operands = Vec::new();
        for Contribution { ty, arg, .. } in &fields {
            let value = match arg {
                None => Expr::Const(Scalar::Int(IntTy::U64, 1)),
                Some(arg) => {
                    let value = lower.scalar(arg)?;
                    if lower.expr_ty(&value) == *ty {
                        value
                    } else {
                        Expr::cast(*ty, value)
                    }
                }
            };
            operands.push(Operand::Scalar(value));
        }
        lower.emit(Stmt::Return(operands));
        Ok(())
    })?;

    let pair: Vec<(String, Type)> = state_params
        .iter()
        .map(|(n, t)| (format!("a.{n}"), t.clone()))
        .chain(state_params.iter().map(|(n, t)| (format!("b.{n}"), t.clone())))
        .collect();
    let merge_ops: Vec<(MergeOp, ScalarTy)> = layout.fields.iter().map(|f| (f.merge, f.ty.scalar())).collect();
    let merge = lowerer.synthesize(&format!("{name}.merge"), aggregate.span, &pair, &state_type, |lower, params| {
        let (left, right) = params.split_at(merge_ops.len());
        let mut operands = Vec::new();
        for ((op, ty), (a, b)) in merge_ops.iter().zip(left.iter().zip(right)) {
            let (Repr::Scalar(a), Repr::Scalar(b)) = (a, b) else {
                bail_internal!(aggregate.span, "the merge of `{name}` has a non-scalar state field")
            };
            let Some(merged) = merge_expr(*op, *ty, a.clone(), b.clone()) else {
                bail_internal!(aggregate.span, "the built-in `{name}` has a custom state field")
            };
            operands.push(Operand::Scalar(merged));
        }
        lower.emit(Stmt::Return(operands));
        Ok(())
    })?;

    // Finish: each aggregate call reads its field(s); avg divides in floating point.
    let keys: Vec<String> = layout.fields.iter().map(|f| f.name.clone()).collect();
    let finish = lowerer.synthesize(
        &format!("{name}.finish"),
        aggregate.span,
        &state_params,
        &aggregate.ret,
        |lower, params| {
            let field = |key: &str| keys.iter().position(|k| k == key).map(|i| params[i].clone());
            for (call, args) in &calls {
                let key = aggregate_key(call, args);
                let repr = if call == "avg" {
                    match (field(&key.replacen("avg(", "sum(", 1)), field("count()")) {
                        (Some(Repr::Scalar(sum)), Some(Repr::Scalar(count))) => {
                            let f64_ty = ScalarTy::Float(FloatTy::F64);
                            let sum = if lower.expr_ty(&sum) == f64_ty { sum } else { Expr::cast(f64_ty, sum) };
                            Repr::Scalar(Expr::binary(BinaryOp::Div, sum, Expr::cast(f64_ty, count), Span::default()))
                        }
                        _ => continue,
                    }
                } else {
                    match field(&key) {
                        Some(repr) => repr,
                        None => continue,
                    }
                };
                lower.aggregates.insert(key, repr);
            }
            let repr = lower.expr(result)?;
            let operands = lower.operands(repr)?;
            lower.emit(Stmt::Return(operands));
            Ok(())
        },
    )?;

    let (lift, merge, finish) = (lowerer.add(lift), lowerer.add(merge), lowerer.add(finish));
    let identity = layout
        .fields
        .iter()
        .map(|field| match field.merge.identity(field.ty.scalar()) {
            Some(unit) => Ok(Slot::Scalar(unit)),
            None => bail_internal!(
                aggregate.span,
                "the state field `{}` of `{name}` has no unit for `{}` at `{}`",
                field.name,
                field.merge.name(),
                field.ty
            ),
        })
        .collect::<Lowered<_>>()?;
    Ok(AggregatePlan {
        name: name.clone(),
        span: aggregate.span,
        inputs,
        state: layout,
        results,
        result_type: aggregate.ret.clone(),
        identity,
        lift,
        merge,
        finish,
        merge_span: aggregate.span,
        builtin: true,
    })
}

fn count_field() -> Contribution {
    Contribution { key: "count()".to_string(), ty: ScalarTy::Int(IntTy::U64), merge: MergeOp::Add, arg: None }
}

/// The type a sum accumulates in: signed integers in i64, unsigned in u64, floats in f64.
fn widened(ty: ScalarTy) -> ScalarTy {
    match ty {
        ScalarTy::Int(int) if int.signed() => ScalarTy::Int(IntTy::I64),
        ScalarTy::Int(_) => ScalarTy::Int(IntTy::U64),
        ScalarTy::Float(_) | ScalarTy::Bool => ScalarTy::Float(FloatTy::F64),
    }
}

fn scalar_type(ty: ScalarTy) -> Type {
    match ty {
        ScalarTy::Bool => Type::Bool,
        ScalarTy::Int(int) => Type::Int(int),
        ScalarTy::Float(float) => Type::Float(float),
    }
}

/// The expression combining two values of a field with its operator; `None` for `Custom`,
/// which has no single-operator merge (built-in aggregates never create such fields).
pub fn merge_expr(op: MergeOp, ty: ScalarTy, a: Expr, b: Expr) -> Option<Expr> {
    let span = Span::default();
    let op = match (op, ty) {
        (MergeOp::Add, _) => BinaryOp::Add,
        (MergeOp::Min, _) => BinaryOp::Min,
        (MergeOp::Max, _) => BinaryOp::Max,
        (MergeOp::Or, _) => BinaryOp::BitOr,
        (MergeOp::And, _) => BinaryOp::BitAnd,
        (MergeOp::Custom, _) => return None,
    };
    Some(Expr::binary(op, a, b, span))
}

/// The aggregate calls of a built-in aggregate's result, in source order.
fn collect_aggregate_calls(expr: &naas_lang::ast::Expr<Type>, out: &mut Vec<(String, Vec<Arg<Type>>)>) {
    match &expr.kind {
        ExprKind::Call { func, args } if check::is_aggregate_call(&func.name, args) => {
            out.push((func.name.clone(), args.clone()));
        }
        ExprKind::Call { args, .. } => args.iter().for_each(|a| collect_aggregate_calls(a.value(), out)),
        ExprKind::Unary(_, a) | ExprKind::Field(a, _) => collect_aggregate_calls(a, out),
        ExprKind::Binary(_, a, b) | ExprKind::Compare(_, a, b) | ExprKind::Logic(_, a, b) | ExprKind::Index(a, b) => {
            collect_aggregate_calls(a, out);
            collect_aggregate_calls(b, out);
        }
        ExprKind::IfElse { cond, then, orelse } => {
            collect_aggregate_calls(cond, out);
            collect_aggregate_calls(then, out);
            collect_aggregate_calls(orelse, out);
        }
        ExprKind::Tuple(items) | ExprKind::Array(items) => items.iter().for_each(|i| collect_aggregate_calls(i, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value that does not have the type it is flattened at is a compiler bug, not a state
    /// padded with `false` or zero.
    #[test]
    fn values_of_the_wrong_type_do_not_flatten() {
        let pair = Type::Tuple(vec![Type::Int(IntTy::I64), Type::Bool]);
        let good = Value::Tuple(vec![Value::Int(IntTy::I64, 4), Value::Bool(true)]);
        assert_eq!(
            value_slots(&good, &pair),
            Ok(vec![Slot::Scalar(Scalar::Int(IntTy::I64, 4)), Slot::Scalar(Scalar::Bool(true))])
        );
        let short = Value::Tuple(vec![Value::Int(IntTy::I64, 4)]);
        assert!(value_slots(&short, &pair).is_err());
        let swapped = Value::Tuple(vec![Value::Bool(true), Value::Int(IntTy::I64, 4)]);
        assert!(value_slots(&swapped, &pair).is_err_and(|e| e.message.contains("does not have type `i64`")));
        assert!(merge_expr(MergeOp::Custom, ScalarTy::Bool, Expr::i64(0), Expr::i64(0)).is_none());
    }

    /// Decomposes `aggregate a(x: i64) -> i64: return min(x)` after `edit` broke the checked
    /// `min(x)` call.
    fn decompose_broken_min(edit: impl FnOnce(&mut naas_lang::ast::Expr<Type>)) -> Lowered<Vec<AggregatePlan>> {
        let source = "aggregate a(x: i64) -> i64:\n    return min(x)\n";
        let Ok((mut program, _)) = naas_lang::frontend(source, &naas_lang::check::CheckOptions::default()) else {
            panic!("the program checks")
        };
        let AggregateForm::Builtin { result } = &mut program.aggregates[0].form else { panic!("a built-in aggregate") };
        edit(result);
        let mut lowerer = Lowerer::new(&program)?;
        decompose(&program, &mut lowerer)
    }

    #[test]
    fn broken_builtin_aggregate_calls_are_internal_errors() {
        assert!(decompose_broken_min(|_| {}).is_ok());
        let no_scalar = decompose_broken_min(|call| {
            if let ExprKind::Call { args, .. } = &mut call.kind {
                if let Some(Arg::Positional(arg)) = args.first_mut() {
                    arg.ty = Type::Tuple(Vec::new());
                }
            }
        });
        assert!(
            no_scalar.is_err_and(|e| e.message.contains("`min(x)` in `a` has no scalar argument")),
            "min of a tuple"
        );
    }
}
