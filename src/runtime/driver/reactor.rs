//! The reactor: fd readiness with `epoll`, and where the scheduler blocks
//! when no fiber is ready. The fiber-facing waits built on it are
//! `wait_readable` and `wait_writable` (in `fd_wait.rs`) and the sources of
//! `io_source.rs`.
//!
//! ## How a wait works
//!
//! A fiber that waits on an fd registers its interest (read or write) and
//! parks. The fd is added to the epoll set with `EPOLLONESHOT`,
//! level-triggered, and the event's data is the fd number. When epoll
//! reports it, the reactor wakes the waiters whose interest the event
//! matches, in the order they registered, and re-arms the fd for the others
//! (`EPOLL_CTL_MOD`) or removes it (`EPOLL_CTL_DEL`) when none is left. A
//! fiber that leaves its wait for another reason (deadline, cancellation)
//! deregisters the same way. So an fd is in the epoll set exactly while a
//! fiber waits on it, and one wait costs `epoll_ctl` twice.
//!
//! Several fibers may wait on one fd (a reader and a writer of a socket,
//! say): the armed mask is the union of their interests.
//!
//! ## Sources: persistent, edge-triggered registrations
//!
//! The sockets of [`spindle::net`](crate::net) and the fds wrapped in
//! [`spindle::io::Async`](crate::io::Async) own their fd, so the reactor
//! can keep them registered for their whole life instead of twice per
//! wait. A *source* is added once, the first time its owner must wait, with
//! `EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET` and a token as its event
//! data (a tag bit, the slot's generation, the slot's index). Its slot lists
//! the fibers waiting to read and to write. An event wakes the readers
//! (`EPOLLIN`, `EPOLLRDHUP`, `EPOLLHUP`, `EPOLLERR`) or the writers
//! (`EPOLLOUT`, `EPOLLHUP`, `EPOLLERR`) and empties those lists; the fd stays
//! armed. So a wait on a source costs no `epoll_ctl` at all.
//!
//! Edge-triggered is exact here because a fiber waits only right after the
//! operation itself said `EAGAIN`, and nothing polls in between (the thread
//! is running that fiber): any readiness that comes later is a new edge,
//! which epoll reports at the next poll. A woken fiber retries the
//! operation and, if another fiber got there first, simply waits again.
//!
//! The owner removes its source when it is dropped (`EPOLL_CTL_DEL`, while
//! its fd is still open, before closing it), or when it is next used under
//! another runtime. Owners may move between threads (the sockets are
//! `Send`), so a source may be released from a thread that is not its
//! runtime's: that thread deletes the fd from the epoll set through the
//! shared [`Poller`] (which keeps the epoll fd open for as long as any
//! source needs it) and queues the token; the runtime frees the slot at its
//! next poll. Generations make a late event for a freed slot harmless.
//!
//! ## Outcomes
//!
//! What each event means for the waiting fiber is documented (as a table) on
//! `wait_readable`.
//!
//! Closing an fd makes epoll forget it silently, so a fiber waiting on it
//! would never wake. When the scheduler is about to block (whether or not
//! some timer is pending) after fibers have run, the reactor checks every
//! waited-on fd with `EPOLL_CTL_MOD` and fails the waits of those that are
//! gone; the scheduler paces these looks by their cost (see
//! `find_runnable`).
//!
//! ## Blocking
//!
//! [`Reactor::poll`] blocks in `epoll_pwait2`, whose timeout is a
//! `timespec` (nanoseconds); where the kernel answers `ENOSYS` it falls
//! back to `epoll_wait` with the timeout in milliseconds rounded *up*, so a
//! timer never fires early. `EINTR` ends the poll with no events; the
//! scheduler's loop then simply polls again. The eventfd of the runtime's
//! [`Remote`](super::remote::Remote) is always in the set, so another
//! thread can wake a blocked scheduler.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::error::Error;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::runtime::task::{Direction, Key};

/// Event data that marks the remote wake-up eventfd.
const REMOTE: u64 = u64::MAX;
/// The tag bit of a source's token (see "Sources" in the module docs). Fd
/// numbers, the other event data, never reach it.
const SOURCE: u64 = 1 << 62;
/// The events a source is registered for, once.
const SOURCE_EVENTS: u32 =
    (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
/// Events fetched per `epoll_wait`.
const BATCH: usize = 256;
/// The outcome bit the reactor uses for "fd closed under the waiter"
/// (`POLLNVAL`, which epoll itself never reports).
pub(crate) const CLOSED: u32 = libc::POLLNVAL as u32;

/// What a waiter waits for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Interest {
    Read,
    Write,
}

impl Interest {
    /// The direction a report names (`fd 5 readable`).
    pub(crate) fn direction(self) -> Direction {
        match self {
            Interest::Read => Direction::Read,
            Interest::Write => Direction::Write,
        }
    }

    fn mask(self) -> u32 {
        match self {
            Interest::Read => (libc::EPOLLIN | libc::EPOLLRDHUP) as u32,
            Interest::Write => libc::EPOLLOUT as u32,
        }
    }

    /// Whether `events` ends this waiter's wait.
    fn fired_by(self, events: u32) -> bool {
        let always = (libc::EPOLLERR | libc::EPOLLHUP) as u32 | CLOSED;
        events & (self.mask() | always) != 0
    }
}

/// The waiters of one fd.
struct Waiters {
    /// The mask the fd is armed with (the union of the interests).
    armed: u32,
    list: Vec<(Key, Interest)>,
}

impl Waiters {
    fn union(&self) -> u32 {
        self.list.iter().fold(0, |m, (_, i)| m | i.mask())
    }
}

struct State {
    fds: HashMap<RawFd, Waiters>,
    /// Total entries in all lists.
    waiters: usize,
    /// Waiters whose fd was found closed while registering another wait on
    /// a reused fd number, or whose source was released by another thread
    /// (the `hook` feature's, closed by C code); failed at the next poll,
    /// which then does not block.
    orphans: Vec<Key>,
    events: Vec<libc::epoll_event>,
    /// Source slots, indexed by the low 32 bits of a token.
    sources: Vec<SourceSlot>,
    /// Indices of vacant source slots.
    free_sources: Vec<u32>,
}

/// One source: its generation (bumped when the slot is freed), what it may
/// be ready for, and the fibers waiting on it.
struct SourceSlot {
    generation: u32,
    live: bool,
    /// [`READY_READ`] / [`READY_WRITE`]: set by every event for that
    /// direction, cleared by the owner when an operation showed the fd is
    /// not ready (`EAGAIN`, or a short read or write). Clear means "no edge
    /// since the fd was last seen not ready": waiting is then right without
    /// trying the operation first.
    ready: u8,
    readers: Vec<Key>,
    writers: Vec<Key>,
}

/// A source may be readable.
const READY_READ: u8 = 1;
/// A source may be writable.
const READY_WRITE: u8 = 2;
/// Sticky: the peer closed its end, or the fd is in error. Reads then never
/// wait again (they return end of stream, or the error), however short the
/// last one was; so this keeps `READY_READ` from being cleared.
const READ_CLOSED: u8 = 4;
/// Sticky: hung up or in error; writes never wait again (they fail).
const WRITE_CLOSED: u8 = 8;

impl Interest {
    fn ready_bit(self) -> u8 {
        match self {
            Interest::Read => READY_READ,
            Interest::Write => READY_WRITE,
        }
    }
}

impl SourceSlot {
    fn list(&mut self, interest: Interest) -> &mut Vec<Key> {
        match interest {
            Interest::Read => &mut self.readers,
            Interest::Write => &mut self.writers,
        }
    }
}

/// The part of a reactor that sources may reach from any thread: the epoll
/// fd itself, and the tokens of sources released elsewhere (see "Sources"
/// in the module docs).
pub(crate) struct Poller {
    epoll: OwnedFd,
    released: Mutex<Vec<u64>>,
    any_released: AtomicBool,
}

impl Poller {
    /// Removes a source of this poller's runtime from a thread that is not
    /// running that runtime: deletes `fd` from the epoll set now (the
    /// caller keeps it open until this returns) and queues the token for
    /// the runtime to free its slot.
    pub(crate) fn release_elsewhere(&self, token: u64, fd: RawFd) {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: plain syscall on descriptors that are open: the epoll fd
        // is owned by `self`, and `fd` by the caller. Failure (the fd was
        // never added, or is gone) leaves nothing to delete.
        unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &mut ev) };
        self.released
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(token);
        self.any_released.store(true, Ordering::Release);
    }
}

/// The epoll set of one runtime; see the [module docs](self).
pub(crate) struct Reactor {
    poller: Arc<Poller>,
    remote_fd: RawFd,
    state: RefCell<State>,
    /// Cleared the first time the kernel answers `ENOSYS`.
    pwait2: Cell<bool>,
}

impl Reactor {
    /// Creates the epoll set, with `remote_fd` (an eventfd, owned by the
    /// caller and kept open for the reactor's lifetime) in it.
    pub(crate) fn new(remote_fd: RawFd) -> io::Result<Reactor> {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(context(io::Error::last_os_error(), "epoll_create1", -1));
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
        let reactor = Reactor {
            poller: Arc::new(Poller {
                epoll,
                released: Mutex::new(Vec::new()),
                any_released: AtomicBool::new(false),
            }),
            remote_fd,
            state: RefCell::new(State {
                fds: HashMap::new(),
                waiters: 0,
                orphans: Vec::new(),
                events: vec![libc::epoll_event { events: 0, u64: 0 }; BATCH],
                sources: Vec::new(),
                free_sources: Vec::new(),
            }),
            pwait2: Cell::new(true),
        };
        reactor
            .ctl(libc::EPOLL_CTL_ADD, remote_fd, libc::EPOLLIN as u32, REMOTE)
            .map_err(|e| context(e, "epoll_ctl(ADD) of the wake-up eventfd", remote_fd))?;
        Ok(reactor)
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: data };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        let r = unsafe { libc::epoll_ctl(self.poller.epoll.as_raw_fd(), op, fd, &mut ev) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    fn arm(&self, op: libc::c_int, fd: RawFd, mask: u32) -> io::Result<()> {
        self.ctl(op, fd, mask | libc::EPOLLONESHOT as u32, fd as u64)
    }

    /// Registers `key` as waiting for `interest` on `fd`. Returns `false`
    /// when epoll cannot watch the fd because it is always ready.
    pub(crate) fn register(&self, fd: RawFd, interest: Interest, key: Key) -> io::Result<bool> {
        let mut st = self.state.borrow_mut();
        let st = &mut *st;
        if let Some(w) = st.fds.get_mut(&fd) {
            let mask = w.armed | interest.mask();
            match if mask == w.armed {
                Ok(())
            } else {
                self.arm(libc::EPOLL_CTL_MOD, fd, mask)
            } {
                Ok(()) => {
                    w.armed = mask;
                    w.list.push((key, interest));
                    st.waiters += 1;
                    return Ok(true);
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EBADF)) => {
                    // The fd those waiters registered was closed (and the
                    // number maybe reused): fail their waits.
                    let old = st.fds.remove(&fd).expect("present");
                    st.waiters -= old.list.len();
                    st.orphans.extend(old.list.into_iter().map(|(k, _)| k));
                }
                Err(e) => return Err(context(e, "epoll_ctl(MOD)", fd)),
            }
        }
        match self.arm(libc::EPOLL_CTL_ADD, fd, interest.mask()) {
            Ok(()) => {
                st.fds.insert(
                    fd,
                    Waiters {
                        armed: interest.mask(),
                        list: vec![(key, interest)],
                    },
                );
                st.waiters += 1;
                Ok(true)
            }
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => Ok(false),
            Err(e) => Err(context(e, "epoll_ctl(ADD)", fd)),
        }
    }

    /// Removes `key`'s wait on `fd`, if it is still registered.
    pub(crate) fn deregister(&self, fd: RawFd, key: Key) {
        let mut st = self.state.borrow_mut();
        let st = &mut *st;
        let Some(w) = st.fds.get_mut(&fd) else { return };
        let Some(pos) = w.list.iter().position(|&(k, _)| k == key) else {
            return;
        };
        w.list.remove(pos);
        st.waiters -= 1;
        if w.list.is_empty() {
            st.fds.remove(&fd);
            // Fails harmlessly if the fd was closed meanwhile.
            let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0);
        } else if w.union() != w.armed {
            w.armed = w.union();
            let _ = self.arm(libc::EPOLL_CTL_MOD, fd, w.armed);
        }
    }

    /// Takes every wait on `fd` out of the reactor (and the fd out of the
    /// epoll set) because `fd` is about to be closed, and returns the
    /// waiters, which the caller fails. Does nothing if the reactor is busy
    /// (a close from inside it): its check for closed fds finds them then.
    #[cfg_attr(not(feature = "hook"), allow(dead_code))]
    pub(crate) fn forget(&self, fd: RawFd) -> Vec<Key> {
        let Ok(mut st) = self.state.try_borrow_mut() else {
            return Vec::new();
        };
        let Some(w) = st.fds.remove(&fd) else {
            return Vec::new();
        };
        st.waiters -= w.list.len();
        let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0);
        w.list.into_iter().map(|(k, _)| k).collect()
    }

    /// The part of the reactor other threads may reach.
    pub(crate) fn poller(&self) -> &Arc<Poller> {
        &self.poller
    }

    /// Adds `fd` as a source (see the module docs) and returns its token, or
    /// `None` when epoll cannot watch the fd because it is always ready
    /// (`EPERM`: regular files).
    ///
    /// # Errors
    ///
    /// What `epoll_ctl` returns otherwise (`EBADF` for a closed fd,
    /// `ENOMEM`/`ENOSPC` when the kernel's epoll limits are reached).
    pub(crate) fn add_source(&self, fd: RawFd) -> io::Result<Option<u64>> {
        let mut st = self.state.borrow_mut();
        let index = match st.free_sources.pop() {
            Some(i) => i,
            None => {
                st.sources.push(SourceSlot {
                    generation: 0,
                    live: false,
                    ready: 0,
                    readers: Vec::new(),
                    writers: Vec::new(),
                });
                (st.sources.len() - 1) as u32
            }
        };
        let slot = &mut st.sources[index as usize];
        let token = SOURCE | (u64::from(slot.generation) << 32) | u64::from(index);
        match self.ctl(libc::EPOLL_CTL_ADD, fd, SOURCE_EVENTS, token) {
            Ok(()) => {
                slot.live = true;
                // Unknown yet: try the operations (the owner clears what it
                // finds not ready).
                slot.ready = READY_READ | READY_WRITE;
                Ok(Some(token))
            }
            Err(e) => {
                st.free_sources.push(index);
                if e.raw_os_error() == Some(libc::EPERM) {
                    Ok(None)
                } else {
                    Err(context(e, "epoll_ctl(ADD) of a source", fd))
                }
            }
        }
    }

    /// Removes the source `token`, whose fd is `fd` (still open), that
    /// fibers may be waiting on (the `hook` feature's sources, whose fd is
    /// about to be closed): deletes it from the epoll set, frees its slot
    /// and returns the waiters, which the caller fails. `None`, having done
    /// nothing, while the reactor is busy (a close from inside it).
    #[cfg_attr(not(feature = "hook"), allow(dead_code))]
    pub(crate) fn close_source(&self, token: u64, fd: RawFd) -> Option<Vec<Key>> {
        let mut st = self.state.try_borrow_mut().ok()?;
        let st = &mut *st;
        let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0);
        let mut keys = Vec::new();
        if let Some(slot) = st.sources.get_mut(token as u32 as usize) {
            if slot.live && u64::from(slot.generation) == (token >> 32) & 0x3FFF_FFFF {
                keys.append(&mut slot.readers);
                keys.append(&mut slot.writers);
                st.waiters -= keys.len();
            }
        }
        self.free_source(st, token);
        Some(keys)
    }

    /// Removes the source `token`, whose fd is `fd` (still open): deletes it
    /// from the epoll set and frees its slot.
    pub(crate) fn remove_source(&self, token: u64, fd: RawFd) {
        let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0);
        self.free_source(&mut self.state.borrow_mut(), token);
    }

    fn free_source(&self, st: &mut State, token: u64) {
        let index = token as u32;
        let Some(slot) = st.sources.get_mut(index as usize) else {
            return;
        };
        if !slot.live || u64::from(slot.generation) != (token >> 32) & 0x3FFF_FFFF {
            return;
        }
        // An `IoSource` is dropped or moved only by its owner, and a fiber
        // waits on it only while borrowing the owner: nobody can be waiting.
        // A hook's source closed by another thread may have waiters (C code
        // closing an fd a fiber waits on): they fail as closed.
        st.waiters -= slot.readers.len() + slot.writers.len();
        st.orphans.append(&mut slot.readers);
        st.orphans.append(&mut slot.writers);
        slot.live = false;
        slot.generation = (slot.generation + 1) & 0x3FFF_FFFF;
        st.free_sources.push(index);
    }

    /// Frees the slots of sources released on other threads.
    fn collect_released(&self, st: &mut State) {
        if !self.poller.any_released.swap(false, Ordering::Acquire) {
            return;
        }
        let tokens = std::mem::take(
            &mut *self
                .poller
                .released
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for token in tokens {
            self.free_source(st, token);
        }
    }

    /// Whether the source `token` may be ready for `interest` (see
    /// `SourceSlot::ready`).
    #[inline]
    pub(crate) fn source_may_be_ready(&self, token: u64, interest: Interest) -> bool {
        let st = self.state.borrow();
        st.sources
            .get(token as u32 as usize)
            .map_or(true, |slot| slot.ready & interest.ready_bit() != 0)
    }

    /// Records that the source `token` was just seen not ready for
    /// `interest`.
    #[inline]
    pub(crate) fn source_not_ready(&self, token: u64, interest: Interest) {
        let mut st = self.state.borrow_mut();
        if let Some(slot) = st.sources.get_mut(token as u32 as usize) {
            let closed = match interest {
                Interest::Read => READ_CLOSED,
                Interest::Write => WRITE_CLOSED,
            };
            if slot.ready & closed == 0 {
                slot.ready &= !interest.ready_bit();
            }
        }
    }

    /// Registers `key` as waiting for `interest` on the source `token`.
    pub(crate) fn wait_source(&self, token: u64, interest: Interest, key: Key) {
        let mut st = self.state.borrow_mut();
        let slot = &mut st.sources[token as u32 as usize];
        debug_assert!(slot.live);
        slot.list(interest).push(key);
        st.waiters += 1;
    }

    /// Removes `key`'s wait on the source `token`, if it is still there.
    pub(crate) fn unwait_source(&self, token: u64, interest: Interest, key: Key) {
        let mut st = self.state.borrow_mut();
        let Some(slot) = st.sources.get_mut(token as u32 as usize) else {
            return;
        };
        let list = slot.list(interest);
        if let Some(pos) = list.iter().position(|&k| k == key) {
            list.swap_remove(pos);
            st.waiters -= 1;
        }
    }

    /// Number of fibers waiting on fds.
    pub(crate) fn waiters(&self) -> usize {
        self.state.borrow().waiters
    }

    /// Waits up to `timeout` (forever if `None`, not at all if zero) for fd
    /// events, and calls `wake(key, events)` for every waiter they end.
    /// Returns whether the remote eventfd fired.
    ///
    /// # Errors
    ///
    /// What `epoll_wait` returns other than `EINTR` (a bug: the epoll fd
    /// itself went bad).
    pub(crate) fn poll(
        &self,
        timeout: Option<Duration>,
        mut wake: impl FnMut(Key, u32),
    ) -> io::Result<bool> {
        let mut st = self.state.borrow_mut();
        let st = &mut *st;
        self.collect_released(st);
        let mut timeout = timeout;
        for key in st.orphans.drain(..) {
            wake(key, CLOSED);
            timeout = Some(Duration::ZERO); // it can run now
        }
        let n = self.wait(&mut st.events, timeout)?;
        let mut remote = false;
        for i in 0..n {
            let ev = st.events[i];
            let (events, data) = (ev.events, ev.u64);
            if data == REMOTE {
                self.drain_eventfd();
                remote = true;
                continue;
            }
            if data & SOURCE != 0 && data != REMOTE {
                let Some(slot) = st.sources.get_mut(data as u32 as usize) else {
                    continue;
                };
                if !slot.live || u64::from(slot.generation) != (data >> 32) & 0x3FFF_FFFF {
                    continue; // a late event of a freed slot
                }
                let read =
                    (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
                let write = (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as u32;
                if events & read != 0 {
                    slot.ready |= READY_READ;
                }
                if events & write != 0 {
                    slot.ready |= READY_WRITE;
                }
                if events & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
                    slot.ready |= READ_CLOSED;
                }
                if events & (libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
                    slot.ready |= WRITE_CLOSED;
                }
                let mut woken = 0;
                if events & read != 0 {
                    woken += slot.readers.len();
                    for key in slot.readers.drain(..) {
                        wake(key, events);
                    }
                }
                if events & write != 0 {
                    woken += slot.writers.len();
                    for key in slot.writers.drain(..) {
                        wake(key, events);
                    }
                }
                st.waiters -= woken;
                continue;
            }
            let fd = data as RawFd;
            let Some(w) = st.fds.get_mut(&fd) else {
                continue;
            };
            let before = w.list.len();
            w.list.retain(|&(key, interest)| {
                let fired = interest.fired_by(events);
                if fired {
                    wake(key, events);
                }
                !fired
            });
            st.waiters -= before - w.list.len();
            if w.list.is_empty() {
                st.fds.remove(&fd);
                let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0);
            } else {
                // One-shot: the fd is disarmed now; arm it for the rest.
                w.armed = w.union();
                let _ = self.arm(libc::EPOLL_CTL_MOD, fd, w.armed);
            }
        }
        Ok(remote)
    }

    fn wait(
        &self,
        events: &mut [libc::epoll_event],
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let epfd = self.poller.epoll.as_raw_fd();
        let max = events.len() as libc::c_int;
        if self.pwait2.get() {
            let ts = timeout.map(|d| libc::timespec {
                tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            });
            let tsp = ts
                .as_ref()
                .map_or(ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: `events` has room for `max` entries; `tsp` is null or
            // points at `ts`, alive for the call; no signal mask is passed
            // (the size argument is then ignored).
            let r = unsafe {
                libc::syscall(
                    libc::SYS_epoll_pwait2,
                    epfd,
                    events.as_mut_ptr(),
                    max,
                    tsp,
                    ptr::null::<libc::sigset_t>(),
                    8usize,
                )
            };
            if r >= 0 {
                return Ok(r as usize);
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => return Ok(0),
                Some(libc::ENOSYS) => self.pwait2.set(false),
                _ => return Err(context(e, "epoll_pwait2", epfd)),
            }
        }
        let ms = match timeout {
            None => -1,
            Some(d) => d
                .as_nanos()
                .div_ceil(1_000_000)
                .min(libc::c_int::MAX as u128) as libc::c_int,
        };
        // SAFETY: `events` has room for `max` entries.
        let r = unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), max, ms) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINTR) {
            Ok(0)
        } else {
            Err(context(e, "epoll_wait", epfd))
        }
    }

    fn drain_eventfd(&self) {
        let mut buf = 0u64;
        // SAFETY: reads 8 bytes into `buf`. The eventfd is non-blocking:
        // EAGAIN (already drained) is fine to ignore.
        unsafe { crate::sys::read(self.remote_fd, &mut buf as *mut u64 as *mut libc::c_void, 8) };
    }

    /// Fails the waits on fds that were closed while waited on (see the
    /// module docs). Returns how many waiters it woke.
    pub(crate) fn find_closed(&self, mut wake: impl FnMut(Key, u32)) -> usize {
        let mut st = self.state.borrow_mut();
        let st = &mut *st;
        let mut woken = 0;
        for key in st.orphans.drain(..) {
            wake(key, CLOSED);
            woken += 1;
        }
        let gone: Vec<RawFd> = st
            .fds
            .iter()
            .filter(|(&fd, w)| {
                let r = self.arm(libc::EPOLL_CTL_MOD, fd, w.armed);
                matches!(
                    r.map_err(|e| e.raw_os_error()),
                    Err(Some(libc::ENOENT | libc::EBADF))
                )
            })
            .map(|(&fd, _)| fd)
            .collect();
        for fd in gone {
            let w = st.fds.remove(&fd).expect("present");
            st.waiters -= w.list.len();
            for (key, _) in w.list {
                wake(key, CLOSED);
                woken += 1;
            }
        }
        woken
    }
}

/// An `io::Error` that says which call failed on which fd, keeping the
/// original error as its source (and its kind).
#[derive(Debug)]
struct FdError {
    what: &'static str,
    fd: RawFd,
    source: io::Error,
}

impl fmt::Display for FdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on fd {}: {}", self.what, self.fd, self.source)
    }
}

impl Error for FdError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

pub(crate) fn context(source: io::Error, what: &'static str, fd: RawFd) -> io::Error {
    io::Error::new(source.kind(), FdError { what, fd, source })
}
