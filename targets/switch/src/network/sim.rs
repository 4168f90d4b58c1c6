//! The discrete-event simulation: nodes, links and the transport protocol, switch tables,
//! the reducer and the reference fold. [`super::simulate`] and [`super::simulate_entries`]
//! build a [`Sim`] around a [`Source`] of entries and run it.
//!
//! Speed matters here (the goal is millions of simulated packets per second on one core), so
//! the loop avoids per-packet allocation: packets live in a [`PacketPool`] and are passed
//! around by index, events are small `Copy` values in a radix heap, acknowledgements are
//! cumulative with a selective bitmap and delayed (one for every few packets), and a switch
//! runs a whole packet through its pipeline at once.

use std::collections::VecDeque;
use std::time::Instant;

use naas_ir::decompose::{AggregatePlan, MergeOp};
use naas_ir::interp::{Interpreter, Slot};
use naas_ir::ir::Scalar;
use naas_ir::Compiled;
use naas_lang::{bail_internal, InternalError};
use naas_stdx::{mix64, Rng};

use super::events::{Event, EventQueue};
use super::packets::PacketPool;
use super::report::{LinkReport, Report, SwitchReport, TierReport};
use super::source::{EntryContext, Source};
use super::topology::{Graph, NodeKind};
use super::{FastMap, Modulus, SimConfig, SimError, SlotIndex, Workload};
use crate::pipeline_sim::{PipelineSim, SlotTable};
use crate::program::PipelineProgram;
use crate::word::{widen_into, Word};

/// How far past its oldest unacknowledged packet a sender may send: the span of the
/// receiver's selective-acknowledgement bitmap (so a receiver can always tell whether it has
/// seen a packet, see [`LinkState::receive`]).
pub(super) const SEQ_SPAN: u32 = 64;

/// A link whose timer fires this many times in a row with nothing acknowledged in between is
/// taken to be stuck (a protocol bug), and the simulation stops with an internal error rather
/// than loop forever. A round of retransmission succeeds when a copy and its acknowledgement
/// both get through, with probability `(1 - loss)^2`, so with honest faults this needs an
/// extreme loss probability: at 0.99, a million failed rounds in a row have probability about
/// e^-100; from about 0.999 on it becomes likely.
const MAX_STALLED_TIMEOUTS: u32 = 1_000_000;

/// Which coming event [`Sim::prefetch_next`] asks for a delivery's packet of, and which for the
/// table rows of its keys, as [`EventQueue::peek_nth`] counts them (0 is the next event, so
/// 4 is the fifth to come and 2 the third): far enough for a miss to memory to complete first
/// (an event takes about 150 ns), near enough that the events are known (only those at the
/// current time are). Chosen by measurement, in alternated runs: 4 and 2 ran about 4% faster
/// than 2 and 1, which ran 8% faster than 1 and 0.
const PREFETCH_PACKET_AHEAD: usize = 4;
const PREFETCH_ROWS_AHEAD: usize = 2;

/// Fields of entries the mappers stage ahead of time, together (256 KiB of 32-bit fields,
/// within a core's L2 cache, so that staged entries are still cached when they are sent).
/// Each mapper stages at least the packets it sends in a burst, which is more with many
/// mappers: 1,024 mappers stage 4 packets each with a window of 8 (1 MiB), 16 with the
/// default window of 32.
const STAGE_WORDS: usize = 1 << 16;

/// Both ends of a link. The fields are laid out by hand (`repr(C)`, each link in its own
/// cache lines) so that a delivery, which touches only the receiver, reads one line: the
/// first line holds the sender's queues, the second the receiver and the sender's window
/// (then the watchdog and the statistics).
#[derive(Default)]
#[repr(C, align(64))]
struct LinkState {
    // Sender side: queues.
    /// Packets from sequence number `base` on (`base + unacked.len() == next_seq`), with the
    /// time each was last sent; `None` once acknowledged (the front is popped as soon as it
    /// is acknowledged).
    unacked: VecDeque<(Option<u32>, u64)>,
    /// Sealed packets waiting for the window.
    queue: VecDeque<u32>,
    // Receiver side.
    /// Every sequence number below `cum` has been received, and `cum + 1 + i` has if bit `i`
    /// of `sack` is set.
    sack: u64,
    cum: u32,
    /// Packet copies received since the last acknowledgement.
    unacknowledged: u32,
    ack_armed: bool,
    eos_received: bool,
    // Sender side: the window.
    eos_sent: bool,
    timer_armed: bool,
    next_seq: u32,
    base: u32,
    in_flight: u32,
    free_at: u64,
    /// The packet being filled with forwarded entries.
    open: Option<u32>,
    /// Timeouts that found something to resend since the last acknowledgement that made
    /// progress (a watchdog: see [`MAX_STALLED_TIMEOUTS`]).
    stalled: u32,
    // Statistics.
    stats: LinkReport,
}

impl LinkState {
    /// Records the arrival of sequence number `seq`; returns whether it is new. Exact because
    /// a sender never sends `seq >= base + SEQ_SPAN`, and everything below its `base` has
    /// been acknowledged and so received: `seq < cum + SEQ_SPAN + 1`, within the bitmap.
    fn receive(&mut self, seq: u32) -> Result<bool, InternalError> {
        if seq < self.cum {
            return Ok(false);
        }
        if seq == self.cum {
            let mut sack = self.sack;
            self.cum += 1;
            while sack & 1 == 1 {
                sack >>= 1;
                self.cum += 1;
            }
            self.sack = sack >> 1;
            return Ok(true);
        }
        let bit = seq - self.cum - 1;
        if bit >= SEQ_SPAN {
            bail_internal!("sequence number {seq} is beyond the receive window at {}", self.cum);
        }
        let fresh = self.sack & (1 << bit) == 0;
        self.sack |= 1 << bit;
        Ok(fresh)
    }
}

/// Where a switch puts a key: `key mod slots` (direct), or `hash(key, seed) mod slots` with
/// the switch's own seed, so that keys that collide at one switch rarely collide at the next.
#[derive(Clone, Copy)]
struct SlotMap {
    direct: bool,
    /// Slots per lane; lane `l`'s slots are `l * lane_slots ..` of the switch's table.
    slots: Modulus,
    lane_slots: usize,
    lanes: Lanes,
    seed: u64,
}

impl SlotMap {
    /// The slot of `key`: in the table of the key's lane (the entry position it takes in a
    /// packet; each lane is a copy of the registers with its own slot table), the key's slot.
    #[inline]
    fn slot(self, key: u64) -> usize {
        self.lanes.of(key) * self.lane_slots
            + self.slots.reduce(if self.direct { key } else { mix64(key ^ self.seed) }) as usize
    }
}

/// The lane of a key: the same at every node (senders place an entry at its key's position in
/// a packet, so that a key is merged in one lane's table at every switch, as ASK places
/// key-value tuples); a packet carries at most one entry per lane.
#[derive(Clone, Copy, Debug)]
pub(super) struct Lanes {
    count: Modulus,
}

impl Lanes {
    /// A hash seed of its own, so that a key's lane and its slot within the lane are
    /// independent.
    const SEED: u64 = 0x6c61_6e65_7365_6564;

    pub(super) fn new(count: u32) -> Lanes {
        Lanes { count: Modulus::new(u64::from(count.max(1))) }
    }

    #[inline]
    pub(super) fn of(self, key: u64) -> usize {
        self.count.reduce(mix64(key ^ Lanes::SEED)) as usize
    }
}

/// A node's state. The fields are laid out by hand (`repr(C)`, each node in its own cache
/// lines): what a mapper touches for every packet it sends comes first, in one line.
#[repr(C, align(64))]
struct NodeState<W> {
    /// Entries this mapper has still to send.
    remaining: u64,
    /// The mapper's next packets, filled ahead of time with entries from the source, in the
    /// order it sends them (see [`Sim::stage_round`]); the queue holds a reference to each.
    staged: VecDeque<u32>,
    /// Entries not drawn from the source yet.
    to_stage: u64,
    /// Entries drawn but not yet staged (`stride` words each, in draw order): their lane was
    /// taken in the packet being filled.
    held: Vec<u64>,
    /// The mapper's position among the mappers (graph order); `usize::MAX` for other nodes.
    mapper: usize,
    rng: Rng,
    table: Option<SlotTable<W>>,
    /// Where a key goes in `table`.
    slot_map: SlotMap,
    /// A switch's entries merged, forwarded unmerged, and flushed.
    merged: u64,
    unmerged: u64,
    flushed_entries: u64,
    children_done: usize,
    flushed: bool,
}

/// The simulation, with packets of `W` fields (see [`Word`]).
pub(super) struct Sim<'a, W: Word> {
    compiled: &'a Compiled,
    plan: &'a AggregatePlan,
    interp: Interpreter<'a>,
    program: &'a PipelineProgram,
    pipeline: PipelineSim,
    config: &'a SimConfig,
    graph: Graph,
    nodes: Vec<NodeState<W>>,
    links: Vec<LinkState>,
    events: EventQueue,
    packets: PacketPool<W>,
    rng: Rng,
    source: Source,
    /// Words per entry: the key and the state words.
    stride: usize,
    /// The lane of each key (a packet carries at most one entry per lane).
    lanes: Lanes,
    /// The mappers' node indexes, and how many packets' entries each stages at most.
    mapper_nodes: Vec<usize>,
    stage_packets: usize,
    entries_per_packet: u32,
    /// Bytes and serialisation time (ps) of a packet by its number of entries.
    packet_bytes: Vec<u64>,
    packet_tx: Vec<u64>,
    dedup: bool,
    rto: u64,
    latency: u64,
    /// A receiver acknowledges at once after this many packets (or a duplicate, a gap, or
    /// end-of-stream), otherwise `ack_delay` after the first unacknowledged one.
    ack_every: u32,
    ack_delay: u64,
    /// Reducer state and the reference, per key.
    pub(super) reduced: FastMap<u64, Vec<Slot>>,
    reference: FastMap<u64, Vec<Slot>>,
    /// What the reference fold saw of each key (for the fixed-point error bound).
    folded: FastMap<u64, Folded>,
    /// For each node, the index of the reducer's child whose subtree holds it.
    root_child: Vec<usize>,
    /// The keys sent under each child of the reducer, for the fan-in bound.
    subtree_keys: SeenKeys,
    /// Scratch: the entries of a packet that collided (their indexes, then their words),
    /// packets to retransmit.
    collided: Vec<u32>,
    scratch: Vec<u64>,
    resend: Vec<u32>,
    pub(super) report: Report,
    now: u64,
    generation: f64,
    reducing: f64,
}

/// The distinct keys sent under each child of the reducer: a bitmap per child for keys below
/// a known, small enough bound (generated records, dense supplied keys), a hash set for the
/// rest.
struct SeenKeys {
    /// Each node's position among the reducer's children (`usize::MAX` for other nodes).
    child: Vec<usize>,
    /// Keys below `dense` are counted in `bits` (child-major).
    dense: u64,
    bits: Vec<u64>,
    sparse: rustc_hash::FxHashSet<(usize, u64)>,
}

/// The largest bitmap [`SeenKeys`] allocates, in bits (16 MiB).
const MAX_SEEN_BITS: u64 = 1 << 27;

impl SeenKeys {
    fn new(graph: &Graph, dense_keys: Option<u64>) -> SeenKeys {
        let mut child = vec![usize::MAX; graph.nodes.len()];
        let downlinks = graph.nodes.first().map_or(&[][..], |root| &root.downlinks[..]);
        for (position, link) in downlinks.iter().enumerate() {
            child[graph.links[*link].from] = position;
        }
        let children = downlinks.len() as u64;
        let dense = dense_keys.filter(|keys| children.saturating_mul(*keys) <= MAX_SEEN_BITS).unwrap_or(0);
        let bits = vec![0; (children * dense).div_ceil(64) as usize];
        SeenKeys { child, dense, bits, sparse: rustc_hash::FxHashSet::default() }
    }

    /// Records `key` under `node`, a child of the reducer.
    fn insert(&mut self, node: usize, key: u64) {
        let position = self.child[node];
        if key < self.dense && position != usize::MAX {
            let bit = position as u64 * self.dense + key;
            self.bits[(bit / 64) as usize] |= 1 << (bit % 64);
        } else {
            self.sparse.insert((node, key));
        }
    }

    /// The number of distinct (child, key) pairs.
    fn count(&self) -> u64 {
        self.bits.iter().map(|word| u64::from(word.count_ones())).sum::<u64>() + self.sparse.len() as u64
    }
}

/// For each node, the child of the reducer whose subtree holds it: the node reached by
/// following first uplinks until the next one is the reducer (in a leaf-spine network every
/// path meets at the top-of-rack switch, so the first uplink is as good as any). The reducer
/// maps to itself. Linear in the nodes: each walk up stops at the first node already known,
/// and then fills in the nodes it passed (a walk per node would be quadratic on a chain).
fn root_children(graph: &Graph) -> Vec<usize> {
    const UNKNOWN: usize = usize::MAX;
    let up = |node: usize| graph.nodes[node].uplinks.first().map(|link| graph.links[*link].to);
    let mut child = vec![UNKNOWN; graph.nodes.len()];
    let mut path = Vec::new();
    for start in 0..graph.nodes.len() {
        let mut node = start;
        path.clear();
        let known = loop {
            if child[node] != UNKNOWN {
                break child[node];
            }
            match up(node) {
                // The reducer, or a node without uplinks: its own subtree.
                None => {
                    child[node] = node;
                    break node;
                }
                // A child of the reducer.
                Some(parent) if up(parent).is_none() => {
                    child[node] = node;
                    break node;
                }
                Some(parent) => {
                    path.push(node);
                    // A graph is acyclic by construction; the bound makes a bug end the walk
                    // rather than loop.
                    if path.len() > graph.nodes.len() {
                        break node;
                    }
                    node = parent;
                }
            }
        };
        for node in &path {
            child[*node] = known;
        }
    }
    child
}

/// Merges two states with the interpreter.
fn merge(
    interp: &Interpreter<'_>,
    plan: &AggregatePlan,
    key: u64,
    a: Vec<Slot>,
    b: Vec<Slot>,
) -> Result<Vec<Slot>, SimError> {
    interp.call(plan.merge, a.into_iter().chain(b).collect()).map_err(|error| SimError::Fault { key, error })
}

impl<'a, W: Word> Sim<'a, W> {
    /// A simulation of `workload` on `graph`, with `slots` slots per switch table.
    pub(super) fn new(
        compiled: &'a Compiled,
        plan_index: usize,
        program: &'a PipelineProgram,
        config: &'a SimConfig,
        graph: Graph,
        slots: usize,
        workload: Workload,
    ) -> Sim<'a, W> {
        let counts = &workload.counts;
        let subtree_keys = SeenKeys::new(&graph, workload.dense_keys);
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
                // The mapper's stream, then the switch's hash seed, in this order.
                let rng = Rng::new(seeder.next_u64());
                let lanes = program.entries_per_packet();
                let table = (node.kind == NodeKind::Switch).then(|| SlotTable::new(program, slots * lanes as usize));
                let slot_map = SlotMap {
                    direct: config.slot_index == SlotIndex::Direct,
                    slots: Modulus::new(slots as u64),
                    lane_slots: slots,
                    lanes: Lanes::new(lanes),
                    seed: seeder.next_u64(),
                };
                NodeState {
                    remaining,
                    staged: VecDeque::new(),
                    to_stage: remaining,
                    held: Vec::new(),
                    merged: 0,
                    unmerged: 0,
                    flushed_entries: 0,
                    mapper,
                    rng,
                    table,
                    slot_map,
                    children_done: 0,
                    flushed: false,
                }
            })
            .collect();
        let links = graph.links.iter().map(|_| LinkState::default()).collect();
        let entries_per_packet = program.entries_per_packet();
        let stride = 1 + program.state_words();
        let mapper_nodes = (0..graph.nodes.len()).filter(|i| graph.nodes[*i].kind == NodeKind::Mapper).collect();
        let packet_words = stride * entries_per_packet as usize;
        let ps_per_byte = 8_000.0 / config.link_gbps;
        let latency = config.latency_ns * 1_000;
        let packet_bytes: Vec<u64> = (0..=entries_per_packet).map(|n| program.packet_bytes(n)).collect();
        let packet_tx: Vec<u64> = packet_bytes.iter().map(|bytes| (*bytes as f64 * ps_per_byte) as u64).collect();
        let full_packet = packet_tx.last().copied().unwrap_or(0);
        let ack_every = (config.window / 2).max(1);
        // A mapper sends a burst of packets for every acknowledgement: stage at least that
        // many, or every packet of a burst would start a round of staging.
        let stage_packets = (STAGE_WORDS / mappers.max(1) as usize / packet_words).max(ack_every as usize);
        // Long enough for the rest of a burst to arrive, short against the round trip.
        let ack_delay = u64::from(ack_every) * full_packet + latency / 4;
        let rto = 3 * (2 * latency + u64::from(config.window) * full_packet) + ack_delay + 1_000_000;
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
            lanes: program.entries_per_packet(),
            passes: program.passes,
            line_rate_fraction: 1.0 / f64::from(program.passes.max(1)),
            insertion_chain: program.insertion.map_or(0, |chain| chain.k),
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
            events: EventQueue::new(),
            packets: PacketPool::new(stride, entries_per_packet),
            rng: Rng::new(seeder.next_u64()),
            source: workload.source,
            stride,
            lanes: Lanes::new(entries_per_packet),
            mapper_nodes,
            stage_packets,
            entries_per_packet,
            packet_bytes,
            packet_tx,
            dedup,
            rto,
            latency,
            ack_every,
            ack_delay,
            reduced: FastMap::default(),
            reference: FastMap::default(),
            folded: FastMap::default(),
            root_child: Vec::new(),
            subtree_keys,
            collided: Vec::new(),
            scratch: Vec::new(),
            resend: Vec::new(),
            report,
            now: 0,
            generation: 0.0,
            reducing: 0.0,
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    pub(super) fn run(&mut self) -> Result<(), SimError> {
        self.root_child = root_children(&self.graph);
        // Mappers start sending; a topology without records still ends every stream.
        for link in 0..self.links.len() {
            if self.graph.nodes[self.graph.links[link].from].kind == NodeKind::Mapper {
                self.pump(link)?;
            }
        }
        while let Some((time, event)) = self.events.pop() {
            self.now = time;
            self.report.events += 1;
            match event {
                Event::Deliver { link, packet } => {
                    self.prefetch_next();
                    let delivered = self.deliver(link as usize, packet);
                    self.packets.release(packet);
                    delivered?;
                }
                Event::Ack { link, cum, sack } => self.acknowledged(link as usize, cum, sack)?,
                Event::Timeout { link } => self.timeout(link as usize)?,
                Event::AckDelay { link } => {
                    let state = &mut self.links[link as usize];
                    state.ack_armed = false;
                    if state.unacknowledged > 0 {
                        self.send_ack(link as usize);
                    }
                }
            }
        }
        if !self.links.iter().all(|l| l.eos_received) {
            bail_internal!("the simulation ended before every stream finished");
        }
        if self.packets.live() != 0 {
            bail_internal!("{} packets were never released", self.packets.live());
        }
        Ok(())
    }

    /// Sends what the window allows on a link; then end-of-stream once everything is acked.
    fn pump(&mut self, link: usize) -> Result<(), SimError> {
        let from = self.graph.links[link].from;
        loop {
            let state = &self.links[link];
            if state.in_flight >= self.config.window || state.next_seq - state.base >= SEQ_SPAN {
                return Ok(());
            }
            if let Some(packet) = self.links[link].queue.pop_front() {
                self.send_new(link, packet);
                continue;
            }
            if self.nodes[from].remaining > 0 {
                let packet = self.generate(from)?;
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
        if producer_done && state.queue.is_empty() && state.open.is_none() && state.in_flight == 0 && !state.eos_sent {
            self.links[link].eos_sent = true;
            let packet = self.packets.alloc();
            self.packets.get_mut(packet).eos = true;
            self.send_new(link, packet);
        }
        Ok(())
    }

    /// A mapper's next packet, the first it has staged.
    fn generate(&mut self, mapper: usize) -> Result<u32, SimError> {
        if self.nodes[mapper].staged.is_empty() {
            self.stage_round(mapper)?;
        }
        let packet = self.nodes[mapper]
            .staged
            .pop_front()
            .ok_or_else(|| InternalError::new("a mapper staged fewer entries than it sends"))?;
        let count = u64::from(self.packets.get(packet).entries);
        if count == 0 || count > self.nodes[mapper].remaining {
            bail_internal!(
                "a mapper staged a packet of {count} entries with {} left to send",
                self.nodes[mapper].remaining
            );
        }
        self.nodes[mapper].remaining -= count;
        Ok(packet)
    }

    /// Draws entries from the source ahead of time into packets: for mapper `short` (which
    /// needs more), and for every other mapper whose staged packets are down to half, up to
    /// `stage_packets` each. Drawing in rounds keeps the source's work (lifting records with
    /// the interpreter, folding the reference) out of the network's way: the two do not
    /// take turns evicting each other's data from the cache, and the round's time, which
    /// is not the network's, is measured once per round.
    ///
    /// Each mapper draws from its own random stream in order, so a mapper's entries do not
    /// depend on when it draws them.
    #[inline(never)]
    fn stage_round(&mut self, short: usize) -> Result<(), SimError> {
        let started = Instant::now();
        let mut result = Ok(());
        for position in 0..self.mapper_nodes.len() {
            let mapper = self.mapper_nodes[position];
            let node = &self.nodes[mapper];
            if (node.to_stage == 0 && node.held.is_empty())
                || (mapper != short && 2 * node.staged.len() > self.stage_packets)
            {
                continue;
            }
            result = self.stage(mapper);
            if result.is_err() {
                break;
            }
        }
        self.generation += started.elapsed().as_secs_f64();
        result
    }

    /// Tops up mapper `mapper`'s staged packets: entries from the source (and folded
    /// centrally), at most one per lane in a packet (an entry travels at its key's lane
    /// position). An entry whose lane is taken is held for a later packet (held entries go
    /// first, in draw order); a packet draws at most `entries_per_packet` new entries, and
    /// none while `entries_per_packet` x 4 are held, so the held entries stay bounded and
    /// every packet carries at least one entry.
    fn stage(&mut self, mapper: usize) -> Result<(), SimError> {
        let cx = EntryContext { compiled: self.compiled, plan: self.plan, interp: &self.interp, program: self.program };
        let child = self.root_child[mapper];
        let child_is_switch = self.graph.nodes[child].kind == NodeKind::Switch;
        let node = &mut self.nodes[mapper];
        let stride = self.stride;
        let lanes = self.entries_per_packet as usize;
        let mut taken = vec![false; lanes];
        let mut drawn = 0;
        let mut result = Ok(());
        let mut entry = Vec::with_capacity(stride);
        while node.staged.len() < self.stage_packets && (node.to_stage > 0 || !node.held.is_empty()) && result.is_ok() {
            let mut chunk = std::mem::take(&mut self.scratch);
            chunk.clear();
            taken.iter_mut().for_each(|t| *t = false);
            let mut kept = 0;
            for at in (0..node.held.len()).step_by(stride) {
                let lane = self.lanes.of(node.held[at]);
                if taken[lane] {
                    node.held.copy_within(at..at + stride, kept);
                    kept += stride;
                } else {
                    taken[lane] = true;
                    chunk.extend_from_slice(&node.held[at..at + stride]);
                }
            }
            node.held.truncate(kept);
            let mut attempts = 0;
            while chunk.len() < lanes * stride
                && attempts < lanes
                && node.to_stage > 0
                && node.held.len() < 4 * lanes * stride
            {
                attempts += 1;
                node.to_stage -= 1;
                entry.clear();
                let (key, state) = match self.source.next_into(
                    &cx,
                    node.mapper,
                    &mut node.rng,
                    self.config.check_reference,
                    &mut entry,
                ) {
                    Ok(entry) => entry,
                    Err(error) => {
                        result = Err(error);
                        break;
                    }
                };
                let lane = self.lanes.of(key);
                if taken[lane] {
                    node.held.extend_from_slice(&entry);
                } else {
                    taken[lane] = true;
                    chunk.extend_from_slice(&entry);
                }
                drawn += 1;
                if child_is_switch {
                    self.subtree_keys.insert(child, key);
                } else {
                    self.report.ideal_entries_at_reducer += 1;
                }
                if let Some(state) = state {
                    self.folded.entry(key).or_default().add(&state);
                    let folded = self.reference.entry(key).or_insert_with(|| self.plan.identity.clone());
                    match merge(&self.interp, self.plan, key, std::mem::take(folded), state) {
                        Ok(merged) => *folded = merged,
                        Err(error) => {
                            result = Err(error);
                            break;
                        }
                    }
                }
            }
            if chunk.is_empty() {
                self.scratch = chunk;
                continue;
            }
            let packet = self.packets.alloc();
            if let Err(error) = self.packets.fill(packet, &chunk) {
                result = Err(error.into());
            }
            self.scratch = chunk;
            node.staged.push_back(packet);
        }
        self.report.records_in += drawn;
        self.report.entries_from_mappers += drawn;
        result
    }

    /// Gives a packet the link's next sequence number and transmits it; the link's
    /// unacknowledged list takes over the caller's reference.
    fn send_new(&mut self, link: usize, packet: u32) {
        let state = &mut self.links[link];
        self.packets.get_mut(packet).seq = state.next_seq;
        state.next_seq += 1;
        state.unacked.push_back((Some(packet), self.now));
        state.in_flight += 1;
        self.transmit(link, packet);
        if !self.links[link].timer_armed {
            self.links[link].timer_armed = true;
            self.events.push(self.now + self.rto, Event::Timeout { link: link as u32 });
        }
    }

    /// One transmission: serialisation on the link, then loss, duplication and reordering.
    fn transmit(&mut self, link: usize, packet: u32) {
        let entries = self.packets.get(packet).entries;
        let (bytes, mut tx) = (self.packet_bytes[entries as usize], self.packet_tx[entries as usize]);
        if self.graph.nodes[self.graph.links[link].to].kind == NodeKind::Switch {
            // A packet that recirculates occupies the switch's pipeline (at this port's rate)
            // once per pass: the port aggregates at 1/passes of its line rate. With an
            // insertion chain, a packet takes a pass per value of its longest run.
            let passes = self.pipeline.packet_passes(self.packets.data(packet), self.stride);
            self.report.switch_packets += 1;
            self.report.pipeline_passes += u64::from(passes);
            tx *= u64::from(passes);
        }
        let state = &mut self.links[link];
        let depart = state.free_at.max(self.now);
        state.free_at = depart + tx;
        state.stats.packets += 1;
        state.stats.bytes += bytes;
        state.stats.entries += u64::from(entries);
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
        let deliver = Event::Deliver { link: link as u32, packet };
        if self.chance(self.config.dup) {
            self.report.duplicated += 1;
            let extra = self.rng.next_u64() % (self.latency + 1);
            self.packets.retain(packet);
            self.events.push(arrival + delay + extra, deliver);
        }
        self.packets.retain(packet);
        self.events.push(arrival + delay, deliver);
    }

    /// Retransmits what has waited longer than the timeout; re-arms the link's timer.
    fn timeout(&mut self, link: usize) -> Result<(), SimError> {
        let (rto, now) = (self.rto, self.now);
        let mut resend = std::mem::take(&mut self.resend);
        let state = &mut self.links[link];
        state.timer_armed = false;
        for (packet, sent) in &mut state.unacked {
            if let Some(packet) = packet {
                if *sent + rto <= now {
                    *sent = now;
                    resend.push(*packet);
                }
            }
        }
        let pending = state.in_flight > 0;
        if !resend.is_empty() {
            state.stalled += 1;
            if state.stalled > MAX_STALLED_TIMEOUTS {
                let (from, to) = (self.graph.links[link].from, self.graph.links[link].to);
                return Err(SimError::Limit(format!(
                    "link `{}` → `{}` retransmitted {MAX_STALLED_TIMEOUTS} times in a row without an acknowledgement \
                     (the simulator's limit of fruitless retransmissions per link; lower the loss probability)",
                    self.graph.nodes[from].name, self.graph.nodes[to].name
                )));
            }
        }
        for packet in resend.drain(..) {
            self.links[link].stats.retransmissions += 1;
            self.report.retransmissions += 1;
            self.transmit(link, packet);
        }
        self.resend = resend;
        if pending {
            self.links[link].timer_armed = true;
            self.events.push(now + rto, Event::Timeout { link: link as u32 });
        }
        Ok(())
    }

    /// The receiver of `link` acknowledges what it has received so far.
    fn send_ack(&mut self, link: usize) {
        let state = &mut self.links[link];
        state.unacknowledged = 0;
        let (cum, sack) = (state.cum, state.sack);
        if self.chance(self.config.loss) {
            self.report.lost += 1;
        } else {
            self.events.push(self.now + self.latency, Event::Ack { link: link as u32, cum, sack });
        }
    }

    /// An acknowledgement reaches the sender of `link`.
    fn acknowledged(&mut self, link: usize, cum: u32, sack: u64) -> Result<(), SimError> {
        let state = &mut self.links[link];
        let mut progress = false;
        let mut ack = |state: &mut LinkState, seq: u32| {
            if seq < state.base || seq >= state.next_seq {
                return;
            }
            if let Some((entry @ Some(_), _)) = state.unacked.get_mut((seq - state.base) as usize) {
                if let Some(packet) = entry.take() {
                    self.packets.release(packet);
                }
                state.in_flight -= 1;
                progress = true;
            }
        };
        for seq in state.base..cum.min(state.next_seq) {
            ack(state, seq);
        }
        let mut bits = sack;
        while bits != 0 {
            ack(state, cum.saturating_add(1 + bits.trailing_zeros()));
            bits &= bits - 1;
        }
        while let Some((None, _)) = state.unacked.front() {
            state.unacked.pop_front();
            state.base += 1;
        }
        if progress {
            self.links[link].stalled = 0;
            self.pump(link)?;
        }
        Ok(())
    }

    fn deliver(&mut self, link: usize, packet: u32) -> Result<(), SimError> {
        let to = self.graph.links[link].to;
        let (seq, eos, entries) = {
            let p = self.packets.get(packet);
            (p.seq, p.eos, p.entries)
        };
        // Every copy counts towards an acknowledgement (which may itself be lost).
        let state = &mut self.links[link];
        let fresh = state.receive(seq)?;
        state.unacknowledged += 1;
        if !fresh || eos || state.sack != 0 || state.unacknowledged >= self.ack_every {
            self.send_ack(link);
        } else if !state.ack_armed {
            state.ack_armed = true;
            self.events.push(self.now + self.ack_delay, Event::AckDelay { link: link as u32 });
        }
        if self.graph.nodes[to].kind == NodeKind::Reducer && !eos {
            self.report.packets_at_reducer += 1;
            self.report.bytes_at_reducer += self.packet_bytes[entries as usize];
            self.report.entries_at_reducer += u64::from(entries);
        }
        let state = &mut self.links[link];
        if state.eos_received {
            self.report.duplicates_dropped += 1;
            return Ok(());
        }
        if eos {
            state.eos_received = true;
            self.nodes[to].children_done += 1;
            if self.nodes[to].children_done == self.graph.nodes[to].downlinks.len() {
                self.finish_node(to)?;
            }
            return Ok(());
        }
        // Contribution tracking: a copy of a packet already merged is dropped before any
        // slot is touched (not needed when every field is idempotent).
        if !fresh && self.dedup {
            self.report.duplicates_dropped += 1;
            return Ok(());
        }
        match self.graph.nodes[to].kind {
            NodeKind::Switch => self.switch_entries(to, packet),
            NodeKind::Reducer => {
                let mut data = std::mem::take(&mut self.scratch);
                data.clear();
                widen_into(self.packets.data(packet), &mut data);
                let result = self.reduce_entries(&data);
                self.scratch = data;
                result
            }
            NodeKind::Mapper => Err(InternalError::new("a packet delivered to a mapper").into()),
        }
    }

    /// Asks for what the events after this one will touch to be brought into the cache, so
    /// that their misses overlap this event's work (a network's switch tables and packets in
    /// flight together are larger than a core's cache): the packet of the delivery
    /// [`PREFETCH_PACKET_AHEAD`] events on, and the table rows for the keys of the delivery
    /// [`PREFETCH_ROWS_AHEAD`] events on (whose packet was asked for earlier). Events are
    /// peeked at, never moved: this changes nothing but timing.
    fn prefetch_next(&self) {
        if let Some(Event::Deliver { packet, .. }) = self.events.peek_nth(PREFETCH_PACKET_AHEAD) {
            self.packets.prefetch(packet);
        }
        let Some(Event::Deliver { link, packet }) = self.events.peek_nth(PREFETCH_ROWS_AHEAD) else { return };
        let node = &self.nodes[self.graph.links[link as usize].to];
        let Some(table) = &node.table else { return };
        for key in self.packets.data(packet).iter().step_by(self.stride) {
            table.prefetch(node.slot_map.slot(key.get()));
        }
    }

    /// A switch runs a packet's entries through its pipeline and forwards the collisions.
    fn switch_entries(&mut self, node: usize, packet: u32) -> Result<(), SimError> {
        let slot_map = self.nodes[node].slot_map;
        let table = self.nodes[node].table.as_mut().ok_or_else(|| InternalError::new("a switch without a table"))?;
        let data = self.packets.data(packet);
        self.collided.clear();
        let merged =
            self.pipeline.execute_packet(table, data, self.stride, |_, key| slot_map.slot(key), &mut self.collided);
        self.report.switch_merges += merged;
        self.nodes[node].merged += merged;
        self.nodes[node].unmerged += self.collided.len() as u64;
        if self.collided.is_empty() {
            return Ok(());
        }
        self.report.collisions += self.collided.len() as u64;
        let mut entries = std::mem::take(&mut self.scratch);
        entries.clear();
        for index in &self.collided {
            let at = *index as usize * self.stride;
            widen_into(&data[at..at + self.stride], &mut entries);
        }
        let mut result = Ok(());
        for entry in entries.chunks_exact(self.stride) {
            result = self.forward(node, entry);
            if result.is_err() {
                break;
            }
        }
        self.scratch = entries;
        result
    }

    /// The reducer merges a packet's entries with the interpreter.
    fn reduce_entries(&mut self, data: &[u64]) -> Result<(), SimError> {
        let started = Instant::now();
        for entry in data.chunks_exact(self.stride) {
            if self.program.insertion.is_some() {
                self.report.values_at_reducer += u64::from(self.program.run_values(|i| entry[1 + i]));
            }
            let state = self.program.decode_state(&entry[1..])?;
            let reduced = self.reduced.entry(entry[0]).or_insert_with(|| self.plan.identity.clone());
            *reduced = merge(&self.interp, self.plan, entry[0], std::mem::take(reduced), state)?;
        }
        self.reducing += started.elapsed().as_secs_f64();
        Ok(())
    }

    /// Appends an entry to the open packet of the uplink its key routes to.
    fn forward(&mut self, node: usize, entry: &[u64]) -> Result<(), SimError> {
        let uplinks = &self.graph.nodes[node].uplinks;
        let link = match uplinks[..] {
            [only] => only,
            _ => uplinks[(mix64(entry[0] ^ 0x5bd1_e995) % uplinks.len() as u64) as usize],
        };
        // A packet carries one entry per lane: an entry whose lane the open packet already
        // carries starts the next packet.
        let lane = self.lanes.of(entry[0]);
        if let Some(open) = self.links[link].open {
            let lanes = self.lanes;
            if self.packets.data(open).iter().step_by(self.stride).any(|key| lanes.of(key.get()) == lane) {
                self.seal(link);
                self.pump(link)?;
            }
        }
        let packet = match self.links[link].open {
            Some(packet) => packet,
            None => {
                let packet = self.packets.alloc();
                self.links[link].open = Some(packet);
                packet
            }
        };
        self.packets.push_entry(packet, entry)?;
        if self.packets.get(packet).entries == self.entries_per_packet {
            self.seal(link);
            self.pump(link)?;
        }
        Ok(())
    }

    /// Queues the link's open packet for sending.
    fn seal(&mut self, link: usize) {
        let state = &mut self.links[link];
        if let Some(packet) = state.open.take() {
            state.queue.push_back(packet);
        }
    }

    /// Every child has finished: read the table out, then end the node's streams.
    fn finish_node(&mut self, node: usize) -> Result<(), SimError> {
        if self.graph.nodes[node].kind != NodeKind::Switch {
            return Ok(());
        }
        let mut table = self.nodes[node].table.take().ok_or_else(|| InternalError::new("a switch without a table"))?;
        let mut entry = Vec::with_capacity(self.stride);
        // Lanes in turn (the first occupied slot of every lane, then the second, ...), so that
        // consecutive entries have different lanes and fill packets (a packet carries one
        // entry per lane).
        let lane_slots = self.nodes[node].slot_map.lane_slots.max(1);
        let mut by_lane: Vec<Vec<usize>> = vec![Vec::new(); self.entries_per_packet as usize];
        for slot in table.occupied() {
            if let Some(lane) = by_lane.get_mut(slot / lane_slots) {
                lane.push(slot);
            } else {
                bail_internal!("slot {slot} is beyond the switch's {} lanes", self.entries_per_packet);
            }
        }
        let rounds = by_lane.iter().map(Vec::len).max().unwrap_or(0);
        let order = (0..rounds).flat_map(|round| by_lane.iter().filter_map(move |slots| slots.get(round).copied()));
        for slot in order.collect::<Vec<usize>>() {
            if let Some((key, words)) = table.resident(slot) {
                entry.clear();
                entry.push(key);
                widen_into(words, &mut entry);
                self.report.flushed_entries += 1;
                self.nodes[node].flushed_entries += 1;
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

    pub(super) fn report(&mut self, wall: f64) -> Report {
        let mut report = std::mem::take(&mut self.report);
        // Results: the merged states per key, compared field by field (see `close`). The
        // states are compared rather than finished results: a fixed-point error bound holds
        // for the merged fields, and what `finish` makes of them (or a fault in it) is the
        // program's, as on the host.
        let mut mismatched = 0u64;
        if self.config.check_reference {
            let mut keys: Vec<&u64> = self.reference.keys().chain(self.reduced.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let same =
                    match (self.reduced.get(key), self.reference.get(key)) {
                        (Some(got), Some(want)) => {
                            let folded = self.folded.get(key).copied().unwrap_or_default();
                            got.len() == want.len()
                                && self.plan.state.fields.iter().zip(got.iter().zip(want)).all(|(field, (g, w))| {
                                    close(g, w, field.merge, self.program.fixed_point_scale, folded)
                                })
                        }
                        _ => false,
                    };
                mismatched += u64::from(!same);
            }
        }
        report.distinct_keys = self.reduced.len() as u64;
        report.mismatched_keys = mismatched;
        report.result_matches_reference = self.config.check_reference && mismatched == 0;
        report.ideal_entries_at_reducer += self.subtree_keys.count();
        if let Some(chain) = self.program.insertion {
            report.values_bound_at_reducer = u64::from(chain.k) * report.ideal_entries_at_reducer;
            if report.pipeline_passes > 0 {
                report.line_rate_fraction = report.switch_packets as f64 / report.pipeline_passes as f64;
            }
        }
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
        report.per_switch = self
            .graph
            .nodes
            .iter()
            .zip(&self.nodes)
            .filter(|(node, _)| node.kind == NodeKind::Switch)
            .map(|(node, state)| SwitchReport {
                name: node.name.clone(),
                merged: state.merged,
                unmerged: state.unmerged,
                flushed: state.flushed_entries,
            })
            .collect();
        let network = (wall - self.generation - self.reducing).max(1e-9);
        report.network_packets_per_second = transmissions as f64 / network;
        report
    }
}

/// What the reference fold saw of one key: the entries folded, and the sum of the magnitudes
/// of their float values (which bounds the float fold's own rounding).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Folded {
    entries: u64,
    magnitude: f64,
}

impl Folded {
    fn add(&mut self, state: &[Slot]) {
        self.entries += 1;
        for slot in state {
            let scalars = match slot {
                Slot::Scalar(scalar) => std::slice::from_ref(scalar),
                Slot::Array(items) => &items[..],
            };
            for scalar in scalars {
                if let Scalar::Float(_, x) = scalar {
                    if x.is_finite() {
                        self.magnitude += x.abs();
                    }
                }
            }
        }
    }
}

/// Whether a merged field of the network (`got`) agrees with the reference's (`want`).
/// Integers and bools exactly. A float carried in fixed point with scale `S` (spec section
/// 15.5) is rounded once per entry, when encoded, and then merged exactly, so:
/// - an `add` field over `N` entries is within `N / (2S)` of the exact sum;
/// - a `min` or `max` field is one entry's value, within `1 / (2S)`;
///
/// and the reference, a float fold, is itself within `N * eps * sum |x|` of the exact value
/// (`eps` of the field's float type);
/// both bounds are allowed, with a margin of a few units in the last place for decoding.
fn close(got: &Slot, want: &Slot, op: MergeOp, scale: Option<u64>, folded: Folded) -> bool {
    let scalar = |x: &Scalar, y: &Scalar| match (x, y, scale) {
        (Scalar::Float(ty, x), Scalar::Float(_, y), Some(scale)) => {
            if x == y || (x.is_nan() && y.is_nan()) {
                return true;
            }
            let entries = folded.entries.max(1) as f64;
            let rounding = match op {
                MergeOp::Add => entries / (2.0 * scale as f64),
                _ => 1.0 / (2.0 * scale as f64),
            };
            let epsilon = match ty {
                naas_lang::types::FloatTy::F32 => f64::from(f32::EPSILON),
                naas_lang::types::FloatTy::F64 => f64::EPSILON,
            };
            let float_fold = (entries + 4.0) * epsilon * (folded.magnitude + x.abs().max(y.abs()));
            (x - y).abs() <= rounding + float_fold
        }
        _ => x.same(*y),
    };
    match (got, want) {
        (Slot::Scalar(x), Slot::Scalar(y)) => scalar(x, y),
        (Slot::Array(x), Slot::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| scalar(x, y)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    /// A sequence number past the receive window cannot come from a correct sender: it is an
    /// internal error, not a packet silently taken as new or as a copy.
    #[test]
    fn a_sequence_number_past_the_window_is_an_internal_error() {
        let mut link = LinkState::default();
        assert_eq!(link.receive(0), Ok(true));
        assert_eq!(link.receive(0), Ok(false));
        assert_eq!(link.receive(SEQ_SPAN), Ok(true));
        let error = link.receive(SEQ_SPAN + 2).unwrap_err();
        assert_eq!(error.message, format!("sequence number {} is beyond the receive window at 1", SEQ_SPAN + 2));
        assert_eq!(SimError::from(error).to_string().split(':').next(), Some("internal compiler error"));
    }

    /// The subtree of every node of a chain as long as the node limit allows: a walk to the
    /// reducer from every node took quadratic time (a chain of 100,000 nodes: 49 s).
    #[test]
    fn subtrees_of_a_long_chain_take_linear_time() {
        use super::super::topology::{Topology, MAX_NODES};
        let depth = u32::try_from(MAX_NODES - 2).unwrap();
        let graph = Topology::Tree { fanout: 1, depth }.graph();
        let started = Instant::now();
        let child = root_children(&graph);
        assert!(started.elapsed().as_secs_f64() < 5.0, "{:?}", started.elapsed());
        // Node 1 is the reducer's only child; every other node is in its subtree.
        assert_eq!(child[0], 0);
        assert!(child[1..].iter().all(|c| *c == 1));
        let spread = Topology::parse("leaf-spine:leaves=3,spines=2,hosts=2").unwrap().graph();
        let child = root_children(&spread);
        // Everything meets at the top-of-rack switch, node 1.
        assert!(child[1..].iter().all(|c| *c == 1), "{child:?}");
    }

    #[test]
    fn the_receive_window_tells_new_packets_from_copies() {
        let mut link = LinkState::default();
        let mut seen = std::collections::BTreeSet::new();
        let mut rng = Rng::new(9);
        // Arrivals in a random order within the window, with copies.
        let mut base = 0u32;
        for _ in 0..5_000 {
            let seq = base + (rng.next_u64() % u64::from(SEQ_SPAN)) as u32;
            let seq = seq.max(link.cum.saturating_sub(3));
            assert_eq!(link.receive(seq).unwrap(), seen.insert(seq), "seq {seq}");
            assert!((0..link.cum).all(|s| seen.contains(&s)));
            assert!(!seen.contains(&link.cum));
            base = link.cum;
        }
        assert!(link.cum > 1_000);
        assert!(link.receive(link.cum + SEQ_SPAN + 1).is_err());
    }
}
