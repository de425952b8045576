//! Waiting for an fd: [`wait_readable`] and [`wait_writable`], the
//! building blocks of fiber-aware I/O, on top of the
//! [reactor](super::driver::reactor).
//!
//! A wait registers the fiber with the reactor (and a timer if it has a
//! deadline), parks, and on every way out (readiness, deadline,
//! cancellation) removes both registrations through guards, so a cancelled
//! wait leaves nothing behind in the epoll set or the sleep queue.

use std::io;
use std::os::fd::RawFd;
use std::time::Instant;

use super::driver::{context, Interest, Reactor, CLOSED};
use super::task::{Key, TaskState, WaitingOn};
use super::wait::{try_with_runtime, Parker};

/// Deregisters a wait on every path out of it, unwinding included.
struct Registration<'a> {
    reactor: &'a Reactor,
    fd: RawFd,
    key: Key,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.reactor.deregister(self.fd, self.key);
    }
}

/// Parks the running fiber until `fd` is readable (or at end of stream),
/// or `deadline` passes. Other fibers run meanwhile.
///
/// This is the building block of fiber-aware I/O: put the fd in
/// non-blocking mode, try the read, and on `WouldBlock` wait here and try
/// again.
///
/// What ends the wait, and how:
///
/// | event | reader gets | writer gets |
/// |---|---|---|
/// | `EPOLLIN` / `EPOLLOUT` | `Ok` | `Ok` |
/// | `EPOLLHUP`, `EPOLLRDHUP` | `Ok`: the end of the stream is readable (read returns 0) | `Err(BrokenPipe)` |
/// | `EPOLLERR` | `Err` (the socket's `SO_ERROR` when there is one), unless data is also readable | `Err` |
/// | fd closed while waited on | `Err`, naming the fd, once the scheduler is next about to block (timers pending or not) | same |
/// | fd invalid (`EBADF` from `epoll_ctl`) | `Err` at once | same |
/// | fd that epoll cannot watch (`EPERM`: regular files, directories) | `Ok` at once: such files are always ready, as `poll(2)` says | same |
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use std::os::fd::AsRawFd;
/// use std::os::unix::net::UnixStream;
///
/// spindle::run(|| -> std::io::Result<()> {
///     let (mut a, mut b) = UnixStream::pair()?;
///     a.set_nonblocking(true)?;
///     let writer = spindle::spawn(move || b.write_all(b"ping"));
///     spindle::runtime::wait_readable(a.as_raw_fd(), None)?;
///     let mut buf = [0; 4];
///     a.read_exact(&mut buf)?;
///     assert_eq!(&buf, b"ping");
///     writer.join().unwrap()
/// })
/// .unwrap();
/// ```
///
/// # Panics
///
/// Outside a fiber of a runtime; and as a cancellation point.
///
/// # Errors
///
/// [`io::ErrorKind::TimedOut`] when the deadline passes first; an error
/// naming the fd when it is invalid, closed during the wait, or in an error
/// state; [`io::ErrorKind::Interrupted`] when the runtime shuts down while
/// the fiber is already unwinding.
#[track_caller]
pub fn wait_readable(fd: RawFd, deadline: Option<Instant>) -> io::Result<()> {
    wait(
        fd,
        Interest::Read,
        deadline,
        "spindle::runtime::wait_readable",
    )
}

/// Parks the running fiber until `fd` is writable, or `deadline` passes;
/// the counterpart of [`wait_readable`].
///
/// # Examples
///
/// ```
/// use std::os::fd::AsRawFd;
/// use std::os::unix::net::UnixStream;
///
/// spindle::run(|| {
///     let (a, _b) = UnixStream::pair().unwrap();
///     spindle::runtime::wait_writable(a.as_raw_fd(), None).unwrap();
/// });
/// ```
///
/// # Panics
///
/// As [`wait_readable`].
///
/// # Errors
///
/// As [`wait_readable`]; a writer also gets
/// [`io::ErrorKind::BrokenPipe`] when the other end hung up.
#[track_caller]
pub fn wait_writable(fd: RawFd, deadline: Option<Instant>) -> io::Result<()> {
    wait(
        fd,
        Interest::Write,
        deadline,
        "spindle::runtime::wait_writable",
    )
}

#[track_caller]
fn wait(
    fd: RawFd,
    interest: Interest,
    deadline: Option<Instant>,
    what: &'static str,
) -> io::Result<()> {
    super::coop::proceed();
    let p = Parker::current(what);
    if p.checkpoint().is_err() {
        return Err(shutting_down());
    }
    if deadline.is_some_and(|d| Instant::now() >= d) {
        return Err(timed_out(fd, interest));
    }
    let (reactor, key) = (p.reactor(), p.key());
    if !reactor.register(fd, interest, key)? {
        return Ok(());
    }
    let _registration = Registration { reactor, fd, key };
    let timer = deadline.map(|d| p.timer(d));
    loop {
        p.clear_io_events();
        if p.park_in(
            TaskState::WaitingIo,
            WaitingOn::Fd(fd, interest.direction()),
        )
        .is_err()
        {
            return Err(shutting_down());
        }
        let events = p.io_events();
        if events != 0 {
            return outcome(fd, interest, events);
        }
        if timer.as_ref().is_some_and(|t| t.fired()) {
            return Err(timed_out(fd, interest));
        }
    }
}

/// `fd` is about to be closed: fails the waits on it of the fibers of this
/// thread's runtime (they see an error naming the closed fd) and takes it
/// out of the reactor, so nothing of it is left to apply to the next file
/// that gets its number. For the `hook` feature's `close`; does nothing
/// outside a runtime or while the scheduler is busy (a close from inside
/// it), where the reactor's own check for closed fds still catches them.
#[cfg_attr(not(feature = "hook"), allow(dead_code))]
pub(crate) fn closing(fd: RawFd) {
    try_with_runtime(|rt| rt.fail_fd_waiters(fd, None));
}

pub(crate) fn shutting_down() -> io::Error {
    io::Error::new(
        io::ErrorKind::Interrupted,
        "the spindle runtime is shutting down",
    )
}

pub(crate) fn timed_out(fd: RawFd, interest: Interest) -> io::Error {
    let what = match interest {
        Interest::Read => "readable",
        Interest::Write => "writable",
    };
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("fd {fd} did not become {what} before the deadline"),
    )
}

/// Turns the events that ended a wait into its result (module docs table).
fn outcome(fd: RawFd, interest: Interest, events: u32) -> io::Result<()> {
    let has = |bits: libc::c_int| events & bits as u32 != 0;
    if events & CLOSED != 0 {
        let e = io::Error::from_raw_os_error(libc::EBADF);
        return Err(context(e, "fd closed while a fiber waited on it", fd));
    }
    match interest {
        Interest::Read if has(libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP) => return Ok(()),
        Interest::Write if has(libc::EPOLLERR) => {}
        Interest::Write if has(libc::EPOLLHUP) => {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!("fd {fd} hung up (EPOLLHUP): the other end is closed"),
            ))
        }
        Interest::Write if has(libc::EPOLLOUT) => return Ok(()),
        _ => {}
    }
    // EPOLLERR: the socket's pending error if it has one.
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are valid for writes of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        )
    };
    if r == 0 && err != 0 {
        Err(context(io::Error::from_raw_os_error(err), "EPOLLERR", fd))
    } else {
        Err(io::Error::other(format!(
            "fd {fd} reported an error condition (EPOLLERR)"
        )))
    }
}
