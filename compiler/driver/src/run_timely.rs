//! `naasc run --engine timely`: the job as a timely-dataflow computation, in this process or
//! spread over `--processes N` copies of `naasc` that talk over loopback TCP.
//!
//! With several processes, this process is the launcher. It starts every process with the
//! hidden flag `--timely-process I`, its stdin, stdout and stderr piped, and then:
//! 1. each process binds a listener on a loopback port the system picks and prints
//!    `naasc-listening ADDRESS` on stdout; no port is ever chosen and then released, so none
//!    can be taken by another program (or another job) before its process binds it;
//! 2. once all have, the launcher writes one line to every process's stdin: every address, a
//!    token that tells this job's connections apart, and the input's canonical path; the
//!    processes then connect to each other themselves ([`ClusterListener::connect`]), within
//!    a deadline;
//! 3. each process prints one JSON line per key after a marker, then a closing line, and exits;
//!    the launcher merges and sorts them.
//!
//! The cluster form (`--hostfile FILE --process I`, [`run_in_cluster`]) has no launcher: a user
//! or a cluster manager starts one process per line of the hostfile, each binds its own line's
//! address and connects to the others, retrying until `--timeout` while they come up; worker 0
//! gathers every result through timely, and process 0 alone writes them.
//!
//! Failure is bounded everywhere. A process that loses another (its connection breaks) prints
//! one line and exits with [`LOST_PEER`]; the launcher names the process that failed first and
//! how (exit code or signal), and stops the rest after a grace period. The processes die with
//! the launcher: on Linux the kernel kills them when it dies (`PR_SET_PDEATHSIG`), and
//! everywhere they exit when their stdin (held open by the launcher) reaches its end. Their
//! stderr is relayed line by line, so the lines of several processes never interleave.

use std::collections::hash_map::RandomState;
use std::ffi::OsString;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use naas_net::process::{describe, die_with_launcher, relay, relay_stderr, Children};
use naas_runtime::executor::{JobError, JobStats};
use naas_runtime::key_order;
use naas_runtime::timely_job::{
    run_timely, Cluster, ClusterError, ClusterListener, InputShare, TimelyJob, WhenRefused,
};
use naas_runtime::timely_ops::AggregationSource;
use naas_runtime::KeyResults;
use naas_runtime::Value;

/// The prefixes of a worker process's lines on stdout.
const LISTENING_MARK: &str = "naasc-listening ";
const RESULT_MARK: &str = "naasc-result ";
const STATS_MARK: &str = "naasc-stats ";
const NETWORK_MARK: &str = "naasc-network ";

/// The exit code of a process that stopped because another one of the job was lost (or the
/// launcher was); the launcher reports the process that failed first, not these.
pub const LOST_PEER: i32 = 3;

/// How long the processes have to start and bind their listeners (they compile the program
/// first, on a machine that may be busy).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the processes have to connect to each other once every one is listening.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the other processes have to finish after one failed, before they are killed.
const GRACE: Duration = Duration::from_secs(10);

/// One result line of a worker process.
#[derive(serde::Serialize, serde::Deserialize)]
struct ResultLine {
    key: Vec<u8>,
    values: Vec<LineValue>,
}

/// A result value on a line: floats as their bits, because JSON has no NaN or infinities.
#[derive(serde::Serialize, serde::Deserialize)]
enum LineValue {
    Bool(bool),
    Int(i64),
    UInt(u64),
    FloatBits(u64),
}

impl From<Value> for LineValue {
    fn from(value: Value) -> LineValue {
        match value {
            Value::Bool(b) => LineValue::Bool(b),
            Value::Int(v) => LineValue::Int(v),
            Value::UInt(v) => LineValue::UInt(v),
            Value::Float(x) => LineValue::FloatBits(x.to_bits()),
        }
    }
}

impl From<LineValue> for Value {
    fn from(value: LineValue) -> Value {
        match value {
            LineValue::Bool(b) => Value::Bool(b),
            LineValue::Int(v) => Value::Int(v),
            LineValue::UInt(v) => Value::UInt(v),
            LineValue::FloatBits(bits) => Value::Float(f64::from_bits(bits)),
        }
    }
}

/// The closing line of a worker process.
#[derive(serde::Serialize, serde::Deserialize)]
struct StatsLine {
    rows: u64,
    skipped: u64,
}

/// What the launcher tells every process once all are listening.
#[derive(serde::Serialize, serde::Deserialize)]
struct Rendezvous {
    processes: usize,
    addresses: Vec<SocketAddr>,
    token: u64,
    /// The input, resolved by the launcher: `/dev/stdin` would name another file in each process.
    input: PathBuf,
}

/// Checks that the timely engine can read `path`. Every worker of every process opens the
/// input by its path and reads the blocks it owns, so it must be a regular file: a pipe, a
/// FIFO or `/dev/stdin` on a pipe would be read (and its header consumed) by only one of them,
/// and the others would wait forever. A path that cannot be read is left for the caller to
/// report as it reports it for every engine.
pub fn check_input(path: &Path) -> Result<(), NotAFile> {
    match std::fs::metadata(path) {
        Ok(metadata) if !metadata.is_file() => Err(NotAFile(path.to_path_buf())),
        _ => Ok(()),
    }
}

/// An input the timely engine cannot read: see [`check_input`].
#[derive(Debug, thiserror::Error)]
#[error(
    "`{}` is not a regular file: `--engine timely` opens its input in every worker and process, so \
     it cannot read a pipe, FIFO or device; save the data to a file first, or use `--engine local`, \
     which reads streams",
    .0.display()
)]
pub struct NotAFile(PathBuf);

/// What a process of a timely job runs once it is connected to the others (`None` alone):
/// timely's own reduce ([`reduce_in_timely`]), or a network's (`naasc run --network`). It is
/// given the process's index and returns the results that process writes (process 0's; the
/// other processes of a job whose results are gathered return none) and its row counts.
pub type Body<'a> = &'a dyn Fn(TimelyJob, Option<Cluster>, usize) -> Result<(KeyResults, JobStats), JobError>;

/// Timely's own reduce: every worker finishes the keys of its partition; gathered at process
/// 0 when the job says so.
pub fn reduce_in_timely(
    job: TimelyJob,
    cluster: Option<Cluster>,
    _process: usize,
) -> Result<(KeyResults, JobStats), JobError> {
    run_timely(job, cluster)
}

/// Runs the job in this process.
pub fn run_here(job: TimelyJob, body: Body<'_>) -> Result<(KeyResults, JobStats), JobError> {
    let (results, stats) = body(job, None, 0)?;
    let results = key_order::sort(results).into_results();
    Ok((results, stats))
}

fn write_line(line: &str) -> Result<(), JobError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| JobError::Other(format!("cannot write to the launcher: {e}")))
}

/// Runs process `process` of a multi-process job (started by [`launch`]) and prints its results
/// for the launcher.
pub fn run_as_worker_process(mut job: TimelyJob, process: usize, body: Body<'_>) -> Result<(), JobError> {
    let cluster_error = |e: ClusterError| JobError::Other(format!("process {process}: {e}"));
    let listener = ClusterListener::bind().map_err(cluster_error)?;
    write_line(&format!("{LISTENING_MARK}{}", listener.local_addr().map_err(cluster_error)?))?;
    let mut stdin = BufReader::new(std::io::stdin());
    let mut line = String::new();
    let read =
        stdin.read_line(&mut line).map_err(|e| JobError::Other(format!("cannot read from the launcher: {e}")))?;
    if read == 0 {
        return Err(JobError::Other(format!("process {process}: the launcher stopped before the job started")));
    }
    let rendezvous: Rendezvous = serde_json::from_str(&line)
        .map_err(|e| JobError::Other(format!("process {process}: a malformed line from the launcher: {e}")))?;
    let processes = rendezvous.processes;
    stop_on_lost_peer(process, processes);
    // The launcher holds this pipe open until this process exits: its end means it is gone.
    std::thread::spawn(move || {
        let mut sink = [0u8; 256];
        loop {
            match stdin.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        stop(&format!("naasc: process {process} of {processes}: the launcher stopped; stopping"));
    });
    let cluster = match listener.connect(
        process,
        &rendezvous.addresses,
        rendezvous.token,
        job.workers,
        CONNECT_TIMEOUT,
        WhenRefused::Fail,
    ) {
        Ok(cluster) => cluster,
        // Refused by a process that was listening: it has stopped, and it is the one to name.
        Err(error @ ClusterError::Connect { .. }) => {
            stop(&format!("naasc: process {process} of {processes}: {error}; stopping"))
        }
        Err(error) => return Err(cluster_error(error)),
    };
    job.open_as = Some(rendezvous.input);
    let (results, stats) = body(job, Some(cluster), process)?;
    // Sorted here, in parallel with the other processes, so that the launcher sorts runs.
    let results = key_order::sort(results).into_results();
    for error in &stats.first_skipped {
        eprintln!("naasc: skipped {error}");
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut write =
        |line: String| writeln!(out, "{line}").map_err(|e| JobError::Other(format!("cannot write results: {e}")));
    for (key, values) in results.iter() {
        let (key, values) = (key.to_vec(), values.iter().copied().map(LineValue::from).collect());
        let line = serde_json::to_string(&ResultLine { key, values }).map_err(|e| JobError::Other(e.to_string()))?;
        write(format!("{RESULT_MARK}{line}"))?;
    }
    let stats = StatsLine { rows: stats.rows, skipped: stats.skipped };
    let line = serde_json::to_string(&stats).map_err(|e| JobError::Other(e.to_string()))?;
    write(format!("{STATS_MARK}{line}"))?;
    out.flush().map_err(|e| JobError::Other(format!("cannot write results: {e}")))
}

/// Set once a thread has started stopping the process, so only one line is printed.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// The exit code of a process that lost another: [`LOST_PEER`] under a launcher (which reports
/// the process that failed first instead), 1 in the cluster form, whose processes report to
/// the user (or cluster manager) directly.
static LOST_PEER_EXIT: AtomicI32 = AtomicI32::new(LOST_PEER);

/// Prints `line` (if stderr is still there) and exits with [`LOST_PEER_EXIT`], once per
/// process; other threads that get here wait for the exit.
fn stop(line: &str) -> ! {
    if STOPPING.swap(true, Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
    let _ = writeln!(std::io::stderr().lock(), "{line}");
    std::process::exit(LOST_PEER_EXIT.load(Ordering::SeqCst))
}

/// Timely's network threads panic when a connection breaks ("timely communication error: ...",
/// a prefix timely keeps stable for this use); the workers then panic on the poisoned queues
/// and the process aborts in a destructor. This hook turns the first such panic into one line
/// and an exit, before anything unwinds; other panics are reported as usual.
fn stop_on_lost_peer(process: usize, processes: usize) {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        let Some(cause) = message.strip_prefix("timely communication error: ") else {
            return default(info);
        };
        // Timely names its network threads `timely:send-P` and `timely:recv-P`.
        let thread = std::thread::current();
        let peer = thread.name().and_then(|name| name.rsplit('-').next()).and_then(|p| p.parse::<usize>().ok());
        let whom = peer.map_or("another process".to_string(), |p| format!("process {p}"));
        stop(&format!("naasc: process {process} of {processes}: lost the connection to {whom} ({cause}); stopping"))
    }));
}

/// What a process printed on stdout, read to its end.
#[derive(Default)]
struct Printed {
    results: Vec<(Vec<u8>, Vec<Value>)>,
    stats: JobStats,
    closed: bool,
    malformed: Option<String>,
    /// Process 0's network report (`--network`).
    network: Option<serde_json::Value>,
}

/// Hands process 0's network report (`--network`) to the launcher, after its results.
pub fn print_network_report(report: &serde_json::Value) -> Result<(), JobError> {
    write_line(&format!("{NETWORK_MARK}{report}"))
}

enum Event {
    Listening(usize, SocketAddr),
    Printed(usize, Printed),
}

/// Reads a process's stdout: its address, its result lines and its closing line.
fn read_stdout(process: usize, stdout: impl Read, events: mpsc::Sender<Event>) {
    let mut printed = Printed::default();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let parsed = if let Some(address) = line.strip_prefix(LISTENING_MARK) {
            address
                .parse::<SocketAddr>()
                .map(|a| drop(events.send(Event::Listening(process, a))))
                .map_err(|e| e.to_string())
        } else if let Some(json) = line.strip_prefix(RESULT_MARK) {
            serde_json::from_str::<ResultLine>(json)
                .map(|r| printed.results.push((r.key, r.values.into_iter().map(Value::from).collect())))
                .map_err(|e| e.to_string())
        } else if let Some(json) = line.strip_prefix(NETWORK_MARK) {
            serde_json::from_str::<serde_json::Value>(json)
                .map(|report| printed.network = Some(report))
                .map_err(|e| e.to_string())
        } else if let Some(json) = line.strip_prefix(STATS_MARK) {
            serde_json::from_str::<StatsLine>(json)
                .map(|s| {
                    printed.stats.rows += s.rows;
                    printed.stats.skipped += s.skipped;
                    printed.closed = true;
                })
                .map_err(|e| e.to_string())
        } else {
            relay(format!("{line}\n").as_bytes());
            Ok(())
        };
        if let Err(error) = parsed {
            printed.malformed.get_or_insert(error);
        }
    }
    let _ = events.send(Event::Printed(process, printed));
}

/// A token that tells this job's connections from any other's.
fn job_token() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.finish()
}

/// The merged results and counts of a launched job, and process 0's network report.
pub type Launched = (KeyResults, JobStats, Option<serde_json::Value>);

/// Starts `args.processes` copies of this `naasc run` command (whose arguments are `argv`) and
/// merges their outputs.
pub fn launch(args: &crate::run_cmd::RunArgs, argv: &[OsString]) -> Result<Launched, JobError> {
    let processes = args.processes;
    let exe = std::env::current_exe().map_err(|e| JobError::Other(format!("cannot find the naasc binary: {e}")))?;
    let input = std::fs::canonicalize(&args.input)
        .map_err(|e| JobError::Input(format!("cannot open `{}`: {e}", args.input.display())))?;
    let (events, received) = mpsc::channel();
    let mut children = Children(Vec::with_capacity(processes));
    let mut stdins: Vec<Option<ChildStdin>> = Vec::with_capacity(processes);
    let mut relays = Vec::new();
    for process in 0..processes {
        let mut command = Command::new(&exe);
        command
            .args(argv)
            .arg("--timely-process")
            .arg(process.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        die_with_launcher(&mut command);
        // On an error, dropping `children` stops the processes already started, which would
        // otherwise wait for this one.
        let mut child = command
            .spawn()
            .map_err(|e| JobError::Other(format!("cannot start process {process} of {processes}: {e}")))?;
        stdins.push(child.stdin.take());
        if let Some(stdout) = child.stdout.take() {
            let events = events.clone();
            relays.push(std::thread::spawn(move || read_stdout(process, stdout, events)));
        }
        if let Some(stderr) = child.stderr.take() {
            relays.push(std::thread::spawn(move || relay_stderr(stderr)));
        }
        children.0.push(child);
    }
    drop(events);

    let started = Instant::now();
    let mut addresses: Vec<Option<SocketAddr>> = vec![None; processes];
    let mut printed: Vec<Option<Printed>> = (0..processes).map(|_| None).collect();
    let mut exited: Vec<Option<ExitStatus>> = vec![None; processes];
    let mut killed = vec![false; processes];
    let mut rendezvous_sent = false;
    // The first failure, and the first that is not a process stopping because of another.
    let mut first: Option<String> = None;
    let mut first_cause: Option<String> = None;
    let mut stop_at: Option<Instant> = None;
    loop {
        match received.recv_timeout(Duration::from_millis(10)) {
            Ok(Event::Listening(process, address)) => addresses[process] = Some(address),
            Ok(Event::Printed(process, output)) => printed[process] = Some(output),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Every stdout has ended; what is left is waiting for the exits.
            Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(Duration::from_millis(10)),
        }
        for (process, child) in children.0.iter_mut().enumerate() {
            if exited[process].is_some() {
                continue;
            }
            let status = match child.try_wait() {
                Ok(Some(status)) => status,
                Ok(None) => continue,
                Err(error) => {
                    first_cause.get_or_insert(format!("process {process} of {processes}: {error}"));
                    let _ = child.kill();
                    killed[process] = true;
                    match child.wait() {
                        Ok(status) => status,
                        Err(_) => continue,
                    }
                }
            };
            exited[process] = Some(status);
            if status.success() || killed[process] {
                continue;
            }
            let message = format!("process {process} of {processes} {}", describe(status));
            if status.code() == Some(LOST_PEER) {
                first.get_or_insert(message);
            } else {
                first_cause.get_or_insert(message);
            }
        }
        let failed = first.is_some() || first_cause.is_some();
        if !rendezvous_sent && !failed {
            if addresses.iter().all(Option::is_some) {
                let rendezvous = Rendezvous {
                    processes,
                    addresses: addresses.iter().flatten().copied().collect(),
                    token: job_token(),
                    input: input.clone(),
                };
                let line = serde_json::to_string(&rendezvous).map_err(|e| JobError::Other(e.to_string()))? + "\n";
                // A process that cannot be written to has died; its exit is seen above.
                for stdin in stdins.iter_mut().flatten() {
                    let _ = stdin.write_all(line.as_bytes()).and_then(|()| stdin.flush());
                }
                rendezvous_sent = true;
            } else if started.elapsed() > START_TIMEOUT {
                let late: Vec<String> =
                    (0..processes).filter(|&p| addresses[p].is_none()).map(|p| p.to_string()).collect();
                first_cause.get_or_insert(format!(
                    "process(es) {} of {processes} did not start within {} s (the limit on starting the processes of a timely job)",
                    late.join(", "),
                    START_TIMEOUT.as_secs()
                ));
            }
        }
        let failed = first.is_some() || first_cause.is_some();
        if failed && stop_at.is_none() {
            // Before the rendezvous the others cannot go on: stop them now.
            stop_at = Some(if rendezvous_sent { Instant::now() + GRACE } else { Instant::now() });
        }
        if stop_at.is_some_and(|at| Instant::now() >= at) {
            for (process, child) in children.0.iter_mut().enumerate() {
                if exited[process].is_none() && !killed[process] {
                    let _ = child.kill();
                    killed[process] = true;
                }
            }
        }
        if exited.iter().all(Option::is_some) && printed.iter().all(Option::is_some) {
            break;
        }
    }
    drop(stdins);
    for relay in relays {
        let _ = relay.join();
    }
    if let Some(message) = first_cause.or(first) {
        return Err(JobError::Other(message));
    }
    let mut results = Vec::new();
    let mut stats = JobStats::default();
    let mut network = None;
    for (process, output) in printed.into_iter().enumerate() {
        let output = output.unwrap_or_default();
        if let Some(error) = output.malformed {
            return Err(JobError::Other(format!("process {process} of {processes} printed a malformed line: {error}")));
        }
        if !output.closed {
            return Err(JobError::Other(format!("process {process} of {processes} exited without its results")));
        }
        results.extend(output.results);
        network = network.or(output.network);
        stats.rows += output.stats.rows;
        stats.skipped += output.stats.skipped;
    }
    let Some(results) = KeyResults::checked_from_rows(results) else {
        return Err(JobError::Other("the processes printed result rows of different widths".to_string()));
    };
    // Each process printed its keys sorted; sorting runs that are already sorted is cheap.
    let results = key_order::sort(results).into_results();
    stats.keys = results.len() as u64;
    Ok((results, stats, network))
}

/// The job described by `naasc run`'s arguments.
pub fn job(source: AggregationSource, args: &crate::run_cmd::RunArgs, workers: usize) -> TimelyJob {
    TimelyJob {
        source,
        input: args.input.clone(),
        open_as: None,
        key: args.key.clone(),
        binds: args.binds.clone(),
        skip_invalid: args.skip_invalid,
        workers,
        block_size: 1 << 20,
        share: if args.input_per_process { InputShare::PerProcess } else { InputShare::Shared },
        gather: false,
        finite_floats: args.net.network.is_some() && args.switch.fixed_point.is_some(),
    }
}

/// Why a hostfile cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HostfileError {
    #[error("cannot read the hostfile `{path}`: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path}:{line}: expected one process's address as `host:port`, got `{text}`{why}")]
    Address { path: String, line: usize, text: String, why: String },
    #[error("{path}:{line}: `{address}` is also on line {first}: every process needs an address of its own")]
    Duplicate { path: String, line: usize, first: usize, address: SocketAddr },
    #[error("the hostfile `{path}` lists no process (one `host:port` per line)")]
    Empty { path: String },
    #[error("the hostfile `{path}` lists {count} processes: a job has 1 to {max}", max = crate::run_cmd::MAX_PROCESSES)]
    TooMany { path: String, count: usize },
    #[error("--process {process}: the hostfile `{path}` lists {count} process(es), numbered from 0 to {last}", last = count - 1)]
    NoSuchProcess { path: String, process: usize, count: usize },
}

/// Reads a hostfile: one `host:port` per line, in process order (as timely's own hostfile);
/// blank lines and lines starting with `#` are skipped. A host name is resolved here, to its
/// first address.
pub fn read_hostfile(path: &Path) -> Result<Vec<SocketAddr>, HostfileError> {
    use std::net::ToSocketAddrs;
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| HostfileError::Read { path: name.clone(), error })?;
    let mut addresses: Vec<(SocketAddr, usize)> = Vec::new();
    for (number, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad =
            |why: String| HostfileError::Address { path: name.clone(), line: number, text: line.to_string(), why };
        let address = match line.to_socket_addrs() {
            Ok(mut resolved) => resolved.next().ok_or_else(|| bad(": the host has no address".to_string()))?,
            Err(error) => return Err(bad(format!(" ({error})"))),
        };
        if let Some(&(_, first)) = addresses.iter().find(|(a, _)| *a == address) {
            return Err(HostfileError::Duplicate { path: name, line: number, first, address });
        }
        addresses.push((address, number));
        if addresses.len() > crate::run_cmd::MAX_PROCESSES {
            let count = text.lines().filter(|l| !l.trim().is_empty() && !l.trim().starts_with('#')).count();
            return Err(HostfileError::TooMany { path: name, count });
        }
    }
    if addresses.is_empty() {
        return Err(HostfileError::Empty { path: name });
    }
    Ok(addresses.into_iter().map(|(a, _)| a).collect())
}

/// A token the processes of one cluster job share, and that tells its connections from those
/// of a job of another program, aggregate, key or hostfile: a stable hash (FNV-1a) of them,
/// since the processes are started apart and have nothing else in common.
fn cluster_token(job: &TimelyJob, addresses: &[SocketAddr]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &byte in bytes.iter().chain(&[0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for address in addresses {
        eat(address.to_string().as_bytes());
    }
    eat(job.source.source.as_bytes());
    eat(job.source.aggregate.as_deref().unwrap_or_default().as_bytes());
    eat(job.key.as_bytes());
    for (param, column) in &job.binds {
        eat(param.as_bytes());
        eat(column.as_bytes());
    }
    eat(&[u8::from(job.share == InputShare::PerProcess), u8::from(job.skip_invalid)]);
    hash
}

/// Runs process `process` of a job whose processes are the lines of `hostfile`, each started
/// on its own (`naasc run ... --hostfile FILE --process I`). Returns the job's results in
/// process 0 and `None` in the others, which write nothing: worker 0 (of process 0) gathers
/// every worker's results, row counts and first error through timely.
pub fn run_in_cluster(
    mut job: TimelyJob,
    hostfile: &Path,
    process: usize,
    timeout: Duration,
    body: Body<'_>,
) -> Result<Option<(KeyResults, JobStats)>, JobError> {
    let addresses = read_hostfile(hostfile).map_err(|e| JobError::Input(e.to_string()))?;
    let processes = addresses.len();
    if process >= processes {
        let path = hostfile.display().to_string();
        return Err(JobError::Input(HostfileError::NoSuchProcess { path, process, count: processes }.to_string()));
    }
    let me = format!("process {process} of {processes} ({})", addresses[process]);
    let listener = ClusterListener::bind_at(addresses[process]).map_err(|error| match error {
        ClusterError::Bind(error) => JobError::Input(format!(
            "{me}: cannot listen on {} (line {} of `{}`'s processes): {error}",
            addresses[process],
            process + 1,
            hostfile.display()
        )),
        other => JobError::Other(format!("{me}: {other}")),
    })?;
    LOST_PEER_EXIT.store(1, Ordering::SeqCst);
    stop_on_lost_peer(process, processes);
    let token = cluster_token(&job, &addresses);
    let named = |peers: &[usize]| -> String {
        let list: Vec<String> = peers.iter().map(|&p| format!("{p} ({})", addresses[p])).collect();
        list.join(", ")
    };
    let cluster =
        listener.connect(process, &addresses, token, job.workers, timeout, WhenRefused::Retry).map_err(|error| {
            match error {
                ClusterError::TimedOut { missing, .. } => JobError::Other(format!(
                "{me}: process(es) {} did not connect within {} s (--timeout); start one `naasc run ... --hostfile \
                 {} --process I` per line of the hostfile, with the same program, key and --workers",
                named(&missing),
                timeout.as_secs_f64(),
                hostfile.display()
            )),
                other => JobError::Other(format!("{me}: {other}")),
            }
        })?;
    job.gather = true;
    let (results, stats) = body(job, Some(cluster), process)?;
    if process != 0 {
        for error in &stats.first_skipped {
            eprintln!("naasc: {me}: skipped {error}");
        }
        return Ok(None);
    }
    let results = key_order::sort(results).into_results();
    let stats = JobStats { keys: results.len() as u64, ..stats };
    Ok(Some((results, stats)))
}
