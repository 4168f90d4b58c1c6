//! Prints a syntax tree back as naas source. The output parses to the same tree (modulo
//! spans), which the round-trip property test checks; `explicit` mode parenthesises every
//! compound subexpression, which makes precedence visible in parser snapshots.

use std::fmt::Write;

use crate::ast::{
    AggItem, Arg, BinOp, Block, ClassDef, ConstDef, Expr, ExprKind, FunctionDef, Item, LogicOp, Module, Param, Stmt,
    StmtKind, TypeExpr, TypeExprKind, UnOp,
};

/// Prints a module with the fewest parentheses that preserve its structure.
pub fn print_module<A>(module: &Module<A>) -> String {
    Printer { out: String::new(), explicit: false }.module(module)
}

/// Prints a module with every compound subexpression parenthesised.
pub fn print_module_explicit<A>(module: &Module<A>) -> String {
    Printer { out: String::new(), explicit: true }.module(module)
}

pub fn print_expr<A>(expr: &Expr<A>) -> String {
    let mut printer = Printer { out: String::new(), explicit: false };
    printer.expr(expr, 0);
    printer.out
}

pub fn print_type(ty: &TypeExpr) -> String {
    let mut printer = Printer { out: String::new(), explicit: false };
    printer.type_expr(ty);
    printer.out
}

// Precedence levels, lowest first, following the grammar's expression non-terminals.
const IF_ELSE: u8 = 0;
const OR: u8 = 1;
const AND: u8 = 2;
const NOT: u8 = 3;
const COMPARE: u8 = 4;
const BIT_OR: u8 = 5;
const BIT_XOR: u8 = 6;
const BIT_AND: u8 = 7;
const SHIFT: u8 = 8;
const ARITH: u8 = 9;
const TERM: u8 = 10;
const UNARY: u8 = 11;
const POWER: u8 = 12;
const PRIMARY: u8 = 13;

fn binary_precedence(op: BinOp) -> u8 {
    match op {
        BinOp::BitOr => BIT_OR,
        BinOp::BitXor => BIT_XOR,
        BinOp::BitAnd => BIT_AND,
        BinOp::Shl | BinOp::Shr => SHIFT,
        BinOp::Add | BinOp::Sub => ARITH,
        BinOp::Mul | BinOp::Div | BinOp::FloorDiv | BinOp::Mod => TERM,
        BinOp::Pow => POWER,
    }
}

fn precedence<A>(expr: &Expr<A>) -> u8 {
    match &expr.kind {
        ExprKind::IfElse { .. } => IF_ELSE,
        ExprKind::Logic(LogicOp::Or, ..) => OR,
        ExprKind::Logic(LogicOp::And, ..) => AND,
        ExprKind::Unary(UnOp::Not, _) => NOT,
        ExprKind::Compare(..) => COMPARE,
        ExprKind::Binary(op, ..) => binary_precedence(*op),
        ExprKind::Unary(..) => UNARY,
        // A negative number prints with its sign, which binds like a unary minus.
        ExprKind::Int(value) if *value < 0 => UNARY,
        ExprKind::Float(value) if value.is_sign_negative() => UNARY,
        _ => PRIMARY,
    }
}

struct Printer {
    out: String,
    explicit: bool,
}

impl Printer {
    fn module<A>(mut self, module: &Module<A>) -> String {
        for (i, item) in module.items.iter().enumerate() {
            if i > 0 {
                self.out.push('\n');
            }
            match item {
                Item::Const(def) => self.const_def(def),
                Item::Class(def) => self.class_def(def),
                Item::Function(def) => self.function(def, 0),
                Item::Aggregate(def) => {
                    self.out.push_str("aggregate ");
                    self.signature(&def.name.name, &def.params, def.ret.as_ref());
                    for (j, entry) in def.body.iter().enumerate() {
                        match entry {
                            AggItem::Def(part) => {
                                if j > 0 {
                                    self.out.push('\n');
                                }
                                self.function(part, 1);
                            }
                            AggItem::Stmt(stmt) => self.stmt(stmt, 1),
                        }
                    }
                }
            }
        }
        self.out
    }

    fn const_def<A>(&mut self, def: &ConstDef<A>) {
        let _ = write!(self.out, "const {}", def.name.name);
        if let Some(ty) = &def.ty {
            self.out.push_str(": ");
            self.type_expr(ty);
        }
        self.out.push_str(" = ");
        self.expr(&def.value, 0);
        self.out.push('\n');
    }

    fn class_def(&mut self, def: &ClassDef) {
        let _ = writeln!(self.out, "class {}:", def.name.name);
        for field in &def.fields {
            let _ = write!(self.out, "    {}: ", field.name.name);
            self.type_expr(&field.ty);
            self.out.push('\n');
        }
    }

    fn function<A>(&mut self, def: &FunctionDef<A>, depth: usize) {
        self.indent(depth);
        self.out.push_str("def ");
        self.signature(&def.name.name, &def.params, def.ret.as_ref());
        self.block(&def.body, depth + 1);
    }

    fn signature(&mut self, name: &str, params: &[Param], ret: Option<&TypeExpr>) {
        let _ = write!(self.out, "{name}(");
        for (i, param) in params.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.out.push_str(&param.name.name);
            if let Some(ty) = &param.ty {
                self.out.push_str(": ");
                self.type_expr(ty);
            }
        }
        self.out.push(')');
        if let Some(ret) = ret {
            self.out.push_str(" -> ");
            self.type_expr(ret);
        }
        self.out.push_str(":\n");
    }

    fn type_expr(&mut self, ty: &TypeExpr) {
        match &ty.kind {
            TypeExprKind::Named(name) => self.out.push_str(&name.name),
            TypeExprKind::Apply { head, args } => {
                let _ = write!(self.out, "{}[", head.name);
                self.comma_list(args);
                self.out.push(']');
            }
        }
    }

    fn indent(&mut self, depth: usize) {
        for _ in 0..depth {
            self.out.push_str("    ");
        }
    }

    fn block<A>(&mut self, block: &Block<A>, depth: usize) {
        for stmt in block {
            self.stmt(stmt, depth);
        }
    }

    fn stmt<A>(&mut self, stmt: &Stmt<A>, depth: usize) {
        self.indent(depth);
        match &stmt.kind {
            StmtKind::Expr(e) => self.expr(e, 0),
            StmtKind::Assign { target, value } => {
                self.expr(target, 0);
                self.out.push_str(" = ");
                self.expr(value, 0);
            }
            StmtKind::AnnAssign { target, ty, value } => {
                let _ = write!(self.out, "{}: ", target.name);
                self.type_expr(ty);
                if let Some(value) = value {
                    self.out.push_str(" = ");
                    self.expr(value, 0);
                }
            }
            StmtKind::AugAssign { target, op, value } => {
                self.expr(target, 0);
                let _ = write!(self.out, " {}= ", op.symbol());
                self.expr(value, 0);
            }
            StmtKind::If { branches, orelse } => {
                for (i, (cond, body)) in branches.iter().enumerate() {
                    if i > 0 {
                        self.indent(depth);
                    }
                    self.out.push_str(if i == 0 { "if " } else { "elif " });
                    self.expr(cond, 0);
                    self.out.push_str(":\n");
                    self.block(body, depth + 1);
                }
                if let Some(orelse) = orelse {
                    self.indent(depth);
                    self.out.push_str("else:\n");
                    self.block(orelse, depth + 1);
                }
                return;
            }
            StmtKind::For { var, iter, body } => {
                let _ = write!(self.out, "for {} in ", var.name);
                self.expr(iter, 0);
                self.out.push_str(":\n");
                self.block(body, depth + 1);
                return;
            }
            StmtKind::While { cond, body } => {
                self.out.push_str("while ");
                self.expr(cond, 0);
                self.out.push_str(":\n");
                self.block(body, depth + 1);
                return;
            }
            StmtKind::Break => self.out.push_str("break"),
            StmtKind::Continue => self.out.push_str("continue"),
            StmtKind::Pass => self.out.push_str("pass"),
            StmtKind::Return(value) => {
                self.out.push_str("return");
                if let Some(value) = value {
                    self.out.push(' ');
                    self.expr(value, 0);
                }
            }
        }
        self.out.push('\n');
    }

    fn comma_list<A>(&mut self, items: &[Expr<A>]) {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.expr(item, 0);
        }
    }

    /// Prints `expr`, parenthesised if it binds more loosely than `min`.
    fn expr<A>(&mut self, expr: &Expr<A>, min: u8) {
        let own = precedence(expr);
        let parens = own < min || (self.explicit && min > 0 && own < PRIMARY);
        if parens {
            self.out.push('(');
        }
        match &expr.kind {
            ExprKind::Int(value) => {
                let _ = write!(self.out, "{value}");
            }
            ExprKind::Float(value) => {
                let _ = write!(self.out, "{value:?}");
            }
            ExprKind::Bool(value) => self.out.push_str(if *value { "True" } else { "False" }),
            ExprKind::Name(name) => self.out.push_str(name),
            ExprKind::Const(value) => {
                let _ = write!(self.out, "{value}");
            }
            ExprKind::Unary(op, operand) => {
                self.out.push_str(op.symbol());
                self.expr(operand, if *op == UnOp::Not { NOT } else { UNARY });
            }
            ExprKind::Binary(op, a, b) => {
                let level = binary_precedence(*op);
                let (left, right) = if *op == BinOp::Pow { (PRIMARY, UNARY) } else { (level, level + 1) };
                self.expr(a, left);
                let _ = write!(self.out, " {} ", op.symbol());
                self.expr(b, right);
            }
            ExprKind::Compare(op, a, b) => {
                self.expr(a, BIT_OR);
                let _ = write!(self.out, " {} ", op.symbol());
                self.expr(b, BIT_OR);
            }
            ExprKind::Logic(op, a, b) => {
                let level = if *op == LogicOp::Or { OR } else { AND };
                self.expr(a, level);
                let _ = write!(self.out, " {} ", op.symbol());
                self.expr(b, level + 1);
            }
            ExprKind::IfElse { cond, then, orelse } => {
                self.expr(then, OR);
                self.out.push_str(" if ");
                self.expr(cond, OR);
                self.out.push_str(" else ");
                self.expr(orelse, IF_ELSE);
            }
            ExprKind::Call { func, args } => {
                let _ = write!(self.out, "{}(", func.name);
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    match arg {
                        Arg::Positional(value) => self.expr(value, 0),
                        Arg::Keyword(name, value) => {
                            let _ = write!(self.out, "{}=", name.name);
                            self.expr(value, 0);
                        }
                    }
                }
                self.out.push(')');
            }
            ExprKind::Index(base, index) => {
                self.expr(base, PRIMARY);
                self.out.push('[');
                match &index.kind {
                    // `a[i, j]` and `array[i64, 4]`: an index by a tuple of two or more items
                    // is written without the tuple's parentheses.
                    ExprKind::Tuple(items) if items.len() >= 2 => self.comma_list(items),
                    _ => self.expr(index, 0),
                }
                self.out.push(']');
            }
            ExprKind::Field(base, field) => {
                self.expr(base, PRIMARY);
                let _ = write!(self.out, ".{}", field.name);
            }
            ExprKind::Tuple(items) => {
                self.out.push('(');
                self.comma_list(items);
                if items.len() == 1 {
                    self.out.push(',');
                }
                self.out.push(')');
            }
            ExprKind::Array(items) => {
                self.out.push('[');
                self.comma_list(items);
                self.out.push(']');
            }
        }
        if parens {
            self.out.push(')');
        }
    }
}
