//! Unification of literal types: integer and float literals start as inference variables
//! and take the type their uses require; what stays open defaults to `i64` or `f64`.

use crate::types::{FloatTy, IntTy, Type, VarKind};

#[derive(Default, Debug)]
pub struct Infer {
    /// `Some(ty)` once variable `i` is bound.
    bindings: Vec<Option<Type>>,
}

/// Two types that cannot be made equal.
#[derive(Debug)]
pub struct Mismatch;

impl Infer {
    pub fn fresh(&mut self, kind: VarKind) -> Type {
        let id = u32::try_from(self.bindings.len()).unwrap_or(u32::MAX);
        self.bindings.push(None);
        Type::Var(id, kind)
    }

    /// Follows variable bindings at the top of `ty` only.
    pub fn shallow(&self, ty: &Type) -> Type {
        let mut current = ty.clone();
        while let Type::Var(id, _) = current {
            match self.bindings.get(id as usize) {
                Some(Some(bound)) => current = bound.clone(),
                _ => break,
            }
        }
        current
    }

    /// Resolves every variable inside `ty`; unbound ones take their default type.
    pub fn finalize(&self, ty: &Type) -> Type {
        match self.shallow(ty) {
            Type::Var(_, VarKind::Int) => Type::Int(IntTy::I64),
            Type::Var(_, VarKind::Float) => Type::Float(FloatTy::F64),
            Type::Tuple(items) => Type::Tuple(items.iter().map(|item| self.finalize(item)).collect()),
            Type::Array(elem, len) => Type::Array(Box::new(self.finalize(&elem)), len),
            other => other,
        }
    }

    /// Resolves variables inside `ty` without defaulting, for messages.
    pub fn display(&self, ty: &Type) -> Type {
        match self.shallow(ty) {
            Type::Tuple(items) => Type::Tuple(items.iter().map(|item| self.display(item)).collect()),
            Type::Array(elem, len) => Type::Array(Box::new(self.display(&elem)), len),
            other => other,
        }
    }

    pub fn unify(&mut self, a: &Type, b: &Type) -> Result<(), Mismatch> {
        let (a, b) = (self.shallow(a), self.shallow(b));
        match (&a, &b) {
            (Type::Error, _) | (_, Type::Error) => Ok(()),
            (Type::Var(x, kx), Type::Var(y, ky)) => {
                if x == y {
                    Ok(())
                } else if kx == ky {
                    self.bind(*x, b.clone());
                    Ok(())
                } else {
                    Err(Mismatch)
                }
            }
            (Type::Var(x, VarKind::Int), Type::Int(_)) | (Type::Var(x, VarKind::Float), Type::Float(_)) => {
                self.bind(*x, b.clone());
                Ok(())
            }
            (Type::Int(_), Type::Var(y, VarKind::Int)) | (Type::Float(_), Type::Var(y, VarKind::Float)) => {
                self.bind(*y, a.clone());
                Ok(())
            }
            (Type::Tuple(xs), Type::Tuple(ys)) if xs.len() == ys.len() => {
                for (x, y) in xs.iter().zip(ys) {
                    self.unify(x, y)?;
                }
                Ok(())
            }
            (Type::Array(x, n), Type::Array(y, m)) if n == m => self.unify(x, y),
            (Type::Bool, Type::Bool) => Ok(()),
            (Type::Int(x), Type::Int(y)) if x == y => Ok(()),
            (Type::Float(x), Type::Float(y)) if x == y => Ok(()),
            (Type::Record(x), Type::Record(y)) if x.name == y.name => Ok(()),
            _ => Err(Mismatch),
        }
    }

    fn bind(&mut self, id: u32, ty: Type) {
        if let Some(slot) = self.bindings.get_mut(id as usize) {
            *slot = Some(ty);
        }
    }

    pub fn is_int(&self, ty: &Type) -> bool {
        matches!(self.shallow(ty), Type::Int(_) | Type::Var(_, VarKind::Int))
    }

    pub fn is_float(&self, ty: &Type) -> bool {
        matches!(self.shallow(ty), Type::Float(_) | Type::Var(_, VarKind::Float))
    }

    pub fn is_numeric(&self, ty: &Type) -> bool {
        self.is_int(ty) || self.is_float(ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_variables_take_the_type_of_their_use_or_default() {
        let mut infer = Infer::default();
        let a = infer.fresh(VarKind::Int);
        let b = infer.fresh(VarKind::Int);
        let c = infer.fresh(VarKind::Float);
        assert!(infer.unify(&a, &b).is_ok());
        assert!(infer.unify(&b, &Type::Int(IntTy::U32)).is_ok());
        assert_eq!(infer.finalize(&a), Type::Int(IntTy::U32));
        assert_eq!(infer.finalize(&c), Type::F64);
        assert!(infer.unify(&a, &c).is_err());
        assert!(infer.unify(&c, &Type::I64).is_err());
    }
}
