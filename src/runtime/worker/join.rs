//! [`SendJoinHandle`]: the handle of a fiber placed on a worker, usable
//! from any worker's fibers and from plain threads.
//!
//! ## The shared slot
//!
//! The handle and the fiber share one `Arc<JoinShared>`: the fiber's id,
//! name and worker, that worker's inbox, and under a mutex the result, the
//! `finished` flag, the fiber's key (once the worker has created it), a
//! cancel asked for before that, and the waker of at most one joining
//! fiber. The fiber's closure owns a [`Completer`]: it stores the outcome
//! when the closure ends, and, if the closure is dropped without ever
//! running (the fiber was cancelled before it started, or never created),
//! stores `Cancelled` from its destructor. So every placed fiber finishes
//! its slot exactly once.
//!
//! A joiner on a fiber registers a [`RemoteWaker`] of its own and parks; a
//! plain thread sets `blocked` and waits on the condition variable. The
//! completer sets the result, notifies the condition variable if a thread
//! is blocked, and wakes the registered fiber (through its worker's inbox).

use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::runtime::driver::{Message, Remote, RemoteWaker};
use crate::runtime::join::JoinError;
use crate::runtime::task::{Key, TaskId, TaskState, WaitingOn};
use crate::runtime::wait::{self, Parker};

/// What a placed fiber and its handle share; see the [module docs](self).
pub(super) struct JoinShared<T> {
    id: TaskId,
    name: Option<Arc<str>>,
    worker: usize,
    remote: Arc<Remote>,
    state: Mutex<JoinState<T>>,
    done: Condvar,
}

struct JoinState<T> {
    result: Option<Result<T, JoinError>>,
    finished: bool,
    key: Option<Key>,
    cancel: bool,
    waiter: Option<RemoteWaker>,
    /// A plain thread waits on `done` (set before it waits): only then does
    /// the completer notify it, which is a system call even with nobody
    /// waiting (one per placed fiber, 10,000 for as many sleepers).
    blocked: bool,
}

impl<T> JoinShared<T> {
    pub(super) fn new(
        id: TaskId,
        name: Option<Arc<str>>,
        worker: usize,
        remote: Arc<Remote>,
    ) -> JoinShared<T> {
        JoinShared {
            id,
            name,
            worker,
            remote,
            state: Mutex::new(JoinState {
                result: None,
                finished: false,
                key: None,
                cancel: false,
                waiter: None,
                blocked: false,
            }),
            done: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, JoinState<T>> {
        // Nothing panics while holding the lock; a poisoned one still holds
        // consistent data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called on the fiber's worker once the fiber exists: records its key,
    /// and returns whether a cancel was asked for meanwhile.
    pub(super) fn created(&self, key: Key) -> bool {
        let mut st = self.lock();
        st.key = Some(key);
        st.cancel
    }
}

/// Finishes a [`JoinShared`] exactly once; see the [module docs](self).
pub(super) struct Completer<T> {
    shared: Option<Arc<JoinShared<T>>>,
}

impl<T> Completer<T> {
    pub(super) fn new(shared: Arc<JoinShared<T>>) -> Completer<T> {
        Completer {
            shared: Some(shared),
        }
    }

    /// Stores the fiber's outcome and wakes whoever joins.
    pub(super) fn complete(mut self, result: Result<T, JoinError>) {
        self.finish(result);
    }

    fn finish(&mut self, result: Result<T, JoinError>) {
        let Some(shared) = self.shared.take() else {
            return;
        };
        let (waiter, blocked) = {
            let mut st = shared.lock();
            st.result = Some(result);
            st.finished = true;
            (st.waiter.take(), st.blocked)
        };
        // `blocked` was read under the lock: a thread that sets it later
        // sees `finished` first and does not wait.
        if blocked {
            shared.done.notify_all();
        }
        if let Some(w) = waiter {
            wait::wake(&w);
        }
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        self.finish(Err(JoinError::Cancelled));
    }
}

/// The handle of a fiber placed with [`spawn_on`](crate::spawn_on) or
/// [`spawn_balanced`](crate::spawn_balanced): like
/// [`JoinHandle`](crate::JoinHandle), but `Send`, so it may be joined,
/// cancelled or polled from a fiber of any worker, or from a plain thread
/// (which then blocks).
///
/// # Examples
///
/// ```
/// let rt = spindle::Runtime::builder().workers(2).build()?;
/// let v = rt.block_on(|| {
///     let h = spindle::spawn_on(1, || 6 * 7);
///     // Joined from a plain thread, which blocks until the fiber is done.
///     std::thread::spawn(move || h.join().unwrap()).join().unwrap()
/// });
/// assert_eq!(v, 42);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Dropping
///
/// Dropping the handle detaches the fiber, as with `JoinHandle`.
///
/// # `Send`
///
/// `Send` (and `Sync`) whenever the result is `Send`.
///
/// ```
/// fn assert_send_sync<T: Send + Sync>() {}
/// assert_send_sync::<spindle::SendJoinHandle<String>>();
/// ```
pub struct SendJoinHandle<T> {
    shared: Arc<JoinShared<T>>,
}

impl<T> fmt::Debug for SendJoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendJoinHandle")
            .field("id", &self.shared.id)
            .field("name", &self.shared.name)
            .field("worker", &self.shared.worker)
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Clears the joiner's waker on every way out of a join.
struct Registration<'a, T>(&'a JoinShared<T>);

impl<T> Drop for Registration<'_, T> {
    fn drop(&mut self) {
        let waiter = self.0.lock().waiter.take();
        drop(waiter);
    }
}

impl<T> SendJoinHandle<T> {
    pub(super) fn new(shared: Arc<JoinShared<T>>) -> SendJoinHandle<T> {
        SendJoinHandle { shared }
    }

    /// Waits for the fiber to finish and returns its result: a fiber
    /// caller parks (other fibers of its worker run meanwhile), any other
    /// caller blocks its thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = spindle::Runtime::builder().workers(2).build()?;
    /// rt.block_on(|| {
    ///     let h = spindle::spawn_on(1, || -> u8 { panic!("remote boom") });
    ///     let payload = h.join().unwrap_err().into_panic();
    ///     assert_eq!(*payload.downcast::<&str>().unwrap(), "remote boom");
    /// });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Panics
    ///
    /// As a cancellation point, when a fiber calls it and is cancelled
    /// while it waits (the joined fiber is not affected).
    ///
    /// # Errors
    ///
    /// [`JoinError::Panicked`] with the payload if the fiber panicked,
    /// [`JoinError::Cancelled`] if it was cancelled (or its worker could not
    /// create it: no stack; or the runtime was shutting down).
    #[track_caller]
    pub fn join(self) -> Result<T, JoinError> {
        let shared = &*self.shared;
        match Parker::try_current() {
            Some(p) => {
                if p.checkpoint().is_err() {
                    return Err(JoinError::Cancelled);
                }
                let _registration = Registration(shared);
                loop {
                    {
                        let mut st = shared.lock();
                        if st.finished {
                            return st.result.take().expect("a result is taken once");
                        }
                        if st.waiter.is_none() {
                            st.waiter = Some(p.remote_waker());
                        }
                    }
                    if p.park_in(TaskState::WaitingJoin, WaitingOn::Task(shared.id))
                        .is_err()
                    {
                        return Err(JoinError::Cancelled);
                    }
                }
            }
            None => {
                let mut st = shared.lock();
                while !st.finished {
                    st.blocked = true;
                    st = shared.done.wait(st).unwrap_or_else(PoisonError::into_inner);
                }
                st.result.take().expect("a result is taken once")
            }
        }
    }

    /// Cancels the fiber, wherever it runs (see
    /// [`JoinHandle::cancel`](crate::JoinHandle::cancel) for what that
    /// does): the cancel travels to its worker's inbox; a fiber not created
    /// yet is born cancelled, and its closure never runs.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = spindle::Runtime::builder().workers(2).build()?;
    /// rt.block_on(|| {
    ///     let h = spindle::spawn_on(1, || spindle::sleep(Duration::from_secs(3600)));
    ///     h.cancel();
    ///     assert!(h.join().unwrap_err().is_cancelled());
    /// });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn cancel(&self) {
        let mut st = self.shared.lock();
        if st.finished {
            return;
        }
        match st.key {
            Some(key) => {
                drop(st);
                self.shared.remote.send(Message::Cancel(key));
            }
            None => st.cancel = true,
        }
    }

    /// Whether the fiber has finished (returned, panicked or been
    /// cancelled).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = spindle::Runtime::builder().workers(2).build()?;
    /// rt.block_on(|| {
    ///     let h = spindle::spawn_on(1, || 1);
    ///     while !h.is_finished() {
    ///         spindle::yield_now();
    ///     }
    ///     assert_eq!(h.join().unwrap(), 1);
    /// });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_finished(&self) -> bool {
        self.shared.lock().finished
    }

    /// The fiber's id.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = spindle::Runtime::builder().workers(2).build()?;
    /// rt.block_on(|| {
    ///     let h = spindle::spawn_on(1, || spindle::current().id());
    ///     let id = h.id();
    ///     assert_eq!(h.join().unwrap(), id);
    /// });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn id(&self) -> TaskId {
        self.shared.id
    }

    /// The fiber's name, if it was given one.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = spindle::Runtime::builder().workers(2).build()?;
    /// rt.block_on(|| {
    ///     let h = spindle::Builder::new().name("w1".into()).worker(1).spawn(|| ()).unwrap();
    ///     assert_eq!(h.name(), Some("w1"));
    /// });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.shared.name.as_deref()
    }

    /// The worker the fiber runs on.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = spindle::Runtime::builder().workers(2).build()?;
    /// rt.block_on(|| assert_eq!(spindle::spawn_on(1, || ()).worker(), 1));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn worker(&self) -> usize {
        self.shared.worker
    }
}
