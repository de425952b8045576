//! Synchronisation between the fibers of one runtime: channels, locks,
//! condition variables, semaphores, wait groups and barriers, with std's
//! names, that park the *fiber* and never block the thread.
//!
//! | primitive | std / Go / asyncio counterpart | waits in |
//! |---|---|---|
//! | [`channel`], [`sync_channel`] | `std::sync::mpsc` | `recv`; `SyncSender::send` when full |
//! | [`Mutex`] | `std::sync::Mutex`, `asyncio.Lock` | `lock` |
//! | [`Condvar`] | `std::sync::Condvar`, `asyncio.Condition` | `wait` |
//! | [`Semaphore`] | `asyncio.Semaphore`, tokio's `Semaphore` | `acquire` |
//! | [`WaitGroup`] | Go's `sync.WaitGroup` | `wait` |
//! | [`Barrier`] | `std::sync::Barrier` | `wait` |
//! | [`select!`](crate::select), [`Select`] | Go's `select`, crossbeam-channel's `select!` | until one of several channel operations can go ahead |
//! | [`RwLock`] | `std::sync::RwLock`, tokio's `RwLock` | `read`, `write` |
//! | [`Event`] | `asyncio.Event`, gevent's `Event` | `wait` |
//! | [`OnceCell`] | `std::cell::OnceCell`, tokio's `OnceCell` | `get_or_init` while another fiber initialises |
//!
//! ## One runtime, one thread
//!
//! Every primitive here is `!Send`: it is shared between fibers with `Rc`,
//! not between threads with `Arc`. Fibers never change threads (a fiber
//! runs on the thread that created it until it ends), and the fibers of a
//! runtime's worker all run on its thread, so a primitive needs no atomics
//! and no lock of its own, and a wake-up is a push onto the run queue.
//! (asyncio's and gevent's primitives are single-threaded for the same
//! reason.) To hand work to or from other
//! threads, use [`spawn_blocking`](crate::spawn_blocking), or the
//! cross-thread primitives of [`shared`].
//!
//! ## Waiting, fairness, cancellation
//!
//! All of them wait the same way, in a FIFO wait queue (`src/sync/wait_queue.rs`): fibers
//! are served in the order they started waiting, and a lock or permits are
//! handed straight to the next waiter, so nobody starves. Every wait is a
//! cancellation point ([`JoinHandle::cancel`](crate::JoinHandle::cancel)):
//! a cancelled fiber unwinds out of it, and the primitive stays consistent
//! (a message stays in its channel, a lock or permit handed to it is passed
//! on, a barrier arrival is withdrawn). A wait that can never end shows up
//! in the deadlock report with what it waits on.
//!
//! Calls that do not need to wait (a `recv` with a message there, a free
//! lock) never suspend, and work outside a runtime too; a call that would
//! have to wait panics there, as every suspension point does.

mod barrier;
mod condvar;
mod event;
mod mpsc;
mod mutex;
mod once_cell;
mod rwlock;
mod select;
mod select_macro;
mod semaphore;
pub mod shared;
mod wait_group;
pub(crate) mod wait_queue;

pub use barrier::{Barrier, BarrierWaitResult};
pub use condvar::{Condvar, WaitTimeoutResult};
pub use event::Event;
pub use mpsc::{
    channel, sync_channel, IntoIter, Iter, Receiver, RecvError, RecvTimeoutError, SendError,
    Sender, SyncSender, TryIter, TryRecvError, TrySendError,
};
pub use mutex::{Mutex, MutexGuard};
pub use once_cell::OnceCell;
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use select::{
    Select, SelectRecv, SelectSend, SelectTimeoutError, SelectedOperation, TrySelectError,
};
pub use semaphore::{Semaphore, SemaphorePermit};
pub use wait_group::WaitGroup;
