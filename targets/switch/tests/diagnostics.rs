//! One program per switch diagnostic code, in `tests/diagnostics/E06xx_<what>.naas`: each is
//! lowered, must be rejected with its code, and the rendered diagnostics are an insta
//! snapshot. A `# lower: key=value ...` line in a program sets the lowering options and the
//! profile (`fixed_point`, `min_key_slots`, `stages`, `lanes`, `max_passes`), so each program can show its code alone.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use std::path::{Path, PathBuf};

use naas_lang::diagnostics::Code;
use naas_target_switch::{lower, LowerError, LowerOptions, TargetProfile};

/// The switch target's codes (spec section 16.5, E06xx).
const CODES: [Code; 8] =
    [Code::E0601, Code::E0602, Code::E0603, Code::E0604, Code::E0605, Code::E0606, Code::E0607, Code::E0608];

fn directory() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diagnostics")
}

/// The program of `code`: the one file whose name starts with the code.
fn program_of(code: Code) -> PathBuf {
    let prefix = format!("{code}_");
    let mut found: Vec<PathBuf> = std::fs::read_dir(directory())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.file_name().unwrap().to_string_lossy().starts_with(&prefix))
        .collect();
    assert_eq!(found.len(), 1, "expected one tests/diagnostics/{prefix}<what>.naas, found {found:?}");
    found.remove(0)
}

/// The options and profile a program's `# lower:` line asks for.
fn settings(source: &str) -> (LowerOptions, TargetProfile) {
    let mut options = LowerOptions::default();
    let mut profile = TargetProfile::default();
    for line in source.lines().filter_map(|line| line.strip_prefix("# lower:")) {
        for setting in line.split_whitespace() {
            let (key, value) = setting.split_once('=').expect("a `key=value` setting");
            let value: u64 = value.parse().expect("an integer setting");
            match key {
                "fixed_point" => options.fixed_point_scale = Some(value),
                "min_key_slots" => options.min_key_slots = Some(value),
                "stages" => profile.stages = u32::try_from(value).unwrap(),
                "lanes" => options.lanes = Some(u32::try_from(value).unwrap()),
                "max_passes" => options.max_passes = Some(u32::try_from(value).unwrap()),
                other => panic!("unknown setting `{other}`"),
            }
        }
    }
    (options, profile)
}

/// Lowers the program of `code`, checks that `code` is among its diagnostics, and returns
/// them rendered (with the file name, as `naasc` prints them).
fn rejected(code: Code) -> String {
    let path = program_of(code);
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let source = std::fs::read_to_string(&path).unwrap();
    let (options, profile) = settings(&source);
    let compiled = common::compile_source(&source);
    match lower(&compiled, 0, &profile, &options) {
        Ok(_) => panic!("{name} lowered without an error"),
        Err(LowerError::Internal(error)) => panic!("{name}: {error}"),
        Err(LowerError::Diagnostics(diagnostics)) => {
            let codes: Vec<Code> = diagnostics.iter().map(|d| d.code).collect();
            assert!(codes.contains(&code), "{name} gave {codes:?}, not {code}");
            common::render(&diagnostics, &format!("diagnostics/{name}"), &source)
        }
    }
}

macro_rules! diagnostic_tests {
    ($($test:ident: $code:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                insta::assert_snapshot!(stringify!($code), rejected(Code::$code));
            }
        )*
    };
}

diagnostic_tests! {
    e0601_not_one_register_operation: E0601,
    e0602_data_dependent_index: E0602,
    e0603_float_state: E0603,
    e0604_no_alu: E0604,
    e0605_too_many_updates: E0605,
    e0606_entry_wider_than_a_packet: E0606,
    e0607_loop_left_after_unrolling: E0607,
    e0608_too_few_key_slots: E0608,
}

/// Every file of the directory belongs to a switch code, and every switch code has a file.
#[test]
fn every_switch_code_has_one_program() {
    let mut names: Vec<String> = std::fs::read_dir(directory())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(names.len(), CODES.len(), "{names:?}");
    for (name, code) in names.iter().zip(CODES) {
        assert!(name.starts_with(&format!("{code}_")) && name.ends_with(".naas"), "{name} is not {code}_<what>.naas");
    }
}
