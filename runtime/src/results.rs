//! A job's results by key, laid out flat.
//!
//! A million keys' results as a million `(Vec<u8>, Vec<Value>)` pairs cost two allocations
//! and about 150 bytes of heap per key, and every pass over them in key order (merging the
//! reducers' runs, formatting the output) follows two pointers per key to wherever the
//! allocator put them. Here the keys' bytes are one buffer, their ends another, and the
//! values a third, `width` per key: about 8 bytes plus the key and the values per key, read
//! front to back.

use crate::value::Value;

/// Results by key: key `i` and its `width` flattened result values. The order is the
/// producer's (engines return them sorted by key bytes; see [`crate::key_order`]).
#[derive(Clone, Debug, Default)]
pub struct KeyResults {
    width: usize,
    keys: Vec<u8>,
    /// Where each key ends in `keys` (it starts where the one before it ends).
    ends: Vec<usize>,
    values: Vec<Value>,
}

impl KeyResults {
    /// No results yet, `width` values per key.
    pub fn new(width: usize) -> KeyResults {
        KeyResults { width, ..KeyResults::default() }
    }

    /// No results yet, with room for `keys` keys of `key_bytes` bytes in all.
    pub fn with_capacity(width: usize, keys: usize, key_bytes: usize) -> KeyResults {
        KeyResults {
            width,
            keys: Vec::with_capacity(key_bytes),
            ends: Vec::with_capacity(keys),
            values: Vec::with_capacity(keys * width),
        }
    }

    /// Results from rows of a key and its values (every row `width` values).
    pub fn from_rows(width: usize, rows: impl IntoIterator<Item = (Vec<u8>, Vec<Value>)>) -> KeyResults {
        let mut results = KeyResults::new(width);
        for (key, values) in rows {
            results.push(&key, &values);
        }
        results
    }

    /// Results from rows that came from outside this process (another process's output):
    /// `None` unless every row has as many values as the first.
    pub fn checked_from_rows(rows: impl IntoIterator<Item = (Vec<u8>, Vec<Value>)>) -> Option<KeyResults> {
        let mut rows = rows.into_iter().peekable();
        let width = rows.peek().map_or(0, |(_, values)| values.len());
        let mut results = KeyResults::new(width);
        for (key, values) in rows {
            if values.len() != width {
                return None;
            }
            results.push(&key, &values);
        }
        Some(results)
    }

    /// Values per key.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Keys.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of all keys together.
    pub fn key_bytes(&self) -> usize {
        self.keys.len()
    }

    /// Appends a key and its values.
    ///
    /// # Panics
    /// If `values` is not `width` long (a broken invariant of the caller).
    pub fn push(&mut self, key: &[u8], values: &[Value]) {
        assert_eq!(values.len(), self.width, "a result row of the wrong width");
        self.keys.extend_from_slice(key);
        self.ends.push(self.keys.len());
        self.values.extend_from_slice(values);
    }

    /// Appends a key whose values [`Self::push_value`] appends next: `width` of them.
    pub fn push_key(&mut self, key: &[u8]) {
        self.keys.extend_from_slice(key);
        self.ends.push(self.keys.len());
    }

    /// Appends one value of the last key pushed with [`Self::push_key`].
    pub fn push_value(&mut self, value: Value) {
        self.values.push(value);
    }

    /// True when every key has its `width` values (after [`Self::push_key`] and
    /// [`Self::push_value`]).
    pub fn is_complete(&self) -> bool {
        self.values.len() == self.ends.len() * self.width
    }

    /// Key `i`'s bytes.
    pub fn key(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.keys[start..self.ends[i]]
    }

    /// Key `i`'s values.
    pub fn values(&self, i: usize) -> &[Value] {
        &self.values[i * self.width..(i + 1) * self.width]
    }

    /// Key `i` and its values.
    pub fn get(&self, i: usize) -> (&[u8], &[Value]) {
        (self.key(i), self.values(i))
    }

    /// Every key and its values, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &[Value])> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Appends `other`'s results (of the same width, unless one of the two is empty) after
    /// these.
    pub fn append(&mut self, other: &KeyResults) {
        if other.is_empty() {
            return;
        }
        if self.is_empty() {
            self.width = other.width;
        }
        assert_eq!(other.width, self.width, "results of different widths");
        let base = self.keys.len();
        self.keys.extend_from_slice(&other.keys);
        self.ends.extend(other.ends.iter().map(|end| base + end));
        self.values.extend_from_slice(&other.values);
    }

    /// The results as rows (for tests and small result sets).
    pub fn to_rows(&self) -> Vec<(Vec<u8>, Vec<Value>)> {
        self.iter().map(|(key, values)| (key.to_vec(), values.to_vec())).collect()
    }
}

/// Equal when they hold the same keys with the same values in the same order (the width of
/// two empty results does not matter).
impl PartialEq for KeyResults {
    fn eq(&self, other: &KeyResults) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_come_back_as_pushed() {
        let mut results = KeyResults::new(2);
        results.push(b"b", &[Value::Int(1), Value::UInt(2)]);
        results.push(b"", &[Value::Float(0.5), Value::Bool(true)]);
        results.push_key(b"aa");
        results.push_value(Value::Int(-3));
        assert!(!results.is_complete());
        results.push_value(Value::Int(4));
        assert!(results.is_complete());
        assert_eq!(results.len(), 3);
        assert_eq!(results.get(1), (&b""[..], &[Value::Float(0.5), Value::Bool(true)][..]));
        assert_eq!(results.key(2), b"aa");
        let mut both = KeyResults::new(2);
        both.append(&results);
        both.append(&results);
        assert_eq!(both.len(), 6);
        assert_eq!(both.get(5), results.get(2));
        assert_eq!(KeyResults::from_rows(2, results.to_rows()), results);
        assert_eq!(KeyResults::new(0), KeyResults::new(3));
        assert_eq!(KeyResults::checked_from_rows(results.to_rows()), Some(results.clone()));
        let ragged = vec![(b"a".to_vec(), vec![Value::Int(1)]), (b"b".to_vec(), vec![])];
        assert_eq!(KeyResults::checked_from_rows(ragged), None);
        assert_ne!(both, results);
    }
}
