//! Gathering a dump from every worker: each traces its own fibers on its
//! own thread (see the [dump docs](super), "Every worker").
//!
//! ## The exchange
//!
//! 1. The asker makes a [`Collector`] (one slot per worker, behind a mutex)
//!    and sends every other worker that serves a `Message::Dump` whose
//!    closure fills that worker's slot. A worker that does not serve (worker
//!    0 outside `block_on`, a runtime that has ended) gets its slot filled at
//!    once with [`Silence::NotRunning`].
//! 2. On a fiber of the runtime, the asker takes its own worker's traces
//!    directly (the single-thread protocol of `scheduler/trace.rs`).
//! 3. It waits for the other slots: a fiber parks (a [`RemoteWaker`] in the
//!    collector wakes it when the last slot fills; a timer ends the wait at
//!    the patience), a plain thread waits on the collector's condition
//!    variable.
//!
//! The deadlock report across workers (`worker/deadlock.rs`) asks the same
//! way, through [`traces_of_other_workers`]: worker 0 has traced its own
//! fibers, and the report waits, on its plain thread, for the others'.
//!
//! A request dropped untaken (the worker's inbox is emptied at shutdown)
//! drops its closure, whose [`ReplyTo`] then fills the slot as
//! [`Silence::NotRunning`], so no asker waits for a worker that is gone. A
//! reply that comes after the asker gave up lands in a collector nobody
//! reads, and is dropped with it.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::super::driver::Message;
use super::super::task::{FiberTrace, TaskState, WaitingOn};
use super::super::wait::{Parker, RemoteWaker};
use super::super::worker::{this_worker, Workers};
use super::{Dump, FiberDump, Silence};

/// A `Send` handle that dumps a runtime's fibers from any thread (a
/// monitoring thread, a signal watcher), from
/// [`Runtime::dump_handle`](crate::Runtime::dump_handle).
///
/// Each worker traces its own fibers between two of its rounds; see the
/// [dump docs](super). Inside a fiber, [`dump`](super::dump) does the same
/// for the fiber's own runtime.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let rt = spindle::Runtime::builder().workers(2).build()?;
/// let handle = rt.dump_handle();
/// let watcher = std::thread::spawn(move || {
///     std::thread::sleep(Duration::from_millis(50));
///     handle.dump()
/// });
/// rt.block_on(|| {
///     spindle::Builder::new()
///         .name("nap".into())
///         .spawn(|| spindle::sleep(Duration::from_millis(300)))
///         .unwrap()
///         .join()
///         .unwrap()
/// });
/// let dump = watcher.join().unwrap();
/// assert!(dump.fibers().iter().any(|f| f.name() == Some("nap")), "{dump}");
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # `Send`
///
/// `Send` and `Sync`, and cheap to clone:
///
/// ```
/// fn assert_send_sync<T: Send + Sync + Clone>() {}
/// assert_send_sync::<spindle::DumpHandle>();
/// ```
#[derive(Clone)]
pub struct DumpHandle {
    workers: Arc<Workers>,
}

impl std::fmt::Debug for DumpHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DumpHandle")
            .field("workers", &self.workers.len())
            .finish()
    }
}

impl DumpHandle {
    /// How long [`dump`](Self::dump) (and [`spindle::dump`](super::dump))
    /// waits for each worker's answer: a worker busy that long in one fiber
    /// is named in the dump instead.
    pub const PATIENCE: Duration = Duration::from_secs(5);

    pub(crate) fn new(workers: Arc<Workers>) -> DumpHandle {
        DumpHandle { workers }
    }

    /// Every live fiber of the runtime, on every worker that answers within
    /// [`PATIENCE`](Self::PATIENCE).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = spindle::Runtime::builder().workers(3).build()?;
    /// let dump = rt.dump_handle().dump();
    /// assert_eq!(dump.workers(), 3);
    /// assert!(dump.fibers().is_empty()); // no fibers yet
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn dump(&self) -> Dump {
        self.dump_within(Self::PATIENCE)
    }

    /// As [`dump`](Self::dump), waiting at most `patience` for the
    /// workers' answers.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = spindle::Runtime::builder().workers(2).build()?;
    /// let dump = rt.dump_handle().dump_within(std::time::Duration::from_millis(100));
    /// assert_eq!(dump.workers(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn dump_within(&self, patience: Duration) -> Dump {
        let me = this_worker()
            .filter(|(_, w)| Arc::ptr_eq(w, &self.workers))
            .map(|(i, _)| i);
        collect(&self.workers, me, patience)
    }
}

/// `spindle::dump()`: the runtime of this thread, if it is a worker of one
/// and runs a fiber.
pub(super) fn from_here() -> Dump {
    match this_worker() {
        Some((i, workers)) if Parker::try_current().is_some() => {
            collect(&workers, Some(i), DumpHandle::PATIENCE)
        }
        _ => Dump {
            fibers: Vec::new(),
            workers: 0,
            silent: Vec::new(),
        },
    }
}

/// What one worker's slot holds.
enum Reply {
    Traces(Vec<FiberTrace>),
    Silent(Silence),
}

/// The slots of one dump; see the [module docs](self).
struct Collector {
    state: Mutex<Slots>,
    filled: Condvar,
}

struct Slots {
    replies: Vec<Option<Reply>>,
    missing: usize,
    /// The fiber that waits, woken when the last slot fills.
    waker: Option<RemoteWaker>,
}

impl Collector {
    fn new(n: usize) -> Collector {
        Collector {
            state: Mutex::new(Slots {
                replies: (0..n).map(|_| None).collect(),
                missing: n,
                waker: None,
            }),
            filled: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fill(&self, worker: usize, reply: Reply) {
        let mut s = self.lock();
        if s.replies[worker].is_some() {
            return;
        }
        s.replies[worker] = Some(reply);
        s.missing -= 1;
        if s.missing == 0 {
            if let Some(w) = s.waker.take() {
                w.wake();
            }
            self.filled.notify_all();
        }
    }
}

/// Fills one worker's slot: with its traces when the worker calls it, or
/// as not running if the request is dropped uncalled.
struct ReplyTo {
    collector: Arc<Collector>,
    worker: usize,
}

impl Drop for ReplyTo {
    fn drop(&mut self) {
        self.collector
            .fill(self.worker, Reply::Silent(Silence::NotRunning));
    }
}

/// Asks every worker of `workers` for its fibers; `me` is the worker this
/// thread is, when the caller runs on one of its fibers.
fn collect(workers: &Arc<Workers>, me: Option<usize>, patience: Duration) -> Dump {
    let n = workers.len();
    let collector = ask(workers, me);
    if let Some(w) = me {
        let p = Parker::current("spindle::dump");
        collector.fill(w, Reply::Traces(p.dump()));
    }
    wait(&collector, Instant::now() + patience);
    let mut s = collector.lock();
    let mut fibers = Vec::new();
    let mut silent = Vec::new();
    for (w, reply) in s.replies.iter_mut().enumerate() {
        match reply.take() {
            Some(Reply::Traces(traces)) => {
                fibers.extend(traces.into_iter().map(|t| FiberDump::from_trace(t, w)));
            }
            Some(Reply::Silent(why)) => silent.push((w, why)),
            None => silent.push((w, Silence::NoAnswer(patience))),
        }
    }
    Dump {
        fibers,
        workers: n,
        silent,
    }
}

/// Sends a request for its traces to every worker of `workers` but
/// `skip` (step 1 of the [exchange](self)); the slot of `skip` stays
/// empty, for the caller to fill.
fn ask(workers: &Arc<Workers>, skip: Option<usize>) -> Arc<Collector> {
    let collector = Arc::new(Collector::new(workers.len()));
    for w in (0..workers.len()).filter(|&w| Some(w) != skip) {
        if !workers.is_serving(w) {
            collector.fill(w, Reply::Silent(Silence::NotRunning));
            continue;
        }
        let reply = ReplyTo {
            collector: Arc::clone(&collector),
            worker: w,
        };
        workers
            .remote(w)
            .send(Message::Dump(Box::new(move |traces: Vec<FiberTrace>| {
                reply.collector.fill(reply.worker, Reply::Traces(traces));
            })));
    }
    collector
}

/// The fibers of every worker of `workers` but `asker`, which has traced
/// its own: the cross-worker deadlock report's part (`worker/deadlock.rs`),
/// asked the way a dump asks. The fibers of a worker that does not answer
/// within `patience`, or does not serve, are left out.
pub(crate) fn traces_of_other_workers(
    workers: &Arc<Workers>,
    asker: usize,
    patience: Duration,
) -> Vec<FiberTrace> {
    let collector = ask(workers, Some(asker));
    collector.fill(asker, Reply::Traces(Vec::new()));
    wait(&collector, Instant::now() + patience);
    let mut s = collector.lock();
    let mut traces = Vec::new();
    for reply in s.replies.iter_mut() {
        if let Some(Reply::Traces(t)) = reply.take() {
            traces.extend(t);
        }
    }
    traces
}

/// Waits until every slot is filled or `deadline` passes: parking the
/// fiber if the caller runs on one (its worker keeps running the others),
/// else blocking the thread.
fn wait(collector: &Collector, deadline: Instant) {
    let Some(p) = Parker::try_current() else {
        let mut s = collector.lock();
        while s.missing > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            s = collector
                .filled
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        return;
    };
    if p.checkpoint().is_err() {
        return;
    }
    {
        let mut s = collector.lock();
        if s.missing == 0 {
            return;
        }
        s.waker = Some(p.remote_waker());
    }
    // A worker that never answers keeps the collector (and so the waker)
    // alive: drop the waker on every way out, so that it does not count as
    // a pending wake-up of this worker for ever.
    struct Unregister<'a>(&'a Collector);
    impl Drop for Unregister<'_> {
        fn drop(&mut self) {
            let waker = self.0.lock().waker.take();
            drop(waker);
        }
    }
    let _unregister = Unregister(collector);
    let timer = p.timer(deadline);
    loop {
        if collector.lock().missing == 0 {
            return;
        }
        let on = WaitingOn::Sync("spindle::dump");
        if p.park_in(TaskState::WaitingSync, on).is_err() || timer.fired() {
            return;
        }
    }
}
