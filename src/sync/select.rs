//! [`Select`]: wait on several channel operations at once and run the
//! first that can go ahead (Go's `select`; crossbeam-channel's `Select`).
//! The [`select!`](crate::select) macro is the usual way to use it.
//!
//! The design (how one fiber waits on N queues, fairness, cancellation,
//! and how channels shared between threads would join) is documented on
//! [`Select`] itself, where rustdoc shows it.

use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

use super::mpsc::{RecvError, SendError};
use super::wait_queue::{self, WaitQueue, WaitSlot, Waited};
use crate::runtime::wait::Parker;

const SELECT: &str = "spindle::sync::Select::select";

/// A channel operation a select can wait on; see [`Select`].
pub(crate) trait Operand {
    /// Whether the operation would complete now without waiting (with a
    /// value or with an error).
    fn is_ready(&self) -> bool;
    /// The queues whose notifications may make it ready.
    fn wait_queues(&self) -> (&WaitQueue, Option<&WaitQueue>);
    /// Runs once the select waits in every queue.
    fn registered(&self);
    /// What identifies this channel end (its address).
    fn id(&self) -> *const () {
        self as *const Self as *const ()
    }
}

pub(crate) mod sealed {
    /// Only spindle's channel ends are select operations.
    pub trait Sealed {}
}

/// A channel end that a [`Select`] (or [`select!`](crate::select)'s
/// `recv(...)`) can receive from: [`Receiver`](super::Receiver), or a
/// reference to one. Sealed: implemented by spindle's channels only.
///
/// # Examples
///
/// ```
/// use spindle::sync::{channel, SelectRecv};
///
/// fn takes_any_receiver<R: SelectRecv<Item = u8>>(_: &R) {}
/// let (_tx, rx) = channel::<u8>();
/// takes_any_receiver(&rx);
/// ```
pub trait SelectRecv: sealed::Sealed {
    /// What a receive yields.
    type Item;
    #[doc(hidden)]
    fn __add_to<'a>(&'a self, sel: &mut Select<'a>) -> usize;
    #[doc(hidden)]
    fn __id(&self) -> *const ();
    #[doc(hidden)]
    fn __recv(&self) -> Result<Self::Item, RecvError>;
}

/// A channel end that a [`Select`] (or [`select!`](crate::select)'s
/// `send(...)`) can send on: [`Sender`](super::Sender),
/// [`SyncSender`](super::SyncSender), or a reference to one. Sealed:
/// implemented by spindle's channels only.
///
/// # Examples
///
/// ```
/// use spindle::sync::{channel, sync_channel, SelectSend};
///
/// fn takes_any_sender<S: SelectSend<Item = u8>>(_: &S) {}
/// takes_any_sender(&channel::<u8>().0);
/// takes_any_sender(&sync_channel::<u8>(1).0);
/// ```
pub trait SelectSend: sealed::Sealed {
    /// What a send takes.
    type Item;
    #[doc(hidden)]
    fn __add_to<'a>(&'a self, sel: &mut Select<'a>) -> usize;
    #[doc(hidden)]
    fn __id(&self) -> *const ();
    #[doc(hidden)]
    fn __send(&self, t: Self::Item) -> Result<(), SendError<Self::Item>>;
}

impl<T: sealed::Sealed + ?Sized> sealed::Sealed for &T {}
impl<T: sealed::Sealed + ?Sized> sealed::Sealed for std::rc::Rc<T> {}

/// Forwards a select operation's hidden methods through a pointer type.
macro_rules! forward_operand {
    ($($ptr:ty),*) => {$(
        impl<R: SelectRecv + ?Sized> SelectRecv for $ptr {
            type Item = R::Item;
            fn __add_to<'a>(&'a self, sel: &mut Select<'a>) -> usize {
                (**self).__add_to(sel)
            }
            fn __id(&self) -> *const () {
                (**self).__id()
            }
            #[track_caller]
            fn __recv(&self) -> Result<R::Item, RecvError> {
                (**self).__recv()
            }
        }
        impl<R: SelectSend + ?Sized> SelectSend for $ptr {
            type Item = R::Item;
            fn __add_to<'a>(&'a self, sel: &mut Select<'a>) -> usize {
                (**self).__add_to(sel)
            }
            fn __id(&self) -> *const () {
                (**self).__id()
            }
            #[track_caller]
            fn __send(&self, t: R::Item) -> Result<(), SendError<R::Item>> {
                (**self).__send(t)
            }
        }
    )*};
}

forward_operand!(&R, std::rc::Rc<R>);

thread_local! {
    /// The state of this thread's xorshift64 generator (never 0).
    static RNG: Cell<u64> = Cell::new({
        // Time and a stack address: differs between threads and runs.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let here = 0u8;
        (now ^ (&here as *const u8 as u64).rotate_left(32) ^ 0x9E37_79B9_7F4A_7C15) | 1
    });
}

/// A number in `0..n` (n > 0), uniform enough for picking an operation.
fn random_below(n: usize) -> usize {
    RNG.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (((x >> 32) * n as u64) >> 32) as usize
    })
}

/// A set of channel operations to wait on together;
/// [`select`](Self::select) returns the first that can go ahead, chosen at random
/// among those ready at once. The [`select!`](crate::select) macro builds
/// one for you.
///
/// Add operations with [`recv`](Self::recv) and [`send`](Self::send), each
/// of which returns the operation's index; then call one of the
/// `select` methods and complete the returned [`SelectedOperation`] with
/// the same channel end.
///
/// # Examples
///
/// ```
/// use spindle::sync::{channel, Select};
///
/// spindle::run(|| {
///     let (tx1, rx1) = channel::<u32>();
///     let (tx2, rx2) = channel::<&str>();
///     spindle::spawn(move || tx2.send("two").unwrap());
///     let mut sel = Select::new();
///     let one = sel.recv(&rx1);
///     let two = sel.recv(&rx2);
///     let oper = sel.select(); // parks until the spawned fiber sends
///     match oper.index() {
///         i if i == one => panic!("nobody sent on rx1: {:?}", oper.recv(&rx1)),
///         i if i == two => assert_eq!(oper.recv(&rx2), Ok("two")),
///         _ => unreachable!(),
///     }
///     drop(tx1);
/// });
/// ```
///
/// # How one fiber waits on N queues
///
/// Every channel keeps FIFO wait queues of parked
/// fibers (receivers waiting for a message, senders waiting for room), and
/// its notifications are *hints*: "the buffer changed, look again"; the
/// woken fiber takes the message itself. A select uses exactly those
/// queues:
///
/// 1. Check every operation (without taking anything); if some are ready,
///    pick one of them at random, uniformly, and return it. The caller
///    completes it (receives, sends) before it next suspends, so it cannot
///    stop being ready in between (one thread: nothing else runs).
/// 2. Otherwise link one waiter per queue of every operation (a waiter is
///    a node naming this fiber; all N name the same one) and park.
/// 3. The first notification wakes it. On the way out of the wait, every
///    waiter that was not notified is unlinked; the queues that did notify
///    are remembered.
/// 4. Check again, as in step 1. A notification from a queue whose
///    operation is not the one chosen is *passed on* to the next waiter in
///    that queue (the channel may have picked this select instead of a
///    plain `recv` behind it); so is every notification, if the fiber
///    unwinds out of the wait instead (cancelled). Then nobody loses a
///    message or a wake-up, and a hint passed on in vain costs one wake-up
///    of a fiber that finds nothing and waits again.
///
/// The cost: the list of operations (one allocation per `Select`), one
/// allocation for the N waiters when the select has to wait (none when an
/// operation is ready at once), and one queue operation per pass-on.
///
/// # Fairness
///
/// Among the operations ready at the same time, each is picked with equal
/// probability (a per-thread xorshift generator), so a busy channel cannot
/// shut out another: Go and crossbeam-channel choose at random too. A
/// rotating start index would be cheaper, but two selects that alternate
/// on one thread would each always see the same rotation.
///
/// # Cancellation and timeouts
///
/// A select is a cancellation point when it waits: the fiber unwinds out of
/// it having completed no operation, its waiters unlinked and the
/// notifications it held passed on, so every channel stays as it was.
/// [`Select::select_timeout`] (`default(timeout)` in the macro) waits at
/// most that long; an operation that became ready with the deadline still
/// wins.
///
/// # Later: channels shared between threads
///
/// What the select needs from an operation is the crate-private `Operand`
/// trait: whether it is ready, and which queues to wait in. Channels of
/// another kind join by implementing it and the two public traits
/// [`SelectRecv`] and [`SelectSend`]; the macro and `Select` need no
/// change. A cross-thread channel keeps its waiters under its own lock and
/// wakes them with a `Send` waker, so for it `wait_queues` would become a
/// pair of calls, register (link a waiter holding this fiber's `Send`
/// waker, under the channel's lock) and deregister (unlink it, or pass on
/// a notification it already got); the wait itself stays the same: park
/// until any registered waiter is notified.
///
/// # `Send`
///
/// Not `Send`: it refers to channel ends of this thread.
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// assert_send(spindle::sync::Select::new());
/// ```
pub struct Select<'a> {
    ops: Vec<&'a dyn Operand>,
}

impl<'a> Select<'a> {
    /// An empty set of operations.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// spindle::run(|| {
    ///     let mut sel = spindle::sync::Select::new();
    ///     assert!(sel.select_timeout(Duration::from_millis(1)).is_err()); // nothing to wait for
    /// });
    /// ```
    pub fn new() -> Select<'a> {
        Select { ops: Vec::new() }
    }

    pub(crate) fn add(&mut self, op: &'a dyn Operand) -> usize {
        self.ops.push(op);
        self.ops.len() - 1
    }

    /// Adds a receive on `r`; returns its index.
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::sync::{channel, Select};
    ///
    /// let (tx, rx) = channel();
    /// tx.send(1).unwrap();
    /// let mut sel = Select::new();
    /// let i = sel.recv(&rx);
    /// let oper = sel.try_select().unwrap();
    /// assert_eq!(oper.index(), i);
    /// assert_eq!(oper.recv(&rx), Ok(1));
    /// ```
    pub fn recv<R: SelectRecv>(&mut self, r: &'a R) -> usize {
        r.__add_to(self)
    }

    /// Adds a send on `s`; returns its index. The message is given when
    /// the operation is completed ([`SelectedOperation::send`]), so a send
    /// that is not selected costs nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::sync::{sync_channel, Select};
    ///
    /// let (tx, rx) = sync_channel(1);
    /// let mut sel = Select::new();
    /// let i = sel.send(&tx);
    /// let oper = sel.try_select().unwrap(); // there is room
    /// assert_eq!(oper.index(), i);
    /// oper.send(&tx, 5).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(5));
    /// ```
    pub fn send<S: SelectSend>(&mut self, s: &'a S) -> usize {
        s.__add_to(self)
    }

    /// Parks the fiber until one of the operations can go ahead, and
    /// returns it (chosen at random among those ready at once).
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::sync::{channel, Select};
    ///
    /// spindle::run(|| {
    ///     let (tx, rx) = channel();
    ///     spindle::spawn(move || tx.send("hi").unwrap());
    ///     let mut sel = Select::new();
    ///     sel.recv(&rx);
    ///     assert_eq!(sel.select().recv(&rx), Ok("hi"));
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// If it must wait and the caller is not a fiber of a runtime; as a
    /// cancellation point, when it waits (no operation is completed); and
    /// if the runtime is shutting down and the caller, already unwinding,
    /// would have to wait.
    #[track_caller]
    pub fn select(&mut self) -> SelectedOperation<'a> {
        match self.select_until(None, true) {
            Some(op) => op,
            None => panic!(
                "{SELECT}: the runtime is shutting down and this fiber, already \
                 unwinding, cannot wait"
            ),
        }
    }

    /// Returns an operation that can go ahead now, without waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::sync::{channel, Select};
    ///
    /// let (_tx, rx) = channel::<u8>();
    /// let mut sel = Select::new();
    /// sel.recv(&rx);
    /// assert!(sel.try_select().is_err()); // empty, and a sender lives
    /// ```
    ///
    /// # Errors
    ///
    /// [`TrySelectError`] if none is ready.
    pub fn try_select(&mut self) -> Result<SelectedOperation<'a>, TrySelectError> {
        self.select_until(None, false).ok_or(TrySelectError)
    }

    /// As [`select`](Self::select), waiting at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use spindle::sync::{channel, Select};
    ///
    /// spindle::run(|| {
    ///     let (_tx, rx) = channel::<u8>();
    ///     let mut sel = Select::new();
    ///     sel.recv(&rx);
    ///     assert!(sel.select_timeout(Duration::from_millis(1)).is_err());
    /// });
    /// ```
    ///
    /// # Errors
    ///
    /// [`SelectTimeoutError`] if none became ready in time.
    ///
    /// # Panics
    ///
    /// As [`select`](Self::select), except that a shutdown is a timeout.
    #[track_caller]
    pub fn select_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<SelectedOperation<'a>, SelectTimeoutError> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.select_deadline(deadline),
            None => Ok(self.select()),
        }
    }

    /// As [`select`](Self::select), waiting until `deadline` at most.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use spindle::sync::{channel, Select};
    ///
    /// spindle::run(|| {
    ///     let (tx, rx) = channel();
    ///     tx.send(1).unwrap();
    ///     let mut sel = Select::new();
    ///     sel.recv(&rx);
    ///     let oper = sel.select_deadline(Instant::now() + Duration::from_secs(1)).unwrap();
    ///     assert_eq!(oper.recv(&rx), Ok(1));
    /// });
    /// ```
    ///
    /// # Errors
    ///
    /// [`SelectTimeoutError`] if none became ready in time.
    ///
    /// # Panics
    ///
    /// As [`select_timeout`](Self::select_timeout).
    #[track_caller]
    pub fn select_deadline(
        &mut self,
        deadline: Instant,
    ) -> Result<SelectedOperation<'a>, SelectTimeoutError> {
        self.select_until(Some(deadline), true)
            .ok_or(SelectTimeoutError)
    }

    /// Picks a ready operation at random, passing on the notifications
    /// the `slots` received that do not belong to it.
    fn pick(&self, slots: &[WaitSlot<'_>]) -> Option<usize> {
        let ready = self.ops.iter().filter(|op| op.is_ready()).count();
        if ready == 0 {
            // Nothing any notification announced is still there: nothing
            // to pass on.
            return None;
        }
        let mut k = random_below(ready);
        let chosen = self
            .ops
            .iter()
            .position(|op| {
                if !op.is_ready() {
                    return false;
                }
                if k == 0 {
                    return true;
                }
                k -= 1;
                false
            })
            .expect("counted as ready");
        for slot in slots {
            if slot.notified() && slot.tag() != chosen {
                slot.queue().notify_one();
            }
        }
        Some(chosen)
    }

    #[track_caller]
    fn select_until(&self, deadline: Option<Instant>, wait: bool) -> Option<SelectedOperation<'a>> {
        let selected = |index: usize| SelectedOperation {
            index,
            op: Some(self.ops[index]),
        };
        if let Some(i) = self.pick(&[]) {
            return Some(selected(i));
        }
        if !wait {
            return None;
        }
        let p = &Parker::current(SELECT);
        let mut slots = Vec::with_capacity(self.ops.len() + 1);
        for (i, op) in self.ops.iter().enumerate() {
            let (q, extra) = op.wait_queues();
            slots.push(WaitSlot::new(p, q, i));
            if let Some(q) = extra {
                slots.push(WaitSlot::new(p, q, i));
            }
        }
        loop {
            let ops = &self.ops;
            let registered = || ops.iter().for_each(|op| op.registered());
            match wait_queue::wait_any(p, SELECT, &slots, deadline, registered) {
                Waited::Notified => {
                    if let Some(i) = self.pick(&slots) {
                        return Some(selected(i));
                    }
                }
                // An operation that became ready with the deadline still wins.
                Waited::TimedOut | Waited::Interrupted => return self.pick(&[]).map(selected),
            }
        }
    }
}

impl Default for Select<'_> {
    fn default() -> Self {
        Select::new()
    }
}

impl fmt::Debug for Select<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select")
            .field("operations", &self.ops.len())
            .finish()
    }
}

/// The operation a [`Select`] chose; complete it with the channel end it
/// was added with ([`recv`](Self::recv) or [`send`](Self::send)) before
/// the fiber next suspends.
///
/// # Examples
///
/// ```
/// use spindle::sync::{channel, Select};
///
/// let (tx, rx) = channel();
/// tx.send('x').unwrap();
/// let mut sel = Select::new();
/// sel.recv(&rx);
/// let oper = sel.try_select().unwrap();
/// assert_eq!(oper.index(), 0);
/// assert_eq!(oper.recv(&rx), Ok('x'));
/// ```
///
/// # Dropping
///
/// Dropping it without completing it passes on the wake-up it may hold to
/// the next fiber waiting on that channel; nothing is lost.
#[must_use = "complete the operation with `recv` or `send`"]
pub struct SelectedOperation<'a> {
    index: usize,
    /// `None` once completed.
    op: Option<&'a dyn Operand>,
}

impl SelectedOperation<'_> {
    /// The index [`Select::recv`] or [`Select::send`] returned for this
    /// operation.
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::sync::{channel, Select};
    ///
    /// let (tx, rx) = channel::<u8>();
    /// let (_tx2, rx2) = channel::<u8>();
    /// tx.send(1).unwrap();
    /// let mut sel = Select::new();
    /// sel.recv(&rx2);
    /// let i = sel.recv(&rx);
    /// let oper = sel.try_select().unwrap();
    /// assert_eq!(oper.index(), i);
    /// # oper.recv(&rx).unwrap();
    /// ```
    pub fn index(&self) -> usize {
        self.index
    }

    /// Marks the operation completed, after checking that `id` is its
    /// channel end (if not, the panic's drop of `self` passes the wake-up
    /// on).
    #[track_caller]
    fn complete(&mut self, id: *const (), what: &str) {
        let op = self.op.expect("completed once");
        assert!(
            std::ptr::eq(op.id(), id),
            "spindle::sync::SelectedOperation::{what}: not the channel end of the selected operation"
        );
        self.op = None;
    }

    /// Completes a selected receive: takes the message (or learns that
    /// every sender is gone).
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::sync::{channel, RecvError, Select};
    ///
    /// let (tx, rx) = channel::<u8>();
    /// drop(tx);
    /// let mut sel = Select::new();
    /// sel.recv(&rx);
    /// assert_eq!(sel.try_select().unwrap().recv(&rx), Err(RecvError)); // ready: disconnected
    /// ```
    ///
    /// # Errors
    ///
    /// [`RecvError`] if the channel is empty and every sender is gone.
    ///
    /// # Panics
    ///
    /// If `r` is not the channel end this operation was added with. If the
    /// fiber suspended since the select and the message is gone, this
    /// waits as [`Receiver::recv`](super::Receiver::recv) does.
    #[track_caller]
    pub fn recv<R: SelectRecv>(mut self, r: &R) -> Result<R::Item, RecvError> {
        self.complete(r.__id(), "recv");
        r.__recv()
    }

    /// Completes a selected send with message `t`.
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::sync::{channel, Select};
    ///
    /// let (tx, rx) = channel();
    /// let mut sel = Select::new();
    /// sel.send(&tx);
    /// sel.try_select().unwrap().send(&tx, 3).unwrap();
    /// assert_eq!(rx.recv(), Ok(3));
    /// ```
    ///
    /// # Errors
    ///
    /// [`SendError`] with `t` back if the receiver is gone.
    ///
    /// # Panics
    ///
    /// If `s` is not the channel end this operation was added with. If the
    /// fiber suspended since the select and the room is gone, this waits
    /// as the channel's `send` does.
    #[track_caller]
    pub fn send<S: SelectSend>(mut self, s: &S, t: S::Item) -> Result<(), SendError<S::Item>> {
        self.complete(s.__id(), "send");
        s.__send(t)
    }
}

impl Drop for SelectedOperation<'_> {
    fn drop(&mut self) {
        if let Some(op) = self.op.take() {
            // Not completed: hand on the wake-up it may have consumed.
            let (q, extra) = op.wait_queues();
            q.notify_one();
            if let Some(q) = extra {
                q.notify_one();
            }
        }
    }
}

impl fmt::Debug for SelectedOperation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectedOperation")
            .field("index", &self.index)
            .finish()
    }
}

/// Declares a unit error type of [`Select`]: its doc comment, derives,
/// `Display` (the message) and `Error`.
macro_rules! select_error {
    ($(#[$doc:meta])* $name:ident, $message:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        pub struct $name;

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str($message)
            }
        }

        impl std::error::Error for $name {}
    };
}

select_error!(
    /// [`Select::try_select`] found no operation ready.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut sel = spindle::sync::Select::new();
    /// assert_eq!(sel.try_select().unwrap_err(), spindle::sync::TrySelectError);
    /// ```
    TrySelectError,
    "no select operation was ready"
);

select_error!(
    /// [`Select::select_timeout`] ran out of time before an operation was
    /// ready.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// spindle::run(|| {
    ///     let mut sel = spindle::sync::Select::new();
    ///     let e = sel.select_timeout(Duration::from_millis(1)).unwrap_err();
    ///     assert_eq!(e.to_string(), "timed out waiting on select");
    /// });
    /// ```
    SelectTimeoutError,
    "timed out waiting on select"
);
