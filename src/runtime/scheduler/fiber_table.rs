//! The fiber table: every task's [`Fiber`] (its coroutine and stack), or
//! its [`Start`] until its first resume, indexed like the task table, and
//! the one place fibers are resumed.
//!
//! ## Why a table of its own
//!
//! `Coroutine::resume` takes `&mut self` for the whole time the fiber runs,
//! and the fiber may spawn, which grows the task table. A coroutine kept in
//! the task table would then move under its own resume. Moving it out of
//! its record and back around every resume is sound but costs two copies of
//! the coroutine per switch. Instead, fibers live here, and:
//!
//! - Started fibers are in `slots` (72 bytes each on x86_64: the
//!   coroutine's saved stack pointer, links, name and stack; what every
//!   resume reads); the [`Start`]s of tasks not started yet (about 90
//!   bytes, the closure inline) are in `starts`, indexed the same way, so
//!   the hot table is not widened by them.
//! - `slots` is touched only from the scheduler's own frames, and is
//!   mutably borrowed (a `RefCell`) for the whole of each resume. Nothing a
//!   fiber can call reaches it, so that borrow is never contended; were it
//!   ever, the `RefCell` would panic instead of allowing an alias.
//! - A fiber that spawns puts the new task's start in `pending` (another
//!   `RefCell`, borrowed only briefly). The scheduler moves pending starts
//!   into `starts` the first time it is asked for one of them; a start
//!   becomes a fiber in `slots` at its first resume, while no fiber runs,
//!   so `slots` only grows while no fiber runs.
//!
//! ## Invariants
//!
//! - The start of the task with key `k` is in `pending` or
//!   `starts[k.index()]` from its spawn until its first resume, then its
//!   fiber is in `slots[k.index()]` until the scheduler removes it; never
//!   two of them at once. Neither holds it only while the scheduler
//!   abandons the start it took out ([`FiberTable::take_start`], or a
//!   failed [`FiberTable::launch`]), until the task's removal.
//! - A start is never resumed: [`FiberTable::resume`] answers `None` for
//!   it, and the scheduler launches it (`launch.rs`).
//! - A slot is emptied (and the fiber dropped, freeing its stack) before
//!   the task's record leaves the task table, so a slot index is free
//!   again exactly when the task table can reuse it.

use std::cell::RefCell;
use std::io;

use crate::coroutine::CoroutineResult;
use crate::greenlet::ChainState;
use crate::runtime::task::{Fiber, Key, Start};
use crate::stack::Stack;

/// What a task's entry holds: what [`FiberTable::remove`] hands back, for
/// the caller to drop once no borrow is held (its fields are never read,
/// only dropped).
#[allow(dead_code)]
pub(crate) enum Slot {
    /// It has not started: no stack yet.
    Start(Start),
    /// Its coroutine, started.
    Fiber(Fiber),
}

/// The fibers of one runtime; see the [module docs](self).
pub(crate) struct FiberTable {
    /// The started fibers: what every resume reads, kept apart from the
    /// wider starts.
    slots: RefCell<Vec<Option<Fiber>>>,
    /// The starts of tasks that have not run yet (a closure kept inline:
    /// about 90 bytes each), read only at spawn and first resume.
    starts: RefCell<Vec<Option<Start>>>,
    pending: RefCell<Vec<(Key, Start)>>,
}

impl FiberTable {
    pub(crate) const fn new() -> FiberTable {
        FiberTable {
            slots: RefCell::new(Vec::new()),
            starts: RefCell::new(Vec::new()),
            pending: RefCell::new(Vec::new()),
        }
    }

    /// Adds the start of a task just inserted in the task table.
    #[inline]
    pub(crate) fn add(&self, key: Key, start: Start) {
        self.pending.borrow_mut().push((key, start));
    }

    /// Takes the start of `key` out, if the task has not started; its
    /// entry stays empty until the task's removal.
    pub(crate) fn take_start(&self, key: Key) -> Option<Start> {
        let mut starts = self.starts.borrow_mut();
        self.adopt(&mut starts);
        starts.get_mut(key.index())?.take()
    }

    /// Creates the fiber of `key` from its start, into its slot: `None` if
    /// the task has no start; the start back with the error if no stack
    /// could be had (its entry then stays empty).
    pub(crate) fn launch(&self, key: Key) -> Option<Result<(), (Start, io::Error)>> {
        let i = key.index();
        let mut starts = self.starts.borrow_mut();
        self.adopt(&mut starts);
        let start = starts.get_mut(i)?.as_mut()?;
        // Taking a stack and creating the coroutine run no user code, so
        // the borrows cannot be asked for again meanwhile. In place: the
        // start is not moved on the way (this is every fiber's first
        // resume).
        Some(match start.launch() {
            Ok(fiber) => {
                starts[i] = None; // the emptied start: its name only
                let mut slots = self.slots.borrow_mut();
                if slots.len() <= i {
                    slots.resize_with(i + 1, || None);
                }
                debug_assert!(slots[i].is_none(), "slot {i} still holds a fiber");
                slots[i] = Some(fiber);
                Ok(())
            }
            Err(e) => Err((starts[i].take().expect("the entry held a start"), e)),
        })
    }

    /// Moves the pending starts into `starts`.
    fn adopt(&self, starts: &mut Vec<Option<Start>>) {
        let mut pending = self.pending.borrow_mut();
        if pending.is_empty() {
            return;
        }
        for (key, start) in pending.drain(..) {
            let i = key.index();
            if starts.len() <= i {
                starts.resize_with(i + 1, || None);
            }
            debug_assert!(starts[i].is_none(), "entry {i} still holds a start");
            starts[i] = Some(start);
        }
    }

    /// Resumes the fiber of `key` until it suspends or returns; `None` if
    /// there is no such fiber, or it has not started (a [`Slot::Start`]).
    ///
    /// # Panics
    ///
    /// If called while a fiber runs (from a fiber): the scheduler alone
    /// resumes fibers.
    #[inline(always)]
    pub(crate) fn resume(&self, key: Key) -> Option<CoroutineResult<(), ()>> {
        let mut slots = self.slots.borrow_mut();
        let fiber = slots.get_mut(key.index())?.as_mut()?;
        // The task runs with its own greenlet state, and the resumer gets
        // its own back (see `greenlet`'s "Bookkeeping").
        let _resumer = ChainState::detach();
        Some(fiber.resume(()))
    }

    /// Starts loading what the next resumes will touch first: the saved
    /// frame on the stack of `next` (whose record here is read for its stack
    /// pointer), and the record of `after` (so that, one resume later, that
    /// read finds it in the cache). A hint for the scheduler, which knows the
    /// order; fibers not in `slots` yet are skipped.
    #[inline(always)]
    pub(crate) fn prefetch(&self, next: Option<Key>, after: Option<Key>) {
        let Ok(slots) = self.slots.try_borrow() else {
            return;
        };
        if let Some(Some(fiber)) = next.and_then(|k| slots.get(k.index())) {
            fiber.prefetch();
        }
        if let Some(slot) = after.and_then(|k| slots.get(k.index())) {
            crate::arch::prefetch(slot as *const Option<_> as *const u8);
        }
    }

    /// Takes the fiber (or start) of `key` out (to drop it once no borrow
    /// is held: dropping a suspended fiber runs its destructors).
    pub(crate) fn remove(&self, key: Key) -> Option<Slot> {
        let i = key.index();
        if let Some(fiber) = self.slots.borrow_mut().get_mut(i).and_then(Option::take) {
            return Some(Slot::Fiber(fiber));
        }
        let mut starts = self.starts.borrow_mut();
        self.adopt(&mut starts);
        starts.get_mut(i)?.take().map(Slot::Start)
    }

    /// The fiber of `key`, if it has started and is suspended: its stack
    /// size and depth. `Some((size, None))` if it has not started.
    pub(crate) fn stack(&self, key: Key) -> Option<(usize, Option<usize>)> {
        let i = key.index();
        if let Some(Some(fiber)) = self.slots.borrow_mut().get(i) {
            return Some((fiber.stack_size(), fiber.stack_in_use()));
        }
        let mut starts = self.starts.borrow_mut();
        self.adopt(&mut starts);
        let start = starts.get(i)?.as_ref()?;
        Some((start.stack_size(), None))
    }

    /// Runs `f` with the stack of `key`'s fiber (not running: the
    /// scheduler's own frames call this); `None` if the fiber is gone or
    /// has not started (it has no stack yet).
    pub(crate) fn with_stack<R>(&self, key: Key, f: impl FnOnce(&Stack) -> R) -> Option<R> {
        let slots = self.slots.borrow_mut();
        let fiber = slots.get(key.index())?.as_ref()?;
        Some(f(fiber.stack()))
    }

    /// Whether the task `key` has a fiber that has not started yet or is
    /// suspended (it is not running, and it is not gone).
    pub(crate) fn contains(&self, key: Key) -> bool {
        let i = key.index();
        if self.slots.borrow_mut().get(i).is_some_and(Option::is_some) {
            return true;
        }
        let mut starts = self.starts.borrow_mut();
        self.adopt(&mut starts);
        starts.get(i).is_some_and(Option::is_some)
    }
}
