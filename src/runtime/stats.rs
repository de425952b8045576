//! [`task_stats`]: the accounts of the caller's worker's fibers (the
//! public side of `observe/accounting.rs`).

use super::observe::TaskStats;
use super::wait::with_runtime;

/// The account of every live fiber of the caller's worker, in id order:
/// resumes, time running, time parked (see [`TaskStats`]). All zero unless
/// the runtime was built with
/// [`accounting(true)`](crate::runtime::RuntimeBuilder::accounting).
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let rt = spindle::Runtime::builder().accounting(true).build()?;
/// rt.block_on(|| {
///     let busy = Instant::now();
///     while busy.elapsed() < Duration::from_millis(5) {}
///     spindle::yield_now(); // ends the main fiber's first resume
///     let me = &spindle::task_stats()[0];
///     assert_eq!(me.name.as_deref(), Some("main"));
///     assert_eq!(me.resumes, 1);
///     assert!(me.running >= Duration::from_millis(5));
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Panics
///
/// Outside a runtime.
#[track_caller]
pub fn task_stats() -> Vec<TaskStats> {
    with_runtime("spindle::task_stats", |rt| rt.task_stats())
}
