//! The per-key index of a state table: key bytes to a dense slot number, with one hash and,
//! on a hit, one key comparison per lookup, and no allocation per key.
//!
//! Keys are stored once, back to back in one arena, with their hashes beside them; the hash
//! table holds only slot numbers (4 bytes each). A lookup hashes the key's bytes once
//! (foldhash), and the probe compares the stored 64-bit hash before it compares bytes, so a
//! miss almost never touches key bytes and a hit compares them once. Growing the table rehashes
//! nothing: it reads the stored hashes. Compared with a `HashMap<String, u32>` plus a
//! `Vec<String>` of the same keys (two owned copies, an allocation and 24 bytes of header
//! each), a million 8-byte keys take about 30 MB less, and the index's own memory is a few
//! dense arrays that a probe touches in at most two cache lines.

use std::hash::BuildHasher;

use hashbrown::HashTable;

/// The default hasher: foldhash's fast variant with a fixed seed, so that nothing about a
/// table depends on the process it runs in.
pub type KeyHasher = foldhash::fast::FixedState;

/// The fixed seed of [`KeyHasher`].
const KEY_SEED: u64 = 0x6e61_6173_6b65_7973;

/// The hasher of every key index: the same on every run and in every process.
pub fn key_hasher() -> KeyHasher {
    KeyHasher::with_seed(KEY_SEED)
}

/// Key bytes to slot numbers `0..len()`, in order of first insertion.
#[derive(Clone, Debug)]
pub struct KeyIndex<S = KeyHasher> {
    /// Slot numbers, found by hash.
    table: HashTable<u32>,
    /// The hash of each slot's key.
    hashes: Vec<u64>,
    /// Where each slot's key ends in `arena`; it starts where the previous one ends.
    ends: Vec<usize>,
    /// Every key's bytes, in slot order.
    arena: Vec<u8>,
    hasher: S,
}

impl Default for KeyIndex<KeyHasher> {
    fn default() -> Self {
        KeyIndex::with_hasher(key_hasher())
    }
}

impl KeyIndex<KeyHasher> {
    pub fn new() -> Self {
        Self::default()
    }
}

impl<S: BuildHasher> KeyIndex<S> {
    /// An empty index hashing with `hasher` (tests inject degenerate hashers).
    pub fn with_hasher(hasher: S) -> Self {
        KeyIndex { table: HashTable::new(), hashes: Vec::new(), ends: Vec::new(), arena: Vec::new(), hasher }
    }

    /// Keys in the index.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The hash of `key`, as [`Self::slot_hashed`] expects it.
    #[inline]
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The key of `slot`.
    #[inline]
    pub fn key(&self, slot: u32) -> &[u8] {
        let slot = slot as usize;
        let start = if slot == 0 { 0 } else { self.ends[slot - 1] };
        &self.arena[start..self.ends[slot]]
    }

    /// Every key, in slot order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        (0..self.len() as u32).map(|slot| self.key(slot))
    }

    /// The slot of `key`, if present.
    pub fn get(&self, key: &[u8]) -> Option<u32> {
        let hash = self.hash(key);
        self.table.find(hash, |&slot| self.matches(slot, hash, key)).copied()
    }

    /// The slot of `key`, which is added (with the next slot number) when it is new; `true`
    /// when it was added.
    #[inline]
    pub fn slot(&mut self, key: &[u8]) -> (u32, bool) {
        let hash = self.hash(key);
        self.slot_hashed(hash, key)
    }

    /// [`Self::slot`] with the key's hash already computed (by [`Self::hash`]), e.g. while the
    /// key was hot in cache.
    #[inline]
    pub fn slot_hashed(&mut self, hash: u64, key: &[u8]) -> (u32, bool) {
        let KeyIndex { table, hashes, ends, arena, .. } = self;
        let found = table.find(hash, |&slot| {
            let slot = slot as usize;
            hashes[slot] == hash && {
                let start = if slot == 0 { 0 } else { ends[slot - 1] };
                &arena[start..ends[slot]] == key
            }
        });
        if let Some(&slot) = found {
            return (slot, false);
        }
        // Slots are u32 in the native ABI; 4 G keys would need 4 G states in memory first.
        let slot = u32::try_from(ends.len()).unwrap_or(u32::MAX);
        arena.extend_from_slice(key);
        ends.push(arena.len());
        hashes.push(hash);
        table.insert_unique(hash, slot, |&slot| hashes[slot as usize]);
        (slot, true)
    }

    /// Bytes of memory the index holds (capacity, not length).
    pub fn memory(&self) -> usize {
        self.table.capacity() * (std::mem::size_of::<u32>() + 1)
            + self.hashes.capacity() * std::mem::size_of::<u64>()
            + self.ends.capacity() * std::mem::size_of::<usize>()
            + self.arena.capacity()
    }

    fn matches(&self, slot: u32, hash: u64, key: &[u8]) -> bool {
        self.hashes[slot as usize] == hash && self.key(slot) == key
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// Every key hashes to the same value: every lookup probes every key.
    #[derive(Clone, Copy, Debug, Default)]
    struct Constant;

    struct ConstantHasher;

    impl std::hash::Hasher for ConstantHasher {
        fn finish(&self) -> u64 {
            42
        }
        fn write(&mut self, _: &[u8]) {}
    }

    impl BuildHasher for Constant {
        type Hasher = ConstantHasher;
        fn build_hasher(&self) -> ConstantHasher {
            ConstantHasher
        }
    }

    /// Checks `index` against a `BTreeMap` of the same keys, inserted in the same order.
    fn agrees<S: BuildHasher>(mut index: KeyIndex<S>, keys: &[Vec<u8>]) {
        let mut reference: BTreeMap<&[u8], u32> = BTreeMap::new();
        for key in keys {
            let is_new = !reference.contains_key(key.as_slice());
            let next = reference.len() as u32;
            let expected = *reference.entry(key.as_slice()).or_insert(next);
            let (slot, added) = index.slot(key);
            assert_eq!(slot, expected, "key {key:?}");
            assert_eq!(added, is_new, "key {key:?}");
            assert_eq!(index.key(slot), key.as_slice());
        }
        assert_eq!(index.len(), reference.len());
        for (key, slot) in &reference {
            assert_eq!(index.get(key), Some(*slot));
        }
        let by_slot: Vec<&[u8]> = index.keys().collect();
        let mut expected: Vec<(&u32, &&[u8])> = reference.iter().map(|(k, s)| (s, k)).collect();
        expected.sort();
        assert_eq!(by_slot, expected.into_iter().map(|(_, k)| *k).collect::<Vec<_>>());
    }

    /// Keys drawn to collide in interesting ways: empty, one byte, long shared prefixes that
    /// differ only at the end, and prefixes of each other.
    fn keys() -> impl Strategy<Value = Vec<Vec<u8>>> {
        let key = prop_oneof![
            Just(Vec::new()),
            proptest::collection::vec(any::<u8>(), 1..3),
            (0u8..4, 0usize..3).prop_map(|(last, extra)| {
                let mut key = vec![b'p'; 200 + extra];
                key.push(last);
                key
            }),
            (0usize..40).prop_map(|len| vec![b'x'; len]),
        ];
        proptest::collection::vec(key, 0..200)
    }

    proptest! {
        #![proptest_config(naas_test_support::proptest_config(40))]

        #[test]
        fn agrees_with_a_btree_map(keys in keys()) {
            agrees(KeyIndex::new(), &keys);
        }

        #[test]
        fn agrees_with_a_btree_map_when_every_hash_is_equal(keys in keys()) {
            agrees(KeyIndex::with_hasher(Constant), &keys);
        }
    }

    #[test]
    fn many_keys_grow_the_table_without_losing_any() {
        let keys: Vec<Vec<u8>> = (0..50_000u32).map(|i| format!("key-{i}").into_bytes()).collect();
        let mut index = KeyIndex::new();
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(index.slot(key), (i as u32, true));
        }
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(index.slot(key), (i as u32, false));
        }
        assert!(index.memory() < 50_000 * 40, "{} bytes", index.memory());
    }

    #[test]
    fn the_hash_is_the_same_on_every_run() {
        // A fixed seed: slot order, and so output order, must not depend on the process.
        assert_eq!(KeyIndex::new().hash(b"abc"), KeyIndex::new().hash(b"abc"));
        assert_ne!(KeyIndex::new().hash(b"abc"), KeyIndex::new().hash(b"abd"));
    }
}
