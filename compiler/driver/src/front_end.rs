//! The front and middle end as the commands see them: read a file, check and compile it,
//! print its diagnostics (text on stderr, colour when stderr is a terminal), and report an
//! internal compiler error. `check` reports every file; `compile`, `simulate` and `run` need
//! one compiled program and stop at the first problem.

use std::io::IsTerminal;

use naas_ir::laws::LawOptions;
use naas_lang::check::CheckOptions;
use naas_lang::diagnostics::{self, render, DEFAULT_MAX_DIAGNOSTICS};
use naas_lang::span::LineIndex;
use naas_lang::{Diagnostic, InternalError};

use crate::exit::Exit;
use crate::source::{self, SourceFile};

/// The outcome of running the whole front and middle end on one file for a command that
/// needs the compiled program.
pub enum FrontEnd {
    Compiled(Box<naas_ir::Compiled>, SourceFile),
    /// Diagnostics (or the reason) were printed; exit with this code.
    Failed(Exit),
}

/// Reads, checks and compiles one file, printing diagnostics (warnings included) to stderr.
pub fn report_front_end(path: &std::path::Path, options: &CheckOptions) -> FrontEnd {
    report_front_end_for(path, options, None)
}

/// Like [`report_front_end`], for a command that runs one aggregate: when `aggregate` names
/// one of the file's aggregates, only its merge-law diagnostics are reported (and only its
/// law errors fail the command); the other aggregates are not run, and `naasc check` still
/// reports them all.
pub fn report_front_end_for(path: &std::path::Path, options: &CheckOptions, aggregate: Option<&str>) -> FrontEnd {
    front_end(path, options, aggregate, true)
}

/// Like [`report_front_end_for`] but prints errors only: for a process started by another
/// `naasc` that has already printed the program's warnings (a launched node, a timely
/// process), so that they are not repeated once per process.
pub fn report_errors_only_for(path: &std::path::Path, options: &CheckOptions, aggregate: Option<&str>) -> FrontEnd {
    front_end(path, options, aggregate, false)
}

fn front_end(path: &std::path::Path, options: &CheckOptions, aggregate: Option<&str>, warnings: bool) -> FrontEnd {
    let file = match source::read(path) {
        Ok(file) => file,
        Err(error) => {
            eprintln!("naasc: {error}");
            return FrontEnd::Failed(Exit::Usage);
        }
    };
    let color = auto_color();
    let renderer = render::TextRenderer::new(&file.name, &file.text, color);
    let print = |diagnostics: &[Diagnostic]| {
        let mut shown: Vec<Diagnostic> = diagnostics.iter().filter(|d| warnings || d.is_error()).cloned().collect();
        diagnostics::sort_and_dedup(&mut shown);
        let hidden = diagnostics::limit(&mut shown, DEFAULT_MAX_DIAGNOSTICS);
        for diagnostic in &shown {
            eprint!("{}", renderer.render(diagnostic));
        }
        report_hidden(&file.name, hidden, DEFAULT_MAX_DIAGNOSTICS, false);
    };
    if let Some(error) = &file.encoding_error {
        print(std::slice::from_ref(error));
        return FrontEnd::Failed(Exit::Program);
    }
    match naas_lang::frontend(&file.text, options) {
        Err(diagnostics) => {
            print(&diagnostics);
            FrontEnd::Failed(Exit::Program)
        }
        Ok((program, warnings)) => {
            print(&warnings);
            match naas_ir::compile(&program, LawOptions::default()) {
                Ok(compiled) => {
                    let selected = aggregate.and_then(|name| compiled.aggregate_index(name));
                    let law_diagnostics = match selected.and_then(|index| compiled.aggregate_diagnostics.get(index)) {
                        Some(own) => own.as_slice(),
                        None => compiled.diagnostics.as_slice(),
                    };
                    print(law_diagnostics);
                    if law_diagnostics.iter().any(Diagnostic::is_error) {
                        return FrontEnd::Failed(Exit::Program);
                    }
                    FrontEnd::Compiled(Box::new(compiled), file.clone())
                }
                Err(error) => FrontEnd::Failed(report_internal(&file, &error.into())),
            }
        }
    }
}

/// Prints diagnostics of a file to stderr (colour when stderr is a terminal).
pub fn print_diagnostics(file: &SourceFile, diagnostics: &[Diagnostic]) {
    let color = auto_color();
    let renderer = render::TextRenderer::new(&file.name, &file.text, color);
    for diagnostic in diagnostics {
        eprint!("{}", renderer.render(diagnostic));
    }
}

/// Colour diagnostics when stderr is a terminal and `NO_COLOR` is unset.
pub fn auto_color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Says how many diagnostics of a file were not shown, and how to see them.
pub fn report_hidden(file: &str, (errors, warnings): (usize, usize), max: usize, flag: bool) {
    if errors + warnings == 0 {
        return;
    }
    let how = if flag {
        "; raise the limit with `--max-diagnostics N`"
    } else {
        "; `naasc check --max-diagnostics N` shows more"
    };
    eprintln!(
        "naasc: {errors} more error(s) and {warnings} more warning(s) in `{file}` not shown (at most {max} diagnostics per file{how})"
    );
}

/// Reports a bug in naasc met while compiling `file`: what broke, where in the source when
/// known, and how to report it. Exit code 101.
pub fn report_internal(file: &SourceFile, error: &InternalError) -> Exit {
    eprintln!("naasc: internal compiler error while compiling `{}`: {}", file.name, error.message);
    if let Some(span) = error.span {
        let (line, column) = LineIndex::new(&file.text).line_col(span.lo);
        eprintln!("  --> {}:{line}:{column}: the construct being compiled", file.name);
    }
    eprintln!("  note: this is a bug in naasc, not in your program; please report it with the file that triggers it");
    Exit::Internal
}
