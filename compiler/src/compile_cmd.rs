//! `naasc compile FILE --emit ...`: runs the front end and the middle end and prints an
//! artifact: the IR (optimised, or as lowered with `--no-opt`) or the state layouts.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use naas_lang::check::CheckOptions;

use crate::check_cmd::{report_front_end, FrontEnd};

#[derive(Args, Debug)]
pub struct CompileArgs {
    /// Source file (`.naas`).
    pub file: PathBuf,
    /// What to print.
    #[arg(long, value_enum, default_value_t = Emit::Ir)]
    pub emit: Emit,
    /// Print the IR as lowered, before optimisation.
    #[arg(long)]
    pub no_opt: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Emit {
    /// The typed IR of every helper and aggregate part.
    Ir,
    /// Each aggregate's state layout: fields, types, merge operators, sizes.
    State,
}

pub fn run(args: &CompileArgs) -> ExitCode {
    let compiled = match report_front_end(&args.file, &CheckOptions::default()) {
        FrontEnd::Compiled(compiled) => compiled,
        FrontEnd::Failed(code) => return code,
    };
    match args.emit {
        Emit::Ir => {
            let module = if args.no_opt { &compiled.lowered } else { &compiled.optimized };
            print!("{}", naas_ir::print::print_module(module));
        }
        Emit::State => {
            for (plan, laws) in compiled.aggregates.iter().zip(&compiled.laws) {
                print!("{}", naas_ir::print::print_state(plan, laws));
            }
        }
    }
    ExitCode::SUCCESS
}
