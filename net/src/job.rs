//! `naasc run --network TOPOLOGY` (spec §18.6): the job's mappers send their combined states as
//! UDP datagrams to the first hop, node processes (launched here on loopback, or already
//! running at `--attach` addresses) merge them hop by hop, and the reducer, in this process,
//! receives, merges and finishes them.
//!
//! Keys get dense ids `0..K` in key order, assigned by the job (as in
//! `naas_runtime::network`), so that a switch's tables index them directly. Every wait is
//! bounded by the job's timeout, and a launched node that dies is named at once.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use naas_runtime::executor::{call_error, map_phase, merge_buffers, Grouping, Input, JobConfig, JobError, JobInput};
use naas_runtime::key_order;
use naas_runtime::value::to_value;
use naas_runtime::{Aggregation, JobOutput, KeyResults, StateTable};
use naas_target_native::values::AlignedBytes;
use naas_target_switch::network::{NodeKind, Topology};
use naas_target_switch::PipelineProgram;
use serde::Serialize;

use crate::endpoint::{uplink_of, Counts, Endpoint, Event, Faults};
use crate::link::LinkCounts;
use crate::node::{template, Setup, LINGER};
use crate::process::{describe, die_with_launcher, relay_stderr, Children};
use crate::wire::{self, Kind};

/// The line a launched node prints on stdout once its socket is bound.
pub const LISTENING_MARK: &str = "naasc-node-listening ";
/// The line a launched node prints with its report when its job is done.
pub const REPORT_MARK: &str = "naasc-node-report ";

/// How long launched nodes have to start (they compile the program first).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the job waits for its nodes to end after the reducer has every result.
const END_TIMEOUT: Duration = Duration::from_secs(10);

/// A mapper's entries encoded for the wire: (key id, state words).
pub type WireEntries = Vec<(u64, Vec<u64>)>;

/// Where the nodes come from.
#[derive(Clone, Debug)]
pub enum Nodes {
    /// Start one `exe args...` per switch of the topology (the args make a node that binds a
    /// loopback port, prints [`LISTENING_MARK`], serves one job and prints [`REPORT_MARK`]).
    Launch { exe: PathBuf, args: Vec<OsString> },
    /// Nodes already running, one per switch in the topology's graph order.
    Attach(Vec<SocketAddr>),
}

/// How the job runs over the network.
#[derive(Clone, Debug)]
pub struct NetworkJob {
    pub topology: Topology,
    pub nodes: Nodes,
    /// The whole job's bound, from the first datagram to the last result.
    pub timeout: Duration,
    /// Seeded loss and duplication on the job's own sends (tests).
    pub faults: Option<(f64, f64, u64)>,
}

/// Why a job over the network failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{0}")]
    Job(JobError),
    #[error("{0}")]
    Usage(String),
    #[error("node `{name}` ({address}) {how}")]
    NodeDied { name: String, address: String, how: String },
    #[error("the job did not finish within {seconds} s (--timeout): {waiting}")]
    Timeout { seconds: f64, waiting: String },
    #[error("{0}")]
    Io(String),
}

impl From<JobError> for NetError {
    fn from(error: JobError) -> NetError {
        NetError::Job(error)
    }
}

/// What the run reports about the network (`network` in `naasc run --report`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct NetReport {
    pub topology: String,
    pub exec: String,
    pub job: u64,
    pub mappers: u64,
    pub switches: u64,
    pub keys: u64,
    pub entries_from_mappers: u64,
    pub packets_from_mappers: u64,
    pub bytes_from_mappers: u64,
    pub entries_at_reducer: u64,
    pub packets_at_reducer: u64,
    pub bytes_at_reducer: u64,
    /// The fan-in bound: for each child of the reducer, the distinct keys of its subtree (a
    /// switch child), or every entry it sends (a mapper child). `None` when this process does
    /// not see every mapper's entries (a timely job's mappers are spread over its processes).
    pub ideal_entries_at_reducer: Option<u64>,
    pub switch_merges: u64,
    pub collisions: u64,
    pub flushed_entries: u64,
    pub retransmissions: u64,
    pub duplicates_dropped: u64,
    pub bad_packets: u64,
    pub foreign_packets: u64,
    /// The job's own endpoint (mappers and reducer).
    pub job_endpoint: Counts,
    pub links: Vec<LinkCounts>,
    /// Traffic per tier (hops from the mappers), summed over its links at their senders:
    /// the mappers' uplinks from this process, the others from the nodes' reports.
    pub tiers: Vec<TierCounts>,
    /// Each node's report, in the topology's graph order (empty for attached nodes, which
    /// write their own `--report`).
    pub nodes: Vec<serde_json::Value>,
}

/// Traffic summed over the links of one tier (as the simulator's `TierReport`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct TierCounts {
    pub tier: usize,
    pub name: String,
    pub links: u64,
    pub packets: u64,
    pub bytes: u64,
    pub entries: u64,
    pub retransmissions: u64,
}

/// Sums sender-side link counts by tier.
fn tiers(graph: &naas_target_switch::network::Graph, senders: &[LinkCounts]) -> Vec<TierCounts> {
    let mut tiers: Vec<TierCounts> = graph
        .tiers
        .iter()
        .enumerate()
        .map(|(tier, name)| TierCounts { tier, name: name.clone(), ..TierCounts::default() })
        .collect();
    for counts in senders {
        let Some(link) = graph.links.get(counts.link as usize) else { continue };
        let Some(tier) = tiers.get_mut(link.tier) else { continue };
        tier.links += 1;
        tier.packets += counts.packets;
        tier.bytes += counts.bytes;
        tier.entries += counts.entries;
        tier.retransmissions += counts.retransmissions;
    }
    tiers
}

/// A job id no other job is likely to have.
pub fn job_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher
        .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.finish()
}

enum ChildEvent {
    Listening(usize, SocketAddr),
    Report(usize, serde_json::Value),
}

/// Reads a launched node's stdout: its address, then its report.
fn read_node_stdout(index: usize, stdout: impl Read, events: mpsc::Sender<ChildEvent>) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some(address) = line.strip_prefix(LISTENING_MARK) {
            if let Ok(address) = address.trim().parse() {
                let _ = events.send(ChildEvent::Listening(index, address));
            }
        } else if let Some(json) = line.strip_prefix(REPORT_MARK) {
            if let Ok(value) = serde_json::from_str(json) {
                let _ = events.send(ChildEvent::Report(index, value));
            }
        } else {
            crate::process::relay(format!("{line}\n").as_bytes());
        }
    }
}

/// The launched nodes and what they printed.
struct Launched {
    children: Children,
    names: Vec<String>,
    addresses: Vec<Option<SocketAddr>>,
    events: mpsc::Receiver<ChildEvent>,
    reports: Vec<Option<serde_json::Value>>,
}

impl Launched {
    fn start(exe: &PathBuf, args: &[OsString], names: Vec<String>) -> Result<Launched, NetError> {
        let (sender, events) = mpsc::channel();
        let mut children = Children::default();
        for (index, name) in names.iter().enumerate() {
            let mut command = Command::new(exe);
            command.args(args).arg("--name").arg(name);
            command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
            die_with_launcher(&mut command);
            let mut child = command.spawn().map_err(|e| NetError::Io(format!("cannot start node `{name}`: {e}")))?;
            if let Some(stdout) = child.stdout.take() {
                let sender = sender.clone();
                std::thread::spawn(move || read_node_stdout(index, stdout, sender));
            }
            if let Some(stderr) = child.stderr.take() {
                std::thread::spawn(move || relay_stderr(stderr));
            }
            children.0.push(child);
        }
        let count = names.len();
        Ok(Launched { children, names, addresses: vec![None; count], events, reports: vec![None; count] })
    }

    fn drain(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            match event {
                ChildEvent::Listening(index, address) => self.addresses[index] = Some(address),
                ChildEvent::Report(index, report) => self.reports[index] = Some(report),
            }
        }
    }

    /// A node that has exited with a failure, named.
    fn failed(&mut self) -> Option<NetError> {
        for (index, child) in self.children.0.iter_mut().enumerate() {
            if let Ok(Some(status)) = child.try_wait() {
                if !status.success() {
                    let address =
                        self.addresses[index].map_or_else(|| "not yet listening".to_string(), |a| a.to_string());
                    return Some(NetError::NodeDied {
                        name: self.names[index].clone(),
                        address,
                        how: describe(status),
                    });
                }
            }
        }
        None
    }

    fn all_exited(&mut self) -> bool {
        self.children.0.iter_mut().all(|child| matches!(child.try_wait(), Ok(Some(_))))
    }
}

/// Runs the job with its partial states travelling through node processes. `pipeline` is the
/// switch program for `--exec switch`, `None` for host boxes.
pub fn run_over_network<R: Read + Send>(
    aggregation: &Aggregation,
    input: impl Into<JobInput<R>>,
    key: &str,
    binds: &[(String, String)],
    config: &JobConfig,
    pipeline: Option<&PipelineProgram>,
    job: &NetworkJob,
) -> Result<(JobOutput, NetReport), NetError> {
    // Start the nodes first: they compile the program while this process reads the input.
    let mut nodes = Started::start(aggregation, pipeline, job)?;
    let mappers = nodes.mappers;
    // The map phase, as in `naas_runtime::network`: blocks spread over the mappers.
    let mut config = config.clone();
    let input = input.into();
    if let JobInput::Csv(Input { size: Some(size), .. }) = &input {
        let share = usize::try_from(size / (4 * mappers as u64)).unwrap_or(usize::MAX);
        config.block_size = share.clamp(256, config.block_size.max(256));
    }
    let map = map_phase(aggregation, input, key, binds, &config, Grouping::Mappers(mappers))?;
    let started = Instant::now();
    let tables = map.groups.iter().map(|buffers| merge_buffers(aggregation, buffers)).collect::<Result<Vec<_>, _>>()?;
    let mut ids: BTreeMap<&[u8], u64> = BTreeMap::new();
    for table in &tables {
        for (key, _) in table.entries() {
            ids.insert(key, 0);
        }
    }
    for (id, slot) in ids.values_mut().enumerate() {
        *slot = id as u64;
    }
    let key_of: Vec<&[u8]> = ids.keys().copied().collect();
    let id = job_id();
    let template = template(aggregation, pipeline, id);
    if !ids.is_empty() && (ids.len() as u64 - 1) > template.max_key {
        return Err(NetError::Usage(format!(
            "{} keys do not fit the switch profile's key bits (key ids 0 to {}); use a profile with more `key_bits`, \
             or `--exec host`",
            ids.len(),
            template.max_key
        )));
    }
    let set_up = nodes.set_up(aggregation, pipeline, job, id)?;
    // Every mapper, with entries or none: each sends its end of stream.
    let mut own = Vec::with_capacity(mappers);
    for mapper in 0..mappers {
        let entries = tables
            .get(mapper)
            .map(|table| table.entries().map(|(key, bytes)| (ids[key], bytes)).collect::<Vec<_>>())
            .unwrap_or_default();
        own.push((mapper, encode_entries(aggregation, pipeline, &entries, &key_of)?));
    }
    let ideal = fan_in_bound(&nodes.graph, &nodes.mapper_nodes, &own);
    let (results, mut report) = nodes.exchange(aggregation, pipeline, job, set_up, &own, &key_of)?;
    report.ideal_entries_at_reducer = Some(ideal);
    let mut stats = map.stats;
    stats.keys = results.len() as u64;
    stats.shuffle_entries = report.entries_at_reducer;
    stats.shuffle_bytes = report.bytes_at_reducer;
    stats.reduce_seconds = started.elapsed().as_secs_f64();
    Ok((JobOutput { results, stats }, report))
}

/// The network's nodes, launched (or to be attached), before the job's set-up.
pub struct Started {
    graph: naas_target_switch::network::Graph,
    /// The topology's mappers.
    pub mappers: usize,
    switches: Vec<usize>,
    mapper_nodes: Vec<usize>,
    launched: Option<Launched>,
}

/// The job's socket and the nodes' addresses, once every node has acknowledged its set-up.
pub struct SetUp {
    socket: UdpSocket,
    template: crate::endpoint::Template,
    /// The address of every node of the graph (the reducer's is the job's socket).
    addresses: Vec<SocketAddr>,
    /// The end of `--timeout`, which runs from the set-up.
    deadline: Instant,
}

impl SetUp {
    /// The job's id.
    pub fn job(&self) -> u64 {
        self.template.job
    }

    /// Starts `--timeout` again: the set-up came before a map phase (a timely job's).
    pub fn restart_clock(&mut self, timeout: Duration) {
        self.deadline = Instant::now() + timeout;
    }
}

/// Where every mapper sends: its uplinks (link id, next hop's address), by mapper, and the
/// job's id. Process 0 of a timely job hands it to the others.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct MapperUplinks {
    pub job: u64,
    pub uplinks: Vec<Vec<(u32, SocketAddr)>>,
}

impl Started {
    /// Checks the job against the topology and the datagram size, and launches the nodes.
    pub fn start(
        aggregation: &Aggregation,
        pipeline: Option<&PipelineProgram>,
        job: &NetworkJob,
    ) -> Result<Started, NetError> {
        let graph = job.topology.graph();
        let mappers = job.topology.mappers();
        if mappers == 0 {
            return Err(NetError::Usage("the topology has no mappers".to_string()));
        }
        let switches: Vec<usize> =
            (0..graph.nodes.len()).filter(|n| graph.nodes[*n].kind == NodeKind::Switch).collect();
        if let Nodes::Attach(addresses) = &job.nodes {
            if addresses.len() != switches.len() {
                return Err(NetError::Usage(format!(
                    "--attach names {} node(s), the topology has {} switch(es) (give one address per switch, in the \
                 topology's order)",
                    addresses.len(),
                    switches.len()
                )));
            }
        }
        // Every entry must fit a datagram: checked before any node starts.
        let shape = template(aggregation, pipeline, 0);
        let entry_bytes = 8 * (1 + usize::from(shape.words));
        if wire::HEADER_LEN + entry_bytes > wire::MAX_DATAGRAM
            || usize::from(shape.words) * 8 < aggregation.state_size()
        {
            return Err(NetError::Usage(format!(
            "a state of `{}` is {} bytes: an entry (its 8-byte key id and its state) must fit one UDP datagram, so a \
             state may hold at most {} bytes",
            aggregation.name(),
            aggregation.state_size(),
            wire::MAX_DATAGRAM - wire::HEADER_LEN - 8
        )));
        }
        let launched = match &job.nodes {
            Nodes::Launch { exe, args } => {
                Some(Launched::start(exe, args, switches.iter().map(|n| graph.nodes[*n].name.clone()).collect())?)
            }
            Nodes::Attach(_) => None,
        };
        let mapper_nodes: Vec<usize> =
            (0..graph.nodes.len()).filter(|n| graph.nodes[*n].kind == NodeKind::Mapper).collect();
        Ok(Started { graph, mappers, switches, mapper_nodes, launched })
    }

    /// Waits for the nodes' addresses, binds the job's socket and sets every node up for job
    /// `id`; the timeout runs from here.
    pub fn set_up(
        &mut self,
        aggregation: &Aggregation,
        pipeline: Option<&PipelineProgram>,
        job: &NetworkJob,
        id: u64,
    ) -> Result<SetUp, NetError> {
        let template = template(aggregation, pipeline, id);
        let (graph, switches, launched) = (&self.graph, &self.switches, &mut self.launched);
        // The nodes' addresses.
        let deadline = Instant::now() + job.timeout;
        let addresses: Vec<SocketAddr> = match (&job.nodes, &mut *launched) {
            (Nodes::Attach(addresses), _) => addresses.clone(),
            (_, Some(launched)) => {
                let start_deadline = Instant::now() + START_TIMEOUT.min(job.timeout);
                loop {
                    launched.drain();
                    if launched.addresses.iter().all(Option::is_some) {
                        break launched.addresses.iter().flatten().copied().collect();
                    }
                    if let Some(error) = launched.failed() {
                        return Err(error);
                    }
                    if Instant::now() >= start_deadline {
                        let missing: Vec<&str> = launched
                            .names
                            .iter()
                            .zip(&launched.addresses)
                            .filter(|(_, a)| a.is_none())
                            .map(|(n, _)| n.as_str())
                            .collect();
                        return Err(NetError::Timeout {
                            seconds: job.timeout.as_secs_f64(),
                            waiting: format!("node(s) {} never started listening", missing.join(", ")),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            (Nodes::Launch { .. }, None) => return Err(NetError::Io("the nodes were not launched".to_string())),
        };
        let node_address = |graph_index: usize| -> Option<SocketAddr> {
            switches.iter().position(|s| *s == graph_index).map(|i| addresses[i])
        };

        // The job's socket, on the address the nodes reach it at.
        let socket = bind_toward(addresses.first().copied())?;
        let me = socket.local_addr().map_err(|e| NetError::Io(e.to_string()))?;
        let address_of = |graph_index: usize| -> SocketAddr {
            if graph.nodes[graph_index].kind == NodeKind::Reducer {
                me
            } else {
                node_address(graph_index).unwrap_or(me)
            }
        };

        // Set up every node, and wait for every acknowledgement.
        // The nodes give up later than the job does, so that the job, which sees every hop,
        // names the one it waits for (a node sees only its neighbours).
        let idle_timeout_ms = u64::try_from((2 * job.timeout + Duration::from_secs(1)).as_millis()).unwrap_or(u64::MAX);
        let mut setups: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
        for (i, &node) in switches.iter().enumerate() {
            let setup = Setup {
                name: graph.nodes[node].name.clone(),
                downlinks: graph.nodes[node].downlinks.iter().map(|l| *l as u32).collect(),
                uplinks: graph.nodes[node]
                    .uplinks
                    .iter()
                    .map(|l| (*l as u32, address_of(graph.links[*l].to).to_string()))
                    .collect(),
                idle_timeout_ms,
            };
            let payload = serde_json::to_vec(&setup).map_err(|e| NetError::Io(e.to_string()))?;
            let mut datagram = Vec::new();
            wire::encode(&template.header(Kind::Setup, wire::SETUP_LINK, 0), &payload, &mut datagram);
            setups.push((addresses[i], datagram));
        }
        set_up_nodes(&socket, &setups, &template, deadline, launched, switches, graph, job.timeout)?;
        let addresses = (0..graph.nodes.len()).map(address_of).collect();
        Ok(SetUp { socket, template, addresses, deadline })
    }

    /// Every mapper's uplinks, for processes that send mappers of this job.
    pub fn mapper_uplinks(&self, set_up: &SetUp) -> MapperUplinks {
        let uplinks = self
            .mapper_nodes
            .iter()
            .map(|&node| {
                let ups = &self.graph.nodes[node].uplinks;
                ups.iter().map(|l| (*l as u32, set_up.addresses[self.graph.links[*l].to])).collect()
            })
            .collect();
        MapperUplinks { job: set_up.template.job, uplinks }
    }

    /// Sends the entries of the mappers `own` (by mapper index) and receives, merges and
    /// finishes every key at the reducer; `key_of` names key ids.
    pub fn exchange(
        &mut self,
        aggregation: &Aggregation,
        pipeline: Option<&PipelineProgram>,
        job: &NetworkJob,
        set_up: SetUp,
        own: &[(usize, WireEntries)],
        key_of: &[&[u8]],
    ) -> Result<(KeyResults, NetReport), NetError> {
        let SetUp { socket, template, addresses, deadline } = set_up;
        let id = template.job;
        let (graph, switches, mapper_nodes, launched) =
            (&self.graph, &self.switches, &self.mapper_nodes, &mut self.launched);
        let address_of = |node: usize| addresses[node];
        let jit = aggregation.jit();
        // The job's endpoint: the mappers' uplinks and the reducer's downlinks.
        let mut endpoint = Endpoint::new(socket, template);
        if let Some((loss, dup, seed)) = job.faults {
            endpoint.set_faults(Faults::new(loss, dup, seed));
        }
        // Only the mappers this process sends get uplinks here: another process sends the
        // others (a timely job's), and two senders on one link would share its sequence
        // numbers and its end of stream.
        for link in &graph.nodes[0].downlinks {
            endpoint.add_downlink(*link as u32);
        }
        for (mapper, entries) in own {
            let Some(&node) = mapper_nodes.get(*mapper) else {
                return Err(NetError::Usage(format!("the topology has no mapper {mapper}")));
            };
            let ups: Vec<usize> = graph.nodes[node]
                .uplinks
                .iter()
                .map(|l| endpoint.add_uplink(*l as u32, address_of(graph.links[*l].to)))
                .collect();
            for (key, words) in entries {
                endpoint.push(ups[uplink_of(*key, ups.len())], *key, words);
            }
        }
        endpoint.finish_uplinks();

        // The reducer.
        let mut reducer = StateTable::new(aggregation);
        let mut bytes = Vec::new();
        let mut events = Vec::new();
        let mut data = Vec::new();
        let stride = endpoint.stride();
        let mut at_reducer = (0u64, 0u64, 0u64);
        while !endpoint.downlinks_done() {
            endpoint.step(Duration::from_millis(20), &mut events)?;
            for event in events.drain(..) {
                let Event::Data { payload, count, .. } = event else { continue };
                at_reducer.0 += u64::from(count);
                at_reducer.1 += 1;
                at_reducer.2 += (wire::HEADER_LEN + payload.len()) as u64;
                endpoint.words(&payload, &mut data);
                for entry in data.chunks_exact(stride) {
                    let (id, words) = (entry[0], &entry[1..]);
                    let key = key_of.get(id as usize).copied().ok_or_else(|| {
                        NetError::Job(JobError::Other(format!("the network delivered an unknown key id {id}")))
                    })?;
                    match pipeline {
                        Some(program) => {
                            let slots = program.decode_state(words).map_err(JobError::Internal)?;
                            let state = jit.state_from_slots(&slots);
                            bytes.clear();
                            bytes.extend_from_slice(state.as_bytes());
                        }
                        None => wire::words_to_bytes(words.iter().copied(), aggregation.state_size(), &mut bytes),
                    }
                    reducer.merge(aggregation, &id.to_le_bytes(), &bytes).map_err(|e| call_error(e, Some(key)))?;
                }
            }
            if let Some(launched) = launched.as_mut() {
                launched.drain();
                if let Some(error) = launched.failed() {
                    return Err(error);
                }
            }
            if Instant::now() >= deadline {
                return Err(timeout_error(&endpoint, graph, job.timeout));
            }
        }

        // Every result is in: finish them, and let the nodes end their jobs (they are answered
        // until they have, or for a linger period when attached).
        let mut results = KeyResults::with_capacity(aggregation.results().len(), reducer.len(), 0);
        let mut record = AlignedBytes::zeroed(0);
        for (id_bytes, state) in reducer.entries() {
            let mut id = [0u8; 8];
            id.copy_from_slice(&id_bytes[..8.min(id_bytes.len())]);
            let key = key_of.get(u64::from_le_bytes(id) as usize).copied().unwrap_or_default();
            results.push_key(key);
            jit.finish_each(state, &mut record, |s| results.push_value(to_value(s)))
                .map_err(|e| call_error(e, Some(key)))?;
        }
        let results = key_order::sort(results).into_results();
        if results.len() != key_of.len() {
            return Err(NetError::Job(JobError::Other(format!(
                "the network delivered {} keys to the reducer, the mappers sent {}",
                results.len(),
                key_of.len()
            ))));
        }
        let end_deadline = Instant::now() + END_TIMEOUT;
        let mut quiet_since = Instant::now();
        let mut heard = endpoint.counts.packets_in + endpoint.counts.acks_in;
        loop {
            endpoint.step(Duration::from_millis(20), &mut events)?;
            events.clear();
            let now_heard = endpoint.counts.packets_in + endpoint.counts.acks_in;
            if now_heard != heard {
                heard = now_heard;
                quiet_since = Instant::now();
            }
            let done = match launched.as_mut() {
                Some(launched) => {
                    launched.drain();
                    if let Some(error) = launched.failed() {
                        return Err(error);
                    }
                    launched.all_exited()
                }
                None => quiet_since.elapsed() >= LINGER,
            };
            if done || Instant::now() >= end_deadline {
                break;
            }
        }

        let mut report = NetReport {
            topology: job.topology.to_string(),
            exec: if pipeline.is_some() { "switch" } else { "host" }.to_string(),
            job: id,
            mappers: self.mappers as u64,
            switches: switches.len() as u64,
            keys: key_of.len() as u64,
            entries_at_reducer: at_reducer.0,
            packets_at_reducer: at_reducer.1,
            bytes_at_reducer: at_reducer.2,
            ..NetReport::default()
        };
        let (up, down) = endpoint.link_counts();
        for link in &up {
            report.entries_from_mappers += link.entries;
            report.packets_from_mappers += link.packets - link.retransmissions;
            report.bytes_from_mappers += link.bytes;
        }
        let mut senders = up.clone();
        report.links = up.into_iter().chain(down).collect();
        report.retransmissions = endpoint.counts.retransmissions;
        report.duplicates_dropped = endpoint.counts.duplicates_dropped;
        report.bad_packets = endpoint.counts.bad_packets;
        report.foreign_packets = endpoint.counts.foreign_packets;
        report.job_endpoint = endpoint.counts.clone();
        if let Some(launched) = launched.as_mut() {
            launched.drain();
            for node in launched.reports.iter().flatten() {
                let count = |field: &str| node.get(field).and_then(serde_json::Value::as_u64).unwrap_or(0);
                report.switch_merges += count("merges");
                report.collisions += count("collisions");
                report.flushed_entries += count("flushed_entries");
                report.retransmissions += count("retransmissions");
                report.duplicates_dropped += count("duplicates_dropped");
                report.bad_packets += count("bad_packets");
                report.foreign_packets += count("foreign_packets");
            }
            report.nodes = launched.reports.iter().map(|r| r.clone().unwrap_or(serde_json::Value::Null)).collect();
            for node in launched.reports.iter().flatten() {
                let uplinks = node.get("uplinks").cloned().unwrap_or_default();
                senders.extend(serde_json::from_value::<Vec<LinkCounts>>(uplinks).unwrap_or_default());
            }
        }
        report.tiers = tiers(graph, &senders);
        Ok((results, report))
    }
}

/// Sends the entries of the mappers `own` (by mapper index) of a job set up by another
/// process (process 0 of a timely job), along `uplinks`, and waits until every hop has
/// acknowledged them and their end of stream, within the job's timeout.
pub fn send_mappers(
    aggregation: &Aggregation,
    pipeline: Option<&PipelineProgram>,
    uplinks: &MapperUplinks,
    own: &[(usize, WireEntries)],
    job: &NetworkJob,
) -> Result<Counts, NetError> {
    let graph = job.topology.graph();
    let first = uplinks.uplinks.iter().flatten().map(|(_, address)| *address).next();
    let socket = bind_toward(first)?;
    let mut endpoint = Endpoint::new(socket, template(aggregation, pipeline, uplinks.job));
    if let Some((loss, dup, seed)) = job.faults {
        endpoint.set_faults(Faults::new(loss, dup, seed ^ naas_stdx::mix64(first.map_or(0, |a| u64::from(a.port())))));
    }
    for (mapper, entries) in own {
        let Some(links) = uplinks.uplinks.get(*mapper) else {
            return Err(NetError::Usage(format!("the topology has no mapper {mapper}")));
        };
        let ups: Vec<usize> = links.iter().map(|(link, address)| endpoint.add_uplink(*link, *address)).collect();
        for (key, words) in entries {
            endpoint.push(ups[uplink_of(*key, ups.len())], *key, words);
        }
    }
    endpoint.finish_uplinks();
    let deadline = Instant::now() + job.timeout;
    let mut events = Vec::new();
    while !endpoint.uplinks_done() {
        endpoint.step(Duration::from_millis(20), &mut events)?;
        events.clear();
        if Instant::now() >= deadline {
            return Err(timeout_error(&endpoint, &graph, job.timeout));
        }
    }
    Ok(endpoint.counts.clone())
}

/// A UDP socket for the job, on the local address the nodes reach it at (the one that routes
/// to `first`, loopback when there is none).
fn bind_toward(first: Option<SocketAddr>) -> Result<UdpSocket, NetError> {
    let local_ip = {
        let probe = UdpSocket::bind(if first.is_some_and(|a| a.is_ipv6()) { "[::]:0" } else { "0.0.0.0:0" })
            .map_err(|e| NetError::Io(format!("cannot open a UDP socket: {e}")))?;
        match first {
            Some(first) => {
                probe.connect(first).map_err(|e| NetError::Io(format!("cannot reach node at {first}: {e}")))?;
                probe.local_addr().map_err(|e| NetError::Io(e.to_string()))?.ip()
            }
            None => "127.0.0.1".parse().map_err(|_| NetError::Io("no loopback address".to_string()))?,
        }
    };
    crate::socket::bind(SocketAddr::new(local_ip, 0))
        .map_err(|e| NetError::Io(format!("cannot bind a UDP socket on {local_ip}: {e}")))
}

/// Encodes entries (key id, state bytes) for the wire: a switch's state words, or the state's
/// bytes as words for a host box; `key_of` names a key whose state a switch cannot hold.
pub fn encode_entries(
    aggregation: &Aggregation,
    pipeline: Option<&PipelineProgram>,
    entries: &[(u64, &[u8])],
    key_of: &[&[u8]],
) -> Result<WireEntries, NetError> {
    let jit = aggregation.jit();
    let mut state = jit.new_state();
    let mut encoded = Vec::with_capacity(entries.len());
    for &(id, bytes) in entries {
        let mut words = Vec::new();
        match pipeline {
            Some(program) => {
                state.as_mut_bytes().copy_from_slice(bytes);
                words = program.encode_state(&jit.state_slots(&state)).map_err(|e| {
                    let key = key_of.get(id as usize).map_or_else(
                        || format!("key id {id}"),
                        |key| format!("key `{}`", String::from_utf8_lossy(key)),
                    );
                    NetError::Job(JobError::Other(format!("{key}: its state cannot be sent to a switch: {e}")))
                })?;
            }
            None => wire::bytes_to_words(bytes, &mut words),
        }
        encoded.push((id, words));
    }
    Ok(encoded)
}

/// Sends every node its set-up until each acknowledges it.
#[allow(clippy::too_many_arguments, reason = "one call site; the pieces of the job it needs")]
fn set_up_nodes(
    socket: &UdpSocket,
    setups: &[(SocketAddr, Vec<u8>)],
    template: &crate::endpoint::Template,
    deadline: Instant,
    launched: &mut Option<Launched>,
    switches: &[usize],
    graph: &naas_target_switch::network::Graph,
    timeout: Duration,
) -> Result<(), NetError> {
    let mut acked = vec![false; setups.len()];
    let mut buf = vec![0u8; wire::MAX_DATAGRAM + 1];
    let io = |e: std::io::Error| NetError::Io(format!("socket error: {e}"));
    socket.set_read_timeout(Some(Duration::from_millis(30))).map_err(io)?;
    while !acked.iter().all(|a| *a) {
        for ((address, datagram), done) in setups.iter().zip(&acked) {
            if !done {
                let _ = socket.send_to(datagram, address);
            }
        }
        let until = Instant::now() + Duration::from_millis(50);
        while Instant::now() < until {
            let from = match socket.recv_from(&mut buf) {
                Ok((len, from)) => match wire::decode(&buf[..len]) {
                    Ok(d)
                        if d.header.kind == Kind::Ack
                            && d.header.link == wire::SETUP_LINK
                            && d.header.job == template.job =>
                    {
                        from
                    }
                    _ => continue,
                },
                Err(_) => continue,
            };
            if let Some(index) = setups.iter().position(|(a, _)| *a == from) {
                acked[index] = true;
            }
        }
        if let Some(launched) = launched {
            if let Some(error) = launched.failed() {
                return Err(error);
            }
        }
        if Instant::now() >= deadline {
            let missing: Vec<String> = acked
                .iter()
                .enumerate()
                .filter(|(_, a)| !**a)
                .map(|(i, _)| format!("`{}` at {}", graph.nodes[switches[i]].name, setups[i].0))
                .collect();
            return Err(NetError::Timeout {
                seconds: timeout.as_secs_f64(),
                waiting: format!(
                    "node(s) {} did not answer the job's set-up (not running, or running another program, \
                     aggregate or --exec)",
                    missing.join(", ")
                ),
            });
        }
    }
    Ok(())
}

/// The timeout's message: which links into the reducer have not ended, and which hop the
/// mappers wait for.
fn timeout_error(endpoint: &Endpoint, graph: &naas_target_switch::network::Graph, timeout: Duration) -> NetError {
    let name = |link: u32| {
        graph.links.get(link as usize).map_or_else(|| format!("link {link}"), |l| graph.nodes[l.from].name.clone())
    };
    let mut waiting = Vec::new();
    let unfinished: Vec<String> = endpoint.unfinished_downlinks().into_iter().map(name).collect();
    if !unfinished.is_empty() {
        waiting.push(format!("the reducer has no end of stream from {}", unfinished.join(", ")));
    }
    if let Some((link, peer, since)) = endpoint.stalled_uplink() {
        let hop = graph.links.get(link as usize).map_or_else(String::new, |l| graph.nodes[l.to].name.clone());
        waiting.push(format!(
            "node `{hop}` at {peer} has acknowledged nothing for {:.1} s",
            since.elapsed().as_secs_f64()
        ));
    }
    NetError::Timeout { seconds: timeout.as_secs_f64(), waiting: waiting.join("; ") }
}

/// The fewest entries the reducer can receive: per child of the reducer, the distinct keys of
/// the mappers below it (a switch child), or every entry it sends (a mapper child).
fn fan_in_bound(
    graph: &naas_target_switch::network::Graph,
    mapper_nodes: &[usize],
    entries: &[(usize, WireEntries)],
) -> u64 {
    let of = |mapper: usize| entries.iter().find(|(m, _)| *m == mapper).map(|(_, e)| e);
    let mut total = 0u64;
    for link in &graph.nodes[0].downlinks {
        let child = graph.links[*link].from;
        let below = |node: usize| -> Vec<usize> {
            let mut stack = vec![node];
            let mut found = Vec::new();
            while let Some(n) = stack.pop() {
                if graph.nodes[n].kind == NodeKind::Mapper {
                    found.push(n);
                }
                stack.extend(graph.nodes[n].downlinks.iter().map(|l| graph.links[*l].from));
            }
            found
        };
        let mappers = below(child);
        if graph.nodes[child].kind == NodeKind::Mapper {
            total += mappers
                .iter()
                .filter_map(|m| mapper_nodes.iter().position(|n| n == m))
                .map(|i| of(i).map_or(0, Vec::len) as u64)
                .sum::<u64>();
        } else {
            let mut keys: Vec<u64> = mappers
                .iter()
                .filter_map(|m| mapper_nodes.iter().position(|n| n == m))
                .flat_map(|i| of(i).into_iter().flatten().map(|(k, _)| *k))
                .collect();
            keys.sort_unstable();
            keys.dedup();
            total += keys.len() as u64;
        }
    }
    total
}

impl From<std::io::Error> for NetError {
    fn from(error: std::io::Error) -> NetError {
        NetError::Io(format!("socket error: {error}"))
    }
}
