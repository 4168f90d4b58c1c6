//! Semantic checking: names, types, definite assignment, aggregate forms, termination and
//! resource bounds. Input is the untyped `Module`; output is a [`Program`] whose bodies are
//! typed ASTs (`Block<Type>`) with every type concrete and every constant folded.
//!
//! The checker reports every independent error it finds: each item is checked on its own,
//! and an expression that failed gets `Type::Error`, which unifies with anything so that
//! one mistake is reported once.

mod aggregate;
mod bounds;
pub mod builtins;
mod call;
pub mod consteval;
mod env;
mod expr;
mod infer;
mod stmt;
mod zonk;

use std::sync::Arc;

use crate::ast::{Block, Expr, Item, Module};
use crate::diagnostics::{self, Diagnostic};
use crate::span::Span;
use crate::types::{RecordType, Type};
use crate::value::Value;

pub use bounds::{is_aggregate_call, range_bounds, Cost};
pub use env::{ConstValue, MAX_ARRAY_LEN};
pub use stmt::trip_count;

/// Limits the bounds checker enforces; `naasc check --max-ops/--max-bytes` set them.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// Worst-case operation count allowed for one call of any function or aggregate part.
    pub max_ops: u128,
    /// Largest stack frame (all parameters and locals of one function) in bytes.
    pub max_bytes: u64,
}

impl Default for CheckOptions {
    fn default() -> CheckOptions {
        CheckOptions { max_ops: 1_000_000, max_bytes: 1 << 20 }
    }
}

/// A checked program: everything later stages need, nothing they must re-derive.
#[derive(Debug)]
pub struct Program {
    pub records: Vec<Arc<RecordType>>,
    pub consts: Vec<Const>,
    pub functions: Vec<Function>,
    pub aggregates: Vec<Aggregate>,
    /// Worst-case costs of every function and aggregate part, in source order.
    pub costs: Vec<Cost>,
}

#[derive(Debug)]
pub struct Const {
    pub name: String,
    pub value: ConstValue,
    pub span: Span,
}

pub type LocalId = usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalKind {
    Param,
    Var,
    /// A `for` variable: assigned by the loop only.
    LoopVar,
}

#[derive(Clone, Debug)]
pub struct Local {
    pub name: String,
    pub ty: Type,
    pub kind: LocalKind,
    /// Where it is first declared or assigned.
    pub span: Span,
}

/// A checked `def`. Names in `body` refer to `locals` (function scope, as in Python);
/// constants are already folded into the tree.
#[derive(Clone, Debug)]
pub struct Function {
    pub name: String,
    pub span: Span,
    /// The parameters are the first `params` entries of `locals`.
    pub params: usize,
    pub ret: Type,
    pub locals: Vec<Local>,
    pub body: Block<Type>,
}

impl Function {
    pub fn local(&self, name: &str) -> Option<(LocalId, &Local)> {
        self.locals.iter().enumerate().find(|(_, local)| local.name == name)
    }

    pub fn param_types(&self) -> impl Iterator<Item = &Type> {
        self.locals[..self.params].iter().map(|local| &local.ty)
    }
}

#[derive(Clone, Debug)]
pub struct Aggregate {
    pub name: String,
    pub span: Span,
    /// The record fields an input supplies, in order.
    pub params: Vec<Local>,
    pub ret: Type,
    pub form: AggregateForm,
}

#[derive(Clone, Debug)]
pub struct CustomAggregate {
    /// The state type `S`: what `lift` returns and `merge` combines.
    pub state: Type,
    /// The value of `identity`, the unit of `merge`.
    pub identity: Value,
    pub identity_span: Span,
    pub lift: Function,
    pub merge: Function,
    pub finish: Option<Function>,
}

#[derive(Clone, Debug)]
pub enum AggregateForm {
    /// `return` of an expression over aggregate calls (`min(e)`, `avg(e)`, ...). Parameter
    /// names inside the calls refer to `Aggregate::params`.
    Builtin { result: Expr<Type> },
    /// `identity`, `lift`, `merge` and optionally `finish`.
    Custom(Box<CustomAggregate>),
}

/// Checks a parsed module. Returns the program and its warnings, or every error found.
pub fn check(module: &Module, options: &CheckOptions) -> Result<(Program, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut diagnostics = Vec::new();
    let mut env = env::Env::default();
    env.declare_items(module, &mut diagnostics);

    let mut consts = Vec::new();
    for item in &module.items {
        match item {
            Item::Const(def) => {
                if let Some(value) = env.define_const(def, &mut diagnostics) {
                    consts.push(Const { name: def.name.name.clone(), value, span: def.span });
                }
            }
            Item::Class(def) => env.define_record(def, &mut diagnostics),
            Item::Function(_) | Item::Aggregate(_) => {}
        }
    }
    for item in &module.items {
        if let Item::Function(def) = item {
            env.declare_signature(def, &mut diagnostics);
        }
    }

    let mut functions = Vec::new();
    let mut aggregates = Vec::new();
    let mut calls = bounds::CallGraph::default();
    for item in &module.items {
        match item {
            Item::Function(def) => {
                if let Some((function, called)) = stmt::check_function(&env, def, None, &mut diagnostics) {
                    calls.add(&function.name, called);
                    functions.push(function);
                }
            }
            Item::Aggregate(def) => {
                if let Some((aggregate, parts_calls)) = aggregate::check_aggregate(&env, def, &mut diagnostics) {
                    for (part, called) in parts_calls {
                        calls.add(&part, called);
                    }
                    aggregates.push(aggregate);
                }
            }
            Item::Const(_) | Item::Class(_) => {}
        }
    }

    let costs = bounds::check_bounds(&functions, &aggregates, &calls, options, &mut diagnostics);

    diagnostics::sort_and_dedup(&mut diagnostics);
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(diagnostics);
    }
    let records = env.records_in_order();
    Ok((Program { records, consts, functions, aggregates, costs }, diagnostics))
}
