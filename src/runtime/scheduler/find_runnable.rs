//! What the scheduler does between two rounds: find the fibers that can
//! run next (Go's `findRunnable`), or find that none ever can.
//!
//! In this order: wake the sleepers whose deadline has passed (the sleep
//! queue, in deadline order); wake the fibers whose helper threads finished
//! and act on the other messages of the inbox (the
//! [`Remote`](crate::runtime::driver::Remote)); poll the reactor for fd
//! events. The poll does not block if some fiber is ready (and is skipped
//! entirely when no fiber waits on an fd); otherwise it blocks until the
//! earliest deadline, or for good if there is none.
//!
//! Blocking for good is right only if something outside the runtime can
//! still wake a fiber: an fd a fiber waits on, or a helper thread holding a
//! waker. If neither exists, nothing will ever run again and this step
//! returns the deadlock report instead. In a runtime of several workers,
//! each worker that blocks for good is counted idle while it does, and
//! worker 0 reports when every worker is and no other thread lives
//! (`driver/idle.rs`).
//!
//! ## Fds closed under their waiters
//!
//! epoll forgets a closed fd silently, so a fiber waiting on it would never
//! wake. Before blocking (for good, or until a deadline), if any fiber has
//! run since the last look, the reactor checks every fd waited on
//! ([`Reactor::find_closed`](crate::runtime::driver::Reactor::find_closed), one
//! `epoll_ctl` each) and fails the waits on those that are gone. That costs
//! about a microsecond per waited-on fd, so the looks are paced: the next
//! one comes no sooner than [`CHECK_SPACING`] times as long as the last took
//! (the blocking poll's timeout is shortened to that moment), which keeps
//! their cost under 0.5% of the time however many fds are waited on. A
//! runtime where nothing runs does not look again (only its own fibers can
//! have closed an fd since); a close from another thread is seen at the
//! first look after some fiber has run.

use std::time::{Duration, Instant};

use crate::runtime::driver::{Idle, Message};
use crate::runtime::task::{Cancel, Deadlock, Key, TaskState};

use super::core::Core;
use super::Scheduler;

impl Scheduler {
    /// Between two rounds: fires expired timers, collects wake-ups from other
    /// threads, and polls the reactor (without blocking if anything is
    /// ready, else until the next deadline).
    ///
    /// # Errors
    ///
    /// The deadlock report when nothing is ready and nothing could ever
    /// make anything ready.
    pub(super) fn poll(&self) -> Result<(), Deadlock> {
        let now = {
            let mut core = self.core.borrow_mut();
            let core = &mut *core;
            if core.deferred_cancels && !std::thread::panicking() {
                core.deferred_cancels = false;
                wake_cancelled(core);
            }
            if core.sleep_queue.is_empty() {
                None
            } else {
                let now = Instant::now();
                let Core {
                    tasks,
                    hot,
                    sleep_queue,
                    run_queue,
                    ..
                } = core;
                while let Some(key) = sleep_queue
                    .pop_expired(now, |k, seq| tasks.get(k).is_some_and(|t| t.timer == seq))
                {
                    let t = tasks.get_mut(key).expect("a live timer has a task");
                    t.timer = 0;
                    let h = &mut hot[key.index()];
                    if h.state.is_parked() {
                        h.state = TaskState::Ready;
                        run_queue.push(key);
                    }
                }
                Some(now)
            }
        };
        self.take_messages();
        if self.stop.get() {
            return Ok(());
        }
        let timeout = {
            let mut core = self.core.borrow_mut();
            let core = &mut *core;
            if !core.run_queue.is_empty() {
                Some(Duration::ZERO)
            } else {
                let Core {
                    tasks, sleep_queue, ..
                } = core;
                sleep_queue
                    .next_deadline(|k, seq| tasks.get(k).is_some_and(|t| t.timer == seq))
                    .map(|d| d.saturating_duration_since(now.unwrap_or_else(Instant::now)))
            }
        };
        if timeout == Some(Duration::ZERO) && self.reactor.waiters() == 0 {
            return Ok(());
        }
        let for_good = timeout.is_none() && self.reactor.waiters() == 0;
        if for_good && !self.remote.may_wake() && !self.serving.get() {
            return Err(self.deadlock_report());
        }
        // A worker that other threads keep sending to waits a moment for
        // the next message before it sleeps (spin.rs).
        if self.spin_for_messages(timeout) {
            self.take_messages();
            return Ok(());
        }
        let mut timeout = timeout;
        // Blocking for good in a runtime of several workers: counted idle
        // until the poll returns, and worker 0 may find that every worker
        // is (driver/idle.rs).
        let all_idle = self.remote.all_idle().filter(|_| for_good);
        if let Some(all) = all_idle {
            match all.enter(&*self.remote) {
                Idle::Counted => {}
                Idle::Deadlock => {
                    all.leave();
                    return Err(self.deadlock_report());
                }
                Idle::LookAgainIn(d) => timeout = Some(d),
            }
        }
        if timeout != Some(Duration::ZERO) && self.reactor.waiters() > 0 {
            // About to block: make sure no fiber waits on an fd that was
            // closed under it (module docs).
            match self.check_closed_fds() {
                Checked::Woke => return Ok(()),
                Checked::DueIn(d) => timeout = Some(timeout.map_or(d, |t| t.min(d))),
                Checked::Nothing => {}
            }
        }
        // About to block: the scheduler's half of the inbox handshake
        // (driver/remote.rs). A message that came meanwhile turns the
        // blocking poll into a quick one.
        let asleep = timeout != Some(Duration::ZERO) && self.remote.prepare_sleep();
        let timeout = if asleep {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        self.reactor
            .poll(timeout, |key, ev| self.wake_io(key, ev))
            .unwrap_or_else(|e| panic!("spindle reactor: {e}"));
        if asleep {
            self.remote.awake();
            self.note_wake_up();
        }
        if let Some(all) = all_idle {
            all.leave();
        }
        Ok(())
    }

    /// Acts on what other threads sent (wake-ups, cancels, remote spawns, a
    /// stop). The closures of remote spawns run here, on the scheduler's
    /// stack with no borrow held.
    fn take_messages(&self) {
        let messages = self.remote.take();
        if messages.is_empty() {
            return;
        }
        let mut jobs = Vec::new();
        let mut dumps = Vec::new();
        {
            let mut core = self.core.borrow_mut();
            for m in messages {
                match m {
                    Message::Wake(key) => core.wake(key),
                    Message::Cancel(key) => core.cancel(key),
                    Message::Run(job) => jobs.push(job),
                    Message::Stop => self.stop.set(true),
                    Message::Dump(reply) => dumps.push(reply),
                    Message::AllIdle => {}
                }
            }
        }
        for job in jobs {
            job();
        }
        // Every fiber is suspended here: trace them (trace.rs).
        for reply in dumps {
            reply(self.trace_all(None));
        }
    }

    /// Fails the waits on fds closed under their fibers, if any fiber ran
    /// since the last look and the pacing allows (module docs).
    fn check_closed_fds(&self) -> Checked {
        let last = self.closed_fd_check.get();
        let resumes = self.resumes();
        if last.at_resumes == Some(resumes) {
            return Checked::Nothing;
        }
        let start = Instant::now();
        if let Some(due) = last.due.filter(|&d| d > start) {
            return Checked::DueIn(due - start);
        }
        let woke = self.reactor.find_closed(|key, ev| self.wake_io(key, ev));
        let end = Instant::now();
        self.closed_fd_check.set(ClosedFdCheck {
            due: Some(end + (end - start) * CHECK_SPACING),
            at_resumes: Some(resumes),
        });
        if woke > 0 {
            Checked::Woke
        } else {
            Checked::Nothing
        }
    }

    /// The reactor saw `events` for the fd `key` waits on.
    fn wake_io(&self, key: Key, events: u32) {
        let mut core = self.core.borrow_mut();
        if let Some(t) = core.tasks.get_mut(key) {
            t.io_events = events;
            core.wake(key);
        }
    }
}

/// The next look for closed fds waits this many times as long as the last
/// one took (module docs).
pub(super) const CHECK_SPACING: u32 = 200;

/// When the reactor last looked for closed fds, and when it may next.
#[derive(Clone, Copy, Debug)]
pub(super) struct ClosedFdCheck {
    /// The earliest moment of the next look; `None`: at once.
    due: Option<Instant>,
    /// The scheduler's resume count at the last look; `None`: never looked.
    at_resumes: Option<u64>,
}

impl ClosedFdCheck {
    pub(super) const FIRST: ClosedFdCheck = ClosedFdCheck {
        due: None,
        at_resumes: None,
    };
}

/// What a look for closed fds did.
enum Checked {
    /// It failed some waits: their fibers are ready.
    Woke,
    /// Nothing to do now, or nothing found.
    Nothing,
    /// A look is wanted, after this long.
    DueIn(Duration),
}

/// Wakes every parked task with a cancel pending, so that its suspension
/// point can deliver it now (see `Scheduler::checkpoint`).
fn wake_cancelled(core: &mut Core) {
    let pending: Vec<Key> = core
        .tasks
        .iter()
        .map(|(k, _)| k)
        .filter(|k| core.hot[k.index()].cancel == Cancel::Pending)
        .collect();
    for key in pending {
        core.wake(key);
    }
}
