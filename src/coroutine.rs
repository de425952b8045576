//! Asymmetric stackful coroutines: [`Coroutine`], [`Yielder`],
//! [`CoroutineResult`].
//!
//! A coroutine runs a closure on its own [`Stack`]. [`Coroutine::resume`]
//! runs it until it calls [`Yielder::suspend`] (the resume returns
//! [`CoroutineResult::Yield`]) or returns ([`CoroutineResult::Return`]).
//! Values travel both ways: `resume(input)` hands `input` to the closure (as
//! its argument the first time, as the return value of `suspend` after
//! that), and `suspend(value)` hands `value` to the resumer.
//!
//! ## State machine
//!
//! ```text
//!            resume                suspend
//! NotStarted ------> (running) ---------> Suspended --resume--> (running)
//!     |                  |                    |
//!     | drop             | returns / panics   | drop: forced unwind
//!     v                  v                    v
//!  closure dropped      Done  <---------------+
//! ```
//!
//! "Running" is not a stored state: while the fiber runs, the `Coroutine` is
//! mutably borrowed by `resume`, so nothing else can observe it. The other
//! three are not stored either: they are read off the saved stack pointer,
//! which a resume writes anyway (null: `Done`; the first frame `init_stack`
//! wrote, just below the parent link: `NotStarted`; anything else, lower on
//! the stack: `Suspended`). So a round trip stores no state besides it.
//!
//! ## Layout of a coroutine's stack
//!
//! ```text
//!  base ->  FiberInfo        what the overflow handler reports (name, size);
//!                            it finds it from the fault address, so a
//!                            switch does no bookkeeping for it
//!           closure F        moved out by the fiber on its first resume
//!           (unused word)
//!           parent link      see asm/x86_64.S
//!           first frame      written by arch::init_stack
//!           ...              the fiber's own frames grow down from here
//!  limit -> guard
//! ```
//!
//! Putting the closure on the stack means creating a coroutine allocates
//! nothing on the heap when its stack comes from the pool.
//!
//! ## Messages
//!
//! Each switch carries one word: a pointer to a message on the sender's
//! stack (an `I` going in, a `Y` or an `Exit<R>` coming out), or, going in,
//! 0 for "unwind" (the coroutine is being dropped). The receiver moves the
//! message out with `ptr::read` before anything else; the sender holds it in
//! `ManuallyDrop` so it is never dropped twice.
//!
//! ## Where the switches are
//!
//! Every switch of a coroutine goes through one of four places, so that
//! anything that must happen on each side of a switch (a sanitizer's fiber
//! annotations, say) has exactly one spot:
//!
//! - `Coroutine::switch_in`: the resumer's side (`arch::resume`), for every
//!   resume and for the forced unwind of a drop;
//! - `Yielder::switch_out`: the fiber's side of a suspend (`arch::suspend`);
//! - the start of `fiber_main`: the fiber's first instruction after its
//!   first resume;
//! - the end of `fiber_main`: the fiber leaves for good (`arch::exit`).
//!
//! ## Panics and unwinding
//!
//! The fiber's root catches every panic (nothing unwinds through the
//! assembly) and sends the payload out; `resume` re-raises it in the resumer
//! with [`std::panic::resume_unwind`]. Dropping a suspended coroutine resumes
//! it one last time with `Input::Unwind`: `suspend` then unwinds the fiber
//! with a private payload, so every destructor on its stack runs exactly
//! once. A fiber that catches that payload and suspends again is unwound
//! again. A destructor that panics during that unwind aborts the process
//! (Rust's rule for a panic while unwinding). With `panic = "abort"`
//! nothing can unwind, so a suspended coroutine that is dropped leaks its
//! stack instead (its destructors never run, and its memory is never
//! reused).

use std::any::Any;
#[cfg(spindle_asan)]
use std::cell::Cell;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::mem::{self, align_of, size_of, ManuallyDrop};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;

use crate::arch;
#[cfg(spindle_asan)]
use crate::stack::asan;
use crate::stack::overflow::{self, FiberInfo};
use crate::stack::Stack;

/// What [`Coroutine::resume`] returns: the coroutine either suspended with a
/// value, or finished with its closure's return value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoroutineResult<Y, R> {
    /// The coroutine called [`Yielder::suspend`] with this value.
    Yield(Y),
    /// The coroutine's closure returned this value; the coroutine is done.
    Return(R),
}

impl<Y, R> CoroutineResult<Y, R> {
    /// The yielded value, if the coroutine suspended.
    pub fn as_yield(self) -> Option<Y> {
        match self {
            CoroutineResult::Yield(y) => Some(y),
            CoroutineResult::Return(_) => None,
        }
    }

    /// The return value, if the coroutine finished.
    pub fn as_return(self) -> Option<R> {
        match self {
            CoroutineResult::Yield(_) => None,
            CoroutineResult::Return(r) => Some(r),
        }
    }
}

/// The word a resumer sends to tell the fiber to unwind (every other word
/// it sends points at an `I`).
const UNWIND: usize = 0;

/// What the fiber sends out. A suspending fiber sends a pointer to the
/// bare `Y` (the Yielder does not know `R`); a finishing one sends a pointer
/// to an [`Exit<R>`]. The resumer tells them apart by the stack pointer the
/// switch returns: null means finished.
enum Output<Y, R> {
    Yield(Y),
    Exit(Exit<R>),
}

/// How a fiber finished.
enum Exit<R> {
    Return(R),
    Panic(Box<dyn Any + Send>),
    /// The fiber finished by unwinding after [`UNWIND`].
    Unwound,
}

/// The panic payload of a forced unwind. It names the coroutine it is meant
/// for (by its parent link), so that a fiber nested inside another one
/// passes it on to the right root instead of taking it for its own.
struct ForcedUnwind {
    link: usize,
}

/// Where a coroutine is (see the state machine in the module docs); read
/// off its saved stack pointer by [`Coroutine::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    NotStarted,
    Suspended,
    Done,
}

/// A stackful coroutine that takes `I` on each resume, yields `Y`, and
/// returns `R`.
///
/// # Examples
///
/// ```
/// use spindle::{Coroutine, CoroutineResult};
///
/// let mut counter = Coroutine::new(|yielder, start: u32| {
///     let mut n = start;
///     loop {
///         let step = yielder.suspend(n);
///         if step == 0 {
///             return "stopped";
///         }
///         n += step;
///     }
/// });
/// assert_eq!(counter.resume(10), CoroutineResult::Yield(10));
/// assert_eq!(counter.resume(5), CoroutineResult::Yield(15));
/// assert_eq!(counter.resume(0), CoroutineResult::Return("stopped"));
/// ```
///
/// # Panics
///
/// A panic inside the coroutine ends it and continues in the caller of
/// [`resume`](Coroutine::resume), with the original payload.
///
/// # Dropping
///
/// Dropping a coroutine that has not started drops its closure. Dropping a
/// suspended one unwinds its stack, so every destructor on it runs exactly
/// once (see the [module docs](self)). Drop itself never panics, but a
/// destructor on the fiber's stack that panics during that unwind panics
/// while unwinding, and Rust aborts the process for that ("panic in a
/// destructor during cleanup"), as it would on any thread: nothing can
/// catch it. Destructors that may panic must catch their own panics.
///
/// Under `panic = "abort"` nothing can unwind, so dropping a suspended
/// coroutine leaks its stack instead: the destructors on it never run and
/// its memory is never reused or unmapped, which is sound, as leaking any
/// value is (frames that pinned a value keep it in place forever). This
/// keeps `Drop` from aborting the process; corosensei aborts instead. A
/// coroutine that has finished or never started is dropped in full under
/// both strategies.
///
/// # `Send`
///
/// A coroutine is not `Send`: a fiber never moves to another thread, because
/// the code running on it may hold thread-local addresses that the compiler
/// cached across the switch.
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// let co = spindle::Coroutine::new(|_y: &spindle::Yielder<(), ()>, ()| ());
/// assert_send(co);
/// ```
pub struct Coroutine<I, Y, R> {
    /// The fiber's saved stack pointer; null once it is done. Also the
    /// coroutine's state ([`Coroutine::state`]).
    sp: *mut u8,
    /// The parent link, on `stack`.
    link: *mut *mut u8,
    /// The closure, on `stack`, until the first resume moves it out.
    data: *mut u8,
    /// Drops the closure in place (for a coroutine that never started).
    drop_data: unsafe fn(*mut u8),
    /// Owned here so `info` can point at its bytes.
    name: Option<Box<str>>,
    /// Dropped last, after the fiber has finished or been unwound.
    stack: ManuallyDrop<Stack>,
    /// The stack `sp` lives on, for ASan (see `stack/asan.rs`).
    #[cfg(spindle_asan)]
    asan_stack: asan::StackBounds,
    /// Invariant in I, Y, R and neither `Send` nor `Sync`.
    _marker: PhantomData<*mut (I, Y, R)>,
}

impl<I, Y, R> fmt::Debug for Coroutine<I, Y, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coroutine")
            .field("name", &self.name)
            .field("state", &self.state())
            .field("stack_size", &self.stack.size())
            .finish()
    }
}

/// Creates coroutines with a name, a stack size or a given stack.
///
/// # Examples
///
/// ```
/// use spindle::coroutine::{Builder, Coroutine, CoroutineResult, Yielder};
///
/// let mut co: Coroutine<(), u8, ()> = Builder::new()
///     .name("ticker")
///     .stack_size(64 * 1024)
///     .build(|y: &Yielder<(), u8>, ()| {
///         y.suspend(1);
///     })?;
/// assert_eq!(co.name(), Some("ticker"));
/// assert_eq!(co.resume(()), CoroutineResult::Yield(1));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
    stack: Option<Stack>,
}

impl Builder {
    /// A builder with no name and the default stack size
    /// ([`Stack::DEFAULT_SIZE`]).
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the coroutine; the name appears in stack-overflow reports.
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Asks for a stack of at least `size` usable bytes (rounded up to
    /// pages). Ignored if [`stack`](Builder::stack) gives a stack.
    pub fn stack_size(mut self, size: usize) -> Builder {
        self.stack_size = Some(size);
        self
    }

    /// Runs the coroutine on this stack.
    pub fn stack(mut self, stack: Stack) -> Builder {
        self.stack = Some(stack);
        self
    }

    /// Creates the coroutine. It does not run until the first
    /// [`resume`](Coroutine::resume).
    ///
    /// # Errors
    ///
    /// Whatever [`Stack::new`] returns when no stack was given (a bad size,
    /// or no memory or maps left), and [`io::ErrorKind::InvalidInput`] if
    /// the closure itself would take more than half the stack.
    pub fn build<I, Y, R, F>(self, f: F) -> io::Result<Coroutine<I, Y, R>>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        let stack = match self.stack {
            Some(stack) => stack,
            None => Stack::new(self.stack_size.unwrap_or(Stack::DEFAULT_SIZE))?,
        };
        Coroutine::create(stack, self.name.map(String::into_boxed_str), f)
    }
}

impl<I, Y, R> Coroutine<I, Y, R> {
    /// Creates a coroutine running `f` on a stack of the default size, from
    /// this thread's pool when one is free.
    ///
    /// # Panics
    ///
    /// If no stack can be had (out of memory or of memory maps), as
    /// `std::thread::spawn` panics when it cannot create a thread. Use
    /// [`Builder::build`] to get the error instead.
    pub fn new<F>(f: F) -> Coroutine<I, Y, R>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        match Builder::new().build(f) {
            Ok(co) => co,
            Err(e) => panic!("failed to create a coroutine: {e}"),
        }
    }

    /// Creates a coroutine running `f` on `stack`.
    ///
    /// # Panics
    ///
    /// If the closure would take more than half of the stack.
    pub fn with_stack<F>(stack: Stack, f: F) -> Coroutine<I, Y, R>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        match Coroutine::create(stack, None, f) {
            Ok(co) => co,
            Err(e) => panic!("failed to create a coroutine: {e}"),
        }
    }

    fn create<F>(stack: Stack, name: Option<Box<str>>, f: F) -> io::Result<Coroutine<I, Y, R>>
    where
        F: FnOnce(&Yielder<I, Y>, I) -> R + 'static,
    {
        overflow::ensure_installed();

        let base = stack.base() as usize;
        let (data_addr, link_addr) = carve::<F>(base, stack.size())?;
        let link = link_addr as *mut *mut u8;
        // SAFETY: the three addresses are inside the stack (checked above:
        // they use less than half of it), suitably aligned, and do not
        // overlap: info is above data, data above link + 8. The stack is
        // owned by the coroutine and stays mapped until the fiber is done;
        // the name lives in `self.name` until drop retires the record.
        let sp = unsafe {
            FiberInfo::publish(base, name.as_deref());
            ptr::write(data_addr as *mut F, f);
            arch::init_stack(link, fiber_main::<F, I, Y, R>, data_addr as *mut u8)
        };
        Ok(Coroutine {
            sp,
            link,
            data: data_addr as *mut u8,
            drop_data: drop_in_place_erased::<F>,
            name,
            #[cfg(spindle_asan)]
            asan_stack: asan::StackBounds::new(stack.limit(), stack.size()),
            stack: ManuallyDrop::new(stack),
            _marker: PhantomData,
        })
    }

    /// Runs the coroutine until it suspends or finishes.
    ///
    /// The first resume passes `input` as the closure's second argument;
    /// later ones make the pending [`Yielder::suspend`] return it.
    ///
    /// # Panics
    ///
    /// If the coroutine has already finished; and, with the same payload, if
    /// the coroutine panics (it is then finished).
    #[inline]
    pub fn resume(&mut self, input: I) -> CoroutineResult<Y, R> {
        assert!(
            !self.sp.is_null(),
            "resumed a coroutine that has already finished"
        );
        let msg = ManuallyDrop::new(input);
        // SAFETY: the coroutine is not done, so `sp` is its saved stack
        // pointer; `msg` stays alive across the switch.
        match unsafe { self.switch_in(&*msg as *const I as usize) } {
            Output::Yield(y) => CoroutineResult::Yield(y),
            Output::Exit(Exit::Return(r)) => CoroutineResult::Return(r),
            Output::Exit(Exit::Panic(payload)) => panic::resume_unwind(payload),
            // Only UNWIND makes a fiber finish this way, and resume never
            // sends it.
            Output::Exit(Exit::Unwound) => unreachable!("coroutine unwound without being dropped"),
        }
    }

    /// Switches into the fiber with `msg` (a pointer to an `I`, or
    /// [`UNWIND`]) and returns what it sent back.
    ///
    /// # Safety
    ///
    /// The coroutine must not be done, and `msg` must stay valid until the
    /// fiber has read it (it reads it first thing).
    #[inline]
    unsafe fn switch_in(&mut self, msg: usize) -> Output<Y, R> {
        #[cfg(spindle_asan)]
        let mut asan_switch = asan::Switch::new();
        // SAFETY: the resume follows; `asan_stack` is the stack `sp` is on.
        #[cfg(spindle_asan)]
        unsafe {
            asan_switch.start(self.asan_stack)
        };
        // SAFETY: `sp` is the saved stack pointer of this (not done) fiber,
        // saved by its last switch and not resumed since; `link` is its
        // parent link; the stack stays mapped while `self` lives.
        let t = unsafe { arch::resume(msg, self.sp, self.link) };
        self.sp = t.sp;
        // SAFETY: started above, and the fiber has switched back.
        #[cfg(spindle_asan)]
        {
            self.asan_stack = unsafe { asan_switch.finish() };
        }
        // The fiber sent a pointer to a value it holds in ManuallyDrop on
        // its stack (still mapped) and never touches again: a Y when it
        // suspended, an Exit<R> when it finished.
        if t.sp.is_null() {
            // SAFETY: see above; a finished fiber sends an Exit<R>.
            Output::Exit(unsafe { ptr::read(t.arg as *const Exit<R>) })
        } else {
            // SAFETY: see above; a suspended fiber sends a Y.
            Output::Yield(unsafe { ptr::read(t.arg as *const Y) })
        }
    }

    /// Starts loading the saved frame that the next resume will switch to,
    /// for a scheduler that knows which coroutine it resumes next.
    #[inline]
    pub(crate) fn prefetch(&self) {
        arch::prefetch(self.sp);
    }

    /// Whether the coroutine has finished (returned, panicked, or unwound).
    pub fn done(&self) -> bool {
        self.sp.is_null()
    }

    /// Whether the coroutine has been resumed at least once.
    pub fn started(&self) -> bool {
        self.state() != State::NotStarted
    }

    /// The state, read off the saved stack pointer: null once done, the
    /// first frame (just below the parent link) until the first resume.
    /// A suspended fiber's frame is always lower: its entry function's
    /// frame and its own saved frame lie between it and the link.
    fn state(&self) -> State {
        if self.sp.is_null() {
            State::Done
        } else if self.sp as usize == self.link as usize - arch::INIT_FRAME_SIZE {
            State::NotStarted
        } else {
            State::Suspended
        }
    }

    /// The name given by [`Builder::name`].
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The usable size of the coroutine's stack, in bytes.
    pub fn stack_size(&self) -> usize {
        self.stack.size()
    }

    /// While suspended, the bytes between the top of its stack and its
    /// saved stack pointer (how deep the stack is now, not its high-water
    /// mark); `None` before the first resume and once done.
    pub(crate) fn stack_in_use(&self) -> Option<usize> {
        (self.state() == State::Suspended)
            .then(|| (self.stack.base() as usize).saturating_sub(self.sp as usize))
    }

    /// Its stack (for the dump's high-water marks, `stack::high_water`).
    pub(crate) fn stack(&self) -> &Stack {
        &self.stack
    }
}

/// Where a closure `F` and the parent link go at the top of a stack whose
/// highest address is `base` and whose size is `size`: FiberInfo, then the
/// closure, then the parent link (16-aligned, with one spare word above
/// it). Returns `(data, link)`.
///
/// # Errors
///
/// [`io::ErrorKind::InvalidInput`] if the closure would take more than half
/// of the stack.
fn carve<F>(base: usize, size: usize) -> io::Result<(usize, usize)> {
    let info_addr = FiberInfo::address(base);
    let f_align = align_of::<F>().max(16);
    let data_addr = info_addr
        .checked_sub(size_of::<F>())
        .map(|a| a & !(f_align - 1))
        .unwrap_or(0);
    let link_addr = data_addr.saturating_sub(16) & !15;
    let needed = base.saturating_sub(link_addr) + arch::INIT_FRAME_SIZE;
    if data_addr == 0 || needed > size / 2 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a coroutine closure of {} bytes does not fit a {} KiB stack \
                 (it may use at most half of it); box its large captures",
                size_of::<F>(),
                size / 1024
            ),
        ));
    }
    Ok((data_addr, link_addr))
}

/// Whether a coroutine running `F` can be created on a stack of `size`
/// bytes (already rounded to pages), before any stack is taken: the check
/// [`Builder::build`] makes, for callers that take the stack later (the
/// runtime's fibers take theirs at their first resume).
///
/// # Errors
///
/// As [`Builder::build`]'s size check.
pub(crate) fn check_fits<F>(size: usize) -> io::Result<()> {
    // Stacks are page-aligned at their top; any page-aligned base gives the
    // layout a real one would.
    carve::<F>(1 << 40, size).map(|_| ())
}

impl<I, Y, R> Drop for Coroutine<I, Y, R> {
    fn drop(&mut self) {
        match self.state() {
            State::Done => {}
            State::NotStarted => {
                let (drop_data, data) = (self.drop_data, self.data);
                // SAFETY: the fiber never started, so the closure is still
                // on the stack, initialised, and dropped only here.
                drop_quietly(move || unsafe { drop_data(data) });
            }
            State::Suspended if cfg!(panic = "unwind") => loop {
                // SAFETY: the coroutine is suspended; UNWIND points at
                // nothing.
                match unsafe { self.switch_in(UNWIND) } {
                    Output::Exit(Exit::Unwound) => break,
                    // The fiber caught the unwind and returned normally, or
                    // a destructor panicked (the payload is discarded).
                    Output::Exit(Exit::Return(r)) => break drop_quietly(move || drop(r)),
                    Output::Exit(Exit::Panic(p)) => break drop_quietly(move || drop(p)),
                    // The fiber caught the unwind and suspended again: its
                    // value is dropped, and it is told to unwind again (so
                    // `suspend` needs no check of its own for this case).
                    Output::Yield(y) => drop_quietly(move || drop(y)),
                }
            },
            State::Suspended => {
                // panic = "abort": the fiber cannot be unwound. Its frames
                // may hold pinned values whose memory must not be reused
                // before they are dropped, so the stack is leaked.
                // SAFETY: `create` published the record; the stack is ours.
                unsafe { FiberInfo::retire(self.stack.base() as usize) };
                return;
            }
        }
        // SAFETY: `create` published the record on this stack, which is
        // still ours; the name it points at is dropped after this.
        unsafe { FiberInfo::retire(self.stack.base() as usize) };
        // SAFETY: the fiber has finished (or never started and its closure
        // was dropped): nothing on the stack is live any more.
        unsafe { ManuallyDrop::drop(&mut self.stack) };
    }
}

/// Runs `f`, catching and discarding a panic, and the panic of dropping that
/// panic's payload.
fn drop_quietly(f: impl FnOnce()) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
        if let Err(inner) = panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
            mem::forget(inner);
        }
    }
}

/// # Safety
///
/// `p` must point at a live `T` that is not used afterwards.
unsafe fn drop_in_place_erased<T>(p: *mut u8) {
    // SAFETY: forwarded from the caller.
    unsafe { ptr::drop_in_place(p as *mut T) }
}

/// The root of every fiber: moves the closure out, runs it under
/// `catch_unwind`, and leaves through `arch::exit` with the outcome.
///
/// # Safety
///
/// Entered only through `spindle_fiber_start` with the arguments
/// `Coroutine::create` arranged: `arg` points at an `I` (or is [`UNWIND`]),
/// `data` at the closure `F`, `link` is this fiber's parent link.
unsafe extern "C" fn fiber_main<F, I, Y, R>(arg: usize, link: *mut *mut u8, data: *mut u8) -> !
where
    F: FnOnce(&Yielder<I, Y>, I) -> R,
{
    // SAFETY: first thing on the new stack, after the resumer's start.
    #[cfg(spindle_asan)]
    let asan_resumer = unsafe { asan::enter_new_fiber() };
    #[cfg(spindle_asan)]
    let asan_exit_to;
    let out = {
        // SAFETY: see the function's contract; read exactly once.
        let f = unsafe { ptr::read(data as *mut F) };
        let yielder = Yielder {
            link,
            #[cfg(spindle_asan)]
            asan_resumer: Cell::new(asan_resumer),
            _marker: PhantomData,
        };
        let result = match arg {
            UNWIND => match panic::catch_unwind(AssertUnwindSafe(move || drop(f))) {
                Ok(()) => Err(Box::new(ForcedUnwind {
                    link: link as usize,
                }) as Box<dyn Any + Send>),
                Err(p) => Err(p),
            },
            input => {
                // SAFETY: see the function's contract; read exactly once.
                let i = unsafe { ptr::read(input as *const I) };
                panic::catch_unwind(AssertUnwindSafe(|| f(&yielder, i)))
            }
        };
        #[cfg(spindle_asan)]
        {
            asan_exit_to = yielder.asan_resumer.get();
        }
        match result {
            Ok(r) => Exit::Return(r),
            Err(p) => match p.downcast_ref::<ForcedUnwind>() {
                Some(fu) if fu.link == link as usize => Exit::Unwound,
                _ => Exit::Panic(p),
            },
        }
    };
    // SAFETY: arch::exit follows; the last resumer runs on `asan_exit_to`.
    #[cfg(spindle_asan)]
    unsafe {
        asan::leave_for_good(asan_exit_to)
    };
    let out = ManuallyDrop::new(out);
    // SAFETY: we run on this fiber's stack, entered through `link`; nothing
    // with a destructor is left on it (the closure and yielder are gone,
    // `out` is ManuallyDrop and is moved out by the resumer).
    unsafe { arch::exit(&*out as *const Exit<R> as usize, link) }
}

/// The handle a coroutine's closure uses to suspend itself.
///
/// A `Yielder` only exists inside the coroutine's closure, as its first
/// argument; it cannot leave it (the closure is `'static` and the reference
/// is not).
pub struct Yielder<I, Y> {
    link: *mut *mut u8,
    /// The stack of whoever resumed the fiber last, for ASan.
    #[cfg(spindle_asan)]
    asan_resumer: Cell<asan::StackBounds>,
    _marker: PhantomData<*mut (I, Y)>,
}

impl<I, Y> fmt::Debug for Yielder<I, Y> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Yielder").finish_non_exhaustive()
    }
}

impl<I, Y> Yielder<I, Y> {
    /// Suspends the coroutine, handing `value` to its resumer (whose
    /// [`Coroutine::resume`] returns [`CoroutineResult::Yield`]). Returns the
    /// input of the next resume.
    ///
    /// # Panics
    ///
    /// When the coroutine is dropped while suspended here, this unwinds the
    /// fiber instead of returning (see [`Coroutine`], "Dropping"). Catching
    /// that unwind is allowed, but the next `suspend` unwinds again.
    #[inline]
    pub fn suspend(&self, value: Y) -> I {
        let msg = ManuallyDrop::new(value);
        let back = self.switch_out(&*msg as *const Y as usize);
        if back == UNWIND {
            self.unwind();
        }
        // SAFETY: the resumer sent a pointer to an I held in ManuallyDrop
        // on its stack; it is read exactly once.
        unsafe { ptr::read(back as *const I) }
    }

    /// Switches to the resumer, sending `arg` (a pointer to a `Y` it will
    /// move out); returns the word of the next resume.
    #[inline(always)]
    fn switch_out(&self, arg: usize) -> usize {
        // SAFETY: a Yielder exists only inside its coroutine's closure, so
        // we run on that fiber (or on one it resumed that suspends the whole
        // chain, which is equally well formed: the chain comes back in the
        // same order), and `link` is the fiber's parent link.
        #[cfg(not(spindle_asan))]
        unsafe {
            arch::suspend(arg, self.link)
        }
        #[cfg(spindle_asan)]
        {
            let mut switch = asan::Switch::new();
            // SAFETY: as above; the suspend follows `start`, `finish` runs
            // once this fiber is resumed; its resumer's stack is recorded.
            unsafe {
                switch.start(self.asan_resumer.get());
                let back = arch::suspend(arg, self.link);
                self.asan_resumer.set(switch.finish());
                back
            }
        }
    }

    #[cold]
    fn unwind(&self) -> ! {
        panic::resume_unwind(Box::new(ForcedUnwind {
            link: self.link as usize,
        }))
    }
}
