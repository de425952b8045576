//! The clock of the accounting: nanoseconds of `CLOCK_MONOTONIC`.
//!
//! ## Which clock, and why
//!
//! Timing every resume reads a clock once per switch (the end of one resume
//! is the start of the next, inside a round: `Observer::start_stamp`), so
//! its cost is the cost of accounting. Measured with
//! `cargo bench --bench observe -- clock` on the shared 2-vCPU x86_64 VM
//! (clock source `tsc`) while other builds loaded it, so read the ratios
//! (BENCHMARKS.md, "Accounting and the watchdog"):
//!
//! | clock | one read | what it measures |
//! |---|---|---|
//! | `clock_gettime(CLOCK_MONOTONIC)` (vDSO, no system call) | 86 ns (`Instant::now`: 70 ns) | wall time |
//! | `clock_gettime(CLOCK_THREAD_CPUTIME_ID)` (a system call) | 704 ns | the thread's CPU time |
//! | `rdtsc` / `cntvct_el0` | 29 ns | ticks, to be calibrated against a real clock |
//!
//! The accounting uses `CLOCK_MONOTONIC`. The thread's CPU clock would
//! say "CPU time" exactly, but it is a system call on every switch; the
//! counter register is the cheapest, but its ticks need a calibration
//! (and on x86_64 an invariant TSC, which virtual machines do not always
//! give), and `Instant` reads `CLOCK_MONOTONIC` anyway. So a fiber's
//! "running" time is the wall time it held its worker: the same as its CPU
//! time unless the OS took the worker thread off its CPU meanwhile.

/// Nanoseconds since an arbitrary start (boot), from `CLOCK_MONOTONIC`.
///
/// Monotonic and shared by every thread, so stamps taken on two workers
/// compare.
#[inline]
pub(crate) fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid `timespec` to write; `CLOCK_MONOTONIC` always
    // exists on Linux, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
