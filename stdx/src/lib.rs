//! Small helpers that every crate of the workspace may use and that depend on nothing: a
//! deterministic random generator ([`Rng`]), a 64-bit hash mixer ([`mix64`]), bounded
//! excerpts of text for error messages ([`excerpt`]), and a cache hint ([`prefetch`]).
//!
//! The model is rust-analyzer's `stdx`: code that is not about aggregation, written once
//! here instead of copied into the crate that needed it first.

mod cache;
mod rng;
mod text;

pub use cache::prefetch;
pub use rng::{mix64, Rng};
pub use text::excerpt;
