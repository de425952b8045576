//! What the benchmarks share, one concern a file, so that a body measured
//! in two groups is written once. Included with `mod common;`, so each
//! bench compiles its own copy; not every bench uses every item.
//!
//! - here: criterion's settings, A's side of a ping-pong round trip
//!   ([`ping`]), and the timing loops ([`timed`], [`sum_of_runs`]);
//! - [`fibers`]: spindle's bodies run by more than one bench (the yield
//!   ring);
//! - [`threads`]: ping-pong between OS threads;
//! - [`tokio_peer`]: the tokio peers' bodies (ping-pong tasks, spawn and
//!   join).
#![allow(dead_code)]

use std::time::{Duration, Instant};

pub mod fibers;
pub mod threads;
pub mod tokio_peer;

/// How many times each fiber (task, coroutine) of a yield ring yields.
pub const YIELDS: u64 = 100;

/// Criterion's settings for both groups: round trips cost from tens of
/// nanoseconds (fibers) to microseconds (threads), so the default sample
/// count fits and a few seconds of measurement are plenty.
pub fn configure(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

/// A's side of the timed loop: `iters` round trips through `send`/`recv`,
/// each reply checked, after one untimed round trip (so B is running and
/// waiting when the clock starts). Shared by the synchronous peers
/// (spindle, may, std, crossbeam), whose channels have the same shape;
/// tokio's `await`s are in [`tokio_peer::tokio_ping_a`].
pub fn ping(iters: u64, send: impl Fn(u64), recv: impl Fn() -> u64) -> Duration {
    send(0);
    assert_eq!(recv(), 1, "warm-up round trip");
    let start = Instant::now();
    for i in 0..iters {
        send(i);
        let r = recv();
        assert_eq!(r, i + 1, "round trip {i} came back wrong");
    }
    start.elapsed()
}

/// The time of `iters` calls of `step`, back to back (a spawn and join,
/// for instance).
#[inline(always)]
pub fn timed(iters: u64, mut step: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        step();
    }
    start.elapsed()
}

/// The sum of `iters` runs of `run`, each of which times itself (a yield
/// ring whose setup is not timed).
pub fn sum_of_runs(iters: u64, mut run: impl FnMut() -> Duration) -> Duration {
    (0..iters).map(|_| run()).sum()
}
