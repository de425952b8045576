//! The vocabulary of the runtime: what every tier above says about a task,
//! with no behaviour of its own.
//!
//! - [`id`]: [`TaskId`], unique per process, handed out in per-thread blocks.
//! - [`state`]: [`TaskState`] (what a task is doing), [`WaitingOn`] (what a
//!   parked task waits for), the cancellation flags ([`Cancel`]) and the
//!   two private outcomes of a suspension point ([`CancelUnwind`],
//!   [`Interrupted`]).
//! - [`slab`]: the generational [`Slab`] and its [`Key`], which name a task
//!   inside one scheduler.
//! - [`start`]: [`Start`], a task that has not started: its [`Job`] kept
//!   until its first resume takes a stack.
//! - [`locals`]: [`LocalMap`], one fiber's fiber-local values.
//! - [`report`]: [`TaskInfo`], one task as a report shows it, and the
//!   [`Deadlock`] report built from them.
//! - [`trace`]: capturing a backtrace and reading its frames, for dumps
//!   ([`FiberTrace`], in `report`).
//!
//! This is the bottom tier of `src/runtime/` (see the runtime's module
//! docs, "Tiers"): nothing here imports anything else from the runtime
//! except other files of this folder.

pub(crate) mod id;
pub(crate) mod locals;
pub(crate) mod report;
pub(crate) mod slab;
pub(crate) mod start;
pub(crate) mod state;
pub(crate) mod trace;

use crate::coroutine::{Coroutine, Yielder};

pub use id::TaskId;
pub(crate) use locals::{LocalMap, LocalSlot};
pub(crate) use report::{Deadlock, FiberTrace, TaskInfo};
pub(crate) use slab::{Key, Slab};
pub(crate) use start::{Abandon, Job, Start};
pub use state::TaskState;
pub(crate) use state::{Cancel, CancelUnwind, Direction, Interrupted, WaitingOn};

/// A task's fiber: resumed with nothing, suspends with nothing, returns
/// nothing. Results travel through the task's join slot instead, and the
/// reason for a suspension is written into the task's record.
pub(crate) type Fiber = Coroutine<(), (), ()>;
/// The yielder of a [`Fiber`].
pub(crate) type FiberYielder = Yielder<(), ()>;
