//! How source types flatten into IR variables. A scalar is one variable; a tuple or record is
//! its components in order; `array[E, N]` is one IR array per leaf of `E` (struct of arrays),
//! each holding `N` times the leaf's size, so nested arrays are stored row-major.

use naas_lang::types::Type;

use crate::ir::{ScalarTy, VarTy};

/// The scalar type of a scalar source type.
pub fn scalar_ty(ty: &Type) -> Option<ScalarTy> {
    match ty {
        Type::Bool => Some(ScalarTy::Bool),
        Type::Int(int) => Some(ScalarTy::Int(*int)),
        Type::Float(float) => Some(ScalarTy::Float(*float)),
        _ => None,
    }
}

/// One leaf of a type's layout: its path (for names), its scalar type and how many scalars
/// it holds (1 unless it lies under arrays).
#[derive(Clone, Debug, PartialEq)]
pub struct Leaf {
    pub path: String,
    pub ty: ScalarTy,
    pub count: u32,
    /// True when the leaf lies under an array (even one of length 1).
    pub array: bool,
}

impl Leaf {
    pub fn var_ty(&self) -> VarTy {
        if self.array {
            VarTy::Array(self.ty, self.count)
        } else {
            VarTy::Scalar(self.ty)
        }
    }
}

/// The leaves of `ty` in layout order, with paths rooted at `name` (`s`, `s.0`,
/// `s.micros`; an array's leaves are named like its elements').
pub fn leaves(ty: &Type, name: &str) -> Vec<Leaf> {
    let mut out = Vec::new();
    collect(ty, name.to_string(), 1, false, &mut out);
    out
}

fn collect(ty: &Type, path: String, count: u32, array: bool, out: &mut Vec<Leaf>) {
    match ty {
        Type::Tuple(items) => {
            for (i, item) in items.iter().enumerate() {
                collect(item, format!("{path}.{i}"), count, array, out);
            }
        }
        Type::Record(record) => {
            for (field, item) in &record.fields {
                collect(item, format!("{path}.{field}"), count, array, out);
            }
        }
        Type::Array(elem, len) => collect(elem, path, count.saturating_mul(*len), true, out),
        other => {
            if let Some(scalar) = scalar_ty(other) {
                out.push(Leaf { path, ty: scalar, count, array });
            }
        }
    }
}

/// For each leaf of `elem`, how many scalars one element occupies in that leaf's array: the
/// stride between consecutive elements of an `array[elem, N]`.
pub fn leaf_strides(elem: &Type) -> Vec<u32> {
    leaves(elem, "").iter().map(|leaf| leaf.count).collect()
}

/// The variable types of a whole value of type `ty`.
pub fn var_types(ty: &Type) -> Vec<VarTy> {
    leaves(ty, "").iter().map(Leaf::var_ty).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use naas_lang::types::IntTy;

    #[test]
    fn arrays_of_tuples_become_one_array_per_component() {
        let pair = Type::Tuple(vec![Type::Int(IntTy::I64), Type::Int(IntTy::U8)]);
        let ty = Type::Array(Box::new(Type::Array(Box::new(pair), 3)), 4);
        let leaves = leaves(&ty, "t");
        assert_eq!(leaves.len(), 2);
        assert_eq!(leaves[0].path, "t.0");
        assert_eq!(leaves[0].count, 12);
        assert_eq!(leaves[1].var_ty(), VarTy::Array(ScalarTy::Int(IntTy::U8), 12));
        assert_eq!(leaf_strides(&Type::Array(Box::new(Type::Int(IntTy::I32)), 3)), vec![3]);
    }
}
