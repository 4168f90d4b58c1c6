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

/// The largest bucket [`EventQueue::peek`] searches.
const PEEK_SCAN: usize = 16;

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

    /// The event [`EventQueue::pop`] would return next, if that is cheap to tell: when other
    /// events share the time of the last one popped, or the next bucket holds at most
    /// [`PEEK_SCAN`] events. `None` says nothing (the queue may hold events); nothing moves,
    /// so peeking never changes what is popped (nor do the pushes that follow it go anywhere
    /// else). The simulator peeks to prefetch what the next event will touch.
    #[inline]
    pub(super) fn peek(&self) -> Option<Event> {
        if let Some((_, event)) = self.buckets[0].last() {
            return Some(*event);
        }
        let bucket = self.buckets.iter().find(|b| !b.is_empty())?;
        if bucket.len() > PEEK_SCAN {
            return None;
        }
        // `pop` takes the bucket's earliest, and of equal times the last one pushed.
        let mut earliest = bucket.first()?;
        for candidate in bucket {
            if candidate.0 <= earliest.0 {
                earliest = candidate;
            }
        }
        Some(earliest.1)
    }

    /// The event after the one [`EventQueue::peek`] tells, if it too shares the time of the
    /// last one popped (`None` otherwise, or when there is none).
    #[inline]
    pub(super) fn peek_second(&self) -> Option<Event> {
        let zero = &self.buckets[0];
        zero.len().checked_sub(2).map(|i| zero[i].1)
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
    use naas_ir::laws::Rng;

    #[test]
    fn pops_in_time_order_with_pushes_interleaved_and_peeks_what_it_pops() {
        let mut queue = EventQueue::new();
        let mut rng = Rng::new(3);
        let mut now = 0u64;
        let mut popped = 0;
        let mut peeked_some = 0;
        let mut second_some = 0;
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
            // Pop one event, or (every third round) two in a row, checking what peeking told.
            let peeked_pair = [queue.peek(), queue.peek_second()];
            for peeked in &peeked_pair[..if round % 3 == 0 { 2 } else { 1 }] {
                if let Some((time, event)) = queue.pop() {
                    assert!(peeked.is_none_or(|peeked| peeked == event), "peeked {peeked:?}, popped {event:?}");
                    peeked_some += u32::from(peeked.is_some());
                    second_some += u32::from(peeked.is_some() && std::ptr::eq(peeked, &peeked_pair[1]));
                    assert!(time >= now, "{time} after {now}");
                    now = time;
                    popped += 1;
                }
            }
        }
        assert!(peeked_some > 1_000, "peek told only {peeked_some} events");
        assert!(second_some > 100, "peek_second told only {second_some} events");
        while let Some((time, _)) = queue.pop() {
            assert!(time >= now);
            now = time;
            popped += 1;
        }
        assert!(popped > 10_000);
        assert_eq!(queue.len(), 0);
    }
}
