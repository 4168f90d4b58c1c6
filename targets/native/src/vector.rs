//! The vectorised `fold`: when it is provably bit-identical to the scalar record loop, the
//! plain fold processes blocks of records in 128-bit vectors (Cranelift does not vectorise
//! by itself), then hands the remaining records to the scalar loop.
//!
//! The path is taken only when [`VectorFold::detect`] proves two things from the IR:
//! - every state field is a scalar integer (or a bool under `or`/`and`) whose merge operator
//!   is `add`, `min`, `max`, `or` or `and`. Decomposition proves these operators field-wise
//!   (built-in aggregates by construction, custom ones by symbolic execution, see
//!   `naas_ir::laws`), and on integers each is exactly associative and commutative, so lanes
//!   may combine records in any grouping and order with the same result; float fields never
//!   qualify (float `add` does not reassociate).
//! - `lift` is straight-line code whose every result is a column value, a sign or zero
//!   extension of one, or a constant. Such a lift cannot fault, and vector lanes compute it
//!   exactly: `swiden`/`uwiden` are the scalar `sextend`/`uextend` lane by lane.
//!
//! Each field keeps a few vector accumulators that start at its operator's identity; at the
//! end their lanes are combined into the state with the same operator. A constant lifted
//! value never enters the loop: `m` records add `c * m` (wrapping, like `m` wrapping adds),
//! and the idempotent operators apply `c` once when `m > 0`.

use std::collections::HashMap;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Type, Value};
use cranelift_frontend::{FunctionBuilder, Variable};
use naas_ir::decompose::{AggregatePlan, MergeOp};
use naas_ir::ir::{self as nir, BinaryOp, Expr, Operand, Scalar, ScalarTy, Stmt, VarTy};
use naas_lang::{bail_internal, InternalError};

use crate::abi::AggregateAbi;
use crate::error::NativeError;
use crate::translate::{clif_type, constant, flags, scale, EntryContext, Storage};

/// Bytes in one vector register (the widest vectors Cranelift supports).
const VECTOR_BYTES: u32 = 16;

/// Column vectors loaded per iteration for the narrowest column read: the unroll factor.
const UNROLL: u32 = 2;

/// At most this many vector accumulators per field; wider fields produce more vectors per
/// iteration than this, which then share accumulators.
const MAX_ACCUMULATORS: usize = 4;

/// What one lane of a field's lifted value is.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Lifted {
    /// Column `column`, extended to the field's width (sign extension when `signed`).
    Column {
        column: usize,
        signed: bool,
    },
    Const(Scalar),
}

#[derive(Clone, Copy, Debug)]
struct VectorField {
    op: MergeOp,
    ty: ScalarTy,
    lifted: Lifted,
}

/// A fold that [`VectorFold::detect`] proved can run on vectors.
#[derive(Clone, Debug)]
pub struct VectorFold {
    fields: Vec<VectorField>,
    /// The scalar type of every column.
    columns: Vec<ScalarTy>,
    /// Records per iteration of the vector loop (a multiple of every vector's lane count).
    block: u32,
}

/// The value of an IR expression in `lift`, symbolically: a column, converted to `ty`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Sym {
    /// Column `column` read as `ty`: extended to `ty`'s width by `extension` (`Some(true)`:
    /// sign extension, `Some(false)`: zero extension), or `None` while `ty` is as wide as
    /// the column.
    Column {
        column: usize,
        extension: Option<bool>,
        ty: ScalarTy,
    },
    Const(Scalar),
}

fn is_signed(ty: ScalarTy) -> bool {
    matches!(ty, ScalarTy::Int(int) if int.signed())
}

fn width(ty: ScalarTy) -> u32 {
    ty.size_bytes()
}

impl VectorFold {
    /// The vector plan of `plan`'s fold, or `None` when vectors could differ from the scalar
    /// loop in any bit (or could skip a fault).
    pub fn detect(ir: &nir::Module, plan: &AggregatePlan, abi: &AggregateAbi) -> Option<VectorFold> {
        let lift = ir.function(plan.lift);
        let merge = ir.function(plan.merge);
        // The vector loop applies the proved field operators instead of expanding `merge`.
        // That is the same only if `merge` cannot fault: it may compute more than its
        // field-wise results.
        if function_can_fault(merge) {
            return None;
        }
        let results = lift_results(lift)?;
        if results.len() != plan.state.fields.len() {
            return None;
        }
        let columns: Vec<ScalarTy> = abi.columns.iter().map(|(_, ty)| *ty).collect();
        let mut fields = Vec::with_capacity(results.len());
        for (field, sym) in plan.state.fields.iter().zip(results) {
            let VarTy::Scalar(ty) = field.ty else { return None };
            // Operators that are exact lane-wise: integer add, min, max, or, and; bool or, and.
            let lane_op = matches!(
                (field.merge, ty),
                (MergeOp::Add | MergeOp::Min | MergeOp::Max | MergeOp::Or | MergeOp::And, ScalarTy::Int(_))
                    | (MergeOp::Or | MergeOp::And, ScalarTy::Bool)
            );
            if !lane_op {
                return None;
            }
            let lifted = match sym {
                Sym::Const(value) if value.ty() == ty => Lifted::Const(value),
                Sym::Column { column, extension, ty: sym_ty } if sym_ty == ty => {
                    let column_ty = *columns.get(column)?;
                    if matches!(column_ty, ScalarTy::Float(_)) || width(column_ty) > width(ty) {
                        return None;
                    }
                    Lifted::Column { column, signed: extension == Some(true) }
                }
                _ => return None,
            };
            fields.push(VectorField { op: field.merge, ty, lifted });
        }
        let narrowest = fields
            .iter()
            .filter_map(|field| match field.lifted {
                Lifted::Column { column, .. } => columns.get(column).map(|ty| width(*ty)),
                Lifted::Const(_) => None,
            })
            .min()
            .unwrap_or(1);
        Some(VectorFold { fields, columns, block: VECTOR_BYTES / narrowest * UNROLL })
    }

    /// Folds records `0..m` (`m` the largest multiple of the block not above `n`) into
    /// `state` with vectors, leaving `record` at `m` for the scalar loop to finish.
    pub fn emit(
        &self,
        b: &mut FunctionBuilder<'_>,
        cx: &mut EntryContext<'_>,
        column_ptrs: &[Value],
        record: Variable,
        n: Value,
        state: &[Storage],
    ) -> Result<(), NativeError> {
        // Accumulators for the fields that read a column.
        let mut accumulators: Vec<Vec<Variable>> = Vec::with_capacity(self.fields.len());
        for field in &self.fields {
            let mut vars = Vec::new();
            if matches!(field.lifted, Lifted::Column { .. }) {
                let vector = vector_type(field.ty)?;
                let count = self.vectors_per_block(field.ty).min(MAX_ACCUMULATORS);
                let Some(identity) = field.op.identity(field.ty) else {
                    bail_internal!("no identity for {} on {}", field.op.name(), field.ty.name());
                };
                let identity = constant(b, identity);
                let splat = b.ins().splat(vector, identity);
                for _ in 0..count {
                    let var = b.declare_var(vector);
                    b.def_var(var, splat);
                    vars.push(var);
                }
            }
            accumulators.push(vars);
        }
        let any_column = accumulators.iter().any(|vars| !vars.is_empty());
        if any_column {
            crate::entry::record_loop(b, cx, record, n, i64::from(self.block), |b, _cx, i| {
                let mut lanes = Lanes { fold: self, column_ptrs, index: i, cache: HashMap::new() };
                for (field, vars) in self.fields.iter().zip(&accumulators) {
                    let Lifted::Column { column, signed } = field.lifted else { continue };
                    let vectors = lanes.get(b, column, signed, field.ty)?;
                    for (k, vector) in vectors.into_iter().enumerate() {
                        let var = vars[k % vars.len()];
                        let acc = b.use_var(var);
                        let combined = combine(b, field.op, field.ty, acc, vector)?;
                        b.def_var(var, combined);
                    }
                }
                Ok(())
            })?;
        } else {
            // Only constants: every record goes through the closed form below.
            b.def_var(record, n);
        }
        let folded = b.use_var(record);
        for ((field, vars), store) in self.fields.iter().zip(&accumulators).zip(state) {
            let Storage::Scalar(var, _) = *store else {
                bail_internal!("a vectorised state field is not a scalar");
            };
            match field.lifted {
                Lifted::Column { .. } => {
                    let mut vector = b.use_var(vars[0]);
                    for other in &vars[1..] {
                        let other = b.use_var(*other);
                        vector = combine(b, field.op, field.ty, vector, other)?;
                    }
                    let mut value = b.use_var(var);
                    for lane in 0..lanes(field.ty) {
                        let Ok(lane) = u8::try_from(lane) else { bail_internal!("vector lane {lane} beyond 255") };
                        let x = b.ins().extractlane(vector, lane);
                        value = combine(b, field.op, field.ty, value, x)?;
                    }
                    b.def_var(var, value);
                }
                Lifted::Const(c) => {
                    let value = b.use_var(var);
                    let c = constant(b, c);
                    let next = if field.op == MergeOp::Add {
                        // `m` wrapping additions of `c` are one wrapping multiplication.
                        let ty = clif_type(field.ty);
                        let m = if ty == types::I64 { folded } else { b.ins().ireduce(ty, folded) };
                        let total = b.ins().imul(m, c);
                        b.ins().iadd(value, total)
                    } else {
                        // Idempotent: any positive number of `c`s is one `c`.
                        let applied = combine(b, field.op, field.ty, value, c)?;
                        let some = b.ins().icmp_imm_s(IntCC::NotEqual, folded, 0);
                        b.ins().select(some, applied, value)
                    };
                    b.def_var(var, next);
                }
            }
        }
        Ok(())
    }

    /// How many vectors of a `ty` field one block of records fills.
    fn vectors_per_block(&self, ty: ScalarTy) -> usize {
        (self.block * width(ty) / VECTOR_BYTES).max(1) as usize
    }
}

/// The vectors of one iteration: columns loaded once, and widened once per width.
struct Lanes<'a> {
    fold: &'a VectorFold,
    column_ptrs: &'a [Value],
    /// The first record of the block.
    index: Value,
    /// (column, signed, width in bytes) to its vectors.
    cache: HashMap<(usize, bool, u32), Vec<Value>>,
}

impl Lanes<'_> {
    /// The block's values of `column`, extended to `ty`, as vectors of `ty`'s width (lanes in
    /// any order: the operators are commutative).
    fn get(
        &mut self,
        b: &mut FunctionBuilder<'_>,
        column: usize,
        signed: bool,
        ty: ScalarTy,
    ) -> Result<Vec<Value>, InternalError> {
        let Some(&column_ty) = self.fold.columns.get(column) else {
            bail_internal!("a vectorised field reads a missing column {column}");
        };
        self.widened(b, column, column_ty, signed, width(ty))
    }

    fn widened(
        &mut self,
        b: &mut FunctionBuilder<'_>,
        column: usize,
        column_ty: ScalarTy,
        signed: bool,
        bytes: u32,
    ) -> Result<Vec<Value>, InternalError> {
        // Extension is irrelevant at the column's own width.
        let key = (column, signed && bytes > width(column_ty), bytes);
        if let Some(vectors) = self.cache.get(&key) {
            return Ok(vectors.clone());
        }
        let vectors = if bytes == width(column_ty) {
            let vector = vector_type(column_ty)?;
            let Some(&base) = self.column_ptrs.get(column) else {
                bail_internal!("a vectorised field reads a missing column {column}");
            };
            let offset = scale(b, self.index, width(column_ty));
            let address = b.ins().iadd(base, offset);
            let count = self.fold.block * width(column_ty) / VECTOR_BYTES;
            (0..count)
                .map(|k| {
                    let offset = i32::try_from(k * VECTOR_BYTES).unwrap_or(i32::MAX);
                    b.ins().load(vector, flags(), address, offset)
                })
                .collect()
        } else {
            let narrow = self.widened(b, column, column_ty, signed, bytes / 2)?;
            let mut wide = Vec::with_capacity(narrow.len() * 2);
            for v in narrow {
                if signed {
                    wide.push(b.ins().swiden_low(v));
                    wide.push(b.ins().swiden_high(v));
                } else {
                    wide.push(b.ins().uwiden_low(v));
                    wide.push(b.ins().uwiden_high(v));
                }
            }
            wide
        };
        self.cache.insert(key, vectors.clone());
        Ok(vectors)
    }
}

/// The 128-bit vector type with lanes of `ty`.
fn vector_type(ty: ScalarTy) -> Result<Type, InternalError> {
    let lane = match ty {
        ScalarTy::Bool => types::I8,
        other => clif_type(other),
    };
    match lane.by(lanes(ty)) {
        Some(vector) => Ok(vector),
        None => bail_internal!("no vector type of {}", ty.name()),
    }
}

fn lanes(ty: ScalarTy) -> u32 {
    VECTOR_BYTES / width(ty)
}

/// `op(x, y)` on scalars or lane-wise on vectors (integer or bool lanes). A custom merge
/// has no lane-wise form: `detect` admits none, so meeting one is a compiler bug.
fn combine(b: &mut FunctionBuilder<'_>, op: MergeOp, ty: ScalarTy, x: Value, y: Value) -> Result<Value, InternalError> {
    let signed = is_signed(ty);
    Ok(match op {
        MergeOp::Add => b.ins().iadd(x, y),
        MergeOp::Min if signed => b.ins().smin(x, y),
        MergeOp::Min => b.ins().umin(x, y),
        MergeOp::Max if signed => b.ins().smax(x, y),
        MergeOp::Max => b.ins().umax(x, y),
        MergeOp::Or => b.ins().bor(x, y),
        MergeOp::And => b.ins().band(x, y),
        MergeOp::Custom => bail_internal!("a custom merge operator on the vector path"),
    })
}

/// The symbolic results of a straight-line `lift` made only of column reads, integer
/// extensions and constants; `None` for anything else.
fn lift_results(lift: &nir::Function) -> Option<Vec<Sym>> {
    let mut env: HashMap<nir::Var, Sym> = HashMap::new();
    for (column, param) in lift.params.iter().enumerate() {
        let VarTy::Scalar(ty) = lift.var_ty(*param) else { return None };
        env.insert(*param, Sym::Column { column, extension: None, ty });
    }
    let (last, assignments) = lift.body.split_last()?;
    for stmt in assignments {
        let Stmt::Assign { dst, value } = stmt else { return None };
        let value = symbolic(&env, value)?;
        env.insert(*dst, value);
    }
    let Stmt::Return(operands) = last else { return None };
    operands
        .iter()
        .map(|operand| match operand {
            Operand::Scalar(expr) => symbolic(&env, expr),
            Operand::Array(_) => None,
        })
        .collect()
}

fn symbolic(env: &HashMap<nir::Var, Sym>, expr: &Expr) -> Option<Sym> {
    match expr {
        Expr::Const(value) => Some(Sym::Const(*value)),
        Expr::Var(var) => env.get(var).copied(),
        Expr::Cast { to, arg } => {
            let Sym::Column { column, extension, ty: from } = symbolic(env, arg)? else { return None };
            if !matches!(to, ScalarTy::Int(_)) || matches!(from, ScalarTy::Float(_)) {
                return None;
            }
            let extension = match width(*to).cmp(&width(from)) {
                std::cmp::Ordering::Less => return None,
                std::cmp::Ordering::Equal => extension,
                // A widening cast extends by the signedness of its source (as
                // `translate::cast` does). A zero-extended value has a clear top bit, so any
                // further extension is a zero extension; a sign-extended one extended again
                // with zeros is no single extension of the column.
                std::cmp::Ordering::Greater => match extension {
                    None => Some(is_signed(from)),
                    Some(false) => Some(false),
                    Some(true) if is_signed(from) => Some(true),
                    Some(true) => return None,
                },
            };
            Some(Sym::Column { column, extension, ty: *to })
        }
        _ => None,
    }
}

/// True when `f` contains an operation that can fault (`//`, `%`, shifts, indexing).
pub fn function_can_fault(f: &nir::Function) -> bool {
    f.body.iter().any(stmt_can_fault)
}

fn stmt_can_fault(stmt: &Stmt) -> bool {
    match stmt {
        Stmt::Assign { value, .. } | Stmt::FillArray { value, .. } => expr_can_fault(value),
        Stmt::Store { offset, value, .. } => expr_can_fault(offset) || expr_can_fault(value),
        Stmt::CopyArray { .. } | Stmt::Break(_) | Stmt::Continue(_) => false,
        Stmt::If { cond, then, orelse } => {
            expr_can_fault(cond) || then.iter().any(stmt_can_fault) || orelse.iter().any(stmt_can_fault)
        }
        Stmt::Loop { body, .. } | Stmt::Block { body, .. } => body.iter().any(stmt_can_fault),
        Stmt::Return(operands) => operands.iter().any(|o| matches!(o, Operand::Scalar(e) if expr_can_fault(e))),
        // Calls are inlined before translation; be conservative about any left.
        Stmt::Call { .. } => true,
    }
}

fn expr_can_fault(expr: &Expr) -> bool {
    match expr {
        Expr::Const(_) | Expr::Var(_) => false,
        Expr::CheckIndex { .. } => true,
        Expr::Binary { op: BinaryOp::FloorDiv | BinaryOp::Mod | BinaryOp::Shl | BinaryOp::Shr, .. } => true,
        Expr::Binary { lhs, rhs, .. } | Expr::Compare { lhs, rhs, .. } | Expr::And(lhs, rhs) | Expr::Or(lhs, rhs) => {
            expr_can_fault(lhs) || expr_can_fault(rhs)
        }
        Expr::Load { offset, .. } => expr_can_fault(offset),
        Expr::Unary { arg, .. } | Expr::Cast { arg, .. } => expr_can_fault(arg),
        Expr::IfElse { cond, then, orelse } | Expr::Select { cond, then, orelse } => {
            expr_can_fault(cond) || expr_can_fault(then) || expr_can_fault(orelse)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use naas_lang::types::IntTy;

    use super::*;
    use crate::translate::tests::in_builder;

    const I64: ScalarTy = ScalarTy::Int(IntTy::I64);

    /// Emits `fold` with a scalar i64 state field per plan field (or an array when `array`).
    fn emit(fold: &VectorFold, array: bool) -> Result<(), NativeError> {
        in_builder(|b, cx| {
            let record = b.declare_var(types::I64);
            let zero = b.ins().iconst(types::I64, 0);
            b.def_var(record, zero);
            let n = b.ins().iconst(types::I64, 100);
            let column = b.ins().iconst(types::I64, 0);
            let columns = vec![column; fold.columns.len()];
            let state: Vec<Storage> = fold
                .fields
                .iter()
                .map(|field| match array {
                    false => Storage::Scalar(b.declare_var(clif_type(field.ty)), field.ty),
                    true => Storage::Array {
                        base: crate::translate::stack_array(b, types::I64, field.ty, 2),
                        ty: field.ty,
                        len: 2,
                    },
                })
                .collect();
            fold.emit(b, cx, &columns, record, n, &state)
        })
    }

    fn fold(op: MergeOp, lifted: Lifted, columns: Vec<ScalarTy>) -> VectorFold {
        VectorFold { fields: vec![VectorField { op, ty: I64, lifted }], columns, block: 4 }
    }

    fn internal(result: Result<(), NativeError>) -> String {
        match result {
            Err(NativeError::Internal(error)) => error.to_string(),
            other => panic!("expected an internal error, got {other:?}"),
        }
    }

    #[test]
    fn a_proved_fold_emits() {
        let column = Lifted::Column { column: 0, signed: true };
        assert_eq!(emit(&fold(MergeOp::Add, column, vec![I64]), false), Ok(()));
        assert_eq!(emit(&fold(MergeOp::Max, Lifted::Const(Scalar::zero(I64)), vec![]), false), Ok(()));
    }

    #[test]
    fn folds_detect_never_builds_are_internal_errors() {
        let column = Lifted::Column { column: 0, signed: true };
        let message = internal(emit(&fold(MergeOp::Custom, column, vec![I64]), false));
        assert!(message.contains("no identity for"), "{message}");
        let message = internal(emit(&fold(MergeOp::Add, Lifted::Const(Scalar::zero(I64)), vec![]), true));
        assert!(message.contains("a vectorised state field is not a scalar"), "{message}");
        let message =
            internal(emit(&fold(MergeOp::Add, Lifted::Column { column: 2, signed: false }, vec![I64]), false));
        assert!(message.contains("reads a missing column 2"), "{message}");
        let message = internal(emit(&fold(MergeOp::Custom, Lifted::Const(Scalar::zero(I64)), vec![]), false));
        assert!(message.contains("a custom merge operator on the vector path"), "{message}");
    }

    #[test]
    fn every_lane_type_has_a_vector_type() {
        for ty in [ScalarTy::Bool, ScalarTy::Int(IntTy::U8), ScalarTy::Int(IntTy::I16), ScalarTy::Int(IntTy::U32), I64]
        {
            let vector = vector_type(ty).expect("a 128-bit vector type");
            assert_eq!(vector.bits(), VECTOR_BYTES * 8, "{ty:?}");
        }
    }
}
