//! Blocking offload: [`spawn_blocking`] runs a closure on a helper thread
//! while the calling fiber parks.
//!
//! The helper thread wakes the fiber through a
//! [`RemoteWaker`](super::driver::RemoteWaker) (the scheduler's eventfd; see
//! `driver/remote.rs`), and the fiber takes the result from a shared slot.
//!
//! ## The helper pool
//!
//! One pool per process, started on first use: at most
//! [`MAX_BLOCKING_THREADS`] threads named `spindle-blocking`, each exiting
//! after [`KEEP_ALIVE`] without work. Jobs wait in a FIFO queue when every
//! thread is busy.
//!
//! The queue has no bound of its own: every job in it has a caller parked
//! in [`spawn_blocking`], so it holds at most one job per waiting fiber.
//! A caller that stops waiting (it is cancelled) takes its job out of the
//! queue if no thread has started it (the closure is dropped unrun, on the
//! caller's thread), so abandoned work never piles up or runs for nobody.
//! A job already running cannot be stopped: it runs to its end and its
//! result is dropped on the helper thread.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::Duration;

use super::task::{TaskState, WaitingOn};
use super::wait::Parker;

/// Most helper threads the pool runs at once.
pub const MAX_BLOCKING_THREADS: usize = 64;
/// How long an idle helper thread waits for work before it exits.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// A queued closure, and its number (to withdraw it).
struct Job {
    id: u64,
    run: Box<dyn FnOnce() + Send>,
}

struct Pool {
    state: Mutex<PoolState>,
    work: Condvar,
}

struct PoolState {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
    /// The number of the next job.
    next_id: u64,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(PoolState {
            jobs: VecDeque::new(),
            threads: 0,
            idle: 0,
            next_id: 0,
        }),
        work: Condvar::new(),
    })
}

impl Pool {
    /// Queues `run`, starting a thread if none is idle and the cap allows;
    /// returns the job's number. Gives the closure back if no thread exists
    /// to run it (the OS refused to start one): the caller then runs it
    /// itself.
    fn submit(&'static self, run: Box<dyn FnOnce() + Send>) -> Result<u64, Job> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let id = st.next_id;
        st.next_id += 1;
        st.jobs.push_back(Job { id, run });
        if st.idle >= st.jobs.len() || st.threads >= MAX_BLOCKING_THREADS {
            drop(st);
            self.work.notify_one();
            return Ok(id);
        }
        st.threads += 1;
        drop(st);
        let spawned = thread::Builder::new()
            .name("spindle-blocking".into())
            .spawn(move || self.worker());
        if spawned.is_err() {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            st.threads -= 1;
            if st.threads == 0 {
                if let Some(job) = st.jobs.pop_back() {
                    return Err(job);
                }
            }
        }
        Ok(id)
    }

    /// Takes job `id` out of the queue if no thread has started it.
    fn withdraw(&self, id: u64) -> Option<Job> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // Searched from the back: a caller is usually cancelled soon after
        // it queued its job.
        let at = st.jobs.iter().rposition(|j| j.id == id)?;
        st.jobs.remove(at)
    }

    fn worker(&self) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(job) = st.jobs.pop_front() {
                drop(st);
                (job.run)();
                st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            st.idle += 1;
            let (guard, res) = self
                .work
                .wait_timeout(st, KEEP_ALIVE)
                .unwrap_or_else(PoisonError::into_inner);
            st = guard;
            st.idle -= 1;
            if res.timed_out() && st.jobs.is_empty() {
                st.threads -= 1;
                return;
            }
        }
    }
}

/// A queued job whose caller may stop waiting: dropped while armed (the
/// caller unwinds), it takes the job out of the queue if no thread has
/// started it.
struct Withdraw {
    id: Option<u64>,
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        if let Some(job) = self.id.and_then(|id| pool().withdraw(id)) {
            // Dropped here, outside the pool's lock: the closure's captures
            // are the caller's values. Its waker goes with it.
            drop(job);
        }
    }
}

/// Where the helper thread leaves the result, and how a fiber that can no
/// longer park waits for it.
struct Handoff<T> {
    result: Mutex<Option<thread::Result<T>>>,
    done: Condvar,
}

/// Runs the blocking closure `f` on a helper thread and parks the calling
/// fiber until it returns; other fibers run meanwhile. For calls that would
/// block the thread (file I/O, DNS, a C library, heavy computation).
///
/// # Examples
///
/// ```
/// spindle::run(|| {
///     let len = spindle::spawn_blocking(|| std::fs::read("Cargo.toml").map(|b| b.len()));
///     assert!(len.unwrap() > 0);
/// });
/// ```
///
/// # Panics
///
/// Outside a fiber of a runtime; if `f` panics, with its payload; and as a
/// cancellation point. A cancelled caller unwinds at once. If no helper
/// thread has started `f` yet, it never runs: it is taken out of the queue
/// and dropped. If one has, `f` cannot be interrupted: it runs to its end
/// on its thread, and its result is dropped there.
#[track_caller]
pub fn spawn_blocking<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let p = Parker::current("spindle::spawn_blocking");
    let handoff = Arc::new(Handoff {
        result: Mutex::new(None),
        done: Condvar::new(),
    });
    let interrupted = p.checkpoint().is_err();
    let theirs = Arc::clone(&handoff);
    let waker = p.remote_waker();
    let job: Box<dyn FnOnce() + Send> = Box::new(move || {
        let r = panic::catch_unwind(AssertUnwindSafe(f));
        *theirs.result.lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
        theirs.done.notify_one();
        waker.wake();
    });
    let mut queued = Withdraw { id: None };
    match pool().submit(job) {
        Ok(id) => queued.id = Some(id),
        Err(job) => (job.run)(),
    }
    let take = || {
        handoff
            .result
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    };
    let mut result = None;
    if !interrupted {
        loop {
            result = take();
            // A cancel unwinds out of `park_in`, dropping `queued` armed.
            if result.is_some()
                || p.park_in(TaskState::WaitingBlocking, WaitingOn::Nothing)
                    .is_err()
            {
                break;
            }
        }
    }
    // From here on the caller waits for the result, whatever happens.
    queued.id = None;
    let result = match result {
        Some(r) => r,
        None => {
            // Shutting down and already unwinding: the fiber cannot park,
            // so block the thread until the helper is done.
            let mut g = handoff
                .result
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            loop {
                if let Some(r) = g.take() {
                    break r;
                }
                g = handoff.done.wait(g).unwrap_or_else(PoisonError::into_inner);
            }
        }
    };
    match result {
        Ok(v) => v,
        Err(p) => panic::resume_unwind(p),
    }
}
