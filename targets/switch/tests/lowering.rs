//! Snapshots of pipeline programs and resource reports for every example and test program,
//! and of the diagnostics (rendered with their source) for programs that do not fit.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use naas_target_switch::{lower, LowerError, LowerOptions, TargetProfile};

fn lowered(name: &str, source: &str, options: &LowerOptions) -> String {
    let compiled = common::compile_source(source);
    match lower(&compiled, 0, &TargetProfile::default(), options) {
        Ok(program) => format!("{}\n{}", program.text(), program.resource_report().text()),
        Err(LowerError::Diagnostics(diagnostics)) => {
            format!("{source}\n----\n{}", common::render(&diagnostics, &format!("{name}.naas"), source))
        }
        Err(LowerError::Internal(error)) => panic!("{error}"),
    }
}

#[test]
fn examples() {
    for name in common::EXAMPLES {
        let text = lowered(name, &common::example_source(name), &LowerOptions::default());
        insta::assert_snapshot!(format!("example_{name}"), text);
    }
}

/// The latest-value example (not among the shared examples of the other targets' tests):
/// one register pair per lane, compared lexicographically.
#[test]
fn example_latest() {
    insta::assert_snapshot!(lowered("latest", &common::example_source("latest"), &LowerOptions::default()));
}

#[test]
fn test_programs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs");
    let mut paths: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort();
    for path in paths {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let source = std::fs::read_to_string(&path).unwrap();
        insta::assert_snapshot!(format!("program_{name}"), lowered(&name, &source, &LowerOptions::default()));
    }
}

#[test]
fn float_sum_with_fixed_point() {
    let source = common::program_source("float_sum");
    let options = LowerOptions { fixed_point_scale: Some(1000), ..LowerOptions::default() };
    insta::assert_snapshot!(lowered("float_sum", &source, &options));
}

#[test]
fn too_few_key_slots() {
    let options = LowerOptions { min_key_slots: Some(1 << 20), ..LowerOptions::default() };
    insta::assert_snapshot!(lowered("reduce", &common::example_source("reduce"), &options));
}

#[test]
fn small_profile_from_toml() {
    let text = naas_target_switch::profile::TOFINO1_TOML
        .replace("stages = 12", "stages = 2")
        .replace("register_word_bits = 32", "register_word_bits = 64")
        .replace("name = \"tofino1\"", "name = \"tiny64\"");
    let profile = TargetProfile::from_toml(&text).unwrap();
    let compiled = common::compile_source(&common::example_source("reduce"));
    let program = lower(&compiled, 0, &profile, &LowerOptions::default()).unwrap();
    insta::assert_snapshot!(format!("{}\n{}", program.text(), program.resource_report().text()));
}
