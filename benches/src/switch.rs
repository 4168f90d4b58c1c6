//! `naas-bench switch`: the switch target's pipeline simulator's entry rate, the network
//! simulator's packet rate, and the traffic reduction at the reducer against the fan-in bound
//! as switch tables shrink. Only the switch crate's public API is used.

use std::time::Instant;

use naas_ir::interp::Interpreter;
use naas_ir::Compiled;
use naas_target_switch::network::{simulate, Dist, Modulus, NodeKind, SimConfig, SimError, SlotIndex, Topology};
use naas_target_switch::pipeline_sim::{PipelineSim, SlotTable};
use naas_target_switch::word::{fits_u32, Word};
use naas_target_switch::{lower, LowerError, LowerOptions, PipelineProgram, TargetProfile};

use crate::error::BenchError;
use crate::paths::REDUCE;

/// Why the switch benchmark stopped.
#[derive(Debug, thiserror::Error)]
pub enum SwitchBenchError {
    #[error("no aggregate number {0} in the program")]
    NoAggregate(usize),
    /// Lifting a generated record faulted in the interpreter.
    #[error("lifting a generated record: {0}")]
    Lift(naas_ir::interp::RuntimeError),
    #[error(transparent)]
    Encode(#[from] naas_target_switch::EncodeError),
    #[error(transparent)]
    Sim(#[from] SimError),
}

/// The benchmark's reference setting: examples/reduce.naas on the default profile.
pub fn run_reduce(records: u64) -> Result<(), BenchError> {
    let compiled = crate::compile(REDUCE.label, REDUCE.source, None)?;
    let pipeline = match lower(&compiled, 0, &TargetProfile::default(), &LowerOptions::default()) {
        Ok(pipeline) => pipeline,
        Err(LowerError::Diagnostics(diagnostics)) => {
            let rendered: String = diagnostics
                .iter()
                .map(|d| naas_lang::diagnostics::render::render_text(d, REDUCE.label, REDUCE.source, false))
                .collect();
            return Err(BenchError::compile(REDUCE.label, format!("it does not fit the switch:\n{rendered}")));
        }
        Err(LowerError::Internal(error)) => return Err(BenchError::compile(REDUCE.label, error)),
    };
    let config = BenchConfig { records, ..BenchConfig::default() };
    let report =
        run(&compiled, 0, &pipeline, &config).map_err(|error| BenchError::run("the switch benchmark", error))?;
    print!("{report}");
    Ok(())
}

/// What to measure. The default is the setting: 1,024 mappers (a two-level tree of
/// fanout 32), 1,000 uniform keys, 10 million records. Rows run without faults and with a
/// window of 8 packets per link (a smaller event queue; the traffic is the same).
#[derive(Clone, Debug, PartialEq)]
pub struct BenchConfig {
    pub topology: Topology,
    pub records: u64,
    pub keys: u32,
    pub seed: u64,
    /// The table configurations to simulate; `None` slots = what fits the profile. Only the
    /// first row folds the records centrally to check the result (one interpreter merge per
    /// record).
    pub rows: Vec<(SlotIndex, Option<u64>)>,
}

impl Default for BenchConfig {
    fn default() -> BenchConfig {
        BenchConfig {
            topology: Topology::Tree { fanout: 32, depth: 1 },
            records: 10_000_000,
            keys: 1_000,
            seed: 1,
            rows: vec![
                (SlotIndex::Direct, None),
                (SlotIndex::Direct, Some(1_000)),
                (SlotIndex::Direct, Some(750)),
                (SlotIndex::Direct, Some(500)),
                (SlotIndex::Direct, Some(250)),
                (SlotIndex::Hash, None),
                (SlotIndex::Hash, Some(8_192)),
                (SlotIndex::Hash, Some(1_024)),
            ],
        }
    }
}

impl BenchConfig {
    /// The simulation of one table configuration: uniform keys, no faults, a window of 8.
    fn simulation(&self, slot_index: SlotIndex, table_slots: Option<u64>, check_reference: bool) -> SimConfig {
        SimConfig {
            topology: self.topology.clone(),
            records: self.records,
            keys: self.keys,
            dist: Dist::Uniform,
            seed: self.seed,
            table_slots,
            slot_index,
            check_reference,
            window: 8,
            ..SimConfig::default()
        }
    }
}

/// One simulated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchRow {
    pub slot_index: SlotIndex,
    pub table_slots: u64,
    pub entries_at_reducer: u64,
    pub ideal_entries_at_reducer: u64,
    /// `entries_at_reducer / ideal_entries_at_reducer` (1.0 is the bound; the goal is ≤ 1.1).
    pub over_ideal: f64,
    pub traffic_reduction: f64,
    pub collisions: u64,
    pub link_packets: u64,
    pub network_packets_per_second: f64,
    pub wall_seconds: f64,
    /// `None` when the row did not fold a reference.
    pub result_matches_reference: Option<bool>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BenchReport {
    pub aggregate: String,
    pub topology: String,
    pub records: u64,
    pub keys: u32,
    /// Entries per second through the pipeline simulator alone (one core): full packets to
    /// as many tables as the topology has switches, with direct slots.
    pub pipeline_entries_per_second: f64,
    /// Packets per second through the pipeline simulator alone (full packets).
    pub pipeline_packets_per_second: f64,
    /// Packets per second through the network simulator, the best of [`RATE_RUNS`] runs
    /// with direct slots and tables of `keys` slots (no reference fold): link transmissions
    /// (data and end-of-stream, retransmissions included; not acknowledgements) per second of
    /// network time (the wall time less drawing and lifting records and the reducer's
    /// interpreter merges).
    pub network_packets_per_second: f64,
    pub rows: Vec<BenchRow>,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "switch-sim benchmark: {} on {}, {} records, {} keys",
            self.aggregate, self.topology, self.records, self.keys
        )?;
        writeln!(
            f,
            "  pipeline simulator: {:.1} M entries/s, {:.2} M full packets/s (one core)",
            self.pipeline_entries_per_second / 1e6,
            self.pipeline_packets_per_second / 1e6
        )?;
        writeln!(
            f,
            "  network simulator: {:.2} M packets/s (one core; best of {RATE_RUNS}, direct slots, {}-slot tables)",
            self.network_packets_per_second / 1e6,
            self.keys
        )?;
        writeln!(
            f,
            "  {:<7} {:>7} {:>11} {:>9} {:>8} {:>10} {:>10} {:>12} {:>8} {:>6}",
            "index",
            "slots",
            "at reducer",
            "ideal",
            "x ideal",
            "reduction",
            "collisions",
            "net pkts/s",
            "wall s",
            "exact"
        )?;
        for row in &self.rows {
            writeln!(
                f,
                "  {:<7} {:>7} {:>11} {:>9} {:>8.3} {:>9.1}x {:>10} {:>11.2}M {:>8.1} {:>6}",
                row.slot_index.to_string(),
                row.table_slots,
                row.entries_at_reducer,
                row.ideal_entries_at_reducer,
                row.over_ideal,
                row.traffic_reduction,
                row.collisions,
                row.network_packets_per_second / 1e6,
                row.wall_seconds,
                row.result_matches_reference.map_or("-".to_string(), |b| b.to_string())
            )?;
        }
        Ok(())
    }
}

/// Runs the benchmark for aggregate `plan_index` of `compiled`, lowered to `pipeline`.
pub fn run(
    compiled: &Compiled,
    plan_index: usize,
    pipeline: &PipelineProgram,
    config: &BenchConfig,
) -> Result<BenchReport, SwitchBenchError> {
    let switches = config.topology.graph().nodes.iter().filter(|n| n.kind == NodeKind::Switch).count();
    let (entries_per_second, packets_per_second) =
        pipeline_rate(compiled, plan_index, pipeline, config.keys, switches)?;
    let mut rows = Vec::new();
    for (index, (slot_index, table_slots)) in config.rows.iter().enumerate() {
        let sim = config.simulation(*slot_index, *table_slots, index == 0);
        let report = simulate(compiled, plan_index, pipeline, &sim)?;
        rows.push(BenchRow {
            slot_index: *slot_index,
            table_slots: report.table_slots,
            entries_at_reducer: report.entries_at_reducer,
            ideal_entries_at_reducer: report.ideal_entries_at_reducer,
            over_ideal: report.entries_at_reducer as f64 / report.ideal_entries_at_reducer.max(1) as f64,
            traffic_reduction: report.traffic_reduction,
            collisions: report.collisions,
            link_packets: report.links.iter().map(|l| l.packets).sum(),
            network_packets_per_second: report.network_packets_per_second,
            wall_seconds: report.wall_seconds,
            result_matches_reference: (index == 0).then_some(report.result_matches_reference),
        });
    }
    Ok(BenchReport {
        aggregate: pipeline.aggregate.clone(),
        topology: config.topology.to_string(),
        records: config.records,
        keys: config.keys,
        pipeline_entries_per_second: entries_per_second,
        pipeline_packets_per_second: packets_per_second,
        network_packets_per_second: network_rate(compiled, plan_index, pipeline, config)?,
        rows,
    })
}

/// Runs of the network simulator the reported packet rate is the best of (the machine is
/// shared; the best run is the one least disturbed).
pub const RATE_RUNS: usize = 3;

/// The network simulator's packet rate: the best of [`RATE_RUNS`] runs with direct slots,
/// `keys` slots per table and no reference fold.
fn network_rate(
    compiled: &Compiled,
    plan_index: usize,
    pipeline: &PipelineProgram,
    config: &BenchConfig,
) -> Result<f64, SwitchBenchError> {
    let sim = config.simulation(SlotIndex::Direct, Some(u64::from(config.keys)), false);
    let mut best: f64 = 0.0;
    for _ in 0..RATE_RUNS {
        best = best.max(simulate(compiled, plan_index, pipeline, &sim)?.network_packets_per_second);
    }
    Ok(best)
}

/// Entries per second through [`PipelineSim::execute_packet`]: full packets of lifted states
/// of generated records, each sent to one of `tables` switch tables at random (as packets
/// from many mappers reach many switches), so that rows miss the cache as they do in a
/// network.
fn pipeline_rate(
    compiled: &Compiled,
    plan_index: usize,
    pipeline: &PipelineProgram,
    keys: u32,
    tables: usize,
) -> Result<(f64, f64), SwitchBenchError> {
    let plan = compiled.aggregates.get(plan_index).ok_or(SwitchBenchError::NoAggregate(plan_index))?;
    let interp = Interpreter::new(&compiled.optimized);
    let mut rng = naas_stdx::Rng::new(3);
    let lift = compiled.optimized.function(plan.lift);
    let per_packet = pipeline.entries_per_packet() as usize;
    let mut packets: Vec<(usize, Vec<u64>)> = Vec::new();
    for _ in 0..4_096 {
        let mut data = Vec::new();
        for _ in 0..per_packet {
            let args = naas_ir::laws::random_args(&mut rng, lift);
            let state = interp.call(plan.lift, args).map_err(SwitchBenchError::Lift)?;
            data.push(rng.next_u64() % u64::from(keys.max(1)));
            pipeline.encode_state_into(&state, &mut data)?;
        }
        packets.push(((rng.next_u64() % tables.max(1) as u64) as usize, data));
    }
    let sim = PipelineSim::new(pipeline);
    let stride = 1 + pipeline.state_words();
    // Packets of the fields the network simulator uses (32-bit ones when they fit).
    let merged_per_second = if fits_u32(&pipeline.profile) {
        let narrow: Vec<(usize, Vec<u32>)> =
            packets.iter().map(|(table, data)| (*table, data.iter().map(|w| u32::narrow(*w)).collect())).collect();
        time_packets(&sim, pipeline, tables, &narrow, stride, keys)
    } else {
        time_packets(&sim, pipeline, tables, &packets, stride, keys)
    };
    Ok((merged_per_second, merged_per_second / per_packet as f64))
}

/// Entries merged per second running `packets` (table, entries) through `sim` on `tables`
/// tables of `keys` slots, 200 times.
fn time_packets<W: Word>(
    sim: &PipelineSim,
    pipeline: &PipelineProgram,
    tables: usize,
    packets: &[(usize, Vec<W>)],
    stride: usize,
    keys: u32,
) -> f64 {
    // Each lane (entry position) has its own `keys` slots, as in the network simulator.
    let lanes = pipeline.entries_per_packet() as usize;
    let lane_slots = keys.max(1) as usize;
    let mut tables: Vec<SlotTable<W>> =
        (0..tables.max(1)).map(|_| SlotTable::new(pipeline, lane_slots * lanes)).collect();
    let slots = Modulus::new(u64::from(keys.max(1)));
    let mut collisions = Vec::new();
    let rounds = 200;
    let started = Instant::now();
    let mut merged = 0u64;
    for _ in 0..rounds {
        for (table, data) in packets {
            collisions.clear();
            merged += sim.execute_packet(
                &mut tables[*table],
                data,
                stride,
                |lane, key| lane * lane_slots + slots.reduce(key) as usize,
                &mut collisions,
            );
        }
    }
    merged as f64 / started.elapsed().as_secs_f64().max(1e-9)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    /// A small benchmark runs end to end: large direct tables meet the fan-in bound exactly,
    /// tables with fewer slots than keys collide, and every rate is measured.
    #[test]
    fn a_small_benchmark_meets_the_bound_with_large_direct_tables() {
        let compiled = crate::compile(REDUCE.label, REDUCE.source, None).unwrap();
        let pipeline = lower(&compiled, 0, &TargetProfile::default(), &LowerOptions::default()).unwrap();
        let config = BenchConfig {
            topology: Topology::Tree { fanout: 4, depth: 1 },
            records: 20_000,
            keys: 100,
            seed: 3,
            rows: vec![(SlotIndex::Direct, None), (SlotIndex::Direct, Some(50))],
        };
        let report = run(&compiled, 0, &pipeline, &config).unwrap();
        assert!(report.pipeline_entries_per_second > 0.0 && report.network_packets_per_second > 0.0);
        let (large, small) = (&report.rows[0], &report.rows[1]);
        assert_eq!(large.result_matches_reference, Some(true));
        assert_eq!((large.collisions, large.ideal_entries_at_reducer), (0, 4 * 100));
        assert_eq!(large.entries_at_reducer, large.ideal_entries_at_reducer);
        assert!(small.collisions > 0 && small.entries_at_reducer > small.ideal_entries_at_reducer);
        assert!(report.to_string().contains("network simulator:"));
    }
}
