//! Packet storage for the simulator: a pool of packets addressed by index, with reference
//! counts, whose buffers are reused. A packet is referenced by the link that is filling or
//! queueing it, then by the sender's unacknowledged list, and by every copy in flight
//! (duplicates and retransmissions); when the last reference goes, its buffer returns to the
//! pool with its capacity, so a simulation allocates about as many buffers as packets are ever
//! alive at once rather than one per transmission.

/// A packet: end-of-stream, or `entries` entries of `1 + state words` words (key first).
#[derive(Debug, Default)]
pub(super) struct Packet {
    pub(super) seq: u32,
    pub(super) eos: bool,
    pub(super) entries: u32,
    /// A mapper's packet whose entries are not in `data` yet (they are produced when a copy
    /// first arrives).
    pub(super) unproduced: bool,
    pub(super) data: Vec<u64>,
    refs: u32,
}

#[derive(Debug, Default)]
pub(super) struct PacketPool {
    packets: Vec<Packet>,
    free: Vec<u32>,
}

impl PacketPool {
    /// An empty data packet with one reference (the caller's).
    pub(super) fn alloc(&mut self) -> u32 {
        match self.free.pop() {
            Some(id) => {
                let packet = &mut self.packets[id as usize];
                packet.seq = u32::MAX;
                packet.eos = false;
                packet.entries = 0;
                packet.unproduced = false;
                packet.data.clear();
                packet.refs = 1;
                id
            }
            None => {
                self.packets.push(Packet { seq: u32::MAX, refs: 1, ..Packet::default() });
                (self.packets.len() - 1) as u32
            }
        }
    }

    pub(super) fn get(&self, id: u32) -> &Packet {
        &self.packets[id as usize]
    }

    pub(super) fn get_mut(&mut self, id: u32) -> &mut Packet {
        &mut self.packets[id as usize]
    }

    /// One more holder of the packet.
    pub(super) fn retain(&mut self, id: u32) {
        self.packets[id as usize].refs += 1;
    }

    /// One holder fewer; the last one returns the packet to the pool.
    pub(super) fn release(&mut self, id: u32) {
        let packet = &mut self.packets[id as usize];
        debug_assert!(packet.refs > 0, "packet released more often than retained");
        packet.refs = packet.refs.saturating_sub(1);
        if packet.refs == 0 {
            self.free.push(id);
        }
    }

    /// Packets live now (tests check that every packet is released in the end).
    pub(super) fn live(&self) -> usize {
        self.packets.len() - self.free.len()
    }
}
