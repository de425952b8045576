//! [`IoSource`]: an owned, non-blocking fd that waits on the reactor; the
//! engine under [`spindle::net`](crate::net) and
//! [`spindle::io::Async`](crate::io::Async).
//!
//! ## How an operation runs
//!
//! [`IoSource::io`] tries the operation first (a read, a `send`, an
//! `accept`). If the kernel says `EAGAIN`, the fiber waits for the fd's
//! readiness and tries again; `EINTR` is retried at once; anything else is
//! the result. The first wait registers the fd with the runtime's reactor
//! as a *source* (persistent and edge-triggered: see "Sources" in the
//! reactor docs), so a socket that never has to wait costs no `epoll_ctl`,
//! and one that waits often costs one in its whole life.
//!
//! ## Outside a fiber
//!
//! Used where no fiber is running (outside any runtime, or in a destructor
//! on the scheduler's own stack), a wait blocks the thread in `poll(2)`
//! instead, as a std socket would block. Nothing is registered then.
//!
//! ## Moving between runtimes
//!
//! The registration remembers its runtime. Used under another one (the
//! owner moved to another thread, or the first runtime is gone), the source
//! is released from the old reactor and registered with the new one.
//!
//! ## Invariants
//!
//! - The fd is open from [`IoSource::new`] until the source is dropped: the
//!   owner closes it only afterwards (it declares the source before the fd
//!   in its fields, so the source drops first). So the `EPOLL_CTL_DEL` of
//!   the drop always names the right file.
//! - A fiber waits on the source only while borrowing its owner, so the
//!   source is never dropped or moved while a fiber waits on it.

use std::cell::Cell;
use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Instant;

use super::reactor::{Interest, Poller};
use super::scheduler::{with_scheduler_opt, Scheduler};
use super::slab::Key;
use super::task::TaskState;
use super::wait::Parker;

/// Where a source is registered.
struct Registration {
    /// The runtime (scheduler id) whose reactor holds it.
    runtime: u64,
    /// Its token there; `None`: epoll cannot watch this fd (a regular
    /// file), which is always ready.
    token: Option<u64>,
    /// That reactor's poller, to release the source from another thread.
    poller: Arc<Poller>,
}

/// What a source waits for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Direction {
    /// Readable (or at end of stream, or in error).
    Read,
    /// Writable (or hung up, or in error).
    Write,
}

impl Direction {
    fn interest(self) -> Interest {
        match self {
            Direction::Read => Interest::Read,
            Direction::Write => Interest::Write,
        }
    }
}

/// An owned non-blocking fd's link to the reactor; see the
/// [module docs](self).
pub(crate) struct IoSource {
    fd: RawFd,
    registration: Cell<Option<Registration>>,
    /// `(runtime, token)` of the registration, when there is one with a
    /// token (a copy of those two fields, readable without taking the
    /// registration out of its cell); `(0, 0)` otherwise.
    token: Cell<(u64, u64)>,
}

impl std::fmt::Debug for IoSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoSource").field("fd", &self.fd).finish()
    }
}

/// Removes a fiber's wait from a source on every way out of the wait.
struct Waiting<'a> {
    sched: &'a Scheduler,
    token: u64,
    interest: Interest,
    key: Key,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.sched
            .reactor
            .unwait_source(self.token, self.interest, self.key);
    }
}

impl IoSource {
    /// A source for `fd`, which must be open and in non-blocking mode, and
    /// stay open until the source is dropped. Registers nothing yet.
    pub(crate) fn new(fd: RawFd) -> IoSource {
        IoSource {
            fd,
            registration: Cell::new(None),
            token: Cell::new((0, 0)),
        }
    }

    /// The fd.
    pub(crate) fn fd(&self) -> RawFd {
        self.fd
    }

    /// Runs `op` until it returns something other than `WouldBlock`,
    /// waiting for `direction` readiness in between (until `deadline`, if
    /// there is one). `EINTR` is retried.
    ///
    /// # Panics
    ///
    /// As a cancellation point, when it waits.
    ///
    /// # Errors
    ///
    /// What `op` returns; [`io::ErrorKind::TimedOut`] at the deadline;
    /// [`io::ErrorKind::Interrupted`] if the runtime shuts down while the
    /// fiber, already unwinding, would have to wait.
    #[inline(always)]
    pub(crate) fn io<R>(
        &self,
        direction: Direction,
        deadline: Option<Instant>,
        op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        self.io_drains(direction, deadline, op, |_| false)
    }

    /// As [`io`](Self::io), for an operation whose result can show that it
    /// left the fd not ready (`drained`): a stream read shorter than its
    /// buffer emptied the receive queue, a write shorter than its data
    /// filled the send buffer. The source then remembers it, and the next
    /// operation in that direction waits for the reactor's next event
    /// instead of making a system call only to hear `EAGAIN` (tokio does the
    /// same). Exact with edge-triggered registration: any readiness after
    /// that moment is a new edge, reported at the next poll.
    ///
    /// # Panics
    ///
    /// As [`io`](Self::io).
    ///
    /// # Errors
    ///
    /// As [`io`](Self::io).
    #[inline(always)]
    pub(crate) fn io_drains<R>(
        &self,
        direction: Direction,
        deadline: Option<Instant>,
        mut op: impl FnMut() -> io::Result<R>,
        drained: impl Fn(&R) -> bool,
    ) -> io::Result<R> {
        if !self.may_be_ready(direction) {
            self.wait_on(direction, deadline, false)?;
        }
        loop {
            match op() {
                Ok(r) => {
                    if drained(&r) {
                        self.not_ready(direction);
                    }
                    return Ok(r);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => return Err(e),
            }
            self.wait_on(direction, deadline, true)?;
        }
    }

    /// Whether the fd may be ready for `direction`: false only when it is
    /// registered with the running runtime and no event came since it was
    /// last seen not ready.
    #[inline(always)]
    fn may_be_ready(&self, direction: Direction) -> bool {
        let (runtime, token) = self.token.get();
        if token == 0 {
            return true;
        }
        with_scheduler_opt(|s| {
            s.id != runtime || s.reactor.source_may_be_ready(token, direction.interest())
        })
        .unwrap_or(true)
    }

    /// Records that the fd was just seen not ready for `direction`.
    #[inline(always)]
    fn not_ready(&self, direction: Direction) {
        let (runtime, token) = self.token.get();
        if token == 0 {
            return;
        }
        with_scheduler_opt(|s| {
            if s.id == runtime {
                s.reactor.source_not_ready(token, direction.interest());
            }
        });
    }

    /// Waits until the fd is ready for `direction` (or `deadline` passes),
    /// whatever happened before: returns at once if it is ready now.
    ///
    /// [`wait`](Self::wait) alone is not enough here: the source is
    /// edge-triggered, and an edge the reactor saw while nobody waited is
    /// not reported again. So this asks the fd's level first (`poll(2)`
    /// with no timeout); if it is not ready, no poll of the reactor can
    /// happen before the fiber parks, and any readiness after that is a new
    /// edge.
    ///
    /// # Panics
    ///
    /// As a cancellation point.
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait).
    pub(crate) fn ready(&self, direction: Direction, deadline: Option<Instant>) -> io::Result<()> {
        if poll_now(self.fd, direction)? {
            return Ok(());
        }
        self.wait(direction, deadline)
    }

    /// Waits until the fd is ready for `direction` (or `deadline` passes):
    /// on the reactor in a fiber, in `poll(2)` elsewhere. A wake-up means
    /// "try again", not a promise: the operation may say `EAGAIN` again.
    ///
    /// Only for right after an operation on the fd said `EAGAIN` (or a
    /// `connect` said `EINPROGRESS`) with no wait in between: that is what
    /// makes the edge-triggered registration exact. Elsewhere, use
    /// [`ready`](Self::ready).
    ///
    /// # Panics
    ///
    /// As a cancellation point.
    ///
    /// # Errors
    ///
    /// As [`io`](Self::io), and what registering with the reactor returns.
    #[inline(always)]
    pub(crate) fn wait(&self, direction: Direction, deadline: Option<Instant>) -> io::Result<()> {
        self.wait_on(direction, deadline, true)
    }

    /// [`wait`](Self::wait); `eagain` says the operation just saw the fd
    /// not ready (which the source then records, once it is registered).
    #[inline(always)]
    fn wait_on(
        &self,
        direction: Direction,
        deadline: Option<Instant>,
        eagain: bool,
    ) -> io::Result<()> {
        match Parker::try_current() {
            Some(p) => self.wait_on_reactor(&p, direction, deadline, eagain),
            None => poll_blocking(self.fd, direction, deadline),
        }
    }

    #[inline(always)]
    fn wait_on_reactor(
        &self,
        p: &Parker,
        direction: Direction,
        deadline: Option<Instant>,
        eagain: bool,
    ) -> io::Result<()> {
        if p.checkpoint().is_err() {
            return Err(shutting_down());
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(timed_out(self.fd, direction));
        }
        let s = p.scheduler();
        let Some(token) = self.token_in(s)? else {
            return Ok(()); // always ready
        };
        let (key, interest) = (p.key(), direction.interest());
        if eagain {
            s.reactor.source_not_ready(token, interest);
        }
        if let Some(t) = s.core.borrow_mut().tasks.get_mut(key) {
            t.io_events = 0;
        }
        s.reactor.wait_source(token, interest, key);
        let _waiting = Waiting {
            sched: s,
            token,
            interest,
            key,
        };
        let timer = deadline.map(|d| p.timer(d));
        loop {
            if s.park(key, TaskState::WaitingIo, self.fd as u64).is_err() {
                return Err(shutting_down());
            }
            let events = s.core.borrow().tasks.get(key).map_or(0, |t| t.io_events);
            if events != 0 {
                return Ok(());
            }
            if timer.as_ref().is_some_and(|t| t.fired()) {
                return Err(timed_out(self.fd, direction));
            }
        }
    }

    /// The source's token in `s`'s reactor, registering it there first if
    /// it is not (moving it from another runtime's reactor if need be).
    fn token_in(&self, s: &Scheduler) -> io::Result<Option<u64>> {
        match self.registration.take() {
            Some(r) if r.runtime == s.id => {
                let token = r.token;
                self.registration.set(Some(r));
                return Ok(token);
            }
            Some(old) => {
                self.token.set((0, 0));
                release(old, self.fd);
            }
            None => {}
        }
        self.token.set((0, 0));
        let token = s.reactor.add_source(self.fd)?;
        self.registration.set(Some(Registration {
            runtime: s.id,
            token,
            poller: Arc::clone(s.reactor.poller()),
        }));
        self.token.set((s.id, token.unwrap_or(0)));
        Ok(token)
    }
}

impl Drop for IoSource {
    fn drop(&mut self) {
        if let Some(r) = self.registration.take() {
            release(r, self.fd);
        }
    }
}

/// Takes a source out of the reactor it is registered with: directly if
/// this thread is running that runtime, through its poller otherwise.
fn release(r: Registration, fd: RawFd) {
    let Some(token) = r.token else { return };
    let here = with_scheduler_opt(|s| {
        if s.id == r.runtime {
            s.reactor.remove_source(token, fd);
            true
        } else {
            false
        }
    });
    if here != Some(true) {
        r.poller.release_elsewhere(token, fd);
    }
}

/// Whether `fd` is ready for `direction` right now (a level check that
/// never waits).
fn poll_now(fd: RawFd, direction: Direction) -> io::Result<bool> {
    let events = match direction {
        Direction::Read => libc::POLLIN,
        Direction::Write => libc::POLLOUT,
    };
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd, alive for the call; timeout 0.
        let r = unsafe { libc::poll(&mut pfd, 1, 0) };
        if r >= 0 {
            if pfd.revents & libc::POLLNVAL != 0 {
                return Err(io::Error::from_raw_os_error(libc::EBADF));
            }
            return Ok(r > 0);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Blocks the thread until `fd` is ready for `direction` or `deadline`
/// passes; for waits outside a fiber.
fn poll_blocking(fd: RawFd, direction: Direction, deadline: Option<Instant>) -> io::Result<()> {
    let events = match direction {
        Direction::Read => libc::POLLIN,
        Direction::Write => libc::POLLOUT,
    };
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(timed_out(fd, direction));
                }
                left.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int
            }
        };
        let mut pfd = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd, alive for the call.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        if pfd.revents & libc::POLLNVAL != 0 {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        if r > 0 {
            return Ok(());
        }
    }
}

fn shutting_down() -> io::Error {
    io::Error::new(
        io::ErrorKind::Interrupted,
        "the spindle runtime is shutting down",
    )
}

fn timed_out(fd: RawFd, direction: Direction) -> io::Error {
    let what = match direction {
        Direction::Read => "readable",
        Direction::Write => "writable",
    };
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("fd {fd} did not become {what} before the deadline"),
    )
}
