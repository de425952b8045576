//! The fiber's side of a switch: how a task starts, checks for a cancel,
//! parks, and yields. Everything here runs on a fiber's own stack.

use std::panic;
use std::thread;

use crate::greenlet::ChainState;
use crate::runtime::task::{
    Cancel, CancelUnwind, FiberYielder, Interrupted, Key, TaskState, WaitingOn,
};

use super::context::{current, set_current, Current};
use super::Scheduler;

/// Under `panic = "abort"` a cancellation cannot unwind the fiber, and
/// `resume_unwind` would abort without a word: say why first.
#[cfg(panic = "abort")]
#[cold]
fn abort_on_cancel() -> ! {
    eprintln!(
        "spindle: a fiber was cancelled (JoinHandle::cancel, or its runtime ended while it \
         was parked), and cancelling unwinds the fiber, which panic = \"abort\" cannot do; \
         aborting"
    );
    std::process::abort()
}

impl Scheduler {
    /// Called by a task's root when its fiber starts: records the yielder
    /// and returns the task's key, and whether the task was cancelled before
    /// it ever ran (its closure must then not be called).
    pub(crate) fn start(&self, yielder: &FiberYielder) -> (Key, bool) {
        let key = current()
            .key
            .expect("a task root runs only when the scheduler resumes it");
        set_current(Current {
            yielder,
            key: Some(key),
        });
        let mut core = self.core.borrow_mut();
        let shutting_down = core.shutting_down;
        let h = core.hot_live(key);
        let cancelled = h.cancel == Cancel::Pending || shutting_down;
        if cancelled {
            h.cancel = Cancel::Delivered;
        }
        (key, cancelled)
    }

    /// A suspension point's cancellation check. Raises the cancellation
    /// unwind if the task has a pending cancel (or the runtime is shutting
    /// down) and is not already unwinding.
    ///
    /// # Errors
    ///
    /// [`Interrupted`] when the runtime is shutting down and the fiber is
    /// already unwinding: the caller must give up its wait without parking.
    pub(crate) fn checkpoint(&self, key: Key) -> Result<(), Interrupted> {
        let mut core = self.core.borrow_mut();
        let shutting_down = core.shutting_down;
        let h = core.hot_live(key);
        if h.cancel == Cancel::Pending || shutting_down {
            // Raising while this fiber is already unwinding would abort the
            // process (a panic out of a destructor during cleanup), so not
            // while the thread is panicking. That flag is per *thread*: it
            // may be another fiber, parked in the middle of an unwind, that
            // sets it. The cancel then waits: `poll` wakes the fiber again
            // once no unwind is in progress (see "Cancellation and shutdown"
            // in the runtime docs).
            if !thread::panicking() {
                h.cancel = Cancel::Delivered;
                drop(core);
                #[cfg(panic = "abort")]
                abort_on_cancel();
                #[cfg(not(panic = "abort"))]
                panic::resume_unwind(Box::new(CancelUnwind));
            }
            if !shutting_down {
                core.deferred_cancels = true;
            }
        }
        if shutting_down {
            Err(Interrupted)
        } else {
            Ok(())
        }
    }

    /// Suspends the running fiber in `state`, waiting on `on`, until
    /// something wakes it.
    ///
    /// The caller must have called [`checkpoint`](Self::checkpoint) first
    /// and arranged its wake-up (run queue, timer, fd, join slot, remote).
    /// A wake-up may be spurious (a cancel while the fiber is unwinding, or
    /// a stale one), so every caller re-checks its condition in a loop.
    ///
    /// # Errors
    ///
    /// As [`checkpoint`](Self::checkpoint), which runs again on return.
    #[inline(always)]
    pub(crate) fn park(
        &self,
        key: Key,
        state: TaskState,
        on: WaitingOn,
    ) -> Result<(), Interrupted> {
        {
            let mut core = self.core.borrow_mut();
            core.running(key).waiting_on = on;
            core.hot_live(key).state = state;
        }
        self.suspend(key)
    }

    /// Switches from the running fiber `key` (its state already set) to the
    /// scheduler; on return, restores `CURRENT` and checks for a cancel.
    #[inline(always)]
    fn suspend(&self, key: Key) -> Result<(), Interrupted> {
        let cur = current();
        debug_assert!(!cur.yielder.is_null() && cur.key == Some(key));
        // The greenlet resumes under way in this chain are put back when it
        // is resumed, or unwound (see `greenlet`'s "Bookkeeping").
        let greenlets = ChainState::save();
        // SAFETY: `CURRENT` names the running fiber (context.rs, module
        // docs), and we run on it (or on a coroutine it resumed, which
        // suspends together with it): its yielder is alive in its root
        // frame.
        unsafe { (*cur.yielder).suspend(()) };
        // A resume may be a dump's trace only (trace.rs): then this fiber
        // captures its frames and suspends again, its wait untouched.
        self.trace_while_requested(cur);
        drop(greenlets);
        set_current(cur);
        self.checkpoint(key)
    }

    /// Parks the running fiber at the back of the run queue.
    #[inline(always)]
    pub(crate) fn yield_now(&self, key: Key) -> Result<(), Interrupted> {
        {
            let mut core = self.core.borrow_mut();
            let shutting_down = core.shutting_down;
            let h = core.hot_live(key);
            if h.cancel == Cancel::Pending || shutting_down {
                drop(core);
                self.checkpoint(key)?;
            } else {
                h.state = TaskState::Ready;
                core.run_queue.push(key);
                drop(core);
                return self.suspend(key);
            }
        }
        self.core.borrow_mut().run_queue.push(key);
        self.park(key, TaskState::Ready, WaitingOn::Nothing)
    }

    /// Parks the running task until its unpark token is set, and takes it.
    pub(crate) fn park_until_unparked(&self, key: Key) {
        let take = || std::mem::replace(&mut self.core.borrow_mut().running(key).unparked, false);
        if self.checkpoint(key).is_err() {
            return;
        }
        while !take() {
            if self
                .park(key, TaskState::Parked, WaitingOn::Nothing)
                .is_err()
            {
                return;
            }
        }
    }
}
