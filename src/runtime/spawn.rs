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

use crate::coroutine;
use crate::stack::Stack;

use super::fiber_local;
use super::join::{JoinError, JoinHandle, JoinSlot};
use super::task::{CancelUnwind, FiberYielder, TaskId};
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
    /// What creating the fiber's stack returns: no memory or no memory maps
    /// left, a size too small for the closure, or a guard size out of
    /// range ([`Stack::with_guard_pages`]).
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
        let theirs = Rc::clone(&slot);
        let size = self.stack_size.unwrap_or(rt.stack_size());
        let mut b = match self.guard_pages.unwrap_or(rt.guard_pages()) {
            Stack::DEFAULT_GUARD_PAGES => coroutine::Builder::new().stack_size(size),
            pages => coroutine::Builder::new().stack(Stack::with_guard_pages(size, pages)?),
        };
        if let Some(n) = &name {
            b = b.name(&**n);
        }
        let fiber = b.build(move |y: &FiberYielder, ()| root(y, f, theirs))?;
        slot.set_task(rt.insert(fiber, id, name, at));
        Ok(JoinHandle::new(slot))
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
