//! The C ABI of compiled aggregations: the layout of the state and result records, the
//! input columns, the entry points and their fault reporting. The C header that
//! `naasc compile --emit header` writes describes exactly this.
//!
//! Every aggregate `NAME` gets these functions (all use the platform's C calling convention):
//!
//! ```c
//! void     NAME_init(uint8_t *state);
//! uint32_t NAME_fold(uint8_t *state, const void *const *columns, uint64_t n, naas_fault *fault);
//! uint32_t NAME_fold_keyed(uint8_t *states, const uint32_t *slots, const void *const *columns,
//!                          uint64_t n, naas_fault *fault);
//! uint32_t NAME_merge(uint8_t *dst, const uint8_t *src, naas_fault *fault);
//! uint32_t NAME_finish(const uint8_t *state, uint8_t *out, naas_fault *fault);
//! ```
//!
//! A return value of 0 means success; otherwise it is 1 + the index of the *fault site* (a
//! source operation that can fail), and `fault` holds the record index (folds) and the
//! offending value (an out-of-range index). `fold` leaves the state unchanged when it
//! faults; `fold_keyed` has applied the records before the faulting one.

use naas_ir::decompose::AggregatePlan;
use naas_ir::ir::{ScalarTy, VarTy};
use naas_lang::ops::Fault;
use naas_lang::span::Span;

use crate::error::NativeError;

/// Where each field of a C struct lives.
#[derive(Clone, Debug, PartialEq)]
pub struct StructLayout {
    pub fields: Vec<FieldLayout>,
    pub size: u32,
    pub align: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FieldLayout {
    pub name: String,
    pub ty: VarTy,
    pub offset: u32,
}

impl StructLayout {
    /// Lays fields out in order, each aligned to its scalar size (as a C compiler does).
    pub fn new(fields: impl IntoIterator<Item = (String, VarTy)>) -> StructLayout {
        let mut offset = 0u32;
        let mut align = 1u32;
        let fields = fields
            .into_iter()
            .map(|(name, ty)| {
                let a = ty.scalar().size_bytes();
                align = align.max(a);
                offset = offset.div_ceil(a) * a;
                let field = FieldLayout { name, ty, offset };
                offset += u32::try_from(ty.size_bytes()).unwrap_or(u32::MAX);
                field
            })
            .collect();
        StructLayout { fields, size: offset.div_ceil(align).max(1) * align, align }
    }
}

/// What can go wrong at a fault site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    DivisionByZero,
    NegativeShift,
    /// `unsigned`: the index's type is unsigned, so the reported 64-bit value is read as such.
    IndexOutOfBounds {
        len: u32,
        unsigned: bool,
    },
}

/// A source operation that can fault, numbered in the order the translator meets them.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultSite {
    pub kind: FaultKind,
    pub span: Span,
    /// The IR function it belongs to (`top_k.merge`).
    pub function: String,
}

/// A fault reported by native code, resolved to its site.
#[derive(Clone, Debug, PartialEq)]
pub struct NativeFault {
    pub fault: Fault,
    pub span: Span,
    pub function: String,
    /// The index of the record being folded (0 outside folds).
    pub record: u64,
}

impl std::fmt::Display for NativeFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in `{}`", self.fault, self.function)
    }
}

impl FaultSite {
    pub fn resolve(&self, record: u64, value: i64) -> NativeFault {
        let fault = match self.kind {
            FaultKind::DivisionByZero => Fault::DivisionByZero,
            FaultKind::NegativeShift => Fault::NegativeShift,
            FaultKind::IndexOutOfBounds { len, unsigned } => {
                let index = if unsigned { i128::from(value as u64) } else { i128::from(value) };
                Fault::IndexOutOfBounds { index, len }
            }
        };
        NativeFault { fault, span: self.span, function: self.function.clone(), record }
    }
}

/// The `naas_fault` out-parameter.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultRecord {
    pub record: u64,
    pub value: i64,
}

/// The layouts and names of one aggregate's native interface.
#[derive(Clone, Debug, PartialEq)]
pub struct AggregateAbi {
    pub name: String,
    /// A C identifier derived from the aggregate's name.
    pub symbol: String,
    pub state: StructLayout,
    pub result: StructLayout,
    /// One column per input field, in order.
    pub columns: Vec<(String, ScalarTy)>,
}

impl AggregateAbi {
    pub fn new(plan: &AggregatePlan) -> Result<AggregateAbi, NativeError> {
        let mut columns = Vec::new();
        for leaf in &plan.inputs {
            match leaf.var_ty() {
                VarTy::Scalar(ty) => columns.push((leaf.path.clone(), ty)),
                VarTy::Array(..) => {
                    return Err(NativeError::ArrayInput { aggregate: plan.name.clone(), input: leaf.path.clone() })
                }
            }
        }
        let state = StructLayout::new(plan.state.fields.iter().map(|f| (f.name.clone(), f.ty)));
        let result = StructLayout::new(plan.results.iter().map(|leaf| (leaf.path.clone(), leaf.var_ty())));
        Ok(AggregateAbi { name: plan.name.clone(), symbol: c_identifier(&plan.name), state, result, columns })
    }

    pub fn entry(&self, which: &str) -> String {
        format!("{}_{which}", self.symbol)
    }
}

/// Turns a name into a C identifier: runs of other characters become one `_`, and leading or
/// trailing ones are dropped (`min(delay)` becomes `min_delay`).
pub fn c_identifier(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use naas_lang::types::IntTy;

    #[test]
    fn structs_align_like_c() {
        let layout = StructLayout::new([
            ("a".to_string(), VarTy::Scalar(ScalarTy::Int(IntTy::I32))),
            ("b".to_string(), VarTy::Scalar(ScalarTy::Int(IntTy::I64))),
            ("c".to_string(), VarTy::Scalar(ScalarTy::Bool)),
        ]);
        assert_eq!(layout.fields.iter().map(|f| f.offset).collect::<Vec<_>>(), vec![0, 8, 16]);
        assert_eq!((layout.size, layout.align), (24, 8));
        assert_eq!(c_identifier("top-k.v2"), "top_k_v2");
        assert_eq!(c_identifier("min(delay)"), "min_delay");
        assert_eq!(c_identifier("count()"), "count");
    }
}
