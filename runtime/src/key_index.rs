//! The per-key index of a state table: key bytes to a dense slot number, with one hash and,
//! on a hit, one key comparison per lookup, and no allocation per key.
//!
//! Keys are stored once, back to back in one arena, with their hashes beside them. The hash
//! table is open addressing with linear probing over 16-byte entries: a tag (the hash's high
//! bits and the key's length), the slot, and either the key itself (keys of at most 8 bytes,
//! packed into a word) or its offset in the arena. A lookup hashes the key's bytes once
//! (foldhash) and reads consecutive entries from the hash's position: the tag rules out almost
//! every other key, and a candidate is confirmed from the entry alone for a short key (one word
//! compared) or with one comparison of arena bytes for a long one. With many keys every probe
//! is a cache miss, so this is the cost that matters: one cache line of the table per lookup
//! (and the arena for a long key), never a separate slot, offset or hash array.
//!
//! [`KeyIndex::slots`] looks up a whole batch: it hashes every key first and asks the cache for
//! each key's table line, then probes, so the misses of a batch overlap instead of following
//! each other (a state table with a million keys does not fit any cache). Growing the table
//! rehashes nothing: it reads the stored hashes. Compared with a `HashMap<String, u32>` plus a
//! `Vec<String>` of the same keys (two owned copies, an allocation and 24 bytes of header
//! each), a million 8-byte keys take about 50 MB less.

use std::hash::BuildHasher;

use naas_stdx::prefetch;

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
    /// The hash's high 24 bits and the key's length (255 for any longer key).
    tag: u32,
    /// The key's slot, or [`EMPTY`].
    slot: u32,
    /// The key packed little-endian (zero-padded) when it has at most [`INLINE`] bytes, else
    /// its offset in the arena.
    data: u64,
}

/// The slot of an empty entry (no key gets it: slots are below the number of keys, and a
/// table never holds `u32::MAX` keys, see [`KeyIndex::slot_hashed`]).
const EMPTY: u32 = u32::MAX;

const VACANT: Entry = Entry { tag: 0, slot: EMPTY, data: 0 };

/// The longest key kept inside its table entry.
const INLINE: usize = 8;

/// Lookups hashed and prefetched ahead of the probe in [`KeyIndex::slots`].
const AHEAD: usize = 16;

/// `key` (at most [`INLINE`] bytes) as one word, zero-padded.
#[inline]
fn pack(key: &[u8]) -> u64 {
    let mut word = [0u8; INLINE];
    word[..key.len()].copy_from_slice(key);
    u64::from_le_bytes(word)
}

#[inline]
fn tag(hash: u64, len: usize) -> u32 {
    ((hash >> 40) as u32) << 8 | len.min(255) as u32
}

/// Key bytes to slot numbers `0..len()`, in order of first insertion.
#[derive(Clone, Debug)]
pub struct KeyIndex<S = KeyHasher> {
    /// A power of two of entries, at most 7/10 full.
    table: Vec<Entry>,
    /// The hash of each slot's key.
    hashes: Vec<u64>,
    /// Where each slot's key ends in `arena`; it starts where the previous one ends.
    ends: Vec<usize>,
    /// Every key's bytes, in slot order.
    arena: Vec<u8>,
    hasher: S,
    /// Scratch for [`KeyIndex::slots`]: the hashes of a batch.
    batch_hashes: Vec<u64>,
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
        KeyIndex {
            table: vec![VACANT; 16],
            hashes: Vec::new(),
            ends: Vec::new(),
            arena: Vec::new(),
            hasher,
            batch_hashes: Vec::new(),
        }
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

    /// Asks the cache for where `slot`'s key ends (see [`Self::prefetch_key`]).
    pub fn prefetch_end(&self, slot: u32) {
        if let Some(end) = self.ends.get(slot as usize) {
            prefetch(end);
        }
    }

    /// Asks the cache for `slot`'s key bytes; best after [`Self::prefetch_end`] had time to
    /// bring in where the key starts.
    pub fn prefetch_key(&self, slot: u32) {
        let start = if slot == 0 { 0 } else { self.ends.get(slot as usize - 1).copied().unwrap_or(0) };
        if let Some(byte) = self.arena.get(start) {
            prefetch(byte);
        }
    }

    /// Every key, in slot order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        (0..self.len() as u32).map(|slot| self.key(slot))
    }

    /// The slot of `key`, if present.
    pub fn get(&self, key: &[u8]) -> Option<u32> {
        self.find(self.hash(key), key).ok()
    }

    /// The slot of `key` (whose hash is `hash`), or the position of the empty entry where it
    /// would go.
    #[inline]
    fn find(&self, hash: u64, key: &[u8]) -> Result<u32, usize> {
        let mask = self.table.len() - 1;
        let tag = tag(hash, key.len());
        let mut at = hash as usize & mask;
        if key.len() <= INLINE {
            let word = pack(key);
            loop {
                let entry = self.table[at];
                if entry.slot == EMPTY {
                    return Err(at);
                }
                if entry.tag == tag && entry.data == word {
                    return Ok(entry.slot);
                }
                at = (at + 1) & mask;
            }
        }
        loop {
            let entry = self.table[at];
            if entry.slot == EMPTY {
                return Err(at);
            }
            if entry.tag == tag && self.key(entry.slot) == key {
                return Ok(entry.slot);
            }
            at = (at + 1) & mask;
        }
    }

    /// The slot of `key`, which is added (with the next slot number) when it is new; `true`
    /// when it was added.
    #[inline]
    pub fn slot(&mut self, key: &[u8]) -> (u32, bool) {
        let hash = self.hash(key);
        self.slot_hashed(hash, key)
    }

    /// [`Self::slot`] with the key's hash already computed (by [`Self::hash`]).
    #[inline]
    pub fn slot_hashed(&mut self, hash: u64, key: &[u8]) -> (u32, bool) {
        let at = match self.find(hash, key) {
            Ok(slot) => return (slot, false),
            Err(at) => at,
        };
        // Slots are u32 in the native ABI, and u32::MAX marks an empty entry; 4 G keys would
        // need 4 G states in memory first.
        let slot = u32::try_from(self.ends.len()).unwrap_or(EMPTY - 1).min(EMPTY - 1);
        let data = if key.len() <= INLINE { pack(key) } else { self.arena.len() as u64 };
        self.table[at] = Entry { tag: tag(hash, key.len()), slot, data };
        self.arena.extend_from_slice(key);
        self.ends.push(self.arena.len());
        self.hashes.push(hash);
        if self.ends.len() * 10 > self.table.len() * 7 {
            self.grow();
        }
        (slot, true)
    }

    /// The slots of a batch of keys, in order (new keys are added in order, as [`Self::slot`]
    /// one by one would): key `i` is `keys[ends[i - 1]..ends[i]]` (from 0 for the first).
    /// Results are appended to `out`.
    pub fn slots(&mut self, keys: &[u8], ends: &[usize], out: &mut Vec<u32>) {
        self.slots_of(ends.len(), |i| &keys[if i == 0 { 0 } else { ends[i - 1] }..ends[i]], out);
    }

    /// [`Self::slots`] for `count` keys wherever they are: key `i` is `key(i)` (so that keys
    /// read from a wire buffer are looked up where they lie, not copied first).
    pub fn slots_of<'k>(&mut self, count: usize, key: impl Fn(usize) -> &'k [u8], out: &mut Vec<u32>) {
        let mut hashes = std::mem::take(&mut self.batch_hashes);
        hashes.clear();
        hashes.extend((0..count).map(|i| self.hash(key(i))));
        out.reserve(count);
        for &hash in hashes.iter().take(AHEAD) {
            prefetch(&self.table[hash as usize & (self.table.len() - 1)]);
        }
        for i in 0..count {
            // Ask for the line a later key will probe; by the time it is probed, it is there.
            if let Some(&ahead) = hashes.get(i + AHEAD) {
                prefetch(&self.table[ahead as usize & (self.table.len() - 1)]);
            }
            out.push(self.slot_hashed(hashes[i], key(i)).0);
        }
        self.batch_hashes = hashes;
    }

    /// Makes room for `keys` keys in all without growing again (one rehash now instead of a
    /// doubling, a copy and fresh pages at every power of two on the way).
    pub fn reserve(&mut self, keys: usize) {
        self.hashes.reserve(keys.saturating_sub(self.hashes.len()));
        self.ends.reserve(keys.saturating_sub(self.ends.len()));
        // The table grows past 70% full (see `slot_hashed`).
        let entries = keys.saturating_mul(10) / 7 + 1;
        let wanted = entries.checked_next_power_of_two().unwrap_or(entries);
        if wanted > self.table.len() {
            self.rehash(wanted);
        }
    }

    /// Doubles the table and puts every key back at its hash's position.
    fn grow(&mut self) {
        self.rehash(self.table.len() * 2);
    }

    /// Puts every key at its hash's position in a table of `entries` (a power of two).
    fn rehash(&mut self, entries: usize) {
        let mut table = vec![VACANT; entries];
        let mask = table.len() - 1;
        for entry in self.table.iter().filter(|entry| entry.slot != EMPTY) {
            let mut at = self.hashes[entry.slot as usize] as usize & mask;
            while table[at].slot != EMPTY {
                at = (at + 1) & mask;
            }
            table[at] = *entry;
        }
        self.table = table;
    }

    /// Bytes of memory the index holds (capacity, not length).
    pub fn memory(&self) -> usize {
        self.table.capacity() * std::mem::size_of::<Entry>()
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

        /// Reserving room (before any key, or after some) changes no slot.
        #[test]
        fn agrees_with_a_btree_map_after_reserving(keys in keys(), room in 0usize..300, after in 0usize..50) {
            let mut index = KeyIndex::new();
            let after = after.min(keys.len());
            for key in &keys[..after] {
                index.slot(key);
            }
            index.reserve(room);
            let entries = index.table.len();
            prop_assert!(entries * 7 >= room * 10, "{entries} entries for {room} keys");
            let mut expected = KeyIndex::new();
            for key in &keys {
                prop_assert_eq!(index.slot(key).0, expected.slot(key).0);
            }
            if index.len() <= room {
                prop_assert_eq!(index.table.len(), entries, "grew within its reserve");
            }
        }

        #[test]
        fn batches_give_the_slots_of_one_by_one_lookups(keys in keys(), cut in 0usize..200) {
            let mut one_by_one = KeyIndex::new();
            let expected: Vec<u32> = keys.iter().map(|key| one_by_one.slot(key).0).collect();
            // Two batches, cut anywhere, on a fresh index.
            let mut batched = KeyIndex::new();
            let mut got = Vec::new();
            let cut = cut.min(keys.len());
            for part in [&keys[..cut], &keys[cut..]] {
                let bytes: Vec<u8> = part.concat();
                let ends: Vec<usize> = part.iter().scan(0, |end, key| { *end += key.len(); Some(*end) }).collect();
                batched.slots(&bytes, &ends, &mut got);
            }
            prop_assert_eq!(got, expected);
            prop_assert_eq!(batched.keys().collect::<Vec<_>>(), one_by_one.keys().collect::<Vec<_>>());
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
        // 16-byte entries at 35-70% load, an 8-byte hash, an 8-byte end offset and the key:
        // at most about 70 bytes a key.
        assert!(index.memory() < 50_000 * 80, "{} bytes", index.memory());
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
