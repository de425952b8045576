//! The thread-locals: which scheduler this thread runs, and which fiber is
//! on the CPU.
//!
//! ## Who owns what, and when it may be touched
//!
//! - `SCHEDULER` points at the [`Scheduler`] of the runtime this thread is
//!   running, or is null. It is set by [`Scheduler::enter`] only, whose
//!   guard lives in a frame that borrows the scheduler's owner (`block_on`,
//!   or the runtime's drop) and restores the previous value when dropped.
//!   So the pointer, when not null, names a scheduler that is alive, and
//!   only shared references to it exist (all its mutation goes through
//!   cells).
//! - `CURRENT` holds the running fiber's key and a pointer to its
//!   `Yielder`. The yielder lives in the fiber's root frame (inside the
//!   coroutine layer's entry function), so it is valid for as long as the
//!   fiber has not returned. `CURRENT` is written in exactly three places:
//!   by the scheduler just before each resume (key only, yielder null:
//!   `run.rs`), by the fiber's root when it starts
//!   ([`Scheduler::start`]), and by [`Scheduler::park`] when a fiber comes
//!   back from a suspension (it restores the pair it saved on its own
//!   stack). The scheduler resets it to "none" when the resume returns. So
//!   whenever code runs on a fiber, `CURRENT` names that fiber, and
//!   dereferencing its yielder there is sound; on the scheduler's own stack
//!   it is "none" and the functions below refuse to park.

use std::cell::Cell;
use std::ptr;

use crate::runtime::task::{FiberYielder, Key};

use super::Scheduler;

thread_local! {
    /// The scheduler of the runtime this thread is running, or null.
    static SCHEDULER: Cell<*const Scheduler> = const { Cell::new(ptr::null()) };
    /// The running fiber (see the module docs for the protocol).
    static CURRENT: Cell<Current> = const { Cell::new(Current::NONE) };
}

/// Who is running: a task's key and its yielder.
#[derive(Clone, Copy)]
pub(super) struct Current {
    pub(super) yielder: *const FiberYielder,
    pub(super) key: Option<Key>,
}

impl Current {
    pub(super) const NONE: Current = Current {
        yielder: ptr::null(),
        key: None,
    };
}

/// The running fiber, as `CURRENT` says.
#[inline(always)]
pub(super) fn current() -> Current {
    CURRENT.with(Cell::get)
}

/// Sets `CURRENT` (see the module docs for who may).
#[inline(always)]
pub(super) fn set_current(c: Current) {
    CURRENT.with(|cur| cur.set(c));
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

impl Scheduler {
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
    // SAFETY: see the module docs: a non-null pointer names a live
    // scheduler, borrowed for as long as the pointer is set, which outlasts
    // this call; the reference does not escape `f`.
    f(unsafe { &*s })
}

/// Runs `f` with the scheduler of the runtime this thread is running, if
/// there is one; never panics.
#[inline(always)]
pub(crate) fn with_scheduler_opt<R>(f: impl FnOnce(&Scheduler) -> R) -> Option<R> {
    let s = SCHEDULER.with(Cell::get);
    if s.is_null() {
        return None;
    }
    // SAFETY: as in `with_scheduler`.
    Some(f(unsafe { &*s }))
}

/// The running fiber's scheduler (as a pointer) and key. The pointer is
/// valid for as long as the fiber runs (it is set while the runtime is
/// borrowed by `block_on`, and every fiber ends first).
///
/// Straight-line code with no closure, and `#[inline(always)]`, so that the
/// suspension points built on it (`yield_now`, `sleep`, the waits) inline
/// into the fiber's own frame: a frame that is live across a switch costs a
/// mispredicted return when it returns afterwards, since the CPU's return
/// predictor has seen the other context's calls meanwhile.
///
/// # Panics
///
/// Outside a runtime, or on the scheduler's own stack (for instance in a
/// destructor the scheduler runs), with a message naming `what`.
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

/// The scheduler and the running fiber's key, if there are both; never
/// panics.
#[inline(always)]
pub(crate) fn try_current_raw() -> Option<(*const Scheduler, Key)> {
    let s = SCHEDULER.with(Cell::get);
    let key = CURRENT.with(Cell::get).key?;
    (!s.is_null()).then_some((s, key))
}

/// Whether this thread is running a runtime right now.
pub(crate) fn in_runtime() -> bool {
    !SCHEDULER.with(Cell::get).is_null()
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
