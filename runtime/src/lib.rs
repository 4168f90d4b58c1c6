//! naas-runtime runs compiled naas aggregations inside a real shuffle.
//!
//! - [`Aggregation`] loads an aggregation from source with one call (front end, IR, laws,
//!   and host machine code through the Cranelift JIT);
//! - [`StateTable`] is the per-key table of partial states: map-side it combines records
//!   with the compiled fold, reduce-side it merges partial states and finishes them;
//! - [`wire`] is the versioned, checksummed format of (key, partial state) entries;
//! - [`executor`] is a local MapReduce executor over CSV input (threads);
//! - [`timely_ops`] adds the same combine / exchange / merge to timely-dataflow streams;
//! - [`network`] sends the shuffle's partial states through the switch-sim network.
//!
//! # Embedding the runtime in your own shuffle
//!
//! Map side: fold records into a table, ship its entries in a wire buffer. Reduce side:
//! decode (every check passes or nothing is merged), merge, finish.
//!
//! ```
//! use naas_runtime::{wire, Aggregation, StateTable, Value};
//! use naas_target_native::values::Column;
//!
//! let source = "aggregate stats(delay: i32) -> tuple[i32, f64, u64]:\n    return max(delay), avg(delay), count()\n";
//! let agg = Aggregation::from_source("stats.naas", source, None)?;
//!
//! // Two mappers, each combining its own records by key.
//! let mut buffers = Vec::new();
//! for (keys, delays) in [(["AA", "UA", "AA"], [5, 20, 7]), (["UA", "UA", "DL"], [-3, 4, 0])] {
//!     let mut table = StateTable::new(&agg);
//!     let slots: Vec<u32> = keys.iter().map(|k| table.slot(k.as_bytes())).collect();
//!     table.fold(&agg, &slots, &[Column::I32(&delays)])?;
//!     let mut writer = wire::WireWriter::new(agg.fingerprint(), agg.state_size());
//!     for (key, state) in table.entries() {
//!         writer.push(key, state)?;
//!     }
//!     buffers.push(writer.finish());
//! }
//!
//! // The reducer.
//! let mut reducer = StateTable::new(&agg);
//! for buffer in &buffers {
//!     for (key, state) in wire::decode(buffer, agg.fingerprint(), agg.state_size())? {
//!         reducer.merge(&agg, key, state)?;
//!     }
//! }
//! // Results come in slot order: the order the reducer first met each key.
//! let results = reducer.finish(&agg).map_err(|(_, e)| e)?;
//! let ua = reducer.entries().position(|(key, _)| key == b"UA").unwrap();
//! assert_eq!(results[ua], vec![Value::Int(20), Value::Float(7.0), Value::UInt(3)]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod aggregation;
pub mod columnar_input;
pub mod csv_input;
pub mod executor;
pub mod key_index;
pub mod key_order;
mod map_worker;
pub mod network;
pub mod output;
pub mod results;
pub mod table;
pub mod timely_job;
pub mod timely_ops;
pub mod value;
pub mod wire;

pub use aggregation::{Aggregation, LoadError};
pub use executor::{run, Input, JobConfig, JobError, JobOutput, JobStats};
pub use results::KeyResults;
pub use table::StateTable;
pub use value::Value;
