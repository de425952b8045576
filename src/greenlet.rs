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
//! Greenlets of one type `T` form a *world*: each thread has one
//! `World<T>` per `T`, created on first use. It holds the world's `root`
//! handle (the only greenlet without a parent, never resumed, never dead)
//! and `current`, the greenlet of that world now running (`None`: the root
//! runs).
//!
//! - `current` is written only by the trampoline, through a guard
//!   (`Running`) that sets it just before resuming a greenlet and puts back
//!   the previous value just after, even if the resume panics. Guards nest
//!   like the resumes they cover, so `current` is `Some(g)` exactly while
//!   the innermost greenlet resume of this world under way is `g`'s.
//! - A trampoline starts only from a world's root (`current` is `None`), so
//!   there is normally one per world at a time. Code run by a greenlet that
//!   unwinds because it was dropped can start another one inside the
//!   first's chain; the guards keep the bookkeeping right, and the
//!   `RefCell` around each fiber turns an attempt to resume a running
//!   greenlet into a panic.
//! - `INNERMOST` names the world of the innermost greenlet resume under
//!   way on this thread (same guard). A switch from inside a greenlet `c`
//!   suspends `c`'s fiber through its yielder, even when the code calling
//!   `switch` runs on a fiber that `c` resumed (a generator, say): the
//!   whole chain is suspended and comes back in the same order. That is
//!   sound as long as no fiber in that chain can be resumed by anyone else
//!   meanwhile; plain coroutines in it are mutably borrowed by their
//!   resumers, so they cannot be. A greenlet of *another* world in it could
//!   (its world's `current` points at it), so a switch is refused, with a
//!   panic, unless its own world is the innermost one.
//! - A greenlet's `fiber` is `Some` until the greenlet dies (its function
//!   returned or panicked); then the trampoline drops it. It is borrowed
//!   only by the trampoline, for the time of one resume. The root's is
//!   always `None`.
//! - A greenlet's `yielder` slot holds the address of its fiber's
//!   [`Yielder`] while its function runs and is null before and after. It is
//!   read only by `switch`, when the greenlet is `current`.
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
        let parent = Some(World::<T>::get().current());
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
        let current = World::<T>::get().current();
        if current == *self {
            return value;
        }
        assert!(!self.is_dead(), "{}", DeadSwitch(any::type_name::<T>()));
        if current.is_root() {
            drop(current);
            return trampoline(self.clone(), value);
        }
        assert!(
            INNERMOST.with(Cell::get) == Some(TypeId::of::<T>()),
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
        // SAFETY: `current` is the greenlet its world's trampoline is
        // resuming, and that world is the innermost one, so the innermost
        // greenlet resume under way is `current`'s and we run inside it: on
        // its fiber, or on fibers it resumed that no one else can resume
        // (module docs, `INNERMOST`). Its function is running, so the slot
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
        World::<T>::get().current()
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

    /// Resumes the greenlet with `delivery`, as the running greenlet of
    /// `world`. Only the trampoline calls this.
    fn resume(
        &self,
        world: &World<T>,
        delivery: Delivery<T>,
    ) -> std::thread::Result<CoroutineResult<SwitchTo<T>, T>> {
        let mut fiber = match self.inner.fiber.try_borrow_mut() {
            Ok(fiber) => fiber,
            // Only reachable through code that runs while a dropped
            // greenlet unwinds and switches worlds; refuse, as a RefCell
            // does.
            Err(_) => panic!("switched to a greenlet that is already running"),
        };
        let fiber = fiber
            .as_mut()
            .expect("the trampoline resumed a dead greenlet");
        let _running = Running::enter(world, self);
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
    let world = World::<T>::get();
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
        let (next, next_delivery) = match target.resume(&world, delivery) {
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

/// This thread's greenlets of type `T`: see "Bookkeeping" in the module
/// docs.
struct World<T: 'static> {
    /// The handle of the root: no parent, no fiber, never dead.
    root: Greenlet<T>,
    /// The greenlet being resumed by the trampoline; `None` for the root.
    current: RefCell<Option<Greenlet<T>>>,
}

thread_local! {
    /// One `World<T>` per type `T`, created on first use.
    static WORLDS: RefCell<HashMap<TypeId, Rc<dyn Any>>> = RefCell::new(HashMap::new());
    /// The world of the innermost greenlet resume under way on this thread.
    static INNERMOST: Cell<Option<TypeId>> = const { Cell::new(None) };
}

impl<T: 'static> World<T> {
    fn get() -> Rc<World<T>> {
        let world = WORLDS.with(|worlds| {
            let mut worlds = worlds.borrow_mut();
            let world = worlds.entry(TypeId::of::<T>()).or_insert_with(|| {
                let root = Greenlet {
                    inner: Rc::new(Inner {
                        fiber: RefCell::new(None),
                        yielder: Rc::new(Cell::new(ptr::null())),
                        parent: None,
                        dead: Cell::new(false),
                    }),
                };
                Rc::new(World::<T> {
                    root,
                    current: RefCell::new(None),
                })
            });
            Rc::clone(world)
        });
        match world.downcast::<World<T>>() {
            Ok(world) => world,
            Err(_) => unreachable!("the world of a type is keyed by its TypeId"),
        }
    }

    /// The running greenlet, or the root.
    fn current(&self) -> Greenlet<T> {
        match &*self.current.borrow() {
            Some(g) => g.clone(),
            None => self.root.clone(),
        }
    }
}

/// Marks a greenlet as the one running, for the time of one resume, and
/// puts back what was there before when the resume ends, however it ends.
/// Guards nest like the resumes they cover, so the bookkeeping is a stack.
struct Running<'w, T: 'static> {
    world: &'w World<T>,
    /// `current` before this resume: `None` except in the corner case the
    /// module docs' last paragraph allows (code run by an unwinding greenlet
    /// that starts a second trampoline).
    outer_current: Option<Greenlet<T>>,
    outer_innermost: Option<TypeId>,
}

impl<'w, T: 'static> Running<'w, T> {
    fn enter(world: &'w World<T>, g: &Greenlet<T>) -> Running<'w, T> {
        let outer_current = world.current.replace(Some(g.clone()));
        let outer_innermost = INNERMOST.with(|w| w.replace(Some(TypeId::of::<T>())));
        Running {
            world,
            outer_current,
            outer_innermost,
        }
    }
}

impl<T: 'static> Drop for Running<'_, T> {
    fn drop(&mut self) {
        INNERMOST.with(|w| w.set(self.outer_innermost));
        // Swapped out first, dropped after the borrow has ended.
        let ran = self.world.current.replace(self.outer_current.take());
        drop(ran);
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
