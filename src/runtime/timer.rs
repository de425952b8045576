//! Timers: the sleep queue, and [`sleep`] / [`sleep_until`].
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
use std::time::{Duration, Instant};

use super::scheduler::{current_raw, Scheduler};
use super::slab::Key;
use super::task::TaskState;

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

/// A live timer of the running task; dropping it abandons the timer if it
/// has not fired (on every path out of a wait, unwinding included).
pub(crate) struct Timer<'a> {
    sched: &'a Scheduler,
    key: Key,
}

impl<'a> Timer<'a> {
    /// Sets a timer that wakes the task `key` at `deadline`.
    pub(crate) fn set(sched: &'a Scheduler, key: Key, deadline: Instant) -> Timer<'a> {
        let mut core = sched.core.borrow_mut();
        let seq = core.sleep_queue.insert(deadline, key);
        core.tasks
            .get_mut(key)
            .expect("a running task has a record")
            .timer = seq;
        Timer { sched, key }
    }

    /// Whether the timer has fired (its deadline has passed).
    pub(crate) fn fired(&self) -> bool {
        let core = self.sched.core.borrow();
        core.tasks.get(self.key).map_or(true, |t| t.timer == 0)
    }
}

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        let mut core = self.sched.core.borrow_mut();
        let core = &mut *core;
        let Some(t) = core.tasks.get_mut(self.key) else {
            return;
        };
        if t.timer != 0 {
            t.timer = 0;
            let tasks = &core.tasks;
            core.sleep_queue
                .abandon(|k, seq| tasks.get(k).is_some_and(|t| t.timer == seq));
        }
    }
}

/// Puts the running fiber to sleep for at least `dur`; other fibers run
/// meanwhile.
///
/// A zero (or already elapsed) sleep still suspends: the fiber goes to the
/// back of the run queue, as with [`yield_now`](crate::yield_now).
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// spindle::run(|| {
///     let start = Instant::now();
///     spindle::sleep(Duration::from_millis(5));
///     assert!(start.elapsed() >= Duration::from_millis(5));
/// });
/// ```
///
/// # Panics
///
/// Outside a runtime. If the fiber is cancelled while it sleeps, the sleep
/// unwinds it (see [`JoinHandle::cancel`](crate::JoinHandle::cancel)).
#[track_caller]
#[inline(always)]
pub fn sleep(dur: Duration) {
    let now = Instant::now();
    // A deadline past what Instant can hold is a century away in practice.
    let deadline = now
        .checked_add(dur)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600));
    sleep_until(deadline);
}

/// Puts the running fiber to sleep until `deadline` (never wakes it before).
///
/// A deadline in the past still suspends the fiber once, as
/// [`yield_now`](crate::yield_now) does.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// spindle::run(|| {
///     let deadline = Instant::now() + Duration::from_millis(3);
///     spindle::sleep_until(deadline);
///     assert!(Instant::now() >= deadline);
/// });
/// ```
///
/// # Panics
///
/// Outside a runtime; and as [`sleep`] when cancelled.
#[track_caller]
#[inline(always)]
pub fn sleep_until(deadline: Instant) {
    // No closure, so this inlines into the caller's frame (a frame live
    // across the switch costs a mispredicted return: see `with_current`).
    let (s, key) = current_raw("spindle::sleep_until");
    // SAFETY: the scheduler outlives the running fiber (`current_raw`).
    let s = unsafe { &*s };
    if Instant::now() >= deadline {
        let _ = s.yield_now(key);
        return;
    }
    if s.checkpoint(key).is_err() {
        return;
    }
    let timer = Timer::set(s, key, deadline);
    loop {
        if s.park(key, TaskState::Sleeping, 0).is_err() || timer.fired() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::slab::Slab;

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
