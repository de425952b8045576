//! [`RuntimeBuilder::dump_on`](crate::runtime::RuntimeBuilder::dump_on): a dump of
//! every worker written to stderr when the process receives a signal, as
//! Go does on `SIGQUIT`; the program goes on.
//!
//! ## What runs where
//!
//! - **The signal handler** does one thing: it writes 8 bytes to the
//!   signal's eventfd (`write(2)` is async-signal-safe), saving and
//!   restoring `errno` around it. It runs on whichever thread the kernel
//!   picks, a worker in the middle of a fiber included (on that fiber's
//!   stack: the handler needs a few hundred bytes).
//! - **A watcher thread** (`spindle-dump-on-signal`) polls that eventfd;
//!   when it fires, it asks every worker for its fibers through a
//!   [`DumpHandle`] (each worker traces its own between two rounds), and
//!   writes the dump to stderr in one `write_all`.
//!
//! So the dump never runs in the handler, and a worker is never
//! interrupted to take it: a worker busy in one fiber for longer than the
//! patience is named in the dump instead of its fibers.
//!
//! ## Who owns what
//!
//! - `TARGETS[s]`: the eventfd of signal `s`, or -1. Created the first time
//!   `s` is given to `dump_on`, and **never closed**: a handler may have
//!   loaded the fd just before the runtime restored the old disposition,
//!   and must not then write into a descriptor that has been reused.
//!   Later runtimes that dump on `s` reuse it (one fd per signal, for the
//!   process's life).
//! - `HELD`: the signals a live runtime dumps on (one runtime per signal at
//!   a time), under a mutex.
//! - [`DumpOnSignal`] (in the runtime): the previous disposition, restored
//!   when the runtime is dropped, before the watcher is stopped and joined.

use std::io::{self, Write};
use std::mem::MaybeUninit;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use super::DumpHandle;

/// The highest signal number (`SIGRTMAX` on Linux's x86_64 and aarch64).
const MAX: usize = 64;

static TARGETS: [AtomicI32; MAX + 1] = [const { AtomicI32::new(-1) }; MAX + 1];
static HELD: Mutex<u128> = Mutex::new(0);

/// The handler: wakes the watcher; see the [module docs](self).
extern "C" fn on_signal(signal: libc::c_int) {
    // SAFETY: only async-signal-safe work: reading and writing this
    // thread's errno, an atomic load, and `write(2)` of a local to an
    // eventfd that is never closed (module docs).
    unsafe {
        let errno = *libc::__errno_location();
        if let Some(target) = TARGETS.get(signal as usize) {
            let fd = target.load(Ordering::Relaxed);
            if fd >= 0 {
                let one = 1u64;
                crate::sys::write(fd, (&one as *const u64).cast(), 8);
            }
        }
        *libc::__errno_location() = errno;
    }
}

/// A signal this runtime dumps on; dropping it restores the previous
/// disposition and stops the watcher.
pub(crate) struct DumpOnSignal {
    signal: i32,
    old: libc::sigaction,
    stop: Arc<AtomicBool>,
    fd: RawFd,
    watcher: Option<thread::JoinHandle<()>>,
}

/// Checks that `signal` may be used for dumps.
fn check(signal: i32) -> io::Result<()> {
    let refuse = |why: &str| {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("dump_on({signal}): {why}"),
        ))
    };
    if signal < 1 || signal as usize > MAX || signal > libc::SIGRTMAX() {
        return refuse("not a signal number");
    }
    match signal {
        libc::SIGKILL | libc::SIGSTOP => refuse("SIGKILL and SIGSTOP cannot be caught"),
        libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGTRAP => {
            refuse("a fault signal (spindle's stack-overflow report and the program need it)")
        }
        _ => Ok(()),
    }
}

/// The eventfd of `signal` (created on first use, never closed), drained.
fn target(signal: i32) -> io::Result<RawFd> {
    let slot = &TARGETS[signal as usize];
    let mut fd = slot.load(Ordering::Acquire);
    if fd < 0 {
        // SAFETY: plain syscall; the result is checked.
        fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("dump_on({signal}): eventfd: {e}"),
            ));
        }
        slot.store(fd, Ordering::Release);
    }
    drain(fd);
    Ok(fd)
}

/// Reads the eventfd's count (0 if none).
fn drain(fd: RawFd) -> u64 {
    let mut n = 0u64;
    // SAFETY: reads 8 bytes into a local; the fd is never closed.
    let r = unsafe { crate::sys::read(fd, (&mut n as *mut u64).cast(), 8) };
    if r == 8 {
        n
    } else {
        0
    }
}

impl DumpOnSignal {
    /// Writes a dump of `handle`'s runtime to stderr on every `signal`,
    /// from now until dropped.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for a number that is not a signal,
    /// or one that cannot or must not be caught (`SIGKILL`, `SIGSTOP`, the
    /// fault signals); [`io::ErrorKind::AlreadyExists`] if another live
    /// runtime dumps on it; what `eventfd`, `sigaction` or the thread's
    /// creation return.
    pub(crate) fn install(signal: i32, handle: DumpHandle) -> io::Result<DumpOnSignal> {
        check(signal)?;
        let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
        if *held & (1 << signal) != 0 {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("dump_on({signal}): another runtime dumps on this signal"),
            ));
        }
        let fd = target(signal)?;
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = {
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .name("spindle-dump-on-signal".into())
                .spawn(move || watch(signal, fd, &stop, &handle))
                .map_err(|e| {
                    io::Error::new(e.kind(), format!("dump_on({signal}): watcher thread: {e}"))
                })?
        };
        let mut this = DumpOnSignal {
            signal,
            // SAFETY: `sigaction` is plain data, valid all zero; it is
            // overwritten below before it is ever used to restore.
            old: unsafe { MaybeUninit::zeroed().assume_init() },
            stop,
            fd,
            watcher: Some(watcher),
        };
        // SAFETY: `sigaction` is plain data, valid all zero.
        let mut action: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
        action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART | libc::SA_ONSTACK;
        // SAFETY: valid pointers to a filled action and to `old`; the
        // handler only does async-signal-safe work.
        let r = unsafe {
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, &mut this.old)
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            this.signal = 0; // nothing to restore; the drop stops the watcher
            return Err(io::Error::new(
                e.kind(),
                format!("dump_on({signal}): sigaction: {e}"),
            ));
        }
        *held |= 1 << signal;
        Ok(this)
    }
}

impl DumpOnSignal {
    /// The signal it dumps on.
    pub(crate) fn signal(&self) -> i32 {
        self.signal
    }
}

impl Drop for DumpOnSignal {
    fn drop(&mut self) {
        if self.signal != 0 {
            // SAFETY: `old` is what sigaction returned for this signal.
            unsafe { libc::sigaction(self.signal, &self.old, std::ptr::null_mut()) };
            *HELD.lock().unwrap_or_else(PoisonError::into_inner) &= !(1 << self.signal);
        }
        self.stop.store(true, Ordering::Release);
        let one = 1u64;
        // SAFETY: writes 8 bytes from a local to the eventfd (never closed).
        unsafe { crate::sys::write(self.fd, (&one as *const u64).cast(), 8) };
        if let Some(t) = self.watcher.take() {
            // A panic of the watcher has been printed; the drop must not
            // panic again.
            let _ = t.join();
        }
    }
}

/// The watcher thread: waits for the handler's wake-up, then dumps.
fn watch(signal: i32, fd: RawFd, stop: &AtomicBool, handle: &DumpHandle) {
    loop {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; EINTR just loops.
        unsafe { crate::sys::poll(&mut pfd, 1, -1) };
        if drain(fd) == 0 {
            continue;
        }
        if stop.load(Ordering::Acquire) {
            return;
        }
        let dump = handle.dump();
        let text = format!(
            "spindle: signal {signal} ({}): every fiber of the runtime\n\n{dump}\n",
            name(signal)
        );
        let _ = io::stderr().lock().write_all(text.as_bytes());
    }
}

/// The usual name of `signal`.
fn name(signal: i32) -> String {
    match signal {
        libc::SIGQUIT => "SIGQUIT".into(),
        libc::SIGUSR1 => "SIGUSR1".into(),
        libc::SIGUSR2 => "SIGUSR2".into(),
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        s if s >= libc::SIGRTMIN() => format!("SIGRTMIN+{}", s - libc::SIGRTMIN()),
        s => format!("signal {s}"),
    }
}
