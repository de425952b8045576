//! [`Mutex`]: std's mutex for fibers of any worker and plain threads alike.
//!
//! ## Fairness
//!
//! Strictly first come, first served, as
//! [`spindle::sync::Mutex`](crate::sync::Mutex): unlocking hands the lock straight to the waiter
//! at the front of the queue (it stays locked, now owned by that waiter),
//! so one that unlocks and locks again at once queues behind the others.
//! A waiting fiber parks, a waiting thread blocks.
//!
//! ## State and invariants
//!
//! One atomic byte with two bits, and the [wait queue](super::wait_queue)
//! under its own lock:
//!
//! - `LOCKED` is set exactly while someone owns the lock: a holder of a
//!   [`MutexGuard`], or a waiter handed the lock that has not returned from
//!   its wait yet. Taking a free lock is one compare-and-swap (0 to
//!   `LOCKED`), and so is releasing it while nobody waits.
//! - `QUEUED` is set, under the queue's lock, by a caller about to queue,
//!   and cleared, under the same lock, by the release that finds the queue
//!   empty. While it is set the release takes the slow path: it locks the
//!   queue and hands the lock to the front waiter (`LOCKED` stays set), or
//!   frees it. A waiter only queues while `LOCKED` is set, and a handed-over
//!   lock stays `LOCKED`, so `LOCKED` is clear only while nobody waits: a
//!   caller that finds the lock free may take it without breaking FIFO
//!   order. (`QUEUED` may outlive the last waiter when that one leaves
//!   cancelled; the next release then finds the queue empty and frees the
//!   lock.)
//! - Only the owner touches `value`, through its guard. The release's
//!   `Release` (the swap, or the queue's lock on the slow path) and the
//!   taker's `Acquire` order one owner's writes before the next one's
//!   reads.
//! - A fiber handed the lock and cancelled before it runs releases it
//!   again, which hands it on ([`wait_queue`](super::wait_queue)).
//!
//! ## Poisoning
//!
//! As std's: a guard dropped while its holder panics poisons the mutex,
//! and later `lock`s return the guard inside a `PoisonError`. One
//! exception: a fiber that unwinds because it was *cancelled* (or because
//! its runtime shuts down) does not poison, for the reason
//! [`spindle::sync::Mutex`](crate::sync::Mutex) does not poison at all:
//! a cancellation is an ordinary way for a fiber to end, not a failure.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};
use std::thread;

use super::wait_queue::{WaitGuard, WaitLock, WaitQueue, Waited};
use crate::runtime::wait::Parker;

const LOCK: &str = "spindle::sync::shared::Mutex::lock";

/// `state`: someone owns the lock.
const LOCKED: u8 = 1;
/// `state`: someone may wait in the queue; see the [module docs](self).
const QUEUED: u8 = 2;

fn waiters(q: &mut WaitQueue) -> &mut WaitQueue {
    q
}

/// A mutual-exclusion lock shared between threads: fibers of any worker
/// and plain threads (std's `Mutex`, with its API and poisoning).
///
/// A fiber that must wait parks (the other fibers of its worker run
/// meanwhile); a plain thread blocks. Strictly first come, first served:
/// unlocking hands the lock to whoever has waited longest, fiber or thread.
/// A panic while holding the lock poisons it, as in std, but a fiber's
/// cancellation does not: a cancellation is an ordinary way for a fiber to
/// end, which is why [`spindle::sync::Mutex`](crate::sync::Mutex) never
/// poisons.
///
/// # Examples
///
/// Fibers on two workers and a plain thread add to one counter:
///
/// ```
/// use std::sync::Arc;
/// use spindle::sync::shared::Mutex;
///
/// let rt = spindle::Runtime::builder().workers(2).build()?;
/// let total = rt.block_on(|| {
///     let count = Arc::new(Mutex::new(0u32));
///     let fibers: Vec<_> = (0..2)
///         .map(|w| {
///             let count = Arc::clone(&count);
///             spindle::spawn_on(w, move || {
///                 for _ in 0..100 {
///                     *count.lock().unwrap() += 1;
///                 }
///             })
///         })
///         .collect();
///     let c = Arc::clone(&count);
///     let thread = std::thread::spawn(move || {
///         for _ in 0..100 {
///             *c.lock().unwrap() += 1;
///         }
///     });
///     fibers.into_iter().for_each(|f| f.join().unwrap());
///     thread.join().unwrap();
///     let total = *count.lock().unwrap();
///     total
/// });
/// assert_eq!(total, 300);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # `Send`
///
/// `Send` and `Sync` when `T: Send`, as std's.
///
/// ```
/// fn assert_send_sync<T: Send + Sync>() {}
/// assert_send_sync::<spindle::sync::shared::Mutex<String>>();
/// ```
pub struct Mutex<T: ?Sized> {
    state: AtomicU8,
    poison: AtomicBool,
    queue: WaitLock<WaitQueue>,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only by the lock's owner (invariants), one
// thread at a time, so sharing the mutex shares no `&T` between threads
// at once; moving a `T` between threads needs `T: Send` (std's bounds).
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// static NEXT: spindle::sync::shared::Mutex<u64> = spindle::sync::shared::Mutex::new(1);
    /// assert_eq!(*NEXT.lock().unwrap(), 1);
    /// ```
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            state: AtomicU8::new(0),
            poison: AtomicBool::new(false),
            queue: WaitLock::new(WaitQueue::new()),
            value: UnsafeCell::new(value),
        }
    }

    /// The value, from a mutex nobody can be waiting on any more.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = spindle::sync::shared::Mutex::new(vec![1]);
    /// m.lock().unwrap().push(2);
    /// assert_eq!(m.into_inner().unwrap(), [1, 2]);
    /// ```
    ///
    /// # Errors
    ///
    /// The value inside a [`PoisonError`] if the mutex is poisoned.
    pub fn into_inner(self) -> LockResult<T> {
        let poisoned = self.is_poisoned();
        let value = self.value.into_inner();
        if poisoned {
            Err(PoisonError::new(value))
        } else {
            Ok(value)
        }
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex: a fiber parks until it is its turn, any other
    /// caller blocks its thread.
    ///
    /// # Examples
    ///
    /// See [`Mutex`].
    ///
    /// # Panics
    ///
    /// In a fiber, as a cancellation point when it waits (the lock is not
    /// taken), and if the runtime is shutting down and the fiber, already
    /// unwinding, would have to wait for a lock someone else holds.
    ///
    /// # Errors
    ///
    /// The guard inside a [`PoisonError`] if the mutex is poisoned (the
    /// lock is held all the same).
    #[inline]
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow();
        }
        self.guard()
    }

    /// Takes the lock under the queue's lock if it has just been freed, or
    /// queues for it and waits until it is handed over.
    #[cold]
    fn lock_slow(&self) {
        let q = self.queue.lock();
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & LOCKED == 0 {
                // Free, so nobody waits (module docs): take it.
                match self.state.compare_exchange_weak(
                    s,
                    s | LOCKED,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return,
                    Err(now) => s = now,
                }
            } else if s & QUEUED == 0 {
                match self.state.compare_exchange_weak(
                    s,
                    s | QUEUED,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break,
                    Err(now) => s = now,
                }
            } else {
                break;
            }
        }
        let (q, waited) = q.wait(waiters, LOCK, 0, None, |q| self.release_slow(q));
        drop(q);
        match waited {
            // Handed over by `release_slow`: `LOCKED` stayed set for us.
            Waited::Notified => {}
            Waited::TimedOut | Waited::Interrupted => panic!(
                "spindle::sync::shared::Mutex::lock: the runtime is shutting down and \
                 this fiber, already unwinding, cannot wait for a lock someone else holds"
            ),
        }
    }

    /// Releases the lock.
    #[inline]
    fn release(&self) {
        if self
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.release_slow(&mut self.queue.lock());
        }
    }

    /// Releases the lock with the queue locked: hands it to the front
    /// waiter, or frees it.
    #[cold]
    fn release_slow(&self, q: &mut WaitGuard<'_, WaitQueue>) {
        if !q.notify_one(waiters) {
            self.state.store(0, Ordering::Release);
        } else if q.is_empty() {
            self.state.store(LOCKED, Ordering::Release);
        }
    }

    /// Locks the mutex if it is free; never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::TryLockError;
    /// let m = spindle::sync::shared::Mutex::new(0);
    /// let g = m.try_lock().unwrap();
    /// assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
    /// drop(g);
    /// assert!(m.try_lock().is_ok());
    /// ```
    ///
    /// # Errors
    ///
    /// [`TryLockError::WouldBlock`] if someone holds or waits for the lock,
    /// [`TryLockError::Poisoned`] with the guard if it is poisoned.
    pub fn try_lock(&self) -> TryLockResult<MutexGuard<'_, T>> {
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(TryLockError::WouldBlock);
        }
        Ok(self.guard()?)
    }

    /// The guard of a lock just taken, poisoned or not.
    fn guard(&self) -> LockResult<MutexGuard<'_, T>> {
        let guard = MutexGuard {
            mutex: self,
            panicking: thread::panicking(),
            _not_send: PhantomData,
        };
        if self.is_poisoned() {
            Err(PoisonError::new(guard))
        } else {
            Ok(guard)
        }
    }

    /// Whether a holder panicked (see [`Mutex`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// let m = Arc::new(spindle::sync::shared::Mutex::new(0));
    /// let m2 = Arc::clone(&m);
    /// let _ = std::thread::spawn(move || {
    ///     let _g = m2.lock().unwrap();
    ///     panic!("while holding the lock");
    /// })
    /// .join();
    /// assert!(m.is_poisoned());
    /// m.clear_poison();
    /// assert!(!m.is_poisoned());
    /// ```
    pub fn is_poisoned(&self) -> bool {
        self.poison.load(Ordering::Relaxed)
    }

    /// Clears the poison (the holder of the lock has repaired the value).
    ///
    /// # Examples
    ///
    /// See [`is_poisoned`](Self::is_poisoned).
    pub fn clear_poison(&self) {
        self.poison.store(false, Ordering::Relaxed);
    }

    /// Whether someone holds (or has been handed) the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = spindle::sync::shared::Mutex::new(());
    /// let g = m.lock().unwrap();
    /// assert!(m.is_locked());
    /// drop(g);
    /// assert!(!m.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & LOCKED != 0
    }

    /// The value, through an exclusive borrow (no locking needed).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut m = spindle::sync::shared::Mutex::new(1);
    /// *m.get_mut().unwrap() += 1;
    /// assert_eq!(*m.lock().unwrap(), 2);
    /// ```
    ///
    /// # Errors
    ///
    /// The borrow inside a [`PoisonError`] if the mutex is poisoned.
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        let poisoned = self.is_poisoned();
        let value = self.value.get_mut();
        if poisoned {
            Err(PoisonError::new(value))
        } else {
            Ok(value)
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
        let waiting = self.queue.lock().len();
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Ok(g) => d.field("data", &&*g),
            Err(TryLockError::Poisoned(e)) => d.field("data", &&**e.get_ref()),
            Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.is_poisoned())
            .field("waiters", &waiting)
            .finish()
    }
}

/// The proof that a fiber or thread holds a [`Mutex`]; dereferences to its
/// value.
///
/// # Examples
///
/// ```
/// let m = spindle::sync::shared::Mutex::new(String::new());
/// m.lock().unwrap().push_str("hi");
/// assert_eq!(*m.lock().unwrap(), "hi");
/// ```
///
/// # Dropping
///
/// Unlocks the mutex, handing it to the first waiter if there is one, and
/// poisons it if the holder is panicking (not if a fiber is being
/// cancelled).
///
/// # `Send`
///
/// Not `Send`, as std's (a lock is released where it was taken); `Sync`
/// when `T: Sync`.
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// let m = spindle::sync::shared::Mutex::new(0);
/// assert_send(m.lock().unwrap());
/// ```
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    /// Whether the thread was panicking when the lock was taken (a guard
    /// taken during an unwind does not poison, as in std).
    panicking: bool,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a `&MutexGuard` gives out only `&T`, so sharing it between
// threads needs `T: Sync`, as std's.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves its holder owns the lock (invariants),
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
        if !self.panicking && thread::panicking() {
            let cancelled = Parker::try_current().is_some_and(|p| p.is_cancel_delivered());
            if !cancelled {
                self.mutex.poison.store(true, Ordering::Relaxed);
            }
        }
        self.mutex.release();
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
