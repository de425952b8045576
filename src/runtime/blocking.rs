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

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    state: Mutex<PoolState>,
    work: Condvar,
}

struct PoolState {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(PoolState {
            jobs: VecDeque::new(),
            threads: 0,
            idle: 0,
        }),
        work: Condvar::new(),
    })
}

impl Pool {
    /// Queues `job`, starting a thread if none is idle and the cap allows.
    /// Returns a job back if no thread exists to run it (the OS refused to
    /// start one): the caller then runs it itself.
    fn submit(&'static self, job: Job) -> Result<(), Job> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.jobs.push_back(job);
        if st.idle >= st.jobs.len() || st.threads >= MAX_BLOCKING_THREADS {
            drop(st);
            self.work.notify_one();
            return Ok(());
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
        Ok(())
    }

    fn worker(&self) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(job) = st.jobs.pop_front() {
                drop(st);
                job();
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
/// cancellation point. A cancelled caller unwinds at once, but `f` cannot be
/// interrupted: it runs to its end on its thread, and its result is
/// dropped there.
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
    let job: Job = Box::new(move || {
        let r = panic::catch_unwind(AssertUnwindSafe(f));
        *theirs.result.lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
        theirs.done.notify_one();
        waker.wake();
    });
    if let Err(job) = pool().submit(job) {
        job();
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
            if result.is_some()
                || p.park_in(TaskState::WaitingBlocking, WaitingOn::Nothing)
                    .is_err()
            {
                break;
            }
        }
    }
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
