//! The naas language front end: lexing, parsing, type checking, bounds checking and
//! diagnostics. Nothing here touches files, stdout or exit codes; the `naasc` driver does.

pub mod ast;
pub mod diagnostics;
pub mod lexer;
pub mod parser;
pub mod span;
pub mod token;

pub use diagnostics::{Code, Diagnostic, Severity};
pub use parser::parse;
pub use span::Span;
