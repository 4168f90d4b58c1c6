//! One UDP socket with the links of one job through it: senders toward parents (with the
//! packing of entries into datagrams), receivers from children, and the checks every arriving
//! datagram passes (spec §18.2-18.4). A node, and the job's mappers and reducer, each own one.
//!
//! [`Endpoint::step`] sends what the windows allow, retransmits what timed out, waits up to a
//! given time for datagrams, applies acknowledgements, and hands every *fresh* data packet and
//! end of stream to its caller; copies, foreign and malformed datagrams are counted and
//! dropped here.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use naas_stdx::{mix64, Rng};
use serde::Serialize;

use crate::link::{Arrival, LinkCounts, Receiver, Sender};
use crate::wire::{self, Datagram, Encoding, Header, Kind};

/// What a job's datagrams carry, checked on every arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Template {
    pub encoding: Encoding,
    pub fingerprint: u64,
    pub job: u64,
    /// State words per entry.
    pub words: u16,
    /// The largest key id an entry may carry (a switch's key bits).
    pub max_key: u64,
    /// The largest state word (a switch's register word bits).
    pub max_word: u64,
    /// Entries per data datagram: a switch program's lanes, or what fits
    /// [`wire::TARGET_PAYLOAD`] (at least one).
    pub entries_per_packet: u16,
    /// Lanes of a switch program (a datagram carries at most one entry per lane); 0 for host.
    pub lanes: u32,
}

impl Template {
    pub fn header(&self, kind: Kind, link: u32, count: u16) -> Header {
        Header {
            kind,
            encoding: self.encoding,
            fingerprint: self.fingerprint,
            job: self.job,
            link,
            seq: 0,
            count,
            words: if kind == Kind::Data { self.words } else { 0 },
        }
    }

    /// Entries of `words` state words that fit [`wire::TARGET_PAYLOAD`], at least one, at most
    /// what a datagram can hold.
    pub fn host_entries_per_packet(words: u16) -> u16 {
        let entry = 8 * (1 + usize::from(words));
        let fit = (wire::TARGET_PAYLOAD / entry).max(1);
        u16::try_from(fit).unwrap_or(u16::MAX)
    }
}

/// The lane of a key: the same at every hop (so a key is merged in one lane's table at every
/// switch); a datagram carries at most one entry per lane.
pub fn lane_of(key: u64, lanes: u32) -> usize {
    (mix64(key ^ 0x6c61_6e65_7365_6564) % u64::from(lanes.max(1))) as usize
}

/// The uplink (of `uplinks`) that `key` travels on: every hop spreads keys over several
/// parents by the same hash.
pub fn uplink_of(key: u64, uplinks: usize) -> usize {
    if uplinks <= 1 {
        0
    } else {
        (mix64(key ^ 0x5bd1_e995) % uplinks as u64) as usize
    }
}

/// Seeded loss and duplication of outgoing datagrams, for tests of the protocol in one
/// process (the kernel's own loss is tested with nftables).
#[derive(Clone, Debug)]
pub struct Faults {
    pub loss: f64,
    pub dup: f64,
    /// Probability that a datagram is held back and sent after the next one.
    pub reorder: f64,
    rng: Rng,
    held: Option<(SocketAddr, Vec<u8>)>,
}

impl Faults {
    pub fn new(loss: f64, dup: f64, seed: u64) -> Faults {
        Faults { loss, dup, reorder: 0.0, rng: Rng::new(seed), held: None }
    }

    pub fn with_reorder(mut self, reorder: f64) -> Faults {
        self.reorder = reorder;
        self
    }

    fn draw(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What an endpoint counted (field names as the simulator's report where they mean the same).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub packets_in: u64,
    pub bytes_in: u64,
    pub entries_in: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
    pub entries_out: u64,
    pub acks_in: u64,
    pub acks_out: u64,
    pub retransmissions: u64,
    /// Packet copies dropped by receivers (already applied, or after end of stream).
    pub duplicates_dropped: u64,
    /// Datagrams that fail to decode (random bytes, truncated, corrupt).
    pub bad_packets: u64,
    /// Well-formed datagrams of another job or aggregation, or for a link this endpoint does
    /// not have.
    pub foreign_packets: u64,
    /// Faults injected by [`Faults`].
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
}

/// A fresh arrival.
#[derive(Debug)]
pub enum Event {
    /// A data packet's entries (`count` entries; read them with [`Endpoint::entries`]).
    Data {
        link: u32,
        payload: Vec<u8>,
        count: u16,
    },
    Eos {
        link: u32,
    },
}

/// A receiver and where its acknowledgements go.
#[derive(Debug)]
struct Incoming {
    link: u32,
    receiver: Receiver,
    reply_to: Option<SocketAddr>,
    ack_due: bool,
    counts: LinkCounts,
}

/// The open (not yet sealed) datagram of a sender.
#[derive(Debug, Default)]
struct Open {
    payload: Vec<u8>,
    count: u16,
    lanes_used: Vec<bool>,
}

/// One socket and the links of one job through it.
#[derive(Debug)]
pub struct Endpoint {
    socket: UdpSocket,
    pub template: Template,
    senders: Vec<Sender>,
    open: Vec<Open>,
    incoming: Vec<Incoming>,
    pub counts: Counts,
    faults: Option<Faults>,
    buf: Vec<u8>,
    scratch: Vec<u8>,
}

/// How much an endpoint reads per [`Endpoint::step`] before it sends again.
const MAX_BURST: usize = 256;

impl Endpoint {
    pub fn new(socket: UdpSocket, template: Template) -> Endpoint {
        Endpoint {
            socket,
            template,
            senders: Vec::new(),
            open: Vec::new(),
            incoming: Vec::new(),
            counts: Counts::default(),
            faults: None,
            buf: vec![0; wire::MAX_DATAGRAM + 1],
            scratch: Vec::new(),
        }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    pub fn set_faults(&mut self, faults: Faults) {
        self.faults = Some(faults);
    }

    /// Adds a link toward a parent; returns its index among the uplinks.
    pub fn add_uplink(&mut self, link: u32, peer: SocketAddr) -> usize {
        self.senders.push(Sender::new(link, peer));
        self.open.push(Open { lanes_used: vec![false; self.template.lanes as usize], ..Open::default() });
        self.senders.len() - 1
    }

    /// Expects a link from a child.
    pub fn add_downlink(&mut self, link: u32) {
        self.incoming.push(Incoming {
            link,
            receiver: Receiver::default(),
            reply_to: None,
            ack_due: false,
            counts: LinkCounts { link, ..LinkCounts::default() },
        });
    }

    pub fn uplinks(&self) -> usize {
        self.senders.len()
    }

    /// Appends an entry to uplink `up`'s open datagram, sealing it when full (or when the
    /// entry's lane is taken).
    pub fn push(&mut self, up: usize, key: u64, words: &[u64]) {
        let lanes = self.template.lanes;
        if lanes > 0 {
            let lane = lane_of(key, lanes);
            if self.open[up].lanes_used.get(lane).copied().unwrap_or(false) {
                self.seal(up);
            }
            if let Some(used) = self.open[up].lanes_used.get_mut(lane) {
                *used = true;
            }
        }
        let open = &mut self.open[up];
        wire::push_entry(&mut open.payload, key, words);
        open.count += 1;
        if open.count >= self.template.entries_per_packet.max(1) {
            self.seal(up);
        }
    }

    /// Queues uplink `up`'s open datagram.
    pub fn seal(&mut self, up: usize) {
        let open = &mut self.open[up];
        if open.count == 0 {
            return;
        }
        let header = self.template.header(Kind::Data, self.senders[up].link, open.count);
        let mut datagram = Vec::with_capacity(wire::HEADER_LEN + open.payload.len());
        wire::encode(&header, &open.payload, &mut datagram);
        self.senders[up].queue(datagram, open.count);
        open.payload.clear();
        open.count = 0;
        open.lanes_used.iter_mut().for_each(|used| *used = false);
    }

    /// Seals every uplink and asks for end of stream on each.
    pub fn finish_uplinks(&mut self) {
        for up in 0..self.senders.len() {
            self.seal(up);
            let header = self.template.header(Kind::Eos, self.senders[up].link, 0);
            let mut datagram = Vec::new();
            wire::encode(&header, &[], &mut datagram);
            self.senders[up].finish(datagram);
        }
    }

    /// Whether every uplink's end of stream has been acknowledged.
    pub fn uplinks_done(&self) -> bool {
        self.senders.iter().all(|s| s.done)
    }

    /// Whether every downlink's end of stream has arrived.
    pub fn downlinks_done(&self) -> bool {
        self.incoming.iter().all(|i| i.receiver.eos)
    }

    /// The downlinks whose end of stream has not arrived.
    pub fn unfinished_downlinks(&self) -> Vec<u32> {
        self.incoming.iter().filter(|i| !i.receiver.eos).map(|i| i.link).collect()
    }

    /// The uplink that has waited longest for an acknowledgement, and since when.
    pub fn stalled_uplink(&self) -> Option<(u32, SocketAddr, Instant)> {
        self.senders.iter().filter(|s| s.waiting()).map(|s| (s.link, s.peer, s.last_progress)).min_by_key(|s| s.2)
    }

    /// Words per entry: the key id, then the state words.
    pub fn stride(&self) -> usize {
        1 + usize::from(self.template.words)
    }

    /// The entries of a data payload (the endpoint checked its shape) into `out`, cleared
    /// first: [`Endpoint::stride`] words each, the key id first.
    pub fn words(&self, payload: &[u8], out: &mut Vec<u64>) {
        out.clear();
        out.extend(payload.chunks_exact(8).map(|word| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(word);
            u64::from_le_bytes(bytes)
        }));
    }

    /// Traffic per link: uplinks (sender side), then downlinks (receiver side).
    pub fn link_counts(&self) -> (Vec<LinkCounts>, Vec<LinkCounts>) {
        let up = self.senders.iter().map(|s| s.counts.clone()).collect();
        let down = self.incoming.iter().map(|i| i.counts.clone()).collect();
        (up, down)
    }

    fn send_raw(socket: &UdpSocket, faults: &mut Option<Faults>, counts: &mut Counts, to: SocketAddr, datagram: &[u8]) {
        let mut copies = 1;
        let mut released = None;
        if let Some(faults) = faults {
            if faults.draw() < faults.loss {
                counts.lost += 1;
                copies = 0;
            } else if faults.draw() < faults.dup {
                counts.duplicated += 1;
                copies = 2;
            }
            if copies > 0 && faults.held.is_none() && faults.draw() < faults.reorder {
                counts.reordered += 1;
                faults.held = Some((to, datagram.to_vec()));
                copies -= 1;
            } else {
                released = faults.held.take();
            }
        }
        for _ in 0..copies {
            // A full socket buffer or an unreachable peer loses the datagram, as the network
            // would: retransmission recovers it, and a dead peer is found by its silence.
            let _ = socket.send_to(datagram, to);
        }
        if let Some((to, datagram)) = released {
            let _ = socket.send_to(&datagram, to);
        }
    }

    /// One round: handle what has arrived, send what the windows allow and retransmit what
    /// timed out, and if nothing had arrived, wait up to `wait` for datagrams and handle them.
    /// Fresh data and end of stream go to `events`.
    ///
    /// Arrivals are read before anything is sent: acknowledgements waiting in the socket
    /// buffer while the caller was busy (merging, say) must not make their packets look
    /// overdue, or every busy spell would send copies of packets that had arrived.
    pub fn step(&mut self, wait: Duration, events: &mut Vec<Event>) -> std::io::Result<()> {
        let drained = self.receive(None, events)?;
        self.send_acks();
        self.transmit();
        if drained == 0 {
            let now = Instant::now();
            let deadline = self.senders.iter().filter_map(Sender::next_deadline).min();
            let wait = match deadline {
                Some(deadline) => wait.min(deadline.saturating_duration_since(now)),
                None => wait,
            };
            if self.receive(Some(wait), events)? > 0 {
                self.send_acks();
                // Acknowledgements may have opened the windows.
                self.transmit();
            }
        }
        Ok(())
    }

    /// Reads and handles datagrams: those already waiting (`wait` = `None`), or, after waiting
    /// up to `wait` for the first, it and those behind it. Returns how many were read.
    fn receive(&mut self, wait: Option<Duration>, events: &mut Vec<Event>) -> std::io::Result<usize> {
        match wait {
            None => self.socket.set_nonblocking(true)?,
            Some(wait) => {
                self.socket.set_nonblocking(false)?;
                self.socket.set_read_timeout(Some(wait.max(Duration::from_micros(100))))?;
            }
        }
        let mut received = 0;
        loop {
            let (len, from) = match self.socket.recv_from(&mut self.buf) {
                Ok(got) => got,
                Err(error) if matches!(error.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    break
                }
                // An ICMP error for an earlier datagram (its peer has gone, which its silence
                // will show), or a signal: read on.
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::ConnectionRefused
                            | std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::Interrupted
                    ) =>
                {
                    if received == 0 && wait.is_some() {
                        continue;
                    }
                    break;
                }
                Err(error) => return Err(error),
            };
            if received == 0 && wait.is_some() {
                self.socket.set_nonblocking(true)?;
            }
            received += 1;
            let datagram = std::mem::take(&mut self.buf);
            self.handle(&datagram[..len], from, events);
            self.buf = datagram;
            if received >= MAX_BURST {
                break;
            }
        }
        Ok(received)
    }

    fn transmit(&mut self) {
        let now = Instant::now();
        let (socket, faults, counts) = (&self.socket, &mut self.faults, &mut self.counts);
        for sender in &mut self.senders {
            let before = sender.counts.clone();
            sender.transmit(now, &mut |to, datagram| Self::send_raw(socket, faults, counts, to, datagram));
            counts.packets_out += sender.counts.packets - before.packets;
            counts.bytes_out += sender.counts.bytes - before.bytes;
            counts.entries_out += sender.counts.entries - before.entries;
            counts.retransmissions += sender.counts.retransmissions - before.retransmissions;
        }
    }

    fn send_acks(&mut self) {
        for index in 0..self.incoming.len() {
            let incoming = &mut self.incoming[index];
            if !incoming.ack_due {
                continue;
            }
            incoming.ack_due = false;
            let Some(to) = incoming.reply_to else { continue };
            let mut header = self.template.header(Kind::Ack, incoming.link, 0);
            header.seq = incoming.receiver.cum;
            let sack = incoming.receiver.sack.to_le_bytes();
            wire::encode(&header, &sack, &mut self.scratch);
            self.counts.acks_out += 1;
            Self::send_raw(&self.socket, &mut self.faults, &mut self.counts, to, &self.scratch);
        }
    }

    /// Checks one datagram and applies it.
    fn handle(&mut self, bytes: &[u8], from: SocketAddr, events: &mut Vec<Event>) {
        let Ok(datagram) = wire::decode(bytes) else {
            self.counts.bad_packets += 1;
            return;
        };
        let header = datagram.header;
        let t = &self.template;
        if header.job != t.job || header.fingerprint != t.fingerprint || header.encoding != t.encoding {
            self.counts.foreign_packets += 1;
            return;
        }
        match header.kind {
            Kind::Ack => {
                let Some(sender) = self.senders.iter_mut().find(|s| s.link == header.link) else {
                    self.counts.foreign_packets += 1;
                    return;
                };
                self.counts.acks_in += 1;
                sender.on_ack(header.seq, datagram.sack(), Instant::now());
            }
            Kind::Data | Kind::Eos => {
                let Some(index) = self.incoming.iter().position(|i| i.link == header.link) else {
                    self.counts.foreign_packets += 1;
                    return;
                };
                if header.kind == Kind::Data && !self.entries_fit(&datagram) {
                    self.counts.bad_packets += 1;
                    return;
                }
                let incoming = &mut self.incoming[index];
                incoming.reply_to = Some(from);
                incoming.ack_due = true;
                incoming.counts.peer = from.to_string();
                incoming.counts.packets += 1;
                incoming.counts.bytes += bytes.len() as u64;
                self.counts.packets_in += 1;
                self.counts.bytes_in += bytes.len() as u64;
                match incoming.receiver.receive(header.seq) {
                    Arrival::Fresh => {}
                    Arrival::Copy => {
                        incoming.counts.duplicates_dropped += 1;
                        self.counts.duplicates_dropped += 1;
                        return;
                    }
                    Arrival::OutOfWindow => {
                        self.counts.bad_packets += 1;
                        return;
                    }
                }
                if header.kind == Kind::Eos {
                    incoming.receiver.eos = true;
                    events.push(Event::Eos { link: header.link });
                } else {
                    incoming.counts.entries += u64::from(header.count);
                    self.counts.entries_in += u64::from(header.count);
                    events.push(Event::Data {
                        link: header.link,
                        payload: datagram.payload.to_vec(),
                        count: header.count,
                    });
                }
            }
            // A set-up for the job in progress: its acknowledgement was lost, say it again.
            Kind::Setup => {
                let header = self.template.header(Kind::Ack, wire::SETUP_LINK, 0);
                wire::encode(&header, &0u64.to_le_bytes(), &mut self.scratch);
                self.counts.acks_out += 1;
                Self::send_raw(&self.socket, &mut self.faults, &mut self.counts, from, &self.scratch);
            }
        }
    }

    /// Whether a data datagram has this job's entry shape and key range.
    fn entries_fit(&self, datagram: &Datagram<'_>) -> bool {
        let t = &self.template;
        datagram.header.words == t.words
            && datagram.header.count <= t.entries_per_packet.max(1)
            && datagram.entries().all(|(key, mut words)| key <= t.max_key && words.all(|w| w <= t.max_word))
    }
}
