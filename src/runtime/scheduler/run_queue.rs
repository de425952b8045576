//! The run queue: the fibers that are ready to run, first in first out.
//!
//! A `VecDeque` of task keys. Push to the back and pop from the front are
//! O(1) (amortised: the ring buffer doubles when full and never shrinks
//! while the runtime lives, so a steady state allocates nothing).
//!
//! ## Positions, and emptied entries
//!
//! Every push has a sequence number: the number of pushes before it. An
//! entry never moves relative to the others (only pops from the front and
//! pushes to the back change the queue), so the entry pushed as number `s`
//! sits at index `s - popped` for as long as it is queued. A spawn notes
//! its entry's number in the task's record; a **hand-off** (the scheduling
//! docs, [`crate::runtime`]) that runs an unstarted task early finds its
//! entry there in O(1) and empties it ([`RunQueue::take_at`]): the entry
//! becomes [`Key::NONE`], which the scheduler skips when it pops it.
//!
//! ## Invariants
//!
//! - A key is in the queue at most once, and exactly when its task's state
//!   is `Ready` — apart from a task taken by a hand-off, whose entry is
//!   emptied in the same `Core` borrow that takes it. Every push goes
//!   through a state change to `Ready` made by the same `Core` borrow
//!   (spawn, `yield_now`, a wake-up), and a wake-up of a task that is
//!   already `Ready` or `Running` does nothing.
//! - A key whose task has since ended (possible only during shutdown,
//!   which empties the queue) is skipped by the scheduler, because the slab
//!   answers `None` to it.
//!
//! The order this gives, and how rounds of the scheduler loop use it, is
//! written down in the runtime docs ([`crate::runtime`], "Scheduling order").

use std::collections::VecDeque;

use crate::runtime::task::Key;

/// FIFO of ready tasks; see the [module docs](self).
pub(crate) struct RunQueue {
    queue: VecDeque<Key>,
    /// Entries popped (or cleared) so far: the sequence number of the entry
    /// at the front.
    popped: u64,
}

impl RunQueue {
    /// An empty queue; allocates nothing.
    pub(crate) const fn new() -> RunQueue {
        RunQueue {
            queue: VecDeque::new(),
            popped: 0,
        }
    }

    /// Appends a ready task at the back; returns the entry's sequence
    /// number (see the [module docs](self)).
    #[inline]
    pub(crate) fn push(&mut self, key: Key) -> u64 {
        let seq = self.next_seq();
        self.queue.push_back(key);
        seq
    }

    /// The sequence number the next push will have.
    #[inline]
    pub(crate) fn next_seq(&self) -> u64 {
        self.popped + self.queue.len() as u64
    }

    /// Takes the entry at the front: a task, or [`Key::NONE`] for an entry
    /// a hand-off emptied.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<Key> {
        let key = self.queue.pop_front()?;
        self.popped += 1;
        Some(key)
    }

    /// Empties the entry pushed as number `seq`, if it is still queued and
    /// holds `key`; whether it did.
    #[inline]
    pub(crate) fn take_at(&mut self, seq: u64, key: Key) -> bool {
        let Some(at) = seq.checked_sub(self.popped) else {
            return false;
        };
        match usize::try_from(at).ok().and_then(|i| self.queue.get_mut(i)) {
            Some(k) if *k == key => {
                *k = Key::NONE;
                true
            }
            _ => false,
        }
    }

    /// The task `i` places behind the front, if there is one.
    #[inline]
    pub(crate) fn peek(&self, i: usize) -> Option<Key> {
        self.queue.get(i).copied()
    }

    /// Number of queued entries (emptied ones included).
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no entry is queued.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Forgets every queued key (shutdown).
    pub(crate) fn clear(&mut self) {
        self.popped += self.queue.len() as u64;
        self.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::task::Slab;

    #[test]
    fn take_at_empties_exactly_the_entry_pushed_with_that_number() {
        let mut slab = Slab::new();
        let keys: Vec<Key> = (0..4).map(|i| slab.insert(i)).collect();
        let mut q = RunQueue::new();
        let seqs: Vec<u64> = keys.iter().map(|&k| q.push(k)).collect();
        assert_eq!(seqs, [0, 1, 2, 3]);
        assert_eq!(q.pop(), Some(keys[0]));
        // Number 0 is gone; number 2 is still there, one place behind the front.
        assert!(!q.take_at(0, keys[0]));
        assert!(!q.take_at(2, keys[1]), "another key at that number");
        assert!(q.take_at(2, keys[2]));
        assert!(!q.take_at(2, keys[2]), "emptied already");
        assert_eq!(q.push(keys[0]), 4);
        let rest: Vec<Key> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(rest, [keys[1], Key::NONE, keys[3], keys[0]]);
        q.push(keys[1]);
        q.clear();
        assert_eq!(q.push(keys[2]), 6, "numbers go on after a clear");
        assert!(q.take_at(6, keys[2]));
    }
}
