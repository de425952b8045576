//! The run queue: the fibers that are ready to run, first in first out.
//!
//! A `VecDeque` of task keys. Push to the back and pop from the front are
//! O(1) (amortised: the ring buffer doubles when full and never shrinks
//! while the runtime lives, so a steady state allocates nothing).
//!
//! ## Invariants
//!
//! - A key is in the queue at most once, and exactly when its task's state
//!   is `Ready`. Every push goes through a state change to `Ready` made by
//!   the same `Core` borrow (spawn, `yield_now`, a wake-up), and a wake-up
//!   of a task that is already `Ready` or `Running` does nothing.
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
}

impl RunQueue {
    /// An empty queue; allocates nothing.
    pub(crate) const fn new() -> RunQueue {
        RunQueue {
            queue: VecDeque::new(),
        }
    }

    /// Appends a ready task at the back.
    #[inline]
    pub(crate) fn push(&mut self, key: Key) {
        self.queue.push_back(key);
    }

    /// Takes the task at the front.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<Key> {
        self.queue.pop_front()
    }

    /// The task `i` places behind the front, if there is one.
    #[inline]
    pub(crate) fn peek(&self, i: usize) -> Option<Key> {
        self.queue.get(i).copied()
    }

    /// Number of queued tasks.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no task is queued.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Forgets every queued key (shutdown).
    pub(crate) fn clear(&mut self) {
        self.queue.clear();
    }
}
