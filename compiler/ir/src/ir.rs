//! The IR's data types. A function is structured code (blocks, counted loops, `if`) over
//! typed variables: scalars and fixed-length arrays of scalars. Composite source values
//! (tuples, records, arrays of them) are flattened into several variables by lowering.
//!
//! Control flow is structured like WebAssembly's: `Loop` and `Block` carry a label, and
//! `Break(label)` / `Continue(label)` leave or restart the labelled construct. This keeps
//! loop unrolling and if-conversion (the switch target) simple, and lowers directly to a CFG
//! with SSA (Cranelift builds SSA from variables).

use naas_lang::span::Span;
use naas_lang::types::{FloatTy, IntTy};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScalarTy {
    Bool,
    Int(IntTy),
    Float(FloatTy),
}

impl ScalarTy {
    pub fn size_bytes(self) -> u32 {
        match self {
            ScalarTy::Bool => 1,
            ScalarTy::Int(ty) => ty.bits() / 8,
            ScalarTy::Float(ty) => ty.bits() / 8,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ScalarTy::Bool => "bool",
            ScalarTy::Int(ty) => ty.name(),
            ScalarTy::Float(ty) => ty.name(),
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, ScalarTy::Float(_))
    }
}

/// A scalar value. Integers hold an `i128` within their type's range; f32 values are carried
/// as the f64 with the same value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    Bool(bool),
    Int(IntTy, i128),
    Float(FloatTy, f64),
}

impl Scalar {
    pub fn ty(self) -> ScalarTy {
        match self {
            Scalar::Bool(_) => ScalarTy::Bool,
            Scalar::Int(ty, _) => ScalarTy::Int(ty),
            Scalar::Float(ty, _) => ScalarTy::Float(ty),
        }
    }

    pub fn zero(ty: ScalarTy) -> Scalar {
        match ty {
            ScalarTy::Bool => Scalar::Bool(false),
            ScalarTy::Int(ty) => Scalar::Int(ty, 0),
            ScalarTy::Float(ty) => Scalar::Float(ty, 0.0),
        }
    }

    pub fn as_int(self) -> Option<i128> {
        match self {
            Scalar::Int(_, value) => Some(value),
            _ => None,
        }
    }

    pub fn as_bool(self) -> Option<bool> {
        match self {
            Scalar::Bool(value) => Some(value),
            _ => None,
        }
    }

    /// The equality targets must agree on: bit for bit, except that all NaNs are alike (NaN
    /// payloads and signs are unspecified). Unlike `==`, NaN equals NaN and -0.0 differs
    /// from 0.0.
    pub fn same(self, other: Scalar) -> bool {
        match (self, other) {
            (Scalar::Float(a_ty, a), Scalar::Float(b_ty, b)) => {
                a_ty == b_ty && ((a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits())
            }
            _ => self == other,
        }
    }
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Bool(true) => f.write_str("True"),
            Scalar::Bool(false) => f.write_str("False"),
            Scalar::Int(_, value) => write!(f, "{value}"),
            Scalar::Float(FloatTy::F32, value) => write!(f, "{:?}", *value as f32),
            Scalar::Float(FloatTy::F64, value) => write!(f, "{value:?}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Var(pub u32);

impl Var {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VarTy {
    Scalar(ScalarTy),
    Array(ScalarTy, u32),
}

impl VarTy {
    pub fn scalar(self) -> ScalarTy {
        match self {
            VarTy::Scalar(ty) | VarTy::Array(ty, _) => ty,
        }
    }

    /// Elements held: 1 for a scalar.
    pub fn size_elems(self) -> u32 {
        match self {
            VarTy::Scalar(_) => 1,
            VarTy::Array(_, len) => len,
        }
    }

    pub fn size_bytes(self) -> u64 {
        match self {
            VarTy::Scalar(ty) => u64::from(ty.size_bytes()),
            VarTy::Array(ty, len) => u64::from(ty.size_bytes()) * u64::from(len),
        }
    }
}

impl std::fmt::Display for VarTy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VarTy::Scalar(ty) => f.write_str(ty.name()),
            VarTy::Array(ty, len) => write!(f, "[{}; {len}]", ty.name()),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct VarDecl {
    /// The source name, or a description for temporaries; for printing only.
    pub name: String,
    pub ty: VarTy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Label(pub u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FuncId(pub u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Neg,
    /// Logical not of a bool.
    Not,
    BitNot,
    Abs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    /// True division (floats only).
    Div,
    /// Floor division (integers only); faults on a zero divisor.
    FloorDiv,
    /// Floor modulo (integers only); faults on a zero divisor.
    Mod,
    /// Shifts take any integer type on the right; a negative count faults.
    Shl,
    Shr,
    BitAnd,
    BitOr,
    BitXor,
    /// Integer min/max, or IEEE 754-2019 minimum/maximum on floats.
    Min,
    Max,
}

impl BinaryOp {
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::FloorDiv => "floordiv",
            BinaryOp::Mod => "mod",
            BinaryOp::Shl => "shl",
            BinaryOp::Shr => "shr",
            BinaryOp::BitAnd => "bitand",
            BinaryOp::BitOr => "bitor",
            BinaryOp::BitXor => "bitxor",
            BinaryOp::Min => "min",
            BinaryOp::Max => "max",
        }
    }

    /// True for operators that can fault (and so need a source location).
    pub fn can_fault(self) -> bool {
        matches!(self, BinaryOp::FloorDiv | BinaryOp::Mod | BinaryOp::Shl | BinaryOp::Shr)
    }
}

impl UnaryOp {
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Not => "not",
            UnaryOp::BitNot => "bitnot",
            UnaryOp::Abs => "abs",
        }
    }
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

impl CmpOp {
    pub fn name(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
        }
    }
}

/// A pure scalar expression. Evaluation may fault (division by zero, negative shift, index
/// out of bounds); `IfElse`, `And` and `Or` evaluate lazily, so a guard protects its operand.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Const(Scalar),
    Var(Var),
    /// Element `offset` of an array variable. `offset` is an `i64` known to be in bounds: it is
    /// built from `CheckIndex` results and constants by lowering.
    Load {
        array: Var,
        offset: Box<Expr>,
    },
    Unary {
        op: UnaryOp,
        arg: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        span: Span,
    },
    Compare {
        op: CmpOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// Short-circuit logic on bools.
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    /// Lazy conditional: only the chosen branch is evaluated.
    IfElse {
        cond: Box<Expr>,
        then: Box<Expr>,
        orelse: Box<Expr>,
    },
    /// Eager conditional: both operands are evaluated (they must not fault).
    Select {
        cond: Box<Expr>,
        then: Box<Expr>,
        orelse: Box<Expr>,
    },
    Cast {
        to: ScalarTy,
        arg: Box<Expr>,
    },
    /// Evaluates `index` (any integer type), faults unless `0 <= index < len`, and yields it
    /// as an `i64`.
    CheckIndex {
        index: Box<Expr>,
        len: u32,
        span: Span,
    },
}

/// A value passed to or returned from a function: a scalar, or a whole array variable.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    Scalar(Expr),
    Array(Var),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    Assign {
        dst: Var,
        value: Expr,
    },
    /// `array[offset] = value`, with an in-bounds `i64` offset (see `Expr::Load`).
    Store {
        array: Var,
        offset: Expr,
        value: Expr,
    },
    /// Copies a whole array into another of the same type.
    CopyArray {
        dst: Var,
        src: Var,
    },
    /// Sets every element of an array to one value.
    FillArray {
        dst: Var,
        value: Expr,
    },
    If {
        cond: Expr,
        then: Vec<Stmt>,
        orelse: Vec<Stmt>,
    },
    /// Runs `body` once for each `counter` in `range(start, stop, step)`; the counter is
    /// assigned by the loop only.
    Loop {
        label: Label,
        counter: Var,
        start: i128,
        stop: i128,
        step: i128,
        body: Vec<Stmt>,
    },
    /// A block that `Break(label)` can leave early (inlined function bodies use it).
    Block {
        label: Label,
        body: Vec<Stmt>,
    },
    Break(Label),
    Continue(Label),
    Return(Vec<Operand>),
    /// Calls `func`; scalar results are assigned, array results copied, into `results`.
    Call {
        func: FuncId,
        args: Vec<Operand>,
        results: Vec<Var>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Function {
    pub name: String,
    pub span: Span,
    pub params: Vec<Var>,
    pub results: Vec<VarTy>,
    pub vars: Vec<VarDecl>,
    pub body: Vec<Stmt>,
    /// The next unused label number.
    pub next_label: u32,
}

impl Function {
    pub fn var_ty(&self, var: Var) -> VarTy {
        self.vars[var.index()].ty
    }

    pub fn new_var(&mut self, name: impl Into<String>, ty: VarTy) -> Var {
        let var = Var(u32::try_from(self.vars.len()).unwrap_or(u32::MAX));
        self.vars.push(VarDecl { name: name.into(), ty });
        var
    }

    pub fn new_label(&mut self) -> Label {
        let label = Label(self.next_label);
        self.next_label += 1;
        label
    }
}

/// A set of functions that may call each other (acyclically).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Module {
    pub functions: Vec<Function>,
}

impl Module {
    pub fn function(&self, id: FuncId) -> &Function {
        &self.functions[id.0 as usize]
    }

    pub fn find(&self, name: &str) -> Option<FuncId> {
        self.functions.iter().position(|f| f.name == name).map(|i| FuncId(i as u32))
    }
}

impl Expr {
    pub fn int(ty: IntTy, value: i128) -> Expr {
        Expr::Const(Scalar::Int(ty, value))
    }

    pub fn i64(value: i128) -> Expr {
        Expr::Const(Scalar::Int(IntTy::I64, value))
    }

    pub fn binary(op: BinaryOp, lhs: Expr, rhs: Expr, span: Span) -> Expr {
        Expr::Binary { op, lhs: Box::new(lhs), rhs: Box::new(rhs), span }
    }

    pub fn compare(op: CmpOp, lhs: Expr, rhs: Expr) -> Expr {
        Expr::Compare { op, lhs: Box::new(lhs), rhs: Box::new(rhs) }
    }

    pub fn cast(to: ScalarTy, arg: Expr) -> Expr {
        Expr::Cast { to, arg: Box::new(arg) }
    }

    pub fn load(array: Var, offset: Expr) -> Expr {
        Expr::Load { array, offset: Box::new(offset) }
    }

    pub fn as_const(&self) -> Option<Scalar> {
        match self {
            Expr::Const(value) => Some(*value),
            _ => None,
        }
    }
}
