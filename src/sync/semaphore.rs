//! [`Semaphore`]: a count of permits; acquiring parks the fiber until
//! enough are free. The usual way to cap concurrency (a crawler that fetches
//! at most 10 pages at once).
//!
//! ## Fairness and invariants
//!
//! First come, first served: a fiber that asks while others wait queues
//! behind them, even if enough permits are free for it (so one that asks for
//! many is not starved by a stream that asks for few). Releasing permits
//! grants them to the waiters at the front, in order, as long as the first
//! one's request fits; a granted waiter owns its permits from that moment
//! (`permits` no longer counts them). A granted waiter that is cancelled
//! before it runs releases them again: no permit is ever lost.

use std::cell::Cell;
use std::fmt;

use super::wait_queue::{WaitQueue, Waited};
use crate::runtime::wait::Parker;

const ACQUIRE: &str = "spindle::sync::Semaphore::acquire";

/// A counting semaphore for the fibers of one runtime: the usual way to cap
/// how many fibers do something at once.
///
/// First come, first served: a fiber that asks while others wait queues
/// behind them, so a large request is not starved by small ones. A fiber
/// granted permits and then cancelled before it runs gives them back. See
/// the [`sync`](super) docs for what all the primitives share.
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use std::time::Duration;
/// use spindle::sync::Semaphore;
///
/// spindle::run(|| {
///     let limit = Rc::new(Semaphore::new(2));
///     let (now, most) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
///     let fetchers: Vec<_> = (0..6)
///         .map(|_| {
///             let (limit, now, most) = (limit.clone(), now.clone(), most.clone());
///             spindle::spawn(move || {
///                 let _permit = limit.acquire();
///                 now.set(now.get() + 1);
///                 most.set(most.get().max(now.get()));
///                 spindle::sleep(Duration::from_millis(2));
///                 now.set(now.get() - 1);
///             })
///         })
///         .collect();
///     spindle::join_all(fetchers);
///     assert_eq!(most.get(), 2);
/// });
/// ```
///
/// # `Send`
///
/// Not `Send`, as [`Mutex`](super::Mutex).
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// assert_send(spindle::sync::Semaphore::new(1));
/// ```
pub struct Semaphore {
    permits: Cell<usize>,
    waiters: WaitQueue,
}

impl Semaphore {
    /// A semaphore with `permits` free permits.
    pub const fn new(permits: usize) -> Semaphore {
        Semaphore {
            permits: Cell::new(permits),
            waiters: WaitQueue::new(),
        }
    }

    /// Free permits right now.
    pub fn available_permits(&self) -> usize {
        self.permits.get()
    }

    /// Takes one permit, parking the fiber until one is free.
    ///
    /// # Panics
    ///
    /// As [`acquire_many`](Self::acquire_many).
    #[track_caller]
    #[inline]
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        self.acquire_many(1)
    }

    /// Takes `n` permits at once, parking the fiber until they are free
    /// and it is its turn.
    ///
    /// # Panics
    ///
    /// If it must wait and the caller is not a fiber of a runtime; as a
    /// cancellation point, when it waits (no permit is taken); and if the
    /// runtime is shutting down and the caller, already unwinding, would
    /// have to wait.
    #[track_caller]
    #[inline(always)]
    pub fn acquire_many(&self, n: usize) -> SemaphorePermit<'_> {
        if let Some(p) = self.try_acquire_many(n) {
            return p;
        }
        /// However the wait ends, serves the waiters that are now first
        /// (a cancelled front waiter may have been holding them up).
        struct Regrant<'a>(&'a Semaphore);
        impl Drop for Regrant<'_> {
            fn drop(&mut self) {
                self.0.add_permits(0);
            }
        }
        let _regrant = Regrant(self);
        let waited = {
            let p = &Parker::current(ACQUIRE);
            self.waiters
                .wait(p, ACQUIRE, n, None, || {}, || self.add_permits(n))
        };
        match waited {
            // Granted by `add_permits`, which already took them from the count.
            Waited::Notified => SemaphorePermit { sem: self, n },
            Waited::TimedOut | Waited::Interrupted => panic!(
                "spindle::sync::Semaphore::acquire: the runtime is shutting down and \
                 this fiber, already unwinding, cannot wait for permits"
            ),
        }
    }

    /// Takes one permit if one is free and nobody is queued; never waits.
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits if they are free and nobody is queued; never
    /// waits.
    pub fn try_acquire_many(&self, n: usize) -> Option<SemaphorePermit<'_>> {
        let free = self.permits.get();
        if free < n || !self.waiters.is_empty() {
            return None;
        }
        self.permits.set(free - n);
        Some(SemaphorePermit { sem: self, n })
    }

    /// Adds `n` permits, and grants them to the waiters at the front of
    /// the queue whose requests fit.
    ///
    /// # Panics
    ///
    /// If the count would overflow `usize`.
    pub fn add_permits(&self, n: usize) {
        let mut free = self
            .permits
            .get()
            .checked_add(n)
            .expect("spindle::sync::Semaphore: too many permits");
        while let Some(want) = self.waiters.front_request() {
            if want > free {
                break;
            }
            free -= want;
            self.waiters.notify_one();
        }
        self.permits.set(free);
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("permits", &self.permits.get())
            .field("waiters", &self.waiters.len())
            .finish()
    }
}

/// Permits taken from a [`Semaphore`].
///
/// # Dropping
///
/// Gives the permits back (see [`forget`](Self::forget) to keep them
/// taken).
#[must_use = "if unused the permits are released at once"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
    n: usize,
}

impl SemaphorePermit<'_> {
    /// How many permits this holds.
    pub fn num_permits(&self) -> usize {
        self.n
    }

    /// Keeps the permits taken for good: the semaphore has that many
    /// fewer.
    pub fn forget(mut self) {
        self.n = 0;
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        if self.n > 0 {
            self.sem.add_permits(self.n);
        }
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("permits", &self.n)
            .finish()
    }
}
