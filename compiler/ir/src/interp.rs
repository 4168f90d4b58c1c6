//! The reference interpreter: executes IR with exactly the semantics of spec.md (scalar
//! operations come from `naas_lang::ops`). It is the oracle every target is tested against.
//! Runtime faults come back as [`RuntimeError`]s with the source location; nothing panics.
//! IR that breaks the verifier's rules (a compiler bug) comes back as an internal error
//! instead of a plausible value.

use naas_lang::bail_internal;
use naas_lang::internal::InternalError;
use naas_lang::ops::{self, Fault, FloatOp};
use naas_lang::span::Span;
use naas_lang::types::IntTy;

use crate::ir::{
    BinaryOp, CmpOp, Expr, FuncId, Function, Label, Module, Operand, Scalar, ScalarTy, Stmt, UnaryOp, Var, VarTy,
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

/// Why a call stopped: a runtime fault of the program (where it happened, in which function),
/// or IR the verifier would reject (a compiler bug, never the program's fault).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RuntimeError {
    #[error("{fault} in `{function}`")]
    Fault { fault: Fault, span: Span, function: String },
    #[error(transparent)]
    Internal(#[from] InternalError),
}

impl RuntimeError {
    /// The program's fault and its source span; `None` for an internal error.
    pub fn fault(&self) -> Option<(Fault, Span)> {
        match self {
            RuntimeError::Fault { fault, span, .. } => Some((*fault, *span)),
            RuntimeError::Internal(_) => None,
        }
    }
}

/// Why a scalar operation has no result: a fault of the program, or operands of types the
/// operation does not take (IR the verifier rejects).
#[derive(Clone, Debug, PartialEq)]
pub enum OpError {
    Fault(Fault),
    Internal(InternalError),
}

impl From<InternalError> for OpError {
    fn from(error: InternalError) -> OpError {
        OpError::Internal(error)
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
        let Some(function) = self.module.functions.get(func.0 as usize) else {
            bail_internal!("call of the unknown function #{}", func.0)
        };
        let mut frame: Vec<Slot> = function.vars.iter().map(|decl| Slot::zero(decl.ty)).collect();
        for (param, arg) in function.params.iter().zip(args) {
            match frame.get_mut(param.index()) {
                Some(slot) => *slot = arg,
                None => bail_internal!(function.span, "`{}` has an undeclared parameter", function.name),
            }
        }
        let mut exec = Exec { interp: self, function, frame };
        match exec.block(&function.body)? {
            Flow::Return(values) => Ok(values),
            // Lowering ends every path with `return`; falling off the end is a compiler bug.
            _ => bail_internal!(function.span, "`{}` ended without `return`", function.name),
        }
    }
}

struct Exec<'i, 'm> {
    interp: &'i Interpreter<'m>,
    function: &'m Function,
    frame: Vec<Slot>,
}

type Eval<T> = Result<T, RuntimeError>;

impl Exec<'_, '_> {
    fn fault(&self, fault: Fault, span: Span) -> RuntimeError {
        RuntimeError::Fault { fault, span, function: self.function.name.clone() }
    }

    /// IR the verifier rejects: a compiler bug, reported with the function.
    fn internal(&self, what: std::fmt::Arguments<'_>) -> RuntimeError {
        internal(self.function, what)
    }

    fn block(&mut self, block: &[Stmt]) -> Eval<Flow> {
        for stmt in block {
            match self.stmt(stmt)? {
                Flow::Normal => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }

    fn slot(&self, var: Var) -> Eval<&Slot> {
        self.frame.get(var.index()).ok_or_else(|| self.internal(format_args!("%{} is not declared", var.0)))
    }

    fn set(&mut self, var: Var, value: Slot) -> Eval<()> {
        match self.frame.get_mut(var.index()) {
            Some(slot) => {
                *slot = value;
                Ok(())
            }
            None => Err(self.internal(format_args!("%{} is not declared", var.0))),
        }
    }

    /// The array in `var`.
    fn array_mut(&mut self, var: Var) -> Eval<&mut Vec<Scalar>> {
        let function = self.function;
        match self.frame.get_mut(var.index()) {
            Some(Slot::Array(items)) => Ok(items),
            _ => Err(internal(function, format_args!("%{} is not an array", var.0))),
        }
    }

    fn int(&self, expr: &Expr) -> Eval<i128> {
        match self.eval(expr)? {
            Scalar::Int(_, value) => Ok(value),
            other => Err(self.internal(format_args!("{other} used as an integer"))),
        }
    }

    fn bool(&self, expr: &Expr) -> Eval<bool> {
        match self.eval(expr)? {
            Scalar::Bool(value) => Ok(value),
            other => Err(self.internal(format_args!("{other} used as a condition"))),
        }
    }

    fn stmt(&mut self, stmt: &Stmt) -> Eval<Flow> {
        match stmt {
            Stmt::Assign { dst, value } => {
                let value = self.eval(value)?;
                self.set(*dst, Slot::Scalar(value))?;
            }
            Stmt::Store { array, offset, value } => {
                let value = self.eval(value)?;
                let offset = self.int(offset)?;
                let span = self.function.span;
                let items = self.array_mut(*array)?;
                let len = items.len();
                match usize::try_from(offset).ok().and_then(|i| items.get_mut(i)) {
                    Some(slot) => *slot = value,
                    None => return Err(self.fault(Fault::IndexOutOfBounds { index: offset, len: len as u32 }, span)),
                }
            }
            Stmt::CopyArray { dst, src } => {
                let copy = self.slot(*src)?.clone();
                self.set(*dst, copy)?;
            }
            Stmt::FillArray { dst, value } => {
                let value = self.eval(value)?;
                self.array_mut(*dst)?.fill(value);
            }
            Stmt::If { cond, then, orelse } => {
                let taken = if self.bool(cond)? { then } else { orelse };
                return self.block(taken);
            }
            Stmt::Loop { label, counter, start, stop, step, body } => {
                let ty = match self.function.vars.get(counter.index()).map(|decl| decl.ty) {
                    Some(VarTy::Scalar(ScalarTy::Int(ty))) => ty,
                    _ => return Err(self.internal(format_args!("loop counter %{} is not an integer", counter.0))),
                };
                let mut value = *start;
                while (*step > 0 && value < *stop) || (*step < 0 && value > *stop) {
                    self.set(*counter, Slot::Scalar(Scalar::Int(ty, value)))?;
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
                if values.len() != results.len() {
                    return Err(self.internal(format_args!(
                        "a call returned {} of {} results",
                        values.len(),
                        results.len()
                    )));
                }
                for (result, value) in results.iter().zip(values) {
                    self.set(*result, value)?;
                }
            }
        }
        Ok(Flow::Normal)
    }

    fn operand(&self, operand: &Operand) -> Eval<Slot> {
        match operand {
            Operand::Scalar(expr) => Ok(Slot::Scalar(self.eval(expr)?)),
            Operand::Array(var) => Ok(self.slot(*var)?.clone()),
        }
    }

    fn op<T>(&self, result: Result<T, OpError>, span: Span) -> Eval<T> {
        result.map_err(|error| match error {
            OpError::Fault(fault) => self.fault(fault, span),
            OpError::Internal(error) => self.internal(format_args!("{}", error.message)),
        })
    }

    fn eval(&self, expr: &Expr) -> Eval<Scalar> {
        Ok(match expr {
            Expr::Const(value) => *value,
            Expr::Var(var) => match self.slot(*var)? {
                Slot::Scalar(value) => *value,
                Slot::Array(_) => return Err(self.internal(format_args!("array %{} used as a scalar", var.0))),
            },
            Expr::Load { array, offset } => {
                let offset = self.int(offset)?;
                match self.slot(*array)? {
                    Slot::Array(items) => match usize::try_from(offset).ok().and_then(|i| items.get(i)) {
                        Some(value) => *value,
                        None => {
                            return Err(self.fault(
                                Fault::IndexOutOfBounds { index: offset, len: items.len() as u32 },
                                self.function.span,
                            ))
                        }
                    },
                    Slot::Scalar(_) => return Err(self.internal(format_args!("scalar %{} used as an array", array.0))),
                }
            }
            Expr::Unary { op, arg } => {
                let arg = self.eval(arg)?;
                self.op(unary(*op, arg).map_err(OpError::Internal), self.function.span)?
            }
            Expr::Binary { op, lhs, rhs, span } => {
                let (a, b) = (self.eval(lhs)?, self.eval(rhs)?);
                self.op(binary(*op, a, b), *span)?
            }
            Expr::Compare { op, lhs, rhs } => {
                let (a, b) = (self.eval(lhs)?, self.eval(rhs)?);
                Scalar::Bool(self.op(compare(*op, a, b).map_err(OpError::Internal), self.function.span)?)
            }
            Expr::And(a, b) => Scalar::Bool(self.bool(a)? && self.bool(b)?),
            Expr::Or(a, b) => Scalar::Bool(self.bool(a)? || self.bool(b)?),
            Expr::IfElse { cond, then, orelse } => {
                if self.bool(cond)? {
                    self.eval(then)?
                } else {
                    self.eval(orelse)?
                }
            }
            Expr::Select { cond, then, orelse } => {
                let (c, a, b) = (self.bool(cond)?, self.eval(then)?, self.eval(orelse)?);
                if c {
                    a
                } else {
                    b
                }
            }
            Expr::Cast { to, arg } => cast(*to, self.eval(arg)?),
            Expr::CheckIndex { index, len, span } => {
                let value = self.int(index)?;
                if (0..i128::from(*len)).contains(&value) {
                    Scalar::Int(IntTy::I64, value)
                } else {
                    return Err(self.fault(Fault::IndexOutOfBounds { index: value, len: *len }, *span));
                }
            }
        })
    }
}

/// IR the verifier rejects, met while interpreting `function`: a compiler bug.
fn internal(function: &Function, what: std::fmt::Arguments<'_>) -> RuntimeError {
    RuntimeError::Internal(InternalError::at(function.span, format!("interpreting `{}`: {what}", function.name)))
}

/// A unary operation; an operand type the operation does not take is a compiler bug.
pub fn unary(op: UnaryOp, value: Scalar) -> Result<Scalar, InternalError> {
    Ok(match (op, value) {
        (UnaryOp::Neg, Scalar::Int(ty, v)) => Scalar::Int(ty, ops::int_neg(ty, v)),
        (UnaryOp::Neg, Scalar::Float(ty, v)) => Scalar::Float(ty, -v),
        (UnaryOp::Not, Scalar::Bool(b)) => Scalar::Bool(!b),
        (UnaryOp::BitNot, Scalar::Int(ty, v)) => Scalar::Int(ty, ops::int_bit_not(ty, v)),
        (UnaryOp::Abs, Scalar::Int(ty, v)) => Scalar::Int(ty, ops::int_abs(ty, v)),
        (UnaryOp::Abs, Scalar::Float(ty, v)) => Scalar::Float(ty, v.abs()),
        (op, value) => bail_internal!("`{}` applied to {value}", op.name()),
    })
}

/// A binary operation: a fault of the program, or (for operand types the operation does not
/// take, such as `/` on integers) a compiler bug.
pub fn binary(op: BinaryOp, a: Scalar, b: Scalar) -> Result<Scalar, OpError> {
    let int = |op: BinaryOp, ty: IntTy, x: i128, y: i128| -> Result<i128, OpError> {
        Ok(match op {
            BinaryOp::Add => ops::int_add(ty, x, y),
            BinaryOp::Sub => ops::int_sub(ty, x, y),
            BinaryOp::Mul => ops::int_mul(ty, x, y),
            BinaryOp::FloorDiv => ops::int_floor_div(ty, x, y).map_err(OpError::Fault)?,
            BinaryOp::Mod => ops::int_mod(ty, x, y).map_err(OpError::Fault)?,
            BinaryOp::Shl => ops::int_shl(ty, x, y).map_err(OpError::Fault)?,
            BinaryOp::Shr => ops::int_shr(ty, x, y).map_err(OpError::Fault)?,
            BinaryOp::BitAnd => ops::int_and(x, y),
            BinaryOp::BitOr => ops::int_or(x, y),
            BinaryOp::BitXor => ops::int_xor(x, y),
            BinaryOp::Min => x.min(y),
            BinaryOp::Max => x.max(y),
            // `/` is true division: the checker converts integer operands to floats first.
            BinaryOp::Div => bail_internal!("`div` applied to integers"),
        })
    };
    Ok(match (a, b) {
        (Scalar::Int(ty, x), Scalar::Int(other, y)) if ty == other || matches!(op, BinaryOp::Shl | BinaryOp::Shr) => {
            Scalar::Int(ty, int(op, ty, x, y)?)
        }
        (Scalar::Float(ty, x), Scalar::Float(other, y)) if ty == other => Scalar::Float(
            ty,
            match op {
                BinaryOp::Add => ops::float_arith(ty, FloatOp::Add, x, y),
                BinaryOp::Sub => ops::float_arith(ty, FloatOp::Sub, x, y),
                BinaryOp::Mul => ops::float_arith(ty, FloatOp::Mul, x, y),
                BinaryOp::Div => ops::float_arith(ty, FloatOp::Div, x, y),
                BinaryOp::Min => ops::float_min(x, y),
                BinaryOp::Max => ops::float_max(x, y),
                other => bail_internal!("`{}` applied to floats", other.name()),
            },
        ),
        (Scalar::Bool(x), Scalar::Bool(y)) => Scalar::Bool(match op {
            BinaryOp::BitAnd => x & y,
            BinaryOp::BitOr => x | y,
            BinaryOp::BitXor => x ^ y,
            other => bail_internal!("`{}` applied to bools", other.name()),
        }),
        (a, b) => bail_internal!("`{}` applied to {a} and {b}", op.name()),
    })
}

/// A comparison; operands of different types are a compiler bug.
pub fn compare(op: CmpOp, a: Scalar, b: Scalar) -> Result<bool, InternalError> {
    let ordering = match (a, b) {
        (Scalar::Int(_, x), Scalar::Int(_, y)) => Some(x.cmp(&y)),
        (Scalar::Float(_, x), Scalar::Float(_, y)) => x.partial_cmp(&y),
        (Scalar::Bool(x), Scalar::Bool(y)) => Some(x.cmp(&y)),
        (a, b) => bail_internal!("`{}` applied to {a} and {b}", op.name()),
    };
    Ok(match (op, ordering) {
        (CmpOp::Ne, None) => true,
        (_, None) => false,
        (CmpOp::Eq, Some(o)) => o.is_eq(),
        (CmpOp::Ne, Some(o)) => o.is_ne(),
        (CmpOp::Lt, Some(o)) => o.is_lt(),
        (CmpOp::Le, Some(o)) => o.is_le(),
        (CmpOp::Gt, Some(o)) => o.is_gt(),
        (CmpOp::Ge, Some(o)) => o.is_ge(),
    })
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

#[cfg(test)]
mod tests {
    //! IR the verifier rejects, run directly: the interpreter must answer with an internal
    //! error naming the function, never with a plausible value.

    use super::*;

    const I64: ScalarTy = ScalarTy::Int(IntTy::I64);

    /// A module with one function `f` returning one i64, built by `body`.
    fn module(body: impl FnOnce(&mut Function) -> Vec<Stmt>) -> Module {
        let mut f = Function {
            name: "f".into(),
            span: Span::new(3, 9),
            params: Vec::new(),
            results: vec![VarTy::Scalar(I64)],
            vars: Vec::new(),
            body: Vec::new(),
            next_label: 0,
        };
        f.body = body(&mut f);
        Module { functions: vec![f] }
    }

    fn internal(module: &Module) -> InternalError {
        match Interpreter::new(module).call(FuncId(0), Vec::new()) {
            Err(RuntimeError::Internal(error)) => error,
            other => panic!("expected an internal error, got {other:?}"),
        }
    }

    fn ret(expr: Expr) -> Stmt {
        Stmt::Return(vec![Operand::Scalar(expr)])
    }

    #[test]
    fn falling_off_the_end_is_an_internal_error() {
        let error = internal(&module(|_| Vec::new()));
        assert_eq!(error.span, Some(Span::new(3, 9)));
        assert!(error.message.contains("`f` ended without `return`"), "{}", error.message);
    }

    #[test]
    fn integer_true_division_is_an_internal_error_not_its_left_operand() {
        let divide = Expr::binary(BinaryOp::Div, Expr::i64(7), Expr::i64(2), Span::new(4, 5));
        let error = internal(&module(|_| vec![ret(divide)]));
        assert!(error.message.contains("`div` applied to integers"), "{}", error.message);
        let direct = binary(BinaryOp::Div, Scalar::Int(IntTy::I64, 7), Scalar::Int(IntTy::I64, 2));
        assert!(matches!(direct, Err(OpError::Internal(_))));
    }

    #[test]
    fn operands_of_the_wrong_type_are_internal_errors() {
        let mixed = binary(BinaryOp::Add, Scalar::Int(IntTy::I64, 1), Scalar::Bool(true));
        assert!(matches!(mixed, Err(OpError::Internal(_))));
        let float_shift = binary(
            BinaryOp::Shl,
            Scalar::Float(naas_lang::types::FloatTy::F64, 1.0),
            Scalar::Float(naas_lang::types::FloatTy::F64, 1.0),
        );
        assert!(matches!(float_shift, Err(OpError::Internal(_))));
        let bool_add = binary(BinaryOp::Add, Scalar::Bool(true), Scalar::Bool(true));
        assert!(matches!(bool_add, Err(OpError::Internal(_))));
        assert!(unary(UnaryOp::Not, Scalar::Int(IntTy::I64, 1)).is_err());
        assert!(compare(CmpOp::Lt, Scalar::Int(IntTy::I64, 1), Scalar::Bool(false)).is_err());
        // A genuine fault stays a fault of the program.
        let zero = binary(BinaryOp::FloorDiv, Scalar::Int(IntTy::I64, 1), Scalar::Int(IntTy::I64, 0));
        assert_eq!(zero, Err(OpError::Fault(Fault::DivisionByZero)));
    }

    #[test]
    fn conditions_indexes_and_variables_of_the_wrong_kind_are_internal_errors() {
        let error = internal(&module(|_| {
            vec![Stmt::If { cond: Expr::i64(1), then: vec![ret(Expr::i64(1))], orelse: vec![ret(Expr::i64(2))] }]
        }));
        assert!(error.message.contains("used as a condition"), "{}", error.message);
        let error = internal(&module(|f| {
            let xs = f.new_var("xs", VarTy::Array(I64, 2));
            vec![ret(Expr::load(xs, Expr::Const(Scalar::Bool(true))))]
        }));
        assert!(error.message.contains("used as an integer"), "{}", error.message);
        let error = internal(&module(|f| {
            let xs = f.new_var("xs", VarTy::Array(I64, 2));
            vec![ret(Expr::Var(xs))]
        }));
        assert!(error.message.contains("array %0 used as a scalar"), "{}", error.message);
        let error = internal(&module(|f| {
            let x = f.new_var("x", VarTy::Scalar(I64));
            vec![Stmt::FillArray { dst: x, value: Expr::i64(0) }, ret(Expr::i64(0))]
        }));
        assert!(error.message.contains("%0 is not an array"), "{}", error.message);
        let error = internal(&module(|_| vec![ret(Expr::Var(crate::ir::Var(5)))]));
        assert!(error.message.contains("%5 is not declared"), "{}", error.message);
    }

    #[test]
    fn calls_of_unknown_functions_are_internal_errors() {
        let error = internal(&module(|f| {
            let x = f.new_var("x", VarTy::Scalar(I64));
            vec![Stmt::Call { func: FuncId(9), args: Vec::new(), results: vec![x] }, ret(Expr::Var(x))]
        }));
        assert!(error.message.contains("unknown function #9"), "{}", error.message);
    }
}
