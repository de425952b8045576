//! [`Condvar`]: wait for a condition on data a [`Mutex`] guards, parking
//! the fiber.
//!
//! `wait` links the fiber into the condition variable's queue *before* it
//! releases the mutex, and nothing runs between the two on this thread, so
//! a `notify` that follows a change made under the lock can never be
//! missed. A waiter notified but cancelled before it runs passes the
//! notification to the next waiter.
//!
//! As with std's, a wait may end without a notification (here: when the
//! runtime shuts down while the fiber is already unwinding), so the
//! condition must be checked in a loop; [`Condvar::wait_while`] does that.

use std::fmt;
use std::time::{Duration, Instant};

use super::mutex::{Mutex, MutexGuard};
use super::wait_queue::{WaitQueue, Waited};
use crate::runtime::wait::Parker;

const WAIT: &str = "spindle::sync::Condvar::wait";

/// A condition variable for the fibers of one runtime (std's `Condvar`,
/// parking the fiber).
///
/// `wait` queues the fiber before it releases the mutex, so a notification
/// sent under the lock is never missed; a waiter that is notified and then
/// cancelled passes the notification on. As with std's, a wait may end
/// early (during a runtime shutdown), so check the condition in a loop, or
/// use [`wait_while`](Condvar::wait_while). See the [`sync`](super) docs for
/// what all the primitives share.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use spindle::sync::{Condvar, Mutex};
///
/// spindle::run(|| {
///     let state = Rc::new((Mutex::new(false), Condvar::new()));
///     let theirs = Rc::clone(&state);
///     let h = spindle::spawn(move || {
///         let (ready, cv) = &*theirs;
///         *ready.lock() = true;
///         cv.notify_one();
///     });
///     let (ready, cv) = &*state;
///     let guard = cv.wait_while(ready.lock(), |ready| !*ready);
///     assert!(*guard);
///     drop(guard);
///     h.join().unwrap();
/// });
/// ```
///
/// # `Send`
///
/// Not `Send`, as [`Mutex`].
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// assert_send(spindle::sync::Condvar::new());
/// ```
pub struct Condvar {
    waiters: WaitQueue,
}

impl Default for Condvar {
    fn default() -> Condvar {
        Condvar::new()
    }
}

/// Whether a timed wait on a [`Condvar`] ran out of time (std's
/// `WaitTimeoutResult`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// Whether the wait ended because the time ran out.
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

impl Condvar {
    /// A condition variable nobody waits on.
    pub const fn new() -> Condvar {
        Condvar {
            waiters: WaitQueue::new(),
        }
    }

    /// Releases the lock, parks until notified, and locks again.
    ///
    /// # Panics
    ///
    /// Outside a fiber of a runtime; as a cancellation point, in the wait or
    /// while locking again (the fiber then unwinds without the lock; its
    /// guard was given to `wait`); and as [`Mutex::lock`].
    #[track_caller]
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.wait_until_deadline(guard, None).0
    }

    /// Waits until `condition` is false, checking it first and after every
    /// wake-up (std's `wait_while`).
    ///
    /// # Panics
    ///
    /// As [`wait`](Self::wait).
    #[track_caller]
    pub fn wait_while<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> MutexGuard<'a, T> {
        while condition(&mut *guard) {
            guard = self.wait(guard);
        }
        guard
    }

    /// As [`wait`](Self::wait), for at most `timeout`.
    ///
    /// # Panics
    ///
    /// As [`wait`](Self::wait).
    #[track_caller]
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        self.wait_until_deadline(guard, Instant::now().checked_add(timeout))
    }

    /// As [`wait_while`](Self::wait_while), for at most `timeout` in all;
    /// the result says whether the condition was still true at the end.
    ///
    /// # Panics
    ///
    /// As [`wait`](Self::wait).
    #[track_caller]
    pub fn wait_timeout_while<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        timeout: Duration,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        let deadline = Instant::now().checked_add(timeout);
        while condition(&mut *guard) {
            let (g, r) = self.wait_until_deadline(guard, deadline);
            guard = g;
            if r.timed_out() {
                let still = condition(&mut *guard);
                return (guard, WaitTimeoutResult(still));
            }
        }
        (guard, WaitTimeoutResult(false))
    }

    #[track_caller]
    #[inline(always)]
    fn wait_until_deadline<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        let mutex: &'a Mutex<T> = MutexGuard::mutex(&guard);
        let mut guard = Some(guard);
        let waited = {
            let p = &Parker::current(WAIT);
            self.waiters.wait(
                p,
                WAIT,
                0,
                deadline,
                // Linked in: now let the lock go.
                || drop(guard.take()),
                || {
                    self.waiters.notify_one();
                },
            )
        };
        /// Passes a notification on if the fiber unwinds while locking again.
        struct PassOn<'q>(&'q WaitQueue, bool);
        impl Drop for PassOn<'_> {
            fn drop(&mut self) {
                if self.1 {
                    self.0.notify_one();
                }
            }
        }
        let mut pass_on = PassOn(&self.waiters, waited == Waited::Notified);
        let guard = mutex.lock();
        pass_on.1 = false;
        (guard, WaitTimeoutResult(waited == Waited::TimedOut))
    }

    /// Wakes the fiber that has waited longest, if any.
    pub fn notify_one(&self) {
        self.waiters.notify_one();
    }

    /// Wakes every waiting fiber.
    pub fn notify_all(&self) {
        self.waiters.notify_all();
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar")
            .field("waiters", &self.waiters.len())
            .finish()
    }
}
