//! Per-fiber accounting: how often a fiber was resumed, how long it ran,
//! how long it waited. Kept by each scheduler for its own fibers when the
//! runtime is built with [`accounting(true)`](crate::runtime::RuntimeBuilder::accounting).
//!
//! Each resume takes a stamp (`clock.rs`) before the switch into the fiber
//! and one after the switch back (inside a round the second serves as the
//! next resume's first: one clock read per resume), and settles the
//! fiber's account:
//!
//! ```text
//!   spawn ──parked──> resume ──running──> suspend ──parked──> resume ──running──> exit
//!          (since)      (started)           (since)
//! ```
//!
//! - **running**: from the switch into the fiber to the switch back, summed
//!   over its resumes (wall time while it held its worker).
//! - **parked**: from its spawn or its last suspension to its next resume,
//!   summed: time waiting for something, or ready in the run queue. The
//!   suspension in progress is counted when it ends (at the next resume),
//!   so the totals of the fibers and of the scheduler move together.
//!
//! The same deltas are added to the worker's totals ([`Probe`](super::probe::Probe)),
//! so the sum over a worker's fibers (finished ones included) equals its
//! totals in [`Runtime::stats`](crate::Runtime::stats), to the nanosecond.

use std::sync::Arc;
use std::time::Duration;

use crate::runtime::task::TaskId;

/// One fiber's account, in nanoseconds; see the [module docs](self).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Account {
    pub(crate) resumes: u64,
    pub(crate) running_ns: u64,
    pub(crate) parked_ns: u64,
    /// When it was spawned or last suspended.
    pub(crate) since_ns: u64,
    /// When its resume in progress began.
    pub(crate) started_ns: u64,
}

impl Account {
    /// The account of a fiber spawned at `now`.
    pub(crate) fn new(now: u64) -> Account {
        Account {
            since_ns: now,
            ..Account::default()
        }
    }

    /// A resume begins at `now`.
    #[inline]
    pub(crate) fn begin(&mut self, now: u64) {
        self.started_ns = now;
    }

    /// The resume begun last ends at `now`: returns what it adds to the
    /// running and parked times.
    #[inline]
    pub(crate) fn end(&mut self, now: u64) -> (u64, u64) {
        let running = now.saturating_sub(self.started_ns);
        let parked = self.started_ns.saturating_sub(self.since_ns);
        self.resumes += 1;
        self.running_ns += running;
        self.parked_ns += parked;
        self.since_ns = now;
        (running, parked)
    }
}

/// One live fiber's account, from [`task_stats`](crate::task_stats) or a
/// [`FiberEvent`](crate::FiberEvent); all zero unless the runtime was built
/// with [`accounting(true)`](crate::runtime::RuntimeBuilder::accounting).
///
/// The times are settled at each resume's end: the suspension a fiber is
/// in now is counted when it is next resumed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let rt = spindle::Runtime::builder().accounting(true).build()?;
/// rt.block_on(|| {
///     let h = spindle::Builder::new().name("napper".into()).spawn(|| {
///         spindle::sleep(Duration::from_millis(20));
///     })?;
///     spindle::sleep(Duration::from_millis(5)); // it starts and falls asleep
///     let stats = spindle::task_stats();
///     let napper = stats.iter().find(|s| s.name.as_deref() == Some("napper")).unwrap();
///     assert_eq!(napper.resumes, 1);
///     h.join().unwrap();
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskStats {
    /// The fiber's id.
    pub id: TaskId,
    /// Its name, if it was given one.
    pub name: Option<Arc<str>>,
    /// Resumes that have ended (each is a switch in and one back).
    pub resumes: u64,
    /// Time it held its worker, summed over those resumes.
    pub running: Duration,
    /// Time from its spawn or a suspension to the next resume, summed:
    /// parked, or ready in the run queue.
    pub parked: Duration,
}

impl TaskStats {
    /// The stats of fiber `id` named `name` from its account.
    pub(crate) fn new(id: TaskId, name: Option<Arc<str>>, a: &Account) -> TaskStats {
        TaskStats {
            id,
            name,
            resumes: a.resumes,
            running: Duration::from_nanos(a.running_ns),
            parked: Duration::from_nanos(a.parked_ns),
        }
    }
}
