//! Results in key order: every engine prints its keys sorted by their bytes.
//!
//! With a million keys, sorting the results by comparing their keys was most of the reduce
//! side's time: every comparison follows two pointers to keys scattered over the heap (a
//! cache miss each) before `memcmp` looks at them. Here each key is first summarised by its
//! first eight bytes read as one big-endian integer (its *prefix*; shorter keys are padded with
//! zeros), which orders keys as their bytes do whenever two prefixes differ. Sorting and
//! merging compare prefixes held in one dense array, and look at the keys themselves only when
//! two prefixes are equal (keys that share their first eight bytes).

use naas_target_native::CallError;

use crate::aggregation::Aggregation;
use crate::results::KeyResults;
use crate::table::StateTable;

/// Results sorted by key, with the prefix of each one's key (see the module comment).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SortedResults {
    results: KeyResults,
    prefixes: Vec<u64>,
}

impl SortedResults {
    /// The results, sorted by key.
    pub fn into_results(self) -> KeyResults {
        self.results
    }

    /// The results, sorted by key.
    pub fn results(&self) -> &KeyResults {
        &self.results
    }

    /// Appends result `i` of `from` with its key's prefix.
    fn push_from(&mut self, from: &SortedResults, i: usize) {
        let (key, values) = from.results.get(i);
        self.results.push(key, values);
        self.prefixes.push(from.prefixes[i]);
    }
}

/// The first eight bytes of `key` as a big-endian integer, zero-padded. If two keys' prefixes
/// differ, they order the keys as their bytes do: the first differing byte is within the first
/// eight, and a padding zero is never above the byte it stands against.
pub fn prefix(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = key.len().min(8);
    bytes[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(bytes)
}

/// The order of `count` keys by their bytes: `(prefix, index)` pairs, sorted (equal keys in
/// any order).
fn order<'k>(count: usize, key: impl Fn(usize) -> &'k [u8]) -> Vec<(u64, usize)> {
    let mut order: Vec<(u64, usize)> = (0..count).map(|i| (prefix(key(i)), i)).collect();
    order.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| key(a.1).cmp(key(b.1))));
    order
}

/// Sorts `results` by key.
pub fn sort(results: KeyResults) -> SortedResults {
    let order = order(results.len(), |i| results.key(i));
    let mut sorted = KeyResults::with_capacity(results.width(), results.len(), results.key_bytes());
    let mut prefixes = Vec::with_capacity(results.len());
    for (prefix, i) in order {
        let (key, values) = results.get(i);
        sorted.push(key, values);
        prefixes.push(prefix);
    }
    SortedResults { results: sorted, prefixes }
}

/// Finishes every key of `table` (compiled `finish`) and sorts the results by key. The keys
/// are finished in slot order, where their states and keys lie one after another, and the
/// flat results are then put in key order: moving a result in them costs fewer cache misses
/// than finishing the keys in key order would (each a state and a key somewhere in the
/// table). A fault names the slot of the key it met.
pub fn finish_sorted(table: &StateTable, aggregation: &Aggregation) -> Result<SortedResults, (u32, CallError)> {
    let key_bytes = (0..table.len() as u32).map(|slot| table.key(slot).len()).sum();
    let mut results = KeyResults::with_capacity(aggregation.results().len(), table.len(), key_bytes);
    table.finish_each(aggregation, 0..table.len() as u32, |slot, values| results.push(table.key(slot), values))?;
    Ok(sort(results))
}

/// Merges runs sorted by key into one sorted run (runs merged pairwise, so each result moves
/// once per round and there are log2(runs) rounds). Among equal keys, the earlier run's
/// result comes first.
pub fn merge(runs: Vec<SortedResults>) -> SortedResults {
    let mut runs = runs;
    while runs.len() > 1 {
        let mut merged = Vec::with_capacity(runs.len().div_ceil(2));
        let mut pairs = runs.into_iter();
        while let Some(left) = pairs.next() {
            merged.push(match pairs.next() {
                Some(right) => merge_two(left, right),
                None => left,
            });
        }
        runs = merged;
    }
    runs.pop().unwrap_or_default()
}

fn merge_two(left: SortedResults, right: SortedResults) -> SortedResults {
    if left.prefixes.is_empty() {
        return right;
    }
    if right.prefixes.is_empty() {
        return left;
    }
    let (l, r) = (&left.results, &right.results);
    let len = l.len() + r.len();
    let mut out = SortedResults {
        results: KeyResults::with_capacity(l.width(), len, l.key_bytes() + r.key_bytes()),
        prefixes: Vec::with_capacity(len),
    };
    let (mut i, mut j) = (0, 0);
    while i < l.len() && j < r.len() {
        // Tuples compare their second members only when the first are equal: the keys'
        // bytes are read only when their prefixes tie.
        if (left.prefixes[i], l.key(i)) <= (right.prefixes[j], r.key(j)) {
            out.push_from(&left, i);
            i += 1;
        } else {
            out.push_from(&right, j);
            j += 1;
        }
    }
    for i in i..l.len() {
        out.push_from(&left, i);
    }
    for j in j..r.len() {
        out.push_from(&right, j);
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::value::Value;

    /// Results whose row says which run they came from (equal keys within a run are equal
    /// results, so only the order between runs is observable).
    fn keyed(keys: &[Vec<u8>], run: usize) -> Vec<(Vec<u8>, Vec<Value>)> {
        keys.iter().map(|k| (k.clone(), vec![Value::UInt(run as u64)])).collect()
    }

    /// Keys from a small alphabet with zero bytes, of lengths around the prefix's eight, so
    /// that prefixes often tie and padding meets real zeros.
    fn key() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(prop::sample::select(vec![0u8, 1, b'a', 255]), 0..12)
    }

    proptest! {
        #![proptest_config(naas_test_support::proptest_config(1))]
        #[test]
        fn sorting_and_merging_agree_with_sorting_by_bytes(
            runs in prop::collection::vec(prop::collection::vec(key(), 0..40), 0..5),
        ) {
            let mut expected = Vec::new();
            let mut sorted_runs = Vec::new();
            for (run, keys) in runs.iter().enumerate() {
                let results = keyed(keys, run);
                let sorted = sort(KeyResults::from_rows(1, results.clone()));
                let mut reference = results.clone();
                reference.sort_by(|a, b| a.0.cmp(&b.0));
                let got: Vec<&[u8]> = sorted.results.iter().map(|r| r.0).collect();
                let want: Vec<&[u8]> = reference.iter().map(|r| &r.0[..]).collect();
                prop_assert_eq!(got, want);
                expected.extend(reference);
                sorted_runs.push(sorted);
            }
            // Stable: equal keys keep their runs' order.
            expected.sort_by(|a, b| a.0.cmp(&b.0));
            prop_assert_eq!(merge(sorted_runs).into_results().to_rows(), expected);
        }
    }

    #[test]
    fn prefixes_order_keys_as_their_bytes_when_they_differ() {
        assert!(prefix(b"ab") < prefix(b"ab\x01"));
        assert_eq!(prefix(b"ab"), prefix(b"ab\0"));
        assert!(prefix(b"k9") > prefix(b"k10"));
        assert_eq!(prefix(b"abcdefgh1"), prefix(b"abcdefgh2"));
        assert_eq!(prefix(b""), 0);
    }
}
