//! Results in key order: every engine prints its keys sorted by their bytes.
//!
//! With a million keys, sorting the results by comparing their keys was most of the reduce
//! side's time: every comparison follows two pointers to keys scattered over the heap (a
//! cache miss each) before `memcmp` looks at them. Here each key is first summarised by its
//! first eight bytes read as one big-endian integer (its *prefix*; shorter keys are padded with
//! zeros), which orders keys as their bytes do whenever two prefixes differ. Sorting and
//! merging compare prefixes held in one dense array, and look at the keys themselves only when
//! two prefixes are equal (keys that share their first eight bytes).

use std::cmp::Ordering;

use crate::executor::KeyResults;

/// Results sorted by key, with the prefix of each one's key (see the module comment).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SortedResults {
    pub results: KeyResults,
    prefixes: Vec<u64>,
}

impl SortedResults {
    /// The results, sorted by key.
    pub fn into_results(self) -> KeyResults {
        self.results
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

/// Sorts `results` by key.
pub fn sort(results: KeyResults) -> SortedResults {
    let mut order: Vec<(u64, usize)> = results.iter().enumerate().map(|(i, (key, _))| (prefix(key), i)).collect();
    order.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| results[a.1].0.cmp(&results[b.1].0)));
    let mut unsorted = results;
    let mut sorted = Vec::with_capacity(unsorted.len());
    let mut prefixes = Vec::with_capacity(unsorted.len());
    for (prefix, i) in order {
        // Taking leaves an empty key and row behind, which allocate nothing.
        sorted.push(std::mem::take(&mut unsorted[i]));
        prefixes.push(prefix);
    }
    SortedResults { results: sorted, prefixes }
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
    let len = left.results.len() + right.results.len();
    let mut out = SortedResults { results: Vec::with_capacity(len), prefixes: Vec::with_capacity(len) };
    let mut left_items = left.results.into_iter().zip(left.prefixes).peekable();
    let mut right_items = right.results.into_iter().zip(right.prefixes).peekable();
    loop {
        let take_left = match (left_items.peek(), right_items.peek()) {
            (Some(l), Some(r)) => compare(l, r) != Ordering::Greater,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_left { left_items.next() } else { right_items.next() };
        if let Some((result, prefix)) = next {
            out.results.push(result);
            out.prefixes.push(prefix);
        }
    }
    out
}

type Item = ((Vec<u8>, Vec<crate::value::Value>), u64);

fn compare(a: &Item, b: &Item) -> Ordering {
    a.1.cmp(&b.1).then_with(|| a.0 .0.cmp(&b.0 .0))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::value::Value;

    /// Results whose row says which run they came from (equal keys within a run are equal
    /// results, so only the order between runs is observable).
    fn keyed(keys: &[Vec<u8>], run: usize) -> KeyResults {
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
            let mut expected: KeyResults = Vec::new();
            let mut sorted_runs = Vec::new();
            for (run, keys) in runs.iter().enumerate() {
                let results = keyed(keys, run);
                let sorted = sort(results.clone());
                let mut reference = results.clone();
                reference.sort_by(|a, b| a.0.cmp(&b.0));
                let got: Vec<&Vec<u8>> = sorted.results.iter().map(|r| &r.0).collect();
                let want: Vec<&Vec<u8>> = reference.iter().map(|r| &r.0).collect();
                prop_assert_eq!(got, want);
                expected.extend(reference);
                sorted_runs.push(sorted);
            }
            // Stable: equal keys keep their runs' order.
            expected.sort_by(|a, b| a.0.cmp(&b.0));
            prop_assert_eq!(merge(sorted_runs).into_results(), expected);
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
