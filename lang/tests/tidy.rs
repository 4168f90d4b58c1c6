//! Repository hygiene checks: every Rust source file starts with a `//!` comment saying what
//! it is for, and every lalrpop grammar starts with a `//` comment. Covers every crate of the
//! workspace: `stdx`, `lang`, the crates under `compiler/` and `targets/`, `runtime`, `benches`
//! and the test crates under `tests/`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::fs;
use std::path::{Path, PathBuf};

/// The checked trees, relative to this crate's manifest directory; each is walked whole.
const ROOTS: &[&str] =
    &["src", "tests", "../stdx", "../compiler", "../targets", "../runtime", "../benches", "../tests"];

fn roots() -> Vec<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    ROOTS
        .iter()
        .map(|root| {
            let path = manifest.join(root);
            assert!(path.is_dir(), "source tree {} is missing", path.display());
            path
        })
        .collect()
}

/// Every file under `dir` whose name ends with `.{extension}`, sorted; build output and
/// hidden directories are skipped.
fn files_with_extension(dir: &Path, extension: &str, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|name| name.to_str()).unwrap_or("");
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                files_with_extension(&path, extension, out);
            }
        } else if path.extension().and_then(|ext| ext.to_str()) == Some(extension) {
            out.push(path);
        }
    }
}

/// The files under the checked roots with `extension` whose text does not start with `prefix`.
fn offenders(extension: &str, prefix: &str) -> (usize, Vec<String>) {
    let mut files = Vec::new();
    for root in roots() {
        files_with_extension(&root, extension, &mut files);
    }
    let bad = files
        .iter()
        .filter(|path| {
            let text =
                fs::read_to_string(path).unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
            !text.trim_start_matches('\u{feff}').starts_with(prefix)
        })
        .map(|path| path.display().to_string())
        .collect();
    (files.len(), bad)
}

#[test]
fn every_rust_file_starts_with_a_module_doc_comment() {
    let (count, bad) = offenders("rs", "//!");
    assert!(count > 0, "found no .rs files to check");
    assert!(
        bad.is_empty(),
        "{} of {count} .rs files do not start with a `//!` comment saying what they are for:\n  {}",
        bad.len(),
        bad.join("\n  ")
    );
}

#[test]
fn every_grammar_file_starts_with_a_comment() {
    let (count, bad) = offenders("lalrpop", "//");
    assert!(count > 0, "found no .lalrpop files to check");
    assert!(
        bad.is_empty(),
        "{} of {count} .lalrpop files do not start with a `//` comment:\n  {}",
        bad.len(),
        bad.join("\n  ")
    );
}
