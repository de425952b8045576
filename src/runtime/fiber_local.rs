//! Fiber-local storage: [`fiber_local!`](crate::fiber_local) and
//! [`FiberLocal`] (std's `thread_local!` and `LocalKey`, per fiber: may's
//! `coroutine_local!`, gevent's `local`, asyncio's context variables).
//!
//! See [`FiberLocal`] for where the values live and when they are dropped.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::thread::LocalKey;

use super::task::LocalSlot;
use super::wait::Parker;

/// Declares fiber-locals, in `thread_local!`'s shape: one value per fiber,
/// made by the initialiser on the fiber's first access and dropped when
/// the fiber ends; see [`FiberLocal`].
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
///
/// spindle::fiber_local! {
///     static REQUESTS: Cell<u32> = Cell::new(0);
/// }
///
/// spindle::run(|| {
///     let a = spindle::spawn(|| { REQUESTS.set(REQUESTS.get() + 1); spindle::yield_now(); REQUESTS.get() });
///     let b = spindle::spawn(|| { REQUESTS.set(REQUESTS.get() + 5); spindle::yield_now(); REQUESTS.get() });
///     assert_eq!((a.join().unwrap(), b.join().unwrap()), (1, 5));
///     assert_eq!(REQUESTS.get(), 0); // the main fiber has its own
/// });
/// ```
#[macro_export]
macro_rules! fiber_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr; $($rest:tt)*) => {
        $crate::fiber_local!($(#[$attr])* $vis static $name: $t = $init);
        $crate::fiber_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr) => {
        $(#[$attr])*
        $vis static $name: $crate::FiberLocal<$t> = {
            fn __init() -> $t {
                $init
            }
            ::std::thread_local! {
                static __FALLBACK: $t = __init();
            }
            $crate::FiberLocal::__new(__init, &__FALLBACK)
        };
    };
}

/// A fiber-local key, declared by [`fiber_local!`](crate::fiber_local)
/// (std's `LocalKey`, per fiber).
///
/// # Where the values live
///
/// Each fiber's values hang off its task record, in a small map keyed by
/// the address of the `FiberLocal` static, allocated the first time the
/// fiber touches a fiber-local (a fiber that never does pays one null
/// pointer). A value is created by the key's initialiser on the fiber's
/// first access, and lives until the fiber ends. A fiber never moves to
/// another thread, so a fiber-local is per fiber whatever the runtime's
/// number of worker threads; it needs neither `Send` nor `Sync`.
///
/// Outside a fiber (on a thread with no runtime, or on a raw
/// [`Coroutine`](crate::Coroutine) that is not a runtime fiber) a
/// fiber-local falls back to a `thread_local!` of the same initialiser: one
/// value per thread, as if the thread were one fiber.
///
/// # When they are dropped
///
/// When the fiber's closure has returned, panicked or been unwound by a
/// cancellation, its root drops the fiber's values, most recently
/// initialised first, on the fiber's own stack (so a destructor may park),
/// before the done callbacks run and before a joiner wakes. A value a
/// destructor or a done callback creates again is dropped in a later pass
/// before the fiber ends (after eight such passes, what destructors keep
/// creating is leaked rather than dropped in an endless loop).
///
/// A destructor that panics is caught there: the panic hook has printed it;
/// if the fiber had returned a value, its result becomes
/// [`JoinError::Panicked`](crate::JoinError::Panicked) with that payload
/// (the fiber did not finish cleanly), otherwise the payload is dropped.
/// The other values are still dropped, and the scheduler never sees the
/// panic.
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
///
/// spindle::fiber_local!(static TRAIL: RefCell<Vec<&'static str>> = RefCell::new(Vec::new()));
///
/// spindle::run(|| {
///     TRAIL.with_borrow_mut(|t| t.push("main"));
///     let h = spindle::spawn(|| TRAIL.with_borrow(|t| t.len()));
///     assert_eq!(h.join().unwrap(), 0);
///     assert_eq!(TRAIL.take(), ["main"]);
/// });
/// ```
pub struct FiberLocal<T: 'static> {
    init: fn() -> T,
    fallback: &'static LocalKey<T>,
}

impl<T: 'static> fmt::Debug for FiberLocal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FiberLocal").finish_non_exhaustive()
    }
}

/// Removes an initialiser's placeholder if the initialiser unwinds.
struct Reserved<'a> {
    map: &'a super::task::LocalMap,
    key: usize,
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        self.map.unreserve(self.key);
    }
}

impl<T: 'static> FiberLocal<T> {
    /// Used by [`fiber_local!`](crate::fiber_local); not public API.
    #[doc(hidden)]
    pub const fn __new(init: fn() -> T, fallback: &'static LocalKey<T>) -> FiberLocal<T> {
        FiberLocal { init, fallback }
    }

    /// Calls `f` with this fiber's value, creating it first if this fiber
    /// has none yet (std's `LocalKey::with`). Outside a fiber, the thread's
    /// value.
    ///
    /// # Examples
    ///
    /// ```
    /// spindle::fiber_local!(static NAME: String = format!("fiber {}", spindle::current().id()));
    ///
    /// spindle::run(|| {
    ///     let main = NAME.with(String::clone);
    ///     let other = spindle::spawn(|| NAME.with(String::clone)).join().unwrap();
    ///     assert_ne!(main, other);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// If called from this key's own initialiser (a recursive
    /// initialisation), and as `thread_local!` panics outside a fiber.
    pub fn with<F, R>(&'static self, f: F) -> R
    where
        F: FnOnce(&T) -> R,
    {
        let Some(p) = Parker::try_current() else {
            return self.fallback.with(f);
        };
        let map = p.locals();
        let key = self as *const FiberLocal<T> as usize;
        let value: *const dyn Any = match map.get(key) {
            LocalSlot::Value(v) => v,
            LocalSlot::Initialising => {
                panic!("a fiber-local was accessed from its own initialiser")
            }
            LocalSlot::Vacant => {
                map.reserve(key);
                let reserved = Reserved { map, key };
                let value = Box::new((self.init)());
                std::mem::forget(reserved);
                map.fill(key, value)
            }
        };
        // SAFETY: the value is boxed in this fiber's map, which never drops
        // an entry while the fiber's code runs (the whole map is taken out
        // by the root once this frame is gone), so it lives across `f`.
        let value = unsafe { &*value };
        f(value
            .downcast_ref::<T>()
            .expect("a fiber-local's key names a value of its type"))
    }
}

impl<T: 'static> FiberLocal<Cell<T>> {
    /// Sets this fiber's value (std's `LocalKey<Cell<T>>::set`).
    ///
    /// # Examples
    ///
    /// ```
    /// spindle::fiber_local!(static N: std::cell::Cell<u8> = std::cell::Cell::new(0));
    /// spindle::run(|| { N.set(3); assert_eq!(N.get(), 3) });
    /// ```
    pub fn set(&'static self, value: T) {
        self.with(|c| c.set(value));
    }

    /// A copy of this fiber's value.
    ///
    /// # Examples
    ///
    /// ```
    /// spindle::fiber_local!(static N: std::cell::Cell<u8> = std::cell::Cell::new(7));
    /// spindle::run(|| assert_eq!(N.get(), 7));
    /// ```
    pub fn get(&'static self) -> T
    where
        T: Copy,
    {
        self.with(Cell::get)
    }

    /// Takes this fiber's value, leaving `T::default()`.
    ///
    /// # Examples
    ///
    /// ```
    /// spindle::fiber_local!(static N: std::cell::Cell<u8> = std::cell::Cell::new(7));
    /// spindle::run(|| { assert_eq!(N.take(), 7); assert_eq!(N.get(), 0) });
    /// ```
    pub fn take(&'static self) -> T
    where
        T: Default,
    {
        self.with(Cell::take)
    }

    /// Replaces this fiber's value, returning the old one.
    ///
    /// # Examples
    ///
    /// ```
    /// spindle::fiber_local!(static N: std::cell::Cell<u8> = std::cell::Cell::new(7));
    /// spindle::run(|| { assert_eq!(N.replace(1), 7); assert_eq!(N.get(), 1) });
    /// ```
    pub fn replace(&'static self, value: T) -> T {
        self.with(|c| c.replace(value))
    }
}

impl<T: 'static> FiberLocal<RefCell<T>> {
    /// Calls `f` with a shared borrow of this fiber's value.
    ///
    /// # Examples
    ///
    /// ```
    /// spindle::fiber_local!(static V: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![1]));
    /// spindle::run(|| assert_eq!(V.with_borrow(|v| v.len()), 1));
    /// ```
    ///
    /// # Panics
    ///
    /// If the value is mutably borrowed.
    pub fn with_borrow<F, R>(&'static self, f: F) -> R
    where
        F: FnOnce(&T) -> R,
    {
        self.with(|c| f(&c.borrow()))
    }

    /// Calls `f` with a mutable borrow of this fiber's value.
    ///
    /// # Examples
    ///
    /// ```
    /// spindle::fiber_local!(static V: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![]));
    /// spindle::run(|| { V.with_borrow_mut(|v| v.push(2)); assert_eq!(V.take(), [2]) });
    /// ```
    ///
    /// # Panics
    ///
    /// If the value is borrowed.
    pub fn with_borrow_mut<F, R>(&'static self, f: F) -> R
    where
        F: FnOnce(&mut T) -> R,
    {
        self.with(|c| f(&mut c.borrow_mut()))
    }

    /// Sets this fiber's value.
    ///
    /// # Examples
    ///
    /// ```
    /// spindle::fiber_local!(static V: std::cell::RefCell<String> = std::cell::RefCell::new(String::new()));
    /// spindle::run(|| { V.set("x".into()); assert_eq!(V.take(), "x") });
    /// ```
    ///
    /// # Panics
    ///
    /// If the value is borrowed.
    pub fn set(&'static self, value: T) {
        self.with(|c| *c.borrow_mut() = value);
    }

    /// Takes this fiber's value, leaving `T::default()`.
    ///
    /// # Examples
    ///
    /// ```
    /// spindle::fiber_local!(static V: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![4]));
    /// spindle::run(|| { assert_eq!(V.take(), [4]); assert!(V.take().is_empty()) });
    /// ```
    ///
    /// # Panics
    ///
    /// If the value is borrowed.
    pub fn take(&'static self) -> T
    where
        T: Default,
    {
        self.with(RefCell::take)
    }

    /// Replaces this fiber's value, returning the old one.
    ///
    /// # Examples
    ///
    /// ```
    /// spindle::fiber_local!(static V: std::cell::RefCell<u8> = std::cell::RefCell::new(1));
    /// spindle::run(|| { assert_eq!(V.replace(2), 1); assert_eq!(V.take(), 2) });
    /// ```
    ///
    /// # Panics
    ///
    /// If the value is borrowed.
    pub fn replace(&'static self, value: T) -> T {
        self.with(|c| c.replace(value))
    }
}

/// Passes over the values created again by destructors (and callbacks)
/// before the rest is leaked.
const MAX_PASSES: usize = 8;

/// Drops the running fiber's fiber-local values (called by its root,
/// possibly several times as it ends); see [`FiberLocal`]. Returns
/// the payload of the first destructor that panicked.
pub(crate) fn drop_all(me: &Parker) -> Option<Box<dyn Any + Send>> {
    let mut first_panic = None;
    for pass in 0.. {
        let Some(map) = me.take_locals() else {
            break;
        };
        if pass == MAX_PASSES {
            // Destructors that keep creating values again: leak the rest
            // rather than loop for ever (std's thread-locals do the same).
            std::mem::forget(map);
            break;
        }
        for value in map.into_values() {
            if let Err(p) = panic::catch_unwind(AssertUnwindSafe(move || drop(value))) {
                first_panic.get_or_insert(p);
            }
        }
    }
    first_panic
}
