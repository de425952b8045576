//! The FIFO of waiters that every primitive of [`sync::shared`](super) is
//! built on: waiters are fibers of any worker or plain threads.
//!
//! A primitive keeps its state, with one [`WaitQueue`] per kind of wait, in
//! a [`WaitLock`]: a `std::sync::Mutex` plus the list of wake-ups owed. A
//! caller that finds its condition false *under the lock* calls
//! [`WaitGuard::wait`] with the same guard: the waiter is linked at the
//! back of the queue before the lock is released, so no change of state
//! can slip between the check and the registration. Whoever changes the
//! state *notifies* waiters from the front ([`WaitGuard::notify_one`]):
//! the waiter is unlinked and marked notified under the lock, and woken
//! once the lock is released (a fiber through [`wait::wake`], i.e. its
//! worker's inbox, or directly when it belongs to the calling thread's
//! scheduler; a thread with `Thread::unpark`). So a lock or permits can
//! be *handed* to the front waiter: the primitive gives it what it waits
//! for while holding the lock, and nobody can take it in between.
//!
//! ## Invariants
//!
//! - A waiter is in its queue exactly from the `wait` that linked it until
//!   a notification unlinks it or the wait unlinks itself (a timeout, an
//!   interrupted wait, a cancellation unwind). Both happen under the lock.
//! - `notified` is set only under the lock, by the notification that
//!   unlinks the waiter, and never cleared. So a waiter that reads it under
//!   the lock knows for sure whether it was given what it waited for.
//! - The waiter is shared (`Arc`) between its wait and the queue, and the
//!   list of owed wake-ups holds one more reference: a wake-up may reach a
//!   fiber or thread that has already left its wait, which is harmless (it
//!   re-checks its condition, see the runtime's `wait.rs`).
//!
//! ## Passing a notification on
//!
//! A fiber can be notified and then cancelled before it runs: it unwinds
//! out of its wait instead of taking what it was given. The wait then runs
//! the primitive's `on_abandon` under the lock, which gives the grant back
//! or hands it to the next waiter: no lock, permit or wake-up is lost.
//!
//! ## Waiting threads
//!
//! A plain thread (or a worker thread outside any fiber) blocks in
//! `std::thread::park`, a futex on Linux, and re-checks `notified` on every
//! return from it (spurious returns are allowed). It cannot be cancelled.

use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, Thread};
use std::time::Instant;

use crate::runtime::wait::{self, Parker, RemoteWaker};

/// How a waiter is woken.
enum Wakeup {
    Fiber(RemoteWaker),
    Thread(Thread),
}

/// One waiting fiber or thread; see the [module docs](self).
struct Waiter {
    wakeup: Wakeup,
    /// What it asks for (permits, for a semaphore; 0 elsewhere).
    request: usize,
    /// Set under the lock when a notification unlinks it.
    notified: AtomicBool,
}

impl Waiter {
    fn wake(&self) {
        match &self.wakeup {
            Wakeup::Fiber(w) => wait::wake(w),
            Wakeup::Thread(t) => t.unpark(),
        }
    }
}

/// How [`WaitGuard::wait`] ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Waited {
    /// Notified: the primitive gave this waiter what it waited for.
    Notified,
    /// The deadline passed first.
    TimedOut,
    /// The runtime is shutting down and the fiber is already unwinding, so
    /// it could not park.
    Interrupted,
}

/// A FIFO of waiters, kept in a primitive's state inside a [`WaitLock`].
#[derive(Default)]
pub(crate) struct WaitQueue {
    list: VecDeque<Arc<Waiter>>,
}

impl WaitQueue {
    /// An empty queue; allocates nothing.
    pub(crate) const fn new() -> WaitQueue {
        WaitQueue {
            list: VecDeque::new(),
        }
    }

    /// Number of waiters.
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether nobody waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// What the first waiter asks for, if there is one.
    pub(crate) fn front_request(&self) -> Option<usize> {
        self.list.front().map(|w| w.request)
    }

    fn remove(&mut self, waiter: &Arc<Waiter>) {
        if let Some(pos) = self.list.iter().position(|w| Arc::ptr_eq(w, waiter)) {
            self.list.remove(pos);
        }
    }
}

impl std::fmt::Debug for WaitQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitQueue")
            .field("waiters", &self.len())
            .finish()
    }
}

struct Locked<S> {
    state: S,
    /// Notified waiters, woken when the lock is released.
    wakeups: Vec<Arc<Waiter>>,
}

/// A primitive's state and its wait queues, under one lock; see the
/// [module docs](self).
pub(crate) struct WaitLock<S> {
    inner: Mutex<Locked<S>>,
}

impl<S> WaitLock<S> {
    /// A lock around `state`; allocates nothing.
    pub(crate) const fn new(state: S) -> WaitLock<S> {
        WaitLock {
            inner: Mutex::new(Locked {
                state,
                wakeups: Vec::new(),
            }),
        }
    }

    /// Locks the state.
    #[inline]
    pub(crate) fn lock(&self) -> WaitGuard<'_, S> {
        WaitGuard {
            lock: self,
            // No user code runs under this lock (primitives drop values
            // outside it), so a poisoned one still holds consistent state.
            guard: Some(self.inner.lock().unwrap_or_else(PoisonError::into_inner)),
        }
    }
}

/// The locked state of a [`WaitLock`]; dereferences to it.
///
/// # Dropping
///
/// Releases the lock, then wakes the waiters notified meanwhile.
pub(crate) struct WaitGuard<'a, S> {
    lock: &'a WaitLock<S>,
    /// `Some` until the drop.
    guard: Option<MutexGuard<'a, Locked<S>>>,
}

impl<S> Deref for WaitGuard<'_, S> {
    type Target = S;
    #[inline]
    fn deref(&self) -> &S {
        &self
            .guard
            .as_ref()
            .expect("a live WaitGuard holds its lock")
            .state
    }
}

impl<S> DerefMut for WaitGuard<'_, S> {
    #[inline]
    fn deref_mut(&mut self) -> &mut S {
        &mut self
            .guard
            .as_mut()
            .expect("a live WaitGuard holds its lock")
            .state
    }
}

impl<S> Drop for WaitGuard<'_, S> {
    #[inline]
    fn drop(&mut self) {
        if let Some(mut g) = self.guard.take() {
            let wakeups = std::mem::take(&mut g.wakeups);
            drop(g);
            for w in wakeups {
                w.wake();
            }
        }
    }
}

impl<'a, S> WaitGuard<'a, S> {
    fn locked(&mut self) -> &mut Locked<S> {
        self.guard
            .as_mut()
            .expect("a live WaitGuard holds its lock")
    }

    /// Notifies the first waiter of `queue`: unlinks it and marks it
    /// notified now, wakes it when the lock is released. Returns whether
    /// there was one.
    #[inline]
    pub(crate) fn notify_one(&mut self, queue: impl FnOnce(&mut S) -> &mut WaitQueue) -> bool {
        let locked = self.locked();
        let Some(w) = queue(&mut locked.state).list.pop_front() else {
            return false;
        };
        w.notified.store(true, Ordering::Release);
        locked.wakeups.push(w);
        true
    }

    /// Notifies every waiter of `queue`, in order. Returns how many there
    /// were.
    pub(crate) fn notify_all(&mut self, queue: impl FnOnce(&mut S) -> &mut WaitQueue) -> usize {
        let locked = self.locked();
        let all = std::mem::take(&mut queue(&mut locked.state).list);
        let n = all.len();
        for w in all {
            w.notified.store(true, Ordering::Release);
            locked.wakeups.push(w);
        }
        n
    }

    /// Waits at the back of `queue` until notified, `deadline` passes, or
    /// (for a fiber) the runtime shuts down; returns the lock, held again,
    /// with how the wait ended. The caller has found its condition false
    /// under this guard.
    ///
    /// A fiber parks (and this is a cancellation point), anything else
    /// blocks its thread. `request` is what the waiter asks for
    /// ([`WaitQueue::front_request`] shows it to the primitive).
    /// `on_abandon` runs under the lock if a fiber was notified but unwinds
    /// (cancelled) before taking its grant; see the [module docs](self).
    /// `what` names the wait for [`tasks`](crate::tasks) and the deadlock
    /// report. A notification wins over a deadline that passed with it.
    ///
    /// # Panics
    ///
    /// As a cancellation point: unwinds the fiber if it is cancelled, before
    /// or during the wait (the waiter is unlinked first).
    #[inline]
    pub(crate) fn wait<Q, A>(
        mut self,
        queue: Q,
        what: &'static str,
        request: usize,
        deadline: Option<Instant>,
        on_abandon: A,
    ) -> (WaitGuard<'a, S>, Waited)
    where
        Q: Fn(&mut S) -> &mut WaitQueue + Copy,
        A: FnOnce(&mut WaitGuard<'a, S>),
    {
        let lock = self.lock;
        let p = Parker::try_current();
        if let Some(p) = &p {
            if p.checkpoint().is_err() {
                return (self, Waited::Interrupted);
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return (self, Waited::TimedOut);
        }
        let wakeup = match &p {
            Some(p) => Wakeup::Fiber(p.remote_waker()),
            None => Wakeup::Thread(thread::current()),
        };
        let waiter = Arc::new(Waiter {
            wakeup,
            request,
            notified: AtomicBool::new(false),
        });
        queue(&mut self).list.push_back(Arc::clone(&waiter));
        drop(self);
        match p {
            Some(p) => wait_fiber(&p, lock, queue, what, deadline, &waiter, on_abandon),
            None => wait_thread(lock, queue, deadline, &waiter),
        }
    }
}

/// Unlinks a fiber's waiter, or runs `on_abandon` if it was notified, when
/// the fiber unwinds out of [`WaitGuard::wait`].
struct Registration<'a, 'w, S, Q, A>
where
    Q: Fn(&mut S) -> &mut WaitQueue,
    A: FnOnce(&mut WaitGuard<'a, S>),
{
    lock: &'a WaitLock<S>,
    queue: Q,
    waiter: &'w Arc<Waiter>,
    /// `None` once the wait has ended normally.
    on_abandon: Option<A>,
}

impl<'a, S, Q, A> Drop for Registration<'a, '_, S, Q, A>
where
    Q: Fn(&mut S) -> &mut WaitQueue,
    A: FnOnce(&mut WaitGuard<'a, S>),
{
    fn drop(&mut self) {
        let Some(on_abandon) = self.on_abandon.take() else {
            return;
        };
        let mut g = self.lock.lock();
        if self.waiter.notified.load(Ordering::Relaxed) {
            on_abandon(&mut g);
        } else {
            (self.queue)(&mut g).remove(self.waiter);
        }
    }
}

/// The fiber's half of [`WaitGuard::wait`], once its waiter is linked.
#[inline(always)]
fn wait_fiber<'a, S, Q, A>(
    p: &Parker,
    lock: &'a WaitLock<S>,
    queue: Q,
    what: &'static str,
    deadline: Option<Instant>,
    waiter: &Arc<Waiter>,
    on_abandon: A,
) -> (WaitGuard<'a, S>, Waited)
where
    Q: Fn(&mut S) -> &mut WaitQueue + Copy,
    A: FnOnce(&mut WaitGuard<'a, S>),
{
    let mut registration = Registration {
        lock,
        queue,
        waiter,
        on_abandon: Some(on_abandon),
    };
    let timer = deadline.map(|d| p.timer(d));
    loop {
        let parked = p.park(what);
        let timed_out = timer.as_ref().is_some_and(|t| t.fired());
        if waiter.notified.load(Ordering::Acquire) || parked.is_err() || timed_out {
            registration.on_abandon = None;
            let mut g = lock.lock();
            if waiter.notified.load(Ordering::Relaxed) {
                return (g, Waited::Notified);
            }
            queue(&mut g).remove(waiter);
            let waited = if parked.is_err() {
                Waited::Interrupted
            } else {
                Waited::TimedOut
            };
            return (g, waited);
        }
    }
}

/// A thread's half of [`WaitGuard::wait`], once its waiter is linked.
fn wait_thread<'a, S, Q>(
    lock: &'a WaitLock<S>,
    queue: Q,
    deadline: Option<Instant>,
    waiter: &Arc<Waiter>,
) -> (WaitGuard<'a, S>, Waited)
where
    Q: Fn(&mut S) -> &mut WaitQueue,
{
    loop {
        let timed_out = match deadline {
            None => {
                thread::park();
                false
            }
            Some(d) => {
                let now = Instant::now();
                if now < d {
                    thread::park_timeout(d - now);
                }
                Instant::now() >= d
            }
        };
        if waiter.notified.load(Ordering::Acquire) || timed_out {
            let mut g = lock.lock();
            if waiter.notified.load(Ordering::Relaxed) {
                return (g, Waited::Notified);
            }
            queue(&mut g).remove(waiter);
            return (g, Waited::TimedOut);
        }
    }
}
