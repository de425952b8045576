//! A group of fibers with one done callback: [`gather`] and [`Gather`]
//! (asyncio's `gather(...).add_done_callback`).
//!
//! The group registers one done callback on each fiber it has not seen
//! finish (see [`JoinHandle::add_done_callback`]); each counts down the
//! fibers left, and the one that reaches zero runs the group's callbacks
//! with every result, on the stack of the fiber that finished last. The
//! group owns the handles, so every result is still there at that moment;
//! [`Gather::join`] waits for all of them before it takes any.

use std::cell::{Cell, Ref};
use std::fmt;
use std::rc::Rc;

use super::join::{wait_for, CancelRest, JoinError, JoinHandle, JoinSlot, Waited};
use super::wait::Parker;

/// A callback of [`Gather::add_done_callback`], boxed.
type GroupCallback<T> = Box<dyn FnOnce(&[&Result<T, JoinError>])>;

/// What the group and its fibers' callbacks share.
struct Shared<T> {
    slots: Vec<Rc<JoinSlot<T>>>,
    /// Fibers whose done callback has not run yet.
    remaining: Cell<usize>,
    callbacks: Cell<Vec<GroupCallback<T>>>,
}

impl<T> Shared<T> {
    /// Calls `f` with every result, in the group's order.
    fn call(&self, f: GroupCallback<T>) {
        let refs: Vec<Ref<'_, Result<T, JoinError>>> =
            self.slots.iter().map(|s| s.result()).collect();
        let results: Vec<&Result<T, JoinError>> = refs.iter().map(|r| &**r).collect();
        f(&results);
    }

    /// One fiber's done callback: the last one runs the group's callbacks.
    fn one_done(&self) {
        let left = self.remaining.get() - 1;
        self.remaining.set(left);
        if left == 0 {
            loop {
                let callbacks = self.callbacks.take();
                if callbacks.is_empty() {
                    break;
                }
                for callback in callbacks {
                    self.call(callback);
                }
            }
        }
    }
}

/// Several fibers as one (asyncio's `gather`): one callback when all have
/// finished, or [`join`](Gather::join) them all. Made by [`gather`].
///
/// # Dropping
///
/// Dropping a group detaches its fibers, as dropping their handles would;
/// callbacks already added still run when the last fiber finishes.
///
/// # `Send`
///
/// Not `Send`, like the handles it holds.
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// spindle::run(|| assert_send(spindle::gather([spindle::spawn(|| ())])));
/// ```
pub struct Gather<T> {
    handles: Vec<JoinHandle<T>>,
    shared: Rc<Shared<T>>,
}

impl<T> fmt::Debug for Gather<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gather")
            .field("len", &self.handles.len())
            .field("remaining", &self.shared.remaining.get())
            .finish()
    }
}

/// Groups fibers so that one callback runs when all of them have finished
/// (asyncio's `gather(...).add_done_callback(...)`); see [`Gather`].
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use std::time::Duration;
///
/// spindle::run(|| {
///     let sum = Rc::new(Cell::new(0));
///     let group = spindle::gather((1..=3).map(|i| {
///         spindle::spawn(move || { spindle::sleep(Duration::from_millis(i)); i })
///     }));
///     let total = Rc::clone(&sum);
///     group.add_done_callback(move |results| {
///         total.set(results.iter().map(|r| *r.as_ref().unwrap()).sum::<u64>());
///     });
///     let results = group.join();
///     assert_eq!(sum.get(), 6); // the callback ran before join returned
///     assert_eq!(results.len(), 3);
/// });
/// ```
pub fn gather<T, I>(handles: I) -> Gather<T>
where
    I: IntoIterator<Item = JoinHandle<T>>,
    T: 'static,
{
    let handles: Vec<JoinHandle<T>> = handles.into_iter().collect();
    let shared = Rc::new(Shared {
        slots: handles.iter().map(|h| Rc::clone(h.shared_slot())).collect(),
        remaining: Cell::new(handles.len()),
        callbacks: Cell::new(Vec::new()),
    });
    for h in &handles {
        let mine = Rc::clone(&shared);
        // Runs at once for a fiber that has finished already.
        h.add_done_callback(move |_| mine.one_done());
    }
    Gather { handles, shared }
}

impl<T> Gather<T> {
    /// Calls `f` with every fiber's result, in the order given to
    /// [`gather`], once all have finished; at once if they have.
    ///
    /// `f` runs where the last fiber's own done callbacks run (see
    /// [`JoinHandle::add_done_callback`]): on that fiber's stack, after
    /// its closure ended, its panic caught and reported there; or on the
    /// caller's stack if every fiber had finished already.
    ///
    /// # Examples
    ///
    /// ```
    /// spindle::run(|| {
    ///     let group = spindle::gather(vec![
    ///         spindle::spawn(|| "one"),
    ///         spindle::spawn(|| -> &str { panic!("two fails") }),
    ///     ]);
    ///     group.add_done_callback(|results| {
    ///         assert_eq!(results[0].as_ref().ok(), Some(&"one"));
    ///         assert!(results[1].as_ref().unwrap_err().is_panic());
    ///     });
    ///     group.join();
    /// });
    /// ```
    pub fn add_done_callback<F>(&self, f: F)
    where
        F: FnOnce(&[&Result<T, JoinError>]) + 'static,
    {
        if self.shared.remaining.get() == 0 {
            self.shared.call(Box::new(f));
        } else {
            let mut callbacks = self.shared.callbacks.take();
            callbacks.push(Box::new(f));
            self.shared.callbacks.set(callbacks);
        }
    }

    /// Whether every fiber has finished.
    ///
    /// # Examples
    ///
    /// ```
    /// spindle::run(|| {
    ///     let group = spindle::gather([spindle::spawn(|| 1)]);
    ///     assert!(!group.is_finished());
    ///     spindle::yield_now();
    ///     assert!(group.is_finished());
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.handles.iter().all(JoinHandle::is_finished)
    }

    /// Cancels every fiber of the group (see [`JoinHandle::cancel`]).
    ///
    /// # Examples
    ///
    /// ```
    /// spindle::run(|| {
    ///     let group = spindle::gather([spindle::spawn(|| spindle::sleep(std::time::Duration::from_secs(60)))]);
    ///     group.cancel();
    ///     assert!(group.join()[0].as_ref().unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn cancel(&self) {
        self.handles.iter().for_each(JoinHandle::cancel);
    }

    /// Waits for every fiber and returns their results in the order given
    /// (as [`join_all`](crate::join_all)); the group's callbacks have run
    /// when it returns.
    ///
    /// # Examples
    ///
    /// ```
    /// spindle::run(|| {
    ///     let group = spindle::gather((0..3).map(|i| spindle::spawn(move || i * 2)));
    ///     let values: Vec<i32> = group.join().into_iter().map(Result::unwrap).collect();
    ///     assert_eq!(values, [0, 2, 4]);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// As [`JoinHandle::join`]. If the caller is cancelled while it waits,
    /// the group's fibers are cancelled too.
    #[track_caller]
    pub fn join(self) -> Vec<Result<T, JoinError>> {
        let handles: Vec<Option<JoinHandle<T>>> = self.handles.into_iter().map(Some).collect();
        // Wait for all before taking any: the group's callbacks borrow every
        // result when the last fiber finishes.
        for h in handles.iter().flatten() {
            if h.is_finished() {
                continue;
            }
            let guard = CancelRest { handles: &handles };
            let p = Parker::current("spindle::Gather::join");
            let waited = wait_for(&p, &[h.slot()], None);
            std::mem::forget(guard);
            if let Waited::Interrupted = waited {
                break;
            }
        }
        handles
            .into_iter()
            .flatten()
            .map(|h| {
                if h.is_finished() {
                    h.take_result()
                } else {
                    Err(JoinError::Cancelled)
                }
            })
            .collect()
    }
}
