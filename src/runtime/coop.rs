//! The cooperative budget: a fiber whose fiber-aware operations keep
//! completing without parking is made to yield now and then, so that it
//! cannot starve the other fibers of its thread.
//!
//! Scheduling is cooperative: a fiber runs until it parks. A loop whose
//! operations never have to wait never parks: a socket flooded by its peer
//! (every read finds data), an `accept` that fails at once with `EMFILE`
//! and is retried, a regular file read through
//! [`Async`](crate::io::Async). Such a loop would keep every other fiber
//! of the thread (timers included) from running for as long as the flood
//! lasts. tokio's answer is a per-task budget (`coop`): each resource
//! operation spends a unit, and an exhausted budget makes the next
//! operation return `Pending`. spindle's is the same idea in its terms:
//!
//! - Every fiber-aware I/O operation (the socket and `Async` operations,
//!   `wait_readable`/`wait_writable`) spends one unit when it starts.
//! - A fiber's budget is [`BUDGET`] units, and it is full again whenever
//!   the fiber has been suspended and resumed (it parked, or yielded).
//! - The operation that finds the budget spent first yields (to the back of
//!   the run queue, as [`yield_now`](crate::yield_now)), then proceeds.
//!
//! The yield comes *before* the operation, so nothing is lost when a cancel
//! is delivered there (the operation has not taken any data yet); it is a
//! cancellation point, like any wait. A fiber that parks at least once
//! every [`BUDGET`] operations never sees the budget at all.
//!
//! `spindle::sync`'s primitives spend nothing: within one runtime every
//! message, permit or unlock comes from a fiber of that runtime, so a loop
//! of operations that never wait can only drain what other fibers put
//! there before, and ends.
//!
//! ## Cost
//!
//! One thread-local read and write and the scheduler's resume counter per
//! operation, next to a system call: nothing measurable (BENCHMARKS.md,
//! "Costs of the soundness fixes").

use std::cell::Cell;

use super::wait::Parker;

/// Fiber-aware I/O operations a fiber may start in a row without parking;
/// the next one yields first (to the back of the run queue), so that a loop
/// over a socket that is always ready cannot starve the thread's other
/// fibers. 128, tokio's figure.
///
/// # Examples
///
/// A fiber reading a socket at end of stream (every read returns at once)
/// still lets a ticker run:
///
/// ```
/// use std::cell::Cell;
/// use std::io::Read;
/// use std::os::unix::net::UnixStream;
/// use std::rc::Rc;
/// use std::time::Duration;
/// use spindle::io::Async;
///
/// spindle::run(|| {
///     let ticks = Rc::new(Cell::new(0));
///     let t = ticks.clone();
///     spindle::spawn(move || loop {
///         spindle::sleep(Duration::from_millis(1));
///         t.set(t.get() + 1);
///     });
///     let (a, b) = UnixStream::pair().unwrap();
///     drop(b);
///     let mut a = Async::new(a).unwrap();
///     let mut buf = [0; 16];
///     while ticks.get() < 3 {
///         assert_eq!(a.read(&mut buf).unwrap(), 0); // never waits
///     }
/// });
/// ```
pub const BUDGET: u32 = 128;

thread_local! {
    /// The scheduler's resume count when the running fiber's budget was
    /// last refilled, and the units it has spent since.
    static SPENT: Cell<(u64, u32)> = const { Cell::new((u64::MAX, 0)) };
}

/// Spends one unit of the running fiber's budget, yielding first if it is
/// spent (module docs). Does nothing outside a fiber.
///
/// # Panics
///
/// As a cancellation point, when it yields.
#[inline]
pub(crate) fn proceed() {
    let Some(me) = Parker::try_current() else {
        return;
    };
    // `resumes` counts finished resumes: it changes exactly when some fiber
    // has been suspended since this one was last resumed, which includes
    // this one having been suspended itself.
    let resumes = me.resumes();
    let (refilled, spent) = SPENT.with(Cell::get);
    let spent = if refilled == resumes { spent + 1 } else { 1 };
    if spent <= BUDGET {
        SPENT.with(|c| c.set((resumes, spent)));
        return;
    }
    // Shutting down (Interrupted): proceed without yielding.
    let _ = me.yield_now();
    SPENT.with(|c| c.set((me.resumes(), 1)));
}
