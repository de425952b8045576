//! Remote wake-ups: how a thread that is not running a scheduler wakes one
//! of its fibers.
//!
//! Each scheduler has one [`Remote`] (in an `Arc`): a non-blocking eventfd
//! that sits in the reactor's epoll set, a mutex-protected list of task keys
//! to wake, a `pending` flag, and a count of live [`RemoteWaker`]s. A thread
//! that wants a fiber woken (today: a `spawn_blocking` helper that is done)
//! pushes its key, and writes the eventfd only if `pending` was clear, so a
//! burst of wake-ups costs one write and one epoll wake. The scheduler
//! drains the list between rounds. The count of live wakers is what the
//! deadlock check asks: while some other thread still holds a waker,
//! something may yet wake a fiber, so blocking in epoll is right and
//! reporting a deadlock would be wrong.
//!
//! The eventfd belongs to the `Remote`, not to the reactor, so a thread
//! that wakes after its runtime is gone writes to a descriptor that is still
//! open (and that nobody reads) instead of one that may have been reused.
//!
//! ## Who owns what
//!
//! - `queue` and `pending`: written by any thread (a push under the lock,
//!   then the flag); taken by the owning scheduler's thread alone, in
//!   [`Remote::drain`].
//! - `wakers`: incremented on the scheduler's thread when it hands out a
//!   waker, decremented on whatever thread drops one.
//! - `event_fd`: written by wakers, read (drained) by the reactor.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::runtime::task::Key;

/// The cross-thread wake-up channel of one scheduler; see the
/// [module docs](self).
pub(crate) struct Remote {
    event_fd: OwnedFd,
    queue: Mutex<Vec<Key>>,
    pending: AtomicBool,
    wakers: AtomicUsize,
}

impl Remote {
    pub(crate) fn new() -> io::Result<Remote> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("eventfd for cross-thread wake-ups: {e}"),
            ));
        }
        Ok(Remote {
            // SAFETY: `fd` is a new descriptor that nothing else owns.
            event_fd: unsafe { OwnedFd::from_raw_fd(fd) },
            queue: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            wakers: AtomicUsize::new(0),
        })
    }

    pub(crate) fn event_fd(&self) -> RawFd {
        self.event_fd.as_raw_fd()
    }

    /// A waker for the task `key`, counted until it is dropped.
    pub(crate) fn waker(self: &Arc<Remote>, key: Key) -> RemoteWaker {
        self.wakers.fetch_add(1, Ordering::Relaxed);
        RemoteWaker {
            remote: Arc::clone(self),
            key,
        }
    }

    /// Calls `wake` for every key other threads sent since the last drain.
    #[inline]
    pub(crate) fn drain(&self, mut wake: impl FnMut(Key)) {
        if !self.pending.load(Ordering::Acquire) {
            return;
        }
        self.pending.store(false, Ordering::Release);
        let keys = std::mem::take(&mut *self.queue.lock().unwrap_or_else(PoisonError::into_inner));
        for key in keys {
            wake(key);
        }
    }

    /// Whether another thread may still wake a fiber: a waker is alive, or
    /// a wake-up is queued.
    pub(crate) fn may_wake(&self) -> bool {
        // Acquire pairs with the Release decrement in RemoteWaker::drop,
        // which comes after its push: a count of 0 means every push made
        // by a dropped waker is visible to the check below.
        self.wakers.load(Ordering::Acquire) > 0 || self.pending.load(Ordering::Acquire)
    }
}

/// Wakes one fiber from another thread. `Send`; counted by its [`Remote`]
/// while it lives.
pub(crate) struct RemoteWaker {
    remote: Arc<Remote>,
    key: Key,
}

impl RemoteWaker {
    /// Queues the wake-up and, if the scheduler has not been told yet,
    /// writes the eventfd.
    pub(crate) fn wake(&self) {
        let r = &self.remote;
        r.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(self.key);
        if !r.pending.swap(true, Ordering::AcqRel) {
            let one = 1u64;
            // SAFETY: writes 8 bytes from `one` to an eventfd the Remote
            // owns (so it is open). EAGAIN would mean the counter is about
            // to overflow, i.e. a wake-up is already pending: ignoring it is
            // right.
            unsafe { libc::write(r.event_fd(), &one as *const u64 as *const libc::c_void, 8) };
        }
    }
}

impl Drop for RemoteWaker {
    fn drop(&mut self) {
        self.remote.wakers.fetch_sub(1, Ordering::Release);
    }
}
