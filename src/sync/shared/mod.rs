//! Synchronisation that crosses threads: between fibers of different
//! workers of a runtime (see [`spawn_on`](crate::spawn_on)), and between
//! fibers and plain OS threads.
//!
//! | primitive | std counterpart | waits in |
//! |---|---|---|
//! | [`channel`] | `std::sync::mpsc::channel` | `recv` |
//!
//! ## Which to pick
//!
//! [`spindle::sync`](crate::sync) is for the fibers of one worker: `!Send`,
//! no atomics, a wake-up is a push onto the run queue. The types here are
//! `Send` and `Sync` where std's are, at the price of a mutex and, for a
//! waiter, a wake-up through its worker's inbox. Use them only where a
//! value really crosses threads.
//!
//! ## How a wait works
//!
//! A fiber that must wait parks its fiber: it leaves a waker of its own (one
//! that any thread may use) in the primitive and parks;
//! whoever makes its condition true wakes it through its worker's inbox
//! (from any thread). A plain thread that must wait blocks on a condition
//! variable instead. Either way the waiter re-checks its condition when it
//! wakes, so a spurious wake-up is harmless; a fiber's wait is a
//! cancellation point.
//!
//! Not yet here: `sync_channel`, `Mutex`, `Semaphore`, `WaitGroup`.

mod channel;

pub use channel::{channel, Receiver, RecvError, SendError, Sender, TryRecvError};
