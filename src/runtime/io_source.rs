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

use super::driver::{context, Poller, Reactor, CLOSED};
use super::fd_wait::{shutting_down, timed_out};
use super::task::{Key, TaskState, WaitingOn};
use super::wait::{try_with_runtime, LocalRuntime, Parker};

pub(crate) use super::driver::Interest;

/// An owned non-blocking fd's link to the reactor; see the
/// [module docs](self).
pub(crate) struct IoSource {
    fd: RawFd,
    /// `(runtime, token)`: the scheduler id of the runtime whose reactor
    /// holds the source, and its token there. Runtime 0 (no scheduler has
    /// that id): not registered. Token 0 (no token is): epoll cannot watch
    /// this fd (a regular file), which is always ready.
    registered: Cell<(u64, u64)>,
    /// That reactor's poller, to release the source from another thread;
    /// present exactly while the token is not 0.
    poller: Cell<Option<Arc<Poller>>>,
}

impl std::fmt::Debug for IoSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoSource").field("fd", &self.fd).finish()
    }
}

/// Removes a fiber's wait from a source on every way out of the wait.
struct Waiting<'a> {
    reactor: &'a Reactor,
    token: u64,
    interest: Interest,
    key: Key,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.reactor
            .unwait_source(self.token, self.interest, self.key);
    }
}

impl IoSource {
    /// A source for `fd`, which must be open and in non-blocking mode, and
    /// stay open until the source is dropped. Registers nothing yet.
    pub(crate) fn new(fd: RawFd) -> IoSource {
        IoSource {
            fd,
            registered: Cell::new((0, 0)),
            poller: Cell::new(None),
        }
    }

    /// The fd.
    pub(crate) fn fd(&self) -> RawFd {
        self.fd
    }

    /// Runs `op` until it returns something other than `WouldBlock`,
    /// waiting for `interest` readiness in between (until `deadline`, if
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
        interest: Interest,
        deadline: Option<Instant>,
        op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        self.io_drains(interest, deadline, op, |_| false)
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
        interest: Interest,
        deadline: Option<Instant>,
        mut op: impl FnMut() -> io::Result<R>,
        drained: impl Fn(&R) -> bool,
    ) -> io::Result<R> {
        super::coop::proceed();
        if !self.may_be_ready(interest) {
            self.wait_on(interest, deadline, false)?;
        }
        loop {
            match op() {
                Ok(r) => {
                    if drained(&r) {
                        self.not_ready(interest);
                    }
                    return Ok(r);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => return Err(e),
            }
            self.wait_on(interest, deadline, true)?;
        }
    }

    /// Whether the fd may be ready for `interest`: false only when it is
    /// registered with the running runtime and no event came since it was
    /// last seen not ready.
    #[inline(always)]
    fn may_be_ready(&self, interest: Interest) -> bool {
        let (runtime, token) = self.registered.get();
        if token == 0 {
            return true;
        }
        try_with_runtime(|rt| {
            rt.id() != runtime || rt.reactor().source_may_be_ready(token, interest)
        })
        .unwrap_or(true)
    }

    /// Records that the fd was just seen not ready for `interest`.
    #[inline(always)]
    fn not_ready(&self, interest: Interest) {
        let (runtime, token) = self.registered.get();
        if token == 0 {
            return;
        }
        try_with_runtime(|rt| {
            if rt.id() == runtime {
                rt.reactor().source_not_ready(token, interest);
            }
        });
    }

    /// Waits until the fd is ready for `interest` (or `deadline` passes),
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
    pub(crate) fn ready(&self, interest: Interest, deadline: Option<Instant>) -> io::Result<()> {
        if poll_now(self.fd, interest)? {
            return Ok(());
        }
        self.wait(interest, deadline)
    }

    /// Waits until the fd is ready for `interest` (or `deadline` passes):
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
    pub(crate) fn wait(&self, interest: Interest, deadline: Option<Instant>) -> io::Result<()> {
        self.wait_on(interest, deadline, true)
    }

    /// [`wait`](Self::wait); `eagain` says the operation just saw the fd
    /// not ready (which the source then records, once it is registered).
    #[inline(always)]
    fn wait_on(
        &self,
        interest: Interest,
        deadline: Option<Instant>,
        eagain: bool,
    ) -> io::Result<()> {
        match Parker::try_current() {
            Some(p) => self.wait_on_reactor(&p, interest, deadline, eagain),
            None => poll_blocking(self.fd, interest, deadline),
        }
    }

    #[inline(always)]
    fn wait_on_reactor(
        &self,
        p: &Parker,
        interest: Interest,
        deadline: Option<Instant>,
        eagain: bool,
    ) -> io::Result<()> {
        let Some(token) = self.token_in(p.runtime_id(), p.reactor())? else {
            return Ok(()); // always ready
        };
        wait_on_source(p, self.fd, token, interest, deadline, eagain)
    }

    /// The source's token in the reactor of runtime `id` (`None`: always
    /// ready), registering it there first if it is not (moving it from
    /// another runtime's reactor if need be).
    fn token_in(&self, id: u64, reactor: &Reactor) -> io::Result<Option<u64>> {
        let (runtime, token) = self.registered.get();
        if runtime != id {
            self.release();
            let token = reactor.add_source(self.fd)?;
            if token.is_some() {
                self.poller.set(Some(Arc::clone(reactor.poller())));
            }
            self.registered.set((id, token.unwrap_or(0)));
            return Ok(token);
        }
        Ok((token != 0).then_some(token))
    }

    /// Takes the source out of the reactor it is registered with, if any:
    /// directly if this thread is running that runtime, through its poller
    /// otherwise.
    fn release(&self) {
        let (runtime, token) = self.registered.replace((0, 0));
        let Some(poller) = self.poller.take() else {
            return;
        };
        debug_assert!(token != 0);
        let here = try_with_runtime(|rt: LocalRuntime<'_>| {
            if rt.id() == runtime {
                rt.reactor().remove_source(token, self.fd);
                true
            } else {
                false
            }
        });
        if here != Some(true) {
            poller.release_elsewhere(token, self.fd);
        }
    }
}

/// Parks the running fiber `p` on the source `token` (registered with
/// `p`'s reactor, for `fd`) until an event for `interest` or `deadline`.
/// `eagain`: the operation just said `EAGAIN` ([`IoSource::wait`]'s
/// contract); false: the source's flag said the fd is not ready
/// ([`may_be_ready`]), which needs no recording.
///
/// # Panics
///
/// As a cancellation point.
///
/// # Errors
///
/// As [`IoSource::wait`]; an fd whose source was closed while the fiber
/// waited (the `hook` feature's `close`) gives `EBADF`.
#[inline(always)]
pub(crate) fn wait_on_source(
    p: &Parker,
    fd: RawFd,
    token: u64,
    interest: Interest,
    deadline: Option<Instant>,
    eagain: bool,
) -> io::Result<()> {
    if p.checkpoint().is_err() {
        return Err(shutting_down());
    }
    if deadline.is_some_and(|d| Instant::now() >= d) {
        return Err(timed_out(fd, interest));
    }
    let reactor = p.reactor();
    let key = p.key();
    if eagain {
        reactor.source_not_ready(token, interest);
    }
    p.clear_io_events();
    reactor.wait_source(token, interest, key);
    let _waiting = Waiting {
        reactor,
        token,
        interest,
        key,
    };
    let timer = deadline.map(|d| p.timer(d));
    loop {
        if p.park_in(
            TaskState::WaitingIo,
            WaitingOn::Fd(fd, interest.direction()),
        )
        .is_err()
        {
            return Err(shutting_down());
        }
        let events = p.io_events();
        if events & CLOSED != 0 {
            let e = io::Error::from_raw_os_error(libc::EBADF);
            return Err(context(e, "fd closed while a fiber waited on it", fd));
        }
        if events != 0 {
            return Ok(());
        }
        if timer.as_ref().is_some_and(|t| t.fired()) {
            return Err(timed_out(fd, interest));
        }
    }
}

/// A source registered for an fd that no [`IoSource`] owns: the `hook`
/// feature keeps one per managed fd in its fd table, made at the fd's first
/// wait on a fiber and removed by the `close` hook before the fd number can
/// be reused. The holder guarantees what [`IoSource`]'s invariants do: the
/// fd stays open until [`release`](Self::release). Its raw parts
/// ([`into_raw`](Self::into_raw)) let the holder keep it in atomics.
#[cfg_attr(not(feature = "hook"), allow(dead_code))]
pub(crate) struct Registration {
    /// The scheduler id of the runtime whose reactor holds the source.
    pub(crate) runtime: u64,
    /// Its token there.
    pub(crate) token: u64,
    poller: Arc<Poller>,
}

#[cfg_attr(not(feature = "hook"), allow(dead_code))]
impl Registration {
    /// Registers `fd` (open, non-blocking) as a source with the reactor of
    /// the running fiber `p`. `Ok(None)`: epoll cannot watch it (always
    /// ready).
    ///
    /// # Errors
    ///
    /// What `epoll_ctl` returns (see `Reactor::add_source`).
    pub(crate) fn new(p: &Parker, fd: RawFd) -> io::Result<Option<Registration>> {
        let reactor = p.reactor();
        Ok(reactor.add_source(fd)?.map(|token| Registration {
            runtime: p.runtime_id(),
            token,
            poller: Arc::clone(reactor.poller()),
        }))
    }

    /// The parts, the poller as a pointer that owns one reference.
    pub(crate) fn into_raw(self) -> (u64, u64, *const ()) {
        (self.runtime, self.token, Arc::into_raw(self.poller).cast())
    }

    /// Rebuilds a registration from [`into_raw`](Self::into_raw)'s parts.
    ///
    /// # Safety
    ///
    /// The parts come from one `into_raw` call, and are rebuilt once.
    pub(crate) unsafe fn from_raw(runtime: u64, token: u64, poller: *const ()) -> Registration {
        Registration {
            runtime,
            token,
            // SAFETY: a pointer from `Arc::into_raw`, owning the reference
            // it gave up, taken back once (the caller's contract).
            poller: unsafe { Arc::from_raw(poller.cast::<Poller>()) },
        }
    }

    /// Takes the source out of its reactor; `fd` is still open. On the
    /// registration's own runtime the fibers waiting on it fail with
    /// `EBADF` at once (as does any `wait_readable` on `fd` there);
    /// elsewhere the fd leaves the epoll set now and its waiters (only C
    /// code can close an fd another thread's fiber waits on) fail at that
    /// runtime's next poll.
    pub(crate) fn release(self, fd: RawFd) {
        let here = try_with_runtime(|rt| {
            rt.id() == self.runtime && rt.fail_fd_waiters(fd, Some(self.token))
        });
        if here != Some(true) {
            self.poller.release_elsewhere(self.token, fd);
        }
    }
}

/// Whether the source `token` of the running fiber `p`'s runtime may be
/// ready for `interest` (see [`IoSource::io_drains`]).
#[cfg_attr(not(feature = "hook"), allow(dead_code))]
#[inline(always)]
pub(crate) fn may_be_ready(p: &Parker, token: u64, interest: Interest) -> bool {
    p.reactor().source_may_be_ready(token, interest)
}

/// Records that the source `token` was just seen not ready (a short read
/// or write of a stream; see [`IoSource::io_drains`]).
#[cfg_attr(not(feature = "hook"), allow(dead_code))]
#[inline(always)]
pub(crate) fn not_ready(p: &Parker, token: u64, interest: Interest) {
    p.reactor().source_not_ready(token, interest);
}

impl Drop for IoSource {
    fn drop(&mut self) {
        self.release();
    }
}

/// Whether `fd` is ready for `interest` right now (a level check that
/// never waits).
fn poll_now(fd: RawFd, interest: Interest) -> io::Result<bool> {
    poll_once(fd, interest, 0)
}

/// Blocks the thread until `fd` is ready for `interest` or `deadline`
/// passes; for waits outside a fiber.
fn poll_blocking(fd: RawFd, interest: Interest, deadline: Option<Instant>) -> io::Result<()> {
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(timed_out(fd, interest));
                }
                left.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int
            }
        };
        if poll_once(fd, interest, ms)? {
            return Ok(());
        }
    }
}

/// One `poll(2)` of `fd` for `interest`, waiting up to `ms` milliseconds
/// (-1: for ever), `EINTR` retried. Returns whether the fd is ready.
fn poll_once(fd: RawFd, interest: Interest, ms: libc::c_int) -> io::Result<bool> {
    let events = match interest {
        Interest::Read => libc::POLLIN,
        Interest::Write => libc::POLLOUT,
    };
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd, alive for the call.
        let r = unsafe { crate::sys::poll(&mut pfd, 1, ms) };
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
