//! An aggregation job as a timely-dataflow computation: every worker (of every process) reads
//! its share of the file's blocks (or batches), combines them as a map worker of the local
//! engine does, sends its partial states through timely's exchange by key, and returns the
//! results of the keys the exchange gave it.
//!
//! A job spread over several processes connects them itself ([`ClusterListener`]) rather than
//! through timely's `create_sockets`: that one retries refused connections forever, once a
//! second, printing each retry on stdout, so a peer that died before connecting hung the job
//! and every start-up cost a second. Here every process binds its listener before any address
//! is handed out, so a connection is never refused by a peer that is alive, and the whole
//! set-up has a deadline.

use std::cell::RefCell;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
use timely::communication::allocator::{AllocatorBuilder, ProcessBuilder};
use timely::communication::Hooks;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::InputHandle;
use timely::WorkerConfig;

use naas_lang::InternalError;

use crate::aggregation::Aggregation;
use crate::columnar_input::{ColumnarFile, ColumnarFormat};
use crate::executor::{merge_buffers, reduce_buffers, Grouping, Input, JobConfig, JobError, JobInput, JobStats};
use crate::key_order::SortedResults;
use crate::map_worker::{open_input, MapWorker, MapperOutput, OpenedInput};
use crate::results::KeyResults;
use crate::timely_ops::AggregationSource;
use crate::Value;

/// The first bytes a process sends on a connection it makes: a magic number, the job's token
/// (so a stray connection, or one from another job, is told apart), the process's index and
/// its number of worker threads (timely needs the same number everywhere).
const HANDSHAKE_MAGIC: [u8; 4] = *b"NAAT";
const HANDSHAKE_LEN: usize = 4 + 8 + 8 + 8;

/// Why the processes of a job could not be connected.
#[derive(Debug)]
pub enum ClusterError {
    /// No loopback listener could be bound.
    Bind(std::io::Error),
    /// Connecting to another process failed (it is not listening: it has stopped).
    Connect { peer: usize, address: SocketAddr, error: std::io::Error },
    /// Accepting connections failed.
    Accept(std::io::Error),
    /// A process connected with a different number of worker threads.
    Threads { peer: usize, threads: u64, ours: usize },
    /// The deadline passed with these processes still unconnected.
    TimedOut { missing: Vec<usize>, timeout: Duration },
    /// This process's index is not one of the addresses.
    NoSuchProcess { process: usize, processes: usize },
}

/// What connecting does when a peer refuses the connection (nothing listens at its address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenRefused {
    /// Fail at once: the peer was listening before the addresses were handed out (a job
    /// launched by one process), so a refusal means it has stopped.
    Fail,
    /// Retry until the deadline: the processes are started one by one (by a user or a cluster
    /// manager, from a hostfile), so a peer may not be listening yet.
    Retry,
}

impl std::fmt::Display for ClusterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClusterError::Bind(error) => write!(f, "cannot listen on a loopback port: {error}"),
            ClusterError::Connect { peer, address, error } => {
                write!(f, "cannot connect to process {peer} at {address}: {error} (it has stopped?)")
            }
            ClusterError::Accept(error) => write!(f, "cannot accept connections: {error}"),
            ClusterError::Threads { peer, threads, ours } => {
                write!(f, "process {peer} runs {threads} worker thread(s) and this one {ours}; they must agree")
            }
            ClusterError::TimedOut { missing, timeout } => {
                let list: Vec<String> = missing.iter().map(usize::to_string).collect();
                write!(
                    f,
                    "process(es) {} did not connect within {} s (the limit on connecting the processes of a timely job)",
                    list.join(", "),
                    timeout.as_secs()
                )
            }
            ClusterError::NoSuchProcess { process, processes } => {
                write!(f, "process {process} is not one of the job's {processes}")
            }
        }
    }
}

impl std::error::Error for ClusterError {}

/// A process's listener, bound (to a free loopback port the system picks) before the job's
/// addresses are known, so that its address can be handed to the others with no window in
/// which another program could take the port.
#[derive(Debug)]
pub struct ClusterListener {
    listener: TcpListener,
}

impl ClusterListener {
    pub fn bind() -> Result<ClusterListener, ClusterError> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(ClusterError::Bind)?;
        Ok(ClusterListener { listener })
    }

    /// Binds the listener at a given address: this process's line of a hostfile.
    pub fn bind_at(address: SocketAddr) -> Result<ClusterListener, ClusterError> {
        let listener = TcpListener::bind(address).map_err(ClusterError::Bind)?;
        Ok(ClusterListener { listener })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, ClusterError> {
        self.listener.local_addr().map_err(ClusterError::Bind)
    }

    /// Connects this process (`process`, running `threads` workers) to every other one of
    /// `addresses` (the same list, in process order, everywhere): it connects to the processes
    /// before it and accepts the ones after it, all within `timeout`. A refused connection
    /// fails or is retried as `refused` says.
    pub fn connect(
        self,
        process: usize,
        addresses: &[SocketAddr],
        token: u64,
        threads: usize,
        timeout: Duration,
        refused: WhenRefused,
    ) -> Result<Cluster, ClusterError> {
        let processes = addresses.len();
        if process >= processes {
            return Err(ClusterError::NoSuchProcess { process, processes });
        }
        let deadline = Instant::now() + timeout;
        let timed_out = |missing: Vec<usize>| ClusterError::TimedOut { missing, timeout };
        let mut peers: Vec<Option<TcpStream>> = (0..processes).map(|_| None).collect();
        // Connecting first cannot deadlock: every listener is already bound, and the kernel
        // completes a connection (and buffers the handshake) before the peer accepts it.
        for (peer, &address) in addresses.iter().enumerate().take(process) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timed_out((peer..process).collect()));
            }
            let connect = |error| ClusterError::Connect { peer, address, error };
            let mut stream = match connect_until(address, deadline, refused) {
                Ok(stream) => stream,
                Err(None) => return Err(timed_out((peer..process).collect())),
                Err(Some(error)) => return Err(connect(error)),
            };
            stream.set_nodelay(true).map_err(connect)?;
            let mut hello = Vec::with_capacity(HANDSHAKE_LEN);
            hello.extend_from_slice(&HANDSHAKE_MAGIC);
            hello.extend_from_slice(&token.to_le_bytes());
            hello.extend_from_slice(&(process as u64).to_le_bytes());
            hello.extend_from_slice(&(threads as u64).to_le_bytes());
            stream.write_all(&hello).map_err(connect)?;
            peers[peer] = Some(stream);
        }
        self.listener.set_nonblocking(true).map_err(ClusterError::Accept)?;
        while peers.iter().skip(process + 1).any(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timed_out((process + 1..processes).filter(|&p| peers[p].is_none()).collect()));
            }
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(2).min(left));
                    continue;
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(ClusterError::Accept(error)),
            };
            // A connection that is not a peer of this job (or says nothing in time) is dropped.
            if let Some((peer, stream)) = read_handshake(stream, token, left.min(Duration::from_secs(5))) {
                let (peer, peer_threads) = peer;
                if peer <= process || peer >= processes || peers[peer].is_some() {
                    continue;
                }
                if peer_threads != threads as u64 {
                    return Err(ClusterError::Threads { peer, threads: peer_threads, ours: threads });
                }
                peers[peer] = Some(stream);
            }
        }
        Ok(Cluster { process, peers })
    }
}

/// Connects to `address` before `deadline`, retrying refusals (and unreachable addresses, as a
/// machine coming up has none yet) when `refused` says so: `Err(None)` when the deadline passed.
fn connect_until(
    address: SocketAddr,
    deadline: Instant,
    refused: WhenRefused,
) -> Result<TcpStream, Option<std::io::Error>> {
    use std::io::ErrorKind;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(None);
        }
        match TcpStream::connect_timeout(&address, left) {
            Ok(stream) => return Ok(stream),
            Err(error) if error.kind() == ErrorKind::TimedOut => return Err(None),
            Err(error)
                if refused == WhenRefused::Retry
                    && matches!(
                        error.kind(),
                        ErrorKind::ConnectionRefused
                            | ErrorKind::ConnectionReset
                            | ErrorKind::HostUnreachable
                            | ErrorKind::NetworkUnreachable
                            | ErrorKind::Interrupted
                    ) =>
            {
                std::thread::sleep(Duration::from_millis(50).min(left));
            }
            Err(error) => return Err(Some(error)),
        }
    }
}

/// Reads and checks a peer's handshake: `((process, threads), stream)`, or `None` for a
/// connection that is not one of this job's.
fn read_handshake(mut stream: TcpStream, token: u64, wait: Duration) -> Option<((usize, u64), TcpStream)> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(wait.max(Duration::from_millis(1)))).ok()?;
    let mut hello = [0u8; HANDSHAKE_LEN];
    stream.read_exact(&mut hello).ok()?;
    let word = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&hello[at..at + 8]);
        u64::from_le_bytes(bytes)
    };
    if hello[..4] != HANDSHAKE_MAGIC || word(4) != token {
        return None;
    }
    let peer = usize::try_from(word(12)).ok()?;
    // Timely's threads read blocking, with no timeout.
    stream.set_read_timeout(None).ok()?;
    stream.set_nodelay(true).ok()?;
    Some(((peer, word(20)), stream))
}

/// This process's place in a job spread over several, with a connection to every other one.
#[derive(Debug)]
pub struct Cluster {
    /// This process's index.
    pub process: usize,
    /// One stream per process, in process order; `None` at this process's own index.
    peers: Vec<Option<TcpStream>>,
}

impl Cluster {
    pub fn processes(&self) -> usize {
        self.peers.len()
    }
}

/// A timely job over one input file (CSV, Parquet or Arrow IPC).
#[derive(Clone, Debug, PartialEq)]
pub struct TimelyJob {
    pub source: AggregationSource,
    /// The input as the user named it (errors name it so); columnar when its extension says so.
    pub input: PathBuf,
    /// Where to open the input, when that differs from `input`: a launcher resolves
    /// `/dev/stdin`, which names another file in each of its processes.
    pub open_as: Option<PathBuf>,
    pub key: String,
    pub binds: Vec<(String, String)>,
    pub skip_invalid: bool,
    /// Worker threads in this process.
    pub workers: usize,
    pub block_size: usize,
    /// How the workers share the input.
    pub share: InputShare,
    /// Gather every worker's results (and errors and row counts) at worker 0, so that process
    /// 0 of a job spread over several writes them all; the other workers return none.
    pub gather: bool,
    /// Reject non-finite float fields as bad rows (a switch holds floats in fixed point).
    pub finite_floats: bool,
}

/// How the workers of a job share its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum InputShare {
    /// Every process opens the same file (by the same path): unit `u` belongs to worker
    /// `u mod W` of all `W` workers.
    #[default]
    Shared,
    /// Each process reads a file of its own (its own `--input`): unit `u` of it belongs to
    /// the process's worker `u mod w` of its `w`.
    PerProcess,
}

/// The results of the keys this process's workers own (unsorted) and what they counted.
pub type TimelyOutput = (KeyResults, JobStats);

/// A sealed wire buffer on its way to reduce partition `.0` (the worker of that index), from
/// the worker of index `.1`.
type Shuffled = (usize, usize, WireBytes);

/// A sealed wire buffer that crosses between processes as one byte string: serde's own form of
/// a `Vec<u8>` is a sequence of single bytes, each encoded and decoded on its own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct WireBytes(Vec<u8>);

impl serde::Serialize for WireBytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for WireBytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<WireBytes, D::Error> {
        deserializer.deserialize_byte_buf(WireBytesVisitor)
    }
}

struct WireBytesVisitor;

impl<'de> serde::de::Visitor<'de> for WireBytesVisitor {
    type Value = WireBytes;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<WireBytes, E> {
        Ok(WireBytes(bytes.to_vec()))
    }

    fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<WireBytes, E> {
        Ok(WireBytes(bytes))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<WireBytes, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
        while let Some(byte) = seq.next_element::<u8>()? {
            bytes.push(byte);
        }
        Ok(WireBytes(bytes))
    }
}

/// Runs the job's workers in this process and waits for the whole computation: all of it
/// with `cluster` `None`, or this process's part of a job spread over `cluster`.
///
/// Each worker is a map worker of the local engine ([`MapWorker`]) over the units of input it
/// owns (unit `u` belongs to worker `u mod peers`): it parses and folds them into its combiner
/// table with no allocation per record, then seals the table into one wire buffer per worker
/// (by key hash) and hands them to timely's exchange. Each worker merges and finishes the
/// buffers of its partition once every worker has sent its own.
pub fn run_timely(job: TimelyJob, cluster: Option<Cluster>) -> Result<TimelyOutput, JobError> {
    if job.workers == 0 {
        return Err(JobError::Input("at least one worker is needed".to_string()));
    }
    let guards = start_workers(job.workers, cluster, move |worker| worker_main(worker, &job))?;
    let mut results = KeyResults::default();
    let mut stats = JobStats::default();
    join_workers(guards, |(part, part_stats): TimelyOutput| {
        results.append(&part);
        stats.absorb_rows(part_stats);
    })?;
    stats.keys = results.len() as u64;
    Ok((results, stats))
}

/// Waits for every worker and hands each one's output to `absorb`; the job's error is the
/// lowest-ranked of the workers' errors (see [`WorkerOutput`]), or a worker that panicked.
fn join_workers<T: Send + 'static>(
    guards: timely::communication::WorkerGuards<Result<T, (u64, JobError)>>,
    mut absorb: impl FnMut(T),
) -> Result<(), JobError> {
    let mut first_error: Option<(u64, JobError)> = None;
    for outcome in guards.join() {
        match outcome {
            Ok(Ok(part)) => absorb(part),
            Ok(Err((rank, error))) => {
                if first_error.as_ref().is_none_or(|(r, _)| rank < *r) {
                    first_error = Some((rank, error));
                }
            }
            Err(panic) => return Err(JobError::Other(format!("a timely worker failed: {panic}"))),
        }
    }
    first_error.map_or(Ok(()), |(_, error)| Err(error))
}

/// Starts `workers` timely workers in this process, joined to the other processes of `cluster`
/// when there is one, each running `work`.
fn start_workers<T: Send + 'static>(
    workers: usize,
    cluster: Option<Cluster>,
    work: impl Fn(&mut timely::worker::Worker) -> T + Send + Sync + 'static,
) -> Result<timely::communication::WorkerGuards<T>, JobError> {
    let hooks = Hooks::default();
    let process_allocators = ProcessBuilder::new_typed_vector(workers, hooks.refill.clone(), hooks.spill.clone());
    let (builders, others): (Vec<AllocatorBuilder>, Box<dyn std::any::Any + Send>) = match cluster {
        None => (process_allocators.into_iter().map(AllocatorBuilder::Process).collect(), Box::new(())),
        Some(Cluster { process, peers }) => {
            let (builders, guard) =
                initialize_networking_from_sockets(process_allocators, peers, process, workers, hooks)
                    .map_err(|e| JobError::Other(format!("cannot start timely's network threads: {e}")))?;
            (builders.into_iter().map(AllocatorBuilder::Tcp).collect(), Box::new(guard))
        }
    };
    timely::execute::execute_from(builders, others, WorkerConfig::default(), work)
        .map_err(|e| JobError::Other(format!("cannot start timely: {e}")))
}

/// A worker's results, or its first error with its rank: the line of a bad row or of the
/// record a fold faulted on, `u64::MAX` for what is found after the input was read (as the
/// local engine, which merges only once every row was read, would meet them).
type WorkerOutput = Result<TimelyOutput, (u64, JobError)>;

/// The reduce side's outcome, once the exchange has delivered every worker's buffers.
type Reduced = Rc<RefCell<Option<Result<KeyResults, JobError>>>>;

fn worker_main(worker: &mut timely::worker::Worker, job: &TimelyJob) -> WorkerOutput {
    let outcome = map_and_reduce(worker, job);
    if job.gather {
        gather(worker, outcome)
    } else {
        outcome
    }
}

fn map_and_reduce(worker: &mut timely::worker::Worker, job: &TimelyJob) -> WorkerOutput {
    let early = |error: JobError| (0, error);
    let aggregation = Rc::new(job.source.load().map_err(|e| early(JobError::Input(e.to_string())))?);
    let (index, peers) = (worker.index(), worker.peers());
    let mut input: InputHandle<u64, CapacityContainerBuilder<Vec<Shuffled>>> = InputHandle::new();
    let reduced: Reduced = Rc::default();
    let (sink, reducer) = (Rc::clone(&reduced), Rc::clone(&aggregation));
    worker.dataflow::<u64, _, _>(|scope| {
        let exchange = Exchange::new(|(partition, _, _): &Shuffled| *partition as u64);
        let mut buffers: Vec<(usize, Vec<u8>)> = Vec::new();
        input.to_stream(scope).sink(exchange, "NaasReduce", move |(input, frontier)| {
            input.for_each(|_, data| buffers.extend(data.drain(..).map(|(_, from, bytes)| (from, bytes.0))));
            if frontier.is_empty() && sink.borrow().is_none() {
                // Merge in the order of the sending workers, so that which key's fault is
                // reported does not depend on the order the buffers arrived in.
                buffers.sort_by_key(|(from, _)| *from);
                let buffers: Vec<Vec<u8>> = std::mem::take(&mut buffers).into_iter().map(|(_, b)| b).collect();
                *sink.borrow_mut() = Some(reduce_buffers(&reducer, buffers).map(SortedResults::into_results));
            }
        });
    });

    let mapped = map_units(&aggregation, job, index, peers, Grouping::Partitions(peers));
    let (stats, buffers) = match mapped {
        Ok(output) => output,
        Err(error) => {
            // Let the other workers finish: this one sends nothing, and its error wins only if
            // it is the job's first.
            drop(input);
            while worker.step() {}
            return Err(error);
        }
    };
    for (partition, buffer) in buffers {
        input.send((partition, index, WireBytes(buffer.bytes)));
    }
    drop(input);
    while worker.step() {}
    let outcome = reduced.borrow_mut().take();
    match outcome {
        Some(Ok(results)) => Ok((results, stats)),
        Some(Err(error)) => Err((u64::MAX, error)),
        None => Err((u64::MAX, JobError::Internal(InternalError::new("the reduce operator never ran")))),
    }
}

/// One worker's outcome on its way to worker 0 ([`TimelyJob::gather`]): its row counts, and
/// its results or its first error. An error crosses as its message (and whether it is the
/// command line's), because the error types do not cross processes; the worker that met it
/// reports it in full in its own process.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Part {
    rows: u64,
    skipped: u64,
    results: Vec<(WireBytes, Vec<Value>)>,
    /// `(rank, is an input error, message)`.
    error: Option<(u64, bool, String)>,
}

/// Sends this worker's outcome to worker 0 through a second dataflow. Worker 0 returns every
/// worker's results and counts (or the earliest error of any); the others return their own
/// error, or no results and only their quoted skipped rows (their counts are worker 0's).
fn gather(worker: &mut timely::worker::Worker, outcome: WorkerOutput) -> WorkerOutput {
    let mut input: InputHandle<u64, CapacityContainerBuilder<Vec<Part>>> = InputHandle::new();
    let gathered: Rc<RefCell<Vec<Part>>> = Rc::default();
    let sink = Rc::clone(&gathered);
    worker.dataflow::<u64, _, _>(|scope| {
        input.to_stream(scope).sink(Exchange::new(|_: &Part| 0), "NaasGather", move |(input, _)| {
            input.for_each(|_, data| sink.borrow_mut().append(data));
        });
    });
    let (part, kept) = match outcome {
        Ok((results, stats)) => {
            let results = results.iter().map(|(key, values)| (WireBytes(key.to_vec()), values.to_vec())).collect();
            let part = Part { rows: stats.rows, skipped: stats.skipped, results, error: None };
            (part, Ok(stats))
        }
        Err((rank, error)) => {
            let message = (rank, matches!(error, JobError::Input(_)), error.to_string());
            let part = Part { rows: 0, skipped: 0, results: Vec::new(), error: Some(message) };
            (part, Err((rank, error)))
        }
    };
    input.send(part);
    drop(input);
    while worker.step() {}
    let own_stats = kept?;
    if worker.index() != 0 {
        let quoted = JobStats { first_skipped: own_stats.first_skipped, ..JobStats::default() };
        return Ok((KeyResults::default(), quoted));
    }
    let parts = std::mem::take(&mut *gathered.borrow_mut());
    if let Some((rank, input, message)) = parts.iter().filter_map(|p| p.error.clone()).min_by_key(|e| e.0) {
        let error = if input { JobError::Input(message) } else { JobError::Other(message) };
        return Err((rank, error));
    }
    let mut stats = JobStats { first_skipped: own_stats.first_skipped, ..JobStats::default() };
    let mut results = KeyResults::default();
    for part in parts {
        stats.rows += part.rows;
        stats.skipped += part.skipped;
        let rows = part.results.into_iter().map(|(key, values)| (key.0, values));
        let Some(part_results) = KeyResults::checked_from_rows(rows) else {
            return Err((u64::MAX, JobError::Internal(InternalError::new("a worker's result rows differ in width"))));
        };
        results.append(&part_results);
    }
    Ok((results, stats))
}

/// How a timely job's combined states leave it for a network of `mappers` senders (the
/// mappers of a topology, `naasc run --network`) instead of timely's own reduce.
#[derive(Clone, Debug, Default)]
pub struct MapperPlan {
    /// The topology's mappers: unit `u` of the input belongs to mapper `u mod mappers`, and
    /// mapper `m` is sent by worker `m mod W`.
    pub mappers: usize,
    /// The largest key id the network can carry (a switch profile's key bits).
    pub max_key: u64,
    /// Bytes worker 0 hands to every worker with the key ids (the network's addresses).
    pub blob: Vec<u8>,
}

/// A mapper's entries: (key id, state bytes).
pub type MapperEntries = Vec<(u64, Vec<u8>)>;

/// This process's share of a job whose states leave for a network ([`run_timely_mappers`]).
#[derive(Debug, Default)]
pub struct MapperStates {
    /// Each mapper this process's workers send: its index and its (key id, state) entries.
    pub mappers: Vec<(usize, MapperEntries)>,
    /// Every key of the job, in id order (key id `i` is `keys[i]`): in process 0 only.
    pub keys: Vec<Vec<u8>>,
    /// Worker 0's [`MapperPlan::blob`].
    pub blob: Vec<u8>,
    /// Process 0: the rows of every worker; elsewhere only this process's quoted skipped rows.
    pub stats: JobStats,
}

/// One worker's part of [`MapperStates`].
type MapperWorkerOutput = Result<MapperStates, (u64, JobError)>;

/// A worker's keys (sorted, distinct) and row counts on their way to worker 0, or its error.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct KeysPart {
    keys: Vec<WireBytes>,
    rows: u64,
    skipped: u64,
    error: Option<(u64, bool, String)>,
}

/// What worker 0 hands every worker: every key in id order and the plan's blob, or the job's
/// earliest error.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct KeyIds {
    keys: Vec<WireBytes>,
    blob: WireBytes,
    error: Option<(u64, bool, String)>,
}

fn crossing(rank: u64, error: &JobError) -> (u64, bool, String) {
    (rank, matches!(error, JobError::Input(_)), error.to_string())
}

fn uncrossing((rank, input, message): (u64, bool, String)) -> (u64, JobError) {
    (rank, if input { JobError::Input(message) } else { JobError::Other(message) })
}

/// Runs the map side of the job for a network: every worker folds its units (`u mod W`) into
/// one combiner table per mapper (`u mod M`); the tables of mapper `m` go through timely's
/// exchange to worker `m mod W`, which merges them. The job's keys then get dense ids `0..K`
/// in key order, the same in every process: each worker sends its keys to worker 0, which
/// numbers the union and hands the list (with `plan.blob`) back to every worker. Each process
/// returns the entries of the mappers its workers send, with their key ids.
pub fn run_timely_mappers(
    job: TimelyJob,
    cluster: Option<Cluster>,
    plan: MapperPlan,
) -> Result<MapperStates, JobError> {
    if job.workers == 0 {
        return Err(JobError::Input("at least one worker is needed".to_string()));
    }
    if plan.mappers == 0 {
        return Err(JobError::Input("the network has no mappers".to_string()));
    }
    let guards = start_workers(job.workers, cluster, move |worker| mapper_worker(worker, &job, &plan))?;
    let mut states = MapperStates::default();
    join_workers(guards, |part: MapperStates| {
        states.mappers.extend(part.mappers);
        if !part.keys.is_empty() {
            states.keys = part.keys;
        }
        states.blob = part.blob;
        states.stats.absorb_rows(part.stats);
    })?;
    states.mappers.sort_by_key(|(mapper, _)| *mapper);
    states.stats.keys = states.keys.len() as u64;
    Ok(states)
}

/// A sealed table of mapper `.1` on its way to the worker that sends it (`.0`), from the
/// worker of index `.2`.
type MapperTable = (usize, usize, usize, WireBytes);

fn mapper_worker(worker: &mut timely::worker::Worker, job: &TimelyJob, plan: &MapperPlan) -> MapperWorkerOutput {
    let (index, peers) = (worker.index(), worker.peers());
    let aggregation = job.source.load().map_err(|e| (0, JobError::Input(e.to_string())));

    // 1. Fold the units, and send each mapper's table to the worker that sends that mapper.
    let mut input: InputHandle<u64, CapacityContainerBuilder<Vec<MapperTable>>> = InputHandle::new();
    // (mapper, from worker, sealed table)
    type Received = Vec<(usize, usize, Vec<u8>)>;
    let received: Rc<RefCell<Received>> = Rc::default();
    let sink = Rc::clone(&received);
    worker.dataflow::<u64, _, _>(|scope| {
        let exchange = Exchange::new(|(owner, _, _, _): &MapperTable| *owner as u64);
        input.to_stream(scope).sink(exchange, "NaasMapperTables", move |(input, _)| {
            input.for_each(|_, data| {
                sink.borrow_mut().extend(data.drain(..).map(|(_, mapper, from, bytes)| (mapper, from, bytes.0)))
            });
        });
    });
    let mut failed: Option<(u64, JobError)> = None;
    let mut stats = JobStats::default();
    match aggregation
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|a| map_units(a, job, index, peers, Grouping::Mappers(plan.mappers)))
    {
        Ok((map_stats, buffers)) => {
            stats = map_stats;
            for (mapper, buffer) in buffers {
                input.send((mapper % peers, mapper, index, WireBytes(buffer.bytes)));
            }
        }
        Err(error) => failed = Some(error),
    }
    drop(input);
    while worker.step() {}

    // 2. Merge the tables of the mappers this worker sends.
    let mut tables: Vec<(usize, crate::StateTable)> = Vec::new();
    if let (None, Ok(aggregation)) = (&failed, &aggregation) {
        let mut by_mapper = std::mem::take(&mut *received.borrow_mut());
        by_mapper.sort_by_key(|(mapper, from, _)| (*mapper, *from));
        let mut at = 0;
        while at < by_mapper.len() {
            let mapper = by_mapper[at].0;
            let end = at + by_mapper[at..].iter().take_while(|(m, _, _)| *m == mapper).count();
            let buffers: Vec<Vec<u8>> = by_mapper[at..end].iter_mut().map(|(_, _, b)| std::mem::take(b)).collect();
            match merge_buffers(aggregation, &buffers) {
                Ok(table) => tables.push((mapper, table)),
                Err(error) => {
                    failed = Some((u64::MAX, error));
                    break;
                }
            }
            at = end;
        }
    }

    // 3. Every worker's keys (and counts, or error) to worker 0.
    let mut keys: Vec<&[u8]> = tables.iter().flat_map(|(_, table)| table.entries().map(|(key, _)| key)).collect();
    keys.sort_unstable();
    keys.dedup();
    let part = KeysPart {
        keys: keys.iter().map(|key| WireBytes(key.to_vec())).collect(),
        rows: stats.rows,
        skipped: stats.skipped,
        error: failed.as_ref().map(|(rank, error)| crossing(*rank, error)),
    };
    let mut parts_input: InputHandle<u64, CapacityContainerBuilder<Vec<KeysPart>>> = InputHandle::new();
    let parts: Rc<RefCell<Vec<KeysPart>>> = Rc::default();
    let sink = Rc::clone(&parts);
    worker.dataflow::<u64, _, _>(|scope| {
        parts_input.to_stream(scope).sink(Exchange::new(|_: &KeysPart| 0), "NaasKeys", move |(input, _)| {
            input.for_each(|_, data| sink.borrow_mut().append(data));
        });
    });
    parts_input.send(part);
    drop(parts_input);
    while worker.step() {}

    // 4. Worker 0 numbers the keys and hands them back to every worker.
    let mut ids_input: InputHandle<u64, CapacityContainerBuilder<Vec<(usize, KeyIds)>>> = InputHandle::new();
    let handed: Rc<RefCell<Option<KeyIds>>> = Rc::default();
    let sink = Rc::clone(&handed);
    worker.dataflow::<u64, _, _>(|scope| {
        let exchange = Exchange::new(|(to, _): &(usize, KeyIds)| *to as u64);
        ids_input.to_stream(scope).sink(exchange, "NaasKeyIds", move |(input, _)| {
            input.for_each(|_, data| {
                if let Some((_, ids)) = data.drain(..).next() {
                    *sink.borrow_mut() = Some(ids);
                }
            });
        });
    });
    if index == 0 {
        let parts = std::mem::take(&mut *parts.borrow_mut());
        let error = parts.iter().filter_map(|p| p.error.clone()).min_by_key(|e| e.0);
        stats.rows = parts.iter().map(|p| p.rows).sum();
        stats.skipped = parts.iter().map(|p| p.skipped).sum();
        let mut all: Vec<Vec<u8>> = parts.into_iter().flat_map(|p| p.keys.into_iter().map(|k| k.0)).collect();
        all.sort_unstable();
        all.dedup();
        let error = error.or_else(|| {
            (!all.is_empty() && all.len() as u64 - 1 > plan.max_key).then(|| {
                let message = format!(
                    "{} keys do not fit the switch profile's key bits (key ids 0 to {}); use a profile with more \
                     `key_bits`, or `--exec host`",
                    all.len(),
                    plan.max_key
                );
                (u64::MAX, true, message)
            })
        });
        let ids = KeyIds { keys: all.into_iter().map(WireBytes).collect(), blob: WireBytes(plan.blob.clone()), error };
        for to in 0..peers {
            ids_input.send((to, ids.clone()));
        }
    }
    drop(ids_input);
    while worker.step() {}
    let Some(ids) = handed.borrow_mut().take() else {
        return Err((u64::MAX, JobError::Internal(InternalError::new("worker 0 handed out no key ids"))));
    };
    if let Some(error) = failed {
        return Err(error);
    }
    if let Some(error) = ids.error {
        return Err(uncrossing(error));
    }

    // 5. This worker's entries with their key ids.
    let keys: Vec<Vec<u8>> = ids.keys.into_iter().map(|k| k.0).collect();
    // Every mapper this worker sends, with entries or none: each sends its end of stream.
    let mut mappers = Vec::with_capacity(plan.mappers.div_ceil(peers));
    for mapper in (index..plan.mappers).step_by(peers) {
        let mut entries = Vec::new();
        if let Some((_, table)) = tables.iter().find(|(m, _)| *m == mapper) {
            entries.reserve(table.len());
            for (key, state) in table.entries() {
                let Ok(id) = keys.binary_search_by(|k| k.as_slice().cmp(key)) else {
                    let message = "a key is missing from the job's key ids";
                    return Err((u64::MAX, JobError::Internal(InternalError::new(message))));
                };
                entries.push((id as u64, state.to_vec()));
            }
        }
        mappers.push((mapper, entries));
    }
    let stats = if index == 0 { stats } else { JobStats { first_skipped: stats.first_skipped, ..JobStats::default() } };
    let keys = if index == 0 { keys } else { Vec::new() };
    Ok(MapperStates { mappers, keys, blob: ids.blob.0, stats })
}

/// Reads the job's input and folds the units this worker owns (`index` of `peers`), returning
/// its row counts and its sealed buffers by reduce partition.
fn map_units(
    aggregation: &Aggregation,
    job: &TimelyJob,
    index: usize,
    peers: usize,
    grouping: Grouping,
) -> Result<MapperOutput, (u64, JobError)> {
    let early = |error: JobError| (0, error);
    let name = job.input.display().to_string();
    let path = job.open_as.as_ref().unwrap_or(&job.input);
    let input = match ColumnarFormat::of(&job.input) {
        Some(format) => {
            let mut file = ColumnarFile::open(path, format).map_err(|e| early(JobError::Input(e.to_string())))?;
            file.name = name.clone();
            JobInput::Columnar(file)
        }
        None => {
            let file = File::open(path).map_err(|e| early(JobError::Input(format!("cannot open `{name}`: {e}"))))?;
            JobInput::Csv(Input { name: name.clone(), reader: file, size: None })
        }
    };
    let config = JobConfig {
        workers: 1,
        skip_invalid: job.skip_invalid,
        block_size: job.block_size,
        finite_floats: job.finite_floats,
        ..JobConfig::default()
    };
    let opened = open_input(aggregation, input, &job.key, &job.binds, &config).map_err(early)?;
    let OpenedInput { name, schema, units: mut reader, .. } = opened;
    let mut map = MapWorker::new(aggregation, &schema, &name, &config, grouping);
    // Which units are this worker's: of all workers' (a shared file), or of this process's
    // (a file of its own); worker indices run process by process.
    let (owner, owners) = match job.share {
        InputShare::Shared => (index, peers),
        InputShare::PerProcess => (index % job.workers, job.workers),
    };
    loop {
        let unit = reader.next_work().map_err(|error| match error {
            JobError::Row(row) => (row.line, JobError::Row(row)),
            other => early(other),
        })?;
        let Some(unit) = unit else { break };
        if unit.index() % owners as u64 == owner as u64 {
            map.work(&unit)?;
        }
    }
    map.seal()?;
    Ok(map.into_output())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    const TOKEN: u64 = 0x5eed;

    #[test]
    fn wire_bytes_round_trip_through_serde() {
        let bytes = WireBytes((0..=255u8).chain([0, 7]).collect());
        let text = serde_json::to_string(&bytes).unwrap();
        assert_eq!(serde_json::from_str::<WireBytes>(&text).unwrap(), bytes);
        assert!(serde_json::from_str::<WireBytes>("[1, 256]").is_err());
    }

    /// Connects `n` processes (one thread each) and returns each one's peers' indices.
    fn connect_all(n: usize, threads: impl Fn(usize) -> usize) -> Vec<Result<Cluster, ClusterError>> {
        let listeners: Vec<ClusterListener> = (0..n).map(|_| ClusterListener::bind().unwrap()).collect();
        let addresses: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        let handles: Vec<_> = listeners
            .into_iter()
            .enumerate()
            .map(|(process, listener)| {
                let addresses = addresses.clone();
                let threads = threads(process);
                std::thread::spawn(move || {
                    listener.connect(process, &addresses, TOKEN, threads, Duration::from_secs(60), WhenRefused::Fail)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    }

    #[test]
    fn three_processes_connect_to_each_other() {
        for (process, cluster) in connect_all(3, |_| 2).into_iter().enumerate() {
            let cluster = cluster.unwrap();
            assert_eq!(cluster.process, process);
            assert_eq!(cluster.processes(), 3);
            for (peer, stream) in cluster.peers.iter().enumerate() {
                assert_eq!(stream.is_none(), peer == process);
            }
        }
    }

    #[test]
    fn processes_with_different_thread_counts_are_refused() {
        let outcomes = connect_all(2, |process| process + 1);
        let error = outcomes.into_iter().next().unwrap().unwrap_err();
        assert!(matches!(error, ClusterError::Threads { peer: 1, threads: 2, ours: 1 }), "{error}");
    }

    /// A peer that has stopped (its port is no longer listened on) is an error at once.
    #[test]
    fn a_stopped_peer_is_an_error_not_a_retry() {
        let gone = ClusterListener::bind().unwrap();
        let gone_address = gone.local_addr().unwrap();
        drop(gone);
        let me = ClusterListener::bind().unwrap();
        let addresses = [gone_address, me.local_addr().unwrap()];
        let started = Instant::now();
        let error = me.connect(1, &addresses, TOKEN, 1, Duration::from_secs(60), WhenRefused::Fail).unwrap_err();
        assert!(matches!(error, ClusterError::Connect { peer: 0, .. }), "{error}");
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    /// A peer that never connects (it died before connecting) makes set-up fail at the
    /// deadline, naming it; a stray connection that is not this job's is ignored.
    #[test]
    fn a_peer_that_never_connects_times_out_and_strays_are_ignored() {
        let me = ClusterListener::bind().unwrap();
        let other = ClusterListener::bind().unwrap();
        let addresses = [me.local_addr().unwrap(), other.local_addr().unwrap()];
        let mut stray = TcpStream::connect(addresses[0]).unwrap();
        let mut hello = HANDSHAKE_MAGIC.to_vec();
        hello.extend_from_slice(&(TOKEN + 1).to_le_bytes());
        hello.extend_from_slice(&1u64.to_le_bytes());
        hello.extend_from_slice(&1u64.to_le_bytes());
        stray.write_all(&hello).unwrap();
        let started = Instant::now();
        let error = me.connect(0, &addresses, TOKEN, 1, Duration::from_millis(500), WhenRefused::Fail).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(500));
        let ClusterError::TimedOut { missing, .. } = &error else { panic!("{error}") };
        assert_eq!(missing, &[1]);
        assert!(error.to_string().contains("did not connect within 0 s"), "{error}");
    }

    #[test]
    fn an_index_outside_the_addresses_is_an_error() {
        let me = ClusterListener::bind().unwrap();
        let addresses = [me.local_addr().unwrap()];
        let error = me.connect(3, &addresses, TOKEN, 1, Duration::from_secs(1), WhenRefused::Fail).unwrap_err();
        assert!(matches!(error, ClusterError::NoSuchProcess { process: 3, processes: 1 }), "{error}");
    }

    /// In a cluster started one process at a time, a peer that is not listening yet is waited
    /// for (a refusal is retried), and the deadline still bounds the wait.
    #[test]
    fn a_peer_that_starts_late_is_waited_for_when_refusals_are_retried() {
        let late = ClusterListener::bind().unwrap();
        let late_address = late.local_addr().unwrap();
        drop(late);
        let me = ClusterListener::bind().unwrap();
        let addresses = [late_address, me.local_addr().unwrap()];
        let waiting = std::thread::spawn(move || {
            me.connect(1, &addresses, TOKEN, 1, Duration::from_secs(60), WhenRefused::Retry)
        });
        std::thread::sleep(Duration::from_millis(300));
        let late = ClusterListener::bind_at(late_address).unwrap();
        let first = late.connect(0, &addresses, TOKEN, 1, Duration::from_secs(60), WhenRefused::Retry).unwrap();
        assert_eq!(first.processes(), 2);
        assert_eq!(waiting.join().unwrap().unwrap().process, 1);

        let gone = ClusterListener::bind().unwrap();
        let gone_address = gone.local_addr().unwrap();
        drop(gone);
        let me = ClusterListener::bind().unwrap();
        let addresses = [gone_address, me.local_addr().unwrap()];
        let started = Instant::now();
        let error = me.connect(1, &addresses, TOKEN, 1, Duration::from_millis(400), WhenRefused::Retry).unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(400));
        assert!(matches!(&error, ClusterError::TimedOut { missing, .. } if missing == &[0]), "{error}");
    }

    fn csv_job(dir: &std::path::Path, text: &str, workers: usize, gather: bool) -> TimelyJob {
        let input = dir.join("in.csv");
        std::fs::write(&input, text).unwrap();
        let source = "aggregate total(v: i64) -> tuple[i64, u64]:\n    return sum(v), count()\n";
        TimelyJob {
            source: AggregationSource { file_name: "t.naas".to_string(), source: source.to_string(), aggregate: None },
            input,
            open_as: None,
            key: "k".to_string(),
            binds: Vec::new(),
            skip_invalid: false,
            workers,
            block_size: 256,
            share: InputShare::Shared,
            gather,
            finite_floats: false,
        }
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("naas-timely-job-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Gathered, every result and row count reaches worker 0, and they are the results of the
    /// job run without gathering; an error of any worker is worker 0's too.
    #[test]
    fn gathering_brings_every_workers_results_and_errors_to_worker_0() {
        let dir = temp_dir("gather");
        let mut text = String::from("k,v\n");
        for i in 0..5000 {
            text.push_str(&format!("k{},{}\n", i % 37, i));
        }
        let sorted = |results: KeyResults| crate::key_order::sort(results).into_results();
        let (plain, plain_stats) = run_timely(csv_job(&dir, &text, 3, false), None).unwrap();
        let (gathered, stats) = run_timely(csv_job(&dir, &text, 3, true), None).unwrap();
        assert_eq!(plain.len(), 37);
        assert_eq!(sorted(gathered), sorted(plain));
        assert_eq!((stats.rows, stats.keys), (plain_stats.rows, 37));

        text.push_str("k1,not a number\n");
        for i in 0..3000 {
            text.push_str(&format!("k{},{}\n", i % 37, i));
        }
        let error = run_timely(csv_job(&dir, &text, 3, true), None).unwrap_err();
        assert!(error.to_string().contains(":5002"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// With a file per process, a process's workers split that file's units among themselves.
    #[test]
    fn a_file_per_process_is_read_whole_by_the_processs_workers() {
        let dir = temp_dir("per-process");
        let mut text = String::from("k,v\n");
        for i in 0..4000 {
            text.push_str(&format!("k{},1\n", i % 5));
        }
        let job = TimelyJob { share: InputShare::PerProcess, ..csv_job(&dir, &text, 2, false) };
        let (results, stats) = run_timely(job, None).unwrap();
        assert_eq!(stats.rows, 4000);
        let total: i64 = results.iter().map(|(_, v)| if let Value::Int(n) = v[0] { n } else { 0 }).sum();
        assert_eq!(total, 4000);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
