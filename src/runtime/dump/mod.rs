//! What is every fiber doing? [`dump`] lists every live fiber of the
//! calling runtime, on every worker, Go-style, with its state, what it
//! waits for, where it was spawned, how deep its stack is, and its
//! backtrace.
//!
//! ```text
//! fiber 3 "conn" [waiting on I/O: fd 12 readable, times out in 4.990 s]:
//!     server::handle
//!         at src/server.rs:40:9
//!     spawned at src/main.rs:42:5
//!     stack: 1.2 KiB in use, deepest ever 9.1 KiB, of 256.0 KiB
//! ```
//!
//! The dump ends with the stack summary ([`Dump::stack_summary`]): per
//! name, the deepest high-water mark and a smaller stack size to try. The
//! marks come from [`Stack::high_water`](crate::stack::Stack::high_water)
//! (resident pages and a scan; exact for stacks handed out while
//! [`set_high_water_tracking`](crate::stack::set_high_water_tracking) is on),
//! taken before a fiber's trace; the trace's own capture, below the fiber's
//! stack pointer, is erased again so that it never raises a mark.
//!
//! ## Every worker, each tracing its own
//!
//! A fiber never leaves its worker's thread, and its backtrace is taken on
//! that thread (below). So a dump of a runtime with several workers asks
//! each worker for its part: a `Message::Dump` goes into every other
//! worker's inbox (the one remote spawns and wake-ups use), and each
//! worker, between two of its rounds (when all its fibers are suspended),
//! traces its fibers and sends the traces back. The asker meanwhile does
//! its own worker's part, then waits for the replies: a fiber parks (its
//! worker keeps running the others), a plain thread blocks. A worker that
//! does not answer within the patience ([`DumpHandle::PATIENCE`], 5 s) is
//! named in the dump instead of its fibers: one of its fibers has run all
//! that time without reaching a suspension point. Worker 0 answers only
//! while a thread runs it (inside [`Runtime::block_on`](crate::Runtime::block_on)).
//!
//! [`dump`] works from any fiber; from another thread, a [`DumpHandle`]
//! ([`Runtime::dump_handle`](crate::Runtime::dump_handle), `Send`)
//! asks the same of every worker, and
//! [`RuntimeBuilder::dump_on`](crate::runtime::RuntimeBuilder::dump_on) writes a
//! dump to stderr each time the process receives a signal, as Go does on
//! `SIGQUIT` (the program goes on).
//!
//! ## How a suspended fiber's backtrace is taken, and why it is sound
//!
//! A suspended fiber's frames are on its own stack, below its saved stack
//! pointer. Rather than walking another stack from outside (which needs
//! an unwinder that accepts a foreign register set), the dump lets each
//! fiber walk its own:
//!
//! 1. The fiber that calls [`dump`] captures its own backtrace, then
//!    suspends to the scheduler with a "dump requested" flag and *without*
//!    changing its state (it stays running and joins no queue).
//! 2. The scheduler sees the flag and, for every other fiber that has
//!    started, raises a "trace" flag and resumes it. Every fiber is
//!    suspended in the same place, the scheduler's one suspension point;
//!    coming back there, the fiber sees the trace flag, captures
//!    `std::backtrace::Backtrace` on its own stack (with the same unwind
//!    tables a panic uses), and suspends again at once. It loops there
//!    while the flag is set, so the code that parked it (its wait loop,
//!    its cancellation check) never runs: its state, timer, fd and queue
//!    registrations are untouched. No fiber is woken early, and no wake-up
//!    is lost: a wake-up is a change of state in the scheduler, which the
//!    trace does not look at or write.
//! 3. The scheduler resolves the captures into text on its own stack
//!    (symbolising is slow and uses a deep stack, which small fiber stacks
//!    may not have), and resumes the asking fiber right away.
//!
//! Capturing uses a few KiB of the traced fiber's stack (the unwinder's
//! frames), below the frame it is suspended in. A fiber whose stack has
//! less room left than that would hit its guard page, which is reported
//! as a stack overflow, as any deeper call would be.
//!
//! Until a dump is asked for, all of this costs one load of a flag and a
//! branch that is never taken, on each side of each switch.
//!
//! The frames of the machinery are trimmed: a fiber's backtrace starts at
//! the innermost frame outside the runtime's scheduler (the function that
//! waits, e.g. `spindle::runtime::time::sleep`, or the user's own function
//! when the wait was inlined into it) and ends at the fiber's closure.
//! Without debug information (`debug = false` in the profile) frames have
//! names but no `file:line`. As in any backtrace, a function that ends in a
//! tail call, or that was inlined, has no frame of its own.
//!
//! Wait reasons name the object: the fd and the direction of an I/O wait,
//! the fiber a join waits for, the method of a `spindle::sync` primitive,
//! and, for any wait with a timer (a sleep, a wait with a timeout), the
//! time left at the moment of the dump ("wakes in", "times out in"),
//! read from the worker's sleep queue.
//!
//! The deadlock report uses the same traces, in the short form (one line
//! per fiber: `fiber 2 "stuck" [parked] in app::wait_here (src/app.rs:9:5),
//! spawned at src/main.rs:4:18`), which `{:#}` also prints for a [`Dump`].

mod collect;
mod on_signal;
mod stacks;

use std::fmt;
use std::panic::Location;
use std::time::Duration;

pub use super::task::trace::Frame;
use super::task::FiberTrace;
use super::task::{TaskId, TaskState};
use crate::stack::HighWater;

pub(crate) use collect::traces_of_other_workers;
pub use collect::DumpHandle;
pub(crate) use on_signal::DumpOnSignal;
pub use stacks::StackSummary;

/// Every live fiber of the calling runtime, on every worker; see the
/// [module docs](self).
///
/// Outside a runtime (or on the scheduler's own stack) the dump is empty.
///
/// # Examples
///
/// ```
/// spindle::run(|| {
///     let h = spindle::Builder::new()
///         .name("napper".into())
///         .spawn(|| spindle::sleep(std::time::Duration::from_millis(20)))
///         .unwrap();
///     spindle::yield_now(); // let it start and fall asleep
///     let dump = spindle::dump();
///     let napper = dump.fibers().iter().find(|f| f.name() == Some("napper")).unwrap();
///     assert_eq!(napper.state(), spindle::TaskState::Sleeping);
///     println!("{dump}");
///     h.join().unwrap();
/// });
/// assert!(spindle::dump().fibers().is_empty());
/// ```
///
/// With several workers, each worker's fibers:
///
/// ```
/// let rt = spindle::Runtime::builder().workers(2).build()?;
/// rt.block_on(|| {
///     let far = spindle::spawn_on(1, || spindle::sleep(std::time::Duration::from_millis(50)));
///     spindle::sleep(std::time::Duration::from_millis(10));
///     let dump = spindle::dump();
///     assert!(dump.fibers().iter().any(|f| f.worker() == 1 && f.state() == spindle::TaskState::Sleeping));
///     far.join().unwrap();
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn dump() -> Dump {
    collect::from_here()
}

/// A [`dump`]: every fiber, by worker and then in id order. `Display`
/// prints them Go-style (under a `worker i` heading when there are several
/// workers), `{:#}` one line per fiber (the short form of the deadlock
/// report).
///
/// # Examples
///
/// ```
/// spindle::run(|| {
///     let text = spindle::dump().to_string();
///     assert!(text.starts_with("fiber "), "{text}");
///     assert!(text.contains("[running]"));
/// });
/// ```
#[derive(Clone, Debug)]
pub struct Dump {
    fibers: Vec<FiberDump>,
    /// Number of workers of the runtime (0 outside a runtime).
    workers: usize,
    /// Workers whose fibers are missing, and why.
    silent: Vec<(usize, Silence)>,
}

/// Why a worker's fibers are not in a dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Silence {
    /// No thread runs it (worker 0 outside `block_on`), or the runtime has
    /// ended.
    NotRunning,
    /// It did not answer within this long.
    NoAnswer(Duration),
}

impl Dump {
    /// The fibers, by worker, then in id order.
    ///
    /// # Examples
    ///
    /// ```
    /// spindle::run(|| assert_eq!(spindle::dump().fibers().len(), 1));
    /// ```
    pub fn fibers(&self) -> &[FiberDump] {
        &self.fibers
    }

    /// The number of workers of the runtime dumped (0 for an empty dump
    /// taken outside a runtime).
    ///
    /// # Examples
    ///
    /// ```
    /// spindle::run(|| assert_eq!(spindle::dump().workers(), 1));
    /// assert_eq!(spindle::dump().workers(), 0);
    /// ```
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The workers whose fibers are not in the dump: not running (worker 0
    /// outside `block_on`), or no answer within the patience (a fiber there
    /// has run all that time without a suspension point). `Display` says
    /// which.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = spindle::Runtime::builder().workers(2).build()?;
    /// // No thread is in block_on: worker 0 cannot answer, worker 1 does.
    /// let dump = rt.dump_handle().dump();
    /// assert_eq!(dump.silent_workers(), vec![0]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn silent_workers(&self) -> Vec<usize> {
        self.silent.iter().map(|&(w, _)| w).collect()
    }
}

impl fmt::Display for Dump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.workers == 0 {
            return f.write_str("no fibers (not in a runtime)\n");
        }
        let grouped = self.workers > 1;
        let mut first = true;
        for w in 0..self.workers {
            let fibers = self.fibers.iter().filter(|fd| fd.worker == w);
            let silence = self.silent.iter().find(|&&(s, _)| s == w).map(|&(_, s)| s);
            if grouped {
                if !first && !f.alternate() {
                    f.write_str("\n")?;
                }
                first = false;
                match silence {
                    Some(Silence::NotRunning) => {
                        writeln!(f, "worker {w}: not running")?;
                        continue;
                    }
                    Some(Silence::NoAnswer(d)) => {
                        writeln!(
                            f,
                            "worker {w}: no answer within {:.1} s \
                             (a fiber there has run that long without a suspension point)",
                            d.as_secs_f64()
                        )?;
                        continue;
                    }
                    None if !f.alternate() => {
                        let n = self.fibers.iter().filter(|fd| fd.worker == w).count();
                        writeln!(f, "worker {w}: {n} fibers\n")?;
                    }
                    None => {}
                }
            }
            for (i, fiber) in fibers.enumerate() {
                if f.alternate() {
                    if grouped {
                        write!(f, "worker {w}: ")?;
                    }
                    writeln!(f, "{}", fiber.short)?;
                } else {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    write!(f, "{fiber}")?;
                }
            }
        }
        let summary = self.stack_summary();
        if !f.alternate() && !summary.is_empty() {
            f.write_str("\nstacks, by name (high-water marks):\n")?;
            for s in summary {
                writeln!(f, "    {s}")?;
            }
        }
        Ok(())
    }
}

/// One fiber of a [`Dump`].
///
/// # Examples
///
/// ```
/// spindle::run(|| {
///     let dump = spindle::dump();
///     let me = &dump.fibers()[0];
///     assert_eq!(me.name(), Some("main"));
///     assert_eq!(me.state(), spindle::TaskState::Running);
///     assert!(me.stack_size() > 0);
/// });
/// ```
#[derive(Clone, Debug)]
pub struct FiberDump {
    id: TaskId,
    worker: usize,
    name: Option<String>,
    state: TaskState,
    waiting_for: Option<String>,
    timer: Option<Duration>,
    header: String,
    /// The one-line short form, as the deadlock report prints it.
    short: String,
    spawned_at: &'static Location<'static>,
    stack_size: usize,
    stack_used: Option<usize>,
    high_water: Option<HighWater>,
    backtrace: Vec<Frame>,
}

impl FiberDump {
    fn from_trace(t: FiberTrace, worker: usize) -> FiberDump {
        let short = t.to_string();
        let waiting_for = t.info.waiting_on.to_string();
        FiberDump {
            id: t.info.id,
            worker,
            name: t.info.name.as_deref().map(str::to_string),
            state: t.info.state,
            waiting_for: (!waiting_for.is_empty()).then_some(waiting_for),
            timer: t.timer,
            header: t.header().to_string(),
            short,
            spawned_at: t.spawned_at,
            stack_size: t.stack_size,
            stack_used: t.stack_used,
            high_water: t.stack_high_water,
            backtrace: t.frames,
        }
    }

    /// The fiber's id.
    ///
    /// ```
    /// spindle::run(|| assert_eq!(spindle::dump().fibers()[0].id(), spindle::current().id()));
    /// ```
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The worker it runs on (0 for a runtime of one worker).
    ///
    /// ```
    /// spindle::run(|| assert_eq!(spindle::dump().fibers()[0].worker(), 0));
    /// ```
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// The fiber's name, if it was given one.
    ///
    /// ```
    /// spindle::run(|| assert_eq!(spindle::dump().fibers()[0].name(), Some("main")));
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// What it was doing.
    ///
    /// ```
    /// spindle::run(|| assert_eq!(spindle::dump().fibers()[0].state(), spindle::TaskState::Running));
    /// ```
    pub fn state(&self) -> TaskState {
        self.state
    }

    /// What it waits for, when the wait names it: `fd 12 readable` (or
    /// `writable`), `fiber 7`, or the method of a sync primitive
    /// (`spindle::sync::Mutex::lock`).
    ///
    /// ```
    /// spindle::run(|| assert_eq!(spindle::dump().fibers()[0].waiting_for(), None));
    /// ```
    pub fn waiting_for(&self) -> Option<&str> {
        self.waiting_for.as_deref()
    }

    /// Time left, at the moment of the dump, until its timer fires: the end
    /// of a sleep, or the timeout of a wait that has one. `None` for a
    /// fiber with no timer.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// spindle::run(|| {
    ///     let h = spindle::spawn(|| spindle::sleep(Duration::from_secs(2)));
    ///     spindle::yield_now();
    ///     let dump = spindle::dump();
    ///     let left = dump.fibers()[1].timer().unwrap();
    ///     assert!(left > Duration::from_secs(1) && left <= Duration::from_secs(2));
    ///     assert!(dump.to_string().contains("[sleeping, wakes in "), "{dump}");
    ///     h.cancel();
    /// });
    /// ```
    pub fn timer(&self) -> Option<Duration> {
        self.timer
    }

    /// Where it was spawned: the caller of `spawn` or `Builder::spawn`
    /// (for the main fiber, the caller of `run` or `block_on`).
    ///
    /// ```
    /// spindle::run(|| {
    ///     let h = spindle::spawn(|| spindle::yield_now());
    ///     let line = line!() - 1;
    ///     spindle::yield_now();
    ///     let dump = spindle::dump();
    ///     assert_eq!(dump.fibers()[1].spawned_at().line(), line);
    ///     h.join().unwrap();
    /// });
    /// ```
    pub fn spawned_at(&self) -> &'static Location<'static> {
        self.spawned_at
    }

    /// Usable bytes of its stack.
    ///
    /// ```
    /// spindle::run(|| assert!(spindle::dump().fibers()[0].stack_size() >= 4096));
    /// ```
    pub fn stack_size(&self) -> usize {
        self.stack_size
    }

    /// How deep its stack is while suspended (from the top of the stack to
    /// its saved stack pointer; not the high-water mark). `None` for the
    /// fiber that took the dump and for fibers that have not started.
    ///
    /// ```
    /// spindle::run(|| assert_eq!(spindle::dump().fibers()[0].stack_used(), None));
    /// ```
    pub fn stack_used(&self) -> Option<usize> {
        self.stack_used
    }

    /// How deep its stack has ever been used: its high-water mark, exact
    /// when the stack was fresh or painted when handed out
    /// ([`set_high_water_tracking`](crate::stack::set_high_water_tracking)),
    /// an upper bound otherwise; see
    /// [`stack::high_water`](crate::stack::high_water). The fiber that took
    /// the dump counts the dump's own frames.
    ///
    /// ```
    /// spindle::stack::set_high_water_tracking(true);
    /// spindle::run(|| {
    ///     let h = spindle::spawn(|| {
    ///         let buf = std::hint::black_box([7u8; 20_000]);
    ///         std::hint::black_box(&buf);
    ///         spindle::yield_now();
    ///     });
    ///     spindle::yield_now();
    ///     let dump = spindle::dump();
    ///     let hw = dump.fibers()[1].stack_high_water().unwrap();
    ///     assert!(hw.is_exact() && hw.bytes() > 20_000, "{hw:?}");
    ///     h.join().unwrap();
    /// });
    /// ```
    pub fn stack_high_water(&self) -> Option<HighWater> {
        self.high_water
    }

    /// Its frames, innermost first; empty for a fiber that has not started.
    ///
    /// ```
    /// #[inline(never)]
    /// fn look() -> spindle::Dump {
    ///     spindle::dump()
    /// }
    /// spindle::run(|| {
    ///     let dump = look();
    ///     assert!(dump.fibers()[0].backtrace().iter().any(|f| f.function().ends_with("look")));
    /// });
    /// ```
    pub fn backtrace(&self) -> &[Frame] {
        &self.backtrace
    }
}

impl fmt::Display for FiberDump {
    /// The Go-style block: header, frames, spawn location, stack.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}:", self.header)?;
        if self.backtrace.is_empty() {
            writeln!(f, "    (not started)")?;
        }
        for frame in &self.backtrace {
            writeln!(f, "    {}", frame.function())?;
            if let Some(at) = frame.location() {
                writeln!(f, "        at {at}")?;
            }
        }
        writeln!(f, "    spawned at {}", self.spawned_at)?;
        f.write_str("    stack: ")?;
        if let Some(used) = self.stack_used {
            write!(f, "{} in use, ", Bytes(used))?;
        }
        if let Some(hw) = self.high_water {
            let bound = if hw.is_exact() { "" } else { "at most " };
            write!(f, "deepest ever {bound}{}, ", Bytes(hw.bytes()))?;
        }
        writeln!(f, "of {}", Bytes(self.stack_size))
    }
}

/// A byte count, in the largest unit that keeps it above 1.
pub(crate) struct Bytes(pub(crate) usize);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0 as f64;
        if self.0 < 1024 {
            write!(f, "{} B", self.0)
        } else if self.0 < 1024 * 1024 {
            write!(f, "{:.1} KiB", n / 1024.0)
        } else if self.0 < 1 << 30 {
            write!(f, "{:.1} MiB", n / (1024.0 * 1024.0))
        } else {
            write!(f, "{:.1} GiB", n / (1024.0 * 1024.0 * 1024.0))
        }
    }
}
