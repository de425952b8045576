//! The libc calls spindle's own reactor, timers and sockets make directly.
//!
//! With the `hook` feature the program's references to these names bind to
//! the hooks, so these go to the real libc functions instead (found before
//! `main`, see `hook::symbols`); without it they are libc's. Either way
//! spindle never runs its own I/O through a hook.

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

/// `fcntl(fd, F_SETFL, flags)`. The hook forgets what it knew of `fd`'s
/// mode and learns it again at its next call.
#[cfg(feature = "hook")]
pub(crate) fn set_flags(fd: libc::c_int, flags: libc::c_int) -> libc::c_int {
    crate::hook::relearn(fd);
    // SAFETY: F_SETFL takes the flags by value.
    unsafe { crate::hook::symbols::fcntl(fd, libc::F_SETFL, flags as libc::c_ulong) }
}

/// `fcntl(fd, F_SETFL, flags)`.
#[cfg(not(feature = "hook"))]
pub(crate) fn set_flags(fd: libc::c_int, flags: libc::c_int) -> libc::c_int {
    // SAFETY: F_SETFL takes the flags by value.
    unsafe { libc::fcntl(fd, libc::F_SETFL, flags) }
}
