//! spindle's bodies that more than one bench measures.

use std::time::{Duration, Instant};

use super::YIELDS;

/// The yield ring, run on a fiber of the runtime under test: `n` fibers
/// each yield [`YIELDS`] times (plus the first step), and the time is that
/// of joining them all. Every fiber runs its first step (and touches its
/// stack) before the clock starts.
pub fn spindle_yield_ring(n: u64) -> Duration {
    let hs: Vec<_> = (0..n)
        .map(|_| {
            spindle::spawn(|| {
                for _ in 0..=YIELDS {
                    spindle::yield_now();
                }
            })
        })
        .collect();
    spindle::yield_now();
    let start = Instant::now();
    for h in hs {
        h.join().unwrap();
    }
    start.elapsed()
}
