//! A discrete-event network simulator for in-network aggregation. Mappers at the leaves
//! generate records and lift them (IR interpreter), or take the partial states a caller
//! supplies ([`simulate_entries`]), and send packets of (key, partial state) entries; switches run the *pipeline program* (through [`crate::pipeline_sim`]) on a slot
//! table of limited size, forward colliding entries upward unmerged, and flush their table when
//! every child has finished; the reducer merges (IR interpreter) and finishes. The result is
//! checked against a centralised fold of the same entries.
//!
//! The transport keeps the result exact under loss, duplication and reordering:
//! - every packet on a link carries a sequence number; the receiver acknowledges each packet,
//!   the sender keeps unacknowledged packets and retransmits them after a timeout; at most
//!   `window` packets are in flight per link;
//! - a sender sends end-of-stream only once all its data packets are acknowledged, so the
//!   receiver has seen every packet of the link when end-of-stream arrives, and copies that
//!   arrive later are dropped;
//! - when the state has a non-idempotent field (add), the receiver keeps a bitmap of the
//!   sequence numbers it has merged per ingress link and drops duplicates *before* any slot is
//!   touched (the contribution tracking). With idempotent fields only (min/max/or/and), no
//!   bitmap is kept: merging a duplicate again changes nothing.

mod dist;
mod plot;
mod source;
mod topology;

pub use dist::{Dist, KeySampler};
pub use plot::plot_svg;
pub use source::MapperEntries;
pub use topology::{FileNode, FileTopology, Graph, NodeKind, Topology};

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::rc::Rc;
use std::time::Instant;

use naas_ir::interp::{Interpreter, Slot};
use naas_ir::ir::Scalar;
use naas_ir::laws::Rng;
use naas_ir::Compiled;
use serde::Serialize;

use self::source::{Generator, Source};
use crate::pipeline_sim::{Outcome, PipelineSim, SlotTable};
use crate::program::PipelineProgram;

/// What to simulate.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    pub topology: Topology,
    /// Records generated in total, spread evenly over the mappers (ignored by
    /// [`simulate_entries`]).
    pub records: u64,
    /// Keys are `0..keys`. [`simulate_entries`] uses it only with [`SlotIndex::Direct`], as the
    /// size of the dense key space (supplied keys must then be below it).
    pub keys: u32,
    /// The key distribution of generated records (ignored by [`simulate_entries`]).
    pub dist: Dist,
    pub seed: u64,
    /// Probability that a transmission (data, end-of-stream or acknowledgement) is lost.
    pub loss: f64,
    /// Probability that a transmission is delivered twice.
    pub dup: f64,
    /// Probability that a transmission is delayed by up to four link latencies (so that later
    /// packets overtake it).
    pub reorder: f64,
    /// Slots per switch table; `None` uses what fits the profile's register memory.
    pub table_slots: Option<u64>,
    /// How a switch picks a key's slot.
    pub slot_index: SlotIndex,
    /// Packets in flight per link.
    pub window: u32,
    pub link_gbps: f64,
    pub latency_ns: u64,
    /// Fold every entry centrally with the interpreter and compare (costs one interpreter
    /// merge per entry).
    pub check_reference: bool,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            topology: Topology::Tree { fanout: 4, depth: 2 },
            records: 10_000,
            keys: 100,
            dist: Dist::Uniform,
            seed: 7,
            loss: 0.0,
            dup: 0.0,
            reorder: 0.0,
            table_slots: None,
            slot_index: SlotIndex::Hash,
            window: 32,
            link_gbps: 100.0,
            latency_ns: 1_000,
            check_reference: true,
        }
    }
}

/// How a switch maps a key to a slot of its table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum SlotIndex {
    #[default]
    /// `hash(key, seed) mod slots`, with a different seed at every switch (keys that collide
    /// at one switch rarely collide at the next). Works for any key space.
    Hash,
    /// `key mod slots`: keys are dense identifiers `0..K` assigned by the job (as SwitchML's
    /// workers assign slot indexes), so tables with at least K slots never collide.
    Direct,
}

impl SlotIndex {
    /// Parses `hash` or `direct`.
    pub fn parse(text: &str) -> Result<SlotIndex, String> {
        match text.trim() {
            "hash" => Ok(SlotIndex::Hash),
            "direct" => Ok(SlotIndex::Direct),
            other => Err(format!("invalid slot index `{other}`: expected `hash` or `direct`")),
        }
    }
}

impl std::fmt::Display for SlotIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SlotIndex::Hash => "hash",
            SlotIndex::Direct => "direct",
        })
    }
}

/// Traffic on one link (sender side: every transmission, retransmissions included).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LinkReport {
    pub from: String,
    pub to: String,
    pub tier: usize,
    pub packets: u64,
    pub bytes: u64,
    pub entries: u64,
    pub retransmissions: u64,
}

/// Traffic summed over the links of one tier (hops from the mappers).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TierReport {
    pub tier: usize,
    pub name: String,
    pub links: u64,
    pub packets: u64,
    pub bytes: u64,
    pub entries: u64,
}

/// The outcome of a simulation (serialised by `naasc simulate --report`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report {
    pub aggregate: String,
    pub topology: String,
    pub dist: String,
    pub seed: u64,
    pub mappers: u64,
    pub switches: u64,
    /// Records generated, or entries supplied.
    pub records_in: u64,
    /// The key space: `config.keys`, or with supplied entries and hashed slots, the number of
    /// distinct keys supplied.
    pub keys: u32,
    pub distinct_keys: u64,
    pub table_slots: u64,
    pub slot_index: SlotIndex,
    pub entries_per_packet: u32,
    /// Entries the mappers sent (one per record: mappers do not combine).
    pub entries_from_mappers: u64,
    pub packets_from_mappers: u64,
    pub bytes_from_mappers: u64,
    /// Entries, packets and bytes delivered to the reducer (duplicates included).
    pub entries_at_reducer: u64,
    pub packets_at_reducer: u64,
    pub bytes_at_reducer: u64,
    /// The fan-in bound, the fewest entries the reducer can receive: for each child of the
    /// reducer, one entry per distinct key generated in its subtree (a switch child), or
    /// every entry it sends (a mapper child, which does not combine).
    pub ideal_entries_at_reducer: u64,
    /// `entries_from_mappers / entries_at_reducer`.
    pub traffic_reduction: f64,
    /// `entries_from_mappers / ideal_entries_at_reducer`.
    pub ideal_traffic_reduction: f64,
    /// Entries merged into a switch slot.
    pub switch_merges: u64,
    /// Entries forwarded unmerged because their slot held another key.
    pub collisions: u64,
    /// Entries read out of switch tables at end of stream.
    pub flushed_entries: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub retransmissions: u64,
    /// Packet copies dropped by the receivers (already merged, or after end-of-stream).
    pub duplicates_dropped: u64,
    /// Whether receivers kept per-link sequence bitmaps (some state field is not idempotent).
    pub contribution_tracking: bool,
    pub events: u64,
    pub simulated_time_us: f64,
    pub result_matches_reference: bool,
    pub mismatched_keys: u64,
    /// Wall-clock time of the whole simulation, of record generation and lifting (with the
    /// reference fold), and of the reducer's interpreter merges.
    pub wall_seconds: f64,
    pub generation_seconds: f64,
    pub reducer_seconds: f64,
    /// Link transmissions per second of wall-clock time spent in the network (wall time minus
    /// generation and reducer time).
    pub network_packets_per_second: f64,
    pub links: Vec<LinkReport>,
    pub tiers: Vec<TierReport>,
}

impl Report {
    /// A short human-readable summary.
    pub fn text(&self) -> String {
        let mut out = format!(
            "simulated {} on {} ({} mappers, {} switches, {} slots per table, {} index), {} records over {} keys ({})\n",
            self.aggregate,
            self.topology,
            self.mappers,
            self.switches,
            self.table_slots,
            self.slot_index,
            self.records_in,
            self.keys,
            self.dist
        );
        out.push_str(&format!(
            "  entries: {} from mappers, {} at the reducer (ideal {}): reduction {:.1}x of an ideal {:.1}x\n",
            self.entries_from_mappers,
            self.entries_at_reducer,
            self.ideal_entries_at_reducer,
            self.traffic_reduction,
            self.ideal_traffic_reduction
        ));
        out.push_str(&format!(
            "  bytes at the reducer: {} in {} packets; switch merges {}, collisions {}, flushed {}\n",
            self.bytes_at_reducer, self.packets_at_reducer, self.switch_merges, self.collisions, self.flushed_entries
        ));
        out.push_str(&format!(
            "  faults: {} lost, {} duplicated, {} reordered; {} retransmissions, {} copies dropped\n",
            self.lost, self.duplicated, self.reordered, self.retransmissions, self.duplicates_dropped
        ));
        for tier in &self.tiers {
            out.push_str(&format!(
                "  tier {} ({}): {} links, {} packets, {} bytes, {} entries\n",
                tier.tier, tier.name, tier.links, tier.packets, tier.bytes, tier.entries
            ));
        }
        out.push_str(&format!(
            "  result matches the centralised reference: {}{}\n",
            self.result_matches_reference,
            if self.mismatched_keys > 0 { format!(" ({} keys differ)", self.mismatched_keys) } else { String::new() }
        ));
        out
    }
}

/// A packet: end-of-stream, or `entries` entries of `1 + state words` words (key first).
#[derive(Debug)]
struct Packet {
    seq: u32,
    eos: bool,
    entries: u32,
    data: Vec<u64>,
}

enum EventKind {
    Deliver { link: u32, packet: Rc<Packet> },
    Ack { link: u32, seq: u32 },
    Timeout { link: u32 },
}

struct Event {
    time: u64,
    order: u64,
    kind: EventKind,
}

impl PartialEq for Event {
    fn eq(&self, other: &Event) -> bool {
        (self.time, self.order) == (other.time, other.order)
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Event) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    fn cmp(&self, other: &Event) -> std::cmp::Ordering {
        (self.time, self.order).cmp(&(other.time, other.order))
    }
}

#[derive(Default)]
struct LinkState {
    // Sender side.
    next_seq: u32,
    /// Packets from sequence number `base` on, with the time they were last sent; `None`
    /// once acknowledged (the front is popped as soon as it is acknowledged).
    unacked: VecDeque<Option<(Rc<Packet>, u64)>>,
    base: u32,
    in_flight: usize,
    queue: VecDeque<Packet>,
    /// Entries waiting to fill a packet.
    buffer: Vec<u64>,
    buffered: u32,
    eos_sent: bool,
    timer_armed: bool,
    free_at: u64,
    // Receiver side.
    seen: Vec<u64>,
    eos_received: bool,
    // Statistics.
    stats: LinkReport,
}

struct NodeState {
    /// Entries this mapper has still to send.
    remaining: u64,
    /// The mapper's position among the mappers (graph order); `usize::MAX` for other nodes.
    mapper: usize,
    rng: Rng,
    table: Option<SlotTable>,
    hash_seed: u64,
    children_done: usize,
    flushed: bool,
}

/// Simulates aggregate `plan_index` of `compiled`, lowered to `pipeline`, on `config`: the
/// mappers generate `config.records` records with keys from `config.dist` over
/// `0..config.keys`.
pub fn simulate(
    compiled: &Compiled,
    plan_index: usize,
    pipeline: &PipelineProgram,
    config: &SimConfig,
) -> Result<Report, String> {
    check_config(compiled, plan_index, pipeline, config)?;
    check_keys(pipeline, config.keys)?;
    let source = Source::Generated(Generator::new(KeySampler::new(config.dist, config.keys)));
    let mappers = config.topology.mappers() as u64;
    let counts = (0..mappers).map(|m| config.records / mappers + u64::from(m < config.records % mappers)).collect();
    let (report, _) =
        run(compiled, plan_index, pipeline, config, source, counts, config.keys, config.dist.to_string())?;
    Ok(report)
}

/// The outcome of [`simulate_entries`].
#[derive(Clone, Debug)]
pub struct EntriesOutcome {
    pub report: Report,
    /// The reducer's merged (not finished) state per key, sorted by key.
    pub reduced: Vec<(u64, Vec<Slot>)>,
}

/// Sends caller-supplied partial states through the network: `mappers[i]` is what the `i`th
/// mapper of the topology (graph order: `m{i}` in the built-in topologies) sends, in order;
/// mappers beyond `mappers.len()` send nothing. Entries travel exactly as generated records
/// do (packets, the transport protocol under loss, duplication and reordering, switch tables,
/// collisions forwarded, end-of-stream flushes). `config.records` and `config.dist` are
/// ignored; `config.keys` is used only with [`SlotIndex::Direct`], as the size of the dense key
/// space: keys are then expected to be `0..config.keys`, and a key outside it is an error.
///
/// Errors: more mappers' entries than the topology has mappers, a key wider than the profile's
/// key bits, or a state that does not have the state layout's shape and types. With
/// `config.check_reference`, `report.result_matches_reference` compares the reducer's result
/// with the interpreter's centralised merge of the same entries; `report.records_in` counts the
/// entries supplied.
pub fn simulate_entries(
    compiled: &Compiled,
    plan_index: usize,
    pipeline: &PipelineProgram,
    config: &SimConfig,
    mappers: Vec<MapperEntries>,
) -> Result<EntriesOutcome, String> {
    check_config(compiled, plan_index, pipeline, config)?;
    let plan = &compiled.aggregates[plan_index];
    let dense = config.slot_index == SlotIndex::Direct;
    if dense {
        check_keys(pipeline, config.keys)?;
    }
    source::check_supplied(plan, pipeline, &mappers, config.topology.mappers(), dense.then_some(config.keys))?;
    let key_space = if dense {
        config.keys
    } else {
        let mut keys: Vec<u64> = mappers.iter().flatten().map(|(key, _)| *key).collect();
        keys.sort_unstable();
        keys.dedup();
        u32::try_from(keys.len()).unwrap_or(u32::MAX)
    };
    let mut counts: Vec<u64> = mappers.iter().map(|entries| entries.len() as u64).collect();
    counts.resize(config.topology.mappers(), 0);
    let source = Source::Supplied(mappers.into_iter().map(Vec::into_iter).collect());
    let (report, reduced) = run(compiled, plan_index, pipeline, config, source, counts, key_space, "supplied".into())?;
    let mut reduced: Vec<(u64, Vec<Slot>)> = reduced.into_iter().collect();
    reduced.sort_unstable_by_key(|(key, _)| *key);
    Ok(EntriesOutcome { report, reduced })
}

/// Checks what both entry points share: the aggregate, the probabilities and the links.
fn check_config(
    compiled: &Compiled,
    plan_index: usize,
    pipeline: &PipelineProgram,
    config: &SimConfig,
) -> Result<(), String> {
    let plan = compiled
        .aggregates
        .get(plan_index)
        .ok_or_else(|| format!("no aggregate number {plan_index} in this program"))?;
    if plan.name != pipeline.aggregate {
        return Err(format!("the pipeline program is for `{}`, not `{}`", pipeline.aggregate, plan.name));
    }
    for (name, p) in [("loss", config.loss), ("dup", config.dup), ("reorder", config.reorder)] {
        if !(0.0..1.0).contains(&p) {
            return Err(format!("`{name}` must be a probability in [0, 1), not {p}"));
        }
    }
    if config.window == 0 || config.link_gbps.is_nan() || config.link_gbps <= 0.0 {
        return Err("`window` and `link_gbps` must be positive".to_string());
    }
    Ok(())
}

/// A key space `0..keys` must be non-empty and fit the profile's key bits.
fn check_keys(pipeline: &PipelineProgram, keys: u32) -> Result<(), String> {
    if keys == 0 || u64::from(keys) > pipeline.profile.max_key() + 1 {
        return Err(format!(
            "`keys` must be between 1 and {} (keys are {}-bit identifiers)",
            pipeline.profile.max_key() + 1,
            pipeline.profile.key_bits
        ));
    }
    Ok(())
}

/// Runs the simulation with `counts[i]` entries from the `i`th mapper, drawn from `source`.
/// Returns the report and the reducer's merged state per key.
#[allow(clippy::too_many_arguments, reason = "one internal call site per entry point")]
fn run(
    compiled: &Compiled,
    plan_index: usize,
    pipeline: &PipelineProgram,
    config: &SimConfig,
    source: Source,
    counts: Vec<u64>,
    keys: u32,
    dist: String,
) -> Result<(Report, FastMap<u64, Vec<Slot>>), String> {
    let slots = config.table_slots.unwrap_or(pipeline.key_slots().0).clamp(1, 1 << 26) as usize;
    let graph = config.topology.graph();
    let mut sim = Sim::new(compiled, plan_index, pipeline, config, graph, slots, source, &counts);
    sim.report.keys = keys;
    sim.report.dist = dist;
    let started = Instant::now();
    sim.run()?;
    let wall = started.elapsed().as_secs_f64();
    let report = sim.report(wall);
    Ok((report, std::mem::take(&mut sim.reduced)))
}

struct Sim<'a> {
    compiled: &'a Compiled,
    plan: &'a naas_ir::decompose::AggregatePlan,
    interp: Interpreter<'a>,
    program: &'a PipelineProgram,
    pipeline: PipelineSim,
    config: &'a SimConfig,
    graph: Graph,
    nodes: Vec<NodeState>,
    links: Vec<LinkState>,
    events: BinaryHeap<Reverse<Event>>,
    order: u64,
    rng: Rng,
    source: Source,
    words: usize,
    entries_per_packet: u32,
    dedup: bool,
    rto: u64,
    latency: u64,
    ps_per_byte: f64,
    /// Reducer state and the reference, per key.
    reduced: FastMap<u64, Vec<Slot>>,
    reference: FastMap<u64, Vec<Slot>>,
    /// For each node, the index of the reducer's child whose subtree holds it.
    root_child: Vec<usize>,
    /// (reducer child, key) pairs generated, for the fan-in bound.
    subtree_keys: std::collections::HashSet<(usize, u64), FastHash>,
    report: Report,
    now: u64,
    generation: f64,
    reducing: f64,
}

impl<'a> Sim<'a> {
    /// A simulation in which the `i`th mapper (graph order) sends `counts[i]` entries.
    #[allow(clippy::too_many_arguments, reason = "called once, from `run`")]
    fn new(
        compiled: &'a Compiled,
        plan_index: usize,
        program: &'a PipelineProgram,
        config: &'a SimConfig,
        graph: Graph,
        slots: usize,
        source: Source,
        counts: &[u64],
    ) -> Sim<'a> {
        let plan = &compiled.aggregates[plan_index];
        let mut seeder = Rng::new(config.seed);
        let mappers = graph.nodes.iter().filter(|n| n.kind == NodeKind::Mapper).count() as u64;
        let mut mapper_index = 0usize;
        let nodes = graph
            .nodes
            .iter()
            .map(|node| {
                let (mut remaining, mut mapper) = (0, usize::MAX);
                if node.kind == NodeKind::Mapper {
                    remaining = counts.get(mapper_index).copied().unwrap_or(0);
                    mapper = mapper_index;
                    mapper_index += 1;
                }
                NodeState {
                    remaining,
                    mapper,
                    rng: Rng::new(seeder.next_u64()),
                    table: (node.kind == NodeKind::Switch).then(|| SlotTable::new(program, slots)),
                    hash_seed: seeder.next_u64(),
                    children_done: 0,
                    flushed: false,
                }
            })
            .collect();
        let links = graph.links.iter().map(|_| LinkState::default()).collect();
        let entries_per_packet = program.entries_per_packet();
        let ps_per_byte = 8_000.0 / config.link_gbps;
        let latency = config.latency_ns * 1_000;
        let full_packet = (program.packet_bytes(entries_per_packet) as f64 * ps_per_byte) as u64;
        let rto = 3 * (2 * latency + u64::from(config.window) * full_packet) + 1_000_000;
        let dedup = plan.state.fields.iter().any(|f| !f.merge.idempotent());
        let report = Report {
            aggregate: plan.name.clone(),
            topology: config.topology.to_string(),
            dist: config.dist.to_string(),
            seed: config.seed,
            mappers,
            switches: graph.nodes.iter().filter(|n| n.kind == NodeKind::Switch).count() as u64,
            keys: config.keys,
            table_slots: slots as u64,
            slot_index: config.slot_index,
            entries_per_packet,
            contribution_tracking: dedup,
            ..Report::default()
        };
        Sim {
            compiled,
            plan,
            interp: Interpreter::new(&compiled.optimized),
            program,
            pipeline: PipelineSim::new(program),
            config,
            graph,
            nodes,
            links,
            events: BinaryHeap::new(),
            order: 0,
            rng: Rng::new(seeder.next_u64()),
            source,
            words: program.state_words(),
            entries_per_packet,
            dedup,
            rto,
            latency,
            ps_per_byte,
            reduced: FastMap::default(),
            reference: FastMap::default(),
            root_child: Vec::new(),
            subtree_keys: std::collections::HashSet::default(),
            report,
            now: 0,
            generation: 0.0,
            reducing: 0.0,
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    fn schedule(&mut self, time: u64, kind: EventKind) {
        self.order += 1;
        self.events.push(Reverse(Event { time, order: self.order, kind }));
    }

    fn run(&mut self) -> Result<(), String> {
        // Every node's subtree under the reducer: follow the first uplink up to the reducer
        // (in a leaf-spine network every path meets at the top-of-rack switch).
        self.root_child = (0..self.graph.nodes.len())
            .map(|mut node| {
                let mut child = node;
                let mut hops = 0;
                while let Some(link) = self.graph.nodes[node].uplinks.first() {
                    child = node;
                    node = self.graph.links[*link].to;
                    hops += 1;
                    if hops > self.graph.nodes.len() {
                        break;
                    }
                }
                child
            })
            .collect();
        // Mappers start sending; a topology without records still ends every stream.
        for link in 0..self.links.len() {
            if self.graph.nodes[self.graph.links[link].from].kind == NodeKind::Mapper {
                self.pump(link)?;
            }
        }
        while let Some(Reverse(event)) = self.events.pop() {
            self.now = event.time;
            self.report.events += 1;
            match event.kind {
                EventKind::Deliver { link, packet } => self.deliver(link as usize, packet)?,
                EventKind::Ack { link, seq } => {
                    let state = &mut self.links[link as usize];
                    let index = seq.wrapping_sub(state.base) as usize;
                    if let Some(entry) = state.unacked.get_mut(index).filter(|e| e.is_some()) {
                        *entry = None;
                        state.in_flight -= 1;
                        while let Some(None) = state.unacked.front() {
                            state.unacked.pop_front();
                            state.base += 1;
                        }
                        self.pump(link as usize)?;
                    }
                }
                EventKind::Timeout { link } => self.timeout(link as usize),
            }
        }
        if !self.links.iter().all(|l| l.eos_received) {
            return Err("internal error: the simulation ended before every stream finished".to_string());
        }
        Ok(())
    }

    /// Sends what the window allows on a link; then end-of-stream once everything is acked.
    fn pump(&mut self, link: usize) -> Result<(), String> {
        let from = self.graph.links[link].from;
        loop {
            if self.links[link].in_flight >= self.config.window as usize {
                return Ok(());
            }
            if let Some(packet) = self.links[link].queue.pop_front() {
                self.send_new(link, packet);
                continue;
            }
            if self.nodes[from].remaining > 0 {
                let packet = self.generate(from, link)?;
                self.send_new(link, packet);
                continue;
            }
            break;
        }
        let producer_done = match self.graph.nodes[from].kind {
            NodeKind::Mapper => self.nodes[from].remaining == 0,
            _ => self.nodes[from].flushed,
        };
        let state = &self.links[link];
        if producer_done && state.queue.is_empty() && state.buffered == 0 && state.in_flight == 0 && !state.eos_sent {
            self.links[link].eos_sent = true;
            let seq = self.links[link].next_seq;
            self.send_new(link, Packet { seq, eos: true, entries: 0, data: Vec::new() });
        }
        Ok(())
    }

    /// A mapper's next packet: entries from the source, encoded (and folded centrally).
    fn generate(&mut self, mapper: usize, link: usize) -> Result<Packet, String> {
        let started = Instant::now();
        let count = self.nodes[mapper].remaining.min(u64::from(self.entries_per_packet));
        self.nodes[mapper].remaining -= count;
        let mut data = Vec::with_capacity(count as usize * (1 + self.words));
        for _ in 0..count {
            let (key, state, words) = match &mut self.source {
                Source::Generated(generator) => {
                    let rng = &mut self.nodes[mapper].rng;
                    generator.next(self.compiled, self.plan, &self.interp, self.program, rng)?
                }
                Source::Supplied(queues) => {
                    let (key, state) = queues
                        .get_mut(self.nodes[mapper].mapper)
                        .and_then(Iterator::next)
                        .ok_or("internal error: a mapper ran out of supplied entries")?;
                    let words = self.program.encode_state(&state)?;
                    (key, state, words)
                }
            };
            data.push(key);
            data.extend_from_slice(&words);
            let child = self.root_child[mapper];
            if self.graph.nodes[child].kind == NodeKind::Switch {
                self.subtree_keys.insert((child, key));
            } else {
                self.report.ideal_entries_at_reducer += 1;
            }
            if self.config.check_reference {
                let merged = match self.reference.remove(&key) {
                    Some(old) => self.merge(old, state)?,
                    None => self.merge(self.plan.identity.clone(), state)?,
                };
                self.reference.insert(key, merged);
            }
        }
        self.report.records_in += count;
        self.report.entries_from_mappers += count;
        self.generation += started.elapsed().as_secs_f64();
        let seq = self.links[link].next_seq;
        Ok(Packet { seq, eos: false, entries: count as u32, data })
    }

    fn merge(&self, a: Vec<Slot>, b: Vec<Slot>) -> Result<Vec<Slot>, String> {
        self.interp.call(self.plan.merge, a.into_iter().chain(b).collect()).map_err(|e| format!("merge failed: {e}"))
    }

    /// Gives a packet the link's next sequence number and transmits it.
    fn send_new(&mut self, link: usize, mut packet: Packet) {
        let seq = self.links[link].next_seq;
        packet.seq = seq;
        let packet = Rc::new(packet);
        let state = &mut self.links[link];
        state.next_seq += 1;
        if state.unacked.is_empty() {
            state.base = seq;
        }
        state.unacked.push_back(Some((packet.clone(), self.now)));
        state.in_flight += 1;
        self.transmit(link, packet);
        if !self.links[link].timer_armed {
            self.links[link].timer_armed = true;
            self.schedule(self.now + self.rto, EventKind::Timeout { link: link as u32 });
        }
    }

    /// One transmission: serialisation on the link, then loss, duplication and reordering.
    fn transmit(&mut self, link: usize, packet: Rc<Packet>) {
        let bytes = self.program.packet_bytes(packet.entries);
        let tx = (bytes as f64 * self.ps_per_byte) as u64;
        let state = &mut self.links[link];
        let depart = state.free_at.max(self.now);
        state.free_at = depart + tx;
        state.stats.packets += 1;
        state.stats.bytes += bytes;
        state.stats.entries += u64::from(packet.entries);
        let arrival = depart + tx + self.latency;
        if self.chance(self.config.loss) {
            self.report.lost += 1;
            return;
        }
        let mut delay = 0;
        if self.chance(self.config.reorder) {
            self.report.reordered += 1;
            delay = self.rng.next_u64() % (4 * self.latency + 1);
        }
        if self.chance(self.config.dup) {
            self.report.duplicated += 1;
            let extra = self.rng.next_u64() % (self.latency + 1);
            self.schedule(arrival + delay + extra, EventKind::Deliver { link: link as u32, packet: packet.clone() });
        }
        self.schedule(arrival + delay, EventKind::Deliver { link: link as u32, packet });
    }

    /// Retransmits what has waited longer than the timeout; re-arms the link's timer.
    fn timeout(&mut self, link: usize) {
        let rto = self.rto;
        let now = self.now;
        let mut resend = Vec::new();
        let state = &mut self.links[link];
        state.timer_armed = false;
        for (packet, sent) in state.unacked.iter_mut().flatten() {
            if *sent + rto <= now {
                *sent = now;
                resend.push(packet.clone());
            }
        }
        let pending = state.in_flight > 0;
        for packet in resend {
            self.links[link].stats.retransmissions += 1;
            self.report.retransmissions += 1;
            self.transmit(link, packet);
        }
        if pending {
            self.links[link].timer_armed = true;
            self.schedule(now + rto, EventKind::Timeout { link: link as u32 });
        }
    }

    fn deliver(&mut self, link: usize, packet: Rc<Packet>) -> Result<(), String> {
        let to = self.graph.links[link].to;
        // Every copy is acknowledged (the acknowledgement itself may be lost).
        if !self.chance(self.config.loss) {
            let time = self.now + self.latency;
            self.schedule(time, EventKind::Ack { link: link as u32, seq: packet.seq });
        } else {
            self.report.lost += 1;
        }
        if self.graph.nodes[to].kind == NodeKind::Reducer && !packet.eos {
            self.report.packets_at_reducer += 1;
            self.report.bytes_at_reducer += self.program.packet_bytes(packet.entries);
            self.report.entries_at_reducer += u64::from(packet.entries);
        }
        let state = &mut self.links[link];
        if state.eos_received {
            self.report.duplicates_dropped += 1;
            return Ok(());
        }
        if packet.eos {
            state.eos_received = true;
            self.nodes[to].children_done += 1;
            if self.nodes[to].children_done == self.graph.nodes[to].downlinks.len() {
                self.finish_node(to)?;
            }
            return Ok(());
        }
        if self.dedup {
            let (word, bit) = ((packet.seq / 64) as usize, packet.seq % 64);
            if state.seen.len() <= word {
                state.seen.resize(word + 1, 0);
            }
            if state.seen[word] & (1 << bit) != 0 {
                self.report.duplicates_dropped += 1;
                return Ok(());
            }
            state.seen[word] |= 1 << bit;
        }
        let stride = 1 + self.words;
        match self.graph.nodes[to].kind {
            NodeKind::Switch => {
                let seed = self.nodes[to].hash_seed;
                let direct = self.config.slot_index == SlotIndex::Direct;
                for entry in packet.data.chunks_exact(stride) {
                    let key = entry[0];
                    let table = self.nodes[to].table.as_mut().ok_or("internal error: a switch without a table")?;
                    let slot =
                        if direct { (key % table.slots() as u64) as usize } else { slot_of(key, seed, table.slots()) };
                    match self.pipeline.execute(table, slot, key, &entry[1..]) {
                        Outcome::Merged => self.report.switch_merges += 1,
                        Outcome::Collision => {
                            self.report.collisions += 1;
                            self.forward(to, entry)?;
                        }
                    }
                }
            }
            NodeKind::Reducer => {
                let started = Instant::now();
                for entry in packet.data.chunks_exact(stride) {
                    let state = self.program.decode_state(&entry[1..]);
                    let merged = match self.reduced.remove(&entry[0]) {
                        Some(old) => self.merge(old, state)?,
                        None => self.merge(self.plan.identity.clone(), state)?,
                    };
                    self.reduced.insert(entry[0], merged);
                }
                self.reducing += started.elapsed().as_secs_f64();
            }
            NodeKind::Mapper => return Err("internal error: a packet delivered to a mapper".to_string()),
        }
        Ok(())
    }

    /// Appends an entry to the buffer of the uplink its key routes to.
    fn forward(&mut self, node: usize, entry: &[u64]) -> Result<(), String> {
        let uplinks = &self.graph.nodes[node].uplinks;
        let link = uplinks[(mix(entry[0] ^ 0x5bd1_e995) % uplinks.len() as u64) as usize];
        let state = &mut self.links[link];
        state.buffer.extend_from_slice(entry);
        state.buffered += 1;
        if state.buffered == self.entries_per_packet {
            self.seal(link);
            self.pump(link)?;
        }
        Ok(())
    }

    fn seal(&mut self, link: usize) {
        let state = &mut self.links[link];
        if state.buffered == 0 {
            return;
        }
        let capacity = self.entries_per_packet as usize * (1 + self.words);
        let data = std::mem::replace(&mut state.buffer, Vec::with_capacity(capacity));
        let packet = Packet { seq: u32::MAX, eos: false, entries: state.buffered, data };
        state.buffered = 0;
        state.queue.push_back(packet);
    }

    /// Every child has finished: read the table out, then end the node's streams.
    fn finish_node(&mut self, node: usize) -> Result<(), String> {
        if self.graph.nodes[node].kind != NodeKind::Switch {
            return Ok(());
        }
        let mut table = self.nodes[node].table.take().ok_or("internal error: a switch without a table")?;
        let mut entry = Vec::with_capacity(1 + self.words);
        for slot in 0..table.slots() {
            if let Some((key, words)) = table.resident(slot) {
                entry.clear();
                entry.push(key);
                entry.extend_from_slice(words);
                self.report.flushed_entries += 1;
                self.forward(node, &entry)?;
                table.clear(slot);
            }
        }
        self.nodes[node].table = Some(table);
        self.nodes[node].flushed = true;
        for link in self.graph.nodes[node].uplinks.clone() {
            self.seal(link);
            self.pump(link)?;
        }
        Ok(())
    }

    fn report(&mut self, wall: f64) -> Report {
        let mut report = std::mem::take(&mut self.report);
        // Results: finish both folds per key and compare.
        let mut mismatched = 0u64;
        if self.config.check_reference {
            let mut keys: Vec<&u64> = self.reference.keys().chain(self.reduced.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let finish =
                    |state: Option<&Vec<Slot>>| state.and_then(|s| self.interp.call(self.plan.finish, s.clone()).ok());
                let (got, want) = (finish(self.reduced.get(key)), finish(self.reference.get(key)));
                let same = match (got, want) {
                    (Some(got), Some(want)) => {
                        got.len() == want.len() && got.iter().zip(&want).all(|(g, w)| close(g, w, self.program))
                    }
                    _ => false,
                };
                mismatched += u64::from(!same);
            }
        }
        report.distinct_keys = self.reduced.len() as u64;
        report.mismatched_keys = mismatched;
        report.result_matches_reference = self.config.check_reference && mismatched == 0;
        report.ideal_entries_at_reducer += self.subtree_keys.len() as u64;
        report.traffic_reduction = report.entries_from_mappers as f64 / report.entries_at_reducer.max(1) as f64;
        report.ideal_traffic_reduction =
            report.entries_from_mappers as f64 / report.ideal_entries_at_reducer.max(1) as f64;
        report.simulated_time_us = self.now as f64 / 1e6;
        report.wall_seconds = wall;
        report.generation_seconds = self.generation;
        report.reducer_seconds = self.reducing;
        let mut tiers: Vec<TierReport> = self
            .graph
            .tiers
            .iter()
            .enumerate()
            .map(|(tier, name)| TierReport { tier, name: name.clone(), ..TierReport::default() })
            .collect();
        let mut transmissions = 0;
        for (link, state) in self.graph.links.iter().zip(&mut self.links) {
            let mut stats = std::mem::take(&mut state.stats);
            stats.from = self.graph.nodes[link.from].name.clone();
            stats.to = self.graph.nodes[link.to].name.clone();
            stats.tier = link.tier;
            transmissions += stats.packets;
            if self.graph.nodes[link.from].kind == NodeKind::Mapper {
                report.packets_from_mappers += stats.packets;
                report.bytes_from_mappers += stats.bytes;
            }
            if let Some(tier) = tiers.get_mut(link.tier) {
                tier.links += 1;
                tier.packets += stats.packets;
                tier.bytes += stats.bytes;
                tier.entries += stats.entries;
            }
            report.links.push(stats);
        }
        report.tiers = tiers;
        let network = (wall - self.generation - self.reducing).max(1e-9);
        report.network_packets_per_second = transmissions as f64 / network;
        report
    }
}

/// Exact equality on integers; on floats (fixed point), within the rounding the scale allows.
fn close(a: &Slot, b: &Slot, program: &PipelineProgram) -> bool {
    let scalar = |x: &Scalar, y: &Scalar| match (x, y) {
        (Scalar::Float(_, x), Scalar::Float(_, y)) if program.fixed_point_scale.is_some() => {
            (x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1.0)
        }
        _ => x.same(*y),
    };
    match (a, b) {
        (Slot::Scalar(x), Slot::Scalar(y)) => scalar(x, y),
        (Slot::Array(x), Slot::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| scalar(x, y)),
        _ => false,
    }
}

/// A fast, deterministic hasher for the simulator's own tables (keys are not adversarial).
#[derive(Clone, Copy, Default)]
struct FastHash;

#[derive(Default)]
struct FastHasher(u64);

impl std::hash::BuildHasher for FastHash {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(0)
    }
}

impl std::hash::Hasher for FastHasher {
    fn finish(&self) -> u64 {
        mix(self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_usize(&mut self, x: usize) {
        self.write_u64(x as u64);
    }
}

type FastMap<K, V> = HashMap<K, V, FastHash>;

fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The slot of a key in a switch's table (each switch hashes with its own seed, so keys that
/// collide at one switch rarely collide at the next).
pub fn slot_of(key: u64, seed: u64, slots: usize) -> usize {
    (mix(key ^ seed) % slots as u64) as usize
}
