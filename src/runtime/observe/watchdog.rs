//! The blocked-scheduler watchdog (gevent's `max_blocking_time`): a thread
//! that notices a fiber running longer than a threshold without giving its
//! worker back, and reports it by name.
//!
//! ## How it notices
//!
//! While a watchdog runs, each worker publishes in its probe, at every
//! resume, which fiber it runs and when the resume began (two relaxed
//! stores and one clock read), and clears the fiber at the resume's end.
//! The watchdog thread wakes every quarter of the threshold (at least
//! every millisecond), reads each worker's probe, and reports a fiber whose
//! resume has lasted the threshold or longer, once per resume. Nothing
//! else is shared: the workers never wait for the watchdog, and it never
//! touches their schedulers.
//!
//! ## What it reports, and where the backtrace comes from
//!
//! The report ([`BlockedFiber`]) comes in two parts, to the callback of
//! [`RuntimeBuilder::on_blocked`](crate::runtime::RuntimeBuilder::on_blocked) or, by
//! default, to stderr:
//!
//! 1. [`BlockedPhase::Running`], from the watchdog thread, while the fiber
//!    still blocks its worker: id, name, worker, spawn site and how long it
//!    has run so far. This one comes even if the fiber never stops.
//! 2. When the fiber gives its worker back, from that worker: how long the
//!    resume lasted in all, and, if it suspended
//!    ([`BlockedPhase::Suspended`]), its backtrace taken at that
//!    suspension, on its own stack, with the dump's protocol (see
//!    [`dump`](crate::dump())); if it ended, [`BlockedPhase::Finished`] and no
//!    backtrace.
//!
//! The backtrace is that of the suspension point after the blocking code,
//! not of the blocking code itself. Taking the frames of the *running*
//! fiber would mean interrupting its thread with a signal and unwinding
//! from the handler, and we judged that unsound with what the platform
//! gives: the unwinder (`_Unwind_Backtrace`) is not async-signal-safe — it
//! finds unwind tables under the dynamic loader's lock and libgcc's own
//! mutex, so a worker interrupted inside a panic, a backtrace or `dlopen`
//! would deadlock in its own handler — and turning bare return addresses
//! into names needs a symboliser that `std` does not expose (it would
//! mean a DWARF reader, i.e. a new dependency). The frames of the first
//! suspension still name the function that blocked whenever it waits or
//! yields afterwards (its caller chain is on the stack), which is the
//! common case of a loop that does too much between two yields.
//!
//! ## Cost
//!
//! Off (the default): nothing; the scheduler's observation branch is the
//! one that accounting and fiber events share. On: a lookup of the
//! running fiber's id, one clock read and three relaxed stores per resume, a hash-map insert under a mutex per
//! spawn and a remove per exit (the labels), and a thread that wakes
//! `4 / threshold` times a second. BENCHMARKS.md has the figures.

use std::fmt;
use std::io;
use std::panic::Location;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use crate::runtime::task::trace::Frame;
use crate::runtime::task::TaskId;

use super::clock::now_ns;
use super::probe::Probe;

/// What a [`BlockedFiber`] report says about the fiber now.
///
/// # Examples
///
/// ```
/// use spindle::BlockedPhase;
/// assert_ne!(BlockedPhase::Running, BlockedPhase::Suspended);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockedPhase {
    /// It still holds its worker (from the watchdog thread).
    Running,
    /// It gave its worker back by suspending; the report has its
    /// backtrace at that suspension.
    Suspended,
    /// It gave its worker back by ending.
    Finished,
}

/// A fiber that ran longer than the watchdog's threshold without giving
/// its worker back (see
/// [`RuntimeBuilder::watchdog`](crate::runtime::RuntimeBuilder::watchdog)).
///
/// A fiber is reported twice: first from the watchdog thread while it
/// still blocks its worker ([`BlockedPhase::Running`], no backtrace; this
/// one comes even if it never stops), then from its worker once it gives
/// the worker back, with the resume's whole length and, if it suspended,
/// its backtrace at that suspension, taken on its own stack as
/// [`dump`](crate::dump()) takes one. The backtrace is that of the first
/// suspension after the blocking code, not of the blocking code itself:
/// unwinding a *running* fiber would need a signal handler that unwinds
/// and symbolises, which is not async-signal-safe (the unwinder takes
/// locks) — the source of `observe/watchdog.rs` says more. The caller
/// chain of that suspension still names the function that blocked when it
/// waits or yields afterwards, the common case.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::{Duration, Instant};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&seen);
/// let rt = spindle::Runtime::builder()
///     .watchdog(Duration::from_millis(20))
///     .on_blocked(move |b| sink.lock().unwrap().push((b.name.clone(), b.phase)))
///     .build()?;
/// rt.block_on(|| {
///     let h = spindle::Builder::new().name("hog".into()).spawn(|| {
///         let start = Instant::now();
///         while start.elapsed() < Duration::from_millis(100) {} // blocks the worker
///         spindle::yield_now();
///     });
///     h.unwrap().join().unwrap();
/// });
/// let seen = seen.lock().unwrap();
/// assert_eq!(seen[0], (Some("hog".into()), spindle::BlockedPhase::Running));
/// assert_eq!(seen[1], (Some("hog".into()), spindle::BlockedPhase::Suspended));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct BlockedFiber {
    /// The fiber's id.
    pub id: TaskId,
    /// Its name, if it has one.
    pub name: Option<Arc<str>>,
    /// The worker it blocks.
    pub worker: usize,
    /// Where it was spawned.
    pub spawned_at: &'static Location<'static>,
    /// How long its resume has lasted (so far, for
    /// [`BlockedPhase::Running`]).
    pub blocked_for: Duration,
    /// Whether it still runs, suspended, or ended.
    pub phase: BlockedPhase,
    /// Its frames at the suspension that ended the resume
    /// ([`BlockedPhase::Suspended`] only), innermost first.
    pub backtrace: Vec<Frame>,
}

impl fmt::Display for BlockedFiber {
    /// `spindle watchdog: fiber 7 "hog" (worker 0, spawned at src/main.rs:9:5)
    /// has blocked its worker for 212 ms`, then the phase and the frames.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spindle watchdog: fiber {}", self.id)?;
        if let Some(name) = &self.name {
            write!(f, " {name:?}")?;
        }
        let ms = self.blocked_for.as_secs_f64() * 1e3;
        write!(
            f,
            " (worker {}, spawned at {}) ",
            self.worker, self.spawned_at
        )?;
        match self.phase {
            BlockedPhase::Running => write!(f, "has blocked its worker for {ms:.0} ms so far"),
            BlockedPhase::Finished => write!(f, "blocked its worker for {ms:.0} ms, then ended"),
            BlockedPhase::Suspended => {
                write!(f, "blocked its worker for {ms:.0} ms, then suspended in:")?;
                for frame in &self.backtrace {
                    write!(f, "\n    {}", frame.function())?;
                    if let Some(at) = frame.location() {
                        write!(f, "\n        at {at}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// Where reports go: the user's callback, or stderr.
pub(crate) type BlockedHook = Arc<dyn Fn(&BlockedFiber) + Send + Sync>;

/// The default destination of reports.
pub(crate) fn to_stderr() -> BlockedHook {
    Arc::new(|b: &BlockedFiber| eprintln!("{b}"))
}

/// The watchdog thread of one runtime; dropping it stops and joins it.
pub(crate) struct Watchdog {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<thread::JoinHandle<()>>,
}

/// What the watchdog last saw of one worker.
#[derive(Clone, Copy, Default)]
struct Seen {
    resumes: u64,
    running: u64,
    reported: bool,
}

impl Watchdog {
    /// Starts watching `probes` (worker `i`'s at index `i`).
    ///
    /// # Errors
    ///
    /// The OS refusing a thread.
    pub(crate) fn start(
        threshold: Duration,
        probes: Vec<Arc<Probe>>,
        report: BlockedHook,
    ) -> io::Result<Watchdog> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = Arc::clone(&stop);
        let interval = (threshold / 4).max(Duration::from_millis(1));
        let thread = thread::Builder::new()
            .name("spindle-watchdog".into())
            .spawn(move || watch(threshold, interval, &probes, &report, &flag))
            .map_err(|e| io::Error::new(e.kind(), format!("starting the spindle watchdog: {e}")))?;
        Ok(Watchdog {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let (lock, cv) = &*self.stop;
        *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            // A panic of the user's callback has been printed already.
            let _ = t.join();
        }
    }
}

/// The watchdog's loop; see the [module docs](self).
fn watch(
    threshold: Duration,
    interval: Duration,
    probes: &[Arc<Probe>],
    report: &BlockedHook,
    stop: &(Mutex<bool>, Condvar),
) {
    let mut seen = vec![Seen::default(); probes.len()];
    let threshold_ns = threshold.as_nanos().min(u64::MAX as u128) as u64;
    let (lock, cv) = stop;
    let mut stopped = lock.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        stopped = cv
            .wait_timeout(stopped, interval)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        if *stopped {
            return;
        }
        for (worker, (probe, s)) in probes.iter().zip(&mut seen).enumerate() {
            let (resumes, running, started) = probe.beat();
            if running == 0 || (resumes, running) != (s.resumes, s.running) {
                *s = Seen {
                    resumes,
                    running,
                    reported: false,
                };
            }
            let so_far = now_ns().saturating_sub(started);
            if running == 0 || s.reported || so_far < threshold_ns {
                continue;
            }
            s.reported = true;
            let Some(label) = probe.label_of(running) else {
                continue; // it has just ended
            };
            probe.flag(resumes + 1);
            report(&BlockedFiber {
                id: label.id,
                name: label.name,
                worker,
                spawned_at: label.spawned_at,
                blocked_for: Duration::from_nanos(so_far),
                phase: BlockedPhase::Running,
                backtrace: Vec::new(),
            });
        }
    }
}
