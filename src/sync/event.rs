//! [`Event`]: a flag that fibers wait to see set (asyncio's and gevent's
//! `Event`).
//!
//! ## Invariants and fairness
//!
//! A fiber waits only while the flag is clear. [`Event::set`] sets the
//! flag and wakes every waiter at once, in the order they started waiting;
//! each of them returns `true` even if the flag has been cleared again
//! before it runs (the event *happened*; asyncio and gevent behave the
//! same). No grant is handed over, so a waiter cancelled after the wake-up
//! has nothing to pass on.

use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

use super::wait_queue::{WaitQueue, Waited};
use crate::runtime::wait::Parker;

const WAIT: &str = "spindle::sync::Event::wait";

/// A flag for the fibers of one runtime: [`wait`](Self::wait) parks until
/// some fiber [`set`](Self::set)s it (asyncio's and gevent's `Event`).
///
/// `set` wakes every waiter at once, in the order they started waiting;
/// each returns even if the flag is cleared again before it runs (the
/// event happened, as in asyncio and gevent). A cancelled waiter simply
/// leaves. See the [`sync`](super) docs for what all the primitives share.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use spindle::sync::Event;
///
/// spindle::run(|| {
///     let ready = Rc::new(Event::new());
///     let waiters: Vec<_> = (0..3)
///         .map(|i| {
///             let ready = Rc::clone(&ready);
///             spindle::spawn(move || {
///                 ready.wait();
///                 i
///             })
///         })
///         .collect();
///     spindle::yield_now(); // all three wait
///     ready.set(); // wakes all of them
///     let done: Vec<_> = spindle::join_all(waiters).into_iter().map(Result::unwrap).collect();
///     assert_eq!(done, [0, 1, 2]);
/// });
/// ```
///
/// # `Send`
///
/// Not `Send` (its waiters are fibers of this thread).
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// assert_send(spindle::sync::Event::new());
/// ```
pub struct Event {
    flag: Cell<bool>,
    waiters: WaitQueue,
}

impl Event {
    /// A new event, not set.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!spindle::sync::Event::new().is_set());
    /// ```
    pub const fn new() -> Event {
        Event {
            flag: Cell::new(false),
            waiters: WaitQueue::new(),
        }
    }

    /// Sets the flag and wakes every waiting fiber. Later waits return at
    /// once until [`clear`](Self::clear).
    ///
    /// # Examples
    ///
    /// ```
    /// let e = spindle::sync::Event::new();
    /// e.set();
    /// assert!(e.is_set());
    /// e.wait(); // returns at once
    /// ```
    pub fn set(&self) {
        self.flag.set(true);
        self.waiters.notify_all();
    }

    /// Clears the flag: later waits park until the next [`set`](Self::set).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// spindle::run(|| {
    ///     let e = spindle::sync::Event::new();
    ///     e.set();
    ///     e.clear();
    ///     assert!(!e.wait_timeout(Duration::from_millis(1)));
    /// });
    /// ```
    pub fn clear(&self) {
        self.flag.set(false);
    }

    /// Whether the flag is set.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = spindle::sync::Event::new();
    /// assert!(!e.is_set());
    /// e.set();
    /// assert!(e.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.flag.get()
    }

    /// Parks the fiber until the flag is set (returns at once if it is).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::rc::Rc;
    ///
    /// spindle::run(|| {
    ///     let e = Rc::new(spindle::sync::Event::new());
    ///     let setter = Rc::clone(&e);
    ///     spindle::spawn(move || setter.set());
    ///     e.wait();
    ///     assert!(e.is_set());
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// If it must wait and the caller is not a fiber of a runtime; and as a
    /// cancellation point, when it waits.
    #[track_caller]
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Parks the fiber until the flag is set or `timeout` passes; returns
    /// whether the event happened (gevent's `wait(timeout)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// spindle::run(|| {
    ///     let e = spindle::sync::Event::new();
    ///     assert!(!e.wait_timeout(Duration::from_millis(2)));
    ///     e.set();
    ///     assert!(e.wait_timeout(Duration::from_millis(2)));
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// As [`wait`](Self::wait).
    #[track_caller]
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(Instant::now().checked_add(timeout))
    }

    #[track_caller]
    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        if self.flag.get() {
            return true;
        }
        let p = &Parker::current(WAIT);
        match self.waiters.wait(p, WAIT, 0, deadline, || {}, || {}) {
            Waited::Notified => true,
            // A set that came with the deadline still counts.
            Waited::TimedOut | Waited::Interrupted => self.flag.get(),
        }
    }
}

impl Default for Event {
    fn default() -> Event {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.flag.get())
            .field("waiters", &self.waiters.len())
            .finish()
    }
}
