//! Greenlets: coroutines that switch straight to one another (symmetric
//! switching), in the style of Python's `greenlet` package.
//!
//! A [`Greenlet<T>`] runs a function `FnOnce(T) -> T` on its own stack.
//! [`switch(v)`](Greenlet::switch) transfers control to that greenlet, from
//! the thread's *root* (code that is not running inside a greenlet of type
//! `T`) or from inside another greenlet: the first switch starts it with
//! `v`; later ones make its own pending `switch` return `v`. There is no
//! caller to go back to: a greenlet keeps running until it switches to
//! another one, or until its function returns. Then control goes to its
//! *parent*, the greenlet (or the root) that was running when it was
//! created, whose pending `switch` returns the function's result.
//!
//! The root has a handle too, [`Greenlet::current`] called from the root:
//! switching to it from a greenlet hands a value back to the root's pending
//! `switch`, leaving the greenlet suspended.
//!
//! ```text
//!   root            a                   b
//!   a.switch(()) -> print 1
//!                   b.switch(())  ---->  print 3
//!                   print 2      <----   a.switch(())
//!                   b.switch(())  ---->  print 4
//!   print 5     <--------------------   returns: back to b's parent, the root
//! ```
//!
//! ## Design: a trampoline over asymmetric coroutines
//!
//! Each greenlet is a [`Coroutine`], which can only go back to whoever
//! resumed it. The switching is done by a loop, the *trampoline*, that runs
//! in the root, inside the root's `switch`:
//!
//! ```text
//!   root: a.switch(v)
//!     trampoline:  resume a with v  ----> a runs ... b.switch(w)
//!                                           = suspend(SwitchTo { b, w })
//!                  <------------------------'
//!                  resume b with w  ----> b runs ... returns r
//!                  <------------------------'
//!                  r goes to b's parent: the root, so the loop ends
//!   a.switch(v) returns r
//! ```
//!
//! A greenlet that switches to another one suspends to the loop with a
//! request naming the target, and the loop resumes the target. A hop from
//! one greenlet to another therefore costs **two context switches** (up to
//! the loop, down into the target) where a symmetric switch would take one,
//! plus a look-up in a thread-local hash map. We pay that so that the
//! assembly stays asymmetric and one-way:
//!
//! - every fiber is entered only by `resume` (from its resumer, which it
//!   records in its parent link) and left only by `suspend` or `exit` (back
//!   to that resumer). A direct greenlet-to-greenlet switch would need a
//!   third entry point in `asm/` that rewrites parent links on the fly, and
//!   a second set of invariants for a student to check.
//! - the return-address predictor stays paired: each resume is a real
//!   `call` from the loop, matched by the `ret` of the next suspend (see
//!   "Return-address prediction" in `asm/x86_64.S`). A direct switch would
//!   `ret` to an address the predictor never saw, and mispredict each time.
//! - panics keep their one road: out of a fiber's root, out of `resume`,
//!   into the loop, which hands them on (below).
//!
//! ## Bookkeeping and its invariants
//!
//! Greenlets of one type `T` form a *world*. Each thread has one root
//! handle per `T` (the only greenlet without a parent, never resumed, never
//! dead), created on first use and kept in the thread-local `ROOTS`.
//!
//! Which greenlet of a world is running is not a per-thread fact: a task of
//! the [runtime](crate::runtime) may park inside a greenlet, and the next
//! task must not see that greenlet as its own. So it is kept where the
//! resumes are, on the stacks:
//!
//! - Each greenlet resume under way has a `Frame` on the resumer's stack
//!   (in the trampoline's call to resume it), naming the world and the
//!   greenlet. The frames of one chain of fibers form a list, innermost
//!   first; the thread-local `ACTIVE` points at the head of the list of
//!   the chain that runs now. A guard (`Running`) links its frame just
//!   before the resume and unlinks it just after, even if the resume
//!   panics; guards nest like the resumes they cover, so the list is a
//!   stack.
//! - The *current* greenlet of world `T` is the greenlet of the first frame
//!   of world `T` in the list (none: the root runs), and the *innermost*
//!   world is the head's.
//! - `ACTIVE` follows the chain that runs. A runtime, when it enters a
//!   task's fiber (resume, or the unwind of a drop), detaches the list of
//!   whoever resumed the task and puts it back afterwards; a task, when it
//!   parks, keeps its list on its own stack and puts it back when it is
//!   resumed (`ChainState`). Every task therefore starts at the root of
//!   every world, and sees only the greenlet resumes that it started. Any
//!   other switch is a resume or a suspend within one chain, and the
//!   frames' nesting follows it.
//! - A trampoline starts only from a world's root (no frame of its world in
//!   the list), so there is normally one per world per chain at a time.
//!   Code run by a greenlet that unwinds because it was dropped can start
//!   another one inside the first's chain; the frames keep the bookkeeping
//!   right, and the `RefCell` around each fiber turns an attempt to resume
//!   a running greenlet into a panic. That includes a greenlet that another
//!   task is running (it is parked inside it): switching to it is refused.
//!   A *suspended* greenlet belongs to no task: any task of the thread may
//!   switch to it, and its results then go to that task's chain.
//! - A switch from inside a greenlet `c` suspends `c`'s fiber through its
//!   yielder, even when the code calling `switch` runs on a fiber that `c`
//!   resumed (a generator, say): the whole chain is suspended and comes
//!   back in the same order. That is sound as long as no fiber in that
//!   chain can be resumed by anyone else meanwhile; plain coroutines in it
//!   are mutably borrowed by their resumers, so they cannot be. A greenlet
//!   of *another* world in it could (its frame makes it that world's
//!   current one), so a switch is refused, with a panic, unless its own
//!   world is the innermost one.
//! - A greenlet's `fiber` is `Some` until the greenlet dies (its function
//!   returned or panicked); then the trampoline drops it. It is borrowed
//!   only by the trampoline, for the time of one resume. The root's is
//!   always `None`.
//! - A greenlet's `yielder` slot holds the address of its fiber's
//!   [`Yielder`] while its function runs and is null before and after. It is
//!   read only by `switch`, when the greenlet is current.
//! - A greenlet holds its parent (a strong reference), so a finished
//!   greenlet can always hand its result up. If the parent has died, the
//!   result goes to the nearest ancestor still alive: in the end the root,
//!   which never dies.
//!
//! A greenlet is dropped when its last handle goes. If it is suspended, its
//! stack unwinds at that point, on top of whatever code dropped it; code
//! that runs during that unwind (destructors) runs as part of the dropper
//! and may switch as the dropper could.

use std::any::{self, Any, TypeId};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::rc::Rc;

use crate::coroutine::{Coroutine, CoroutineResult, Yielder};

/// What the trampoline hands a greenlet it resumes.
enum Delivery<T> {
    /// A value: the argument of the switch to it, or the result of a child.
    Value(T),
    /// A child's panic, which goes on in this greenlet.
    Panic(Box<dyn Any + Send>),
}

/// What a greenlet hands the trampoline when it suspends: please resume
/// `target` with `value`.
struct SwitchTo<T: 'static> {
    target: Greenlet<T>,
    value: T,
}

/// The yielder of a greenlet's fiber.
type GreenletYielder<T> = Yielder<Delivery<T>, SwitchTo<T>>;

/// The coroutine under a greenlet: it is resumed with deliveries, suspends
/// with switch requests, and returns its function's result.
type Fiber<T> = Coroutine<Delivery<T>, SwitchTo<T>, T>;

/// A greenlet: a function on its own stack that switches explicitly to
/// other greenlets, and whose result goes to its parent.
///
/// `Greenlet` is a handle: clones share the same greenlet, and `==` says
/// whether two handles name the same one. See the [module docs](self) for
/// the design.
///
/// # Examples
///
/// A greenlet that keeps a running total of what it is sent, switching back
/// to its parent (here the root) with each new total, until it is sent 0:
///
/// ```
/// use spindle::Greenlet;
///
/// let total = Greenlet::new(|first: i64| {
///     let parent = Greenlet::current().parent().unwrap();
///     let mut sum = first;
///     loop {
///         match parent.switch(sum) {
///             0 => return sum, // the result goes to the parent as well
///             n => sum += n,
///         }
///     }
/// });
/// assert_eq!(total.switch(5), 5);
/// assert_eq!(total.switch(10), 15);
/// assert!(!total.is_dead());
/// assert_eq!(total.switch(0), 15);
/// assert!(total.is_dead());
/// ```
///
/// # Panics
///
/// A panic in a greenlet ends it and continues in its parent: out of the
/// parent's pending [`switch`](Greenlet::switch) (or the root's), with the
/// original payload.
///
/// # Dropping
///
/// Dropping the last handle of a suspended greenlet unwinds its stack right
/// there, so every destructor on it runs exactly once. A suspended greenlet
/// that can reach a handle to itself (through its captures, or a
/// [`Greenlet::current`] kept in a local) is never dropped: break such
/// cycles, as with any [`Rc`].
///
/// # `Send`
///
/// A greenlet is not `Send`: it belongs to the thread that created it, like
/// the [`Coroutine`] it runs on.
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// let g = spindle::Greenlet::new(|x: i32| x + 1);
/// assert_send(g);
/// ```
pub struct Greenlet<T: 'static> {
    inner: Rc<Inner<T>>,
}

struct Inner<T: 'static> {
    /// The greenlet's coroutine; `None` once it has died. Declared first so
    /// that a suspended greenlet unwinds before its parent handle goes.
    fiber: RefCell<Option<Fiber<T>>>,
    /// Where the fiber publishes its yielder while its function runs.
    yielder: Rc<Cell<*const GreenletYielder<T>>>,
    /// `None` for the root of the world, and only for it.
    parent: Option<Greenlet<T>>,
    dead: Cell<bool>,
}

impl<T: 'static> Greenlet<T> {
    /// Creates a greenlet that will run `f`, starting it with the value of
    /// the first [`switch`](Greenlet::switch) to it.
    ///
    /// Its parent is the greenlet of type `T` running now, or the root if
    /// none is: [`Greenlet::current`].
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::Greenlet;
    ///
    /// let double = Greenlet::new(|x: u32| x * 2);
    /// assert_eq!(double.parent(), Some(Greenlet::current())); // the root
    /// assert_eq!(double.switch(21), 42);
    /// ```
    ///
    /// # Panics
    ///
    /// If no stack can be had, like [`Coroutine::new`].
    pub fn new<F>(f: F) -> Greenlet<T>
    where
        F: FnOnce(T) -> T + 'static,
    {
        let parent = Some(Greenlet::current());
        let yielder = Rc::new(Cell::new(ptr::null()));
        let slot = Rc::clone(&yielder);
        let fiber = Coroutine::new(move |y: &GreenletYielder<T>, first: Delivery<T>| {
            let _published = Published::new(&slot, y);
            match first {
                Delivery::Value(v) => f(v),
                // Not reachable today (a parent has always started), but a
                // panic sent to a fresh greenlet simply goes on through it.
                Delivery::Panic(payload) => panic::resume_unwind(payload),
            }
        });
        Greenlet {
            inner: Rc::new(Inner {
                fiber: RefCell::new(Some(fiber)),
                yielder,
                parent,
                dead: Cell::new(false),
            }),
        }
    }

    /// Transfers control to this greenlet, handing it `value`, and returns
    /// the value that control brings back here.
    ///
    /// If the greenlet has not started, it starts with `value` as its
    /// function's argument; if it is suspended in a `switch` of its own,
    /// that switch returns `value`. This call returns when some greenlet
    /// switches back to the caller's greenlet, or when a child of it ends
    /// (with the child's result). Called from the root, it returns when
    /// control comes back to the root. Switching to the running greenlet
    /// itself returns `value` at once.
    ///
    /// # Examples
    ///
    /// Ping-pong: each side adds one and switches to the other.
    ///
    /// ```
    /// use std::cell::OnceCell;
    /// use std::rc::Rc;
    /// use spindle::Greenlet;
    ///
    /// let ping_slot: Rc<OnceCell<Greenlet<u32>>> = Rc::default();
    /// let slot = Rc::clone(&ping_slot);
    /// let pong = Greenlet::new(move |mut n: u32| {
    ///     let ping = slot.get().unwrap();
    ///     while n < 10 {
    ///         n = ping.switch(n + 1);
    ///     }
    ///     n // back to pong's parent: the root
    /// });
    /// let target = pong.clone();
    /// let ping = Greenlet::new(move |mut n: u32| loop {
    ///     n = target.switch(n + 1);
    /// });
    /// ping_slot.set(ping.clone()).ok();
    /// // pong sees 1, 3, 5, ... and returns the first past 10.
    /// assert_eq!(ping.switch(0), 11);
    /// assert!(pong.is_dead());
    /// assert!(!ping.is_dead()); // suspended: dropping it unwinds it
    /// ```
    ///
    /// # Panics
    ///
    /// - If this greenlet is dead (its function has returned or panicked).
    /// - If another task of the [runtime](crate::runtime) is running this
    ///   greenlet (that task is parked inside it). Each task has its own
    ///   greenlet state: it starts at the root of every world, and a
    ///   greenlet *suspended* in a switch may be switched to from any task.
    /// - If a greenlet that this one switches to (directly or not) panics
    ///   and the panic comes back to this greenlet (it is this one's child,
    ///   or the panic was passed up to here): the same payload continues
    ///   from this call.
    /// - If the caller runs inside a greenlet of another type that itself
    ///   runs inside a greenlet of type `T`: switching would suspend both
    ///   worlds at once (see the [module docs](self)). Return to the outer
    ///   greenlet first.
    /// - When the calling greenlet is dropped while suspended here: the
    ///   call unwinds its stack instead of returning.
    pub fn switch(&self, value: T) -> T {
        let current = Greenlet::current();
        if current == *self {
            return value;
        }
        assert!(!self.is_dead(), "{}", DeadSwitch(any::type_name::<T>()));
        if current.is_root() {
            drop(current);
            return trampoline(self.clone(), value);
        }
        assert!(
            innermost_world() == Some(TypeId::of::<T>()),
            "Greenlet::<{}>::switch called from inside a greenlet of another type \
             that runs inside a greenlet of this type; switch back to the outer \
             greenlet first",
            any::type_name::<T>(),
        );
        let yielder = current.inner.yielder.get();
        assert!(!yielder.is_null(), "a running greenlet has no yielder");
        // Hold no handle to ourselves while suspended: a greenlet whose only
        // handle is on its own stack could never be dropped.
        drop(current);
        // SAFETY: `current` is the greenlet of the first frame of its world
        // in this chain's list, and that world is the innermost one, so the
        // innermost greenlet resume under way in this chain is `current`'s
        // and we run inside it: on its fiber, or on fibers it resumed that
        // no one else can resume (module docs, "Bookkeeping"). Its function is running, so the slot
        // holds the address of its fiber's Yielder (set by `Published`),
        // which lives on that fiber's stack until the function has
        // returned, which it cannot do while we are in it.
        let yielder = unsafe { &*yielder };
        let request = SwitchTo {
            target: self.clone(),
            value,
        };
        match yielder.suspend(request) {
            Delivery::Value(v) => v,
            Delivery::Panic(payload) => panic::resume_unwind(payload),
        }
    }

    /// The greenlet of type `T` that is running now; called from outside
    /// any greenlet of type `T`, the root's handle.
    ///
    /// Each type has its own greenlets and its own root, so name the type
    /// where inference might pick another one: with integers,
    /// `Greenlet::current()` may well mean `Greenlet::<i32>::current()`.
    ///
    /// # Examples
    ///
    /// A greenlet that hands values back to the root without finishing,
    /// like a generator:
    ///
    /// ```
    /// use spindle::Greenlet;
    ///
    /// let root = Greenlet::current();
    /// let squares = Greenlet::new(move |mut n: u64| loop {
    ///     n = root.switch(n * n); // the root's switch returns n * n
    /// });
    /// assert_eq!(squares.switch(3), 9);
    /// assert_eq!(squares.switch(12), 144);
    /// assert!(!squares.is_dead());
    /// ```
    pub fn current() -> Greenlet<T> {
        running::<T>().unwrap_or_else(root::<T>)
    }

    /// Whether the greenlet's function has finished (returned or panicked).
    /// The root is never dead.
    pub fn is_dead(&self) -> bool {
        self.inner.dead.get()
    }

    /// The greenlet that was running when this one was created, which gets
    /// its result; the root's handle if that was the root, and `None` for
    /// the root itself.
    pub fn parent(&self) -> Option<Greenlet<T>> {
        self.inner.parent.clone()
    }

    fn is_root(&self) -> bool {
        self.inner.parent.is_none()
    }

    /// The parent of a greenlet that has been resumed, so is not the root.
    fn parent_of_resumed(&self) -> Greenlet<T> {
        self.parent()
            .expect("the trampoline resumed the root of a world")
    }

    /// Resumes the greenlet with `delivery`, as the running greenlet of its
    /// world. Only the trampoline calls this.
    fn resume(
        &self,
        delivery: Delivery<T>,
    ) -> std::thread::Result<CoroutineResult<SwitchTo<T>, T>> {
        let mut fiber = match self.inner.fiber.try_borrow_mut() {
            Ok(fiber) => fiber,
            // Only reachable through code that runs while a dropped
            // greenlet unwinds and switches worlds; refuse, as a RefCell
            // does.
            Err(_) => panic!(
                "switched to a Greenlet<{}> that is already running (another task \
                 is parked inside it, or it is further up this chain)",
                any::type_name::<T>()
            ),
        };
        let fiber = fiber
            .as_mut()
            .expect("the trampoline resumed a dead greenlet");
        let mut frame = Frame {
            world: TypeId::of::<T>(),
            greenlet: self as *const Greenlet<T> as *const (),
            outer: ptr::null(),
        };
        let _running = Running::enter(&mut frame);
        panic::catch_unwind(AssertUnwindSafe(|| fiber.resume(delivery)))
    }

    /// Marks the greenlet dead and frees its (finished) coroutine's stack.
    fn bury(&self) {
        self.inner.dead.set(true);
        let fiber = self.inner.fiber.borrow_mut().take();
        drop(fiber);
    }
}

/// Runs greenlets, starting with `first`, until control comes back to the
/// root; returns the value it brings, or resumes the panic it brings.
fn trampoline<T: 'static>(first: Greenlet<T>, value: T) -> T {
    let mut target = first;
    let mut delivery = Delivery::Value(value);
    loop {
        // The target may have died since it was named: a greenlet dropped
        // at the end of the previous round can run code as it unwinds. Its
        // delivery then goes up, as if it had just returned. The walk ends
        // at the root at the latest: it never dies.
        while target.is_dead() {
            target = target.parent_of_resumed();
        }
        if target.is_root() {
            return match delivery {
                Delivery::Value(v) => v,
                Delivery::Panic(payload) => panic::resume_unwind(payload),
            };
        }
        let (next, next_delivery) = match target.resume(delivery) {
            Ok(CoroutineResult::Yield(request)) => (request.target, Delivery::Value(request.value)),
            Ok(CoroutineResult::Return(r)) => {
                target.bury();
                (target.parent_of_resumed(), Delivery::Value(r))
            }
            Err(payload) => {
                target.bury();
                (target.parent_of_resumed(), Delivery::Panic(payload))
            }
        };
        delivery = next_delivery;
        // The old target is dropped here, outside any resume; if this was
        // the last handle of a suspended greenlet, that greenlet unwinds now.
        target = next;
    }
}

impl<T: 'static> Clone for Greenlet<T> {
    fn clone(&self) -> Greenlet<T> {
        Greenlet {
            inner: Rc::clone(&self.inner),
        }
    }
}

/// Two handles are equal when they name the same greenlet.
impl<T: 'static> PartialEq for Greenlet<T> {
    fn eq(&self, other: &Greenlet<T>) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}

impl<T: 'static> Eq for Greenlet<T> {}

impl<T: 'static> fmt::Debug for Greenlet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Greenlet")
            .field("address", &Rc::as_ptr(&self.inner))
            .field("dead", &self.is_dead())
            .finish_non_exhaustive()
    }
}

/// The message of the panic of a switch to a dead greenlet.
struct DeadSwitch(&'static str);

impl fmt::Display for DeadSwitch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "switched to a Greenlet<{}> that is dead (its function has already \
             returned or panicked)",
            self.0
        )
    }
}

/// One greenlet resume under way, on the resumer's stack: a node of the
/// running chain's list (see "Bookkeeping" in the module docs).
struct Frame {
    /// The `TypeId` of the greenlet's `T`.
    world: TypeId,
    /// The `Greenlet<T>` being resumed, which the trampoline holds for the
    /// whole resume.
    greenlet: *const (),
    /// The next frame out, or null; set when the frame is linked.
    outer: *const Frame,
}

thread_local! {
    /// The root of each world (a `Greenlet<T>` per `T`), created on first
    /// use.
    static ROOTS: RefCell<HashMap<TypeId, Rc<dyn Any>>> = RefCell::new(HashMap::new());
    /// The head of the running chain's list of frames, or null.
    static ACTIVE: Cell<*const Frame> = const { Cell::new(ptr::null()) };
}

/// This thread's root of world `T`.
fn root<T: 'static>() -> Greenlet<T> {
    let root = ROOTS.with(|roots| {
        let mut roots = roots.borrow_mut();
        let root = roots.entry(TypeId::of::<T>()).or_insert_with(|| {
            Rc::new(Greenlet::<T> {
                inner: Rc::new(Inner {
                    fiber: RefCell::new(None),
                    yielder: Rc::new(Cell::new(ptr::null())),
                    parent: None,
                    dead: Cell::new(false),
                }),
            })
        });
        Rc::clone(root)
    });
    match root.downcast_ref::<Greenlet<T>>() {
        Some(root) => root.clone(),
        None => unreachable!("the root of a world is keyed by its TypeId"),
    }
}

/// The greenlet of world `T` that the running chain is resuming, if any.
fn running<T: 'static>() -> Option<Greenlet<T>> {
    let world = TypeId::of::<T>();
    let mut frame = ACTIVE.with(Cell::get);
    while !frame.is_null() {
        // SAFETY: a linked frame lives on a stack of this chain until its
        // guard unlinks it, and `ACTIVE` holds only the running chain's
        // list (the runtime swaps it at task switches: `ChainState`).
        let f = unsafe { &*frame };
        if f.world == world {
            // SAFETY: a frame of world `T` points at the `Greenlet<T>` that
            // the trampoline holds for the whole resume the frame covers.
            return Some(unsafe { &*(f.greenlet as *const Greenlet<T>) }.clone());
        }
        frame = f.outer;
    }
    None
}

/// The world of the innermost greenlet resume under way in this chain.
fn innermost_world() -> Option<TypeId> {
    let head = ACTIVE.with(Cell::get);
    // SAFETY: as in `running`.
    (!head.is_null()).then(|| unsafe { (*head).world })
}

/// Links a frame at the head of the running chain's list for the time of
/// one resume, and unlinks it when the resume ends, however it ends.
struct Running<'f> {
    frame: &'f Frame,
}

impl<'f> Running<'f> {
    fn enter(frame: &'f mut Frame) -> Running<'f> {
        frame.outer = ACTIVE.with(Cell::get);
        let frame: &'f Frame = frame;
        ACTIVE.with(|a| a.set(frame));
        Running { frame }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        ACTIVE.with(|a| a.set(self.frame.outer));
    }
}

/// The greenlet state of a chain of fibers, carried across a task switch
/// by the runtime (see "Bookkeeping" in the module docs). Dropping it puts
/// it back as the running chain's.
///
/// The runtime holds one around each entry into a task's fiber
/// ([`detach`](Self::detach): the task starts with no greenlet resumes of
/// its own), and the task holds one around each park
/// ([`save`](Self::save): it gets its own back when it is resumed).
pub(crate) struct ChainState(*const Frame);

impl ChainState {
    /// Takes the running chain's state, leaving a chain with no greenlet
    /// resume under way.
    #[inline(always)]
    pub(crate) fn detach() -> ChainState {
        ChainState(ACTIVE.with(|a| a.replace(ptr::null())))
    }

    /// Remembers the running chain's state.
    #[inline(always)]
    pub(crate) fn save() -> ChainState {
        ChainState(ACTIVE.with(Cell::get))
    }
}

impl Drop for ChainState {
    #[inline(always)]
    fn drop(&mut self) {
        ACTIVE.with(|a| a.set(self.0));
    }
}

/// Publishes a fiber's yielder in its greenlet's slot while the greenlet's
/// function runs, and clears it when the function ends, however it ends.
struct Published<'s, T: 'static> {
    slot: &'s Cell<*const GreenletYielder<T>>,
}

impl<'s, T: 'static> Published<'s, T> {
    fn new(slot: &'s Cell<*const GreenletYielder<T>>, yielder: &GreenletYielder<T>) -> Self {
        slot.set(yielder);
        Published { slot }
    }
}

impl<T: 'static> Drop for Published<'_, T> {
    fn drop(&mut self) {
        self.slot.set(ptr::null());
    }
}
