//! Global idleness: how the workers of one runtime find out together that
//! nothing can ever run again (the deadlock report across workers).
//!
//! One scheduler alone reports a deadlock when it would block for good and
//! no other thread holds a way to wake it (`Remote::may_wake`). With
//! several workers that never happens: a fiber waiting on a
//! `sync::shared` channel or a `SendJoinHandle` has handed a waker to
//! another thread's reach, so a circle of waits that spans workers would
//! hang. [`AllIdle`] closes that gap.
//!
//! ## The rule
//!
//! The report fires when, at one moment,
//!
//! 1. every worker is *idle for good*: no fiber ready, no timer, no fiber
//!    waiting on an fd, and nothing in its inbox (so no spawn, wake-up or
//!    cancel on its way); and
//! 2. the process has no thread but the runtime's workers.
//!
//! While (1) holds no fiber runs, so no fiber can send, join, cancel or
//! spawn; only a thread outside the workers could (a plain thread holding
//! a shared-channel sender or a `SendJoinHandle`, a `spawn_blocking`
//! helper, another runtime). spindle cannot see what such a thread holds,
//! so (2) counts every one of them as a possible waker: a report is never
//! made while one lives. A false report is worse than a late one; the cost
//! is that a program with an unrelated thread (a logger, a test harness)
//! gets no cross-worker report, and hangs as it did before. Helper threads
//! of `spawn_blocking` end 10 s after their last job, so a deadlock that
//! follows one is reported once its helpers are gone (worker 0 looks again
//! on a timer while only (2) fails, backing off from 10 ms to 1 s).
//!
//! The thread count is `num_threads` of `/proc/self/stat`. Where it cannot
//! be read, no cross-worker report is made: under qemu-user that field
//! reads 0 (qemu writes the file itself) and the process holds qemu's own
//! threads besides, so aarch64 tests run that way expect no report.
//!
//! ## The count
//!
//! [`AllIdle`] holds one word: the number of idle workers in its low 32
//! bits and a transition count (an epoch) in the high 32. A worker about
//! to block for good [`enter`](AllIdle::enter)s (one `fetch_add` adds one
//! to both) and [`leave`](AllIdle::leave)s right after its poll returns,
//! before it takes its messages (one `fetch_add`: count down, epoch up). Only
//! worker 0, the main fiber's, decides: a worker whose `enter` makes the
//! count reach `n` sends worker 0 a `Message::AllIdle`, which wakes it;
//! worker 0 leaves, finds itself idle again, enters, sees `n`, and checks.
//!
//! ## Why the check makes no false report
//!
//! Worker 0's `enter` returned the word `v` (count `n`). It then reads the
//! thread count, every inbox's head, and the word again, and reports only
//! if there are `n` threads, every inbox is empty and the word is still
//! `v`.
//!
//! - A message sent by a worker before that worker entered is visible to
//!   worker 0: the push is sequenced before the sender's `enter`, whose
//!   `SeqCst` read-modify-write is in the release sequence that worker 0's
//!   `enter` reads from. So worker 0 sees the message still queued (no
//!   report), or sees the head emptied by its receiver's `take`. That
//!   `take` is an `AcqRel` swap and comes after the receiver's `leave`, so
//!   worker 0 then also sees the `leave`, and the word has changed (no
//!   report). A worker that left and entered again in between has taken
//!   and acted on the message: the epoch has moved, so no report either.
//! - A worker counted idle cannot change by itself: it has no timer and no
//!   fd wait, and it leaves before it acts on anything from outside.
//! - No thread outside the workers exists at the thread count (2), and
//!   none can appear: only a running thread creates one, and every thread
//!   is a worker blocked for good. A thread that sent before it exited
//!   pushed before its exit, and the kernel's exit path and the `/proc`
//!   read that no longer counts it are ordered by the kernel's locks, so
//!   its message is seen as in the first point.
//!
//! The epoch wraps after 2^32 transitions; a check that spans that many
//! (an `epoll_wait` of every other worker, 4 billion times, during a
//! handful of loads) is not a case this guards against.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// What the count needs of a worker's inbox (the
/// [`Remote`](super::Remote) implements it).
pub(crate) trait Inbox: Send + Sync {
    /// Whether a message is waiting, read with `Acquire` (it pairs with
    /// the `Release` half of the `AcqRel` swap that takes messages).
    fn has_messages_acquire(&self) -> bool;
    /// Sends worker 0 the message that every worker is idle.
    fn send_all_idle(&self);
}

/// One idle worker more, one transition more (see "The count").
const ENTER: u64 = (1 << 32) + 1;
/// One idle worker less, one transition more.
const LEAVE: u64 = (1 << 32) - 1;

/// What [`AllIdle::enter`] tells the worker that entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Idle {
    /// Counted; block as before.
    Counted,
    /// Every worker is idle for good and no other thread lives: report
    /// the deadlock (worker 0 only).
    Deadlock,
    /// Every worker is idle for good, but other threads live: look again
    /// after this long (worker 0 only).
    LookAgainIn(Duration),
}

/// The idle count shared by the workers of one runtime; see the
/// [module docs](self).
pub(crate) struct AllIdle {
    word: AtomicU64,
    /// Every worker's inbox, worker 0's first (weak: each inbox holds this).
    remotes: Vec<Weak<dyn Inbox>>,
    /// Failed looks in a row because of other threads (the back-off).
    looks: AtomicU32,
}

impl AllIdle {
    /// The count for the workers whose inboxes are `remotes` (worker 0's
    /// first).
    pub(crate) fn new<R: Inbox + 'static>(remotes: &[Arc<R>]) -> AllIdle {
        AllIdle {
            word: AtomicU64::new(0),
            remotes: remotes
                .iter()
                .map(|r| {
                    let r: Arc<dyn Inbox> = Arc::clone(r) as Arc<dyn Inbox>;
                    Arc::downgrade(&r)
                })
                .collect(),
            looks: AtomicU32::new(0),
        }
    }

    fn workers(&self) -> u64 {
        self.remotes.len() as u64
    }

    /// The worker whose inbox is `me` is about to block for good: counts
    /// it idle, and says what to do (module docs, "The count").
    pub(crate) fn enter(&self, me: &dyn Inbox) -> Idle {
        let v = self
            .word
            .fetch_add(ENTER, Ordering::SeqCst)
            .wrapping_add(ENTER);
        if v & u64::from(u32::MAX) != self.workers() {
            return Idle::Counted;
        }
        let Some(first) = self.remotes[0].upgrade() else {
            return Idle::Counted;
        };
        if !std::ptr::addr_eq(Arc::as_ptr(&first), me as *const dyn Inbox) {
            first.send_all_idle();
            return Idle::Counted;
        }
        self.check(v)
    }

    /// The worker is awake again (its poll returned), before it takes its
    /// messages.
    pub(crate) fn leave(&self) {
        self.word.fetch_add(LEAVE, Ordering::SeqCst);
    }

    /// Worker 0's check, with the word `v` its `enter` made (module docs,
    /// "Why the check makes no false report").
    fn check(&self, v: u64) -> Idle {
        if process_threads() != Some(self.workers()) {
            let looks = self.looks.fetch_add(1, Ordering::Relaxed).min(7);
            return Idle::LookAgainIn(
                Duration::from_millis(10 << looks).min(Duration::from_secs(1)),
            );
        }
        self.looks.store(0, Ordering::Relaxed);
        for r in &self.remotes {
            match r.upgrade() {
                Some(r) if !r.has_messages_acquire() => {}
                _ => return Idle::Counted,
            }
        }
        if self.word.load(Ordering::SeqCst) != v {
            return Idle::Counted;
        }
        Idle::Deadlock
    }
}

/// The number of threads of this process (`num_threads` in
/// `/proc/self/stat`), if it can be read.
fn process_threads() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The second field (the command name, in parentheses) may hold spaces;
    // the fields after it are plain. `num_threads` is field 20; the one
    // right after the parenthesis is field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace()
        .nth(17)?
        .parse()
        .ok()
        .filter(|&n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_thread_count() {
        // Under qemu-user, `num_threads` reads 0: no count, so no report.
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let raw = stat[stat.rfind(')').unwrap() + 1..]
            .split_whitespace()
            .nth(17)
            .map(str::to_owned);
        if raw.as_deref() == Some("0") {
            assert_eq!(process_threads(), None);
            return;
        }
        // Two snapshots of one number, taken a moment apart: other tests
        // start and end threads meanwhile, so look until they agree.
        let threads_line = || {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            status
                .lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let agreed = (0..1000).any(|_| {
            let a = threads_line();
            let b = process_threads();
            a.is_some() && a == b && a == threads_line()
        });
        assert!(
            agreed,
            "/proc/self/stat's num_threads never matched Threads:"
        );
    }

    /// An inbox that only counts what it is sent.
    #[derive(Default)]
    struct Fake {
        messages: AtomicU32,
    }

    impl Inbox for Fake {
        fn has_messages_acquire(&self) -> bool {
            self.messages.load(Ordering::Acquire) > 0
        }
        fn send_all_idle(&self) {
            self.messages.fetch_add(1, Ordering::Release);
        }
    }

    #[test]
    fn the_last_worker_in_tells_worker_0_and_leaving_moves_the_epoch() {
        let a = Arc::new(Fake::default());
        let b = Arc::new(Fake::default());
        let idle = AllIdle::new(&[Arc::clone(&a), Arc::clone(&b)]);
        assert_eq!(idle.enter(&*a), Idle::Counted);
        assert!(!a.has_messages_acquire());
        // Worker 1 makes the count 2: worker 0 is sent a message.
        assert_eq!(idle.enter(&*b), Idle::Counted);
        assert!(a.has_messages_acquire());
        assert!(!b.has_messages_acquire());
        idle.leave();
        let w = idle.word.load(Ordering::SeqCst);
        assert_eq!(w & u64::from(u32::MAX), 1);
        assert_eq!(w >> 32, 3);
    }

    #[test]
    fn worker_0_last_in_checks_and_a_queued_message_stops_the_report() {
        let a = Arc::new(Fake::default());
        let b = Arc::new(Fake::default());
        let idle = AllIdle::new(&[Arc::clone(&a), Arc::clone(&b)]);
        assert_eq!(idle.enter(&*b), Idle::Counted);
        b.send_all_idle(); // a message on its way to worker 1
                           // This process has more threads than 2 workers (libtest's), so the
                           // verdict can only be to look again later; with the message queued
                           // it must never be a report.
        assert_ne!(idle.enter(&*a), Idle::Deadlock);
    }
}
