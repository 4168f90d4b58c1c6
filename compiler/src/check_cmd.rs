//! `naasc check FILE...`: runs the front end on each file and reports diagnostics as text
//! (stderr) or JSON (stdout), and optionally the worst-case cost of every function.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use naas_ir::laws::LawOptions;
use naas_lang::check::{CheckOptions, Cost};
use naas_lang::diagnostics::render;
use naas_lang::span::LineIndex;
use naas_lang::Diagnostic;

use crate::source::{self, SourceFile};
use crate::ColorChoice;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Source files (`.naas`).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Print the worst-case operation count and frame size of every function and aggregate part.
    #[arg(long)]
    pub costs: bool,
    /// Largest worst-case operation count allowed for one call of a function or aggregate part.
    #[arg(long, default_value_t = CheckOptions::default().max_ops, value_name = "N")]
    pub max_ops: u128,
    /// Largest stack frame (parameters and locals of one function), in bytes.
    #[arg(long, default_value_t = CheckOptions::default().max_bytes, value_name = "BYTES")]
    pub max_bytes: u64,
    /// Colour diagnostics: auto (when stderr is a terminal), always or never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

struct FileOutcome {
    file: SourceFile,
    diagnostics: Vec<Diagnostic>,
    costs: Vec<Cost>,
    /// A compiler bug met while checking this file.
    internal_error: Option<String>,
}

pub fn run(args: &CheckArgs) -> ExitCode {
    if args.costs && args.format == Format::Json {
        eprintln!("naasc: `--costs` prints a text table and cannot be combined with `--format json`");
        return ExitCode::from(2);
    }
    let options = CheckOptions { max_ops: args.max_ops, max_bytes: args.max_bytes };
    let mut io_failed = false;
    let mut outcomes = Vec::new();
    for path in &args.files {
        match source::read(path) {
            Ok(file) => outcomes.push(check_file(file, &options)),
            Err(message) => {
                eprintln!("naasc: {message}");
                io_failed = true;
            }
        }
    }
    let color = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => auto_color(),
    };
    match args.format {
        Format::Text => print_text(&outcomes, args.costs, color),
        Format::Json => print_json(&outcomes),
    }
    let failed = outcomes.iter().filter(|o| o.diagnostics.iter().any(Diagnostic::is_error)).count();
    let internal: Vec<&FileOutcome> = outcomes.iter().filter(|o| o.internal_error.is_some()).collect();
    for outcome in &internal {
        eprintln!(
            "naasc: internal compiler error in `{}`: {}",
            outcome.file.name,
            outcome.internal_error.as_deref().unwrap_or_default()
        );
    }
    if !internal.is_empty() {
        ExitCode::from(101)
    } else if io_failed {
        ExitCode::from(2)
    } else if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn check_file(file: SourceFile, options: &CheckOptions) -> FileOutcome {
    if let Some(error) = &file.encoding_error {
        let diagnostics = vec![error.clone()];
        return FileOutcome { file, diagnostics, costs: Vec::new(), internal_error: None };
    }
    match naas_lang::frontend(&file.text, options) {
        Ok((program, mut diagnostics)) => {
            // Checking includes the merge laws, which need the program in IR form.
            let internal_error = match naas_ir::compile(&program, LawOptions::default()) {
                Ok(compiled) => {
                    diagnostics.extend(compiled.diagnostics);
                    None
                }
                Err(error) => Some(error),
            };
            FileOutcome { file, diagnostics, costs: program.costs, internal_error }
        }
        Err(diagnostics) => FileOutcome { file, diagnostics, costs: Vec::new(), internal_error: None },
    }
}

fn print_text(outcomes: &[FileOutcome], costs: bool, color: bool) {
    let mut errors = 0;
    for outcome in outcomes {
        let renderer = render::TextRenderer::new(&outcome.file.name, &outcome.file.text, color);
        for diagnostic in &outcome.diagnostics {
            errors += usize::from(diagnostic.is_error());
            eprint!("{}", renderer.render(diagnostic));
        }
        if costs && !outcome.diagnostics.iter().any(Diagnostic::is_error) {
            print_costs(&outcome.file.name, &outcome.costs);
        }
    }
    let failed = outcomes.iter().filter(|o| o.diagnostics.iter().any(Diagnostic::is_error)).count();
    let ok = outcomes.len() - failed;
    if failed == 0 {
        eprintln!("checked {} file(s): no errors", outcomes.len());
    } else {
        eprintln!("checked {} file(s): {ok} ok, {failed} with errors ({errors} error(s) in all)", outcomes.len());
    }
}

fn print_costs(file: &str, costs: &[Cost]) {
    println!("{file}");
    let width = costs.iter().map(|c| c.name.len()).max().unwrap_or(0).max("function".len());
    println!("  {:<width$}  {:>24}  {:>12}", "function", "worst-case ops", "frame bytes");
    for cost in costs {
        println!("  {:<width$}  {:>24}  {:>12}", cost.name, cost.ops, cost.frame_bytes);
    }
}

fn print_json(outcomes: &[FileOutcome]) {
    let mut all = Vec::new();
    for outcome in outcomes {
        let lines = LineIndex::new(&outcome.file.text);
        all.extend(outcome.diagnostics.iter().map(|d| render::to_json(d, &outcome.file.name, &lines)));
    }
    match serde_json::to_string_pretty(&all) {
        Ok(text) => println!("{text}"),
        Err(error) => eprintln!("naasc: could not encode diagnostics as JSON: {error}"),
    }
}

/// The outcome of running the whole front and middle end on one file for a command that
/// needs the compiled program.
pub enum FrontEnd {
    Compiled(Box<naas_ir::Compiled>, SourceFile),
    /// Diagnostics were printed; exit with this code.
    Failed(ExitCode),
}

/// Reads, checks and compiles one file, printing diagnostics (warnings included) to stderr.
pub fn report_front_end(path: &std::path::Path, options: &CheckOptions) -> FrontEnd {
    let file = match source::read(path) {
        Ok(file) => file,
        Err(message) => {
            eprintln!("naasc: {message}");
            return FrontEnd::Failed(ExitCode::from(2));
        }
    };
    let color = auto_color();
    let renderer = render::TextRenderer::new(&file.name, &file.text, color);
    let print = |diagnostics: &[Diagnostic]| {
        for diagnostic in diagnostics {
            eprint!("{}", renderer.render(diagnostic));
        }
    };
    if let Some(error) = &file.encoding_error {
        print(std::slice::from_ref(error));
        return FrontEnd::Failed(ExitCode::from(1));
    }
    match naas_lang::frontend(&file.text, options) {
        Err(diagnostics) => {
            print(&diagnostics);
            FrontEnd::Failed(ExitCode::from(1))
        }
        Ok((program, warnings)) => {
            print(&warnings);
            match naas_ir::compile(&program, LawOptions::default()) {
                Ok(compiled) => {
                    print(&compiled.diagnostics);
                    if compiled.has_errors() {
                        return FrontEnd::Failed(ExitCode::from(1));
                    }
                    FrontEnd::Compiled(Box::new(compiled), file.clone())
                }
                Err(error) => {
                    eprintln!("naasc: internal compiler error: {error}");
                    FrontEnd::Failed(ExitCode::from(101))
                }
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
