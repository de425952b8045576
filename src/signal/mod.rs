//! Unix signals as messages: [`Signals`] receives chosen signals through a
//! `signalfd(2)`, and its [`recv`](Signals::recv) parks the fiber until one
//! comes (asyncio's `add_signal_handler`, gevent's `signal_handler`), so
//! the code that handles `SIGTERM` is ordinary fiber code, not a signal
//! handler restricted to async-signal-safe calls.
//!
//! ## What happens to the signal mask
//!
//! A `signalfd` only receives signals that are *blocked*; a signal that is
//! not blocked runs its disposition (for `SIGINT` and `SIGTERM` by default:
//! terminate the process) and never reaches the fd. The mask is per
//! thread, so:
//!
//! - [`Signals::new`] blocks its signals **in the calling thread only**
//!   (`pthread_sigmask`), and only those not blocked already.
//! - **Threads created afterwards** by that thread inherit the mask. That
//!   includes the helper threads of [`spawn_blocking`](crate::spawn_blocking)
//!   (and [`lookup_host`](crate::net::lookup_host)) that the pool starts
//!   after that point from that thread; pool threads started earlier, or
//!   from another thread, keep their own mask. The reaper thread of
//!   [`process`](crate::process) blocks every asynchronous signal itself.
//! - **Threads created before**, and threads created by other threads, do
//!   not block the signals. A process-directed signal (`kill(2)`, Ctrl-C
//!   in a terminal) goes to *one* thread that does not block it, if there is
//!   one: that thread then runs the default action, and `recv` never sees
//!   the signal. A thread-directed one (`pthread_kill`) reaches `recv` only
//!   if it targets the thread that owns the `Signals`.
//!
//!   So **create `Signals` first, in the main thread, before any thread is
//!   spawned** (before multi-threaded runtimes or thread pools start), so
//!   every thread inherits the mask; or block the signals in the other
//!   threads yourself.
//! - Child processes inherit the mask of the thread that spawns them, and
//!   most programs never unblock anything: a child started while `SIGTERM`
//!   is blocked would ignore `SIGTERM` until it exits.
//!   [`process::Command`](crate::process::Command) therefore unblocks, in
//!   the child between `fork` and `exec`, the signals a `Signals` of the
//!   spawning thread blocked (which makes std use `fork`/`exec` instead of
//!   `posix_spawn` for that command). A `std::process::Command` does not:
//!   its children inherit the blocked signals.
//! - **Dropping** the last `Signals` of a thread that holds a signal
//!   discards what is pending of it (received by nobody) and unblocks it
//!   again, if `Signals::new` was what blocked it; a signal the thread
//!   already blocked stays blocked. Afterwards the signal's disposition
//!   applies again.
//!
//! Several `Signals` may hold the same signal (on one thread or several):
//! each delivery is read by exactly one of them, whichever reads first.

mod mask;

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::io::deadline;
use crate::runtime::io_source::{Interest, IoSource};

pub(crate) use mask::{blocks_any, unblock_in_child, with_signals_blocked};

/// A set of signals received as values: `signalfd(2)`, non-blocking, read
/// through the reactor. See the [module docs](self) for what it does to the
/// thread's signal mask.
///
/// # Examples
///
/// ```
/// use spindle::signal::Signals;
///
/// spindle::run(|| -> std::io::Result<()> {
///     let signals = Signals::new([libc::SIGUSR1, libc::SIGTERM])?;
///     // Raised by this process to itself; from outside it would be `kill -USR1 <pid>`.
///     // SAFETY: sending a signal has no memory-safety preconditions.
///     unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
///     assert_eq!(signals.recv()?, libc::SIGUSR1); // parks until it comes
///     Ok(())
/// })
/// .unwrap();
/// ```
///
/// # Panics
///
/// Every wait is a cancellation point; a cancelled `recv` unwinds and
/// loses no signal (an undelivered one stays pending for the next `recv`).
///
/// # Dropping
///
/// Closes the fd, then restores the mask (see the [module docs](self)).
///
/// # `Send`
///
/// Not `Send`: it is tied to the signal mask of the thread that created
/// it.
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<spindle::signal::Signals>();
/// ```
pub struct Signals {
    // Declared first: leaves the reactor before the fd closes.
    source: IoSource,
    fd: OwnedFd,
    signals: Vec<i32>,
    _not_send: PhantomData<*const ()>,
}

impl Signals {
    /// Receives `signals` from now on: blocks them in this thread and
    /// opens a `signalfd` for them.
    ///
    /// # Examples
    ///
    /// ```
    /// let signals = spindle::signal::Signals::new([libc::SIGINT, libc::SIGTERM]).unwrap();
    /// assert_eq!(signals.signals(), [libc::SIGINT, libc::SIGTERM]);
    /// ```
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for a number that is not a signal,
    /// or is `SIGKILL` or `SIGSTOP` (which cannot be caught), or for an
    /// empty set; what `signalfd(2)` returns (out of fds).
    pub fn new<I: IntoIterator<Item = i32>>(signals: I) -> io::Result<Signals> {
        let mut list: Vec<i32> = Vec::new();
        for s in signals {
            mask::check(s)?;
            if !list.contains(&s) {
                list.push(s);
            }
        }
        if list.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Signals::new needs at least one signal",
            ));
        }
        let set = mask::set_of(&list);
        // SAFETY: a valid set; the result is checked.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new fd nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        mask::hold(&list);
        Ok(Signals {
            source: IoSource::new(fd.as_raw_fd()),
            fd,
            signals: list,
            _not_send: PhantomData,
        })
    }

    /// The signals it receives, in the order given to
    /// [`new`](Self::new), without duplicates.
    pub fn signals(&self) -> &[i32] {
        &self.signals
    }

    /// The next signal, parking the fiber until one comes (blocking the
    /// thread outside a fiber).
    ///
    /// # Panics
    ///
    /// As a cancellation point.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::Interrupted`] if the runtime shuts down while the
    /// fiber, already unwinding, would wait.
    pub fn recv(&self) -> io::Result<i32> {
        self.source.io(Interest::Read, None, || self.read_one())
    }

    /// The next signal, or `None` if none comes within `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// spindle::run(|| {
    ///     let signals = spindle::signal::Signals::new([libc::SIGUSR2]).unwrap();
    ///     assert_eq!(signals.recv_timeout(Duration::from_millis(5)).unwrap(), None);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// As a cancellation point.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    pub fn recv_timeout(&self, timeout: Duration) -> io::Result<Option<i32>> {
        match self
            .source
            .io(Interest::Read, deadline(Some(timeout)), || self.read_one())
        {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A signal that is already pending, if any; never waits.
    ///
    /// # Errors
    ///
    /// What `read(2)` returns, other than `EAGAIN`.
    pub fn try_recv(&self) -> io::Result<Option<i32>> {
        match self.read_one() {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// An endless iterator of [`recv`](Self::recv)s.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use spindle::signal::Signals;
    ///
    /// spindle::run(|| {
    ///     let signals = Signals::new([libc::SIGHUP, libc::SIGTERM]).unwrap();
    ///     for signal in signals.iter() {
    ///         match signal.unwrap() {
    ///             libc::SIGHUP => println!("reloading"),
    ///             _ => break, // SIGTERM: shut down
    ///         }
    ///     }
    /// });
    /// ```
    pub fn iter(&self) -> Iter<'_> {
        Iter { signals: self }
    }

    /// Reads one `signalfd_siginfo`: its signal number, or `WouldBlock`.
    fn read_one(&self) -> io::Result<i32> {
        let mut info = MaybeUninit::<libc::signalfd_siginfo>::uninit();
        let size = size_of::<libc::signalfd_siginfo>();
        // SAFETY: `info` is valid for writes of `size` bytes.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), info.as_mut_ptr().cast(), size) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n as usize != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("signalfd read {n} bytes, not {size}"),
            ));
        }
        // SAFETY: the kernel filled the whole struct.
        Ok(unsafe { info.assume_init() }.ssi_signo as i32)
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        mask::release(&self.signals);
    }
}

impl AsRawFd for Signals {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signals")
            .field("signals", &self.signals)
            .field("fd", &self.fd.as_raw_fd())
            .finish()
    }
}

impl<'a> IntoIterator for &'a Signals {
    type Item = io::Result<i32>;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// The iterator of [`Signals::iter`]: each item is one
/// [`recv`](Signals::recv); it never ends.
///
/// # Examples
///
/// ```
/// spindle::run(|| {
///     let signals = spindle::signal::Signals::new([libc::SIGUSR1]).unwrap();
///     // SAFETY: sending a signal has no memory-safety preconditions.
///     unsafe { libc::raise(libc::SIGUSR1) };
///     assert_eq!(signals.iter().next().unwrap().unwrap(), libc::SIGUSR1);
/// });
/// ```
#[derive(Debug)]
pub struct Iter<'a> {
    signals: &'a Signals,
}

impl Iterator for Iter<'_> {
    type Item = io::Result<i32>;
    fn next(&mut self) -> Option<io::Result<i32>> {
        Some(self.signals.recv())
    }
}
