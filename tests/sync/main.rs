//! `spindle::sync`: what each primitive promises, and that a fiber cancelled
//! while it waits on one leaves the primitive consistent.
//!
//! One file per area: `channel` (close semantics, iterators, drops),
//! `bounded` (back-pressure, `try_send`, `send_timeout`, rendezvous), `mutex`
//! (FIFO handoff, exclusion across suspension points), `semaphore`,
//! `condvar`, `wait_group`, `barrier`, `rwlock`, `event`,
//! `once_cell`, `select`, `cancel` (a fiber cancelled while
//! blocked on each primitive), `deadlock` (the report names the primitive)
//! and `outside` (calls made with no runtime).
//!
//! Timing: nothing here asserts an upper bound on time, because the suite
//! also runs under QEMU, 10-30x slower. Orderings come from the round-robin
//! run queue (spawn, yield and wake-up all go to the back), and sleeps are
//! only checked from below. A test that expects a wake-up checks
//! `is_finished` after [`settle`] instead of joining, so that a lost wake-up
//! fails with a message instead of the deadlock report.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use spindle::sync::{
    channel, sync_channel, Barrier, Condvar, Event, Mutex, OnceCell, Receiver, RecvError,
    RecvTimeoutError, RwLock, Semaphore, SendError, Sender, TryRecvError, TrySendError, WaitGroup,
};
use spindle::{JoinError, JoinHandle, TaskId, TaskState};

mod barrier;
mod bounded;
mod cancel;
mod channel;
mod condvar;
mod deadlock;
mod event;
mod mutex;
mod once_cell;
mod outside;
mod rwlock;
mod select;
mod semaphore;
mod wait_group;

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn push(log: &Log, s: impl Into<String>) {
    log.borrow_mut().push(s.into());
}

/// Sets its flag when dropped: proves a destructor on a fiber's stack ran.
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// A message that counts its drops in a shared cell: proves each one is
/// dropped exactly once.
#[derive(Debug)]
struct Counted {
    id: u32,
    drops: Rc<Cell<usize>>,
}

impl Counted {
    fn new(id: u32, drops: &Rc<Cell<usize>>) -> Counted {
        Counted {
            id,
            drops: Rc::clone(drops),
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + 1);
    }
}

/// Waits on a channel in its destructor: a fiber unwinding through it
/// parks mid-unwind until the channel's sender is dropped (the runtime lets
/// destructors wait; scheduler docs, `Cancel::Delivered`).
struct WaitOnDrop(Receiver<()>);

impl Drop for WaitOnDrop {
    fn drop(&mut self) {
        let _ = self.0.recv();
    }
}

/// Spawns a fiber, cancels it, and lets it unwind into a [`WaitOnDrop`],
/// where it stays parked in the middle of its unwind until the returned
/// sender is dropped. Returns the sender and the fiber's handle.
#[track_caller]
fn park_a_fiber_mid_unwind() -> (Sender<()>, JoinHandle<()>) {
    let (gate_tx, gate_rx) = channel::<()>();
    let unwinding = spindle::spawn(move || {
        let _waits_in_drop = WaitOnDrop(gate_rx);
        spindle::sleep(Duration::from_secs(3600));
    });
    settle();
    unwinding.cancel();
    settle(); // it unwinds into its destructor and parks there
    assert_waiting_sync(&unwinding);
    (gate_tx, unwinding)
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Yields enough times for every chain of wake-ups these tests set up to
/// run its course (each yield gives every ready fiber one turn).
fn settle() {
    for _ in 0..10 {
        spindle::yield_now();
    }
}

fn state_of(id: TaskId) -> Option<TaskState> {
    spindle::tasks()
        .into_iter()
        .find(|t| t.id() == id)
        .map(|t| t.state())
}

#[track_caller]
fn assert_waiting_sync<T>(h: &JoinHandle<T>) {
    assert_eq!(
        state_of(h.id()),
        Some(TaskState::WaitingSync),
        "fiber {} should be parked on a sync primitive",
        h.id()
    );
}

#[track_caller]
fn assert_cancelled<T>(h: JoinHandle<T>) {
    match h.join() {
        Err(JoinError::Cancelled) => {}
        Err(e) => panic!("expected JoinError::Cancelled, got {e:?}"),
        Ok(_) => panic!("expected JoinError::Cancelled, but the fiber returned"),
    }
}

/// Spawns `f` in a fiber that holds a [`DropFlag`] on its stack while `f`
/// runs; returns the handle and the flag.
fn spawn_guarded<T: 'static>(f: impl FnOnce() -> T + 'static) -> (JoinHandle<T>, Rc<Cell<bool>>) {
    let flag = Rc::new(Cell::new(false));
    let guard = DropFlag(Rc::clone(&flag));
    let h = spindle::spawn(move || {
        let _guard = guard;
        f()
    });
    (h, flag)
}

/// Checks the fiber is parked on a primitive with its destructors not yet
/// run, cancels it, and checks it ended as cancelled with them run.
#[track_caller]
fn cancel_blocked<T>(h: JoinHandle<T>, flag: &Cell<bool>) {
    assert_waiting_sync(&h);
    assert!(!flag.get(), "the fiber's destructors ran before the cancel");
    h.cancel();
    assert_cancelled(h);
    assert!(flag.get(), "the cancelled fiber's destructors did not run");
}
