//! The abstract syntax tree, generic over the annotation each expression carries: the parser
//! produces `Module<()>`, the type checker produces `Module<Type>` (see [`crate::check`]).

use crate::span::Span;
use crate::value::Value;

/// A name with where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Module<A = ()> {
    pub items: Vec<Item<A>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item<A = ()> {
    Const(ConstDef<A>),
    Class(ClassDef),
    Function(FunctionDef<A>),
    Aggregate(AggregateDef<A>),
}

/// `const NAME[: T] = value`
#[derive(Clone, Debug, PartialEq)]
pub struct ConstDef<A = ()> {
    pub name: Ident,
    pub ty: Option<TypeExpr>,
    pub value: Expr<A>,
    pub span: Span,
}

/// `class Name:` with annotated fields only.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassDef {
    pub name: Ident,
    pub fields: Vec<Field>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: Ident,
    pub ty: TypeExpr,
}

/// `def name(params) -> ret:` followed by a block. `span` covers the header line.
#[derive(Clone, Debug, PartialEq)]
pub struct FunctionDef<A = ()> {
    pub name: Ident,
    pub params: Vec<Param>,
    pub ret: Option<TypeExpr>,
    pub body: Block<A>,
    pub span: Span,
}

/// A parameter; the annotation is optional in the grammar so that a missing one gets a
/// targeted diagnostic (E0213) rather than a syntax error.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: Ident,
    pub ty: Option<TypeExpr>,
}

/// `aggregate name(params) -> T:` and its body. `span` covers the header line.
#[derive(Clone, Debug, PartialEq)]
pub struct AggregateDef<A = ()> {
    pub name: Ident,
    pub params: Vec<Param>,
    pub ret: Option<TypeExpr>,
    pub body: Vec<AggItem<A>>,
    pub span: Span,
}

/// An entry of an aggregate body. The grammar accepts any statement or `def` here; the
/// checker decides which form (built-in or custom) the aggregate is in.
#[derive(Clone, Debug, PartialEq)]
pub enum AggItem<A = ()> {
    Def(FunctionDef<A>),
    Stmt(Stmt<A>),
}

pub type Block<A = ()> = Vec<Stmt<A>>;

#[derive(Clone, Debug, PartialEq)]
pub struct Stmt<A = ()> {
    pub kind: StmtKind<A>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind<A = ()> {
    /// An expression on its own line (always rejected by the checker: functions are pure).
    Expr(Expr<A>),
    /// `target = value`; the target is a place or a tuple of places.
    Assign {
        target: Expr<A>,
        value: Expr<A>,
    },
    /// `name: T = value`
    AnnAssign {
        target: Ident,
        ty: TypeExpr,
        value: Option<Expr<A>>,
    },
    /// `target op= value`
    AugAssign {
        target: Expr<A>,
        op: BinOp,
        value: Expr<A>,
    },
    /// `if` with its `elif` branches in order, then an optional `else`.
    If {
        branches: Vec<(Expr<A>, Block<A>)>,
        orelse: Option<Block<A>>,
    },
    For {
        var: Ident,
        iter: Expr<A>,
        body: Block<A>,
    },
    /// Parsed only to be rejected with E0301.
    While {
        cond: Expr<A>,
        body: Block<A>,
    },
    Break,
    Continue,
    Return(Option<Expr<A>>),
    Pass,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr<A = ()> {
    pub kind: ExprKind<A>,
    pub span: Span,
    /// `()` before type checking, the expression's `Type` after.
    pub ty: A,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind<A = ()> {
    /// An integer literal. The parser produces values in `0..=u64::MAX`; the checker folds
    /// constant subexpressions and may produce any value of the expression's type.
    Int(i128),
    Float(f64),
    Bool(bool),
    Name(String),
    Unary(UnOp, Box<Expr<A>>),
    Binary(BinOp, Box<Expr<A>>, Box<Expr<A>>),
    Compare(CmpOp, Box<Expr<A>>, Box<Expr<A>>),
    /// Short-circuit `and` / `or`.
    Logic(LogicOp, Box<Expr<A>>, Box<Expr<A>>),
    /// `then if cond else orelse`
    IfElse {
        cond: Box<Expr<A>>,
        then: Box<Expr<A>>,
        orelse: Box<Expr<A>>,
    },
    Call {
        func: Ident,
        args: Vec<Arg<A>>,
    },
    Index(Box<Expr<A>>, Box<Expr<A>>),
    Field(Box<Expr<A>>, Ident),
    Tuple(Vec<Expr<A>>),
    Array(Vec<Expr<A>>),
    /// A constant the checker folded (a typed `const`, a limit such as `I64_MIN`, a
    /// conversion of a literal). The parser never produces it.
    Const(Value),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Arg<A = ()> {
    Positional(Expr<A>),
    Keyword(Ident, Expr<A>),
}

impl<A> Arg<A> {
    pub fn value(&self) -> &Expr<A> {
        match self {
            Arg::Positional(value) | Arg::Keyword(_, value) => value,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnOp {
    Neg,
    Pos,
    Not,
    BitNot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    /// `/`: true division, floats only.
    Div,
    /// `//`: floor division, integers only.
    FloorDiv,
    /// `%`: remainder with the sign of the divisor, integers only.
    Mod,
    /// `**`: parsed so that it gets a clear error (E0214).
    Pow,
    Shl,
    Shr,
    BitAnd,
    BitOr,
    BitXor,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogicOp {
    And,
    Or,
}

impl UnOp {
    pub fn symbol(self) -> &'static str {
        match self {
            UnOp::Neg => "-",
            UnOp::Pos => "+",
            UnOp::Not => "not ",
            UnOp::BitNot => "~",
        }
    }
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::FloorDiv => "//",
            BinOp::Mod => "%",
            BinOp::Pow => "**",
            BinOp::Shl => "<<",
            BinOp::Shr => ">>",
            BinOp::BitAnd => "&",
            BinOp::BitOr => "|",
            BinOp::BitXor => "^",
        }
    }
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

impl LogicOp {
    pub fn symbol(self) -> &'static str {
        match self {
            LogicOp::And => "and",
            LogicOp::Or => "or",
        }
    }
}

/// A type as written: `i32`, `Latency`, `array[i64, K]`, `tuple[i32, f64]`.
///
/// Arguments are kept as expressions because an array length is a constant expression;
/// the checker decides which arguments are types and which are lengths.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeExpr {
    pub kind: TypeExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TypeExprKind {
    Named(Ident),
    Apply { head: Ident, args: Vec<Expr> },
}

impl<A> Module<A> {
    pub fn functions(&self) -> impl Iterator<Item = &FunctionDef<A>> {
        self.items.iter().filter_map(|item| match item {
            Item::Function(function) => Some(function),
            _ => None,
        })
    }

    pub fn aggregates(&self) -> impl Iterator<Item = &AggregateDef<A>> {
        self.items.iter().filter_map(|item| match item {
            Item::Aggregate(aggregate) => Some(aggregate),
            _ => None,
        })
    }
}
