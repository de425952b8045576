//! [`Start`]: a task that has not started yet, and needs no stack until it
//! does.
//!
//! A spawned task is a closure and a stack. The stack is taken at the
//! task's *first resume*, not at its spawn: until then the task is its
//! [`Job`] (the closure with what its root needs), kept in the task's slot
//! of the fiber table. So a task that waits in the run queue holds no stack
//! (with thousands spawned at once, only those that have started hold one),
//! and a short-lived task takes a stack that the one before it just gave
//! back to the pool, whose pages are touched already.
//!
//! ## Storage
//!
//! A job of at most [`INLINE_BYTES`] bytes (and 8-byte alignment) is kept
//! inline in the [`Start`], so a spawn allocates nothing for it; a larger
//! one is boxed. The start remembers how to launch, abandon and drop its
//! job through a table of three functions made for its type (a hand-made
//! vtable: the job's type is erased, as a `Box<dyn>` would, without the
//! box).
//!
//! ## The two ends of a start
//!
//! - [`Start::launch`] takes a stack (from the pool when one is free),
//!   creates the coroutine on it with the job inside, and hands it back,
//!   leaving the start empty. If no stack can be had (no memory, no memory
//!   maps left) it returns the error and the start keeps its job.
//! - [`Start::abandon`] hands the job what happened instead (cancelled
//!   before it ran, or no stack): the job drops its closure and completes
//!   its join slot, all on the scheduler's stack. A cancelled task that
//!   never ran thus never takes a stack.
//!
//! Dropping a start drops its job (the closure and its join slot, with no
//! result stored): only a runtime that forgets its fibers does that.

use std::io;
use std::mem::{self, align_of, size_of, ManuallyDrop, MaybeUninit};
use std::ptr;
use std::sync::Arc;

use crate::coroutine;
use crate::stack::Stack;

use super::{Fiber, FiberYielder};

/// Jobs up to this size are stored inline in their [`Start`].
pub(crate) const INLINE_BYTES: usize = 48;

/// What happened to a task instead of starting.
#[derive(Debug)]
pub(crate) enum Abandon {
    /// It was cancelled (or the runtime shut down) before its first resume.
    Cancelled,
    /// No stack could be had for it at its first resume.
    NoStack(io::Error),
}

/// A task's body before it starts; see the [module docs](self).
pub(crate) trait Job: 'static {
    /// Runs the task on its fiber: called as the fiber's first frame.
    fn run(self, yielder: &FiberYielder);
    /// Ends the task without running it (on the scheduler's stack); see
    /// [`Abandon`].
    fn abandon(self, why: Abandon);
}

type Buf = MaybeUninit<[u64; INLINE_BYTES / 8]>;

/// The functions of one job type (inline or boxed).
struct VTable {
    /// Moves the job out of the buffer into a coroutine on `stack`.
    launch: unsafe fn(*mut Buf, Stack, Option<&str>) -> Fiber,
    /// Moves the job out of the buffer and abandons it.
    abandon: unsafe fn(*mut Buf, Abandon),
    /// Drops the job in the buffer.
    drop: unsafe fn(*mut Buf),
    /// Whether the job fits a stack of this many bytes.
    fits: fn(usize) -> io::Result<()>,
}

/// A task not started yet; see the [module docs](self).
pub(crate) struct Start {
    buf: Buf,
    vtable: &'static VTable,
    /// Its stack size, rounded up to pages.
    stack_size: usize,
    guard_pages: usize,
    name: Option<Arc<str>>,
}

impl Start {
    /// A start of `job`, to run on a stack of `stack_size` bytes with a
    /// guard of `guard_pages` pages.
    ///
    /// # Errors
    ///
    /// What creating such a stack would return for these arguments (a bad
    /// size or guard), and [`io::ErrorKind::InvalidInput`] if the job does
    /// not fit the stack: the errors a spawn reports at once, whereas a
    /// stack that cannot be mapped is only known at the first resume.
    pub(crate) fn new<J: Job>(
        job: J,
        stack_size: usize,
        guard_pages: usize,
        name: Option<Arc<str>>,
    ) -> io::Result<Start> {
        let stack_size = Stack::check_args(stack_size, guard_pages)?;
        coroutine::check_fits::<J>(stack_size)?;
        let mut buf = Buf::uninit();
        let vtable: &'static VTable =
            if size_of::<J>() <= size_of::<Buf>() && align_of::<J>() <= align_of::<Buf>() {
                // SAFETY: `J` fits the buffer in size and alignment (checked
                // just above); the buffer is fresh.
                unsafe { ptr::write(buf.as_mut_ptr().cast::<J>(), job) };
                &Erased::<J, false>::VTABLE
            } else {
                // SAFETY: a pointer fits the 8-aligned buffer of 48 bytes.
                unsafe {
                    ptr::write(
                        buf.as_mut_ptr().cast::<*mut J>(),
                        Box::into_raw(Box::new(job)),
                    )
                };
                &Erased::<J, true>::VTABLE
            };
        Ok(Start {
            buf,
            vtable,
            stack_size,
            guard_pages,
            name,
        })
    }

    /// Its stack size (rounded up to pages), for dumps.
    pub(crate) fn stack_size(&self) -> usize {
        self.stack_size
    }

    /// Takes a stack and creates the task's fiber on it, named for
    /// overflow reports. Works in place (a start is about 100 bytes, and
    /// this is every fiber's first resume): on success the job has moved
    /// into the fiber and `self` is left empty, to be dropped (which then
    /// drops nothing but its name).
    ///
    /// # Errors
    ///
    /// The stack's error (no memory or maps left); the start is untouched.
    pub(crate) fn launch(&mut self) -> io::Result<Fiber> {
        let stack = Stack::with_guard_pages(self.stack_size, self.guard_pages)?;
        (self.vtable.fits)(stack.size())?;
        let vtable = mem::replace(&mut self.vtable, &EMPTY);
        // SAFETY: the buffer holds the job `vtable` was made for (`new`),
        // not moved out yet; `self.vtable` now says it is empty, so it is
        // neither launched, abandoned nor dropped again.
        Ok(unsafe { (vtable.launch)(&mut self.buf, stack, self.name.as_deref()) })
    }

    /// Abandons the task without running it; see [`Abandon`].
    pub(crate) fn abandon(self, why: Abandon) {
        let mut this = ManuallyDrop::new(self);
        drop(this.name.take());
        // SAFETY: as in `launch`: the job is there and moved out once.
        unsafe { (this.vtable.abandon)(&mut this.buf, why) }
    }
}

impl Drop for Start {
    fn drop(&mut self) {
        // SAFETY: a start that is dropped still holds its job (`launch` and
        // `abandon` never drop theirs).
        unsafe { (self.vtable.drop)(&mut self.buf) }
    }
}

/// The vtable of a start whose job has been launched: nothing to drop.
const EMPTY: VTable = VTable {
    launch: launched_twice,
    abandon: |_, _| unreachable!("a launched start is never abandoned"),
    drop: |_| {},
    fits: |_| Ok(()),
};

/// `EMPTY`'s `launch`: the scheduler launches a start once.
fn launched_twice(_: *mut Buf, _: Stack, _: Option<&str>) -> Fiber {
    unreachable!("a start is launched once")
}

/// Creates the fiber of `job` on `stack`.
fn launch_job<J: Job>(job: J, stack: Stack, name: Option<&str>) -> Fiber {
    let mut b = coroutine::Builder::new().stack(stack);
    if let Some(n) = name {
        b = b.name(n);
    }
    // The only error `build` has with a given stack is the size check that
    // `fits` passed already.
    b.build(move |y: &FiberYielder, ()| job.run(y))
        .expect("the job was checked to fit its stack")
}

/// The vtable of a job of type `J`, stored inline or (`BOXED`) in a box
/// whose pointer is inline.
struct Erased<J, const BOXED: bool>(J);

impl<J: Job, const BOXED: bool> Erased<J, BOXED> {
    const VTABLE: VTable = VTable {
        launch: Self::launch,
        abandon: Self::abandon,
        drop: Self::drop,
        fits: coroutine::check_fits::<J>,
    };

    /// # Safety
    ///
    /// `buf` holds a `J` (or, if `BOXED`, a pointer from
    /// `Box::<J>::into_raw`), which this moves out.
    unsafe fn take(buf: *mut Buf) -> J {
        if BOXED {
            // SAFETY: the caller's promise.
            *unsafe { Box::from_raw(ptr::read(buf.cast::<*mut J>())) }
        } else {
            // SAFETY: the caller's promise.
            unsafe { ptr::read(buf.cast::<J>()) }
        }
    }

    /// # Safety
    ///
    /// As [`take`](Self::take).
    unsafe fn launch(buf: *mut Buf, stack: Stack, name: Option<&str>) -> Fiber {
        // SAFETY: the caller's promise.
        launch_job(unsafe { Self::take(buf) }, stack, name)
    }

    /// # Safety
    ///
    /// As [`take`](Self::take).
    unsafe fn abandon(buf: *mut Buf, why: Abandon) {
        // SAFETY: the caller's promise.
        unsafe { Self::take(buf) }.abandon(why);
    }

    /// # Safety
    ///
    /// As [`take`](Self::take).
    unsafe fn drop(buf: *mut Buf) {
        // SAFETY: the caller's promise.
        mem::drop(unsafe { Self::take(buf) });
    }
}
