//! The per-key index of a state table: key bytes to a dense slot number, with one hash and,
//! on a hit, one key comparison per lookup, and no allocation per key.
//!
//! Keys are stored once, back to back in one arena, with their hashes beside them. The hash
//! table's entries are 16 bytes: the slot, the key's length, and either the key itself (keys of
//! at most 8 bytes, packed into a word) or its offset in the arena. A lookup hashes the key's
//! bytes once (foldhash); hashbrown's control bytes (7 bits of the hash) rule out almost every
//! other entry, and a candidate is confirmed from the entry alone for a short key (one word
//! compared) or with one comparison of arena bytes for a long one. With many keys every probe
//! is a cache miss, so this counts: a lookup touches the control bytes and one entry (and the
//! arena for a long key), not a slot array, an offset array and the arena as well. Growing the
//! table rehashes nothing: it reads the stored hashes. Compared with a `HashMap<String, u32>`
//! plus a `Vec<String>` of the same keys (two owned copies, an allocation and 24 bytes of
//! header each), a million 8-byte keys take about 50 MB less.

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

/// An entry of the hash table: everything a probe needs to confirm a key.
#[derive(Clone, Copy, Debug)]
struct Entry {
    slot: u32,
    len: u32,
    /// The key packed little-endian (zero-padded) when `len <= 8`, else its offset in the arena.
    data: u64,
}

/// The longest key kept inside its table entry.
const INLINE: usize = 8;

/// `key` (at most [`INLINE`] bytes) as one word, zero-padded.
#[inline]
fn pack(key: &[u8]) -> u64 {
    let mut word = [0u8; INLINE];
    word[..key.len()].copy_from_slice(key);
    u64::from_le_bytes(word)
}

/// Key bytes to slot numbers `0..len()`, in order of first insertion.
#[derive(Clone, Debug)]
pub struct KeyIndex<S = KeyHasher> {
    /// Entries, found by hash.
    table: HashTable<Entry>,
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
        self.find(hash, key)
    }

    /// The slot of `key` (whose hash is `hash`), if present.
    #[inline]
    fn find(&self, hash: u64, key: &[u8]) -> Option<u32> {
        let arena = &self.arena;
        let found = if key.len() <= INLINE {
            let word = pack(key);
            self.table.find(hash, |entry| entry.len as usize == key.len() && entry.data == word)
        } else {
            self.table.find(hash, |entry| {
                entry.len as usize == key.len() && &arena[entry.data as usize..][..key.len()] == key
            })
        };
        found.map(|entry| entry.slot)
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
        if let Some(slot) = self.find(hash, key) {
            return (slot, false);
        }
        let KeyIndex { table, hashes, ends, arena, .. } = self;
        // Slots are u32 in the native ABI; 4 G keys would need 4 G states in memory first.
        // Keys are at most 1 MiB (the input's limit), so a length fits u32.
        let slot = u32::try_from(ends.len()).unwrap_or(u32::MAX);
        let len = u32::try_from(key.len()).unwrap_or(u32::MAX);
        let data = if key.len() <= INLINE { pack(key) } else { arena.len() as u64 };
        arena.extend_from_slice(key);
        ends.push(arena.len());
        hashes.push(hash);
        table.insert_unique(hash, Entry { slot, len, data }, |entry| hashes[entry.slot as usize]);
        (slot, true)
    }

    /// Bytes of memory the index holds (capacity, not length).
    pub fn memory(&self) -> usize {
        self.table.capacity() * (std::mem::size_of::<Entry>() + 1)
            + self.hashes.capacity() * std::mem::size_of::<u64>()
            + self.ends.capacity() * std::mem::size_of::<usize>()
            + self.arena.capacity()
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
        // 16-byte entries and a control byte at up to 87.5% load, an 8-byte hash, an 8-byte
        // end offset and the key: about 50 bytes a key.
        assert!(index.memory() < 50_000 * 64, "{} bytes", index.memory());
    }

    #[test]
    fn short_keys_differing_only_in_trailing_zero_bytes_are_different_keys() {
        // Packed into a word, `a` and `a\0` are the same bits: the length tells them apart.
        let keys: Vec<Vec<u8>> = vec![b"a".to_vec(), b"a\0".to_vec(), b"a\0\0\0\0\0\0\0".to_vec(), Vec::new(), vec![0]];
        agrees(KeyIndex::new(), &keys);
        agrees(KeyIndex::with_hasher(Constant), &keys);
        let mut index = KeyIndex::new();
        let slots: Vec<u32> = keys.iter().map(|key| index.slot(key).0).collect();
        assert_eq!(slots, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn the_hash_is_the_same_on_every_run() {
        // A fixed seed: slot order, and so output order, must not depend on the process.
        assert_eq!(KeyIndex::new().hash(b"abc"), KeyIndex::new().hash(b"abc"));
        assert_ne!(KeyIndex::new().hash(b"abc"), KeyIndex::new().hash(b"abd"));
    }
}
