//! The one traversal of nested IR blocks. `If`, `Loop` and `Block` hold statement lists; every
//! pass that must reach all statements goes through these helpers instead of repeating the
//! recursion over the three constructs:
//!
//! - [`for_each_stmt`] and [`for_each_stmt_mut`] visit every statement, parents before their
//!   children (analyses, in-place rewrites);
//! - [`map_block`] rebuilds a block bottom-up, letting a pass replace each statement by any
//!   number of statements once its nested blocks have been rebuilt (transformations).
//!
//! A new construct with nested statements is added to [`Stmt::blocks`] and
//! [`Stmt::blocks_mut`], and every pass sees it.

use std::ops::ControlFlow;

use crate::ir::Stmt;

impl Stmt {
    /// The statement lists nested directly in this statement (the branches of an `if`, the
    /// body of a loop or block).
    pub fn blocks(&self) -> impl Iterator<Item = &Vec<Stmt>> {
        let (first, second) = match self {
            Stmt::If { then, orelse, .. } => (Some(then), Some(orelse)),
            Stmt::Loop { body, .. } | Stmt::Block { body, .. } => (Some(body), None),
            _ => (None, None),
        };
        first.into_iter().chain(second)
    }

    /// [`Stmt::blocks`], mutably.
    pub fn blocks_mut(&mut self) -> impl Iterator<Item = &mut Vec<Stmt>> {
        let (first, second) = match self {
            Stmt::If { then, orelse, .. } => (Some(then), Some(orelse)),
            Stmt::Loop { body, .. } | Stmt::Block { body, .. } => (Some(body), None),
            _ => (None, None),
        };
        first.into_iter().chain(second)
    }
}

/// Calls `visit` on every statement of `block`, nested ones included, each before the
/// statements nested in it, in program order.
pub fn for_each_stmt<'a>(block: &'a [Stmt], visit: &mut impl FnMut(&'a Stmt)) {
    for stmt in block {
        visit(stmt);
        for nested in stmt.blocks() {
            for_each_stmt(nested, visit);
        }
    }
}

/// Calls `visit` on every statement of `block`, nested ones included, each before the
/// statements nested in it (so `visit` may replace a statement's nested blocks, and the
/// replacements are visited).
pub fn for_each_stmt_mut(block: &mut [Stmt], visit: &mut impl FnMut(&mut Stmt)) {
    for stmt in block {
        visit(stmt);
        for nested in stmt.blocks_mut() {
            for_each_stmt_mut(nested, visit);
        }
    }
}

/// Rebuilds `block` bottom-up: each statement's nested blocks are rebuilt first, then
/// `rewrite` receives the statement and pushes what replaces it onto `out` (the statement
/// itself, nothing, or several statements; they are not visited again). Returning
/// `ControlFlow::Break(())` drops the rest of the block (the statements after an
/// unconditional exit), which is then not visited.
pub fn map_block(block: Vec<Stmt>, rewrite: &mut impl FnMut(Stmt, &mut Vec<Stmt>) -> ControlFlow<()>) -> Vec<Stmt> {
    let mut out = Vec::with_capacity(block.len());
    for mut stmt in block {
        for nested in stmt.blocks_mut() {
            let taken = std::mem::take(nested);
            *nested = map_block(taken, rewrite);
        }
        if rewrite(stmt, &mut out).is_break() {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Expr, Label, Var};

    fn assign(var: u32) -> Stmt {
        Stmt::Assign { dst: Var(var), value: Expr::i64(i128::from(var)) }
    }

    fn sample() -> Vec<Stmt> {
        vec![
            assign(0),
            Stmt::If {
                cond: Expr::Const(crate::ir::Scalar::Bool(true)),
                then: vec![assign(1), Stmt::Block { label: Label(0), body: vec![assign(2)] }],
                orelse: vec![assign(3)],
            },
            Stmt::Loop { label: Label(1), counter: Var(9), start: 0, stop: 2, step: 1, body: vec![assign(4)] },
        ]
    }

    fn assigned(block: &[Stmt]) -> Vec<u32> {
        let mut out = Vec::new();
        for_each_stmt(block, &mut |stmt| {
            if let Stmt::Assign { dst, .. } = stmt {
                out.push(dst.0);
            }
        });
        out
    }

    #[test]
    fn every_nested_statement_is_visited_in_program_order() {
        assert_eq!(assigned(&sample()), [0, 1, 2, 3, 4]);
        let mut kinds = Vec::new();
        for_each_stmt(&sample(), &mut |stmt| kinds.push(std::mem::discriminant(stmt)));
        assert_eq!(kinds.len(), 8);
    }

    #[test]
    fn in_place_visits_reach_nested_statements() {
        let mut block = sample();
        for_each_stmt_mut(&mut block, &mut |stmt| {
            if let Stmt::Assign { dst, .. } = stmt {
                dst.0 += 10;
            }
        });
        assert_eq!(assigned(&block), [10, 11, 12, 13, 14]);
    }

    #[test]
    fn map_rebuilds_bottom_up_and_stops_at_break() {
        // Drop even assignments, double odd ones, and flatten blocks into their parent.
        let mapped = map_block(sample(), &mut |stmt, out| {
            match stmt {
                Stmt::Assign { dst, .. } if dst.0 % 2 == 0 => {}
                Stmt::Assign { dst, .. } => out.extend([assign(dst.0), assign(dst.0)]),
                Stmt::Block { body, .. } => out.extend(body),
                other => out.push(other),
            }
            ControlFlow::Continue(())
        });
        assert_eq!(assigned(&mapped), [1, 1, 3, 3]);
        let truncated = map_block(sample(), &mut |stmt, out| {
            let stop = matches!(stmt, Stmt::If { .. });
            out.push(stmt);
            if stop {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!(assigned(&truncated), [0, 1, 2, 3]);
    }
}
