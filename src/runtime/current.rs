//! Naming tasks: [`Task`], [`current`], [`try_current`], [`tasks`]; and the
//! two ways a fiber gives way without waiting on anything: [`yield_now`]
//! and [`park`].

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use super::task::{TaskId, TaskState};
use super::wait::{with_runtime, LocalWaker, Parker};

/// A live task as seen at one moment: id, name and state. What
/// [`current`] and [`tasks`] return (std's `Thread`, asyncio's `Task`
/// listing).
///
/// # Examples
///
/// ```
/// spindle::run(|| {
///     let me = spindle::current();
///     assert_eq!(me.name(), Some("main"));
///     assert_eq!(me.state(), spindle::TaskState::Running);
/// });
/// ```
///
/// # `Send`
///
/// A `Task` is not `Send`: [`unpark`](Task::unpark) wakes a fiber of this
/// thread's runtime.
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// spindle::run(|| assert_send(spindle::current()));
/// ```
#[derive(Clone)]
pub struct Task {
    id: TaskId,
    name: Option<Arc<str>>,
    state: TaskState,
    /// Names the task in its runtime, for `unpark`.
    waker: LocalWaker,
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("state", &self.state)
            .finish()
    }
}

impl Task {
    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The name given with [`Builder::name`](crate::Builder::name) (`"main"` for the main fiber).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// What the task was doing when this snapshot was taken.
    pub fn state(&self) -> TaskState {
        self.state
    }

    /// Gives the task its unpark token (std's `Thread::unpark`): if it is
    /// in [`park`], it wakes; otherwise its next `park` returns at once.
    /// Tokens do not accumulate. Does nothing if the task has finished or
    /// the caller is not in the task's runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// spindle::run(|| {
    ///     let me = spindle::current();
    ///     let h = spindle::spawn(move || me.unpark());
    ///     spindle::park(); // returns once `h` has run
    ///     h.join().unwrap();
    /// });
    /// ```
    pub fn unpark(&self) {
        self.waker.unpark();
    }
}

/// Parks the running fiber until its [`Task::unpark`] is called (std's
/// `thread::park`). If the token is already there, takes it and returns at
/// once.
///
/// The building block for synchronisation: a fiber parks; whoever makes its
/// condition true unparks it. Like std's, it may return early (during a
/// shutdown), so check the condition in a loop.
///
/// # Examples
///
/// See [`Task::unpark`].
///
/// # Panics
///
/// Outside a fiber of a runtime; and as a cancellation point.
#[track_caller]
pub fn park() {
    Parker::current("spindle::park").park_until_unparked()
}

/// The running task.
///
/// # Examples
///
/// ```
/// spindle::run(|| {
///     let h = spindle::Builder::new()
///         .name("worker".into())
///         .spawn(|| spindle::current().name().map(String::from))
///         .unwrap();
///     assert_eq!(h.join().unwrap().as_deref(), Some("worker"));
/// });
/// ```
///
/// # Panics
///
/// Outside a fiber of a runtime.
#[track_caller]
pub fn current() -> Task {
    let p = Parker::current("spindle::current");
    let (id, name) = p
        .describe()
        .expect("a running task has a record, and this is no panic hook");
    Task {
        id,
        name,
        state: TaskState::Running,
        waker: p.waker(),
        _not_send: PhantomData,
    }
}

/// The running task, or `None` outside a fiber (never panics: for panic
/// hooks and loggers that may run anywhere).
///
/// # Examples
///
/// ```
/// assert!(spindle::runtime::try_current().is_none());
/// spindle::run(|| assert!(spindle::runtime::try_current().is_some()));
/// ```
pub fn try_current() -> Option<Task> {
    let p = Parker::try_current()?;
    let (id, name) = p.describe()?;
    Some(Task {
        id,
        name,
        state: TaskState::Running,
        waker: p.waker(),
        _not_send: PhantomData,
    })
}

/// Every live task of this thread's runtime, in id order (asyncio's
/// `all_tasks`). The caller appears as [`TaskState::Running`].
///
/// # Examples
///
/// ```
/// use spindle::TaskState;
/// use std::time::Duration;
///
/// spindle::run(|| {
///     let h = spindle::spawn(|| spindle::sleep(Duration::from_millis(10)));
///     spindle::yield_now(); // let it start and fall asleep
///     let states: Vec<TaskState> = spindle::tasks().iter().map(|t| t.state()).collect();
///     assert_eq!(states, [TaskState::Running, TaskState::Sleeping]);
///     h.join().unwrap();
/// });
/// ```
///
/// # Panics
///
/// Outside a runtime.
#[track_caller]
pub fn tasks() -> Vec<Task> {
    with_runtime("spindle::tasks", |rt| {
        rt.tasks()
            .into_iter()
            .map(|(waker, t)| Task {
                id: t.id,
                name: t.name,
                state: t.state,
                waker,
                _not_send: PhantomData,
            })
            .collect()
    })
}

/// Puts the running fiber at the back of the run queue and runs the others
/// that are ready; returns when its turn comes again.
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
///
/// spindle::run(|| {
///     let log = Rc::new(RefCell::new(Vec::new()));
///     let l = log.clone();
///     let h = spindle::spawn(move || l.borrow_mut().push("fiber"));
///     log.borrow_mut().push("main");
///     spindle::yield_now();
///     log.borrow_mut().push("main again");
///     h.join().unwrap();
///     assert_eq!(*log.borrow(), ["main", "fiber", "main again"]);
/// });
/// ```
///
/// # Panics
///
/// Outside a fiber of a runtime; and as a cancellation point, if the fiber
/// has been cancelled (see [`JoinHandle::cancel`](crate::JoinHandle::cancel)).
#[track_caller]
#[inline(always)]
pub fn yield_now() {
    // `Parker::current` takes no closure, so nothing can stop this from
    // inlining into the caller's frame (see `Parker`).
    let _ = Parker::current("spindle::yield_now").yield_now();
}
