//! The inbox of a scheduler: how a thread that is not running it wakes one
//! of its fibers, cancels one, or has it run a closure (a remote spawn).
//!
//! Each scheduler has one [`Remote`] (in an `Arc`): a lock-free queue of
//! [`Message`]s, a non-blocking eventfd that sits in the scheduler's epoll
//! set, a `sleeping` flag, and counters other threads read. Any thread may
//! [`send`](Remote::send); only the owning scheduler takes messages
//! ([`Remote::take`]), between two rounds.
//!
//! ## The queue
//!
//! A Treiber stack: `send` pushes a node with one compare-and-swap
//! (`Release`); `take` swaps the whole list out (`Acquire`) and reverses it,
//! so messages come out in the order they were sent (per sender). No lock,
//! no bound; one allocation per message.
//!
//! ## Waking a sleeping scheduler: the handshake
//!
//! The eventfd is written only when the scheduler is asleep or about to be,
//! so a busy scheduler costs its senders no system call:
//!
//! ```text
//!   sender                              scheduler (about to block in epoll)
//!   push the message       (W head)     sleeping = true            (W sleeping)
//!   fence(SeqCst)                       fence(SeqCst)
//!   if sleeping.swap(false):  (R)       if the queue is not empty:  (R head)
//!       write the eventfd                   sleeping = false; do not block
//!                                       else block; then sleeping = false
//! ```
//!
//! Why no wake-up is lost: the two `SeqCst` fences are totally ordered. If
//! the sender's fence comes first, its push (before it) is visible to the
//! scheduler's read of the queue (after its own fence), and the scheduler
//! does not block. If the scheduler's fence comes first, its store of
//! `sleeping` is visible to the sender's read, and the sender writes the
//! eventfd, which ends (or pre-empts) the `epoll_wait`. Both may happen;
//! then the eventfd is written once too often, which costs one empty poll.
//! The `swap` makes the write happen once per sleep, whatever the number of
//! senders.
//!
//! ## Who owns what
//!
//! - `head`: pushed by any thread; taken by the owning scheduler alone (and,
//!   once no scheduler owns it any more, by the runtime's drop).
//! - `sleeping`: set and cleared by the owning scheduler around its blocking
//!   poll; cleared (`swap`) by the one sender that then writes the eventfd.
//! - `wakers`: incremented by whoever hands out a [`RemoteWaker`] (on the
//!   scheduler's thread), decremented on whatever thread drops one. The
//!   deadlock check reads it: while another thread holds a waker, something
//!   may yet wake a fiber, so blocking in epoll is right.
//! - `live` and `in_flight`: the scheduler's live task count (stored by it
//!   after every spawn and finish) and the remote spawns sent to it and not
//!   taken yet (added by senders, subtracted when taken); read by the
//!   placement of a multi-worker runtime.
//! - `all_idle`: set once by the runtime before its workers serve; read by
//!   the owning scheduler (see `idle.rs`).
//! - `event_fd`: written by senders, read (drained) by the reactor. It
//!   belongs to the `Remote`, not to the reactor, so a thread that sends
//!   after its runtime is gone writes to a descriptor that is still open
//!   (and that nobody reads) instead of one that may have been reused.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;
use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crate::runtime::task::{FiberTrace, Key};

use super::idle::{AllIdle, Inbox};

/// What another thread asks of a scheduler.
pub(crate) enum Message {
    /// Make the task ready if it is parked (a remote waker fired). Wake-ups
    /// may be spurious for the fiber, which re-checks its condition.
    Wake(Key),
    /// Cancel the task (a `Send` handle's `cancel`).
    Cancel(Key),
    /// Run the closure on the scheduler's thread, between two rounds, with
    /// the scheduler entered: a remote spawn.
    Run(Box<dyn FnOnce() + Send>),
    /// Stop serving: the worker loop returns to shut its fibers down.
    Stop,
    /// Trace every fiber (between two rounds, on the scheduler's stack, as
    /// the deadlock report does) and hand the traces to the closure: a dump
    /// asked for by another thread. Dropped untaken (the scheduler is gone),
    /// the closure is dropped uncalled, which its owner sees.
    Dump(Box<dyn FnOnce(Vec<FiberTrace>) + Send>),
    /// Every worker is idle for good: worker 0 is to look for a deadlock
    /// across workers (see `idle.rs`). Taking it is all it asks.
    AllIdle,
}

struct Node {
    message: Message,
    next: *mut Node,
}

/// The inbox of one scheduler; see the [module docs](self).
pub(crate) struct Remote {
    head: AtomicPtr<Node>,
    sleeping: AtomicBool,
    event_fd: OwnedFd,
    wakers: AtomicUsize,
    live: AtomicUsize,
    in_flight: AtomicUsize,
    /// The idle count of the runtime's workers, set once when the runtime
    /// has more than one (see `idle.rs`).
    all_idle: OnceLock<Arc<AllIdle>>,
}

// `Remote` is `Send` and `Sync` by its fields (the queue is an `AtomicPtr`).
// That is sound for the messages it holds: each is `Send`, moves in through
// `send` on one thread and out through `take` on the owner's, and no two
// threads ever reach the same node (a pushed node is touched again only by
// the one `take` that swapped it out).

impl Remote {
    pub(crate) fn new() -> io::Result<Remote> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("eventfd for cross-thread wake-ups: {e}"),
            ));
        }
        Ok(Remote {
            head: AtomicPtr::new(ptr::null_mut()),
            sleeping: AtomicBool::new(false),
            // SAFETY: `fd` is a new descriptor that nothing else owns.
            event_fd: unsafe { OwnedFd::from_raw_fd(fd) },
            wakers: AtomicUsize::new(0),
            live: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            all_idle: OnceLock::new(),
        })
    }

    pub(crate) fn event_fd(&self) -> RawFd {
        self.event_fd.as_raw_fd()
    }

    /// A waker for the task `key`, counted until it is dropped.
    pub(crate) fn waker(self: &Arc<Remote>, key: Key) -> RemoteWaker {
        self.wakers.fetch_add(1, Ordering::Relaxed);
        RemoteWaker {
            remote: Arc::clone(self),
            key,
        }
    }

    /// Queues `message` and, if the scheduler is asleep (or about to be),
    /// wakes it: the sender's half of the handshake in the module docs.
    pub(crate) fn send(&self, message: Message) {
        if let Message::Run(_) = message {
            self.in_flight.fetch_add(1, Ordering::Relaxed);
        }
        let node = Box::into_raw(Box::new(Node {
            message,
            next: ptr::null_mut(),
        }));
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: `node` is ours until the CAS below publishes it.
            unsafe { (*node).next = head };
            match self
                .head
                .compare_exchange_weak(head, node, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(h) => head = h,
            }
        }
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) && self.sleeping.swap(false, Ordering::Relaxed) {
            let one = 1u64;
            // SAFETY: writes 8 bytes from `one` to an eventfd the Remote
            // owns (so it is open). EAGAIN would mean the counter is about
            // to overflow, i.e. a wake-up is already pending: ignoring it is
            // right.
            unsafe {
                crate::sys::write(
                    self.event_fd(),
                    &one as *const u64 as *const libc::c_void,
                    8,
                )
            };
        }
    }

    /// Whether a message is waiting (a hint: a sender may be pushing).
    #[inline(always)]
    pub(crate) fn has_messages(&self) -> bool {
        !self.head.load(Ordering::Relaxed).is_null()
    }

    /// Takes every message sent so far, oldest first. For the owning
    /// scheduler only (see "Who owns what").
    #[inline]
    pub(crate) fn take(&self) -> Vec<Message> {
        if !self.has_messages() {
            return Vec::new();
        }
        // Acquire: the messages' contents. Release: the idle count's
        // `leave` before it, for `idle.rs`'s check.
        let mut node = self.head.swap(ptr::null_mut(), Ordering::AcqRel);
        let mut out = Vec::new();
        while !node.is_null() {
            // SAFETY: the swap made this list ours alone: every node in it
            // was published by a sender's `Release` CAS, which our `Acquire`
            // swap synchronises with, and no sender touches a node after
            // publishing it.
            let boxed = unsafe { Box::from_raw(node) };
            node = boxed.next;
            out.push(boxed.message);
        }
        out.reverse();
        let runs = out.iter().filter(|m| matches!(m, Message::Run(_))).count();
        if runs > 0 {
            self.in_flight.fetch_sub(runs, Ordering::Relaxed);
        }
        out
    }

    /// The scheduler's half of the handshake, just before it blocks: marks
    /// it asleep, and returns `false` (clearing the mark again) if a message
    /// is already waiting, in which case it must not block.
    pub(crate) fn prepare_sleep(&self) -> bool {
        self.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if self.has_messages() {
            self.sleeping.store(false, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// The scheduler is awake again (after a blocking poll).
    pub(crate) fn awake(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
    }

    /// Whether another thread may still wake a fiber: a waker is alive, or
    /// a message is queued.
    pub(crate) fn may_wake(&self) -> bool {
        // Acquire pairs with the Release decrement in RemoteWaker::drop,
        // which comes after its send: a count of 0 means every message
        // sent by a dropped waker is visible to the check below.
        self.wakers.load(Ordering::Acquire) > 0 || self.has_messages()
    }

    /// Joins the idle count of a runtime's workers (once, before the
    /// worker serves).
    pub(crate) fn set_all_idle(&self, all_idle: Arc<AllIdle>) {
        let _ = self.all_idle.set(all_idle);
    }

    /// The idle count of the runtime's workers, if it has several.
    #[inline]
    pub(crate) fn all_idle(&self) -> Option<&AllIdle> {
        self.all_idle.get().map(|a| &**a)
    }

    /// Records the scheduler's number of live tasks (its own thread only).
    #[inline(always)]
    pub(crate) fn set_live(&self, n: usize) {
        self.live.store(n, Ordering::Relaxed);
    }

    /// The scheduler's live tasks plus the remote spawns on their way to
    /// it: its load, for placement.
    pub(crate) fn load(&self) -> usize {
        self.live.load(Ordering::Relaxed) + self.in_flight.load(Ordering::Relaxed)
    }
}

impl Inbox for Remote {
    /// For the check of `idle.rs`, which pairs it with the `Release` half
    /// of `take`'s swap.
    fn has_messages_acquire(&self) -> bool {
        !self.head.load(Ordering::Acquire).is_null()
    }

    fn send_all_idle(&self) {
        self.send(Message::AllIdle);
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        // Messages nobody will take: dropped here (a remote spawn's closure
        // then reports its fiber cancelled to its handle).
        drop(self.take());
    }
}

/// Wakes one fiber from another thread. `Send`; counted by its [`Remote`]
/// while it lives.
pub(crate) struct RemoteWaker {
    remote: Arc<Remote>,
    key: Key,
}

impl RemoteWaker {
    /// The inbox it sends to.
    pub(crate) fn remote(&self) -> &Arc<Remote> {
        &self.remote
    }

    /// The task it wakes.
    pub(crate) fn key(&self) -> Key {
        self.key
    }

    /// Sends the wake-up (see [`Remote::send`]).
    pub(crate) fn wake(&self) {
        self.remote.send(Message::Wake(self.key));
    }
}

impl Drop for RemoteWaker {
    fn drop(&mut self) {
        self.remote.wakers.fetch_sub(1, Ordering::Release);
    }
}
