//! The switch-sim target: lowering merges to a programmable-switch pipeline with a resource model, a pipeline simulator, and a hop-by-hop network simulator.
//!
//! - [`profile`]: the machine (stages, stateful ALUs, register words and SRAM, packet budget),
//!   from TOML; the default models Tofino 1.
//! - [`lower()`]: an aggregate's merge becomes a [`PipelineProgram`] of register arrays and
//!   atoms scheduled over stages, or diagnostics (E0601–E0608) saying why it does not fit; a
//!   broken compiler invariant is a [`LowerError::Internal`], never a diagnostic.
//! - [`sorted_run`]: recognises merges of sorted runs (top-k, bottom-k) and proves them equal
//!   to repeated insertion, which lowers onto an insertion chain of compare-and-swap atoms.
//! - [`pipeline_sim`]: executes pipeline programs on slot tables of [`word::Word`]s.
//! - [`network`]: a discrete-event simulation of mappers, switches and a reducer with loss,
//!   duplication and reordering, and a protocol that keeps the result exact.
//!
//! The benchmarks of this crate live in the `naas-bench` crate (`benches/`), which uses only
//! this public API.

pub mod lower;
pub mod network;
pub mod pipeline_sim;
pub mod profile;
pub mod program;
pub mod sorted_run;
pub mod word;

pub use lower::{lower, LowerError, LowerOptions};
pub use profile::{ProfileError, TargetProfile};
pub use program::{EncodeError, Insertion, PipelineProgram, ResourceReport};
