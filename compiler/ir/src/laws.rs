//! Checking that `merge` is associative and commutative with `identity` as its unit, which
//! in-network aggregation relies on (partial states meet in whatever order packets arrive).
//!
//! - *Proved* when every state field's final value is a known monoid operator (add, min,
//!   max, or, and) applied to the same field of both inputs, and the identity holds each
//!   operator's unit. Built-in aggregates are proved by construction; custom merges are
//!   analysed by symbolic execution of their optimised, fully unrolled IR.
//! - *Tested* otherwise: the interpreter evaluates the three laws on states reachable from
//!   generated records (lifted, then merged in random trees), with edge values (0, ±1, MIN,
//!   MAX) over-represented. A violation is an error with the concrete counterexample. A
//!   passing test is reported as "tested on N cases", never as a proof.
//!
//! Floating-point addition is not associative; fields that add floats get a warning and
//! floats are compared with a relative tolerance of 1e-9 when testing.

use std::collections::HashMap;

use naas_lang::diagnostics::{Code, Diagnostic};
use naas_lang::internal::InternalError;
use naas_lang::span::Span;
use naas_stdx::Rng;

use crate::decompose::{AggregatePlan, MergeOp};
use crate::interp::{Interpreter, RuntimeError, Slot};
use crate::ir::{BinaryOp, CmpOp, Expr, Function, Module, Operand, Scalar, ScalarTy, Stmt, Var, VarTy};
use crate::passes::{optimize, PassOptions};
use crate::CompileError;

/// How `merge`'s laws were established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LawStatus {
    Proved,
    Tested { cases: usize },
}

impl std::fmt::Display for LawStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LawStatus::Proved => f.write_str("proved (field-wise monoid operators)"),
            LawStatus::Tested { cases } => write!(f, "tested on {cases} cases"),
        }
    }
}

/// How hard to test merges that cannot be proved.
#[derive(Clone, Copy, Debug)]
pub struct LawOptions {
    /// Cases to run when the work bound allows (section 13.3).
    pub cases: usize,
    pub seed: u64,
    /// Bound on the work of testing one aggregate, in units of [`work`].
    pub work: u128,
}

impl Default for LawOptions {
    fn default() -> LawOptions {
        LawOptions { cases: 2_000, seed: 0x5eed_1a55, work: LAW_TEST_WORK }
    }
}

/// Default bound on the work of testing one aggregate's laws, in the units of [`work`]
/// (about one interpreted statement or expression node each): measured at about two
/// seconds in a debug build, less in release. Merges too expensive for the full 2,000 cases in this bound
/// are tested on fewer (spec.md section 13.3), so checking a program takes bounded time
/// whatever its merge costs within the operation budget.
pub const LAW_TEST_WORK: u128 = 100_000_000;
/// Fewest cases, lifted states and pool merges a test uses, however expensive the merge.
const MIN_LAW_SAMPLES: usize = 4;
/// Lifted records and pool merges when the budget allows.
const POOL_SAMPLES: usize = 48;
/// Calls of `merge` in one case: two for commutativity, three for associativity, one for
/// the identity.
const MERGES_PER_CASE: u128 = 6;

/// Establishes the laws of every aggregate's merge, recording the merge operator of each
/// state field it proves. Returns the status and the diagnostics of each aggregate, in
/// `plans` order, so that a command that runs one aggregate reports only its own.
pub fn check_laws(
    module: &Module,
    plans: &mut [AggregatePlan],
    options: LawOptions,
) -> Result<(Vec<LawStatus>, Vec<Vec<Diagnostic>>), CompileError> {
    let mut statuses = Vec::new();
    let mut per_plan = Vec::new();
    // Straight-line merges for symbolic execution, computed once for every custom aggregate.
    let unrolled = if plans.iter().any(|plan| !plan.builtin) {
        Some(optimize(module, PassOptions { unroll: true })?)
    } else {
        None
    };
    for plan in plans.iter_mut() {
        let mut diagnostics = Vec::new();
        if let (false, Some(unrolled)) = (plan.builtin, &unrolled) {
            if let Some(ops) = detect_fieldwise(unrolled, plan) {
                for (field, op) in plan.state.fields.iter_mut().zip(ops) {
                    field.merge = op;
                }
            }
        }
        let proved = plan.state.fields.iter().all(|f| f.merge != MergeOp::Custom)
            && plan
                .state
                .fields
                .iter()
                .zip(&plan.identity)
                .all(|(field, identity)| holds_unit(field.merge, field.ty, identity));
        for field in &plan.state.fields {
            if field.ty.scalar().is_float() && matches!(field.merge, MergeOp::Add | MergeOp::Custom) {
                diagnostics.push(
                    Diagnostic::warning(
                        Code::W0501,
                        format!(
                            "state field `{}` of `{}` combines floating-point values, which is not associative",
                            field.name, plan.name
                        ),
                        plan.merge_span,
                        "merged here",
                    )
                    .with_note("partial states merge in network arrival order, so results may differ in the last bits between runs and targets")
                    .with_help("for exact results, accumulate integers (e.g. fixed-point `i64(x * 1000.0)`) and convert in `finish`"),
                );
            }
        }
        if proved {
            statuses.push(LawStatus::Proved);
        } else {
            match test_laws(module, plan, options) {
                Ok(cases) => statuses.push(LawStatus::Tested { cases }),
                Err(LawFailure::Violation(diagnostic)) => {
                    diagnostics.push(*diagnostic);
                    statuses.push(LawStatus::Tested { cases: 0 });
                }
                Err(LawFailure::Internal(error)) => return Err(error.into()),
            }
        }
        per_plan.push(diagnostics);
    }
    Ok((statuses, per_plan))
}

/// Why testing the laws stopped: a law of the program failed (a diagnostic), or the
/// interpreter met IR it cannot run (a compiler bug).
enum LawFailure {
    Violation(Box<Diagnostic>),
    Internal(InternalError),
}

/// An upper bound on the interpreter's work for one call of `func`: one unit per statement
/// and per expression node, the element count for array copies, fills and array operands,
/// loop bodies times their trip counts, the larger branch of an `if`, callees in full.
/// Saturates; only its order of magnitude matters.
pub fn work(module: &Module, func: crate::ir::FuncId) -> u128 {
    let f = module.function(func);
    let params: u128 = f.params.iter().map(|p| u128::from(f.var_ty(*p).size_elems())).sum();
    params.saturating_add(block_work(module, f, &f.body, 0))
}

/// Calls nested deeper than this are charged as one unit; the call graph is acyclic, so
/// this only guards the recursion of this function.
const MAX_WORK_DEPTH: usize = 64;

fn block_work(module: &Module, f: &Function, block: &[Stmt], depth: usize) -> u128 {
    block.iter().map(|stmt| stmt_work(module, f, stmt, depth)).fold(0, u128::saturating_add)
}

fn stmt_work(module: &Module, f: &Function, stmt: &Stmt, depth: usize) -> u128 {
    let elems = |var: &Var| u128::from(f.var_ty(*var).size_elems());
    let operand = |op: &Operand| match op {
        Operand::Scalar(expr) => expr_work(expr),
        Operand::Array(var) => elems(var),
    };
    1 + match stmt {
        Stmt::Assign { value, .. } => expr_work(value),
        Stmt::Store { offset, value, .. } => expr_work(offset).saturating_add(expr_work(value)),
        Stmt::CopyArray { dst, .. } => elems(dst),
        Stmt::FillArray { dst, value } => elems(dst).saturating_add(expr_work(value)),
        Stmt::If { cond, then, orelse } => {
            expr_work(cond).saturating_add(block_work(module, f, then, depth).max(block_work(module, f, orelse, depth)))
        }
        Stmt::Loop { start, stop, step, body, .. } => naas_lang::check::trip_count(*start, *stop, *step)
            .saturating_mul(block_work(module, f, body, depth).saturating_add(1)),
        Stmt::Block { body, .. } => block_work(module, f, body, depth),
        Stmt::Break(_) | Stmt::Continue(_) => 0,
        Stmt::Return(values) => values.iter().map(operand).fold(0, u128::saturating_add),
        Stmt::Call { func, args, results } => {
            let callee = if depth < MAX_WORK_DEPTH {
                let g = module.function(*func);
                block_work(module, g, &g.body, depth + 1)
            } else {
                1
            };
            args.iter().map(operand).chain(results.iter().map(elems)).fold(callee, u128::saturating_add)
        }
    }
}

fn expr_work(expr: &Expr) -> u128 {
    1 + match expr {
        Expr::Const(_) | Expr::Var(_) => 0,
        Expr::Load { offset: arg, .. }
        | Expr::Unary { arg, .. }
        | Expr::Cast { arg, .. }
        | Expr::CheckIndex { index: arg, .. } => expr_work(arg),
        Expr::Binary { lhs, rhs, .. } | Expr::Compare { lhs, rhs, .. } | Expr::And(lhs, rhs) | Expr::Or(lhs, rhs) => {
            expr_work(lhs).saturating_add(expr_work(rhs))
        }
        Expr::IfElse { cond, then, orelse } | Expr::Select { cond, then, orelse } => {
            expr_work(cond).saturating_add(expr_work(then)).saturating_add(expr_work(orelse))
        }
    }
}

/// How many lifted records, pool merges and cases a law test runs: the defaults (48, 48
/// and `options.cases`) when they fit in `options.work`, otherwise fewer, down to
/// [`MIN_LAW_SAMPLES`] each. A quarter of the bound goes to lifting, a quarter to building
/// the pool, half to the cases.
fn law_samples(lift_work: u128, merge_work: u128, options: LawOptions) -> (usize, usize, usize) {
    let fit = |share: u128, each: u128, most: usize| -> usize {
        let n = share / each.max(1);
        usize::try_from(n).unwrap_or(usize::MAX).clamp(MIN_LAW_SAMPLES.min(most), most)
    };
    let cases = options.cases.max(1);
    (
        fit(options.work / 4, lift_work, POOL_SAMPLES),
        fit(options.work / 4, merge_work, POOL_SAMPLES),
        fit(options.work / 2, merge_work.saturating_mul(MERGES_PER_CASE), cases),
    )
}

fn holds_unit(op: MergeOp, ty: VarTy, identity: &Slot) -> bool {
    let Some(unit) = op.identity(ty.scalar()) else { return false };
    match identity {
        Slot::Scalar(value) => value.same(unit),
        Slot::Array(values) => values.iter().all(|value| value.same(unit)),
    }
}

// ---- Proof by symbolic execution -----------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Sym {
    /// Element `elem` of merge parameter `param` (`elem` is 0 for scalars).
    Input {
        param: usize,
        elem: u32,
    },
    Const(Scalar),
    Op(BinaryOp, Box<Sym>, Box<Sym>),
    Opaque,
}

/// The merge operator of each field, if `merge` (in the optimised, unrolled module) computes
/// every field element-wise with one known operator.
fn detect_fieldwise(unrolled: &Module, plan: &AggregatePlan) -> Option<Vec<MergeOp>> {
    let merge = unrolled.function(plan.merge);
    let results = symbolic_results(merge)?;
    let fields = plan.state.fields.len();
    let mut ops = Vec::with_capacity(fields);
    for (index, (field, result)) in plan.state.fields.iter().zip(results).enumerate() {
        let mut field_op = None;
        for (elem, sym) in result.iter().enumerate() {
            let op = elementwise_op(sym, index, index + fields, elem as u32, field.ty.scalar())?;
            if field_op.is_some_and(|previous| previous != op) {
                return None;
            }
            field_op = Some(op);
        }
        ops.push(field_op?);
    }
    Some(ops)
}

fn elementwise_op(sym: &Sym, a: usize, b: usize, elem: u32, ty: ScalarTy) -> Option<MergeOp> {
    let Sym::Op(op, x, y) = sym else { return None };
    let (xa, yb) = (Sym::Input { param: a, elem }, Sym::Input { param: b, elem });
    if !((**x == xa && **y == yb) || (**x == yb && **y == xa)) {
        return None;
    }
    match (op, ty) {
        (BinaryOp::Add, _) => Some(MergeOp::Add),
        (BinaryOp::Min, _) => Some(MergeOp::Min),
        (BinaryOp::Max, _) => Some(MergeOp::Max),
        (BinaryOp::BitOr, ScalarTy::Bool | ScalarTy::Int(_)) => Some(MergeOp::Or),
        (BinaryOp::BitAnd, ScalarTy::Bool | ScalarTy::Int(_)) => Some(MergeOp::And),
        _ => None,
    }
}

/// Executes straight-line code symbolically; `None` if control flow depends on data.
fn symbolic_results(f: &Function) -> Option<Vec<Vec<Sym>>> {
    let mut env: HashMap<Var, Vec<Sym>> = HashMap::new();
    for (param, var) in f.params.iter().enumerate() {
        let len = f.var_ty(*var).size_elems();
        env.insert(*var, (0..len).map(|elem| Sym::Input { param, elem }).collect());
    }
    for (i, decl) in f.vars.iter().enumerate() {
        env.entry(Var(i as u32))
            .or_insert_with(|| vec![Sym::Const(Scalar::zero(decl.ty.scalar())); decl.ty.size_elems() as usize]);
    }
    match run_symbolic(f, &f.body, &mut env) {
        Symbolic::Returned(results) => Some(results),
        Symbolic::FellThrough | Symbolic::GaveUp => None,
    }
}

/// The outcome of running a block symbolically.
enum Symbolic {
    Returned(Vec<Vec<Sym>>),
    FellThrough,
    /// Control flow that depends on data (or anything else this analysis does not model):
    /// nothing can be concluded.
    GaveUp,
}

fn run_symbolic(f: &Function, block: &[Stmt], env: &mut HashMap<Var, Vec<Sym>>) -> Symbolic {
    for stmt in block {
        let stepped = (|| -> Option<Option<Symbolic>> {
            match stmt {
                Stmt::Assign { dst, value } => {
                    let value = sym(f, value, env);
                    env.insert(*dst, vec![value]);
                }
                Stmt::Store { array, offset, value } => {
                    let offset = usize::try_from(offset.as_const()?.as_int()?).ok()?;
                    let value = sym(f, value, env);
                    *env.get_mut(array)?.get_mut(offset)? = value;
                }
                Stmt::CopyArray { dst, src } => {
                    let copy = env.get(src)?.clone();
                    env.insert(*dst, copy);
                }
                Stmt::FillArray { dst, value } => {
                    let value = sym(f, value, env);
                    for slot in env.get_mut(dst)? {
                        *slot = value.clone();
                    }
                }
                // A block is straight-line only if nothing inside it (at any depth) leaves it.
                Stmt::Block { body, .. } if !has_exit(body) => match run_symbolic(f, body, env) {
                    Symbolic::FellThrough => {}
                    other => return Some(Some(other)),
                },
                Stmt::Return(values) => {
                    let results = values
                        .iter()
                        .map(|value| match value {
                            Operand::Scalar(expr) => Some(vec![sym(f, expr, env)]),
                            Operand::Array(var) => env.get(var).cloned(),
                        })
                        .collect::<Option<Vec<_>>>()?;
                    return Some(Some(Symbolic::Returned(results)));
                }
                _ => return None,
            }
            Some(None)
        })();
        match stepped {
            None => return Symbolic::GaveUp,
            Some(Some(outcome)) => return outcome,
            Some(None) => {}
        }
    }
    Symbolic::FellThrough
}

/// True when a block contains a `break`, `continue` or `return` at any depth.
fn has_exit(block: &[Stmt]) -> bool {
    block.iter().any(|stmt| match stmt {
        Stmt::Break(_) | Stmt::Continue(_) | Stmt::Return(_) => true,
        Stmt::If { then, orelse, .. } => has_exit(then) || has_exit(orelse),
        Stmt::Loop { body, .. } | Stmt::Block { body, .. } => has_exit(body),
        _ => false,
    })
}

fn sym(f: &Function, expr: &Expr, env: &HashMap<Var, Vec<Sym>>) -> Sym {
    match expr {
        Expr::Const(value) => Sym::Const(*value),
        Expr::Var(var) => env.get(var).and_then(|v| v.first().cloned()).unwrap_or(Sym::Opaque),
        Expr::Load { array, offset } => offset
            .as_const()
            .and_then(Scalar::as_int)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| env.get(array).and_then(|v| v.get(i).cloned()))
            .unwrap_or(Sym::Opaque),
        Expr::Binary { op, lhs, rhs, .. } => Sym::Op(*op, Box::new(sym(f, lhs, env)), Box::new(sym(f, rhs, env))),
        // `x if x < y else y` is min on integers (on floats NaN makes it differ).
        Expr::IfElse { cond, then, orelse } | Expr::Select { cond, then, orelse } => match &**cond {
            Expr::Compare { op, lhs, rhs } => {
                let (x, y, t, e) = (sym(f, lhs, env), sym(f, rhs, env), sym(f, then, env), sym(f, orelse, env));
                // Only on integers: with NaN and signed zeros, the float version is neither
                // commutative nor IEEE minimum/maximum.
                let integer = matches!(crate::ir_types::expr_ty(f, lhs), ScalarTy::Int(_));
                let op = match (op, t == x && e == y, t == y && e == x) {
                    (CmpOp::Lt | CmpOp::Le, true, _) | (CmpOp::Gt | CmpOp::Ge, _, true) => Some(BinaryOp::Min),
                    (CmpOp::Gt | CmpOp::Ge, true, _) | (CmpOp::Lt | CmpOp::Le, _, true) => Some(BinaryOp::Max),
                    _ => None,
                };
                match op {
                    Some(op) if integer => Sym::Op(op, Box::new(x), Box::new(y)),
                    _ => Sym::Opaque,
                }
            }
            _ => Sym::Opaque,
        },
        _ => Sym::Opaque,
    }
}

// ---- Testing with the interpreter ----------------------------------------------------

/// A random value of `ty`, with edge values (0, 1, -1, MIN, MAX) one time in three.
pub fn random_scalar(rng: &mut Rng, ty: ScalarTy) -> Scalar {
    match ty {
        ScalarTy::Bool => Scalar::Bool(rng.next_u64() & 1 == 1),
        ScalarTy::Int(int) => {
            let edges = [0, 1, -1, int.min_value(), int.max_value()];
            let value = if rng.below(3) == 0 {
                edges[rng.below(edges.len())]
            } else if rng.below(2) == 0 {
                // Small values make collisions and ties likely.
                (rng.below(21) as i128) - 10
            } else {
                i128::from(rng.next_u64())
            };
            Scalar::Int(int, naas_lang::ops::wrap(int, value))
        }
        ScalarTy::Float(float) => {
            let edges = [0.0, -0.0, 1.0, -1.0, 1e300, -1e300, 1e-300, f64::INFINITY, f64::NEG_INFINITY, f64::NAN];
            let value = if rng.below(3) == 0 {
                edges[rng.below(edges.len())]
            } else {
                (rng.next_u64() % 2_000_001) as f64 / 1000.0 - 1000.0
            };
            Scalar::Float(float, naas_lang::ops::float_round(float, value))
        }
    }
}

/// Random arguments for `function`, one per parameter (see [`random_scalar`]): records for
/// `lift`, in law tests, merge-tree tests and benchmarks.
pub fn random_args(rng: &mut Rng, function: &Function) -> Vec<Slot> {
    function
        .params
        .iter()
        .map(|param| match function.var_ty(*param) {
            VarTy::Scalar(ty) => Slot::Scalar(random_scalar(rng, ty)),
            VarTy::Array(ty, len) => Slot::Array((0..len).map(|_| random_scalar(rng, ty)).collect()),
        })
        .collect()
}

fn approx_equal(a: &[Slot], b: &[Slot]) -> bool {
    fn scalar(x: Scalar, y: Scalar) -> bool {
        match (x, y) {
            (Scalar::Float(_, x), Scalar::Float(_, y)) => {
                (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
            }
            _ => x.same(y),
        }
    }
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Slot::Scalar(x), Slot::Scalar(y)) => scalar(*x, *y),
            (Slot::Array(x), Slot::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| scalar(*a, *b)),
            _ => false,
        })
}

/// Prints a state as `(field=value, ...)`.
pub fn show_state(plan: &AggregatePlan, state: &[Slot]) -> String {
    let parts: Vec<String> = plan
        .state
        .fields
        .iter()
        .zip(state)
        .map(|(field, slot)| format!("{}={}", field.name, show_slot(slot)))
        .collect();
    format!("({})", parts.join(", "))
}

pub fn show_slot(slot: &Slot) -> String {
    match slot {
        Slot::Scalar(value) => value.to_string(),
        Slot::Array(values) => format!("[{}]", values.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
    }
}

struct LawTester<'a> {
    interp: Interpreter<'a>,
    plan: &'a AggregatePlan,
}

impl LawTester<'_> {
    fn merge(&self, a: &[Slot], b: &[Slot]) -> Result<Vec<Slot>, LawFailure> {
        let args = a.iter().chain(b).cloned().collect();
        self.interp.call(self.plan.merge, args).map_err(|error| self.fault("merge", error, &[a, b]))
    }

    fn fault(&self, part: &str, error: RuntimeError, states: &[&[Slot]]) -> LawFailure {
        let (fault, span) = match error {
            RuntimeError::Fault { fault, span, .. } => (fault, span),
            RuntimeError::Internal(error) => return LawFailure::Internal(error),
        };
        let mut diagnostic = Diagnostic::error(
            Code::E0504,
            format!("`{}` faults while its laws are tested: {fault}", self.plan.name),
            if span == Span::default() { self.plan.merge_span } else { span },
            format!("in `{part}`"),
        );
        for (name, state) in ["a", "b"].iter().zip(states) {
            diagnostic = diagnostic.with_note(format!("{name} = {}", show_state(self.plan, state)));
        }
        LawFailure::Violation(Box::new(
            diagnostic.with_help("merge and lift must succeed on every state the network can produce"),
        ))
    }

    fn violation(&self, code: Code, law: &str, notes: Vec<String>) -> LawFailure {
        let mut diagnostic = Diagnostic::error(
            code,
            format!("`merge` of `{}` violates {law}", self.plan.name),
            self.plan.merge_span,
            "this merge",
        );
        for note in notes {
            diagnostic = diagnostic.with_note(note);
        }
        LawFailure::Violation(Box::new(diagnostic.with_help(
            "the network merges partial states in any order and grouping, starting from `identity`; merge must give the same state regardless",
        )))
    }
}

fn test_laws(module: &Module, plan: &AggregatePlan, options: LawOptions) -> Result<usize, LawFailure> {
    let tester = LawTester { interp: Interpreter::new(module), plan };
    let mut rng = Rng::new(options.seed);
    // Reachable states: lifted records, then merges of random pairs of earlier states.
    let (lifts, pool_merges, cases) = law_samples(work(module, plan.lift), work(module, plan.merge), options);
    let mut pool: Vec<Vec<Slot>> = vec![plan.identity.clone()];
    for _ in 0..lifts {
        let record = random_args(&mut rng, module.function(plan.lift));
        match tester.interp.call(plan.lift, record) {
            Ok(state) => pool.push(state),
            // A record the program rejects (a runtime fault in lift) is the input's fault, not
            // a law violation; such records never reach merge.
            Err(RuntimeError::Fault { .. }) => continue,
            Err(RuntimeError::Internal(error)) => return Err(LawFailure::Internal(error)),
        }
    }
    for _ in 0..pool_merges {
        let (a, b) = (pool[rng.below(pool.len())].clone(), pool[rng.below(pool.len())].clone());
        pool.push(tester.merge(&a, &b)?);
    }
    let identity = &plan.identity;
    for _ in 0..cases {
        let a = &pool[rng.below(pool.len())];
        let b = &pool[rng.below(pool.len())];
        let c = &pool[rng.below(pool.len())];
        let (ab, ba) = (tester.merge(a, b)?, tester.merge(b, a)?);
        if !approx_equal(&ab, &ba) {
            return Err(tester.violation(
                Code::E0501,
                "commutativity: merge(a, b) != merge(b, a)",
                vec![
                    format!("a = {}", show_state(plan, a)),
                    format!("b = {}", show_state(plan, b)),
                    format!("merge(a, b) = {}", show_state(plan, &ab)),
                    format!("merge(b, a) = {}", show_state(plan, &ba)),
                ],
            ));
        }
        let (left, bc) = (tester.merge(&ab, c)?, tester.merge(b, c)?);
        let right = tester.merge(a, &bc)?;
        if !approx_equal(&left, &right) {
            return Err(tester.violation(
                Code::E0502,
                "associativity: merge(merge(a, b), c) != merge(a, merge(b, c))",
                vec![
                    format!("a = {}", show_state(plan, a)),
                    format!("b = {}", show_state(plan, b)),
                    format!("c = {}", show_state(plan, c)),
                    format!("merge(merge(a, b), c) = {}", show_state(plan, &left)),
                    format!("merge(a, merge(b, c)) = {}", show_state(plan, &right)),
                ],
            ));
        }
        let with_identity = tester.merge(identity, a)?;
        if !approx_equal(&with_identity, a) {
            return Err(tester.violation(
                Code::E0503,
                "the identity law: merge(identity, a) != a",
                vec![
                    format!("identity = {}", show_state(plan, identity)),
                    format!("a = {}", show_state(plan, a)),
                    format!("merge(identity, a) = {}", show_state(plan, &with_identity)),
                ],
            ));
        }
    }
    Ok(cases)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cheap_merges_get_every_sample_and_expensive_ones_fewer_but_some() {
        let options = LawOptions::default();
        assert_eq!(law_samples(10, 10, options), (POOL_SAMPLES, POOL_SAMPLES, 2_000));
        let (lifts, merges, cases) = law_samples(10, 1_000_000, options);
        assert_eq!(lifts, POOL_SAMPLES);
        assert!((MIN_LAW_SAMPLES..POOL_SAMPLES).contains(&merges));
        assert!((MIN_LAW_SAMPLES..2_000).contains(&cases));
        // The cases fit in half the budget.
        assert!((cases as u128) * MERGES_PER_CASE * 1_000_000 <= options.work / 2);
        assert_eq!(law_samples(u128::MAX, u128::MAX, options), (MIN_LAW_SAMPLES, MIN_LAW_SAMPLES, MIN_LAW_SAMPLES));
        // Asking for fewer cases than the minimum is honoured.
        assert_eq!(law_samples(1, 1, LawOptions { cases: 1, ..options }).2, 1);
    }
}
