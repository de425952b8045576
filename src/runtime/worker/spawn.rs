//! Placement at spawn: [`spawn_on`], [`spawn_balanced`], and
//! [`Builder::worker`] / [`Builder::balanced`].
//!
//! The closure travels to its worker (unless that is the caller's own) as
//! a `Run` message of the worker's inbox; the worker creates the fiber
//! between two rounds with the local [`Builder`], records its key in the
//! shared slot (so that a cancel can reach it), and from then on the fiber
//! is an ordinary fiber of that worker.

use std::io;
use std::panic::{self, AssertUnwindSafe, Location};
use std::sync::Arc;

use crate::runtime::driver::Message;
use crate::runtime::join::JoinError;
use crate::runtime::spawn::Builder;
use crate::runtime::task::{CancelUnwind, TaskId};

use super::join::{Completer, JoinShared, SendJoinHandle};
use super::with_worker;

/// Where a placed fiber goes.
#[derive(Clone, Copy, Debug)]
enum Place {
    Worker(usize),
    Balanced,
}

/// A [`Builder`] with a placement: made by [`Builder::worker`] or
/// [`Builder::balanced`].
///
/// # Examples
///
/// ```
/// let rt = spindle::Runtime::builder().workers(2).build()?;
/// rt.block_on(|| -> std::io::Result<()> {
///     let h = spindle::Builder::new()
///         .name("cruncher".into())
///         .stack_size(64 * 1024)
///         .balanced()
///         .spawn(|| spindle::current_worker())?;
///     assert!(h.join().unwrap() < 2);
///     Ok(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct PlacedBuilder {
    builder: Builder,
    place: Place,
}

impl Builder {
    /// Places the fiber on worker `worker` (see [`spawn_on`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = spindle::Runtime::builder().workers(2).build()?;
    /// rt.block_on(|| {
    ///     let h = spindle::Builder::new().worker(1).spawn(spindle::current_worker).unwrap();
    ///     assert_eq!(h.join().unwrap(), 1);
    /// });
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn worker(self, worker: usize) -> PlacedBuilder {
        PlacedBuilder {
            builder: self,
            place: Place::Worker(worker),
        }
    }

    /// Places the fiber on the worker with the fewest live fibers (see
    /// [`spawn_balanced`]).
    ///
    /// # Examples
    ///
    /// See [`PlacedBuilder`].
    pub fn balanced(self) -> PlacedBuilder {
        PlacedBuilder {
            builder: self,
            place: Place::Balanced,
        }
    }
}

impl PlacedBuilder {
    /// Spawns `f` in a new fiber on the chosen worker.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] if the worker does not exist. A
    /// fiber placed on the caller's own worker is created at once, and bad
    /// stack arguments are returned here; on another worker it is created
    /// there. Either way the fiber takes its stack at its first resume, and
    /// if none can be had then (or, on another worker, the stack arguments
    /// are bad) it does not run: its handle's `join` says
    /// [`JoinError::Cancelled`], and the panic hook reports the stack's
    /// error naming the fiber.
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<SendJoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let at = Location::caller();
        with_worker("spindle::PlacedBuilder::spawn", |here, workers| {
            let worker = match self.place {
                Place::Worker(w) if w < workers.len() => w,
                Place::Worker(w) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("spindle: no worker {w} (the runtime has {})", workers.len()),
                    ))
                }
                Place::Balanced => workers.balanced(),
            };
            let id = TaskId::next();
            let name = self.builder.name_ref().map(Arc::<str>::from);
            let remote = Arc::clone(workers.remote(worker));
            let shared = Arc::new(JoinShared::new(id, name, worker, remote));
            let handle = SendJoinHandle::new(Arc::clone(&shared));
            let completer = Completer::new(Arc::clone(&shared));
            let builder = self.builder.with_id(id);
            let body = move || {
                let result = match panic::catch_unwind(AssertUnwindSafe(f)) {
                    Ok(v) => Ok(v),
                    Err(p) if p.is::<CancelUnwind>() => Err(JoinError::Cancelled),
                    Err(p) => Err(JoinError::Panicked(p)),
                };
                completer.complete(result);
            };
            if worker == here {
                let h = builder.spawn_at(body, at)?;
                if shared.created(h.slot().task().key()) {
                    h.cancel();
                }
                return Ok(handle);
            }
            let theirs = Arc::clone(workers);
            let job = move || {
                if theirs.stopping() {
                    return; // dropping `body` reports its fiber cancelled
                }
                // Bad stack arguments (an error), or later no stack at its
                // first resume: `body` is dropped unrun, which reports the
                // fiber cancelled.
                if let Ok(h) = builder.spawn_at(body, at) {
                    if shared.created(h.slot().task().key()) {
                        h.cancel();
                    }
                }
            };
            workers.remote(worker).send(Message::Run(Box::new(job)));
            Ok(handle)
        })
    }
}

/// Runs `f` in a new fiber on worker `worker` (0 is the main fiber's) and
/// returns its `Send` handle. The fiber is created on that worker and runs
/// there until it ends.
///
/// # Examples
///
/// ```
/// let rt = spindle::Runtime::builder().workers(2).build()?;
/// let ids = rt.block_on(|| {
///     let here = std::thread::current().id();
///     let there = spindle::spawn_on(1, || std::thread::current().id()).join().unwrap();
///     (here, there)
/// });
/// assert_ne!(ids.0, ids.1); // another worker is another thread
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Panics
///
/// Outside a runtime, if `worker` is not below [`worker_count`](crate::worker_count),
/// and if the runtime's stack settings cannot hold the closure of a fiber
/// placed on the caller's own worker (use [`Builder::worker`] to get these
/// as errors).
#[track_caller]
pub fn spawn_on<F, T>(worker: usize, f: F) -> SendJoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match Builder::new().worker(worker).spawn(f) {
        Ok(h) => h,
        Err(e) => panic!("spindle::spawn_on: {e}"),
    }
}

/// Runs `f` in a new fiber on the worker with the fewest live fibers (those
/// it runs plus the spawns on their way to it; ties go round robin) and
/// returns its `Send` handle.
///
/// # Examples
///
/// ```
/// let rt = spindle::Runtime::builder().workers(2).build()?;
/// let workers = rt.block_on(|| {
///     let hs: Vec<_> = (0..4)
///         .map(|_| spindle::spawn_balanced(|| {
///             spindle::sleep(std::time::Duration::from_millis(20));
///             spindle::current_worker()
///         }))
///         .collect();
///     hs.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
/// });
/// assert!(workers.contains(&0) && workers.contains(&1));
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Panics
///
/// Outside a runtime, and as [`spawn_on`] when the chosen worker is the
/// caller's.
#[track_caller]
pub fn spawn_balanced<F, T>(f: F) -> SendJoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match Builder::new().balanced().spawn(f) {
        Ok(h) => h,
        Err(e) => panic!("spindle::spawn_balanced: {e}"),
    }
}
