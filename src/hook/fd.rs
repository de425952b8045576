//! What the hook knows about each fd: whether it is a socket or pipe the
//! hook made non-blocking underneath, what the program itself asked for
//! (`O_NONBLOCK`), and whether it has `SO_RCVTIMEO` / `SO_SNDTIMEO` set.
//!
//! ## The table
//!
//! One byte of state per fd number, in chunks of 4096 allocated with
//! `mmap` on first use and never freed, reached through a fixed array of
//! chunk pointers: 1024 chunks, so fds up to 4,194,303. Reading a state is
//! two loads and no lock, safe anywhere (signal handlers, before `main`,
//! any thread); an fd past the table is never managed (it passes through).
//!
//! ## States
//!
//! | bits | meaning | a call on a fiber | a call elsewhere |
//! |---|---|---|---|
//! | 0 | never seen on a fiber | learn it, then as below | straight to libc |
//! | `KNOWN` | not a socket or pipe (a file, a tty, an epoll fd...) | straight to libc | straight to libc |
//! | `KNOWN|MANAGED` | socket or pipe, `O_NONBLOCK` set by the hook, blocking for the program | try, park on `EAGAIN` | try, `poll(2)` on `EAGAIN` (so it still blocks) |
//! | `KNOWN|MANAGED|USER_NB` | the program wants it non-blocking | straight to libc | straight to libc |
//!
//! `RCV_TIMEO` / `SND_TIMEO` ride along: the socket has a receive / send
//! timeout, which the hook reads (`getsockopt`) when it is about to wait.
//!
//! ## Who writes a state
//!
//! - [`learn`]: the first hooked call on a fiber that meets state 0.
//! - the `fcntl(F_SETFL)` / `ioctl(FIONBIO)` hooks: `USER_NB`.
//! - the `setsockopt` hook: the timeout bits.
//! - `close`, `dup2`, `dup3` (for the fd they close): back to 0 *before* the
//!   real call, so the number, once the kernel can hand it out again, is
//!   met as new; `dup`, `dup2`, `dup3`, `fcntl(F_DUPFD*)` copy the state of
//!   the old fd to the new one (they share `O_NONBLOCK`).

use std::sync::atomic::{AtomicPtr, AtomicU8, Ordering};

use libc::c_int;

use super::symbols as real;

/// The state has been learned.
pub(crate) const KNOWN: u8 = 1;
/// A socket or pipe whose `O_NONBLOCK` the hook set.
pub(crate) const MANAGED: u8 = 2;
/// The program wants this fd non-blocking.
pub(crate) const USER_NB: u8 = 4;
/// `SO_RCVTIMEO` is set (non-zero).
pub(crate) const RCV_TIMEO: u8 = 8;
/// `SO_SNDTIMEO` is set (non-zero).
pub(crate) const SND_TIMEO: u8 = 16;

const CHUNK: usize = 4096;
const CHUNKS: usize = 1024;

type Chunk = [AtomicU8; CHUNK];

static TABLE: [AtomicPtr<Chunk>; CHUNKS] = [NO_CHUNK; CHUNKS];

#[allow(clippy::declare_interior_mutable_const)]
const NO_CHUNK: AtomicPtr<Chunk> = AtomicPtr::new(std::ptr::null_mut());

/// The slot of `fd`; allocates its chunk if `create`.
fn slot(fd: c_int, create: bool) -> Option<&'static AtomicU8> {
    let fd = usize::try_from(fd).ok()?;
    let entry = TABLE.get(fd / CHUNK)?;
    let mut chunk = entry.load(Ordering::Acquire);
    if chunk.is_null() {
        if !create {
            return None;
        }
        chunk = new_chunk()?;
        if let Err(won) = entry.compare_exchange(
            std::ptr::null_mut(),
            chunk,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: `chunk` is the mapping made just above, of one
            // chunk's size, which nothing else has seen.
            unsafe { libc::munmap(chunk.cast(), std::mem::size_of::<Chunk>()) };
            chunk = won;
        }
    }
    // SAFETY: non-null chunk pointers come from `new_chunk` and are never
    // unmapped once published.
    Some(unsafe { &(*chunk)[fd % CHUNK] })
}

/// A zeroed chunk from `mmap` (async-signal-safe, unlike `malloc`).
fn new_chunk() -> Option<*mut Chunk> {
    // SAFETY: an anonymous private mapping; no existing memory is touched.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            std::mem::size_of::<Chunk>(),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    // Zeroed pages are a chunk of zero states (AtomicU8 has u8's layout).
    (p != libc::MAP_FAILED).then_some(p.cast())
}

/// The state of `fd` (0 if never learned).
#[inline(always)]
pub(crate) fn get(fd: c_int) -> u8 {
    slot(fd, false).map_or(0, |s| s.load(Ordering::Acquire))
}

/// Sets the state of `fd`.
pub(crate) fn set(fd: c_int, state: u8) {
    if let Some(s) = slot(fd, state != 0) {
        s.store(state, Ordering::Release);
    }
}

/// Sets (`on`) or clears `bits` in the state of a learned `fd`; does
/// nothing for an fd never learned.
pub(crate) fn update(fd: c_int, bits: u8, on: bool) {
    if let Some(s) = slot(fd, false) {
        let _ = s.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
            (v & KNOWN != 0).then_some(if on { v | bits } else { v & !bits })
        });
    }
}

/// Whether a call on `fd` in this state is the hook's to make blocking.
#[inline(always)]
pub(crate) fn parks(state: u8) -> bool {
    state & (MANAGED | USER_NB) == MANAGED
}

/// Learns the state of `fd` (first call on a fiber): a socket or pipe that
/// the program left blocking is made non-blocking underneath. Returns the
/// state (0 if `fd` is not open: the call itself then reports `EBADF`).
pub(crate) fn learn(fd: c_int) -> u8 {
    // SAFETY: `st` is valid for writes of a `stat`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstat(fd, &mut st) } < 0 {
        return 0;
    }
    let kind = st.st_mode & libc::S_IFMT;
    if kind != libc::S_IFSOCK && kind != libc::S_IFIFO {
        set(fd, KNOWN);
        return KNOWN;
    }
    // SAFETY: F_GETFL takes no argument.
    let flags = unsafe { real::fcntl(fd, libc::F_GETFL, 0) };
    if flags < 0 {
        return 0;
    }
    let mut state = KNOWN | MANAGED;
    if flags & libc::O_NONBLOCK != 0 {
        state |= USER_NB;
    // SAFETY: F_SETFL takes the flags as its argument.
    } else if unsafe { real::fcntl(fd, libc::F_SETFL, (flags | libc::O_NONBLOCK) as _) } < 0 {
        set(fd, KNOWN);
        return KNOWN;
    }
    if kind == libc::S_IFSOCK {
        if timeout(fd, libc::SO_RCVTIMEO).is_some() {
            state |= RCV_TIMEO;
        }
        if timeout(fd, libc::SO_SNDTIMEO).is_some() {
            state |= SND_TIMEO;
        }
    }
    set(fd, state);
    state
}

/// The socket's `SO_RCVTIMEO` or `SO_SNDTIMEO` (`which`), `None` when unset
/// (zero) or unreadable.
pub(crate) fn timeout(fd: c_int, which: c_int) -> Option<std::time::Duration> {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: `tv` and `len` are valid for writes of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            which,
            (&mut tv as *mut libc::timeval).cast(),
            &mut len,
        )
    };
    if r < 0 || (tv.tv_sec <= 0 && tv.tv_usec <= 0) {
        return None;
    }
    Some(std::time::Duration::new(
        tv.tv_sec as u64,
        tv.tv_usec as u32 * 1000,
    ))
}
