//! The deadlock report across workers: the workers' side of
//! `driver/idle.rs`.
//!
//! - At start, [`join_all_idle`] gives every worker's inbox the runtime's
//!   shared idle count (a runtime of one worker has none and keeps the
//!   one-scheduler rule).
//! - Worker 0's scheduler finds the deadlock (`Scheduler::poll`) and
//!   returns the report of its own fibers. [`Pool::whole_deadlock`] then
//!   asks every other worker for its fibers' report: a `Run` message whose
//!   closure traces them on that worker's thread (a fiber's backtrace can
//!   only be taken on its own thread) and sends the list back. Every
//!   worker is idle for good at that moment, so each takes the message at
//!   once; the report lists every fiber of the runtime in id order. (Worker
//!   0 also reports on its own, as one scheduler does, when no other
//!   thread holds a waker of its fibers; other workers may be busy then,
//!   and one whose thread does not answer within a second is left out.)

use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use crate::runtime::driver::{AllIdle, Message, Remote};
use crate::runtime::task::Deadlock;
use crate::runtime::wait;

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
        let others = &self.workers.remotes[1..];
        if others.is_empty() {
            return report;
        }
        let (tx, rx) = mpsc::channel();
        for r in others {
            let tx = tx.clone();
            r.send(Message::Run(Box::new(move || {
                let tasks = wait::try_with_runtime(|rt| rt.deadlock_report().tasks);
                let _ = tx.send(tasks.unwrap_or_default());
            })));
        }
        drop(tx);
        // Ends when every closure has sent, or been dropped unrun (a
        // worker that is gone), or after `ANSWER_WITHIN`: a worker whose
        // thread is stuck in a blocking call (the one-worker rule reports
        // while other workers may be busy) must not hold the report back;
        // its fibers are then left out.
        let deadline = Instant::now() + ANSWER_WITHIN;
        while let Ok(tasks) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            report.tasks.extend(tasks);
        }
        report.tasks.sort_by_key(|t| t.info.id);
        report
    }
}
