//! The one door up: everything the tiers above the scheduler (the public
//! task API of `src/runtime/`, `spindle::sync`, fiber-aware I/O) may do to
//! a scheduler goes through the types of this file.
//!
//! - [`Parker`]: the running fiber, as the code that is about to park it
//!   sees it. It checks for a cancellation, parks (saying what it waits
//!   on), yields, sets timers, hands out wakers, lends the reactor to
//!   fd waits, and reaches the fiber's fiber-local map. Only code running on a fiber can get one
//!   ([`Parker::current`]).
//! - [`LocalWaker`]: names one fiber of one runtime (the runtime's id and
//!   the task's key). `Copy`, and only ever used on the runtime's own thread:
//!   the primitives that store wakers are `!Send`. It wakes, cancels and
//!   unparks.
//! - [`Timer`]: a deadline of the running fiber in the sleep queue.
//! - [`LocalRuntime`]: the runtime this thread is running, for what needs no
//!   running fiber: spawning into it, listing its tasks, its reactor.
//! - [`start`]: a task's root frame announcing its fiber.
//!
//! ## The protocol every wait follows
//!
//! 1. [`Parker::checkpoint`]: a cancelled fiber unwinds here, before it
//!    registers anywhere.
//! 2. Register the fiber's [`LocalWaker`] wherever its wake-up will come
//!    from (a queue of the primitive), with a guard that removes it again
//!    on every way out, unwinding included.
//! 3. Loop: [`Parker::park`], then re-check the condition. Wake-ups may be
//!    spurious (a cancel, a stale waker, a notification meant to be passed
//!    on), so the condition, not the wake-up, decides.
//!
//! ## Why waking a stale waker is harmless
//!
//! A waker whose fiber has finished names a task key whose generation is
//! gone, so the scheduler finds nothing; a waker of another runtime (one
//! that ran on this thread earlier) fails the id check. Either way the wake
//! does nothing. Waking a fiber that is ready or running does nothing
//! either. So a primitive never has to be exact about *who* it wakes, only
//! about waking *someone* when its state changes.

use std::panic::Location;
use std::sync::Arc;
use std::time::Instant;

use super::driver::Reactor;

pub(crate) use super::driver::RemoteWaker;
use super::scheduler::context::{current_raw, try_current_raw, with_scheduler, with_scheduler_opt};
use super::scheduler::Scheduler;
use super::task::{
    FiberTrace, FiberYielder, Interrupted, Key, LocalMap, Start, TaskId, TaskInfo, TaskState,
    WaitingOn,
};

/// Names a parked (or soon to be parked) fiber of this thread's runtime;
/// see the [module docs](self).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct LocalWaker {
    runtime: u64,
    key: Key,
}

impl LocalWaker {
    /// Runs `f` with the fiber's scheduler, if this thread is running it.
    #[inline]
    fn with<R>(self, f: impl FnOnce(&Scheduler) -> R) -> Option<R> {
        with_scheduler_opt(|s| (s.id() == self.runtime).then(|| f(s))).flatten()
    }

    /// Whether the fiber has been cancelled and has not unwound yet (false
    /// outside its runtime, or once it has finished).
    pub(crate) fn is_cancel_pending(self) -> bool {
        self.with(|s| s.is_cancel_pending(self.key))
            .unwrap_or(false)
    }

    /// Makes the fiber ready if it is parked and its runtime is the one
    /// this thread is running; does nothing otherwise.
    pub(crate) fn wake(self) {
        self.with(|s| s.wake(self.key));
    }

    /// Asks the fiber's runtime to run it right after the calling fiber
    /// suspends, if it has not started yet and its runtime is the one this
    /// thread is running (a hand-off: the runtime docs, "Scheduling
    /// order"). The caller is about to wait for it.
    pub(crate) fn hand_off_if_unstarted(self) {
        self.with(|s| s.hand_off_unstarted(self.key));
    }

    /// Cancels the fiber (see `JoinHandle::cancel`), if its runtime is the
    /// one this thread is running.
    pub(crate) fn cancel(self) {
        self.with(|s| s.cancel(self.key));
    }

    /// Gives the fiber its unpark token (see `Task::unpark`), if its runtime
    /// is the one this thread is running.
    pub(crate) fn unpark(self) {
        self.with(|s| s.unpark(self.key));
    }

    /// The fiber's key in its scheduler's task table.
    pub(crate) fn key(self) -> Key {
        self.key
    }
}

/// The running fiber, for code that parks it; see the [module docs](self).
///
/// Made by [`Parker::current`] on the fiber itself and used only in that
/// fiber's frames for the duration of one wait, never stored: it holds the
/// scheduler as a pointer, which is valid for as long as the fiber runs (see
/// the scheduler's `context.rs`). Getting one needs no closure, so a wait
/// built on it inlines into the caller's frame (a frame live across a
/// switch costs a mispredicted return when it returns afterwards). Not
/// `Send`.
pub(crate) struct Parker {
    sched: *const Scheduler,
    key: Key,
}

impl Parker {
    /// The running fiber.
    ///
    /// # Panics
    ///
    /// Outside a fiber of a runtime, with a message naming `what`.
    #[track_caller]
    #[inline(always)]
    pub(crate) fn current(what: &str) -> Parker {
        let (sched, key) = current_raw(what);
        Parker { sched, key }
    }

    /// The running fiber, or `None` when no fiber is running (outside a
    /// runtime, or on the scheduler's own stack).
    #[inline(always)]
    pub(crate) fn try_current() -> Option<Parker> {
        try_current_raw().map(|(sched, key)| Parker { sched, key })
    }

    #[inline(always)]
    fn sched(&self) -> &Scheduler {
        // SAFETY: a Parker lives only in its fiber's frames while that fiber
        // runs or is parked in the wait that made it, and the scheduler
        // outlives every fiber (see the type's docs).
        unsafe { &*self.sched }
    }

    /// A waker for this fiber.
    #[inline]
    pub(crate) fn waker(&self) -> LocalWaker {
        LocalWaker {
            runtime: self.sched().id(),
            key: self.key,
        }
    }

    /// A waker for this fiber that another thread may use (it writes the
    /// runtime's eventfd).
    pub(crate) fn remote_waker(&self) -> RemoteWaker {
        self.sched().remote_waker(self.key)
    }

    /// Whether this fiber has been unwound by a cancel (so an unwind in
    /// progress is a cancellation, not a panic; a shared mutex's guard asks,
    /// to poison on panics only).
    pub(crate) fn is_cancel_delivered(&self) -> bool {
        self.sched().is_cancel_delivered(self.key)
    }

    /// The cancellation check of a suspension point.
    ///
    /// # Panics
    ///
    /// Unwinds the fiber (with the private cancellation payload) if it has
    /// been cancelled.
    ///
    /// # Errors
    ///
    /// [`Interrupted`] when the runtime is shutting down and the fiber is
    /// already unwinding: the caller must give up without parking.
    #[inline(always)]
    pub(crate) fn checkpoint(&self) -> Result<(), Interrupted> {
        self.sched().checkpoint(self.key)
    }

    /// Parks the fiber until something wakes it, reporting `what` it waits
    /// on (a `spindle::sync` method) to [`tasks`](crate::tasks) and the
    /// deadlock report.
    ///
    /// # Panics
    ///
    /// As [`checkpoint`](Self::checkpoint), which runs again on return.
    ///
    /// # Errors
    ///
    /// As [`checkpoint`](Self::checkpoint).
    #[inline(always)]
    pub(crate) fn park(&self, what: &'static str) -> Result<(), Interrupted> {
        self.park_in(TaskState::WaitingSync, WaitingOn::Sync(what))
    }

    /// Parks the fiber in `state`, waiting on `on`, until something wakes
    /// it.
    ///
    /// # Panics
    ///
    /// As [`checkpoint`](Self::checkpoint), which runs again on return.
    ///
    /// # Errors
    ///
    /// As [`checkpoint`](Self::checkpoint).
    #[inline(always)]
    pub(crate) fn park_in(&self, state: TaskState, on: WaitingOn) -> Result<(), Interrupted> {
        self.sched().park(self.key, state, on)
    }

    /// Puts the fiber at the back of the run queue and lets the others run.
    ///
    /// # Panics
    ///
    /// As [`checkpoint`](Self::checkpoint).
    ///
    /// # Errors
    ///
    /// As [`checkpoint`](Self::checkpoint).
    #[inline(always)]
    pub(crate) fn yield_now(&self) -> Result<(), Interrupted> {
        self.sched().yield_now(self.key)
    }

    /// Parks until the fiber's unpark token is set (see `spindle::park`).
    pub(crate) fn park_until_unparked(&self) {
        self.sched().park_until_unparked(self.key);
    }

    /// A timer that wakes this fiber at `deadline`; dropping it cancels it.
    pub(crate) fn timer(&self, deadline: Instant) -> Timer<'_> {
        self.sched().set_timer(self.key, deadline);
        Timer {
            sched: self.sched(),
            key: self.key,
        }
    }

    /// The runtime's reactor, to register this fiber's fd waits with.
    #[inline(always)]
    pub(crate) fn reactor(&self) -> &Reactor {
        self.sched().reactor()
    }

    /// The runtime's resume count (see the cooperative budget, `coop.rs`):
    /// it changes exactly when some fiber has been suspended since this one
    /// was last resumed.
    #[inline(always)]
    pub(crate) fn resumes(&self) -> u64 {
        self.sched().resumes()
    }

    /// The id of the fiber's runtime.
    #[inline(always)]
    pub(crate) fn runtime_id(&self) -> u64 {
        self.sched().id()
    }

    /// Forgets the fd readiness last reported to this fiber.
    #[inline]
    pub(crate) fn clear_io_events(&self) {
        self.sched().clear_io_events(self.key);
    }

    /// The fd readiness the reactor reported to this fiber since
    /// [`clear_io_events`](Self::clear_io_events) (0 for none).
    #[inline]
    pub(crate) fn io_events(&self) -> u32 {
        self.sched().io_events(self.key)
    }

    /// The fiber's id and name (`None` if asked while the task table is
    /// being changed, e.g. from a panic hook).
    pub(crate) fn describe(&self) -> Option<(TaskId, Option<Arc<str>>)> {
        self.sched().describe(self.key)
    }

    /// Called by the task's root as its last act: counts the task as
    /// finished, wakes `joiner` (a fiber of the same runtime), and returns
    /// the finish stamp (stamps order finishes).
    pub(crate) fn finish(&self, joiner: Option<LocalWaker>) -> u64 {
        LocalRuntime::of(self.sched()).finish(joiner)
    }

    /// Every live fiber of its runtime with its backtrace, in id order; see
    /// the [dump docs](super::dump). The calling fiber is suspended while
    /// the others are traced, and resumed right after.
    pub(crate) fn dump(&self) -> Vec<FiberTrace> {
        self.sched().dump(self.key)
    }

    /// The fiber's key in the task table.
    pub(crate) fn key(&self) -> Key {
        self.key
    }

    /// The fiber's fiber-local map (allocated on first use).
    #[inline]
    pub(crate) fn locals(&self) -> &LocalMap {
        // SAFETY: the map is boxed in the fiber's task record, which lives
        // until the fiber has finished; the box leaves the record only
        // through `take_locals`, which the fiber's root calls once no frame
        // of the fiber's closure (where a Parker and the borrows made from
        // it live) is left. The reference is bounded by this Parker, which
        // lives in the fiber's frames only.
        unsafe { &*self.sched().locals(self.key) }
    }

    /// Takes the fiber's fiber-local map out, for its root to drop the
    /// values; `None` if the fiber has used none since the last take.
    pub(crate) fn take_locals(&self) -> Option<Box<LocalMap>> {
        self.sched().take_locals(self.key)
    }
}

/// Announces a task's fiber from its root frame: returns its [`Parker`],
/// and whether the task was cancelled before it ever ran (its closure must
/// then not be called).
///
/// # Panics
///
/// Outside a runtime (a root runs only when a scheduler resumes it).
pub(crate) fn start(yielder: &FiberYielder) -> (Parker, bool) {
    with_scheduler("task root", |s| {
        let (key, cancelled) = s.start(yielder);
        (Parker { sched: s, key }, cancelled)
    })
}

/// A live timer of the running fiber; dropping it abandons the timer if it
/// has not fired (on every path out of a wait, unwinding included).
pub(crate) struct Timer<'a> {
    sched: &'a Scheduler,
    key: Key,
}

impl Timer<'_> {
    /// Whether the timer has fired (its deadline has passed).
    pub(crate) fn fired(&self) -> bool {
        self.sched.timer_fired(self.key)
    }
}

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        self.sched.drop_timer(self.key);
    }
}

/// The runtime this thread is running, for what needs no running fiber;
/// see the [module docs](self).
#[derive(Clone, Copy)]
pub(crate) struct LocalRuntime<'a> {
    sched: &'a Scheduler,
}

impl<'a> LocalRuntime<'a> {
    /// The runtime whose scheduler is `sched` (for the runtime's owner,
    /// which holds it).
    pub(crate) fn of(sched: &'a Scheduler) -> LocalRuntime<'a> {
        LocalRuntime { sched }
    }

    /// Its process-unique id.
    pub(crate) fn id(self) -> u64 {
        self.sched.id()
    }

    /// The default stack size of its fibers.
    pub(crate) fn stack_size(self) -> usize {
        self.sched.stack_size()
    }

    /// The default guard size of its fibers' stacks, in pages.
    pub(crate) fn guard_pages(self) -> usize {
        self.sched.guard_pages()
    }

    /// Its reactor.
    pub(crate) fn reactor(self) -> &'a Reactor {
        self.sched.reactor()
    }

    /// Adds a new task (its fiber not started) at the back of the run
    /// queue; returns its waker.
    #[inline]
    pub(crate) fn insert(
        self,
        start: Start,
        id: TaskId,
        name: Option<Arc<str>>,
        spawned_at: &'static Location<'static>,
    ) -> LocalWaker {
        LocalWaker {
            runtime: self.sched.id(),
            key: self.sched.insert(start, id, name, spawned_at),
        }
    }

    /// `fd` is about to be closed: its waiters on this runtime fail with an
    /// error naming the closed fd, and the reactor forgets it and the
    /// source `source` of it (for the `hook` feature's `close`). False when
    /// the scheduler is busy and nothing was done.
    #[cfg_attr(not(feature = "hook"), allow(dead_code))]
    pub(crate) fn fail_fd_waiters(self, fd: std::os::fd::RawFd, source: Option<u64>) -> bool {
        self.sched.fail_fd_waiters(fd, source)
    }

    /// The account of every live task, in id order.
    pub(crate) fn task_stats(self) -> Vec<crate::runtime::observe::TaskStats> {
        self.sched.task_stats()
    }

    /// Counts a task as finished, wakes `joiner` (a fiber of this runtime)
    /// and returns the finish stamp: [`Parker::finish`], for a task that
    /// ends without having started (abandoned on the scheduler's stack).
    pub(crate) fn finish(self, joiner: Option<LocalWaker>) -> u64 {
        let joiner = joiner
            .filter(|w| w.runtime == self.sched.id())
            .map(|w| w.key);
        self.sched.finish(joiner)
    }

    /// Every live task in id order, with its waker.
    pub(crate) fn tasks(self) -> Vec<(LocalWaker, TaskInfo)> {
        let runtime = self.sched.id();
        self.sched
            .snapshot()
            .into_iter()
            .map(|(key, t)| (LocalWaker { runtime, key }, t))
            .collect()
    }
}

/// Wakes the fiber of `w` from whatever thread calls: directly if this
/// thread runs that fiber's scheduler (no message, no eventfd), through its
/// inbox otherwise.
pub(crate) fn wake(w: &RemoteWaker) {
    let here = with_scheduler_opt(|s| Arc::ptr_eq(s.remote(), w.remote()) && s.try_wake(w.key()));
    if here != Some(true) {
        w.wake();
    }
}

/// Runs `f` with the runtime this thread is running.
///
/// # Panics
///
/// Outside a runtime, with a message naming `what`.
#[track_caller]
#[inline]
pub(crate) fn with_runtime<R>(what: &str, f: impl FnOnce(LocalRuntime<'_>) -> R) -> R {
    with_scheduler(what, |sched| f(LocalRuntime { sched }))
}

/// Runs `f` with the runtime this thread is running, if any; never panics.
#[inline(always)]
pub(crate) fn try_with_runtime<R>(f: impl FnOnce(LocalRuntime<'_>) -> R) -> Option<R> {
    with_scheduler_opt(|sched| f(LocalRuntime { sched }))
}
