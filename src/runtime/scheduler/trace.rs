//! Taking a dump: the backtrace of every suspended fiber, taken on its own
//! stack without waking it.
//!
//! ## The protocol
//!
//! 1. The fiber that asks ([`Scheduler::dump`]) captures its own backtrace,
//!    leaves it in `TraceState::capture`, raises `requested` and suspends
//!    to the scheduler *without* changing its state (it stays `Running`,
//!    and is in no queue).
//! 2. The scheduler, back in `resume_running`, sees `requested`
//!    ([`Scheduler::serve_dump`]). For every other live task whose fiber
//!    has started, it raises `tracing` and resumes that fiber. The fiber
//!    comes back inside its one suspension point (`Scheduler::suspend`),
//!    sees `tracing`, captures its backtrace on its own stack, and
//!    suspends again at once ([`Scheduler::trace_while_requested`]). It
//!    never leaves that loop while `tracing` is set, so the code that
//!    parked it does not run: its state, its timer, its registrations and
//!    its wake-ups are untouched (no early wake-up, none lost).
//! 3. The scheduler resolves every capture (on its own stack: symbolising
//!    is deep and slow), stores the list, and resumes the asking fiber
//!    straight away, which takes the list.
//!
//! The deadlock report takes the same traces ([`Scheduler::trace_all`] with
//! no asker), from the scheduler's stack when every fiber is suspended, and
//! so does a dump asked for by another thread (a `Message::Dump` in the
//! inbox, served between two rounds by `take_messages`).
//!
//! Until a dump is asked for, this costs one load of a `Cell<bool>` and a
//! never-taken branch on each side of each switch.

use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};
use std::time::Instant;

use crate::runtime::task::trace::{self, Frame};
use crate::runtime::task::{FiberTrace, Key};
use crate::stack::{HighWater, Stack};

use super::context::{current, set_current, Current};
use super::Scheduler;

/// The scheduler's side of the protocol; see the [module docs](self).
pub(super) struct TraceState {
    /// The running fiber has asked for a dump.
    requested: Cell<bool>,
    /// The fiber being resumed is resumed only to capture its backtrace.
    tracing: Cell<bool>,
    /// The last capture, from the fiber that took it to the scheduler.
    capture: RefCell<Option<Backtrace>>,
    /// The finished dump, from the scheduler to the fiber that asked.
    result: RefCell<Vec<FiberTrace>>,
}

impl TraceState {
    pub(super) const fn new() -> TraceState {
        TraceState {
            requested: Cell::new(false),
            tracing: Cell::new(false),
            capture: RefCell::new(None),
            result: RefCell::new(Vec::new()),
        }
    }

    /// Whether the fiber just suspended asked for a dump.
    #[inline(always)]
    pub(super) fn requested(&self) -> bool {
        self.requested.get()
    }
}

impl Scheduler {
    /// Step 1: called on the running fiber `key`; returns every live
    /// fiber, this one included, in id order.
    pub(crate) fn dump(&self, key: Key) -> Vec<FiberTrace> {
        *self.trace.capture.borrow_mut() = Some(trace::capture());
        self.trace.requested.set(true);
        let cur = current();
        debug_assert!(!cur.yielder.is_null() && cur.key == Some(key));
        // SAFETY: as in `suspend`: `CURRENT` names the running fiber, whose
        // yielder is alive in its root frame. The scheduler resumes this
        // fiber right after serving the request (`serve_dump`).
        unsafe { (*cur.yielder).suspend(()) };
        set_current(cur);
        std::mem::take(&mut *self.trace.result.borrow_mut())
    }

    /// Step 2, the traced fiber's side: called by `suspend` each time the
    /// fiber is resumed, before anything else. While the resume is only a
    /// trace, captures and suspends again.
    #[inline(always)]
    pub(super) fn trace_while_requested(&self, cur: Current) {
        while self.trace.tracing.get() {
            self.capture_and_suspend(cur);
        }
    }

    #[inline(never)]
    #[cold]
    fn capture_and_suspend(&self, cur: Current) {
        *self.trace.capture.borrow_mut() = Some(trace::capture());
        // SAFETY: `cur` is what `CURRENT` named when this fiber suspended
        // (it is suspended inside `suspend`, in its own frames), so its
        // yielder is alive in the fiber's root frame.
        unsafe { (*cur.yielder).suspend(()) };
    }

    /// Steps 2 and 3, the scheduler's side: traces every started fiber but
    /// `asker`, and leaves the dump for it.
    #[cold]
    #[inline(never)]
    pub(super) fn serve_dump(&self, asker: Key) {
        self.trace.requested.set(false);
        let own = self.trace.capture.borrow_mut().take();
        let out = self.trace_all(Some((asker, own)));
        *self.trace.result.borrow_mut() = out;
    }

    /// Every live task with its frames, in id order; called on the
    /// scheduler's stack. `asker` is the fiber that asked for a dump (not
    /// resumed: it brought its own capture), if any.
    pub(super) fn trace_all(&self, asker: Option<(Key, Option<Backtrace>)>) -> Vec<FiberTrace> {
        let (asker, own) = match asker {
            Some((key, own)) => (Some(key), own),
            None => (None, None),
        };
        let mut out = Vec::new();
        let now = Instant::now();
        let deadlines = self.core.borrow().deadlines();
        for (key, info) in self.snapshot() {
            let Some((stack_size, stack_used)) = self.fibers.stack(key) else {
                continue;
            };
            let spawned_at = self.core.borrow().tasks.get(key).map(|t| t.spawned_at);
            let Some(spawned_at) = spawned_at else {
                continue;
            };
            // Measured before the trace, whose capture writes below the
            // fiber's stack pointer.
            let high_water = self
                .fibers
                .with_stack(key, Stack::high_water)
                .map(|hw| hw.at_least(stack_used.unwrap_or(0)));
            let frames = if Some(key) == asker {
                own.as_ref().map(resolve)
            } else if stack_used.is_some() {
                Some(self.trace_one(key, high_water))
            } else {
                None
            };
            out.push(FiberTrace {
                info,
                spawned_at,
                stack_size,
                stack_used: if Some(key) == asker { None } else { stack_used },
                stack_high_water: high_water,
                timer: deadlines
                    .get(&key)
                    .map(|d| d.saturating_duration_since(now)),
                frames: frames.unwrap_or_default(),
            });
        }
        out
    }
}

impl Scheduler {
    /// The frames of the suspended, started fiber `key`, taken on its own
    /// stack (step 2 for one fiber); called on the scheduler's stack (for a
    /// dump, and for the watchdog's report of a fiber that blocked).
    ///
    /// `before` is the fiber's stack high-water mark measured before the
    /// trace: what the capture wrote below the fiber's stack pointer is
    /// erased again, so the mark stays true.
    pub(super) fn trace_one(&self, key: Key, before: Option<HighWater>) -> Vec<Frame> {
        set_current(Current {
            yielder: std::ptr::null(),
            key: Some(key),
        });
        self.trace.tracing.set(true);
        let _ = self.fibers.resume(key);
        self.trace.tracing.set(false);
        set_current(Current::NONE);
        if let (Some(before), Some((_, Some(in_use)))) = (before, self.fibers.stack(key)) {
            // SAFETY: the fiber is suspended again, `in_use` bytes below its
            // base: below that is dead.
            self.fibers
                .with_stack(key, |s| unsafe { s.forget_writes_below(before, in_use) });
        }
        let capture = self.trace.capture.borrow_mut().take();
        capture.as_ref().map(resolve).unwrap_or_default()
    }
}

/// Symbolises a capture (on the scheduler's stack) and keeps the fiber's
/// own frames.
fn resolve(b: &Backtrace) -> Vec<Frame> {
    trace::parse_frames(&b.to_string())
}
