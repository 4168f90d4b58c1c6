//! The simulator's events and its event queue, a radix heap.
//!
//! A discrete-event simulation only ever schedules events at or after the current time, so
//! the queue is *monotone*, which a radix heap exploits: an event goes into the bucket named by
//! the highest bit in which its time differs from the last time popped, pushing is O(1), and
//! each event moves to a lower bucket at most 64 times (in practice a few) before it is popped.
//! Against a binary heap of the same events this saves the O(log n) sift on every push and pop,
//! and events are small `Copy` values (no reference counts to touch).
//!
//! Events with the same time pop in an unspecified but deterministic order (the same sequence
//! of pushes and pops gives the same order): the transport protocol must be, and is, correct
//! under any order of simultaneous events.

/// What happens at a point in simulated time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Event {
    /// A copy of packet `packet` (a [`super::packets::PacketPool`] id) arrives over `link`.
    Deliver { link: u32, packet: u32 },
    /// An acknowledgement reaches `link`'s sender: every sequence number below `cum`, and
    /// `cum + 1 + i` for every bit `i` set in `sack`, has been received.
    Ack { link: u32, cum: u32, sack: u64 },
    /// `link`'s retransmission timer fires.
    Timeout { link: u32 },
    /// `link`'s receiver sends the acknowledgement it has been delaying.
    AckDelay { link: u32 },
}

/// A monotone priority queue of events keyed by time (picoseconds).
#[derive(Debug)]
pub(super) struct EventQueue {
    /// The time of the last event popped; nothing earlier may be pushed.
    last: u64,
    /// Bucket 0 holds events at `last`; bucket `b` > 0 events whose time first differs from
    /// `last` in bit `b - 1` (counting from the least significant).
    buckets: [Vec<(u64, Event)>; 65],
    len: usize,
}

impl EventQueue {
    pub(super) fn new() -> EventQueue {
        EventQueue { last: 0, buckets: std::array::from_fn(|_| Vec::new()), len: 0 }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    fn bucket(last: u64, time: u64) -> usize {
        (64 - (time ^ last).leading_zeros()) as usize
    }

    /// Schedules `event` at `time`, which must not be earlier than the last time popped (an
    /// earlier time is treated as the last time popped).
    #[inline]
    pub(super) fn push(&mut self, time: u64, event: Event) {
        debug_assert!(time >= self.last, "event scheduled in the past");
        let time = time.max(self.last);
        self.buckets[Self::bucket(self.last, time)].push((time, event));
        self.len += 1;
    }

    /// The event `n` places after the next one (the next one for `n = 0`), if it is known
    /// cheaply: when it shares the time of the last event popped (`None` otherwise). Nothing
    /// moves, so peeking never changes what is popped. The simulator peeks to prefetch what
    /// the coming events will touch.
    #[inline]
    pub(super) fn peek_nth(&self, n: usize) -> Option<Event> {
        let zero = &self.buckets[0];
        zero.len().checked_sub(n + 1).map(|i| zero[i].1)
    }

    /// The earliest event and its time.
    #[inline]
    pub(super) fn pop(&mut self) -> Option<(u64, Event)> {
        if self.buckets[0].is_empty() {
            let index = self.buckets.iter().position(|b| !b.is_empty())?;
            // The bucket's earliest time becomes `last`; every event of the bucket then
            // differs from it in a lower bit, so it moves to a lower bucket.
            let mut bucket = std::mem::take(&mut self.buckets[index]);
            self.last = bucket.iter().map(|(time, _)| *time).min().unwrap_or(self.last);
            for (time, event) in bucket.drain(..) {
                self.buckets[Self::bucket(self.last, time)].push((time, event));
            }
            // Keep the emptied vector's capacity for the next events of this bucket.
            self.buckets[index] = bucket;
        }
        let popped = self.buckets[0].pop()?;
        self.len -= 1;
        Some(popped)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use naas_stdx::Rng;

    #[test]
    fn pops_in_time_order_with_pushes_interleaved_and_peeks_what_it_pops() {
        let mut queue = EventQueue::new();
        let mut rng = Rng::new(3);
        let mut now = 0u64;
        let mut popped = 0;
        let mut peeked_some = 0;
        let mut later_some = 0;
        let mut pushed = 0u32;
        for round in 0..20_000u32 {
            for _ in 0..if round % 5 == 0 { 3 } else { rng.next_u64() % 3 } {
                // Some events share a time (as a synchronised network's do).
                let time =
                    if round % 5 == 0 { now + 7 } else { now + rng.next_u64() % 5_000 + u64::from(round % 7 == 0) };
                // Distinct events, so that peeking the wrong one of equal times shows.
                pushed += 1;
                queue.push(time, Event::Timeout { link: pushed });
            }
            // Pop one to four events in a row, checking what peeking told of each.
            let peeked: Vec<Option<Event>> = (0..4).map(|n| queue.peek_nth(n)).collect();
            for (n, peeked) in peeked.iter().enumerate().take(1 + round as usize % 4) {
                if let Some((time, event)) = queue.pop() {
                    assert!(peeked.is_none_or(|peeked| peeked == event), "peeked {peeked:?}, popped {event:?}");
                    peeked_some += u32::from(peeked.is_some());
                    later_some += u32::from(peeked.is_some() && n > 0);
                    assert!(time >= now, "{time} after {now}");
                    now = time;
                    popped += 1;
                }
            }
        }
        assert!(peeked_some > 1_000, "peeking told only {peeked_some} events");
        assert!(later_some > 100, "peeking past the next event told only {later_some} events");
        while let Some((time, _)) = queue.pop() {
            assert!(time >= now);
            now = time;
            popped += 1;
        }
        assert!(popped > 10_000);
        assert_eq!(queue.len(), 0);
    }
}
