//! Where the mappers' entries come from: records the simulator generates and lifts itself
//! ([`Generator`]), or partial states a caller supplies per mapper (the runtime's "through the
//! network" mode). Both yield `(key, partial state)` pairs; everything after that — packets,
//! the transport protocol, switch tables, the reducer and the reference fold — is shared.

use naas_ir::decompose::AggregatePlan;
use naas_ir::interp::{Interpreter, Slot};
use naas_ir::ir::{Scalar, VarTy};
use naas_ir::laws::Rng;
use naas_ir::Compiled;

use super::dist::KeySampler;
use super::FastMap;
use crate::program::PipelineProgram;

/// One mapper's output: (key, partial state as interpreter slots in the state layout's order).
pub type MapperEntries = Vec<(u64, Vec<Slot>)>;

/// The source of every mapper's entries.
pub(super) enum Source {
    Generated(Generator),
    /// The caller's entries, one queue per mapper (in graph order), consumed front to back.
    Supplied(Vec<std::vec::IntoIter<(u64, Vec<Slot>)>>),
}

/// Draws keys and input records and lifts them with the interpreter.
pub(super) struct Generator {
    sampler: KeySampler,
    /// Lifted states (and their words) of recently seen inputs: lifting is a pure function,
    /// and the generator repeats edge values and small numbers often.
    lift_cache: FastMap<Vec<u64>, (Vec<Slot>, Vec<u64>)>,
}

impl Generator {
    pub(super) fn new(sampler: KeySampler) -> Generator {
        Generator { sampler, lift_cache: FastMap::default() }
    }

    /// The next record of a mapper whose random stream is `rng`: its key, lifted state and the
    /// state's register words.
    pub(super) fn next(
        &mut self,
        compiled: &Compiled,
        plan: &AggregatePlan,
        interp: &Interpreter<'_>,
        program: &PipelineProgram,
        rng: &mut Rng,
    ) -> Result<(u64, Vec<Slot>, Vec<u64>), String> {
        let lift = compiled.optimized.function(plan.lift);
        let key = u64::from(self.sampler.sample(rng));
        let args: Vec<Slot> = lift
            .params
            .iter()
            .map(|param| match lift.var_ty(*param) {
                VarTy::Scalar(ty) => Slot::Scalar(rng.scalar(ty)),
                VarTy::Array(ty, len) => Slot::Array((0..len).map(|_| rng.scalar(ty)).collect()),
            })
            .collect();
        let cache_key: Option<Vec<u64>> = args
            .iter()
            .map(|arg| match arg {
                Slot::Scalar(Scalar::Int(_, v)) => Some(*v as u64),
                Slot::Scalar(Scalar::Bool(b)) => Some(u64::from(*b)),
                Slot::Scalar(Scalar::Float(_, x)) => Some(x.to_bits()),
                Slot::Array(_) => None,
            })
            .collect();
        if let Some((state, words)) = cache_key.as_ref().and_then(|k| self.lift_cache.get(k)) {
            return Ok((key, state.clone(), words.clone()));
        }
        let state = interp.call(plan.lift, args).map_err(|e| format!("lift failed: {e}"))?;
        let words = program.encode_state(&state)?;
        if let Some(k) = cache_key {
            if self.lift_cache.len() < 1 << 16 {
                self.lift_cache.insert(k, (state.clone(), words.clone()));
            }
        }
        Ok((key, state, words))
    }
}

/// Checks supplied entries before anything is simulated: no more mappers than the topology
/// has, keys within the profile's key bits (and below `dense_keys` when slots are indexed
/// directly), and states of the state layout's shape and types.
pub(super) fn check_supplied(
    plan: &AggregatePlan,
    program: &PipelineProgram,
    mappers: &[MapperEntries],
    topology_mappers: usize,
    dense_keys: Option<u32>,
) -> Result<(), String> {
    if mappers.len() > topology_mappers {
        return Err(format!(
            "{} mappers' entries were given, but the topology has only {topology_mappers} mappers",
            mappers.len()
        ));
    }
    let max_key = program.profile.max_key();
    for (mapper, entries) in mappers.iter().enumerate() {
        for (index, (key, state)) in entries.iter().enumerate() {
            let at = || format!("mapper {mapper}, entry {index}");
            if *key > max_key {
                return Err(format!(
                    "{}: key {key} does not fit the profile's {}-bit keys (at most {max_key})",
                    at(),
                    program.profile.key_bits
                ));
            }
            if let Some(keys) = dense_keys {
                if *key >= u64::from(keys) {
                    return Err(format!(
                        "{}: key {key} is outside the dense key space 0..{keys} that `direct` slot indexes assume",
                        at()
                    ));
                }
            }
            check_state(plan, state).map_err(|error| format!("{}: {error}", at()))?;
        }
    }
    Ok(())
}

/// A state must have one slot per state field, of the field's shape and scalar type, with
/// integers in their type's range (the interpreter and the encoder assume both).
fn check_state(plan: &AggregatePlan, state: &[Slot]) -> Result<(), String> {
    let fields = &plan.state.fields;
    if state.len() != fields.len() {
        return Err(format!(
            "the state has {} slots, but `{}` has {} state fields",
            state.len(),
            plan.name,
            fields.len()
        ));
    }
    for (field, slot) in fields.iter().zip(state) {
        let scalars: &[Scalar] = match (field.ty, slot) {
            (VarTy::Scalar(_), Slot::Scalar(s)) => std::slice::from_ref(s),
            (VarTy::Array(_, len), Slot::Array(items)) if items.len() == len as usize => items,
            _ => return Err(format!("state field `{}` must be a {:?}, found {slot:?}", field.name, field.ty)),
        };
        for scalar in scalars {
            let fits = match *scalar {
                Scalar::Int(ty, value) => ty.contains(value),
                _ => true,
            };
            if scalar.ty() != field.ty.scalar() || !fits {
                return Err(format!("state field `{}` must hold {:?} values, found {scalar:?}", field.name, field.ty));
            }
        }
    }
    Ok(())
}
