//! The switch-sim target in the driver: target-profile and lowering flags shared by
//! `naasc compile --target switch-sim` and `naasc simulate`, and lowering with diagnostics.

use std::path::PathBuf;

use crate::exit::Exit;

use clap::Args;
use naas_target_switch::{lower, LowerError, LowerOptions, PipelineProgram, TargetProfile};

use crate::front_end::{print_diagnostics, report_internal};
use crate::source::SourceFile;

#[derive(Args, Debug, Clone)]
pub struct SwitchArgs {
    /// The switch model: a TOML profile file, or a built-in profile's name (`tofino1`, the
    /// default, or `tofino2`).
    #[arg(long, value_name = "FILE|NAME")]
    pub profile: Option<PathBuf>,
    /// Carry float state as fixed point `round(x * SCALE)` (switches have no floats; SCALE >= 1).
    #[arg(long = "fixed-point", value_name = "SCALE", value_parser = clap::value_parser!(u64).range(1..))]
    pub fixed_point: Option<u64>,
    /// Reject programs whose registers leave fewer key slots per lane than this (without
    /// `--lanes`, the most lanes that leave this many slots are used).
    #[arg(long, value_name = "N")]
    pub min_slots: Option<u64>,
    /// Lanes: entries per packet, each merged by its own copy of the registers (default: the
    /// most that fit the pipeline and the packet; fewer lanes leave more key slots per lane).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub lanes: Option<u32>,
    /// The most passes through the pipeline a packet may make (recirculation; default 1, line
    /// rate). Each extra pass divides the switch's aggregation throughput.
    #[arg(long = "max-passes", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(naas_target_switch::lower::MAX_PASSES)))]
    pub max_passes: Option<u32>,
    /// The aggregate to lower, when the program has several (default: all for `compile`,
    /// the first for `simulate`).
    #[arg(long, value_name = "NAME")]
    pub aggregate: Option<String>,
}

impl SwitchArgs {
    /// The first switch-only flag that is set (`--profile`, `--fixed-point`, `--min-slots`,
    /// `--lanes`, `--max-passes`),
    /// so that a command whose target ignores them can refuse them instead.
    pub fn switch_only_flag(&self) -> Option<&'static str> {
        if self.profile.is_some() {
            Some("--profile")
        } else if self.fixed_point.is_some() {
            Some("--fixed-point")
        } else if self.min_slots.is_some() {
            Some("--min-slots")
        } else if self.lanes.is_some() {
            Some("--lanes")
        } else if self.max_passes.is_some() {
            Some("--max-passes")
        } else {
            None
        }
    }
}

/// The profile named by `--profile`, or the default. Errors are printed; exit code 2.
pub fn profile(args: &SwitchArgs) -> Result<TargetProfile, Exit> {
    let Some(path) = &args.profile else { return Ok(TargetProfile::default()) };
    // A built-in profile by name, unless a file of that name exists.
    if !path.exists() {
        if let Some(profile) = path.to_str().and_then(TargetProfile::builtin) {
            return Ok(profile);
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        eprintln!("naasc: cannot read `{}`: {e}", path.display());
        Exit::Usage
    })?;
    TargetProfile::from_toml(&text).map_err(|e| {
        eprintln!("naasc: invalid switch profile `{}`: {e}", path.display());
        Exit::Usage
    })
}

/// The indexes of the aggregates `--aggregate` selects (all by default).
pub fn selected(compiled: &naas_ir::Compiled, args: &SwitchArgs) -> Result<Vec<usize>, Exit> {
    match &args.aggregate {
        None => Ok((0..compiled.aggregates.len()).collect()),
        Some(name) => match compiled.aggregates.iter().position(|plan| &plan.name == name) {
            Some(index) => Ok(vec![index]),
            None => {
                let names: Vec<&str> = compiled.aggregates.iter().map(|p| p.name.as_str()).collect();
                eprintln!("naasc: no aggregate `{name}`; this program defines: {}", names.join(", "));
                Err(Exit::Usage)
            }
        },
    }
}

/// Lowers the selected aggregates; prints every diagnostic and fails with exit code 1 when
/// one does not fit the switch.
pub fn lower_all(
    compiled: &naas_ir::Compiled,
    file: &SourceFile,
    args: &SwitchArgs,
) -> Result<Vec<(String, PipelineProgram)>, Exit> {
    let profile = profile(args)?;
    let options = LowerOptions {
        fixed_point_scale: args.fixed_point,
        min_key_slots: args.min_slots,
        lanes: args.lanes,
        max_passes: args.max_passes,
    };
    let indexes = selected(compiled, args)?;
    if indexes.is_empty() {
        eprintln!("naasc: `{}` defines no aggregate to lower", file.name);
        return Err(Exit::Program);
    }
    let mut programs = Vec::new();
    let mut failed = false;
    for index in indexes {
        match lower(compiled, index, &profile, &options) {
            Ok(program) => programs.push((compiled.aggregates[index].name.clone(), program)),
            Err(LowerError::Diagnostics(diagnostics)) => {
                print_diagnostics(file, &diagnostics);
                failed = true;
            }
            Err(LowerError::Internal(error)) => return Err(report_internal(file, &error)),
        }
    }
    if failed {
        Err(Exit::Program)
    } else {
        Ok(programs)
    }
}
