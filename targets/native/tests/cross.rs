//! Cross-target tests for real: the object files of the examples and of the vector test
//! programs (`tests/programs`), for x86_64 (linked with the system `cc`) and aarch64 (linked
//! with `aarch64-linux-gnu-gcc -static`, run under `qemu-aarch64`), driven by a generated C
//! program through the generated header, print the same results as the host JIT.
//! `scripts/test.sh` installs the toolchains.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::fmt::Write;
use std::path::Path;
use std::process::Command;

use naas_ir::interp::Slot;
use naas_ir::ir::{Scalar, ScalarTy, VarTy};
use naas_ir::laws::random_scalar;
use naas_lang::types::{FloatTy, IntTy};
use naas_stdx::Rng;
use naas_target_native::abi::{AggregateAbi, StructLayout};
use naas_target_native::object::{c_header, compile_object};
use naas_target_native::values::ColumnBuf;
use naas_target_native::JitAggregate;

const RECORDS: usize = 203;
const KEYS: usize = 5;

fn c_type(ty: ScalarTy) -> &'static str {
    match ty {
        ScalarTy::Bool | ScalarTy::Int(IntTy::U8) => "uint8_t",
        ScalarTy::Int(IntTy::I8) => "int8_t",
        ScalarTy::Int(IntTy::I16) => "int16_t",
        ScalarTy::Int(IntTy::I32) => "int32_t",
        ScalarTy::Int(IntTy::I64) => "int64_t",
        ScalarTy::Int(IntTy::U16) => "uint16_t",
        ScalarTy::Int(IntTy::U32) => "uint32_t",
        ScalarTy::Int(IntTy::U64) => "uint64_t",
        ScalarTy::Float(FloatTy::F32) => "float",
        ScalarTy::Float(FloatTy::F64) => "double",
    }
}

fn c_literal(value: Scalar) -> String {
    match value {
        Scalar::Bool(b) => u8::from(b).to_string(),
        Scalar::Int(IntTy::I64, v) if v == i128::from(i64::MIN) => "INT64_MIN".to_string(),
        Scalar::Int(ty, v) if ty.signed() => format!("{v}LL"),
        Scalar::Int(_, v) => format!("{v}ULL"),
        Scalar::Float(_, v) => format!("{v:?}"),
    }
}

/// One line per scalar of a struct, in the format `print_struct` (C) writes.
fn expected_lines(slots: &[Slot]) -> Vec<String> {
    let mut out = Vec::new();
    for slot in slots {
        let values = match slot {
            Slot::Scalar(v) => vec![*v],
            Slot::Array(vs) => vs.clone(),
        };
        for value in values {
            out.push(match value {
                Scalar::Bool(b) => u8::from(b).to_string(),
                Scalar::Int(_, v) => v.to_string(),
                Scalar::Float(_, v) if v.is_nan() => "nan".to_string(),
                Scalar::Float(FloatTy::F32, v) => format!("{:08x}", (v as f32).to_bits()),
                Scalar::Float(FloatTy::F64, v) => format!("{:016x}", v.to_bits()),
            });
        }
    }
    out
}

/// C statements printing every scalar of a struct at `ptr`, by offset.
fn print_struct(out: &mut String, layout: &StructLayout, ptr: &str) {
    for field in &layout.fields {
        let ty = field.ty.scalar();
        let count = match field.ty {
            VarTy::Scalar(_) => 1,
            VarTy::Array(_, len) => len,
        };
        for i in 0..count {
            let offset = field.offset + i * ty.size_bytes();
            let ct = c_type(ty);
            let _ = write!(out, "    {{ {ct} v; memcpy(&v, (const uint8_t *)({ptr}) + {offset}, sizeof v); ");
            let _ = match ty {
                ScalarTy::Bool => writeln!(out, "printf(\"%u\\n\", (unsigned)v); }}"),
                ScalarTy::Int(int) if int.signed() => writeln!(out, "printf(\"%lld\\n\", (long long)v); }}"),
                ScalarTy::Int(_) => writeln!(out, "printf(\"%llu\\n\", (unsigned long long)v); }}"),
                ScalarTy::Float(FloatTy::F32) => writeln!(
                    out,
                    "if (v != v) printf(\"nan\\n\"); else {{ uint32_t b; memcpy(&b, &v, 4); printf(\"%08x\\n\", b); }} }}"
                ),
                ScalarTy::Float(FloatTy::F64) => writeln!(
                    out,
                    "if (v != v) printf(\"nan\\n\"); else {{ uint64_t b; memcpy(&b, &v, 8); printf(\"%016llx\\n\", (unsigned long long)b); }} }}"
                ),
            };
        }
    }
}

struct Case {
    driver: String,
    expected: Vec<String>,
}

/// The programs run on both architectures: the examples, and the test programs whose folds run
/// on vectors (so that vector code is checked on aarch64 too).
const PROGRAMS: [&str; 6] = [
    "../../examples/reduce.naas",
    "../../examples/robust_mean.naas",
    "../../examples/top_k.naas",
    "../../examples/histogram.naas",
    "tests/programs/vector_mixed.naas",
    "tests/programs/vector_casts.naas",
];

/// The C driver for one program (a path relative to this crate), and what it must print
/// (computed with the host JIT).
fn case(program: &str) -> (Case, naas_ir::Compiled) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(program);
    let compiled = naas_test_support::compile_source(&std::fs::read_to_string(&path).unwrap());
    let plan = &compiled.aggregates[0];
    let jit = JitAggregate::compile(&compiled.optimized, plan).unwrap();
    let abi: &AggregateAbi = &jit.abi;
    let s = &abi.symbol;
    let mut rng = Rng::new(42);
    let mut columns: Vec<ColumnBuf> = abi.columns.iter().map(|(_, ty)| ColumnBuf::new(*ty)).collect();
    let mut literals: Vec<Vec<String>> = vec![Vec::new(); columns.len()];
    for _ in 0..RECORDS {
        for ((column, (_, ty)), lits) in columns.iter_mut().zip(&abi.columns).zip(&mut literals) {
            let value = random_scalar(&mut rng, *ty);
            column.push(value);
            lits.push(c_literal(value));
        }
    }
    let slots: Vec<u32> = (0..RECORDS).map(|_| rng.below(KEYS) as u32).collect();

    let views: Vec<_> = columns.iter().map(ColumnBuf::column).collect();
    let mut expected = Vec::new();
    let mut state = jit.new_state();
    jit.fold(&mut state, &views).unwrap();
    expected.push("fold 0".to_string());
    expected.extend(expected_lines(&jit.finish(&state).unwrap()));
    let mut table = jit.new_table(KEYS);
    jit.fold_keyed(&mut table, &slots, &views).unwrap();
    let size = abi.state.size as usize;
    let key_state = |k: usize| {
        let mut st = jit.new_state();
        st.as_mut_bytes().copy_from_slice(&table.as_bytes()[k * size..(k + 1) * size]);
        st
    };
    for k in 0..KEYS {
        expected.extend(expected_lines(&jit.finish(&key_state(k)).unwrap()));
    }
    let mut merged = key_state(0);
    jit.merge(&mut merged, &key_state(1)).unwrap();
    expected.extend(expected_lines(&jit.finish(&merged).unwrap()));

    let mut c = String::from("#include <stdio.h>\n#include <string.h>\n#include <stdint.h>\n#include \"naas.h\"\n\n");
    for (i, ((_, ty), lits)) in abi.columns.iter().zip(&literals).enumerate() {
        let _ = writeln!(c, "static const {} col{i}[{RECORDS}] = {{{}}};", c_type(*ty), lits.join(", "));
    }
    let slot_list: Vec<String> = slots.iter().map(ToString::to_string).collect();
    let _ = writeln!(c, "static const uint32_t slots[{RECORDS}] = {{{}}};\n", slot_list.join(", "));
    let _ = writeln!(c, "static void print_result(const {s}_result *r) {{");
    print_struct(&mut c, &abi.result, "r");
    c.push_str("}\n\nint main(void) {\n");
    let cols: Vec<String> = (0..abi.columns.len()).map(|i| format!("col{i}")).collect();
    let _ = writeln!(
        c,
        "    const void *columns[] = {{{}}};",
        if cols.is_empty() { "0".to_string() } else { cols.join(", ") }
    );
    let _ = writeln!(c, "    {s}_state state; {s}_result result; naas_fault fault;");
    let _ = writeln!(c, "    {s}_init(&state);");
    let _ = writeln!(c, "    printf(\"fold %u\\n\", {s}_fold(&state, columns, {RECORDS}, &fault));");
    let _ = writeln!(c, "    if ({s}_finish(&state, &result, &fault)) return 1;\n    print_result(&result);");
    let _ = writeln!(c, "    {s}_state table[{KEYS}];\n    for (int k = 0; k < {KEYS}; k++) {s}_init(&table[k]);");
    let _ = writeln!(c, "    if ({s}_fold_keyed(table, slots, columns, {RECORDS}, &fault)) return 2;");
    let _ = writeln!(c, "    for (int k = 0; k < {KEYS}; k++) {{ if ({s}_finish(&table[k], &result, &fault)) return 3; print_result(&result); }}");
    let _ = writeln!(c, "    if ({s}_merge(&table[0], &table[1], &fault)) return 4;");
    let _ = writeln!(
        c,
        "    if ({s}_finish(&table[0], &result, &fault)) return 5;\n    print_result(&result);\n    return 0;\n}}"
    );
    (Case { driver: c, expected }, compiled)
}

fn require(tool: &str) {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().map(|o| o.status.success());
    assert!(
        found.unwrap_or(false),
        "`{tool}` is not installed: install qemu-user, gcc-aarch64-linux-gnu and libc6-dev-arm64-cross (scripts/test.sh does)"
    );
}

fn run_cross(arch: &str, compiler: &[&str], runner: Option<&str>) {
    require(compiler[0]);
    if let Some(runner) = runner {
        require(runner);
    }
    for program in PROGRAMS {
        let (case, compiled) = case(program);
        // A fresh directory per build, removed afterwards: concurrent runs cannot clash.
        let work = naas_test_support::temp_dir();
        let dir = work.path();
        let object = compile_object(&compiled, arch).unwrap();
        std::fs::write(dir.join("naas.o"), &object.bytes).unwrap();
        std::fs::write(dir.join("naas.h"), c_header(&object.abis)).unwrap();
        std::fs::write(dir.join("driver.c"), &case.driver).unwrap();
        let build = Command::new(compiler[0])
            .args(&compiler[1..])
            .args(["-O1", "-std=c11", "driver.c", "naas.o", "-o", "driver"])
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(build.status.success(), "{arch} {program}: {}", String::from_utf8_lossy(&build.stderr));
        let run = match runner {
            Some(runner) => Command::new(runner).arg(dir.join("driver")).output().unwrap(),
            None => Command::new(dir.join("driver")).output().unwrap(),
        };
        assert!(run.status.success(), "{arch} {program}: driver exited with {:?}", run.status);
        let lines: Vec<String> = String::from_utf8_lossy(&run.stdout).lines().map(str::to_string).collect();
        assert_eq!(lines, case.expected, "{arch} {program}: native output differs from the host JIT");
    }
}

#[test]
fn x86_64_objects_linked_with_cc_agree_with_the_jit() {
    run_cross("x86_64", &["cc"], None);
}

#[test]
fn aarch64_objects_under_qemu_agree_with_the_jit() {
    run_cross("aarch64", &["aarch64-linux-gnu-gcc", "-static"], Some("qemu-aarch64"));
}
