//! Tasks: spawning fibers ([`spawn`], [`Builder`]), naming them ([`TaskId`],
//! [`Task`], [`current`], [`tasks`]), and giving way ([`yield_now`]).
//!
//! A task is a fiber the scheduler owns. Its closure runs under a *root*
//! that catches everything: a return value or a panic payload goes into
//! the task's join slot (shared with its [`JoinHandle`]), a cancellation
//! unwind becomes [`JoinError::Cancelled`], and the root wakes the joiner.
//! Nothing ever unwinds out of the root, so the coroutine underneath only
//! sees fibers that return.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::num::NonZeroU64;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::coroutine;
use crate::stack::Stack;

use super::join::{JoinError, JoinHandle, JoinSlot};
use super::scheduler::{
    current_raw, in_runtime, with_current, with_scheduler, CancelUnwind, FiberYielder, Scheduler,
};
use super::slab::Key;

/// A task's identifier: unique among all tasks of the process for as long
/// as it runs (ids are never reused).
///
/// # Examples
///
/// ```
/// spindle::run(|| {
///     let h = spindle::spawn(|| spindle::current().id());
///     let id = h.id();
///     assert_eq!(h.join().unwrap(), id);
///     assert_ne!(id, spindle::current().id());
/// });
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct TaskId(NonZeroU64);

/// Ids are handed out in blocks of this many, so that spawning does not
/// touch the shared counter.
const ID_BLOCK: u64 = 1024;
static NEXT_ID_BLOCK: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The next id, and the end of this thread's block.
    static IDS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

impl TaskId {
    pub(crate) fn next() -> TaskId {
        IDS.with(|ids| {
            let (mut next, mut end) = ids.get();
            if next == end {
                next = NEXT_ID_BLOCK.fetch_add(ID_BLOCK, Ordering::Relaxed);
                end = next + ID_BLOCK;
            }
            ids.set((next + 1, end));
            TaskId(NonZeroU64::new(next).expect("task ids start at 1"))
        })
    }

    /// The id as a number.
    pub fn as_u64(&self) -> NonZeroU64 {
        self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a task is doing, as [`tasks`] reports it.
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
    /// Waiting for another task to finish ([`JoinHandle::join`],
    /// [`join_all`](crate::join_all), [`wait_any`](crate::wait_any),
    /// [`timeout`](crate::timeout)).
    WaitingJoin,
    /// Waiting for a closure on a helper thread
    /// ([`spawn_blocking`](crate::spawn_blocking)).
    WaitingBlocking,
    /// In [`park`], waiting for [`Task::unpark`].
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
    /// The runtime (scheduler id) and table key of the task, for `unpark`.
    runtime: u64,
    key: Key,
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

    /// The name given with [`Builder::name`] (`"main"` for the main fiber).
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
        if in_runtime() {
            with_scheduler("Task::unpark", |s| {
                if s.id == self.runtime {
                    s.unpark(self.key);
                }
            });
        }
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
    with_current("spindle::park", |s, key| s.park_until_unparked(key))
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
    with_current("spindle::current", |s, key| {
        let (id, name) = s
            .describe(key)
            .expect("a running task has a record, and this is no panic hook");
        Task {
            id,
            name,
            state: TaskState::Running,
            runtime: s.id,
            key,
            _not_send: PhantomData,
        }
    })
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
    super::scheduler::try_current(|s, key| {
        let (id, name) = s.describe(key)?;
        Some(Task {
            id,
            name,
            state: TaskState::Running,
            runtime: s.id,
            key,
            _not_send: PhantomData,
        })
    })
    .flatten()
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
    with_scheduler("spindle::tasks", |s| {
        s.snapshot()
            .into_iter()
            .map(|(key, id, name, state)| Task {
                id,
                name,
                state,
                runtime: s.id,
                key,
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
/// has been cancelled (see [`JoinHandle::cancel`]).
#[track_caller]
#[inline(always)]
pub fn yield_now() {
    // Not `with_current`: no closure, so nothing can stop this from
    // inlining into the caller's frame (see `with_current`).
    let (s, key) = current_raw("spindle::yield_now");
    // SAFETY: the scheduler outlives the running fiber (`current_raw`).
    let _ = unsafe { &*s }.yield_now(key);
}

/// Runs `f` in a new fiber and returns its handle (std's
/// `thread::spawn`). The new fiber goes to the back of the run queue; the
/// caller keeps running.
///
/// # Examples
///
/// ```
/// let sum = spindle::run(|| {
///     let handles: Vec<_> = (1..=3).map(|i| spindle::spawn(move || i * 10)).collect();
///     handles.into_iter().map(|h| h.join().unwrap()).sum::<i32>()
/// });
/// assert_eq!(sum, 60);
/// ```
///
/// # Panics
///
/// Outside a runtime, and if no stack can be had for the fiber (as
/// `std::thread::spawn` panics when the OS refuses a thread); use
/// [`Builder::spawn`] to get that error instead.
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    match Builder::new().spawn(f) {
        Ok(h) => h,
        Err(e) => panic!("spindle::spawn: failed to create a fiber: {e}"),
    }
}

/// Spawns a fiber with a name or a stack size (std's `thread::Builder`).
///
/// # Examples
///
/// ```
/// spindle::run(|| -> std::io::Result<()> {
///     let h = spindle::Builder::new()
///         .name("parser".to_string())
///         .stack_size(64 * 1024)
///         .spawn(|| 42)?;
///     assert_eq!(h.name(), Some("parser"));
///     assert_eq!(h.join().unwrap(), 42);
///     Ok(())
/// })
/// .unwrap();
/// ```
#[derive(Debug, Default)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
    guard_pages: Option<usize>,
}

impl Builder {
    /// A builder with no name and the runtime's stack size.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the fiber: the name shows in [`current`], [`tasks`], the
    /// deadlock report and stack-overflow reports.
    pub fn name(mut self, name: String) -> Builder {
        self.name = Some(name);
        self
    }

    /// Asks for a stack of at least `size` bytes (rounded up to pages)
    /// instead of the runtime's default.
    pub fn stack_size(mut self, size: usize) -> Builder {
        self.stack_size = Some(size);
        self
    }

    /// Puts a guard of `pages` pages below the fiber's stack instead of the
    /// runtime's default (see [`RuntimeBuilder::guard_pages`]).
    ///
    /// # Examples
    ///
    /// ```
    /// spindle::run(|| -> std::io::Result<()> {
    ///     // A fiber that calls C code with frames of up to 60 KiB.
    ///     let h = spindle::Builder::new().guard_pages(16).spawn(|| 7)?;
    ///     assert_eq!(h.join().unwrap(), 7);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    ///
    /// [`RuntimeBuilder::guard_pages`]: crate::runtime::RuntimeBuilder::guard_pages
    pub fn guard_pages(mut self, pages: usize) -> Builder {
        self.guard_pages = Some(pages);
        self
    }

    /// Spawns `f` in a new fiber; see [`spawn`].
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    ///
    /// # Errors
    ///
    /// What creating the fiber's stack returns: no memory or no memory maps
    /// left, a size too small for the closure, or a guard size out of
    /// range ([`Stack::with_guard_pages`]).
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        with_scheduler("spindle::Builder::spawn", |s| self.spawn_on(s, f))
    }

    pub(crate) fn spawn_on<F, T>(self, s: &Scheduler, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let id = TaskId::next();
        let name: Option<Arc<str>> = self.name.map(Arc::from);
        let slot = Rc::new(JoinSlot::new(id, name.clone()));
        let theirs = Rc::clone(&slot);
        let size = self.stack_size.unwrap_or(s.stack_size);
        let mut b = match self.guard_pages.unwrap_or(s.guard_pages) {
            Stack::DEFAULT_GUARD_PAGES => coroutine::Builder::new().stack_size(size),
            pages => coroutine::Builder::new().stack(Stack::with_guard_pages(size, pages)?),
        };
        if let Some(n) = &name {
            b = b.name(&**n);
        }
        let fiber = b.build(move |y: &FiberYielder, ()| root(y, f, theirs))?;
        let key = s.insert(fiber, id, name);
        slot.set_key(key);
        Ok(JoinHandle::new(slot))
    }
}

/// The first frame of every task; see the [module docs](self).
fn root<F, T>(yielder: &FiberYielder, f: F, slot: Rc<JoinSlot<T>>)
where
    F: FnOnce() -> T,
{
    with_scheduler("task root", |s| {
        let (_, cancelled) = s.start(yielder);
        let result = if cancelled {
            match panic::catch_unwind(AssertUnwindSafe(move || drop(f))) {
                Ok(()) => Err(JoinError::Cancelled),
                Err(p) => Err(JoinError::Panicked(p)),
            }
        } else {
            match panic::catch_unwind(AssertUnwindSafe(f)) {
                Ok(v) => Ok(v),
                Err(p) if p.is::<CancelUnwind>() => Err(JoinError::Cancelled),
                Err(p) => Err(JoinError::Panicked(p)),
            }
        };
        slot.complete(s, result);
    });
}
