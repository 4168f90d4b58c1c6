//! Through-the-network mode: the shuffle's partial states travel through the switch-sim
//! network before the reducer sees them, so a job shows the in-network effect on its own data.
//!
//! Every block of the input belongs to one mapper of the topology (block `b` to mapper
//! `b mod M`); each mapper combines its records per key (compiled fold), and sends one entry
//! per key into the network, whose switches merge them with the pipeline program. Keys get
//! dense identifiers `0..K` in key order, assigned by the job (as SwitchML's workers assign
//! slot indexes), so switch tables with at least K slots never collide. The reducer's merged
//! states are finished with the compiled code.

use std::collections::BTreeMap;
use std::io::Read;

use naas_lang::InternalError;
use naas_target_switch::network::{simulate_entries, MapperEntries, Report, SimConfig, SimError, SlotIndex};
use naas_target_switch::PipelineProgram;

use crate::aggregation::Aggregation;
use crate::executor::{
    call_error, map_phase, merge_buffers, Grouping, Input, JobConfig, JobError, JobInput, JobOutput,
};
use crate::key_order;
use crate::results::KeyResults;
use crate::value::to_value;
use naas_target_native::values::AlignedBytes;

/// Runs the job with its shuffle going through the simulated network described by `sim`
/// (`sim.records` and `sim.dist` are not used: the records are the input's).
pub fn run_through_network<R: Read + Send>(
    aggregation: &Aggregation,
    input: impl Into<JobInput<R>>,
    key: &str,
    binds: &[(String, String)],
    config: &JobConfig,
    pipeline: &PipelineProgram,
    sim: &SimConfig,
) -> Result<(JobOutput, Report), JobError> {
    let mappers = sim.topology.mappers();
    if mappers == 0 {
        return Err(JobError::Input("the topology has no mappers".to_string()));
    }
    // Blocks small enough that every mapper gets a share of the input.
    let mut config = config.clone();
    let input = input.into();
    if let JobInput::Csv(Input { size: Some(size), .. }) = &input {
        let share = usize::try_from(size / (4 * mappers as u64)).unwrap_or(usize::MAX);
        config.block_size = share.clamp(256, config.block_size.max(256));
    }
    let map = map_phase(aggregation, input, key, binds, &config, Grouping::Mappers(mappers))?;
    let started = std::time::Instant::now();
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
    let jit = aggregation.jit();
    let mut state = jit.new_state();
    let entries: Vec<MapperEntries> = tables
        .iter()
        .map(|table| {
            table
                .entries()
                .map(|(key, bytes)| {
                    state.as_mut_bytes().copy_from_slice(bytes);
                    (ids[key], jit.state_slots(&state))
                })
                .collect()
        })
        .collect();
    let keys = u32::try_from(ids.len().max(1))
        .map_err(|_| JobError::Input(format!("{} keys are more than a switch can index", ids.len())))?;
    let sim = SimConfig { keys, slot_index: SlotIndex::Direct, ..sim.clone() };
    let key_of: Vec<&[u8]> = ids.keys().copied().collect();
    let outcome =
        simulate_entries(aggregation.compiled(), aggregation.index(), pipeline, &sim, entries).map_err(|error| {
            match error {
                // The simulator names keys by their dense ids; the job names them by their text.
                SimError::Fault { key, error } if error.fault().is_some() => {
                    let text = key_of.get(key as usize).map(|k| String::from_utf8_lossy(k).into_owned());
                    JobError::Other(format!("key `{}`: {error}", text.unwrap_or_else(|| key.to_string())))
                }
                SimError::Fault { error, .. } => JobError::Internal(InternalError::new(error.to_string())),
                SimError::Internal(error) => JobError::Internal(error),
                other => JobError::Other(format!("network simulation failed: {other}")),
            }
        })?;
    if !outcome.report.result_matches_reference {
        return Err(JobError::Other(
            "the network's merged states differ from a central merge of the same partial states".to_string(),
        ));
    }
    if outcome.reduced.len() != ids.len() {
        return Err(JobError::Other(format!(
            "the network delivered {} keys to the reducer, the mappers sent {}",
            outcome.reduced.len(),
            ids.len()
        )));
    }
    let mut results = KeyResults::with_capacity(aggregation.results().len(), outcome.reduced.len(), 0);
    let mut record = AlignedBytes::zeroed(0);
    for (id, slots) in &outcome.reduced {
        let key = key_of
            .get(*id as usize)
            .ok_or_else(|| JobError::Other(format!("the network returned an unknown key id {id}")))?;
        let state = jit.state_from_slots(slots);
        results.push_key(key);
        jit.finish_each(state.as_bytes(), &mut record, |s| results.push_value(to_value(s)))
            .map_err(|e| call_error(e, Some(key)))?;
    }
    let results = key_order::sort(results).into_results();
    let mut stats = map.stats;
    stats.keys = results.len() as u64;
    stats.shuffle_entries = outcome.report.entries_at_reducer;
    stats.shuffle_bytes = outcome.report.bytes_at_reducer;
    stats.reduce_seconds = started.elapsed().as_secs_f64();
    Ok((JobOutput { results, stats }, outcome.report))
}
