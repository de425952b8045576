//! The sleep queue: every timer of one scheduler, earliest first.
//!
//! ## Data structure and cost
//!
//! The sleep queue is a binary min-heap (`std::collections::BinaryHeap`) of
//! `(deadline, sequence, task key)` entries, 32 bytes each, with *lazy
//! deletion*:
//!
//! | operation | cost |
//! |---|---|
//! | set a timer | O(log n) push |
//! | fire the earliest | O(log n) pop |
//! | abandon a timer (the sleeper was cancelled, or woke for another reason) | O(1): the entry stays as a *tombstone* |
//! | peek the next deadline | O(1), plus one O(log n) pop per tombstone found on top |
//! | compaction | O(n), amortised O(1) per abandoned timer |
//!
//! An entry is live exactly when its task still exists and the task's
//! record holds the entry's sequence number (`TaskRecord::timer`); anything
//! else is a tombstone. The queue counts its tombstones, and when they are
//! more than half of the heap (and the heap holds at least 64 entries) it
//! rebuilds itself from the live entries. So cancelled sleepers never make it
//! grow without bound: it holds at most twice the live timers, plus 64.
//!
//! ## Ordering and precision
//!
//! Entries order by deadline, then by sequence number, which increases with
//! every timer set: sleepers with equal deadlines wake in the order they went
//! to sleep. A timer fires only when the clock (`Instant`, i.e.
//! `CLOCK_MONOTONIC`) has reached its deadline, so a sleep never ends early;
//! it ends at the first scheduler round after the deadline. When nothing is
//! runnable, the reactor blocks until the earliest deadline with nanosecond
//! resolution (`epoll_pwait2`), or milliseconds rounded up where the kernel
//! lacks that call.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::runtime::task::Key;

#[derive(PartialEq, Eq)]
struct Entry {
    deadline: Instant,
    seq: u64,
    key: Key,
}

impl Ord for Entry {
    fn cmp(&self, other: &Entry) -> Ordering {
        // Reversed: BinaryHeap is a max-heap and we want the earliest.
        (other.deadline, other.seq).cmp(&(self.deadline, self.seq))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Entry) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Heaps smaller than this are never compacted.
const COMPACT_MIN: usize = 64;

/// The timer heap; see the [module docs](self).
pub(crate) struct SleepQueue {
    heap: BinaryHeap<Entry>,
    next_seq: u64,
    tombstones: usize,
}

impl SleepQueue {
    /// An empty queue; allocates nothing.
    pub(crate) fn new() -> SleepQueue {
        SleepQueue {
            heap: BinaryHeap::new(),
            next_seq: 1,
            tombstones: 0,
        }
    }

    /// Sets a timer for `key` and returns its sequence number (never 0),
    /// which the caller stores in the task's record to make it live.
    pub(crate) fn insert(&mut self, deadline: Instant, key: Key) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Entry { deadline, seq, key });
        seq
    }

    /// Records that one live entry became a tombstone, and compacts when
    /// tombstones pass half of the heap. `is_live(key, seq)` tells live
    /// entries.
    pub(crate) fn abandon(&mut self, is_live: impl FnMut(Key, u64) -> bool) {
        self.tombstones += 1;
        if self.heap.len() >= COMPACT_MIN && self.tombstones * 2 > self.heap.len() {
            self.compact(is_live);
        }
    }

    fn compact(&mut self, mut is_live: impl FnMut(Key, u64) -> bool) {
        self.heap.retain(|e| is_live(e.key, e.seq));
        self.tombstones = 0;
    }

    /// Pops the earliest live entry whose deadline is at or before `now`,
    /// dropping tombstones on the way.
    pub(crate) fn pop_expired(
        &mut self,
        now: Instant,
        mut is_live: impl FnMut(Key, u64) -> bool,
    ) -> Option<Key> {
        while let Some(top) = self.heap.peek() {
            if top.deadline > now {
                return None;
            }
            let e = self.heap.pop().expect("peeked");
            if is_live(e.key, e.seq) {
                return Some(e.key);
            }
            self.tombstones -= 1;
        }
        None
    }

    /// The earliest live deadline, dropping tombstones found on top.
    pub(crate) fn next_deadline(
        &mut self,
        mut is_live: impl FnMut(Key, u64) -> bool,
    ) -> Option<Instant> {
        while let Some(top) = self.heap.peek() {
            if is_live(top.key, top.seq) {
                return Some(top.deadline);
            }
            self.heap.pop();
            self.tombstones -= 1;
        }
        None
    }

    /// Every entry, tombstones included, in no order: `(key, sequence,
    /// deadline)`. For dumps (an O(n) walk).
    pub(crate) fn entries(&self) -> impl Iterator<Item = (Key, u64, Instant)> + '_ {
        self.heap.iter().map(|e| (e.key, e.seq, e.deadline))
    }

    /// Whether the heap holds no entry at all (live or not).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Entries in the heap, tombstones included.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Forgets every entry (shutdown).
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
        self.tombstones = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::task::Slab;
    use std::time::Duration;

    #[test]
    fn equal_deadlines_pop_in_insertion_order_and_tombstones_are_bounded() {
        let mut keys = Slab::new();
        let mut q = SleepQueue::new();
        let t0 = Instant::now();
        let mut live = std::collections::HashMap::new();
        let ks: Vec<Key> = (0..3).map(|i| keys.insert(i)).collect();
        for &k in &ks {
            live.insert(k, q.insert(t0, k));
        }
        let mut order = Vec::new();
        while let Some(k) = q.pop_expired(t0, |k, s| live.get(&k) == Some(&s)) {
            order.push(k);
        }
        assert_eq!(order, ks);

        // 1,000 timers set and abandoned: the heap stays bounded.
        let k = ks[0];
        for i in 0..1000u64 {
            let seq = q.insert(t0 + Duration::from_secs(i), k);
            live.insert(k, seq);
            live.remove(&k);
            q.abandon(|k, s| live.get(&k) == Some(&s));
        }
        assert!(q.len() <= COMPACT_MIN, "heap grew to {}", q.len());
        assert_eq!(q.next_deadline(|k, s| live.get(&k) == Some(&s)), None);
        assert!(q.is_empty());
    }
}
