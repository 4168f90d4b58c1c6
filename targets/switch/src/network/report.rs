//! The simulation report: traffic per link and tier, faults and the protocol's work, the
//! result check and timings; serialised by `naasc simulate --report`, summarised by
//! [`Report::text`].

use serde::Serialize;

use super::SlotIndex;

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

/// What one switch did with the entries it received.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SwitchReport {
    pub name: String,
    /// Entries merged into one of its slots (including those that claimed an empty slot).
    pub merged: u64,
    /// Entries forwarded unmerged because their slot held another key (a collision or a full
    /// table: a slot is freed only at end-of-stream).
    pub unmerged: u64,
    /// Entries read out of its tables at end of stream.
    pub flushed: u64,
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
    /// Lanes of the pipeline program (entry `i` of a packet is merged in lane `i`'s table).
    pub lanes: u32,
    /// Passes through the pipeline per packet; each extra pass is charged (a switch port
    /// aggregates at `line_rate_fraction` = 1 / passes of its line rate).
    pub passes: u32,
    /// `1 / passes`; with an insertion chain, measured: transmissions into switches divided
    /// by the pipeline passes they took (`switch_packets / pipeline_passes`).
    pub line_rate_fraction: f64,
    /// With an insertion chain (top-k / bottom-k), its elements K; 0 without one.
    pub insertion_chain: u32,
    /// Transmissions into switches, and the pipeline passes they were charged (each packet:
    /// `passes`, times the most values an entry of it inserts with an insertion chain).
    pub switch_packets: u64,
    pub pipeline_passes: u64,
    /// With an insertion chain: the values (run elements before their padding) of the
    /// entries the reducer merged (copies dropped by the protocol excluded), and their
    /// fan-in bound: K per key per child of the reducer (`insertion_chain` x
    /// `ideal_entries_at_reducer`).
    pub values_at_reducer: u64,
    pub values_bound_at_reducer: u64,
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
    /// Wall-clock time of the whole simulation, of drawing and lifting records (the mappers'
    /// staging rounds, with the reference fold), and of the reducer's interpreter merges.
    pub wall_seconds: f64,
    pub generation_seconds: f64,
    pub reducer_seconds: f64,
    /// Link transmissions per second of wall-clock time spent in the network (wall time minus
    /// generation and reducer time).
    pub network_packets_per_second: f64,
    pub links: Vec<LinkReport>,
    pub tiers: Vec<TierReport>,
    /// Per switch, in graph order: entries merged, forwarded unmerged, and flushed.
    pub per_switch: Vec<SwitchReport>,
}

/// `n` and the noun, singular for one (`1 link`, `3 links`): report texts print counts that
/// are often 1 (a single switch, one entry per packet, one link in the top tier).
pub fn counted(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

impl Report {
    /// A short human-readable summary.
    pub fn text(&self) -> String {
        let mut out = format!(
            "simulated {} on {} ({}, {}, {} per lane, {} index), {} over {} ({})\n",
            self.aggregate,
            self.topology,
            counted(self.mappers, "mapper", "mappers"),
            counted(self.switches, "switch", "switches"),
            counted(self.table_slots, "slot", "slots"),
            self.slot_index,
            counted(self.records_in, "record", "records"),
            counted(self.keys, "key", "keys"),
            self.dist
        );
        if self.insertion_chain > 0 {
            out.push_str(&format!(
                "  pipeline: {} ({} per packet), an insertion chain of {}: {} per inserted value; {} into switches took {} ({:.3} of line rate)\n",
                counted(self.lanes, "lane", "lanes"),
                counted(self.entries_per_packet, "entry", "entries"),
                self.insertion_chain,
                counted(self.passes, "pass", "passes"),
                counted(self.switch_packets, "packet", "packets"),
                counted(self.pipeline_passes, "pass", "passes"),
                self.line_rate_fraction
            ));
        } else {
            out.push_str(&format!(
                "  pipeline: {} ({} per packet), {} ({})\n",
                counted(self.lanes, "lane", "lanes"),
                counted(self.entries_per_packet, "entry", "entries"),
                counted(self.passes, "pass", "passes"),
                if self.passes <= 1 {
                    "line rate".to_string()
                } else {
                    format!("recirculated: {:.3} of line rate", self.line_rate_fraction)
                }
            ));
        }
        out.push_str(&format!(
            "  entries: {} from mappers, {} at the reducer (ideal {}): reduction {:.1}x of an ideal {:.1}x\n",
            self.entries_from_mappers,
            self.entries_at_reducer,
            self.ideal_entries_at_reducer,
            self.traffic_reduction,
            self.ideal_traffic_reduction
        ));
        if self.insertion_chain > 0 {
            out.push_str(&format!(
                "  sorted runs at the reducer: {} merged, at most {} per key per child: fan-in bound {} values ({})\n",
                counted(self.values_at_reducer, "value", "values"),
                self.insertion_chain,
                self.values_bound_at_reducer,
                if self.values_at_reducer <= self.values_bound_at_reducer {
                    "within"
                } else {
                    "above it: entries forwarded unmerged"
                }
            ));
        }
        out.push_str(&format!(
            "  bytes at the reducer: {} in {}; merged in switches {}, forwarded unmerged {} (slot held by another key), flushed {}\n",
            self.bytes_at_reducer,
            counted(self.packets_at_reducer, "packet", "packets"),
            self.switch_merges,
            self.collisions,
            self.flushed_entries
        ));
        out.push_str(&format!(
            "  faults: {} lost, {} duplicated, {} reordered; {}, {} dropped\n",
            self.lost,
            self.duplicated,
            self.reordered,
            counted(self.retransmissions, "retransmission", "retransmissions"),
            counted(self.duplicates_dropped, "copy", "copies")
        ));
        // Per switch (all of them in the JSON report): each one when there are few, else the
        // one that forwarded the most entries unmerged.
        if self.per_switch.len() <= 16 {
            for switch in &self.per_switch {
                out.push_str(&format!(
                    "  switch {}: merged {}, forwarded unmerged {}, flushed {}\n",
                    switch.name, switch.merged, switch.unmerged, switch.flushed
                ));
            }
        } else if let Some(worst) = self.per_switch.iter().max_by_key(|s| s.unmerged) {
            out.push_str(&format!(
                "  {} switches (each in --report); most unmerged at {}: merged {}, forwarded unmerged {}, flushed {}\n",
                self.per_switch.len(),
                worst.name,
                worst.merged,
                worst.unmerged,
                worst.flushed
            ));
        }
        for tier in &self.tiers {
            out.push_str(&format!(
                "  tier {} ({}): {}, {}, {}, {}\n",
                tier.tier,
                tier.name,
                counted(tier.links, "link", "links"),
                counted(tier.packets, "packet", "packets"),
                counted(tier.bytes, "byte", "bytes"),
                counted(tier.entries, "entry", "entries")
            ));
        }
        out.push_str(&format!(
            "  result matches the centralised reference: {}{}\n",
            self.result_matches_reference,
            if self.mismatched_keys > 0 {
                format!(" ({} differ)", counted(self.mismatched_keys, "key", "keys"))
            } else {
                String::new()
            }
        ));
        out
    }
}
