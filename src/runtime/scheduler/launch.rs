//! A task's first resume: it takes its stack now, not at its spawn (see
//! [`Start`](crate::runtime::task::Start) for why).
//!
//! [`Scheduler::launch`] runs on the scheduler's stack when `run.rs` finds
//! that the task it is about to resume has not started. Three outcomes:
//!
//! - The task has a pending cancel (or the runtime is shutting down): it
//!   is abandoned as cancelled. Its closure is dropped and its join slot
//!   says `Cancelled`, with no stack ever taken.
//! - A stack can be had: the fiber is created on it (in the task's slot of
//!   the fiber table) and the caller resumes it as usual.
//! - No stack can be had (no memory, or no memory maps left:
//!   `vm.max_map_count`): the task is abandoned with that error. Its join
//!   handle yields a panic whose message names the fiber and the error
//!   (the panic hook reports it too, so it is not lost if nobody joins),
//!   and the runtime goes on with its other fibers.
//!
//! Abandoning runs user code (the closure's destructor, done callbacks)
//! with no borrow of the scheduler held and no fiber current: suspension
//! points refuse to park there, as everywhere on the scheduler's stack.

use crate::runtime::task::{Abandon, Cancel, Key};

use super::Scheduler;

/// What [`Scheduler::launch`] did.
pub(super) enum Launch {
    /// The fiber is in its slot, ready for its first resume.
    Started,
    /// The task ended without a stack; its record is gone.
    Abandoned,
    /// The task had started already, or is gone.
    NotAStart,
}

impl Scheduler {
    /// The first resume of `key`, before the switch: see the
    /// [module docs](self).
    #[inline(never)]
    pub(super) fn launch(&self, key: Key) -> Launch {
        // `resume` found no fiber: the task has not started, or is gone.
        let cancelled = {
            let mut core = self.core.borrow_mut();
            let shutting_down = core.shutting_down;
            let Some(h) = core.hot(key) else {
                return Launch::NotAStart;
            };
            let cancelled = h.cancel == Cancel::Pending || shutting_down;
            if cancelled {
                h.cancel = Cancel::Delivered;
            }
            cancelled
        };
        let (start, why) = if cancelled {
            match self.fibers.take_start(key) {
                Some(start) => (start, Abandon::Cancelled),
                None => return Launch::NotAStart,
            }
        } else {
            match self.fibers.launch(key) {
                None => return Launch::NotAStart,
                Some(Ok(())) => return Launch::Started,
                Some(Err((start, e))) => (start, Abandon::NoStack(e)),
            }
        };
        start.abandon(why);
        self.remove(key);
        Launch::Abandoned
    }
}
