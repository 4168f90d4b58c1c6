//! `naasc check FILE...`: runs the front end on each file and reports diagnostics as text
//! (stderr) or JSON (stdout), and optionally the worst-case cost of every function.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use naas_ir::laws::LawOptions;
use naas_lang::check::{CheckOptions, Cost};
use naas_lang::diagnostics::{self, render, DEFAULT_MAX_DIAGNOSTICS};
use naas_lang::span::LineIndex;
use naas_lang::{Diagnostic, InternalError};

use crate::exit::Exit;
use crate::front_end::{auto_color, report_hidden, report_internal};
use crate::source::{self, SourceFile};
use crate::stdout::StdoutError;
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
    /// Most diagnostics shown per file (the first ones in source order); the rest are counted.
    #[arg(long, default_value_t = DEFAULT_MAX_DIAGNOSTICS, value_name = "N")]
    pub max_diagnostics: usize,
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
    internal_error: Option<InternalError>,
    /// Errors and warnings beyond `--max-diagnostics`, counted but not shown.
    hidden: (usize, usize),
}

impl FileOutcome {
    fn new(
        file: SourceFile,
        mut diagnostics: Vec<Diagnostic>,
        costs: Vec<Cost>,
        internal_error: Option<InternalError>,
        max: usize,
    ) -> FileOutcome {
        diagnostics::sort_and_dedup(&mut diagnostics);
        let hidden = diagnostics::limit(&mut diagnostics, max);
        FileOutcome { file, diagnostics, costs, internal_error, hidden }
    }

    fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count() + self.hidden.0
    }
}

pub fn run(args: &CheckArgs) -> Exit {
    if args.costs && args.format == Format::Json {
        eprintln!("naasc: `--costs` prints a text table and cannot be combined with `--format json`");
        return Exit::Usage;
    }
    let options = CheckOptions { max_ops: args.max_ops, max_bytes: args.max_bytes };
    let mut unreadable = 0;
    let mut outcomes = Vec::new();
    for path in &args.files {
        match source::read(path) {
            Ok(file) => outcomes.push(check_file(file, &options, args.max_diagnostics)),
            Err(error) => {
                eprintln!("naasc: {error}");
                unreadable += 1;
            }
        }
    }
    let io_failed = unreadable > 0;
    let color = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => auto_color(),
    };
    let printed = match args.format {
        Format::Text => print_text(&outcomes, unreadable, args.costs, color),
        Format::Json => print_json(&outcomes),
    };
    if let Err(error) = printed {
        return error.report("the results");
    }
    let failed = outcomes.iter().filter(|o| o.errors() > 0).count();
    let mut internal = false;
    for outcome in &outcomes {
        if let Some(error) = &outcome.internal_error {
            report_internal(&outcome.file, error);
            internal = true;
        }
    }
    if internal {
        Exit::Internal
    } else if io_failed {
        Exit::Usage
    } else if failed > 0 {
        Exit::Program
    } else {
        Exit::Ok
    }
}

fn check_file(file: SourceFile, options: &CheckOptions, max: usize) -> FileOutcome {
    if let Some(error) = &file.encoding_error {
        let diagnostics = vec![error.clone()];
        return FileOutcome::new(file, diagnostics, Vec::new(), None, max);
    }
    match naas_lang::frontend(&file.text, options) {
        Ok((program, mut diagnostics)) => {
            // Checking includes the merge laws, which need the program in IR form.
            let internal_error = match naas_ir::compile(&program, LawOptions::default()) {
                Ok(compiled) => {
                    diagnostics.extend(compiled.diagnostics);
                    None
                }
                Err(error) => Some(error.into()),
            };
            FileOutcome::new(file, diagnostics, program.costs, internal_error, max)
        }
        Err(diagnostics) => FileOutcome::new(file, diagnostics, Vec::new(), None, max),
    }
}

fn print_text(outcomes: &[FileOutcome], unreadable: usize, costs: bool, color: bool) -> Result<(), StdoutError> {
    let mut errors = 0;
    for outcome in outcomes {
        let renderer = render::TextRenderer::new(&outcome.file.name, &outcome.file.text, color);
        for diagnostic in &outcome.diagnostics {
            eprint!("{}", renderer.render(diagnostic));
        }
        errors += outcome.errors();
        report_hidden(&outcome.file.name, outcome.hidden, outcome.diagnostics.len(), true);
        if costs && outcome.errors() == 0 {
            print_costs(&outcome.file.name, &outcome.costs)?;
        }
    }
    let failed = outcomes.iter().filter(|o| o.errors() > 0).count();
    let ok = outcomes.len() - failed;
    // A file that could not be read was not checked: the summary must not read as success.
    let unread = if unreadable > 0 { format!(", {unreadable} could not be read") } else { String::new() };
    if failed == 0 && unreadable == 0 {
        eprintln!("checked {} file(s): no errors", outcomes.len());
    } else if failed == 0 {
        eprintln!("checked {} file(s): {ok} ok{unread}", outcomes.len());
    } else {
        eprintln!(
            "checked {} file(s): {ok} ok, {failed} with errors ({errors} error(s) in all){unread}",
            outcomes.len()
        );
    }
    Ok(())
}

fn print_costs(file: &str, costs: &[Cost]) -> Result<(), StdoutError> {
    use std::fmt::Write as _;
    let mut text = format!("{file}\n");
    let width = costs.iter().map(|c| c.name.len()).max().unwrap_or(0).max("function".len());
    let _ = writeln!(text, "  {:<width$}  {:>24}  {:>12}", "function", "worst-case ops", "frame bytes");
    for cost in costs {
        let _ = writeln!(text, "  {:<width$}  {:>24}  {:>12}", cost.name, cost.ops, cost.frame_bytes);
    }
    crate::stdout::write_all(text.as_bytes())
}

fn print_json(outcomes: &[FileOutcome]) -> Result<(), StdoutError> {
    let mut all = Vec::new();
    for outcome in outcomes {
        let lines = LineIndex::new(&outcome.file.text);
        all.extend(outcome.diagnostics.iter().map(|d| render::to_json(d, &outcome.file.name, &lines)));
        report_hidden(&outcome.file.name, outcome.hidden, outcome.diagnostics.len(), true);
    }
    match serde_json::to_string_pretty(&all) {
        Ok(text) => crate::stdout::write_all(format!("{text}\n").as_bytes()),
        Err(error) => {
            eprintln!("naasc: could not encode diagnostics as JSON: {error}");
            Ok(())
        }
    }
}
