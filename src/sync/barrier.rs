//! [`Barrier`]: `n` fibers wait until all of them have arrived (std's
//! `Barrier`).
//!
//! ## Invariants
//!
//! `arrived` counts the fibers waiting in the current *generation*. The
//! `n`-th to arrive starts a new generation (`arrived` back to 0), wakes
//! the others and is the leader. A waiter that is cancelled before its
//! generation completes withdraws (`arrived` goes down again), so the
//! barrier still needs `n` live arrivals and never releases early; one
//! cancelled after its generation completed has nothing to undo.

use std::cell::Cell;
use std::fmt;

use super::wait_queue::{WaitQueue, Waited};
use crate::runtime::wait::Parker;

const WAIT: &str = "spindle::sync::Barrier::wait";

/// A meeting point for `n` fibers (std's `Barrier`, parking the fiber).
///
/// Reusable: each time `n` fibers have arrived, they all go on and the next
/// `n` arrivals form a new generation. A waiter cancelled before its
/// generation completes withdraws its arrival, so the barrier still waits
/// for `n` live fibers. See the [`sync`](super) docs for what all the
/// primitives share.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
/// use spindle::sync::Barrier;
///
/// spindle::run(|| {
///     let barrier = Rc::new(Barrier::new(3));
///     let fibers: Vec<_> = (0..3)
///         .map(|_| {
///             let b = Rc::clone(&barrier);
///             spindle::spawn(move || b.wait().is_leader())
///         })
///         .collect();
///     let leaders = spindle::join_all(fibers).into_iter().filter(|r| *r.as_ref().unwrap()).count();
///     assert_eq!(leaders, 1);
/// });
/// ```
///
/// # `Send`
///
/// Not `Send`, as [`Mutex`](super::Mutex).
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// assert_send(spindle::sync::Barrier::new(2));
/// ```
pub struct Barrier {
    n: usize,
    arrived: Cell<usize>,
    generation: Cell<u64>,
    waiters: WaitQueue,
}

/// What [`Barrier::wait`] returns: whether this fiber was the leader (the
/// one whose arrival released the others).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// Whether this fiber was the last to arrive, which released the rest.
    /// Exactly one fiber per generation is the leader.
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl Barrier {
    /// A barrier for `n` fibers (0 and 1 never wait).
    pub const fn new(n: usize) -> Barrier {
        Barrier {
            n,
            arrived: Cell::new(0),
            generation: Cell::new(0),
            waiters: WaitQueue::new(),
        }
    }

    /// Parks the fiber until `n` fibers have called `wait` in this
    /// generation.
    ///
    /// # Panics
    ///
    /// If it must wait and the caller is not a fiber of a runtime; and as a
    /// cancellation point, when it waits (the fiber's arrival is withdrawn).
    /// During a runtime shutdown, a fiber that is already unwinding
    /// withdraws and returns at once, as a non-leader.
    #[track_caller]
    pub fn wait(&self) -> BarrierWaitResult {
        let arrived = self.arrived.get() + 1;
        if arrived >= self.n {
            self.arrived.set(0);
            self.generation.set(self.generation.get() + 1);
            self.waiters.notify_all();
            return BarrierWaitResult(true);
        }
        self.arrived.set(arrived);
        let generation = self.generation.get();
        /// Withdraws this fiber's arrival if it leaves before its
        /// generation completes (cancelled, or shutting down).
        struct Arrival<'a> {
            barrier: &'a Barrier,
            generation: u64,
        }
        impl Drop for Arrival<'_> {
            fn drop(&mut self) {
                if self.barrier.generation.get() == self.generation {
                    self.barrier.arrived.set(self.barrier.arrived.get() - 1);
                }
            }
        }
        let arrival = Arrival {
            barrier: self,
            generation,
        };
        while self.generation.get() == generation {
            let waited = {
                let p = &Parker::current(WAIT);
                self.waiters.wait(p, WAIT, 0, None, || {}, || {})
            };
            if waited != Waited::Notified {
                return BarrierWaitResult(false); // `arrival` withdraws
            }
        }
        drop(arrival);
        BarrierWaitResult(false)
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("n", &self.n)
            .field("arrived", &self.arrived.get())
            .finish()
    }
}
