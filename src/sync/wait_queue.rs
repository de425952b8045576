//! The FIFO of parked fibers that every primitive of [`spindle::sync`](super)
//! is built on.
//!
//! A fiber that must wait puts a [`Waiter`] on its own stack, links it into
//! the primitive's [`WaitQueue`] and parks. Whoever changes the primitive's
//! state *notifies* waiters from the front: a notified waiter is unlinked,
//! marked notified (with what it was granted, where that matters) and woken.
//! The queue allocates nothing per wait; its `VecDeque` of pointers grows
//! to the largest number of simultaneous waiters and stays there.
//!
//! ## Invariants
//!
//! - A pointer is in the queue exactly while its waiter is waiting: from
//!   [`WaitQueue::wait`] linking it until a notification unlinks it or the
//!   wait's guard does, on every way out of the wait (return, timeout,
//!   cancellation unwind). The waiter lives in the frame of that `wait`
//!   call, below the guard, so it outlives its time in the queue. Waiting
//!   fibers are suspended, and the queue is `!Send` (it holds raw
//!   pointers), so nothing else ever runs on their stacks while the queue
//!   points into them.
//! - `notified` is set only by the queue, when it unlinks the waiter.
//!
//! ## Passing a notification on
//!
//! A waiter can be notified and then cancelled before it runs: it unwinds
//! out of its wait instead of taking what it was given (a lock handed over,
//! permits granted, a message it was told about). [`WaitQueue::wait`] then
//! calls the primitive's `on_abandon` with the grant, on the unwinding
//! fiber, so the primitive can give it back or pass the notification on.
//! That is how a cancelled waiter never loses a permit, a lock or a wake-up.
//!
//! ## Waiting on several queues at once
//!
//! [`wait_any`] (what [`select!`](crate::select) parks in) links one
//! waiter per queue, all naming the same fiber, and parks until any of
//! them is notified. On every way out it unlinks the waiters that were not
//! notified. A queue that notified one of them may have done so instead of
//! notifying another waiter; so the caller gets the set of queues that
//! notified it and must pass on ([`WaitQueue::notify_one`]) each
//! notification it does not use, and if the fiber unwinds out of the wait
//! instead, `wait_any` passes every one of them on itself. This fits
//! queues whose notifications are hints ("look again": a channel's), not
//! grants that transfer ownership (a lock's): a passed-on hint at worst
//! wakes a waiter that finds nothing and waits again.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::ptr::NonNull;
use std::time::Instant;

use crate::runtime::wait::{LocalWaker, Parker};

/// One parked fiber, on its own stack; see the [module docs](self).
struct Waiter {
    waker: LocalWaker,
    /// What the waiter asks for (permits, for a semaphore; 0 elsewhere).
    request: usize,
    /// Set when the queue unlinks it with a notification.
    notified: Cell<bool>,
}

/// How [`WaitQueue::wait`] ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Waited {
    /// Notified: the primitive gave this waiter what it waited for.
    Notified,
    /// The deadline passed first.
    TimedOut,
    /// The runtime is shutting down and the fiber is already unwinding, so
    /// it could not park.
    Interrupted,
}

/// A FIFO of parked fibers; see the [module docs](self).
pub(crate) struct WaitQueue {
    list: RefCell<VecDeque<NonNull<Waiter>>>,
}

impl std::fmt::Debug for WaitQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitQueue")
            .field("waiters", &self.len())
            .finish()
    }
}

/// Unlinks the waiter on every way out of [`WaitQueue::wait`], and hands an
/// abandoned notification back to the primitive.
struct Registration<'a, F: FnOnce()> {
    queue: &'a WaitQueue,
    waiter: &'a Waiter,
    on_abandon: Option<F>,
}

impl<F: FnOnce()> Drop for Registration<'_, F> {
    fn drop(&mut self) {
        if self.waiter.notified.get() {
            // Unlinked by the notification, and still armed: we are
            // unwinding out of the wait, so the grant was never taken.
            if let Some(f) = self.on_abandon.take() {
                f();
            }
        } else {
            let me = NonNull::from(self.waiter);
            let mut list = self.queue.list.borrow_mut();
            if let Some(pos) = list.iter().position(|&w| w == me) {
                list.remove(pos);
            }
        }
    }
}

impl WaitQueue {
    /// An empty queue; allocates nothing.
    pub(crate) const fn new() -> WaitQueue {
        WaitQueue {
            list: RefCell::new(VecDeque::new()),
        }
    }

    /// Number of waiting fibers.
    pub(crate) fn len(&self) -> usize {
        self.list.borrow().len()
    }

    /// Whether no fiber waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.list.borrow().is_empty()
    }

    /// What the first waiter asks for, if there is one.
    pub(crate) fn front_request(&self) -> Option<usize> {
        let list = self.list.borrow();
        // SAFETY: a pointer in the queue points at a live waiter (module
        // docs, invariants); we only read it.
        list.front().map(|w| unsafe { w.as_ref() }.request)
    }

    /// Notifies the first waiter: unlinks it, marks it notified and wakes
    /// it. Returns whether there was one.
    pub(crate) fn notify_one(&self) -> bool {
        let Some(w) = self.list.borrow_mut().pop_front() else {
            return false;
        };
        // SAFETY: the waiter was in the queue, so it is alive (invariants);
        // it is on a suspended fiber's stack and only read through `&`.
        let waiter = unsafe { w.as_ref() };
        waiter.notified.set(true);
        waiter.waker.wake();
        true
    }

    /// Notifies every waiter, in order. Returns how many there were.
    pub(crate) fn notify_all(&self) -> usize {
        let all = std::mem::take(&mut *self.list.borrow_mut());
        let n = all.len();
        for w in all {
            // SAFETY: as in `notify_one`.
            let waiter = unsafe { w.as_ref() };
            waiter.notified.set(true);
            waiter.waker.wake();
        }
        n
    }

    /// Parks the running fiber at the back of the queue until it is
    /// notified, `deadline` passes, or the runtime shuts down.
    ///
    /// `request` is what the waiter asks for ([`front_request`]
    /// (Self::front_request) shows it to the primitive). `registered` runs
    /// once the waiter is linked and before it first parks (a condition
    /// variable releases its mutex there). `on_abandon` runs if the fiber
    /// was notified but unwinds (cancelled) before taking what it was given
    /// (see the [module docs](self)). `what` names the wait for
    /// [`tasks`](crate::tasks) and the deadlock report.
    ///
    /// A notification wins over a deadline that passed at the same time.
    ///
    /// # Panics
    ///
    /// As a cancellation point: unwinds the fiber if it is cancelled, before
    /// or during the wait.
    #[inline(always)]
    pub(crate) fn wait(
        &self,
        p: &Parker,
        what: &'static str,
        request: usize,
        deadline: Option<Instant>,
        registered: impl FnOnce(),
        on_abandon: impl FnOnce(),
    ) -> Waited {
        if p.checkpoint().is_err() {
            registered();
            return Waited::Interrupted;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            registered();
            return Waited::TimedOut;
        }
        let waiter = Waiter {
            waker: p.waker(),
            request,
            notified: Cell::new(false),
        };
        self.list.borrow_mut().push_back(NonNull::from(&waiter));
        let mut registration = Registration {
            queue: self,
            waiter: &waiter,
            on_abandon: Some(on_abandon),
        };
        registered();
        let timer = deadline.map(|d| p.timer(d));
        loop {
            let parked = p.park(what);
            if waiter.notified.get() {
                registration.on_abandon = None; // the grant is taken
                return Waited::Notified;
            }
            if parked.is_err() {
                return Waited::Interrupted;
            }
            if timer.as_ref().is_some_and(|t| t.fired()) {
                return Waited::TimedOut;
            }
        }
    }
}

/// One waiter of [`wait_any`] and the queue it waits in, with a `tag` for
/// the caller (which operation it belongs to). The caller keeps the slots
/// in a slice that `wait_any` borrows, so they stay put while linked.
pub(crate) struct WaitSlot<'q> {
    queue: &'q WaitQueue,
    waiter: Waiter,
    tag: usize,
}

impl<'q> WaitSlot<'q> {
    /// A slot for the fiber of `p` in `queue`, not linked.
    pub(crate) fn new(p: &Parker, queue: &'q WaitQueue, tag: usize) -> WaitSlot<'q> {
        WaitSlot {
            queue,
            waiter: Waiter {
                waker: p.waker(),
                request: 0,
                notified: Cell::new(false),
            },
            tag,
        }
    }

    /// The queue this slot waits in.
    pub(crate) fn queue(&self) -> &'q WaitQueue {
        self.queue
    }

    /// The caller's tag.
    pub(crate) fn tag(&self) -> usize {
        self.tag
    }

    /// Whether the queue notified this slot in the last [`wait_any`].
    pub(crate) fn notified(&self) -> bool {
        self.waiter.notified.get()
    }
}

/// Unlinks the waiters of [`wait_any`] on every way out, and passes on
/// the notifications of an abandoned wait.
struct Registrations<'a, 'q> {
    slots: &'a [WaitSlot<'q>],
    /// Whether the notifications received must be passed on (the wait is
    /// being abandoned rather than returning them to the caller).
    pass_on: bool,
}

impl Drop for Registrations<'_, '_> {
    fn drop(&mut self) {
        for slot in self.slots {
            if slot.waiter.notified.get() {
                if self.pass_on {
                    slot.queue.notify_one();
                }
            } else {
                let me = NonNull::from(&slot.waiter);
                let mut list = slot.queue.list.borrow_mut();
                if let Some(pos) = list.iter().position(|&w| w == me) {
                    list.remove(pos);
                }
            }
        }
    }
}

/// Parks the running fiber in every slot's queue until one of them
/// notifies it, `deadline` passes, or the runtime shuts down (see the
/// [module docs](self), "Waiting on several queues at once"). The slots
/// must name the running fiber (made with its [`Parker`]).
///
/// `registered` runs once every slot is linked and before the fiber first
/// parks. On [`Waited::Notified`], [`WaitSlot::notified`] says which
/// queues notified the fiber (at least one did), and the caller owns those
/// notifications: it must pass on each it does not use. On every other way
/// out, including an unwind, nothing is owed. Two slots may share a queue.
///
/// # Panics
///
/// As [`WaitQueue::wait`].
pub(crate) fn wait_any(
    p: &Parker,
    what: &'static str,
    slots: &[WaitSlot<'_>],
    deadline: Option<Instant>,
    registered: impl FnOnce(),
) -> Waited {
    for slot in slots {
        slot.waiter.notified.set(false);
    }
    if p.checkpoint().is_err() {
        return Waited::Interrupted;
    }
    if deadline.is_some_and(|d| Instant::now() >= d) {
        return Waited::TimedOut;
    }
    for slot in slots {
        slot.queue
            .list
            .borrow_mut()
            .push_back(NonNull::from(&slot.waiter));
    }
    let mut registrations = Registrations {
        slots,
        pass_on: true,
    };
    registered();
    let timer = deadline.map(|d| p.timer(d));
    loop {
        let parked = p.park(what);
        if slots.iter().any(WaitSlot::notified) {
            registrations.pass_on = false; // the caller owns them now
            return Waited::Notified;
        }
        if parked.is_err() {
            return Waited::Interrupted;
        }
        if timer.as_ref().is_some_and(|t| t.fired()) {
            return Waited::TimedOut;
        }
    }
}
