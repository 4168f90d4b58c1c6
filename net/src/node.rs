//! A node process's loop (`naasc node`, spec §18.5): wait for a job's set-up, then receive
//! entries from the children, merge them (software switch or host box), forward upward, flush
//! at end of stream from every child, and report what it counted.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use naas_runtime::Aggregation;
use naas_target_switch::PipelineProgram;
use serde::{Deserialize, Serialize};

use crate::endpoint::{uplink_of, Counts, Endpoint, Event, Faults, Template};
use crate::hop::{Hop, HopCounts, HostHop, SwitchHop};
use crate::link::LinkCounts;
use crate::wire::{self, Encoding, Kind};

/// After its last acknowledgement upward, a node keeps answering its children this long after
/// the last datagram from them (an acknowledgement of their end of stream may have been lost,
/// and they retransmit it), then ends the job.
pub const LINGER: Duration = Duration::from_millis(600);

/// A job's set-up, sent by the job to each node (the payload of a set-up datagram).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setup {
    /// The node's name in the topology (for messages and reports).
    pub name: String,
    /// Links from the children.
    pub downlinks: Vec<u32>,
    /// Links toward the parents, with the parent's address.
    pub uplinks: Vec<(u32, String)>,
    /// How long the node waits without hearing from anyone before it gives up (ms).
    pub idle_timeout_ms: u64,
}

impl Setup {
    /// Checks the set-up a node is given and returns its uplinks' addresses: every link id
    /// once, at least one uplink, every address a socket address.
    pub fn check(&self) -> Result<Vec<(u32, SocketAddr)>, String> {
        let mut uplinks = Vec::with_capacity(self.uplinks.len());
        for (link, address) in &self.uplinks {
            let peer: SocketAddr = address.parse().map_err(|_| format!("`{address}` is not a socket address"))?;
            uplinks.push((*link, peer));
        }
        let mut links: Vec<u32> =
            self.downlinks.iter().chain(self.uplinks.iter().map(|(link, _)| link)).copied().collect();
        links.sort_unstable();
        if links.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err("a link id appears twice".to_string());
        }
        if uplinks.is_empty() {
            return Err("the node has no uplink".to_string());
        }
        Ok(uplinks)
    }
}

/// What a node is.
pub struct NodeConfig<'a> {
    pub aggregation: &'a Aggregation,
    /// The pipeline program for `--exec switch`; `None` for a host box.
    pub pipeline: Option<&'a PipelineProgram>,
    /// Slots per lane of a switch (`None`: what the profile's register memory holds).
    pub slots: Option<u64>,
}

/// The report of one job at a node (`--report`), field names as the simulator's where they
/// mean the same.
#[derive(Clone, Debug, Default, Serialize)]
pub struct NodeReport {
    pub name: String,
    pub exec: String,
    pub job: u64,
    pub address: String,
    #[serde(flatten)]
    pub counts: Counts,
    #[serde(flatten)]
    pub hop: HopCounts,
    /// Datagrams that arrived while the node waited for a job's set-up: malformed ones, and
    /// well-formed ones of no job it serves.
    pub bad_packets_before_setup: u64,
    pub foreign_packets_before_setup: u64,
    pub uplinks: Vec<LinkCounts>,
    pub downlinks: Vec<LinkCounts>,
    /// From the set-up to the end of the job (the last acknowledgement and the linger).
    pub seconds: f64,
    /// From the first data datagram to the last acknowledgement of the node's own end of
    /// stream: the time the node was busy with the job's data (its throughput's divisor).
    pub busy_seconds: f64,
}

/// Why a node stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Merge(#[from] crate::hop::MergeError),
    #[error("job {job}: the set-up is not valid: {message}")]
    Setup { job: u64, message: String },
    #[error("nothing heard for {seconds:.1} s; {waiting}")]
    Idle { seconds: f64, waiting: String },
    #[error("stopped before a job's set-up arrived")]
    Stopped,
}

/// The template of a job's datagrams: the job, the aggregation's fingerprint (for the switch
/// encoding, mixed with a hash of the pipeline program's text, so that nodes lowered with
/// other flags are told apart), and the entries' shape.
pub fn template(aggregation: &Aggregation, pipeline: Option<&PipelineProgram>, job: u64) -> Template {
    match pipeline {
        Some(program) => {
            let mut hash = crc32fast::Hasher::new();
            hash.update(program.text().as_bytes());
            let lanes = program.entries_per_packet().max(1);
            Template {
                encoding: Encoding::Switch,
                fingerprint: naas_stdx::mix64(aggregation.fingerprint() ^ u64::from(hash.finalize())),
                job,
                words: u16::try_from(program.state_words()).unwrap_or(u16::MAX),
                max_key: program.profile.max_key(),
                max_word: naas_target_switch::program::mask(program.profile.register_word_bits),
                entries_per_packet: u16::try_from(lanes).unwrap_or(u16::MAX),
                lanes,
            }
        }
        None => {
            let words = u16::try_from(aggregation.state_size().div_ceil(8)).unwrap_or(u16::MAX);
            Template {
                encoding: Encoding::Host,
                fingerprint: aggregation.fingerprint(),
                job,
                words,
                max_key: u64::MAX,
                max_word: u64::MAX,
                entries_per_packet: Template::host_entries_per_packet(words),
                lanes: 0,
            }
        }
    }
}

/// Waits on `socket` for a set-up of this aggregation, acknowledges it, and returns it with its
/// job id. Anything else is counted. A late copy of the set-up of `served`, the job this node
/// served last, is acknowledged again but does not start that job a second time. `stop` is
/// asked between reads (a launched node stops when its launcher does).
pub fn wait_for_setup(
    socket: &UdpSocket,
    config: &NodeConfig<'_>,
    report: &mut NodeReport,
    served: Option<u64>,
    stop: &dyn Fn() -> bool,
) -> Result<(u64, Setup), NodeError> {
    let expected = template(config.aggregation, config.pipeline, 0);
    let mut buf = vec![0u8; wire::MAX_DATAGRAM + 1];
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    loop {
        if stop() {
            return Err(NodeError::Stopped);
        }
        let (len, from) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => return Err(e.into()),
        };
        let Ok(datagram) = wire::decode(&buf[..len]) else {
            report.bad_packets_before_setup += 1;
            continue;
        };
        let header = datagram.header;
        if header.kind != Kind::Setup
            || header.fingerprint != expected.fingerprint
            || header.encoding != expected.encoding
        {
            report.foreign_packets_before_setup += 1;
            continue;
        }
        let setup: Setup = match serde_json::from_slice(datagram.payload) {
            Ok(setup) => setup,
            Err(_) => {
                report.bad_packets_before_setup += 1;
                continue;
            }
        };
        // Refused before it is acknowledged: an acknowledged set-up tells the job that the node
        // serves it, and the job would then wait for a node that has already given up.
        if let Err(message) = setup.check() {
            return Err(NodeError::Setup { job: header.job, message });
        }
        let ack = template(config.aggregation, config.pipeline, header.job).header(Kind::Ack, wire::SETUP_LINK, 0);
        let mut out = Vec::new();
        wire::encode(&ack, &0u64.to_le_bytes(), &mut out);
        let _ = socket.send_to(&out, from);
        if served == Some(header.job) {
            continue;
        }
        return Ok((header.job, setup));
    }
}

/// Serves one job: returns when every uplink's end of stream is acknowledged and the children
/// have been quiet for [`LINGER`].
pub fn serve_job(
    socket: &UdpSocket,
    config: &NodeConfig<'_>,
    job: u64,
    setup: &Setup,
    report: &mut NodeReport,
    stop: &dyn Fn() -> bool,
    faults: Option<(f64, f64, u64)>,
) -> Result<(), NodeError> {
    let started = Instant::now();
    let template = template(config.aggregation, config.pipeline, job);
    let mut endpoint = Endpoint::new(socket.try_clone()?, template);
    if let Some((loss, dup, seed)) = faults {
        endpoint.set_faults(Faults::new(loss, dup, seed));
    }
    for link in &setup.downlinks {
        endpoint.add_downlink(*link);
    }
    let uplinks = setup.check().map_err(|message| NodeError::Setup { job, message })?;
    for (link, peer) in uplinks {
        endpoint.add_uplink(link, peer);
    }
    let mut hop = match config.pipeline {
        Some(program) => Hop::Switch(Box::new(SwitchHop::new(program, config.slots))),
        None => Hop::Host(Box::new(HostHop::new(config.aggregation))),
    };
    let idle = Duration::from_millis(setup.idle_timeout_ms.max(100));
    let mut events = Vec::new();
    let mut data = Vec::new();
    let mut forward = Vec::new();
    let stride = endpoint.stride();
    let mut counts = HopCounts::default();
    let mut last_heard = Instant::now();
    let mut heard = 0u64;
    let mut flushed = setup.downlinks.is_empty();
    if flushed {
        endpoint.finish_uplinks();
    }
    let mut first_data: Option<Instant> = None;
    let mut done_at: Option<Instant> = None;
    loop {
        if stop() {
            return Err(NodeError::Stopped);
        }
        endpoint.step(Duration::from_millis(20), &mut events)?;
        if first_data.is_none() && events.iter().any(|e| matches!(e, Event::Data { .. })) {
            first_data = Some(Instant::now());
        }
        let now_heard = endpoint.counts.packets_in + endpoint.counts.acks_in;
        if now_heard != heard {
            heard = now_heard;
            last_heard = Instant::now();
        }
        for event in events.drain(..) {
            match event {
                Event::Data { payload, .. } => {
                    endpoint.words(&payload, &mut data);
                    forward.clear();
                    match &mut hop {
                        Hop::Switch(switch) => switch.apply(&data, &mut counts, &mut forward),
                        Hop::Host(host) => host.apply(&data, stride, &mut counts)?,
                    }
                    for entry in forward.chunks_exact(stride) {
                        endpoint.push(uplink_of(entry[0], endpoint.uplinks()), entry[0], &entry[1..]);
                    }
                }
                Event::Eos { .. } => {}
            }
        }
        if !flushed && endpoint.downlinks_done() {
            forward.clear();
            match &mut hop {
                Hop::Switch(switch) => switch.flush(&mut counts, &mut forward),
                Hop::Host(host) => host.flush(&mut counts, &mut forward),
            }
            for entry in forward.chunks_exact(stride) {
                endpoint.push(uplink_of(entry[0], endpoint.uplinks()), entry[0], &entry[1..]);
            }
            endpoint.finish_uplinks();
            flushed = true;
        }
        if flushed && endpoint.uplinks_done() {
            done_at.get_or_insert_with(Instant::now);
            if last_heard.elapsed() >= LINGER {
                break;
            }
        }
        if last_heard.elapsed() >= idle {
            let waiting = if !flushed {
                let names: Vec<String> = endpoint.unfinished_downlinks().iter().map(|l| format!("link {l}")).collect();
                format!("no end of stream from its children on {}", names.join(", "))
            } else {
                match endpoint.stalled_uplink() {
                    Some((link, peer, _)) => format!("its parent at {peer} (link {link}) does not acknowledge"),
                    None => "waiting for its parents".to_string(),
                }
            };
            return Err(NodeError::Idle { seconds: idle.as_secs_f64(), waiting });
        }
    }
    report.name = setup.name.clone();
    report.job = job;
    report.counts = endpoint.counts.clone();
    report.hop = counts;
    let (up, down) = endpoint.link_counts();
    report.uplinks = up;
    report.downlinks = down;
    report.seconds = started.elapsed().as_secs_f64();
    report.busy_seconds = match (first_data, done_at) {
        (Some(first), Some(done)) => done.saturating_duration_since(first).as_secs_f64(),
        _ => 0.0,
    };
    Ok(())
}
