//! Reports about tasks: [`TaskInfo`] (one task, as a listing shows it) and
//! the [`Deadlock`] report made of them.
//!
//! Both are types rather than strings so that every listing of tasks (the
//! deadlock report, [`tasks`](crate::tasks), a future dump) shares one
//! description of a task and one way of printing it.

use std::fmt;
use std::sync::Arc;

use super::id::TaskId;
use super::state::{TaskState, WaitingOn};
use super::trace::FiberTrace;

/// One live task at one moment.
#[derive(Clone, Debug)]
pub(crate) struct TaskInfo {
    pub(crate) id: TaskId,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) state: TaskState,
    pub(crate) waiting_on: WaitingOn,
}

impl fmt::Display for TaskInfo {
    /// `fiber 3 "name" [state: object]`, after Go's goroutine headers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fiber {}", self.id)?;
        if let Some(name) = &self.name {
            write!(f, " {name:?}")?;
        }
        write!(f, " [{}", self.state)?;
        if self.waiting_on != WaitingOn::Nothing {
            write!(f, ": {}", self.waiting_on)?;
        }
        f.write_str("]")
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
