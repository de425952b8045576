//! Channels between the fibers of one runtime, in the shape of
//! `std::sync::mpsc`: [`channel`] (unbounded) and [`sync_channel`]
//! (bounded; a full channel parks the sender).
//!
//! ## State and invariants
//!
//! Both ends share one `Chan` behind an `Rc`: the buffer (a `VecDeque`), its
//! capacity, a count of live senders, whether the receiver lives, a queue of
//! parked receivers and one of parked senders.
//!
//! - A message is in the buffer from the `send` that put it there until a
//!   `recv` takes it out. Nothing else moves messages: a parked receiver is
//!   only *told* that the buffer changed and takes the message itself when
//!   it runs. So a receiver cancelled while it waits leaves every message
//!   where it was.
//! - Every change a waiter could be waiting for notifies: a send notifies
//!   one receiver; a receive notifies one sender (all of them on a
//!   rendezvous channel, whose senders wait for different things); the last
//!   sender going notifies every receiver, and the receiver going notifies
//!   every sender. A notified waiter that is cancelled before it runs passes
//!   its notification on ([`wait_queue`](super::wait_queue)).
//! - Rendezvous (capacity 0): the buffer holds at most one message, and its
//!   sender waits until a `recv` has taken it (the `taken` count passes the
//!   message's number). If that sender is cancelled first, it takes its
//!   message back out, and until it has, receivers leave a message whose
//!   sender has a cancel pending where it is: a message is never delivered
//!   by a send that reported nothing.
//! - [`select!`](crate::select) waits on these same queues (`select.rs` in
//!   this module says what each operation waits for). One more queue
//!   serves it: `offers_waiting`, the selects that would send on a
//!   rendezvous channel, wait there for a receiver to arrive (a select
//!   sends on a rendezvous channel only to a waiting receiver, as
//!   `try_send` does); a receiver that parks notifies one of them.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

pub use std::sync::mpsc::{RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError};

mod select;

use super::wait_queue::{WaitQueue, Waited};
use crate::runtime::wait::{LocalWaker, Parker};

/// The shared state of a channel; see the [module docs](self).
struct Chan<T> {
    buffer: RefCell<VecDeque<T>>,
    /// `None`: unbounded. `Some(0)`: rendezvous.
    capacity: Option<usize>,
    senders: Cell<usize>,
    receiver_alive: Cell<bool>,
    receivers_waiting: WaitQueue,
    senders_waiting: WaitQueue,
    /// Rendezvous: selects waiting for a receiver to send to.
    offers_waiting: WaitQueue,
    /// Messages ever sent and ever taken (rendezvous bookkeeping).
    sent: Cell<u64>,
    taken: Cell<u64>,
    /// Rendezvous: the fiber whose `send` is waiting for its message (the
    /// one in the buffer) to be taken.
    offering: Cell<Option<LocalWaker>>,
}

impl<T> Chan<T> {
    fn new(capacity: Option<usize>) -> Rc<Chan<T>> {
        Rc::new(Chan {
            buffer: RefCell::new(VecDeque::new()),
            capacity,
            senders: Cell::new(1),
            receiver_alive: Cell::new(true),
            receivers_waiting: WaitQueue::new(),
            senders_waiting: WaitQueue::new(),
            offers_waiting: WaitQueue::new(),
            sent: Cell::new(0),
            taken: Cell::new(0),
            offering: Cell::new(None),
        })
    }

    /// Appends a message and tells one parked receiver; returns the
    /// message's number.
    #[inline]
    fn push(&self, t: T) -> u64 {
        self.buffer.borrow_mut().push_back(t);
        let n = self.sent.get() + 1;
        self.sent.set(n);
        self.receivers_waiting.notify_one();
        n
    }

    /// Takes the oldest message and tells the senders that wait for room.
    #[inline]
    fn pop(&self) -> Option<T> {
        if self
            .offering
            .get()
            .is_some_and(LocalWaker::is_cancel_pending)
        {
            return None; // its sender is about to take it back
        }
        let t = self.buffer.borrow_mut().pop_front()?;
        self.taken.set(self.taken.get() + 1);
        match self.capacity {
            Some(0) => {
                self.senders_waiting.notify_all();
            }
            Some(_) => {
                self.senders_waiting.notify_one();
            }
            None => {}
        }
        Some(t)
    }

    /// A receiver has just started waiting: on a rendezvous channel, tell
    /// a select that would send here.
    #[inline]
    fn receiver_arrived(&self) {
        if self.capacity == Some(0) {
            self.offers_waiting.notify_one();
        }
    }

    /// Whether a bounded sender may put a message in now.
    fn has_room(&self) -> bool {
        let len = self.buffer.borrow().len();
        match self.capacity {
            None => true,
            Some(0) => len == 0,
            Some(n) => len < n,
        }
    }

    /// Whether `try_send` would put a message in now: there is room and,
    /// on a rendezvous channel, a receiver waits for it.
    fn can_send_now(&self) -> bool {
        match self.capacity {
            Some(0) => self.has_room() && !self.receivers_waiting.is_empty(),
            _ => self.has_room(),
        }
    }

    fn add_sender(self: &Rc<Self>) -> Rc<Chan<T>> {
        self.senders.set(self.senders.get() + 1);
        Rc::clone(self)
    }

    fn drop_sender(&self) {
        let n = self.senders.get() - 1;
        self.senders.set(n);
        if n == 0 {
            self.receivers_waiting.notify_all();
        }
    }
}

/// Creates an unbounded channel (std's `mpsc::channel`): `send` never
/// waits; `recv` parks the fiber until a message or the last sender's drop.
///
/// # Examples
///
/// ```
/// use spindle::sync::channel;
///
/// spindle::run(|| {
///     let (tx, rx) = channel();
///     let producer = spindle::spawn(move || {
///         for i in 1..=3 {
///             tx.send(i).unwrap();
///             spindle::yield_now();
///         }
///     });
///     let got: Vec<i32> = rx.iter().collect(); // ends when `tx` is dropped
///     assert_eq!(got, [1, 2, 3]);
///     producer.join().unwrap();
/// });
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let chan = Chan::new(None);
    (
        Sender {
            chan: Rc::clone(&chan),
        },
        Receiver { chan },
    )
}

/// Creates a bounded channel of `bound` messages (std's
/// `mpsc::sync_channel`): a sender parks while the channel is full. With a
/// `bound` of 0 every send is a rendezvous: it waits until a receiver has
/// taken the message.
///
/// # Examples
///
/// ```
/// use spindle::sync::sync_channel;
///
/// spindle::run(|| {
///     let (tx, rx) = sync_channel(1);
///     let producer = spindle::spawn(move || {
///         for i in 0..3 {
///             tx.send(i).unwrap(); // parks while the one slot is taken
///         }
///     });
///     assert_eq!(rx.recv(), Ok(0));
///     assert_eq!(rx.recv(), Ok(1));
///     assert_eq!(rx.recv(), Ok(2));
///     producer.join().unwrap();
/// });
/// ```
pub fn sync_channel<T>(bound: usize) -> (SyncSender<T>, Receiver<T>) {
    let chan = Chan::new(Some(bound));
    (
        SyncSender {
            chan: Rc::clone(&chan),
        },
        Receiver { chan },
    )
}

/// The sending half of a [`channel`]; clone it for more producers.
///
/// # `Send`
///
/// Not `Send`: a channel connects the fibers of one runtime (one thread).
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// assert_send(spindle::sync::channel::<u8>().0);
/// ```
pub struct Sender<T> {
    chan: Rc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends `t` without waiting (the channel is unbounded).
    ///
    /// # Errors
    ///
    /// [`SendError`] with `t` back, if the receiver is gone.
    #[inline]
    pub fn send(&self, t: T) -> Result<(), SendError<T>> {
        if !self.chan.receiver_alive.get() {
            return Err(SendError(t));
        }
        self.chan.push(t);
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        Sender {
            chan: self.chan.add_sender(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

/// The sending half of a [`sync_channel`]; clone it for more producers.
///
/// # `Send`
///
/// Not `Send`, as [`Sender`].
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// assert_send(spindle::sync::sync_channel::<u8>(1).0);
/// ```
pub struct SyncSender<T> {
    chan: Rc<Chan<T>>,
}

const SEND: &str = "spindle::sync::SyncSender::send";
const RECV: &str = "spindle::sync::Receiver::recv";

impl<T> SyncSender<T> {
    /// Sends `t`, parking the fiber while the channel is full (and, on a
    /// rendezvous channel, until a receiver has taken it).
    ///
    /// # Panics
    ///
    /// If it must wait and the caller is not a fiber of a runtime; and as a
    /// cancellation point, when it waits: a cancelled sender's message is
    /// not sent (on a rendezvous channel, one that no receiver has taken yet
    /// is taken back).
    ///
    /// # Errors
    ///
    /// [`SendError`] with `t` back, if the receiver is gone (or goes before
    /// taking a rendezvous message), or if the runtime shuts down while the
    /// sender, already unwinding, would have to wait.
    #[track_caller]
    #[inline]
    pub fn send(&self, t: T) -> Result<(), SendError<T>> {
        self.send_until(t, None).map_err(|e| match e {
            TrySendError::Full(t) | TrySendError::Disconnected(t) => SendError(t),
        })
    }

    /// Sends `t` if the channel has room now, without waiting. On a
    /// rendezvous channel that means a receiver is waiting.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if there is no room, [`TrySendError::Disconnected`]
    /// if the receiver is gone; both give `t` back.
    pub fn try_send(&self, t: T) -> Result<(), TrySendError<T>> {
        let chan = &*self.chan;
        if !chan.receiver_alive.get() {
            return Err(TrySendError::Disconnected(t));
        }
        if !chan.can_send_now() {
            return Err(TrySendError::Full(t));
        }
        chan.push(t);
        Ok(())
    }

    /// Sends `t`, waiting for room at most `timeout` (rounded up to the
    /// scheduler's timer precision).
    ///
    /// # Panics
    ///
    /// As [`send`](Self::send).
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] with `t` back if the time ran out,
    /// [`TrySendError::Disconnected`] if the receiver is gone.
    #[track_caller]
    pub fn send_timeout(&self, t: T, timeout: Duration) -> Result<(), TrySendError<T>> {
        self.send_until(t, Instant::now().checked_add(timeout))
    }

    #[track_caller]
    #[inline(always)]
    fn send_until(&self, t: T, deadline: Option<Instant>) -> Result<(), TrySendError<T>> {
        let chan = &*self.chan;
        let mut t = Some(t);
        let take = |t: &mut Option<T>| t.take().expect("the message is sent once");
        loop {
            if !chan.receiver_alive.get() {
                return Err(TrySendError::Disconnected(take(&mut t)));
            }
            // Room, and no earlier sender queued for it (they go first).
            if chan.has_room() && chan.senders_waiting.is_empty() {
                break;
            }
            let waited = {
                let p = &Parker::current(SEND);
                chan.senders_waiting.wait(
                    p,
                    SEND,
                    0,
                    deadline,
                    || {},
                    || {
                        chan.senders_waiting.notify_one();
                    },
                )
            };
            match waited {
                Waited::Notified => {
                    if chan.has_room() && chan.receiver_alive.get() {
                        break;
                    }
                }
                Waited::TimedOut => return Err(TrySendError::Full(take(&mut t))),
                Waited::Interrupted => return Err(TrySendError::Disconnected(take(&mut t))),
            }
        }
        if chan.capacity == Some(0) {
            let me = {
                let p = &Parker::current(SEND);
                p.waker()
            };
            let number = chan.push(take(&mut t));
            chan.offering.set(Some(me));
            let taken = self.await_taken(number);
            chan.offering.set(None);
            taken.map_err(TrySendError::Disconnected)?;
        } else {
            chan.push(take(&mut t));
        }
        // Room may be left for the next queued sender.
        if chan.has_room() {
            chan.senders_waiting.notify_one();
        }
        Ok(())
    }

    /// Rendezvous: waits until message `number` (the one just pushed, the
    /// only one in the buffer) has been taken. If the receiver goes first,
    /// or the runtime shuts down, takes it back and returns it; if the
    /// sender is cancelled meanwhile, takes it back and drops it.
    #[track_caller]
    #[inline(always)]
    fn await_taken(&self, number: u64) -> Result<(), T> {
        let chan = &*self.chan;
        /// Takes the message back out if no receiver has taken it.
        struct TakeBack<'a, T> {
            chan: &'a Chan<T>,
            number: u64,
        }
        impl<T> TakeBack<'_, T> {
            fn take_back(&self) -> Option<T> {
                if self.chan.taken.get() >= self.number {
                    return None;
                }
                let t = self.chan.buffer.borrow_mut().pop_back();
                self.chan.sent.set(self.chan.sent.get() - 1);
                self.chan.offering.set(None);
                // The slot is free again for the next queued sender.
                self.chan.senders_waiting.notify_one();
                t
            }
        }
        impl<T> Drop for TakeBack<'_, T> {
            fn drop(&mut self) {
                drop(self.take_back());
            }
        }
        let guard = TakeBack { chan, number };
        while chan.taken.get() < number && chan.receiver_alive.get() {
            let waited = {
                let p = &Parker::current(SEND);
                chan.senders_waiting.wait(
                    p,
                    SEND,
                    0,
                    None,
                    || {},
                    || {
                        chan.senders_waiting.notify_all();
                    },
                )
            };
            if waited != Waited::Notified {
                break;
            }
        }
        let back = guard.take_back();
        std::mem::forget(guard);
        match back {
            None => Ok(()),
            Some(t) => Err(t),
        }
    }
}

impl<T> Clone for SyncSender<T> {
    fn clone(&self) -> SyncSender<T> {
        SyncSender {
            chan: self.chan.add_sender(),
        }
    }
}

impl<T> Drop for SyncSender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> fmt::Debug for SyncSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncSender").finish_non_exhaustive()
    }
}

/// The receiving half of a channel. `recv` takes `&self`, so several fibers
/// may share one receiver (an `Rc<Receiver>`); they are served in the order
/// they started waiting.
///
/// # Dropping
///
/// Senders see [`SendError`] from then on, and the messages still in the
/// channel are dropped (a rendezvous sender gets its message back in the
/// error).
///
/// # `Send`
///
/// Not `Send`, as [`Sender`].
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// assert_send(spindle::sync::channel::<u8>().1);
/// ```
pub struct Receiver<T> {
    chan: Rc<Chan<T>>,
}

impl<T> Receiver<T> {
    /// Takes the next message, parking the fiber until there is one.
    ///
    /// # Panics
    ///
    /// If it must wait and the caller is not a fiber of a runtime; and as a
    /// cancellation point, when it waits (no message is lost: it stays in
    /// the channel).
    ///
    /// # Errors
    ///
    /// [`RecvError`] once the channel is empty and every sender is gone (or
    /// when the runtime shuts down while the receiver, already unwinding,
    /// would have to wait).
    #[track_caller]
    #[inline]
    pub fn recv(&self) -> Result<T, RecvError> {
        self.recv_until(None).map_err(|_| RecvError)
    }

    /// Takes the next message if there is one, without waiting.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if there is none now,
    /// [`TryRecvError::Disconnected`] if there never will be.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        match self.chan.pop() {
            Some(t) => Ok(t),
            None if self.chan.senders.get() == 0 => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Takes the next message, waiting at most `timeout`.
    ///
    /// # Panics
    ///
    /// As [`recv`](Self::recv).
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] if none came in time,
    /// [`RecvTimeoutError::Disconnected`] if none ever will.
    #[track_caller]
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_until(Instant::now().checked_add(timeout))
    }

    /// Takes the next message, waiting until `deadline` at most.
    ///
    /// # Panics
    ///
    /// As [`recv`](Self::recv).
    ///
    /// # Errors
    ///
    /// As [`recv_timeout`](Self::recv_timeout).
    #[track_caller]
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_until(Some(deadline))
    }

    // Always inlined into the caller: this frame would otherwise be live
    // across the switch when the receiver parks, and its return afterwards
    // mispredicted (see the runtime's `wait::Parker`).
    #[track_caller]
    #[inline(always)]
    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let chan = &*self.chan;
        loop {
            if let Some(t) = chan.pop() {
                // Messages may be left for the next parked receiver.
                if !chan.buffer.borrow().is_empty() {
                    chan.receivers_waiting.notify_one();
                }
                return Ok(t);
            }
            if chan.senders.get() == 0 {
                return Err(RecvTimeoutError::Disconnected);
            }
            let waited = {
                let p = &Parker::current(RECV);
                chan.receivers_waiting.wait(
                    p,
                    RECV,
                    0,
                    deadline,
                    || chan.receiver_arrived(),
                    || {
                        chan.receivers_waiting.notify_one();
                    },
                )
            };
            match waited {
                Waited::Notified => {}
                Waited::TimedOut => {
                    // A message that came with the deadline still counts.
                    return chan.pop().ok_or(RecvTimeoutError::Timeout);
                }
                Waited::Interrupted => return Err(RecvTimeoutError::Disconnected),
            }
        }
    }

    /// An iterator that [`recv`](Self::recv)s until every sender is gone.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the messages there are now, without waiting.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let chan = &*self.chan;
        chan.receiver_alive.set(false);
        // Nobody can take the buffered messages any more: drop them now (as
        // std does), outside the borrow, since their destructors are user
        // code. A rendezvous message stays: its sender takes it back.
        if chan.capacity != Some(0) {
            let messages = std::mem::take(&mut *chan.buffer.borrow_mut());
            drop(messages);
        }
        chan.senders_waiting.notify_all();
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

/// The iterator of [`Receiver::iter`].
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    #[inline]
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// The iterator of [`Receiver::try_iter`].
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// The iterator of a [`Receiver`] taken by value.
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    #[inline]
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}
