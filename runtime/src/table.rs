//! The per-key table of partial states, used on both sides of a shuffle: map-side it folds
//! records with the compiled `fold_keyed` (the combiner), reduce-side it merges partial states
//! with the compiled `merge` and finishes them.
//!
//! A table is an index from keys to dense slots ([`SlotIndex`]) beside one aligned buffer of
//! states, so a batch of records folds in one native call. Byte keys (every key read from a
//! file or a wire buffer) use [`KeyIndex`]: keys stored once in an arena with their hashes,
//! one hash and one key comparison per lookup. Keys of another type (a timely stream's own
//! key type) use [`ValueIndex`], the same design over owned values.

use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;
use naas_target_native::values::{AlignedBytes, Column};
use naas_target_native::CallError;

use crate::aggregation::Aggregation;
use crate::key_index::{key_hasher, KeyHasher, KeyIndex};
use crate::value::{to_value, Value};

/// Finished results by key.
pub type Finished<K> = Vec<(K, Vec<Value>)>;

/// Keys to dense slots `0..len()`, in order of first insertion.
pub trait SlotIndex {
    type Key: ?Sized;

    /// The slot of `key`, added with the next number when new; `true` when it was added.
    fn slot(&mut self, key: &Self::Key) -> (u32, bool);

    /// The key of `slot`, which this index handed out.
    fn key(&self, slot: u32) -> &Self::Key;

    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<S: BuildHasher> SlotIndex for KeyIndex<S> {
    type Key = [u8];

    #[inline]
    fn slot(&mut self, key: &[u8]) -> (u32, bool) {
        KeyIndex::slot(self, key)
    }

    fn key(&self, slot: u32) -> &[u8] {
        KeyIndex::key(self, slot)
    }

    fn len(&self) -> usize {
        KeyIndex::len(self)
    }
}

/// [`KeyIndex`] for owned keys of any type: each key stored once (cloned when first seen),
/// its hash beside it, slot numbers in a hash table probed with the stored hashes.
#[derive(Clone, Debug)]
pub struct ValueIndex<K> {
    table: HashTable<u32>,
    keys: Vec<K>,
    hashes: Vec<u64>,
    hasher: KeyHasher,
}

impl<K> Default for ValueIndex<K> {
    fn default() -> Self {
        ValueIndex { table: HashTable::new(), keys: Vec::new(), hashes: Vec::new(), hasher: key_hasher() }
    }
}

impl<K: Hash + Eq + Clone> SlotIndex for ValueIndex<K> {
    type Key = K;

    fn slot(&mut self, key: &K) -> (u32, bool) {
        let hash = self.hasher.hash_one(key);
        let ValueIndex { table, keys, hashes, .. } = self;
        if let Some(&slot) = table.find(hash, |&slot| hashes[slot as usize] == hash && keys[slot as usize] == *key) {
            return (slot, false);
        }
        // Slots are u32 in the native ABI; 4 G keys would need 4 G states in memory first.
        let slot = u32::try_from(keys.len()).unwrap_or(u32::MAX);
        keys.push(key.clone());
        hashes.push(hash);
        table.insert_unique(hash, slot, |&slot| hashes[slot as usize]);
        (slot, true)
    }

    fn key(&self, slot: u32) -> &K {
        &self.keys[slot as usize]
    }

    fn len(&self) -> usize {
        self.keys.len()
    }
}

/// Partial states by key, contiguous so that a batch of records folds in one native call.
pub struct StateTable<I = KeyIndex> {
    index: I,
    states: AlignedBytes,
    identity: AlignedBytes,
    size: usize,
    /// Scratch states for `merge`, which works on whole aligned states.
    dst: AlignedBytes,
    src: AlignedBytes,
}

impl StateTable<KeyIndex> {
    /// A table of byte keys.
    pub fn new(aggregation: &Aggregation) -> StateTable<KeyIndex> {
        StateTable::with_index(aggregation, KeyIndex::new())
    }

    /// The slots of a batch of keys (key `i` is `keys[ends[i - 1]..ends[i]]`), appended to
    /// `out`; new keys get the identity state. Looking keys up together overlaps their cache
    /// misses (see [`KeyIndex::slots`]).
    pub fn slots(&mut self, keys: &[u8], ends: &[usize], out: &mut Vec<u32>) {
        let first = self.index.len();
        self.index.slots(keys, ends, out);
        self.add_states(first);
    }

    /// [`Self::slots`] for `count` keys wherever they are (see [`KeyIndex::slots_of`]).
    pub fn slots_of<'k>(&mut self, count: usize, key: impl Fn(usize) -> &'k [u8], out: &mut Vec<u32>) {
        let first = self.index.len();
        self.index.slots_of(count, key, out);
        self.add_states(first);
    }

    /// Asks the cache for what reading `slot`'s key and state in a random order needs, in two
    /// steps: `Near` for a slot read soon (the key bytes), `Far` for one read later (the
    /// state and where the key is).
    pub fn prefetch_entry(&self, slot: u32, distance: Distance) {
        match distance {
            Distance::Far => {
                self.index.prefetch_end(slot);
                if let Some(state) = self.states.as_bytes().get(slot as usize * self.size) {
                    naas_stdx::prefetch(state);
                }
            }
            Distance::Near => self.index.prefetch_key(slot),
        }
    }

    /// Makes room for `keys` keys in all (index and states) without growing on the way.
    pub fn reserve(&mut self, keys: usize) {
        self.index.reserve(keys);
        if keys * self.size > self.states.len() {
            self.resize(keys);
        }
    }
}

/// How far ahead of its use an entry is prefetched ([`StateTable::prefetch_entry`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distance {
    Near,
    Far,
}

/// States of a table above this many bytes do not stay in the caches (see [`StateTable::fold`]).
const LARGE_TABLE_BYTES: usize = 1 << 21;
/// Records folded per compiled call when a table is large.
const FOLD_CHUNK: usize = 64;

impl<I: SlotIndex> StateTable<I> {
    /// A table that finds slots with `index` (empty).
    pub fn with_index(aggregation: &Aggregation, index: I) -> StateTable<I> {
        let identity = aggregation.jit().new_state();
        let size = identity.len();
        StateTable {
            index,
            states: AlignedBytes::zeroed(16 * size),
            dst: identity.clone(),
            src: identity.clone(),
            identity,
            size,
        }
    }

    /// Keys in the table.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.len() == 0
    }

    /// The slot of `key`, adding it with the identity state when it is new.
    #[inline]
    pub fn slot(&mut self, key: &I::Key) -> u32 {
        let (slot, added) = self.index.slot(key);
        if added {
            self.add_states(slot as usize);
        }
        slot
    }

    /// Gives the slots from `first` to the index's length (just added) the identity state,
    /// growing the states first if they do not fit.
    fn add_states(&mut self, first: usize) {
        let keys = self.index.len();
        if keys * self.size > self.states.len() {
            let room = self.states.len() / self.size.max(1);
            self.resize(keys.max(room.max(8) * 2));
        }
        let bytes = &mut self.states.as_mut_bytes()[first * self.size..keys * self.size];
        for state in bytes.chunks_exact_mut(self.size.max(1)) {
            state.copy_from_slice(self.identity.as_bytes());
        }
    }

    /// Room for `states` states. The room past the table's keys stays zero pages the system
    /// has not handed out yet: a state is written (the identity) only when its key arrives, so
    /// a table that doubled holds the memory its keys use, not twice that.
    fn resize(&mut self, states: usize) {
        let mut states = AlignedBytes::zeroed(states * self.size);
        let used = self.index.len().min(self.states.len() / self.size.max(1)) * self.size;
        states.as_mut_bytes()[..used].copy_from_slice(&self.states.as_bytes()[..used]);
        self.states = states;
    }

    /// Folds record `i` of `columns` into slot `slots[i]`, a slot this table handed out.
    pub fn fold(&mut self, aggregation: &Aggregation, slots: &[u32], columns: &[Column<'_>]) -> Result<(), CallError> {
        let keys = self.index.len();
        if let Some(bad) = slots.iter().find(|&&s| s as usize >= keys) {
            return Err(CallError::Invalid(format!("slot {bad} is not one of the table's {keys} keys")));
        }
        // With more states than the caches hold, every record's state is a cache miss inside
        // the compiled loop. Folding in chunks, the states of the next chunk are asked for
        // while this one is folded, so their misses overlap instead of following each other.
        if self.states.as_bytes().len() < LARGE_TABLE_BYTES || slots.len() <= FOLD_CHUNK {
            return aggregation.jit().fold_keyed(&mut self.states, slots, columns);
        }
        self.prefetch_states(&slots[..FOLD_CHUNK]);
        let mut chunk_columns = Vec::with_capacity(columns.len());
        for start in (0..slots.len()).step_by(FOLD_CHUNK) {
            let end = (start + FOLD_CHUNK).min(slots.len());
            self.prefetch_states(&slots[end..(end + FOLD_CHUNK).min(slots.len())]);
            chunk_columns.clear();
            chunk_columns.extend(columns.iter().map(|column| column.slice(start..end)));
            aggregation.jit().fold_keyed(&mut self.states, &slots[start..end], &chunk_columns).map_err(|error| {
                match error {
                    // The fault's record is counted from the chunk's first.
                    CallError::Fault(mut fault) => {
                        fault.record += start as u64;
                        CallError::Fault(fault)
                    }
                    other => other,
                }
            })?;
        }
        Ok(())
    }

    /// Asks for the first cache line of each of `slots`' states.
    fn prefetch_states(&self, slots: &[u32]) {
        let states = self.states.as_bytes();
        for &slot in slots {
            if let Some(state) = states.get(slot as usize * self.size) {
                naas_stdx::prefetch(state);
            }
        }
    }

    /// Merges the partial state `src` (bytes of one state) into `key`'s state.
    pub fn merge(&mut self, aggregation: &Aggregation, key: &I::Key, src: &[u8]) -> Result<(), CallError> {
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

    /// Merges the partial state `sources[i]` (bytes of one state, anywhere) into slot
    /// `slots[i]`'s, for every `i`, with one call into the compiled code per batch. A fault
    /// names the index of the entry it met.
    pub fn merge_slots(
        &mut self,
        aggregation: &Aggregation,
        slots: &[u32],
        sources: &[&[u8]],
    ) -> Result<(), (usize, CallError)> {
        let keys = self.index.len();
        if let Some(bad) = slots.iter().position(|&s| s as usize >= keys) {
            let message = format!("slot {} is not one of the table's {keys} keys", slots[bad]);
            return Err((bad, CallError::Invalid(message)));
        }
        self.prefetch_states(slots);
        aggregation.jit().merge_keyed(&mut self.states, slots, sources)
    }

    /// Every (key, partial state) in slot order (the order keys were first met).
    pub fn entries(&self) -> impl Iterator<Item = (&I::Key, &[u8])> + '_ {
        (0..self.index.len() as u32).map(|slot| (self.index.key(slot), self.state(slot)))
    }

    /// The state of `slot`.
    pub fn state(&self, slot: u32) -> &[u8] {
        &self.states.as_bytes()[slot as usize * self.size..(slot as usize + 1) * self.size]
    }

    /// Finishes every key: its result values, flattened, in slot order. A fault names the
    /// slot of the key it met.
    pub fn finish(&self, aggregation: &Aggregation) -> Result<Vec<Vec<Value>>, (u32, CallError)> {
        let mut out = Vec::with_capacity(self.index.len());
        self.finish_each(aggregation, 0..self.index.len() as u32, |_, values| out.push(values.to_vec()))?;
        Ok(out)
    }

    /// Finishes the keys of `slots`, in that order, giving each slot and its flattened result
    /// values to `each` (the values in a buffer reused between keys). A fault names the slot
    /// of the key it met.
    pub fn finish_each(
        &self,
        aggregation: &Aggregation,
        slots: impl IntoIterator<Item = u32>,
        mut each: impl FnMut(u32, &[Value]),
    ) -> Result<(), (u32, CallError)> {
        let mut record = AlignedBytes::zeroed(0);
        let mut values = Vec::new();
        for slot in slots {
            if slot as usize >= self.index.len() {
                return Err((slot, CallError::Invalid(format!("slot {slot} is not in the table"))));
            }
            values.clear();
            let state = self.state(slot);
            aggregation.jit().finish_each(state, &mut record, |s| values.push(to_value(s))).map_err(|e| (slot, e))?;
            each(slot, &values);
        }
        Ok(())
    }

    /// The key of `slot`.
    pub fn key(&self, slot: u32) -> &I::Key {
        self.index.key(slot)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use std::collections::HashMap;

    use super::*;

    const REDUCE: &str = "aggregate s(x: i64) -> tuple[i64, u64]:\n    return sum(x), count()\n";

    /// A table too large for the caches folds in chunks: the states are those of folding
    /// record by record, and a fault names its record counted from the batch's first.
    #[test]
    fn large_tables_fold_in_chunks_as_record_by_record() {
        let source = "aggregate s(x: i64) -> tuple[i64, u64]:\n    return sum(100 // x), count()\n";
        let agg = Aggregation::from_source("t.naas", source, None).unwrap();
        let mut chunked = StateTable::new(&agg);
        let mut single = StateTable::new(&agg);
        let keys: Vec<Vec<u8>> = (0..200_000).map(|i| format!("key{i}").into_bytes()).collect();
        for key in &keys {
            chunked.slot(key);
            single.slot(key);
        }
        assert!(chunked.states.as_bytes().len() >= LARGE_TABLE_BYTES);
        let slots: Vec<u32> = (0..4000u32).map(|i| (i * 7919) % 200_000).collect();
        let xs: Vec<i64> = (0..4000).map(|i| i % 9 + 1).collect();
        chunked.fold(&agg, &slots, &[Column::I64(&xs)]).unwrap();
        for (slot, x) in slots.iter().zip(&xs) {
            single.fold(&agg, &[*slot], &[Column::I64(&[*x])]).unwrap();
        }
        assert_eq!(chunked.states.as_bytes(), single.states.as_bytes());
        let mut zero = xs.clone();
        zero[1000] = 0;
        let Err(CallError::Fault(fault)) = chunked.fold(&agg, &slots, &[Column::I64(&zero)]) else {
            panic!("no fault")
        };
        assert_eq!(fault.record, 1000);
    }

    #[test]
    fn folds_merges_and_finishes_by_key() {
        let agg = Aggregation::from_source("t.naas", REDUCE, None).unwrap();
        let mut map_side = StateTable::new(&agg);
        let keys = ["a", "b", "a", "c", "a"];
        let slots: Vec<u32> = keys.iter().map(|k| map_side.slot(k.as_bytes())).collect();
        let xs = [1i64, 2, 3, 4, 5];
        map_side.fold(&agg, &slots, &[Column::I64(&xs)]).unwrap();
        // Enough keys to grow the table several times.
        let many: Vec<u32> = (0..100).map(|i| map_side.slot(format!("k{i}").as_bytes())).collect();
        map_side.fold(&agg, &many, &[Column::I64(&[7; 100])]).unwrap();

        let mut reduce_side: StateTable<ValueIndex<String>> = StateTable::with_index(&agg, ValueIndex::default());
        for _ in 0..2 {
            for (key, state) in map_side.entries() {
                reduce_side.merge(&agg, &String::from_utf8(key.to_vec()).unwrap(), state).unwrap();
            }
        }
        let finished = reduce_side.finish(&agg).unwrap();
        let results: HashMap<&str, &Vec<Value>> = (0..reduce_side.len() as u32)
            .map(|slot| (reduce_side.key(slot).as_str(), &finished[slot as usize]))
            .collect();
        assert_eq!(results["a"], &vec![Value::Int(18), Value::UInt(6)]);
        assert_eq!(results["c"], &vec![Value::Int(8), Value::UInt(2)]);
        assert_eq!(results["k99"], &vec![Value::Int(14), Value::UInt(2)]);
        assert_eq!(results.len(), 103);
    }

    /// A batch merge reads sources where they lie, at any alignment, and gives what merging
    /// them one by one gives; a slot outside the table or a source of the wrong size is refused.
    #[test]
    fn batch_merges_of_unaligned_states_are_merges_one_by_one() {
        let source = "aggregate s(x: i64) -> tuple[i64, u64]:\n    return sum(x), count()\n";
        let agg = Aggregation::from_source("t.naas", source, None).unwrap();
        let mut map_side = StateTable::new(&agg);
        let keys: Vec<u32> = (0..50).map(|i| map_side.slot(format!("k{}", i % 7).as_bytes())).collect();
        let xs: Vec<i64> = (0..50).map(|i| i * 3 - 40).collect();
        map_side.fold(&agg, &keys, &[Column::I64(&xs)]).unwrap();
        let size = agg.state_size();
        // Every state one byte past an aligned address.
        let mut bytes = vec![0u8; 1 + map_side.len() * size];
        for (slot, (_, state)) in map_side.entries().enumerate() {
            bytes[1 + slot * size..1 + (slot + 1) * size].copy_from_slice(state);
        }
        let sources: Vec<&[u8]> = (0..map_side.len()).map(|s| &bytes[1 + s * size..1 + (s + 1) * size]).collect();
        let (mut batched, mut single) = (StateTable::new(&agg), StateTable::new(&agg));
        for (key, _) in map_side.entries() {
            batched.slot(key);
            single.slot(key);
        }
        let slots: Vec<u32> = (0..map_side.len() as u32).rev().collect();
        let sources: Vec<&[u8]> = slots.iter().map(|&s| sources[s as usize]).collect();
        for _ in 0..2 {
            batched.merge_slots(&agg, &slots, &sources).unwrap();
            for (slot, source) in slots.iter().zip(&sources) {
                single.merge_slot(&agg, *slot, source).unwrap();
            }
        }
        assert_eq!(batched.states.as_bytes(), single.states.as_bytes());
        assert!(matches!(batched.merge_slots(&agg, &[0, 9], &sources[..2]), Err((1, CallError::Invalid(_)))));
        assert!(matches!(batched.merge_slots(&agg, &[0], &[&bytes[..3]]), Err((0, CallError::Invalid(_)))));
    }

    #[test]
    fn slots_outside_the_used_table_are_rejected() {
        let agg = Aggregation::from_source("t.naas", REDUCE, None).unwrap();
        let mut table = StateTable::new(&agg);
        table.slot(b"a");
        let error = table.fold(&agg, &[1], &[Column::I64(&[1])]).unwrap_err();
        assert!(matches!(error, CallError::Invalid(_)), "{error:?}");
        assert!(table.merge_slot(&agg, 0, &[0; 3]).is_err());
    }
}
