//! Helpers shared by the switch target's tests: compiling examples and test programs.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::path::Path;

use naas_ir::laws::LawOptions;
use naas_lang::check::CheckOptions;

pub const EXAMPLES: [&str; 4] = ["reduce", "robust_mean", "top_k", "histogram"];

pub fn example_source(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(format!("{name}.naas"));
    std::fs::read_to_string(path).unwrap()
}

pub fn compile_source(source: &str) -> naas_ir::Compiled {
    let (program, _) = naas_lang::frontend(source, &CheckOptions::default())
        .unwrap_or_else(|errors| panic!("front end failed: {errors:?}"));
    naas_ir::compile(&program, LawOptions::default()).unwrap()
}
