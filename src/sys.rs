//! The libc calls spindle's own reactor, timers and sockets make directly.
//!
//! With the `hook` feature the program's references to these names bind to
//! the hooks, so these go to the real libc functions instead (found before
//! `main`, see `hook::symbols`); without it they are libc's. (The reads
//! spindle's sockets leave to std reach the hook, which passes them through:
//! see "Linking" in the `hook` module docs.)

#[cfg(feature = "hook")]
pub(crate) use crate::hook::symbols::{accept4, connect, poll, read, send, sendmsg, write};
#[cfg(not(feature = "hook"))]
pub(crate) use libc::{accept4, connect, poll, read, send, sendmsg, write};

/// `fcntl(fd, F_GETFL)`.
#[cfg(feature = "hook")]
pub(crate) fn get_flags(fd: libc::c_int) -> libc::c_int {
    // SAFETY: F_GETFL reads no argument.
    unsafe { crate::hook::symbols::fcntl(fd, libc::F_GETFL, 0) }
}

/// `fcntl(fd, F_GETFL)`.
#[cfg(not(feature = "hook"))]
pub(crate) fn get_flags(fd: libc::c_int) -> libc::c_int {
    // SAFETY: F_GETFL reads no argument.
    unsafe { libc::fcntl(fd, libc::F_GETFL) }
}

/// `fcntl(fd, F_SETFL, flags)`, after [`forget_mode`].
#[cfg(feature = "hook")]
pub(crate) fn set_flags(fd: libc::c_int, flags: libc::c_int) -> libc::c_int {
    forget_mode(fd);
    // SAFETY: F_SETFL takes the flags by value.
    unsafe { crate::hook::symbols::fcntl(fd, libc::F_SETFL, flags as libc::c_ulong) }
}

/// `fcntl(fd, F_SETFL, flags)`.
#[cfg(not(feature = "hook"))]
pub(crate) fn set_flags(fd: libc::c_int, flags: libc::c_int) -> libc::c_int {
    // SAFETY: F_SETFL takes the flags by value.
    unsafe { libc::fcntl(fd, libc::F_SETFL, flags) }
}

/// spindle is about to manage `fd`'s mode itself (it makes it non-blocking
/// for its own sockets): with the hook, the hook forgets what it knew of
/// the fd and learns it again at its next call, so the mode spindle set is
/// taken as the program's (the hook then passes the fd's calls through).
pub(crate) fn forget_mode(fd: libc::c_int) {
    #[cfg(feature = "hook")]
    crate::hook::relearn(fd);
    #[cfg(not(feature = "hook"))]
    let _ = fd;
}
