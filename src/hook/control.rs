//! The calls that change what the hook must know about an fd: `fcntl`
//! (`F_GETFL`, `F_SETFL`, `F_DUPFD`, `F_DUPFD_CLOEXEC`; glibc's `fcntl64`
//! too), `ioctl(FIONBIO)`, `setsockopt(SO_RCVTIMEO / SO_SNDTIMEO)`,
//! `close`, `dup`, `dup2`, `dup3`.
//!
//! ## The program's view of `O_NONBLOCK` wins
//!
//! On a managed fd (see `fd.rs`) `O_NONBLOCK` stays set underneath whatever
//! the program asks; what it asked is kept as `USER_NB`. `F_GETFL` shows
//! `O_NONBLOCK` exactly when the program set it; `F_SETFL` and `FIONBIO`
//! set or clear `USER_NB`. A program that makes its fd non-blocking then
//! gets `EAGAIN` as it expects: its calls pass straight through.
//!
//! ## Closing: the classic bug
//!
//! Once `close` returns, the kernel may hand the same number to the next
//! `socket`, `accept` or `open`, on any thread. So the hook forgets the fd
//! (state 0) and fails the waits of fibers of this thread's runtime parked
//! on it (they see `EBADF`, and their fd leaves the epoll set) *before* the
//! real `close`: nothing the old fd left behind can be applied to the new
//! one. Fibers of another thread's runtime parked on it are failed by their
//! reactor's own check for closed fds. `dup2` and `dup3` close their target
//! the same way, then give it the state of the fd they copied, as `dup` and
//! `F_DUPFD` do (the copies share `O_NONBLOCK`: one open file description).

use libc::{c_int, c_ulong, c_void, socklen_t};

use super::fd::{self, KNOWN, MANAGED, RCV_TIMEO, SND_TIMEO, USER_NB};
use super::symbols as real;

/// `fcntl` for both entry points; `real` is the matching libc function.
fn fcntl_with(
    fd: c_int,
    cmd: c_int,
    arg: c_ulong,
    real: unsafe fn(c_int, c_int, c_ulong) -> c_int,
) -> c_int {
    let state = fd::get(fd);
    match cmd {
        libc::F_GETFL => {
            // SAFETY: F_GETFL reads no argument.
            let r = unsafe { real(fd, cmd, arg) };
            if r >= 0 && fd::parks(state) {
                r & !libc::O_NONBLOCK
            } else {
                r
            }
        }
        libc::F_SETFL if state & MANAGED != 0 => {
            let wants = arg as c_int & libc::O_NONBLOCK != 0;
            // SAFETY: F_SETFL takes the flags by value.
            let r = unsafe { real(fd, cmd, arg | libc::O_NONBLOCK as c_ulong) };
            if r == 0 {
                fd::update(fd, USER_NB, wants);
                if wants {
                    fd::unregister(fd);
                }
            }
            r
        }
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
            // SAFETY: these take the lowest new fd number by value.
            let r = unsafe { real(fd, cmd, arg) };
            if r >= 0 {
                fd::set(r, state);
            }
            r
        }
        // SAFETY: any other command, passed on unchanged.
        _ => unsafe { real(fd, cmd, arg) },
    }
}

/// Hook of `fcntl(2)`; see the [module docs](self). Declared with one
/// `unsigned long` argument where C's is variadic: on x86_64 and AArch64
/// Linux a variadic integer or pointer argument is passed exactly as a
/// named one, so this reads what the caller passed.
///
/// # Safety
///
/// As `fcntl(2)`.
#[no_mangle]
pub unsafe extern "C-unwind" fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    fcntl_with(fd, cmd, arg, real::fcntl)
}

/// Hook of glibc's `fcntl64` (what C code built with newer glibc headers
/// calls); as [`fcntl`].
///
/// # Safety
///
/// As `fcntl(2)`.
#[no_mangle]
pub unsafe extern "C-unwind" fn fcntl64(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    fcntl_with(fd, cmd, arg, real::fcntl64)
}

/// Hook of `ioctl(2)`; only `FIONBIO` on a managed fd is the hook's (see
/// the [module docs](self)). Variadic in C; see [`fcntl`].
///
/// # Safety
///
/// As `ioctl(2)`.
#[no_mangle]
pub unsafe extern "C-unwind" fn ioctl(fd: c_int, request: c_ulong, arg: c_ulong) -> c_int {
    if request == libc::FIONBIO as c_ulong && fd::get(fd) & MANAGED != 0 && arg != 0 {
        // SAFETY: FIONBIO's argument points to an int.
        let wants = unsafe { *(arg as *const c_int) } != 0;
        let on: c_int = 1;
        // SAFETY: FIONBIO with a pointer to a live int.
        let r = unsafe { real::ioctl(fd, request, &on as *const c_int as c_ulong) };
        if r == 0 {
            fd::update(fd, USER_NB, wants);
            if wants {
                fd::unregister(fd);
            }
        }
        return r;
    }
    // SAFETY: the caller's arguments, passed on unchanged.
    unsafe { real::ioctl(fd, request, arg) }
}

/// Hook of `setsockopt(2)`: records whether `SO_RCVTIMEO` / `SO_SNDTIMEO`
/// are set (see `fd.rs`).
///
/// # Safety
///
/// As `setsockopt(2)`.
#[no_mangle]
pub unsafe extern "C-unwind" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    value: *const c_void,
    len: socklen_t,
) -> c_int {
    // SAFETY: the caller's arguments, passed on unchanged.
    let r = unsafe { real::setsockopt(fd, level, name, value, len) };
    let bit = match (level, name) {
        (libc::SOL_SOCKET, libc::SO_RCVTIMEO) => RCV_TIMEO,
        (libc::SOL_SOCKET, libc::SO_SNDTIMEO) => SND_TIMEO,
        _ => return r,
    };
    if r == 0 && fd::get(fd) & KNOWN != 0 {
        // The kernel accepted it, so `value` holds a timeval.
        // SAFETY: as just said; read unaligned, as C may pass any pointer.
        let tv = unsafe { value.cast::<libc::timeval>().read_unaligned() };
        fd::update(fd, bit, tv.tv_sec > 0 || tv.tv_usec > 0);
    }
    r
}

/// Forgets `fd` before the kernel can reuse its number (module docs).
fn forget(fd: c_int) {
    fd::set(fd, 0);
    crate::runtime::fd_wait::closing(fd);
}

/// Hook of `close(2)`; see the [module docs](self).
///
/// # Safety
///
/// As `close(2)`.
#[no_mangle]
pub unsafe extern "C-unwind" fn close(fd: c_int) -> c_int {
    forget(fd);
    // SAFETY: the caller's fd.
    unsafe { real::close(fd) }
}

/// Hook of `dup(2)`: the copy gets the original's state.
///
/// # Safety
///
/// As `dup(2)`.
#[no_mangle]
pub unsafe extern "C-unwind" fn dup(old: c_int) -> c_int {
    // SAFETY: the caller's fd.
    let r = unsafe { real::dup(old) };
    if r >= 0 {
        fd::set(r, fd::get(old));
    }
    r
}

/// Whether `fd` is open (a `dup2` from a closed fd closes nothing).
fn is_open(fd: c_int) -> bool {
    // SAFETY: F_GETFD reads no argument.
    unsafe { real::fcntl(fd, libc::F_GETFD, 0) >= 0 }
}

/// Hook of `dup2(2)`; see the [module docs](self).
///
/// # Safety
///
/// As `dup2(2)`.
#[no_mangle]
pub unsafe extern "C-unwind" fn dup2(old: c_int, new: c_int) -> c_int {
    if old == new || !is_open(old) {
        // SAFETY: the caller's fds (libc answers, closing nothing).
        return unsafe { real::dup2(old, new) };
    }
    forget(new);
    // SAFETY: the caller's fds.
    let r = unsafe { real::dup2(old, new) };
    if r >= 0 {
        fd::set(new, fd::get(old));
    }
    r
}

/// Hook of `dup3(2)`; see the [module docs](self).
///
/// # Safety
///
/// As `dup3(2)`.
#[no_mangle]
pub unsafe extern "C-unwind" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    if old == new || !is_open(old) {
        // SAFETY: the caller's fds (libc answers EINVAL or EBADF).
        return unsafe { real::dup3(old, new, flags) };
    }
    forget(new);
    // SAFETY: the caller's fds.
    let r = unsafe { real::dup3(old, new, flags) };
    if r >= 0 {
        fd::set(new, fd::get(old));
    }
    r
}
