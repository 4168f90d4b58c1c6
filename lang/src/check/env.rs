//! The module-level environment: which items exist, record types, function signatures and
//! constant values. Constants and classes are defined in source order (as Python executes a
//! module), so a constant may use only constants and classes defined above it; functions
//! and aggregates see everything.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::builtins;
use super::consteval;
use super::expr::FnChecker;
use crate::ast::{BinOp, ClassDef, ConstDef, Expr, ExprKind, FunctionDef, Item, Module, TypeExpr, TypeExprKind, UnOp};
use crate::diagnostics::{Code, Diagnostic};
use crate::span::Span;
use crate::types::{FloatTy, IntTy, RecordType, Type};
use crate::value::Value;

/// The longest array a type may declare, in elements. The memory bound (`--max-bytes`)
/// usually binds first; this keeps type arithmetic far from overflow.
pub const MAX_ARRAY_LEN: u32 = 1 << 24;

/// The value of a `const`. Scalar constants written with literals only are *untyped*, like
/// Go's: each use takes the type its context needs, and must fit it.
#[derive(Clone, Debug, PartialEq)]
pub enum ConstValue {
    UntypedInt(i128),
    UntypedFloat(f64),
    Typed(Value, Type),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemKind {
    Const,
    Class,
    Function,
    Aggregate,
}

impl ItemKind {
    pub fn describe(self) -> &'static str {
        match self {
            ItemKind::Const => "a constant",
            ItemKind::Class => "a class",
            ItemKind::Function => "a function",
            ItemKind::Aggregate => "an aggregate",
        }
    }
}

#[derive(Clone, Debug)]
pub struct FnSig {
    pub params: Vec<(String, Type)>,
    pub ret: Type,
    pub span: Span,
}

#[derive(Default, Debug)]
pub struct Env {
    items: HashMap<String, (ItemKind, Span)>,
    consts: HashMap<String, ConstValue>,
    records: HashMap<String, Arc<RecordType>>,
    record_order: Vec<String>,
    functions: HashMap<String, FnSig>,
    /// Items whose definition had errors: uses of them report nothing more.
    failed: HashSet<String>,
}

impl Env {
    pub fn declare_items(&mut self, module: &Module, diagnostics: &mut Vec<Diagnostic>) {
        for item in &module.items {
            let (name, kind) = match item {
                Item::Const(def) => (&def.name, ItemKind::Const),
                Item::Class(def) => (&def.name, ItemKind::Class),
                Item::Function(def) => (&def.name, ItemKind::Function),
                Item::Aggregate(def) => (&def.name, ItemKind::Aggregate),
            };
            if builtins::is_reserved(&name.name) {
                diagnostics.push(reserved_name(&name.name, name.span));
                self.failed.insert(name.name.clone());
                continue;
            }
            if let Some((previous, previous_span)) = self.items.get(&name.name) {
                diagnostics.push(
                    Diagnostic::error(
                        Code::E0102,
                        format!("`{}` is defined twice", name.name),
                        name.span,
                        "defined again here",
                    )
                    .with_label(*previous_span, format!("first defined here as {}", previous.describe()))
                    .with_help("rename one of them"),
                );
                continue;
            }
            self.items.insert(name.name.clone(), (kind, name.span));
        }
    }

    pub fn item(&self, name: &str) -> Option<(ItemKind, Span)> {
        self.items.get(name).copied()
    }

    pub fn is_failed(&self, name: &str) -> bool {
        self.failed.contains(name)
    }

    pub fn constant(&self, name: &str) -> Option<&ConstValue> {
        self.consts.get(name)
    }

    pub fn record(&self, name: &str) -> Option<&Arc<RecordType>> {
        self.records.get(name)
    }

    pub fn function(&self, name: &str) -> Option<&FnSig> {
        self.functions.get(name)
    }

    pub fn records_in_order(&self) -> Vec<Arc<RecordType>> {
        self.record_order.iter().filter_map(|name| self.records.get(name).cloned()).collect()
    }

    /// Every name a program defined, for "did you mean" suggestions.
    pub fn item_names(&self) -> impl Iterator<Item = &str> {
        self.items.keys().map(String::as_str)
    }

    pub fn define_const(&mut self, def: &ConstDef, diagnostics: &mut Vec<Diagnostic>) -> Option<ConstValue> {
        let before = diagnostics.len();
        let value = self.evaluate_const(def, diagnostics);
        match value {
            Some(value) if diagnostics[before..].iter().all(|d| !d.is_error()) => {
                self.consts.insert(def.name.name.clone(), value.clone());
                Some(value)
            }
            _ => {
                self.failed.insert(def.name.name.clone());
                None
            }
        }
    }

    fn evaluate_const(&self, def: &ConstDef, diagnostics: &mut Vec<Diagnostic>) -> Option<ConstValue> {
        let declared = def.ty.as_ref().map(|ty| self.resolve_type(ty, diagnostics));
        let mut checker = FnChecker::for_constant(self, diagnostics);
        let checked = checker.expr(&def.value);
        if declared.is_none() {
            if let Some(untyped) = checked.untyped {
                return Some(untyped.into_const_value());
            }
        }
        if let Some(declared) = &declared {
            checker.expect(&checked.expr.ty, declared, def.value.span, "the constant's declared type");
        }
        let mut expr = checked.expr;
        checker.finish_expr(&mut expr);
        if checker.has_errors() {
            return None;
        }
        match consteval::eval(&expr) {
            Ok(value) => Some(ConstValue::Typed(value, expr.ty)),
            Err(error) => {
                diagnostics.push(error.into_diagnostic());
                None
            }
        }
    }

    pub fn define_record(&mut self, def: &ClassDef, diagnostics: &mut Vec<Diagnostic>) {
        let mut fields: Vec<(String, Type)> = Vec::new();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut ok = true;
        for field in &def.fields {
            if let Some(first) = seen.get(field.name.name.as_str()) {
                diagnostics.push(
                    Diagnostic::error(
                        Code::E0102,
                        format!("field `{}` is declared twice in `{}`", field.name.name, def.name.name),
                        field.name.span,
                        "declared again here",
                    )
                    .with_label(*first, "first declared here"),
                );
                ok = false;
                continue;
            }
            seen.insert(&field.name.name, field.name.span);
            let ty = self.resolve_type(&field.ty, diagnostics);
            ok &= !ty.is_error();
            fields.push((field.name.name.clone(), ty));
        }
        if !ok {
            self.failed.insert(def.name.name.clone());
        }
        let record = Arc::new(RecordType { name: def.name.name.clone(), fields });
        if Type::Record(record.clone()).size_bytes() > u64::from(MAX_ARRAY_LEN) {
            diagnostics.push(Diagnostic::error(
                Code::E0305,
                format!("record `{}` is larger than {MAX_ARRAY_LEN} bytes", def.name.name),
                def.name.span,
                "too large",
            ));
        }
        if self.items.get(&def.name.name).is_some_and(|(kind, _)| *kind == ItemKind::Class) {
            self.record_order.push(def.name.name.clone());
            self.records.insert(def.name.name.clone(), record);
        }
    }

    pub fn declare_signature(&mut self, def: &FunctionDef, diagnostics: &mut Vec<Diagnostic>) {
        let (params, ret) = self.signature(&def.name.name, &def.params, def.ret.as_ref(), def.span, diagnostics);
        if self
            .items
            .get(&def.name.name)
            .is_some_and(|(kind, span)| *kind == ItemKind::Function && *span == def.name.span)
        {
            self.functions.insert(def.name.name.clone(), FnSig { params, ret, span: def.name.span });
        }
    }

    /// Resolves parameter and return annotations, reporting missing ones (E0213).
    pub fn signature(
        &self,
        name: &str,
        params: &[crate::ast::Param],
        ret: Option<&TypeExpr>,
        span: Span,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> (Vec<(String, Type)>, Type) {
        let params = params
            .iter()
            .map(|param| {
                let ty = match &param.ty {
                    Some(ty) => self.resolve_type(ty, diagnostics),
                    None => {
                        diagnostics.push(
                            Diagnostic::error(
                                Code::E0213,
                                format!("parameter `{}` has no type", param.name.name),
                                param.name.span,
                                "needs a type annotation",
                            )
                            .with_help(format!("annotate it, e.g. `{}: i64`", param.name.name)),
                        );
                        Type::Error
                    }
                };
                (param.name.name.clone(), ty)
            })
            .collect();
        let ret = match ret {
            Some(ty) => self.resolve_type(ty, diagnostics),
            None => {
                diagnostics.push(
                    Diagnostic::error(
                        Code::E0213,
                        format!("`{name}` does not declare its return type"),
                        span,
                        "needs `-> T`",
                    )
                    .with_help("naas functions are pure and always return a value: add `-> T` before the colon"),
                );
                Type::Error
            }
        };
        (params, ret)
    }

    pub fn resolve_type(&self, ty: &TypeExpr, diagnostics: &mut Vec<Diagnostic>) -> Type {
        match &ty.kind {
            TypeExprKind::Named(name) => self.resolve_named_type(&name.name, name.span, diagnostics),
            TypeExprKind::Apply { head, args } => self.resolve_applied_type(head, args, ty.span, diagnostics),
        }
    }

    fn resolve_named_type(&self, name: &str, span: Span, diagnostics: &mut Vec<Diagnostic>) -> Type {
        if let Some(ty) = builtins::conversion_target(name) {
            return ty;
        }
        if let Some(record) = self.records.get(name) {
            return Type::Record(record.clone());
        }
        if self.failed.contains(name) {
            return Type::Error;
        }
        let diagnostic = match (name, self.items.get(name)) {
            ("tuple", _) => Diagnostic::error(Code::E0211, "`tuple` needs its element types", span, "incomplete type")
                .with_help("write e.g. `tuple[i32, f64]`"),
            ("array", _) => {
                Diagnostic::error(Code::E0211, "`array` needs an element type and a length", span, "incomplete type")
                    .with_help("write e.g. `array[i64, 4]`")
            }
            (_, Some((ItemKind::Class, defined))) => Diagnostic::error(
                Code::E0101,
                format!("class `{name}` is used before its definition"),
                span,
                "not defined yet",
            )
            .with_label(*defined, "defined here")
            .with_help(format!("move `class {name}` above this use")),
            (_, Some((kind, _))) => Diagnostic::error(
                Code::E0103,
                format!("`{name}` is {}, not a type", kind.describe()),
                span,
                "not a type",
            ),
            _ => {
                let mut diagnostic =
                    Diagnostic::error(Code::E0103, format!("unknown type `{name}`"), span, "no type has this name");
                let known =
                    ["bool", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f32", "f64", "tuple", "array"];
                let candidates = known.iter().copied().chain(self.records.keys().map(String::as_str));
                if let Some(suggestion) = super::expr::closest(name, candidates) {
                    diagnostic = diagnostic.with_help(format!("did you mean `{suggestion}`?"));
                } else if matches!(name, "int" | "float" | "list") {
                    diagnostic = diagnostic.with_help("naas types are sized: i64, f64, array[T, N], ...");
                }
                diagnostic
            }
        };
        diagnostics.push(diagnostic);
        Type::Error
    }

    fn resolve_applied_type(
        &self,
        head: &crate::ast::Ident,
        args: &[Expr],
        span: Span,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Type {
        match head.name.as_str() {
            "tuple" => {
                if args.is_empty() {
                    diagnostics.push(Diagnostic::error(
                        Code::E0211,
                        "a tuple type needs at least one element",
                        span,
                        "empty tuple",
                    ));
                    return Type::Error;
                }
                let items: Vec<Type> = args.iter().map(|arg| self.type_from_expr(arg, diagnostics)).collect();
                if items.iter().any(Type::is_error) {
                    Type::Error
                } else {
                    Type::Tuple(items)
                }
            }
            "array" => {
                let [elem, len] = args else {
                    diagnostics.push(
                        Diagnostic::error(
                            Code::E0211,
                            format!("`array` takes an element type and a length, not {} argument(s)", args.len()),
                            span,
                            "malformed array type",
                        )
                        .with_help("write e.g. `array[i64, 4]`"),
                    );
                    return Type::Error;
                };
                let elem = self.type_from_expr(elem, diagnostics);
                let len = match self.const_int(len) {
                    Ok(n) if (1..=i128::from(MAX_ARRAY_LEN)).contains(&n) => n as u32,
                    Ok(n) => {
                        diagnostics.push(Diagnostic::error(
                            Code::E0211,
                            format!("array length {n} is outside 1..={MAX_ARRAY_LEN}"),
                            len.span,
                            "invalid length",
                        ));
                        return Type::Error;
                    }
                    Err(diagnostic) => {
                        diagnostics.push(*diagnostic);
                        return Type::Error;
                    }
                };
                if elem.is_error() {
                    Type::Error
                } else {
                    Type::Array(Box::new(elem), len)
                }
            }
            other => {
                let known = builtins::conversion_target(other).is_some() || self.records.contains_key(other);
                let message = if known {
                    format!("`{other}` takes no type arguments")
                } else {
                    format!("unknown type `{other}`")
                };
                diagnostics.push(Diagnostic::error(
                    if known { Code::E0211 } else { Code::E0103 },
                    message,
                    span,
                    "invalid type",
                ));
                Type::Error
            }
        }
    }

    /// Reads a type written in argument position of `tuple[...]` or `array[...]`, where the
    /// parser saw an expression.
    fn type_from_expr(&self, expr: &Expr, diagnostics: &mut Vec<Diagnostic>) -> Type {
        match &expr.kind {
            ExprKind::Name(name) => self.resolve_named_type(name, expr.span, diagnostics),
            ExprKind::Index(base, index) => {
                let ExprKind::Name(head) = &base.kind else {
                    diagnostics.push(Diagnostic::error(Code::E0211, "expected a type", expr.span, "not a type"));
                    return Type::Error;
                };
                let args = match &index.kind {
                    ExprKind::Tuple(items) => items.clone(),
                    _ => vec![(**index).clone()],
                };
                let head = crate::ast::Ident { name: head.clone(), span: base.span };
                self.resolve_applied_type(&head, &args, expr.span, diagnostics)
            }
            _ => {
                diagnostics.push(
                    Diagnostic::error(Code::E0211, "expected a type", expr.span, "not a type")
                        .with_help("types are names like `i64` or forms like `array[i64, 4]`"),
                );
                Type::Error
            }
        }
    }

    /// Evaluates an *integer constant expression*: integer literals, integer constants and
    /// the operators `+ - * // % << >> & | ^ ~`, computed exactly (no wrap-around). Range
    /// bounds, array lengths, repeat counts and tuple indexes are integer constant expressions.
    pub fn const_int<A>(&self, expr: &Expr<A>) -> Result<i128, Box<Diagnostic>> {
        let not_constant = |span: Span, why: &str| {
            Box::new(
                Diagnostic::error(Code::E0212, "expected an integer constant expression", span, why.to_string())
                    .with_help("use integer literals, `const` names and arithmetic on them"),
            )
        };
        match &expr.kind {
            ExprKind::Int(value) => Ok(*value),
            ExprKind::Name(name) => match self.consts.get(name) {
                Some(ConstValue::UntypedInt(value)) | Some(ConstValue::Typed(Value::Int(_, value), _)) => Ok(*value),
                Some(_) => Err(not_constant(expr.span, "this constant is not an integer")),
                None if self.failed.contains(name) => Err(not_constant(expr.span, "this constant has errors")),
                None => match builtins::constant(name) {
                    Some(Value::Int(_, value)) => Ok(value),
                    _ => Err(not_constant(expr.span, "not known at compile time")),
                },
            },
            ExprKind::Unary(op, operand) => {
                let value = self.const_int(operand)?;
                match op {
                    UnOp::Neg => value
                        .checked_neg()
                        .ok_or_else(|| not_constant(expr.span, "overflows 128-bit constant arithmetic")),
                    UnOp::Pos => Ok(value),
                    UnOp::BitNot => Ok(!value),
                    UnOp::Not => Err(not_constant(expr.span, "`not` gives a bool")),
                }
            }
            ExprKind::Binary(op, a, b) => {
                let (x, y) = (self.const_int(a)?, self.const_int(b)?);
                let overflow = || not_constant(expr.span, "overflows 128-bit constant arithmetic");
                match op {
                    BinOp::Add => x.checked_add(y).ok_or_else(overflow),
                    BinOp::Sub => x.checked_sub(y).ok_or_else(overflow),
                    BinOp::Mul => x.checked_mul(y).ok_or_else(overflow),
                    BinOp::FloorDiv | BinOp::Mod if y == 0 => Err(not_constant(b.span, "division by zero")),
                    BinOp::FloorDiv => x.checked_div(y).map(|_| crate::ops::floor_div_exact(x, y)).ok_or_else(overflow),
                    BinOp::Mod => {
                        x.checked_div(y).map(|_| x - crate::ops::floor_div_exact(x, y) * y).ok_or_else(overflow)
                    }
                    BinOp::Shl | BinOp::Shr if y < 0 => Err(not_constant(b.span, "negative shift count")),
                    BinOp::Shl => {
                        let shifted =
                            u32::try_from(y).ok().filter(|&n| n < 127).and_then(|n| x.checked_mul(1i128 << n));
                        shifted.ok_or_else(overflow)
                    }
                    BinOp::Shr => Ok(x >> y.min(127)),
                    BinOp::BitAnd => Ok(x & y),
                    BinOp::BitOr => Ok(x | y),
                    BinOp::BitXor => Ok(x ^ y),
                    BinOp::Div | BinOp::Pow => Err(not_constant(expr.span, "use `//` and `<<` in integer constants")),
                }
            }
            ExprKind::Const(Value::Int(_, value)) => Ok(*value),
            _ => Err(not_constant(expr.span, "not an integer constant")),
        }
    }
}

pub fn reserved_name(name: &str, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::E0105,
        format!("`{name}` is a built-in name and cannot be redefined"),
        span,
        "built-in name",
    )
    .with_help("choose another name")
}

/// An untyped constant value computed while checking an expression.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Untyped {
    Int(i128),
    Float(f64),
}

impl Untyped {
    pub fn into_const_value(self) -> ConstValue {
        match self {
            Untyped::Int(value) => ConstValue::UntypedInt(value),
            Untyped::Float(value) => ConstValue::UntypedFloat(value),
        }
    }

    /// The typed value this constant has at `ty`, if it fits (Go's representability rule).
    pub fn at_type(self, ty: &Type) -> Result<Value, Unrepresentable> {
        match (self, ty) {
            (Untyped::Int(value), Type::Int(int)) => {
                if int.contains(value) {
                    Ok(Value::Int(*int, value))
                } else {
                    Err(Unrepresentable::IntOutOfRange { value, ty: *int })
                }
            }
            (Untyped::Int(value), Type::Float(float)) => {
                Ok(Value::Float(*float, crate::ops::int_to_float(*float, value)))
            }
            (Untyped::Float(value), Type::Float(float)) => {
                let rounded = crate::ops::float_round(*float, value);
                if rounded.is_finite() {
                    Ok(Value::Float(*float, rounded))
                } else {
                    Err(Unrepresentable::FloatOutOfRange { value, ty: *float })
                }
            }
            (Untyped::Float(value), Type::Int(int)) => {
                if value.fract() == 0.0 && int.contains(value as i128) {
                    Ok(Value::Int(*int, value as i128))
                } else {
                    Err(Unrepresentable::NotAnInteger { value, ty: *int })
                }
            }
            (_, other) => Err(Unrepresentable::NotANumber(other.clone())),
        }
    }
}

/// Why an untyped constant has no value at a type.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Unrepresentable {
    #[error("`{value}` does not fit in `{}` ({}..={})", .ty.name(), .ty.min_value(), .ty.max_value())]
    IntOutOfRange { value: i128, ty: IntTy },
    #[error("`{value:?}` is out of range for `{}`", .ty.name())]
    FloatOutOfRange { value: f64, ty: FloatTy },
    #[error("`{value:?}` is not an integer value of `{}`", .ty.name())]
    NotAnInteger { value: f64, ty: IntTy },
    #[error("a number is not a `{0}`")]
    NotANumber(Type),
}
