//! Snapshots of the Cranelift IR (`naasc compile --emit clif`) of the canonical examples'
//! entry points, for x86_64, and of their C headers.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use naas_target_native::object::{c_header, compile_object};

#[test]
fn clif_and_headers() {
    insta::glob!("../../../examples", "*.naas", |path| {
        let source = std::fs::read_to_string(path).unwrap();
        let compiled = naas_test_support::compile_source(&source);
        let object = compile_object(&compiled, "x86_64").unwrap();
        insta::assert_snapshot!(format!("{}\n{}", c_header(&object.abis), object.clif.join("\n")));
    });
}
