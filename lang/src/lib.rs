//! The naas language front end: lexing, parsing, type checking, bounds checking and
//! diagnostics. Nothing here touches files, stdout or exit codes; the `naasc` driver does.

pub mod ast;
pub mod check;
pub mod diagnostics;
pub mod internal;
pub mod lexer;
pub mod ops;
pub mod parser;
pub mod printer;
pub mod span;
pub mod spanless;
pub mod token;
pub mod types;
pub mod value;

pub use diagnostics::{Code, Diagnostic, Severity};
pub use internal::InternalError;
pub use parser::parse;
pub use span::Span;

/// Parses and checks one source file: the whole front end in one call.
pub fn frontend(
    source: &str,
    options: &check::CheckOptions,
) -> Result<(check::Program, Vec<Diagnostic>), Vec<Diagnostic>> {
    let module = parse(source)?;
    check::check(&module, options)
}
