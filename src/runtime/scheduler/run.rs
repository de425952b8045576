//! The scheduler's side of a switch: the loop that runs fibers in rounds,
//! and resuming one. Everything here runs on the scheduler's own stack
//! (the thread's, in `block_on`).

use crate::coroutine::CoroutineResult;
use crate::runtime::task::{Deadlock, Key, TaskState};

use super::context::{set_current, Current};
use super::launch::Launch;
use super::Scheduler;

impl Scheduler {
    /// Resumes the task `key`, whatever its state (shutdown). Returns
    /// whether it finished.
    pub(super) fn resume_any(&self, key: Key) -> bool {
        self.observer.end_round();
        match self.core.borrow_mut().hot(key) {
            Some(h) => h.state = TaskState::Running,
            None => return false,
        }
        self.resume_running(key)
    }

    /// Resumes `key`, whose state the caller has set to `Running`.
    #[inline(always)]
    fn resume_running(&self, key: Key) -> bool {
        let observed = self.observer.active();
        if observed {
            self.observe_resume(key);
        }
        set_current(Current {
            yielder: std::ptr::null(),
            key: Some(key),
        });
        let mut outcome = self.fibers.resume(key);
        set_current(Current::NONE);
        if outcome.is_none() {
            // Not started yet: it takes its stack now (launch.rs).
            match self.launch(key) {
                Launch::Started => {
                    set_current(Current {
                        yielder: std::ptr::null(),
                        key: Some(key),
                    });
                    outcome = self.fibers.resume(key);
                    set_current(Current::NONE);
                }
                Launch::Abandoned => return true,
                Launch::NotAStart => {}
            }
        }
        // The fiber suspended to ask for a dump (trace.rs): serve it and
        // give the CPU straight back.
        while self.trace.requested() {
            self.serve_dump(key);
            set_current(Current {
                yielder: std::ptr::null(),
                key: Some(key),
            });
            outcome = self.fibers.resume(key);
            set_current(Current::NONE);
        }
        let finished = matches!(outcome, Some(CoroutineResult::Return(())));
        if observed {
            self.observe_suspend(key, finished);
        }
        self.observer.probe().count_resume();
        if finished {
            self.remove(key);
        }
        finished
    }

    /// Runs fibers until the task `main` has finished.
    ///
    /// # Errors
    ///
    /// The deadlock report, when `main` waits for something nothing can
    /// bring (see [`poll`](Self::poll)).
    pub(crate) fn run(&self, main: Key) -> Result<(), Deadlock> {
        self.run_loop(Some(main))
    }

    /// Runs fibers, and blocks when none is ready, until another thread
    /// sends [`Message::Stop`](crate::runtime::driver::Message::Stop): the loop of a worker thread. Never reports a
    /// deadlock (another worker may always send work).
    pub(crate) fn serve(&self) {
        self.serving.set(true);
        self.stop.set(false);
        let outcome = self.run_loop(None);
        self.serving.set(false);
        self.stop.set(false);
        debug_assert!(outcome.is_ok(), "a serving scheduler reports no deadlock");
    }

    /// The loop in rounds, until `main` finishes (or, without one, until a
    /// stop message).
    fn run_loop(&self, main: Option<Key>) -> Result<(), Deadlock> {
        loop {
            // The accounting's clock stamps are shared within a round only.
            self.observer.end_round();
            let budget = self.core.borrow().run_queue.len();
            for _ in 0..budget {
                let key = {
                    let mut core = self.core.borrow_mut();
                    let Some(key) = core.run_queue.pop() else {
                        break;
                    };
                    if key == Key::NONE {
                        // An entry a hand-off emptied (run_queue.rs).
                        continue;
                    }
                    // Run-queue keys are live (run_queue.rs, invariants).
                    let h = core.hot_live(key);
                    if h.state != TaskState::Ready {
                        continue;
                    }
                    h.state = TaskState::Running;
                    core.hand_offs = 0;
                    // Start loading what the next two fibers will need:
                    // with thousands of fibers their stacks and records are
                    // out of the cache, and the switch would wait for them.
                    self.fibers
                        .prefetch(core.run_queue.peek(0), core.run_queue.peek(1));
                    key
                };
                if self.run_chain(key, main) {
                    return Ok(());
                }
            }
            let done = match main {
                Some(main) => self.core.borrow().tasks.get(main).is_none(),
                None => self.stop.get(),
            };
            if done {
                return Ok(());
            }
            self.poll()?;
        }
    }

    /// Resumes `key` (its state already `Running`), then the tasks handed
    /// off to, one after the other, while each leaves a hand-off behind
    /// (see `Core::hand_off`). Returns whether `main` finished.
    #[inline(always)]
    fn run_chain(&self, mut key: Key, main: Option<Key>) -> bool {
        loop {
            if self.resume_running(key) && Some(key) == main {
                return true;
            }
            let mut core = self.core.borrow_mut();
            let Some(next) = core.hand_off.take() else {
                return false;
            };
            // Set by the task just resumed, in the borrow that made it
            // `Ready`; nothing ran since.
            let h = core.hot_live(next);
            debug_assert_eq!(h.state, TaskState::Ready);
            h.state = TaskState::Running;
            core.hand_offs += 1;
            key = next;
        }
    }
}
