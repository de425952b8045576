//! Spawning fibers: [`spawn`] and [`Builder`], and the root frame every
//! task runs under.
//!
//! A task is a fiber the scheduler owns. Its closure runs under a *root*
//! that catches everything: a return value or a panic payload goes into
//! the task's join slot (shared with its [`JoinHandle`]), a cancellation
//! unwind becomes [`JoinError::Cancelled`], and the root wakes the joiner.
//! The root then drops the fiber's fiber-locals and runs its done callbacks
//! (see `fiber_local.rs` and `join.rs`). Nothing ever unwinds out of the root, so the coroutine underneath only
//! sees fibers that return.

use std::io;
use std::panic::{self, AssertUnwindSafe, Location};
use std::rc::Rc;
use std::sync::Arc;

use super::fiber_local;
use super::join::{JoinError, JoinHandle, JoinSlot};
use super::task::{Abandon, CancelUnwind, FiberYielder, Job, Start, TaskId};
use super::wait::{self, with_runtime, LocalRuntime};

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
/// # Stacks
///
/// The fiber takes its stack at its first resume, not here (see "Stacks
/// at first resume" in the [runtime docs](crate::runtime)). If no stack
/// can be had then (no memory, or no memory maps left), the fiber does not
/// run: its handle's [`join`](JoinHandle::join) returns
/// [`JoinError::Panicked`] with a message naming the fiber and the error,
/// the panic hook reports it as for any fiber's panic, and the runtime
/// goes on.
///
/// # Panics
///
/// Outside a runtime, and if the runtime's stack settings cannot hold the
/// closure (as `std::thread::spawn` panics when the OS refuses a thread);
/// use [`Builder::spawn`] to get that error instead.
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
    /// Set when the id was handed out before the fiber existed (a remote
    /// spawn, whose `Send` handle knows it at once).
    id: Option<TaskId>,
    guard_pages: Option<usize>,
}

impl Builder {
    /// A builder with no name and the runtime's stack size.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the fiber: the name shows in [`current`](crate::current), [`tasks`](crate::tasks), the
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
    /// [`io::ErrorKind::InvalidInput`] for stack arguments that no stack
    /// could have: a size out of range or too small for the closure, or a
    /// guard size out of range
    /// ([`Stack::with_guard_pages`](crate::stack::Stack::with_guard_pages)).
    /// A stack that cannot be mapped (no memory or memory maps left) is
    /// only known at the fiber's first resume, and reaches its join handle
    /// instead (see [`spawn`]'s "Stacks").
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.spawn_at(f, Location::caller())
    }

    /// [`spawn`](Self::spawn), recording `at` as where the fiber was
    /// spawned (for a spawn placed on another worker, whose fiber is created
    /// there by a closure of spindle's).
    pub(crate) fn spawn_at<F, T>(
        self,
        f: F,
        at: &'static Location<'static>,
    ) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        with_runtime("spindle::Builder::spawn", |rt| self.spawn_in(rt, f, at))
    }

    /// The name given, if any.
    pub(crate) fn name_ref(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Gives the fiber the id `id` (handed out earlier by `TaskId::next`).
    pub(crate) fn with_id(mut self, id: TaskId) -> Builder {
        self.id = Some(id);
        self
    }

    /// Spawns `f` in a new fiber of `rt`; see [`spawn`]. `at` is recorded
    /// as where the fiber was spawned (for dumps).
    pub(crate) fn spawn_in<F, T>(
        self,
        rt: LocalRuntime<'_>,
        f: F,
        at: &'static Location<'static>,
    ) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let id = self.id.unwrap_or_else(TaskId::next);
        let name: Option<Arc<str>> = self.name.map(Arc::from);
        let slot = Rc::new(JoinSlot::new(id, name.clone()));
        let job = Task {
            f,
            slot: Rc::clone(&slot),
        };
        let size = self.stack_size.unwrap_or(rt.stack_size());
        let guard = self.guard_pages.unwrap_or(rt.guard_pages());
        let start = Start::new(job, size, guard, name.clone())?;
        slot.set_task(rt.insert(start, id, name, at));
        Ok(JoinHandle::new(slot))
    }
}

/// A task before it starts: its closure and its join slot (see
/// [`Start`](super::task::Start), which keeps it until the first resume
/// takes a stack).
struct Task<F, T> {
    f: F,
    slot: Rc<JoinSlot<T>>,
}

impl<F, T> Job for Task<F, T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    fn run(self, yielder: &FiberYielder) {
        root(yielder, self.f, self.slot);
    }

    /// On the scheduler's stack, outside any fiber: drops the closure
    /// (catching a panic of its destructor, which becomes the join error as
    /// in a cancelled fiber's root) and completes the join slot. A fiber
    /// with no stack ends as if it had panicked with a message saying so;
    /// the panic is raised (and caught) here, so the panic hook reports it
    /// even if nobody joins the fiber.
    fn abandon(self, why: Abandon) {
        let Task { f, slot } = self;
        let no_stack = match why {
            Abandon::Cancelled => None,
            Abandon::NoStack(e) => {
                let who = slot.who();
                Some(
                    panic::catch_unwind(AssertUnwindSafe(|| -> () {
                        panic!("spindle: {who} could not start: no stack for it: {e}")
                    }))
                    .unwrap_err(),
                )
            }
        };
        let dropped = panic::catch_unwind(AssertUnwindSafe(move || drop(f)));
        let result = match (no_stack, dropped) {
            (Some(p), _) => Err(JoinError::Panicked(p)),
            (None, Ok(())) => Err(JoinError::Cancelled),
            (None, Err(p)) => Err(into_join_error(p)),
        };
        with_runtime("spindle: abandoning a fiber", |rt| {
            slot.complete_with(result, || (), |waiter| rt.finish(waiter));
        });
    }
}

/// The first frame of every task; see the [module docs](self).
fn root<F, T>(yielder: &FiberYielder, f: F, slot: Rc<JoinSlot<T>>)
where
    F: FnOnce() -> T,
{
    let (me, cancelled) = wait::start(yielder);
    let result = if cancelled {
        match panic::catch_unwind(AssertUnwindSafe(move || drop(f))) {
            Ok(()) => Err(JoinError::Cancelled),
            Err(p) => Err(JoinError::Panicked(p)),
        }
    } else {
        match panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(v) => Ok(v),
            Err(p) => Err(into_join_error(p)),
        }
    };
    // Fiber-locals go first: a destructor's panic is the fiber's failure
    // (see `fiber_local`'s docs). Values that the done callbacks, or the
    // result's own destructor (a detached fiber's slot), create again are
    // dropped before the stamp and last of all.
    let result = match (result, fiber_local::drop_all(&me)) {
        (Ok(_), Some(p)) => Err(into_join_error(p)),
        (result, _) => result,
    };
    slot.complete(&me, result, || drop(fiber_local::drop_all(&me)));
    drop(slot);
    drop(fiber_local::drop_all(&me));
}

/// What a caught unwind of a fiber's code means for its joiner.
fn into_join_error(p: Box<dyn std::any::Any + Send>) -> JoinError {
    if p.is::<CancelUnwind>() {
        JoinError::Cancelled
    } else {
        JoinError::Panicked(p)
    }
}
