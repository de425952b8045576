//! [`WaitGroup`]: wait for a group of fibers or threads to finish (Go's
//! `sync.WaitGroup`), across threads.
//!
//! A counter and a queue of waiters under one lock. `add` raises the
//! counter, `done` lowers it, and when it reaches zero every waiter is
//! notified. A waiter re-checks the counter when it returns from its wait,
//! so a waiter cancelled after the counter reached zero takes nothing from
//! anyone, and one that finds the counter raised again waits again.

use std::fmt;
use std::sync::Arc;

use super::wait_queue::{WaitLock, WaitQueue, Waited};

const WAIT: &str = "spindle::sync::shared::WaitGroup::wait";

struct State {
    count: usize,
    waiters: WaitQueue,
}

fn waiters(s: &mut State) -> &mut WaitQueue {
    &mut s.waiters
}

/// A counter of unfinished work that fibers of any worker and plain
/// threads can wait to reach zero (the API of
/// [`spindle::sync::WaitGroup`](crate::sync::WaitGroup)). Clones share one
/// counter.
///
/// # Examples
///
/// A plain thread waits for fibers on two workers:
///
/// ```
/// use spindle::sync::shared::WaitGroup;
///
/// let rt = spindle::Runtime::builder().workers(2).build()?;
/// rt.block_on(|| {
///     let wg = WaitGroup::new();
///     for i in 0..4 {
///         wg.add(1);
///         let wg = wg.clone();
///         drop(spindle::spawn_on(i % 2, move || {
///             spindle::sleep(std::time::Duration::from_millis(2));
///             wg.done();
///         }));
///     }
///     let waiter = {
///         let wg = wg.clone();
///         std::thread::spawn(move || wg.wait())
///     };
///     wg.wait(); // this fiber parks meanwhile
///     waiter.join().unwrap();
///     assert_eq!(wg.count(), 0);
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # `Send`
///
/// `Send` and `Sync`.
///
/// ```
/// fn assert_send_sync<T: Send + Sync>() {}
/// assert_send_sync::<spindle::sync::shared::WaitGroup>();
/// ```
#[derive(Clone)]
pub struct WaitGroup {
    inner: Arc<WaitLock<State>>,
}

impl WaitGroup {
    /// A wait group with a count of zero.
    ///
    /// # Examples
    ///
    /// ```
    /// let wg = spindle::sync::shared::WaitGroup::new();
    /// assert_eq!(wg.count(), 0);
    /// wg.wait(); // returns at once
    /// ```
    pub fn new() -> WaitGroup {
        WaitGroup {
            inner: Arc::new(WaitLock::new(State {
                count: 0,
                waiters: WaitQueue::new(),
            })),
        }
    }

    /// Adds `n` to the count.
    ///
    /// # Examples
    ///
    /// ```
    /// let wg = spindle::sync::shared::WaitGroup::new();
    /// wg.add(2);
    /// assert_eq!(wg.count(), 2);
    /// ```
    ///
    /// # Panics
    ///
    /// If the count would overflow `usize`.
    pub fn add(&self, n: usize) {
        let mut g = self.inner.lock();
        g.count = g
            .count
            .checked_add(n)
            .expect("spindle::sync::shared::WaitGroup: counter overflow");
    }

    /// Takes one from the count; at zero, wakes every waiter.
    ///
    /// # Examples
    ///
    /// ```
    /// let wg = spindle::sync::shared::WaitGroup::new();
    /// wg.add(1);
    /// wg.done();
    /// assert_eq!(wg.count(), 0);
    /// ```
    ///
    /// # Panics
    ///
    /// If the count is already zero (Go: "negative WaitGroup counter").
    #[track_caller]
    pub fn done(&self) {
        let mut g = self.inner.lock();
        assert!(
            g.count > 0,
            "spindle::sync::shared::WaitGroup::done: negative counter"
        );
        g.count -= 1;
        if g.count == 0 {
            g.notify_all(waiters);
        }
    }

    /// The count right now.
    ///
    /// # Examples
    ///
    /// See [`add`](Self::add).
    pub fn count(&self) -> usize {
        self.inner.lock().count
    }

    /// Waits until the count is zero (returns at once if it is): a fiber
    /// parks, any other caller blocks its thread.
    ///
    /// # Examples
    ///
    /// See [`WaitGroup`].
    ///
    /// # Panics
    ///
    /// In a fiber, as a cancellation point when it waits. During a runtime
    /// shutdown, a fiber that is already unwinding returns at once instead.
    pub fn wait(&self) {
        let mut g = self.inner.lock();
        while g.count > 0 {
            let (ng, waited) = g.wait(waiters, WAIT, 0, None, |_| {});
            g = ng;
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
        let g = self.inner.lock();
        f.debug_struct("WaitGroup")
            .field("count", &g.count)
            .field("waiters", &g.waiters.len())
            .finish()
    }
}
