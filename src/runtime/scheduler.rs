//! The scheduler: the per-thread state every fiber of a runtime shares, the
//! loop that runs them, parking and waking, and cancellation.
//!
//! See the [runtime docs](super) for the glossary, the fiber state machine
//! and the scheduling order; this file implements them.
//!
//! ## Who owns what, and when it may be touched
//!
//! - [`Scheduler`] is owned by the [`Runtime`](super::Runtime) (boxed, so its
//!   address is stable). While `block_on` (or the runtime's drop) runs, the
//!   thread-local `SCHEDULER` points at it; otherwise it is null. Fibers and
//!   the free functions reach the scheduler only through that pointer, so
//!   they only ever see a scheduler that is alive: the runtime is borrowed
//!   for as long as the pointer is set, and every fiber has ended before it
//!   is cleared.
//! - `Core` sits in a `RefCell`. Every borrow is short and never spans a
//!   switch or a call into user code (a closure, a destructor of a user
//!   value, a panic payload's drop): values that belong to users are moved
//!   out of the borrow and dropped after it ends.
//! - A task's fiber (its `Coroutine`) lives in the
//!   [`FiberTable`](super::fiber_table), which only the scheduler's own
//!   frames touch; the task's record here holds what fibers may read and
//!   write about each other (state, cancellation, timers).
//! - The thread-local `CURRENT` holds the running fiber's key and a pointer
//!   to its `Yielder`. The yielder lives in the fiber's root frame (inside
//!   the coroutine layer's entry function), so it is valid for as long as
//!   the fiber has not returned. `CURRENT` is written in exactly three
//!   places: by the scheduler just before each resume (key only, yielder
//!   null), by the fiber's root when it starts, and by [`Scheduler::park`]
//!   when a fiber comes back from a suspension (it restores the pair it
//!   saved on its own stack). The scheduler resets it to "none" when the
//!   resume returns. So whenever code runs on a fiber, `CURRENT` names that
//!   fiber, and dereferencing its yielder there is sound; on the scheduler's
//!   own stack it is "none" and the free functions refuse to park.

use std::cell::{Cell, RefCell};
use std::io;
use std::panic;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use crate::coroutine::{Coroutine, CoroutineResult, Yielder};
use crate::greenlet::ChainState;
use crate::stack::Stack;

use super::blocking::Remote;
use super::fiber_table::FiberTable;
use super::find_runnable::ClosedFdCheck;
use super::reactor::Reactor;
use super::run_queue::RunQueue;
use super::slab::{Key, Slab};
use super::task::{TaskId, TaskState};
use super::timer::SleepQueue;

/// A task's fiber: resumed with nothing, suspends with nothing, returns
/// nothing. Results travel through the task's join slot instead, and the
/// reason for a suspension is written into the task's record.
pub(crate) type Fiber = Coroutine<(), (), ()>;
/// The yielder of a [`Fiber`].
pub(crate) type FiberYielder = Yielder<(), ()>;

thread_local! {
    /// The scheduler of the runtime this thread is running, or null.
    static SCHEDULER: Cell<*const Scheduler> = const { Cell::new(ptr::null()) };
    /// The running fiber (see the module docs for the protocol).
    static CURRENT: Cell<Current> = const { Cell::new(Current::NONE) };
}

/// Who is running: a task's key and its yielder.
#[derive(Clone, Copy)]
pub(crate) struct Current {
    yielder: *const FiberYielder,
    key: Option<Key>,
}

impl Current {
    const NONE: Current = Current {
        yielder: ptr::null(),
        key: None,
    };
}

/// The private payload that unwinds a cancelled fiber. Raised with
/// `resume_unwind`, so no panic message is printed; the task root
/// recognises it and reports [`JoinError::Cancelled`](super::JoinError).
pub(crate) struct CancelUnwind;

/// A wait ended without its event because the runtime is shutting down and
/// the fiber is already unwinding (so it cannot be unwound again).
#[derive(Debug)]
pub(crate) struct Interrupted;

/// Where a task stands with respect to cancellation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Cancel {
    /// Not cancelled.
    No,
    /// `cancel` was called; the next suspension point unwinds.
    Pending,
    /// The unwind has been raised. Later suspension points behave normally
    /// (so destructors may sleep or wait), unless cancel is called again.
    Delivered,
}

/// The two bytes of a task that every switch reads or writes, kept apart
/// from its [`TaskRecord`] in a dense array (`Core::hot`, indexed like the
/// task table) so that a yield touches them and not the record's cache
/// line: with 10,000 fibers that is 20 KB instead of 560 KB.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hot {
    pub(crate) state: TaskState,
    pub(crate) cancel: Cancel,
}

/// What the scheduler knows of one task, apart from its [`Hot`] bytes.
pub(crate) struct TaskRecord {
    pub(crate) id: TaskId,
    pub(crate) name: Option<Arc<str>>,
    /// Sequence number of this task's live sleep-queue entry; 0 for none.
    pub(crate) timer: u64,
    /// Readiness the reactor reported for this task's fd wait; 0 for none.
    pub(crate) io_events: u32,
    /// What it waits on, for reports: a task id (join) or an fd (I/O).
    pub(crate) waiting_on: u64,
    /// What it waits on when it is `WaitingSync`: the primitive's method,
    /// e.g. `"spindle::sync::Mutex::lock"`.
    pub(crate) waiting_for: &'static str,
    /// The token of [`park`](super::park): set by `unpark`, taken by `park`.
    pub(crate) unparked: bool,
}

/// The state all of a runtime's fibers share; see the module docs.
pub(crate) struct Core {
    pub(crate) tasks: Slab<TaskRecord>,
    /// `hot[k.index()]` belongs to the task `k` while it is in `tasks`;
    /// other entries are leftovers, never read (every reader either holds
    /// a key known to be live, or checks it against `tasks` first).
    pub(crate) hot: Vec<Hot>,
    pub(crate) run_queue: RunQueue,
    pub(crate) sleep_queue: SleepQueue,
    /// Set while the runtime unwinds its remaining fibers.
    pub(crate) shutting_down: bool,
    /// Set when a cancel could not be delivered because the thread was
    /// panicking (see `checkpoint`); `poll` then re-wakes the cancelled
    /// fibers once it is not.
    pub(crate) deferred_cancels: bool,
    /// Tasks spawned so far, the main fibers included.
    pub(crate) spawned: u64,
    /// Tasks finished so far; also the finish order stamped on join slots.
    pub(crate) finished: u64,
}

impl Core {
    /// The hot bytes of a task whose key is known to be live (the running
    /// task's, or one popped from the run queue), without asking the task
    /// table.
    #[inline(always)]
    pub(crate) fn hot_live(&mut self, key: Key) -> &mut Hot {
        debug_assert!(self.tasks.get(key).is_some(), "stale key {key:?}");
        &mut self.hot[key.index()]
    }

    /// The hot bytes of the task `key`, if it is still alive.
    #[inline]
    pub(crate) fn hot(&mut self, key: Key) -> Option<&mut Hot> {
        self.tasks.get(key)?;
        Some(&mut self.hot[key.index()])
    }

    /// Makes a parked task ready. A task that is ready or running already,
    /// or gone, is left alone: wake-ups are idempotent.
    #[inline]
    pub(crate) fn wake(&mut self, key: Key) {
        if let Some(h) = self.hot(key) {
            if h.state.is_parked() {
                h.state = TaskState::Ready;
                self.run_queue.push(key);
            }
        }
    }

    /// Marks a task cancelled and wakes it if it is parked.
    pub(crate) fn cancel(&mut self, key: Key) {
        if let Some(h) = self.hot(key) {
            h.cancel = Cancel::Pending;
            self.wake(key);
        }
    }
}

/// One runtime's scheduler; see the module docs.
pub(crate) struct Scheduler {
    pub(crate) fibers: FiberTable,
    /// Resumes so far (each is one switch into a fiber and one back).
    pub(crate) resumes: Cell<u64>,
    /// When the reactor next looks for fds closed under their waiters.
    pub(crate) closed_fd_check: Cell<ClosedFdCheck>,
    /// Unique per runtime (never reused), so that a [`Key`] kept in a
    /// [`Task`](super::Task) is only looked up in the table it came from.
    pub(crate) id: u64,
    pub(crate) core: RefCell<Core>,
    pub(crate) reactor: Reactor,
    pub(crate) remote: Arc<Remote>,
    /// Stack size of fibers whose builder names none.
    pub(crate) stack_size: usize,
    /// Guard pages of fibers whose builder names none.
    pub(crate) guard_pages: usize,
}

/// Restores the thread-local scheduler pointer when dropped.
pub(crate) struct Enter {
    prev: *const Scheduler,
}

impl Drop for Enter {
    fn drop(&mut self) {
        SCHEDULER.with(|s| s.set(self.prev));
    }
}

/// Runs `f` with the scheduler of the runtime this thread is running.
///
/// # Panics
///
/// Outside a runtime, with a message naming `what`.
#[track_caller]
#[inline(always)]
pub(crate) fn with_scheduler<R>(what: &str, f: impl FnOnce(&Scheduler) -> R) -> R {
    let s = SCHEDULER.with(Cell::get);
    if s.is_null() {
        outside_runtime(what);
    }
    // SAFETY: the pointer is set only by `Scheduler::enter`, whose guard
    // lives in a frame (block_on or the runtime's drop) that borrows the
    // runtime owning the boxed scheduler, and clears it before that borrow
    // ends. So the scheduler is alive, and only shared references to it
    // exist (all mutation goes through its cells).
    f(unsafe { &*s })
}

/// Runs `f` with the scheduler and the running fiber's key.
///
/// Straight-line code with no closure of its own, and `#[inline(always)]`,
/// so that the suspension points built on it (`yield_now`, `sleep`, the
/// waits) inline into the fiber's own frame: a frame that is live across a
/// switch costs a mispredicted return when it returns afterwards, since the
/// CPU's return predictor has seen the other context's calls meanwhile.
///
/// # Panics
///
/// Outside a runtime, or on the scheduler's own stack (for instance in a
/// destructor the scheduler runs), with a message naming `what`.
#[track_caller]
#[inline(always)]
pub(crate) fn with_current<R>(what: &str, f: impl FnOnce(&Scheduler, Key) -> R) -> R {
    let (s, key) = current_raw(what);
    // SAFETY: `current_raw` returns the scheduler of the runtime this thread
    // is running (see `with_scheduler`); the borrow ends with this call.
    f(unsafe { &*s }, key)
}

/// The running fiber's scheduler (as a pointer) and key: the closure-free
/// core of [`with_current`], for the hottest suspension points, which must
/// inline into the fiber's frame whatever the optimiser decides about
/// closures. The pointer is valid for as long as the fiber runs (it is set
/// while the runtime is borrowed by `block_on`, and every fiber ends first);
/// callers dereference it only for the duration of their call.
///
/// # Panics
///
/// As [`with_current`].
#[track_caller]
#[inline(always)]
pub(crate) fn current_raw(what: &str) -> (*const Scheduler, Key) {
    let s = SCHEDULER.with(Cell::get);
    let key = CURRENT.with(Cell::get).key;
    if s.is_null() {
        outside_runtime(what);
    }
    let Some(key) = key else {
        outside_fiber(what);
    };
    (s, key)
}

#[cold]
#[inline(never)]
#[track_caller]
fn outside_runtime(what: &str) -> ! {
    panic!(
        "{what} called outside a spindle runtime; \
         start one with spindle::run or Runtime::block_on"
    )
}

#[cold]
#[inline(never)]
#[track_caller]
fn outside_fiber(what: &str) -> ! {
    panic!("{what} called outside a fiber (on the scheduler's own stack)")
}

/// Runs `f` with the scheduler of the runtime this thread is running, if
/// there is one; never panics.
#[inline]
pub(crate) fn with_scheduler_opt<R>(f: impl FnOnce(&Scheduler) -> R) -> Option<R> {
    let s = SCHEDULER.with(Cell::get);
    if s.is_null() {
        return None;
    }
    // SAFETY: as in `with_scheduler`.
    Some(f(unsafe { &*s }))
}

/// The scheduler and the running fiber's key, if there are both; never
/// panics.
pub(crate) fn try_current<R>(f: impl FnOnce(&Scheduler, Key) -> R) -> Option<R> {
    let s = SCHEDULER.with(Cell::get);
    let key = CURRENT.with(Cell::get).key?;
    if s.is_null() {
        return None;
    }
    // SAFETY: as in `with_scheduler`.
    Some(f(unsafe { &*s }, key))
}

/// Whether this thread is running a runtime right now.
pub(crate) fn in_runtime() -> bool {
    !SCHEDULER.with(Cell::get).is_null()
}

impl Scheduler {
    pub(crate) fn new(stack_size: usize) -> io::Result<Scheduler> {
        let remote = Arc::new(Remote::new()?);
        let reactor = Reactor::new(remote.event_fd())?;
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Ok(Scheduler {
            fibers: FiberTable::new(),
            resumes: Cell::new(0),
            closed_fd_check: Cell::new(ClosedFdCheck::FIRST),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            core: RefCell::new(Core {
                tasks: Slab::new(),
                hot: Vec::new(),
                run_queue: RunQueue::new(),
                sleep_queue: SleepQueue::new(),
                shutting_down: false,
                deferred_cancels: false,
                spawned: 0,
                finished: 0,
            }),
            reactor,
            remote,
            stack_size,
            guard_pages: Stack::DEFAULT_GUARD_PAGES,
        })
    }

    /// Makes this the thread's scheduler until the guard drops.
    ///
    /// # Panics
    ///
    /// If the thread is already running a runtime.
    pub(crate) fn enter(&self) -> Enter {
        let prev = SCHEDULER.with(|s| s.replace(self));
        if !prev.is_null() {
            SCHEDULER.with(|s| s.set(prev));
            panic!(
                "cannot start a spindle runtime from within a runtime (block_on inside a fiber)"
            );
        }
        Enter { prev }
    }

    /// Adds a task whose fiber has not run yet to the back of the run queue.
    #[inline]
    pub(crate) fn insert(&self, fiber: Fiber, id: TaskId, name: Option<Arc<str>>) -> Key {
        let mut core = self.core.borrow_mut();
        let cancel = if core.shutting_down {
            Cancel::Pending
        } else {
            Cancel::No
        };
        let key = core.tasks.insert(TaskRecord {
            id,
            name,
            timer: 0,
            io_events: 0,
            waiting_on: 0,
            waiting_for: "",
            unparked: false,
        });
        let hot = Hot {
            state: TaskState::Ready,
            cancel,
        };
        match core.hot.get_mut(key.index()) {
            Some(h) => *h = hot,
            None => core.hot.push(hot),
        }
        core.run_queue.push(key);
        core.spawned += 1;
        drop(core);
        self.fibers.add(key, fiber);
        key
    }

    /// Called by a task's root when its fiber starts: records the yielder
    /// and returns the task's key, and whether the task was cancelled before
    /// it ever ran (its closure must then not be called).
    pub(crate) fn start(&self, yielder: &FiberYielder) -> (Key, bool) {
        let key = CURRENT
            .with(Cell::get)
            .key
            .expect("a task root runs only when the scheduler resumes it");
        CURRENT.with(|c| {
            c.set(Current {
                yielder,
                key: Some(key),
            })
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

    /// Suspends the running fiber in `state` until something wakes it.
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
        waiting_on: u64,
    ) -> Result<(), Interrupted> {
        {
            let mut core = self.core.borrow_mut();
            let t = core
                .tasks
                .get_mut(key)
                .expect("a running task has a record");
            t.waiting_on = waiting_on;
            core.hot_live(key).state = state;
        }
        self.suspend(key)
    }

    /// Switches from the running fiber `key` (its state already set) to the
    /// scheduler; on return, restores `CURRENT` and checks for a cancel.
    #[inline(always)]
    fn suspend(&self, key: Key) -> Result<(), Interrupted> {
        let cur = CURRENT.with(Cell::get);
        debug_assert!(!cur.yielder.is_null() && cur.key == Some(key));
        // The greenlet resumes under way in this chain are put back when it
        // is resumed, or unwound (see `greenlet`'s "Bookkeeping").
        let greenlets = ChainState::save();
        // SAFETY: `CURRENT` names the running fiber (module docs), and we
        // run on it (or on a coroutine it resumed, which suspends together
        // with it): its yielder is alive in its root frame.
        unsafe { (*cur.yielder).suspend(()) };
        drop(greenlets);
        CURRENT.with(|c| c.set(cur));
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
        self.park(key, TaskState::Ready, 0)
    }

    /// Resumes the task `key`, whatever its state (shutdown). Returns
    /// whether it finished.
    pub(crate) fn resume_any(&self, key: Key) -> bool {
        match self.core.borrow_mut().hot(key) {
            Some(h) => h.state = TaskState::Running,
            None => return false,
        }
        self.resume_running(key)
    }

    /// Resumes `key`, whose state the caller has set to `Running`.
    #[inline(always)]
    fn resume_running(&self, key: Key) -> bool {
        CURRENT.with(|c| {
            c.set(Current {
                yielder: ptr::null(),
                key: Some(key),
            })
        });
        let outcome = self.fibers.resume(key);
        CURRENT.with(|c| c.set(Current::NONE));
        self.resumes.set(self.resumes.get() + 1);
        match outcome {
            Some(CoroutineResult::Yield(())) => false,
            Some(CoroutineResult::Return(())) => {
                // Fiber first (its slot must be free before its index is),
                // then the record; both dropped outside any borrow.
                let fiber = self.fibers.remove(key);
                drop(fiber);
                let record = self.core.borrow_mut().tasks.remove(key);
                drop(record);
                true
            }
            None => false,
        }
    }

    /// Runs fibers until the task `main` has finished.
    ///
    /// # Errors
    ///
    /// The deadlock report, when `main` waits for something nothing can
    /// bring (see [`poll`](Self::poll)).
    pub(crate) fn run(&self, main: Key) -> Result<(), String> {
        loop {
            let budget = self.core.borrow().run_queue.len();
            for _ in 0..budget {
                let key = {
                    let mut core = self.core.borrow_mut();
                    let Some(key) = core.run_queue.pop() else {
                        break;
                    };
                    // Run-queue keys are live (run_queue.rs, invariants).
                    let h = core.hot_live(key);
                    if h.state != TaskState::Ready {
                        continue;
                    }
                    h.state = TaskState::Running;
                    // Start loading what the next two fibers will need:
                    // with thousands of fibers their stacks and records are
                    // out of the cache, and the switch would wait for them.
                    self.fibers
                        .prefetch(core.run_queue.peek(0), core.run_queue.peek(1));
                    key
                };
                if self.resume_running(key) && key == main {
                    return Ok(());
                }
            }
            if self.core.borrow().tasks.get(main).is_none() {
                return Ok(());
            }
            self.poll()?;
        }
    }

    /// A snapshot of every live task, in id order.
    pub(crate) fn snapshot(&self) -> Vec<(Key, TaskId, Option<Arc<str>>, TaskState)> {
        let core = self.core.borrow();
        let mut v: Vec<_> = core
            .tasks
            .iter()
            .map(|(k, t)| (k, t.id, t.name.clone(), core.hot[k.index()].state))
            .collect();
        v.sort_unstable_by_key(|t| t.1);
        v
    }

    /// The id and name of the task under `key` (`None` also if the table
    /// is being changed right now, e.g. when asked from a panic hook).
    pub(crate) fn describe(&self, key: Key) -> Option<(TaskId, Option<Arc<str>>)> {
        let core = self.core.try_borrow().ok()?;
        core.tasks.get(key).map(|t| (t.id, t.name.clone()))
    }

    /// Gives the task `key` its unpark token, waking it if it is parked in
    /// [`park`](super::park).
    pub(crate) fn unpark(&self, key: Key) {
        let mut core = self.core.borrow_mut();
        if let Some(t) = core.tasks.get_mut(key) {
            t.unparked = true;
            if core.hot_live(key).state == TaskState::Parked {
                core.wake(key);
            }
        }
    }

    /// Parks the running task until its unpark token is set, and takes it.
    pub(crate) fn park_until_unparked(&self, key: Key) {
        let take = || {
            let mut core = self.core.borrow_mut();
            let t = core
                .tasks
                .get_mut(key)
                .expect("a running task has a record");
            std::mem::replace(&mut t.unparked, false)
        };
        if self.checkpoint(key).is_err() {
            return;
        }
        while !take() {
            if self.park(key, TaskState::Parked, 0).is_err() {
                return;
            }
        }
    }
}
