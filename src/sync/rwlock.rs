//! [`RwLock`]: many readers or one writer, parking the fiber.
//!
//! For data that many fibers read across suspension points (a cache that a
//! request handler consults while it waits on a socket) and a few rewrite.
//!
//! ## Fairness: write-preferring, FIFO
//!
//! One FIFO [wait queue](super::wait_queue) holds readers and writers in
//! the order they arrived. A fiber that asks while anybody is queued
//! queues too, even if the lock could admit it now: in particular a reader
//! that arrives after a waiting writer queues behind that writer, so a
//! stream of readers never starves a writer. Releasing grants from the
//! front: the first writer alone once the lock is free, or every reader up
//! to the next queued writer at once. A writer waits for the readers
//! ahead of it, and those behind it wait for the writer; nobody starves.
//!
//! ## Invariants
//!
//! - `writer` is true exactly while some fiber owns the write lock (holds a
//!   [`RwLockWriteGuard`], or has been granted it and not yet run);
//!   `readers` counts the fibers that own a read lock the same way. Never
//!   both: `writer` implies `readers == 0`.
//! - A waiter's request says what it waits for ([`WRITE`] or [`READ`]); a
//!   grant sets the state for it before it runs (handover, as the
//!   [`Mutex`](super::Mutex) does).
//! - A waiter granted the lock and cancelled before it runs releases it
//!   again, which grants the next waiters; a queued waiter that leaves
//!   unserved re-runs the grant, since it may have been what held the
//!   waiters behind it (a writer at the front, readers behind it).
//!
//! ## No poisoning
//!
//! As with [`Mutex`](super::Mutex): a fiber that panics or is cancelled
//! while holding the lock releases it as its guard drops.

use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::ops::{Deref, DerefMut};

use super::wait_queue::{WaitQueue, Waited};
use crate::runtime::wait::Parker;

const READ_WAIT: &str = "spindle::sync::RwLock::read";
const WRITE_WAIT: &str = "spindle::sync::RwLock::write";
/// A waiter's request: a read lock.
const READ: usize = 0;
/// A waiter's request: the write lock.
const WRITE: usize = 1;

/// A reader-writer lock for the fibers of one runtime: any number of
/// readers or one writer, parking the fiber while it waits.
///
/// Write-preferring and FIFO: a reader that arrives while a writer waits
/// queues behind it, so a stream of readers cannot starve a writer, and
/// releasing serves the queue from the front. No poisoning, as
/// [`Mutex`](super::Mutex). A fiber granted the lock and cancelled before
/// it runs releases it again, and a queued writer that leaves lets the
/// readers behind it in. See the [`sync`](super) docs for what all the
/// primitives share.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use std::time::Duration;
/// use spindle::sync::RwLock;
///
/// spindle::run(|| {
///     let config = Rc::new(RwLock::new(String::from("v1")));
///     let c = Rc::clone(&config);
///     let reader = spindle::spawn(move || {
///         let cfg = c.read();
///         spindle::sleep(Duration::from_millis(1)); // the writer waits meanwhile
///         cfg.clone()
///     });
///     spindle::yield_now(); // the reader takes its lock
///     *config.write() = String::from("v2");
///     assert_eq!(reader.join().unwrap(), "v1");
///     assert_eq!(*config.read(), "v2");
/// });
/// ```
///
/// # `Send`
///
/// Not `Send` (its waiters are fibers of this thread) and not `Sync`.
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// assert_send(spindle::sync::RwLock::new(0));
/// ```
pub struct RwLock<T: ?Sized> {
    readers: Cell<usize>,
    writer: Cell<bool>,
    waiters: WaitQueue,
    value: UnsafeCell<T>,
}

impl<T> RwLock<T> {
    /// An unlocked lock holding `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = spindle::sync::RwLock::new(5);
    /// assert_eq!(*lock.read(), 5);
    /// ```
    pub const fn new(value: T) -> RwLock<T> {
        RwLock {
            readers: Cell::new(0),
            writer: Cell::new(false),
            waiters: WaitQueue::new(),
            value: UnsafeCell::new(value),
        }
    }

    /// The value, from a lock nobody can be waiting on any more.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = spindle::sync::RwLock::new(vec![1]);
    /// lock.write().push(2);
    /// assert_eq!(lock.into_inner(), [1, 2]);
    /// ```
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Takes a read lock, parking the fiber while a writer holds the lock
    /// or anybody is queued ahead (a waiting writer goes first).
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::sync::RwLock;
    ///
    /// let lock = RwLock::new(1);
    /// let (a, b) = (lock.read(), lock.read()); // readers share the lock
    /// assert_eq!(*a + *b, 2);
    /// ```
    ///
    /// # Panics
    ///
    /// If it must wait and the caller is not a fiber of a runtime; as a
    /// cancellation point, when it waits (no lock is taken); and if the
    /// runtime is shutting down and the caller, already unwinding, would
    /// have to wait.
    #[track_caller]
    #[inline]
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        if let Some(g) = self.try_read() {
            return g;
        }
        self.wait(READ, READ_WAIT);
        RwLockReadGuard { lock: self }
    }

    /// Takes the write lock, parking the fiber until every earlier reader
    /// and writer is done.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = spindle::sync::RwLock::new(1);
    /// *lock.write() += 1;
    /// assert_eq!(*lock.read(), 2);
    /// ```
    ///
    /// # Panics
    ///
    /// As [`read`](Self::read).
    #[track_caller]
    #[inline]
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        if let Some(g) = self.try_write() {
            return g;
        }
        self.wait(WRITE, WRITE_WAIT);
        RwLockWriteGuard { lock: self }
    }

    /// Takes a read lock if no writer holds it and nobody is queued; never
    /// waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = spindle::sync::RwLock::new(0);
    /// let w = lock.write();
    /// assert!(lock.try_read().is_none());
    /// drop(w);
    /// assert!(lock.try_read().is_some());
    /// ```
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        if self.writer.get() || !self.waiters.is_empty() {
            return None;
        }
        self.readers.set(self.readers.get() + 1);
        Some(RwLockReadGuard { lock: self })
    }

    /// Takes the write lock if nobody holds the lock and nobody is queued;
    /// never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = spindle::sync::RwLock::new(0);
    /// let r = lock.read();
    /// assert!(lock.try_write().is_none());
    /// drop(r);
    /// assert!(lock.try_write().is_some());
    /// ```
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        if self.writer.get() || self.readers.get() > 0 || !self.waiters.is_empty() {
            return None;
        }
        self.writer.set(true);
        Some(RwLockWriteGuard { lock: self })
    }

    /// Whether a fiber holds (or has been granted) the write lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = spindle::sync::RwLock::new(0);
    /// let w = lock.write();
    /// assert!(lock.is_write_locked());
    /// drop(w);
    /// assert!(!lock.is_write_locked());
    /// ```
    pub fn is_write_locked(&self) -> bool {
        self.writer.get()
    }

    /// How many fibers hold (or have been granted) a read lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = spindle::sync::RwLock::new(0);
    /// let (_a, _b) = (lock.read(), lock.read());
    /// assert_eq!(lock.reader_count(), 2);
    /// ```
    pub fn reader_count(&self) -> usize {
        self.readers.get()
    }

    /// The value, through an exclusive borrow (no locking needed).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut lock = spindle::sync::RwLock::new(1);
    /// *lock.get_mut() = 2;
    /// assert_eq!(*lock.read(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    /// Queues the fiber for `request` and returns once it has been granted.
    #[track_caller]
    #[inline(always)]
    fn wait(&self, request: usize, what: &'static str) {
        /// However the wait ends, serves the waiters that are now first
        /// (this one, leaving unserved, may have been holding them up).
        struct Regrant<'a, T: ?Sized>(&'a RwLock<T>);
        impl<T: ?Sized> Drop for Regrant<'_, T> {
            fn drop(&mut self) {
                self.0.grant();
            }
        }
        let _regrant = Regrant(self);
        let waited = {
            let p = &Parker::current(what);
            self.waiters.wait(
                p,
                what,
                request,
                None,
                || {},
                || {
                    // Granted but never ran: release what was granted.
                    if request == WRITE {
                        self.write_unlock();
                    } else {
                        self.read_unlock();
                    }
                },
            )
        };
        match waited {
            // Granted by `grant`, which set the state for us.
            Waited::Notified => {}
            Waited::TimedOut | Waited::Interrupted => panic!(
                "{what}: the runtime is shutting down and this fiber, already \
                 unwinding, cannot wait for the lock"
            ),
        }
    }

    /// Grants the lock to the waiters at the front that it can admit now:
    /// the first writer once nobody holds it, or the readers up to the
    /// next writer while no writer holds it.
    fn grant(&self) {
        if self.writer.get() {
            return;
        }
        while let Some(want) = self.waiters.front_request() {
            if want == WRITE {
                if self.readers.get() == 0 {
                    self.writer.set(true);
                    self.waiters.notify_one();
                }
                return;
            }
            self.readers.set(self.readers.get() + 1);
            self.waiters.notify_one();
        }
    }

    fn read_unlock(&self) {
        let n = self.readers.get() - 1;
        self.readers.set(n);
        if n == 0 {
            self.grant();
        }
    }

    fn write_unlock(&self) {
        self.writer.set(false);
        self.grant();
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        if self.writer.get() {
            d.field("value", &format_args!("<write-locked>"));
        } else {
            // SAFETY: no writer owns the lock (invariants), and a shared
            // borrow for the duration of this call is what a reader takes.
            d.field("value", &unsafe { &*self.value.get() });
        }
        d.field("readers", &self.readers.get())
            .field("waiters", &self.waiters.len())
            .finish()
    }
}

/// The proof that a fiber holds a read lock on an [`RwLock`];
/// dereferences to its value.
///
/// # Examples
///
/// ```
/// let lock = spindle::sync::RwLock::new(String::from("x"));
/// let guard = lock.read();
/// assert_eq!(guard.len(), 1);
/// ```
///
/// # Dropping
///
/// Releases the read lock; the last reader out grants the lock to the
/// waiters at the front.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves this fiber owns a read lock, so no
        // writer does (invariants) and nobody mutates the value while the
        // borrow (no longer than the guard) lives.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.read_unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// The proof that a fiber holds the write lock on an [`RwLock`];
/// dereferences (mutably) to its value.
///
/// # Examples
///
/// ```
/// let lock = spindle::sync::RwLock::new(vec![1]);
/// let mut guard = lock.write();
/// guard.push(2);
/// assert_eq!(*guard, [1, 2]);
/// ```
///
/// # Dropping
///
/// Releases the write lock, granting it to the waiters at the front.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves this fiber owns the write lock, so no
        // other fiber reaches the value (invariants).
        unsafe { &*self.lock.value.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes the borrow exclusive.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.write_unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
