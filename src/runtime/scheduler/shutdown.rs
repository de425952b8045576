//! Shutdown and the deadlock report: how a runtime ends.
//!
//! ## Shutdown
//!
//! When the main fiber has finished (or `block_on` gives up on a deadlock,
//! or a runtime is dropped with fibers left), [`Scheduler::shutdown`] sets
//! `shutting_down` and then, in rounds until the task table is empty,
//! cancels every remaining task in id order and resumes it. Every
//! suspension point refuses to park while `shutting_down` is set: it raises
//! the cancellation unwind, or, in a fiber that is already unwinding, returns
//! early (a wait reports `Interrupted`). So each resume runs the fiber to
//! its end: its destructors run, its join slot says `Cancelled`, its stack
//! and fd registrations go. Fibers spawned meanwhile are born cancelled and
//! are taken by the next round. A fiber that somehow suspends anyway is
//! dropped, which makes the coroutine layer unwind it.
//!
//! ## Deadlock
//!
//! The scheduler reports a deadlock when it would block with nothing that
//! could ever wake a fiber (see `Scheduler::poll`). The report names every
//! task with what it waits for, the function it waits in and where it was
//! spawned, in id order, after Go's.

use crate::runtime::task::{Cancel, Deadlock, Key, TaskId};

use super::Scheduler;

impl Scheduler {
    /// Go's "all goroutines are asleep", with every task and what it waits
    /// on.
    /// Every fiber is suspended here, so each is traced (see `trace.rs`)
    /// and the report names the function it waits in.
    pub(crate) fn deadlock_report(&self) -> Deadlock {
        Deadlock {
            tasks: self.trace_all(None),
        }
    }

    /// Cancels and unwinds every task still in the table, in id order (and
    /// any they spawn while unwinding), then empties the queues.
    pub(crate) fn shutdown(&self) {
        {
            let mut core = self.core.borrow_mut();
            core.shutting_down = true;
            // A pending hand-off is a ready task like any other: every task
            // is resumed below, in id order.
            core.hand_off = None;
        }
        loop {
            let mut live: Vec<(TaskId, Key)> = {
                let core = self.core.borrow();
                core.tasks.iter().map(|(k, t)| (t.id, k)).collect()
            };
            if live.is_empty() {
                break;
            }
            live.sort_unstable_by_key(|&(id, _)| id);
            for (_, key) in live {
                {
                    let mut core = self.core.borrow_mut();
                    let Some(h) = core.hot(key) else {
                        continue;
                    };
                    h.cancel = Cancel::Pending;
                }
                if !self.fibers.contains(key) {
                    continue;
                }
                if !self.resume_any(key) {
                    // The fiber suspended again although no suspension
                    // point parks during shutdown. Dropping the coroutine
                    // unwinds it (the coroutine layer's forced unwind);
                    // its record stays until then, so that the suspension
                    // points its destructors reach answer `Interrupted`.
                    self.remove(key);
                }
            }
        }
        let mut core = self.core.borrow_mut();
        core.run_queue.clear();
        core.sleep_queue.clear();
        core.shutting_down = false;
    }
}
