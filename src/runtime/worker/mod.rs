//! Many cores: a runtime of `n` worker threads, each running one
//! scheduler of its own, unchanged.
//!
//! Worker 0 is the thread that calls `block_on` (its scheduler is the
//! runtime's own, and the main fiber runs there); workers 1 to `n - 1` are
//! threads named `spindle-worker-<i>` that the runtime starts when it is
//! built and joins when it is dropped. A fiber is created on the worker
//! chosen at spawn and runs there until it ends: fibers never migrate, so
//! thread-locals stay sound. Round robin inside each worker stays exactly
//! as the runtime docs describe it.
//!
//! - [`spindle::spawn`](crate::spawn) stays local: the caller's worker,
//!   `!Send` closures allowed.
//! - [`spawn_on`] and [`spawn_balanced`] (and [`Builder::worker`],
//!   [`Builder::balanced`]) take `Send` closures and results and return a
//!   [`SendJoinHandle`]. The closure travels to its worker through that
//!   worker's inbox (`driver/remote.rs`: a lock-free queue plus an eventfd
//!   written only when the worker sleeps), and the worker creates the
//!   fiber between two of its rounds.
//! - "Balanced" picks the worker with the fewest live fibers (those it runs
//!   plus the spawns on their way to it), ties broken round robin from a
//!   rotating start.
//!
//! ## Who owns what
//!
//! - [`Workers`] (one per runtime, in an `Arc` that every worker thread and
//!   the runtime hold): the inbox of each worker (`remotes[i]`, written by
//!   any thread, taken by worker `i` alone), the rotating start of the
//!   balanced placement, the count of workers that finished a stop
//!   (under a mutex, with a condition variable), and the flags `stopping`
//!   (set by the runtime while it shuts fibers down) and `exit` (set when
//!   the runtime is dropped). Each worker thread owns its `Scheduler`
//!   outright: it is created on that thread and never leaves it.
//! - The thread-local `WORKER` names the worker a thread is (its index and
//!   the `Workers`): set for its whole life on a worker thread, and for the
//!   duration of `block_on` on worker 0's.
//!
//! ## Start and shutdown, in order
//!
//! 1. `Runtime::builder().workers(n).build()` creates worker 0's scheduler
//!    on the calling thread, then starts threads 1..n; each creates its
//!    scheduler and sends back its inbox; the build waits for all of them
//!    (an error from any is the build's error, and the threads started so
//!    far are stopped and joined).
//! 2. Each worker thread serves: it runs its fibers, and sleeps in its epoll
//!    when it has none ready. It never reports a deadlock itself; while it
//!    sleeps with nothing that could wake it but its inbox, it counts itself
//!    idle for worker 0's check (see "Deadlock").
//! 3. When `block_on`'s main fiber returns, the runtime sets `stopping`,
//!    sends every other worker a stop, and shuts worker 0's fibers down;
//!    each worker cancels and unwinds every fiber it has, reports, and
//!    serves again. `block_on` returns once all have reported. Remote
//!    spawns that arrive while `stopping` is set are born cancelled.
//! 4. Dropping the runtime sets `exit`, stops the workers once more, and
//!    joins their threads; each scheduler closes its epoll fd and eventfd.
//!
//! ## Deadlock
//!
//! Worker 0 reports a deadlock (`block_on` panics with the report) when
//! its main fiber waits for something nothing can bring. On its own, as
//! with one worker: no fiber ready, no timer, no fd, and no waker held by
//! another thread. Across workers (`driver/idle.rs`): every worker is idle
//! for good (no fiber ready, no timer, no fd, nothing in its inbox) and
//! the process has no thread but the workers, so a circle of waits over
//! `sync::shared` channels or `SendJoinHandle`s that spans workers is
//! reported, and a plain thread that might still send is never ignored.
//! The report then lists the fibers of every worker, each traced on its
//! own thread ([`deadlock`]).

mod deadlock;
mod join;
mod spawn;

use std::cell::RefCell;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, PoisonError};
use std::thread;

use super::driver::{Message, Remote};
use super::observe::probe::Probe;
use super::observe::{Config, Observer};
use super::scheduler::Scheduler;

pub use join::SendJoinHandle;
pub use spawn::{spawn_balanced, spawn_on, PlacedBuilder};

thread_local! {
    /// The worker this thread is (see the module docs).
    static WORKER: RefCell<Option<(usize, Arc<Workers>)>> = const { RefCell::new(None) };
}

/// What every worker of one runtime shares; see the [module docs](self).
pub(crate) struct Workers {
    remotes: Vec<Arc<Remote>>,
    /// Start of the next balanced placement's scan.
    next: AtomicUsize,
    /// Stops completed by workers 1..n, ever.
    stopped: Mutex<u64>,
    stopped_cv: Condvar,
    stopping: AtomicBool,
    exit: AtomicBool,
    /// Set while a thread is worker 0 (inside `block_on`, or a runtime's
    /// drop): only then does anyone take worker 0's messages. Read by dumps
    /// asked from other threads.
    entered: AtomicBool,
}

impl Workers {
    /// Number of workers.
    pub(crate) fn len(&self) -> usize {
        self.remotes.len()
    }

    /// The inbox of worker `i`.
    pub(crate) fn remote(&self, i: usize) -> &Arc<Remote> {
        &self.remotes[i]
    }

    /// Whether worker `i` takes its messages now: a worker thread does from
    /// start to exit, worker 0 only while a thread is it (see `entered`).
    pub(crate) fn is_serving(&self, i: usize) -> bool {
        !self.exit.load(Ordering::Acquire) && (i != 0 || self.entered.load(Ordering::Acquire))
    }

    /// The worker with the fewest live fibers (plus spawns on their way),
    /// ties broken round robin.
    fn balanced(&self) -> usize {
        let n = self.remotes.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        (0..n)
            .map(|i| (start + i) % n)
            .min_by_key(|&w| self.remotes[w].load())
            .expect("a runtime has at least one worker")
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    fn report_stopped(&self) {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.stopped_cv.notify_all();
    }
}

/// Runs `f` with the worker this thread is: its index and the runtime's
/// workers.
///
/// # Panics
///
/// Outside a runtime, with a message naming `what`.
#[track_caller]
fn with_worker<R>(what: &str, f: impl FnOnce(usize, &Arc<Workers>) -> R) -> R {
    WORKER.with(|w| match &*w.borrow() {
        Some((i, workers)) => f(*i, workers),
        None => panic!(
            "{what} called outside a spindle runtime; \
             start one with spindle::run or Runtime::block_on"
        ),
    })
}

/// The index of the worker running the caller: 0 for the main fiber's
/// (the thread that called `block_on`), up to
/// [`worker_count`]` - 1`. A fiber's worker never changes.
///
/// # Examples
///
/// ```
/// let rt = spindle::Runtime::builder().workers(2).build()?;
/// rt.block_on(|| {
///     assert_eq!(spindle::current_worker(), 0);
///     let h = spindle::spawn_on(1, spindle::current_worker);
///     assert_eq!(h.join().unwrap(), 1);
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Panics
///
/// Outside a runtime.
#[track_caller]
pub fn current_worker() -> usize {
    with_worker("spindle::current_worker", |i, _| i)
}

/// The number of workers of the runtime running the caller (1 for
/// [`spindle::run`](crate::run)).
///
/// # Examples
///
/// ```
/// spindle::run(|| assert_eq!(spindle::worker_count(), 1));
/// let rt = spindle::Runtime::builder().workers(3).build()?;
/// rt.block_on(|| assert_eq!(spindle::worker_count(), 3));
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Panics
///
/// Outside a runtime.
#[track_caller]
pub fn worker_count() -> usize {
    with_worker("spindle::worker_count", |_, w| w.len())
}

/// The worker threads of one runtime (workers 1..n) and what they share.
pub(crate) struct Pool {
    workers: Arc<Workers>,
    threads: Vec<thread::JoinHandle<()>>,
    /// The counters workers 1..n publish (worker `i`'s at `i - 1`).
    probes: Vec<Arc<Probe>>,
}

/// Makes the calling thread worker 0 until dropped (for `block_on`).
pub(crate) struct EnterWorker {
    prev: Option<(usize, Arc<Workers>)>,
}

impl Drop for EnterWorker {
    fn drop(&mut self) {
        let prev = self.prev.take();
        let left = WORKER.with(|w| std::mem::replace(&mut *w.borrow_mut(), prev));
        if let Some((_, workers)) = left {
            workers.entered.store(false, Ordering::Release);
        }
    }
}

/// The worker this thread is (its index and its runtime's workers), if it
/// is one.
pub(crate) fn this_worker() -> Option<(usize, Arc<Workers>)> {
    WORKER.with(|w| w.borrow().clone())
}

impl Pool {
    /// Starts workers 1..`n` (worker 0 is the caller, whose scheduler's
    /// inbox is `first`), each with fibers of `stack_size` and guards of
    /// `guard_pages` by default, pinned to a CPU each if `pin`, observed as
    /// `observe` says.
    ///
    /// # Errors
    ///
    /// What creating a worker's scheduler returned (out of file
    /// descriptors), or the OS refusing a thread.
    pub(crate) fn start(
        n: usize,
        stack_size: usize,
        guard_pages: usize,
        pin: bool,
        first: Arc<Remote>,
        observe: &Config,
    ) -> io::Result<Pool> {
        let mut remotes = vec![first];
        let mut threads = Vec::new();
        let mut probes = Vec::new();
        let mut gates = Vec::new();
        let mut failure = None;
        for i in 1..n {
            let (remote_tx, remote_rx) = mpsc::channel::<io::Result<Arc<Remote>>>();
            let (gate_tx, gate_rx) = mpsc::channel::<Arc<Workers>>();
            let probe = Arc::new(Probe::default());
            probes.push(Arc::clone(&probe));
            let observer = Observer::new(i, observe, probe);
            let spawned = thread::Builder::new()
                .name(format!("spindle-worker-{i}"))
                .spawn(move || {
                    let sched = Scheduler::new(stack_size, guard_pages, observer);
                    worker_main(i, sched, pin, remote_tx, gate_rx)
                });
            let started = spawned.and_then(|t| {
                threads.push(t);
                remote_rx.recv().unwrap_or_else(|_| {
                    Err(io::Error::other(format!(
                        "spindle worker {i} died at start"
                    )))
                })
            });
            match started {
                Ok(r) => {
                    remotes.push(r);
                    gates.push(gate_tx);
                }
                Err(e) => {
                    failure = Some(io::Error::new(
                        e.kind(),
                        format!("starting spindle worker {i}: {e}"),
                    ));
                    break;
                }
            }
        }
        if pin {
            pin_to_cpu(0);
        }
        if failure.is_none() && remotes.len() > 1 {
            deadlock::join_all_idle(&remotes);
        }
        let workers = Arc::new(Workers {
            remotes,
            next: AtomicUsize::new(0),
            stopped: Mutex::new(0),
            stopped_cv: Condvar::new(),
            stopping: AtomicBool::new(false),
            exit: AtomicBool::new(failure.is_some()),
            entered: AtomicBool::new(false),
        });
        // Dropping a gate without sending tells its thread to exit at once.
        if failure.is_none() {
            for gate in gates {
                let _ = gate.send(Arc::clone(&workers));
            }
        } else {
            drop(gates);
        }
        let pool = Pool {
            workers,
            threads,
            probes,
        };
        match failure {
            None => Ok(pool),
            Some(e) => Err(e), // dropping the pool joins the threads
        }
    }

    /// Makes this thread worker 0 until the guard drops.
    pub(crate) fn enter(&self) -> EnterWorker {
        let prev = WORKER.with(|w| w.borrow_mut().replace((0, Arc::clone(&self.workers))));
        self.workers.entered.store(true, Ordering::Release);
        EnterWorker { prev }
    }

    /// What every worker shares (for a handle that outlives a borrow of the
    /// runtime: dumps from other threads).
    pub(crate) fn workers(&self) -> &Arc<Workers> {
        &self.workers
    }

    /// Number of workers.
    pub(crate) fn len(&self) -> usize {
        self.workers.len()
    }

    /// The counters of workers 1..n, in order.
    pub(crate) fn probes(&self) -> &[Arc<Probe>] {
        &self.probes
    }

    /// Cancels and unwinds the fibers of every worker: stops workers 1..n,
    /// runs `shutdown_here` (worker 0's own shutdown) meanwhile, and waits
    /// until every worker has reported.
    pub(crate) fn shutdown(&self, shutdown_here: impl FnOnce()) {
        let w = &self.workers;
        w.stopping.store(true, Ordering::Release);
        let before = *w.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        let others = self.threads.len() as u64;
        for r in &w.remotes[1..] {
            r.send(Message::Stop);
        }
        shutdown_here();
        let mut done = w.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        while *done < before + others {
            done = w
                .stopped_cv
                .wait(done)
                .unwrap_or_else(PoisonError::into_inner);
        }
        drop(done);
        // Every worker has unwound its fibers: what is left in worker 0's
        // inbox is stale (wake-ups and cancels of fibers that are gone) or a
        // spawn sent by an unwinding fiber, which dropping reports
        // cancelled. This thread is worker 0, the inbox's owner.
        drop(w.remotes[0].take());
        w.stopping.store(false, Ordering::Release);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.workers.exit.store(true, Ordering::Release);
        for r in &self.workers.remotes[1..] {
            r.send(Message::Stop);
        }
        for t in self.threads.drain(..) {
            // A worker thread's own panic has been printed already; the
            // drop must not panic again.
            let _ = t.join();
        }
        // No scheduler takes from these inboxes any more (worker 0's went
        // with the runtime's `sched`, dropped before the pool): drop what
        // is left, so that a spawn stranded there reports its fiber
        // cancelled instead of keeping its handle's joiner waiting (the
        // handle holds the inbox, the inbox the spawn: a cycle otherwise).
        for r in &self.workers.remotes {
            drop(r.take());
        }
    }
}

/// Reports a worker's stop even if its loop unwinds (a bug), so that the
/// runtime waiting for it does not hang.
struct ReportOnExit<'a>(&'a Workers);

impl Drop for ReportOnExit<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.report_stopped();
        }
    }
}

/// The life of worker thread `i`; see "Start and shutdown" in the module
/// docs.
fn worker_main(
    i: usize,
    sched: io::Result<Scheduler>,
    pin: bool,
    remote_tx: mpsc::Sender<io::Result<Arc<Remote>>>,
    gate: mpsc::Receiver<Arc<Workers>>,
) {
    let sched = match sched {
        Ok(s) => s,
        Err(e) => {
            let _ = remote_tx.send(Err(e));
            return;
        }
    };
    if remote_tx.send(Ok(Arc::clone(sched.remote()))).is_err() {
        return;
    }
    let Ok(workers) = gate.recv() else {
        return; // the build failed: exit without serving
    };
    if pin {
        pin_to_cpu(i);
    }
    WORKER.with(|w| *w.borrow_mut() = Some((i, Arc::clone(&workers))));
    let _enter = sched.enter();
    let _report = ReportOnExit(&workers);
    loop {
        sched.serve();
        sched.shutdown();
        workers.report_stopped();
        if workers.exit.load(Ordering::Acquire) {
            break;
        }
    }
    WORKER.with(|w| *w.borrow_mut() = None);
}

/// Pins the calling thread to CPU `i` (modulo the CPUs this process may
/// use); does nothing if the kernel refuses.
fn pin_to_cpu(i: usize) {
    // SAFETY: `cpu_set_t` is plain data, valid all zero; the calls get a
    // pointer to it and its size, and their results are checked.
    unsafe {
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        if libc::sched_getaffinity(0, size, &mut allowed) != 0 {
            return;
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &allowed))
            .collect();
        if cpus.is_empty() {
            return;
        }
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpus[i % cpus.len()], &mut one);
        libc::sched_setaffinity(0, size, &one);
    }
}
