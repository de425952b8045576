//! The deadlock report across workers: the workers' side of
//! `driver/idle.rs`.
//!
//! - At start, [`join_all_idle`] gives every worker's inbox the runtime's
//!   shared idle count (a runtime of one worker has none and keeps the
//!   one-scheduler rule).
//! - Worker 0's scheduler finds the deadlock (`Scheduler::poll`) and
//!   returns the report of its own fibers. [`Pool::whole_deadlock`] then
//!   asks every other worker for its fibers the way a dump does (the
//!   dump's collection, `dump/collect.rs`): a `Message::Dump` into each
//!   inbox, which that worker answers with the traces of its fibers, taken
//!   on its own thread (a fiber's backtrace can only be taken there), as
//!   its own deadlock report would. Every worker is idle for good at that
//!   moment, so each answers at once; the report lists every fiber of the
//!   runtime in id order. (Worker 0 also reports on its own, as one
//!   scheduler does, when no other thread holds a waker of its fibers;
//!   other workers may be busy then, and one whose thread does not answer
//!   within a second is left out.)

use std::sync::Arc;
use std::time::Duration;

use crate::runtime::driver::{AllIdle, Remote};
use crate::runtime::dump::traces_of_other_workers;
use crate::runtime::task::Deadlock;

use super::Pool;

/// How long the report waits for the other workers' fibers.
const ANSWER_WITHIN: Duration = Duration::from_secs(1);

/// Makes the workers whose inboxes are `remotes` (worker 0's first) share
/// one idle count; before any of them serves.
pub(super) fn join_all_idle(remotes: &[Arc<Remote>]) {
    let all = Arc::new(AllIdle::new(remotes));
    for r in remotes {
        r.set_all_idle(Arc::clone(&all));
    }
}

impl Pool {
    /// Completes worker 0's deadlock `report` with the fibers of every
    /// other worker, in id order.
    pub(crate) fn whole_deadlock(&self, mut report: Deadlock) -> Deadlock {
        if self.workers.len() == 1 {
            return report;
        }
        // A worker whose thread is stuck in a blocking call (the one-worker
        // rule reports while other workers may be busy) must not hold the
        // report back: after `ANSWER_WITHIN` its fibers are left out.
        let others = traces_of_other_workers(&self.workers, 0, ANSWER_WITHIN);
        report.tasks.extend(others);
        report.tasks.sort_by_key(|t| t.info.id);
        report
    }
}
