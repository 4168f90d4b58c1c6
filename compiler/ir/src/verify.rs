//! The IR verifier: checks that a module is well formed (variables and labels in scope,
//! operand types, call signatures). Passes run it after every transformation in debug
//! builds and in tests; a failure is a compiler bug, reported with the function's text.

use std::collections::HashSet;

use naas_lang::types::IntTy;

use crate::ir::{BinaryOp, Expr, Function, Module, Operand, ScalarTy, Stmt, UnaryOp, Var, VarTy};
use crate::ir_types::expr_ty;

pub fn verify_module(module: &Module) -> Result<(), String> {
    for function in &module.functions {
        verify_function(function, module).map_err(|error| {
            format!(
                "IR verification failed in `{}`: {error}\n{}",
                function.name,
                crate::print::print_function(function, module)
            )
        })?;
    }
    Ok(())
}

pub fn verify_function(f: &Function, module: &Module) -> Result<(), String> {
    let mut seen = HashSet::new();
    for param in &f.params {
        var_in_range(f, *param)?;
        if !seen.insert(*param) {
            return Err(format!("parameter %{} is listed twice", param.0));
        }
    }
    let mut verifier = Verifier { f, module, labels: Vec::new(), declared: HashSet::new() };
    verifier.block(&f.body)
}

fn var_in_range(f: &Function, var: Var) -> Result<(), String> {
    if var.index() < f.vars.len() {
        Ok(())
    } else {
        Err(format!("variable %{} is not declared", var.0))
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
    fn scalar_var(&self, var: Var) -> Result<ScalarTy, String> {
        var_in_range(self.f, var)?;
        match self.f.var_ty(var) {
            VarTy::Scalar(ty) => Ok(ty),
            VarTy::Array(..) => Err(format!("array %{} used as a scalar", var.0)),
        }
    }

    fn array_var(&self, var: Var) -> Result<(ScalarTy, u32), String> {
        var_in_range(self.f, var)?;
        match self.f.var_ty(var) {
            VarTy::Array(ty, len) => Ok((ty, len)),
            VarTy::Scalar(_) => Err(format!("scalar %{} used as an array", var.0)),
        }
    }

    fn block(&mut self, block: &[Stmt]) -> Result<(), String> {
        block.iter().try_for_each(|stmt| self.stmt(stmt))
    }

    fn expect(&self, expr: &Expr, ty: ScalarTy, what: &str) -> Result<(), String> {
        let found = self.expr(expr)?;
        if found == ty {
            Ok(())
        } else {
            Err(format!("{what}: expected {}, found {}", ty.name(), found.name()))
        }
    }

    fn label(&mut self, label: u32, is_loop: bool, body: &[Stmt]) -> Result<(), String> {
        if !self.declared.insert(label) {
            return Err(format!("label @{label} is declared twice"));
        }
        self.labels.push((label, is_loop));
        let result = self.block(body);
        self.labels.pop();
        result
    }

    fn stmt(&mut self, stmt: &Stmt) -> Result<(), String> {
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
                    Err(format!("copy between arrays of different types %{} and %{}", dst.0, src.0))
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
                    return Err("loop counter is not an integer".to_string());
                }
                if *step == 0 {
                    return Err("loop step is zero".to_string());
                }
                self.label(label.0, true, body)
            }
            Stmt::Block { label, body } => self.label(label.0, false, body),
            Stmt::Break(label) => {
                if self.labels.iter().any(|(l, _)| *l == label.0) {
                    Ok(())
                } else {
                    Err(format!("break to @{} outside its construct", label.0))
                }
            }
            Stmt::Continue(label) => {
                if self.labels.iter().any(|(l, is_loop)| *l == label.0 && *is_loop) {
                    Ok(())
                } else {
                    Err(format!("continue to @{}, which is not an enclosing loop", label.0))
                }
            }
            Stmt::Return(values) => {
                if values.len() != self.f.results.len() {
                    return Err(format!("return of {} values, expected {}", values.len(), self.f.results.len()));
                }
                for (value, ty) in values.iter().zip(&self.f.results) {
                    self.operand(value, *ty, "returned value")?;
                }
                Ok(())
            }
            Stmt::Call { func, args, results } => {
                let callee = self.module.functions.get(func.0 as usize).ok_or("call of an unknown function")?;
                if args.len() != callee.params.len() || results.len() != callee.results.len() {
                    return Err(format!("call of `{}` with the wrong number of arguments or results", callee.name));
                }
                for (arg, param) in args.iter().zip(&callee.params) {
                    self.operand(arg, callee.var_ty(*param), "argument")?;
                }
                for (result, ty) in results.iter().zip(&callee.results) {
                    var_in_range(self.f, *result)?;
                    if self.f.var_ty(*result) != *ty {
                        return Err(format!("call result %{} has the wrong type", result.0));
                    }
                }
                Ok(())
            }
        }
    }

    fn operand(&self, operand: &Operand, ty: VarTy, what: &str) -> Result<(), String> {
        match (operand, ty) {
            (Operand::Scalar(expr), VarTy::Scalar(scalar)) => self.expect(expr, scalar, what),
            (Operand::Array(var), VarTy::Array(..)) => {
                self.array_var(*var)?;
                if self.f.var_ty(*var) == ty {
                    Ok(())
                } else {
                    Err(format!("{what}: array %{} has type {}, expected {ty}", var.0, self.f.var_ty(*var)))
                }
            }
            _ => Err(format!("{what}: scalar and array mixed up")),
        }
    }

    fn expr(&self, expr: &Expr) -> Result<ScalarTy, String> {
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
                    return Err(format!("{} applied to {}", op.name(), arg_ty.name()));
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
                    return Err(format!("{} applied to {} and {}", op.name(), a.name(), b.name()));
                }
            }
            Expr::Compare { lhs, rhs, .. } => {
                let (a, b) = (self.expr(lhs)?, self.expr(rhs)?);
                if a != b {
                    return Err(format!("comparison of {} with {}", a.name(), b.name()));
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
                    return Err("index is not an integer".to_string());
                }
            }
        }
        Ok(ty)
    }
}
