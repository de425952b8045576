//! `poll` and `ppoll`.
//!
//! On a fiber, a poll first asks the kernel with a zero timeout; if nothing
//! is ready (and the timeout is not zero) the fiber parks until one of the
//! fds may be ready or the timeout passes, then asks again. One fd waiting
//! only for `POLLIN` or only for `POLLOUT` parks on the reactor directly;
//! any other set is put in a temporary epoll set, whose own fd the fiber
//! waits on (an epoll fd is readable when one of its fds is ready), so
//! every kind of fd and event `poll` takes works the same.
//!
//! `poll` with no fds is a sleep. `ppoll` with a signal mask goes straight
//! to libc (the mask must apply while the thread sleeps, which parking a
//! fiber cannot do); without one it is `poll` with a `timespec` timeout.
//! Elsewhere (no fiber) both go straight to libc.

use std::time::{Duration, Instant};

use libc::{c_int, nfds_t, pollfd, sigset_t, timespec};

use super::io::{errno, set_errno, wait, Dir, Wait};
use super::symbols as real;
use crate::runtime::wait::Parker;

/// Polls on a fiber until `deadline` (`None`: no timeout); see the module
/// docs.
///
/// # Safety
///
/// `fds` valid for reads and writes of `n` entries.
unsafe fn poll_on_fiber(
    fiber: &Parker,
    fds: *mut pollfd,
    n: nfds_t,
    deadline: Option<Instant>,
) -> c_int {
    let saved = errno();
    let mut failed = false;
    loop {
        // SAFETY: the caller's fds.
        let r = unsafe { real::poll(fds, n, 0) };
        if r != 0 {
            if r > 0 {
                set_errno(saved);
            }
            return r;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) || failed {
            set_errno(saved);
            return 0;
        }
        let list: &[pollfd] = if n == 0 {
            &[]
        } else {
            // SAFETY: the caller's `n` fds, non-null (checked by the hook).
            unsafe { std::slice::from_raw_parts(fds, n as usize) }
        };
        let outcome = match one_direction(list) {
            // The zero-timeout poll just saw it not ready: as EAGAIN.
            Some((fd, dir)) => wait(fd, dir, deadline, Some(fiber), true),
            None => wait_any(fiber, list, deadline),
        };
        match outcome {
            Ok(()) => {}
            Err(Wait::TimedOut) => {}
            Err(Wait::Interrupted) => {
                set_errno(libc::EINTR);
                return -1;
            }
            // Poll once more: it reports the closed fd (POLLNVAL).
            Err(Wait::Closed) => failed = true,
            // Poll once more: it reports POLLHUP/POLLERR/POLLNVAL itself.
            Err(Wait::Failed) => failed = true,
        }
    }
}

/// The one fd and direction when the set is a single plain read or write
/// wait.
fn one_direction(list: &[pollfd]) -> Option<(c_int, Dir)> {
    let [p] = list else { return None };
    if p.fd < 0 {
        return None;
    }
    match p.events {
        libc::POLLIN => Some((p.fd, Dir::Read)),
        libc::POLLOUT => Some((p.fd, Dir::Write)),
        _ => None,
    }
}

/// Closes the temporary epoll fd on every way out (unwinding included).
struct EpollFd(c_int);

impl Drop for EpollFd {
    fn drop(&mut self) {
        // SAFETY: the fd was made by `wait_any` and is closed only here.
        unsafe { real::close(self.0) };
    }
}

/// Parks until one fd of `list` may be ready (module docs).
fn wait_any(fiber: &Parker, list: &[pollfd], deadline: Option<Instant>) -> Result<(), Wait> {
    // SAFETY: no pointers.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(Wait::Failed);
    }
    let ep = EpollFd(ep);
    let mut any = false;
    for p in list.iter().filter(|p| p.fd >= 0) {
        let mut ev = libc::epoll_event {
            // poll's event bits have the same values as epoll's.
            events: (p.events as u32)
                & (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLPRI | libc::EPOLLRDHUP) as u32,
            u64: 0,
        };
        // SAFETY: `ev` is valid for the call.
        if unsafe { libc::epoll_ctl(ep.0, libc::EPOLL_CTL_ADD, p.fd, &mut ev) } == 0 {
            any = true;
        }
        // EEXIST (the fd twice: its first entry watches it), EPERM (a
        // regular file, always ready: the zero-timeout poll saw it), EBADF
        // (poll reports POLLNVAL): nothing to wait for.
    }
    if !any {
        // Nothing can become ready: sleep out the timeout.
        return match deadline {
            Some(d) => {
                crate::sleep_until(d);
                Err(Wait::TimedOut)
            }
            None => {
                crate::sleep(Duration::from_secs(100 * 365 * 24 * 3600));
                Err(Wait::TimedOut)
            }
        };
    }
    // Never learned by the hook, so waited on the one-shot way (a source
    // for it would outlive its `close`, which is the real one).
    wait(ep.0, Dir::Read, deadline, Some(fiber), true)
}

/// Hook of `poll(2)`; see the [module docs](self).
///
/// # Safety
///
/// As `poll(2)`.
#[no_mangle]
pub unsafe extern "C-unwind" fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int {
    let fiber = Parker::try_current();
    let Some(fiber) = fiber.filter(|_| timeout != 0 && (n == 0 || !fds.is_null())) else {
        // SAFETY: the caller's arguments, passed on unchanged.
        return unsafe { real::poll(fds, n, timeout) };
    };
    let deadline = u64::try_from(timeout)
        .ok()
        .and_then(|ms| Instant::now().checked_add(Duration::from_millis(ms)));
    // SAFETY: the caller's fds.
    unsafe { poll_on_fiber(&fiber, fds, n, deadline) }
}

/// Hook of `ppoll(2)`; see the [module docs](self).
///
/// # Safety
///
/// As `ppoll(2)`.
#[no_mangle]
pub unsafe extern "C-unwind" fn ppoll(
    fds: *mut pollfd,
    n: nfds_t,
    timeout: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    // SAFETY: the caller's `timeout`, readable when not null.
    let t = (!timeout.is_null()).then(|| unsafe { *timeout });
    let valid = t.map_or(true, |t| {
        t.tv_sec >= 0 && (0..1_000_000_000).contains(&t.tv_nsec)
    });
    let zero = t.is_some_and(|t| t.tv_sec == 0 && t.tv_nsec == 0);
    let fiber = Parker::try_current();
    let hooked = mask.is_null() && valid && !zero && (n == 0 || !fds.is_null());
    let Some(fiber) = fiber.filter(|_| hooked) else {
        // SAFETY: the caller's arguments, passed on unchanged.
        return unsafe { real::ppoll(fds, n, timeout, mask) };
    };
    let deadline = t
        .and_then(|t| Instant::now().checked_add(Duration::new(t.tv_sec as u64, t.tv_nsec as u32)));
    // SAFETY: the caller's fds.
    unsafe { poll_on_fiber(&fiber, fds, n, deadline) }
}
