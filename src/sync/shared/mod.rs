//! Synchronisation that crosses threads: between fibers of different
//! workers of a runtime (see [`spawn_on`](crate::spawn_on)), and between
//! fibers and plain OS threads.
//!
//! | primitive | std / spindle counterpart | waits in |
//! |---|---|---|
//! | [`channel`] | `std::sync::mpsc::channel` | `recv` |
//! | [`sync_channel`] | `std::sync::mpsc::sync_channel` | `recv`; `SyncSender::send` when full (always, with a bound of 0) |
//! | [`Mutex`] | `std::sync::Mutex` (with its poisoning) | `lock` |
//! | [`Semaphore`] | [`spindle::sync::Semaphore`](crate::sync::Semaphore) | `acquire` |
//! | [`WaitGroup`] | [`spindle::sync::WaitGroup`](crate::sync::WaitGroup), Go's `sync.WaitGroup` | `wait` |
//!
//! ## Which to pick
//!
//! [`spindle::sync`](crate::sync) is for the fibers of one worker: `!Send`,
//! no atomics, a wake-up is a push onto the run queue. The types here are
//! `Send` and `Sync` where std's are, at the price of a mutex and, for a
//! waiter, a wake-up through its worker's inbox. Use them only where a
//! value really crosses threads:
//!
//! - between fibers of *different* workers (placed with
//!   [`spawn_on`](crate::spawn_on) or [`spawn_balanced`](crate::spawn_balanced));
//! - between fibers and plain threads (a thread feeding fibers, fibers
//!   handing results to a thread pool, a lock both take);
//! - in a `static` (their constructors are `const`).
//!
//! Between the fibers of one worker, `spindle::sync` is the right choice:
//! same names and fairness, no atomics, and the richer set (condition
//! variables, `select!`, read-write locks, barriers). std's own
//! `Mutex` or channels would block the whole worker thread, and with it
//! every other fiber of that worker, while one fiber waits: never wait on
//! them from a fiber.
//!
//! ## How a wait works
//!
//! Every primitive keeps its state and a FIFO queue per kind of wait under
//! one lock (the queue is in `src/sync/shared/wait_queue.rs`). A fiber
//! that must wait leaves a waker of its own (one that any thread may use)
//! in the queue and parks; whoever makes its condition true wakes it
//! through its worker's inbox (from any thread), or directly when it runs
//! that worker. A plain thread that must wait blocks in
//! `std::thread::park` (a futex) instead. Either way the waiter re-checks
//! when it wakes, so a spurious wake-up is harmless.
//!
//! ## Fairness and cancellation
//!
//! As in [`spindle::sync`](crate::sync): waiters, fibers and threads alike,
//! are served in the order they started waiting, and a lock or permits
//! are handed straight to the waiter at the front (under the lock, so
//! nobody can take them in between), so nobody starves. Every wait of a
//! fiber is a cancellation point: a cancelled fiber unwinds out of it and
//! the primitive stays consistent (a message stays in its channel; a lock
//! or permits handed to it are passed on; a rendezvous message not taken
//! yet is taken back). A plain thread's wait cannot be cancelled.
//!
//! Calls that need not wait never park or block (a `recv` with a message
//! there, a free lock), and every call works outside a runtime too.
//!
//! A fiber waiting here leaves a waker that any thread may use, so its
//! worker counts it as wakeable from elsewhere: unlike a wait in
//! `spindle::sync`, it never shows up in the deadlock report.

mod channel;
mod mutex;
mod semaphore;
mod sync_sender;
mod wait_group;
mod wait_queue;

pub use channel::{
    channel, sync_channel, Receiver, RecvError, RecvTimeoutError, SendError, Sender, TryRecvError,
    TrySendError,
};
pub use mutex::{Mutex, MutexGuard};
pub use semaphore::{Semaphore, SemaphorePermit};
pub use sync_sender::SyncSender;
pub use wait_group::WaitGroup;
