//! Spinning before sleeping: a worker that other threads keep sending to
//! waits a moment for the next message before it blocks in `epoll_wait`.
//!
//! ## Why
//!
//! A message to a worker blocked in `epoll_wait` costs its sender an
//! eventfd write, and the worker a wake-up from the kernel. On this
//! project's 2-vCPU VM that wake-up is the expensive part: the blocked
//! worker's vCPU has halted, and bringing it back took about 30 µs per hop
//! (a cross-worker channel round trip measured 62 µs, where the same round
//! trip between two fibers of one worker takes 0.35 µs). Go's idle Ms spin
//! looking for work before they sleep, and crossbeam's channels spin
//! before they park, for the same reason.
//!
//! ## The rule
//!
//! A worker of a runtime with several workers, about to block with nothing
//! to run, first watches its inbox for up to [`SPIN`] (or until its next
//! timer, if sooner) — **if the last time it went idle, a message from
//! another thread is what ended it** (or what it caught while spinning).
//! So two workers that pass messages back and forth answer each other
//! without sleeping, while a worker woken by its fds or timers (a server
//! between requests, a sleeper) never spins, and an idle one spins once
//! per message at most. The spin reads one atomic (the inbox head) in a
//! loop with the CPU's spin hint and writes nothing, so it costs the
//! senders nothing; while it spins, the worker is not counted idle (the
//! deadlock check waits at most [`SPIN`] longer).
//!
//! A single-worker runtime never spins: its only senders are helper
//! threads (`spawn_blocking`), whose work takes far longer than a wake-up.

use std::time::{Duration, Instant};

use super::Scheduler;

/// How long an idle worker watches its inbox before it blocks. A round
/// trip through another worker takes about 6 µs here when neither sleeps.
pub(super) const SPIN: Duration = Duration::from_micros(20);

impl Scheduler {
    /// Spins for a message if the rule above says so, for at most [`SPIN`]
    /// or `timeout`; whether a message came.
    pub(super) fn spin_for_messages(&self, timeout: Option<Duration>) -> bool {
        if !self.spin.get() || self.remote.all_idle().is_none() {
            return false;
        }
        let until = Instant::now() + timeout.map_or(SPIN, |t| t.min(SPIN));
        loop {
            for _ in 0..64 {
                if self.remote.has_messages() {
                    return true;
                }
                std::hint::spin_loop();
            }
            if Instant::now() >= until {
                return false;
            }
        }
    }

    /// After a blocking poll: whether to spin the next time this worker
    /// goes idle (a message from another thread is waiting now).
    pub(super) fn note_wake_up(&self) {
        self.spin.set(self.remote.has_messages());
    }
}
