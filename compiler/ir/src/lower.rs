//! Lowering from the checked, typed AST to IR. Source values become [`Repr`]s: a scalar
//! expression, a group of components (tuples, records), or a view of array variables. A
//! `Repr` whose scalars are variables or array elements also serves as a *place* to store to.
//!
//! Lowering is literal: it keeps every check and copy the source implies and leaves
//! simplification to the passes.

use std::collections::{HashMap, HashSet};

use naas_lang::ast::{self, Arg, BinOp, Block, ExprKind, LogicOp, StmtKind, UnOp};
use naas_lang::check::{self, is_aggregate_call};
use naas_lang::span::Span;
use naas_lang::types::{IntTy, Type};
use naas_lang::value::Value;

use crate::ir::{
    self, BinaryOp, CmpOp, Expr, FuncId, Function, Label, Operand, Scalar, ScalarTy, Stmt, UnaryOp, Var, VarTy,
};
use crate::layout::{leaf_strides, leaves, scalar_ty, var_types};

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
    pub fn new(program: &check::Program) -> Lowerer {
        let ids = program
            .functions
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.clone(), FuncId(u32::try_from(i).unwrap_or(u32::MAX))))
            .collect();
        let mut lowerer = Lowerer { module: ir::Module::default(), ids };
        for function in &program.functions {
            let lowered = lowerer.lower_function(function, &function.name);
            lowerer.module.functions.push(lowered);
        }
        lowerer
    }

    /// Adds a function to the module and returns its id.
    pub fn add(&mut self, function: Function) -> FuncId {
        let id = FuncId(u32::try_from(self.module.functions.len()).unwrap_or(u32::MAX));
        self.module.functions.push(function);
        id
    }

    /// Lowers one checked function.
    pub fn lower_function(&self, function: &check::Function, name: &str) -> Function {
        let mut lower = FnLower::new(name, function.span, &self.ids);
        for (i, local) in function.locals.iter().enumerate() {
            let repr = lower.alloc(&local.ty, &local.name);
            if i < function.params {
                lower.f.params.extend(repr_vars_in_order(&repr));
            }
            lower.locals.insert(local.name.clone(), repr);
        }
        lower.f.results = var_types(&function.ret);
        lower.block(&function.body);
        lower.finish()
    }

    /// Lowers a function whose body is given as a closure over a fresh [`FnLower`]: used for
    /// the synthesised parts of built-in aggregates.
    pub fn synthesize(
        &self,
        name: &str,
        span: Span,
        params: &[(String, Type)],
        results: &Type,
        body: impl FnOnce(&mut FnLower<'_>, &[Repr]),
    ) -> Function {
        let mut lower = FnLower::new(name, span, &self.ids);
        let mut param_reprs = Vec::new();
        for (param, ty) in params {
            let repr = lower.alloc(ty, param);
            lower.f.params.extend(repr_vars_in_order(&repr));
            lower.locals.insert(param.clone(), repr.clone());
            param_reprs.push(repr);
        }
        lower.f.results = var_types(results);
        body(&mut lower, &param_reprs);
        lower.finish()
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
    pub fn alloc(&mut self, ty: &Type, name: &str) -> Repr {
        match ty {
            Type::Tuple(items) => Repr::Group(
                items.iter().enumerate().map(|(i, item)| self.alloc(item, &format!("{name}.{i}"))).collect(),
            ),
            Type::Record(record) => Repr::Group(
                record.fields.iter().map(|(field, item)| self.alloc(item, &format!("{name}.{field}"))).collect(),
            ),
            Type::Array(elem, len) => {
                let leaves = leaves(elem, name)
                    .into_iter()
                    .map(|leaf| (self.f.new_var(leaf.path, VarTy::Array(leaf.ty, leaf.count * len)), Expr::i64(0)))
                    .collect();
                Repr::Array(ArrayView { elem: (**elem).clone(), len: *len, leaves })
            }
            other => {
                let scalar = scalar_ty(other).unwrap_or(ScalarTy::Bool);
                Repr::Scalar(Expr::Var(self.f.new_var(name, VarTy::Scalar(scalar))))
            }
        }
    }

    /// Element `index` (an in-bounds `i64`) of an array view.
    pub fn element(&self, view: &ArrayView, index: &Expr) -> Repr {
        let strides = leaf_strides(&view.elem);
        let mut leaves = view.leaves.iter().zip(strides).map(|((var, base), stride)| {
            let scaled = mul_i64(index.clone(), i128::from(stride));
            (*var, add_i64(base.clone(), scaled))
        });
        build(&view.elem, &mut leaves)
    }

    /// Stores `src` into the place `dst`.
    pub fn assign(&mut self, dst: &Repr, src: Repr) {
        match (dst, src) {
            (Repr::Scalar(Expr::Var(var)), Repr::Scalar(value)) => self.emit(Stmt::Assign { dst: *var, value }),
            (Repr::Scalar(Expr::Load { array, offset }), Repr::Scalar(value)) => {
                self.emit(Stmt::Store { array: *array, offset: (**offset).clone(), value });
            }
            (Repr::Group(dsts), Repr::Group(srcs)) => {
                // Components are assigned one by one, so a source that reads the destination
                // (`t = (t[1], t[0])`) is copied to temporaries first.
                let written = place_vars(dst);
                let srcs = if srcs.iter().any(|src| reads_any(src, &written)) {
                    srcs.into_iter().map(|src| self.materialize_copy(src)).collect()
                } else {
                    srcs
                };
                for (dst, src) in dsts.iter().zip(srcs) {
                    self.assign(dst, src);
                }
            }
            (Repr::Array(dst), Repr::Array(src)) => self.copy_array(dst, &src),
            _ => {}
        }
    }

    fn copy_array(&mut self, dst: &ArrayView, src: &ArrayView) {
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
            return;
        }
        let counter = self.f.new_var("copy.k", VarTy::Scalar(ScalarTy::Int(IntTy::I64)));
        let label = self.f.new_label();
        let saved = std::mem::take(&mut self.out);
        let index = Expr::Var(counter);
        let (dst_elem, src_elem) = (self.element(dst, &index), self.element(src, &index));
        self.assign(&dst_elem, src_elem);
        let body = std::mem::replace(&mut self.out, saved);
        self.emit(Stmt::Loop { label, counter, start: 0, stop: i128::from(dst.len), step: 1, body });
    }

    /// Copies a value into fresh variables, so later writes to its sources do not change it.
    fn materialize_copy(&mut self, repr: Repr) -> Repr {
        match repr {
            Repr::Scalar(value) => {
                let ty = self.expr_ty(&value);
                let var = self.f.new_var("tmp", VarTy::Scalar(ty));
                self.emit(Stmt::Assign { dst: var, value });
                Repr::Scalar(Expr::Var(var))
            }
            Repr::Group(items) => Repr::Group(items.into_iter().map(|item| self.materialize_copy(item)).collect()),
            Repr::Array(view) => {
                let ty = Type::Array(Box::new(view.elem.clone()), view.len);
                let copy = self.alloc(&ty, "tmp");
                if let Repr::Array(dst) = &copy {
                    self.copy_array(dst, &view);
                }
                copy
            }
        }
    }

    pub fn expr_ty(&self, expr: &Expr) -> ScalarTy {
        crate::ir_types::expr_ty(&self.f, expr)
    }

    /// Flattens a value into call or return operands; array views that are not whole
    /// variables are copied into fresh ones.
    pub fn operands(&mut self, repr: Repr) -> Vec<Operand> {
        match repr {
            Repr::Scalar(value) => vec![Operand::Scalar(value)],
            Repr::Group(items) => items.into_iter().flat_map(|item| self.operands(item)).collect(),
            Repr::Array(view) => {
                let strides = leaf_strides(&view.elem);
                let whole = view.leaves.iter().zip(&strides).all(|((var, base), stride)| {
                    base.as_const().and_then(Scalar::as_int) == Some(0)
                        && self.f.var_ty(*var).size_elems() == view.len * stride
                });
                let view = if whole {
                    view
                } else {
                    match self.materialize_copy(Repr::Array(view)) {
                        Repr::Array(view) => view,
                        _ => return Vec::new(),
                    }
                };
                view.leaves.into_iter().map(|(var, _)| Operand::Array(var)).collect()
            }
        }
    }

    pub fn block(&mut self, block: &Block<Type>) {
        for stmt in block {
            self.stmt(stmt);
        }
    }

    fn lower_block(&mut self, block: &Block<Type>) -> Vec<Stmt> {
        let saved = std::mem::take(&mut self.out);
        self.block(block);
        std::mem::replace(&mut self.out, saved)
    }

    fn stmt(&mut self, stmt: &ast::Stmt<Type>) {
        match &stmt.kind {
            StmtKind::Expr(_) | StmtKind::Pass | StmtKind::While { .. } => {}
            StmtKind::Assign { target, value } => {
                let value = self.expr(value);
                let place = self.place(target);
                self.assign(&place, value);
            }
            StmtKind::AnnAssign { target, value, .. } => {
                if let Some(value) = value {
                    let value = self.expr(value);
                    if let Some(place) = self.locals.get(&target.name).cloned() {
                        self.assign(&place, value);
                    }
                }
            }
            StmtKind::AugAssign { target, op, value } => {
                let value = self.expr(value);
                let place = self.place(target);
                if let (Repr::Scalar(current), Repr::Scalar(value)) = (&place, value) {
                    let updated = self.scalar_binary(*op, current.clone(), value, stmt.span);
                    self.assign(&place, Repr::Scalar(updated));
                }
            }
            StmtKind::If { branches, orelse } => {
                let mut orelse_ir = orelse.as_ref().map(|body| self.lower_block(body)).unwrap_or_default();
                // Lower `elif`s from the last, nesting each in the previous one's `else`; a
                // condition's own statements (calls) run only when it is reached.
                for (i, (cond, body)) in branches.iter().enumerate().rev() {
                    let saved = std::mem::take(&mut self.out);
                    let cond = self.scalar(cond);
                    let then = self.lower_block(body);
                    self.emit(Stmt::If { cond, then, orelse: orelse_ir });
                    let stmts = std::mem::replace(&mut self.out, saved);
                    if i == 0 {
                        self.out.extend(stmts);
                        orelse_ir = Vec::new();
                    } else {
                        orelse_ir = stmts;
                    }
                }
            }
            StmtKind::For { var, iter, body } => self.for_loop(&var.name, iter, body),
            StmtKind::Break => {
                if let Some(label) = self.loops.last() {
                    self.emit(Stmt::Break(*label));
                }
            }
            StmtKind::Continue => {
                if let Some(label) = self.loops.last() {
                    self.emit(Stmt::Continue(*label));
                }
            }
            StmtKind::Return(value) => {
                let operands = match value {
                    Some(value) => {
                        let repr = self.expr(value);
                        self.operands(repr)
                    }
                    None => Vec::new(),
                };
                self.emit(Stmt::Return(operands));
            }
        }
    }

    fn for_loop(&mut self, var: &str, iter: &ast::Expr<Type>, body: &Block<Type>) {
        let Some(target) = self.locals.get(var).cloned() else { return };
        let label = self.f.new_label();
        match (&iter.kind, &iter.ty) {
            (ExprKind::Call { func, .. }, _) if func.name == "range" => {
                let Some((start, stop, step)) = naas_lang::check::range_bounds(iter) else { return };
                let ty = scalar_ty(&iter.ty).unwrap_or(ScalarTy::Int(IntTy::I64));
                // A hidden counter drives the loop: the user's variable is assigned from it, so
                // nested loops reusing a name cannot disturb each other.
                let counter = self.f.new_var(format!("{var}.counter"), VarTy::Scalar(ty));
                self.loops.push(label);
                let saved = std::mem::take(&mut self.out);
                self.assign(&target, Repr::Scalar(Expr::Var(counter)));
                self.block(body);
                let body = std::mem::replace(&mut self.out, saved);
                self.loops.pop();
                self.emit(Stmt::Loop { label, counter, start, stop, step, body });
            }
            (_, Type::Array(_, len)) => {
                // The iterable is a value: copy it, so the body's writes do not affect it.
                let iterable = self.expr(iter);
                let Repr::Array(view) = self.materialize_copy(iterable) else { return };
                let counter = self.f.new_var(format!("{var}.index"), VarTy::Scalar(ScalarTy::Int(IntTy::I64)));
                self.loops.push(label);
                let saved = std::mem::take(&mut self.out);
                let element = self.element(&view, &Expr::Var(counter));
                self.assign(&target, element);
                self.block(body);
                let body = std::mem::replace(&mut self.out, saved);
                self.loops.pop();
                self.emit(Stmt::Loop { label, counter, start: 0, stop: i128::from(*len), step: 1, body });
            }
            _ => {}
        }
    }

    /// The place an assignment target denotes.
    fn place(&mut self, target: &ast::Expr<Type>) -> Repr {
        match &target.kind {
            ExprKind::Tuple(items) => Repr::Group(items.iter().map(|item| self.place(item)).collect()),
            _ => self.expr(target),
        }
    }

    /// Lowers an expression that has a scalar type.
    pub fn scalar(&mut self, expr: &ast::Expr<Type>) -> Expr {
        match self.expr(expr) {
            Repr::Scalar(value) => value,
            _ => Expr::Const(Scalar::Bool(false)),
        }
    }

    pub fn expr(&mut self, expr: &ast::Expr<Type>) -> Repr {
        let ty = &expr.ty;
        match &expr.kind {
            ExprKind::Int(value) => match ty {
                Type::Int(int) => Repr::Scalar(Expr::int(*int, *value)),
                _ => Repr::Scalar(Expr::i64(*value)),
            },
            ExprKind::Float(value) => match ty {
                Type::Float(float) => Repr::Scalar(Expr::Const(Scalar::Float(*float, *value))),
                _ => Repr::Scalar(Expr::Const(Scalar::Float(naas_lang::types::FloatTy::F64, *value))),
            },
            ExprKind::Bool(value) => Repr::Scalar(Expr::Const(Scalar::Bool(*value))),
            ExprKind::Const(value) => self.value(value, ty),
            ExprKind::Name(name) => {
                self.locals.get(name).cloned().unwrap_or(Repr::Scalar(Expr::Const(Scalar::Bool(false))))
            }
            ExprKind::Unary(op, arg) => {
                let arg = self.scalar(arg);
                Repr::Scalar(match op {
                    UnOp::Pos => arg,
                    UnOp::Neg => Expr::Unary { op: UnaryOp::Neg, arg: Box::new(arg) },
                    UnOp::Not => Expr::Unary { op: UnaryOp::Not, arg: Box::new(arg) },
                    UnOp::BitNot => Expr::Unary { op: UnaryOp::BitNot, arg: Box::new(arg) },
                })
            }
            ExprKind::Binary(BinOp::Mul, array, count) if matches!(ty, Type::Array(..)) => {
                self.repeat(array, count, ty)
            }
            ExprKind::Binary(op, a, b) => {
                let (a, b) = (self.scalar(a), self.scalar(b));
                Repr::Scalar(self.scalar_binary(*op, a, b, expr.span))
            }
            ExprKind::Compare(op, a, b) => {
                let operand_ty = a.ty.clone();
                let (a, b) = (self.expr(a), self.expr(b));
                Repr::Scalar(self.compare(*op, a, b, &operand_ty))
            }
            ExprKind::Logic(op, a, b) => {
                let a = self.scalar(a);
                let saved = std::mem::take(&mut self.out);
                let b = self.scalar(b);
                let b_stmts = std::mem::replace(&mut self.out, saved);
                if b_stmts.is_empty() {
                    return Repr::Scalar(match op {
                        LogicOp::And => Expr::And(Box::new(a), Box::new(b)),
                        LogicOp::Or => Expr::Or(Box::new(a), Box::new(b)),
                    });
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
                let cond = self.scalar(cond);
                let saved = std::mem::take(&mut self.out);
                let then_repr = self.expr(then);
                let then_stmts = std::mem::take(&mut self.out);
                let orelse_repr = self.expr(orelse);
                let orelse_stmts = std::mem::replace(&mut self.out, saved);
                if let (Repr::Scalar(a), Repr::Scalar(b), true, true) =
                    (&then_repr, &orelse_repr, then_stmts.is_empty(), orelse_stmts.is_empty())
                {
                    return Repr::Scalar(Expr::IfElse {
                        cond: Box::new(cond),
                        then: Box::new(a.clone()),
                        orelse: Box::new(b.clone()),
                    });
                }
                let result = self.alloc(ty, "ifelse");
                let saved = std::mem::replace(&mut self.out, then_stmts);
                self.assign(&result, then_repr);
                let then_ir = std::mem::replace(&mut self.out, orelse_stmts);
                self.assign(&result, orelse_repr);
                let orelse_ir = std::mem::replace(&mut self.out, saved);
                self.emit(Stmt::If { cond, then: then_ir, orelse: orelse_ir });
                result
            }
            ExprKind::Call { func, args } => self.call(&func.name, args, ty, expr.span),
            ExprKind::Index(base, index) => match &base.ty {
                Type::Tuple(_) => {
                    let position = match index.kind {
                        ExprKind::Int(value) => value,
                        ExprKind::Const(Value::Int(_, value)) => value,
                        _ => 0,
                    };
                    match self.expr(base) {
                        Repr::Group(mut items) if (0..items.len() as i128).contains(&position) => {
                            items.swap_remove(position as usize)
                        }
                        other => other,
                    }
                }
                _ => {
                    let base = self.expr(base);
                    let index_span = index.span;
                    let index = self.scalar(index);
                    match base {
                        Repr::Array(view) => {
                            let checked = Expr::CheckIndex { index: Box::new(index), len: view.len, span: index_span };
                            self.element(&view, &checked)
                        }
                        other => other,
                    }
                }
            },
            ExprKind::Field(base, field) => {
                let position = match &base.ty {
                    Type::Record(record) => record.field(&field.name).map_or(0, |(i, _)| i),
                    _ => 0,
                };
                match self.expr(base) {
                    Repr::Group(mut items) if position < items.len() => items.swap_remove(position),
                    other => other,
                }
            }
            ExprKind::Tuple(items) => Repr::Group(items.iter().map(|item| self.expr(item)).collect()),
            ExprKind::Array(items) => {
                let result = self.alloc(ty, "array");
                if let Repr::Array(view) = &result {
                    for (k, item) in items.iter().enumerate() {
                        let value = self.expr(item);
                        let place = self.element(view, &Expr::i64(k as i128));
                        self.assign(&place, value);
                    }
                }
                result
            }
        }
    }

    /// A folded constant as a `Repr`; arrays are built in fresh variables.
    fn value(&mut self, value: &Value, ty: &Type) -> Repr {
        match (value, ty) {
            (Value::Bool(b), _) => Repr::Scalar(Expr::Const(Scalar::Bool(*b))),
            (Value::Int(int, v), _) => Repr::Scalar(Expr::int(*int, *v)),
            (Value::Float(float, v), _) => Repr::Scalar(Expr::Const(Scalar::Float(*float, *v))),
            (Value::Tuple(items), Type::Tuple(types)) => {
                Repr::Group(items.iter().zip(types).map(|(item, ty)| self.value(item, ty)).collect())
            }
            (Value::Record(_, items), Type::Record(record)) => {
                Repr::Group(items.iter().zip(&record.fields).map(|(item, (_, ty))| self.value(item, ty)).collect())
            }
            (Value::Array(items), Type::Array(elem, _)) => {
                let result = self.alloc(ty, "const");
                if let Repr::Array(view) = &result {
                    let uniform = items.windows(2).all(|pair| pair[0] == pair[1]);
                    match (uniform, scalar_ty(elem), items.first()) {
                        (true, Some(_), Some(first)) => {
                            if let Repr::Scalar(value) = self.value(first, elem) {
                                self.emit(Stmt::FillArray { dst: view.leaves[0].0, value });
                            }
                        }
                        _ => {
                            for (k, item) in items.iter().enumerate() {
                                let value = self.value(item, elem);
                                let place = self.element(view, &Expr::i64(k as i128));
                                self.assign(&place, value);
                            }
                        }
                    }
                }
                result
            }
            _ => Repr::Scalar(Expr::Const(Scalar::Bool(false))),
        }
    }

    /// `[v] * n` and, generally, an array repeated `n` times.
    fn repeat(&mut self, array: &ast::Expr<Type>, count: &ast::Expr<Type>, ty: &Type) -> Repr {
        let times = match count.kind {
            ExprKind::Int(value) => value,
            _ => 1,
        };
        let result = self.alloc(ty, "repeat");
        // `[v] * N` with a scalar `v`: one fill, no temporary array.
        if let (ExprKind::Array(items), Repr::Array(dst)) = (&array.kind, &result) {
            if let [item] = items.as_slice() {
                if scalar_ty(&item.ty).is_some() {
                    let value = self.scalar(item);
                    self.emit(Stmt::FillArray { dst: dst.leaves[0].0, value });
                    return result;
                }
            }
        }
        let source = self.expr(array);
        let (Repr::Array(src), Repr::Array(dst)) = (source, &result) else { return result };
        if src.len == 1 {
            if let Repr::Scalar(value) = self.element(&src, &Expr::i64(0)) {
                // A single scalar element: one fill (the common `[v] * N`).
                let value = if reads_any(&Repr::Scalar(value.clone()), &HashSet::from([dst.leaves[0].0])) {
                    match self.materialize_copy(Repr::Scalar(value)) {
                        Repr::Scalar(value) => value,
                        _ => return result,
                    }
                } else {
                    value
                };
                self.emit(Stmt::FillArray { dst: dst.leaves[0].0, value });
                return result;
            }
        }
        let src = match self.materialize_copy(Repr::Array(src)) {
            Repr::Array(view) => view,
            _ => return result,
        };
        for k in 0..times {
            for e in 0..i128::from(src.len) {
                let place = self.element(dst, &Expr::i64(k * i128::from(src.len) + e));
                let value = self.element(&src, &Expr::i64(e));
                self.assign(&place, value);
            }
        }
        result
    }

    fn scalar_binary(&self, op: BinOp, a: Expr, b: Expr, span: Span) -> Expr {
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
            BinOp::Pow => unreachable!("the checker rejects `**` (E0214)"),
        };
        Expr::binary(op, a, b, span)
    }

    /// Comparison of two values of type `ty`; `==` and `!=` compare composites element-wise.
    fn compare(&mut self, op: ast::CmpOp, a: Repr, b: Repr, ty: &Type) -> Expr {
        let ir_op = match op {
            ast::CmpOp::Eq => CmpOp::Eq,
            ast::CmpOp::Ne => CmpOp::Ne,
            ast::CmpOp::Lt => CmpOp::Lt,
            ast::CmpOp::Le => CmpOp::Le,
            ast::CmpOp::Gt => CmpOp::Gt,
            ast::CmpOp::Ge => CmpOp::Ge,
        };
        if let (Repr::Scalar(a), Repr::Scalar(b)) = (&a, &b) {
            return Expr::compare(ir_op, a.clone(), b.clone());
        }
        let equal = self.equal(a, b, ty);
        if op == ast::CmpOp::Ne {
            Expr::Unary { op: UnaryOp::Not, arg: Box::new(equal) }
        } else {
            equal
        }
    }

    fn equal(&mut self, a: Repr, b: Repr, ty: &Type) -> Expr {
        match (a, b, ty) {
            (Repr::Scalar(a), Repr::Scalar(b), _) => Expr::compare(CmpOp::Eq, a, b),
            (Repr::Group(xs), Repr::Group(ys), _) => {
                let types: Vec<Type> = match ty {
                    Type::Tuple(items) => items.clone(),
                    Type::Record(record) => record.fields.iter().map(|(_, ty)| ty.clone()).collect(),
                    _ => Vec::new(),
                };
                xs.into_iter()
                    .zip(ys)
                    .zip(types)
                    .map(|((x, y), ty)| self.equal(x, y, &ty))
                    .reduce(|acc, next| Expr::And(Box::new(acc), Box::new(next)))
                    .unwrap_or(Expr::Const(Scalar::Bool(true)))
            }
            (Repr::Array(x), Repr::Array(y), Type::Array(elem, len)) => {
                let result = self.f.new_var("equal", VarTy::Scalar(ScalarTy::Bool));
                self.emit(Stmt::Assign { dst: result, value: Expr::Const(Scalar::Bool(true)) });
                let counter = self.f.new_var("equal.k", VarTy::Scalar(ScalarTy::Int(IntTy::I64)));
                let label = self.f.new_label();
                let saved = std::mem::take(&mut self.out);
                let index = Expr::Var(counter);
                let (xe, ye) = (self.element(&x, &index), self.element(&y, &index));
                let same = self.equal(xe, ye, elem);
                self.emit(Stmt::If {
                    cond: Expr::Unary { op: UnaryOp::Not, arg: Box::new(same) },
                    then: vec![
                        Stmt::Assign { dst: result, value: Expr::Const(Scalar::Bool(false)) },
                        Stmt::Break(label),
                    ],
                    orelse: Vec::new(),
                });
                let body = std::mem::replace(&mut self.out, saved);
                self.emit(Stmt::Loop { label, counter, start: 0, stop: i128::from(*len), step: 1, body });
                Expr::Var(result)
            }
            _ => Expr::Const(Scalar::Bool(false)),
        }
    }

    fn call(&mut self, name: &str, args: &[Arg<Type>], ty: &Type, span: Span) -> Repr {
        if is_aggregate_call(name, args) {
            if let Some(repr) = self.aggregates.get(&aggregate_key(name, args)) {
                return repr.clone();
            }
        }
        if let Some(target) = naas_lang::check::builtins::conversion_target(name) {
            let arg = args.first().map_or(Expr::Const(Scalar::Bool(false)), |arg| self.scalar(arg.value()));
            let to = scalar_ty(&target).unwrap_or(ScalarTy::Bool);
            return Repr::Scalar(Expr::cast(to, arg));
        }
        match name {
            "min" | "max" => {
                let op = if name == "min" { BinaryOp::Min } else { BinaryOp::Max };
                let values: Vec<Expr> = args.iter().map(|arg| self.scalar(arg.value())).collect();
                let folded = values.into_iter().reduce(|acc, next| Expr::binary(op, acc, next, span));
                return Repr::Scalar(folded.unwrap_or(Expr::Const(Scalar::Bool(false))));
            }
            "abs" => {
                let arg = args.first().map_or(Expr::Const(Scalar::Bool(false)), |arg| self.scalar(arg.value()));
                return Repr::Scalar(Expr::Unary { op: UnaryOp::Abs, arg: Box::new(arg) });
            }
            _ => {}
        }
        if let Type::Record(record) = ty {
            if record.name == name {
                return Repr::Group(args.iter().map(|arg| self.expr(arg.value())).collect());
            }
        }
        let Some(func) = self.ids.get(name).copied() else {
            return Repr::Scalar(Expr::Const(Scalar::Bool(false)));
        };
        let mut operands = Vec::new();
        for arg in args {
            let repr = self.expr(arg.value());
            operands.extend(self.operands(repr));
        }
        let result = self.alloc(ty, &format!("{name}.result"));
        let results = repr_vars_in_order(&result);
        self.emit(Stmt::Call { func, args: operands, results });
        result
    }
}

/// The key identifying an aggregate call (`sum(x * 2)`) regardless of where it is written.
pub fn aggregate_key(name: &str, args: &[Arg<Type>]) -> String {
    let args: Vec<String> = args.iter().map(|arg| naas_lang::printer::print_expr(arg.value())).collect();
    format!("{name}({})", args.join(", "))
}

/// Builds the `Repr` of a value of type `ty` from leaf (array variable, offset) pairs.
fn build(ty: &Type, leaves: &mut impl Iterator<Item = (Var, Expr)>) -> Repr {
    match ty {
        Type::Tuple(items) => Repr::Group(items.iter().map(|item| build(item, leaves)).collect()),
        Type::Record(record) => Repr::Group(record.fields.iter().map(|(_, item)| build(item, leaves)).collect()),
        Type::Array(elem, len) => {
            let count = leaves_count(elem);
            let leaves: Vec<(Var, Expr)> = leaves.take(count).collect();
            Repr::Array(ArrayView { elem: (**elem).clone(), len: *len, leaves })
        }
        _ => match leaves.next() {
            Some((var, offset)) => Repr::Scalar(Expr::load(var, offset)),
            None => Repr::Scalar(Expr::Const(Scalar::Bool(false))),
        },
    }
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
