//! `naasc compile FILE`: runs the front and middle end, then prints or writes an artifact:
//! the IR, the state layouts, Cranelift IR, or (for NIC cores) a relocatable object file and
//! its C header.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use naas_lang::check::CheckOptions;
use naas_target_native::NativeError;

use crate::exit::Exit;
use crate::front_end::{report_front_end_for, report_internal, FrontEnd};
use crate::stdout;

fn usage(message: impl std::fmt::Display) -> Exit {
    eprintln!("naasc: {message}");
    Exit::Usage
}

/// A flag the chosen target would ignore, or an artifact it cannot produce: both are mistakes
/// on the command line (exit 2), found before the program is compiled.
#[derive(Debug, thiserror::Error)]
enum FlagError {
    #[error("--arch chooses the NIC core's architecture: it needs `--target nic`")]
    ArchWithoutNic,
    #[error("{0} applies to the switch: it needs `--target switch-sim`")]
    SwitchFlag(&'static str),
    #[error("`--target switch-sim` produces `--emit pipeline`, `ir` or `state`")]
    NativeArtifactForSwitch,
    #[error("`--emit pipeline` is the switch's artifact: it needs `--target switch-sim`")]
    PipelineWithoutSwitch,
    #[error("`--emit object` makes an object file for a NIC core: it needs `--target nic`")]
    ObjectWithoutNic,
}

fn check_flags(args: &CompileArgs) -> Result<(), FlagError> {
    if args.arch.is_some() && args.target != Target::Nic {
        return Err(FlagError::ArchWithoutNic);
    }
    if args.target != Target::SwitchSim {
        if let Some(flag) = args.switch.switch_only_flag() {
            return Err(FlagError::SwitchFlag(flag));
        }
    }
    match (args.emit, args.target) {
        (Some(Emit::Clif | Emit::Header | Emit::Object), Target::SwitchSim) => Err(FlagError::NativeArtifactForSwitch),
        (Some(Emit::Pipeline), Target::Host | Target::Nic) => Err(FlagError::PipelineWithoutSwitch),
        (Some(Emit::Object), Target::Host) => Err(FlagError::ObjectWithoutNic),
        _ => Ok(()),
    }
}

#[derive(Args, Debug)]
pub struct CompileArgs {
    /// Source file (`.naas`).
    pub file: PathBuf,
    /// Where the code will run.
    #[arg(long, value_enum, default_value_t = Target::Host)]
    pub target: Target,
    /// The NIC core's architecture (`--target nic`; default: this machine's).
    #[arg(long, value_enum)]
    pub arch: Option<Arch>,
    /// What to produce (default: `object` for `--target nic`, `ir` otherwise).
    #[arg(long, value_enum)]
    pub emit: Option<Emit>,
    /// Write the artifact to this file instead of standard output (required for objects).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print the IR as lowered, before optimisation (`--emit ir`).
    #[arg(long)]
    pub no_opt: bool,
    #[command(flatten)]
    pub switch: crate::switch::SwitchArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// This machine, through the JIT.
    Host,
    /// A SmartNIC core: an object file with a C ABI (see `--emit header`).
    Nic,
    /// A simulated programmable switch: the merge as a pipeline program.
    #[value(name = "switch-sim")]
    SwitchSim,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Arch {
    #[value(name = "x86_64")]
    X86_64,
    Aarch64,
}

impl Arch {
    fn host() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else {
            Arch::X86_64
        }
    }

    fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Emit {
    /// The typed IR of every helper and aggregate part.
    Ir,
    /// Each aggregate's state layout: fields, types, merge operators, sizes.
    State,
    /// The Cranelift IR of the native entry points.
    Clif,
    /// The C header of the native entry points (state and result structs, prototypes).
    Header,
    /// A relocatable object file (`--target nic`).
    Object,
    /// The switch pipeline program and its resource report (`--target switch-sim`).
    Pipeline,
}

pub fn run(args: &CompileArgs) -> Exit {
    if let Err(message) = check_flags(args) {
        return usage(message);
    }
    let (compiled, file) =
        match report_front_end_for(&args.file, &CheckOptions::default(), args.switch.aggregate.as_deref()) {
            FrontEnd::Compiled(compiled, file) => (compiled, file),
            FrontEnd::Failed(code) => return code,
        };
    let emit = args.emit.unwrap_or(match args.target {
        Target::Nic => Emit::Object,
        Target::SwitchSim => Emit::Pipeline,
        Target::Host => Emit::Ir,
    });
    let artifact: Result<Vec<u8>, NativeError> = match (emit, args.target) {
        (Emit::Pipeline, _) => match crate::switch::lower_all(&compiled, &file, &args.switch) {
            Ok(programs) => Ok(programs
                .iter()
                .map(|(name, program)| {
                    let report = program.resource_report();
                    format!("aggregate {name}\n{}\n{}", program.text(), report.text())
                })
                .collect::<Vec<_>>()
                .join("\n")
                .into_bytes()),
            Err(code) => return code,
        },
        (Emit::Ir, _) => {
            let module = if args.no_opt { &compiled.lowered } else { &compiled.optimized };
            Ok(naas_ir::print::print_module(module).into_bytes())
        }
        (Emit::State, _) => Ok(compiled
            .aggregates
            .iter()
            .zip(&compiled.laws)
            .map(|(plan, laws)| naas_ir::print::print_state(plan, laws))
            .collect::<String>()
            .into_bytes()),
        (Emit::Clif, Target::Host) => host_clif(&compiled),
        (Emit::Clif | Emit::Header | Emit::Object, _) => {
            let arch = args.arch.unwrap_or_else(Arch::host);
            match naas_target_native::object::compile_object(&compiled, arch.name()) {
                Ok(object) => Ok(match emit {
                    Emit::Clif => object.clif.join("\n").into_bytes(),
                    Emit::Header => naas_target_native::object::c_header(&object.abis).into_bytes(),
                    _ => object.bytes,
                }),
                Err(error) => Err(error),
            }
        }
    };
    let bytes = match artifact {
        Ok(bytes) => bytes,
        Err(NativeError::Internal(error)) => return report_internal(&file, &error),
        Err(error) => {
            eprintln!("naasc: cannot compile `{}`: {error}", args.file.display());
            return Exit::Program;
        }
    };
    match (&args.output, emit) {
        (Some(path), _) => match std::fs::write(path, &bytes) {
            Ok(()) => Exit::Ok,
            Err(error) => usage(format!("cannot write `{}`: {error}", path.display())),
        },
        (None, Emit::Object) => usage("an object file is binary; choose where to write it with `-o FILE`"),
        (None, _) => match stdout::write_all(&bytes) {
            Ok(()) => Exit::Ok,
            Err(error) => error.report("the artifact"),
        },
    }
}

fn host_clif(compiled: &naas_ir::Compiled) -> Result<Vec<u8>, NativeError> {
    let mut out = String::new();
    for plan in &compiled.aggregates {
        let jit = naas_target_native::JitAggregate::compile(&compiled.optimized, plan)?;
        out.push_str(&jit.clif.join("\n"));
    }
    Ok(out.into_bytes())
}
