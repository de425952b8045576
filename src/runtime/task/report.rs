//! Reports about tasks: [`TaskInfo`] (one task, as a listing shows it),
//! [`FiberTrace`] (one fiber in a dump: that and its frames) and the
//! [`Deadlock`] report made of them.
//!
//! Both are types rather than strings so that every listing of tasks (the
//! deadlock report, [`tasks`](crate::tasks), a future dump) shares one
//! description of a task and one way of printing it.

use std::fmt;
use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use crate::stack::HighWater;

use super::id::TaskId;
use super::state::{TaskState, WaitingOn};
use super::trace::Frame;

/// One live task at one moment.
#[derive(Clone, Debug)]
pub(crate) struct TaskInfo {
    pub(crate) id: TaskId,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) state: TaskState,
    pub(crate) waiting_on: WaitingOn,
}

impl TaskInfo {
    /// `fiber 3 "name" [state: object]`, and `, wakes in 1.234 s` (a sleep)
    /// or `, times out in 1.234 s` (another wait) before the `]` when
    /// `timer` gives the time left.
    fn write_header(&self, f: &mut fmt::Formatter<'_>, timer: Option<Duration>) -> fmt::Result {
        write!(f, "fiber {}", self.id)?;
        if let Some(name) = &self.name {
            write!(f, " {name:?}")?;
        }
        write!(f, " [{}", self.state)?;
        // What it last waited on is stale once it runs again.
        if self.waiting_on != WaitingOn::Nothing && self.state.is_parked() {
            write!(f, ": {}", self.waiting_on)?;
        }
        if let Some(left) = timer {
            let verb = if self.state == TaskState::Sleeping {
                "wakes"
            } else {
                "times out"
            };
            write!(f, ", {verb} in {:.3} s", left.as_secs_f64())?;
        }
        f.write_str("]")
    }
}

impl fmt::Display for TaskInfo {
    /// `fiber 3 "name" [state: object]`, after Go's goroutine headers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_header(f, None)
    }
}

/// Go's "all goroutines are asleep": every task of a scheduler that can no
/// longer be woken, in id order, each in a dump's short form (where it
/// waits, where it was spawned). `block_on` panics with its text.
#[derive(Debug)]
pub(crate) struct Deadlock {
    pub(crate) tasks: Vec<FiberTrace>,
}

impl fmt::Display for Deadlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("all fibers are asleep - deadlock!\n")?;
        for t in &self.tasks {
            write!(f, "\n{t}")?;
        }
        Ok(())
    }
}

/// What the scheduler knows about one live fiber when a dump is taken.
#[derive(Debug)]
pub(crate) struct FiberTrace {
    pub(crate) info: TaskInfo,
    /// The `#[track_caller]` location of the `spawn` that made it.
    pub(crate) spawned_at: &'static Location<'static>,
    /// Usable bytes of its stack.
    pub(crate) stack_size: usize,
    /// Bytes between the top of its stack and its saved stack pointer;
    /// `None` for the running fiber and a fiber that has not started.
    pub(crate) stack_used: Option<usize>,
    /// How deep its stack has ever been (see `stack::high_water`).
    pub(crate) stack_high_water: Option<HighWater>,
    /// Time left until its timer fires (a sleep's end, a wait's timeout),
    /// when it has one: counted from the moment of the dump, zero if the
    /// deadline has passed and the timer is about to fire.
    pub(crate) timer: Option<Duration>,
    /// Its own frames, innermost first (see [`parse_frames`](super::trace::parse_frames)); empty for
    /// a fiber that has not started yet.
    pub(crate) frames: Vec<Frame>,
}

impl FiberTrace {
    /// The header of its block in a dump: `fiber 3 "nap" [sleeping, wakes
    /// in 1.234 s]`, `fiber 4 [waiting on I/O: fd 12 readable, times out
    /// in 0.500 s]`.
    pub(crate) fn header(&self) -> Header<'_> {
        Header(self)
    }
}

/// The header of a [`FiberTrace`] (see [`FiberTrace::header`]).
pub(crate) struct Header<'a>(&'a FiberTrace);

impl fmt::Display for Header<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.info.write_header(f, self.0.timer)
    }
}

impl fmt::Display for FiberTrace {
    /// The short form, one line, naming the innermost frame outside
    /// spindle: `fiber 3 "conn" [waiting on I/O: fd 12 readable] in server::handle (src/server.rs:40:9), spawned at src/main.rs:42:5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.header())?;
        // The innermost frame outside spindle: the code that waits.
        let top = self
            .frames
            .iter()
            .find(|fr| !fr.function().starts_with("spindle::"));
        if let Some(top) = top.or(self.frames.first()) {
            write!(f, " in {}", top.function())?;
            if let Some(at) = top.location() {
                write!(f, " ({at})")?;
            }
        }
        write!(f, ", spawned at {}", self.spawned_at)
    }
}
