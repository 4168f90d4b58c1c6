//! The IR's textual form, as `naasc compile --emit ir` prints it:
//!
//! ```text
//! fn clamp(%x: i64, %lo: i64, %hi: i64) -> (i64)
//!   if lt(%x, %lo)
//!     return %lo
//! ```
//!
//! Variables print as `%name`, with `.N` appended when a name repeats; constants carry their
//! type (`1:i64`) except bools.

use std::collections::HashMap;
use std::fmt::Write;

use crate::ir::{Expr, Function, Module, Operand, Scalar, Stmt, Var};

pub fn print_module(module: &Module) -> String {
    let mut out = String::new();
    for (i, function) in module.functions.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&print_function(function, module));
    }
    out
}

pub fn print_function(function: &Function, module: &Module) -> String {
    let names = var_names(function);
    let mut printer = Printer { out: String::new(), names: &names, module };
    let params: Vec<String> =
        function.params.iter().map(|p| format!("{}: {}", names[p.index()], function.var_ty(*p))).collect();
    let results: Vec<String> = function.results.iter().map(ToString::to_string).collect();
    let _ = writeln!(printer.out, "fn {}({}) -> ({})", function.name, params.join(", "), results.join(", "));
    let locals: Vec<String> = (0..function.vars.len())
        .filter(|i| !function.params.iter().any(|p| p.index() == *i))
        .map(|i| format!("{}: {}", names[i], function.vars[i].ty))
        .collect();
    if !locals.is_empty() {
        let _ = writeln!(printer.out, "  let {}", locals.join(", "));
    }
    printer.block(&function.body, 1);
    printer.out
}

/// `%name` for each variable, disambiguated with `.N` where names repeat.
fn var_names(function: &Function) -> Vec<String> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    function
        .vars
        .iter()
        .map(|decl| {
            let count = seen.entry(decl.name.as_str()).or_insert(0);
            *count += 1;
            if *count == 1 {
                format!("%{}", decl.name)
            } else {
                format!("%{}.{}", decl.name, *count - 1)
            }
        })
        .collect()
}

struct Printer<'a> {
    out: String,
    names: &'a [String],
    module: &'a Module,
}

impl Printer<'_> {
    fn var(&self, var: Var) -> String {
        self.names.get(var.index()).map_or_else(|| "%?".to_string(), Clone::clone)
    }

    fn indent(&mut self, depth: usize) {
        for _ in 0..depth {
            self.out.push_str("  ");
        }
    }

    fn block(&mut self, block: &[Stmt], depth: usize) {
        for stmt in block {
            self.stmt(stmt, depth);
        }
    }

    fn stmt(&mut self, stmt: &Stmt, depth: usize) {
        self.indent(depth);
        match stmt {
            Stmt::Assign { dst, value } => {
                let value = self.expr(value);
                let _ = writeln!(self.out, "{} = {value}", self.var(*dst));
            }
            Stmt::Store { array, offset, value } => {
                let (offset, value) = (self.expr(offset), self.expr(value));
                let _ = writeln!(self.out, "{}[{offset}] = {value}", self.var(*array));
            }
            Stmt::CopyArray { dst, src } => {
                let _ = writeln!(self.out, "{} = copy {}", self.var(*dst), self.var(*src));
            }
            Stmt::FillArray { dst, value } => {
                let value = self.expr(value);
                let _ = writeln!(self.out, "{} = fill {value}", self.var(*dst));
            }
            Stmt::If { cond, then, orelse } => {
                let cond = self.expr(cond);
                let _ = writeln!(self.out, "if {cond}");
                self.block(then, depth + 1);
                if !orelse.is_empty() {
                    self.indent(depth);
                    self.out.push_str("else\n");
                    self.block(orelse, depth + 1);
                }
            }
            Stmt::Loop { label, counter, start, stop, step, body } => {
                let _ =
                    writeln!(self.out, "loop @{} {} in range({start}, {stop}, {step})", label.0, self.var(*counter));
                self.block(body, depth + 1);
            }
            Stmt::Block { label, body } => {
                let _ = writeln!(self.out, "block @{}", label.0);
                self.block(body, depth + 1);
            }
            Stmt::Break(label) => {
                let _ = writeln!(self.out, "break @{}", label.0);
            }
            Stmt::Continue(label) => {
                let _ = writeln!(self.out, "continue @{}", label.0);
            }
            Stmt::Return(values) => {
                let values: Vec<String> = values.iter().map(|v| self.operand(v)).collect();
                let _ = writeln!(self.out, "return {}", values.join(", "));
            }
            Stmt::Call { func, args, results } => {
                let args: Vec<String> = args.iter().map(|a| self.operand(a)).collect();
                let results: Vec<String> = results.iter().map(|r| self.var(*r)).collect();
                let name = self.module.functions.get(func.0 as usize).map_or("?", |f| f.name.as_str());
                let _ = writeln!(self.out, "{} = call {name}({})", results.join(", "), args.join(", "));
            }
        }
    }

    fn operand(&self, operand: &Operand) -> String {
        match operand {
            Operand::Scalar(expr) => self.expr(expr),
            Operand::Array(var) => self.var(*var),
        }
    }

    fn expr(&self, expr: &Expr) -> String {
        match expr {
            Expr::Const(Scalar::Bool(value)) => if *value { "True" } else { "False" }.to_string(),
            Expr::Const(value) => format!("{value}:{}", value.ty().name()),
            Expr::Var(var) => self.var(*var),
            Expr::Load { array, offset } => format!("{}[{}]", self.var(*array), self.expr(offset)),
            Expr::Unary { op, arg } => format!("{}({})", op.name(), self.expr(arg)),
            Expr::Binary { op, lhs, rhs, .. } => format!("{}({}, {})", op.name(), self.expr(lhs), self.expr(rhs)),
            Expr::Compare { op, lhs, rhs } => format!("{}({}, {})", op.name(), self.expr(lhs), self.expr(rhs)),
            Expr::And(a, b) => format!("and({}, {})", self.expr(a), self.expr(b)),
            Expr::Or(a, b) => format!("or({}, {})", self.expr(a), self.expr(b)),
            Expr::IfElse { cond, then, orelse } => {
                format!("ifelse({}, {}, {})", self.expr(cond), self.expr(then), self.expr(orelse))
            }
            Expr::Select { cond, then, orelse } => {
                format!("select({}, {}, {})", self.expr(cond), self.expr(then), self.expr(orelse))
            }
            Expr::Cast { to, arg } => format!("{}({})", to.name(), self.expr(arg)),
            Expr::CheckIndex { index, len, .. } => format!("check({}, {len})", self.expr(index)),
        }
    }
}

/// An aggregate's state layout as `naasc compile --emit state` prints it: one line per
/// field with its type, offset, size, merge operator and idempotence, then how the merge
/// laws were established.
pub fn print_state(plan: &crate::decompose::AggregatePlan, laws: &crate::laws::LawStatus) -> String {
    let mut out = format!("aggregate {}: {} bytes, aligned to {}\n", plan.name, plan.state.size, plan.state.align);
    let width = plan.state.fields.iter().map(|f| f.name.len()).max().unwrap_or(5).max(5);
    let _ = writeln!(
        out,
        "  {:<width$}  {:<12}  {:>6}  {:>5}  {:<7}  idempotent",
        "field", "type", "offset", "bytes", "merge"
    );
    for field in &plan.state.fields {
        let _ = writeln!(
            out,
            "  {:<width$}  {:<12}  {:>6}  {:>5}  {:<7}  {}",
            field.name,
            field.ty.to_string(),
            field.offset,
            field.size_bytes(),
            field.merge.name(),
            if field.merge.idempotent() { "yes" } else { "no" }
        );
    }
    let identity: Vec<String> = plan.identity.iter().map(crate::laws::show_slot).collect();
    let _ = writeln!(out, "  identity: ({})", identity.join(", "));
    let _ = writeln!(out, "  merge laws: {laws}");
    out
}
