//! Generators: coroutines that produce a sequence of values, as an
//! [`Iterator`].
//!
//! A [`Generator<Y, R, S>`] owns a [`Coroutine<S, Y, R>`] and gives it the
//! shape of a Python generator: each [`Yielder::suspend`] inside the closure
//! hands one item out, and the closure's return value (`R`) is kept for
//! whoever wants it once the items have run out.
//!
//! - `Y` is the type of the items.
//! - `R` is what the closure returns at the end, `()` by default.
//! - `S` is what the consumer *sends* in with each [`Generator::send`]
//!   (Python's `gen.send(value)`), `()` by default. Only a generator with
//!   `S = ()` is an [`Iterator`]: `next()` is `send(())`.
//!
//! Delegation, Python's `yield from`, is the [`YieldFrom`] trait, which adds
//! [`yield_from`](YieldFrom::yield_from) and [`delegate`](YieldFrom::delegate)
//! to [`Yielder`].
//!
//! ## State machine
//!
//! ```text
//!              next / send                next / send
//!   Fresh ------------------> Suspended -----------------> Done
//!     |                        |    ^      the closure        return value kept
//!     |                        +----+      returned           (`return_value`)
//!     |                     yields an item
//!     |                        |
//!     |  drop                  | the closure panics: the panic leaves
//!     v                        v next/send, then Done, no return value
//!  closure dropped      drop: the stack unwinds (destructors run once)
//! ```
//!
//! ## Invariants
//!
//! - `return_value` is `Some` only once the coroutine is done, and only if
//!   its closure returned (not if it panicked). It is set exactly once, by
//!   the call to `send` that saw the closure return, and never changed.
//! - Once the coroutine is done, `send` (and so `next`) returns `None`
//!   without touching it: the iterator is fused.
//! - A generator is used on the thread that made it (it is not `Send`), like
//!   the [`Coroutine`] inside it.
//!
//! ## Example
//!
//! ```
//! use spindle::Generator;
//!
//! let fibonacci = Generator::new(|y| {
//!     let (mut a, mut b) = (0u64, 1u64);
//!     loop {
//!         y.suspend(a);
//!         (a, b) = (b, a + b);
//!     }
//! });
//! let first: Vec<u64> = fibonacci.take(10).collect();
//! assert_eq!(first, [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]);
//! ```

use std::fmt;
use std::iter::FusedIterator;

use crate::coroutine::{Coroutine, CoroutineResult, Yielder};

/// A coroutine that yields items of type `Y`, returns an `R` at the end, and
/// is sent an `S` with each step.
///
/// With the default `S = ()` it is an [`Iterator`] over the yielded items.
/// See the [module docs](self) for the state machine.
///
/// # Examples
///
/// An iterator that also has something to say at the end:
///
/// ```
/// use spindle::Generator;
///
/// let mut words = Generator::new(|y| {
///     let mut count = 0;
///     for w in "the quick brown fox".split(' ') {
///         y.suspend(w);
///         count += 1;
///     }
///     count
/// });
/// assert_eq!(words.by_ref().collect::<Vec<_>>(), ["the", "quick", "brown", "fox"]);
/// assert_eq!(words.return_value(), Some(&4));
/// ```
///
/// A generator that is sent values, like Python's `gen.send(v)`: a running
/// average.
///
/// ```
/// use spindle::Generator;
///
/// let mut average = Generator::with_input(|y, first: f64| {
///     let (mut sum, mut n) = (first, 1.0);
///     loop {
///         let next = y.suspend(sum / n);
///         sum += next;
///         n += 1.0;
///     }
/// });
/// assert_eq!(average.send(10.0), Some(10.0));
/// assert_eq!(average.send(20.0), Some(15.0));
/// assert_eq!(average.send(0.0), Some(10.0));
/// ```
///
/// # Panics
///
/// A panic inside the generator's closure leaves through the
/// [`send`](Generator::send) or [`next`](Iterator::next) that was running
/// it, with its original payload. The generator is then done: later calls
/// return `None`, and it has no return value.
///
/// # Dropping
///
/// Dropping a generator that has not finished unwinds its stack, so every
/// destructor on it runs exactly once (see [`Coroutine`], "Dropping").
///
/// # `Send`
///
/// A generator is not `Send`, for the same reason as [`Coroutine`]: its
/// stack may hold addresses of this thread's thread-locals.
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// let numbers = spindle::Generator::new(|y| y.suspend(1));
/// assert_send(numbers);
/// ```
pub struct Generator<Y, R = (), S = ()> {
    coroutine: Coroutine<S, Y, R>,
    /// Set once, when the closure returns; see the module invariants.
    return_value: Option<R>,
}

impl<Y, R> Generator<Y, R, ()> {
    /// Creates a generator running `f`, which hands out items with
    /// `yielder.suspend(item)` and returns an `R` at the end.
    ///
    /// Nothing runs until the first [`next`](Iterator::next) (or
    /// [`send`](Generator::send)).
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::Generator;
    ///
    /// let mut countdown = Generator::new(|y| {
    ///     for n in (1..=3).rev() {
    ///         y.suspend(n);
    ///     }
    ///     "liftoff"
    /// });
    /// assert_eq!(countdown.next(), Some(3));
    /// assert_eq!(countdown.next(), Some(2));
    /// assert_eq!(countdown.next(), Some(1));
    /// assert_eq!(countdown.next(), None);
    /// assert_eq!(countdown.into_return_value(), Some("liftoff"));
    /// ```
    ///
    /// # Panics
    ///
    /// If no stack can be had, like [`Coroutine::new`]. To choose the stack
    /// or get the error instead, build a [`Coroutine`] with
    /// [`Builder`](crate::coroutine::Builder) and convert it with
    /// [`Generator::from`].
    pub fn new<F>(f: F) -> Generator<Y, R, ()>
    where
        F: FnOnce(&Yielder<(), Y>) -> R + 'static,
    {
        Generator::from(Coroutine::new(move |yielder: &Yielder<(), Y>, ()| {
            f(yielder)
        }))
    }
}

impl<Y, R, S> Generator<Y, R, S> {
    /// Creates a generator that is sent values: the first
    /// [`send`](Generator::send) starts `f` with the sent value as `first`,
    /// and each later one makes the pending `yielder.suspend(item)` return
    /// the sent value.
    ///
    /// This differs from Python, where the first `send` must be `None` and
    /// only starts the generator: here the first value sent is delivered,
    /// as `first`.
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::Generator;
    ///
    /// // Echoes what it is sent, shouting.
    /// let mut echo = Generator::with_input(|y, first: &str| {
    ///     let mut heard = first;
    ///     loop {
    ///         heard = y.suspend(heard.to_uppercase());
    ///     }
    /// });
    /// assert_eq!(echo.send("hello").as_deref(), Some("HELLO"));
    /// assert_eq!(echo.send("again").as_deref(), Some("AGAIN"));
    /// ```
    ///
    /// # Panics
    ///
    /// If no stack can be had, like [`Coroutine::new`].
    pub fn with_input<F>(f: F) -> Generator<Y, R, S>
    where
        F: FnOnce(&Yielder<S, Y>, S) -> R + 'static,
    {
        Generator::from(Coroutine::new(f))
    }

    /// Sends `value` in and runs the generator to its next item.
    ///
    /// Returns `Some(item)` when it yields, and `None` when it has finished:
    /// either during this call (its return value is then available from
    /// [`return_value`](Generator::return_value)) or before it (`value` is
    /// then dropped).
    ///
    /// # Panics
    ///
    /// With the generator's own payload if it panics during this call; it
    /// is then done, without a return value.
    pub fn send(&mut self, value: S) -> Option<Y> {
        if self.coroutine.done() {
            return None;
        }
        match self.coroutine.resume(value) {
            CoroutineResult::Yield(item) => Some(item),
            CoroutineResult::Return(r) => {
                self.return_value = Some(r);
                None
            }
        }
    }

    /// Whether the generator has finished: it returned, or it panicked.
    pub fn is_done(&self) -> bool {
        self.coroutine.done()
    }

    /// The closure's return value, once it has returned.
    ///
    /// `None` while the generator still runs, and for good if it panicked.
    pub fn return_value(&self) -> Option<&R> {
        self.return_value.as_ref()
    }

    /// Consumes the generator and gives back the closure's return value,
    /// if it has returned.
    ///
    /// # Dropping
    ///
    /// An unfinished generator is dropped (its stack unwinds) and `None` is
    /// returned.
    pub fn into_return_value(self) -> Option<R> {
        self.return_value
    }
}

/// Wraps a coroutine, built for example with
/// [`Builder`](crate::coroutine::Builder) to choose its name or stack size.
///
/// A coroutine that has started goes on from where it is; one that is
/// already done makes a done generator without a return value.
impl<Y, R, S> From<Coroutine<S, Y, R>> for Generator<Y, R, S> {
    fn from(coroutine: Coroutine<S, Y, R>) -> Generator<Y, R, S> {
        Generator {
            coroutine,
            return_value: None,
        }
    }
}

impl<Y, R> Iterator for Generator<Y, R, ()> {
    type Item = Y;

    fn next(&mut self) -> Option<Y> {
        self.send(())
    }
}

impl<Y, R> FusedIterator for Generator<Y, R, ()> {}

impl<Y, R, S> fmt::Debug for Generator<Y, R, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generator")
            .field("coroutine", &self.coroutine)
            .field("returned", &self.return_value.is_some())
            .finish()
    }
}

mod sealed {
    /// Keeps [`YieldFrom`](super::YieldFrom) implemented by
    /// [`Yielder`](crate::coroutine::Yielder) alone.
    pub trait Sealed {}
    impl<S, Y> Sealed for crate::coroutine::Yielder<S, Y> {}
}

/// Delegation, Python's `yield from`: a generator hands its consumer over to
/// another generator until that one finishes, then goes on with its return
/// value.
///
/// Implemented by [`Yielder<S, Y>`] only. Bring it into scope to call
/// `yielder.yield_from(inner)` inside a generator.
///
/// The inner generator runs on its own stack, resumed from the outer one's:
/// each item costs two switches in and two out instead of one.
///
/// # Examples
///
/// ```
/// use spindle::generator::{Generator, YieldFrom};
///
/// let mut outer = Generator::new(|y| {
///     y.suspend(1);
///     let inner = Generator::new(|y| {
///         y.suspend(3);
///         y.suspend(4);
///         2
///     });
///     let last = y.yield_from(inner);
///     y.suspend(last);
/// });
/// assert_eq!(outer.by_ref().collect::<Vec<_>>(), [1, 3, 4, 2]);
/// ```
pub trait YieldFrom<S, Y>: sealed::Sealed {
    /// Yields every item of `inner` through this generator, forwarding
    /// every value sent to this generator into `inner`; returns `inner`'s
    /// return value once it has finished.
    ///
    /// `first` is what `inner` is sent first: its closure's `first`
    /// argument if it has not started, or what its pending `suspend`
    /// returns if it has. While `inner` runs, each value sent to the outer
    /// generator goes to `inner`.
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::generator::{Generator, YieldFrom};
    ///
    /// // Adds up what it is sent until it is sent 0, then returns the sum.
    /// fn adder() -> Generator<i32, i32, i32> {
    ///     Generator::with_input(|y, mut n: i32| {
    ///         let mut sum = 0;
    ///         while n != 0 {
    ///             sum += n;
    ///             n = y.suspend(sum);
    ///         }
    ///         sum
    ///     })
    /// }
    ///
    /// // Runs two adders one after the other and yields -1 between them.
    /// let mut outer = Generator::with_input(|y, first: i32| {
    ///     let a = y.delegate(adder(), first);
    ///     let next = y.suspend(-1);
    ///     let b = y.delegate(adder(), next);
    ///     a * 100 + b
    /// });
    /// assert_eq!(outer.send(1), Some(1));
    /// assert_eq!(outer.send(2), Some(3));
    /// assert_eq!(outer.send(0), Some(-1)); // the first adder returned 3
    /// assert_eq!(outer.send(5), Some(5));
    /// assert_eq!(outer.send(0), None);
    /// assert_eq!(outer.return_value(), Some(&305));
    /// ```
    ///
    /// # Panics
    ///
    /// If `inner` panics: the panic continues in this generator, with its
    /// payload. Also if `inner` had already finished without a return value
    /// (because it had panicked before).
    ///
    /// # Dropping
    ///
    /// If the outer generator is dropped while `inner` is suspended, both
    /// unwind: `inner` first, when the outer one's unwind drops it.
    fn delegate<R>(&self, inner: Generator<Y, R, S>, first: S) -> R;

    /// Yields every item of `inner` through this generator and returns
    /// `inner`'s return value once it has finished.
    ///
    /// This is [`delegate`](YieldFrom::delegate) for generators that are
    /// not sent anything (`S = ()`); it is not available in one that is:
    ///
    /// ```compile_fail
    /// use spindle::generator::{Generator, YieldFrom};
    /// use spindle::Yielder;
    ///
    /// let _outer = Generator::with_input(|y: &Yielder<i32, i32>, _first: i32| {
    ///     let inner = Generator::new(|y| y.suspend(1));
    ///     y.yield_from(inner); // values sent to the outer would be lost
    /// });
    /// ```
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::generator::{Generator, YieldFrom};
    ///
    /// fn range(from: u32, to: u32) -> Generator<u32, u32> {
    ///     Generator::new(move |y| {
    ///         for n in from..to {
    ///             y.suspend(n);
    ///         }
    ///         to - from
    ///     })
    /// }
    ///
    /// let mut both = Generator::new(|y| y.yield_from(range(0, 2)) + y.yield_from(range(7, 9)));
    /// assert_eq!(both.by_ref().collect::<Vec<_>>(), [0, 1, 7, 8]);
    /// assert_eq!(both.return_value(), Some(&4));
    /// ```
    ///
    /// # Panics
    ///
    /// As [`delegate`](YieldFrom::delegate).
    ///
    /// # Dropping
    ///
    /// As [`delegate`](YieldFrom::delegate).
    fn yield_from<R>(&self, inner: Generator<Y, R>) -> R
    where
        Self: YieldFrom<(), Y>,
    {
        YieldFrom::<(), Y>::delegate(self, inner, ())
    }
}

impl<S, Y> YieldFrom<S, Y> for Yielder<S, Y> {
    fn delegate<R>(&self, mut inner: Generator<Y, R, S>, first: S) -> R {
        let mut sent = first;
        while let Some(item) = inner.send(sent) {
            sent = self.suspend(item);
        }
        match inner.into_return_value() {
            Some(r) => r,
            None => panic!("delegated to a generator that had already ended by panicking"),
        }
    }
}
