//! Where the mappers' entries come from: records the simulator generates and lifts itself
//! ([`Generator`]), or partial states a caller supplies per mapper (the runtime's "through the
//! network" mode). Both yield `(key, partial state)` pairs; everything after that — packets,
//! the transport protocol, switch tables, the reducer and the reference fold — is shared.

use naas_ir::decompose::AggregatePlan;
use naas_ir::interp::{Interpreter, Slot};
use naas_ir::ir::{Scalar, ScalarTy, VarTy};
use naas_ir::Compiled;
use naas_lang::InternalError;
use naas_stdx::Rng;

use super::dist::KeySampler;
use super::error::quote;
use super::{FastMap, SimError};
use crate::program::PipelineProgram;

/// One mapper's output: (key, partial state as interpreter slots in the state layout's order).
pub type MapperEntries = Vec<(u64, Vec<Slot>)>;

/// The source of every mapper's entries.
pub(super) enum Source {
    Generated(Generator),
    /// The caller's entries, one queue per mapper (in graph order), consumed front to back.
    Supplied(Vec<std::vec::IntoIter<(u64, Vec<Slot>)>>),
}

/// What producing an entry needs from the simulation.
pub(super) struct EntryContext<'s, 'a> {
    pub(super) compiled: &'a Compiled,
    pub(super) plan: &'a AggregatePlan,
    pub(super) interp: &'s Interpreter<'a>,
    pub(super) program: &'a PipelineProgram,
}

impl Source {
    /// Appends the next entry of mapper `mapper` (whose random stream is `rng`) to `data`: the
    /// key, then the state's register words. Returns the key, and the partial state when
    /// `want_state` (for the reference fold).
    pub(super) fn next_into(
        &mut self,
        cx: &EntryContext<'_, '_>,
        mapper: usize,
        rng: &mut Rng,
        want_state: bool,
        data: &mut Vec<u64>,
    ) -> Result<(u64, Option<Vec<Slot>>), SimError> {
        match self {
            Source::Generated(generator) => generator.next_into(cx, rng, want_state, data),
            Source::Supplied(queues) => {
                let (key, state) = queues
                    .get_mut(mapper)
                    .and_then(Iterator::next)
                    .ok_or_else(|| InternalError::new("a mapper ran out of supplied entries"))?;
                data.push(key);
                cx.program.encode_state_into(&state, data)?;
                Ok((key, want_state.then_some(state)))
            }
        }
    }
}

/// The most scalar inputs a lifted state is cached by.
const CACHED_INPUTS: usize = 8;

/// The most lifted states cached. The generator's repeated inputs (edge values and small
/// numbers) come early and fill a few dozen entries; what else would be cached are random
/// values that rarely come again, and a larger cache only pushes the switch tables out of
/// the processor's cache.
const CACHED_STATES: usize = 1 << 10;

/// Draws keys and input records and lifts them with the interpreter.
pub(super) struct Generator {
    sampler: KeySampler,
    /// Lifted states and their words by input bits, when the lift takes at most
    /// `CACHED_INPUTS` scalars: lifting is a pure function, and the generator repeats edge
    /// values and small numbers often.
    cache: FastMap<[u64; CACHED_INPUTS], u32>,
    lifted: Vec<(Vec<Slot>, Vec<u64>)>,
    /// The input record being drawn (reused).
    args: Vec<Slot>,
    /// With a fixed-point scale, the largest float magnitude drawn (see [`Generator::new`]).
    float_bound: Option<f64>,
}

impl Generator {
    /// A generator of `records` records. With a fixed-point `scale` (spec section 15.5) float
    /// inputs are drawn within `±M`, `M = min(1000, 2^62 / (S * records))`, so that the sum
    /// of every record fits the i64 encoding with a factor of two to spare: the generator's
    /// edge values (`±1e300`, infinities, NaN) would not fit any scale, and stop every run on
    /// the encoder. They become `±M` (the largest magnitude allowed) and 0 (NaN).
    pub(super) fn new(sampler: KeySampler, scale: Option<u64>, records: u64) -> Generator {
        let float_bound = scale.map(|scale| (2f64.powi(62) / (scale as f64 * records.max(1) as f64)).min(1000.0));
        Generator { sampler, cache: FastMap::default(), lifted: Vec::new(), args: Vec::new(), float_bound }
    }

    /// A value of `ty` from the generator's random stream, floats within `float_bound`.
    fn scalar(&self, rng: &mut Rng, ty: ScalarTy) -> Scalar {
        match (naas_ir::laws::random_scalar(rng, ty), self.float_bound) {
            (Scalar::Float(float, x), Some(bound)) if x.is_nan() || x.abs() > bound => {
                let fitted = if x.is_nan() { 0.0 } else { bound.copysign(x) };
                Scalar::Float(float, naas_lang::ops::float_round(float, fitted))
            }
            (scalar, _) => scalar,
        }
    }

    /// Draws the next record from `rng` and appends its key and lifted state's words to
    /// `data`; returns the key and, when `want_state`, the lifted state.
    fn next_into(
        &mut self,
        cx: &EntryContext<'_, '_>,
        rng: &mut Rng,
        want_state: bool,
        data: &mut Vec<u64>,
    ) -> Result<(u64, Option<Vec<Slot>>), SimError> {
        let lift = cx.compiled.optimized.function(cx.plan.lift);
        let key = u64::from(self.sampler.sample(rng));
        self.args.clear();
        let mut bits = [0u64; CACHED_INPUTS];
        let mut cacheable = lift.params.len() <= CACHED_INPUTS;
        for (i, param) in lift.params.iter().enumerate() {
            let arg = match lift.var_ty(*param) {
                VarTy::Scalar(ty) => Slot::Scalar(self.scalar(rng, ty)),
                VarTy::Array(ty, len) => Slot::Array((0..len).map(|_| self.scalar(rng, ty)).collect()),
            };
            match &arg {
                Slot::Scalar(Scalar::Int(_, v)) if cacheable => bits[i] = *v as u64,
                Slot::Scalar(Scalar::Bool(b)) if cacheable => bits[i] = u64::from(*b),
                Slot::Scalar(Scalar::Float(_, x)) if cacheable => bits[i] = x.to_bits(),
                _ => cacheable = false,
            }
            self.args.push(arg);
        }
        data.push(key);
        if let Some(&index) = cacheable.then(|| self.cache.get(&bits)).flatten() {
            let (state, words) = &self.lifted[index as usize];
            data.extend_from_slice(words);
            return Ok((key, want_state.then(|| state.clone())));
        }
        let state = cx.interp.call(cx.plan.lift, self.args.clone()).map_err(|error| SimError::Fault { key, error })?;
        let at = data.len();
        cx.program.encode_state_into(&state, data)?;
        let words = data[at..].to_vec();
        if cacheable && self.lifted.len() < CACHED_STATES {
            self.cache.insert(bits, self.lifted.len() as u32);
            self.lifted.push((state.clone(), words));
        }
        Ok((key, want_state.then_some(state)))
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
) -> Result<(), SimError> {
    if mappers.len() > topology_mappers {
        return Err(SimError::Invalid(format!(
            "entries for {} were given, but the topology has only {}",
            super::counted(mappers.len() as u64, "mapper", "mappers"),
            super::counted(topology_mappers as u64, "mapper", "mappers")
        )));
    }
    let max_key = program.profile.max_key();
    for (mapper, entries) in mappers.iter().enumerate() {
        for (index, (key, state)) in entries.iter().enumerate() {
            let at = || format!("mapper {mapper}, entry {index}");
            if *key > max_key {
                return Err(SimError::Invalid(format!(
                    "{}: key {key} does not fit the profile's {}-bit keys (at most {max_key})",
                    at(),
                    program.profile.key_bits
                )));
            }
            if let Some(keys) = dense_keys {
                if *key >= u64::from(keys) {
                    return Err(SimError::Invalid(format!(
                        "{}: key {key} is outside the dense key space 0..{keys} that `direct` slot indexes assume",
                        at()
                    )));
                }
            }
            check_state(plan, state).map_err(|error| SimError::Invalid(format!("{}: {error}", at())))?;
        }
    }
    Ok(())
}

/// How a supplied state differs from the state layout.
#[derive(Debug, thiserror::Error)]
enum StateMismatch {
    #[error("the state has {slots} slots, but `{aggregate}` has {fields} state fields")]
    Slots { slots: usize, aggregate: String, fields: usize },
    #[error("state field `{field}` must be a {ty:?}, found {found}")]
    Shape { field: String, ty: VarTy, found: String },
    #[error("state field `{field}` must hold {ty:?} values, found {found}")]
    Values { field: String, ty: VarTy, found: String },
}

/// A state must have one slot per state field, of the field's shape and scalar type, with
/// integers in their type's range (the interpreter and the encoder assume both).
fn check_state(plan: &AggregatePlan, state: &[Slot]) -> Result<(), StateMismatch> {
    let fields = &plan.state.fields;
    if state.len() != fields.len() {
        return Err(StateMismatch::Slots { slots: state.len(), aggregate: plan.name.clone(), fields: fields.len() });
    }
    for (field, slot) in fields.iter().zip(state) {
        let scalars: &[Scalar] = match (field.ty, slot) {
            (VarTy::Scalar(_), Slot::Scalar(s)) => std::slice::from_ref(s),
            (VarTy::Array(_, len), Slot::Array(items)) if items.len() == len as usize => items,
            _ => {
                return Err(StateMismatch::Shape {
                    field: field.name.clone(),
                    ty: field.ty,
                    found: quote(&format!("{slot:?}")).into_owned(),
                })
            }
        };
        for scalar in scalars {
            let fits = match *scalar {
                Scalar::Int(ty, value) => ty.contains(value),
                _ => true,
            };
            if scalar.ty() != field.ty.scalar() || !fits {
                return Err(StateMismatch::Values {
                    field: field.name.clone(),
                    ty: field.ty,
                    found: quote(&format!("{scalar:?}")).into_owned(),
                });
            }
        }
    }
    Ok(())
}
