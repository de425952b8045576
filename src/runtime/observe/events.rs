//! Fiber events for users who feed their own tracing:
//! [`RuntimeBuilder::on_fiber_event`](crate::runtime::RuntimeBuilder::on_fiber_event)
//! calls one callback on spawn, resume, suspension and exit of every fiber,
//! on every worker.
//!
//! When each event is delivered, and on which stack: see [`FiberEvent`].

use std::time::Duration;

use crate::runtime::task::{TaskId, TaskState};

/// What happened to a fiber; see [`FiberEvent`].
///
/// # Examples
///
/// ```
/// use spindle::FiberEventKind;
/// assert_ne!(FiberEventKind::Spawn, FiberEventKind::Exit);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FiberEventKind {
    /// It was created.
    Spawn,
    /// It is about to run.
    Resume,
    /// It gave its worker back, in this state (`Ready` for a yield).
    Suspend(TaskState),
    /// It has ended.
    Exit,
}

/// One event of one fiber, given to the callback of
/// [`RuntimeBuilder::on_fiber_event`](crate::runtime::RuntimeBuilder::on_fiber_event).
///
/// ## When each event is delivered, and on which stack
///
/// | event | when | where the callback runs |
/// |---|---|---|
/// | [`Spawn`](FiberEventKind::Spawn) | the fiber is in its worker's run queue | the spawning fiber's stack (the worker's scheduler for a remote spawn) |
/// | [`Resume`](FiberEventKind::Resume) | just before the switch into the fiber | the worker's scheduler |
/// | [`Suspend`](FiberEventKind::Suspend) | just after the switch back, with the state it suspended in | the worker's scheduler |
/// | [`Exit`](FiberEventKind::Exit) | its fiber is gone (returned, panicked, or unwound by a cancel) | the worker's scheduler |
///
/// So every fiber's events read `Spawn (Resume Suspend)* Resume Exit`
/// (a fiber cancelled before it ever ran too: its last resume finds the
/// cancel and returns without calling its closure). A dump's trace
/// resumes (which do not run the fiber's code) are not events.
///
/// The callback runs between two switches with no borrow of the scheduler
/// held: it may spawn and read [`tasks`](crate::tasks), but it must not
/// park (it is not on a fiber of its own), and a panic in it leaves the
/// scheduler as a panic of the scheduler would (`block_on` unwinds every
/// fiber, then panics). Unset, the whole mechanism is one predictable branch
/// per switch.
///
/// # Examples
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use spindle::FiberEventKind;
///
/// let log = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&log);
/// let rt = spindle::Runtime::builder()
///     .on_fiber_event(move |e| {
///         if e.name == Some("job") {
///             sink.lock().unwrap().push(e.kind);
///         }
///     })
///     .build()?;
/// rt.block_on(|| {
///     spindle::Builder::new().name("job".into()).spawn(spindle::yield_now).unwrap().join()
/// })
/// .unwrap();
/// use FiberEventKind::*;
/// assert_eq!(
///     *log.lock().unwrap(),
///     [Spawn, Resume, Suspend(spindle::TaskState::Ready), Resume, Exit]
/// );
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FiberEvent<'a> {
    /// What happened.
    pub kind: FiberEventKind,
    /// The fiber's id.
    pub id: TaskId,
    /// The fiber's name, if it has one.
    pub name: Option<&'a str>,
    /// The worker it belongs to.
    pub worker: usize,
    /// Its resumes that have ended so far (0 without
    /// [`accounting`](crate::runtime::RuntimeBuilder::accounting)).
    pub resumes: u64,
    /// Its running time so far (zero without accounting).
    pub running: Duration,
    /// Its parked time so far (zero without accounting).
    pub parked: Duration,
}
