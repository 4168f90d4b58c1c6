//! `naasc node FILE --exec switch|host`: one hop of an aggregation tree as a process on a UDP
//! socket (spec §18.5); and the `--network` flags of `naasc run`, which send a job's partial
//! states through such processes (spec §18.6). The protocol, the hops and the job glue live in
//! `naas-net`; this file parses flags, loads the program and maps errors to exit codes.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use naas_lang::check::CheckOptions;
use naas_net::job::{
    encode_entries, job_id, run_over_network, send_mappers, MapperUplinks, NetError, NetReport, NetworkJob, Nodes,
    Started, WireEntries, LISTENING_MARK, REPORT_MARK,
};
use naas_net::node::{serve_job, wait_for_setup, NodeConfig, NodeError, NodeReport};
use naas_runtime::executor::{JobConfig, JobError, JobInput, JobStats};
use naas_runtime::timely_job::{run_timely_mappers, Cluster, MapperEntries, MapperPlan, TimelyJob};
use naas_runtime::KeyResults;
use naas_runtime::{Aggregation, JobOutput, LoadError};
use naas_target_native::NativeError;
use naas_target_switch::network::Topology;
use naas_target_switch::PipelineProgram;

use crate::exit::Exit;
use crate::front_end::{report_errors_only_for, report_front_end_for, report_internal, FrontEnd};
use crate::source::SourceFile;
use crate::switch::{lower_all, SwitchArgs};

/// The longest `--timeout` (a day): a bound, not a way to wait forever.
pub const MAX_TIMEOUT_SECONDS: f64 = 86_400.0;

/// How a node merges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum Exec {
    /// The lowered pipeline program on slot tables: a software switch.
    #[default]
    Switch,
    /// The JIT-compiled merge on an unbounded per-key table: an aggregation box on a server.
    Host,
}

impl Exec {
    fn name(self) -> &'static str {
        match self {
            Exec::Switch => "switch",
            Exec::Host => "host",
        }
    }
}

#[derive(Args, Debug)]
pub struct NodeArgs {
    /// Source file (`.naas`).
    pub file: PathBuf,
    /// How the node merges: `switch` (the pipeline program) or `host` (the compiled merge).
    #[arg(long, value_enum, default_value_t = Exec::Switch)]
    pub exec: Exec,
    /// The UDP address to listen on (port 0: one the system picks; the address is printed as
    /// `naasc-node-listening ADDRESS` on stdout).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Serve one job, then exit (by default the node serves jobs until it is stopped).
    #[arg(long)]
    pub once: bool,
    /// Write each job's counts here as JSON (replaced after every job).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Slots per lane of the switch's tables (default: what the profile's register memory
    /// holds); keys beyond them collide and are forwarded unmerged.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1 << 26))]
    pub slots: Option<u64>,
    /// (Internal) started by `naasc run --network`: stop when stdin ends, print the report
    /// on stdout.
    #[arg(long, hide = true)]
    pub launched: bool,
    /// (Internal) the node's name in the launcher's topology.
    #[arg(long, hide = true)]
    pub name: Option<String>,
    /// (Tests) drop and duplicate this node's outgoing datagrams: `LOSS,DUP,SEED`.
    #[arg(long, hide = true, value_parser = parse_faults)]
    pub inject_faults: Option<(f64, f64, u64)>,
    #[command(flatten)]
    pub switch: SwitchArgs,
}

/// The `--network` flags of `naasc run`.
#[derive(Args, Debug, Clone, Default)]
pub struct NetworkArgs {
    /// Send the partial states through node processes on this topology (as in `naasc
    /// simulate`), over UDP; the nodes are started on loopback unless `--attach` names them.
    #[arg(long, value_name = "TOPOLOGY")]
    pub network: Option<String>,
    /// How the nodes of `--network` merge: `switch` (pipeline program) or `host` (compiled merge).
    #[arg(long, value_enum, value_name = "MODE")]
    pub exec: Option<Exec>,
    /// Use nodes already running (`naasc node`), one address per switch of the topology in its
    /// order, comma-separated.
    #[arg(long, value_name = "ADDR,...", value_delimiter = ',')]
    pub attach: Vec<SocketAddr>,
    /// Seconds the network part of the job may take before it fails, naming the hop it waits
    /// for; with `--hostfile`, how long the processes have to connect to each other.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub timeout: f64,
    /// Slots per lane of launched switch nodes (`naasc node --slots`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1 << 26))]
    pub switch_slots: Option<u64>,
    /// (Tests) drop and duplicate datagrams of the job and its nodes: `LOSS,DUP,SEED`.
    #[arg(long, hide = true, value_parser = parse_faults)]
    pub inject_faults: Option<(f64, f64, u64)>,
}

/// `--inject-faults` text that is not `LOSS,DUP,SEED`.
#[derive(Debug, thiserror::Error)]
#[error("expected LOSS,DUP,SEED with probabilities in [0, 0.5], got `{0}`")]
struct FaultsError(String);

fn parse_faults(text: &str) -> Result<(f64, f64, u64), FaultsError> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let error = || FaultsError(text.to_string());
    let [loss, dup, seed] = parts[..] else { return Err(error()) };
    let loss: f64 = loss.parse().map_err(|_| error())?;
    let dup: f64 = dup.parse().map_err(|_| error())?;
    let seed: u64 = seed.parse().map_err(|_| error())?;
    if !(0.0..=0.5).contains(&loss) || !(0.0..=0.5).contains(&dup) {
        return Err(error());
    }
    Ok((loss, dup, seed))
}

fn usage(message: impl std::fmt::Display) -> Exit {
    eprintln!("naasc: {message}");
    Exit::Usage
}

/// Loads the program's aggregation (and its pipeline program for a switch).
fn load(
    file: &std::path::Path,
    switch: &SwitchArgs,
    exec: Exec,
    launched: bool,
) -> Result<(Aggregation, Option<PipelineProgram>, SourceFile), Exit> {
    // A launched node's warnings are the launching job's, which has printed them.
    let front_end = if launched { report_errors_only_for } else { report_front_end_for };
    let (compiled, source) = match front_end(file, &CheckOptions::default(), switch.aggregate.as_deref()) {
        FrontEnd::Compiled(compiled, source) => (compiled, source),
        FrontEnd::Failed(code) => return Err(code),
    };
    let aggregation = match Aggregation::from_compiled(*compiled, switch.aggregate.as_deref()) {
        Ok(aggregation) => aggregation,
        Err(LoadError::Internal(error)) => return Err(report_internal(&source, &error)),
        Err(LoadError::Unsupported(NativeError::Internal(error))) => return Err(report_internal(&source, &error)),
        Err(error) => {
            eprintln!("naasc: {}: {error}", source.name);
            return Err(match error {
                LoadError::Selection(_) => Exit::Usage,
                _ => Exit::Program,
            });
        }
    };
    let pipeline = pipeline_for(&aggregation, &source, switch, exec)?;
    Ok((aggregation, pipeline, source))
}

/// The pipeline program of a switch node (`None` for a host box).
fn pipeline_for(
    aggregation: &Aggregation,
    source: &SourceFile,
    switch: &SwitchArgs,
    exec: Exec,
) -> Result<Option<PipelineProgram>, Exit> {
    if exec == Exec::Host {
        if let Some(flag) = switch.switch_only_flag() {
            return Err(usage(format!("{flag} applies to `--exec switch`; a host node has no use for it")));
        }
        return Ok(None);
    }
    let switch = SwitchArgs { aggregate: Some(aggregation.name().to_string()), ..switch.clone() };
    match lower_all(aggregation.compiled(), source, &switch) {
        Ok(mut programs) if !programs.is_empty() => Ok(Some(programs.swap_remove(0).1)),
        Ok(_) => Err(Exit::Program),
        Err(code) => {
            eprintln!("naasc: `{}` does not lower to the switch; `--exec host` merges it on a server", source.name);
            Err(code)
        }
    }
}

/// `naasc node`.
pub fn run(args: &NodeArgs) -> Exit {
    let (aggregation, pipeline, _source) = match load(&args.file, &args.switch, args.exec, args.launched) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let socket = match naas_net::socket::bind(args.listen) {
        Ok(socket) => socket,
        Err(error) => return usage(format!("cannot listen on {}: {error}", args.listen)),
    };
    let address = match socket.local_addr() {
        Ok(address) => address,
        Err(error) => return usage(format!("cannot read the socket's address: {error}")),
    };
    if crate::stdout::write_all(format!("{LISTENING_MARK}{address}\n").as_bytes()).is_err() && args.launched {
        return Exit::Usage;
    }
    let stopped = Arc::new(AtomicBool::new(false));
    if args.launched {
        // The launcher holds this pipe open until the node exits: its end means it is gone.
        let stopped = Arc::clone(&stopped);
        std::thread::spawn(move || {
            let mut sink = [0u8; 256];
            let mut stdin = std::io::stdin();
            loop {
                match stdin.read(&mut sink) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            stopped.store(true, Ordering::SeqCst);
        });
    }
    let stop = || stopped.load(Ordering::SeqCst);
    let config = NodeConfig { aggregation: &aggregation, pipeline: pipeline.as_ref(), slots: args.slots };
    let name = args.name.clone().unwrap_or_else(|| address.to_string());
    let mut served = None;
    loop {
        let mut report =
            NodeReport { exec: args.exec.name().to_string(), address: address.to_string(), ..NodeReport::default() };
        let (job, setup) = match wait_for_setup(&socket, &config, &mut report, served, &stop) {
            Ok(got) => got,
            Err(NodeError::Stopped) => return Exit::Ok,
            // A job's set-up the node cannot serve: the job's fault, refused unacknowledged.
            Err(error @ NodeError::Setup { .. }) => {
                eprintln!("naasc: node `{name}`: {error}");
                return Exit::Program;
            }
            Err(error) => {
                eprintln!("naasc: node `{name}`: {error}");
                return Exit::Usage;
            }
        };
        let faults = args.inject_faults.map(|(loss, dup, seed)| (loss, dup, seed ^ naas_stdx::mix64(job)));
        match serve_job(&socket, &config, job, &setup, &mut report, &stop, faults) {
            Ok(()) => {}
            Err(NodeError::Stopped) => return Exit::Ok,
            Err(error) => {
                eprintln!("naasc: node `{}`: job {job}: {error}", setup.name);
                return Exit::Program;
            }
        }
        served = Some(job);
        let text = serde_json::to_string(&report).unwrap_or_default();
        if let Some(path) = &args.report {
            if let Err(error) = std::fs::write(path, format!("{text}\n")) {
                return usage(format!("cannot write `{}`: {error}", path.display()));
            }
        }
        if args.launched {
            let _ = crate::stdout::write_all(format!("{REPORT_MARK}{text}\n").as_bytes());
        }
        if args.once {
            return Exit::Ok;
        }
    }
}

/// Checks the `--network` flags against the rest of `naasc run`'s; `None` when they fit.
pub fn check_network_flags(net: &NetworkArgs, target_is_host: bool, no_combine: bool) -> Option<String> {
    if net.network.is_none() {
        let flag = if net.exec.is_some() {
            Some("--exec")
        } else if !net.attach.is_empty() {
            Some("--attach")
        } else if net.switch_slots.is_some() {
            Some("--switch-slots")
        } else {
            None
        };
        return flag.map(|flag| format!("{flag} applies to `--network TOPOLOGY`"));
    }
    if !target_is_host {
        return Some("--network sends the states through node processes: drop --target switch-sim".to_string());
    }
    if no_combine {
        return Some("--network sends each mapper's combined states: drop --no-combine".to_string());
    }
    if net.switch_slots.is_some() && net.exec == Some(Exec::Host) {
        return Some("--switch-slots applies to `--exec switch`; a host node's table has a slot per key".to_string());
    }
    if net.switch_slots.is_some() && !net.attach.is_empty() {
        return Some("--switch-slots applies to launched nodes; start each attached node with `--slots N`".to_string());
    }
    if !(net.timeout > 0.0 && net.timeout <= MAX_TIMEOUT_SECONDS) {
        return Some(format!("--timeout {}: give 0 to {MAX_TIMEOUT_SECONDS} seconds (more than 0)", net.timeout));
    }
    None
}

/// The flags that make a launched node the twin of this job's program and switch.
fn node_argv(
    file: &std::path::Path,
    aggregate: &str,
    exec: Exec,
    net: &NetworkArgs,
    switch: &SwitchArgs,
) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec!["node".into(), file.as_os_str().to_owned()];
    let mut flag = |name: &str, value: OsString| {
        argv.push(name.into());
        argv.push(value);
    };
    flag("--aggregate", aggregate.into());
    flag("--exec", exec.name().into());
    flag("--listen", "127.0.0.1:0".into());
    if exec == Exec::Switch {
        if let Some(profile) = &switch.profile {
            flag("--profile", profile.as_os_str().to_owned());
        }
        if let Some(scale) = switch.fixed_point {
            flag("--fixed-point", scale.to_string().into());
        }
        if let Some(slots) = switch.min_slots {
            flag("--min-slots", slots.to_string().into());
        }
        if let Some(lanes) = switch.lanes {
            flag("--lanes", lanes.to_string().into());
        }
        if let Some(passes) = switch.max_passes {
            flag("--max-passes", passes.to_string().into());
        }
        if let Some(slots) = net.switch_slots {
            flag("--slots", slots.to_string().into());
        }
    }
    if let Some((loss, dup, seed)) = net.inject_faults {
        flag("--inject-faults", format!("{loss},{dup},{seed}").into());
    }
    argv.push("--once".into());
    argv.push("--launched".into());
    argv
}

/// Why `naasc run --network` failed.
#[derive(Debug)]
pub enum NetworkFailure {
    /// A failure of the job, reported as `naasc run` reports its own: the command line's as
    /// [`JobError::Input`] (exit 2), a node that died or a timeout as [`JobError::Other`] (1).
    Job(JobError),
    /// Already reported (the program does not lower to the switch, say): exit with this code.
    Reported(Exit),
}

/// The network job `naasc run --network` describes, and the switch program of its nodes.
fn network_job(
    run: &crate::run_cmd::RunArgs,
    aggregation: &Aggregation,
    file: &SourceFile,
) -> Result<(NetworkJob, Option<PipelineProgram>), NetworkFailure> {
    let input_error = |message: String| NetworkFailure::Job(JobError::Input(message));
    let net = &run.net;
    let Some(topology) = &net.network else { return Err(input_error("--network is not set".to_string())) };
    let topology = Topology::parse(topology).map_err(|e| input_error(e.to_string()))?;
    let exec = net.exec.unwrap_or_default();
    let pipeline = pipeline_for(aggregation, file, &run.switch, exec).map_err(NetworkFailure::Reported)?;
    let nodes = if net.attach.is_empty() {
        let exe = std::env::current_exe().map_err(|e| input_error(format!("cannot find naasc itself: {e}")))?;
        Nodes::Launch { exe, args: node_argv(&run.file, aggregation.name(), exec, net, &run.switch) }
    } else {
        Nodes::Attach(net.attach.clone())
    };
    let job = NetworkJob { topology, nodes, timeout: Duration::from_secs_f64(net.timeout), faults: net.inject_faults };
    Ok((job, pipeline))
}

/// A network failure as the job error `naasc run` reports.
fn job_error(error: NetError) -> JobError {
    match error {
        NetError::Job(error) => error,
        NetError::Usage(message) => JobError::Input(message),
        error => JobError::Other(error.to_string()),
    }
}

/// `naasc run ... --network TOPOLOGY`: the job's shuffle through node processes.
pub fn run_network<R: Read + Send>(
    run: &crate::run_cmd::RunArgs,
    aggregation: &Aggregation,
    file: &SourceFile,
    input: impl Into<JobInput<R>>,
    config: &JobConfig,
) -> Result<(JobOutput, Option<serde_json::Value>), NetworkFailure> {
    let (job, pipeline) = network_job(run, aggregation, file)?;
    match run_over_network(aggregation, input, &run.key, &run.binds, config, pipeline.as_ref(), &job) {
        Ok((output, report)) => {
            report_network(&report);
            Ok((output, serde_json::to_value(&report).ok()))
        }
        Err(error) => Err(NetworkFailure::Job(job_error(error))),
    }
}

/// `naasc run --engine timely --network TOPOLOGY` (spec §18.6): what each process of the
/// timely job runs once connected. Process 0 starts (or attaches) the nodes and sets them up
/// before the map phase, since the other processes learn where to send only through timely,
/// with the key ids; every process then sends the mappers its workers own (mapper `m` by worker
/// `m mod W`), and process 0 is the reducer.
pub struct TimelyNetwork<'a> {
    aggregation: &'a Aggregation,
    job: NetworkJob,
    pipeline: Option<PipelineProgram>,
    /// Process 0's network report, for `--report`.
    pub report: std::cell::RefCell<Option<serde_json::Value>>,
}

impl<'a> TimelyNetwork<'a> {
    pub fn new(
        run: &crate::run_cmd::RunArgs,
        aggregation: &'a Aggregation,
        file: &SourceFile,
    ) -> Result<TimelyNetwork<'a>, NetworkFailure> {
        let (job, pipeline) = network_job(run, aggregation, file)?;
        Ok(TimelyNetwork { aggregation, job, pipeline, report: std::cell::RefCell::new(None) })
    }

    /// Runs process `process`'s part: the results and counts in process 0, counts elsewhere.
    pub fn run(
        &self,
        job: TimelyJob,
        cluster: Option<Cluster>,
        process: usize,
    ) -> Result<(KeyResults, JobStats), JobError> {
        let (aggregation, pipeline) = (self.aggregation, self.pipeline.as_ref());
        let max_key = naas_net::node::template(aggregation, pipeline, 0).max_key;
        if process != 0 {
            let plan = MapperPlan { mappers: self.job.topology.mappers(), max_key, blob: Vec::new() };
            let states = run_timely_mappers(job, cluster, plan)?;
            let uplinks: MapperUplinks = serde_json::from_slice(&states.blob)
                .map_err(|e| JobError::Other(format!("process 0 handed out malformed uplinks: {e}")))?;
            let own = encode(aggregation, pipeline, &states.mappers, &[])?;
            send_mappers(aggregation, pipeline, &uplinks, &own, &self.job).map_err(job_error)?;
            return Ok((KeyResults::default(), states.stats));
        }
        let mut nodes = Started::start(aggregation, pipeline, &self.job).map_err(job_error)?;
        let mut set_up = nodes.set_up(aggregation, pipeline, &self.job, job_id()).map_err(job_error)?;
        let uplinks = nodes.mapper_uplinks(&set_up);
        let blob = serde_json::to_vec(&uplinks).map_err(|e| JobError::Other(e.to_string()))?;
        let plan = MapperPlan { mappers: nodes.mappers, max_key, blob };
        let states = run_timely_mappers(job, cluster, plan)?;
        let started = std::time::Instant::now();
        set_up.restart_clock(self.job.timeout);
        let key_of: Vec<&[u8]> = states.keys.iter().map(Vec::as_slice).collect();
        let own = encode(aggregation, pipeline, &states.mappers, &key_of)?;
        let (results, report) =
            nodes.exchange(aggregation, pipeline, &self.job, set_up, &own, &key_of).map_err(job_error)?;
        report_network(&report);
        *self.report.borrow_mut() = serde_json::to_value(&report).ok();
        let mut stats = states.stats;
        stats.keys = results.len() as u64;
        stats.shuffle_entries = report.entries_at_reducer;
        stats.shuffle_bytes = report.bytes_at_reducer;
        stats.reduce_seconds = started.elapsed().as_secs_f64();
        Ok((results, stats))
    }
}

/// Encodes the entries of a process's mappers for the wire.
fn encode(
    aggregation: &Aggregation,
    pipeline: Option<&PipelineProgram>,
    mappers: &[(usize, MapperEntries)],
    key_of: &[&[u8]],
) -> Result<Vec<(usize, WireEntries)>, JobError> {
    let mut own = Vec::with_capacity(mappers.len());
    for (mapper, entries) in mappers {
        let entries: Vec<(u64, &[u8])> = entries.iter().map(|(id, state)| (*id, state.as_slice())).collect();
        own.push((*mapper, encode_entries(aggregation, pipeline, &entries, key_of).map_err(job_error)?));
    }
    Ok(own)
}

/// Says on stderr what the network did, as `--target switch-sim` does.
fn report_network(report: &NetReport) {
    let _ = writeln!(
        std::io::stderr().lock(),
        "naasc: network: {} entries from mappers; {} node(s) made {} merges, forwarded {} entries unmerged and \
         flushed {} at end of stream; {} reached the reducer{}; {} retransmission(s), {} duplicate(s) \
         dropped",
        report.entries_from_mappers,
        report.switches,
        report.switch_merges,
        report.collisions,
        report.flushed_entries,
        report.entries_at_reducer,
        report.ideal_entries_at_reducer.map_or_else(String::new, |bound| format!(" (fan-in bound {bound})")),
        report.retransmissions,
        report.duplicates_dropped
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn net(network: Option<&str>) -> NetworkArgs {
        NetworkArgs { network: network.map(String::from), timeout: 60.0, ..NetworkArgs::default() }
    }

    #[test]
    fn network_flags_that_do_not_fit_name_the_flag() {
        assert_eq!(check_network_flags(&net(Some("tree:fanout=2,depth=1")), true, false), None);
        assert_eq!(check_network_flags(&net(None), true, false), None);
        let exec = NetworkArgs { exec: Some(Exec::Host), ..net(None) };
        assert!(check_network_flags(&exec, true, false).unwrap().contains("--exec"));
        let cases = [
            (net(Some("t")), false, false, "--target switch-sim"),
            (net(Some("t")), true, true, "--no-combine"),
            (NetworkArgs { timeout: 0.0, ..net(Some("t")) }, true, false, "--timeout"),
            (NetworkArgs { timeout: f64::NAN, ..net(Some("t")) }, true, false, "--timeout"),
            (NetworkArgs { timeout: 1e9, ..net(Some("t")) }, true, false, "86400"),
            (
                NetworkArgs { switch_slots: Some(3), exec: Some(Exec::Host), ..net(Some("t")) },
                true,
                false,
                "--switch-slots",
            ),
            (
                NetworkArgs { switch_slots: Some(3), attach: vec!["127.0.0.1:9".parse().unwrap()], ..net(Some("t")) },
                true,
                false,
                "--slots",
            ),
        ];
        for (args, host, no_combine, names) in cases {
            let message = check_network_flags(&args, host, no_combine).unwrap();
            assert!(message.contains(names), "{message}");
        }
    }

    #[test]
    fn faults_parse_only_in_range() {
        assert_eq!(parse_faults("0.05, 0.1, 7").unwrap(), (0.05, 0.1, 7));
        for bad in ["", "0.1,0.1", "0.6,0,1", "0,-1,1", "a,b,c", "0,0,1,2"] {
            assert!(parse_faults(bad).is_err(), "{bad}");
        }
    }
}
