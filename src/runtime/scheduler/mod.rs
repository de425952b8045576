//! One thread's scheduler: the state every fiber of a runtime shares, the
//! loop that runs them, parking and waking, and cancellation.
//!
//! See the [runtime docs](super) for the glossary, the fiber state machine
//! and the scheduling order; this folder implements them:
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`Scheduler`]: its fields (private to this folder) and the narrow methods the tier above (`wait.rs`) calls |
//! | `context.rs` | the thread-locals: which scheduler this thread runs, which fiber is on the CPU |
//! | `core.rs` | `Core`: task records, hot bytes, run and sleep queues, counters |
//! | `run_queue.rs` | the FIFO of ready fibers |
//! | `fiber_table.rs` | every fiber's coroutine, and the one place fibers are resumed |
//! | `sleep_queue.rs` | the timer heap |
//! | `park.rs` | the fiber's side of a switch: start, cancellation checkpoint, park, yield |
//! | `run.rs` | the scheduler's side: the loop in rounds, resuming a fiber |
//! | `launch.rs` | a task's first resume: taking its stack, or abandoning it without one |
//! | `find_runnable.rs` | between two rounds: timers, remote wake-ups, the reactor |
//! | `spin.rs` | a worker that other threads keep sending to spins briefly before it sleeps |
//! | `shutdown.rs` | cancelling and unwinding what is left; the deadlock report |
//! | `trace.rs` | taking a dump: tracing every suspended fiber without waking it |
//! | `observe.rs` | what the switch tells the observer (accounting, fiber events, the watchdog) when one is on |
//!
//! ## Who owns what, and when it may be touched
//!
//! - A [`Scheduler`] is owned by its [`Runtime`](super::Runtime) (boxed, so
//!   its address is stable). Fibers and the public API reach it only
//!   through the thread-local pointer of `context.rs`, so they only ever see
//!   a scheduler that is alive (see there).
//! - Its fields are private to this folder. Nothing above the scheduler
//!   changes its state except through the methods below, and the public
//!   API calls those only through `wait.rs` (the runtime docs, "Tiers").
//! - `Core` sits in a `RefCell`. Every borrow is short and never spans a
//!   switch or a call into user code (a closure, a destructor of a user
//!   value, a panic payload's drop): values that belong to users are moved
//!   out of the borrow and dropped after it ends.
//! - A task's fiber (its `Coroutine`) lives in the
//!   [`FiberTable`](fiber_table), which only the scheduler's own frames
//!   touch; the task's record in `Core` holds what fibers may read and
//!   write about each other (state, cancellation, timers).
//! - The reactor and the remote-wake channel are drivers
//!   ([`driver`](super::driver)); the scheduler owns them, polls them
//!   between rounds, and lends the reactor to the waits that register fds.

pub(crate) mod context;
mod core;
mod fiber_table;
mod find_runnable;
mod launch;
mod observe;
mod park;
mod run;
mod run_queue;
mod shutdown;
mod sleep_queue;
mod spin;
mod trace;

use std::cell::{Cell, RefCell};
use std::io;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::greenlet::ChainState;
use crate::runtime::driver::{Reactor, Remote, RemoteWaker};
use crate::runtime::observe::Observer;
use crate::runtime::task::{Cancel, Key, LocalMap, Start, TaskId, TaskInfo, TaskState};

use self::core::{Core, Hot, TaskRecord};
use fiber_table::FiberTable;
use find_runnable::ClosedFdCheck;

/// One runtime's scheduler; see the [module docs](self).
pub(crate) struct Scheduler {
    fibers: FiberTable,
    /// Its accounting, events and watchdog, and the counters it publishes
    /// (resumes so far among them).
    observer: Observer,
    /// When the reactor next looks for fds closed under their waiters.
    closed_fd_check: Cell<ClosedFdCheck>,
    /// Unique per process (never reused), so that a [`Key`] kept in a
    /// waker or a task handle is only looked up in the table it came from.
    id: u64,
    core: RefCell<Core>,
    reactor: Reactor,
    remote: Arc<Remote>,
    /// Stack size of fibers whose builder names none.
    stack_size: usize,
    /// Set while [`serve`](Self::serve) runs: a worker's scheduler, which
    /// other workers may always send work to, never reports a deadlock.
    serving: Cell<bool>,
    /// Set by a [`Message::Stop`](crate::runtime::driver::Message): `serve`
    /// returns.
    stop: Cell<bool>,
    /// Whether to spin for a message before blocking (`spin.rs`).
    spin: Cell<spin::SpinState>,
    /// Guard pages of fibers whose builder names none.
    guard_pages: usize,
    /// The dump protocol (`trace.rs`); all idle until a dump is asked for.
    trace: trace::TraceState,
}

impl Scheduler {
    /// A scheduler with an empty task table, its own epoll set and eventfd.
    ///
    /// # Errors
    ///
    /// What `epoll_create1` or `eventfd` return (out of file descriptors).
    pub(crate) fn new(
        stack_size: usize,
        guard_pages: usize,
        observer: Observer,
    ) -> io::Result<Scheduler> {
        let remote = Arc::new(Remote::new()?);
        let reactor = Reactor::new(remote.event_fd())?;
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Ok(Scheduler {
            fibers: FiberTable::new(),
            observer,
            closed_fd_check: Cell::new(ClosedFdCheck::FIRST),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            core: RefCell::new(Core::new()),
            reactor,
            remote,
            stack_size,
            serving: Cell::new(false),
            stop: Cell::new(false),
            spin: Cell::new(spin::SpinState::default()),
            guard_pages,
            trace: trace::TraceState::new(),
        })
    }

    /// The scheduler's process-unique id.
    #[inline(always)]
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The default stack size of its fibers.
    #[inline]
    pub(crate) fn stack_size(&self) -> usize {
        self.stack_size
    }

    /// The default guard size of its fibers' stacks, in pages.
    #[inline]
    pub(crate) fn guard_pages(&self) -> usize {
        self.guard_pages
    }

    /// Resumes so far: it changes exactly when some fiber has been
    /// suspended since the running one was last resumed.
    #[inline(always)]
    pub(crate) fn resumes(&self) -> u64 {
        self.observer.probe().resumes()
    }

    /// Its reactor, for the waits that register fds.
    #[inline(always)]
    pub(crate) fn reactor(&self) -> &Reactor {
        &self.reactor
    }

    /// The inbox other threads reach this scheduler through.
    pub(crate) fn remote(&self) -> &Arc<Remote> {
        &self.remote
    }

    /// A waker for the task `key` that other threads may use.
    pub(crate) fn remote_waker(&self, key: Key) -> RemoteWaker {
        self.remote.waker(key)
    }

    /// The counters it publishes for other threads.
    pub(crate) fn probe(&self) -> &Arc<crate::runtime::observe::probe::Probe> {
        self.observer.probe()
    }

    /// Number of live tasks.
    pub(crate) fn live_tasks(&self) -> usize {
        self.core.borrow().tasks.len()
    }

    /// Forgets every fiber without unwinding it (stacks and all): for a
    /// runtime dropped while another one is entered on its thread, whose
    /// fibers must not run there.
    pub(crate) fn leak_fibers(&mut self) {
        std::mem::forget(std::mem::replace(&mut self.fibers, FiberTable::new()));
    }

    /// Adds a task that has not started (it takes its stack at its first
    /// resume: `launch.rs`) to the back of the run queue.
    #[inline]
    pub(crate) fn insert(
        &self,
        start: Start,
        id: TaskId,
        name: Option<Arc<str>>,
        spawned_at: &'static Location<'static>,
    ) -> Key {
        let observed_name = if self.observer.active() {
            name.clone()
        } else {
            None
        };
        let mut core = self.core.borrow_mut();
        let cancel = if core.shutting_down {
            Cancel::Pending
        } else {
            Cancel::No
        };
        let spawn_seq = core.run_queue.next_seq();
        let key = core.tasks.insert(TaskRecord {
            spawn_seq,
            ..TaskRecord::new(id, name, spawned_at)
        });
        let hot = Hot {
            state: TaskState::Ready,
            cancel,
        };
        match core.hot.get_mut(key.index()) {
            Some(h) => *h = hot,
            None => core.hot.push(hot),
        }
        let pushed = core.run_queue.push(key);
        debug_assert_eq!(pushed, spawn_seq);
        core.spawned += 1;
        self.observer.probe().set_spawned(core.spawned);
        self.remote.set_live(core.tasks.len());
        drop(core);
        self.fibers.add(key, start);
        if self.observer.active() {
            self.observe_spawn(key, id, observed_name, spawned_at);
        }
        key
    }

    /// Removes a finished (or abandoned) task: its fiber first (its slot
    /// must be free before its index is), then its record; both dropped
    /// outside any borrow.
    fn remove(&self, key: Key) {
        let exit = if self.observer.active() {
            self.exit_note(key)
        } else {
            None
        };
        let fiber = self.fibers.remove(key);
        // Dropping an unfinished fiber unwinds it on its own stack: it must
        // not see the greenlets of whoever runs the scheduler (see
        // `greenlet::ChainState`).
        let resumer = ChainState::detach();
        drop(fiber);
        drop(resumer);
        let record = {
            let mut core = self.core.borrow_mut();
            let record = core.tasks.remove(key);
            self.remote.set_live(core.tasks.len());
            record
        };
        drop(record);
        if let Some(note) = exit {
            self.observe_exit(note);
        }
    }

    /// Every live task, in id order.
    pub(crate) fn snapshot(&self) -> Vec<(Key, TaskInfo)> {
        self.core.borrow().infos()
    }

    /// The id and name of the task under `key` (`None` also if the table
    /// is being changed right now, e.g. when asked from a panic hook).
    pub(crate) fn describe(&self, key: Key) -> Option<(TaskId, Option<Arc<str>>)> {
        let core = self.core.try_borrow().ok()?;
        core.tasks.get(key).map(|t| (t.id, t.name.clone()))
    }

    /// Makes the task `key` ready if it is parked (idempotent).
    #[inline]
    pub(crate) fn wake(&self, key: Key) {
        self.core.borrow_mut().wake(key);
    }

    /// Makes the task `key` ready if it is parked, unless the task table is
    /// borrowed right now (the caller runs inside the scheduler): returns
    /// whether it could.
    pub(crate) fn try_wake(&self, key: Key) -> bool {
        match self.core.try_borrow_mut() {
            Ok(mut core) => {
                core.wake(key);
                true
            }
            Err(_) => false,
        }
    }

    /// Marks the task `key` cancelled, waking it if it is parked.
    pub(crate) fn cancel(&self, key: Key) {
        self.core.borrow_mut().cancel(key);
    }

    /// Whether the task `key` has a cancel it has not been unwound by yet.
    pub(crate) fn is_cancel_pending(&self, key: Key) -> bool {
        self.core
            .borrow_mut()
            .hot(key)
            .is_some_and(|h| h.cancel == Cancel::Pending)
    }

    /// Whether the task `key` has been unwound by a cancel (it is unwinding
    /// from it, or caught it). Asked from destructors, so it never panics:
    /// `false` if the task table is borrowed right now.
    pub(crate) fn is_cancel_delivered(&self, key: Key) -> bool {
        self.core
            .try_borrow_mut()
            .is_ok_and(|mut core| core.hot(key).is_some_and(|h| h.cancel == Cancel::Delivered))
    }

    /// Counts a task as finished and wakes `waiter` (its joiner); returns
    /// the finish stamp (the count of finished tasks, so stamps order
    /// finishes).
    pub(crate) fn finish(&self, waiter: Option<Key>) -> u64 {
        let mut core = self.core.borrow_mut();
        core.finished += 1;
        self.observer.probe().set_finished(core.finished);
        if let Some(w) = waiter {
            // The finishing task is what `w` waits for: it runs next (a
            // hand-off; the runtime docs, "Scheduling order").
            core.wake_next(w);
        }
        core.finished
    }

    /// The running task is about to wait for the task `key`: if `key` has
    /// not started, it runs right after the caller suspends (a hand-off;
    /// the runtime docs, "Scheduling order"), instead of from its place in
    /// the queue.
    pub(crate) fn hand_off_unstarted(&self, key: Key) {
        self.core.borrow_mut().hand_off_unstarted(key);
    }

    /// Gives the task `key` its unpark token, waking it if it is parked in
    /// [`park`](crate::park).
    pub(crate) fn unpark(&self, key: Key) {
        let mut core = self.core.borrow_mut();
        if let Some(t) = core.tasks.get_mut(key) {
            t.unparked = true;
            if core.hot_live(key).state == TaskState::Parked {
                core.wake(key);
            }
        }
    }

    /// Sets a timer that wakes the running task `key` at `deadline`.
    pub(crate) fn set_timer(&self, key: Key, deadline: Instant) {
        self.core.borrow_mut().set_timer(key, deadline);
    }

    /// Whether the timer of task `key` has fired.
    pub(crate) fn timer_fired(&self, key: Key) -> bool {
        self.core.borrow().timer_fired(key)
    }

    /// Abandons the timer of task `key` if it has not fired.
    pub(crate) fn drop_timer(&self, key: Key) {
        self.core.borrow_mut().drop_timer(key);
    }

    /// Forgets the fd readiness last reported to the running task `key`.
    #[inline]
    pub(crate) fn clear_io_events(&self, key: Key) {
        if let Some(t) = self.core.borrow_mut().tasks.get_mut(key) {
            t.io_events = 0;
        }
    }

    /// `fd` is about to be closed: takes it out of the reactor (and the
    /// source `source` of it, if given) and wakes its waiters with
    /// [`CLOSED`](crate::runtime::driver::CLOSED) as their readiness.
    /// Returns false, having done nothing, while the scheduler's state is
    /// borrowed (a close from inside the scheduler itself), where the
    /// reactor's own check for closed fds still catches the plain waits.
    #[cfg_attr(not(feature = "hook"), allow(dead_code))]
    pub(crate) fn fail_fd_waiters(&self, fd: std::os::fd::RawFd, source: Option<u64>) -> bool {
        let Ok(mut core) = self.core.try_borrow_mut() else {
            return false;
        };
        let from_source = match source.map(|token| self.reactor.close_source(token, fd)) {
            None => Vec::new(),
            Some(Some(keys)) => keys,
            Some(None) => return false,
        };
        for key in self.reactor.forget(fd).into_iter().chain(from_source) {
            if let Some(t) = core.tasks.get_mut(key) {
                t.io_events = crate::runtime::driver::CLOSED;
                core.wake(key);
            }
        }
        true
    }

    /// The fd readiness reported to task `key` since it was last cleared
    /// (0 for none).
    #[inline]
    pub(crate) fn io_events(&self, key: Key) -> u32 {
        self.core.borrow().tasks.get(key).map_or(0, |t| t.io_events)
    }

    /// The fiber-local map of the running task `key`, allocated on first
    /// use. The box stays in the record (its address stable) until
    /// [`take_locals`](Self::take_locals).
    pub(crate) fn locals(&self, key: Key) -> *const LocalMap {
        let mut core = self.core.borrow_mut();
        let record = core.running(key);
        &**record.locals.get_or_insert_with(Box::default) as *const LocalMap
    }

    /// Takes the fiber-local map of the running task `key` out of its
    /// record (to drop its values outside any borrow).
    pub(crate) fn take_locals(&self, key: Key) -> Option<Box<LocalMap>> {
        self.core.borrow_mut().running(key).locals.take()
    }
}
