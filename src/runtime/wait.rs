//! Parking and waking for the layers above the scheduler: what
//! `spindle::sync` and fiber-aware I/O build their waits from.
//!
//! Two small types carry it:
//!
//! - [`Parker`]: the running fiber, as the code that is about to park it
//!   sees it. It hands out a [`LocalWaker`] for the fiber, checks for a
//!   cancellation, parks, and sets timers. Only code running on a fiber can
//!   get one ([`Parker::current`]).
//! - [`LocalWaker`]: names one fiber of one runtime (the runtime's id and
//!   the task's key). `Copy`, and only ever used on the runtime's own thread:
//!   the primitives that store wakers are `!Send`.
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

use std::time::Instant;

use super::scheduler::{
    current_raw, try_current, with_scheduler_opt, Cancel, Interrupted, Scheduler,
};
use super::slab::Key;
use super::task::TaskState;
use super::timer::Timer;

/// Names a parked (or soon to be parked) fiber of this thread's runtime;
/// see the [module docs](self).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct LocalWaker {
    runtime: u64,
    key: Key,
}

impl LocalWaker {
    /// Whether the fiber has been cancelled and has not unwound yet (false
    /// outside its runtime, or once it has finished).
    pub(crate) fn is_cancel_pending(self) -> bool {
        with_scheduler_opt(|s| {
            s.id == self.runtime
                && s.core
                    .borrow_mut()
                    .hot(self.key)
                    .is_some_and(|h| h.cancel == Cancel::Pending)
        })
        .unwrap_or(false)
    }

    /// Makes the fiber ready if it is parked and its runtime is the one
    /// this thread is running; does nothing otherwise.
    pub(crate) fn wake(self) {
        with_scheduler_opt(|s| {
            if s.id == self.runtime {
                s.core.borrow_mut().wake(self.key);
            }
        });
    }
}

/// The running fiber, for code that parks it; see the [module docs](self).
///
/// Made by [`Parker::current`] on the fiber itself and used only in that
/// fiber's frames for the duration of one wait, never stored: it holds the
/// scheduler as a pointer, which is valid for as long as the fiber runs (see
/// `scheduler::current_raw`). Getting one needs no closure, so a wait built
/// on it inlines into the caller's frame (see `scheduler::with_current` for
/// why that matters). Not `Send`.
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
        try_current(|sched, key| Parker { sched, key })
    }

    #[inline(always)]
    fn sched(&self) -> &Scheduler {
        // SAFETY: a Parker lives only in its fiber's frames while that fiber
        // runs or is parked in the wait that made it, and the scheduler
        // outlives every fiber (see the type's docs).
        unsafe { &*self.sched }
    }
}

impl Parker {
    /// A waker for this fiber.
    #[inline]
    pub(crate) fn waker(&self) -> LocalWaker {
        LocalWaker {
            runtime: self.sched().id,
            key: self.key,
        }
    }

    /// The cancellation check of a suspension point; see
    /// [`Scheduler::checkpoint`].
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
    /// on to [`tasks`](crate::tasks) and the deadlock report.
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
        let s = self.sched();
        if let Some(t) = s.core.borrow_mut().tasks.get_mut(self.key) {
            t.waiting_for = what;
        }
        s.park(self.key, TaskState::WaitingSync, 0)
    }

    /// A timer that wakes this fiber at `deadline`; dropping it cancels it.
    pub(crate) fn timer(&self, deadline: Instant) -> Timer<'_> {
        Timer::set(self.sched(), self.key, deadline)
    }

    /// The scheduler of the fiber (for the reactor's waits).
    pub(crate) fn scheduler(&self) -> &Scheduler {
        self.sched()
    }

    /// The fiber's key in the task table.
    pub(crate) fn key(&self) -> Key {
        self.key
    }
}
