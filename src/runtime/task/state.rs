//! What a task is doing ([`TaskState`]), what it waits on ([`WaitingOn`]),
//! and where it stands with respect to cancellation ([`Cancel`]).

use std::fmt;
use std::os::fd::RawFd;

use super::id::TaskId;

/// What a task is doing, as [`tasks`](crate::tasks) reports it.
///
/// # Examples
///
/// ```
/// spindle::run(|| assert_eq!(spindle::current().state(), spindle::TaskState::Running));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum TaskState {
    /// On the CPU: the task that asked.
    Running,
    /// In the run queue: spawned and not started yet, yielded, or woken.
    Ready,
    /// In [`sleep`](crate::sleep) or [`sleep_until`](crate::sleep_until).
    Sleeping,
    /// Waiting for an fd ([`wait_readable`](crate::runtime::wait_readable),
    /// [`wait_writable`](crate::runtime::wait_writable)).
    WaitingIo,
    /// Waiting for another task to finish ([`JoinHandle::join`](crate::JoinHandle::join),
    /// [`join_all`](crate::join_all), [`wait_any`](crate::wait_any),
    /// [`timeout`](crate::timeout)).
    WaitingJoin,
    /// Waiting for a closure on a helper thread
    /// ([`spawn_blocking`](crate::spawn_blocking)).
    WaitingBlocking,
    /// In [`park`](crate::park), waiting for [`Task::unpark`](crate::Task::unpark).
    Parked,
    /// Waiting on a primitive of [`spindle::sync`](crate::sync): a channel,
    /// a lock, a condition variable, a semaphore, a wait group or a barrier.
    WaitingSync,
}

impl TaskState {
    /// Whether the task is parked: off the run queue, waiting for a wake-up.
    #[inline]
    pub(crate) fn is_parked(self) -> bool {
        !matches!(self, TaskState::Running | TaskState::Ready)
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskState::Running => "running",
            TaskState::Ready => "ready",
            TaskState::Sleeping => "sleeping",
            TaskState::WaitingIo => "waiting on I/O",
            TaskState::WaitingJoin => "waiting on a join",
            TaskState::WaitingBlocking => "waiting on a blocking call",
            TaskState::Parked => "parked",
            TaskState::WaitingSync => "waiting on a sync primitive",
        })
    }
}

/// What a parked task waits on, beyond its [`TaskState`]: the object a
/// report names after the state (`[waiting on a join: fiber 7]`).
///
/// Written by the suspension point when it parks, together with the state;
/// read by the deadlock report (and any other listing of tasks).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum WaitingOn {
    /// Nothing worth naming (a sleep, a yield, a blocking call, `park`).
    Nothing,
    /// Another task's end (a join).
    Task(TaskId),
    /// An fd's readiness, in one direction.
    Fd(RawFd, Direction),
    /// A primitive of `spindle::sync`, by the method that waits, e.g.
    /// `"spindle::sync::Mutex::lock"`.
    Sync(&'static str),
}

impl fmt::Display for WaitingOn {
    /// The object alone (`fiber 7`, `fd 5 readable`, the method); nothing for
    /// [`WaitingOn::Nothing`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitingOn::Nothing => Ok(()),
            WaitingOn::Task(id) => write!(f, "fiber {id}"),
            WaitingOn::Fd(fd, dir) => write!(f, "fd {fd} {dir}"),
            WaitingOn::Sync(what) => f.write_str(what),
        }
    }
}

/// Which readiness of an fd a task waits for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Direction {
    /// Readable (or hung up).
    Read,
    /// Writable.
    Write,
}

impl fmt::Display for Direction {
    /// `readable` or `writable`, as a report says it after the fd.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Read => "readable",
            Direction::Write => "writable",
        })
    }
}

/// Where a task stands with respect to cancellation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Cancel {
    /// Not cancelled.
    No,
    /// `cancel` was called; the next suspension point unwinds.
    Pending,
    /// The unwind has been raised. Later suspension points behave normally
    /// (so destructors may sleep or wait), unless cancel is called again.
    Delivered,
}

/// The private payload that unwinds a cancelled fiber. Raised with
/// `resume_unwind`, so no panic message is printed; the task root
/// recognises it and reports [`JoinError::Cancelled`](crate::JoinError).
pub(crate) struct CancelUnwind;

/// A wait ended without its event because the runtime is shutting down and
/// the fiber is already unwinding (so it cannot be unwound again).
#[derive(Debug)]
pub(crate) struct Interrupted;
