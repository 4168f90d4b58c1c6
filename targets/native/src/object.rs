//! Relocatable object files for NIC cores (x86_64 and aarch64) with cranelift-object, and
//! the matching C header.

use std::fmt::Write;

use cranelift_codegen::settings::{self, Configurable};
use cranelift_object::{ObjectBuilder, ObjectModule};
use naas_ir::ir::{ScalarTy, VarTy};
use naas_lang::types::{FloatTy, IntTy};
use naas_lang::InternalError;

use crate::abi::{AggregateAbi, FaultSite, StructLayout};
use crate::entry::EntryBuilder;
use crate::error::NativeError;

/// The architectures `--arch` accepts, with their target triples.
pub const ARCHES: [(&str, &str); 2] =
    [("x86_64", "x86_64-unknown-linux-gnu"), ("aarch64", "aarch64-unknown-linux-gnu")];

/// An object file with the entry points of every aggregate of a program.
pub struct ObjectCode {
    pub bytes: Vec<u8>,
    pub abis: Vec<AggregateAbi>,
    /// Fault sites per aggregate, in `abis` order.
    pub sites: Vec<Vec<FaultSite>>,
    pub clif: Vec<String>,
}

/// Compiles every aggregate of `compiled` for `arch` (`x86_64` or `aarch64`).
pub fn compile_object(compiled: &naas_ir::Compiled, arch: &str) -> Result<ObjectCode, NativeError> {
    let triple = ARCHES
        .iter()
        .find(|(name, _)| *name == arch)
        .map(|(_, triple)| *triple)
        .ok_or_else(|| NativeError::UnknownArch(arch.to_string()))?;
    // The settings and triples are this crate's own constants: Cranelift refusing them is a
    // bug of ours, whereas a missing backend is the build's limitation.
    let mut flags = settings::builder();
    flags.set("opt_level", "speed").map_err(|e| InternalError::new(format!("opt_level: {e}")))?;
    flags.set("is_pic", "true").map_err(|e| InternalError::new(format!("is_pic: {e}")))?;
    let triple: target_lexicon::Triple =
        triple.parse().map_err(|e| InternalError::new(format!("bad target triple `{triple}`: {e}")))?;
    let isa = cranelift_codegen::isa::lookup(triple)
        .map_err(|e| NativeError::UnsupportedArch { arch: arch.to_string(), message: e.to_string() })?
        .finish(settings::Flags::new(flags))
        .map_err(|e| NativeError::UnsupportedArch { arch: arch.to_string(), message: e.to_string() })?;
    let builder = ObjectBuilder::new(isa, "naas", cranelift_module::default_libcall_names())
        .map_err(|e| NativeError::Module(e.to_string()))?;
    let mut module = ObjectModule::new(builder);
    let mut entries = EntryBuilder::new();
    let mut abis = Vec::new();
    let mut all_sites = Vec::new();
    for plan in &compiled.aggregates {
        let abi = AggregateAbi::new(plan)?;
        let mut sites = Vec::new();
        entries.build(&mut module, &compiled.optimized, plan, &abi, &mut sites)?;
        abis.push(abi);
        all_sites.push(sites);
    }
    let bytes = module.finish().emit().map_err(|e| NativeError::Emit(e.to_string()))?;
    Ok(ObjectCode { bytes, abis, sites: all_sites, clif: entries.clif })
}

fn c_type(ty: ScalarTy) -> &'static str {
    match ty {
        ScalarTy::Bool => "uint8_t",
        ScalarTy::Int(IntTy::I8) => "int8_t",
        ScalarTy::Int(IntTy::I16) => "int16_t",
        ScalarTy::Int(IntTy::I32) => "int32_t",
        ScalarTy::Int(IntTy::I64) => "int64_t",
        ScalarTy::Int(IntTy::U8) => "uint8_t",
        ScalarTy::Int(IntTy::U16) => "uint16_t",
        ScalarTy::Int(IntTy::U32) => "uint32_t",
        ScalarTy::Int(IntTy::U64) => "uint64_t",
        ScalarTy::Float(FloatTy::F32) => "float",
        ScalarTy::Float(FloatTy::F64) => "double",
    }
}

fn c_struct(out: &mut String, name: &str, layout: &StructLayout) {
    let _ = writeln!(out, "typedef struct {name} {{");
    let mut offset = 0u32;
    let mut used = std::collections::HashSet::new();
    for (i, field) in layout.fields.iter().enumerate() {
        if field.offset > offset {
            let _ = writeln!(out, "    uint8_t _pad{i}[{}];", field.offset - offset);
        }
        let mut member = crate::abi::c_identifier(&field.name);
        if !used.insert(member.clone()) {
            member = format!("{member}_{i}");
            used.insert(member.clone());
        }
        let ty = c_type(field.ty.scalar());
        match field.ty {
            VarTy::Scalar(_) => {
                let _ = writeln!(out, "    {ty} {member}; /* offset {}: {} */", field.offset, field.name);
            }
            VarTy::Array(_, len) => {
                let _ = writeln!(out, "    {ty} {member}[{len}]; /* offset {}: {} */", field.offset, field.name);
            }
        }
        offset = field.offset + u32::try_from(field.ty.size_bytes()).unwrap_or(0);
    }
    if layout.size > offset {
        let _ = writeln!(out, "    uint8_t _tail[{}];", layout.size - offset);
    }
    let _ = writeln!(out, "}} {name};");
    let _ = writeln!(out, "_Static_assert(sizeof({name}) == {}, \"{name} layout\");", layout.size);
}

/// The C header for the object file of a program: state and result structs and prototypes.
pub fn c_header(abis: &[AggregateAbi]) -> String {
    let mut out = String::from(
        "/* Generated by naasc: the C ABI of compiled naas aggregations. Do not edit. */\n\
         #ifndef NAAS_AGGREGATES_H\n#define NAAS_AGGREGATES_H\n\n#include <stdint.h>\n\n\
         /* Filled when an entry point returns a non-zero status (1 + the fault site). */\n\
         typedef struct naas_fault {\n    uint64_t record; /* index of the record being folded */\n    int64_t value;   /* the offending index, for out-of-range accesses */\n} naas_fault;\n\n",
    );
    for abi in abis {
        let s = &abi.symbol;
        let _ = writeln!(out, "/* aggregate {} */", abi.name);
        c_struct(&mut out, &format!("{s}_state"), &abi.state);
        c_struct(&mut out, &format!("{s}_result"), &abi.result);
        let columns: Vec<String> = abi.columns.iter().map(|(name, ty)| format!("{} ({name})", c_type(*ty))).collect();
        let _ = writeln!(out, "/* columns, in order: {} */", columns.join(", "));
        let _ = writeln!(out, "void {s}_init({s}_state *state);");
        let _ = writeln!(
            out,
            "uint32_t {s}_fold({s}_state *state, const void *const *columns, uint64_t n, naas_fault *fault);"
        );
        let _ = writeln!(
            out,
            "uint32_t {s}_fold_keyed({s}_state *states, const uint32_t *slots, const void *const *columns, uint64_t n, naas_fault *fault);"
        );
        let _ = writeln!(out, "uint32_t {s}_merge({s}_state *dst, const {s}_state *src, naas_fault *fault);");
        let _ = writeln!(out, "uint32_t {s}_finish(const {s}_state *state, {s}_result *out, naas_fault *fault);\n");
    }
    out.push_str("#endif\n");
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use super::*;

    #[test]
    fn unknown_architectures_and_array_inputs_are_typed_errors() {
        let compiled = naas_test_support::compile_source("aggregate s(x: i64) -> i64:\n    return sum(x)\n");
        let error = compile_object(&compiled, "riscv64").err().expect("riscv64 is not built for");
        assert_eq!(error, NativeError::UnknownArch("riscv64".to_string()));
        assert_eq!(error.to_string(), "unknown architecture `riscv64`; expected one of x86_64, aarch64");
        assert!(compile_object(&compiled, "aarch64").is_ok());

        let arrays = naas_test_support::compile_source(
            "aggregate s(xs: array[i64, 2]) -> i64:\n    return sum(xs[0] + xs[1])\n",
        );
        let error = compile_object(&arrays, "x86_64").err().expect("an array input has no native column");
        assert_eq!(error, NativeError::ArrayInput { aggregate: "s".to_string(), input: "xs".to_string() });
        assert!(error.to_string().contains("native folds read one scalar column per field"), "{error}");
    }
}
