//! The IR verifier: checks that a module is well formed (variables and labels in scope,
//! operand types, call signatures). Passes run it after every transformation in debug
//! builds and in tests; a failure is a compiler bug, reported with the function's text.

use std::collections::HashSet;

use naas_lang::types::IntTy;

use crate::ir::{BinaryOp, CmpOp, Expr, Function, Module, Operand, ScalarTy, Stmt, UnaryOp, Var, VarTy};
use crate::ir_types::expr_ty;

/// A function that breaks a rule of the IR, with the function's text for the bug report.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("IR verification failed in `{function}`: {violation}\n{text}")]
pub struct VerifyError {
    pub function: String,
    pub violation: Violation,
    /// The function printed as IR text.
    pub text: String,
}

/// The rule of the IR a function breaks.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Violation {
    #[error("parameter %{0} is listed twice")]
    DuplicateParameter(u32),
    #[error("variable %{0} is not declared")]
    UndeclaredVariable(u32),
    #[error("array %{0} used as a scalar")]
    ArrayAsScalar(u32),
    #[error("scalar %{0} used as an array")]
    ScalarAsArray(u32),
    #[error("{what}: expected {}, found {}", .expected.name(), .found.name())]
    TypeMismatch { what: &'static str, expected: ScalarTy, found: ScalarTy },
    #[error("copy between arrays of different types %{dst} and %{src}")]
    CopyTypes { dst: u32, src: u32 },
    #[error("loop counter is not an integer")]
    LoopCounterNotInteger,
    #[error("loop step is zero")]
    ZeroStep,
    #[error("label @{0} is declared twice")]
    DuplicateLabel(u32),
    #[error("break to @{0} outside its construct")]
    BreakOutside(u32),
    #[error("continue to @{0}, which is not an enclosing loop")]
    ContinueOutside(u32),
    #[error("return of {found} values, expected {expected}")]
    ReturnCount { found: usize, expected: usize },
    #[error("call of an unknown function")]
    UnknownFunction,
    #[error("call of `{callee}` with the wrong number of arguments or results")]
    CallCount { callee: String },
    #[error("call result %{0} has the wrong type")]
    CallResultType(u32),
    #[error("{what}: array %{var} has type {found}, expected {expected}")]
    ArrayType { what: &'static str, var: u32, found: VarTy, expected: VarTy },
    #[error("{what}: scalar and array mixed up")]
    ScalarArrayMixup { what: &'static str },
    #[error("{} applied to {}", .op.name(), .arg.name())]
    UnaryOperand { op: UnaryOp, arg: ScalarTy },
    #[error("{} applied to {} and {}", .op.name(), .lhs.name(), .rhs.name())]
    BinaryOperands { op: BinaryOp, lhs: ScalarTy, rhs: ScalarTy },
    #[error("comparison of {} with {}", .lhs.name(), .rhs.name())]
    CompareOperands { op: CmpOp, lhs: ScalarTy, rhs: ScalarTy },
    #[error("index is not an integer")]
    IndexNotInteger,
}

type Verified<T> = Result<T, Violation>;

pub fn verify_module(module: &Module) -> Result<(), VerifyError> {
    for function in &module.functions {
        verify_function(function, module).map_err(|violation| VerifyError {
            function: function.name.clone(),
            violation,
            text: crate::print::print_function(function, module),
        })?;
    }
    Ok(())
}

pub fn verify_function(f: &Function, module: &Module) -> Result<(), Violation> {
    let mut seen = HashSet::new();
    for param in &f.params {
        var_in_range(f, *param)?;
        if !seen.insert(*param) {
            return Err(Violation::DuplicateParameter(param.0));
        }
    }
    let mut verifier = Verifier { f, module, labels: Vec::new(), declared: HashSet::new() };
    verifier.block(&f.body)
}

fn var_in_range(f: &Function, var: Var) -> Verified<()> {
    if var.index() < f.vars.len() {
        Ok(())
    } else {
        Err(Violation::UndeclaredVariable(var.0))
    }
}

struct Verifier<'a> {
    f: &'a Function,
    module: &'a Module,
    /// Enclosing labels; `true` for loops (which `continue` may target).
    labels: Vec<(u32, bool)>,
    declared: HashSet<u32>,
}

impl Verifier<'_> {
    fn scalar_var(&self, var: Var) -> Verified<ScalarTy> {
        var_in_range(self.f, var)?;
        match self.f.var_ty(var) {
            VarTy::Scalar(ty) => Ok(ty),
            VarTy::Array(..) => Err(Violation::ArrayAsScalar(var.0)),
        }
    }

    fn array_var(&self, var: Var) -> Verified<(ScalarTy, u32)> {
        var_in_range(self.f, var)?;
        match self.f.var_ty(var) {
            VarTy::Array(ty, len) => Ok((ty, len)),
            VarTy::Scalar(_) => Err(Violation::ScalarAsArray(var.0)),
        }
    }

    fn block(&mut self, block: &[Stmt]) -> Verified<()> {
        block.iter().try_for_each(|stmt| self.stmt(stmt))
    }

    fn expect(&self, expr: &Expr, ty: ScalarTy, what: &'static str) -> Verified<()> {
        let found = self.expr(expr)?;
        if found == ty {
            Ok(())
        } else {
            Err(Violation::TypeMismatch { what, expected: ty, found })
        }
    }

    fn label(&mut self, label: u32, is_loop: bool, body: &[Stmt]) -> Verified<()> {
        if !self.declared.insert(label) {
            return Err(Violation::DuplicateLabel(label));
        }
        self.labels.push((label, is_loop));
        let result = self.block(body);
        self.labels.pop();
        result
    }

    fn stmt(&mut self, stmt: &Stmt) -> Verified<()> {
        match stmt {
            Stmt::Assign { dst, value } => {
                let ty = self.scalar_var(*dst)?;
                self.expect(value, ty, "assignment")
            }
            Stmt::Store { array, offset, value } => {
                let (ty, _) = self.array_var(*array)?;
                self.expect(offset, ScalarTy::Int(IntTy::I64), "store offset")?;
                self.expect(value, ty, "stored value")
            }
            Stmt::CopyArray { dst, src } => {
                let (a, b) = (self.array_var(*dst)?, self.array_var(*src)?);
                if a == b {
                    Ok(())
                } else {
                    Err(Violation::CopyTypes { dst: dst.0, src: src.0 })
                }
            }
            Stmt::FillArray { dst, value } => {
                let (ty, _) = self.array_var(*dst)?;
                self.expect(value, ty, "fill value")
            }
            Stmt::If { cond, then, orelse } => {
                self.expect(cond, ScalarTy::Bool, "if condition")?;
                self.block(then)?;
                self.block(orelse)
            }
            Stmt::Loop { label, counter, step, body, .. } => {
                if !matches!(self.scalar_var(*counter)?, ScalarTy::Int(_)) {
                    return Err(Violation::LoopCounterNotInteger);
                }
                if *step == 0 {
                    return Err(Violation::ZeroStep);
                }
                self.label(label.0, true, body)
            }
            Stmt::Block { label, body } => self.label(label.0, false, body),
            Stmt::Break(label) => {
                if self.labels.iter().any(|(l, _)| *l == label.0) {
                    Ok(())
                } else {
                    Err(Violation::BreakOutside(label.0))
                }
            }
            Stmt::Continue(label) => {
                if self.labels.iter().any(|(l, is_loop)| *l == label.0 && *is_loop) {
                    Ok(())
                } else {
                    Err(Violation::ContinueOutside(label.0))
                }
            }
            Stmt::Return(values) => {
                if values.len() != self.f.results.len() {
                    return Err(Violation::ReturnCount { found: values.len(), expected: self.f.results.len() });
                }
                for (value, ty) in values.iter().zip(&self.f.results) {
                    self.operand(value, *ty, "returned value")?;
                }
                Ok(())
            }
            Stmt::Call { func, args, results } => {
                let callee = self.module.functions.get(func.0 as usize).ok_or(Violation::UnknownFunction)?;
                if args.len() != callee.params.len() || results.len() != callee.results.len() {
                    return Err(Violation::CallCount { callee: callee.name.clone() });
                }
                for (arg, param) in args.iter().zip(&callee.params) {
                    self.operand(arg, callee.var_ty(*param), "argument")?;
                }
                for (result, ty) in results.iter().zip(&callee.results) {
                    var_in_range(self.f, *result)?;
                    if self.f.var_ty(*result) != *ty {
                        return Err(Violation::CallResultType(result.0));
                    }
                }
                Ok(())
            }
        }
    }

    fn operand(&self, operand: &Operand, ty: VarTy, what: &'static str) -> Verified<()> {
        match (operand, ty) {
            (Operand::Scalar(expr), VarTy::Scalar(scalar)) => self.expect(expr, scalar, what),
            (Operand::Array(var), VarTy::Array(..)) => {
                self.array_var(*var)?;
                if self.f.var_ty(*var) == ty {
                    Ok(())
                } else {
                    Err(Violation::ArrayType { what, var: var.0, found: self.f.var_ty(*var), expected: ty })
                }
            }
            _ => Err(Violation::ScalarArrayMixup { what }),
        }
    }

    fn expr(&self, expr: &Expr) -> Verified<ScalarTy> {
        let ty = expr_ty(self.f, expr);
        match expr {
            Expr::Const(_) => {}
            Expr::Var(var) => {
                self.scalar_var(*var)?;
            }
            Expr::Load { array, offset } => {
                self.array_var(*array)?;
                self.expect(offset, ScalarTy::Int(IntTy::I64), "load offset")?;
            }
            Expr::Unary { op, arg } => {
                let arg_ty = self.expr(arg)?;
                let ok = match op {
                    UnaryOp::Not => arg_ty == ScalarTy::Bool,
                    UnaryOp::BitNot => matches!(arg_ty, ScalarTy::Int(_)),
                    UnaryOp::Neg | UnaryOp::Abs => arg_ty != ScalarTy::Bool,
                };
                if !ok {
                    return Err(Violation::UnaryOperand { op: *op, arg: arg_ty });
                }
            }
            Expr::Binary { op, lhs, rhs, .. } => {
                let (a, b) = (self.expr(lhs)?, self.expr(rhs)?);
                let ok = match op {
                    BinaryOp::Shl | BinaryOp::Shr => matches!((a, b), (ScalarTy::Int(_), ScalarTy::Int(_))),
                    BinaryOp::Div => a == b && a.is_float(),
                    BinaryOp::FloorDiv | BinaryOp::Mod => a == b && matches!(a, ScalarTy::Int(_)),
                    BinaryOp::BitAnd | BinaryOp::BitOr | BinaryOp::BitXor => a == b && !a.is_float(),
                    BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Min | BinaryOp::Max => {
                        a == b && a != ScalarTy::Bool
                    }
                };
                if !ok {
                    return Err(Violation::BinaryOperands { op: *op, lhs: a, rhs: b });
                }
            }
            Expr::Compare { op, lhs, rhs } => {
                let (a, b) = (self.expr(lhs)?, self.expr(rhs)?);
                if a != b {
                    return Err(Violation::CompareOperands { op: *op, lhs: a, rhs: b });
                }
            }
            Expr::And(a, b) | Expr::Or(a, b) => {
                self.expect(a, ScalarTy::Bool, "logic operand")?;
                self.expect(b, ScalarTy::Bool, "logic operand")?;
            }
            Expr::IfElse { cond, then, orelse } | Expr::Select { cond, then, orelse } => {
                self.expect(cond, ScalarTy::Bool, "condition")?;
                let a = self.expr(then)?;
                self.expect(orelse, a, "conditional branch")?;
            }
            Expr::Cast { arg, .. } => {
                self.expr(arg)?;
            }
            Expr::CheckIndex { index, .. } => {
                if !matches!(self.expr(index)?, ScalarTy::Int(_)) {
                    return Err(Violation::IndexNotInteger);
                }
            }
        }
        Ok(ty)
    }
}
