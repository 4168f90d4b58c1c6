//! `naasc simulate FILE`: generates records, sends them through a simulated network whose
//! switches run the aggregate's pipeline program, and reports the traffic on every link.

use std::path::PathBuf;

use crate::exit::Exit;
use clap::Args;
use naas_lang::check::CheckOptions;
use naas_lang::span::LineIndex;
use naas_lang::InternalError;
use naas_target_switch::network::{self, Dist, SimConfig, SimError, SlotIndex, Topology};

use crate::front_end::{report_front_end, report_internal, FrontEnd};
use crate::switch::{lower_all, SwitchArgs};

#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// Source file (`.naas`).
    pub file: PathBuf,
    /// `tree:fanout=F,depth=D`, `leaf-spine:leaves=L,spines=S,hosts=H`, or `file:PATH` (a
    /// topology file: lines `reducer NAME`, `switch NAME parent P`, `mapper NAME parent P`).
    #[arg(long, default_value = "tree:fanout=4,depth=2")]
    pub topology: String,
    /// Records generated in total, spread over the mappers.
    #[arg(long, default_value_t = 100_000)]
    pub records: u64,
    /// Distinct keys (`0..K`).
    #[arg(long, default_value_t = 1_000)]
    pub keys: u32,
    /// Key distribution: `uniform` or `zipf:S`.
    #[arg(long, default_value = "uniform")]
    pub dist: String,
    /// Probability that a transmission is lost.
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Probability that a transmission is delivered twice.
    #[arg(long, default_value_t = 0.0)]
    pub dup: f64,
    /// Probability that a transmission is delayed past later ones.
    #[arg(long, default_value_t = 0.0)]
    pub reorder: f64,
    /// Seed of every random choice (records, keys, loss).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Slots per switch table (default: what fits the register memory).
    #[arg(long, value_name = "N")]
    pub slots: Option<u64>,
    /// How switches map keys to slots: `hash` or `direct` (key mod slots).
    #[arg(long, default_value = "hash")]
    pub slot_index: String,
    /// Write the report as JSON.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Draw the traffic per tree level as SVG.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    #[command(flatten)]
    pub switch: SwitchArgs,
}

fn usage(message: String) -> Exit {
    eprintln!("naasc: {message}");
    Exit::Usage
}

pub fn run(args: &SimulateArgs) -> Exit {
    let topology = match Topology::parse(&args.topology) {
        Ok(topology) => topology,
        Err(error) => return usage(error.to_string()),
    };
    let dist = match Dist::parse(&args.dist) {
        Ok(dist) => dist,
        Err(error) => return usage(error.to_string()),
    };
    let slot_index = match SlotIndex::parse(&args.slot_index) {
        Ok(index) => index,
        Err(error) => return usage(error.to_string()),
    };
    for (name, p) in [("--loss", args.loss), ("--dup", args.dup), ("--reorder", args.reorder)] {
        if !(0.0..1.0).contains(&p) {
            return usage(format!(
                "{name} must be a probability in [0, 1), got {}",
                naas_stdx::excerpt(&p.to_string(), network::QUOTE_CHARS)
            ));
        }
    }
    if args.loss > network::MAX_LOSS {
        return usage(format!(
            "--loss must be at most {} (the simulator's limit: above it a packet and its acknowledgement \
             rarely both get through, and a link would retransmit millions of times), got {}",
            network::MAX_LOSS,
            naas_stdx::excerpt(&args.loss.to_string(), network::QUOTE_CHARS)
        ));
    }
    if args.keys == 0 {
        return usage("--keys must be at least 1".to_string());
    }
    if let Some(slots) = args.slots {
        if slots == 0 || slots > network::MAX_TABLE_SLOTS {
            return usage(format!(
                "--slots must be between 1 and {} slots per table (the simulator's limit), got {slots}",
                network::MAX_TABLE_SLOTS
            ));
        }
    }
    let (compiled, file) = match report_front_end(&args.file, &CheckOptions::default()) {
        FrontEnd::Compiled(compiled, file) => (compiled, file),
        FrontEnd::Failed(code) => return code,
    };
    let mut switch = args.switch.clone();
    if switch.aggregate.is_none() {
        match compiled.aggregates.first() {
            Some(plan) => switch.aggregate = Some(plan.name.clone()),
            None => {
                eprintln!("naasc: `{}` defines no aggregate to simulate", file.name);
                return Exit::Program;
            }
        }
    }
    let programs = match lower_all(&compiled, &file, &switch) {
        Ok(programs) => programs,
        Err(code) => return code,
    };
    let Some((name, program)) = programs.first() else { return Exit::Program };
    let index = compiled.aggregates.iter().position(|p| &p.name == name).unwrap_or(0);
    let config = SimConfig {
        topology,
        records: args.records,
        keys: args.keys,
        dist,
        seed: args.seed,
        loss: args.loss,
        dup: args.dup,
        reorder: args.reorder,
        table_slots: args.slots,
        slot_index,
        ..SimConfig::default()
    };
    let report = match network::simulate(&compiled, index, program, &config) {
        Ok(report) => report,
        Err(SimError::Fault { key, error }) => match error.fault() {
            Some((_, span)) => {
                // As `naasc run` reports a fault: the key, the fault, and where in the source.
                let (line, column) = LineIndex::new(&file.text).line_col(span.lo);
                eprintln!("naasc: error: key `{key}`: {error}");
                eprintln!("  --> {}:{line}:{column}: the operation that faulted", file.name);
                return Exit::Program;
            }
            None => return report_internal(&file, &InternalError::new(error.to_string())),
        },
        Err(SimError::Invalid(message)) => {
            // A setting that does not fit the program or its profile (e.g. more keys than
            // the profile's key bits can name): the flags are to change.
            return usage(format!("cannot simulate `{name}`: {message}"));
        }
        Err(SimError::Internal(error)) => return report_internal(&file, &error),
        Err(error) => {
            eprintln!("naasc: simulation of `{name}` failed: {error}");
            return Exit::Program;
        }
    };
    if let Err(error) = crate::stdout::write_all(report.text().as_bytes()) {
        return error.report("the report");
    }
    if let Some(path) = &args.report {
        let json = match serde_json::to_string_pretty(&report) {
            Ok(json) => json,
            Err(error) => return usage(format!("cannot encode the report: {error}")),
        };
        if let Err(error) = std::fs::write(path, json + "\n") {
            return usage(format!("cannot write `{}`: {error}", path.display()));
        }
    }
    if let Some(path) = &args.plot {
        if let Err(error) = std::fs::write(path, network::plot_svg(&report)) {
            return usage(format!("cannot write `{}`: {error}", path.display()));
        }
    }
    if !report.result_matches_reference {
        eprintln!("naasc: the network's result differs from the centralised reference");
        return Exit::Program;
    }
    Exit::Ok
}
