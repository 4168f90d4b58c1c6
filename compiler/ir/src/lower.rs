//! Lowering from the checked, typed AST to IR. Source values become [`Repr`]s: a scalar
//! expression, a group of components (tuples, records), or a view of array variables. A
//! `Repr` whose scalars are variables or array elements also serves as a *place* to store to.
//!
//! Lowering is literal: it keeps every check and copy the source implies and leaves
//! simplification to the passes.
//!
//! The checker guarantees that every program reaching lowering is well typed, so a shape that
//! does not fit (a name with no local, a non-scalar where a scalar is needed, a tuple index
//! that is not a constant) is a compiler bug. Lowering then returns an [`InternalError`] with
//! the construct's span instead of substituting a plausible value: a bug must stop the
//! compilation, never become a wrong result.

use std::collections::{HashMap, HashSet};

use naas_lang::ast::{self, Arg, BinOp, Block, ExprKind, LogicOp, StmtKind, UnOp};
use naas_lang::bail_internal;
use naas_lang::check::{self, is_aggregate_call};
use naas_lang::internal::InternalError;
use naas_lang::span::Span;
use naas_lang::types::{IntTy, Type};
use naas_lang::value::Value;

use crate::ir::{
    self, BinaryOp, CmpOp, Expr, FuncId, Function, Label, Operand, Scalar, ScalarTy, Stmt, UnaryOp, Var, VarTy,
};
use crate::layout::{leaf_strides, leaves, scalar_ty, var_types};

/// The result of lowering a construct: an error is always a broken invariant (a compiler bug).
pub type Lowered<T> = Result<T, InternalError>;

/// A source value in IR terms.
#[derive(Clone, Debug)]
pub enum Repr {
    Scalar(Expr),
    /// Components of a tuple or record, in order.
    Group(Vec<Repr>),
    Array(ArrayView),
}

/// `len` elements of type `elem`, stored in one IR array per leaf of `elem`, each starting at
/// an `i64` offset (the element stride of each leaf is given by [`leaf_strides`]).
#[derive(Clone, Debug)]
pub struct ArrayView {
    pub elem: Type,
    pub len: u32,
    pub leaves: Vec<(Var, Expr)>,
}

/// Lowers a checked program's helper functions; aggregate parts are added by
/// [`crate::decompose`] through [`Lowerer::lower_function`].
pub struct Lowerer {
    pub module: ir::Module,
    ids: HashMap<String, FuncId>,
}

impl Lowerer {
    /// Declares every helper first (so calls resolve in any order), then lowers the bodies.
    pub fn new(program: &check::Program) -> Lowered<Lowerer> {
        let ids = program
            .functions
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.clone(), FuncId(u32::try_from(i).unwrap_or(u32::MAX))))
            .collect();
        let mut lowerer = Lowerer { module: ir::Module::default(), ids };
        for function in &program.functions {
            let lowered = lowerer.lower_function(function, &function.name)?;
            lowerer.module.functions.push(lowered);
        }
        Ok(lowerer)
    }

    /// Adds a function to the module and returns its id.
    pub fn add(&mut self, function: Function) -> FuncId {
        let id = FuncId(u32::try_from(self.module.functions.len()).unwrap_or(u32::MAX));
        self.module.functions.push(function);
        id
    }

    /// Lowers one checked function.
    pub fn lower_function(&self, function: &check::Function, name: &str) -> Lowered<Function> {
        let mut lower = FnLower::new(name, function.span, &self.ids);
        for (i, local) in function.locals.iter().enumerate() {
            let repr = lower.alloc(&local.ty, &local.name)?;
            if i < function.params {
                lower.f.params.extend(repr_vars_in_order(&repr));
            }
            lower.locals.insert(local.name.clone(), repr);
        }
        lower.f.results = var_types(&function.ret);
        lower.block(&function.body)?;
        Ok(lower.finish())
    }

    /// Lowers a function whose body is given as a closure over a fresh [`FnLower`]: used for
    /// the synthesised parts of built-in aggregates.
    pub fn synthesize(
        &self,
        name: &str,
        span: Span,
        params: &[(String, Type)],
        results: &Type,
        body: impl FnOnce(&mut FnLower<'_>, &[Repr]) -> Lowered<()>,
    ) -> Lowered<Function> {
        let mut lower = FnLower::new(name, span, &self.ids);
        let mut param_reprs = Vec::new();
        for (param, ty) in params {
            let repr = lower.alloc(ty, param)?;
            lower.f.params.extend(repr_vars_in_order(&repr));
            lower.locals.insert(param.clone(), repr.clone());
            param_reprs.push(repr);
        }
        lower.f.results = var_types(results);
        body(&mut lower, &param_reprs)?;
        Ok(lower.finish())
    }
}

/// The variables of a freshly allocated `Repr`, in layout order.
fn repr_vars_in_order(repr: &Repr) -> Vec<Var> {
    let mut out = Vec::new();
    fn walk(repr: &Repr, out: &mut Vec<Var>) {
        match repr {
            Repr::Scalar(Expr::Var(var)) => out.push(*var),
            Repr::Scalar(_) => {}
            Repr::Group(items) => items.iter().for_each(|item| walk(item, out)),
            Repr::Array(view) => out.extend(view.leaves.iter().map(|(var, _)| *var)),
        }
    }
    walk(repr, &mut out);
    out
}

pub struct FnLower<'a> {
    pub f: Function,
    ids: &'a HashMap<String, FuncId>,
    pub locals: HashMap<String, Repr>,
    loops: Vec<Label>,
    out: Vec<Stmt>,
    /// In the finish of a built-in aggregate: what each aggregate call (by
    /// [`aggregate_key`]) reads from the state.
    pub aggregates: HashMap<String, Repr>,
}

impl<'a> FnLower<'a> {
    fn new(name: &str, span: Span, ids: &'a HashMap<String, FuncId>) -> FnLower<'a> {
        FnLower {
            f: Function {
                name: name.to_string(),
                span,
                params: Vec::new(),
                results: Vec::new(),
                vars: Vec::new(),
                body: Vec::new(),
                next_label: 0,
            },
            ids,
            locals: HashMap::new(),
            loops: Vec::new(),
            out: Vec::new(),
            aggregates: HashMap::new(),
        }
    }

    fn finish(mut self) -> Function {
        self.f.body = std::mem::take(&mut self.out);
        self.f
    }

    pub fn emit(&mut self, stmt: Stmt) {
        self.out.push(stmt);
    }

    /// Allocates variables for a value of type `ty`.
    pub fn alloc(&mut self, ty: &Type, name: &str) -> Lowered<Repr> {
        Ok(match ty {
            Type::Tuple(items) => Repr::Group(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.alloc(item, &format!("{name}.{i}")))
                    .collect::<Lowered<_>>()?,
            ),
            Type::Record(record) => Repr::Group(
                record
                    .fields
                    .iter()
                    .map(|(field, item)| self.alloc(item, &format!("{name}.{field}")))
                    .collect::<Lowered<_>>()?,
            ),
            Type::Array(elem, len) => {
                let leaves = leaves(elem, name)
                    .into_iter()
                    .map(|leaf| (self.f.new_var(leaf.path, VarTy::Array(leaf.ty, leaf.count * len)), Expr::i64(0)))
                    .collect();
                Repr::Array(ArrayView { elem: (**elem).clone(), len: *len, leaves })
            }
            other => {
                let Some(scalar) = scalar_ty(other) else {
                    bail_internal!(
                        self.f.span,
                        "lowering `{}`: `{name}` has the unresolved type `{other}`",
                        self.f.name
                    )
                };
                Repr::Scalar(Expr::Var(self.f.new_var(name, VarTy::Scalar(scalar))))
            }
        })
    }

    /// Element `index` (an in-bounds `i64`) of an array view.
    pub fn element(&self, view: &ArrayView, index: &Expr) -> Lowered<Repr> {
        let strides = leaf_strides(&view.elem);
        let mut leaves = view.leaves.iter().zip(strides).map(|((var, base), stride)| {
            let scaled = mul_i64(index.clone(), i128::from(stride));
            (*var, add_i64(base.clone(), scaled))
        });
        build(&view.elem, &mut leaves).ok_or_else(|| {
            InternalError::at(self.f.span, format!("lowering `{}`: an array view has too few leaves", self.f.name))
        })
    }

    /// Stores `src` into the place `dst`.
    pub fn assign(&mut self, dst: &Repr, src: Repr) -> Lowered<()> {
        match (dst, src) {
            (Repr::Scalar(Expr::Var(var)), Repr::Scalar(value)) => self.emit(Stmt::Assign { dst: *var, value }),
            (Repr::Scalar(Expr::Load { array, offset }), Repr::Scalar(value)) => {
                self.emit(Stmt::Store { array: *array, offset: (**offset).clone(), value });
            }
            (Repr::Group(dsts), Repr::Group(srcs)) => {
                // Components are assigned one by one, so a source that reads the destination
                // (`t = (t[1], t[0])`) is copied to temporaries first.
                let written = place_vars(dst);
                if dsts.len() != srcs.len() {
                    bail_internal!(
                        self.f.span,
                        "lowering `{}`: assignment of {} components to {}",
                        self.f.name,
                        srcs.len(),
                        dsts.len()
                    );
                }
                let srcs = if srcs.iter().any(|src| reads_any(src, &written)) {
                    srcs.into_iter().map(|src| self.materialize_copy(src)).collect::<Lowered<_>>()?
                } else {
                    srcs
                };
                for (dst, src) in dsts.iter().zip(srcs) {
                    self.assign(dst, src)?;
                }
            }
            (Repr::Array(dst), Repr::Array(src)) => self.copy_array(dst, &src)?,
            (dst, src) => bail_internal!(
                self.f.span,
                "lowering `{}`: cannot store {} into {}",
                self.f.name,
                src.shape(),
                dst.shape()
            ),
        }
        Ok(())
    }

    fn copy_array(&mut self, dst: &ArrayView, src: &ArrayView) -> Lowered<()> {
        let strides = leaf_strides(&dst.elem);
        let whole = |view: &ArrayView, f: &Function| {
            view.leaves.iter().zip(&strides).all(|((var, base), stride)| {
                base.as_const().and_then(Scalar::as_int) == Some(0) && f.var_ty(*var).size_elems() == view.len * stride
            })
        };
        if whole(dst, &self.f) && whole(src, &self.f) {
            for ((dst, _), (src, _)) in dst.leaves.iter().zip(&src.leaves) {
                if dst != src {
                    self.emit(Stmt::CopyArray { dst: *dst, src: *src });
                }
            }
            return Ok(());
        }
        let counter = self.f.new_var("copy.k", VarTy::Scalar(ScalarTy::Int(IntTy::I64)));
        let label = self.f.new_label();
        let saved = std::mem::take(&mut self.out);
        let index = Expr::Var(counter);
        let (dst_elem, src_elem) = (self.element(dst, &index)?, self.element(src, &index)?);
        self.assign(&dst_elem, src_elem)?;
        let body = std::mem::replace(&mut self.out, saved);
        self.emit(Stmt::Loop { label, counter, start: 0, stop: i128::from(dst.len), step: 1, body });
        Ok(())
    }

    /// Allocates the variables of an array of `len` elements of type `elem`.
    fn alloc_array(&mut self, elem: &Type, len: u32, name: &str) -> Lowered<ArrayView> {
        let ty = Type::Array(Box::new(elem.clone()), len);
        self.alloc(&ty, name)?.into_array(self.f.span, &self.f.name)
    }

    /// Copies a value into fresh variables, so later writes to its sources do not change it.
    fn materialize_copy(&mut self, repr: Repr) -> Lowered<Repr> {
        Ok(match repr {
            Repr::Scalar(value) => Repr::Scalar(self.materialize_scalar(value)),
            Repr::Group(items) => {
                Repr::Group(items.into_iter().map(|item| self.materialize_copy(item)).collect::<Lowered<_>>()?)
            }
            Repr::Array(view) => Repr::Array(self.materialize_array(&view)?),
        })
    }

    fn materialize_scalar(&mut self, value: Expr) -> Expr {
        let ty = self.expr_ty(&value);
        let var = self.f.new_var("tmp", VarTy::Scalar(ty));
        self.emit(Stmt::Assign { dst: var, value });
        Expr::Var(var)
    }

    fn materialize_array(&mut self, view: &ArrayView) -> Lowered<ArrayView> {
        let copy = self.alloc_array(&view.elem, view.len, "tmp")?;
        self.copy_array(&copy, view)?;
        Ok(copy)
    }

    pub fn expr_ty(&self, expr: &Expr) -> ScalarTy {
        crate::ir_types::expr_ty(&self.f, expr)
    }

    /// Flattens a value into call or return operands; array views that are not whole
    /// variables are copied into fresh ones.
    pub fn operands(&mut self, repr: Repr) -> Lowered<Vec<Operand>> {
        Ok(match repr {
            Repr::Scalar(value) => vec![Operand::Scalar(value)],
            Repr::Group(items) => {
                let mut operands = Vec::new();
                for item in items {
                    operands.extend(self.operands(item)?);
                }
                operands
            }
            Repr::Array(view) => {
                let strides = leaf_strides(&view.elem);
                let whole = view.leaves.iter().zip(&strides).all(|((var, base), stride)| {
                    base.as_const().and_then(Scalar::as_int) == Some(0)
                        && self.f.var_ty(*var).size_elems() == view.len * stride
                });
                let view = if whole { view } else { self.materialize_array(&view)? };
                view.leaves.into_iter().map(|(var, _)| Operand::Array(var)).collect()
            }
        })
    }

    pub fn block(&mut self, block: &Block<Type>) -> Lowered<()> {
        block.iter().try_for_each(|stmt| self.stmt(stmt))
    }

    fn lower_block(&mut self, block: &Block<Type>) -> Lowered<Vec<Stmt>> {
        let saved = std::mem::take(&mut self.out);
        let lowered = self.block(block);
        let stmts = std::mem::replace(&mut self.out, saved);
        lowered.map(|()| stmts)
    }

    /// The local called `name`, which the checker has declared.
    fn local(&self, name: &str, span: Span) -> Lowered<Repr> {
        match self.locals.get(name) {
            Some(repr) => Ok(repr.clone()),
            None => bail_internal!(span, "lowering `{}`: `{name}` is not a local", self.f.name),
        }
    }

    /// The innermost enclosing loop, which the checker has made sure exists.
    fn innermost_loop(&self, span: Span) -> Lowered<Label> {
        match self.loops.last() {
            Some(label) => Ok(*label),
            None => bail_internal!(span, "lowering `{}`: `break` or `continue` outside a loop", self.f.name),
        }
    }

    fn stmt(&mut self, stmt: &ast::Stmt<Type>) -> Lowered<()> {
        match &stmt.kind {
            StmtKind::Pass => {}
            // The checker rejects both (E0210, E0301); dropping them here would hide the bug.
            StmtKind::Expr(_) => bail_internal!(stmt.span, "lowering `{}`: an expression statement", self.f.name),
            StmtKind::While { .. } => bail_internal!(stmt.span, "lowering `{}`: a `while` loop", self.f.name),
            StmtKind::Assign { target, value } => {
                let value = self.expr(value)?;
                let place = self.place(target)?;
                self.assign(&place, value)?;
            }
            StmtKind::AnnAssign { target, value, .. } => {
                if let Some(value) = value {
                    let value = self.expr(value)?;
                    let place = self.local(&target.name, target.span)?;
                    self.assign(&place, value)?;
                }
            }
            StmtKind::AugAssign { target, op, value } => {
                let value = self.expr(value)?;
                let place = self.place(target)?;
                let (Repr::Scalar(current), Repr::Scalar(value)) = (&place, value) else {
                    bail_internal!(stmt.span, "lowering `{}`: augmented assignment to a non-scalar", self.f.name)
                };
                let updated = self.scalar_binary(*op, current.clone(), value, stmt.span)?;
                self.assign(&place, Repr::Scalar(updated))?;
            }
            StmtKind::If { branches, orelse } => {
                let mut orelse_ir = match orelse {
                    Some(body) => self.lower_block(body)?,
                    None => Vec::new(),
                };
                // Lower `elif`s from the last, nesting each in the previous one's `else`; a
                // condition's own statements (calls) run only when it is reached.
                for (i, (cond, body)) in branches.iter().enumerate().rev() {
                    let saved = std::mem::take(&mut self.out);
                    let lowered = self.scalar(cond).and_then(|cond| Ok((cond, self.lower_block(body)?)));
                    let stmts = std::mem::replace(&mut self.out, saved);
                    let (cond, then) = lowered?;
                    let mut stmts = stmts;
                    stmts.push(Stmt::If { cond, then, orelse: orelse_ir });
                    if i == 0 {
                        self.out.extend(stmts);
                        orelse_ir = Vec::new();
                    } else {
                        orelse_ir = stmts;
                    }
                }
            }
            StmtKind::For { var, iter, body } => self.for_loop(&var.name, iter, body, stmt.span)?,
            StmtKind::Break => {
                let label = self.innermost_loop(stmt.span)?;
                self.emit(Stmt::Break(label));
            }
            StmtKind::Continue => {
                let label = self.innermost_loop(stmt.span)?;
                self.emit(Stmt::Continue(label));
            }
            StmtKind::Return(value) => {
                let operands = match value {
                    Some(value) => {
                        let repr = self.expr(value)?;
                        self.operands(repr)?
                    }
                    None => Vec::new(),
                };
                self.emit(Stmt::Return(operands));
            }
        }
        Ok(())
    }

    /// Lowers the statements `lower` emits into a separate list (a loop or branch body),
    /// restoring the enclosing list even when lowering fails.
    fn nested(&mut self, lower: impl FnOnce(&mut Self) -> Lowered<()>) -> Lowered<Vec<Stmt>> {
        let saved = std::mem::take(&mut self.out);
        let lowered = lower(self);
        let stmts = std::mem::replace(&mut self.out, saved);
        lowered.map(|()| stmts)
    }

    fn for_loop(&mut self, var: &str, iter: &ast::Expr<Type>, body: &Block<Type>, span: Span) -> Lowered<()> {
        let target = self.local(var, span)?;
        let label = self.f.new_label();
        match (&iter.kind, &iter.ty) {
            (ExprKind::Call { func, .. }, _) if func.name == "range" => {
                let Some((start, stop, step)) = naas_lang::check::range_bounds(iter) else {
                    bail_internal!(iter.span, "lowering `{}`: `range` bounds are not constant", self.f.name)
                };
                let Some(ty) = scalar_ty(&iter.ty) else {
                    bail_internal!(iter.span, "lowering `{}`: `range` of type `{}`", self.f.name, iter.ty)
                };
                // A hidden counter drives the loop: the user's variable is assigned from it, so
                // nested loops reusing a name cannot disturb each other.
                let counter = self.f.new_var(format!("{var}.counter"), VarTy::Scalar(ty));
                self.loops.push(label);
                let body = self.nested(|this| {
                    this.assign(&target, Repr::Scalar(Expr::Var(counter)))?;
                    this.block(body)
                });
                self.loops.pop();
                self.emit(Stmt::Loop { label, counter, start, stop, step, body: body? });
            }
            (_, Type::Array(_, len)) => {
                // The iterable is a value: copy it, so the body's writes do not affect it.
                let iterable = self.expr(iter)?.into_array(iter.span, &self.f.name)?;
                let view = self.materialize_array(&iterable)?;
                let counter = self.f.new_var(format!("{var}.index"), VarTy::Scalar(ScalarTy::Int(IntTy::I64)));
                self.loops.push(label);
                let body = self.nested(|this| {
                    let element = this.element(&view, &Expr::Var(counter))?;
                    this.assign(&target, element)?;
                    this.block(body)
                });
                self.loops.pop();
                self.emit(Stmt::Loop { label, counter, start: 0, stop: i128::from(*len), step: 1, body: body? });
            }
            _ => bail_internal!(iter.span, "lowering `{}`: `for` over a value of type `{}`", self.f.name, iter.ty),
        }
        Ok(())
    }

    /// The place an assignment target denotes.
    fn place(&mut self, target: &ast::Expr<Type>) -> Lowered<Repr> {
        match &target.kind {
            ExprKind::Tuple(items) => {
                Ok(Repr::Group(items.iter().map(|item| self.place(item)).collect::<Lowered<_>>()?))
            }
            _ => self.expr(target),
        }
    }

    /// Lowers an expression that has a scalar type.
    pub fn scalar(&mut self, expr: &ast::Expr<Type>) -> Lowered<Expr> {
        match self.expr(expr)? {
            Repr::Scalar(value) => Ok(value),
            other => bail_internal!(
                expr.span,
                "lowering `{}`: a scalar was expected, found {} of type `{}`",
                self.f.name,
                other.shape(),
                expr.ty
            ),
        }
    }

    pub fn expr(&mut self, expr: &ast::Expr<Type>) -> Lowered<Repr> {
        let ty = &expr.ty;
        let span = expr.span;
        Ok(match &expr.kind {
            ExprKind::Int(value) => match ty {
                Type::Int(int) => Repr::Scalar(Expr::int(*int, *value)),
                other => bail_internal!(span, "lowering `{}`: integer literal of type `{other}`", self.f.name),
            },
            ExprKind::Float(value) => match ty {
                Type::Float(float) => Repr::Scalar(Expr::Const(Scalar::Float(*float, *value))),
                other => bail_internal!(span, "lowering `{}`: float literal of type `{other}`", self.f.name),
            },
            ExprKind::Bool(value) => Repr::Scalar(Expr::Const(Scalar::Bool(*value))),
            ExprKind::Const(value) => self.value(value, ty, span)?,
            ExprKind::Name(name) => self.local(name, span)?,
            ExprKind::Unary(op, arg) => {
                let arg = self.scalar(arg)?;
                Repr::Scalar(match op {
                    UnOp::Pos => arg,
                    UnOp::Neg => Expr::Unary { op: UnaryOp::Neg, arg: Box::new(arg) },
                    UnOp::Not => Expr::Unary { op: UnaryOp::Not, arg: Box::new(arg) },
                    UnOp::BitNot => Expr::Unary { op: UnaryOp::BitNot, arg: Box::new(arg) },
                })
            }
            ExprKind::Binary(BinOp::Mul, array, count) if matches!(ty, Type::Array(..)) => {
                self.repeat(array, count, ty)?
            }
            ExprKind::Binary(op, a, b) => {
                let (a, b) = (self.scalar(a)?, self.scalar(b)?);
                Repr::Scalar(self.scalar_binary(*op, a, b, span)?)
            }
            ExprKind::Compare(op, a, b) => {
                let operand_ty = a.ty.clone();
                let (a, b) = (self.expr(a)?, self.expr(b)?);
                Repr::Scalar(self.compare(*op, a, b, &operand_ty, span)?)
            }
            ExprKind::Logic(op, a, b) => {
                let a = self.scalar(a)?;
                let saved = std::mem::take(&mut self.out);
                let b = self.scalar(b);
                let b_stmts = std::mem::replace(&mut self.out, saved);
                let b = b?;
                if b_stmts.is_empty() {
                    return Ok(Repr::Scalar(match op {
                        LogicOp::And => Expr::And(Box::new(a), Box::new(b)),
                        LogicOp::Or => Expr::Or(Box::new(a), Box::new(b)),
                    }));
                }
                // The right operand needs statements (a call): run them only when reached.
                let result = self.f.new_var("logic", VarTy::Scalar(ScalarTy::Bool));
                self.emit(Stmt::Assign { dst: result, value: a });
                let mut then = b_stmts;
                then.push(Stmt::Assign { dst: result, value: b });
                let cond = match op {
                    LogicOp::And => Expr::Var(result),
                    LogicOp::Or => Expr::Unary { op: UnaryOp::Not, arg: Box::new(Expr::Var(result)) },
                };
                self.emit(Stmt::If { cond, then, orelse: Vec::new() });
                Repr::Scalar(Expr::Var(result))
            }
            ExprKind::IfElse { cond, then, orelse } => {
                let cond = self.scalar(cond)?;
                let saved = std::mem::take(&mut self.out);
                let then_repr = self.expr(then);
                let then_stmts = std::mem::take(&mut self.out);
                let orelse_repr = then_repr.and_then(|then_repr| Ok((then_repr, self.expr(orelse)?)));
                let orelse_stmts = std::mem::replace(&mut self.out, saved);
                let (then_repr, orelse_repr) = orelse_repr?;
                if let (Repr::Scalar(a), Repr::Scalar(b), true, true) =
                    (&then_repr, &orelse_repr, then_stmts.is_empty(), orelse_stmts.is_empty())
                {
                    return Ok(Repr::Scalar(Expr::IfElse {
                        cond: Box::new(cond),
                        then: Box::new(a.clone()),
                        orelse: Box::new(b.clone()),
                    }));
                }
                let result = self.alloc(ty, "ifelse")?;
                let then_ir = self.nested(|this| {
                    this.out = then_stmts;
                    this.assign(&result, then_repr)
                })?;
                let orelse_ir = self.nested(|this| {
                    this.out = orelse_stmts;
                    this.assign(&result, orelse_repr)
                })?;
                self.emit(Stmt::If { cond, then: then_ir, orelse: orelse_ir });
                result
            }
            ExprKind::Call { func, args } => self.call(&func.name, args, ty, span)?,
            ExprKind::Index(base, index) => match &base.ty {
                Type::Tuple(_) => {
                    let position = match index.kind {
                        ExprKind::Int(value) | ExprKind::Const(Value::Int(_, value)) => value,
                        _ => bail_internal!(index.span, "lowering `{}`: a tuple index is not a constant", self.f.name),
                    };
                    match self.expr(base)? {
                        Repr::Group(mut items) if (0..items.len() as i128).contains(&position) => {
                            items.swap_remove(position as usize)
                        }
                        other => bail_internal!(
                            span,
                            "lowering `{}`: tuple index {position} into {}",
                            self.f.name,
                            other.shape()
                        ),
                    }
                }
                _ => {
                    let base = self.expr(base)?.into_array(base.span, &self.f.name)?;
                    let index_span = index.span;
                    let index = self.scalar(index)?;
                    let checked = Expr::CheckIndex { index: Box::new(index), len: base.len, span: index_span };
                    self.element(&base, &checked)?
                }
            },
            ExprKind::Field(base, field) => {
                let position = match &base.ty {
                    Type::Record(record) => record.field(&field.name).map(|(i, _)| i),
                    _ => None,
                };
                let Some(position) = position else {
                    bail_internal!(span, "lowering `{}`: no field `{}` in `{}`", self.f.name, field.name, base.ty)
                };
                match self.expr(base)? {
                    Repr::Group(mut items) if position < items.len() => items.swap_remove(position),
                    other => {
                        bail_internal!(span, "lowering `{}`: field `{}` of {}", self.f.name, field.name, other.shape())
                    }
                }
            }
            ExprKind::Tuple(items) => Repr::Group(items.iter().map(|item| self.expr(item)).collect::<Lowered<_>>()?),
            ExprKind::Array(items) => {
                let view = self.alloc(ty, "array")?.into_array(span, &self.f.name)?;
                for (k, item) in items.iter().enumerate() {
                    let value = self.expr(item)?;
                    let place = self.element(&view, &Expr::i64(k as i128))?;
                    self.assign(&place, value)?;
                }
                Repr::Array(view)
            }
        })
    }

    /// A folded constant as a `Repr`; arrays are built in fresh variables.
    fn value(&mut self, value: &Value, ty: &Type, span: Span) -> Lowered<Repr> {
        Ok(match (value, ty) {
            (Value::Bool(b), _) => Repr::Scalar(Expr::Const(Scalar::Bool(*b))),
            (Value::Int(int, v), _) => Repr::Scalar(Expr::int(*int, *v)),
            (Value::Float(float, v), _) => Repr::Scalar(Expr::Const(Scalar::Float(*float, *v))),
            (Value::Tuple(items), Type::Tuple(types)) if items.len() == types.len() => Repr::Group(
                items.iter().zip(types).map(|(item, ty)| self.value(item, ty, span)).collect::<Lowered<_>>()?,
            ),
            (Value::Record(_, items), Type::Record(record)) if items.len() == record.fields.len() => Repr::Group(
                items
                    .iter()
                    .zip(&record.fields)
                    .map(|(item, (_, ty))| self.value(item, ty, span))
                    .collect::<Lowered<_>>()?,
            ),
            (Value::Array(items), Type::Array(elem, _)) => {
                let view = self.alloc(ty, "const")?.into_array(span, &self.f.name)?;
                let uniform = items.windows(2).all(|pair| pair[0] == pair[1]);
                match (uniform, scalar_ty(elem), items.first()) {
                    (true, Some(_), Some(first)) => {
                        let value = self.value(first, elem, span)?.into_scalar(span, &self.f.name)?;
                        self.emit(Stmt::FillArray { dst: view.leaves[0].0, value });
                    }
                    _ => {
                        for (k, item) in items.iter().enumerate() {
                            let value = self.value(item, elem, span)?;
                            let place = self.element(&view, &Expr::i64(k as i128))?;
                            self.assign(&place, value)?;
                        }
                    }
                }
                Repr::Array(view)
            }
            (value, ty) => {
                bail_internal!(span, "lowering `{}`: the constant {value:?} does not have type `{ty}`", self.f.name)
            }
        })
    }

    /// `[v] * n` and, generally, an array repeated `n` times.
    fn repeat(&mut self, array: &ast::Expr<Type>, count: &ast::Expr<Type>, ty: &Type) -> Lowered<Repr> {
        let times = match count.kind {
            ExprKind::Int(value) | ExprKind::Const(Value::Int(_, value)) => value,
            _ => bail_internal!(count.span, "lowering `{}`: an array repeat count is not a constant", self.f.name),
        };
        let dst = self.alloc(ty, "repeat")?.into_array(array.span, &self.f.name)?;
        // `[v] * N` with a scalar `v`: one fill, no temporary array.
        if let ExprKind::Array(items) = &array.kind {
            if let [item] = items.as_slice() {
                if scalar_ty(&item.ty).is_some() {
                    let value = self.scalar(item)?;
                    self.emit(Stmt::FillArray { dst: dst.leaves[0].0, value });
                    return Ok(Repr::Array(dst));
                }
            }
        }
        let src = self.expr(array)?.into_array(array.span, &self.f.name)?;
        if src.len == 1 {
            if let Repr::Scalar(value) = self.element(&src, &Expr::i64(0))? {
                // A single scalar element: one fill (the common `[v] * N`).
                let value = if reads_any(&Repr::Scalar(value.clone()), &HashSet::from([dst.leaves[0].0])) {
                    self.materialize_scalar(value)
                } else {
                    value
                };
                self.emit(Stmt::FillArray { dst: dst.leaves[0].0, value });
                return Ok(Repr::Array(dst));
            }
        }
        let src = self.materialize_array(&src)?;
        for k in 0..times {
            for e in 0..i128::from(src.len) {
                let place = self.element(&dst, &Expr::i64(k * i128::from(src.len) + e))?;
                let value = self.element(&src, &Expr::i64(e))?;
                self.assign(&place, value)?;
            }
        }
        Ok(Repr::Array(dst))
    }

    fn scalar_binary(&self, op: BinOp, a: Expr, b: Expr, span: Span) -> Lowered<Expr> {
        let op = match op {
            BinOp::Add => BinaryOp::Add,
            BinOp::Sub => BinaryOp::Sub,
            BinOp::Mul => BinaryOp::Mul,
            BinOp::Div => BinaryOp::Div,
            BinOp::FloorDiv => BinaryOp::FloorDiv,
            BinOp::Mod => BinaryOp::Mod,
            BinOp::Shl => BinaryOp::Shl,
            BinOp::Shr => BinaryOp::Shr,
            BinOp::BitAnd => BinaryOp::BitAnd,
            BinOp::BitOr => BinaryOp::BitOr,
            BinOp::BitXor => BinaryOp::BitXor,
            // The checker rejects `**` (E0214).
            BinOp::Pow => bail_internal!(span, "lowering `{}`: `**` reached lowering", self.f.name),
        };
        Ok(Expr::binary(op, a, b, span))
    }

    /// Comparison of two values of type `ty`; `==` and `!=` compare composites element-wise.
    fn compare(&mut self, op: ast::CmpOp, a: Repr, b: Repr, ty: &Type, span: Span) -> Lowered<Expr> {
        let ir_op = match op {
            ast::CmpOp::Eq => CmpOp::Eq,
            ast::CmpOp::Ne => CmpOp::Ne,
            ast::CmpOp::Lt => CmpOp::Lt,
            ast::CmpOp::Le => CmpOp::Le,
            ast::CmpOp::Gt => CmpOp::Gt,
            ast::CmpOp::Ge => CmpOp::Ge,
        };
        if let (Repr::Scalar(a), Repr::Scalar(b)) = (&a, &b) {
            return Ok(Expr::compare(ir_op, a.clone(), b.clone()));
        }
        if !matches!(op, ast::CmpOp::Eq | ast::CmpOp::Ne) {
            bail_internal!(span, "lowering `{}`: ordering comparison of composites of type `{ty}`", self.f.name);
        }
        let equal = self.equal(a, b, ty, span)?;
        Ok(if op == ast::CmpOp::Ne { Expr::Unary { op: UnaryOp::Not, arg: Box::new(equal) } } else { equal })
    }

    fn equal(&mut self, a: Repr, b: Repr, ty: &Type, span: Span) -> Lowered<Expr> {
        match (a, b, ty) {
            (Repr::Scalar(a), Repr::Scalar(b), _) => Ok(Expr::compare(CmpOp::Eq, a, b)),
            (Repr::Group(xs), Repr::Group(ys), Type::Tuple(_) | Type::Record(_)) => {
                let types: Vec<Type> = match ty {
                    Type::Tuple(items) => items.clone(),
                    Type::Record(record) => record.fields.iter().map(|(_, ty)| ty.clone()).collect(),
                    _ => Vec::new(),
                };
                if xs.len() != types.len() || ys.len() != types.len() {
                    bail_internal!(span, "lowering `{}`: comparison of groups that do not match `{ty}`", self.f.name);
                }
                let mut conjunction: Option<Expr> = None;
                for ((x, y), ty) in xs.into_iter().zip(ys).zip(types) {
                    let same = self.equal(x, y, &ty, span)?;
                    conjunction = Some(match conjunction {
                        Some(acc) => Expr::And(Box::new(acc), Box::new(same)),
                        None => same,
                    });
                }
                Ok(conjunction.unwrap_or(Expr::Const(Scalar::Bool(true))))
            }
            (Repr::Array(x), Repr::Array(y), Type::Array(elem, len)) => {
                let result = self.f.new_var("equal", VarTy::Scalar(ScalarTy::Bool));
                self.emit(Stmt::Assign { dst: result, value: Expr::Const(Scalar::Bool(true)) });
                let counter = self.f.new_var("equal.k", VarTy::Scalar(ScalarTy::Int(IntTy::I64)));
                let label = self.f.new_label();
                let body = self.nested(|this| {
                    let index = Expr::Var(counter);
                    let (xe, ye) = (this.element(&x, &index)?, this.element(&y, &index)?);
                    let same = this.equal(xe, ye, elem, span)?;
                    this.emit(Stmt::If {
                        cond: Expr::Unary { op: UnaryOp::Not, arg: Box::new(same) },
                        then: vec![
                            Stmt::Assign { dst: result, value: Expr::Const(Scalar::Bool(false)) },
                            Stmt::Break(label),
                        ],
                        orelse: Vec::new(),
                    });
                    Ok(())
                })?;
                self.emit(Stmt::Loop { label, counter, start: 0, stop: i128::from(*len), step: 1, body });
                Ok(Expr::Var(result))
            }
            (a, b, ty) => bail_internal!(
                span,
                "lowering `{}`: comparison of {} with {} at type `{ty}`",
                self.f.name,
                a.shape(),
                b.shape()
            ),
        }
    }

    /// The one scalar argument of a built-in call.
    fn only_scalar_arg(&mut self, name: &str, args: &[Arg<Type>], span: Span) -> Lowered<Expr> {
        match args {
            [arg] => self.scalar(arg.value()),
            _ => bail_internal!(span, "lowering `{}`: `{name}` with {} arguments", self.f.name, args.len()),
        }
    }

    fn call(&mut self, name: &str, args: &[Arg<Type>], ty: &Type, span: Span) -> Lowered<Repr> {
        if is_aggregate_call(name, args) {
            if let Some(repr) = self.aggregates.get(&aggregate_key(name, args)) {
                return Ok(repr.clone());
            }
        }
        if let Some(target) = naas_lang::check::builtins::conversion_target(name) {
            let arg = self.only_scalar_arg(name, args, span)?;
            let Some(to) = scalar_ty(&target) else {
                bail_internal!(span, "lowering `{}`: conversion `{name}` to `{target}`", self.f.name)
            };
            return Ok(Repr::Scalar(Expr::cast(to, arg)));
        }
        match name {
            "min" | "max" => {
                let op = if name == "min" { BinaryOp::Min } else { BinaryOp::Max };
                let values: Vec<Expr> = args.iter().map(|arg| self.scalar(arg.value())).collect::<Lowered<_>>()?;
                let Some(folded) = values.into_iter().reduce(|acc, next| Expr::binary(op, acc, next, span)) else {
                    bail_internal!(span, "lowering `{}`: `{name}` without arguments", self.f.name)
                };
                return Ok(Repr::Scalar(folded));
            }
            "abs" => {
                let arg = self.only_scalar_arg(name, args, span)?;
                return Ok(Repr::Scalar(Expr::Unary { op: UnaryOp::Abs, arg: Box::new(arg) }));
            }
            _ => {}
        }
        if let Type::Record(record) = ty {
            if record.name == name {
                return Ok(Repr::Group(args.iter().map(|arg| self.expr(arg.value())).collect::<Lowered<_>>()?));
            }
        }
        let Some(func) = self.ids.get(name).copied() else {
            bail_internal!(span, "lowering `{}`: call of the unknown function `{name}`", self.f.name)
        };
        let mut operands = Vec::new();
        for arg in args {
            let repr = self.expr(arg.value())?;
            operands.extend(self.operands(repr)?);
        }
        let result = self.alloc(ty, &format!("{name}.result"))?;
        let results = repr_vars_in_order(&result);
        self.emit(Stmt::Call { func, args: operands, results });
        Ok(result)
    }
}

impl Repr {
    /// What kind of value this is, for internal error messages.
    fn shape(&self) -> &'static str {
        match self {
            Repr::Scalar(_) => "a scalar",
            Repr::Group(_) => "a tuple or record",
            Repr::Array(_) => "an array",
        }
    }

    /// The array view this value must be (the checker typed it as an array).
    fn into_array(self, span: Span, function: &str) -> Lowered<ArrayView> {
        match self {
            Repr::Array(view) => Ok(view),
            other => bail_internal!(span, "lowering `{function}`: an array was expected, found {}", other.shape()),
        }
    }

    /// The scalar this value must be (the checker typed it as a scalar).
    fn into_scalar(self, span: Span, function: &str) -> Lowered<Expr> {
        match self {
            Repr::Scalar(expr) => Ok(expr),
            other => bail_internal!(span, "lowering `{function}`: a scalar was expected, found {}", other.shape()),
        }
    }
}

/// The key identifying an aggregate call (`sum(x * 2)`) regardless of where it is written.
pub fn aggregate_key(name: &str, args: &[Arg<Type>]) -> String {
    let args: Vec<String> = args.iter().map(|arg| naas_lang::printer::print_expr(arg.value())).collect();
    format!("{name}({})", args.join(", "))
}

/// Builds the `Repr` of a value of type `ty` from leaf (array variable, offset) pairs; `None`
/// when there are fewer leaves than the type has.
fn build(ty: &Type, leaves: &mut impl Iterator<Item = (Var, Expr)>) -> Option<Repr> {
    Some(match ty {
        Type::Tuple(items) => Repr::Group(items.iter().map(|item| build(item, leaves)).collect::<Option<_>>()?),
        Type::Record(record) => {
            Repr::Group(record.fields.iter().map(|(_, item)| build(item, leaves)).collect::<Option<_>>()?)
        }
        Type::Array(elem, len) => {
            let count = leaves_count(elem);
            let leaves: Vec<(Var, Expr)> = leaves.take(count).collect();
            if leaves.len() < count {
                return None;
            }
            Repr::Array(ArrayView { elem: (**elem).clone(), len: *len, leaves })
        }
        _ => {
            let (var, offset) = leaves.next()?;
            Repr::Scalar(Expr::load(var, offset))
        }
    })
}

fn leaves_count(ty: &Type) -> usize {
    leaves(ty, "").len()
}

fn add_i64(a: Expr, b: Expr) -> Expr {
    match (a.as_const().and_then(Scalar::as_int), b.as_const().and_then(Scalar::as_int)) {
        (Some(0), _) => b,
        (_, Some(0)) => a,
        (Some(x), Some(y)) => Expr::i64(x + y),
        _ => Expr::binary(BinaryOp::Add, a, b, Span::default()),
    }
}

fn mul_i64(a: Expr, factor: i128) -> Expr {
    match (a.as_const().and_then(Scalar::as_int), factor) {
        (_, 1) => a,
        (Some(x), f) => Expr::i64(x * f),
        (None, f) => Expr::binary(BinaryOp::Mul, a, Expr::i64(f), Span::default()),
    }
}

/// The variables a place writes to.
fn place_vars(repr: &Repr) -> HashSet<Var> {
    let mut out = HashSet::new();
    fn walk(repr: &Repr, out: &mut HashSet<Var>) {
        match repr {
            Repr::Scalar(Expr::Var(var)) | Repr::Scalar(Expr::Load { array: var, .. }) => {
                out.insert(*var);
            }
            Repr::Scalar(_) => {}
            Repr::Group(items) => items.iter().for_each(|item| walk(item, out)),
            Repr::Array(view) => out.extend(view.leaves.iter().map(|(var, _)| *var)),
        }
    }
    walk(repr, &mut out);
    out
}

/// True when evaluating `repr` reads any of `vars`.
fn reads_any(repr: &Repr, vars: &HashSet<Var>) -> bool {
    match repr {
        Repr::Scalar(expr) => crate::ir_types::expr_reads(expr).iter().any(|var| vars.contains(var)),
        Repr::Group(items) => items.iter().any(|item| reads_any(item, vars)),
        Repr::Array(view) => view.leaves.iter().any(|(var, offset)| {
            vars.contains(var) || crate::ir_types::expr_reads(offset).iter().any(|v| vars.contains(v))
        }),
    }
}

#[cfg(test)]
mod tests {
    //! Every broken-invariant path of lowering, provoked by building the ill-typed AST the
    //! checker never produces: each must come back as an internal error with the span of the
    //! construct, never as a value.

    use naas_lang::ast::{CmpOp as AstCmpOp, Ident};
    use naas_lang::types::FloatTy;

    use super::*;

    const I64: Type = Type::Int(IntTy::I64);

    fn at(kind: ExprKind<Type>, ty: Type, lo: usize) -> ast::Expr<Type> {
        ast::Expr { kind, span: Span::new(lo, lo + 1), ty }
    }

    fn int(value: i128) -> ast::Expr<Type> {
        at(ExprKind::Int(value), I64, 1)
    }

    fn boxed(expr: ast::Expr<Type>) -> Box<ast::Expr<Type>> {
        Box::new(expr)
    }

    /// Lowers `expr` in a function with the locals `xs: array[i64, 3]` and `t: (i64, i64)`.
    fn lower_expr(expr: &ast::Expr<Type>) -> Lowered<Repr> {
        let ids = HashMap::new();
        let mut lower = FnLower::new("f", Span::new(0, 100), &ids);
        let xs = lower.alloc(&Type::Array(Box::new(I64), 3), "xs")?;
        let t = lower.alloc(&Type::Tuple(vec![I64, I64]), "t")?;
        lower.locals.insert("xs".into(), xs);
        lower.locals.insert("t".into(), t);
        lower.expr(expr)
    }

    fn assert_internal(expr: ast::Expr<Type>, span: Span, needle: &str) {
        match lower_expr(&expr) {
            Err(error) => {
                assert_eq!(error.span, Some(span), "{error}");
                assert!(error.message.contains(needle), "`{}` does not mention `{needle}`", error.message);
                assert!(error.to_string().starts_with("internal compiler error: "));
            }
            Ok(repr) => panic!("lowering {expr:?} gave {repr:?} instead of an internal error"),
        }
    }

    #[test]
    fn unknown_names_and_calls_are_internal_errors() {
        assert_internal(at(ExprKind::Name("nope".into()), I64, 7), Span::new(7, 8), "`nope` is not a local");
        let call = ExprKind::Call { func: Ident { name: "g".into(), span: Span::new(2, 3) }, args: Vec::new() };
        assert_internal(at(call, I64, 4), Span::new(4, 5), "unknown function `g`");
    }

    #[test]
    fn non_scalar_operands_are_internal_errors() {
        let xs = at(ExprKind::Name("xs".into()), Type::Array(Box::new(I64), 3), 9);
        let sum = ExprKind::Binary(BinOp::Add, boxed(xs.clone()), boxed(int(1)));
        assert_internal(at(sum, I64, 20), Span::new(9, 10), "a scalar was expected");
        let negated = ExprKind::Unary(UnOp::Neg, boxed(xs));
        assert_internal(at(negated, I64, 20), Span::new(9, 10), "a scalar was expected");
    }

    #[test]
    fn literals_of_the_wrong_type_are_internal_errors() {
        assert_internal(at(ExprKind::Int(3), Type::Bool, 5), Span::new(5, 6), "integer literal of type `bool`");
        assert_internal(at(ExprKind::Float(0.5), I64, 5), Span::new(5, 6), "float literal of type `i64`");
        let constant = ExprKind::Const(Value::Tuple(vec![Value::Bool(true)]));
        assert_internal(at(constant, I64, 5), Span::new(5, 6), "does not have type `i64`");
    }

    #[test]
    fn power_is_an_internal_error() {
        let pow = ExprKind::Binary(BinOp::Pow, boxed(int(2)), boxed(int(3)));
        assert_internal(at(pow, I64, 11), Span::new(11, 12), "`**` reached lowering");
    }

    #[test]
    fn bad_indexes_and_fields_are_internal_errors() {
        let pair = Type::Tuple(vec![I64, I64]);
        let t = at(ExprKind::Name("t".into()), pair.clone(), 3);
        let not_constant = ExprKind::Index(boxed(t.clone()), boxed(at(ExprKind::Name("t".into()), I64, 6)));
        assert_internal(at(not_constant, I64, 3), Span::new(6, 7), "tuple index is not a constant");
        let out_of_range = ExprKind::Index(boxed(t.clone()), boxed(int(5)));
        assert_internal(at(out_of_range, I64, 3), Span::new(3, 4), "tuple index 5");
        let scalar_base = ExprKind::Index(boxed(int(4)), boxed(int(0)));
        assert_internal(at(scalar_base, I64, 8), Span::new(1, 2), "an array was expected");
        let field = ExprKind::Field(boxed(t), Ident { name: "x".into(), span: Span::new(5, 6) });
        assert_internal(at(field, I64, 12), Span::new(12, 13), "no field `x`");
    }

    #[test]
    fn ill_typed_comparisons_and_builtins_are_internal_errors() {
        let pair = Type::Tuple(vec![I64, I64]);
        let t = at(ExprKind::Name("t".into()), pair.clone(), 3);
        let less = ExprKind::Compare(AstCmpOp::Lt, boxed(t.clone()), boxed(t.clone()));
        assert_internal(at(less, Type::Bool, 14), Span::new(14, 15), "ordering comparison");
        let mixed = ExprKind::Compare(AstCmpOp::Eq, boxed(t), boxed(int(1)));
        assert_internal(at(mixed, Type::Bool, 14), Span::new(14, 15), "comparison of a tuple or record with a scalar");
        let abs = ExprKind::Call { func: Ident { name: "abs".into(), span: Span::new(0, 3) }, args: Vec::new() };
        assert_internal(at(abs, I64, 16), Span::new(16, 17), "`abs` with 0 arguments");
        let min = ExprKind::Call { func: Ident { name: "min".into(), span: Span::new(0, 3) }, args: Vec::new() };
        assert_internal(at(min, I64, 16), Span::new(16, 17), "`min` without arguments");
        let convert = ExprKind::Call {
            func: Ident { name: "f64".into(), span: Span::new(0, 3) },
            args: vec![Arg::Positional(int(1)), Arg::Positional(int(2))],
        };
        assert_internal(at(convert, Type::Float(FloatTy::F64), 16), Span::new(16, 17), "`f64` with 2 arguments");
    }

    #[test]
    fn unresolved_types_and_mismatched_stores_are_internal_errors() {
        let ids = HashMap::new();
        let mut lower = FnLower::new("f", Span::new(0, 100), &ids);
        let error = lower.alloc(&Type::Error, "x").err();
        assert!(error.is_some_and(|e| e.message.contains("unresolved type")));
        let Ok(scalar) = lower.alloc(&I64, "x") else { panic!("an i64 allocates") };
        let Ok(pair) = lower.alloc(&Type::Tuple(vec![I64, I64]), "p") else { panic!("a pair allocates") };
        let error = lower.assign(&scalar, pair.clone()).err();
        assert!(error.is_some_and(|e| e.message.contains("cannot store a tuple or record into a scalar")));
        let error = lower.assign(&pair, Repr::Group(vec![Repr::Scalar(Expr::i64(1))])).err();
        assert!(error.is_some_and(|e| e.message.contains("assignment of 1 components to 2")));
    }

    #[test]
    fn statements_outside_their_context_are_internal_errors() {
        let ids = HashMap::new();
        let mut lower = FnLower::new("f", Span::new(0, 100), &ids);
        let stray = ast::Stmt { kind: StmtKind::Break, span: Span::new(30, 35) };
        let error = lower.stmt(&stray).err();
        assert_eq!(error.map(|e| e.span), Some(Some(Span::new(30, 35))));
        let assign = ast::Stmt {
            kind: StmtKind::AugAssign { target: int(1), op: BinOp::Add, value: int(2) },
            span: Span::new(40, 45),
        };
        // `1 += 2` is no place: the scalar is not a variable, so the store fails.
        assert!(lower.stmt(&assign).is_err());
        let discarded = ast::Stmt { kind: StmtKind::Expr(int(3)), span: Span::new(50, 51) };
        assert!(lower.stmt(&discarded).is_err_and(|e| e.message.contains("an expression statement")));
        let unbounded = ast::Stmt {
            kind: StmtKind::While { cond: at(ExprKind::Bool(true), Type::Bool, 60), body: Vec::new() },
            span: Span::new(60, 70),
        };
        assert!(lower.stmt(&unbounded).is_err_and(|e| e.span == Some(Span::new(60, 70))));
    }

    #[test]
    fn loops_and_repeats_the_checker_would_reject_are_internal_errors() {
        let ids = HashMap::new();
        let mut lower = FnLower::new("f", Span::new(0, 100), &ids);
        let Ok(i) = lower.alloc(&I64, "i") else { panic!("an i64 allocates") };
        lower.locals.insert("i".into(), i);
        let var = Ident { name: "i".into(), span: Span::new(4, 5) };
        // `for i in 7:` iterates over neither a range nor an array.
        let over_scalar = ast::Stmt {
            kind: StmtKind::For { var: var.clone(), iter: int(7), body: Vec::new() },
            span: Span::new(0, 20),
        };
        let error = lower.stmt(&over_scalar).err();
        assert!(error.is_some_and(|e| e.span == Some(Span::new(1, 2)) && e.message.contains("`for` over a value")));
        // `range(n)` with a bound that is not a constant.
        let n = at(ExprKind::Name("i".into()), I64, 30);
        let range = ExprKind::Call {
            func: Ident { name: "range".into(), span: Span::new(20, 25) },
            args: vec![Arg::Positional(n.clone())],
        };
        let over_range = ast::Stmt {
            kind: StmtKind::For { var: var.clone(), iter: at(range, I64, 20), body: Vec::new() },
            span: Span::new(0, 40),
        };
        let error = lower.stmt(&over_range).err();
        assert!(error.is_some_and(|e| e.message.contains("`range` bounds are not constant")));
        // A `for` over a name that is no local.
        let ghost = Ident { name: "ghost".into(), span: Span::new(4, 9) };
        let stray =
            ast::Stmt { kind: StmtKind::For { var: ghost, iter: int(7), body: Vec::new() }, span: Span::new(50, 60) };
        let error = lower.stmt(&stray).err();
        assert!(
            error.is_some_and(|e| e.span == Some(Span::new(50, 60)) && e.message.contains("`ghost` is not a local"))
        );
        // `[0] * n` with a count that is not a constant.
        let array_ty = Type::Array(Box::new(I64), 4);
        let one = at(ExprKind::Array(vec![int(0)]), Type::Array(Box::new(I64), 1), 60);
        let repeat = ExprKind::Binary(BinOp::Mul, boxed(one), boxed(n));
        assert_internal(at(repeat, array_ty, 60), Span::new(30, 31), "repeat count is not a constant");
    }

    #[test]
    fn a_short_array_view_is_an_internal_error() {
        let ids = HashMap::new();
        let lower = FnLower::new("f", Span::new(0, 100), &ids);
        let view = ArrayView { elem: Type::Tuple(vec![I64, I64]), len: 2, leaves: Vec::new() };
        let error = lower.element(&view, &Expr::i64(0)).err();
        assert!(error.is_some_and(|e| e.message.contains("too few leaves")));
    }
}
