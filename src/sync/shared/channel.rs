//! [`channel`]: an unbounded multi-producer, single-consumer queue between
//! threads, fibers of any worker included.
//!
//! ## Invariants
//!
//! Everything sits under one mutex: the queue, the count of live senders,
//! whether the receiver lives, the receiver's registered fiber waker (at
//! most one: there is one receiver), and whether a plain thread waits on the
//! condition variable. A send pushes and takes the waker under the lock,
//! then wakes after releasing it; a receive that finds the queue empty
//! registers under the same lock it checked under, so no message can slip
//! between the check and the registration. Messages come out in the order
//! they went in (so per producer, in its order).

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::runtime::wait::{self, Parker, RemoteWaker};

pub use std::sync::mpsc::{RecvError, SendError, TryRecvError};

struct State<T> {
    queue: VecDeque<T>,
    senders: usize,
    receiver: bool,
    fiber: Option<RemoteWaker>,
    thread_waits: bool,
}

struct Chan<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
}

impl<T> Chan<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // No user code runs under the lock; a poisoned one is consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the receiver, if it waits (called with the lock released).
    fn wake(&self, fiber: Option<RemoteWaker>, thread: bool) {
        if let Some(w) = fiber {
            wait::wake(&w);
        }
        if thread {
            self.ready.notify_one();
        }
    }
}

/// Creates a channel whose ends may live on any threads (std's
/// `mpsc::channel`).
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
    let chan = Arc::new(Chan {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            senders: 1,
            receiver: true,
            fiber: None,
            thread_waits: false,
        }),
        ready: Condvar::new(),
    });
    (
        Sender {
            chan: Arc::clone(&chan),
        },
        Receiver {
            chan,
            _not_sync: PhantomData,
        },
    )
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
        let (fiber, thread) = {
            let mut st = self.chan.lock();
            if !st.receiver {
                return Err(SendError(t));
            }
            st.queue.push_back(t);
            (st.fiber.take(), st.thread_waits)
        };
        self.chan.wake(fiber, thread);
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        self.chan.lock().senders += 1;
        Sender {
            chan: Arc::clone(&self.chan),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let (fiber, thread) = {
            let mut st = self.chan.lock();
            st.senders -= 1;
            if st.senders > 0 {
                return;
            }
            (st.fiber.take(), st.thread_waits)
        };
        // The last sender: a waiting receiver must see the disconnection.
        self.chan.wake(fiber, thread);
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

/// The receiving end of a [`channel`]: `Send` but not `Sync` (one receiver,
/// on any thread, used by one fiber or thread at a time), as std's.
///
/// # Examples
///
/// See [`channel`].
///
/// # `Send`
///
/// ```
/// fn assert_send<T: Send>() {}
/// assert_send::<spindle::sync::shared::Receiver<String>>();
/// ```
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
    /// `!Sync`, as std's: the channel keeps one waiting receiver, so two
    /// threads receiving through one `&Receiver` could lose a wake-up.
    _not_sync: PhantomData<Cell<()>>,
}

/// Clears the receiver's fiber waker on every way out of a wait.
struct Registration<'a, T>(&'a Chan<T>);

impl<T> Drop for Registration<'_, T> {
    fn drop(&mut self) {
        let waker = self.0.lock().fiber.take();
        drop(waker);
    }
}

impl<T> Receiver<T> {
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
    /// As a cancellation point, when a fiber waits.
    ///
    /// # Errors
    ///
    /// [`RecvError`] once the queue is empty and every sender is gone.
    pub fn recv(&self) -> Result<T, RecvError> {
        let chan = &*self.chan;
        match Parker::try_current() {
            Some(p) => {
                if p.checkpoint().is_err() {
                    return Err(RecvError);
                }
                let _registration = Registration(chan);
                loop {
                    {
                        let mut st = chan.lock();
                        if let Some(t) = st.queue.pop_front() {
                            return Ok(t);
                        }
                        if st.senders == 0 {
                            return Err(RecvError);
                        }
                        if st.fiber.is_none() {
                            st.fiber = Some(p.remote_waker());
                        }
                    }
                    if p.park("spindle::sync::shared::Receiver::recv").is_err() {
                        return Err(RecvError);
                    }
                }
            }
            None => {
                let mut st = chan.lock();
                loop {
                    if let Some(t) = st.queue.pop_front() {
                        st.thread_waits = false;
                        return Ok(t);
                    }
                    if st.senders == 0 {
                        st.thread_waits = false;
                        return Err(RecvError);
                    }
                    st.thread_waits = true;
                    st = chan.ready.wait(st).unwrap_or_else(PoisonError::into_inner);
                }
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
        let mut st = self.chan.lock();
        match st.queue.pop_front() {
            Some(t) => Ok(t),
            None if st.senders == 0 => Err(TryRecvError::Disconnected),
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
            let mut st = self.chan.lock();
            st.receiver = false;
            std::mem::take(&mut st.queue)
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
