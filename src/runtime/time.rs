//! [`sleep`] and [`sleep_until`]: a fiber waits for a deadline.
//!
//! The timer itself ([`Timer`](super::wait::Timer)) lives in the scheduler's
//! sleep queue (`scheduler/sleep_queue.rs`, with its data structure and
//! costs); a sleep sets one, parks, and re-checks until it has fired.

use std::time::{Duration, Instant};

use super::task::{TaskState, WaitingOn};
use super::wait::Parker;

/// Puts the running fiber to sleep for at least `dur`; other fibers run
/// meanwhile.
///
/// A zero (or already elapsed) sleep still suspends: the fiber goes to the
/// back of the run queue, as with [`yield_now`](crate::yield_now).
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// spindle::run(|| {
///     let start = Instant::now();
///     spindle::sleep(Duration::from_millis(5));
///     assert!(start.elapsed() >= Duration::from_millis(5));
/// });
/// ```
///
/// # Panics
///
/// Outside a runtime. If the fiber is cancelled while it sleeps, the sleep
/// unwinds it (see [`JoinHandle::cancel`](crate::JoinHandle::cancel)).
#[track_caller]
#[inline(always)]
pub fn sleep(dur: Duration) {
    let now = Instant::now();
    // A deadline past what Instant can hold is a century away in practice.
    let deadline = now
        .checked_add(dur)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600));
    sleep_until(deadline);
}

/// Puts the running fiber to sleep until `deadline` (never wakes it before).
///
/// A deadline in the past still suspends the fiber once, as
/// [`yield_now`](crate::yield_now) does.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// spindle::run(|| {
///     let deadline = Instant::now() + Duration::from_millis(3);
///     spindle::sleep_until(deadline);
///     assert!(Instant::now() >= deadline);
/// });
/// ```
///
/// # Panics
///
/// Outside a runtime; and as [`sleep`] when cancelled.
#[track_caller]
#[inline(always)]
pub fn sleep_until(deadline: Instant) {
    // No closure, so this inlines into the caller's frame (a frame live
    // across the switch costs a mispredicted return: see `Parker::current`).
    let p = Parker::current("spindle::sleep_until");
    if Instant::now() >= deadline {
        let _ = p.yield_now();
        return;
    }
    if p.checkpoint().is_err() {
        return;
    }
    let timer = p.timer(deadline);
    loop {
        if p.park_in(TaskState::Sleeping, WaitingOn::Nothing).is_err() || timer.fired() {
            return;
        }
    }
}
