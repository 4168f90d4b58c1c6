//! Native code for naas aggregations through Cranelift: a host JIT ([`jit`]) that the runtime
//! and `naasc run` use, and relocatable object files with a C header for NIC cores
//! ([`object`]). The IR is translated inline into batch entry points ([`entry`],
//! [`translate`]) whose C ABI is described in [`abi`].

pub mod abi;
pub mod entry;
pub mod error;
pub mod jit;
pub mod object;
pub mod translate;
pub mod values;
pub mod vector;

pub use error::NativeError;
pub use jit::{CallError, JitAggregate, JitFunctions};
