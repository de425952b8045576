//! [`channel`] and [`sync_channel`]: multi-producer, single-consumer
//! queues between threads, fibers of any worker included (std's
//! `mpsc`). This file holds the shared state, the unbounded [`Sender`]
//! and the [`Receiver`]; the bounded sender is in `sync_sender.rs`.
//!
//! ## State and invariants
//!
//! Both ends share one `Chan`: under its [`WaitLock`] the buffer, its
//! capacity, the count of live senders, whether the receiver lives, and
//! three wait queues: the receiver waiting for a message, senders waiting
//! for room (a bounded channel), and the rendezvous sender waiting for its
//! message to be taken.
//!
//! - A message is in the buffer from the `send` that put it there until a
//!   `recv` takes it out (or, on a rendezvous channel, its sender takes it
//!   back). A waiting receiver is only *told* that the buffer changed and
//!   takes the message itself, under the lock, when it runs: so a receiver
//!   cancelled while it waits leaves every message where it was. Messages
//!   come out in the order they went in (so per producer, in its order).
//! - Every change a waiter could be waiting for notifies, under the same
//!   lock the waiter checked under: a send notifies the receiver; a
//!   receive notifies one sender waiting for room and, on a rendezvous
//!   channel, the sender whose message it took; the last sender going
//!   notifies the receiver, and the receiver going notifies every sender.
//! - Rendezvous (capacity 0): the buffer holds at most one message, and
//!   its sender waits until a `recv` has taken it (the `taken` count passes
//!   the message's number). If the sender gives up first (a timeout, a
//!   cancellation, the receiver gone) it takes its message back out. A
//!   receiver on another thread cannot see that a fiber's cancel is on its
//!   way, so a rendezvous sender cancelled *after* a receiver took its
//!   message unwinds with the message delivered (as if the cancel had come
//!   just after `send` returned).

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use std::sync::mpsc::{RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError};

use super::sync_sender::SyncSender;
use super::wait_queue::{WaitGuard, WaitLock, WaitQueue, Waited};

const RECV: &str = "spindle::sync::shared::Receiver::recv";

/// The state of a channel, under its lock; see the [module docs](self).
pub(super) struct State<T> {
    pub(super) buffer: VecDeque<T>,
    /// `None`: unbounded. `Some(0)`: rendezvous.
    pub(super) capacity: Option<usize>,
    pub(super) senders: usize,
    pub(super) receiver: bool,
    receiving: WaitQueue,
    pub(super) room: WaitQueue,
    pub(super) offered: WaitQueue,
    /// Messages ever sent and ever taken (rendezvous bookkeeping).
    pub(super) sent: u64,
    pub(super) taken: u64,
}

pub(super) fn receiving<T>(s: &mut State<T>) -> &mut WaitQueue {
    &mut s.receiving
}

pub(super) fn room<T>(s: &mut State<T>) -> &mut WaitQueue {
    &mut s.room
}

pub(super) fn offered<T>(s: &mut State<T>) -> &mut WaitQueue {
    &mut s.offered
}

pub(super) type Chan<T> = WaitLock<State<T>>;
pub(super) type ChanGuard<'a, T> = WaitGuard<'a, State<T>>;

impl<T> State<T> {
    /// Whether a bounded sender may put a message in now.
    pub(super) fn has_room(&self) -> bool {
        match self.capacity {
            None => true,
            Some(0) => self.buffer.is_empty(),
            Some(n) => self.buffer.len() < n,
        }
    }

    /// Whether a receiver waits right now.
    pub(super) fn receiver_waits(&self) -> bool {
        !self.receiving.is_empty()
    }
}

/// Appends a message and tells the receiver; returns the message's number.
pub(super) fn push<T>(g: &mut ChanGuard<'_, T>, t: T) -> u64 {
    g.buffer.push_back(t);
    g.sent += 1;
    g.notify_one(receiving);
    g.sent
}

/// Takes the oldest message and tells the senders that wait for it.
fn pop<T>(g: &mut ChanGuard<'_, T>) -> Option<T> {
    let t = g.buffer.pop_front()?;
    g.taken += 1;
    match g.capacity {
        Some(0) => {
            g.notify_all(offered);
            g.notify_one(room);
        }
        Some(_) => {
            g.notify_one(room);
        }
        None => {}
    }
    Some(t)
}

fn new_chan<T>(capacity: Option<usize>) -> Arc<Chan<T>> {
    Arc::new(WaitLock::new(State {
        buffer: VecDeque::new(),
        capacity,
        senders: 1,
        receiver: true,
        receiving: WaitQueue::new(),
        room: WaitQueue::new(),
        offered: WaitQueue::new(),
        sent: 0,
        taken: 0,
    }))
}

/// One sender fewer; the last one tells the receiver.
pub(super) fn drop_sender<T>(chan: &Chan<T>) {
    let mut g = chan.lock();
    g.senders -= 1;
    if g.senders == 0 {
        // A waiting receiver must see the disconnection.
        g.notify_all(receiving);
    }
}

/// One sender more.
pub(super) fn add_sender<T>(chan: &Arc<Chan<T>>) -> Arc<Chan<T>> {
    chan.lock().senders += 1;
    Arc::clone(chan)
}

/// Creates a channel whose ends may live on any threads (std's
/// `mpsc::channel`): `send` never waits.
///
/// # Examples
///
/// A plain thread feeds a fiber on worker 1, which answers on another
/// channel:
///
/// ```
/// use spindle::sync::shared;
///
/// let rt = spindle::Runtime::builder().workers(2).build()?;
/// rt.block_on(|| {
///     let (to_fiber, rx) = shared::channel::<u32>();
///     let (tx, from_fiber) = shared::channel::<u32>();
///     let fiber = spindle::spawn_on(1, move || {
///         for v in rx.iter() {
///             tx.send(v * 2).unwrap();
///         }
///     });
///     let feeder = std::thread::spawn(move || {
///         for v in 1..=3 {
///             to_fiber.send(v).unwrap();
///         }
///     });
///     let got: Vec<u32> = (0..3).map(|_| from_fiber.recv().unwrap()).collect();
///     assert_eq!(got, [2, 4, 6]);
///     feeder.join().unwrap();
///     fiber.join().unwrap();
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let chan = new_chan(None);
    (
        Sender {
            chan: Arc::clone(&chan),
        },
        Receiver::new(chan),
    )
}

/// Creates a bounded channel of `bound` messages whose ends may live on any
/// threads (std's `mpsc::sync_channel`): a sender waits while the channel
/// is full (a fiber parks, a thread blocks). With a `bound` of 0 every send
/// is a rendezvous: it waits until the receiver has taken the message.
///
/// # Examples
///
/// A fiber hands values to a plain thread, one rendezvous at a time:
///
/// ```
/// use spindle::sync::shared;
///
/// let rt = spindle::Runtime::builder().workers(2).build()?;
/// rt.block_on(|| {
///     let (tx, rx) = shared::sync_channel::<u32>(0);
///     let consumer = std::thread::spawn(move || rx.iter().sum::<u32>());
///     let producer = spindle::spawn_on(1, move || {
///         for v in 1..=4 {
///             tx.send(v).unwrap(); // returns once the thread has it
///         }
///     });
///     producer.join().unwrap();
///     assert_eq!(consumer.join().unwrap(), 10);
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn sync_channel<T>(bound: usize) -> (SyncSender<T>, Receiver<T>) {
    let chan = new_chan(Some(bound));
    (SyncSender::new(Arc::clone(&chan)), Receiver::new(chan))
}

/// The sending end of a [`channel`]: `Send`, `Sync` and `Clone`.
///
/// # Examples
///
/// ```
/// let (tx, rx) = spindle::sync::shared::channel();
/// std::thread::spawn(move || tx.send("hi").unwrap()).join().unwrap();
/// assert_eq!(rx.recv(), Ok("hi"));
/// ```
///
/// # `Send`
///
/// ```
/// fn assert_send_sync<T: Send + Sync>() {}
/// assert_send_sync::<spindle::sync::shared::Sender<String>>();
/// ```
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Queues `t` for the receiver; never waits.
    ///
    /// # Examples
    ///
    /// See [`channel`].
    ///
    /// # Errors
    ///
    /// [`SendError`] with `t` back if the receiver is gone.
    pub fn send(&self, t: T) -> Result<(), SendError<T>> {
        let mut g = self.chan.lock();
        if !g.receiver {
            return Err(SendError(t));
        }
        push(&mut g, t);
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        Sender {
            chan: add_sender(&self.chan),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        drop_sender(&self.chan);
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

/// The receiving end of a [`channel`] or [`sync_channel`]: `Send` but not
/// `Sync` (one receiver, on any thread, used by one fiber or thread at a
/// time), as std's.
///
/// # Examples
///
/// See [`channel`].
///
/// # Dropping
///
/// Senders see [`SendError`] from then on, and the messages still in the
/// channel are dropped (a rendezvous sender gets its message back in the
/// error).
///
/// # `Send`
///
/// ```
/// fn assert_send<T: Send>() {}
/// assert_send::<spindle::sync::shared::Receiver<String>>();
/// ```
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
    /// `!Sync`, as std's.
    _not_sync: PhantomData<Cell<()>>,
}

impl<T> Receiver<T> {
    fn new(chan: Arc<Chan<T>>) -> Receiver<T> {
        Receiver {
            chan,
            _not_sync: PhantomData,
        }
    }

    /// Takes the oldest message, waiting for one if there is none: a fiber
    /// parks (the other fibers of its worker run meanwhile), any other
    /// caller blocks its thread.
    ///
    /// # Examples
    ///
    /// See [`channel`].
    ///
    /// # Panics
    ///
    /// As a cancellation point, when a fiber waits (no message is lost: it
    /// stays in the channel).
    ///
    /// # Errors
    ///
    /// [`RecvError`] once the queue is empty and every sender is gone (or
    /// when the runtime shuts down while the fiber, already unwinding,
    /// would have to wait).
    pub fn recv(&self) -> Result<T, RecvError> {
        self.recv_until(None).map_err(|_| RecvError)
    }

    /// Takes the oldest message, waiting at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use spindle::sync::shared::{channel, RecvTimeoutError};
    ///
    /// let (tx, rx) = channel::<u8>();
    /// let err = rx.recv_timeout(Duration::from_millis(5));
    /// assert_eq!(err, Err(RecvTimeoutError::Timeout));
    /// drop(tx);
    /// let err = rx.recv_timeout(Duration::from_millis(5));
    /// assert_eq!(err, Err(RecvTimeoutError::Disconnected));
    /// ```
    ///
    /// # Panics
    ///
    /// As [`recv`](Self::recv).
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] if none came in time,
    /// [`RecvTimeoutError::Disconnected`] if none ever will.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_until(Instant::now().checked_add(timeout))
    }

    /// Takes the oldest message, waiting until `deadline` at most.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (tx, rx) = spindle::sync::shared::channel();
    /// tx.send(7).unwrap();
    /// assert_eq!(rx.recv_deadline(Instant::now() + Duration::from_millis(5)), Ok(7));
    /// ```
    ///
    /// # Panics
    ///
    /// As [`recv`](Self::recv).
    ///
    /// # Errors
    ///
    /// As [`recv_timeout`](Self::recv_timeout).
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_until(Some(deadline))
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let mut g = self.chan.lock();
        loop {
            if let Some(t) = pop(&mut g) {
                return Ok(t);
            }
            if g.senders == 0 {
                return Err(RecvTimeoutError::Disconnected);
            }
            // A notification abandoned by a cancel is a hint ("look
            // again"), and there is no other receiver to pass it to.
            let (ng, waited) = g.wait(receiving, RECV, 0, deadline, |_| {});
            g = ng;
            match waited {
                Waited::Notified => {}
                // A message that came with the deadline still counts.
                Waited::TimedOut => return pop(&mut g).ok_or(RecvTimeoutError::Timeout),
                Waited::Interrupted => return Err(RecvTimeoutError::Disconnected),
            }
        }
    }

    /// Takes the oldest message if there is one; never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::sync::shared::{channel, TryRecvError};
    ///
    /// let (tx, rx) = channel();
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(1).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    /// ```
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if no message is there,
    /// [`TryRecvError::Disconnected`] if none will ever come.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut g = self.chan.lock();
        match pop(&mut g) {
            Some(t) => Ok(t),
            None if g.senders == 0 => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    /// An iterator that receives until every sender is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = spindle::sync::shared::channel();
    /// std::thread::spawn(move || (0..3).for_each(|i| tx.send(i).unwrap()));
    /// assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2]);
    /// ```
    ///
    /// # Panics
    ///
    /// As [`recv`](Self::recv).
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(move || self.recv().ok())
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let dropped = {
            let mut g = self.chan.lock();
            g.receiver = false;
            g.notify_all(room);
            g.notify_all(offered);
            // A rendezvous message stays: its sender takes it back.
            if g.capacity == Some(0) {
                VecDeque::new()
            } else {
                std::mem::take(&mut g.buffer)
            }
        };
        // Messages nobody will receive: dropped outside the lock.
        drop(dropped);
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}
