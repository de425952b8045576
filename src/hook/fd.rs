//! What the hook knows about each fd: whether it is a socket or pipe the
//! hook made non-blocking underneath, what the program itself asked for
//! (`O_NONBLOCK`), and whether it has `SO_RCVTIMEO` / `SO_SNDTIMEO` set.
//!
//! ## The table
//!
//! One [`Entry`] per fd number (a byte of state and the fd's persistent
//! registration, see `source.rs`: 32 bytes), in chunks of 4096 allocated
//! with `mmap` on first use and never freed, reached through a fixed array
//! of chunk pointers: 1024 chunks, so fds up to 4,194,303. Reading a state
//! is two loads and no lock, safe anywhere (signal handlers, before `main`,
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
//! `STREAM` too: a short read or write shows the fd drained (`source.rs`).
//!
//! ## The registration
//!
//! `owner`, `token` and `poller` hold the fd's registration with one
//! runtime's reactor. Made by a fiber of that runtime ([`claim`], then
//! [`publish`] or [`unclaim`]), read by its fibers ([`registered_with`]),
//! and taken out ([`set`], [`unregister`]) by whichever thread frees the
//! number or makes the fd non-blocking, which then owns it and releases it.
//! Only that swap of `owner` to 0 hands the poller's reference on, so it is
//! released once; readers never touch the poller.
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

use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicU8, Ordering};

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

/// A stream (`SOCK_STREAM` socket, pipe): a read shorter than its buffer
/// emptied the receive queue, a write shorter than its data filled the
/// send buffer (see `source.rs`).
pub(crate) const STREAM: u8 = 32;

/// Owner value of an fd whose registration a thread is making right now.
const CLAIMED: u64 = u64::MAX;

const CHUNK: usize = 4096;
const CHUNKS: usize = 1024;

/// What the hook keeps per fd number (all zero: never seen).
pub(crate) struct Entry {
    /// The state bits above.
    state: AtomicU8,
    /// The persistent registration (see `source.rs`): the scheduler id of
    /// the runtime whose reactor holds it, 0 for none, [`CLAIMED`] while
    /// it is being made. `token` and `poller` are valid while it names a
    /// runtime; they are written before it (release) and taken after it
    /// is swapped back to 0.
    owner: AtomicU64,
    /// The registration's token in that reactor.
    token: AtomicU64,
    /// Its poller, one reference owned by the entry (`Registration::into_raw`).
    poller: AtomicPtr<()>,
}

type Chunk = [Entry; CHUNK];

static TABLE: [AtomicPtr<Chunk>; CHUNKS] = [NO_CHUNK; CHUNKS];

#[allow(clippy::declare_interior_mutable_const)]
const NO_CHUNK: AtomicPtr<Chunk> = AtomicPtr::new(std::ptr::null_mut());

/// The entry of `fd`; allocates its chunk if `create`.
fn slot(fd: c_int, create: bool) -> Option<&'static Entry> {
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
    // Zeroed pages are a chunk of entries that are all zero: the atomics
    // have the layout of their integers and pointers, and zero is "never
    // seen", "no registration", null.
    (p != libc::MAP_FAILED).then_some(p.cast())
}

/// The state of `fd` (0 if never learned).
#[inline(always)]
pub(crate) fn get(fd: c_int) -> u8 {
    slot(fd, false).map_or(0, |s| s.state.load(Ordering::Acquire))
}

/// Sets the state of `fd`, whose number the kernel just handed out (or
/// reused) or which is about to be closed: first drops any registration
/// the number still has (see `source.rs`).
pub(crate) fn set(fd: c_int, state: u8) {
    if let Some(s) = slot(fd, state != 0) {
        super::source::release(fd, take_registration(s));
        s.state.store(state, Ordering::Release);
    }
}

/// Drops the registration of `fd`, if it has one: the program made the fd
/// non-blocking itself, so its calls pass straight through from now on,
/// and the fd may be handed to something that registers it in its own
/// name (`spindle::net::TcpStream::from_std`, `spindle::io::Async`),
/// which a registration of the hook's in the same epoll set would refuse
/// (`EEXIST`).
pub(crate) fn unregister(fd: c_int) {
    if let Some(s) = slot(fd, false) {
        super::source::release(fd, take_registration(s));
    }
}

/// The persistent registration of `fd` with the runtime `runtime`: its
/// token, if `fd` has one there.
#[inline(always)]
pub(crate) fn registered_with(fd: c_int, runtime: u64) -> Option<u64> {
    let s = slot(fd, false)?;
    (s.owner.load(Ordering::Acquire) == runtime).then(|| s.token.load(Ordering::Relaxed))
}

/// Whether `fd` has no registration and the caller may make one (then
/// [`publish`] or [`unclaim`] must follow).
pub(crate) fn claim(fd: c_int) -> bool {
    slot(fd, false).is_some_and(|s| {
        s.owner
            .compare_exchange(0, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    })
}

/// Gives up a [`claim`] without a registration.
pub(crate) fn unclaim(fd: c_int) {
    if let Some(s) = slot(fd, false) {
        let _ = s
            .owner
            .compare_exchange(CLAIMED, 0, Ordering::Release, Ordering::Relaxed);
    }
}

/// Stores the registration made after a [`claim`]. Returns the parts back
/// if the fd was forgotten meanwhile (closed by another thread), for the
/// caller to release.
pub(crate) fn publish(
    fd: c_int,
    parts: (u64, u64, *const ()),
) -> Result<(), (u64, u64, *const ())> {
    let Some(s) = slot(fd, false) else {
        return Err(parts);
    };
    let (runtime, token, poller) = parts;
    s.token.store(token, Ordering::Relaxed);
    s.poller.store(poller.cast_mut(), Ordering::Relaxed);
    match s
        .owner
        .compare_exchange(CLAIMED, runtime, Ordering::Release, Ordering::Relaxed)
    {
        Ok(_) => Ok(()),
        Err(_) => {
            s.poller.store(std::ptr::null_mut(), Ordering::Relaxed);
            Err(parts)
        }
    }
}

/// Takes the registration out of an entry, if it has one (a claim being
/// made is cancelled: its maker releases what it made).
fn take_registration(s: &Entry) -> Option<(u64, u64, *const ())> {
    if s.owner.load(Ordering::Relaxed) == 0 {
        return None;
    }
    match s.owner.swap(0, Ordering::Acquire) {
        0 | CLAIMED => None,
        runtime => {
            let token = s.token.load(Ordering::Relaxed);
            let poller = s.poller.swap(std::ptr::null_mut(), Ordering::Relaxed);
            Some((runtime, token, poller.cast_const()))
        }
    }
}

/// Sets (`on`) or clears `bits` in the state of a learned `fd`; does
/// nothing for an fd never learned.
pub(crate) fn update(fd: c_int, bits: u8, on: bool) {
    if let Some(s) = slot(fd, false) {
        let _ = s
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
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
    if kind == libc::S_IFIFO || socket_int(fd, libc::SO_TYPE) == Some(libc::SOCK_STREAM) {
        state |= STREAM;
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

/// The integer socket option `SOL_SOCKET`/`name` of `fd` (`SO_TYPE`,
/// `SO_ERROR`), `None` if unreadable (not a socket).
pub(crate) fn socket_int(fd: c_int, name: c_int) -> Option<c_int> {
    let mut value: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (&mut value as *mut c_int).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(value)
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
