//! The socket and pipe calls: `connect`, `accept`, `accept4`, `read`,
//! `readv`, `recv`, `recvfrom`, `recvmsg`, `write`, `writev`, `send`,
//! `sendto`, `sendmsg`.
//!
//! Each one runs [`call`]: a state the hook does not manage goes straight
//! to libc; a managed fd (non-blocking underneath, blocking for the program,
//! see `fd.rs`) is tried, and on `EAGAIN` the caller waits — on a fiber by
//! parking it on the reactor, elsewhere in `poll(2)` — and tries again, so
//! the program sees what a blocking call returns:
//!
//! - reads return as soon as there is anything (as blocking reads do);
//! - `write`, `send` and `sendto` write everything before they return,
//!   unless an error or the send timeout comes first (then the count so
//!   far), as a blocking socket's do; `writev` and `sendmsg` return after
//!   the first partial write;
//! - `SO_RCVTIMEO` / `SO_SNDTIMEO` end the wait with `EAGAIN` (or the count
//!   so far); `connect` with `EINPROGRESS`, as Linux does;
//! - a flag `MSG_DONTWAIT` passes the call straight through.
//!
//! ## errno
//!
//! A call that parks saves `errno` first and restores it when it succeeds,
//! so what other fibers did to this thread's `errno` meanwhile is not seen;
//! a failing call sets it last, on the fiber's own thread (fibers never
//! migrate).

use std::time::{Duration, Instant};

use libc::{c_int, c_void, iovec, msghdr, size_t, sockaddr, socklen_t, ssize_t};

use super::fd::{self, KNOWN, RCV_TIMEO, SND_TIMEO};
use super::source;
use super::symbols as real;
use crate::runtime::wait::Parker;

/// Which way a call moves data.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    Read,
    Write,
}

/// This thread's `errno`.
#[inline(always)]
pub(crate) fn errno() -> c_int {
    // SAFETY: glibc's errno location is valid for the thread's life.
    unsafe { *libc::__errno_location() }
}

/// Sets this thread's `errno`.
#[inline(always)]
pub(crate) fn set_errno(e: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = e }
}

/// Whether a fiber is running on this thread (and so may be parked).
#[inline(always)]
pub(crate) fn on_fiber() -> bool {
    Parker::try_current().is_some()
}

/// The state of `fd` for a call about to be made: learned on a fiber when
/// it was never seen (see `fd.rs`). Returns `None` when the call passes
/// straight through, `Some((state, fiber))` when it is the hook's (`fiber`:
/// the running fiber, `None` on a plain thread).
#[inline(always)]
pub(crate) fn managed(fd: c_int) -> Option<(u8, Option<Parker>)> {
    let state = fd::get(fd);
    if state & KNOWN != 0 && !fd::parks(state) {
        return None;
    }
    let fiber = Parker::try_current();
    let state = match state {
        0 if fiber.is_some() && fd > 2 => fd::learn(fd),
        s => s,
    };
    fd::parks(state).then_some((state, fiber))
}

/// Runs a data-moving call `op(done)` (`done`: bytes moved so far) with
/// blocking semantics; see the module docs. `len`: for a write, the length
/// it must finish (0: return after the first success); for a read, the
/// buffer's length when a shorter read shows a drained stream (0: no
/// length to compare with, see `source.rs`).
#[inline(always)]
pub(crate) fn call(
    fd: c_int,
    dir: Dir,
    len: usize,
    mut op: impl FnMut(usize) -> ssize_t,
) -> ssize_t {
    match managed(fd) {
        None => op(0),
        Some((state, fiber)) => blocking(fd, dir, len, state, fiber.as_ref(), &mut op),
    }
}

/// The slow half of [`call`]: try, wait, try again. On a fiber, a call the
/// fd's source says would find it drained waits first (`source.rs`).
fn blocking(
    fd: c_int,
    dir: Dir,
    len: usize,
    state: u8,
    fiber: Option<&Parker>,
    op: &mut dyn FnMut(usize) -> ssize_t,
) -> ssize_t {
    let saved = errno();
    let may_be_ready = || fiber.map_or(true, |p| source::may_be_ready(p, fd, dir));
    let mut done = 0usize;
    let mut deadline = None;
    let mut failed_wait = false;
    let mut try_now = may_be_ready();
    loop {
        if try_now {
            let r = op(done);
            if r >= 0 {
                let n = r as usize;
                if let Some(p) = fiber {
                    source::moved(p, fd, state, dir, len.saturating_sub(done), n);
                }
                done += n;
                if dir == Dir::Read || done >= len || n == 0 {
                    set_errno(saved);
                    return done as ssize_t;
                }
                failed_wait = false;
                try_now = may_be_ready();
            } else {
                let e = errno();
                if e != libc::EAGAIN || failed_wait {
                    if done > 0 {
                        set_errno(saved);
                        return done as ssize_t;
                    }
                    if e == libc::EAGAIN {
                        // The wait failed and the fd is still not ready.
                        set_errno(libc::EIO);
                    }
                    return -1;
                }
            }
            if try_now && r >= 0 {
                continue; // a short write with room left: write the rest
            }
        }
        let dl = *deadline.get_or_insert_with(|| deadline_for(fd, dir, state));
        match wait(fd, dir, dl, fiber, try_now) {
            Ok(()) => failed_wait = false,
            Err(Wait::TimedOut | Wait::Interrupted | Wait::Closed) if done > 0 => {
                set_errno(saved);
                return done as ssize_t;
            }
            Err(Wait::TimedOut) => {
                set_errno(libc::EAGAIN);
                return -1;
            }
            Err(Wait::Interrupted) => {
                set_errno(libc::EINTR);
                return -1;
            }
            Err(Wait::Closed) => {
                set_errno(libc::EBADF);
                return -1;
            }
            // The operation itself reports what happened (EPIPE, EBADF,
            // ECONNRESET...), exactly as libc would.
            Err(Wait::Failed) => failed_wait = true,
        }
        try_now = true;
    }
}

/// Why a wait ended without readiness.
pub(crate) enum Wait {
    /// The deadline passed.
    TimedOut,
    /// The runtime is shutting down under an unwinding fiber.
    Interrupted,
    /// The fd was closed during the wait (`EBADF`). The call must not be
    /// retried: the number may already name another file.
    Closed,
    /// Anything else (hang-up, error): retry the call to learn what.
    Failed,
}

impl Wait {
    /// What a fiber's failed wait means for the hooked call.
    pub(crate) fn of(e: &std::io::Error) -> Wait {
        match e.kind() {
            std::io::ErrorKind::TimedOut => Wait::TimedOut,
            std::io::ErrorKind::Interrupted => Wait::Interrupted,
            _ if os_error(e) == Some(libc::EBADF) => Wait::Closed,
            _ => Wait::Failed,
        }
    }
}

/// The OS error code in `e`, or in the error it wraps (the reactor adds
/// context to the kernel's error).
fn os_error(e: &std::io::Error) -> Option<c_int> {
    e.raw_os_error().or_else(|| {
        let inner = std::error::Error::source(e.get_ref()?)?;
        inner.downcast_ref::<std::io::Error>()?.raw_os_error()
    })
}

/// Waits until `fd` may be ready for `dir`: on a fiber (`fiber`) by parking
/// it on the reactor (`source.rs`; `eagain`: the call just said `EAGAIN`),
/// elsewhere in `poll(2)`.
///
/// # Panics
///
/// On a fiber, as a cancellation point (the fiber unwinds from here).
pub(crate) fn wait(
    fd: c_int,
    dir: Dir,
    deadline: Option<Instant>,
    fiber: Option<&Parker>,
    eagain: bool,
) -> Result<(), Wait> {
    if let Some(p) = fiber {
        return source::wait(p, fd, dir, deadline, eagain);
    }
    let events = match dir {
        Dir::Read => libc::POLLIN,
        Dir::Write => libc::POLLOUT,
    };
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => millis_up(left),
                _ => return Err(Wait::TimedOut),
            },
        };
        // SAFETY: one valid pollfd, alive for the call.
        let r = unsafe { real::poll(&mut pfd, 1, ms) };
        if r > 0 {
            return Ok(());
        }
        // EINTR: go on waiting, as a blocking call restarts (SA_RESTART);
        // 0: loop to check the deadline.
        if r < 0 && errno() != libc::EINTR {
            return Err(Wait::Failed);
        }
    }
}

/// `d` in whole milliseconds, rounded up (a wait never ends early).
pub(crate) fn millis_up(d: Duration) -> c_int {
    d.as_nanos().div_ceil(1_000_000).min(c_int::MAX as u128) as c_int
}

/// The deadline the socket's timeout for `dir` gives a call starting now.
fn deadline_for(fd: c_int, dir: Dir, state: u8) -> Option<Instant> {
    let (bit, opt) = match dir {
        Dir::Read => (RCV_TIMEO, libc::SO_RCVTIMEO),
        Dir::Write => (SND_TIMEO, libc::SO_SNDTIMEO),
    };
    if state & bit == 0 {
        return None;
    }
    fd::timeout(fd, opt).and_then(|t| Instant::now().checked_add(t))
}

// ---------------------------------------------------------------------------
// The hooks. Each is `extern "C-unwind"`: a fiber cancelled while parked in
// one unwinds through it (see the module docs of `hook`).

/// Hook of `read(2)`; see the [module docs](self).
///
/// # Safety
///
/// As `read(2)`.
#[no_mangle]
pub unsafe extern "C-unwind" fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    // SAFETY: the caller's arguments, passed on unchanged.
    call(fd, Dir::Read, n, |_| unsafe { real::read(fd, buf, n) })
}

/// Hook of `readv(2)`; see the [module docs](self).
///
/// # Safety
///
/// As `readv(2)`.
#[no_mangle]
pub unsafe extern "C-unwind" fn readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    // SAFETY: the caller's arguments, passed on unchanged.
    call(fd, Dir::Read, 0, |_| unsafe { real::readv(fd, iov, n) })
}

/// Hook of `recv(2)`; see the [module docs](self).
///
/// # Safety
///
/// As `recv(2)`.
#[no_mangle]
pub unsafe extern "C-unwind" fn recv(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
) -> ssize_t {
    // SAFETY: the caller's arguments, passed on unchanged.
    let op = |_| unsafe { real::recv(fd, buf, n, flags) };
    if flags & libc::MSG_DONTWAIT != 0 {
        return op(0);
    }
    // A short peek or out-of-band read says nothing about the queue.
    let len = if flags & (libc::MSG_PEEK | libc::MSG_OOB) == 0 {
        n
    } else {
        0
    };
    call(fd, Dir::Read, len, op)
}

/// Hook of `recvfrom(2)`; see the [module docs](self).
///
/// # Safety
///
/// As `recvfrom(2)`.
#[no_mangle]
pub unsafe extern "C-unwind" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    // SAFETY: the caller's arguments, passed on unchanged.
    let op = |_| unsafe { real::recvfrom(fd, buf, n, flags, addr, len) };
    if flags & libc::MSG_DONTWAIT != 0 {
        return op(0);
    }
    call(fd, Dir::Read, 0, op)
}

/// Hook of `recvmsg(2)`; see the [module docs](self).
///
/// # Safety
///
/// As `recvmsg(2)`.
#[no_mangle]
pub unsafe extern "C-unwind" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    // SAFETY: the caller's arguments, passed on unchanged.
    let op = |_| unsafe { real::recvmsg(fd, msg, flags) };
    if flags & libc::MSG_DONTWAIT != 0 {
        return op(0);
    }
    call(fd, Dir::Read, 0, op)
}

/// Hook of `write(2)`; see the [module docs](self).
///
/// # Safety
///
/// As `write(2)`.
#[no_mangle]
pub unsafe extern "C-unwind" fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    // SAFETY: the caller's arguments, the buffer advanced by what is
    // already written (at most `n`).
    call(fd, Dir::Write, n, |done| unsafe {
        real::write(fd, buf.cast::<u8>().add(done).cast(), n - done)
    })
}

/// Hook of `writev(2)`; see the [module docs](self).
///
/// # Safety
///
/// As `writev(2)`.
#[no_mangle]
pub unsafe extern "C-unwind" fn writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    // SAFETY: the caller's arguments, passed on unchanged.
    call(fd, Dir::Write, 0, |_| unsafe { real::writev(fd, iov, n) })
}

/// Hook of `send(2)`; see the [module docs](self).
///
/// # Safety
///
/// As `send(2)`.
#[no_mangle]
pub unsafe extern "C-unwind" fn send(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
) -> ssize_t {
    // SAFETY: the caller's arguments, the buffer advanced by what is
    // already written (at most `n`).
    let op =
        |done: usize| unsafe { real::send(fd, buf.cast::<u8>().add(done).cast(), n - done, flags) };
    if flags & libc::MSG_DONTWAIT != 0 {
        return op(0);
    }
    call(fd, Dir::Write, n, op)
}

/// Hook of `sendto(2)`; see the [module docs](self).
///
/// # Safety
///
/// As `sendto(2)`.
#[no_mangle]
pub unsafe extern "C-unwind" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    // SAFETY: the caller's arguments, the buffer advanced by what is
    // already written (at most `n`).
    let op = |done: usize| unsafe {
        real::sendto(
            fd,
            buf.cast::<u8>().add(done).cast(),
            n - done,
            flags,
            addr,
            len,
        )
    };
    if flags & libc::MSG_DONTWAIT != 0 {
        return op(0);
    }
    call(fd, Dir::Write, n, op)
}

/// Hook of `sendmsg(2)`; see the [module docs](self).
///
/// # Safety
///
/// As `sendmsg(2)`.
#[no_mangle]
pub unsafe extern "C-unwind" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    // SAFETY: the caller's arguments, passed on unchanged.
    let op = |_| unsafe { real::sendmsg(fd, msg, flags) };
    if flags & libc::MSG_DONTWAIT != 0 {
        return op(0);
    }
    call(fd, Dir::Write, 0, op)
}

/// Hook of `accept(2)`; see the [module docs](self).
///
/// # Safety
///
/// As `accept(2)`.
#[no_mangle]
pub unsafe extern "C-unwind" fn accept(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> c_int {
    // SAFETY: the caller's arguments, passed on unchanged.
    accepted(call(
        fd,
        Dir::Read,
        0,
        |_| unsafe { real::accept(fd, addr, len) } as ssize_t,
    ))
}

/// Hook of `accept4(2)`; see the [module docs](self).
///
/// # Safety
///
/// As `accept4(2)`.
#[no_mangle]
pub unsafe extern "C-unwind" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    // SAFETY: the caller's arguments, passed on unchanged.
    let op = |_| unsafe { real::accept4(fd, addr, len, flags) } as ssize_t;
    accepted(call(fd, Dir::Read, 0, op))
}

/// A new connection's fd is a number the kernel just handed out: whatever
/// the table says about it is stale.
fn accepted(r: ssize_t) -> c_int {
    if r >= 0 {
        fd::set(r as c_int, 0);
    }
    r as c_int
}

/// Hook of `connect(2)`; see the [module docs](self).
///
/// # Safety
///
/// As `connect(2)`.
#[no_mangle]
pub unsafe extern "C-unwind" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let saved = errno();
    // Learned first, so a blocking socket is non-blocking underneath before
    // the real call.
    let managed = managed(fd);
    // SAFETY: the caller's arguments, passed on unchanged.
    let r = unsafe { real::connect(fd, addr, len) };
    if r == 0 || errno() != libc::EINPROGRESS {
        return r;
    }
    let Some((state, fiber)) = managed else {
        return r;
    };
    let deadline = deadline_for(fd, Dir::Write, state);
    match wait(fd, Dir::Write, deadline, fiber.as_ref(), true) {
        Ok(()) | Err(Wait::Failed) => {}
        Err(Wait::TimedOut) => {
            set_errno(libc::EINPROGRESS);
            return -1;
        }
        Err(Wait::Interrupted) => {
            set_errno(libc::EINTR);
            return -1;
        }
        Err(Wait::Closed) => {
            set_errno(libc::EBADF);
            return -1;
        }
    }
    // The outcome of the connection is the socket's pending error.
    let Some(err) = fd::socket_int(fd, libc::SO_ERROR) else {
        return -1;
    };
    if err != 0 {
        set_errno(err);
        return -1;
    }
    set_errno(saved);
    0
}
