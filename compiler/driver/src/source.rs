//! Reading source files: the only place the compiler turns bytes into text, so invalid
//! UTF-8 and oversized files become diagnostics here.

use std::path::Path;

use naas_lang::{Code, Diagnostic, Span};

/// A source file as read from disk. `text` is always valid UTF-8; when the file is not,
/// `text` is its lossy decoding (for display) and `encoding_error` says where it broke.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
    pub encoding_error: Option<Diagnostic>,
}

/// Why a source file could not be read (exit code 2: the command line names a file that is
/// not there or not usable).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read `{name}`: {source}")]
    Io { name: String, source: std::io::Error },
    /// Spans are 32-bit byte offsets.
    #[error("`{name}` is larger than 4 GiB")]
    TooLarge { name: String },
}

/// Reads a file; its text may still be invalid UTF-8 (see [`SourceFile::encoding_error`]).
pub fn read(path: &Path) -> Result<SourceFile, ReadError> {
    let name = path.display().to_string();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(source) => return Err(ReadError::Io { name, source }),
    };
    if u32::try_from(bytes.len()).is_err() {
        return Err(ReadError::TooLarge { name });
    }
    Ok(from_bytes(name, bytes))
}

pub fn from_bytes(name: String, bytes: Vec<u8>) -> SourceFile {
    match String::from_utf8(bytes) {
        Ok(text) => SourceFile { name, text, encoding_error: None },
        Err(error) => {
            let at = error.utf8_error().valid_up_to();
            let bad_len = error.utf8_error().error_len().unwrap_or(1);
            let text = String::from_utf8_lossy(error.as_bytes()).into_owned();
            // The lossy text agrees with the bytes up to `at`, so the offset is valid in both.
            let diagnostic = Diagnostic::error(
                Code::E0002,
                format!("invalid UTF-8 at byte {at}"),
                Span::new(at, at + bad_len.min(text.len() - at)),
                "not UTF-8",
            )
            .with_help("naas sources are UTF-8 text; re-save the file as UTF-8");
            SourceFile { name, text, encoding_error: Some(diagnostic) }
        }
    }
}
