//! Timely-dataflow operators: [`NaasAggregate::naas_aggregate`] turns a stream of
//! `(key, record)` into a stream of `(key, result)`, combining records per key and timestamp
//! before the exchange (compiled fold), exchanging partial states by key, and merging and
//! finishing them once the input frontier has passed the timestamp.
//!
//! A record is anything that implements [`Record`]: a `Vec<Value>` in the aggregation's input
//! order ([`crate::Aggregation::inputs`]), or a bare number for an aggregation of one input;
//! wrapped in [`Located`] it also carries the input line it came from.
//! Nothing is dropped silently: a record whose values do not fit the input types, or on which
//! the aggregation faults, turns its key's result into an `Err` ([`KeyError`]) that says why,
//! and a fault keeps its source operation (and the record's line, when known) so that the
//! job can report it exactly as the local engine does.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::rc::Rc;

use naas_lang::ops::Fault;
use naas_lang::span::Span;
use naas_target_native::abi::NativeFault;
use naas_target_native::values::{Column, ColumnBuf};
use naas_target_native::CallError;
use rustc_hash::FxBuildHasher;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;
use timely::order::TotalOrder;
use timely::progress::frontier::MutableAntichain;
use timely::progress::Timestamp;
use timely::ExchangeData;

use crate::aggregation::{Aggregation, LoadError};
use crate::table::{StateTable, ValueIndex};
use crate::value::{push_value, Value, ValueError};

/// The aggregation an operator runs, as source text: every worker compiles it (a few ms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregationSource {
    pub file_name: String,
    pub source: String,
    pub aggregate: Option<String>,
}

impl AggregationSource {
    pub fn load(&self) -> Result<Aggregation, LoadError> {
        Aggregation::from_source(&self.file_name, &self.source, self.aggregate.as_deref())
    }
}

/// A key's result, or why there is none.
pub type KeyedResult<K> = (K, Result<Vec<Value>, KeyError>);
/// A key's partial state (the bytes of the C layout), or why there is none.
type KeyedState<K> = (K, Result<Vec<u8>, KeyError>);

/// Why a key has no result.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum KeyError {
    /// A record's values do not fit the aggregation's inputs, or a native call refused its
    /// buffers.
    Invalid(String),
    /// The aggregation faulted: on one of the key's records, or merging or finishing its states.
    Fault(KeyFault),
}

impl KeyError {
    /// Orders the errors of one key (or of a job) as the local engine meets them: faults on
    /// records by line (earliest first), then everything found after the records were read.
    pub fn rank(&self) -> u64 {
        match self {
            KeyError::Fault(KeyFault { line: Some(line), .. }) => *line,
            _ => u64::MAX,
        }
    }
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::Invalid(message) => f.write_str(message),
            KeyError::Fault(fault) => write!(f, "{}", fault.native()),
        }
    }
}

/// A [`NativeFault`] in a form that crosses the exchange (between processes too), with the
/// line of the record it happened on when the record was [`Located`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KeyFault {
    kind: FaultKind,
    span: (u32, u32),
    function: String,
    /// The input line of the record the fold faulted on; `None` for a merge or finish.
    pub line: Option<u64>,
}

/// [`Fault`] without its dependency on the front end's types, for serde.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
enum FaultKind {
    DivisionByZero,
    NegativeShift,
    IndexOutOfBounds { index: i128, len: u32 },
}

impl KeyFault {
    pub fn new(fault: &NativeFault, line: Option<u64>) -> KeyFault {
        let kind = match fault.fault {
            Fault::DivisionByZero => FaultKind::DivisionByZero,
            Fault::NegativeShift => FaultKind::NegativeShift,
            Fault::IndexOutOfBounds { index, len } => FaultKind::IndexOutOfBounds { index, len },
        };
        KeyFault { kind, span: (fault.span.lo, fault.span.hi), function: fault.function.clone(), line }
    }

    /// The fault as the native code reported it (with its source span).
    pub fn native(&self) -> NativeFault {
        let fault = match self.kind {
            FaultKind::DivisionByZero => Fault::DivisionByZero,
            FaultKind::NegativeShift => Fault::NegativeShift,
            FaultKind::IndexOutOfBounds { index, len } => Fault::IndexOutOfBounds { index, len },
        };
        let span = Span { lo: self.span.0, hi: self.span.1 };
        NativeFault { fault, span, function: self.function.clone(), record: 0 }
    }
}

impl From<CallError> for KeyError {
    fn from(error: CallError) -> KeyError {
        match error {
            CallError::Fault(fault) => KeyError::Fault(KeyFault::new(&fault, None)),
            CallError::Invalid(message) => KeyError::Invalid(message),
        }
    }
}

/// Keeps the earliest error of `key` (see [`KeyError::rank`]), whatever order they arrive in.
fn keep_first<K: Hash + Eq>(failed: &mut HashMap<K, KeyError, FxBuildHasher>, key: K, error: KeyError) {
    match failed.entry(key) {
        std::collections::hash_map::Entry::Occupied(mut known) => {
            if error.rank() < known.get().rank() {
                known.insert(error);
            }
        }
        std::collections::hash_map::Entry::Vacant(slot) => {
            slot.insert(error);
        }
    }
}

/// Why a record does not fit the aggregation's inputs.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RecordError {
    /// The record has another number of values than the aggregation has inputs.
    #[error("the aggregation takes {expected} values per record, got {got}")]
    Arity { expected: usize, got: usize },
    /// Value `index` (from 1) does not fit its input column.
    #[error("value {index}: {error}")]
    Value { index: usize, error: ValueError },
    /// The value of a one-input record does not fit the input column.
    #[error(transparent)]
    Single(#[from] ValueError),
}

/// A record fed to [`NaasAggregate::naas_aggregate`].
pub trait Record: 'static {
    /// Appends the record's values, one to each input column. On an error nothing is appended.
    fn append_to(&self, columns: &mut [ColumnBuf]) -> Result<(), RecordError>;

    /// The input line the record came from, if it is known (to name it in a fault).
    fn line(&self) -> Option<u64> {
        None
    }
}

/// A record and the input line it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Located<R> {
    pub line: u64,
    pub record: R,
}

impl<R: Record> Record for Located<R> {
    fn append_to(&self, columns: &mut [ColumnBuf]) -> Result<(), RecordError> {
        self.record.append_to(columns)
    }

    fn line(&self) -> Option<u64> {
        Some(self.line)
    }
}

impl Record for Vec<Value> {
    fn append_to(&self, columns: &mut [ColumnBuf]) -> Result<(), RecordError> {
        if self.len() != columns.len() {
            return Err(RecordError::Arity { expected: columns.len(), got: self.len() });
        }
        let rows = columns.first().map_or(0, |c| c.column().len());
        for i in 0..self.len() {
            if let Err(error) = push_value(&mut columns[i], self[i]) {
                for column in &mut columns[..i] {
                    column.truncate(rows);
                }
                return Err(RecordError::Value { index: i + 1, error });
            }
        }
        Ok(())
    }
}

macro_rules! scalar_record {
    ($($ty:ty => $variant:ident, $value:ident;)*) => {$(
        impl Record for $ty {
            fn append_to(&self, columns: &mut [ColumnBuf]) -> Result<(), RecordError> {
                match columns {
                    [ColumnBuf::$variant(column)] => {
                        column.push(*self);
                        Ok(())
                    }
                    [column] => Ok(push_value(column, Value::$value((*self).into()))?),
                    _ => Err(RecordError::Arity { expected: columns.len(), got: 1 }),
                }
            }
        }
    )*};
}

scalar_record! {
    i32 => I32, Int;
    i64 => I64, Int;
    u32 => U32, UInt;
    u64 => U64, UInt;
    f64 => F64, Float;
}

/// Aggregation of keyed records on a timely stream.
pub trait NaasAggregate<'scope, T: Timestamp, K> {
    /// Combines, exchanges by key, merges and finishes; one result per key and timestamp.
    fn naas_aggregate(self, source: &AggregationSource) -> Result<StreamVec<'scope, T, KeyedResult<K>>, LoadError>;
}

impl<'scope, T, K, R> NaasAggregate<'scope, T, K> for StreamVec<'scope, T, (K, R)>
where
    T: Timestamp + TotalOrder,
    K: ExchangeData + Hash + Eq + Clone,
    R: Record,
{
    fn naas_aggregate(self, source: &AggregationSource) -> Result<StreamVec<'scope, T, KeyedResult<K>>, LoadError> {
        let aggregation = Rc::new(source.load()?);
        let map_side = Rc::clone(&aggregation);
        let combined: StreamVec<'scope, T, KeyedState<K>> =
            self.unary_frontier(Pipeline, "NaasCombine", move |_capability, _info| {
                let mut pending: PerTime<T, Combiner<K>> = PerTime::default();
                move |(input, frontier), output| {
                    input.for_each_stamp(|capability, containers| {
                        let Some(capability) = capability.retain_least(output.output_index()) else { return };
                        let combiner = pending.state(capability, || Combiner::new(&map_side));
                        for container in containers {
                            combiner.push(&map_side, container.drain(..));
                        }
                    });
                    pending.complete(frontier, |capability, mut combiner| {
                        output.session(capability).give_iterator(combiner.drain());
                    });
                }
            });
        let exchange = Exchange::new(|(key, _): &KeyedState<K>| FxBuildHasher.hash_one(key));
        let results = combined.unary_frontier(exchange, "NaasMerge", move |_capability, _info| {
            let mut pending: PerTime<T, Merger<K>> = PerTime::default();
            move |(input, frontier), output| {
                input.for_each_stamp(|capability, containers| {
                    let Some(capability) = capability.retain_least(output.output_index()) else { return };
                    let merger = pending.state(capability, || Merger::new(&aggregation));
                    for container in containers {
                        merger.merge(&aggregation, container.drain(..));
                    }
                });
                pending.complete(frontier, |capability, mut merger| {
                    output.session(capability).give_iterator(merger.finish(&aggregation).into_iter());
                });
            }
        });
        Ok(results)
    }
}

/// Operator state kept per timestamp until the input frontier has passed it (with the
/// capability to send its output at that time).
#[derive(Debug)]
pub struct PerTime<T: Timestamp, S> {
    pending: Vec<(Capability<T>, S)>,
}

impl<T: Timestamp, S> Default for PerTime<T, S> {
    fn default() -> Self {
        PerTime { pending: Vec::new() }
    }
}

impl<T: Timestamp, S> PerTime<T, S> {
    /// The state of `capability`'s time, made by `new` when the time is first met.
    pub fn state(&mut self, capability: Capability<T>, new: impl FnOnce() -> S) -> &mut S {
        let at = match self.pending.iter().position(|(c, _)| c.time() == capability.time()) {
            Some(at) => at,
            None => {
                self.pending.push((capability, new()));
                self.pending.len() - 1
            }
        };
        &mut self.pending[at].1
    }

    /// Hands every state whose time the frontier has passed to `complete`.
    pub fn complete(&mut self, frontier: &MutableAntichain<T>, mut complete: impl FnMut(&Capability<T>, S)) {
        let mut i = 0;
        while i < self.pending.len() {
            if frontier.less_equal(self.pending[i].0.time()) {
                i += 1;
            } else {
                let (capability, state) = self.pending.swap_remove(i);
                complete(&capability, state);
            }
        }
    }
}

/// The map side of one timestamp: a combiner table and the keys already known to be bad.
struct Combiner<K> {
    table: StateTable<ValueIndex<K>>,
    failed: HashMap<K, KeyError, FxBuildHasher>,
    columns: Vec<ColumnBuf>,
    slots: Vec<u32>,
    keys: Vec<K>,
    /// The line of each record of the batch, to name the one a fold faults on.
    lines: Vec<Option<u64>>,
}

impl<K: Hash + Eq + Clone> Combiner<K> {
    fn new(aggregation: &Aggregation) -> Combiner<K> {
        Combiner {
            table: StateTable::with_index(aggregation, ValueIndex::default()),
            failed: HashMap::default(),
            columns: Vec::new(),
            slots: Vec::new(),
            keys: Vec::new(),
            lines: Vec::new(),
        }
    }

    fn push<R: Record>(&mut self, aggregation: &Aggregation, records: impl Iterator<Item = (K, R)>) {
        if self.columns.is_empty() {
            self.columns = aggregation.inputs().iter().map(|i| ColumnBuf::new(i.ty)).collect();
        }
        for column in &mut self.columns {
            column.truncate(0);
        }
        self.slots.clear();
        self.keys.clear();
        self.lines.clear();
        for (key, record) in records {
            if !self.failed.is_empty() && self.failed.contains_key(&key) {
                continue;
            }
            match record.append_to(&mut self.columns) {
                Ok(()) => {
                    self.slots.push(self.table.slot(&key));
                    self.keys.push(key);
                    self.lines.push(record.line());
                }
                Err(error) => {
                    keep_first(&mut self.failed, key, KeyError::Invalid(error.to_string()));
                }
            }
        }
        // Fold; after a fault (records before it are applied) mark its key and go on after it.
        let mut start = 0;
        while start < self.slots.len() {
            let columns: Vec<Column<'_>> = self.columns.iter().map(|c| column_from(c, start)).collect();
            match self.table.fold(aggregation, &self.slots[start..], &columns) {
                Ok(()) => break,
                Err(CallError::Fault(fault)) => {
                    let at = start + fault.record as usize;
                    let line = self.lines.get(at).copied().flatten();
                    let error = KeyError::Fault(KeyFault::new(&fault, line));
                    keep_first(&mut self.failed, self.keys[at].clone(), error);
                    start = at + 1;
                }
                Err(CallError::Invalid(message)) => {
                    for key in &self.keys[start..] {
                        keep_first(&mut self.failed, key.clone(), KeyError::Invalid(message.clone()));
                    }
                    break;
                }
            }
        }
    }

    fn drain(&mut self) -> impl Iterator<Item = KeyedState<K>> + '_ {
        let failed = std::mem::take(&mut self.failed);
        let states: Vec<KeyedState<K>> = self
            .table
            .entries()
            .filter(|(key, _)| !failed.contains_key(*key))
            .map(|(key, state)| (key.clone(), Ok(state.to_vec())))
            .collect();
        states.into_iter().chain(failed.into_iter().map(|(key, message)| (key, Err(message))))
    }
}

/// The reduce side of one timestamp.
struct Merger<K> {
    table: StateTable<ValueIndex<K>>,
    failed: HashMap<K, KeyError, FxBuildHasher>,
}

impl<K: Hash + Eq + Clone> Merger<K> {
    fn new(aggregation: &Aggregation) -> Merger<K> {
        Merger { table: StateTable::with_index(aggregation, ValueIndex::default()), failed: HashMap::default() }
    }

    fn merge(&mut self, aggregation: &Aggregation, states: impl Iterator<Item = KeyedState<K>>) {
        for (key, state) in states {
            match state {
                Ok(state) => {
                    let slot = self.table.slot(&key);
                    if let Err(error) = self.table.merge_slot(aggregation, slot, &state) {
                        keep_first(&mut self.failed, key, error.into());
                    }
                }
                Err(error) => keep_first(&mut self.failed, key, error),
            }
        }
    }

    fn finish(&mut self, aggregation: &Aggregation) -> Vec<KeyedResult<K>> {
        let mut out = Vec::with_capacity(self.table.len());
        let mut state = aggregation.jit().new_state();
        for (key, bytes) in self.table.entries() {
            if self.failed.contains_key(key) {
                continue;
            }
            state.as_mut_bytes().copy_from_slice(bytes);
            let result = aggregation.jit().finish(&state).map(|slots| crate::value::flatten(&slots));
            out.push((key.clone(), result.map_err(KeyError::from)));
        }
        out.extend(std::mem::take(&mut self.failed).into_iter().map(|(key, message)| (key, Err(message))));
        out
    }
}

/// The column `buf` from row `start` on.
fn column_from(buf: &ColumnBuf, start: usize) -> Column<'_> {
    match buf.column() {
        Column::Bool(v) => Column::Bool(&v[start..]),
        Column::I8(v) => Column::I8(&v[start..]),
        Column::I16(v) => Column::I16(&v[start..]),
        Column::I32(v) => Column::I32(&v[start..]),
        Column::I64(v) => Column::I64(&v[start..]),
        Column::U8(v) => Column::U8(&v[start..]),
        Column::U16(v) => Column::U16(&v[start..]),
        Column::U32(v) => Column::U32(&v[start..]),
        Column::U64(v) => Column::U64(&v[start..]),
        Column::F32(v) => Column::F32(&v[start..]),
        Column::F64(v) => Column::F64(&v[start..]),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use std::cell::RefCell;
    use timely::container::CapacityContainerBuilder;
    use timely::dataflow::operators::Inspect;
    use timely::dataflow::InputHandle;

    type Results = Vec<KeyedResult<String>>;
    type Records = Vec<(String, Vec<Value>)>;

    const SUM_OF_QUOTIENTS: &str = "aggregate s(x: i64, d: i64) -> tuple[i64, u64]:\n    return sum(x // d), count()\n";

    /// Two workers each feed records of every key, in two timestamps; bad records and a
    /// faulting record turn their key's result into an error.
    fn run(records: fn(usize) -> Records) -> Results {
        run_source(SUM_OF_QUOTIENTS, records)
    }

    /// Runs `source` on two workers, worker `w` sending `records(w)`; every worker's results,
    /// sorted by key.
    fn run_source<R: Record + Clone>(source: &str, records: fn(usize) -> Vec<(String, R)>) -> Results {
        let source = AggregationSource { file_name: "t.naas".to_string(), source: source.to_string(), aggregate: None };
        let guards = timely::execute(timely::Config::process(2), move |worker| {
            let mut input: InputHandle<u64, CapacityContainerBuilder<Vec<(String, R)>>> = InputHandle::new();
            let results: Rc<RefCell<Results>> = Rc::default();
            let sink = Rc::clone(&results);
            worker.dataflow::<u64, _, _>(|scope| {
                input.to_stream(scope).naas_aggregate(&source).unwrap().inspect_core(move |event| {
                    if let Ok((_, batch)) = event {
                        sink.borrow_mut().extend(batch.iter().cloned());
                    }
                });
            });
            for record in records(worker.index()) {
                input.send(record);
            }
            drop(input);
            while worker.step() {}
            let out = std::mem::take(&mut *results.borrow_mut());
            out
        })
        .unwrap();
        let mut all: Results = guards.join().into_iter().flat_map(Result::unwrap).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    #[test]
    fn combines_exchanges_merges_and_reports_bad_keys() {
        let results = run(|worker| {
            let mut records: Records =
                (0..300).map(|i| (format!("k{}", i % 3), vec![Value::Int(i), Value::Int(1)])).collect();
            if worker == 1 {
                records.push(("bad".to_string(), vec![Value::Float(1.5), Value::Int(1)]));
                records.push(("zero".to_string(), vec![Value::Int(4), Value::Int(0)]));
                records.push(("short".to_string(), vec![Value::Int(4)]));
            }
            records.push(("zero".to_string(), vec![Value::Int(4), Value::Int(2)]));
            records
        });
        let sum = |r: usize| (0..300i64).filter(|i| i % 3 == r as i64).sum::<i64>() * 2;
        assert_eq!(results.len(), 6, "{results:?}");
        assert!(results[0].1.as_ref().unwrap_err().to_string().contains("does not fit"), "{results:?}");
        for (i, r) in results[1..4].iter().enumerate() {
            assert_eq!(r.0, format!("k{i}"));
            assert_eq!(r.1, Ok(vec![Value::Int(sum(i)), Value::UInt(200)]));
        }
        assert!(results[4].1.as_ref().unwrap_err().to_string().contains("2 values per record"), "{results:?}");
        assert!(results[5].1.as_ref().unwrap_err().to_string().contains("division by zero"), "{results:?}");
    }

    /// A fault on a located record keeps its line and its source operation through the
    /// exchange; of two faults of one key (on two workers) the earlier line is reported.
    #[test]
    fn a_fault_keeps_the_earliest_line_and_the_source_span() {
        let all = run_source("aggregate s(x: i64, d: i64) -> i64:\n    return sum(x // d)\n", |worker| {
            // Worker 0 faults on line 30, worker 1 on line 7 (after a good record), both on key z.
            let line = if worker == 0 { 30 } else { 7 };
            vec![
                ("z".to_string(), Located { line: 5, record: vec![Value::Int(1), Value::Int(1)] }),
                ("z".to_string(), Located { line, record: vec![Value::Int(1), Value::Int(0)] }),
            ]
        });
        assert_eq!(all.len(), 1, "{all:?}");
        let Err(KeyError::Fault(fault)) = &all[0].1 else { panic!("{all:?}") };
        assert_eq!(fault.line, Some(7));
        let native = fault.native();
        assert_eq!(native.fault, Fault::DivisionByZero);
        assert_eq!(native.function, "s.lift");
        // The span is the `//` of the source text.
        let text = "aggregate s(x: i64, d: i64) -> i64:\n    return sum(x // d)\n";
        assert_eq!(&text[native.span.lo as usize..native.span.hi as usize], "x // d");
    }

    #[test]
    fn records_that_do_not_fit_are_typed_and_leave_no_partial_row() {
        use naas_ir::ir::ScalarTy;
        use naas_lang::types::IntTy;
        let mut columns = vec![ColumnBuf::new(ScalarTy::Int(IntTy::I64)), ColumnBuf::new(ScalarTy::Int(IntTy::U8))];
        assert_eq!(vec![Value::Int(1)].append_to(&mut columns), Err(RecordError::Arity { expected: 2, got: 1 }));
        let error = vec![Value::Int(1), Value::Int(300)].append_to(&mut columns).unwrap_err();
        assert!(matches!(error, RecordError::Value { index: 2, error: ValueError::DoesNotFit { .. } }), "{error:?}");
        assert_eq!(error.to_string(), "value 2: Int(300) does not fit a column of type u8");
        assert!(columns.iter().all(|c| c.column().is_empty()), "{columns:?}");
        assert_eq!(vec![Value::Int(1), Value::UInt(3)].append_to(&mut columns), Ok(()));
        let mut one = vec![ColumnBuf::new(ScalarTy::Int(IntTy::U8))];
        assert_eq!(7u32.append_to(&mut one), Ok(()));
        assert_eq!(300u32.append_to(&mut one).unwrap_err().to_string(), "UInt(300) does not fit a column of type u8");
        assert_eq!(1.5f64.append_to(&mut columns), Err(RecordError::Arity { expected: 2, got: 1 }));
    }

    #[test]
    fn key_errors_cross_the_exchange_intact() {
        let fault = NativeFault {
            fault: Fault::IndexOutOfBounds { index: -3, len: 4 },
            span: Span { lo: 10, hi: 14 },
            function: "t.merge".to_string(),
            record: 0,
        };
        let error = KeyError::Fault(KeyFault::new(&fault, None));
        let bytes = serde_roundtrip(&error);
        assert_eq!(bytes, error);
        let KeyError::Fault(back) = bytes else { panic!() };
        assert_eq!(back.native(), fault);
        assert_eq!(error.rank(), u64::MAX);
    }

    fn serde_roundtrip(error: &KeyError) -> KeyError {
        let text = serde_json::to_string(error).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}
