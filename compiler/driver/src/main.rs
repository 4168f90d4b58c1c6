//! `naasc`, the naas compiler driver. It owns every file, stdout/stderr write and exit code;
//! the stages it calls are pure libraries.
//!
//! Exit codes ([`exit::Exit`], spec §16.3): 0 success, 1 errors in the program or the data,
//! 2 usage or IO errors, 101 internal compiler error.

mod check_cmd;
mod compile_cmd;
mod exit;
mod front_end;
mod memory;
mod node_cmd;
mod run_cmd;
mod run_timely;
mod simulate_cmd;
mod source;
mod stdout;
mod switch;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::exit::Exit;

#[derive(Parser, Debug)]
#[command(name = "naasc", version, about = "Compiler for naas in-network aggregations")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check programs: syntax, types, termination and resource bounds.
    Check(check_cmd::CheckArgs),
    /// Compile a program and print an artifact (IR, state layout).
    Compile(compile_cmd::CompileArgs),
    /// Run an aggregation over a CSV file and print one row per key.
    Run(run_cmd::RunArgs),
    /// Run one hop of an aggregation tree: a UDP node that merges what its children send.
    Node(node_cmd::NodeArgs),
    /// Simulate a network whose switches aggregate hop by hop, and report its traffic.
    Simulate(simulate_cmd::SimulateArgs),
    /// Explain a diagnostic code, e.g. `naasc explain E0301`.
    Explain {
        /// The code, such as E0301.
        code: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

fn main() -> ExitCode {
    memory::fix_large_allocation_threshold();
    stdout::guard_standard_streams();
    let cli = Cli::parse();
    let exit = match cli.command {
        Command::Check(args) => check_cmd::run(&args),
        Command::Compile(args) => compile_cmd::run(&args),
        Command::Simulate(args) => simulate_cmd::run(&args),
        Command::Run(args) => run_cmd::run(&args),
        Command::Node(args) => node_cmd::run(&args),
        Command::Explain { code } => explain(&code),
    };
    exit.into()
}

fn explain(code: &str) -> Exit {
    match naas_lang::Code::parse(code) {
        Some(code) => match stdout::write_all(format!("{code}: {}\n", code.explanation()).as_bytes()) {
            Ok(()) => Exit::Ok,
            Err(error) => error.report("the explanation"),
        },
        None => {
            eprintln!("naasc: unknown diagnostic code `{code}`; codes look like E0301 (see spec.md, \"Diagnostics\")");
            Exit::Usage
        }
    }
}
