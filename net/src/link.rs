//! The two ends of a reliable link (spec §18.3), as state machines without sockets: the
//! [`Sender`] numbers packets, keeps them until acknowledged and retransmits them on a
//! timeout; the [`Receiver`] tells a fresh packet from a copy, so that each packet is applied
//! exactly once, and says what to acknowledge.
//!
//! A sender never has a packet in flight more than [`SEQ_SPAN`] sequence numbers past its
//! oldest unacknowledged one, so the receiver's cumulative number plus a 64-bit bitmap of what
//! it holds beyond it tell exactly whether any arriving packet is new. End of stream is a
//! packet of its own, sent only once every data packet is acknowledged: when it arrives, the
//! receiver has applied every packet of the link, and later copies fall below the cumulative
//! number and are dropped.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::wire;

/// How far past its oldest unacknowledged packet a sender may send (the bitmap's span).
pub const SEQ_SPAN: u32 = 64;
/// Packets in flight per link.
pub const WINDOW: u32 = 32;
/// The retransmission timeout before a round trip has been measured, and the least one. Once
/// measured, a link's timeout is `srtt + 4 * rttvar` (RFC 6298's estimator, sampled only on
/// packets sent once, as Karn's rule asks), so that a parent busy merging is waited for rather
/// than flooded with copies; it doubles with every retry of a packet, up to [`MAX_RTO`] (or
/// the measured timeout, if larger).
pub const FIRST_RTO: Duration = Duration::from_millis(30);
pub const MAX_RTO: Duration = Duration::from_millis(400);

/// Whether an arriving packet is new.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    Fresh,
    /// A copy of a packet already received (a duplicate or a retransmission).
    Copy,
    /// Beyond the window: no correct sender sends it, so it is dropped unacknowledged.
    OutOfWindow,
}

/// The receiving end: every sequence number below `cum` has been received, and `cum + 1 + i`
/// has if bit `i` of `sack` is set.
#[derive(Clone, Debug, Default)]
pub struct Receiver {
    pub cum: u32,
    pub sack: u64,
    /// End of stream has arrived.
    pub eos: bool,
}

impl Receiver {
    pub fn receive(&mut self, seq: u32) -> Arrival {
        if seq < self.cum {
            return Arrival::Copy;
        }
        let offset = seq - self.cum;
        if offset > SEQ_SPAN {
            return Arrival::OutOfWindow;
        }
        if offset == 0 {
            // A link carries fewer than 2^32 - 1 packets (the sender stops there), so the
            // cumulative number saturates only on a datagram no correct sender sends.
            self.cum = self.cum.saturating_add(1);
            while self.sack & 1 == 1 {
                self.sack >>= 1;
                self.cum = self.cum.saturating_add(1);
            }
            self.sack >>= 1;
            return Arrival::Fresh;
        }
        let bit = offset - 1;
        if self.sack & (1 << bit) != 0 {
            return Arrival::Copy;
        }
        self.sack |= 1 << bit;
        Arrival::Fresh
    }
}

/// A packet sent and not yet acknowledged.
#[derive(Clone, Debug)]
struct InFlight {
    datagram: Vec<u8>,
    sent: Instant,
    rto: Duration,
    /// Sent more than once: its acknowledgement says nothing about the round trip.
    retried: bool,
}

/// Traffic of one link, counted at its sender (retransmissions included) or receiver.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LinkCounts {
    pub link: u32,
    pub peer: String,
    pub packets: u64,
    pub bytes: u64,
    pub entries: u64,
    pub retransmissions: u64,
    pub duplicates_dropped: u64,
}

/// The sending end of a link to `peer`.
#[derive(Debug)]
pub struct Sender {
    pub link: u32,
    pub peer: SocketAddr,
    /// Sealed datagrams (sequence number not yet set) waiting for the window, with their
    /// entry count (`None`: end of stream).
    queue: VecDeque<(Vec<u8>, Option<u16>)>,
    /// Packets from sequence number `base` on; `None` once acknowledged.
    unacked: VecDeque<Option<InFlight>>,
    base: u32,
    /// End of stream has been asked for, sent, acknowledged.
    finishing: bool,
    eos_sent: bool,
    pub done: bool,
    /// When an acknowledgement last moved the window (or the link started).
    pub last_progress: Instant,
    /// The smoothed round trip and its variation, once measured.
    srtt: Option<Duration>,
    rttvar: Duration,
    pub counts: LinkCounts,
}

impl Sender {
    pub fn new(link: u32, peer: SocketAddr) -> Sender {
        Sender {
            link,
            peer,
            queue: VecDeque::new(),
            unacked: VecDeque::new(),
            base: 0,
            finishing: false,
            eos_sent: false,
            done: false,
            last_progress: Instant::now(),
            srtt: None,
            rttvar: Duration::ZERO,
            counts: LinkCounts { link, peer: peer.to_string(), ..LinkCounts::default() },
        }
    }

    /// Queues a sealed data datagram of `entries` entries.
    pub fn queue(&mut self, datagram: Vec<u8>, entries: u16) {
        self.queue.push_back((datagram, Some(entries)));
    }

    /// Asks for end of stream once everything queued is acknowledged; `eos` is its datagram.
    pub fn finish(&mut self, eos: Vec<u8>) {
        if !self.finishing {
            self.finishing = true;
            self.queue.push_back((eos, None));
        }
    }

    /// Whether data is still queued or unacknowledged.
    pub fn idle(&self) -> bool {
        self.queue.is_empty() && self.unacked.iter().all(Option::is_none)
    }

    /// Sends what the window allows and retransmits what timed out, through `send`.
    pub fn transmit(&mut self, now: Instant, send: &mut dyn FnMut(SocketAddr, &[u8])) {
        for flight in self.unacked.iter_mut().flatten() {
            if now.duration_since(flight.sent) >= flight.rto {
                send(self.peer, &flight.datagram);
                flight.sent = now;
                flight.rto = (flight.rto * 2).min(MAX_RTO.max(flight.rto));
                flight.retried = true;
                self.counts.retransmissions += 1;
                self.counts.packets += 1;
                self.counts.bytes += flight.datagram.len() as u64;
            }
        }
        let in_flight = self.unacked.iter().filter(|f| f.is_some()).count() as u32;
        let mut budget = WINDOW.saturating_sub(in_flight);
        while budget > 0 && (self.unacked.len() as u32) < SEQ_SPAN {
            let Some(eos) = self.queue.front().map(|(_, entries)| entries.is_none()) else { break };
            // End of stream waits until every data packet is acknowledged.
            if eos && self.waiting() {
                break;
            }
            // Sequence numbers are 32 bits: a link carries at most 2^32 - 2 packets (about 6 TB
            // of full datagrams); beyond that it sends nothing more, and the job times out.
            let Some(seq) = self.base.checked_add(self.unacked.len() as u32).filter(|s| *s < u32::MAX - 1) else {
                break;
            };
            let Some((mut datagram, entries)) = self.queue.pop_front() else { break };
            wire::set_seq(&mut datagram, seq);
            send(self.peer, &datagram);
            self.counts.packets += 1;
            self.counts.bytes += datagram.len() as u64;
            match entries {
                Some(entries) => self.counts.entries += u64::from(entries),
                None => self.eos_sent = true,
            }
            let rto = self.rto();
            self.unacked.push_back(Some(InFlight { datagram, sent: now, rto, retried: false }));
            budget -= 1;
        }
    }

    /// The timeout of a packet sent now.
    fn rto(&self) -> Duration {
        match self.srtt {
            Some(srtt) => (srtt + 4 * self.rttvar).max(FIRST_RTO),
            None => FIRST_RTO,
        }
    }

    /// A round trip measured on a packet sent once.
    fn sample(&mut self, rtt: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(rtt);
                self.rttvar = (3 * self.rttvar + delta) / 4;
                self.srtt = Some((7 * srtt + rtt) / 8);
            }
        }
    }

    /// An acknowledgement: everything below `cum`, and `cum + 1 + i` for every bit `i` of
    /// `sack`.
    pub fn on_ack(&mut self, cum: u32, sack: u64, now: Instant) {
        let mut moved = false;
        let mut newest_sample = None;
        while self.base < cum {
            match self.unacked.pop_front() {
                Some(flight) => {
                    if let Some(flight) = flight {
                        moved = true;
                        if !flight.retried {
                            newest_sample = Some(now.saturating_duration_since(flight.sent));
                        }
                    }
                    self.base += 1;
                }
                None => break,
            }
        }
        for bit in 0..64u32 {
            if sack & (1 << bit) == 0 {
                continue;
            }
            let Some(seq) = cum.checked_add(1 + bit) else { break };
            if let Some(index) = seq.checked_sub(self.base) {
                if let Some(slot) = self.unacked.get_mut(index as usize) {
                    if let Some(flight) = slot.take() {
                        moved = true;
                        if !flight.retried {
                            newest_sample = Some(now.saturating_duration_since(flight.sent));
                        }
                    }
                }
            }
        }
        // One sample per acknowledgement (it covers a burst of packets).
        if let Some(rtt) = newest_sample {
            self.sample(rtt);
        }
        while matches!(self.unacked.front(), Some(None)) {
            self.unacked.pop_front();
            self.base += 1;
        }
        if moved {
            self.last_progress = now;
        }
        if self.eos_sent && self.unacked.is_empty() && self.queue.is_empty() {
            self.done = true;
        }
    }

    /// When the next retransmission falls due, if anything is in flight.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.unacked.iter().flatten().map(|f| f.sent + f.rto).min()
    }

    /// Whether the sender waits for the peer (something is in flight).
    pub fn waiting(&self) -> bool {
        self.unacked.iter().any(Option::is_some)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use naas_stdx::Rng;

    #[test]
    fn the_receiver_tells_fresh_packets_from_copies_in_any_order() {
        let mut rng = Rng::new(5);
        for _ in 0..200 {
            let mut receiver = Receiver::default();
            // A window of 64 numbers from some base, each sent up to three times, shuffled.
            let mut arrivals: Vec<u32> = (0..64).flat_map(|s| std::iter::repeat_n(s, 1 + rng.below(3))).collect();
            for i in (1..arrivals.len()).rev() {
                arrivals.swap(i, rng.below(i + 1));
            }
            let mut fresh = [0u32; 64];
            for seq in arrivals {
                match receiver.receive(seq) {
                    Arrival::Fresh => fresh[seq as usize] += 1,
                    Arrival::Copy => {}
                    Arrival::OutOfWindow => panic!("{seq} is inside the window"),
                }
            }
            assert!(fresh.iter().all(|n| *n == 1), "each packet fresh exactly once");
            assert_eq!((receiver.cum, receiver.sack), (64, 0));
            assert_eq!(receiver.receive(64 + SEQ_SPAN + 1), Arrival::OutOfWindow);
        }
    }

    #[test]
    fn the_sender_retransmits_until_acknowledged_and_ends_the_stream_last() {
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut sender = Sender::new(1, peer);
        let datagram = |n: u8| {
            let mut out = Vec::new();
            let header = wire::Header {
                kind: wire::Kind::Data,
                encoding: wire::Encoding::Host,
                fingerprint: 1,
                job: 2,
                link: 1,
                seq: 0,
                count: 0,
                words: u16::from(n),
            };
            wire::encode(&header, &[], &mut out);
            out
        };
        sender.queue(datagram(0), 0);
        sender.queue(datagram(1), 0);
        sender.finish(datagram(9));
        let start = Instant::now();
        let mut sent = Vec::new();
        sender.transmit(start, &mut |_, d| sent.push(wire::decode(d).map(|d| d.header.seq).unwrap_or(99)));
        assert_eq!(sent, vec![0, 1], "end of stream waits for the data's acknowledgements");
        sender.on_ack(0, 0b1, start);
        sent.clear();
        sender.transmit(start + FIRST_RTO, &mut |_, d| sent.push(wire::decode(d).map(|d| d.header.seq).unwrap_or(99)));
        assert_eq!(sent, vec![0], "packet 0 is retransmitted, packet 1 was acknowledged selectively");
        assert_eq!(sender.counts.retransmissions, 1);
        sender.on_ack(2, 0, start);
        sent.clear();
        sender.transmit(start + FIRST_RTO, &mut |_, d| sent.push(wire::decode(d).map(|d| d.header.seq).unwrap_or(99)));
        assert_eq!(sent, vec![2]);
        assert!(!sender.done);
        sender.on_ack(3, 0, start);
        assert!(sender.done);
    }

    #[test]
    fn the_timeout_follows_measured_round_trips_and_ignores_retransmitted_packets() {
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut sender = Sender::new(1, peer);
        let datagram = || {
            let mut out = Vec::new();
            let header = wire::Header {
                kind: wire::Kind::Data,
                encoding: wire::Encoding::Host,
                fingerprint: 1,
                job: 2,
                link: 1,
                seq: 0,
                count: 0,
                words: 0,
            };
            wire::encode(&header, &[], &mut out);
            out
        };
        assert_eq!(sender.rto(), FIRST_RTO);
        let mut now = Instant::now();
        // Ten round trips of 200 ms each, one packet at a time.
        for seq in 0..10u32 {
            sender.queue(datagram(), 0);
            sender.transmit(now, &mut |_, _| {});
            now += Duration::from_millis(200);
            sender.on_ack(seq + 1, 0, now);
        }
        assert!(sender.rto() >= Duration::from_millis(200), "{:?}", sender.rto());
        // A packet retransmitted, then acknowledged at once, is not a sample of 1 ms.
        let before = sender.rto();
        sender.queue(datagram(), 0);
        sender.transmit(now, &mut |_, _| {});
        now += before;
        sender.transmit(now, &mut |_, _| {});
        now += Duration::from_millis(1);
        sender.on_ack(11, 0, now);
        assert_eq!(sender.rto(), before);
    }
}
