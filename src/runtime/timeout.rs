//! [`timeout`]: run a closure in a fiber, and cancel it at a deadline.

use std::error::Error;
use std::fmt;
use std::time::{Duration, Instant};

use super::join::{unwrap_or_resume, wait_for, JoinHandle, Waited};
use super::spawn::Builder;
use super::wait::Parker;

/// The error of [`timeout`]: the deadline passed before the closure
/// finished, and its fiber was cancelled.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// spindle::run(|| {
///     let e = spindle::timeout(Duration::from_millis(1), || {
///         spindle::sleep(Duration::from_secs(10))
///     })
///     .unwrap_err();
///     assert_eq!(e.to_string(), "deadline of 1ms elapsed");
/// });
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Elapsed {
    after: Duration,
}

impl Elapsed {
    /// The time limit that was exceeded.
    pub fn duration(&self) -> Duration {
        self.after
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "deadline of {:?} elapsed", self.after)
    }
}

impl Error for Elapsed {}

/// Cancels the fiber when dropped, which only an unwind out of the wait
/// does: the normal path disarms it (`mem::forget`), and the early returns
/// have cancelled the fiber already. (Not `thread::panicking`, which is per
/// thread and may be set by another fiber parked in an unwind.)
struct CancelOnUnwind<'a, T>(&'a JoinHandle<T>);

impl<T> Drop for CancelOnUnwind<'_, T> {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Runs `f` in a new fiber and waits at most `dur` for it (asyncio's
/// `wait_for`). If the deadline passes first, the fiber is cancelled: it
/// unwinds at its current suspension point, its destructors run, and once it
/// has finished unwinding `timeout` returns [`Elapsed`].
///
/// `f` runs in its own fiber (so it can be cancelled without cancelling the
/// caller), with the runtime's default stack size. A closure that never
/// reaches a suspension point cannot be interrupted: it finishes, and its
/// value is returned even if that took longer than `dur`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// spindle::run(|| {
///     assert_eq!(spindle::timeout(Duration::from_secs(1), || 5), Ok(5));
/// });
/// ```
///
/// # Panics
///
/// Outside a fiber of a runtime; if `f` panics, with its payload (as if it
/// had been called directly); if no stack can be had for the fiber; and as a
/// cancellation point: cancelling the caller cancels `f`'s fiber too.
///
/// # Errors
///
/// [`Elapsed`] when the deadline passed and `f` was cancelled (a fiber that
/// catches its cancellation and returns a value anyway yields `Ok`).
#[track_caller]
pub fn timeout<F, T>(dur: Duration, f: F) -> Result<T, Elapsed>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    let p = Parker::current("spindle::timeout");
    let start = Instant::now();
    let deadline = start.checked_add(dur);
    let h = match Builder::new().spawn(f) {
        Ok(h) => h,
        Err(e) => panic!("spindle::timeout: failed to create a fiber: {e}"),
    };
    let guard = CancelOnUnwind(&h);
    match wait_for(&p, &[h.slot()], deadline) {
        Waited::Finished => {}
        Waited::TimedOut => {
            h.cancel();
            // The fiber unwinds at once (it was parked or is ready).
            if let Waited::Interrupted = wait_for(&p, &[h.slot()], None) {
                return Err(Elapsed { after: dur });
            }
        }
        Waited::Interrupted => {
            h.cancel();
            return Err(Elapsed { after: dur });
        }
    }
    std::mem::forget(guard);
    unwrap_or_resume(h.take_result()).map_err(|()| Elapsed { after: dur })
}
