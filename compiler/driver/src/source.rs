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

/// Reads a file, or returns a message for an IO problem (exit code 2).
pub fn read(path: &Path) -> Result<SourceFile, String> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read `{name}`: {e}"))?;
    if u32::try_from(bytes.len()).is_err() {
        return Err(format!("`{name}` is larger than 4 GiB"));
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
