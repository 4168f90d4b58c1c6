//! Results in key order: every engine prints its keys sorted by their bytes.
//!
//! With a million keys, sorting the results by comparing their keys was most of the reduce
//! side's time: every comparison follows two pointers to keys scattered over the heap (a
//! cache miss each) before `memcmp` looks at them. Here each key is first summarised by its
//! first eight bytes read as one big-endian integer (its *prefix*; shorter keys are padded with
//! zeros), which orders keys as their bytes do whenever two prefixes differ. Sorting and
//! merging compare prefixes held in one dense array, and look at the keys themselves only when
//! two prefixes are equal (keys that share their first eight bytes).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use naas_target_native::values::AlignedBytes;
use naas_target_native::CallError;

use crate::aggregation::Aggregation;
use crate::results::KeyResults;
use crate::table::StateTable;
use crate::value::to_value;

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
    sort_ids(&mut order, key);
    order
}

/// Sorts `(prefix, id)` pairs by the keys they stand for (`key(id)` is the key of `id`, and
/// the prefix its [`prefix`]).
pub fn sort_ids<'k, I: Copy>(ids: &mut [(u64, I)], key: impl Fn(I) -> &'k [u8]) {
    ids.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| key(a.1).cmp(key(b.1))));
}

/// True when the keys of `entries` strictly increase (a run of distinct keys in key order, as
/// a map worker seals its table).
pub fn strictly_increasing(entries: &[(&[u8], &[u8])]) -> bool {
    entries.windows(2).all(|pair| {
        let (a, b) = (pair[0].0, pair[1].0);
        match prefix(a).cmp(&prefix(b)) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal => a < b,
        }
    })
}

/// Merges runs of `(key, partial state)` entries, each run's keys strictly increasing (see
/// [`strictly_increasing`]), and finishes every key: the results come out in key order with no
/// hash table and no sort. The states of one key merge in the order of their runs, a batch of
/// keys at a time with one compiled merge call per batch. A fault names the key it met.
pub fn merge_sorted_runs<'r>(
    aggregation: &Aggregation,
    runs: &[Vec<(&'r [u8], &'r [u8])>],
) -> Result<SortedResults, (&'r [u8], CallError)> {
    let size = aggregation.state_size();
    let largest = runs.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = SortedResults {
        results: KeyResults::with_capacity(aggregation.results().len(), largest, 0),
        prefixes: Vec::with_capacity(largest),
    };
    let mut batch = MergeBatch {
        states: AlignedBytes::zeroed(MERGE_BATCH * size),
        keys: Vec::with_capacity(MERGE_BATCH),
        into: Vec::new(),
        from: Vec::new(),
        record: AlignedBytes::zeroed(0),
    };
    // The head of every run, smallest key first; ties (one key in several runs) by run.
    let mut heads: BinaryHeap<Reverse<(u64, &[u8], usize)>> = BinaryHeap::with_capacity(runs.len());
    let mut next = vec![0usize; runs.len()];
    for (run, entries) in runs.iter().enumerate() {
        if let Some(&(key, _)) = entries.first() {
            heads.push(Reverse((prefix(key), key, run)));
        }
    }
    let mut last: Option<&[u8]> = None;
    while let Some(Reverse((key_prefix, key, run))) = heads.pop() {
        let state = runs[run][next[run]].1;
        next[run] += 1;
        if let Some(&(following, _)) = runs[run].get(next[run]) {
            heads.push(Reverse((prefix(following), following, run)));
        }
        if last == Some(key) {
            batch.into.push((batch.keys.len() - 1) as u32);
            batch.from.push(state);
            continue;
        }
        if batch.keys.len() == MERGE_BATCH {
            batch.finish(aggregation, &mut out)?;
        }
        let at = batch.keys.len() * size;
        batch.states.as_mut_bytes()[at..at + size].copy_from_slice(state);
        batch.keys.push((key_prefix, key));
        last = Some(key);
    }
    batch.finish(aggregation, &mut out)?;
    Ok(out)
}

/// Distinct keys merged and finished together by [`merge_sorted_runs`].
const MERGE_BATCH: usize = 1024;

/// A batch of distinct keys in key order: each one's first state in `states`, and the merges
/// still to apply (`into[i]` is the index of the key that `from[i]` merges into).
struct MergeBatch<'r> {
    states: AlignedBytes,
    keys: Vec<(u64, &'r [u8])>,
    into: Vec<u32>,
    from: Vec<&'r [u8]>,
    record: AlignedBytes,
}

impl<'r> MergeBatch<'r> {
    /// Merges and finishes the batch's keys onto `out`, and empties it.
    fn finish(&mut self, aggregation: &Aggregation, out: &mut SortedResults) -> Result<(), (&'r [u8], CallError)> {
        let jit = aggregation.jit();
        let size = aggregation.state_size();
        // Only the batch's keys' states are merged into (`into` indexes them).
        jit.merge_keyed(&mut self.states, &self.into, &self.from)
            .map_err(|(i, error)| (self.keys[self.into[i] as usize].1, error))?;
        for (i, &(key_prefix, key)) in self.keys.iter().enumerate() {
            let state = &self.states.as_bytes()[i * size..(i + 1) * size];
            out.results.push_key(key);
            jit.finish_each(state, &mut self.record, |s| out.results.push_value(to_value(s)))
                .map_err(|error| (key, error))?;
            out.prefixes.push(key_prefix);
        }
        self.keys.clear();
        self.into.clear();
        self.from.clear();
        Ok(())
    }
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
    #![allow(clippy::unwrap_used, reason = "tests")]
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

    proptest! {
        #![proptest_config(naas_test_support::proptest_config(1))]
        /// Merging runs of distinct sorted keys gives what a hash table merging the same
        /// entries in run order gives, sorted; `strictly_increasing` tells such runs apart.
        #[test]
        fn merged_runs_are_the_hash_tables_results(
            runs in prop::collection::vec(prop::collection::vec((key(), -50i64..50), 0..40), 0..5),
        ) {
            let source = "aggregate s(x: i64) -> tuple[i64, u64]:\n    return sum(x), count()\n";
            let agg = Aggregation::from_source("t.naas", source, None).unwrap();
            let mut tables = Vec::new();
            for records in &runs {
                let mut table = StateTable::new(&agg);
                let slots: Vec<u32> = records.iter().map(|(k, _)| table.slot(k)).collect();
                let xs: Vec<i64> = records.iter().map(|(_, x)| *x).collect();
                table.fold(&agg, &slots, &[naas_target_native::values::Column::I64(&xs)]).unwrap();
                tables.push(table);
            }
            let sorted_runs: Vec<Vec<(&[u8], &[u8])>> = tables
                .iter()
                .map(|table| {
                    let mut entries: Vec<(&[u8], &[u8])> = table.entries().collect();
                    entries.sort_by(|a, b| a.0.cmp(b.0));
                    entries
                })
                .collect();
            prop_assert!(sorted_runs.iter().all(|run| strictly_increasing(run)));
            let mut reference = StateTable::new(&agg);
            for run in &sorted_runs {
                for (key, state) in run {
                    reference.merge(&agg, key, state).unwrap();
                }
            }
            let expected = finish_sorted(&reference, &agg).unwrap();
            let merged = merge_sorted_runs(&agg, &sorted_runs).unwrap();
            prop_assert_eq!(merged.results(), expected.results());
            for run in sorted_runs.iter().filter(|run| run.len() > 1) {
                let mut reversed = run.clone();
                reversed.reverse();
                prop_assert!(!strictly_increasing(&reversed));
                let mut repeated = run.clone();
                repeated.insert(1, run[0]);
                prop_assert!(!strictly_increasing(&repeated));
            }
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
