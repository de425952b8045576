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
//! A spin that times out is a sign that messages come more slowly than
//! [`SPIN`] here (a loaded machine, more workers than CPUs, a sanitizer or
//! valgrind slowing every hop), where spinning only takes CPU from the
//! threads that would send: the worker then skips its next idle spells
//! before it spins again, 1, 2, 4... up to [`MAX_SKIP`] of them, and a
//! spin that catches a message resets that.
//!
//! A single-worker runtime never spins: its only senders are helper
//! threads (`spawn_blocking`), whose work takes far longer than a wake-up.

use std::time::{Duration, Instant};

use super::Scheduler;

/// How long an idle worker watches its inbox before it blocks. A round
/// trip through another worker takes about 6 µs here when neither sleeps.
pub(super) const SPIN: Duration = Duration::from_micros(20);

/// The most idle spells a worker skips before it spins again after spins
/// that timed out.
pub(super) const MAX_SKIP: u32 = 64;

/// Whether and when a worker spins; see the [module docs](self).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct SpinState {
    /// The last idle spell ended with a message from another thread.
    messaged: bool,
    /// Idle spells still to skip before the next spin.
    skip: u32,
    /// How many to skip after the next spin that times out: doubled by
    /// each one (up to [`MAX_SKIP`]), reset by a spin that catches a
    /// message.
    backoff: u32,
}

impl SpinState {
    /// At an idle spell: whether to spin now (counting a skipped spell).
    fn spin_now(&mut self) -> bool {
        if !self.messaged {
            return false;
        }
        if self.skip > 0 {
            self.skip -= 1;
            return false;
        }
        true
    }

    /// After a spin: whether it caught a message.
    fn spun(&mut self, caught: bool) {
        if caught {
            self.backoff = 0;
        } else {
            self.backoff = (self.backoff * 2).clamp(1, MAX_SKIP);
            self.skip = self.backoff;
        }
    }
}

impl Scheduler {
    /// Spins for a message if the rule above says so, for at most [`SPIN`]
    /// or `timeout`; whether a message came.
    pub(super) fn spin_for_messages(&self, timeout: Option<Duration>) -> bool {
        // A zero timeout means fibers are ready: nothing to wait for.
        if timeout == Some(Duration::ZERO) || self.remote.all_idle().is_none() {
            return false;
        }
        let mut state = self.spin.get();
        let spin = state.spin_now();
        let caught =
            spin && self.spin_until(Instant::now() + timeout.map_or(SPIN, |t| t.min(SPIN)));
        if spin {
            state.spun(caught);
        }
        self.spin.set(state);
        caught
    }

    /// Watches the inbox until `until`; whether a message came.
    fn spin_until(&self, until: Instant) -> bool {
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

    /// After a blocking poll: whether a message from another thread is
    /// what ended it (then the next idle spell may spin).
    pub(super) fn note_wake_up(&self) {
        let mut state = self.spin.get();
        state.messaged = self.remote.has_messages();
        self.spin.set(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs idle spells where each spin catches a message or not, and
    /// returns which spells spun.
    fn spells(state: &mut SpinState, catches: impl Fn(usize) -> bool, n: usize) -> Vec<usize> {
        let mut spun = Vec::new();
        for i in 0..n {
            if state.spin_now() {
                spun.push(i);
                state.spun(catches(i));
            }
        }
        spun
    }

    #[test]
    fn only_a_worker_woken_by_a_message_spins() {
        let mut s = SpinState::default();
        assert!(spells(&mut s, |_| true, 10).is_empty());
        s.messaged = true;
        assert_eq!(spells(&mut s, |_| true, 5), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn spins_that_time_out_back_off_up_to_the_cap_and_a_catch_resets() {
        let mut s = SpinState {
            messaged: true,
            ..SpinState::default()
        };
        // Every spin times out: skips of 1, 2, 4, 8... spells between them.
        assert_eq!(spells(&mut s, |_| false, 32), [0, 2, 5, 10, 19]);
        let mut capped = SpinState {
            messaged: true,
            ..SpinState::default()
        };
        let spun = spells(&mut capped, |_| false, 1_000);
        let gaps: Vec<usize> = spun.windows(2).map(|w| w[1] - w[0] - 1).collect();
        assert_eq!(gaps.iter().max(), Some(&(MAX_SKIP as usize)));
        assert!(gaps.ends_with(&[MAX_SKIP as usize; 5]));
        // A catch resets the backoff: the spell after it spins again.
        let mut s = SpinState {
            messaged: true,
            ..SpinState::default()
        };
        assert_eq!(spells(&mut s, |i| i >= 2, 8), [0, 2, 3, 4, 5, 6, 7]);
    }
}
