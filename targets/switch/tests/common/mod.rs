//! What the switch target's integration tests share beyond `naas-test-support`: lowering a
//! source for the default profile, and rendering the diagnostics of a program that does not
//! fit. (A directory module, so that cargo does not build it as a test binary of its own.)

#![allow(dead_code, unused_imports, reason = "each test binary uses a different part of this module")]

pub use naas_test_support::{compile_source, example_source, EXAMPLES};

use naas_ir::Compiled;
use naas_lang::diagnostics::render::render_text;
use naas_lang::diagnostics::Diagnostic;
use naas_target_switch::{lower, LowerError, LowerOptions, PipelineProgram, TargetProfile};

/// The text of `tests/programs/<name>.naas`, this crate's own test programs.
pub fn program_source(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs").join(format!("{name}.naas"));
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// Compiles `source` and lowers its first aggregate for the default profile, panicking (a
/// test failure) when it does not fit.
pub fn lowered_source(source: &str) -> (Compiled, PipelineProgram) {
    let compiled = compile_source(source);
    let program = lower(&compiled, 0, &TargetProfile::default(), &LowerOptions::default())
        .unwrap_or_else(|error| panic!("{}", describe(&error, "test.naas", source)));
    (compiled, program)
}

/// [`lowered_source`] on `examples/<name>.naas`.
pub fn lowered_example(name: &str) -> (Compiled, PipelineProgram) {
    lowered_source(&example_source(name))
}

/// The diagnostics rendered as the CLI prints them (without colour), one after another.
pub fn render(diagnostics: &[Diagnostic], file_name: &str, source: &str) -> String {
    diagnostics.iter().map(|diagnostic| render_text(diagnostic, file_name, source, false)).collect()
}

/// A lowering error as text: the rendered diagnostics, or the internal error.
pub fn describe(error: &LowerError, file_name: &str, source: &str) -> String {
    match error {
        LowerError::Diagnostics(diagnostics) => render(diagnostics, file_name, source),
        LowerError::Internal(internal) => internal.to_string(),
    }
}

/// A merge of sorted runs (the K largest when `largest`, else the K smallest) of `k`
/// elements of `ty` (an integer type name), written in one of two forms: merge sort's merge
/// step with two counters (`examples/top_k.naas`), or with one counter and `j = n - i`.
pub fn sorted_run_source(ty: &str, k: u32, largest: bool, two_counters: bool) -> String {
    let upper = ty.to_uppercase();
    let (pad, cmp) = if largest { (format!("{upper}_MIN"), ">=") } else { (format!("{upper}_MAX"), "<=") };
    let body = if two_counters {
        format!(
            "        i = 0\n        j = 0\n        for n in range({k}):\n            if a[i] {cmp} b[j]:\n                out[n] = a[i]\n                i += 1\n            else:\n                out[n] = b[j]\n                j += 1\n"
        )
    } else {
        format!(
            "        i = 0\n        for n in range({k}):\n            j = n - i\n            if a[i] {cmp} b[j]:\n                out[n] = a[i]\n                i += 1\n            else:\n                out[n] = b[j]\n"
        )
    };
    format!(
        "aggregate run(x: {ty}) -> array[{ty}, {k}]:\n    identity = [{pad}] * {k}\n\n    def lift(x: {ty}) -> array[{ty}, {k}]:\n        out = [{pad}] * {k}\n        out[0] = x\n        return out\n\n    def merge(a: array[{ty}, {k}], b: array[{ty}, {k}]) -> array[{ty}, {k}]:\n        out = [{pad}] * {k}\n{body}        return out\n"
    )
}

/// A latest-value merge of a pair `(t: primary, v: secondary)`: the lexicographically larger
/// pair (`largest`) or the smaller one, `t` compared first, written with the primary field
/// first or second in the state (`primary_first`).
pub fn latest_source(primary: &str, secondary: &str, largest: bool, primary_first: bool) -> String {
    let (bound, wins, ties) = if largest { ("MIN", ">", ">=") } else { ("MAX", "<", "<=") };
    let (p, s) = if primary_first { (0, 1) } else { (1, 0) };
    let (t0, t1) = if primary_first { (primary, secondary) } else { (secondary, primary) };
    let (f0, f1) = if primary_first { ("t", "v") } else { ("v", "t") };
    let state = format!("tuple[{t0}, {t1}]");
    format!(
        "aggregate latest(t: {primary}, v: {secondary}) -> {state}:\n    identity = ({}_{bound}, {}_{bound})\n\n    def lift(t: {primary}, v: {secondary}) -> {state}:\n        return {f0}, {f1}\n\n    def merge(a: {state}, b: {state}) -> {state}:\n        if a[{p}] {wins} b[{p}] or (a[{p}] == b[{p}] and a[{s}] {ties} b[{s}]):\n            return a\n        return b\n",
        t0.to_uppercase(),
        t1.to_uppercase()
    )
}

/// Integer types for [`sorted_run_source`].
pub const RUN_TYPES: [&str; 7] = ["i8", "i16", "i32", "i64", "u8", "u32", "u64"];
