//! [`SyncSender`]: the sending end of a bounded
//! [`sync_channel`](super::sync_channel); see `channel.rs` for the state
//! and its invariants.
//!
//! Senders wait for room in FIFO order: a sender that finds others queued
//! for room queues behind them even if there is room now (so does
//! `try_send`, which then reports the channel full), and each message
//! taken out notifies the next one.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::channel::{
    add_sender, drop_sender, offered, push, room, Chan, ChanGuard, SendError, TrySendError,
};
use super::wait_queue::Waited;

const SEND: &str = "spindle::sync::shared::SyncSender::send";

/// The sending end of a [`sync_channel`](super::sync_channel): `Send`,
/// `Sync` and `Clone`.
///
/// # Examples
///
/// A plain thread fills a channel of two; a fiber drains it:
///
/// ```
/// let rt = spindle::Runtime::builder().workers(2).build()?;
/// rt.block_on(|| {
///     let (tx, rx) = spindle::sync::shared::sync_channel(2);
///     let producer = std::thread::spawn(move || {
///         for i in 0..10 {
///             tx.send(i).unwrap(); // blocks while two are queued
///         }
///     });
///     let got: Vec<i32> = rx.iter().collect();
///     assert_eq!(got, (0..10).collect::<Vec<_>>());
///     producer.join().unwrap();
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # `Send`
///
/// ```
/// fn assert_send_sync<T: Send + Sync>() {}
/// assert_send_sync::<spindle::sync::shared::SyncSender<String>>();
/// ```
pub struct SyncSender<T> {
    chan: Arc<Chan<T>>,
}

/// What `send_until` returns: the message back, and why.
fn back<T>(disconnected: bool, t: T) -> TrySendError<T> {
    if disconnected {
        TrySendError::Disconnected(t)
    } else {
        TrySendError::Full(t)
    }
}

impl<T> SyncSender<T> {
    pub(super) fn new(chan: Arc<Chan<T>>) -> SyncSender<T> {
        SyncSender { chan }
    }

    /// Sends `t`, waiting while the channel is full (and, on a rendezvous
    /// channel, until the receiver has taken it): a fiber parks, any other
    /// caller blocks its thread.
    ///
    /// # Examples
    ///
    /// See [`SyncSender`].
    ///
    /// # Panics
    ///
    /// As a cancellation point, when a fiber waits: the message is not sent
    /// (on a rendezvous channel, one the receiver has not taken yet is taken
    /// back).
    ///
    /// # Errors
    ///
    /// [`SendError`] with `t` back if the receiver is gone (or goes before
    /// taking a rendezvous message), or if the runtime shuts down while the
    /// fiber, already unwinding, would have to wait.
    pub fn send(&self, t: T) -> Result<(), SendError<T>> {
        self.send_until(t, None).map_err(|e| match e {
            TrySendError::Full(t) | TrySendError::Disconnected(t) => SendError(t),
        })
    }

    /// Sends `t` if the channel has room now and no other sender is queued
    /// for it, without waiting. On a rendezvous channel that means the
    /// receiver is waiting (the message is then handed to it).
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::sync::shared::{sync_channel, TrySendError};
    ///
    /// let (tx, rx) = sync_channel(1);
    /// assert_eq!(tx.try_send(1), Ok(()));
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// drop(rx);
    /// assert_eq!(tx.try_send(3), Err(TrySendError::Disconnected(3)));
    /// ```
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] if there is no room,
    /// [`TrySendError::Disconnected`] if the receiver is gone; both give `t`
    /// back.
    pub fn try_send(&self, t: T) -> Result<(), TrySendError<T>> {
        let mut g = self.chan.lock();
        if !g.receiver {
            return Err(TrySendError::Disconnected(t));
        }
        let ready = match g.capacity {
            Some(0) => g.has_room() && g.receiver_waits(),
            _ => g.has_room(),
        };
        if !ready || !g.room.is_empty() {
            return Err(TrySendError::Full(t));
        }
        push(&mut g, t);
        Ok(())
    }

    /// Sends `t`, waiting at most `timeout` for room (on a rendezvous
    /// channel: for the receiver to take it; a message not taken in time is
    /// taken back).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use spindle::sync::shared::{sync_channel, TrySendError};
    ///
    /// let (tx, rx) = sync_channel(0);
    /// // Nobody receives: the message comes back.
    /// assert_eq!(tx.send_timeout(1, Duration::from_millis(5)), Err(TrySendError::Full(1)));
    /// assert_eq!(rx.try_recv().ok(), None);
    /// ```
    ///
    /// # Panics
    ///
    /// As [`send`](Self::send).
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] with `t` back if the time ran out,
    /// [`TrySendError::Disconnected`] if the receiver is gone.
    pub fn send_timeout(&self, t: T, timeout: Duration) -> Result<(), TrySendError<T>> {
        self.send_until(t, Instant::now().checked_add(timeout))
    }

    fn send_until(&self, t: T, deadline: Option<Instant>) -> Result<(), TrySendError<T>> {
        let mut g = self.chan.lock();
        loop {
            if !g.receiver {
                return Err(TrySendError::Disconnected(t));
            }
            // Room, and no earlier sender queued for it (they go first).
            if g.has_room() && g.room.is_empty() {
                break;
            }
            let (ng, waited) = g.wait(room, SEND, 0, deadline, |g| {
                g.notify_one(room);
            });
            g = ng;
            match waited {
                Waited::Notified => {
                    if g.has_room() && g.receiver {
                        break;
                    }
                }
                Waited::TimedOut => return Err(TrySendError::Full(t)),
                Waited::Interrupted => return Err(TrySendError::Disconnected(t)),
            }
        }
        let number = push(&mut g, t);
        if g.capacity == Some(0) {
            return self.await_taken(g, number, deadline);
        }
        // Room may be left for the next queued sender.
        if g.has_room() {
            g.notify_one(room);
        }
        Ok(())
    }

    /// Rendezvous: waits until message `number` (the one just pushed, the
    /// only one in the buffer) has been taken. If the receiver goes first,
    /// the deadline passes or the runtime shuts down, takes it back and
    /// returns it; if the fiber is cancelled meanwhile, takes it back and
    /// drops it.
    fn await_taken(
        &self,
        mut g: ChanGuard<'_, T>,
        number: u64,
        deadline: Option<Instant>,
    ) -> Result<(), TrySendError<T>> {
        /// Takes the message back out if the receiver has not taken it.
        fn take_back<T>(g: &mut ChanGuard<'_, T>, number: u64) -> Option<T> {
            if g.taken >= number {
                return None;
            }
            let t = g.buffer.pop_back();
            g.sent -= 1;
            // The slot is free again for the next queued sender.
            g.notify_one(room);
            t
        }
        /// Takes the message back when the fiber unwinds out of its wait.
        struct TakeBack<'a, T> {
            chan: &'a Chan<T>,
            number: u64,
        }
        impl<T> Drop for TakeBack<'_, T> {
            fn drop(&mut self) {
                let t = take_back(&mut self.chan.lock(), self.number);
                drop(t); // outside the lock
            }
        }
        let guard = TakeBack {
            chan: &self.chan,
            number,
        };
        let disconnected = loop {
            if g.taken >= number {
                std::mem::forget(guard);
                return Ok(());
            }
            if !g.receiver {
                break true;
            }
            let (ng, waited) = g.wait(offered, SEND, 0, deadline, |g| {
                g.notify_all(offered);
            });
            g = ng;
            match waited {
                Waited::Notified => {}
                Waited::TimedOut => break false,
                Waited::Interrupted => break true,
            }
        };
        std::mem::forget(guard);
        match take_back(&mut g, number) {
            Some(t) => {
                drop(g);
                Err(back(disconnected, t))
            }
            // Taken at the last moment: delivered after all.
            None => Ok(()),
        }
    }
}

impl<T> Clone for SyncSender<T> {
    fn clone(&self) -> SyncSender<T> {
        SyncSender {
            chan: add_sender(&self.chan),
        }
    }
}

impl<T> Drop for SyncSender<T> {
    fn drop(&mut self) {
        drop_sender(&self.chan);
    }
}

impl<T> fmt::Debug for SyncSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncSender").finish_non_exhaustive()
    }
}
