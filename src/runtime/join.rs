//! Joining: [`JoinHandle`], [`JoinError`], [`join_all`], [`wait_any`].
//!
//! ## The join slot
//!
//! Each task shares one `JoinSlot` (behind an `Rc`) between its root and
//! its [`JoinHandle`]: the task's id, name and waker, its result once it has
//! one, the *finish stamp* (0 while it runs, then the runtime's count of
//! finished tasks at the moment it finished — so stamps order finishes), and
//! the waker of at most one fiber waiting for it. The root writes the result,
//! stamps the slot and wakes the waiter; a joiner registers itself as the
//! waiter and parks until the stamp is set. The slot outlives the task, so
//! joining a finished task needs no scheduler at all.
//!
//! ## Done callbacks
//!
//! The slot also keeps the callbacks of [`JoinHandle::add_done_callback`].
//! The root runs them on the finishing fiber's own stack, after storing the
//! result and before stamping the slot: so a callback sees the result by
//! reference, may itself park (it is ordinary fiber code), and a joiner
//! only wakes once every callback has run. A callback that panics is caught
//! there (the panic hook has printed it, as for any panic); the others
//! still run and the result is unchanged. A callback added once the slot is
//! stamped runs at once, on the caller's stack.
//!
//! All of it is single-threaded (`Cell`s in an `Rc`): a handle stays on the
//! thread of its runtime, like the fiber it names.

use std::any::Any;
use std::cell::{Cell, Ref, RefCell};
use std::error::Error;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use super::task::{Interrupted, TaskId, TaskState, WaitingOn};
use super::wait::{LocalWaker, Parker};

/// Why [`JoinHandle::join`] has no value for you.
///
/// # Examples
///
/// ```
/// use spindle::JoinError;
///
/// spindle::run(|| {
///     let h = spindle::spawn(|| -> u32 { panic!("boom") });
///     match h.join() {
///         Err(e @ JoinError::Panicked(_)) => {
///             assert_eq!(*e.into_panic().downcast::<&str>().unwrap(), "boom")
///         }
///         other => panic!("unexpected {other:?}"),
///     }
/// });
/// ```
pub enum JoinError {
    /// The fiber panicked; this is the payload (what `std::thread`'s join
    /// returns as its error).
    Panicked(Box<dyn Any + Send + 'static>),
    /// The fiber was cancelled ([`JoinHandle::cancel`], [`timeout`](crate::timeout),
    /// or the runtime shutting down) before it finished.
    Cancelled,
}

impl JoinError {
    /// The panic payload, to inspect or to re-raise with
    /// [`std::panic::resume_unwind`].
    ///
    /// # Panics
    ///
    /// If the error is [`JoinError::Cancelled`].
    #[track_caller]
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        match self {
            JoinError::Panicked(p) => p,
            JoinError::Cancelled => {
                panic!("JoinError::into_panic called on a cancelled fiber's error")
            }
        }
    }

    /// Whether the fiber was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, JoinError::Cancelled)
    }

    /// Whether the fiber panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked(_))
    }

    /// The panic message, when the payload is a string (as `panic!` makes).
    fn message(&self) -> Option<&str> {
        match self {
            JoinError::Panicked(p) => p
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(String::as_str)),
            JoinError::Cancelled => None,
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(_) => match self.message() {
                Some(m) => f.debug_tuple("Panicked").field(&m).finish(),
                None => f
                    .debug_tuple("Panicked")
                    .field(&"<non-string payload>")
                    .finish(),
            },
            JoinError::Cancelled => f.write_str("Cancelled"),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self, self.message()) {
            (JoinError::Panicked(_), Some(m)) => write!(f, "fiber panicked: {m}"),
            (JoinError::Panicked(_), None) => f.write_str("fiber panicked"),
            (JoinError::Cancelled, _) => f.write_str("fiber was cancelled"),
        }
    }
}

impl Error for JoinError {}

/// What a task and its handle share; see the [module docs](self).
pub(crate) struct JoinSlot<T> {
    id: TaskId,
    name: Option<Arc<str>>,
    task: Cell<Option<LocalWaker>>,
    finished: Cell<u64>,
    waiter: Cell<Option<LocalWaker>>,
    result: RefCell<Option<Result<T, JoinError>>>,
    callbacks: Cell<Vec<DoneCallback<T>>>,
}

/// A callback of [`JoinHandle::add_done_callback`], boxed.
pub(crate) type DoneCallback<T> = Box<dyn FnOnce(&Result<T, JoinError>)>;

impl<T> JoinSlot<T> {
    pub(crate) fn new(id: TaskId, name: Option<Arc<str>>) -> JoinSlot<T> {
        JoinSlot {
            id,
            name,
            task: Cell::new(None),
            finished: Cell::new(0),
            waiter: Cell::new(None),
            result: RefCell::new(None),
            callbacks: Cell::new(Vec::new()),
        }
    }

    pub(crate) fn set_task(&self, task: LocalWaker) {
        self.task.set(Some(task));
    }

    /// The task's id and name, as reports write them (`fiber 'name' (7)`).
    pub(crate) fn who(&self) -> String {
        match &self.name {
            Some(n) => format!("fiber '{n}' ({})", self.id),
            None => format!("fiber {}", self.id),
        }
    }

    /// The task, as its runtime names it.
    pub(crate) fn task(&self) -> LocalWaker {
        self.task
            .get()
            .expect("a spawned task's slot has its waker")
    }

    /// Called by the task's root (`me`) with its outcome: stores it, stamps
    /// the slot and wakes the waiter.
    /// Runs the done callbacks first, on the caller's (the finishing
    /// fiber's) stack, then `before_stamp`; see the [module docs](self).
    pub(crate) fn complete(
        &self,
        me: &Parker,
        result: Result<T, JoinError>,
        before_stamp: impl FnOnce(),
    ) {
        self.complete_with(result, before_stamp, |waiter| me.finish(waiter));
    }

    /// [`complete`](Self::complete), with `finish` counting the task as
    /// finished (and waking the waiter it is given): for a task that ends
    /// without having started, on the scheduler's stack.
    pub(crate) fn complete_with(
        &self,
        result: Result<T, JoinError>,
        before_stamp: impl FnOnce(),
        finish: impl FnOnce(Option<LocalWaker>) -> u64,
    ) {
        *self.result.borrow_mut() = Some(result);
        loop {
            // A callback may add another (through a handle it reaches):
            // those run in this loop too, before the stamp.
            let callbacks = self.callbacks.take();
            if callbacks.is_empty() {
                break;
            }
            for callback in callbacks {
                let result = self.result();
                // The payload is dropped: the hook has reported the panic,
                // and the fiber's result is not the callback's.
                let _ = panic::catch_unwind(AssertUnwindSafe(|| callback(&result)));
            }
        }
        before_stamp();
        self.finished.set(finish(self.waiter.take()));
    }

    /// Adds a done callback; runs it at once (on the caller's stack, its
    /// panic propagating) if the slot is stamped already.
    pub(crate) fn on_done(&self, callback: DoneCallback<T>) {
        if self.is_finished() {
            callback(&self.result());
        } else {
            let mut callbacks = self.callbacks.take();
            callbacks.push(callback);
            self.callbacks.set(callbacks);
        }
    }

    /// The result, once the root has stored it and until the handle takes
    /// it.
    ///
    /// # Panics
    ///
    /// If there is none.
    pub(crate) fn result(&self) -> Ref<'_, Result<T, JoinError>> {
        Ref::map(self.result.borrow(), |r| {
            r.as_ref()
                .expect("a finished fiber's result is there until joined")
        })
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.finished.get() != 0
    }
}

/// How [`wait_for`] ended.
pub(crate) enum Waited {
    /// At least one of the slots has finished.
    Finished,
    /// The deadline passed first.
    TimedOut,
    /// The runtime is shutting down and the caller is unwinding.
    Interrupted,
}

/// Clears this fiber from the waiter field of each slot it registered in.
struct Registration<'a, T> {
    slots: &'a [&'a JoinSlot<T>],
    me: LocalWaker,
}

impl<T> Drop for Registration<'_, T> {
    fn drop(&mut self) {
        for slot in self.slots {
            if slot.waiter.get() == Some(self.me) {
                slot.waiter.set(None);
            }
        }
    }
}

/// Parks the running fiber `p` until one of `slots` has finished or
/// `deadline` passes.
///
/// # Panics
///
/// As a cancellation point.
#[inline(always)]
pub(crate) fn wait_for<T>(p: &Parker, slots: &[&JoinSlot<T>], deadline: Option<Instant>) -> Waited {
    if let Err(Interrupted) = p.checkpoint() {
        return Waited::Interrupted;
    }
    if slots.iter().any(|sl| sl.is_finished()) {
        return Waited::Finished;
    }
    let me = p.waker();
    for slot in slots {
        assert!(slot.task.get() != Some(me), "a fiber cannot join itself");
        assert!(
            slot.waiter.get().is_none(),
            "a fiber is already waiting for fiber {}",
            slot.id
        );
    }
    for slot in slots {
        slot.waiter.set(Some(me));
    }
    let _registration = Registration { slots, me };
    let timer = deadline.map(|d| p.timer(d));
    let waiting_on = slots
        .first()
        .map_or(WaitingOn::Nothing, |sl| WaitingOn::Task(sl.id));
    if let [slot] = slots {
        // Waiting for one fiber that has not started: it runs next.
        slot.task().hand_off_if_unstarted();
    }
    loop {
        if p.park_in(TaskState::WaitingJoin, waiting_on).is_err() {
            return Waited::Interrupted;
        }
        if slots.iter().any(|sl| sl.is_finished()) {
            return Waited::Finished;
        }
        if timer.as_ref().is_some_and(|t| t.fired()) {
            return Waited::TimedOut;
        }
    }
}

/// An owned permission to join a fiber (std's `thread::JoinHandle`).
///
/// # Examples
///
/// ```
/// spindle::run(|| {
///     let h = spindle::spawn(|| "done");
///     assert!(!h.is_finished());
///     assert_eq!(h.join().unwrap(), "done");
/// });
/// ```
///
/// # Dropping
///
/// Dropping a handle detaches the fiber: it runs on, and its result is
/// dropped when it finishes (std's behaviour, not asyncio's).
///
/// # `Send`
///
/// A handle is not `Send`: it names a fiber of this thread's runtime.
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// spindle::run(|| assert_send(spindle::spawn(|| ())));
/// ```
pub struct JoinHandle<T> {
    slot: Rc<JoinSlot<T>>,
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.slot.id)
            .field("name", &self.slot.name)
            .field("finished", &self.slot.is_finished())
            .finish()
    }
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(slot: Rc<JoinSlot<T>>) -> JoinHandle<T> {
        JoinHandle { slot }
    }

    pub(crate) fn slot(&self) -> &JoinSlot<T> {
        &self.slot
    }

    /// Waits for the fiber to finish and returns its result. Other fibers
    /// run meanwhile.
    ///
    /// # Examples
    ///
    /// ```
    /// spindle::run(|| {
    ///     let h = spindle::spawn(|| {
    ///         spindle::sleep(std::time::Duration::from_millis(1));
    ///         7
    ///     });
    ///     assert_eq!(h.join().unwrap(), 7);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// If the fiber has not finished and the caller is not a fiber of a
    /// runtime; and as a cancellation point, if the caller is cancelled
    /// while it waits (the joined fiber is not affected).
    ///
    /// # Errors
    ///
    /// [`JoinError::Panicked`] with the payload if the fiber panicked,
    /// [`JoinError::Cancelled`] if it was cancelled.
    #[track_caller]
    #[inline]
    pub fn join(self) -> Result<T, JoinError> {
        if !self.slot.is_finished() {
            let p = Parker::current("JoinHandle::join");
            let waited = wait_for(&p, &[&*self.slot], None);
            if let Waited::Interrupted = waited {
                return Err(JoinError::Cancelled);
            }
        }
        self.take_result()
    }

    pub(crate) fn take_result(&self) -> Result<T, JoinError> {
        self.slot
            .result
            .borrow_mut()
            .take()
            .expect("a finished fiber's result is taken only once, by its handle")
    }

    /// Cancels the fiber (asyncio's `Task.cancel`): if it is parked (asleep,
    /// joining, waiting on an fd or a blocking call) it wakes at once, and
    /// its suspension point unwinds it; if it is ready, it unwinds when it
    /// resumes; if it has not started, its closure never runs; if it is the
    /// caller, its next suspension point unwinds it. Destructors run on the
    /// way out, and its joiner sees [`JoinError::Cancelled`].
    ///
    /// Cancelling a finished fiber does nothing. The unwind prints nothing
    /// (it is not a panic). A fiber may catch it (`catch_unwind`) and go on;
    /// its later suspension points then behave normally until it is
    /// cancelled again.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// spindle::run(|| {
    ///     let h = spindle::spawn(|| spindle::sleep(Duration::from_secs(3600)));
    ///     spindle::yield_now();
    ///     h.cancel();
    ///     assert!(h.join().unwrap_err().is_cancelled());
    /// });
    /// ```
    pub fn cancel(&self) {
        if self.slot.is_finished() {
            return;
        }
        if let Some(task) = self.slot.task.get() {
            task.cancel();
        }
    }

    /// Whether the fiber has finished (returned, panicked or been
    /// cancelled); [`join`](Self::join) then returns without waiting.
    pub fn is_finished(&self) -> bool {
        self.slot.is_finished()
    }

    /// Calls `f` with the fiber's result when it finishes (asyncio's
    /// `Task.add_done_callback`): returned, panicked or cancelled. The
    /// result stays in the handle for [`join`](Self::join).
    ///
    /// # Where and when `f` runs
    ///
    /// - If the fiber has not finished, `f` runs **on the finishing fiber's
    ///   own stack**, right after its closure returned or unwound and
    ///   before its joiner wakes; callbacks run in the order they were
    ///   added. So `f` runs on the fiber's runtime (and, in a multi-worker
    ///   runtime, on the fiber's worker thread: fibers never migrate), it
    ///   may park like any fiber code, and a `join` returns only after
    ///   every callback has run.
    /// - If the fiber has already finished, `f` runs at once, on the
    ///   caller's stack.
    /// - If the fiber never finishes (its runtime was dropped from inside
    ///   another runtime, which leaks its fibers), `f` is never called.
    ///
    /// # Panics in `f`
    ///
    /// A callback that runs on the finishing fiber and panics is caught
    /// there: the panic hook has already printed it (as for any panic), the
    /// payload is dropped, the other callbacks still run, and the fiber's
    /// result is unchanged. It never reaches the scheduler. A callback
    /// that runs at once panics in the caller, as any call would.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    ///
    /// spindle::run(|| {
    ///     let seen = Rc::new(RefCell::new(Vec::new()));
    ///     let h = spindle::spawn(|| 7);
    ///     let log = Rc::clone(&seen);
    ///     h.add_done_callback(move |r| log.borrow_mut().push(*r.as_ref().unwrap()));
    ///     assert_eq!(h.join().unwrap(), 7); // the result is still there
    ///     assert_eq!(*seen.borrow(), [7]); // and the callback ran before join returned
    /// });
    /// ```
    pub fn add_done_callback<F>(&self, f: F)
    where
        F: FnOnce(&Result<T, JoinError>) + 'static,
    {
        self.slot.on_done(Box::new(f));
    }

    pub(crate) fn shared_slot(&self) -> &Rc<JoinSlot<T>> {
        &self.slot
    }

    /// The fiber's id.
    pub fn id(&self) -> TaskId {
        self.slot.id
    }

    /// The fiber's name, if it was given one.
    pub fn name(&self) -> Option<&str> {
        self.slot.name.as_deref()
    }
}

/// Cancels the fibers still in `handles` when dropped: how [`join_all`] and
/// [`wait_any`] take their fibers down with them if the caller unwinds out
/// of a wait. A wait that returns disarms it (`mem::forget`), so only an
/// unwind drops it. (`thread::panicking` cannot tell: it is per thread, and
/// another fiber may be parked in the middle of an unwind.)
pub(crate) struct CancelRest<'a, T> {
    pub(crate) handles: &'a [Option<JoinHandle<T>>],
}

impl<T> Drop for CancelRest<'_, T> {
    fn drop(&mut self) {
        for h in self.handles.iter().flatten() {
            h.cancel();
        }
    }
}

/// Waits for every fiber and returns their results in the order given
/// (asyncio's `gather(..., return_exceptions=True)`): a panic or a
/// cancellation is one element's `Err`, and does not disturb the others.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// spindle::run(|| {
///     let hs = vec![
///         spindle::spawn(|| { spindle::sleep(Duration::from_millis(3)); 1 }),
///         spindle::spawn(|| -> i32 { panic!("second fails") }),
///         spindle::spawn(|| 3),
///     ];
///     let results = spindle::join_all(hs);
///     assert_eq!(results[0].as_ref().ok(), Some(&1));
///     assert!(results[1].as_ref().unwrap_err().is_panic());
///     assert_eq!(results[2].as_ref().ok(), Some(&3));
/// });
/// ```
///
/// # Panics
///
/// As [`JoinHandle::join`]. If the caller is cancelled while it waits, the
/// fibers it has not collected yet are cancelled too (as asyncio's
/// `gather` does).
#[track_caller]
pub fn join_all<T, I>(handles: I) -> Vec<Result<T, JoinError>>
where
    I: IntoIterator<Item = JoinHandle<T>>,
{
    let mut handles: Vec<Option<JoinHandle<T>>> = handles.into_iter().map(Some).collect();
    let mut results = Vec::with_capacity(handles.len());
    for i in 0..handles.len() {
        let h = handles[i].as_ref().expect("each handle is taken once");
        if !h.is_finished() {
            let guard = CancelRest { handles: &handles };
            let p = Parker::current("spindle::join_all");
            let waited = wait_for(&p, &[h.slot()], None);
            std::mem::forget(guard);
            if let Waited::Interrupted = waited {
                results.push(Err(JoinError::Cancelled));
                handles[i] = None;
                continue;
            }
        }
        let h = handles[i].take().expect("each handle is taken once");
        results.push(h.take_result());
    }
    results
}

/// Waits for the first of several fibers to finish (`futures`'
/// `select_all`): returns its index in `handles`, its result, and the other
/// handles in their original order.
///
/// If several have finished by the time the caller runs, the one that
/// finished first wins.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// spindle::run(|| {
///     let slow = spindle::spawn(|| { spindle::sleep(Duration::from_millis(50)); "slow" });
///     let fast = spindle::spawn(|| { spindle::sleep(Duration::from_millis(1)); "fast" });
///     let (index, result, rest) = spindle::wait_any(vec![slow, fast]);
///     assert_eq!((index, result.unwrap()), (1, "fast"));
///     assert_eq!(rest.len(), 1);
///     rest.into_iter().for_each(|h| h.cancel());
/// });
/// ```
///
/// # Panics
///
/// If `handles` is empty; otherwise as [`JoinHandle::join`]. If the caller
/// is cancelled while it waits, all the fibers are cancelled too.
#[track_caller]
pub fn wait_any<T>(
    handles: Vec<JoinHandle<T>>,
) -> (usize, Result<T, JoinError>, Vec<JoinHandle<T>>) {
    assert!(
        !handles.is_empty(),
        "spindle::wait_any needs at least one handle"
    );
    let mut handles: Vec<Option<JoinHandle<T>>> = handles.into_iter().map(Some).collect();
    let first_finished = |hs: &[Option<JoinHandle<T>>]| {
        hs.iter()
            .enumerate()
            .filter_map(|(i, h)| {
                let f = h.as_ref()?.slot.finished.get();
                (f != 0).then_some((f, i))
            })
            .min()
            .map(|(_, i)| i)
    };
    let index = match first_finished(&handles) {
        Some(i) => i,
        None => {
            {
                let guard = CancelRest { handles: &handles };
                let slots: Vec<&JoinSlot<T>> = handles.iter().flatten().map(|h| h.slot()).collect();
                wait_for(&Parker::current("spindle::wait_any"), &slots, None);
                std::mem::forget(guard);
            }
            match first_finished(&handles) {
                Some(i) => i,
                // Shutting down while unwinding: report the first as cancelled.
                None => {
                    let rest = handles.into_iter().skip(1).flatten().collect();
                    return (0, Err(JoinError::Cancelled), rest);
                }
            }
        }
    };
    let winner = handles[index].take().expect("present");
    let result = winner.take_result();
    (index, result, handles.into_iter().flatten().collect())
}

/// Re-raises a fiber's panic in the caller, or returns its value.
pub(crate) fn unwrap_or_resume<T>(result: Result<T, JoinError>) -> Result<T, ()> {
    match result {
        Ok(v) => Ok(v),
        Err(JoinError::Panicked(p)) => panic::resume_unwind(p),
        Err(JoinError::Cancelled) => Err(()),
    }
}
