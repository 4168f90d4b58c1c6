//! What a node does with the entries it receives (spec §18.5): a software switch runs the
//! lowered pipeline program on slot tables ([`naas_target_switch::pipeline_sim`], the code the
//! network simulator runs) and forwards the entries whose slot holds another key unmerged; a
//! host box merges with the JIT-compiled `merge` into an unbounded per-key table. Both read
//! their table out at end of stream.

use naas_runtime::{Aggregation, StateTable};
use naas_target_switch::network::Modulus;
use naas_target_switch::pipeline_sim::{PipelineSim, SlotTable};
use naas_target_switch::PipelineProgram;

use crate::endpoint::lane_of;
use crate::wire;

/// What a hop did, for its report.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct HopCounts {
    /// Entries merged into (or installed in) the node's table.
    pub merges: u64,
    /// Entries forwarded unmerged because their slot held another key (switch only).
    pub collisions: u64,
    /// Entries read out of the table at end of stream.
    pub flushed_entries: u64,
}

/// A merge that failed in the host box's compiled code.
#[derive(Debug, thiserror::Error)]
#[error("merging key {key}: {message}")]
pub struct MergeError {
    pub key: u64,
    pub message: String,
}

/// A software switch: the pipeline program on one slot table per lane.
pub struct SwitchHop {
    sim: PipelineSim,
    table: SlotTable<u64>,
    lanes: u32,
    lane_slots: usize,
    modulus: Modulus,
    stride: usize,
    collided: Vec<u32>,
}

impl SwitchHop {
    /// A switch whose lanes have `slots` slots each (`None`: what the profile's register
    /// memory holds).
    pub fn new(program: &PipelineProgram, slots: Option<u64>) -> SwitchHop {
        let lanes = program.entries_per_packet().max(1);
        let lane_slots = slots.unwrap_or(program.key_slots().0).clamp(1, u64::from(u32::MAX - 1) / u64::from(lanes));
        let lane_slots = usize::try_from(lane_slots).unwrap_or(1);
        SwitchHop {
            sim: PipelineSim::new(program),
            table: SlotTable::new(program, lane_slots * lanes as usize),
            lanes,
            lane_slots,
            modulus: Modulus::new(lane_slots as u64),
            stride: 1 + program.state_words(),
            collided: Vec::new(),
        }
    }

    /// The slot of a key: its lane's table, then the dense key id modulo the lane's slots
    /// (keys are the job's dense ids, as SwitchML's slot indexes are).
    fn slot(lanes: u32, lane_slots: usize, modulus: Modulus, key: u64) -> usize {
        lane_of(key, lanes) * lane_slots + modulus.reduce(key) as usize
    }

    /// Words per entry: the key id, then the state words.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Runs a datagram's entries (`data`: [`SwitchHop::stride`] words each, the key id first)
    /// through the pipeline; the entries that collide are appended to `forward`, whole.
    pub fn apply(&mut self, data: &[u64], counts: &mut HopCounts, forward: &mut Vec<u64>) {
        self.collided.clear();
        let (lanes, lane_slots, modulus) = (self.lanes, self.lane_slots, self.modulus);
        let merged = self.sim.execute_packet(
            &mut self.table,
            data,
            self.stride,
            |_, key| Self::slot(lanes, lane_slots, modulus, key),
            &mut self.collided,
        );
        counts.merges += merged;
        counts.collisions += self.collided.len() as u64;
        for index in &self.collided {
            let at = *index as usize * self.stride;
            if let Some(entry) = data.get(at..at + self.stride) {
                forward.extend_from_slice(entry);
            }
        }
    }

    /// Reads the table out into `out` (entries of [`SwitchHop::stride`] words), lanes in
    /// turn (the first occupied slot of every lane, then the second, ...) so that consecutive
    /// entries fill datagrams, and empties it.
    pub fn flush(&mut self, counts: &mut HopCounts, out: &mut Vec<u64>) {
        let mut by_lane: Vec<Vec<usize>> = vec![Vec::new(); self.lanes as usize];
        for slot in self.table.occupied() {
            if let Some(lane) = by_lane.get_mut(slot / self.lane_slots) {
                lane.push(slot);
            }
        }
        let rounds = by_lane.iter().map(Vec::len).max().unwrap_or(0);
        for round in 0..rounds {
            for slots in &by_lane {
                let Some(slot) = slots.get(round) else { continue };
                if let Some((key, words)) = self.table.resident(*slot) {
                    out.push(key);
                    out.extend_from_slice(words);
                    counts.flushed_entries += 1;
                }
                self.table.clear(*slot);
            }
        }
    }
}

/// A host box: the compiled `merge` on a table with a slot per key id.
pub struct HostHop<'a> {
    aggregation: &'a Aggregation,
    table: StateTable,
    bytes: Vec<u8>,
}

impl<'a> HostHop<'a> {
    pub fn new(aggregation: &'a Aggregation) -> HostHop<'a> {
        HostHop { aggregation, table: StateTable::new(aggregation), bytes: Vec::new() }
    }

    /// Merges a datagram's entries (`stride` words each, the key id first).
    pub fn apply(&mut self, data: &[u64], stride: usize, counts: &mut HopCounts) -> Result<(), MergeError> {
        let size = self.aggregation.state_size();
        for entry in data.chunks_exact(stride.max(1)) {
            let key = entry[0];
            wire::words_to_bytes(entry[1..].iter().copied(), size, &mut self.bytes);
            self.table
                .merge(self.aggregation, &key.to_le_bytes(), &self.bytes)
                .map_err(|error| MergeError { key, message: error.to_string() })?;
            counts.merges += 1;
        }
        Ok(())
    }

    /// Every key's merged state into `out` (the key id, then the state as words), in the
    /// order keys were first met; the table is emptied.
    pub fn flush(&mut self, counts: &mut HopCounts, out: &mut Vec<u64>) {
        let mut words = Vec::new();
        for (key, state) in self.table.entries() {
            let mut id = [0u8; 8];
            id.copy_from_slice(&key[..8.min(key.len())]);
            out.push(u64::from_le_bytes(id));
            wire::bytes_to_words(state, &mut words);
            out.extend_from_slice(&words);
            counts.flushed_entries += 1;
        }
        self.table = StateTable::new(self.aggregation);
    }
}

/// A node's merging half.
pub enum Hop<'a> {
    Switch(Box<SwitchHop>),
    Host(Box<HostHop<'a>>),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use naas_stdx::Rng;
    use naas_target_native::values::Column;
    use naas_target_switch::{lower, LowerOptions, TargetProfile};
    use std::collections::BTreeMap;

    fn reduce() -> Aggregation {
        Aggregation::from_source("reduce.naas", include_str!("../../examples/reduce.naas"), None).unwrap()
    }

    /// `count` partial states of `delay_stats`, each of a few records, on keys `0..keys`: as
    /// host words and as switch words.
    type Entries = Vec<(u64, Vec<u64>)>;

    fn entries(aggregation: &Aggregation, program: &PipelineProgram, count: usize, keys: u64) -> (Entries, Entries) {
        let mut rng = Rng::new(3);
        let (mut host, mut switch) = (Vec::new(), Vec::new());
        for i in 0..count {
            let key = rng.next_u64() % keys;
            let mut table = StateTable::new(aggregation);
            let slot = table.slot(b"k");
            let delays: Vec<i32> = (0..1 + i % 3).map(|_| (rng.next_u64() % 2_000) as i32 - 1_000).collect();
            table.fold(aggregation, &vec![slot; delays.len()], &[Column::I32(&delays)]).unwrap();
            let mut words = Vec::new();
            wire::bytes_to_words(table.state(slot), &mut words);
            host.push((key, words));
            let mut state = aggregation.jit().new_state();
            state.as_mut_bytes().copy_from_slice(table.state(slot));
            switch.push((key, program.encode_state(&aggregation.jit().state_slots(&state)).unwrap()));
        }
        (host, switch)
    }

    fn flat(entries: &[(u64, Vec<u64>)]) -> Vec<u64> {
        entries.iter().flat_map(|(key, words)| std::iter::once(*key).chain(words.iter().copied())).collect()
    }

    /// What a host box holds after merging `entries`, by key.
    fn merged(aggregation: &Aggregation, entries: &[(u64, Vec<u64>)]) -> BTreeMap<u64, Vec<u64>> {
        let mut host = HostHop::new(aggregation);
        let mut counts = HopCounts::default();
        let stride = 1 + entries.first().map_or(0, |(_, words)| words.len());
        host.apply(&flat(entries), stride, &mut counts).unwrap();
        let mut out = Vec::new();
        host.flush(&mut counts, &mut out);
        out.chunks_exact(stride).map(|entry| (entry[0], entry[1..].to_vec())).collect()
    }

    /// A switch whose tables are too small forwards the colliding entries unmerged; what it
    /// forwards and flushes, merged at the next hop, is what merging every entry gives.
    #[test]
    fn a_switch_hop_with_collisions_loses_and_duplicates_nothing() {
        let aggregation = reduce();
        let program =
            lower(aggregation.compiled(), aggregation.index(), &TargetProfile::default(), &LowerOptions::default())
                .unwrap();
        let (host, switch) = entries(&aggregation, &program, 300, 40);
        let want = merged(&aggregation, &host);
        for slots in [Some(1), Some(3), None] {
            let mut hop = SwitchHop::new(&program, slots);
            let mut counts = HopCounts::default();
            let mut out = Vec::new();
            for packet in switch.chunks(program.entries_per_packet() as usize) {
                hop.apply(&flat(packet), &mut counts, &mut out);
            }
            let forwarded = (out.len() / hop.stride()) as u64;
            hop.flush(&mut counts, &mut out);
            let out: Vec<(u64, Vec<u64>)> =
                out.chunks_exact(hop.stride()).map(|entry| (entry[0], entry[1..].to_vec())).collect();
            assert_eq!(counts.merges + counts.collisions, 300, "{slots:?}");
            assert_eq!(counts.collisions, forwarded);
            assert_eq!(slots.is_none(), counts.collisions == 0, "{slots:?}: {counts:?}");
            // The next hop decodes the switch words and merges on the host.
            let decoded: Vec<(u64, Vec<u64>)> = out
                .iter()
                .map(|(key, words)| {
                    let state = aggregation.jit().state_from_slots(&program.decode_state(words).unwrap());
                    let mut host_words = Vec::new();
                    wire::bytes_to_words(state.as_bytes(), &mut host_words);
                    (*key, host_words)
                })
                .collect();
            assert_eq!(merged(&aggregation, &decoded), want, "{slots:?}");
            let mut again = Vec::new();
            hop.flush(&mut counts, &mut again);
            assert!(again.is_empty(), "a flush empties the table");
        }
    }
}
