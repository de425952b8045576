//! [`Semaphore`]: a count of permits shared between threads; acquiring
//! waits (a fiber parks, a thread blocks) until enough are free.
//!
//! ## Fairness and invariants
//!
//! As [`spindle::sync::Semaphore`](crate::sync::Semaphore): first come,
//! first served. A caller that asks while others wait queues behind them,
//! even if enough permits are free for it. Releasing permits grants them,
//! under the lock, to the waiters at the front as long as the first one's
//! request fits; a granted waiter owns its permits from that moment
//! (`permits` no longer counts them). A fiber granted permits and
//! cancelled before it runs releases them again, and a front waiter that
//! leaves without a grant lets the ones behind it be served: no permit is
//! ever lost and nobody is held up by a waiter that left.

use std::fmt;

use super::wait_queue::{WaitGuard, WaitLock, WaitQueue, Waited};

const ACQUIRE: &str = "spindle::sync::shared::Semaphore::acquire";

struct State {
    permits: usize,
    waiters: WaitQueue,
}

fn waiters(s: &mut State) -> &mut WaitQueue {
    &mut s.waiters
}

/// Adds `n` permits and grants them to the front waiters whose requests
/// fit.
fn grant(g: &mut WaitGuard<'_, State>, n: usize) {
    let mut free = g
        .permits
        .checked_add(n)
        .expect("spindle::sync::shared::Semaphore: too many permits");
    while let Some(want) = g.waiters.front_request() {
        if want > free {
            break;
        }
        free -= want;
        g.notify_one(waiters);
    }
    g.permits = free;
}

/// A counting semaphore shared between threads: fibers of any worker and
/// plain threads (the API of
/// [`spindle::sync::Semaphore`](crate::sync::Semaphore)).
///
/// First come, first served: a caller that asks while others wait queues
/// behind them, so a large request is not starved by small ones. A fiber
/// that must wait parks, a plain thread blocks.
///
/// # Examples
///
/// At most two of six fibers (on two workers) run at once:
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use spindle::sync::shared::Semaphore;
///
/// let rt = spindle::Runtime::builder().workers(2).build()?;
/// let most = rt.block_on(|| {
///     let limit = Arc::new(Semaphore::new(2));
///     let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
///     let fibers: Vec<_> = (0..6)
///         .map(|i| {
///             let (limit, now, most) = (limit.clone(), now.clone(), most.clone());
///             spindle::spawn_on(i % 2, move || {
///                 let _permit = limit.acquire();
///                 most.fetch_max(now.fetch_add(1, SeqCst) + 1, SeqCst);
///                 spindle::sleep(Duration::from_millis(2));
///                 now.fetch_sub(1, SeqCst);
///             })
///         })
///         .collect();
///     fibers.into_iter().for_each(|f| f.join().unwrap());
///     most.load(SeqCst)
/// });
/// assert_eq!(most, 2);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # `Send`
///
/// `Send` and `Sync`.
///
/// ```
/// fn assert_send_sync<T: Send + Sync>() {}
/// assert_send_sync::<spindle::sync::shared::Semaphore>();
/// ```
pub struct Semaphore {
    lock: WaitLock<State>,
}

impl Semaphore {
    /// A semaphore with `permits` free permits.
    ///
    /// # Examples
    ///
    /// ```
    /// static LIMIT: spindle::sync::shared::Semaphore = spindle::sync::shared::Semaphore::new(4);
    /// assert_eq!(LIMIT.available_permits(), 4);
    /// ```
    pub const fn new(permits: usize) -> Semaphore {
        Semaphore {
            lock: WaitLock::new(State {
                permits,
                waiters: WaitQueue::new(),
            }),
        }
    }

    /// Free permits right now.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = spindle::sync::shared::Semaphore::new(3);
    /// let p = s.acquire_many(2);
    /// assert_eq!(s.available_permits(), 1);
    /// drop(p);
    /// assert_eq!(s.available_permits(), 3);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.lock.lock().permits
    }

    /// Takes one permit, waiting until one is free.
    ///
    /// # Examples
    ///
    /// See [`Semaphore`].
    ///
    /// # Panics
    ///
    /// As [`acquire_many`](Self::acquire_many).
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        self.acquire_many(1)
    }

    /// Takes `n` permits at once, waiting until they are free and it is
    /// the caller's turn: a fiber parks, any other caller blocks its
    /// thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = spindle::sync::shared::Semaphore::new(5);
    /// let p = s.acquire_many(5);
    /// assert_eq!(p.num_permits(), 5);
    /// ```
    ///
    /// # Panics
    ///
    /// In a fiber, as a cancellation point when it waits (no permit is
    /// taken), and if the runtime is shutting down and the fiber, already
    /// unwinding, would have to wait.
    pub fn acquire_many(&self, n: usize) -> SemaphorePermit<'_> {
        let g = self.lock.lock();
        if g.waiters.is_empty() && g.permits >= n {
            let mut g = g;
            g.permits -= n;
            return SemaphorePermit { sem: self, n };
        }
        /// However the wait ends (an unwind included), serves the waiters
        /// that are now first: this one may have been holding them up.
        struct Regrant<'a>(&'a Semaphore);
        impl Drop for Regrant<'_> {
            fn drop(&mut self) {
                grant(&mut self.0.lock.lock(), 0);
            }
        }
        let regrant = Regrant(self);
        let (g, waited) = g.wait(waiters, ACQUIRE, n, None, |g| grant(g, n));
        drop(g);
        drop(regrant);
        match waited {
            // Granted by `grant`, which already took them from the count.
            Waited::Notified => SemaphorePermit { sem: self, n },
            Waited::TimedOut | Waited::Interrupted => panic!(
                "spindle::sync::shared::Semaphore::acquire: the runtime is shutting down \
                 and this fiber, already unwinding, cannot wait for permits"
            ),
        }
    }

    /// Takes one permit if one is free and nobody is queued; never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = spindle::sync::shared::Semaphore::new(1);
    /// let p = s.try_acquire().unwrap();
    /// assert!(s.try_acquire().is_none());
    /// drop(p);
    /// assert!(s.try_acquire().is_some());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits if they are free and nobody is queued; never
    /// waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = spindle::sync::shared::Semaphore::new(2);
    /// assert!(s.try_acquire_many(3).is_none());
    /// assert_eq!(s.try_acquire_many(2).unwrap().num_permits(), 2);
    /// ```
    pub fn try_acquire_many(&self, n: usize) -> Option<SemaphorePermit<'_>> {
        let mut g = self.lock.lock();
        if g.permits < n || !g.waiters.is_empty() {
            return None;
        }
        g.permits -= n;
        Some(SemaphorePermit { sem: self, n })
    }

    /// Adds `n` permits, and grants them to the waiters at the front of
    /// the queue whose requests fit.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = spindle::sync::shared::Semaphore::new(0);
    /// s.add_permits(2);
    /// assert_eq!(s.available_permits(), 2);
    /// ```
    ///
    /// # Panics
    ///
    /// If the count would overflow `usize`.
    pub fn add_permits(&self, n: usize) {
        grant(&mut self.lock.lock(), n);
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.lock.lock();
        f.debug_struct("Semaphore")
            .field("permits", &g.permits)
            .field("waiters", &g.waiters.len())
            .finish()
    }
}

/// Permits taken from a [`Semaphore`].
///
/// # Examples
///
/// ```
/// let s = spindle::sync::shared::Semaphore::new(1);
/// let permit = s.acquire();
/// assert_eq!(s.available_permits(), 0);
/// drop(permit);
/// assert_eq!(s.available_permits(), 1);
/// ```
///
/// # Dropping
///
/// Gives the permits back (see [`forget`](Self::forget) to keep them
/// taken).
///
/// # `Send`
///
/// `Send` and `Sync`: permits may be released on another thread.
///
/// ```
/// fn assert_send_sync<T: Send + Sync>() {}
/// assert_send_sync::<spindle::sync::shared::SemaphorePermit<'static>>();
/// ```
#[must_use = "if unused the permits are released at once"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
    n: usize,
}

impl SemaphorePermit<'_> {
    /// How many permits this holds.
    ///
    /// # Examples
    ///
    /// See [`Semaphore::acquire_many`].
    pub fn num_permits(&self) -> usize {
        self.n
    }

    /// Keeps the permits taken for good: the semaphore has that many
    /// fewer.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = spindle::sync::shared::Semaphore::new(2);
    /// s.acquire().forget();
    /// assert_eq!(s.available_permits(), 1);
    /// ```
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
