//! A discrete-event network simulator for in-network aggregation. Mappers at the leaves
//! generate records and lift them (IR interpreter), or take the partial states a caller
//! supplies ([`simulate_entries`]), and send packets of (key, partial state) entries;
//! switches run the *pipeline program* (through [`crate::pipeline_sim`]) on a slot table of
//! limited size, forward colliding entries upward unmerged, and flush their table when every
//! child has finished; the reducer merges (IR interpreter) and finishes. The result is checked
//! against a centralised fold of the same entries.
//!
//! The transport keeps the result exact under loss, duplication and reordering:
//! - every packet on a link carries a sequence number; the sender keeps unacknowledged
//!   packets and retransmits them after a timeout; at most `window` packets are in flight, and
//!   none more than 64 sequence numbers past the oldest unacknowledged one;
//! - the receiver keeps a cumulative sequence number (everything below it received) and a
//!   64-bit bitmap of what it has received beyond it, which thanks to the 64-number bound
//!   tells it exactly whether any arriving packet is new or a copy. Its acknowledgements carry
//!   both (cumulative plus selective), and are delayed: sent after every `window / 2` packets,
//!   at once for a copy, a gap or end-of-stream, else shortly after the first packet not yet
//!   acknowledged;
//! - a sender sends end-of-stream only once all its data packets are acknowledged, so the
//!   receiver has seen every packet of the link when end-of-stream arrives, and copies that
//!   arrive later are dropped;
//! - when the state has a non-idempotent field (add), the receiver drops copies of packets it
//!   has already merged *before* any slot is touched (the contribution tracking). With
//!   idempotent fields only (min/max/or/and), copies are merged again, which changes nothing.
//!
//! `sim.rs` runs the simulation, `events.rs` is its event queue, `packets.rs` its packet
//! storage, `source.rs` where entries come from, `report.rs` what it reports.

mod dist;
pub(crate) mod error;
mod events;
mod packets;
mod plot;
mod report;
mod sim;
mod source;
mod topology;

pub use dist::{Dist, KeySampler, MAX_ZIPF_TABLE_KEYS};
pub use error::{DistError, SimError, SlotIndexError, QUOTE_CHARS};
pub use plot::plot_svg;
pub use report::{counted, LinkReport, Report, SwitchReport, TierReport};
pub use source::MapperEntries;
pub use topology::{
    FileNode, FileTopology, Graph, NodeKind, Topology, TopologyError, MAX_FILE_BYTES, MAX_LINKS, MAX_NODES,
};

use std::time::Instant;

use naas_ir::interp::Slot;
use naas_ir::Compiled;
use serde::Serialize;

use self::error::quote;
use self::sim::{Sim, SEQ_SPAN};
use self::source::{Generator, Source};
use crate::program::PipelineProgram;
use crate::word::{fits_u32, Word};

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
    /// Packets in flight per link (1 to 64: the receiver's acknowledgement window).
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

/// How a switch maps a key to a slot of its table. Serialised (in reports) as the
/// `--slot-index` flag spells it: `hash` or `direct`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
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
    pub fn parse(text: &str) -> Result<SlotIndex, SlotIndexError> {
        match text.trim() {
            "hash" => Ok(SlotIndex::Hash),
            "direct" => Ok(SlotIndex::Direct),
            other => Err(SlotIndexError { text: quote(other).into_owned() }),
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

/// Simulates aggregate `plan_index` of `compiled`, lowered to `pipeline`, on `config`: the
/// mappers generate `config.records` records with keys from `config.dist` over
/// `0..config.keys`.
pub fn simulate(
    compiled: &Compiled,
    plan_index: usize,
    pipeline: &PipelineProgram,
    config: &SimConfig,
) -> Result<Report, SimError> {
    check_config(compiled, plan_index, pipeline, config)?;
    check_keys(pipeline, config.keys)?;
    let sampler = KeySampler::new(config.dist, config.keys);
    let source = Source::Generated(Generator::new(sampler, pipeline.fixed_point_scale, config.records));
    let mappers = config.topology.mappers() as u64;
    let counts = (0..mappers).map(|m| config.records / mappers + u64::from(m < config.records % mappers)).collect();
    let workload = Workload {
        source,
        counts,
        keys: config.keys,
        dist: config.dist.to_string(),
        dense_keys: Some(u64::from(config.keys)),
    };
    let (report, reduced) = run(compiled, plan_index, pipeline, config, workload)?;
    finish_all(compiled, plan_index, reduced)?;
    Ok(report)
}

/// The reducer finishes every key, in key order, as a job does: a fault in `finish` (a
/// division by a zero sum, say) is the program's, reported with its key and location, not a
/// difference between the network and the reference (which compares merged states).
fn finish_all(compiled: &Compiled, plan_index: usize, reduced: FastMap<u64, Vec<Slot>>) -> Result<(), SimError> {
    let plan = &compiled.aggregates[plan_index];
    let interp = naas_ir::interp::Interpreter::new(&compiled.optimized);
    let mut reduced: Vec<(u64, Vec<Slot>)> = reduced.into_iter().collect();
    reduced.sort_unstable_by_key(|(key, _)| *key);
    for (key, state) in reduced {
        interp.call(plan.finish, state).map_err(|error| SimError::Fault { key, error })?;
    }
    Ok(())
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
) -> Result<EntriesOutcome, SimError> {
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
    let workload = Workload {
        source,
        counts,
        keys: key_space,
        dist: "supplied".to_string(),
        dense_keys: dense.then_some(u64::from(config.keys)),
    };
    let (report, reduced) = run(compiled, plan_index, pipeline, config, workload)?;
    let mut reduced: Vec<(u64, Vec<Slot>)> = reduced.into_iter().collect();
    reduced.sort_unstable_by_key(|(key, _)| *key);
    Ok(EntriesOutcome { report, reduced })
}

/// A rejected setting, as [`SimError::Invalid`] carries it.
fn invalid(message: String) -> SimError {
    SimError::Invalid(message)
}

/// Checks what both entry points share: the aggregate, the probabilities and the links.
fn check_config(
    compiled: &Compiled,
    plan_index: usize,
    pipeline: &PipelineProgram,
    config: &SimConfig,
) -> Result<(), SimError> {
    let plan = compiled
        .aggregates
        .get(plan_index)
        .ok_or_else(|| invalid(format!("no aggregate number {plan_index} in this program")))?;
    if plan.name != pipeline.aggregate {
        return Err(invalid(format!("the pipeline program is for `{}`, not `{}`", pipeline.aggregate, plan.name)));
    }
    pipeline.profile.validate().map_err(|error| invalid(error.to_string()))?;
    config.topology.check().map_err(|error| invalid(error.to_string()))?;
    for (name, p) in [("loss", config.loss), ("dup", config.dup), ("reorder", config.reorder)] {
        if !(0.0..1.0).contains(&p) {
            return Err(invalid(format!("`{name}` must be a probability in [0, 1), not {}", quote(&p.to_string()))));
        }
    }
    if config.loss > MAX_LOSS {
        return Err(invalid(format!(
            "`loss` must be at most {MAX_LOSS}, not {}: the simulator's limit, as above it a packet and its \
             acknowledgement rarely both get through and a link would retransmit millions of times",
            quote(&config.loss.to_string())
        )));
    }
    if let Some(slots) = config.table_slots {
        if slots == 0 || slots > MAX_TABLE_SLOTS {
            return Err(invalid(format!(
                "`slots` must be between 1 and {MAX_TABLE_SLOTS} slots per table, not {slots}"
            )));
        }
    }
    if config.window == 0 || config.window > SEQ_SPAN {
        return Err(invalid(format!("`window` must be between 1 and {SEQ_SPAN} packets, not {}", config.window)));
    }
    // Simulated time is an integer of picoseconds: a link slower than 1 Mb/s or a latency
    // over a second would let a long run's clock overflow.
    if !(0.001..=1e6).contains(&config.link_gbps) {
        return Err(invalid(format!(
            "`link_gbps` must be between 0.001 and 1000000, not {}",
            quote(&config.link_gbps.to_string())
        )));
    }
    if config.latency_ns > 1_000_000_000 {
        return Err(invalid(format!(
            "`latency_ns` must be at most 1000000000 (one second), not {}",
            config.latency_ns
        )));
    }
    Ok(())
}

/// A key space `0..keys` must be non-empty and fit the profile's key bits.
fn check_keys(pipeline: &PipelineProgram, keys: u32) -> Result<(), SimError> {
    let max = pipeline.profile.max_key().saturating_add(1);
    if keys == 0 {
        return Err(invalid("the key space is empty: `keys` must be at least 1".to_string()));
    }
    if u64::from(keys) > max {
        return Err(invalid(format!(
            "{keys} keys do not fit the profile `{}`: its `key_bits` = {} gives key identifiers 0 to {}, \
             so at most {max} distinct keys (one identifier is reserved for an empty slot); use a profile \
             with more `key_bits`, or fewer keys",
            pipeline.profile.name,
            pipeline.profile.key_bits,
            max - 1
        )));
    }
    Ok(())
}

/// The highest loss probability the simulator accepts. A retransmission round succeeds
/// when a copy and its acknowledgement both get through, with probability `(1 - loss)^2`;
/// at 0.99 that is 1 in 10,000 rounds and a long run needs millions of rounds, and beyond it
/// a link's watchdog (`sim.rs`'s limit of a million fruitless timeouts in a row) would stop
/// the run. The limit is documented in spec section 15.6.
pub const MAX_LOSS: f64 = 0.99;

/// The most slots a switch table may have (`--slots`): 2^26, the most any register memory
/// of a valid profile described here holds for a one-word state, well above Tofino 1's
/// 327,680 one-word slots. Tables grow with the keys they see, so this bounds slot numbers,
/// not memory.
pub const MAX_TABLE_SLOTS: u64 = 1 << 26;

/// What the mappers send, for [`run`].
struct Workload {
    source: Source,
    /// Entries per mapper, in graph order.
    counts: Vec<u64>,
    /// The key space and distribution, as reported.
    keys: u32,
    dist: String,
    /// A bound every key is below, when known (the fan-in bound then counts keys in bitmaps).
    dense_keys: Option<u64>,
}

/// Runs the simulation of `workload`. Returns the report and the reducer's merged state per
/// key. Packets and tables hold 32-bit words when the profile's words and keys fit them
/// ([`fits_u32`]), else 64-bit ones.
fn run(
    compiled: &Compiled,
    plan_index: usize,
    pipeline: &PipelineProgram,
    config: &SimConfig,
    workload: Workload,
) -> Result<(Report, FastMap<u64, Vec<Slot>>), SimError> {
    if fits_u32(&pipeline.profile) {
        run_with::<u32>(compiled, plan_index, pipeline, config, workload)
    } else {
        run_with::<u64>(compiled, plan_index, pipeline, config, workload)
    }
}

fn run_with<W: Word>(
    compiled: &Compiled,
    plan_index: usize,
    pipeline: &PipelineProgram,
    config: &SimConfig,
    workload: Workload,
) -> Result<(Report, FastMap<u64, Vec<Slot>>), SimError> {
    // `check_config` bounds a requested table; what fits the register memory is clamped to
    // the same bound.
    let slots = config.table_slots.unwrap_or(pipeline.key_slots().0).clamp(1, MAX_TABLE_SLOTS) as usize;
    // Every lane has its own slots in the switch's table, whose rows are numbered in 32 bits.
    let lanes = pipeline.entries_per_packet() as usize;
    if slots.saturating_mul(lanes) > u32::MAX as usize - 1 {
        return Err(invalid(format!(
            "`slots` ({slots} per lane) times the program's {lanes} lanes exceeds the simulator's limit of 2^32 - 2 slots per switch; choose fewer slots or `--lanes`"
        )));
    }
    let graph = config.topology.graph();
    let (keys, dist) = (workload.keys, workload.dist.clone());
    let mut sim = Sim::<W>::new(compiled, plan_index, pipeline, config, graph, slots, workload);
    sim.report.keys = keys;
    sim.report.dist = dist;
    let started = Instant::now();
    sim.run()?;
    let wall = started.elapsed().as_secs_f64();
    let report = sim.report(wall);
    Ok((report, std::mem::take(&mut sim.reduced)))
}

/// The simulator's own tables: keys are the simulator's (not adversarial), so FxHash's one
/// multiply per word is enough, and its determinism keeps runs reproducible.
type FastMap<K, V> = rustc_hash::FxHashMap<K, V>;

/// `x mod d` for a fixed `d`, without a division: a switch computes the slot of every entry,
/// and a 64-bit division costs tens of cycles. Exact: see [`Modulus::reduce`].
#[derive(Clone, Copy, Debug)]
pub struct Modulus {
    divisor: u64,
    /// `floor((2^64 - 1) / divisor)`.
    reciprocal: u64,
}

impl Modulus {
    /// `d` must not be 0 (it is taken as 1).
    pub fn new(d: u64) -> Modulus {
        let divisor = d.max(1);
        Modulus { divisor, reciprocal: u64::MAX / divisor }
    }

    /// `x mod d`. With `m = floor((2^64 - 1) / d)`, the estimate `q = floor(x * m / 2^64)` is
    /// at most `floor(x / d)` (as `m / 2^64 < 1 / d`) and more than `x / d - 2` (as
    /// `m > (2^64 - 1) / d - 1` and `x < 2^64`), so `x - q * d` is below `3 * d` and at most
    /// two subtractions correct it.
    #[inline]
    pub fn reduce(self, x: u64) -> u64 {
        let q = ((u128::from(x) * u128::from(self.reciprocal)) >> 64) as u64;
        let mut r = x - q * self.divisor;
        while r >= self.divisor {
            r -= self.divisor;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use naas_stdx::Rng;

    #[test]
    fn modulus_equals_the_remainder() {
        let mut rng = Rng::new(11);
        let edges = [0, 1, 2, 3, 7, u64::MAX, u64::MAX - 1, 1 << 63, (1 << 63) - 1, u64::from(u32::MAX)];
        let mut divisors: Vec<u64> = vec![1, 2, 3, 250, 750, 1_000, 81_920, (1 << 32) - 2, u64::MAX, (1 << 63) + 1];
        divisors.extend((0..200).map(|_| rng.next_u64() >> (rng.next_u64() % 64)).filter(|d| *d > 0));
        for d in divisors {
            let modulus = Modulus::new(d);
            let around = [d - 1, d, d.wrapping_add(1), d.wrapping_mul(2), d.wrapping_mul(3).wrapping_sub(1)];
            for x in edges.iter().chain(&around).copied().chain((0..200).map(|_| rng.next_u64())) {
                assert_eq!(modulus.reduce(x), x % d, "{x} mod {d}");
            }
        }
    }
}
