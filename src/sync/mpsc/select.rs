//! The channel ends as [`select!`](crate::select) operations: when each
//! is ready, which queues its select waits in, and how it completes.
//!
//! | operation | ready when (as the `try_` call would not say "empty"/"full") | waits in |
//! |---|---|---|
//! | `recv` | a message is there, or every sender is gone | `receivers_waiting` |
//! | `send`, unbounded | always | (never waits) |
//! | `send`, bounded | room, or the receiver is gone | `senders_waiting` |
//! | `send`, rendezvous | no message pending and a receiver waits, or the receiver is gone | `senders_waiting` (the pending message taken), `offers_waiting` (a receiver arrived) |
//!
//! A select that waits to receive on a rendezvous channel counts as a
//! waiting receiver, so it notifies `offers_waiting` once registered, as a
//! parked `recv` does. Completing an operation is the plain call (`recv`,
//! `send`; `try_send` for a bounded channel, so that a rendezvous send
//! returns once the message is handed to the waiting receiver rather than
//! waiting for it to run), which also passes on whatever notification is
//! left for the next waiter.

use super::{Chan, Receiver, RecvError, SendError, Sender, SyncSender, TrySendError};
use crate::sync::select::{sealed, Operand, Select, SelectRecv, SelectSend};
use crate::sync::wait_queue::WaitQueue;

/// The queues an operation waits in: one or two.
type Queues<'a> = (&'a WaitQueue, Option<&'a WaitQueue>);

impl<T> Chan<T> {
    /// Whether `try_recv` would not say `Empty`.
    fn can_recv_now(&self) -> bool {
        // `pop` leaves a message whose rendezvous sender is being cancelled.
        let pending_take_back = self
            .offering
            .get()
            .is_some_and(crate::runtime::wait::LocalWaker::is_cancel_pending);
        (!self.buffer.borrow().is_empty() && !pending_take_back) || self.senders.get() == 0
    }

    /// Whether `try_send` would not say `Full`.
    fn can_send_now_or_closed(&self) -> bool {
        !self.receiver_alive.get() || self.can_send_now()
    }

    fn send_queues(&self) -> Queues<'_> {
        let offers = (self.capacity == Some(0)).then_some(&self.offers_waiting);
        (&self.senders_waiting, offers)
    }
}

impl<T> Operand for Receiver<T> {
    fn is_ready(&self) -> bool {
        self.chan.can_recv_now()
    }
    fn wait_queues(&self) -> Queues<'_> {
        (&self.chan.receivers_waiting, None)
    }
    fn registered(&self) {
        self.chan.receiver_arrived();
    }
}

impl<T> Operand for Sender<T> {
    fn is_ready(&self) -> bool {
        true // unbounded: a send never waits
    }
    fn wait_queues(&self) -> Queues<'_> {
        self.chan.send_queues()
    }
    fn registered(&self) {}
}

impl<T> Operand for SyncSender<T> {
    fn is_ready(&self) -> bool {
        self.chan.can_send_now_or_closed()
    }
    fn wait_queues(&self) -> Queues<'_> {
        self.chan.send_queues()
    }
    fn registered(&self) {}
}

/// The two methods every channel end's public select trait forwards to its
/// `Operand` impl.
macro_rules! operand_identity {
    () => {
        fn __add_to<'a>(&'a self, sel: &mut Select<'a>) -> usize {
            sel.add(self)
        }
        fn __id(&self) -> *const () {
            Operand::id(self)
        }
    };
}

impl<T> sealed::Sealed for Receiver<T> {}
impl<T> sealed::Sealed for Sender<T> {}
impl<T> sealed::Sealed for SyncSender<T> {}

impl<T> SelectRecv for Receiver<T> {
    type Item = T;
    operand_identity!();
    #[track_caller]
    fn __recv(&self) -> Result<T, RecvError> {
        self.recv()
    }
}

impl<T> SelectSend for Sender<T> {
    type Item = T;
    operand_identity!();
    #[track_caller]
    fn __send(&self, t: T) -> Result<(), SendError<T>> {
        self.send(t)
    }
}

impl<T> SelectSend for SyncSender<T> {
    type Item = T;
    operand_identity!();
    #[track_caller]
    fn __send(&self, t: T) -> Result<(), SendError<T>> {
        match self.try_send(t) {
            Ok(()) => {
                // Room may be left for the next queued sender.
                if self.chan.has_room() {
                    self.chan.senders_waiting.notify_one();
                }
                Ok(())
            }
            Err(TrySendError::Disconnected(t)) => Err(SendError(t)),
            // Not ready any more (the fiber suspended between the select
            // and this call): wait as a plain send does.
            Err(TrySendError::Full(t)) => self.send(t),
        }
    }
}
