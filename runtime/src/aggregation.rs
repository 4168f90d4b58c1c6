//! Loading an aggregation: source text to checked program, IR, decomposition and host machine
//! code, plus the names its inputs bind to and its results are printed under.

use naas_ir::decompose::{AggregatePlan, MergeOp};
use naas_ir::ir::{ScalarTy, VarTy};
use naas_ir::laws::LawOptions;
use naas_ir::Compiled;
use naas_lang::check::CheckOptions;
use naas_lang::diagnostics::render::render_text;
use naas_lang::types::{FloatTy, IntTy};
use naas_lang::InternalError;
use naas_target_native::{JitAggregate, NativeError};

/// Why an aggregation could not be loaded.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum LoadError {
    /// The program has errors; the text holds every diagnostic, rendered.
    #[error("{0}")]
    Program(String),
    /// The program has no aggregate of that name, none at all, or several and none was chosen.
    #[error("{0}")]
    Selection(String),
    /// The aggregate cannot run on the host (for example an array-typed input).
    #[error(transparent)]
    Unsupported(NativeError),
    /// A broken invariant of the compiler while generating host code: a bug to report.
    #[error(transparent)]
    Internal(InternalError),
}

/// One input column of an aggregate: a scalar field of its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct InputColumn {
    /// The IR path (`delay`, `sample.micros`).
    pub path: String,
    /// The name a data column must have to bind to it: the parameter's name for a scalar
    /// parameter, the field's path inside the record for a record parameter (`micros`).
    pub name: String,
    pub ty: ScalarTy,
}

/// One printed result column (tuples and arrays flattened).
#[derive(Clone, Debug, PartialEq)]
pub struct ResultColumn {
    /// `delay_stats.0`, `latency_histogram[3]`, `robust_mean`.
    pub name: String,
    pub ty: ScalarTy,
}

/// An aggregation compiled for the host: the checked and decomposed program and its JIT code.
pub struct Aggregation {
    compiled: Compiled,
    index: usize,
    jit: JitAggregate,
    inputs: Vec<InputColumn>,
    results: Vec<ResultColumn>,
    fingerprint: u64,
}

impl std::fmt::Debug for Aggregation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aggregation").field("name", &self.name()).field("inputs", &self.inputs).finish_non_exhaustive()
    }
}

impl Aggregation {
    /// Compiles `source` and loads the aggregate called `aggregate` (or the only one).
    /// Diagnostics are rendered without colour against the file name `file_name`.
    pub fn from_source(file_name: &str, source: &str, aggregate: Option<&str>) -> Result<Aggregation, LoadError> {
        let render = |diagnostics: &[naas_lang::Diagnostic]| {
            diagnostics.iter().map(|d| render_text(d, file_name, source, false)).collect::<Vec<_>>().join("\n")
        };
        let (program, _warnings) = naas_lang::frontend(source, &CheckOptions::default())
            .map_err(|diagnostics| LoadError::Program(render(&diagnostics)))?;
        let compiled = naas_ir::compile(&program, LawOptions::default()).map_err(|e| LoadError::Internal(e.into()))?;
        let errors: Vec<_> = compiled.diagnostics.iter().filter(|d| d.is_error()).cloned().collect();
        if !errors.is_empty() {
            return Err(LoadError::Program(render(&errors)));
        }
        Aggregation::from_compiled(compiled, aggregate)
    }

    /// Loads the aggregate called `aggregate` (or the only one) of an already checked program
    /// whose law diagnostics the caller has reported.
    pub fn from_compiled(compiled: Compiled, aggregate: Option<&str>) -> Result<Aggregation, LoadError> {
        let index = select(&compiled, aggregate)?;
        let plan = &compiled.aggregates[index];
        let jit = JitAggregate::compile(&compiled.optimized, plan).map_err(|error| match error {
            NativeError::Internal(error) => LoadError::Internal(error),
            other => LoadError::Unsupported(other),
        })?;
        let inputs = input_columns(plan);
        let results = result_columns(plan);
        let fingerprint = fingerprint(&jit, plan);
        Ok(Aggregation { compiled, index, jit, inputs, results, fingerprint })
    }

    pub fn name(&self) -> &str {
        &self.plan().name
    }

    pub fn plan(&self) -> &AggregatePlan {
        &self.compiled.aggregates[self.index]
    }

    pub fn compiled(&self) -> &Compiled {
        &self.compiled
    }

    /// The aggregate's index in [`Aggregation::compiled`].
    pub fn index(&self) -> usize {
        self.index
    }

    pub fn jit(&self) -> &JitAggregate {
        &self.jit
    }

    pub fn inputs(&self) -> &[InputColumn] {
        &self.inputs
    }

    pub fn results(&self) -> &[ResultColumn] {
        &self.results
    }

    /// Bytes of one partial state.
    pub fn state_size(&self) -> usize {
        self.jit.abi.state.size as usize
    }

    /// A hash of the aggregate's name, state layout and merge operators, carried by every wire
    /// buffer so that partial states of one aggregation are never merged into another's.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }
}

fn select(compiled: &Compiled, aggregate: Option<&str>) -> Result<usize, LoadError> {
    let names: Vec<&str> = compiled.aggregates.iter().map(|p| p.name.as_str()).collect();
    match aggregate {
        Some(name) => names.iter().position(|n| *n == name).ok_or_else(|| {
            LoadError::Selection(format!("no aggregate `{name}`; this program defines: {}", names.join(", ")))
        }),
        None => match names.len() {
            0 => Err(LoadError::Selection("the program defines no aggregate".to_string())),
            1 => Ok(0),
            _ => Err(LoadError::Selection(format!(
                "the program defines several aggregates ({}); choose one with `--aggregate NAME`",
                names.join(", ")
            ))),
        },
    }
}

/// A scalar parameter binds by its own name, a record field by its path inside the record.
fn input_columns(plan: &AggregatePlan) -> Vec<InputColumn> {
    plan.inputs
        .iter()
        .map(|leaf| {
            let name = match leaf.path.split_once('.') {
                Some((_, field)) => field.to_string(),
                None => leaf.path.clone(),
            };
            InputColumn { path: leaf.path.clone(), name, ty: leaf.ty }
        })
        .collect()
}

/// The result leaves, named after the aggregate (`result.1` of `delay_stats` prints as
/// `delay_stats.1`), with array leaves expanded into one column per element.
fn result_columns(plan: &AggregatePlan) -> Vec<ResultColumn> {
    let mut out = Vec::new();
    for leaf in &plan.results {
        let name = match leaf.path.strip_prefix("result") {
            Some(rest) => format!("{}{rest}", plan.name),
            None => leaf.path.clone(),
        };
        if leaf.array {
            out.extend((0..leaf.count).map(|i| ResultColumn { name: format!("{name}[{i}]"), ty: leaf.ty }));
        } else {
            out.push(ResultColumn { name, ty: leaf.ty });
        }
    }
    out
}

/// FNV-1a over a stable encoding of the aggregate's name and state layout: the name, then per
/// field its name, kind (scalar or array, with the length), scalar type, merge operator and C
/// offset, then the state's size. Every type and operator is written as a tag chosen here, not
/// through `Debug`, so that renaming a variant or changing a derived format can never change
/// the fingerprint, and with it the wire format (the tags below are part of that format).
fn fingerprint(jit: &JitAggregate, plan: &AggregatePlan) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator, so that ("ab", "c") and ("a", "bc") differ.
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    };
    feed(jit.abi.name.as_bytes());
    for (i, field) in jit.abi.state.fields.iter().enumerate() {
        feed(field.name.as_bytes());
        match field.ty {
            VarTy::Scalar(ty) => feed(&[0, scalar_tag(ty)]),
            VarTy::Array(ty, len) => {
                feed(&[1, scalar_tag(ty)]);
                feed(&len.to_le_bytes());
            }
        }
        // The plan's fields are the ABI's, in the same order; a missing one gets its own tag.
        feed(&[plan.state.fields.get(i).map_or(0xff, |f| merge_tag(f.merge))]);
        feed(&field.offset.to_le_bytes());
    }
    feed(&jit.abi.state.size.to_le_bytes());
    hash
}

/// The wire format's tag of a scalar type.
fn scalar_tag(ty: ScalarTy) -> u8 {
    match ty {
        ScalarTy::Bool => 1,
        ScalarTy::Int(IntTy::I8) => 2,
        ScalarTy::Int(IntTy::I16) => 3,
        ScalarTy::Int(IntTy::I32) => 4,
        ScalarTy::Int(IntTy::I64) => 5,
        ScalarTy::Int(IntTy::U8) => 6,
        ScalarTy::Int(IntTy::U16) => 7,
        ScalarTy::Int(IntTy::U32) => 8,
        ScalarTy::Int(IntTy::U64) => 9,
        ScalarTy::Float(FloatTy::F32) => 10,
        ScalarTy::Float(FloatTy::F64) => 11,
    }
}

/// The wire format's tag of a merge operator.
fn merge_tag(op: MergeOp) -> u8 {
    match op {
        MergeOp::Add => 1,
        MergeOp::Min => 2,
        MergeOp::Max => 3,
        MergeOp::Or => 4,
        MergeOp::And => 5,
        MergeOp::Custom => 6,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    /// The fingerprint of every canonical example, pinned: a change here changes the wire
    /// format, so it must be deliberate (and old buffers are then refused as foreign).
    #[test]
    fn fingerprints_of_the_examples_are_pinned() {
        let pinned: [(&str, u64); 4] = [
            ("reduce", 0xedea_15a5_ed5c_21ae),
            ("robust_mean", 0x0d90_f56b_8df9_4481),
            ("top_k", 0x2238_68a9_1073_271c),
            ("histogram", 0xcc26_bbfa_e77f_e1b1),
        ];
        for (name, expected) in pinned {
            let source = naas_test_support::example_source(name);
            let aggregation = Aggregation::from_source(&format!("{name}.naas"), &source, None).unwrap();
            assert_eq!(aggregation.fingerprint(), expected, "{name}: {:#018x}", aggregation.fingerprint());
        }
    }

    #[test]
    fn host_code_failures_are_typed_and_compiler_bugs_are_internal() {
        let arrays = "aggregate s(xs: array[i64, 2]) -> i64:\n    return sum(xs[0])\n";
        let error = Aggregation::from_source("a.naas", arrays, None).unwrap_err();
        assert!(matches!(error, LoadError::Unsupported(NativeError::ArrayInput { .. })), "{error:?}");
        assert!(error.to_string().contains("native folds read one scalar column per field"), "{error}");
        // A lift that still calls a function after inlining: a broken invariant of the middle
        // end, which must stop the load as an internal error rather than produce code.
        let mut compiled = naas_test_support::compile_source("aggregate s(x: i64) -> i64:\n    return sum(x)\n");
        let lift = compiled.aggregates[0].lift;
        compiled.optimized.functions[lift.0 as usize]
            .body
            .insert(0, naas_ir::ir::Stmt::Call { func: lift, args: Vec::new(), results: Vec::new() });
        let error = Aggregation::from_compiled(compiled, None).unwrap_err();
        let LoadError::Internal(internal) = &error else { panic!("{error:?}") };
        assert!(internal.message.contains("still contains a call"), "{error}");
        assert!(error.to_string().starts_with("internal compiler error: "), "{error}");
    }

    #[test]
    fn the_fingerprint_tells_layouts_and_operators_apart() {
        let load = |source: &str| Aggregation::from_source("t.naas", source, None).unwrap().fingerprint();
        let sum = load("aggregate s(x: i64) -> i64:\n    return sum(x)\n");
        assert_ne!(sum, load("aggregate s(x: i64) -> i64:\n    return max(x)\n"), "merge operator");
        let max = load("aggregate s(x: i64) -> i64:\n    return max(x)\n");
        assert_ne!(max, load("aggregate s(x: i32) -> i32:\n    return max(x)\n"), "field type");
        assert_ne!(sum, load("aggregate t(x: i64) -> i64:\n    return sum(x)\n"), "name");
        assert_eq!(sum, load("aggregate s(x: i64) -> i64:\n    return sum(x)\n"), "deterministic");
    }
}
