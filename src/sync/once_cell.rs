//! [`OnceCell`]: a value initialised once, by an initialiser that may
//! park; fibers that ask meanwhile wait for it.
//!
//! `std::cell::OnceCell` cannot do this: its initialiser must not suspend
//! while others look at the cell (they would see it empty and start a
//! second initialisation, or std's would panic on the reentrance). This is
//! tokio's `OnceCell` for fibers: the first caller of
//! [`get_or_init`](OnceCell::get_or_init) runs the initialiser (which may
//! sleep, read a socket, wait on a channel); the callers that come while it
//! runs park in a FIFO queue and all get the value it produced.
//!
//! ## State and invariants
//!
//! `state` is `Empty`, `Running` (one fiber runs an initialiser) or `Full`.
//!
//! - `value` is written exactly once, on the way from `Running` (or, by
//!   [`set`](OnceCell::set), from `Empty`) to `Full`, and never again: a
//!   shared reference to it is handed out only once the cell is `Full`, so
//!   nobody holds one while it is written.
//! - An initialiser that panics, is cancelled or (in
//!   [`get_or_try_init`](OnceCell::get_or_try_init)) fails puts the cell
//!   back to `Empty` and wakes the first waiter, which runs its own
//!   initialiser; the others keep waiting. A waiter woken so but cancelled
//!   before it runs passes the wake-up on, so the turn is never lost.
//! - Filling the cell wakes every waiter.

use std::cell::{Cell, UnsafeCell};
use std::fmt;

use super::wait_queue::{WaitQueue, Waited};
use crate::runtime::wait::{LocalWaker, Parker};

const WAIT: &str = "spindle::sync::OnceCell::get_or_init";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Empty,
    /// The fiber running the initialiser.
    Running(Option<LocalWaker>),
    Full,
}

/// A cell written once, whose initialiser may park the fiber; fibers that
/// ask while it runs wait for its value.
///
/// An initialiser that panics or is cancelled leaves the cell empty and
/// lets the next waiting fiber try (first come, first served; a fiber
/// woken for its turn and cancelled before it runs passes the turn on).
/// See the [`sync`](super) docs for what all the primitives share.
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use std::time::Duration;
/// use spindle::sync::OnceCell;
///
/// spindle::run(|| {
///     let config = Rc::new(OnceCell::new());
///     let loads = Rc::new(Cell::new(0));
///     let fibers: Vec<_> = (0..3)
///         .map(|_| {
///             let (config, loads) = (Rc::clone(&config), Rc::clone(&loads));
///             spindle::spawn(move || {
///                 let v: &String = config.get_or_init(|| {
///                     loads.set(loads.get() + 1);
///                     spindle::sleep(Duration::from_millis(1)); // "reads a file"
///                     String::from("loaded")
///                 });
///                 v.clone()
///             })
///         })
///         .collect();
///     for r in spindle::join_all(fibers) {
///         assert_eq!(r.unwrap(), "loaded");
///     }
///     assert_eq!(loads.get(), 1, "one initialisation, the others waited for it");
/// });
/// ```
///
/// # `Send`
///
/// Not `Send` (its waiters are fibers of this thread).
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// assert_send(spindle::sync::OnceCell::<u8>::new());
/// ```
pub struct OnceCell<T> {
    state: Cell<State>,
    waiters: WaitQueue,
    value: UnsafeCell<Option<T>>,
}

impl<T> OnceCell<T> {
    /// An empty cell.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = spindle::sync::OnceCell::<u32>::new();
    /// assert_eq!(cell.get(), None);
    /// ```
    pub const fn new() -> OnceCell<T> {
        OnceCell {
            state: Cell::new(State::Empty),
            waiters: WaitQueue::new(),
            value: UnsafeCell::new(None),
        }
    }

    /// The value, if the cell is full (`None` while it is empty or being
    /// initialised); never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = spindle::sync::OnceCell::new();
    /// assert_eq!(cell.get(), None);
    /// cell.set(7).unwrap();
    /// assert_eq!(cell.get(), Some(&7));
    /// ```
    pub fn get(&self) -> Option<&T> {
        if self.state.get() != State::Full {
            return None;
        }
        // SAFETY: a full cell's value is never written again (invariants).
        unsafe { (*self.value.get()).as_ref() }
    }

    /// The value, through an exclusive borrow.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut cell = spindle::sync::OnceCell::new();
    /// cell.set(1).unwrap();
    /// *cell.get_mut().unwrap() += 1;
    /// assert_eq!(cell.get(), Some(&2));
    /// ```
    pub fn get_mut(&mut self) -> Option<&mut T> {
        self.value.get_mut().as_mut()
    }

    /// Fills an empty cell with `value`, waking the fibers waiting for it;
    /// never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = spindle::sync::OnceCell::new();
    /// assert_eq!(cell.set(1), Ok(()));
    /// assert_eq!(cell.set(2), Err(2));
    /// assert_eq!(cell.get(), Some(&1));
    /// ```
    ///
    /// # Errors
    ///
    /// `value` back if the cell is full or an initialiser is running.
    pub fn set(&self, value: T) -> Result<(), T> {
        if self.state.get() != State::Empty {
            return Err(value);
        }
        self.fill(value);
        Ok(())
    }

    /// The value, running `init` to produce it if the cell is empty; if
    /// another fiber's initialiser is running, parks until it is done.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = spindle::sync::OnceCell::new();
    /// assert_eq!(*cell.get_or_init(|| 1), 1);
    /// assert_eq!(*cell.get_or_init(|| 2), 1); // already full
    /// ```
    ///
    /// # Panics
    ///
    /// If `init` panics (the cell stays empty and the next waiter runs its
    /// own initialiser); if `init` asks the same cell for its value
    /// (reentrance would wait for itself); if it must wait and the caller is
    /// not a fiber of a runtime; and as a cancellation point, when it waits.
    #[track_caller]
    pub fn get_or_init(&self, init: impl FnOnce() -> T) -> &T {
        match self.get_or_try_init(|| Ok::<T, std::convert::Infallible>(init())) {
            Ok(v) => v,
            Err(never) => match never {},
        }
    }

    /// As [`get_or_init`](Self::get_or_init), with an initialiser that may
    /// fail: an error leaves the cell empty, wakes the next waiter to try,
    /// and is returned.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = spindle::sync::OnceCell::new();
    /// assert_eq!(cell.get_or_try_init(|| "nope".parse::<u32>()).ok(), None);
    /// assert_eq!(cell.get_or_try_init(|| "42".parse::<u32>()), Ok(&42));
    /// ```
    ///
    /// # Errors
    ///
    /// What `init` returned, if this call ran it and it failed.
    ///
    /// # Panics
    ///
    /// As [`get_or_init`](Self::get_or_init).
    #[track_caller]
    pub fn get_or_try_init<E>(&self, init: impl FnOnce() -> Result<T, E>) -> Result<&T, E> {
        loop {
            match self.state.get() {
                State::Full => return Ok(self.get().expect("a full cell has a value")),
                State::Empty => break,
                State::Running(by) => {
                    let p = &Parker::current(WAIT);
                    if by.is_some_and(|w| w == p.waker()) {
                        panic!("{WAIT}: the initialiser asked its own cell for the value");
                    }
                    // Either full (everyone returns) or empty again (this
                    // waiter's turn to try): a turn it cannot take goes on.
                    let waited = self.waiters.wait(
                        p,
                        WAIT,
                        0,
                        None,
                        || {},
                        || {
                            self.waiters.notify_one();
                        },
                    );
                    if waited == Waited::Interrupted {
                        panic!(
                            "{WAIT}: the runtime is shutting down and this fiber, already \
                             unwinding, cannot wait for another fiber's initialiser"
                        );
                    }
                }
            }
        }
        /// Puts the cell back to empty and wakes the next waiter, unless
        /// the initialiser filled it.
        struct Reset<'a, T>(&'a OnceCell<T>);
        impl<T> Drop for Reset<'_, T> {
            fn drop(&mut self) {
                self.0.state.set(State::Empty);
                self.0.waiters.notify_one();
            }
        }
        let me = Parker::try_current().map(|p| p.waker());
        self.state.set(State::Running(me));
        let reset = Reset(self);
        let value = init()?; // an error or unwind drops `reset`
        std::mem::forget(reset);
        self.fill(value);
        Ok(self.get().expect("just filled"))
    }

    /// The value, if any, from a cell nobody can be waiting on any more.
    ///
    /// # Examples
    ///
    /// ```
    /// let cell = spindle::sync::OnceCell::new();
    /// cell.set(String::from("x")).unwrap();
    /// assert_eq!(cell.into_inner().as_deref(), Some("x"));
    /// ```
    pub fn into_inner(self) -> Option<T> {
        self.value.into_inner()
    }

    /// Writes the value and wakes every waiter. The cell must not be full.
    fn fill(&self, value: T) {
        debug_assert_ne!(self.state.get(), State::Full);
        // SAFETY: the cell is not full, so no reference to the value has
        // been handed out (invariants), and nothing else writes it.
        unsafe { *self.value.get() = Some(value) };
        self.state.set(State::Full);
        self.waiters.notify_all();
    }
}

impl<T> Default for OnceCell<T> {
    fn default() -> OnceCell<T> {
        OnceCell::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for OnceCell<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("OnceCell");
        match self.state.get() {
            State::Full => d.field("value", &self.get()),
            State::Running(_) => d.field("value", &format_args!("<initialising>")),
            State::Empty => d.field("value", &format_args!("<empty>")),
        };
        d.field("waiters", &self.waiters.len()).finish()
    }
}

impl<T> From<T> for OnceCell<T> {
    fn from(value: T) -> OnceCell<T> {
        OnceCell {
            state: Cell::new(State::Full),
            waiters: WaitQueue::new(),
            value: UnsafeCell::new(Some(value)),
        }
    }
}
