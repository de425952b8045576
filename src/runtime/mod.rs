//! The runtime: fibers as green threads, driven like `std::thread`.
//!
//! A [`Runtime`] owns one scheduler on the thread that calls
//! [`Runtime::block_on`] (or [`run`]), and, if built with
//! [`workers(n)`](RuntimeBuilder::workers), `n - 1` worker threads that each
//! run a scheduler of their own (see [`spawn_on`] and "Many workers" below). The closure given there runs as the
//! *main fiber*; [`spawn`] adds more; [`yield_now`], [`sleep`],
//! [`JoinHandle::join`], [`wait_readable`] and the other waits *park* the
//! running fiber and let the scheduler run the next one. When the main fiber
//! returns, `block_on` cancels every fiber still alive, waits for them to
//! unwind, and returns the main fiber's value.
//!
//! ```
//! use std::time::{Duration, Instant};
//!
//! let start = Instant::now();
//! let total = spindle::run(|| {
//!     let handles: Vec<_> = (0..100u64)
//!         .map(|i| spindle::spawn(move || { spindle::sleep(Duration::from_millis(20)); i }))
//!         .collect();
//!     spindle::join_all(handles).into_iter().map(Result::unwrap).sum::<u64>()
//! });
//! assert_eq!(total, 4950);
//! assert!(start.elapsed() < Duration::from_secs(2)); // the sleeps overlap
//! ```
//!
//! ## Glossary
//!
//! - **fiber**, **task**: a closure running on its own stack
//!   ([`Coroutine`](crate::coroutine::Coroutine)), owned by the scheduler.
//!   "Task" stresses the scheduler's record of it (id, name, state).
//! - **main fiber**: the one `block_on` runs; the runtime lives as long as it.
//! - **run queue**: the FIFO of *ready* fibers.
//! - **park**: a fiber suspends itself back to the scheduler after arranging
//!   for something to *wake* it (a timer, an fd, another fiber finishing, a
//!   helper thread). Waking puts it at the back of the run queue.
//! - **round**: one pass of the scheduler loop over the fibers that were
//!   ready when it began.
//! - **suspension point**: any call that may park ([`yield_now`], [`sleep`],
//!   [`sleep_until`], [`JoinHandle::join`], [`join_all`], [`wait_any`],
//!   [`timeout`], [`wait_readable`], [`wait_writable`], [`spawn_blocking`],
//!   [`park`]).
//!   These are also the *cancellation points*.
//! - **reactor**: the epoll set where the thread blocks when no fiber is
//!   ready, until the next timer deadline or an fd event.
//! - **worker**: a thread running one scheduler; worker 0 is the thread of
//!   `block_on`. A fiber stays on its worker from spawn to end.
//! - **inbox**: a scheduler's queue of messages from other threads (remote
//!   wake-ups, cancels, spawns), with the eventfd that wakes it when it
//!   sleeps.
//! - **remote wake-up**: a wake-up sent from another thread through the
//!   inbox.
//!
//! ## Fiber states
//!
//! ```text
//!   spawn ──> Ready ──resume──> Running ──returns/panics/unwinds──> (finished: removed,
//!               ^                  │                                  join slot filled)
//!               │                  ├── yield_now ─────────────> Ready (back of the queue)
//!               └──── wake ────────┴── park ──> Sleeping | WaitingIo | WaitingJoin | WaitingBlocking | Parked
//! ```
//!
//! [`TaskState`] names them; [`tasks`] lists every live fiber with its
//! state. Only the scheduler moves a fiber to `Running`, and only the
//! running fiber parks itself.
//!
//! ## Scheduling order
//!
//! Round robin, exactly:
//!
//! 1. [`spawn`] puts the new fiber at the back of the run queue; the caller
//!    keeps running. The main fiber is the first in the queue.
//! 2. [`yield_now`] puts the caller at the back.
//! 3. A wake-up puts the woken fiber at the back (a fiber that is ready
//!    already stays where it is).
//! 4. The loop runs in rounds. A round notes the queue's length *n* and
//!    resumes exactly the first *n* fibers, each until it parks, yields or
//!    finishes; fibers queued during the round wait for the next one.
//! 5. Between rounds the scheduler, in this order: wakes the sleepers
//!    whose deadline has passed, in (deadline, order of going to sleep)
//!    order; wakes the fibers whose helper threads finished; polls the
//!    reactor and wakes the fibers whose fds are ready, in the order epoll
//!    reports them. The poll does not block if a fiber is ready, and
//!    otherwise blocks until the earliest deadline.
//!
//! So with fibers A, B, C that each print and yield three times, the output
//! is A B C A B C A B C.
//!
//! ### Hand-offs: the one exception, for `join`
//!
//! Joining is a call and finishing is its return, so two moments of a join
//! skip the queue, as Go's `runnext` and tokio's LIFO slot do:
//!
//! - A fiber that parks to wait for one fiber of its own worker that **has
//!   not started** ([`JoinHandle::join`], [`join_all`], which joins in
//!   turn, and the other waits for one fiber's end) takes that fiber out of
//!   its place in the queue and runs it right after it parks.
//! - A fiber that **finishes** while a fiber of the same worker is parked
//!   waiting for its end (those waits, and [`wait_any`]) runs that fiber
//!   right after it, instead of waking it to the back.
//!
//! A hand-off runs inside the current round, and at most 64 of them run
//! in a row after a fiber taken from the queue; past that a finishing
//! fiber's joiner is woken to the back and a joined fiber keeps its place,
//! so a loop of spawn-and-join cannot keep the queue waiting, and every
//! queued fiber still runs once per round. Yields, sleeps, I/O, channels
//! and locks never hand off.
//!
//! What this buys: a tree of spawns and joins runs depth first, on warm
//! stacks. Skynet (1,111,111 fibers, each joining its ten children) holds
//! 2 to 16 thousand fibers started at once instead of 111 thousand (the
//! whole tree above the leaves), which is 0.1 GiB instead of 0.9 GiB, and
//! runs in half the time. Its cost: a fiber that joins many fibers in turn
//! is resumed once after each of them finishes, where FIFO order would
//! resume it once per batch (two switches per joined fiber, about 0.1 µs).
//!
//! ## Cancellation and shutdown
//!
//! [`JoinHandle::cancel`] marks a fiber; its next suspension point unwinds
//! it with a private payload (no panic message), its destructors run, and
//! its joiner sees [`JoinError::Cancelled`]. When the main fiber returns
//! (or panics, or the runtime is dropped), every remaining fiber is
//! cancelled in id order and resumed until it has unwound; a fiber that is
//! already unwinding when it reaches a suspension point then gets an
//! early return instead (a sleep ends, an fd wait fails with
//! `Interrupted`), since it cannot be unwound twice. Their stacks go back,
//! their fd registrations are removed.
//!
//! Whether a fiber "is already unwinding" comes from
//! `std::thread::panicking`, which Rust keeps per *thread*. A fiber whose
//! destructor waits (a flush, a lock) in the middle of an unwind stays
//! parked with that flag set, and the thread's other fibers see it too. So
//! while such a fiber is parked, a cancel waits: the cancelled fiber is
//! woken again once no unwind is in progress, and unwinds then. (The same
//! flag makes a `std::sync::Mutex` guard dropped by another fiber in that
//! window poison its mutex; spindle's own primitives never look at it.)
//! The same holds during shutdown: while a fiber parked mid-unwind has not
//! been resumed yet, the fibers resumed before it cannot be told apart from
//! unwinding ones, so their suspension points return early (`Interrupted`)
//! instead of unwinding them; a fiber that then retries such a failed wait
//! in a loop, without ever returning, keeps the shutdown from finishing.
//!
//! ## Deadlock
//!
//! If no fiber is ready, no timer is set, no fiber waits on an fd and no
//! helper thread can wake one, nothing will ever run again: `block_on`
//! panics with `all fibers are asleep - deadlock!` and the list of fibers
//! and what each waits for, as Go does, instead of hanging.
//!
//! ## Stacks at first resume
//!
//! A spawned fiber takes its stack at its first resume, not at its spawn.
//! Until then it is only its closure and join slot, kept in its task's
//! record (inline when they take at most 48 bytes, boxed otherwise), so:
//!
//! - fibers waiting in the run queue hold no stack: with FIFO order, a
//!   program that spawns a million fibers before any of them runs (skynet)
//!   holds stacks only for those that have started;
//! - a short fiber runs on a stack the one before it just gave back to
//!   the pool, whose pages are touched already (no page fault);
//! - a fiber cancelled before it starts, or still unstarted at shutdown,
//!   is dropped on the scheduler's stack without ever taking one: its
//!   closure's destructor runs there, outside any fiber, and its joiner
//!   sees [`JoinError::Cancelled`].
//!
//! The trade: spawning checks the stack *arguments* (size, guard, whether
//! the closure fits) and fails at once if they are bad, but whether a
//! stack can be *mapped* (memory, `vm.max_map_count`) is only known at the
//! first resume. A fiber that cannot get one there does not run: its
//! handle's `join` returns [`JoinError::Panicked`] whose message names the
//! fiber and the OS error, the panic hook reports it (so a detached
//! fiber's failure is not silent), and the runtime goes on with the other
//! fibers. The figures (skynet, the sleepers, spawn+join) are in
//! BENCHMARKS.md, "Stacks at first resume".
//!
//! ## Many workers
//!
//! Everything above holds inside each worker: its own run queue, rounds,
//! timers and reactor. [`spawn`] stays on the caller's worker;
//! [`spawn_on`] and [`spawn_balanced`] place a `Send` closure on a worker
//! and return a [`SendJoinHandle`]. When the main fiber returns, every
//! worker's fibers are cancelled and unwound before `block_on` returns.
//! The worker module's docs (`worker/mod.rs`) give the order of start and
//! shutdown, who owns what, and the limits of the deadlock report.
//!
//! ## Tiers
//!
//! The files of this module form tiers; each imports only from its own
//! tier or the ones below it, and no import circle exists between files
//! (`tests/runtime_tiers.rs` checks both over the source):
//!
//! | tier | where | what |
//! |---|---|---|
//! | 0, vocabulary | `task/` | [`TaskId`], [`TaskState`], what a fiber waits on, cancel flags, the slab and its keys, the reports about tasks |
//! | 1, drivers | `driver/` | the reactor (epoll) and the inbox (a lock-free queue and an eventfd) through which other threads reach a scheduler |
//! | 1, observation | `observe/` | per-fiber accounting, the counters each worker publishes, fiber events, the watchdog thread |
//! | 2, one thread's scheduler | `scheduler/` | its state (fields private to the folder), the thread-locals, the loop, parking, shutdown |
//! | 3, the door | `wait.rs` | `Parker`, `LocalWaker`, `Timer`, `LocalRuntime`: all that the tiers above may do to a scheduler |
//! | 4, the public API | `spawn.rs`, `current.rs`, `time.rs`, `join.rs`, `gather.rs`, `fiber_local.rs`, `timeout.rs`, `fd_wait.rs`, `io_source.rs`, `blocking.rs`, `coop.rs`, `stats.rs` | what users call, all built on `wait.rs` (`coop.rs`: the budget the I/O waits spend) |
//! | 5, workers | `worker/`, `dump/` | the threads of a many-core runtime, placement at spawn, the `Send` handle; the fiber dump, which asks every worker |
//! | 6, the owner | `mod.rs` | [`Runtime`]: creates a scheduler, enters it, runs the main fiber, shuts down |
//!
//! The layers outside the runtime (`spindle::sync`, `spindle::net`,
//! `spindle::io`) reach it through `wait.rs` and `io_source.rs` only.
//!
//! ## Designs we did not take, and why
//!
//! - **Work stealing, fibers moving between threads**: a fiber may hold
//!   addresses of thread-locals that the compiler cached across a switch
//!   (the design's decision 1). Many cores means one scheduler per worker,
//!   with load balanced at spawn ([`spawn_balanced`]), never by moving a
//!   fiber.
//! - **A run queue per priority, or any priorities**: round robin is what a
//!   reader can predict and test exactly; priorities invite starvation.
//! - **Running a woken fiber at once** (Go's `runnext`, tokio's LIFO slot):
//!   faster for ping-pong, but it breaks the simple FIFO order above.
//! - **A timer wheel**: O(1) timers, but coarse ticks (or a hierarchy) and a
//!   fixed granularity; a binary heap gives exact deadlines at O(log n), and
//!   100,000 timers are 17 levels deep.
//! - **io_uring**: not readiness-based, needs buffers owned by the kernel
//!   while an operation is in flight, and is often disabled in containers.
//! - **Edge-triggered, persistent epoll registrations**: one `epoll_ctl` per
//!   fd instead of two per wait, but the reactor must then learn when each
//!   fd is closed. With raw fds the caller owns, one-shot registration per
//!   wait is the sound choice; owned socket types may switch to it later.
//! - **Cancellation by dropping the coroutine**: it would unwind the fiber
//!   at once, but from the canceller's stack and without letting the fiber's
//!   destructors wait on anything; a cancel that is delivered at the fiber's
//!   own suspension point (asyncio's `CancelledError`) keeps every unwind on
//!   the fiber's own turn.
//! - **A `'static` bound on `block_on`'s closure**: it would be simple,
//!   but the first program a user writes borrows (`let data = ...;
//!   spindle::run(|| use(&data))`). The closure may borrow because the main
//!   fiber is the only one that can reach the borrow (every spawned fiber,
//!   callback and fiber-local is `'static`), and `block_on` does not leave
//!   its frame before the main fiber has finished or been unwound: on a
//!   return it has finished; on a deadlock, shutdown unwinds it before the
//!   report is raised; if the scheduler itself panics while it is parked, a
//!   guard shuts the runtime down during that unwind, and aborts the process
//!   if even that fails. `mem::forget` of the runtime cannot keep it alive:
//!   by then it is gone. Under `panic = "abort"` every one of those panics
//!   ends the process instead, so no path leaves `block_on` with the main
//!   fiber suspended either.

mod blocking;
mod coop;
mod current;
pub(crate) mod driver;
pub mod dump;
pub(crate) mod fd_wait;
mod fiber_local;
mod gather;
pub(crate) mod io_source;
mod join;
pub(crate) mod observe;
mod scheduler;
mod spawn;
mod stats;
pub(crate) mod task;
mod time;
mod timeout;
pub(crate) mod wait;
mod worker;

use std::io;
use std::panic::{self, Location};
use std::sync::Arc;
use std::time::Duration;

use crate::stack::Stack;

pub use blocking::{spawn_blocking, KEEP_ALIVE, MAX_BLOCKING_THREADS};
pub use coop::BUDGET;
pub use current::{current, park, tasks, try_current, yield_now, Task};
pub use dump::{dump, Dump, DumpHandle, FiberDump, Frame};
pub use fd_wait::{wait_readable, wait_writable};
pub use fiber_local::FiberLocal;
pub use gather::{gather, Gather};
pub use join::{join_all, wait_any, JoinError, JoinHandle};
pub use observe::{BlockedFiber, BlockedPhase, FiberEvent, FiberEventKind, TaskStats};
pub use spawn::{spawn, Builder};
pub use stats::task_stats;
pub use task::{TaskId, TaskState};
pub use time::{sleep, sleep_until};
pub use timeout::{timeout, Elapsed};
pub use worker::{
    current_worker, spawn_balanced, spawn_on, worker_count, PlacedBuilder, SendJoinHandle,
};

use dump::DumpOnSignal;
use observe::probe::{Counts, Probe};
use observe::watchdog::Watchdog;
use observe::Observer;
use scheduler::Scheduler;
use wait::LocalRuntime;
use worker::Pool;

/// Runs `f` as the main fiber of a new runtime on this thread and returns
/// its value (a one-line [`Runtime::new`] + [`Runtime::block_on`]). `f` may
/// borrow from the caller (see [`Runtime::block_on`]).
///
/// # Examples
///
/// ```
/// let v = spindle::run(|| {
///     let h = spindle::spawn(|| 20);
///     h.join().unwrap() + 1
/// });
/// assert_eq!(v, 21);
///
/// let data = vec![1, 2, 3];
/// let first: &i32 = spindle::run(|| &data[0]);
/// assert_eq!(*first, 1);
/// ```
///
/// # Panics
///
/// As [`Runtime::block_on`], and if the runtime cannot be created (no file
/// descriptors left for its epoll set or eventfd).
#[track_caller]
pub fn run<F, T>(f: F) -> T
where
    F: FnOnce() -> T,
{
    match Runtime::new() {
        Ok(rt) => rt.block_on(f),
        Err(e) => panic!("spindle::run: failed to create a runtime: {e}"),
    }
}

/// A fiber runtime: one scheduler on the thread that runs it, and as many
/// more worker threads as [`RuntimeBuilder::workers`] asks for; see the
/// [module docs](self).
///
/// # Examples
///
/// ```
/// use spindle::Runtime;
///
/// let rt = Runtime::builder().stack_size(128 * 1024).build()?;
/// assert_eq!(rt.block_on(|| spindle::spawn(|| 2).join().unwrap()), 2);
/// assert_eq!(rt.stats().spawned, 2); // the main fiber and one more
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Dropping
///
/// `block_on` leaves no fiber behind, so dropping a runtime normally just
/// closes its epoll fd and eventfd. If a `block_on` was itself unwound by a
/// panic before it could clean up, the drop cancels and unwinds the fibers
/// that remain.
///
/// # `Send`
///
/// A runtime is not `Send`: its fibers belong to the thread that runs it.
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// assert_send(spindle::Runtime::new().unwrap());
/// ```
pub struct Runtime {
    /// The signal watcher of `dump_on`, if any: dropped first (restoring
    /// the signal's disposition, stopping its thread).
    dump_on: Option<DumpOnSignal>,
    sched: Box<Scheduler>,
    /// Workers 1..n and what all workers share; dropping it stops and
    /// joins their threads.
    pool: Pool,
    /// Stopped and joined when the runtime is dropped.
    watchdog: Option<Watchdog>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("stack_size", &self.sched.stack_size())
            .field("workers", &self.pool.len())
            .field("dump_on", &self.dump_on.as_ref().map(DumpOnSignal::signal))
            .field("watchdog", &self.watchdog.is_some())
            .field("stats", &self.stats())
            .finish()
    }
}

/// Configures a [`Runtime`] (tokio's `runtime::Builder`).
///
/// # Examples
///
/// ```
/// let rt = spindle::Runtime::builder().stack_size(64 * 1024).build()?;
/// rt.block_on(|| assert_eq!(spindle::current().name(), Some("main")));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RuntimeBuilder {
    stack_size: usize,
    workers: usize,
    pin_workers: bool,
    guard_pages: usize,
    dump_on: Option<i32>,
    observe: observe::Config,
}

impl RuntimeBuilder {
    /// The default stack size of the runtime's fibers (the main fiber's
    /// included); a task [`Builder::stack_size`] overrides it. Defaults to
    /// [`Stack::DEFAULT_SIZE`].
    pub fn stack_size(mut self, size: usize) -> RuntimeBuilder {
        self.stack_size = size;
        self
    }

    /// The number of worker threads, each running a scheduler of its own
    /// (see [`spawn_on`]); worker 0 is the thread that calls
    /// [`Runtime::block_on`], and the others are started by
    /// [`build`](Self::build). Defaults to 1.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = spindle::Runtime::builder().workers(2).build()?;
    /// assert_eq!(rt.block_on(spindle::worker_count), 2);
    /// assert!(spindle::Runtime::builder().workers(0).build().is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn workers(mut self, n: usize) -> RuntimeBuilder {
        self.workers = n;
        self
    }

    /// The guard below each fiber's stack, in pages (the main fiber's
    /// included); a task [`Builder::guard_pages`] overrides it. Defaults to
    /// [`Stack::DEFAULT_GUARD_PAGES`] (one).
    ///
    /// A fiber whose frame is larger than its guard can jump over it into
    /// the memory below, the top of another fiber's stack, without a fault.
    /// Rust frames cannot (they probe every page), C frames compiled without
    /// `-fstack-clash-protection` can: see "Guard size and stack probes" in
    /// the [`stack`](crate::stack) docs. Guard pages cost address space, not
    /// memory.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = spindle::Runtime::builder().guard_pages(16).build()?;
    /// assert_eq!(rt.block_on(|| 1 + 1), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn guard_pages(mut self, pages: usize) -> RuntimeBuilder {
        self.guard_pages = pages;
        self
    }

    /// Pins worker `i` to the `i`-th CPU this process may run on (modulo
    /// their number) with `sched_setaffinity`; worker 0 is the thread that
    /// builds the runtime, which stays pinned afterwards. Off by default.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = std::thread::spawn(|| {
    ///     let rt = spindle::Runtime::builder().workers(2).pin_workers(true).build().unwrap();
    ///     rt.block_on(|| spindle::spawn_on(1, || 1).join().unwrap())
    /// });
    /// assert_eq!(rt.join().unwrap(), 1);
    /// ```
    pub fn pin_workers(mut self, pin: bool) -> RuntimeBuilder {
        self.pin_workers = pin;
        self
    }

    /// Writes a [dump](mod@dump) of every worker's fibers to stderr each
    /// time the process receives `signal` (e.g. `libc::SIGQUIT`, as Go
    /// does), and lets the program go on. Off by default.
    ///
    /// The signal handler only wakes a watcher thread (through an eventfd);
    /// the watcher asks every worker for its fibers, as a
    /// [`DumpHandle`] does, and writes the dump. The previous disposition of
    /// the signal comes back when the runtime is dropped. One live runtime
    /// at a time may dump on a given signal.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = spindle::Runtime::builder().workers(2).dump_on(libc::SIGQUIT).build()?;
    /// rt.block_on(|| {
    ///     // `kill -QUIT <pid>` now prints every fiber to stderr.
    /// });
    /// drop(rt); // SIGQUIT has its default action again
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// The build fails with [`io::ErrorKind::InvalidInput`] for a number
    /// that is not a signal or must not be caught (`SIGKILL`, `SIGSTOP`,
    /// `SIGSEGV` and the other fault signals), and with
    /// [`io::ErrorKind::AlreadyExists`] while another runtime dumps on it.
    ///
    /// ```
    /// let e = spindle::Runtime::builder().dump_on(libc::SIGKILL).build().unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn dump_on(mut self, signal: i32) -> RuntimeBuilder {
        self.dump_on = Some(signal);
        self
    }

    /// Keeps an account of every fiber: its resumes, the time it ran and
    /// the time it waited (see [`task_stats`], [`TaskStats`]), summed per
    /// worker in [`Runtime::stats`]. Off by default: it reads the clock
    /// twice per resume (BENCHMARKS.md, "Accounting and the watchdog", has
    /// the cost).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = spindle::Runtime::builder().accounting(true).build()?;
    /// rt.block_on(|| spindle::sleep(std::time::Duration::from_millis(10)));
    /// let stats = rt.stats();
    /// assert_eq!(stats.resumes, 2); // the main fiber ran, slept, ran again
    /// assert!(stats.parked >= std::time::Duration::from_millis(10));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn accounting(mut self, on: bool) -> RuntimeBuilder {
        self.observe.accounting = on;
        self
    }

    /// Calls `f` on every fiber's spawn, resume, suspension and exit, on
    /// every worker, for users who feed their own tracing (see
    /// [`FiberEvent`] for the order and where `f` runs). Unset, this costs
    /// one never-taken branch per switch.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    ///
    /// let spawns = Arc::new(AtomicU64::new(0));
    /// let count = Arc::clone(&spawns);
    /// let rt = spindle::Runtime::builder()
    ///     .on_fiber_event(move |e| {
    ///         if e.kind == spindle::FiberEventKind::Spawn {
    ///             count.fetch_add(1, Ordering::Relaxed);
    ///         }
    ///     })
    ///     .build()?;
    /// rt.block_on(|| spindle::spawn(|| ()).join().unwrap());
    /// assert_eq!(spawns.load(Ordering::Relaxed), 2); // main and one more
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn on_fiber_event<F>(mut self, f: F) -> RuntimeBuilder
    where
        F: Fn(&FiberEvent<'_>) + Send + Sync + 'static,
    {
        self.observe.on_event = Some(Arc::new(f));
        self
    }

    /// Starts a watchdog thread that reports a fiber running longer than
    /// `threshold` without parking or yielding (it blocks every other fiber
    /// of its worker), gevent's `max_blocking_time`: by name, worker, spawn
    /// site and time so far, then with its backtrace once it suspends. See
    /// [`BlockedFiber`] for the report; it goes to stderr unless
    /// [`on_blocked`](Self::on_blocked) sets a callback. Off by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = spindle::Runtime::builder().watchdog(Duration::from_millis(100)).build()?;
    /// rt.block_on(|| spindle::sleep(Duration::from_millis(1))); // nothing to report
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn watchdog(mut self, threshold: Duration) -> RuntimeBuilder {
        self.observe.watchdog = Some(threshold);
        self
    }

    /// Sends the [`watchdog`](Self::watchdog)'s reports to `f` instead of
    /// stderr; `f` runs on the watchdog thread (while the fiber still
    /// blocks) and on the fiber's worker (once it suspends or ends).
    ///
    /// # Examples
    ///
    /// See [`BlockedFiber`].
    pub fn on_blocked<F>(mut self, f: F) -> RuntimeBuilder
    where
        F: Fn(&BlockedFiber) + Send + Sync + 'static,
    {
        self.observe.on_blocked = Some(Arc::new(f));
        self
    }

    /// Creates the runtime: an epoll set and an eventfd per worker, and the
    /// threads of workers 1..n.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for `workers(0)`, for a guard of
    /// 0 pages or more than [`Stack::MAX_GUARD_PAGES`], and for a zero
    /// watchdog threshold; what `epoll_create1`
    /// or `eventfd` return (out of file descriptors); the OS refusing a
    /// worker thread; for [`dump_on`](Self::dump_on), a signal it refuses.
    pub fn build(self) -> io::Result<Runtime> {
        if self.workers == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "spindle: a runtime needs at least one worker (workers(0) given)",
            ));
        }
        if !(1..=Stack::MAX_GUARD_PAGES).contains(&self.guard_pages) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a runtime with guards of {} pages: they take 1 to {} pages",
                    self.guard_pages,
                    Stack::MAX_GUARD_PAGES
                ),
            ));
        }
        if self.observe.watchdog == Some(Duration::ZERO) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "spindle: a watchdog threshold of zero would report every fiber",
            ));
        }
        let observer = Observer::new(0, &self.observe, Arc::default());
        let sched = Box::new(Scheduler::new(self.stack_size, self.guard_pages, observer)?);
        let pool = Pool::start(
            self.workers,
            self.stack_size,
            self.guard_pages,
            self.pin_workers,
            Arc::clone(sched.remote()),
            &self.observe,
        )?;
        let dump_on = match self.dump_on {
            Some(signal) => Some(DumpOnSignal::install(
                signal,
                DumpHandle::new(std::sync::Arc::clone(pool.workers())),
            )?),
            None => None,
        };
        let watchdog = match self.observe.watchdog {
            Some(threshold) => {
                let probes = std::iter::once(sched.probe())
                    .chain(pool.probes())
                    .cloned()
                    .collect();
                let report = self
                    .observe
                    .on_blocked
                    .clone()
                    .unwrap_or_else(observe::watchdog::to_stderr);
                Some(Watchdog::start(threshold, probes, report)?)
            }
            None => None,
        };
        Ok(Runtime {
            dump_on,
            sched,
            pool,
            watchdog,
        })
    }
}

/// Counters of a runtime, from [`Runtime::stats`] (all workers) or
/// [`Runtime::worker_stats`] (one each).
///
/// # Examples
///
/// ```
/// let rt = spindle::Runtime::builder().workers(2).build()?;
/// rt.block_on(|| spindle::spawn_on(1, || ()).join().unwrap());
/// let (all, each) = (rt.stats(), rt.worker_stats());
/// assert_eq!(all.spawned, 2);
/// assert_eq!(each[0].spawned + each[1].spawned, all.spawned);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RuntimeStats {
    /// Fibers resumed by the scheduler. Each resume is two context
    /// switches: into the fiber, and back when it parks or finishes.
    pub resumes: u64,
    /// Fibers spawned, main fibers included.
    pub spawned: u64,
    /// Fibers finished.
    pub finished: u64,
    /// Time fibers ran, summed over every fiber, finished ones included
    /// (zero without [`accounting`](RuntimeBuilder::accounting)).
    pub running: Duration,
    /// Time fibers waited between a spawn or a suspension and the next
    /// resume, summed likewise (zero without accounting).
    pub parked: Duration,
}

impl RuntimeStats {
    fn of(c: Counts) -> RuntimeStats {
        RuntimeStats {
            resumes: c.resumes,
            spawned: c.spawned,
            finished: c.finished,
            running: Duration::from_nanos(c.running_ns),
            parked: Duration::from_nanos(c.parked_ns),
        }
    }

    fn add(self, o: RuntimeStats) -> RuntimeStats {
        RuntimeStats {
            resumes: self.resumes + o.resumes,
            spawned: self.spawned + o.spawned,
            finished: self.finished + o.finished,
            running: self.running + o.running,
            parked: self.parked + o.parked,
        }
    }
}

impl Runtime {
    /// A runtime with the default settings.
    ///
    /// # Errors
    ///
    /// As [`RuntimeBuilder::build`].
    pub fn new() -> io::Result<Runtime> {
        Runtime::builder().build()
    }

    /// A builder to configure a runtime.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder {
            stack_size: Stack::DEFAULT_SIZE,
            workers: 1,
            pin_workers: false,
            guard_pages: Stack::DEFAULT_GUARD_PAGES,
            dump_on: None,
            observe: observe::Config::default(),
        }
    }

    /// Runs `f` as the main fiber, runs every other fiber while it lives,
    /// and returns its value. Fibers still alive when it returns are
    /// cancelled and unwound before `block_on` returns.
    ///
    /// `f` may borrow from the caller (and return a borrow): the main fiber
    /// has finished, or has been unwound, before `block_on` returns or
    /// unwinds, whatever happens — its panic, a deadlock, a panic of the
    /// scheduler while it is parked (then the runtime is shut down during
    /// that unwind, and the process aborts if even that fails). Fibers it
    /// spawns must still be `'static`: they may outlive it.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = spindle::Runtime::new()?;
    /// let answer = rt.block_on(|| {
    ///     let h = spindle::spawn(|| 6 * 7);
    ///     h.join().unwrap()
    /// });
    /// assert_eq!(answer, 42);
    ///
    /// let mut seen = Vec::new();
    /// let words = ["a", "b"];
    /// rt.block_on(|| seen.extend(words.iter().map(|w| w.len())));
    /// assert_eq!(seen, [1, 1]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Panics
    ///
    /// - with the main fiber's payload, if it panics (after the other fibers
    ///   have been unwound);
    /// - with the deadlock report, if the main fiber waits for something
    ///   that can no longer happen (see the [module docs](self));
    /// - if this thread is already running a runtime (from inside a fiber),
    ///   or no stack can be had for the main fiber.
    #[track_caller]
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T,
    {
        #[cfg(feature = "hook")]
        crate::hook::link();
        let _enter = self.sched.enter();
        let _worker = self.pool.enter();
        let mut out: Option<T> = None;
        let out_ptr: *mut Option<T> = &mut out;
        let main: Box<dyn FnOnce() + '_> = Box::new(move || {
            let value = f();
            // SAFETY: `out` lives in this frame, which outlives the main
            // fiber (see below); only the main fiber writes it, once.
            unsafe { *out_ptr = Some(value) };
        });
        // SAFETY: only the lifetime is erased (same layout). The closure
        // (and all it borrows) is used only by the main fiber, and
        // `MainGuard` makes sure that fiber has finished or been unwound
        // before this frame is left, by a return or an unwind; if it
        // cannot, it aborts the process. Every other fiber is `'static`.
        let main: Box<dyn FnOnce() + 'static> = unsafe { std::mem::transmute(main) };
        let main = match Builder::new().name("main".into()).spawn_in(
            LocalRuntime::of(&self.sched),
            main,
            Location::caller(),
        ) {
            Ok(h) => h,
            Err(e) => panic!("spindle: failed to create the main fiber: {e}"),
        };
        let guard = MainGuard {
            sched: &self.sched,
            main: &main,
        };
        let outcome = self
            .sched
            .run(main.slot().task().key())
            .map_err(|report| self.pool.whole_deadlock(report));
        self.pool.shutdown(|| self.sched.shutdown());
        drop(guard);
        if let Err(report) = outcome {
            panic!("{report}");
        }
        match main.take_result() {
            Ok(()) => out.expect("the main fiber returned its value"),
            Err(JoinError::Panicked(p)) => panic::resume_unwind(p),
            Err(JoinError::Cancelled) => panic!("spindle: the main fiber was cancelled"),
        }
    }

    /// A `Send` handle that dumps this runtime's fibers, on every worker,
    /// from any thread; see [`DumpHandle`] and the [dump docs](mod@dump).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = spindle::Runtime::builder().workers(2).build()?;
    /// let handle = rt.dump_handle();
    /// assert_eq!(std::thread::spawn(move || handle.dump().workers()).join().unwrap(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn dump_handle(&self) -> DumpHandle {
        DumpHandle::new(std::sync::Arc::clone(self.pool.workers()))
    }

    /// The runtime's counters so far, summed over every worker. Each
    /// worker publishes its own counters as it goes (no message, no lock),
    /// so this may be called at any time, from any thread that holds the
    /// runtime; while fibers run, workers are read one after the other, not
    /// as one snapshot.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = spindle::Runtime::builder().workers(2).build()?;
    /// rt.block_on(|| spindle::spawn_on(1, spindle::yield_now).join().unwrap());
    /// let stats = rt.stats();
    /// assert_eq!((stats.spawned, stats.finished), (2, 2));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stats(&self) -> RuntimeStats {
        self.worker_stats()
            .into_iter()
            .fold(RuntimeStats::default(), RuntimeStats::add)
    }

    /// The counters of each worker, worker 0 first (see
    /// [`stats`](Self::stats)).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = spindle::Runtime::builder().workers(2).build()?;
    /// rt.block_on(|| spindle::spawn_on(1, || ()).join().unwrap());
    /// let each = rt.worker_stats();
    /// assert_eq!(each.len(), 2);
    /// assert_eq!((each[0].spawned, each[1].spawned), (1, 1));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn worker_stats(&self) -> Vec<RuntimeStats> {
        std::iter::once(self.sched.probe())
            .chain(self.pool.probes())
            .map(|p: &Arc<Probe>| RuntimeStats::of(p.counts()))
            .collect()
    }
}

/// Makes sure the main fiber of a `block_on` has finished or been unwound
/// before `block_on`'s frame is left, since it may borrow from the caller.
/// On the normal path (and after a deadlock, which shuts down before it
/// panics) it has, and the guard does nothing; if the scheduler itself
/// panicked while the main fiber was parked, the guard shuts the runtime
/// down (unwinding every fiber) during that unwind, and aborts the process
/// if even that fails.
struct MainGuard<'a> {
    sched: &'a Scheduler,
    main: &'a JoinHandle<()>,
}

impl Drop for MainGuard<'_> {
    fn drop(&mut self) {
        if self.main.is_finished() {
            return;
        }
        let _ = panic::catch_unwind(panic::AssertUnwindSafe(|| self.sched.shutdown()));
        if !self.main.is_finished() {
            eprintln!(
                "spindle: the main fiber (which may borrow from block_on's caller) \
                 could not be unwound; aborting"
            );
            std::process::abort();
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if self.sched.live_tasks() == 0 {
            return;
        }
        if scheduler::context::in_runtime() {
            // Another runtime is entered on this thread (not reachable
            // through the public API: `block_on` always leaves an empty
            // table). Unwinding our fibers now would let their suspension
            // points see the other runtime's scheduler, so they are leaked
            // instead, stacks and all.
            self.sched.leak_fibers();
            return;
        }
        let _enter = self.sched.enter();
        let _worker = self.pool.enter();
        self.sched.shutdown();
    }
}
