//! Helpers shared by the end-to-end tests: run the built `naasc`, read its output, and write
//! temporary input files.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn naasc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_naasc")).args(args).current_dir(root()).output().unwrap()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A file in a fresh temporary directory; both are removed when it is dropped. It derefs to
/// its path.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for TempFile {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TempFile {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<std::ffi::OsStr> for TempFile {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.path.as_os_str()
    }
}

/// Writes `bytes` to `name` in a fresh temporary directory.
pub fn temp_file(name: &str, bytes: &[u8]) -> TempFile {
    let dir = naas_test_support::temp_dir();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    TempFile { path, _dir: dir }
}
