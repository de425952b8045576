//! Stack-overflow reports for fibers: a fiber that overflows is named on
//! stderr (`fiber '<name>' overflowed its <N> KiB stack`) and the process
//! aborts, instead of dying of a bare SIGSEGV.
//!
//! A fiber that runs off the low end of its stack touches the guard region
//! and gets `SIGSEGV` (or `SIGBUS`). Left alone that kills the process with
//! no word of which fiber it was. Here a handler for both signals, running on
//! an alternate signal stack (the faulting stack has no room left), finds
//! the fiber from the fault address alone:
//!
//! 1. the chunk table (`chunk_table.rs`) says which stack slot holds the
//!    address and how large that slot's guard is; the address must lie in
//!    the guard;
//! 2. the interrupted thread's stack pointer (from the signal's `ucontext`)
//!    must lie in the same slot: the thread was running on that stack, so
//!    the fault is that stack's overflow and not, say, a write running off
//!    the top of the neighbouring slot;
//! 3. the [`FiberInfo`] at the top of the slot must be a live one (its
//!    magic word set); it gives the name, the slot gives the size.
//!
//! Then: write `fiber '<name>' overflowed its <N> KiB stack` to stderr with
//! one `write(2)` and `abort()`. Anything else goes to the handler that was
//! installed before ours (saved at install time). If that was `SIG_DFL` or
//! `SIG_IGN`, reset the signal to `SIG_DFL` and return, so that the faulting
//! instruction runs again and the kernel kills the process with the original
//! signal. Rust's runtime installs a handler at startup that reports
//! overflows of ordinary threads (`thread '<name>' has overflowed its
//! stack`); chaining to it keeps that report.
//!
//! A switch does no bookkeeping for this: there is no per-thread "running
//! fiber" record to keep up to date, and so none to get wrong (a record
//! swapped on each resume was wrong after a coroutine suspended the chain of
//! coroutines it runs in, and an inner coroutine's overflow went unreported).
//!
//! ## Invariants
//!
//! - A coroutine writes its [`FiberInfo`] at [`FiberInfo::address`] of its
//!   stack when it is created ([`FiberInfo::publish`]) and clears its
//!   magic word ([`FiberInfo::retire`]) before the stack can be reused. In
//!   between the record is never changed, and its name stays valid (the
//!   coroutine owns it).
//! - The top of a slot is mapped, readable memory for as long as its chunk
//!   is in the chunk table (the table's invariants), so the handler may read
//!   a record there even if it is stale or was never written; the checks in
//!   step 3 reject those.
//! - The previous actions are written before our handler is installed, and
//!   never again; the handler only reads them.
//! - The handler allocates nothing and takes no lock: it reads statics and
//!   the slot's memory, formats into a buffer on the signal stack, and calls
//!   only async-signal-safe functions (`write`, `abort`, `sigaction`,
//!   `raise`).
//! - [`ensure_installed`] leaves this thread with *some* alternate signal
//!   stack: the one it had (Rust gives one to every thread it starts), or one
//!   of ours, freed when the thread exits.

use std::cell::{Cell, UnsafeCell};
use std::mem::{align_of, size_of, MaybeUninit};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use super::{altstack, chunk_table};

/// What the overflow handler needs to know about a fiber, at the top of its
/// stack: its name. (The stack's size and guard come from the chunk table.)
#[derive(Debug)]
pub(crate) struct FiberInfo {
    /// [`FiberInfo::MAGIC`] while the record is live, 0 after
    /// [`retire`](FiberInfo::retire).
    magic: u64,
    /// The fiber's name, UTF-8, valid while this record is live; null for
    /// an unnamed fiber.
    pub(crate) name_ptr: *const u8,
    /// Bytes at `name_ptr`; 0 for an unnamed fiber.
    pub(crate) name_len: usize,
}

impl FiberInfo {
    /// "SPNDLFIB": marks a live record.
    const MAGIC: u64 = 0x5350_4E44_4C46_4942;

    /// Where the record of the stack whose top is `base` lives: the highest
    /// suitably aligned place below `base`. The handler finds it there.
    #[inline]
    pub(crate) fn address(base: usize) -> usize {
        (base - size_of::<FiberInfo>()) & !(align_of::<FiberInfo>() - 1)
    }

    /// Writes a live record naming the fiber `name` at
    /// [`FiberInfo::address`]`(base)`, one field at a time (three stores).
    ///
    /// # Safety
    ///
    /// `base` must be the top of a stack the caller owns, with room for the
    /// record below it; the name must stay valid until [`retire`].
    ///
    /// [`retire`]: FiberInfo::retire
    #[inline]
    pub(crate) unsafe fn publish(base: usize, name: Option<&str>) {
        let info = FiberInfo::address(base) as *mut FiberInfo;
        // SAFETY: forwarded from the caller; the place is aligned for a
        // FiberInfo (`address`).
        unsafe {
            ptr::addr_of_mut!((*info).magic).write(FiberInfo::MAGIC);
            ptr::addr_of_mut!((*info).name_ptr).write(name.map_or(ptr::null(), str::as_ptr));
            ptr::addr_of_mut!((*info).name_len).write(name.map_or(0, str::len));
        }
    }

    /// Marks the record of the stack whose top is `base` as dead, so that a
    /// later fault on that stack (reused by code that writes no record)
    /// never reads a stale name.
    ///
    /// # Safety
    ///
    /// A record must have been published at `base`, on a stack the caller
    /// still owns.
    #[inline]
    pub(crate) unsafe fn retire(base: usize) {
        let info = FiberInfo::address(base) as *mut FiberInfo;
        // SAFETY: forwarded from the caller; volatile so the store is kept
        // even though nothing in this program reads it afterwards.
        unsafe { ptr::addr_of_mut!((*info).magic).write_volatile(0) }
    }
}

thread_local! {
    /// Whether this thread has run [`ensure_installed`] to the end.
    static READY: Cell<bool> = const { Cell::new(false) };
}

/// Installs the process-wide handler (once) and makes sure this thread has
/// an alternate signal stack. One thread-local check after the first call
/// on a thread.
#[inline]
pub(crate) fn ensure_installed() {
    if !READY.get() {
        install_slow();
    }
}

#[cold]
fn install_slow() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        install(libc::SIGSEGV, &PREV_SEGV);
        install(libc::SIGBUS, &PREV_BUS);
    });
    altstack::ensure();
    READY.set(true);
}

/// A signal action saved at install time, read by the handler.
struct SavedAction {
    saved: AtomicBool,
    action: UnsafeCell<MaybeUninit<libc::sigaction>>,
}

// SAFETY: `action` is written once, by `install` inside `Once`, before
// `saved` is set (release) and before our handler can run; afterwards it is
// only read.
unsafe impl Sync for SavedAction {}

impl SavedAction {
    const fn new() -> SavedAction {
        SavedAction {
            saved: AtomicBool::new(false),
            action: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    fn get(&self) -> Option<&libc::sigaction> {
        if self.saved.load(Ordering::Acquire) {
            // SAFETY: `saved` is set only after `action` was initialised,
            // and it is never written again.
            Some(unsafe { (*self.action.get()).assume_init_ref() })
        } else {
            None
        }
    }
}

static PREV_SEGV: SavedAction = SavedAction::new();
static PREV_BUS: SavedAction = SavedAction::new();

/// Saves the current action for `signal` into `prev`, then installs ours.
/// Called once per signal, inside `Once`.
fn install(signal: libc::c_int, prev: &'static SavedAction) {
    // SAFETY: a zeroed sigaction is a valid value (SIG_DFL, empty mask).
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: reading the current action into a valid, writable struct.
    if unsafe { libc::sigaction(signal, ptr::null(), &mut old) } != 0 {
        return;
    }
    // SAFETY: inside `Once`, and before our handler is installed, so no one
    // reads `action` yet.
    unsafe { (*prev.action.get()).write(old) };
    prev.saved.store(true, Ordering::Release);

    // SAFETY: as above.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_fault as extern "C" fn(_, _, _) as libc::sighandler_t;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    // SAFETY: `action.sa_mask` is a valid sigset_t to initialise.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: installs a handler that is a valid `extern "C"` function for
    // SA_SIGINFO and stays alive for the whole process (it is static code).
    unsafe { libc::sigaction(signal, &action, ptr::null_mut()) };
}

/// The `SIGSEGV`/`SIGBUS` handler.
extern "C" fn on_fault(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo_t; for
    // SIGSEGV and SIGBUS `si_addr` is the union member in use.
    let addr = unsafe { (*info).si_addr() } as usize;
    // SAFETY: with SA_SIGINFO the kernel passes the interrupted context.
    let sp = unsafe { interrupted_sp(context) };
    if let Some(fiber) = overflowed_fiber(addr, sp) {
        report(&fiber);
        // SAFETY: abort is async-signal-safe and never returns.
        unsafe { libc::abort() };
    }
    // SAFETY: the arguments are the ones the kernel gave this handler.
    unsafe { chain(signal, info, context) };
}

/// The stack pointer of the interrupted thread.
///
/// # Safety
///
/// `context` must be the `ucontext_t` the kernel passed to an SA_SIGINFO
/// handler.
unsafe fn interrupted_sp(context: *mut libc::c_void) -> usize {
    let context = context as *const libc::ucontext_t;
    // SAFETY: see the function's contract.
    #[cfg(target_arch = "x86_64")]
    let sp = unsafe { (*context).uc_mcontext.gregs[libc::REG_RSP as usize] as usize };
    // SAFETY: as above.
    #[cfg(target_arch = "aarch64")]
    let sp = unsafe { (*context).uc_mcontext.sp as usize };
    sp
}

/// The record of the fiber whose stack overflowed, if a fault at `addr`
/// with the stack pointer at `sp` is one (the three steps of the module
/// docs). Reads only the chunk table and the slot's memory.
fn overflowed_fiber(addr: usize, sp: usize) -> Option<Overflow> {
    let slot = chunk_table::find(addr)?;
    let (low, base) = (slot.low, slot.low + slot.bytes);
    if addr >= low + slot.guard || !(low..base).contains(&sp) {
        return None;
    }
    // SAFETY: the record's place is inside the slot's usable memory, which
    // is mapped while its chunk is in the table (module invariants); any
    // bit pattern is a valid FiberInfo (integers and a raw pointer), and the
    // checks below reject one that is not live.
    let fiber = unsafe { ptr::read_volatile(FiberInfo::address(base) as *const FiberInfo) };
    (fiber.magic == FiberInfo::MAGIC).then_some(Overflow {
        name_ptr: fiber.name_ptr,
        name_len: fiber.name_len,
        stack_size: slot.bytes - slot.guard,
    })
}

/// What the handler reports: a fiber's name and its stack's usable size.
#[derive(Debug)]
struct Overflow {
    /// As [`FiberInfo::name_ptr`].
    name_ptr: *const u8,
    /// As [`FiberInfo::name_len`].
    name_len: usize,
    /// Usable bytes of the stack (reported in KiB).
    stack_size: usize,
}

/// Writes `fiber '<name>' overflowed its <N> KiB stack` to stderr.
fn report(fiber: &Overflow) {
    let name: &[u8] = if fiber.name_ptr.is_null() || fiber.name_len == 0 {
        b"<unnamed>"
    } else {
        // SAFETY: a live record's `name_ptr` points at `name_len` bytes
        // that stay valid while it is live (module invariants); the fiber
        // is running, so its coroutine is alive.
        unsafe { std::slice::from_raw_parts(fiber.name_ptr, fiber.name_len) }
    };
    let mut line = Line::new();
    line.push(b"fiber '");
    if name.len() > Line::MAX_NAME {
        line.push(&name[..Line::MAX_NAME]);
        line.push(b"...");
    } else {
        line.push(name);
    }
    line.push(b"' overflowed its ");
    line.push_decimal(fiber.stack_size / 1024);
    line.push(b" KiB stack\n");
    line.write_to_stderr();
}

/// A fixed-size message buffer (lives on the signal stack; no allocation).
struct Line {
    buf: [u8; 384],
    len: usize,
}

impl Line {
    /// Longest name written; longer ones are cut and end in `...`.
    const MAX_NAME: usize = 256;

    fn new() -> Line {
        Line {
            buf: [0; 384],
            len: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }

    fn push_decimal(&mut self, mut value: usize) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }

    /// One `write(2)` in the common case; retried on partial writes and
    /// `EINTR`, abandoned on any other error.
    fn write_to_stderr(&self) {
        let mut rest = &self.buf[..self.len];
        while !rest.is_empty() {
            // SAFETY: `rest` is a valid buffer of `rest.len()` bytes.
            let n = unsafe { libc::write(libc::STDERR_FILENO, rest.as_ptr().cast(), rest.len()) };
            if n > 0 {
                rest = &rest[n as usize..];
            } else if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            } else {
                return;
            }
        }
    }
}

/// Hands the signal to the action that was installed before ours.
///
/// # Safety
///
/// Only from [`on_fault`], with the arguments the kernel passed it.
unsafe fn chain(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let prev = if signal == libc::SIGBUS {
        PREV_BUS.get()
    } else {
        PREV_SEGV.get()
    };
    let handler = prev.map_or(libc::SIG_DFL, |p| p.sa_sigaction);
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // SAFETY: `info` is the kernel's siginfo for this signal.
        let sent = unsafe { (*info).si_code } <= 0; // kill(2)/raise/sigqueue
        if handler == libc::SIG_IGN && sent {
            return; // An ignored signal sent by a process stays ignored.
        }
        reset_to_default(signal);
        if sent {
            // A sent signal does not come back by itself: send it again,
            // now with the default action (delivered when we return).
            // SAFETY: raise is async-signal-safe.
            unsafe { libc::raise(signal) };
        }
        // A fault: returning re-runs the faulting instruction, and the
        // default action kills the process with this signal.
        return;
    }
    let Some(prev) = prev else { return };
    if prev.sa_flags & libc::SA_RESETHAND != 0 {
        reset_to_default(signal);
    }
    if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: an SA_SIGINFO action's handler has this signature; it was
        // installed by someone for exactly this signal.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(handler) };
        f(signal, info, context);
    } else {
        // SAFETY: a plain action's handler takes the signal number only.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
        f(signal);
    }
}

/// Sets `signal`'s action back to `SIG_DFL`.
fn reset_to_default(signal: libc::c_int) {
    // SAFETY: a zeroed sigaction is SIG_DFL with an empty mask and no flags.
    let action: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: sigaction is async-signal-safe; the action is valid.
    unsafe { libc::sigaction(signal, &action, ptr::null_mut()) };
}

#[cfg(test)]
mod tests;
