//! The per-key table of partial states, used on both sides of a shuffle: map-side it folds
//! records with the compiled `fold_keyed` (the combiner), reduce-side it merges partial states
//! with the compiled `merge` and finishes them.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

use naas_target_native::values::{AlignedBytes, Column};
use naas_target_native::CallError;
use rustc_hash::FxBuildHasher;

use crate::aggregation::Aggregation;
use crate::value::{flatten, Value};

/// Finished results by key.
pub type Finished<K> = Vec<(K, Vec<Value>)>;

/// Partial states by key, contiguous so that a batch of records folds in one native call.
pub struct StateTable<K> {
    index: HashMap<K, u32, FxBuildHasher>,
    keys: Vec<K>,
    states: AlignedBytes,
    identity: AlignedBytes,
    size: usize,
    /// Scratch states for `merge`, which works on whole aligned states.
    dst: AlignedBytes,
    src: AlignedBytes,
}

impl<K: Hash + Eq + Clone> StateTable<K> {
    pub fn new(aggregation: &Aggregation) -> StateTable<K> {
        let identity = aggregation.jit().new_state();
        let size = identity.len();
        StateTable {
            index: HashMap::default(),
            keys: Vec::new(),
            states: aggregation.jit().new_table(16),
            dst: identity.clone(),
            src: identity.clone(),
            identity,
            size,
        }
    }

    /// Keys in the table.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The slot of `key`, adding it with the identity state when it is new.
    pub fn slot<Q>(&mut self, key: &Q) -> u32
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned + ?Sized,
        Q::Owned: Into<K>,
    {
        if let Some(&slot) = self.index.get(key) {
            return slot;
        }
        self.insert(key.to_owned().into())
    }

    /// The slot of an owned key (no copy when it is new).
    pub fn slot_owned(&mut self, key: K) -> u32 {
        if let Some(&slot) = self.index.get(&key) {
            return slot;
        }
        self.insert(key)
    }

    fn insert(&mut self, key: K) -> u32 {
        let slot = self.keys.len();
        if (slot + 1) * self.size > self.states.len() {
            self.grow();
        }
        // Slots are u32 in the native ABI; 4 G keys would need 4 G states in memory first.
        let slot = u32::try_from(slot).unwrap_or(u32::MAX);
        self.index.insert(key.clone(), slot);
        self.keys.push(key);
        slot
    }

    fn grow(&mut self) {
        let old = self.states.len() / self.size;
        let mut states = AlignedBytes::zeroed(old.max(8) * 2 * self.size);
        states.as_mut_bytes()[..self.states.len()].copy_from_slice(self.states.as_bytes());
        for slot in states.as_mut_bytes()[self.states.len()..].chunks_exact_mut(self.size) {
            slot.copy_from_slice(self.identity.as_bytes());
        }
        self.states = states;
    }

    /// Folds record `i` of `columns` into slot `slots[i]`, a slot this table handed out.
    pub fn fold(&mut self, aggregation: &Aggregation, slots: &[u32], columns: &[Column<'_>]) -> Result<(), CallError> {
        let keys = self.keys.len();
        if let Some(bad) = slots.iter().find(|&&s| s as usize >= keys) {
            return Err(CallError::Invalid(format!("slot {bad} is not one of the table's {keys} keys")));
        }
        aggregation.jit().fold_keyed(&mut self.states, slots, columns)
    }

    /// Merges the partial state `src` (bytes of one state) into `key`'s state.
    pub fn merge<Q>(&mut self, aggregation: &Aggregation, key: &Q, src: &[u8]) -> Result<(), CallError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned + ?Sized,
        Q::Owned: Into<K>,
    {
        let slot = self.slot(key);
        self.merge_slot(aggregation, slot, src)
    }

    /// Merges the partial state `src` into slot `slot`.
    pub fn merge_slot(&mut self, aggregation: &Aggregation, slot: u32, src: &[u8]) -> Result<(), CallError> {
        if src.len() != self.size {
            return Err(CallError::Invalid(format!("a partial state is {} bytes, got {}", self.size, src.len())));
        }
        let range = slot as usize * self.size..(slot as usize + 1) * self.size;
        self.dst.as_mut_bytes().copy_from_slice(&self.states.as_bytes()[range.clone()]);
        self.src.as_mut_bytes().copy_from_slice(src);
        aggregation.jit().merge(&mut self.dst, &self.src)?;
        self.states.as_mut_bytes()[range].copy_from_slice(self.dst.as_bytes());
        Ok(())
    }

    /// Every (key, partial state) in insertion order.
    pub fn entries(&self) -> impl Iterator<Item = (&K, &[u8])> + '_ {
        self.keys.iter().zip(self.states.as_bytes().chunks_exact(self.size))
    }

    /// The state of `slot`.
    pub fn state(&self, slot: u32) -> &[u8] {
        &self.states.as_bytes()[slot as usize * self.size..(slot as usize + 1) * self.size]
    }

    /// Finishes every key: its result values, flattened. A fault names the key it met.
    pub fn finish(&self, aggregation: &Aggregation) -> Result<Finished<K>, (K, CallError)> {
        let mut state = self.identity.clone();
        let mut out = Vec::with_capacity(self.keys.len());
        for (key, bytes) in self.entries() {
            state.as_mut_bytes().copy_from_slice(bytes);
            let slots = aggregation.jit().finish(&state).map_err(|e| (key.clone(), e))?;
            out.push((key.clone(), flatten(&slots)));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    const REDUCE: &str = "aggregate s(x: i64) -> tuple[i64, u64]:\n    return sum(x), count()\n";

    #[test]
    fn folds_merges_and_finishes_by_key() {
        let agg = Aggregation::from_source("t.naas", REDUCE, None).unwrap();
        let mut map_side: StateTable<String> = StateTable::new(&agg);
        let keys = ["a", "b", "a", "c", "a"];
        let slots: Vec<u32> = keys.iter().map(|k| map_side.slot(*k)).collect();
        let xs = [1i64, 2, 3, 4, 5];
        map_side.fold(&agg, &slots, &[Column::I64(&xs)]).unwrap();
        // Enough keys to grow the table several times.
        let many: Vec<u32> = (0..100).map(|i| map_side.slot(format!("k{i}").as_str())).collect();
        map_side.fold(&agg, &many, &[Column::I64(&[7; 100])]).unwrap();

        let mut reduce_side: StateTable<String> = StateTable::new(&agg);
        for _ in 0..2 {
            for (key, state) in map_side.entries() {
                reduce_side.merge(&agg, key.as_str(), state).unwrap();
            }
        }
        let results: HashMap<String, Vec<Value>> = reduce_side.finish(&agg).unwrap().into_iter().collect();
        assert_eq!(results["a"], vec![Value::Int(18), Value::UInt(6)]);
        assert_eq!(results["c"], vec![Value::Int(8), Value::UInt(2)]);
        assert_eq!(results["k99"], vec![Value::Int(14), Value::UInt(2)]);
        assert_eq!(results.len(), 103);
    }

    #[test]
    fn slots_outside_the_used_table_are_rejected() {
        let agg = Aggregation::from_source("t.naas", REDUCE, None).unwrap();
        let mut table: StateTable<String> = StateTable::new(&agg);
        table.slot("a");
        let error = table.fold(&agg, &[1], &[Column::I64(&[1])]).unwrap_err();
        assert!(matches!(error, CallError::Invalid(_)), "{error:?}");
        assert!(table.merge_slot(&agg, 0, &[0; 3]).is_err());
    }
}
