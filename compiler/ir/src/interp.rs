//! The reference interpreter: executes IR with exactly the semantics of spec.md (scalar
//! operations come from `naas_lang::ops`). It is the oracle every target is tested against.
//! Runtime faults come back as [`RuntimeError`]s with the source location; nothing panics.

use naas_lang::ops::{self, Fault, FloatOp};
use naas_lang::span::Span;
use naas_lang::types::IntTy;

use crate::ir::{
    BinaryOp, CmpOp, Expr, FuncId, Function, Label, Module, Operand, Scalar, ScalarTy, Stmt, UnaryOp, VarTy,
};

/// A variable's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Slot {
    Scalar(Scalar),
    Array(Vec<Scalar>),
}

impl Slot {
    pub fn zero(ty: VarTy) -> Slot {
        match ty {
            VarTy::Scalar(ty) => Slot::Scalar(Scalar::zero(ty)),
            VarTy::Array(ty, len) => Slot::Array(vec![Scalar::zero(ty); len as usize]),
        }
    }

    /// Bitwise identity of values (see [`Scalar::same`]).
    pub fn same(&self, other: &Slot) -> bool {
        match (self, other) {
            (Slot::Scalar(a), Slot::Scalar(b)) => a.same(*b),
            (Slot::Array(a), Slot::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(*y)),
            _ => false,
        }
    }
}

/// A fault, where it happened, and in which function.
#[derive(Clone, Debug, PartialEq)]
pub struct RuntimeError {
    pub fault: Fault,
    pub span: Span,
    pub function: String,
}

impl std::fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in `{}`", self.fault, self.function)
    }
}

enum Flow {
    Normal,
    Break(Label),
    Continue(Label),
    Return(Vec<Slot>),
}

pub struct Interpreter<'m> {
    module: &'m Module,
}

impl<'m> Interpreter<'m> {
    pub fn new(module: &'m Module) -> Interpreter<'m> {
        Interpreter { module }
    }

    /// Calls a function with one slot per parameter; returns one slot per result.
    pub fn call(&self, func: FuncId, args: Vec<Slot>) -> Result<Vec<Slot>, RuntimeError> {
        let function = self.module.function(func);
        let mut frame: Vec<Slot> = function.vars.iter().map(|decl| Slot::zero(decl.ty)).collect();
        for (param, arg) in function.params.iter().zip(args) {
            frame[param.index()] = arg;
        }
        let mut exec = Exec { interp: self, function, frame };
        match exec.block(&function.body)? {
            Flow::Return(values) => Ok(values),
            // Lowering ends every path with `return`; falling off the end is a compiler bug,
            // reported rather than hidden.
            _ => Err(RuntimeError {
                fault: Fault::IndexOutOfBounds { index: -1, len: 0 },
                span: function.span,
                function: function.name.clone(),
            }),
        }
    }
}

struct Exec<'i, 'm> {
    interp: &'i Interpreter<'m>,
    function: &'m Function,
    frame: Vec<Slot>,
}

type Eval<T> = Result<T, (Fault, Span)>;

impl Exec<'_, '_> {
    fn error(&self, (fault, span): (Fault, Span)) -> RuntimeError {
        RuntimeError { fault, span, function: self.function.name.clone() }
    }

    fn block(&mut self, block: &[Stmt]) -> Result<Flow, RuntimeError> {
        for stmt in block {
            match self.stmt(stmt)? {
                Flow::Normal => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }

    fn eval_or_fail(&self, expr: &Expr) -> Result<Scalar, RuntimeError> {
        self.eval(expr).map_err(|e| self.error(e))
    }

    /// The array in `var`; `None` only for IR the verifier rejects.
    fn array_mut(&mut self, var: crate::ir::Var) -> Option<&mut Vec<Scalar>> {
        match &mut self.frame[var.index()] {
            Slot::Array(items) => Some(items),
            Slot::Scalar(_) => None,
        }
    }

    fn stmt(&mut self, stmt: &Stmt) -> Result<Flow, RuntimeError> {
        match stmt {
            Stmt::Assign { dst, value } => {
                let value = self.eval_or_fail(value)?;
                self.frame[dst.index()] = Slot::Scalar(value);
            }
            Stmt::Store { array, offset, value } => {
                let value = self.eval_or_fail(value)?;
                let offset = self.eval_or_fail(offset)?.as_int().unwrap_or(-1);
                let span = self.function.span;
                let (stored, len) = match self.array_mut(*array) {
                    Some(items) => {
                        let len = items.len();
                        (usize::try_from(offset).ok().and_then(|i| items.get_mut(i)).map(|slot| *slot = value), len)
                    }
                    None => (None, 0),
                };
                if stored.is_none() {
                    return Err(self.error((Fault::IndexOutOfBounds { index: offset, len: len as u32 }, span)));
                }
            }
            Stmt::CopyArray { dst, src } => {
                let copy = self.frame[src.index()].clone();
                self.frame[dst.index()] = copy;
            }
            Stmt::FillArray { dst, value } => {
                let value = self.eval_or_fail(value)?;
                if let Some(items) = self.array_mut(*dst) {
                    items.fill(value);
                }
            }
            Stmt::If { cond, then, orelse } => {
                let taken = if self.eval_or_fail(cond)?.as_bool().unwrap_or(false) { then } else { orelse };
                return self.block(taken);
            }
            Stmt::Loop { label, counter, start, stop, step, body } => {
                let ty = match self.function.var_ty(*counter) {
                    VarTy::Scalar(ScalarTy::Int(ty)) => ty,
                    _ => IntTy::I64,
                };
                let mut value = *start;
                while (*step > 0 && value < *stop) || (*step < 0 && value > *stop) {
                    self.frame[counter.index()] = Slot::Scalar(Scalar::Int(ty, value));
                    match self.block(body)? {
                        Flow::Break(l) if l == *label => break,
                        Flow::Continue(l) if l == *label => {}
                        Flow::Normal => {}
                        other => return Ok(other),
                    }
                    value += step;
                }
            }
            Stmt::Block { label, body } => match self.block(body)? {
                Flow::Break(l) if l == *label => {}
                other => return Ok(other),
            },
            Stmt::Break(label) => return Ok(Flow::Break(*label)),
            Stmt::Continue(label) => return Ok(Flow::Continue(*label)),
            Stmt::Return(values) => {
                let values = values.iter().map(|v| self.operand(v)).collect::<Result<Vec<_>, _>>()?;
                return Ok(Flow::Return(values));
            }
            Stmt::Call { func, args, results } => {
                let args = args.iter().map(|a| self.operand(a)).collect::<Result<Vec<_>, _>>()?;
                let values = self.interp.call(*func, args)?;
                for (result, value) in results.iter().zip(values) {
                    self.frame[result.index()] = value;
                }
            }
        }
        Ok(Flow::Normal)
    }

    fn operand(&self, operand: &Operand) -> Result<Slot, RuntimeError> {
        match operand {
            Operand::Scalar(expr) => Ok(Slot::Scalar(self.eval_or_fail(expr)?)),
            Operand::Array(var) => Ok(self.frame[var.index()].clone()),
        }
    }

    fn eval(&self, expr: &Expr) -> Eval<Scalar> {
        Ok(match expr {
            Expr::Const(value) => *value,
            Expr::Var(var) => match &self.frame[var.index()] {
                Slot::Scalar(value) => *value,
                Slot::Array(_) => Scalar::Bool(false),
            },
            Expr::Load { array, offset } => {
                let offset = self.eval(offset)?.as_int().unwrap_or(-1);
                match &self.frame[array.index()] {
                    Slot::Array(items) => match usize::try_from(offset).ok().and_then(|i| items.get(i)) {
                        Some(value) => *value,
                        None => {
                            return Err((
                                Fault::IndexOutOfBounds { index: offset, len: items.len() as u32 },
                                self.function.span,
                            ))
                        }
                    },
                    Slot::Scalar(_) => Scalar::Bool(false),
                }
            }
            Expr::Unary { op, arg } => unary(*op, self.eval(arg)?),
            Expr::Binary { op, lhs, rhs, span } => {
                let (a, b) = (self.eval(lhs)?, self.eval(rhs)?);
                binary(*op, a, b).map_err(|fault| (fault, *span))?
            }
            Expr::Compare { op, lhs, rhs } => Scalar::Bool(compare(*op, self.eval(lhs)?, self.eval(rhs)?)),
            Expr::And(a, b) => {
                Scalar::Bool(self.eval(a)?.as_bool().unwrap_or(false) && self.eval(b)?.as_bool().unwrap_or(false))
            }
            Expr::Or(a, b) => {
                Scalar::Bool(self.eval(a)?.as_bool().unwrap_or(false) || self.eval(b)?.as_bool().unwrap_or(false))
            }
            Expr::IfElse { cond, then, orelse } => {
                if self.eval(cond)?.as_bool().unwrap_or(false) {
                    self.eval(then)?
                } else {
                    self.eval(orelse)?
                }
            }
            Expr::Select { cond, then, orelse } => {
                let (c, a, b) = (self.eval(cond)?, self.eval(then)?, self.eval(orelse)?);
                if c.as_bool().unwrap_or(false) {
                    a
                } else {
                    b
                }
            }
            Expr::Cast { to, arg } => cast(*to, self.eval(arg)?),
            Expr::CheckIndex { index, len, span } => {
                let value = self.eval(index)?.as_int().unwrap_or(-1);
                if (0..i128::from(*len)).contains(&value) {
                    Scalar::Int(IntTy::I64, value)
                } else {
                    return Err((Fault::IndexOutOfBounds { index: value, len: *len }, *span));
                }
            }
        })
    }
}

pub fn unary(op: UnaryOp, value: Scalar) -> Scalar {
    match (op, value) {
        (UnaryOp::Neg, Scalar::Int(ty, v)) => Scalar::Int(ty, ops::int_neg(ty, v)),
        (UnaryOp::Neg, Scalar::Float(ty, v)) => Scalar::Float(ty, -v),
        (UnaryOp::Not, Scalar::Bool(b)) => Scalar::Bool(!b),
        (UnaryOp::BitNot, Scalar::Int(ty, v)) => Scalar::Int(ty, ops::int_bit_not(ty, v)),
        (UnaryOp::Abs, Scalar::Int(ty, v)) => Scalar::Int(ty, ops::int_abs(ty, v)),
        (UnaryOp::Abs, Scalar::Float(ty, v)) => Scalar::Float(ty, v.abs()),
        (_, other) => other,
    }
}

pub fn binary(op: BinaryOp, a: Scalar, b: Scalar) -> Result<Scalar, Fault> {
    Ok(match (a, b) {
        (Scalar::Int(ty, x), Scalar::Int(_, y)) => Scalar::Int(
            ty,
            match op {
                BinaryOp::Add => ops::int_add(ty, x, y),
                BinaryOp::Sub => ops::int_sub(ty, x, y),
                BinaryOp::Mul => ops::int_mul(ty, x, y),
                BinaryOp::FloorDiv => ops::int_floor_div(ty, x, y)?,
                BinaryOp::Mod => ops::int_mod(ty, x, y)?,
                BinaryOp::Shl => ops::int_shl(ty, x, y)?,
                BinaryOp::Shr => ops::int_shr(ty, x, y)?,
                BinaryOp::BitAnd => ops::int_and(x, y),
                BinaryOp::BitOr => ops::int_or(x, y),
                BinaryOp::BitXor => ops::int_xor(x, y),
                BinaryOp::Min => x.min(y),
                BinaryOp::Max => x.max(y),
                BinaryOp::Div => x,
            },
        ),
        (Scalar::Float(ty, x), Scalar::Float(_, y)) => Scalar::Float(
            ty,
            match op {
                BinaryOp::Add => ops::float_arith(ty, FloatOp::Add, x, y),
                BinaryOp::Sub => ops::float_arith(ty, FloatOp::Sub, x, y),
                BinaryOp::Mul => ops::float_arith(ty, FloatOp::Mul, x, y),
                BinaryOp::Div => ops::float_arith(ty, FloatOp::Div, x, y),
                BinaryOp::Min => ops::float_min(x, y),
                BinaryOp::Max => ops::float_max(x, y),
                _ => x,
            },
        ),
        (Scalar::Bool(x), Scalar::Bool(y)) => Scalar::Bool(match op {
            BinaryOp::BitAnd => x & y,
            BinaryOp::BitOr => x | y,
            _ => x ^ y,
        }),
        (a, _) => a,
    })
}

pub fn compare(op: CmpOp, a: Scalar, b: Scalar) -> bool {
    let ordering = match (a, b) {
        (Scalar::Int(_, x), Scalar::Int(_, y)) => Some(x.cmp(&y)),
        (Scalar::Float(_, x), Scalar::Float(_, y)) => x.partial_cmp(&y),
        (Scalar::Bool(x), Scalar::Bool(y)) => Some(x.cmp(&y)),
        _ => None,
    };
    match (op, ordering) {
        (CmpOp::Ne, None) => true,
        (_, None) => false,
        (CmpOp::Eq, Some(o)) => o.is_eq(),
        (CmpOp::Ne, Some(o)) => o.is_ne(),
        (CmpOp::Lt, Some(o)) => o.is_lt(),
        (CmpOp::Le, Some(o)) => o.is_le(),
        (CmpOp::Gt, Some(o)) => o.is_gt(),
        (CmpOp::Ge, Some(o)) => o.is_ge(),
    }
}

pub fn cast(to: ScalarTy, value: Scalar) -> Scalar {
    match (to, value) {
        (ScalarTy::Bool, Scalar::Bool(b)) => Scalar::Bool(b),
        (ScalarTy::Bool, Scalar::Int(_, v)) => Scalar::Bool(v != 0),
        (ScalarTy::Bool, Scalar::Float(_, v)) => Scalar::Bool(v != 0.0),
        (ScalarTy::Int(to), Scalar::Bool(b)) => Scalar::Int(to, i128::from(b)),
        (ScalarTy::Int(to), Scalar::Int(_, v)) => Scalar::Int(to, ops::int_to_int(to, v)),
        (ScalarTy::Int(to), Scalar::Float(_, v)) => Scalar::Int(to, ops::float_to_int(to, v)),
        (ScalarTy::Float(to), Scalar::Bool(b)) => Scalar::Float(to, if b { 1.0 } else { 0.0 }),
        (ScalarTy::Float(to), Scalar::Int(_, v)) => Scalar::Float(to, ops::int_to_float(to, v)),
        (ScalarTy::Float(to), Scalar::Float(_, v)) => Scalar::Float(to, ops::float_to_float(to, v)),
    }
}
