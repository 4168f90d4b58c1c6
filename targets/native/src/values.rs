//! Bytes in and out of native code: typed input columns, state buffers and tables, and the
//! conversion between the C layouts and the interpreter's slots (for tests and the runtime).

use naas_ir::interp::Slot;
use naas_ir::ir::{Scalar, ScalarTy, VarTy};
use naas_lang::types::{FloatTy, IntTy};

use crate::abi::StructLayout;

/// One input column: a slice of one scalar type. Bools are bytes holding 0 or 1.
#[derive(Clone, Copy, Debug)]
pub enum Column<'a> {
    Bool(&'a [u8]),
    I8(&'a [i8]),
    I16(&'a [i16]),
    I32(&'a [i32]),
    I64(&'a [i64]),
    U8(&'a [u8]),
    U16(&'a [u16]),
    U32(&'a [u32]),
    U64(&'a [u64]),
    F32(&'a [f32]),
    F64(&'a [f64]),
}

impl<'a> Column<'a> {
    /// The values of rows `range` (panics outside the column, as slicing does).
    pub fn slice(&self, range: std::ops::Range<usize>) -> Column<'a> {
        match *self {
            Column::Bool(v) => Column::Bool(&v[range]),
            Column::I8(v) => Column::I8(&v[range]),
            Column::I16(v) => Column::I16(&v[range]),
            Column::I32(v) => Column::I32(&v[range]),
            Column::I64(v) => Column::I64(&v[range]),
            Column::U8(v) => Column::U8(&v[range]),
            Column::U16(v) => Column::U16(&v[range]),
            Column::U32(v) => Column::U32(&v[range]),
            Column::U64(v) => Column::U64(&v[range]),
            Column::F32(v) => Column::F32(&v[range]),
            Column::F64(v) => Column::F64(&v[range]),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Column::Bool(v) | Column::U8(v) => v.len(),
            Column::I8(v) => v.len(),
            Column::I16(v) => v.len(),
            Column::I32(v) => v.len(),
            Column::I64(v) => v.len(),
            Column::U16(v) => v.len(),
            Column::U32(v) => v.len(),
            Column::U64(v) => v.len(),
            Column::F32(v) => v.len(),
            Column::F64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn ty(&self) -> ScalarTy {
        match self {
            Column::Bool(_) => ScalarTy::Bool,
            Column::I8(_) => ScalarTy::Int(IntTy::I8),
            Column::I16(_) => ScalarTy::Int(IntTy::I16),
            Column::I32(_) => ScalarTy::Int(IntTy::I32),
            Column::I64(_) => ScalarTy::Int(IntTy::I64),
            Column::U8(_) => ScalarTy::Int(IntTy::U8),
            Column::U16(_) => ScalarTy::Int(IntTy::U16),
            Column::U32(_) => ScalarTy::Int(IntTy::U32),
            Column::U64(_) => ScalarTy::Int(IntTy::U64),
            Column::F32(_) => ScalarTy::Float(FloatTy::F32),
            Column::F64(_) => ScalarTy::Float(FloatTy::F64),
        }
    }

    pub fn as_ptr(&self) -> *const u8 {
        match self {
            Column::Bool(v) | Column::U8(v) => v.as_ptr(),
            Column::I8(v) => v.as_ptr().cast(),
            Column::I16(v) => v.as_ptr().cast(),
            Column::I32(v) => v.as_ptr().cast(),
            Column::I64(v) => v.as_ptr().cast(),
            Column::U16(v) => v.as_ptr().cast(),
            Column::U32(v) => v.as_ptr().cast(),
            Column::U64(v) => v.as_ptr().cast(),
            Column::F32(v) => v.as_ptr().cast(),
            Column::F64(v) => v.as_ptr().cast(),
        }
    }
}

/// An owned column, built from scalars (tests, the runtime's batches).
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnBuf {
    Bool(Vec<u8>),
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl ColumnBuf {
    pub fn new(ty: ScalarTy) -> ColumnBuf {
        match ty {
            ScalarTy::Bool => ColumnBuf::Bool(Vec::new()),
            ScalarTy::Int(IntTy::I8) => ColumnBuf::I8(Vec::new()),
            ScalarTy::Int(IntTy::I16) => ColumnBuf::I16(Vec::new()),
            ScalarTy::Int(IntTy::I32) => ColumnBuf::I32(Vec::new()),
            ScalarTy::Int(IntTy::I64) => ColumnBuf::I64(Vec::new()),
            ScalarTy::Int(IntTy::U8) => ColumnBuf::U8(Vec::new()),
            ScalarTy::Int(IntTy::U16) => ColumnBuf::U16(Vec::new()),
            ScalarTy::Int(IntTy::U32) => ColumnBuf::U32(Vec::new()),
            ScalarTy::Int(IntTy::U64) => ColumnBuf::U64(Vec::new()),
            ScalarTy::Float(FloatTy::F32) => ColumnBuf::F32(Vec::new()),
            ScalarTy::Float(FloatTy::F64) => ColumnBuf::F64(Vec::new()),
        }
    }

    /// Appends a scalar of the column's type (integers are in range by construction).
    pub fn push(&mut self, value: Scalar) {
        match (self, value) {
            (ColumnBuf::Bool(v), Scalar::Bool(b)) => v.push(u8::from(b)),
            (ColumnBuf::I8(v), Scalar::Int(_, x)) => v.push(x as i8),
            (ColumnBuf::I16(v), Scalar::Int(_, x)) => v.push(x as i16),
            (ColumnBuf::I32(v), Scalar::Int(_, x)) => v.push(x as i32),
            (ColumnBuf::I64(v), Scalar::Int(_, x)) => v.push(x as i64),
            (ColumnBuf::U8(v), Scalar::Int(_, x)) => v.push(x as u8),
            (ColumnBuf::U16(v), Scalar::Int(_, x)) => v.push(x as u16),
            (ColumnBuf::U32(v), Scalar::Int(_, x)) => v.push(x as u32),
            (ColumnBuf::U64(v), Scalar::Int(_, x)) => v.push(x as u64),
            (ColumnBuf::F32(v), Scalar::Float(_, x)) => v.push(x as f32),
            (ColumnBuf::F64(v), Scalar::Float(_, x)) => v.push(x),
            _ => {}
        }
    }

    /// Keeps the first `len` values (a row that failed half-way is taken back this way).
    pub fn truncate(&mut self, len: usize) {
        match self {
            ColumnBuf::Bool(v) | ColumnBuf::U8(v) => v.truncate(len),
            ColumnBuf::I8(v) => v.truncate(len),
            ColumnBuf::I16(v) => v.truncate(len),
            ColumnBuf::I32(v) => v.truncate(len),
            ColumnBuf::I64(v) => v.truncate(len),
            ColumnBuf::U16(v) => v.truncate(len),
            ColumnBuf::U32(v) => v.truncate(len),
            ColumnBuf::U64(v) => v.truncate(len),
            ColumnBuf::F32(v) => v.truncate(len),
            ColumnBuf::F64(v) => v.truncate(len),
        }
    }

    pub fn column(&self) -> Column<'_> {
        match self {
            ColumnBuf::Bool(v) => Column::Bool(v),
            ColumnBuf::I8(v) => Column::I8(v),
            ColumnBuf::I16(v) => Column::I16(v),
            ColumnBuf::I32(v) => Column::I32(v),
            ColumnBuf::I64(v) => Column::I64(v),
            ColumnBuf::U8(v) => Column::U8(v),
            ColumnBuf::U16(v) => Column::U16(v),
            ColumnBuf::U32(v) => Column::U32(v),
            ColumnBuf::U64(v) => Column::U64(v),
            ColumnBuf::F32(v) => Column::F32(v),
            ColumnBuf::F64(v) => Column::F64(v),
        }
    }
}

/// Bytes with 8-byte alignment, holding one or more C structs.
#[derive(Clone, Debug, PartialEq)]
pub struct AlignedBytes {
    words: Vec<u64>,
    len: usize,
}

impl AlignedBytes {
    pub fn zeroed(len: usize) -> AlignedBytes {
        AlignedBytes { words: vec![0; len.div_ceil(8).max(1)], len }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_bytes(&self) -> &[u8] {
        // `bytemuck` checks at compile time that u64 has no padding and that any byte pattern
        // is a valid u8 and u64, which makes the views safe.
        &bytemuck::cast_slice::<u64, u8>(&self.words)[..self.len]
    }

    pub fn as_mut_bytes(&mut self) -> &mut [u8] {
        let len = self.len;
        &mut bytemuck::cast_slice_mut::<u64, u8>(&mut self.words)[..len]
    }

    pub fn as_ptr(&self) -> *const u8 {
        self.words.as_ptr().cast()
    }

    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.words.as_mut_ptr().cast()
    }
}

/// Reads the value of a field from a struct's bytes.
pub fn read_scalar(bytes: &[u8], offset: usize, ty: ScalarTy) -> Scalar {
    let take = |n: usize| -> [u8; 8] {
        let mut out = [0u8; 8];
        if let Some(src) = bytes.get(offset..offset + n) {
            out[..n].copy_from_slice(src);
        }
        out
    };
    match ty {
        ScalarTy::Bool => Scalar::Bool(take(1)[0] != 0),
        ScalarTy::Int(int) => {
            let raw = u64::from_le_bytes(take((int.bits() / 8) as usize));
            let value = naas_lang::ops::wrap(int, i128::from(raw));
            Scalar::Int(int, value)
        }
        ScalarTy::Float(FloatTy::F32) => {
            let raw = take(4);
            Scalar::Float(FloatTy::F32, f64::from(f32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]])))
        }
        ScalarTy::Float(FloatTy::F64) => Scalar::Float(FloatTy::F64, f64::from_le_bytes(take(8))),
    }
}

/// Writes a scalar into a struct's bytes.
pub fn write_scalar(bytes: &mut [u8], offset: usize, value: Scalar) {
    let (raw, n): ([u8; 8], usize) = match value {
        Scalar::Bool(b) => ([u8::from(b), 0, 0, 0, 0, 0, 0, 0], 1),
        Scalar::Int(int, v) => ((v as i64).to_le_bytes(), (int.bits() / 8) as usize),
        Scalar::Float(FloatTy::F32, v) => {
            let b = (v as f32).to_le_bytes();
            ([b[0], b[1], b[2], b[3], 0, 0, 0, 0], 4)
        }
        Scalar::Float(FloatTy::F64, v) => (v.to_le_bytes(), 8),
    };
    if let Some(dst) = bytes.get_mut(offset..offset + n) {
        dst.copy_from_slice(&raw[..n]);
    }
}

/// Decodes a struct into slots, one per field.
pub fn decode(bytes: &[u8], layout: &StructLayout) -> Vec<Slot> {
    layout
        .fields
        .iter()
        .map(|field| {
            let ty = field.ty.scalar();
            let size = ty.size_bytes() as usize;
            match field.ty {
                VarTy::Scalar(_) => Slot::Scalar(read_scalar(bytes, field.offset as usize, ty)),
                VarTy::Array(_, len) => Slot::Array(
                    (0..len as usize).map(|i| read_scalar(bytes, field.offset as usize + i * size, ty)).collect(),
                ),
            }
        })
        .collect()
}

/// Gives every scalar of a struct's bytes to `each`, fields in order and array elements in
/// order (the order of [`decode`]'s slots, flattened).
pub fn for_each_scalar(bytes: &[u8], layout: &StructLayout, mut each: impl FnMut(Scalar)) {
    for field in &layout.fields {
        let ty = field.ty.scalar();
        let size = ty.size_bytes() as usize;
        let len = match field.ty {
            VarTy::Scalar(_) => 1,
            VarTy::Array(_, len) => len as usize,
        };
        for i in 0..len {
            each(read_scalar(bytes, field.offset as usize + i * size, ty));
        }
    }
}

/// Encodes slots (one per field) into a struct's bytes.
pub fn encode(bytes: &mut [u8], layout: &StructLayout, slots: &[Slot]) {
    for (field, slot) in layout.fields.iter().zip(slots) {
        let size = field.ty.scalar().size_bytes() as usize;
        match slot {
            Slot::Scalar(value) => write_scalar(bytes, field.offset as usize, *value),
            Slot::Array(values) => {
                for (i, value) in values.iter().enumerate() {
                    write_scalar(bytes, field.offset as usize + i * size, *value);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use super::*;

    #[test]
    fn truncate_keeps_the_first_values_of_every_type() {
        for ty in [ScalarTy::Bool, ScalarTy::Int(IntTy::I16), ScalarTy::Int(IntTy::U64), ScalarTy::Float(FloatTy::F32)]
        {
            let mut buf = ColumnBuf::new(ty);
            for _ in 0..5 {
                buf.push(Scalar::zero(ty));
            }
            buf.truncate(2);
            assert_eq!(buf.column().len(), 2, "{ty:?}");
            buf.truncate(7);
            assert_eq!(buf.column().len(), 2, "{ty:?}");
        }
    }

    #[test]
    fn aligned_bytes_view_exactly_their_length() {
        let mut bytes = AlignedBytes::zeroed(11);
        assert_eq!(bytes.as_bytes().len(), 11);
        bytes.as_mut_bytes()[10] = 7;
        assert_eq!(bytes.as_bytes()[10], 7);
        assert_eq!(bytes.as_ptr() as usize % 8, 0);
    }
}
