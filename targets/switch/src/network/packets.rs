//! Packet storage for the simulator: a pool of packets addressed by index, with reference
//! counts. A packet is referenced by whoever is filling or queueing it (a mapper's staged
//! packets, a link's open packet or send queue), then by the sender's unacknowledged list, and
//! by every copy in flight (duplicates and retransmissions); when the last reference goes, its
//! id returns to the pool, so a simulation holds about as many packets as are ever alive at
//! once rather than one per transmission.
//!
//! A packet's entries live in one arena, in a fixed-size slot per packet id (a full packet's
//! fields, rounded up to whole cache lines, each slot starting on a cache line; fields are
//! [`Word`]s, 32-bit where the profile allows), as a switch's packet buffer holds packets in
//! fixed cells. So where a packet's entries are follows from its id alone: the simulator asks
//! for them to be brought into the cache from an event it has only peeked at, without first
//! reading the packet's header (see [`PacketPool::prefetch`]).

use naas_lang::{bail_internal, InternalError};

use crate::word::{line_aligned, Word};

/// A packet's header: end-of-stream, or `entries` entries of `1 + state words` fields (key
/// first), which are in the packet's arena slot.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Packet {
    pub(super) seq: u32,
    pub(super) eos: bool,
    pub(super) entries: u32,
    refs: u32,
}

/// The most cache lines of a packet [`PacketPool::prefetch`] asks for.
const PREFETCH_LINES: usize = 16;

#[derive(Debug)]
pub(super) struct PacketPool<W> {
    headers: Vec<Packet>,
    free: Vec<u32>,
    /// Fields per entry, and fields from one packet's slot to the next (whole cache lines).
    stride: usize,
    slot_words: usize,
    /// The slots, `slot_words` each, from `arena[origin]` on (cache-line aligned).
    arena: Vec<W>,
    origin: usize,
}

impl<W: Word> PacketPool<W> {
    /// An empty pool of packets of at most `entries_per_packet` entries of `stride` words.
    pub(super) fn new(stride: usize, entries_per_packet: u32) -> PacketPool<W> {
        let slot_words = (stride * entries_per_packet as usize).div_ceil(W::PER_LINE).max(1) * W::PER_LINE;
        PacketPool { headers: Vec::new(), free: Vec::new(), stride, slot_words, arena: Vec::new(), origin: 0 }
    }

    /// An empty data packet with one reference (the caller's).
    pub(super) fn alloc(&mut self) -> u32 {
        let fresh = Packet { seq: u32::MAX, eos: false, entries: 0, refs: 1 };
        match self.free.pop() {
            Some(id) => {
                self.headers[id as usize] = fresh;
                id
            }
            None => {
                self.headers.push(fresh);
                if self.headers.len() * self.slot_words + W::PER_LINE > self.arena.len() {
                    self.grow();
                }
                (self.headers.len() - 1) as u32
            }
        }
    }

    /// Moves the slots into an arena with room for twice as many packets, the first slot
    /// aligned to a cache line.
    fn grow(&mut self) {
        let packets = (2 * self.headers.len()).max(64);
        let (mut arena, origin) = line_aligned(packets * self.slot_words);
        let live = self.arena.len().saturating_sub(W::PER_LINE).min(arena.len() - W::PER_LINE);
        arena[origin..origin + live].copy_from_slice(&self.arena[self.origin..self.origin + live]);
        self.arena = arena;
        self.origin = origin;
    }

    pub(super) fn get(&self, id: u32) -> &Packet {
        &self.headers[id as usize]
    }

    pub(super) fn get_mut(&mut self, id: u32) -> &mut Packet {
        &mut self.headers[id as usize]
    }

    fn slot_start(&self, id: u32) -> usize {
        self.origin + id as usize * self.slot_words
    }

    /// The packet's entries, `stride` fields each.
    #[inline]
    pub(super) fn data(&self, id: u32) -> &[W] {
        let start = self.slot_start(id);
        &self.arena[start..start + self.headers[id as usize].entries as usize * self.stride]
    }

    /// Appends an entry (`stride` fields) to a packet that has room for it.
    pub(super) fn push_entry(&mut self, id: u32, entry: &[u64]) -> Result<(), InternalError> {
        let at = self.slot_start(id) + self.headers[id as usize].entries as usize * self.stride;
        store(&mut self.arena[at..at + self.stride], entry)?;
        self.headers[id as usize].entries += 1;
        Ok(())
    }

    /// Sets a packet's entries to `entries` (whole entries, at most a full packet's).
    pub(super) fn fill(&mut self, id: u32, entries: &[u64]) -> Result<(), InternalError> {
        let start = self.slot_start(id);
        store(&mut self.arena[start..start + entries.len()], entries)?;
        self.headers[id as usize].entries = (entries.len() / self.stride) as u32;
        Ok(())
    }

    /// Asks for a packet's header and the start of its slot (at most [`PREFETCH_LINES`]
    /// cache lines, the whole slot of a default-profile packet) to be brought into the cache:
    /// a hint, which changes nothing; an id beyond the pool is ignored. The slot is found from
    /// the id alone, so this does not wait for the header.
    #[inline]
    pub(super) fn prefetch(&self, id: u32) {
        if let Some(header) = self.headers.get(id as usize) {
            naas_stdx::prefetch(header);
            let start = self.slot_start(id);
            for line in 0..(self.slot_words / W::PER_LINE).min(PREFETCH_LINES) {
                naas_stdx::prefetch(&self.arena[start + line * W::PER_LINE]);
            }
        }
    }

    /// One more holder of the packet.
    pub(super) fn retain(&mut self, id: u32) {
        self.headers[id as usize].refs += 1;
    }

    /// One holder fewer; the last one returns the packet to the pool.
    pub(super) fn release(&mut self, id: u32) {
        let packet = &mut self.headers[id as usize];
        debug_assert!(packet.refs > 0, "packet released more often than retained");
        packet.refs = packet.refs.saturating_sub(1);
        if packet.refs == 0 {
            self.free.push(id);
        }
    }

    /// Packets live now (tests check that every packet is released in the end).
    pub(super) fn live(&self) -> usize {
        self.headers.len() - self.free.len()
    }
}

/// Stores `words` as fields. The simulator picks 32-bit fields only for profiles whose words
/// and keys fit them, so a word that does not is an internal error, not a truncation.
fn store<W: Word>(fields: &mut [W], words: &[u64]) -> Result<(), InternalError> {
    // Checked first, then converted: two simple loops the compiler vectorises.
    if let Some(word) = words.iter().find(|word| W::try_narrow(**word).is_none()) {
        bail_internal!("{word} does not fit a {}-bit packet field", 8 * size_of::<W>());
    }
    for (field, word) in fields.iter_mut().zip(words) {
        *field = W::narrow(*word);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    /// Slots keep their entries while the arena grows, start on cache lines, and are reused
    /// once released.
    #[test]
    fn slots_keep_their_entries_as_the_pool_grows_and_are_reused() {
        slots_keep_their_entries::<u32>();
        slots_keep_their_entries::<u64>();
    }

    fn slots_keep_their_entries<W: Word + PartialEq>() {
        let (stride, per_packet) = (7, 9);
        let mut pool = PacketPool::<W>::new(stride, per_packet);
        let ids: Vec<u32> = (0..300).map(|_| pool.alloc()).collect();
        for (n, id) in ids.iter().enumerate() {
            for e in 0..(n % 10) as u64 {
                let entry: Vec<u64> = (0..stride as u64).map(|w| 1_000 * n as u64 + 10 * e + w).collect();
                pool.push_entry(*id, &entry).unwrap();
            }
        }
        // Growth happened after the first slots were written.
        pool.grow();
        for (n, id) in ids.iter().enumerate() {
            let data = pool.data(*id);
            assert_eq!(data.len(), (n % 10) * stride);
            for (i, word) in data.iter().enumerate() {
                let (e, w) = (i / stride, i % stride);
                assert_eq!(word.get(), 1_000 * n as u64 + 10 * e as u64 + w as u64);
            }
            assert_eq!((pool.data(*id).as_ptr() as usize) % 64, 0);
        }
        pool.release(ids[5]);
        assert_eq!(pool.live(), 299);
        let again = pool.alloc();
        assert_eq!((again, pool.get(again).entries, pool.data(again).len()), (ids[5], 0, 0));
        pool.fill(again, &[9; 14]).unwrap();
        assert_eq!(pool.data(again), &[W::narrow(9); 14]);
        // A word wider than the fields is an internal error, not a truncation.
        match pool.fill(again, &[1 << 40; 7]) {
            Err(error) => {
                assert_eq!(size_of::<W>(), 4);
                assert_eq!(error.message, "1099511627776 does not fit a 32-bit packet field");
            }
            Ok(()) => assert_eq!(size_of::<W>(), 8),
        }
    }
}
