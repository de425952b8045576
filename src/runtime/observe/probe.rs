//! [`Probe`]: what one worker publishes for other threads to read — its
//! counters (for [`Runtime::stats`](crate::Runtime::stats)) and, for the
//! watchdog, which fiber it is running.
//!
//! ## Who writes what
//!
//! - The counters and `running` are written by the worker's scheduler
//!   alone, as plain stores of values it computed (`load`, add, `store`,
//!   all `Relaxed`): one writer, so no read-modify-write instruction is
//!   needed, and on x86_64 and aarch64 these are the plain `mov`/`ldr`/`str`
//!   a `Cell` would use. Readers on other threads see each counter
//!   untorn, but not the counters as one snapshot.
//! - `flagged` is written by the watchdog (the resume it reported) and
//!   taken back by the worker when that resume ends.
//! - `labels` (the name and spawn site of each live fiber, by id) is
//!   filled only while a watchdog runs: the worker inserts at spawn and
//!   removes at exit, the watchdog looks up the fiber it reports.

use std::collections::HashMap;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use crate::runtime::task::TaskId;

/// A fiber's name and spawn site, for the watchdog's report.
#[derive(Clone, Debug)]
pub(crate) struct Label {
    pub(crate) id: TaskId,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) spawned_at: &'static Location<'static>,
}

/// One worker's published state; see the [module docs](self).
#[derive(Debug, Default)]
pub(crate) struct Probe {
    resumes: AtomicU64,
    spawned: AtomicU64,
    finished: AtomicU64,
    running_ns: AtomicU64,
    parked_ns: AtomicU64,
    /// Id of the fiber on the CPU while a watchdog runs; 0 for none.
    running: AtomicU64,
    /// When its resume began (`clock::now_ns`), while a watchdog runs.
    started_ns: AtomicU64,
    /// The resume number (resumes ended + 1) the watchdog reported; 0 for
    /// none.
    flagged: AtomicU64,
    labels: Mutex<HashMap<u64, Label>>,
}

/// One worker's counters at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counts {
    pub(crate) resumes: u64,
    pub(crate) spawned: u64,
    pub(crate) finished: u64,
    pub(crate) running_ns: u64,
    pub(crate) parked_ns: u64,
}

/// Adds `n` to a counter that only the calling thread writes.
#[inline(always)]
fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
}

impl Probe {
    /// Resumes ended so far.
    #[inline(always)]
    pub(crate) fn resumes(&self) -> u64 {
        self.resumes.load(Relaxed)
    }

    /// One more resume has ended (worker only).
    #[inline(always)]
    pub(crate) fn count_resume(&self) {
        bump(&self.resumes, 1);
    }

    /// The worker's spawn and finish counts are now these (worker only).
    #[inline]
    pub(crate) fn set_spawned(&self, n: u64) {
        self.spawned.store(n, Relaxed);
    }

    /// As [`set_spawned`](Self::set_spawned), for finishes.
    #[inline]
    pub(crate) fn set_finished(&self, n: u64) {
        self.finished.store(n, Relaxed);
    }

    /// Adds a resume's running and parked nanoseconds (worker only).
    #[inline]
    pub(crate) fn add_times(&self, running_ns: u64, parked_ns: u64) {
        bump(&self.running_ns, running_ns);
        bump(&self.parked_ns, parked_ns);
    }

    /// The counters now.
    pub(crate) fn counts(&self) -> Counts {
        Counts {
            resumes: self.resumes.load(Relaxed),
            spawned: self.spawned.load(Relaxed),
            finished: self.finished.load(Relaxed),
            running_ns: self.running_ns.load(Relaxed),
            parked_ns: self.parked_ns.load(Relaxed),
        }
    }

    /// The fiber `id` is on the CPU since `now` (worker only).
    #[inline]
    pub(crate) fn enter(&self, id: u64, now: u64) {
        self.started_ns.store(now, Relaxed);
        self.running.store(id, Relaxed);
    }

    /// No fiber is on the CPU (worker only).
    #[inline]
    pub(crate) fn leave(&self) {
        self.running.store(0, Relaxed);
    }

    /// When the resume in progress began.
    pub(crate) fn started_ns(&self) -> u64 {
        self.started_ns.load(Relaxed)
    }

    /// What the watchdog polls: resumes ended, the fiber on the CPU (0 for
    /// none), and when its resume began, read in this order. The worker
    /// writes them in the opposite order (start, fiber; then, at the end,
    /// no fiber, resumes), so the start read here is that of the fiber
    /// read or of a later resume: the time it has run is never
    /// overestimated.
    pub(crate) fn beat(&self) -> (u64, u64, u64) {
        let resumes = self.resumes.load(Relaxed);
        let running = self.running.load(Relaxed);
        (resumes, running, self.started_ns.load(Relaxed))
    }

    /// The watchdog reported resume number `n` (see `flagged`).
    pub(crate) fn flag(&self, n: u64) {
        self.flagged.store(n, Relaxed);
    }

    /// Whether the resume ending now (number `resumes() + 1`) was reported
    /// by the watchdog; clears the flag.
    #[inline]
    pub(crate) fn take_flag(&self) -> bool {
        let n = self.resumes() + 1;
        self.flagged.load(Relaxed) == n && self.flagged.swap(0, Relaxed) == n
    }

    /// Remembers the label of fiber `id` (spawn, with a watchdog).
    pub(crate) fn label(&self, id: u64, label: Label) {
        self.labels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, label);
    }

    /// Forgets the label of fiber `id` (exit).
    pub(crate) fn unlabel(&self, id: u64) {
        self.labels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    /// The label of fiber `id`, if it is alive.
    pub(crate) fn label_of(&self, id: u64) -> Option<Label> {
        self.labels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }
}
