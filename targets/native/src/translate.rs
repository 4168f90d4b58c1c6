//! Translation of IR into Cranelift IR. An IR function is expanded *inline* into the
//! Cranelift function being built, with its parameters bound to caller storage and its
//! results written to caller storage: the batch entry points (see [`crate::entry`]) expand
//! `lift` and `merge` inside their record loop, so a fold is one loop with no calls.
//!
//! Scalar IR variables become Cranelift `Variable`s (the frontend builds SSA); array
//! variables become stack slots. Every operation keeps the reference interpreter's
//! semantics: integer ops wrap at their width, `//` and `%` floor, shifts saturate their
//! count, and faulting operations branch to the entry function's fault block.

use std::collections::HashMap;

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    types, Block, BlockArg, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind, Type, Value,
};
use cranelift_frontend::{FunctionBuilder, Variable};
use naas_ir::ir::{self as nir, BinaryOp, CmpOp, Expr, Label, Operand, Scalar, ScalarTy, Stmt, UnaryOp, VarTy};
use naas_ir::ir_types::expr_ty;
use naas_lang::bail_internal;
use naas_lang::span::Span;
use naas_lang::types::FloatTy;
use naas_lang::InternalError;

use crate::abi::{FaultKind, FaultSite};

/// The Cranelift type of a scalar; bools are bytes holding 0 or 1.
pub fn clif_type(ty: ScalarTy) -> Type {
    match ty {
        ScalarTy::Bool => types::I8,
        ScalarTy::Int(int) => match int.bits() {
            8 => types::I8,
            16 => types::I16,
            32 => types::I32,
            _ => types::I64,
        },
        ScalarTy::Float(FloatTy::F32) => types::F32,
        ScalarTy::Float(FloatTy::F64) => types::F64,
    }
}

fn signed(ty: ScalarTy) -> bool {
    matches!(ty, ScalarTy::Int(int) if int.signed())
}

/// The flags of every load and store the compiled code makes: they never trap (every address
/// is checked before) and are *not* marked aligned, so entry points may be given states where
/// they lie, unaligned (`JitAggregate::merge_keyed` reads partial states in a wire buffer).
pub fn flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// Storage of one value during translation.
#[derive(Clone, Copy, Debug)]
pub enum Storage {
    Scalar(Variable, ScalarTy),
    /// `len` elements of `ty` starting at the address `base`.
    Array {
        base: Value,
        ty: ScalarTy,
        len: u32,
    },
}

/// Per entry function: the pointer type, the shared fault block and the fault sites.
pub struct EntryContext<'s> {
    pub ptr: Type,
    /// Parameters: (site: i32, value: i64).
    pub fault_block: Block,
    pub sites: &'s mut Vec<FaultSite>,
}

impl EntryContext<'_> {
    fn site(&mut self, kind: FaultKind, span: Span, function: &str) -> i64 {
        self.sites.push(FaultSite { kind, span, function: function.to_string() });
        (self.sites.len() - 1) as i64
    }
}

/// Allocates a stack slot holding `len` elements of `ty` and returns its address.
pub fn stack_array(b: &mut FunctionBuilder<'_>, ptr: Type, ty: ScalarTy, len: u32) -> Value {
    let bytes = ty.size_bytes() * len.max(1);
    let slot = b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, bytes, 3));
    b.ins().stack_addr(ptr, slot, 0)
}

/// Copies `bytes` bytes (a multiple of `unit`) from `src` to `dst`.
pub fn copy_bytes(b: &mut FunctionBuilder<'_>, ptr: Type, dst: Value, src: Value, bytes: u32, unit: u32) {
    let chunk_ty = match unit {
        1 => types::I8,
        2 => types::I16,
        4 => types::I32,
        _ => types::I64,
    };
    let count = bytes / unit.max(1);
    if count <= 32 {
        for i in 0..count {
            let offset = i32::try_from(i * unit).unwrap_or(i32::MAX);
            let value = b.ins().load(chunk_ty, flags(), src, offset);
            b.ins().store(flags(), value, dst, offset);
        }
        return;
    }
    // A runtime loop for large arrays keeps code size bounded.
    let (header, body, exit) = (b.create_block(), b.create_block(), b.create_block());
    let counter = b.declare_var(ptr);
    let zero = b.ins().iconst(ptr, 0);
    b.def_var(counter, zero);
    b.ins().jump(header, &[]);
    b.switch_to_block(header);
    let k = b.use_var(counter);
    let more = b.ins().icmp_imm_s(IntCC::UnsignedLessThan, k, i64::from(count));
    b.ins().brif(more, body, &[], exit, &[]);
    b.switch_to_block(body);
    let offset = b.ins().imul_imm_s(k, i64::from(unit));
    let (from, to) = (b.ins().iadd(src, offset), b.ins().iadd(dst, offset));
    let value = b.ins().load(chunk_ty, flags(), from, 0);
    b.ins().store(flags(), value, to, 0);
    let next = b.ins().iadd_imm_s(k, 1);
    b.def_var(counter, next);
    b.ins().jump(header, &[]);
    b.switch_to_block(exit);
}

/// Translates `f` inline: its parameters take the values in `args`, its `return` writes into
/// `sinks` (same shapes), and translation continues after it in a fresh block.
pub fn inline_function(
    b: &mut FunctionBuilder<'_>,
    cx: &mut EntryContext<'_>,
    f: &nir::Function,
    args: &[Storage],
    sinks: &[Storage],
) -> Result<(), InternalError> {
    let mut vars = Vec::with_capacity(f.vars.len());
    for decl in &f.vars {
        vars.push(match decl.ty {
            VarTy::Scalar(ty) => {
                let var = b.declare_var(clif_type(ty));
                let zero = constant(b, Scalar::zero(ty));
                b.def_var(var, zero);
                Storage::Scalar(var, ty)
            }
            VarTy::Array(ty, len) => Storage::Array { base: stack_array(b, cx.ptr, ty, len), ty, len },
        });
    }
    if args.len() != f.params.len() || sinks.len() != f.results.len() {
        bail_internal!(f.span, "`{}` expanded with the wrong number of arguments or results", f.name);
    }
    for (param, arg) in f.params.iter().zip(args) {
        let Some(var) = vars.get(param.index()) else {
            bail_internal!(f.span, "parameter %{} of `{}` is not declared", param.0, f.name);
        };
        assign_storage(b, cx.ptr, *var, *arg)?;
    }
    let exit = b.create_block();
    let mut inline = Inline { f, vars, labels: HashMap::new(), exit, sinks, cx };
    let terminated = inline.block(b, &f.body)?;
    if !terminated {
        b.ins().jump(exit, &[]);
    }
    b.switch_to_block(exit);
    Ok(())
}

/// Copies a value from one storage to another of the same shape. Storages of different
/// shapes mean the IR and its caller disagree on a type: a compiler bug, reported as one.
pub fn assign_storage(b: &mut FunctionBuilder<'_>, ptr: Type, dst: Storage, src: Storage) -> Result<(), InternalError> {
    match (dst, src) {
        (Storage::Scalar(d, _), Storage::Scalar(s, _)) => {
            let value = b.use_var(s);
            b.def_var(d, value);
        }
        (Storage::Array { base: d, ty, len }, Storage::Array { base: s, ty: src_ty, len: src_len })
            if ty == src_ty && len == src_len =>
        {
            copy_bytes(b, ptr, d, s, ty.size_bytes() * len, ty.size_bytes());
        }
        (dst, src) => bail_internal!("cannot assign {} to {}", shape(src), shape(dst)),
    }
    Ok(())
}

/// A storage's shape in words, for internal error messages.
fn shape(storage: Storage) -> String {
    match storage {
        Storage::Scalar(_, ty) => format!("a scalar {}", ty.name()),
        Storage::Array { ty, len, .. } => format!("an array of {len} {}", ty.name()),
    }
}

pub fn constant(b: &mut FunctionBuilder<'_>, value: Scalar) -> Value {
    match value {
        Scalar::Bool(v) => b.ins().iconst(types::I8, i64::from(v)),
        // Values above i64::MAX (u64) keep their bits.
        Scalar::Int(ty, v) => b.ins().iconst(clif_type(ScalarTy::Int(ty)), v as i64),
        Scalar::Float(FloatTy::F32, v) => b.ins().f32const(v as f32),
        Scalar::Float(FloatTy::F64, v) => b.ins().f64const(v),
    }
}

struct LabelTarget {
    next: Option<Block>,
    exit: Block,
}

struct Inline<'a, 'c, 's> {
    f: &'a nir::Function,
    vars: Vec<Storage>,
    labels: HashMap<Label, LabelTarget>,
    exit: Block,
    sinks: &'a [Storage],
    cx: &'c mut EntryContext<'s>,
}

impl Inline<'_, '_, '_> {
    /// Translates statements; returns true when the block ended in a jump.
    fn block(&mut self, b: &mut FunctionBuilder<'_>, stmts: &[Stmt]) -> Result<bool, InternalError> {
        for stmt in stmts {
            if self.stmt(b, stmt)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn array(&self, var: nir::Var) -> Result<(Value, ScalarTy, u32), InternalError> {
        match self.vars.get(var.index()) {
            Some(Storage::Array { base, ty, len }) => Ok((*base, *ty, *len)),
            _ => bail_internal!(self.f.span, "%{} is not an array in `{}`", var.0, self.f.name),
        }
    }

    fn scalar(&self, var: nir::Var) -> Result<(Variable, ScalarTy), InternalError> {
        match self.vars.get(var.index()) {
            Some(Storage::Scalar(v, ty)) => Ok((*v, *ty)),
            _ => bail_internal!(self.f.span, "%{} is not a scalar in `{}`", var.0, self.f.name),
        }
    }

    fn address(
        &mut self,
        b: &mut FunctionBuilder<'_>,
        base: Value,
        ty: ScalarTy,
        offset: &Expr,
    ) -> Result<Value, InternalError> {
        let offset = self.expr(b, offset)?;
        let scaled = scale(b, offset, ty.size_bytes());
        Ok(b.ins().iadd(base, scaled))
    }

    fn stmt(&mut self, b: &mut FunctionBuilder<'_>, stmt: &Stmt) -> Result<bool, InternalError> {
        match stmt {
            Stmt::Assign { dst, value } => {
                let value = self.expr(b, value)?;
                let (var, _) = self.scalar(*dst)?;
                b.def_var(var, value);
            }
            Stmt::Store { array, offset, value } => {
                let value = self.expr(b, value)?;
                let (base, ty, _) = self.array(*array)?;
                let addr = self.address(b, base, ty, offset)?;
                b.ins().store(flags(), value, addr, 0);
            }
            Stmt::CopyArray { dst, src } => {
                let (d, ty, len) = self.array(*dst)?;
                let (s, _, _) = self.array(*src)?;
                copy_bytes(b, self.cx.ptr, d, s, ty.size_bytes() * len, ty.size_bytes());
            }
            Stmt::FillArray { dst, value } => {
                let value = self.expr(b, value)?;
                let (base, ty, len) = self.array(*dst)?;
                for i in 0..len {
                    let offset = i32::try_from(i * ty.size_bytes()).unwrap_or(i32::MAX);
                    b.ins().store(flags(), value, base, offset);
                }
            }
            Stmt::If { cond, then, orelse } => {
                let cond = self.expr(b, cond)?;
                let (then_block, else_block, join) = (b.create_block(), b.create_block(), b.create_block());
                b.ins().brif(cond, then_block, &[], else_block, &[]);
                b.switch_to_block(then_block);
                if !self.block(b, then)? {
                    b.ins().jump(join, &[]);
                }
                b.switch_to_block(else_block);
                if !self.block(b, orelse)? {
                    b.ins().jump(join, &[]);
                }
                b.switch_to_block(join);
            }
            Stmt::Loop { label, counter, start, stop, step, body } => {
                let trips = naas_ir::passes::trip_count(*start, *stop, *step);
                if trips == 0 {
                    return Ok(false);
                }
                let (counter_var, counter_ty) = self.scalar(*counter)?;
                // A hidden i64 trip counter drives the loop, so that a counter type too narrow
                // for the `stop` bound (`u8` over `range(256)`) cannot wrap around.
                let trip = b.declare_var(types::I64);
                let zero = b.ins().iconst(types::I64, 0);
                b.def_var(trip, zero);
                let (header, body_block, next, exit) =
                    (b.create_block(), b.create_block(), b.create_block(), b.create_block());
                b.ins().jump(header, &[]);
                b.switch_to_block(header);
                let k = b.use_var(trip);
                let more = b.ins().icmp_imm_s(IntCC::UnsignedLessThan, k, trips as i64);
                b.ins().brif(more, body_block, &[], exit, &[]);
                b.switch_to_block(body_block);
                let scaled = b.ins().imul_imm_s(k, *step as i64);
                let value64 = b.ins().iadd_imm_s(scaled, *start as i64);
                let value = narrow(b, value64, counter_ty);
                b.def_var(counter_var, value);
                self.labels.insert(*label, LabelTarget { next: Some(next), exit });
                if !self.block(b, body)? {
                    b.ins().jump(next, &[]);
                }
                b.switch_to_block(next);
                let k = b.use_var(trip);
                let k1 = b.ins().iadd_imm_s(k, 1);
                b.def_var(trip, k1);
                b.ins().jump(header, &[]);
                b.switch_to_block(exit);
            }
            Stmt::Block { label, body } => {
                let exit = b.create_block();
                self.labels.insert(*label, LabelTarget { next: None, exit });
                if !self.block(b, body)? {
                    b.ins().jump(exit, &[]);
                }
                b.switch_to_block(exit);
            }
            Stmt::Break(label) => {
                let Some(target) = self.labels.get(label).map(|t| t.exit) else {
                    bail_internal!(self.f.span, "break to an unknown label L{} in `{}`", label.0, self.f.name);
                };
                b.ins().jump(target, &[]);
                return Ok(true);
            }
            Stmt::Continue(label) => {
                let Some(target) = self.labels.get(label).and_then(|t| t.next) else {
                    bail_internal!(self.f.span, "continue to an unknown loop L{} in `{}`", label.0, self.f.name);
                };
                b.ins().jump(target, &[]);
                return Ok(true);
            }
            Stmt::Return(values) => {
                if values.len() != self.sinks.len() {
                    bail_internal!(
                        self.f.span,
                        "`{}` returns {} values into {} results",
                        self.f.name,
                        values.len(),
                        self.sinks.len()
                    );
                }
                // Every value is computed before any is stored, so results may read anything.
                let mut computed = Vec::with_capacity(values.len());
                for value in values {
                    computed.push(match value {
                        Operand::Scalar(expr) => Ok(self.expr(b, expr)?),
                        Operand::Array(var) => Err(self.array(*var)?.0),
                    });
                }
                for (value, sink) in computed.into_iter().zip(self.sinks) {
                    match (value, sink) {
                        (Ok(value), Storage::Scalar(var, _)) => b.def_var(*var, value),
                        (Err(src), Storage::Array { base, ty, len }) => {
                            copy_bytes(b, self.cx.ptr, *base, src, ty.size_bytes() * len, ty.size_bytes());
                        }
                        _ => bail_internal!(self.f.span, "`{}` returns a value of the wrong shape", self.f.name),
                    }
                }
                b.ins().jump(self.exit, &[]);
                return Ok(true);
            }
            Stmt::Call { .. } => {
                bail_internal!(self.f.span, "`{}` still contains a call; inline before translating", self.f.name)
            }
        }
        Ok(false)
    }

    /// Branches to the fault block when `failed` is true; continues in a fresh block.
    fn fault_if(&mut self, b: &mut FunctionBuilder<'_>, failed: Value, kind: FaultKind, span: Span, value: Value) {
        let site = self.cx.site(kind, span, &self.f.name);
        let ok = b.create_block();
        let site = b.ins().iconst(types::I32, site);
        let args = [BlockArg::Value(site), BlockArg::Value(value)];
        b.ins().brif(failed, self.cx.fault_block, &args, ok, &[]);
        b.switch_to_block(ok);
    }

    fn expr(&mut self, b: &mut FunctionBuilder<'_>, expr: &Expr) -> Result<Value, InternalError> {
        Ok(match expr {
            Expr::Const(value) => constant(b, *value),
            Expr::Var(var) => {
                let (var, _) = self.scalar(*var)?;
                b.use_var(var)
            }
            Expr::Load { array, offset } => {
                let (base, ty, _) = self.array(*array)?;
                let addr = self.address(b, base, ty, offset)?;
                b.ins().load(clif_type(ty), flags(), addr, 0)
            }
            Expr::Unary { op, arg } => {
                let ty = expr_ty(self.f, arg);
                let v = self.expr(b, arg)?;
                match (op, ty) {
                    (UnaryOp::Neg, ScalarTy::Float(_)) => b.ins().fneg(v),
                    (UnaryOp::Neg, _) => b.ins().ineg(v),
                    (UnaryOp::Not, _) => b.ins().bxor_imm_s(v, 1),
                    (UnaryOp::BitNot, _) => b.ins().bnot(v),
                    (UnaryOp::Abs, ScalarTy::Float(_)) => b.ins().fabs(v),
                    (UnaryOp::Abs, ty) if signed(ty) => b.ins().iabs(v),
                    (UnaryOp::Abs, _) => v,
                }
            }
            Expr::Binary { op, lhs, rhs, span } => self.binary(b, *op, lhs, rhs, *span)?,
            Expr::Compare { op, lhs, rhs } => {
                let ty = expr_ty(self.f, lhs);
                let (x, y) = (self.expr(b, lhs)?, self.expr(b, rhs)?);
                match ty {
                    ScalarTy::Float(_) => {
                        let cc = match op {
                            CmpOp::Eq => FloatCC::Equal,
                            CmpOp::Ne => FloatCC::NotEqual,
                            CmpOp::Lt => FloatCC::LessThan,
                            CmpOp::Le => FloatCC::LessThanOrEqual,
                            CmpOp::Gt => FloatCC::GreaterThan,
                            CmpOp::Ge => FloatCC::GreaterThanOrEqual,
                        };
                        b.ins().fcmp(cc, x, y)
                    }
                    ty => {
                        let s = signed(ty);
                        let cc = match op {
                            CmpOp::Eq => IntCC::Equal,
                            CmpOp::Ne => IntCC::NotEqual,
                            CmpOp::Lt if s => IntCC::SignedLessThan,
                            CmpOp::Le if s => IntCC::SignedLessThanOrEqual,
                            CmpOp::Gt if s => IntCC::SignedGreaterThan,
                            CmpOp::Ge if s => IntCC::SignedGreaterThanOrEqual,
                            CmpOp::Lt => IntCC::UnsignedLessThan,
                            CmpOp::Le => IntCC::UnsignedLessThanOrEqual,
                            CmpOp::Gt => IntCC::UnsignedGreaterThan,
                            CmpOp::Ge => IntCC::UnsignedGreaterThanOrEqual,
                        };
                        b.ins().icmp(cc, x, y)
                    }
                }
            }
            Expr::And(lhs, rhs) | Expr::Or(lhs, rhs) => {
                let is_and = matches!(expr, Expr::And(..));
                let x = self.expr(b, lhs)?;
                let (rhs_block, join) = (b.create_block(), b.create_block());
                b.append_block_param(join, types::I8);
                let short = [BlockArg::Value(x)];
                if is_and {
                    b.ins().brif(x, rhs_block, &[], join, &short);
                } else {
                    b.ins().brif(x, join, &short, rhs_block, &[]);
                }
                b.switch_to_block(rhs_block);
                let y = self.expr(b, rhs)?;
                b.ins().jump(join, &[BlockArg::Value(y)]);
                b.switch_to_block(join);
                b.block_params(join)[0]
            }
            Expr::IfElse { cond, then, orelse } => {
                let ty = clif_type(expr_ty(self.f, then));
                let c = self.expr(b, cond)?;
                let (then_block, else_block, join) = (b.create_block(), b.create_block(), b.create_block());
                b.append_block_param(join, ty);
                b.ins().brif(c, then_block, &[], else_block, &[]);
                b.switch_to_block(then_block);
                let x = self.expr(b, then)?;
                b.ins().jump(join, &[BlockArg::Value(x)]);
                b.switch_to_block(else_block);
                let y = self.expr(b, orelse)?;
                b.ins().jump(join, &[BlockArg::Value(y)]);
                b.switch_to_block(join);
                b.block_params(join)[0]
            }
            Expr::Select { cond, then, orelse } => {
                let (c, x, y) = (self.expr(b, cond)?, self.expr(b, then)?, self.expr(b, orelse)?);
                b.ins().select(c, x, y)
            }
            Expr::Cast { to, arg } => {
                let from = expr_ty(self.f, arg);
                let v = self.expr(b, arg)?;
                cast(b, v, from, *to)
            }
            Expr::CheckIndex { index, len, span } => {
                let ty = expr_ty(self.f, index);
                let v = self.expr(b, index)?;
                let wide = to_i64(b, v, ty);
                // One unsigned comparison rejects negatives (huge as unsigned) and too-large values.
                let bad = b.ins().icmp_imm_s(IntCC::UnsignedGreaterThanOrEqual, wide, i64::from(*len));
                self.fault_if(b, bad, FaultKind::IndexOutOfBounds { len: *len, unsigned: !signed(ty) }, *span, wide);
                wide
            }
        })
    }

    fn binary(
        &mut self,
        b: &mut FunctionBuilder<'_>,
        op: BinaryOp,
        lhs: &Expr,
        rhs: &Expr,
        span: Span,
    ) -> Result<Value, InternalError> {
        let ty = expr_ty(self.f, lhs);
        let rhs_ty = expr_ty(self.f, rhs);
        let (x, y) = (self.expr(b, lhs)?, self.expr(b, rhs)?);
        let float = ty.is_float();
        Ok(match op {
            BinaryOp::Add if float => b.ins().fadd(x, y),
            BinaryOp::Sub if float => b.ins().fsub(x, y),
            BinaryOp::Mul if float => b.ins().fmul(x, y),
            BinaryOp::Div => b.ins().fdiv(x, y),
            BinaryOp::Add => b.ins().iadd(x, y),
            BinaryOp::Sub => b.ins().isub(x, y),
            BinaryOp::Mul => b.ins().imul(x, y),
            BinaryOp::Min if float => b.ins().fmin(x, y),
            BinaryOp::Max if float => b.ins().fmax(x, y),
            BinaryOp::Min if signed(ty) => b.ins().smin(x, y),
            BinaryOp::Max if signed(ty) => b.ins().smax(x, y),
            BinaryOp::Min => b.ins().umin(x, y),
            BinaryOp::Max => b.ins().umax(x, y),
            BinaryOp::BitAnd => b.ins().band(x, y),
            BinaryOp::BitOr => b.ins().bor(x, y),
            BinaryOp::BitXor => b.ins().bxor(x, y),
            BinaryOp::FloorDiv | BinaryOp::Mod => {
                let zero = b.ins().icmp_imm_s(IntCC::Equal, y, 0);
                let value = b.ins().iconst(types::I64, 0);
                self.fault_if(b, zero, FaultKind::DivisionByZero, span, value);
                if signed(ty) {
                    floor_div_mod(b, op == BinaryOp::FloorDiv, x, y)
                } else if op == BinaryOp::FloorDiv {
                    b.ins().udiv(x, y)
                } else {
                    b.ins().urem(x, y)
                }
            }
            BinaryOp::Shl | BinaryOp::Shr => {
                let amount = to_i64(b, y, rhs_ty);
                if signed(rhs_ty) {
                    let negative = b.ins().icmp_imm_s(IntCC::SignedLessThan, amount, 0);
                    self.fault_if(b, negative, FaultKind::NegativeShift, span, amount);
                }
                let width = i64::from(clif_type(ty).bits());
                let too_far = b.ins().icmp_imm_s(IntCC::UnsignedGreaterThanOrEqual, amount, width);
                let shifted = match (op, signed(ty)) {
                    (BinaryOp::Shl, _) => b.ins().ishl(x, amount),
                    (_, true) => b.ins().sshr(x, amount),
                    (_, false) => b.ins().ushr(x, amount),
                };
                // Counts at or above the width give the mathematical result: 0, or the sign.
                let saturated = if op == BinaryOp::Shr && signed(ty) {
                    b.ins().sshr_imm_s(x, width - 1)
                } else {
                    b.ins().iconst(clif_type(ty), 0)
                };
                b.ins().select(too_far, saturated, shifted)
            }
        })
    }
}

/// Floor division or modulo of signed integers (the divisor is known to be non-zero).
/// `MIN // -1` wraps to `MIN` and `MIN % -1` is 0, where the machine instructions trap.
fn floor_div_mod(b: &mut FunctionBuilder<'_>, div: bool, x: Value, y: Value) -> Value {
    let ty = b.func.dfg.value_type(x);
    let minus_one = b.ins().icmp_imm_s(IntCC::Equal, y, -1);
    let one = b.ins().iconst(ty, 1);
    let safe_y = b.ins().select(minus_one, one, y);
    let q = b.ins().sdiv(x, safe_y);
    let r = b.ins().srem(x, safe_y);
    // Truncation rounds toward zero; floor needs one step down when the remainder is non-zero
    // and has the opposite sign of the divisor.
    let r_nonzero = b.ins().icmp_imm_s(IntCC::NotEqual, r, 0);
    let signs = b.ins().bxor(r, y);
    let opposite = b.ins().icmp_imm_s(IntCC::SignedLessThan, signs, 0);
    let adjust = b.ins().band(r_nonzero, opposite);
    if div {
        let q_minus = b.ins().iadd_imm_s(q, -1);
        let floored = b.ins().select(adjust, q_minus, q);
        let negated = b.ins().ineg(x);
        b.ins().select(minus_one, negated, floored)
    } else {
        let r_plus = b.ins().iadd(r, y);
        let floored = b.ins().select(adjust, r_plus, r);
        let zero = b.ins().iconst(ty, 0);
        b.ins().select(minus_one, zero, floored)
    }
}

/// Widens an integer (or bool) to i64 by its signedness.
fn to_i64(b: &mut FunctionBuilder<'_>, v: Value, ty: ScalarTy) -> Value {
    let width = clif_type(ty).bits();
    if width == 64 {
        v
    } else if signed(ty) {
        b.ins().sextend(types::I64, v)
    } else {
        b.ins().uextend(types::I64, v)
    }
}

/// Reduces an i64 to a narrower integer type.
fn narrow(b: &mut FunctionBuilder<'_>, v: Value, ty: ScalarTy) -> Value {
    let target = clif_type(ty);
    if target == types::I64 {
        v
    } else {
        b.ins().ireduce(target, v)
    }
}

/// A conversion `to(x)` with the semantics of `naas_lang::ops`.
pub fn cast(b: &mut FunctionBuilder<'_>, v: Value, from: ScalarTy, to: ScalarTy) -> Value {
    match (from, to) {
        (ScalarTy::Bool, ScalarTy::Bool) => v,
        (ScalarTy::Int(_), ScalarTy::Bool) => b.ins().icmp_imm_s(IntCC::NotEqual, v, 0),
        (ScalarTy::Float(f), ScalarTy::Bool) => {
            let zero = match f {
                FloatTy::F32 => b.ins().f32const(0.0),
                FloatTy::F64 => b.ins().f64const(0.0),
            };
            b.ins().fcmp(FloatCC::NotEqual, v, zero)
        }
        (ScalarTy::Bool | ScalarTy::Int(_), ScalarTy::Int(_)) => {
            let (from_bits, to_bits) = (clif_type(from).bits(), clif_type(to).bits());
            if to_bits < from_bits {
                b.ins().ireduce(clif_type(to), v)
            } else if to_bits > from_bits {
                if signed(from) {
                    b.ins().sextend(clif_type(to), v)
                } else {
                    b.ins().uextend(clif_type(to), v)
                }
            } else {
                v
            }
        }
        (ScalarTy::Bool | ScalarTy::Int(_), ScalarTy::Float(_)) => {
            let wide = to_i64(b, v, from);
            if signed(from) {
                b.ins().fcvt_from_sint(clif_type(to), wide)
            } else {
                b.ins().fcvt_from_uint(clif_type(to), wide)
            }
        }
        (ScalarTy::Float(_), ScalarTy::Int(int)) => {
            // Saturating conversion, NaN to 0; 8- and 16-bit targets go through i32 and clamp.
            if int.bits() >= 32 {
                if int.signed() {
                    b.ins().fcvt_to_sint_sat(clif_type(to), v)
                } else {
                    b.ins().fcvt_to_uint_sat(clif_type(to), v)
                }
            } else {
                let wide = if int.signed() {
                    b.ins().fcvt_to_sint_sat(types::I32, v)
                } else {
                    b.ins().fcvt_to_uint_sat(types::I32, v)
                };
                let clamped = if int.signed() {
                    let hi = b.ins().iconst(types::I32, int.max_value() as i64);
                    let lo = b.ins().iconst(types::I32, int.min_value() as i64);
                    let upper = b.ins().smin(wide, hi);
                    b.ins().smax(upper, lo)
                } else {
                    let hi = b.ins().iconst(types::I32, int.max_value() as i64);
                    b.ins().umin(wide, hi)
                };
                b.ins().ireduce(clif_type(to), clamped)
            }
        }
        (ScalarTy::Float(a), ScalarTy::Float(c)) => match (a, c) {
            (FloatTy::F32, FloatTy::F64) => b.ins().fpromote(types::F64, v),
            (FloatTy::F64, FloatTy::F32) => b.ins().fdemote(types::F32, v),
            _ => v,
        },
    }
}

/// `index * size` for a power-of-two element size, as a shift (which folds into x86 and
/// aarch64 addressing modes).
pub fn scale(b: &mut FunctionBuilder<'_>, index: Value, size: u32) -> Value {
    if size == 1 {
        index
    } else {
        b.ins().ishl_imm_s(index, i64::from(size.trailing_zeros()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use cranelift_codegen::ir::{Function, Signature, UserFuncName};
    use cranelift_codegen::isa::CallConv;
    use cranelift_frontend::FunctionBuilderContext;
    use naas_ir::ir::{Function as IrFunction, Label, Var, VarDecl};
    use naas_lang::types::IntTy;

    use super::*;

    const I64: ScalarTy = ScalarTy::Int(IntTy::I64);

    /// Runs `body` with a builder positioned in a fresh entry block and an entry context, the
    /// way the entry points call the translator. The function is never finalised: the tests
    /// look only at what the translator returns.
    pub(crate) fn in_builder<T>(body: impl FnOnce(&mut FunctionBuilder<'_>, &mut EntryContext<'_>) -> T) -> T {
        let mut func = Function::with_name_signature(UserFuncName::default(), Signature::new(CallConv::SystemV));
        let mut builder_ctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut func, &mut builder_ctx);
        let entry = b.create_block();
        b.switch_to_block(entry);
        let fault_block = b.create_block();
        let mut sites = Vec::new();
        let mut cx = EntryContext { ptr: types::I64, fault_block, sites: &mut sites };
        body(&mut b, &mut cx)
    }

    /// An IR function `f` with the given variables (the first `params` are its parameters),
    /// results and body.
    fn function(vars: &[VarTy], params: usize, results: &[VarTy], body: Vec<Stmt>) -> IrFunction {
        IrFunction {
            name: "f".to_string(),
            span: Span::new(4, 9),
            params: (0..params as u32).map(Var).collect(),
            results: results.to_vec(),
            vars: vars.iter().enumerate().map(|(i, ty)| VarDecl { name: format!("v{i}"), ty: *ty }).collect(),
            body,
            next_label: 0,
        }
    }

    /// Translates `f` with fresh storage shaped like its parameters and results.
    fn translate(f: &IrFunction) -> Result<(), InternalError> {
        in_builder(|b, cx| {
            let storage = |b: &mut FunctionBuilder<'_>, ty: VarTy| match ty {
                VarTy::Scalar(ty) => Storage::Scalar(b.declare_var(clif_type(ty)), ty),
                VarTy::Array(ty, len) => Storage::Array { base: stack_array(b, types::I64, ty, len), ty, len },
            };
            let args: Vec<Storage> = f.params.iter().map(|p| storage(b, f.var_ty(*p))).collect();
            let sinks: Vec<Storage> = f.results.iter().map(|ty| storage(b, *ty)).collect();
            inline_function(b, cx, f, &args, &sinks)
        })
    }

    fn internal(f: &IrFunction) -> String {
        let error = translate(f).expect_err("the translator accepted a broken function");
        assert_eq!(error.span, Some(Span::new(4, 9)), "{error}");
        error.to_string()
    }

    #[test]
    fn a_well_formed_function_translates() {
        let scalar = VarTy::Scalar(I64);
        let f = function(&[scalar], 1, &[scalar], vec![Stmt::Return(vec![Operand::Scalar(Expr::Var(Var(0)))])]);
        assert_eq!(translate(&f), Ok(()));
    }

    #[test]
    fn broken_functions_are_internal_errors_not_code() {
        let scalar = VarTy::Scalar(I64);
        let array = VarTy::Array(I64, 4);
        let zero = || Expr::Const(Scalar::zero(I64));
        let cases = [
            (
                function(&[scalar], 0, &[], vec![Stmt::Store { array: Var(0), offset: zero(), value: zero() }]),
                "%0 is not an array in `f`",
            ),
            (
                function(&[array], 0, &[], vec![Stmt::Assign { dst: Var(0), value: zero() }]),
                "%0 is not a scalar in `f`",
            ),
            (function(&[], 0, &[], vec![Stmt::Break(Label(3))]), "break to an unknown label L3"),
            (
                function(&[], 0, &[], vec![Stmt::Block { label: Label(1), body: vec![Stmt::Continue(Label(1))] }]),
                "continue to an unknown loop L1",
            ),
            (
                function(&[array], 0, &[scalar], vec![Stmt::Return(vec![Operand::Array(Var(0))])]),
                "returns a value of the wrong shape",
            ),
            (function(&[], 0, &[scalar], vec![Stmt::Return(vec![])]), "returns 0 values into 1 results"),
            (
                function(&[], 0, &[], vec![Stmt::Call { func: naas_ir::ir::FuncId(0), args: vec![], results: vec![] }]),
                "still contains a call",
            ),
            (function(&[], 0, &[], vec![Stmt::Assign { dst: Var(7), value: zero() }]), "%7 is not a scalar in `f`"),
        ];
        let f = function(&[scalar], 1, &[], vec![]);
        let error = in_builder(|b, cx| inline_function(b, cx, &f, &[], &[])).expect_err("no arguments were accepted");
        assert_eq!(
            error.to_string(),
            "internal compiler error: `f` expanded with the wrong number of arguments or results"
        );
        for (f, expected) in cases {
            let message = internal(&f);
            assert!(message.starts_with("internal compiler error: "), "{message}");
            assert!(message.contains(expected), "{message} (expected {expected})");
        }
    }

    #[test]
    fn storages_of_different_shapes_are_not_assigned() {
        let error = in_builder(|b, _| {
            let scalar = Storage::Scalar(b.declare_var(types::I64), I64);
            let array = Storage::Array { base: stack_array(b, types::I64, I64, 2), ty: I64, len: 2 };
            let short = Storage::Array { base: stack_array(b, types::I64, I64, 1), ty: I64, len: 1 };
            assert_eq!(assign_storage(b, types::I64, array, array), Ok(()));
            assert!(assign_storage(b, types::I64, array, short).is_err());
            assign_storage(b, types::I64, scalar, array)
        })
        .expect_err("a scalar was assigned an array");
        assert_eq!(error.to_string(), "internal compiler error: cannot assign an array of 2 i64 to a scalar i64");
    }
}
