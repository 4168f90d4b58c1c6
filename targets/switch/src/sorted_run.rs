//! Recognising merges of sorted runs (top-k, bottom-k) and proving them equal to repeated
//! insertion, so that they can lower onto an insertion chain (spec.md section 15.3, step 2).
//!
//! The canonical top-k merge (`examples/top_k.naas`) is the merge step of merge sort: it
//! reads `a[i]` and `b[j]` at indexes chosen by earlier comparisons. It is recognised in two
//! steps, neither of which guesses:
//! 1. *Shape* (on the unrolled merge): the merge only compares elements of its two input
//!    arrays with each other, computes indexes from constants and those comparisons, and
//!    returns an array whose every element is an element of an input. Such a merge commutes
//!    with every strictly increasing map of the values: its result depends only on the *order
//!    type* of its inputs (which elements are smaller than, equal to or larger than which).
//! 2. *Proof* (with the interpreter): on every order type of two sorted runs (largest first
//!    for the K largest, smallest first for the K smallest), the merge returns the first K of
//!    the sorted union. The order types of two sorted runs of K values are enumerated
//!    exactly, each by one representative (ranks 0, 1, ...); agreeing on all of them is
//!    agreeing on every pair of sorted runs, by step 1. The identity must be K copies of the
//!    element type's smallest (largest) value and `lift` must return a run (one value, then
//!    that padding), so every state the program makes is a sorted run.
//!
//! Inserting the values of a run one by one into a sorted chain of K registers (each element
//! keeps the larger value and passes the smaller on) also yields the first K of the sorted
//! union, so a proved merge equals repeated insertion.

use std::collections::HashMap;

use naas_ir::decompose::{AggregatePlan, MergeOp};
use naas_ir::interp::{Interpreter, Slot};
use naas_ir::ir::{BinaryOp, Expr, Function, Operand, Scalar, ScalarTy, Stmt, UnaryOp, Var, VarTy};
use naas_ir::Compiled;
use naas_lang::types::IntTy;

/// The most order types of two sorted runs the proof runs the merge on: 287,648 for K = 6,
/// ten times as many for K = 7 (a K above 6 is reported with this limit).
pub const MAX_ORDER_TYPES: u64 = 300_000;

/// The longest runs whose shape is checked (for a note saying that K is over the proof's
/// limit); longer ones are not this form.
pub const SHAPE_LIMIT: u32 = 64;

/// A proved merge of sorted runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SortedRun {
    /// Elements of the run (the state's one array field).
    pub k: u32,
    /// The element type.
    pub elem: IntTy,
    /// True for the K largest (runs sorted largest first, padded with the type's minimum).
    pub max: bool,
}

/// What [`recognise`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recognition {
    /// Not a merge of sorted runs' shape: the ordinary checks apply.
    NotThisForm,
    Proved(SortedRun),
    /// The shape of a merge of sorted runs, but not one (or not provably): why, for a note on
    /// the diagnostic at the construct.
    NearMiss(String),
}

/// Recognises and proves a merge of sorted runs (see the module comment). `merge` and `lift`
/// are the unrolled functions of `plan`.
pub fn recognise(compiled: &Compiled, merge: &Function, lift: &Function, plan: &AggregatePlan) -> Recognition {
    let [field] = plan.state.fields.as_slice() else { return Recognition::NotThisForm };
    let VarTy::Array(ScalarTy::Int(elem), len) = field.ty else { return Recognition::NotThisForm };
    // The shape check copies the local arrays at every branch of the unrolled merge (time
    // K^2); runs longer than SHAPE_LIMIT are far over the proof's limit anyway.
    if field.merge != MergeOp::Custom || merge.params.len() != 2 || len > SHAPE_LIMIT || !order_invariant(merge) {
        return Recognition::NotThisForm;
    }
    let k = len;
    let what = "this merge compares elements of the two runs and returns elements of them, like a merge of sorted runs";
    let padding = |max: bool| if max { elem.min_value() } else { elem.max_value() };
    let identity: Option<Vec<i128>> = match plan.identity.as_slice() {
        [Slot::Array(items)] => items
            .iter()
            .map(|s| match s {
                Scalar::Int(_, v) => Some(*v),
                _ => None,
            })
            .collect(),
        _ => None,
    };
    let max = match identity.as_deref() {
        Some(values) if values.iter().all(|v| *v == padding(true)) => true,
        Some(values) if values.iter().all(|v| *v == padding(false)) => false,
        _ => {
            return Recognition::NearMiss(format!(
                "{what}, but its identity is not {k} copies of {} (the K largest) or of {} (the K smallest)",
                elem.min_value(),
                elem.max_value()
            ))
        }
    };
    if !lift_makes_a_run(lift, k, padding(max)) {
        return Recognition::NearMiss(format!(
            "{what}, but `lift` does not return a run: one value in element 0 and {} in every other element",
            padding(max)
        ));
    }
    // Counting takes k^4 steps: a large K is over the limit without counting.
    let types = if k <= 16 { order_types(k) } else { u64::MAX };
    debug_assert!(k <= SHAPE_LIMIT);
    if types > MAX_ORDER_TYPES {
        let count = if types == u64::MAX { "far more".to_string() } else { types.to_string() };
        return Recognition::NearMiss(format!(
            "{what}; it is proved by running it on every order of two sorted runs, and runs of {k} elements have {count} orders, more than the limit of {MAX_ORDER_TYPES} (at most 6 elements)"
        ));
    }
    let interp = Interpreter::new(&compiled.optimized);
    let mut failure = None;
    each_order_type(k as usize, &mut |a: &[i128], b: &[i128]| {
        // Rank r is the r-th largest value for the K largest (runs largest first).
        let value = |rank: i128| if max { 2 * i128::from(k) - rank } else { rank };
        let a: Vec<i128> = a.iter().map(|r| value(*r)).collect();
        let b: Vec<i128> = b.iter().map(|r| value(*r)).collect();
        let mut want: Vec<i128> = a.iter().chain(&b).copied().collect();
        want.sort_unstable_by(|x, y| if max { y.cmp(x) } else { x.cmp(y) });
        want.truncate(k as usize);
        let slot = |values: &[i128]| Slot::Array(values.iter().map(|v| Scalar::Int(elem, *v)).collect());
        let got = match interp.call(plan.merge, vec![slot(&a), slot(&b)]).as_deref() {
            Ok([Slot::Array(items)]) => items
                .iter()
                .map(|s| match s {
                    Scalar::Int(_, v) => *v,
                    _ => i128::MIN,
                })
                .collect::<Vec<i128>>(),
            Ok(_) => Vec::new(),
            Err(error) => {
                failure = Some(format!("{what}, but it faults on a = {a:?}, b = {b:?}: {error}"));
                return false;
            }
        };
        if got != want {
            failure = Some(format!(
                "{what}, but it is not one: for the sorted runs a = {a:?} and b = {b:?} it returns {got:?}, where the {k} {} are {want:?}",
                if max { "largest" } else { "smallest" }
            ));
            return false;
        }
        true
    });
    match failure {
        Some(note) => Recognition::NearMiss(note),
        None => Recognition::Proved(SortedRun { k, elem, max }),
    }
}

/// What a value of the merge is, for [`order_invariant`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Bool,
    /// An element of one of the two input runs.
    Elem,
    /// An integer computed from constants and comparisons only (an index or a counter).
    Index,
    /// A constant array filling (`[I64_MIN] * K`), or a mix of that and elements.
    Fill,
    Mixed,
}

/// The class of an array element that is `a` on one path and `b` on another.
fn join(a: Class, b: Class) -> Class {
    if a == b {
        a
    } else {
        Class::Mixed
    }
}

/// The abstract state: scalar variables' classes, and each local array's elements' classes.
#[derive(Clone, Debug, Default, PartialEq)]
struct State {
    scalars: HashMap<Var, Class>,
    arrays: HashMap<Var, Vec<Class>>,
    returned: bool,
}

/// Whether the merge's result depends only on the order type of its inputs: it compares
/// elements of the input arrays only with each other, its integers other than elements
/// (indexes, counters) come from constants, `+`, `-` and conditionals on comparisons, and it
/// returns one array every element of which is an element of an input.
fn order_invariant(merge: &Function) -> bool {
    let mut state = State::default();
    let params: Vec<Var> = merge.params.clone();
    fn expr(e: &Expr, params: &[Var], state: &State) -> Option<Class> {
        match e {
            Expr::Const(Scalar::Bool(_)) => Some(Class::Bool),
            Expr::Const(Scalar::Int(..)) => Some(Class::Index),
            Expr::Const(Scalar::Float(..)) => None,
            Expr::Var(v) => state.scalars.get(v).copied(),
            Expr::Load { array, offset } => {
                if expr(offset, params, state)? != Class::Index {
                    return None;
                }
                if params.contains(array) {
                    return Some(Class::Elem);
                }
                let elems = state.arrays.get(array)?;
                match offset.as_const() {
                    Some(Scalar::Int(_, i)) => usize::try_from(i).ok().and_then(|i| elems.get(i).copied()),
                    _ => elems.iter().copied().reduce(join),
                }
            }
            Expr::CheckIndex { index, .. } => (expr(index, params, state)? == Class::Index).then_some(Class::Index),
            Expr::Unary { op, arg } => match (op, expr(arg, params, state)?) {
                (UnaryOp::Not, Class::Bool) => Some(Class::Bool),
                (UnaryOp::Neg, Class::Index) => Some(Class::Index),
                _ => None,
            },
            Expr::Binary { op: BinaryOp::Add | BinaryOp::Sub, lhs, rhs, .. } => {
                (expr(lhs, params, state)? == Class::Index && expr(rhs, params, state)? == Class::Index)
                    .then_some(Class::Index)
            }
            // A counter of another integer type is converted to an index: still a function
            // of the comparisons alone. An element is never converted (that could wrap).
            Expr::Cast { to: ScalarTy::Int(_), arg } => {
                (expr(arg, params, state)? == Class::Index).then_some(Class::Index)
            }
            Expr::Binary { .. } | Expr::Cast { .. } => None,
            Expr::Compare { lhs, rhs, .. } => match (expr(lhs, params, state)?, expr(rhs, params, state)?) {
                (Class::Elem, Class::Elem) | (Class::Index, Class::Index) => Some(Class::Bool),
                _ => None,
            },
            Expr::And(lhs, rhs) | Expr::Or(lhs, rhs) => (expr(lhs, params, state)? == Class::Bool
                && expr(rhs, params, state)? == Class::Bool)
                .then_some(Class::Bool),
            Expr::IfElse { cond, then, orelse } | Expr::Select { cond, then, orelse } => {
                if expr(cond, params, state)? != Class::Bool {
                    return None;
                }
                let (then, orelse) = (expr(then, params, state)?, expr(orelse, params, state)?);
                (then == orelse).then_some(then)
            }
        }
    }
    fn block(stmts: &[Stmt], params: &[Var], state: &mut State) -> Option<()> {
        for stmt in stmts {
            if state.returned {
                return None;
            }
            match stmt {
                Stmt::Assign { dst, value } => {
                    let class = expr(value, params, state)?;
                    if matches!(class, Class::Fill | Class::Mixed) {
                        return None;
                    }
                    state.scalars.insert(*dst, class);
                }
                Stmt::FillArray { dst, value } => {
                    if params.contains(dst) || expr(value, params, state)? != Class::Index {
                        return None;
                    }
                    let len = state.arrays.get(dst).map(Vec::len).unwrap_or(0);
                    state.arrays.insert(*dst, vec![Class::Fill; len]);
                }
                Stmt::CopyArray { dst, src } => {
                    if params.contains(dst) || params.contains(src) {
                        return None;
                    }
                    let elems = state.arrays.get(src)?.clone();
                    state.arrays.insert(*dst, elems);
                }
                Stmt::Store { array, offset, value } => {
                    let class = expr(value, params, state)?;
                    if expr(offset, params, state)? != Class::Index || !matches!(class, Class::Elem) {
                        return None;
                    }
                    let Some(Scalar::Int(_, i)) = offset.as_const() else { return None };
                    let slot = state.arrays.get_mut(array)?.get_mut(usize::try_from(i).ok()?)?;
                    *slot = class;
                }
                Stmt::If { cond, then, orelse } => {
                    if expr(cond, params, state)? != Class::Bool {
                        return None;
                    }
                    let mut left = state.clone();
                    block(then, params, &mut left)?;
                    let mut right = state.clone();
                    block(orelse, params, &mut right)?;
                    if left.returned || right.returned {
                        return None;
                    }
                    // A variable's class must not depend on the path taken.
                    if left.scalars != right.scalars {
                        return None;
                    }
                    for (var, elems) in right.arrays {
                        let joined = match left.arrays.get(&var) {
                            Some(other) => other.iter().zip(&elems).map(|(a, b)| join(*a, *b)).collect(),
                            None => elems,
                        };
                        left.arrays.insert(var, joined);
                    }
                    *state = left;
                }
                Stmt::Block { body, .. } => block(body, params, state)?,
                Stmt::Return(operands) => match operands.as_slice() {
                    [Operand::Array(var)]
                        if state.arrays.get(var).is_some_and(|e| e.iter().all(|c| *c == Class::Elem)) =>
                    {
                        state.returned = true;
                    }
                    _ => return None,
                },
                Stmt::Loop { .. } | Stmt::Break(_) | Stmt::Continue(_) | Stmt::Call { .. } => return None,
            }
        }
        Some(())
    }
    // Every IR variable is zero before the body runs: local arrays start as fillings of
    // their length, scalars as the integer 0 (or false).
    for (index, decl) in merge.vars.iter().enumerate() {
        let var = Var(index as u32);
        if params.contains(&var) {
            continue;
        }
        match decl.ty {
            VarTy::Array(_, len) => {
                state.arrays.insert(var, vec![Class::Fill; len as usize]);
            }
            VarTy::Scalar(ScalarTy::Bool) => {
                state.scalars.insert(var, Class::Bool);
            }
            VarTy::Scalar(ScalarTy::Int(_)) => {
                state.scalars.insert(var, Class::Index);
            }
            VarTy::Scalar(ScalarTy::Float(_)) => return false,
        }
    }
    block(&merge.body, &params, &mut state).is_some() && state.returned
}

/// Whether the unrolled `lift` returns a run: an array whose elements 1.. are `padding` on
/// every path (element 0 may be anything).
fn lift_makes_a_run(lift: &Function, k: u32, padding: i128) -> bool {
    /// Each local array's elements: a known constant, or not known.
    type Arrays = HashMap<Var, Vec<Option<i128>>>;
    fn block(stmts: &[Stmt], arrays: &mut Arrays, ok: &mut Option<bool>, k: u32, padding: i128) {
        for stmt in stmts {
            match stmt {
                Stmt::FillArray { dst, value } => {
                    let len = arrays.get(dst).map_or(0, Vec::len);
                    let known = match value.as_const() {
                        Some(Scalar::Int(_, v)) => Some(v),
                        _ => None,
                    };
                    arrays.insert(*dst, vec![known; len]);
                }
                Stmt::CopyArray { dst, src } => {
                    let elems = arrays.get(src).cloned().unwrap_or_default();
                    arrays.insert(*dst, elems);
                }
                Stmt::Store { array, offset, value } => {
                    let known = match value.as_const() {
                        Some(Scalar::Int(_, v)) => Some(v),
                        _ => None,
                    };
                    let Some(elems) = arrays.get_mut(array) else { continue };
                    match offset.as_const() {
                        Some(Scalar::Int(_, i)) => {
                            if let Some(slot) = usize::try_from(i).ok().and_then(|i| elems.get_mut(i)) {
                                *slot = known;
                            }
                        }
                        _ => elems.iter_mut().for_each(|slot| *slot = None),
                    }
                }
                Stmt::If { then, orelse, .. } => {
                    let mut left = arrays.clone();
                    block(then, &mut left, ok, k, padding);
                    let mut right = arrays.clone();
                    block(orelse, &mut right, ok, k, padding);
                    for (var, elems) in left {
                        let other = right.remove(&var).unwrap_or_default();
                        let joined = elems.iter().zip(&other).map(|(a, b)| if a == b { *a } else { None }).collect();
                        arrays.insert(var, joined);
                    }
                }
                Stmt::Block { body, .. } => block(body, arrays, ok, k, padding),
                Stmt::Return(operands) => {
                    let fine = match operands.as_slice() {
                        [Operand::Array(var)] => arrays.get(var).is_some_and(|elems| {
                            elems.len() == k as usize && elems.iter().skip(1).all(|e| *e == Some(padding))
                        }),
                        _ => false,
                    };
                    *ok = Some(ok.unwrap_or(true) && fine);
                }
                Stmt::Assign { .. } => {}
                // Anything that could change an array in ways not followed here.
                Stmt::Loop { .. } | Stmt::Break(_) | Stmt::Continue(_) | Stmt::Call { .. } => *ok = Some(false),
            }
        }
    }
    let mut arrays = Arrays::new();
    for (index, decl) in lift.vars.iter().enumerate() {
        if let VarTy::Array(_, len) = decl.ty {
            arrays.insert(Var(index as u32), vec![Some(0); len as usize]);
        }
    }
    let mut ok = None;
    block(&lift.body, &mut arrays, &mut ok, k, padding);
    ok == Some(true)
}

/// The order types of two sorted runs of `k` values each: pairs of non-increasing rank
/// sequences whose ranks together are exactly 0, 1, ..., m - 1 for some m.
pub fn order_types(k: u32) -> u64 {
    // types(ra, rb): ways to finish with ra values of a and rb of b left, taking at each next
    // rank ca of a's and cb of b's values, at least one in all.
    let k = k as usize;
    let mut types = vec![vec![0u64; k + 1]; k + 1];
    for ra in 0..=k {
        for rb in 0..=k {
            if ra == 0 && rb == 0 {
                types[ra][rb] = 1;
                continue;
            }
            let mut total = 0u64;
            for ca in 0..=ra {
                for cb in 0..=rb {
                    if ca + cb > 0 {
                        total = total.saturating_add(types[ra - ca][rb - cb]);
                    }
                }
            }
            types[ra][rb] = total;
        }
    }
    types[k][k]
}

/// Calls `f(a, b)` on one representative of every order type of two runs of `k` values
/// (ranks, 0 first: rank 0 is the first value of a run), until `f` returns false.
fn each_order_type(k: usize, f: &mut dyn FnMut(&[i128], &[i128]) -> bool) {
    fn go(
        k: usize,
        rank: i128,
        a: &mut Vec<i128>,
        b: &mut Vec<i128>,
        f: &mut dyn FnMut(&[i128], &[i128]) -> bool,
    ) -> bool {
        if a.len() == k && b.len() == k {
            return f(a, b);
        }
        for ca in 0..=k - a.len() {
            for cb in 0..=k - b.len() {
                if ca + cb == 0 {
                    continue;
                }
                let (la, lb) = (a.len(), b.len());
                a.extend(std::iter::repeat_n(rank, ca));
                b.extend(std::iter::repeat_n(rank, cb));
                let more = go(k, rank + 1, a, b, f);
                a.truncate(la);
                b.truncate(lb);
                if !more {
                    return false;
                }
            }
        }
        true
    }
    go(k, 0, &mut Vec::with_capacity(k), &mut Vec::with_capacity(k), f);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The count matches an independent enumeration (all pairs of non-increasing sequences
    /// over 0..2k, kept when their union is 0..m) and the enumeration visits each once.
    #[test]
    fn order_types_are_counted_and_enumerated_exactly() {
        for k in 1..=3usize {
            let mut seen = std::collections::HashSet::new();
            each_order_type(k, &mut |a, b| {
                assert!(seen.insert((a.to_vec(), b.to_vec())));
                true
            });
            let mut brute = 0u64;
            let limit = 2 * k as i128;
            let mut runs = vec![Vec::new()];
            for _ in 0..k {
                runs = runs
                    .into_iter()
                    .flat_map(|run: Vec<i128>| {
                        let low = run.last().copied().unwrap_or(0);
                        (low..limit).map(move |v| {
                            let mut next = run.clone();
                            next.push(v);
                            next
                        })
                    })
                    .collect();
            }
            for a in &runs {
                for b in &runs {
                    let mut used: Vec<i128> = a.iter().chain(b).copied().collect();
                    used.sort_unstable();
                    used.dedup();
                    if used.iter().enumerate().all(|(i, v)| *v == i as i128) {
                        brute += 1;
                        assert!(seen.contains(&(a.clone(), b.clone())));
                    }
                }
            }
            assert_eq!(order_types(k as u32), brute);
            assert_eq!(seen.len() as u64, brute);
        }
        assert_eq!([order_types(4), order_types(5), order_types(6)], [2_568, 26_928, 287_648]);
    }
}
