//! The signal mask bookkeeping of [`Signals`](super::Signals): which
//! signals this thread blocks because of spindle, and how many `Signals`
//! of the thread hold each one.
//!
//! ## Invariants
//!
//! - `HELD[s]` is the number of live `Signals` of this thread whose set
//!   contains `s`. A `Signals` is `!Send`, so it is created and dropped on
//!   the same thread, and the count is exact.
//! - Bit `s` of `OWNED` is set exactly while `HELD[s] > 0` and `s` was not
//!   blocked when its first holder blocked it: spindle blocked it, and
//!   unblocks it when the last holder goes. A signal the thread already
//!   blocked is left blocked.

use std::cell::{Cell, RefCell};
use std::io;
use std::mem::MaybeUninit;

/// The highest signal number a `Signals` accepts (`SIGRTMAX` is 64 on
/// Linux's x86_64 and aarch64).
const MAX: usize = 64;

thread_local! {
    static HELD: RefCell<[u32; MAX + 1]> = const { RefCell::new([0; MAX + 1]) };
    static OWNED: Cell<u64> = const { Cell::new(0) };
}

/// A `sigset_t` of `signals`.
pub(super) fn set_of(signals: &[i32]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { MaybeUninit::zeroed().assume_init() };
    // SAFETY: `set` is valid for writes; the numbers were checked.
    unsafe {
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
    }
    set
}

/// Checks that `s` is a signal a `signalfd` can receive.
pub(super) fn check(s: i32) -> io::Result<()> {
    if s == libc::SIGKILL || s == libc::SIGSTOP {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {s} (SIGKILL or SIGSTOP) cannot be caught"),
        ));
    }
    if s < 1 || s as usize > MAX || s > libc::SIGRTMAX() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{s} is not a signal number (1..={})", libc::SIGRTMAX()),
        ));
    }
    Ok(())
}

/// The calling thread's mask.
pub(super) fn current() -> libc::sigset_t {
    // SAFETY: plain data, filled in by pthread_sigmask.
    let mut cur: libc::sigset_t = unsafe { MaybeUninit::zeroed().assume_init() };
    // SAFETY: a null `set` only reads the mask into `cur`.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut cur) };
    cur
}

/// Counts a new holder of each of `signals` (checked, no duplicates), and
/// blocks in this thread those that were not blocked.
pub(super) fn hold(signals: &[i32]) {
    let cur = current();
    let mut newly = Vec::new();
    HELD.with_borrow_mut(|held| {
        for &s in signals {
            let n = &mut held[s as usize];
            // SAFETY: `cur` is an initialised set; `s` is a signal number.
            if *n == 0 && unsafe { libc::sigismember(&cur, s) } == 0 {
                newly.push(s);
            }
            *n += 1;
        }
    });
    OWNED.set(OWNED.get() | bits(&newly));
    let set = set_of(&newly);
    // SAFETY: a valid set; changes only this thread's mask.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// Undoes one [`hold`] of `signals`: for each whose last holder this was
/// and that spindle blocked, discards what is pending of it (which the
/// holder never received), then unblocks it.
pub(super) fn release(signals: &[i32]) {
    let mut freed = Vec::new();
    HELD.with_borrow_mut(|held| {
        for &s in signals {
            let n = &mut held[s as usize];
            *n -= 1;
            if *n == 0 && OWNED.get() & bits(&[s]) != 0 {
                freed.push(s);
            }
        }
    });
    if freed.is_empty() {
        return;
    }
    OWNED.set(OWNED.get() & !bits(&freed));
    let set = set_of(&freed);
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid set and timespec; a null info is allowed. Takes pending
    // signals of `set` (blocked, so none is lost to a handler) until none is
    // left (-1: EAGAIN, or EINTR: another signal's handler ran; either way
    // the loop ends).
    while unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) } > 0 {}
    // SAFETY: a valid set; changes only this thread's mask.
    unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
}

/// Whether this thread blocks any signal because of a `Signals`.
pub(crate) fn blocks_any() -> bool {
    OWNED.get() != 0
}

/// Unblocks, in the calling thread, the signals that a `Signals` of it
/// blocked. For a child between `fork` and `exec`, whose only thread is a
/// copy of the forking one (its `OWNED` included): it only reads a
/// thread-local without lazy initialisation and calls async-signal-safe
/// functions, so it is safe there.
pub(crate) fn unblock_in_child() {
    let owned = OWNED.get();
    // SAFETY: plain data; sigemptyset initialises it.
    let mut set: libc::sigset_t = unsafe { MaybeUninit::zeroed().assume_init() };
    // SAFETY: `set` is valid for writes; the numbers are 1..=64.
    unsafe {
        libc::sigemptyset(&mut set);
        for s in 1..=MAX as i32 {
            if owned & bits(&[s]) != 0 {
                libc::sigaddset(&mut set, s);
            }
        }
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
}

fn bits(signals: &[i32]) -> u64 {
    signals.iter().fold(0, |b, &s| b | 1 << (s - 1))
}

/// Runs `f` (which starts a thread) with every signal blocked but the
/// synchronous ones (a fault must still reach its handler), so the new
/// thread inherits that mask and never takes a signal meant for a
/// `Signals`; this thread's mask is restored afterwards.
pub(crate) fn with_signals_blocked<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: plain data; sigfillset initialises it.
    let mut all: libc::sigset_t = unsafe { MaybeUninit::zeroed().assume_init() };
    // SAFETY: `all` is valid for writes.
    unsafe {
        libc::sigfillset(&mut all);
        for s in [
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGILL,
            libc::SIGFPE,
            libc::SIGTRAP,
            libc::SIGABRT,
        ] {
            libc::sigdelset(&mut all, s);
        }
    }
    let mut old = current();
    // SAFETY: valid sets; changes only this thread's mask, restored below.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old) };
    let r = f();
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    r
}
