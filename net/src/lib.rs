//! naas-net: aggregation over real sockets (spec §18). Separate processes exchange UDP
//! datagrams; each hop of an aggregation tree merges what its children send and forwards it
//! upward, and the result is exact under loss, duplication and reordering.
//!
//! - [`wire`]: the datagram format and its typed [`wire::DecodeError`];
//! - [`link`]: reliable links as state machines (sequence numbers, acknowledgements,
//!   retransmission, receiver-side deduplication, end of stream);
//! - [`endpoint`]: a socket with the links of one job through it, and the checks every
//!   arriving datagram passes;
//! - [`hop`]: what a node does with entries: a software switch (the pipeline program on slot
//!   tables) or a host box (the JIT-compiled merge);
//! - [`node`]: the loop of `naasc node`;
//! - [`job`]: `naasc run --network`: mappers, launched or attached nodes, and the reducer;
//! - [`process`]: child processes that die with their launcher;
//! - [`socket`]: UDP sockets with a receive buffer sized for a burst of children.

pub mod endpoint;
pub mod hop;
pub mod job;
pub mod link;
pub mod node;
pub mod process;
pub mod socket;
pub mod wire;
