//! [`WaitGroup`]: wait for a group of fibers to finish (Go's
//! `sync.WaitGroup`).
//!
//! A counter and a queue of waiters. `add` raises the counter, `done`
//! lowers it, and when it reaches zero every waiter is woken. Waiters only
//! re-check the counter when they run, so a waiter cancelled after the
//! counter reached zero takes nothing from anyone.

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;

use super::wait_queue::{WaitQueue, Waited};
use crate::runtime::wait::Parker;

const WAIT: &str = "spindle::sync::WaitGroup::wait";

struct Inner {
    count: Cell<usize>,
    waiters: WaitQueue,
}

/// A counter of unfinished work that fibers can wait to reach zero (Go's
/// `sync.WaitGroup`). Clones share one counter. See the [`sync`](super)
/// docs for what all the primitives share.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use spindle::sync::WaitGroup;
///
/// spindle::run(|| {
///     let wg = WaitGroup::new();
///     for i in 0..3u64 {
///         wg.add(1);
///         let wg = wg.clone();
///         spindle::spawn(move || {
///             spindle::sleep(Duration::from_millis(i));
///             wg.done();
///         });
///     }
///     wg.wait();
///     assert_eq!(wg.count(), 0);
/// });
/// ```
///
/// # `Send`
///
/// Not `Send`, as [`Mutex`](super::Mutex).
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// assert_send(spindle::sync::WaitGroup::new());
/// ```
#[derive(Clone)]
pub struct WaitGroup {
    inner: Rc<Inner>,
}

impl WaitGroup {
    /// A wait group with a count of zero.
    pub fn new() -> WaitGroup {
        WaitGroup {
            inner: Rc::new(Inner {
                count: Cell::new(0),
                waiters: WaitQueue::new(),
            }),
        }
    }

    /// Adds `n` to the count.
    ///
    /// # Panics
    ///
    /// If the count would overflow `usize`.
    pub fn add(&self, n: usize) {
        let c = self.inner.count.get();
        let c = c
            .checked_add(n)
            .expect("spindle::sync::WaitGroup: counter overflow");
        self.inner.count.set(c);
    }

    /// Takes one from the count; at zero, wakes every waiter.
    ///
    /// # Panics
    ///
    /// If the count is already zero (Go: "negative WaitGroup counter").
    #[track_caller]
    pub fn done(&self) {
        let c = self.inner.count.get();
        assert!(c > 0, "spindle::sync::WaitGroup::done: negative counter");
        self.inner.count.set(c - 1);
        if c == 1 {
            self.inner.waiters.notify_all();
        }
    }

    /// The count right now.
    pub fn count(&self) -> usize {
        self.inner.count.get()
    }

    /// Parks the fiber until the count is zero (returns at once if it is).
    ///
    /// # Panics
    ///
    /// If it must wait and the caller is not a fiber of a runtime; and as a
    /// cancellation point, when it waits. During a runtime shutdown, a
    /// fiber that is already unwinding returns at once instead.
    #[track_caller]
    pub fn wait(&self) {
        while self.inner.count.get() > 0 {
            let waited = {
                let p = &Parker::current(WAIT);
                self.inner.waiters.wait(p, WAIT, 0, None, || {}, || {})
            };
            if waited != Waited::Notified {
                return;
            }
        }
    }
}

impl Default for WaitGroup {
    fn default() -> WaitGroup {
        WaitGroup::new()
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.count())
            .field("waiters", &self.inner.waiters.len())
            .finish()
    }
}
