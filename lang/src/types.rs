//! Semantic types. `Var` exists only while a function is being inferred: after checking,
//! every type in the typed AST is concrete.

use std::fmt;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IntTy {
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FloatTy {
    F32,
    F64,
}

impl IntTy {
    pub const ALL: [IntTy; 8] =
        [IntTy::I8, IntTy::I16, IntTy::I32, IntTy::I64, IntTy::U8, IntTy::U16, IntTy::U32, IntTy::U64];

    pub fn bits(self) -> u32 {
        match self {
            IntTy::I8 | IntTy::U8 => 8,
            IntTy::I16 | IntTy::U16 => 16,
            IntTy::I32 | IntTy::U32 => 32,
            IntTy::I64 | IntTy::U64 => 64,
        }
    }

    pub fn signed(self) -> bool {
        matches!(self, IntTy::I8 | IntTy::I16 | IntTy::I32 | IntTy::I64)
    }

    pub fn min_value(self) -> i128 {
        if self.signed() {
            -(1i128 << (self.bits() - 1))
        } else {
            0
        }
    }

    pub fn max_value(self) -> i128 {
        if self.signed() {
            (1i128 << (self.bits() - 1)) - 1
        } else {
            (1i128 << self.bits()) - 1
        }
    }

    pub fn contains(self, value: i128) -> bool {
        (self.min_value()..=self.max_value()).contains(&value)
    }

    pub fn name(self) -> &'static str {
        match self {
            IntTy::I8 => "i8",
            IntTy::I16 => "i16",
            IntTy::I32 => "i32",
            IntTy::I64 => "i64",
            IntTy::U8 => "u8",
            IntTy::U16 => "u16",
            IntTy::U32 => "u32",
            IntTy::U64 => "u64",
        }
    }

    pub fn from_name(name: &str) -> Option<IntTy> {
        IntTy::ALL.into_iter().find(|ty| ty.name() == name)
    }
}

impl FloatTy {
    pub fn name(self) -> &'static str {
        match self {
            FloatTy::F32 => "f32",
            FloatTy::F64 => "f64",
        }
    }

    pub fn bits(self) -> u32 {
        match self {
            FloatTy::F32 => 32,
            FloatTy::F64 => 64,
        }
    }

    pub fn from_name(name: &str) -> Option<FloatTy> {
        match name {
            "f32" => Some(FloatTy::F32),
            "f64" => Some(FloatTy::F64),
            _ => None,
        }
    }
}

/// A record type declared with `class`. Records are nominal: two records are the same type
/// exactly when they have the same name (names are unique in a module).
#[derive(Debug)]
pub struct RecordType {
    pub name: String,
    pub fields: Vec<(String, Type)>,
}

/// Records are nominal: equal exactly when their names are.
impl PartialEq for RecordType {
    fn eq(&self, other: &RecordType) -> bool {
        self.name == other.name
    }
}

impl RecordType {
    pub fn field(&self, name: &str) -> Option<(usize, &Type)> {
        self.fields.iter().enumerate().find(|(_, (field, _))| field == name).map(|(i, (_, ty))| (i, ty))
    }
}

/// The kind of an unresolved literal type: integer literals become some integer type,
/// float literals some float type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VarKind {
    Int,
    Float,
}

#[derive(Clone, Debug)]
pub enum Type {
    Bool,
    Int(IntTy),
    Float(FloatTy),
    Tuple(Vec<Type>),
    Array(Box<Type>, u32),
    Record(Arc<RecordType>),
    /// An inference variable (during checking only).
    Var(u32, VarKind),
    /// The type of an expression that already produced an error; it unifies with
    /// everything so that one mistake is reported once.
    Error,
}

impl PartialEq for Type {
    fn eq(&self, other: &Type) -> bool {
        match (self, other) {
            (Type::Bool, Type::Bool) | (Type::Error, Type::Error) => true,
            (Type::Int(a), Type::Int(b)) => a == b,
            (Type::Float(a), Type::Float(b)) => a == b,
            (Type::Tuple(a), Type::Tuple(b)) => a == b,
            (Type::Array(a, n), Type::Array(b, m)) => n == m && a == b,
            (Type::Record(a), Type::Record(b)) => a.name == b.name,
            (Type::Var(a, _), Type::Var(b, _)) => a == b,
            _ => false,
        }
    }
}

impl Type {
    pub const I64: Type = Type::Int(IntTy::I64);
    pub const U64: Type = Type::Int(IntTy::U64);
    pub const F64: Type = Type::Float(FloatTy::F64);

    /// The size of a value of this type in bytes, packed (no padding), as the memory bound
    /// and the state layout count it. Saturates rather than overflows.
    pub fn size_bytes(&self) -> u64 {
        match self {
            Type::Bool => 1,
            Type::Int(ty) => u64::from(ty.bits() / 8),
            Type::Float(ty) => u64::from(ty.bits() / 8),
            Type::Tuple(items) => items.iter().map(Type::size_bytes).fold(0, u64::saturating_add),
            Type::Array(elem, len) => elem.size_bytes().saturating_mul(u64::from(*len)),
            Type::Record(record) => record.fields.iter().map(|(_, ty)| ty.size_bytes()).fold(0, u64::saturating_add),
            Type::Var(_, VarKind::Int) | Type::Var(_, VarKind::Float) => 8,
            Type::Error => 0,
        }
    }

    /// The number of scalar slots in a value of this type (an array of 4 pairs has 8).
    pub fn scalar_count(&self) -> u64 {
        match self {
            Type::Tuple(items) => items.iter().map(Type::scalar_count).fold(0, u64::saturating_add),
            Type::Array(elem, len) => elem.scalar_count().saturating_mul(u64::from(*len)),
            Type::Record(record) => record.fields.iter().map(|(_, ty)| ty.scalar_count()).fold(0, u64::saturating_add),
            _ => 1,
        }
    }

    pub fn is_numeric(&self) -> bool {
        matches!(self, Type::Int(_) | Type::Float(_) | Type::Var(..))
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Type::Error)
    }

    /// True when the type contains no inference variables.
    pub fn is_concrete(&self) -> bool {
        match self {
            Type::Var(..) => false,
            Type::Tuple(items) => items.iter().all(Type::is_concrete),
            Type::Array(elem, _) => elem.is_concrete(),
            _ => true,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("bool"),
            Type::Int(ty) => f.write_str(ty.name()),
            Type::Float(ty) => f.write_str(ty.name()),
            Type::Tuple(items) => {
                f.write_str("tuple[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Type::Array(elem, len) => write!(f, "array[{elem}, {len}]"),
            Type::Record(record) => f.write_str(&record.name),
            Type::Var(_, VarKind::Int) => f.write_str("{integer}"),
            Type::Var(_, VarKind::Float) => f.write_str("{float}"),
            Type::Error => f.write_str("{unknown}"),
        }
    }
}
