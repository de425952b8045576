//! Stack-overflow reports for fibers (DESIGN.md, decision 4).
//!
//! A fiber that runs off the low end of its stack touches the guard region
//! and gets `SIGSEGV` (or `SIGBUS`). Left alone that kills the process with
//! no word of which fiber it was. Here a handler for both signals, running on
//! an alternate signal stack (the faulting stack has no room left), checks
//! the fault address against the guard of the fiber running on this thread:
//!
//! - inside it: write `fiber '<name>' overflowed its <N> KiB stack` to
//!   stderr with one `write(2)` and `abort()`;
//! - anywhere else: hand the signal to the handler that was installed before
//!   ours (saved at install time). If that was `SIG_DFL` or `SIG_IGN`, reset
//!   the signal to `SIG_DFL` and return, so that the faulting instruction
//!   runs again and the kernel kills the process with the original signal.
//!   Rust's runtime installs a handler at startup that reports overflows of
//!   ordinary threads (`thread '<name>' has overflowed its stack`); chaining
//!   to it keeps that report.
//!
//! ## Invariants
//!
//! - `CURRENT` is this thread's pointer to the running fiber's [`FiberInfo`],
//!   or null on the thread's own stack. It is a const-initialised
//!   thread-local `Cell` with no destructor: reading it is a plain load,
//!   valid in a signal handler, and [`swap_current`] (called on every
//!   resume) is two instructions.
//! - A non-null `CURRENT` points at a `FiberInfo` that stays valid and
//!   unchanged while it is current (the coroutine keeps it on the fiber's own
//!   stack, above anything the fiber can overwrite).
//! - The previous actions are written before our handler is installed, and
//!   never again; the handler only reads them.
//! - The handler allocates nothing and takes no lock: it reads
//!   thread-locals and statics, formats into a buffer on the signal stack,
//!   and calls only async-signal-safe functions (`write`, `abort`,
//!   `sigaction`, `raise`).
//! - [`ensure_installed`] leaves this thread with *some* alternate signal
//!   stack: the one it had (Rust gives one to every thread it starts), or one
//!   of ours, freed when the thread exits.

use std::cell::{Cell, UnsafeCell};
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use super::altstack;

/// What the overflow handler needs to know about the running fiber.
///
/// The coroutine layer writes one at the top of each fiber's stack and makes
/// it current with [`swap_current`] while the fiber runs.
#[derive(Debug)]
pub(crate) struct FiberInfo {
    /// First address of the fiber stack's guard region.
    pub(crate) guard_start: usize,
    /// One past the last address of the guard region.
    pub(crate) guard_end: usize,
    /// Usable bytes of the stack (reported in KiB).
    pub(crate) stack_size: usize,
    /// The fiber's name, UTF-8, valid while this record is current; null
    /// for an unnamed fiber.
    pub(crate) name_ptr: *const u8,
    /// Bytes at `name_ptr`; 0 for an unnamed fiber.
    pub(crate) name_len: usize,
}

thread_local! {
    /// The running fiber's record, or null.
    static CURRENT: Cell<*const FiberInfo> = const { Cell::new(ptr::null()) };
    /// Whether this thread has run [`ensure_installed`] to the end.
    static READY: Cell<bool> = const { Cell::new(false) };
}

/// Makes `info` the running fiber's record (null: no fiber, the thread's own
/// stack) and returns the previous one, to be restored when the fiber
/// suspends.
#[inline]
pub(crate) fn swap_current(info: *const FiberInfo) -> *const FiberInfo {
    CURRENT.replace(info)
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
    let current = CURRENT.try_with(Cell::get).unwrap_or(ptr::null());
    if !current.is_null() {
        // SAFETY: a non-null CURRENT points at the running fiber's record,
        // valid while it is current (module invariants).
        let fiber = unsafe { &*current };
        if (fiber.guard_start..fiber.guard_end).contains(&addr) {
            report(fiber);
            // SAFETY: abort is async-signal-safe and never returns.
            unsafe { libc::abort() };
        }
    }
    // SAFETY: the arguments are the ones the kernel gave this handler.
    unsafe { chain(signal, info, context) };
}

/// Writes `fiber '<name>' overflowed its <N> KiB stack` to stderr.
fn report(fiber: &FiberInfo) {
    let name: &[u8] = if fiber.name_ptr.is_null() || fiber.name_len == 0 {
        b"<unnamed>"
    } else {
        // SAFETY: FiberInfo's contract: `name_ptr` points at `name_len`
        // bytes that stay valid while the record is current.
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
