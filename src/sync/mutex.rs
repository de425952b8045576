//! [`Mutex`]: a lock that parks the fiber, not the thread.
//!
//! On one thread, fibers only interleave at suspension points, so a
//! `RefCell` already protects data that no suspension point separates from
//! its use. A `Mutex` is for the other case: a critical section that waits
//! inside (a sleep, a socket, a channel), during which other fibers must not
//! see the data half-changed. It is asyncio's `Lock` and gevent's `Lock`.
//!
//! ## Fairness
//!
//! Strictly first come, first served. `unlock` hands the lock straight to
//! the first parked fiber (it stays locked, now owned by that fiber), so a
//! fiber that unlocks and locks again at once queues behind the others
//! instead of taking the lock back: no fiber starves.
//!
//! ## Invariants
//!
//! - `locked` is true exactly while some fiber owns the lock: one holding a
//!   [`MutexGuard`], or one that has been handed the lock and not yet run
//!   (it was notified by the [wait queue](super::wait_queue)).
//! - Only the owner touches `value`, through its guard.
//! - A waiter handed the lock and cancelled before it runs unlocks again,
//!   which hands the lock to the next waiter: the lock is never lost.
//!
//! ## No poisoning
//!
//! A fiber that panics (or is cancelled) while holding the lock unlocks it
//! as its guard drops, like tokio's and parking_lot's mutexes; the data
//! may be half-updated. std's poisoning would make every cancellation
//! poison the locks the fiber held, which is not what cancellation means.

use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::ops::{Deref, DerefMut};

use super::wait_queue::{WaitQueue, Waited};
use crate::runtime::wait::Parker;

const LOCK: &str = "spindle::sync::Mutex::lock";

/// A mutual-exclusion lock for the fibers of one runtime, for critical
/// sections that wait inside (a sleep, a socket, a channel).
///
/// Strictly first come, first served: unlocking hands the lock straight to
/// the fiber that has waited longest, so nobody starves. No poisoning: a
/// fiber that panics or is cancelled while holding the lock unlocks it as
/// its guard drops (like tokio's and parking_lot's). See the [`sync`](super)
/// docs for what all the primitives share.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use std::time::Duration;
/// use spindle::sync::Mutex;
///
/// spindle::run(|| {
///     let balance = Rc::new(Mutex::new(100));
///     let workers: Vec<_> = (0..4)
///         .map(|_| {
///             let balance = Rc::clone(&balance);
///             spindle::spawn(move || {
///                 let mut b = balance.lock();
///                 let seen = *b;
///                 spindle::sleep(Duration::from_millis(1)); // others run, but wait for the lock
///                 *b = seen - 10;
///             })
///         })
///         .collect();
///     spindle::join_all(workers);
///     assert_eq!(*balance.lock(), 60);
/// });
/// ```
///
/// # `Send`
///
/// Not `Send` (its waiters are fibers of this thread) and not `Sync`.
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// assert_send(spindle::sync::Mutex::new(0));
/// ```
pub struct Mutex<T: ?Sized> {
    locked: Cell<bool>,
    waiters: WaitQueue,
    value: UnsafeCell<T>,
}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            locked: Cell::new(false),
            waiters: WaitQueue::new(),
            value: UnsafeCell::new(value),
        }
    }

    /// The value, from a mutex nobody can be waiting on any more.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex, parking the fiber until it is its turn.
    ///
    /// # Panics
    ///
    /// If it must wait and the caller is not a fiber of a runtime; as a
    /// cancellation point, when it waits (the lock is not taken); and if the
    /// runtime is shutting down and the caller, already unwinding, would
    /// have to wait for a lock another fiber holds (it cannot park then).
    #[track_caller]
    #[inline(always)]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        if let Some(g) = self.try_lock() {
            return g;
        }
        let waited = {
            let p = &Parker::current(LOCK);
            self.waiters.wait(p, LOCK, 0, None, || {}, || self.unlock())
        };
        match waited {
            // Handed over by `unlock`: `locked` stayed true for us.
            Waited::Notified => MutexGuard { mutex: self },
            Waited::TimedOut | Waited::Interrupted => panic!(
                "spindle::sync::Mutex::lock: the runtime is shutting down and this \
                 fiber, already unwinding, cannot wait for a lock another fiber holds"
            ),
        }
    }

    /// Locks the mutex if it is free and nobody is queued for it; never
    /// waits.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        if self.locked.get() || !self.waiters.is_empty() {
            return None;
        }
        self.locked.set(true);
        Some(MutexGuard { mutex: self })
    }

    /// Whether some fiber holds (or has been handed) the lock.
    pub fn is_locked(&self) -> bool {
        self.locked.get()
    }

    /// The value, through an exclusive borrow (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    /// Releases the lock: hands it to the first waiter, or frees it.
    fn unlock(&self) {
        if !self.waiters.notify_one() {
            self.locked.set(false);
        }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(g) => d.field("value", &&*g),
            None => d.field("value", &format_args!("<locked>")),
        };
        d.field("waiters", &self.waiters.len()).finish()
    }
}

/// The proof that a fiber holds a [`Mutex`]; dereferences to its value.
///
/// # Dropping
///
/// Unlocks the mutex, handing it to the first waiting fiber if there is
/// one.
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The mutex this guard locks (for [`Condvar`](super::Condvar)).
    pub(crate) fn mutex(guard: &MutexGuard<'a, T>) -> &'a Mutex<T> {
        guard.mutex
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves this fiber owns the lock (invariants),
        // and only the owner reaches the value; the borrow lives no longer
        // than the guard.
        unsafe { &*self.mutex.value.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes the borrow exclusive.
        unsafe { &mut *self.mutex.value.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
