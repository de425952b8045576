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
//! - `slots` is touched only from the scheduler's own frames, and is
//!   mutably borrowed (a `RefCell`) for the whole of each resume. Nothing a
//!   fiber can call reaches it, so that borrow is never contended; were it
//!   ever, the `RefCell` would panic instead of allowing an alias.
//! - A fiber that spawns puts the new fiber in `pending` (another `RefCell`,
//!   borrowed only briefly). The scheduler moves pending fibers into
//!   `slots` the first time it is asked for one of them, before borrowing a
//!   slot for a resume; `slots` therefore only grows while no fiber runs.
//!
//! ## Invariants
//!
//! - The fiber (or start) of the task with key `k` is in `slots[k.index()]`
//!   or in `pending`, never both, from its spawn until the scheduler
//!   removes it; a slot is empty only while the scheduler abandons the
//!   start it took out ([`FiberTable::take_start`], or a failed
//!   [`FiberTable::launch`]), until the task's removal.
//! - A [`Slot::Start`] is never resumed: [`FiberTable::resume`] answers
//!   `None` for it, and the scheduler launches it (`launch.rs`).
//! - A slot is emptied (and the fiber dropped, freeing its stack) before
//!   the task's record leaves the task table, so a slot index is free
//!   again exactly when the task table can reuse it.

use std::cell::RefCell;
use std::io;

use crate::coroutine::CoroutineResult;
use crate::greenlet::ChainState;
use crate::runtime::task::{Fiber, Key, Start};
use crate::stack::Stack;

/// What a task's slot holds.
pub(crate) enum Slot {
    /// It has not started: no stack yet.
    Start(Start),
    /// Its coroutine, started (or being started).
    Fiber(Fiber),
}

/// The fibers of one runtime; see the [module docs](self).
pub(crate) struct FiberTable {
    slots: RefCell<Vec<Option<Slot>>>,
    pending: RefCell<Vec<(Key, Slot)>>,
}

impl FiberTable {
    pub(crate) const fn new() -> FiberTable {
        FiberTable {
            slots: RefCell::new(Vec::new()),
            pending: RefCell::new(Vec::new()),
        }
    }

    /// Adds the start of a task just inserted in the task table.
    #[inline]
    pub(crate) fn add(&self, key: Key, start: Start) {
        self.pending.borrow_mut().push((key, Slot::Start(start)));
    }

    /// Takes the start of `key` out, if the task has not started; the slot
    /// stays empty until the task's removal.
    pub(crate) fn take_start(&self, key: Key) -> Option<Start> {
        let mut slots = self.slots.borrow_mut();
        self.adopt(&mut slots);
        let slot = slots.get_mut(key.index())?;
        match slot.take()? {
            Slot::Start(start) => Some(start),
            fiber => {
                *slot = Some(fiber);
                None
            }
        }
    }

    /// Creates the fiber of `key` from its start, in its slot: `None` if
    /// the task has no start; the start back with the error if no stack
    /// could be had (its slot then stays empty).
    pub(crate) fn launch(&self, key: Key) -> Option<Result<(), (Start, io::Error)>> {
        let mut slots = self.slots.borrow_mut();
        self.adopt(&mut slots);
        let slot = slots.get_mut(key.index())?;
        let Some(Slot::Start(start)) = slot else {
            return None;
        };
        // Taking a stack and creating the coroutine run no user code, so
        // the borrow cannot be asked for again meanwhile. In place: the
        // start is not moved on the way (this is every fiber's first
        // resume).
        Some(match start.launch() {
            Ok(fiber) => {
                // Drops the emptied start (its name only).
                *slot = Some(Slot::Fiber(fiber));
                Ok(())
            }
            Err(e) => match slot.take() {
                Some(Slot::Start(start)) => Err((start, e)),
                _ => unreachable!("the slot held a start"),
            },
        })
    }

    fn adopt(&self, slots: &mut Vec<Option<Slot>>) {
        let mut pending = self.pending.borrow_mut();
        if pending.is_empty() {
            return;
        }
        for (key, fiber) in pending.drain(..) {
            let i = key.index();
            if slots.len() <= i {
                slots.resize_with(i + 1, || None);
            }
            debug_assert!(slots[i].is_none(), "slot {i} still holds a fiber");
            slots[i] = Some(fiber);
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
        let i = key.index();
        if slots.get(i).map_or(true, Option::is_none) {
            self.adopt(&mut slots);
        }
        let Some(Slot::Fiber(fiber)) = slots.get_mut(i)? else {
            return None;
        };
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
        if let Some(Some(Slot::Fiber(fiber))) = next.and_then(|k| slots.get(k.index())) {
            fiber.prefetch();
        }
        if let Some(slot) = after.and_then(|k| slots.get(k.index())) {
            crate::arch::prefetch(slot as *const Option<_> as *const u8);
        }
    }

    /// Takes the fiber (or start) of `key` out (to drop it once no borrow
    /// is held: dropping a suspended fiber runs its destructors).
    pub(crate) fn remove(&self, key: Key) -> Option<Slot> {
        let mut slots = self.slots.borrow_mut();
        self.adopt(&mut slots);
        slots.get_mut(key.index())?.take()
    }

    /// The fiber of `key`, if it has started and is suspended: its stack
    /// size and depth. `Some((size, None))` if it has not started.
    pub(crate) fn stack(&self, key: Key) -> Option<(usize, Option<usize>)> {
        let mut slots = self.slots.borrow_mut();
        self.adopt(&mut slots);
        match slots.get(key.index())?.as_ref()? {
            Slot::Fiber(fiber) => Some((fiber.stack_size(), fiber.stack_in_use())),
            Slot::Start(start) => Some((start.stack_size(), None)),
        }
    }

    /// Runs `f` with the stack of `key`'s fiber (not running: the
    /// scheduler's own frames call this); `None` if the fiber is gone or
    /// has not started (it has no stack yet).
    pub(crate) fn with_stack<R>(&self, key: Key, f: impl FnOnce(&Stack) -> R) -> Option<R> {
        let mut slots = self.slots.borrow_mut();
        self.adopt(&mut slots);
        match slots.get(key.index())?.as_ref()? {
            Slot::Fiber(fiber) => Some(f(fiber.stack())),
            Slot::Start(_) => None,
        }
    }

    /// Whether the task `key` has a fiber that has not started yet or is
    /// suspended (it is not running, and it is not gone).
    pub(crate) fn contains(&self, key: Key) -> bool {
        let mut slots = self.slots.borrow_mut();
        self.adopt(&mut slots);
        slots.get(key.index()).is_some_and(Option::is_some)
    }
}
