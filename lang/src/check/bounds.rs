//! Termination and resource bounds. Loops are bounded by construction (constant ranges,
//! array lengths), so a program terminates exactly when its call graph has no cycle. This
//! pass rejects recursion (E0302), then computes for every function and aggregate part a
//! worst-case operation count and a frame size, and enforces the budgets (E0304, E0305).
//!
//! Counts are computed symbolically (a loop of N iterations multiplies its body's count by
//! N), never by unrolling, so a nest of 10^9 x 10^9 iterations costs no more to check than
//! one of 2 x 2. Arithmetic saturates at `u128::MAX`.

use std::collections::{HashMap, HashSet};

use super::{Aggregate, AggregateForm, CheckOptions, Function};
use crate::ast::{Arg, Block, Expr, ExprKind, Stmt, StmtKind};
use crate::diagnostics::{Code, Diagnostic};
use crate::span::Span;
use crate::types::Type;

/// Which module functions each function or aggregate part calls, with the call sites.
#[derive(Default, Debug)]
pub struct CallGraph {
    edges: HashMap<String, Vec<(String, Span)>>,
    order: Vec<String>,
}

impl CallGraph {
    pub fn add(&mut self, caller: &str, calls: Vec<(String, Span)>) {
        self.order.push(caller.to_string());
        self.edges.insert(caller.to_string(), calls);
    }

    fn callees(&self, caller: &str) -> &[(String, Span)] {
        self.edges.get(caller).map_or(&[], Vec::as_slice)
    }
}

/// The worst-case cost of one call of a function or aggregate part.
#[derive(Clone, Debug, PartialEq)]
pub struct Cost {
    /// `clamp`, or `top_k.merge` for an aggregate part.
    pub name: String,
    pub span: Span,
    /// Upper bound on operations executed (see spec.md, "Cost model").
    pub ops: u128,
    /// Bytes of all parameters and locals.
    pub frame_bytes: u64,
    /// Statements and expression nodes once every call is inlined (see [`MAX_CODE_SIZE`]).
    pub code_size: u128,
}

/// Largest code size of one function or aggregate part: its statements and expression
/// nodes, each call counting the code size of its callee (calls are inlined before code
/// generation), loop bodies once. The operation budget bounds run time but not code: a
/// loop body runs many times but is compiled once, a branch that is not taken costs no
/// time but must be compiled, and a helper called from both branches of an `if` is counted
/// once by the budget but compiled twice. Code generation (Cranelift) takes time and memory
/// that grow with code size, so this bound is what makes every program that passes `check`
/// compile in bounded time and memory (spec.md section 11.4). Error E0304.
pub const MAX_CODE_SIZE: u128 = 100_000;

pub fn check_bounds(
    functions: &[Function],
    aggregates: &[Aggregate],
    graph: &CallGraph,
    options: &CheckOptions,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Cost> {
    let recursive = find_recursion(graph, diagnostics);
    let by_name: HashMap<&str, &Function> = functions.iter().map(|f| (f.name.as_str(), f)).collect();
    let mut costs =
        CostTable { functions: &by_name, known: HashMap::new(), sizes: HashMap::new(), recursive: &recursive, graph };

    let mut reports = Vec::new();
    for function in functions {
        if let Some(report) = costs.report_function(&function.name, function) {
            reports.push(report);
        }
    }
    for aggregate in aggregates {
        match &aggregate.form {
            AggregateForm::Builtin { result } => {
                let mut lift = 0u128;
                let mut merge = 0u128;
                let mut counter = ExprCoster { table: &mut costs, heaviest: None };
                let finish = counter.builtin_result(result, &mut lift, &mut merge);
                let frame = aggregate.params.iter().map(|p| p.ty.size_bytes()).fold(0, u64::saturating_add);
                let code_size = expr_size(result, &costs.sizes);
                for (part, ops) in [("lift", lift), ("merge", merge), ("finish", finish)] {
                    reports.push(Cost {
                        name: format!("{}.{part}", aggregate.name),
                        span: aggregate.span,
                        ops,
                        frame_bytes: frame,
                        // Each part holds at most the whole result expression, inlined calls
                        // included (a helper called inside `sum(...)` is compiled into lift).
                        code_size,
                    });
                }
            }
            AggregateForm::Custom(custom) => {
                for part in [Some(&custom.lift), Some(&custom.merge), custom.finish.as_ref()].into_iter().flatten() {
                    let name = format!("{}.{}", aggregate.name, part.name);
                    if let Some(report) = costs.report_function(&name, part) {
                        reports.push(report);
                    }
                }
            }
        }
    }
    for report in &reports {
        if report.ops > options.max_ops {
            let heaviest = by_name
                .get(report.name.as_str())
                .copied()
                .or_else(|| part_function(aggregates, &report.name))
                .and_then(|f| costs.heaviest_loop(f));
            let mut diagnostic = Diagnostic::error(
                Code::E0304,
                format!(
                    "`{}` may execute up to {} operations, over the budget of {}",
                    report.name, report.ops, options.max_ops
                ),
                report.span,
                "too expensive per call",
            )
            .with_help("shrink the loop bounds, or raise the budget with `--max-ops`");
            if let Some((ops, span)) = heaviest {
                diagnostic = diagnostic.with_label(span, format!("this loop costs up to {ops} operations"));
            }
            diagnostics.push(diagnostic);
        }
        if report.code_size > MAX_CODE_SIZE {
            diagnostics.push(
                Diagnostic::error(
                    Code::E0304,
                    format!(
                        "`{}` is too large to compile: {} statements and expression nodes once calls are inlined, over the limit of {MAX_CODE_SIZE}",
                        report.name, report.code_size
                    ),
                    report.span,
                    "too much code",
                )
                .with_note("every call is compiled inline, so a helper's code counts at each call site")
                .with_help("use loops instead of repeated statements, and call large helpers from fewer places"),
            );
        }
        if report.frame_bytes > options.max_bytes {
            diagnostics.push(
                Diagnostic::error(
                    Code::E0305,
                    format!(
                        "`{}` needs {} bytes for its parameters and locals, over the limit of {}",
                        report.name, report.frame_bytes, options.max_bytes
                    ),
                    report.span,
                    "frame too large",
                )
                .with_help("use smaller arrays, or raise the limit with `--max-bytes`"),
            );
        }
    }
    reports.sort_by_key(|report| report.span.lo);
    reports
}

fn part_function<'a>(aggregates: &'a [Aggregate], name: &str) -> Option<&'a Function> {
    let (aggregate, part) = name.split_once('.')?;
    let aggregate = aggregates.iter().find(|a| a.name == aggregate)?;
    match &aggregate.form {
        AggregateForm::Custom(custom) => [Some(&custom.lift), Some(&custom.merge), custom.finish.as_ref()]
            .into_iter()
            .flatten()
            .find(|f| f.name == part),
        AggregateForm::Builtin { .. } => None,
    }
}

/// Reports every call cycle once and returns the functions on cycles.
fn find_recursion(graph: &CallGraph, diagnostics: &mut Vec<Diagnostic>) -> HashSet<String> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Active,
        Done,
    }
    let mut marks: HashMap<&str, Mark> = HashMap::new();
    let mut recursive = HashSet::new();
    for root in &graph.order {
        if marks.contains_key(root.as_str()) {
            continue;
        }
        // Iterative depth-first search: (node, index of the next callee to visit).
        let mut stack: Vec<(&str, usize)> = vec![(root.as_str(), 0)];
        marks.insert(root.as_str(), Mark::Active);
        while let Some((node, next)) = stack.last().copied() {
            let callees = graph.callees(node);
            if next >= callees.len() {
                marks.insert(node, Mark::Done);
                stack.pop();
                continue;
            }
            if let Some(top) = stack.last_mut() {
                top.1 += 1;
            }
            let (callee, call_span) = &callees[next];
            match marks.get(callee.as_str()) {
                None => {
                    marks.insert(callee.as_str(), Mark::Active);
                    stack.push((callee.as_str(), 0));
                }
                Some(Mark::Active) => {
                    let start = stack.iter().position(|(n, _)| *n == callee.as_str()).unwrap_or(0);
                    let cycle: Vec<&str> = stack[start..].iter().map(|(n, _)| *n).collect();
                    if cycle.iter().any(|n| recursive.contains(*n)) {
                        continue;
                    }
                    recursive.extend(cycle.iter().map(|n| n.to_string()));
                    diagnostics.push(recursion_error(graph, &cycle, *call_span));
                }
                Some(Mark::Done) => {}
            }
        }
    }
    recursive
}

fn recursion_error(graph: &CallGraph, cycle: &[&str], closing: Span) -> Diagnostic {
    let mut path: Vec<&str> = cycle.to_vec();
    path.push(cycle[0]);
    let message = if cycle.len() == 1 {
        format!("`{}` calls itself", cycle[0])
    } else {
        format!("recursive call cycle: {}", path.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" -> "))
    };
    let mut diagnostic = Diagnostic::error(Code::E0302, message, closing, "this call closes the cycle")
        .with_help("recursion is not allowed because every call must terminate within a known bound; use a `for` loop over a constant range");
    for pair in path.windows(2).take(cycle.len().saturating_sub(1)) {
        if let Some((_, span)) = graph.callees(pair[0]).iter().find(|(callee, _)| callee == pair[1]) {
            diagnostic = diagnostic.with_label(*span, format!("`{}` calls `{}`", pair[0], pair[1]));
        }
    }
    diagnostic
}

struct CostTable<'a> {
    functions: &'a HashMap<&'a str, &'a Function>,
    known: HashMap<String, u128>,
    /// Code sizes (see [`MAX_CODE_SIZE`]) of the functions in `known`.
    sizes: HashMap<String, u128>,
    recursive: &'a HashSet<String>,
    graph: &'a CallGraph,
}

impl CostTable<'_> {
    /// The cost of a function, computing callees first (iteratively: the call graph is a DAG
    /// once recursive functions are excluded). Recursive functions have no bound: `None`.
    fn function_cost(&mut self, name: &str) -> Option<u128> {
        if self.recursive.contains(name) {
            return None;
        }
        let mut stack = vec![name.to_string()];
        while let Some(current) = stack.last().cloned() {
            if self.known.contains_key(&current) {
                stack.pop();
                continue;
            }
            let pending: Vec<String> = self
                .graph
                .callees(&current)
                .iter()
                .map(|(callee, _)| callee.clone())
                .filter(|callee| !self.known.contains_key(callee) && !self.recursive.contains(callee))
                .filter(|callee| self.functions.contains_key(callee.as_str()))
                .collect();
            if pending.is_empty() || pending.iter().any(|callee| stack.contains(callee)) {
                let (cost, size) = match self.functions.get(current.as_str()) {
                    Some(function) => {
                        let size = block_size(&function.body, &self.sizes);
                        let mut coster = ExprCoster { table: self, heaviest: None };
                        (coster.block(&function.body), size)
                    }
                    None => (0, 0),
                };
                self.sizes.insert(current.clone(), size);
                self.known.insert(current, cost);
                stack.pop();
            } else {
                stack.extend(pending);
            }
        }
        self.known.get(name).copied()
    }

    fn report_function(&mut self, name: &str, function: &Function) -> Option<Cost> {
        let ops = if self.functions.contains_key(name) {
            self.function_cost(name)?
        } else {
            // Aggregate parts are not callable, so they are never on a cycle.
            let mut coster = ExprCoster { table: self, heaviest: None };
            coster.block(&function.body)
        };
        // Callees were costed above, so their sizes are known.
        let code_size = self.sizes.get(name).copied().unwrap_or_else(|| block_size(&function.body, &self.sizes));
        let frame_bytes = function.locals.iter().map(|local| local.ty.size_bytes()).fold(0, u64::saturating_add);
        Some(Cost { name: name.to_string(), span: function.span, ops, frame_bytes, code_size })
    }

    fn heaviest_loop(&mut self, function: &Function) -> Option<(u128, Span)> {
        let mut coster = ExprCoster { table: self, heaviest: None };
        coster.block(&function.body);
        coster.heaviest
    }
}

struct ExprCoster<'t, 'a> {
    table: &'t mut CostTable<'a>,
    /// The most expensive loop seen, for diagnostics.
    heaviest: Option<(u128, Span)>,
}

impl ExprCoster<'_, '_> {
    fn block(&mut self, block: &Block<Type>) -> u128 {
        block.iter().map(|stmt| self.stmt(stmt)).fold(0, u128::saturating_add)
    }

    fn stmt(&mut self, stmt: &Stmt<Type>) -> u128 {
        match &stmt.kind {
            StmtKind::Expr(e) => self.expr(e),
            StmtKind::Assign { target, value } => {
                self.expr(value).saturating_add(self.place(target)).saturating_add(u128::from(value.ty.scalar_count()))
            }
            StmtKind::AnnAssign { value, .. } => {
                value.as_ref().map_or(0, |v| self.expr(v).saturating_add(u128::from(v.ty.scalar_count())))
            }
            StmtKind::AugAssign { target, value, .. } => {
                self.expr(value).saturating_add(self.place(target)).saturating_add(2)
            }
            StmtKind::If { branches, orelse } => {
                let conditions =
                    branches.iter().map(|(cond, _)| self.expr(cond).saturating_add(1)).fold(0, u128::saturating_add);
                let mut heaviest_branch = orelse.as_ref().map_or(0, |body| self.block(body));
                for (_, body) in branches {
                    heaviest_branch = heaviest_branch.max(self.block(body));
                }
                conditions.saturating_add(heaviest_branch)
            }
            StmtKind::For { iter, body, .. } => {
                let trips = trip_count_of(iter);
                // Iterating over an array copies it first (the body may write to it), and
                // each trip copies an element that holds arrays into the loop variable.
                let (iterable_copy, element_copy) = match &iter.ty {
                    Type::Array(elem, _) => (copy_cost(&iter.ty), copy_cost(elem)),
                    _ => (0, 0),
                };
                let per_trip = self.block(body).saturating_add(1).saturating_add(element_copy);
                let total =
                    self.expr(iter).saturating_add(iterable_copy).saturating_add(trips.saturating_mul(per_trip));
                if self.heaviest.is_none_or(|(ops, _)| total > ops) {
                    self.heaviest = Some((total, stmt.span));
                }
                total
            }
            StmtKind::While { cond, body } => self.expr(cond).saturating_add(self.block(body)),
            StmtKind::Return(value) => {
                value.as_ref().map_or(0, |v| self.expr(v).saturating_add(copy_cost(&v.ty))).saturating_add(1)
            }
            StmtKind::Break | StmtKind::Continue => 1,
            StmtKind::Pass => 0,
        }
    }

    /// The cost of computing where an assignment writes (its index expressions).
    fn place(&mut self, target: &Expr<Type>) -> u128 {
        match &target.kind {
            ExprKind::Index(base, index) => self.place(base).saturating_add(self.expr(index)).saturating_add(1),
            ExprKind::Field(base, _) => self.place(base),
            ExprKind::Tuple(items) => items.iter().map(|item| self.place(item)).fold(0, u128::saturating_add),
            _ => 0,
        }
    }

    fn expr(&mut self, expr: &Expr<Type>) -> u128 {
        match &expr.kind {
            ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Bool(_) | ExprKind::Name(_) => 0,
            ExprKind::Const(_) => u128::from(expr.ty.scalar_count()).saturating_sub(1),
            ExprKind::Unary(_, operand) | ExprKind::Field(operand, _) => self.expr(operand).saturating_add(1),
            ExprKind::Binary(_, a, b) => {
                let own = if matches!(expr.ty, Type::Array(..)) { u128::from(expr.ty.scalar_count()) } else { 1 };
                self.expr(a).saturating_add(self.expr(b)).saturating_add(own)
            }
            ExprKind::Compare(_, a, b) => {
                let own = u128::from(a.ty.scalar_count());
                self.expr(a).saturating_add(self.expr(b)).saturating_add(own)
            }
            ExprKind::Logic(_, a, b) | ExprKind::Index(a, b) => {
                self.expr(a).saturating_add(self.expr(b)).saturating_add(1)
            }
            ExprKind::IfElse { cond, then, orelse } => {
                let branches = self.expr(then).max(self.expr(orelse));
                // A conditional whose value holds arrays copies the chosen one into a temporary.
                self.expr(cond).saturating_add(1).saturating_add(branches).saturating_add(copy_cost(&expr.ty))
            }
            ExprKind::Call { func, args } => {
                let args_cost = args.iter().map(|arg| self.expr(arg.value())).fold(0, u128::saturating_add);
                let own = if self.table.functions.contains_key(func.name.as_str()) {
                    // Arguments are passed by value: every array in them is copied.
                    let copies = args.iter().map(|arg| copy_cost(&arg.value().ty)).fold(0, u128::saturating_add);
                    // A recursive callee was reported already; count it as one operation.
                    self.table.function_cost(&func.name).unwrap_or(0).saturating_add(1).saturating_add(copies)
                } else {
                    (args.len().max(2) - 1) as u128
                };
                args_cost.saturating_add(own)
            }
            ExprKind::Tuple(items) => items
                .iter()
                .map(|item| self.expr(item))
                .fold(0, u128::saturating_add)
                .saturating_add(items.len() as u128),
            // An array literal stores its items into a new array: items that hold arrays are
            // copied element by element.
            ExprKind::Array(items) => items
                .iter()
                .map(|item| self.expr(item).saturating_add(copy_cost(&item.ty)))
                .fold(0, u128::saturating_add)
                .saturating_add(items.len() as u128),
        }
    }

    /// Splits a built-in aggregate's result into the cost of lifting one record (`lift`), of
    /// merging two states (`merge`), and returns the cost of finishing.
    fn builtin_result(&mut self, expr: &Expr<Type>, lift: &mut u128, merge: &mut u128) -> u128 {
        match &expr.kind {
            ExprKind::Call { func, args } if is_aggregate_call(&func.name, args) => {
                let arg_cost = args.iter().map(|arg| self.expr(arg.value())).fold(0, u128::saturating_add);
                let fields = if func.name == "avg" { 2 } else { 1 };
                *lift = lift.saturating_add(arg_cost).saturating_add(fields);
                *merge = merge.saturating_add(fields);
                if func.name == "avg" {
                    2
                } else {
                    0
                }
            }
            ExprKind::Tuple(items) | ExprKind::Array(items) => items
                .iter()
                .map(|item| self.builtin_result(item, lift, merge))
                .fold(0, u128::saturating_add)
                .saturating_add(items.len() as u128),
            ExprKind::Unary(_, a) | ExprKind::Field(a, _) => self.builtin_result(a, lift, merge).saturating_add(1),
            ExprKind::Binary(_, a, b)
            | ExprKind::Compare(_, a, b)
            | ExprKind::Logic(_, a, b)
            | ExprKind::Index(a, b) => self
                .builtin_result(a, lift, merge)
                .saturating_add(self.builtin_result(b, lift, merge))
                .saturating_add(1),
            ExprKind::IfElse { cond, then, orelse } => {
                let cond = self.builtin_result(cond, lift, merge);
                let then = self.builtin_result(then, lift, merge);
                let orelse = self.builtin_result(orelse, lift, merge);
                cond.saturating_add(then.max(orelse)).saturating_add(1)
            }
            ExprKind::Call { args, .. } => args
                .iter()
                .map(|arg| self.builtin_result(arg.value(), lift, merge))
                .fold(0, u128::saturating_add)
                .saturating_add(1),
            _ => self.expr(expr),
        }
    }
}

/// The code size of a block (see [`MAX_CODE_SIZE`]); `sizes` holds the callees' sizes.
fn block_size(block: &Block<Type>, sizes: &HashMap<String, u128>) -> u128 {
    block.iter().map(|stmt| stmt_size(stmt, sizes)).fold(0, u128::saturating_add)
}

fn stmt_size(stmt: &Stmt<Type>, sizes: &HashMap<String, u128>) -> u128 {
    let expr = |e: &Expr<Type>| expr_size(e, sizes);
    let own = match &stmt.kind {
        StmtKind::Expr(e) => expr(e),
        StmtKind::Assign { target, value } | StmtKind::AugAssign { target, value, .. } => {
            expr(target).saturating_add(expr(value))
        }
        StmtKind::AnnAssign { value, .. } => value.as_ref().map_or(0, expr),
        StmtKind::If { branches, orelse } => branches
            .iter()
            .map(|(cond, body)| expr(cond).saturating_add(block_size(body, sizes)))
            .fold(orelse.as_ref().map_or(0, |body| block_size(body, sizes)), u128::saturating_add),
        StmtKind::For { iter, body, .. } => expr(iter).saturating_add(block_size(body, sizes)),
        StmtKind::While { cond, body } => expr(cond).saturating_add(block_size(body, sizes)),
        StmtKind::Return(value) => value.as_ref().map_or(0, expr),
        StmtKind::Break | StmtKind::Continue | StmtKind::Pass => 0,
    };
    own.saturating_add(1)
}

fn expr_size(e: &Expr<Type>, sizes: &HashMap<String, u128>) -> u128 {
    let size = |e: &Expr<Type>| expr_size(e, sizes);
    let own = match &e.kind {
        ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Bool(_) | ExprKind::Name(_) => 0,
        // A folded constant is materialised scalar by scalar.
        ExprKind::Const(_) => u128::from(e.ty.scalar_count()),
        ExprKind::Unary(_, a) | ExprKind::Field(a, _) => size(a),
        ExprKind::Binary(_, a, b) | ExprKind::Compare(_, a, b) | ExprKind::Logic(_, a, b) | ExprKind::Index(a, b) => {
            size(a).saturating_add(size(b))
        }
        ExprKind::IfElse { cond, then, orelse } => size(cond).saturating_add(size(then)).saturating_add(size(orelse)),
        ExprKind::Call { func, args } => args
            .iter()
            .map(|arg| size(arg.value()))
            .fold(sizes.get(func.name.as_str()).copied().unwrap_or(0), u128::saturating_add),
        ExprKind::Tuple(items) | ExprKind::Array(items) => items.iter().map(size).fold(0, u128::saturating_add),
    };
    own.saturating_add(1)
}

/// The scalars copied when a value of type `ty` is copied as a whole, counting only those
/// inside arrays: copying a scalar is the operation that computed it, counted already, but
/// an array of N elements costs N. Passing an argument, returning a value, iterating over an
/// array and building an array literal copy their values this way (spec.md section 11.2).
pub fn copy_cost(ty: &Type) -> u128 {
    match ty {
        Type::Array(..) => u128::from(ty.scalar_count()),
        Type::Tuple(items) => items.iter().map(copy_cost).fold(0, u128::saturating_add),
        Type::Record(record) => record.fields.iter().map(|(_, ty)| copy_cost(ty)).fold(0, u128::saturating_add),
        _ => 0,
    }
}

/// True for a call that aggregates over records (`min(x)` with one argument, `sum`, ...).
pub fn is_aggregate_call<A>(name: &str, args: &[Arg<A>]) -> bool {
    match name {
        "min" | "max" => args.len() == 1,
        "sum" | "count" | "avg" | "any" | "all" => true,
        _ => false,
    }
}

/// Iterations of a checked `for` loop's iterable: `range(start, stop, step)` with literal
/// bounds (the checker normalises it so) or an array.
fn trip_count_of(iter: &Expr<Type>) -> u128 {
    match (&iter.kind, &iter.ty) {
        (ExprKind::Call { .. }, _) => match range_bounds(iter) {
            Some((start, stop, step)) if step != 0 => super::stmt::trip_count(start, stop, step),
            _ => 0,
        },
        (_, Type::Array(_, len)) => u128::from(*len),
        _ => 0,
    }
}

/// The `(start, stop, step)` of a checked `range(...)` iterable, which the checker normalises to
/// three integer literals; `None` for anything else.
pub fn range_bounds(iter: &Expr<Type>) -> Option<(i128, i128, i128)> {
    let ExprKind::Call { func, args } = &iter.kind else { return None };
    if func.name != "range" {
        return None;
    }
    let bounds: Vec<i128> = args
        .iter()
        .filter_map(|arg| match arg.value().kind {
            ExprKind::Int(value) => Some(value),
            _ => None,
        })
        .collect();
    match bounds[..] {
        [start, stop, step] => Some((start, stop, step)),
        _ => None,
    }
}
