//! What the workspace's tests share, written once: the repository's paths, compiling a source
//! or an example (panicking with the diagnostics when it does not compile, which is a test
//! failure), random records for an aggregate, temporary directories, and the proptest
//! configuration every property uses.
//!
//! Only tests depend on this crate (as a dev-dependency), so it may panic freely.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support: a failure here is a test failure")]

use std::path::{Path, PathBuf};

use naas_ir::interp::Slot;
use naas_ir::laws::{random_args, LawOptions};
use naas_ir::Compiled;
use naas_lang::check::CheckOptions;
use naas_stdx::Rng;
use proptest::test_runner::Config as ProptestConfig;

/// The canonical examples, by name (`examples/<name>.naas`).
pub const EXAMPLES: [&str; 4] = ["reduce", "robust_mean", "top_k", "histogram"];

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `examples/<name>.naas`, absolute.
pub fn example_path(name: &str) -> PathBuf {
    repo_root().join("examples").join(format!("{name}.naas"))
}

/// The text of `examples/<name>.naas`.
pub fn example_source(name: &str) -> String {
    let path = example_path(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// Runs the front end and the middle end on `source` with default options.
pub fn compile_source(source: &str) -> Compiled {
    let (program, _warnings) = naas_lang::frontend(source, &CheckOptions::default())
        .unwrap_or_else(|errors| panic!("the front end rejected the program: {errors:#?}\n{source}"));
    naas_ir::compile(&program, LawOptions::default())
        .unwrap_or_else(|error| panic!("the middle end failed: {error}\n{source}"))
}

/// [`compile_source`] on `examples/<name>.naas`.
pub fn compile_example(name: &str) -> Compiled {
    compile_source(&example_source(name))
}

/// `count` random records for aggregate `index` of `compiled` (arguments of its `lift`), with
/// edge values favoured (see [`naas_ir::laws::random_scalar`]).
pub fn random_records(compiled: &Compiled, index: usize, rng: &mut Rng, count: usize) -> Vec<Vec<Slot>> {
    let lift = compiled.optimized.function(compiled.aggregates[index].lift);
    (0..count).map(|_| random_args(rng, lift)).collect()
}

/// A fresh temporary directory, removed when the value is dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("naas-test-").tempdir().expect("cannot create a temporary directory")
}

/// The configuration of every property test. The number of cases follows proptest's own
/// convention: `PROPTEST_CASES` when set (CI sets 10,000), else proptest's default (256);
/// a property that costs `weight` times as much per case as a cheap one runs
/// `cases / weight` (at least 16). Failures are persisted beside the test's source
/// (`*.proptest-regressions`, committed) and replayed first on every later run.
pub fn proptest_config(weight: u32) -> ProptestConfig {
    let base = ProptestConfig::default();
    let cases = (base.cases / weight.max(1)).max(16);
    ProptestConfig { cases, ..base }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_compile_and_yield_records() {
        for name in EXAMPLES {
            let compiled = compile_example(name);
            let mut rng = Rng::new(1);
            let records = random_records(&compiled, 0, &mut rng, 3);
            assert_eq!(records.len(), 3, "{name}");
            let lift = compiled.optimized.function(compiled.aggregates[0].lift);
            assert!(records.iter().all(|record| record.len() == lift.params.len()), "{name}");
        }
    }

    #[test]
    fn weights_divide_the_cases() {
        let base = ProptestConfig::default().cases;
        assert_eq!(proptest_config(1).cases, base.max(16));
        assert_eq!(proptest_config(u32::MAX).cases, 16);
        assert!(proptest_config(1).failure_persistence.is_some());
    }

    #[test]
    fn temp_dirs_are_removed() {
        let dir = temp_dir();
        let path = dir.path().to_path_buf();
        assert!(path.is_dir());
        drop(dir);
        assert!(!path.exists());
    }
}
