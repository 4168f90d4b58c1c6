//! Reliable links between real UDP sockets on loopback, with a seeded dropper, duplicator
//! and reorderer in front of every send: each entry is applied exactly once, so a sum (not
//! idempotent) comes out exact, and end of stream arrives after every entry.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use naas_net::endpoint::{Endpoint, Event, Faults, Template};
use naas_net::wire::Encoding;

fn template(job: u64) -> Template {
    Template {
        encoding: Encoding::Host,
        fingerprint: 0xfeed,
        job,
        words: 1,
        max_key: u64::MAX,
        max_word: u64::MAX,
        entries_per_packet: 7,
        lanes: 0,
    }
}

/// Three senders on one socket send `entries` (key, 1) entries each to one receiver; returns
/// the receiver's per-key sums and both ends' counts.
fn run(loss: f64, dup: f64, reorder: f64, seed: u64, entries: u64) -> (Vec<u64>, naas_net::endpoint::Counts) {
    let receiver_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = receiver_socket.local_addr().unwrap();
    let mut receiver = Endpoint::new(receiver_socket, template(9));
    let mut sender = Endpoint::new(UdpSocket::bind("127.0.0.1:0").unwrap(), template(9));
    for link in 0..3 {
        receiver.add_downlink(link);
        sender.add_uplink(link, to);
    }
    receiver.set_faults(Faults::new(loss, dup, seed ^ 1).with_reorder(reorder));
    sender.set_faults(Faults::new(loss, dup, seed).with_reorder(reorder));
    for up in 0..3 {
        for i in 0..entries {
            sender.push(up, i % 50, &[1 + up as u64]);
        }
    }
    sender.finish_uplinks();
    let mut sums = vec![0u64; 50];
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(receiver.downlinks_done() && sender.uplinks_done()) {
        assert!(Instant::now() < deadline, "the links did not finish");
        sender.step(Duration::from_millis(1), &mut events).unwrap();
        assert!(events.is_empty(), "the sender receives only acknowledgements");
        receiver.step(Duration::from_millis(1), &mut events).unwrap();
        for event in events.drain(..) {
            match event {
                Event::Data { payload, .. } => {
                    assert!(!receiver.downlinks_done(), "no data is applied after end of stream");
                    let mut data = Vec::new();
                    receiver.words(&payload, &mut data);
                    for entry in data.chunks_exact(receiver.stride()) {
                        sums[entry[0] as usize] += entry[1];
                    }
                }
                Event::Eos { .. } => {}
            }
        }
    }
    let mut counts = receiver.counts.clone();
    counts.retransmissions = sender.counts.retransmissions;
    counts.lost += sender.counts.lost;
    counts.duplicated += sender.counts.duplicated;
    (sums, counts)
}

#[test]
fn sums_are_exact_under_loss_duplication_and_reordering() {
    let entries = 1_000u64;
    // Every key gets entries / 50 entries from each sender, of 1, 2 and 3.
    let want = vec![(entries / 50) * 6; 50];
    for seed in 0..4 {
        let (sums, counts) = run(0.1, 0.1, 0.1, seed, entries);
        assert_eq!(sums, want, "seed {seed}: {counts:?}");
        assert!(counts.lost > 0 && counts.duplicated > 0 && counts.retransmissions > 0, "{counts:?}");
        assert!(counts.duplicates_dropped > 0, "copies were dropped, not merged: {counts:?}");
    }
    let (sums, counts) = run(0.0, 0.0, 0.0, 1, entries);
    assert_eq!(sums, want);
    assert_eq!((counts.retransmissions, counts.duplicates_dropped), (0, 0));
}

#[test]
fn datagrams_of_another_job_or_malformed_ones_are_counted_and_dropped() {
    let receiver_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = receiver_socket.local_addr().unwrap();
    let mut receiver = Endpoint::new(receiver_socket, template(9));
    receiver.add_downlink(0);
    let mut stranger = Endpoint::new(UdpSocket::bind("127.0.0.1:0").unwrap(), template(10));
    stranger.add_uplink(0, to);
    stranger.push(0, 1, &[5]);
    stranger.finish_uplinks();
    let raw = UdpSocket::bind("127.0.0.1:0").unwrap();
    raw.send_to(b"not a datagram at all, just bytes", to).unwrap();
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_millis(300);
    while Instant::now() < deadline {
        stranger.step(Duration::from_millis(5), &mut events).unwrap();
        receiver.step(Duration::from_millis(5), &mut events).unwrap();
    }
    assert!(events.is_empty(), "nothing of another job is applied");
    assert_eq!(receiver.counts.bad_packets, 1);
    assert!(receiver.counts.foreign_packets >= 1, "{:?}", receiver.counts);
    assert!(!receiver.downlinks_done());
}
