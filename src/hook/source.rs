//! How a hooked call waits on a fiber: a persistent, edge-triggered
//! registration per managed fd, and the "a short read drained it" rule.
//!
//! ## One registration per fd, made once
//!
//! The first time a fiber must wait on a managed fd (its call said
//! `EAGAIN`), the fd is added to that fiber's runtime's epoll set as a
//! *source*, as spindle's own sockets are (see "Sources" in the reactor
//! docs): `EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET`, once. The
//! registration is kept in the fd's entry of the hook's table (`fd.rs`):
//! the runtime that holds it, its token, its poller. Every later wait on a
//! fiber of that runtime costs no `epoll_ctl`. The registration is removed
//! by the `close`, `dup2` and `dup3` hooks, and by anything else that
//! gives the number a new state (`accept`, `dup`), *before* the kernel can
//! hand the number to another file: an epoll entry names an open file
//! description, and one that outlived its fd number (a `dup` of it still
//! open) must not be taken for the new file's.
//!
//! ## Short reads and writes
//!
//! A stream (`SOCK_STREAM` socket, pipe) that gave a read fewer bytes than
//! asked has an empty receive queue; one that took fewer bytes than given
//! has a full send buffer. The hook records that in the source
//! (`not_ready`), and the next call in that direction on a fiber of that
//! runtime parks for the next edge at once, without the system call that
//! would only have said `EAGAIN`, exactly as spindle's `TcpStream` does.
//! This is exact for the same reason edge-triggering is: nothing polls the
//! reactor between the short call and the fiber's next look at the flag
//! (the thread is running the fiber), and any readiness after the short
//! call is a new edge, which sets the flag at the next poll. Not for
//! datagrams (a short datagram says nothing about the next one), nor for
//! `MSG_PEEK`, `readv`, `recvmsg`, `recvfrom`, `writev`, `sendmsg`, whose
//! hooks give no length to compare with.
//!
//! The flag is a hint for this runtime's fibers only: other threads using
//! the fd (plain threads pass straight through to libc and `poll(2)`) may
//! empty or fill it meanwhile; a fiber woken for nothing simply tries, sees
//! `EAGAIN`, and waits again.
//!
//! ## Several workers
//!
//! The registration belongs to one runtime's epoll set. A fiber of another
//! runtime (another worker of the same pool, or a runtime started later on
//! the same thread) waiting on the same fd does not take it over: fibers
//! of the owner may be waiting on it, and the owner's reactor is not this
//! thread's to change. It waits the old way instead, with a one-shot
//! registration in its own epoll set for that wait only (two `epoll_ctl`),
//! which is correct with any number of epoll sets watching the fd. So an
//! fd moved to another worker keeps working, at the cost of the one-shot
//! waits there, until it is closed. A registration outlives its runtime
//! until the fd is closed: it keeps that runtime's epoll fd open (the
//! poller's reference) meanwhile.

use std::time::Instant;

use libc::c_int;

use super::fd::{self, STREAM};
use super::io::{Dir, Wait};
use crate::runtime::io_source::{self, Interest, Registration};
use crate::runtime::wait::Parker;

impl From<Dir> for Interest {
    fn from(dir: Dir) -> Interest {
        match dir {
            Dir::Read => Interest::Read,
            Dir::Write => Interest::Write,
        }
    }
}

/// The registration of `fd` with the runtime of the running fiber `p`,
/// made now if the fd has none (`None`: it is another runtime's, or cannot
/// be made; wait the one-shot way).
fn token_for(p: &Parker, fd: c_int) -> Option<u64> {
    if let Some(token) = fd::registered_with(fd, p.runtime_id()) {
        return Some(token);
    }
    // Only fds the hook manages: their registration is removed when their
    // number is freed, which the hook sees (not a poll's own epoll fd).
    if !fd::parks(fd::get(fd)) || !fd::claim(fd) {
        return None;
    }
    match Registration::new(p, fd) {
        Ok(Some(reg)) => {
            let token = reg.token;
            match fd::publish(fd, reg.into_raw()) {
                Ok(()) => Some(token),
                Err(parts) => {
                    // SAFETY: the parts of `reg`, just given back unused.
                    let reg = unsafe { Registration::from_raw(parts.0, parts.1, parts.2) };
                    reg.release(fd);
                    None
                }
            }
        }
        // Not watchable (never for a socket or pipe), or epoll's limits:
        // the one-shot wait reports what to do.
        Ok(None) | Err(_) => {
            fd::unclaim(fd);
            None
        }
    }
}

/// Parks the running fiber `p` until `fd` may be ready for `dir`, or
/// `deadline`; `eagain`: the call just said `EAGAIN` (rather than the
/// source's flag saying so, see [`may_be_ready`]).
///
/// # Panics
///
/// As a cancellation point (the fiber unwinds from here).
pub(crate) fn wait(
    p: &Parker,
    fd: c_int,
    dir: Dir,
    deadline: Option<Instant>,
    eagain: bool,
) -> Result<(), Wait> {
    let r = match token_for(p, fd) {
        Some(token) => io_source::wait_on_source(p, fd, token, dir.into(), deadline, eagain),
        None => match dir {
            Dir::Read => crate::runtime::wait_readable(fd, deadline),
            Dir::Write => crate::runtime::wait_writable(fd, deadline),
        },
    };
    r.map_err(|e| Wait::of(&e))
}

/// Whether a call on `fd` for `dir` by the running fiber `p` should be
/// tried: false only when the fd's source on `p`'s runtime says it was
/// last seen drained and no edge came since (module docs).
#[inline(always)]
pub(crate) fn may_be_ready(p: &Parker, fd: c_int, dir: Dir) -> bool {
    fd::registered_with(fd, p.runtime_id())
        .map_or(true, |token| io_source::may_be_ready(p, token, dir.into()))
}

/// A call of `len` bytes on `fd` (in `state`) for `dir` moved `moved`:
/// if that is short on a stream, records in the fd's source on `p`'s
/// runtime that the fd is drained (module docs). `len` 0: no length known.
#[inline(always)]
pub(crate) fn moved(p: &Parker, fd: c_int, state: u8, dir: Dir, len: usize, moved: usize) {
    if state & STREAM == 0 || moved == 0 || moved >= len {
        return;
    }
    if let Some(token) = fd::registered_with(fd, p.runtime_id()) {
        io_source::not_ready(p, token, dir.into());
    }
}

/// Releases a registration taken out of the table (`fd.rs`); `fd` is still
/// open.
pub(crate) fn release(fd: c_int, parts: Option<(u64, u64, *const ())>) {
    if let Some((runtime, token, poller)) = parts {
        // SAFETY: parts taken out of the table, where `publish` stored
        // those of one `into_raw`; taking them out made them ours, once.
        unsafe { Registration::from_raw(runtime, token, poller) }.release(fd);
    }
}
