//! [`Async`]: any pollable fd (a pipe, a socket made elsewhere, a tty, an
//! eventfd) made fiber-aware. Its reads and writes park the fiber instead
//! of blocking the thread.
//!
//! `Async::new` puts the fd in non-blocking mode. Every operation then tries
//! the call, and on `EAGAIN` parks the fiber until the reactor reports the
//! fd ready, and tries again (see the runtime's `IoSource`). So code written
//! against [`std::io::Read`] and [`std::io::Write`] runs unchanged on a
//! fiber, and the other fibers of the thread keep running while it waits.
//!
//! Regular files are always "ready" to epoll (it refuses them), so reading
//! one through `Async` simply blocks the thread as `read(2)` does: use
//! [`spawn_blocking`](crate::spawn_blocking) for file I/O.
//!
//! ## Ownership of the fd
//!
//! `Async` registers the fd *number* with the reactor and sets its flags,
//! and on drop (or [`into_inner`](Async::into_inner)) deregisters that
//! number and restores the flags. Were the fd closed meanwhile and its
//! number reused, those calls would act on someone else's file: remove
//! another `Async`'s registration (a fiber then waits for ever) or make
//! another socket blocking. So the fd must stay open, and stay the value's
//! fd, for as long as the `Async` holds it:
//!
//! - `T: AsFd` (I/O safety): the value owns the fd, or borrows it for a
//!   lifetime that the `Async` cannot outlive. A bare number (`RawFd`) is
//!   refused at compile time.
//! - Nothing else gets `&mut T` to replace the value (and close its fd)
//!   behind the `Async`'s back: [`Read`] and [`Write`] on `Async<T>` (which
//!   call `T`'s own methods through `&mut T`) ask for [`IoSafe`], a promise
//!   that those methods never close or swap the fd; closures given `&mut T`
//!   ([`read_with_mut`](Async::read_with_mut)) are `unsafe`.
//!
//! ```compile_fail
//! // A bare fd number owns nothing: refused.
//! let a = spindle::io::Async::new(0 as std::os::fd::RawFd);
//! ```

use std::cell::Cell;
use std::fmt;
use std::fs::File;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::ManuallyDrop;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::process::{ChildStderr, ChildStdin, ChildStdout};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::runtime::io_source::{Interest, IoSource};

/// An fd in non-blocking mode whose operations park the fiber; see the
/// [module docs](self).
///
/// # Examples
///
/// A socket pair, read by one fiber while another writes to it:
///
/// ```
/// use std::io::{Read, Write};
/// use std::os::unix::net::UnixStream;
/// use spindle::io::Async;
///
/// spindle::run(|| -> std::io::Result<()> {
///     let (reader, writer) = UnixStream::pair()?;
///     let mut reader = Async::new(reader)?;
///     let mut writer = Async::new(writer)?;
///     let h = spindle::spawn(move || {
///         spindle::sleep(std::time::Duration::from_millis(5));
///         writer.write_all(b"hello through a socket pair")
///     });
///     let mut text = String::new();
///     reader.read_to_string(&mut text)?; // parks until the writer is done and gone
///     assert_eq!(text, "hello through a socket pair");
///     h.join().unwrap()
/// })
/// .unwrap();
/// ```
///
/// # Panics
///
/// Every operation that has to wait is a cancellation point (see
/// [`JoinHandle::cancel`](crate::JoinHandle::cancel)).
///
/// # Dropping
///
/// Removes the fd from the reactor, then drops the inner value (which
/// closes the fd, if it owns it). [`into_inner`](Async::into_inner) gives
/// the value back instead. The fd must be open until then: see "Ownership
/// of the fd" in the [module docs](self).
///
/// # `Send`
///
/// `Send` when `T` is, so it may move to another thread (and another
/// runtime); not `Sync`.
pub struct Async<T: AsFd> {
    // Both dropped by hand, the source first: it must leave the reactor
    // while the fd is still open (see the runtime's `IoSource`).
    source: ManuallyDrop<IoSource>,
    inner: ManuallyDrop<T>,
    /// The fd's flags before `new` set `O_NONBLOCK`, restored by
    /// `into_inner`.
    flags: libc::c_int,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
}

impl<T: AsFd> Async<T> {
    /// Wraps `inner`, putting its fd in non-blocking mode.
    ///
    /// # Errors
    ///
    /// What `fcntl` returns (`EBADF` for a closed fd).
    pub fn new(inner: T) -> io::Result<Async<T>> {
        let fd = inner.as_fd().as_raw_fd();
        let flags = set_nonblocking(fd)?;
        Ok(Async {
            source: ManuallyDrop::new(IoSource::new(fd)),
            inner: ManuallyDrop::new(inner),
            flags,
            read_timeout: Cell::new(None),
            write_timeout: Cell::new(None),
        })
    }

    /// The inner value. Reading or writing through it directly does not
    /// wait: it gives `WouldBlock` when the fd is not ready.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Removes the fd from the reactor, restores its blocking mode, and
    /// returns the inner value.
    ///
    /// # Errors
    ///
    /// What `fcntl` returns while restoring the flags; the value is then
    /// dropped.
    pub fn into_inner(self) -> io::Result<T> {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again: the source is
        // dropped here, once (leaving the reactor while the fd is open), and
        // the value is taken out once. The other fields need no drop.
        let inner = unsafe {
            ManuallyDrop::drop(&mut this.source);
            ManuallyDrop::take(&mut this.inner)
        };
        // The fd belongs to `inner`, which is alive.
        if crate::sys::set_flags(inner.as_fd().as_raw_fd(), this.flags) < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(inner)
    }

    /// Parks the fiber until the fd is readable (or at end of stream, or
    /// in error). A hint, not a promise: the next read may still find
    /// nothing, if another fiber got there first.
    ///
    /// # Panics
    ///
    /// As a cancellation point.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::TimedOut`] after the read timeout, if one is set;
    /// what registering the fd with the reactor returns.
    pub fn readable(&self) -> io::Result<()> {
        self.source
            .ready(Interest::Read, deadline(self.read_timeout.get()))
    }

    /// Parks the fiber until the fd is writable; see
    /// [`readable`](Self::readable).
    ///
    /// # Panics
    ///
    /// As a cancellation point.
    ///
    /// # Errors
    ///
    /// As [`readable`](Self::readable), with the write timeout.
    pub fn writable(&self) -> io::Result<()> {
        self.source
            .ready(Interest::Write, deadline(self.write_timeout.get()))
    }

    /// Runs the read-like operation `op` on the inner value until it does
    /// not give `WouldBlock`, parking the fiber on readability in between.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::unix::net::UnixDatagram;
    /// use spindle::io::Async;
    ///
    /// spindle::run(|| -> std::io::Result<()> {
    ///     let (a, b) = UnixDatagram::pair()?;
    ///     let a = Async::new(a)?;
    ///     spindle::spawn(move || b.send(b"datagram").unwrap());
    ///     let mut buf = [0; 16];
    ///     let n = a.read_with(|s| s.recv(&mut buf))?;
    ///     assert_eq!(&buf[..n], b"datagram");
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    ///
    /// # Panics
    ///
    /// As a cancellation point.
    ///
    /// # Errors
    ///
    /// What `op` returns; [`io::ErrorKind::TimedOut`] after the read
    /// timeout.
    pub fn read_with<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        let deadline = deadline(self.read_timeout.get());
        self.source.io(Interest::Read, deadline, || op(&self.inner))
    }

    /// As [`read_with`](Self::read_with), with `&mut` access to the inner
    /// value.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::os::unix::net::UnixStream;
    /// use spindle::io::Async;
    ///
    /// spindle::run(|| -> std::io::Result<()> {
    ///     let (a, mut b) = UnixStream::pair()?;
    ///     let mut a = Async::new(a)?;
    ///     b.write_all(b"abc")?;
    ///     let mut buf = [0; 3];
    ///     // SAFETY: the closure only reads; it neither closes nor replaces
    ///     // the stream.
    ///     let n = unsafe { a.read_with_mut(|s| s.read(&mut buf))? };
    ///     assert_eq!(&buf[..n], b"abc");
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    ///
    /// # Panics
    ///
    /// As a cancellation point.
    ///
    /// # Errors
    ///
    /// As [`read_with`](Self::read_with).
    ///
    /// # Safety
    ///
    /// `op` must leave the inner value's fd open and the same fd: not
    /// replace the value (`mem::swap`, assignment) nor close its fd. The
    /// reactor and [`into_inner`](Self::into_inner) act on that fd number
    /// later ("Ownership of the fd" in the [module docs](self)).
    pub unsafe fn read_with_mut<R>(
        &mut self,
        mut op: impl FnMut(&mut T) -> io::Result<R>,
    ) -> io::Result<R> {
        let deadline = deadline(self.read_timeout.get());
        let (source, inner) = (&self.source, &mut self.inner);
        source.io(Interest::Read, deadline, || op(inner))
    }

    /// Runs the write-like operation `op` until it does not give
    /// `WouldBlock`, parking the fiber on writability in between.
    ///
    /// # Panics
    ///
    /// As a cancellation point.
    ///
    /// # Errors
    ///
    /// What `op` returns; [`io::ErrorKind::TimedOut`] after the write
    /// timeout.
    pub fn write_with<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        let deadline = deadline(self.write_timeout.get());
        self.source
            .io(Interest::Write, deadline, || op(&self.inner))
    }

    /// As [`write_with`](Self::write_with), with `&mut` access to the inner
    /// value.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::os::unix::net::UnixStream;
    /// use spindle::io::Async;
    ///
    /// spindle::run(|| -> std::io::Result<()> {
    ///     let (a, mut b) = UnixStream::pair()?;
    ///     let mut a = Async::new(a)?;
    ///     // SAFETY: the closure only writes; it neither closes nor
    ///     // replaces the stream.
    ///     unsafe { a.write_with_mut(|s| s.write_all(b"abc"))? };
    ///     let mut buf = [0; 3];
    ///     b.read_exact(&mut buf)?;
    ///     assert_eq!(&buf, b"abc");
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    ///
    /// # Panics
    ///
    /// As a cancellation point.
    ///
    /// # Errors
    ///
    /// As [`write_with`](Self::write_with).
    ///
    /// # Safety
    ///
    /// As [`read_with_mut`](Self::read_with_mut).
    pub unsafe fn write_with_mut<R>(
        &mut self,
        mut op: impl FnMut(&mut T) -> io::Result<R>,
    ) -> io::Result<R> {
        let deadline = deadline(self.write_timeout.get());
        let (source, inner) = (&self.source, &mut self.inner);
        source.io(Interest::Write, deadline, || op(inner))
    }

    /// Limits how long one read may wait in all; `None` (the default) waits
    /// for ever. A read that runs out of time fails with
    /// [`io::ErrorKind::TimedOut`].
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for a zero duration, as std's
    /// sockets.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.read_timeout.set(check_timeout(timeout)?);
        Ok(())
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout.get()
    }

    /// Limits how long one write may wait; see
    /// [`set_read_timeout`](Self::set_read_timeout).
    ///
    /// # Errors
    ///
    /// As [`set_read_timeout`](Self::set_read_timeout).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.write_timeout.set(check_timeout(timeout)?);
        Ok(())
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> Option<Duration> {
        self.write_timeout.get()
    }
}

impl<T: AsFd> Drop for Async<T> {
    fn drop(&mut self) {
        // SAFETY: this is the drop, so neither field is used again; each is
        // dropped once, the source first (it must leave the reactor while
        // the fd is still open).
        unsafe {
            ManuallyDrop::drop(&mut self.source);
            ManuallyDrop::drop(&mut self.inner);
        }
    }
}

impl<T: AsFd + fmt::Debug> fmt::Debug for Async<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Async")
            .field("inner", &*self.inner)
            .finish()
    }
}

impl<T: AsFd> AsRawFd for Async<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.source.fd()
    }
}

impl<T: AsFd> AsFd for Async<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

// SAFETY (the four `with_mut` calls below): `T: IoSafe` promises that
// its `Read` and `Write` methods neither close nor replace its fd.
impl<T: AsFd + IoSafe + Read> Read for Async<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: see above.
        unsafe { self.read_with_mut(|t| t.read(buf)) }
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        // SAFETY: see above.
        unsafe { self.read_with_mut(|t| t.read_vectored(bufs)) }
    }
}

impl<T: AsFd + IoSafe + Write> Write for Async<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: see above.
        unsafe { self.write_with_mut(|t| t.write(buf)) }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // SAFETY: see above.
        unsafe { self.write_with_mut(|t| t.write_vectored(bufs)) }
    }

    fn flush(&mut self) -> io::Result<()> {
        // SAFETY: see above.
        unsafe { self.write_with_mut(|t| t.flush()) }
    }
}

/// Types whose `Read` and `Write` methods (called through `&mut self`)
/// never close or replace their fd, so [`Async`] may call them.
///
/// std's owning fd types implement it, and references, `Box`, `Rc` and
/// `Arc` of them. See "Ownership of the fd" in the [module docs](self).
///
/// # Examples
///
/// A wrapper that adds a byte count to a stream:
///
/// ```
/// use std::io::{self, Read, Write};
/// use std::os::fd::{AsFd, BorrowedFd};
/// use std::os::unix::net::UnixStream;
/// use spindle::io::{Async, IoSafe};
///
/// struct Counted(UnixStream, usize);
///
/// impl AsFd for Counted {
///     fn as_fd(&self) -> BorrowedFd<'_> {
///         self.0.as_fd()
///     }
/// }
///
/// impl Read for Counted {
///     fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
///         let n = self.0.read(buf)?;
///         self.1 += n;
///         Ok(n)
///     }
/// }
///
/// // SAFETY: `read` reads from the stream; it never replaces or closes it.
/// unsafe impl IoSafe for Counted {}
///
/// spindle::run(|| -> io::Result<()> {
///     let (a, b) = UnixStream::pair()?;
///     let mut a = Async::new(Counted(a, 0))?;
///     spindle::spawn(move || (&b).write_all(b"hi")); // then end of stream
///     let mut all = Vec::new();
///     a.read_to_end(&mut all)?;
///     assert_eq!(a.get_ref().1, 2);
///     Ok(())
/// })
/// .unwrap();
/// ```
///
/// # Safety
///
/// Implement it only if the type's `Read` and `Write` methods leave the fd
/// that `as_fd` returns open, and `as_fd` returning the same fd.
pub unsafe trait IoSafe {}

// SAFETY: std's types read and write their own fd; they close it only when
// dropped.
unsafe impl IoSafe for File {}
// SAFETY: as above.
unsafe impl IoSafe for OwnedFd {}
// SAFETY: as above.
unsafe impl IoSafe for TcpStream {}
// SAFETY: as above.
unsafe impl IoSafe for TcpListener {}
// SAFETY: as above.
unsafe impl IoSafe for UdpSocket {}
// SAFETY: as above.
unsafe impl IoSafe for UnixStream {}
// SAFETY: as above.
unsafe impl IoSafe for UnixListener {}
// SAFETY: as above.
unsafe impl IoSafe for UnixDatagram {}
// SAFETY: as above.
unsafe impl IoSafe for ChildStdin {}
// SAFETY: as above.
unsafe impl IoSafe for ChildStdout {}
// SAFETY: as above.
unsafe impl IoSafe for ChildStderr {}
// SAFETY: `&mut &T` gives only `&T`: the same methods as `T`'s, through a
// shared borrow that cannot replace it.
unsafe impl<T: IoSafe + ?Sized> IoSafe for &T {}
// SAFETY: `Box` forwards to `T`'s own methods.
unsafe impl<T: IoSafe + ?Sized> IoSafe for Box<T> {}
// SAFETY: `Rc` and `Arc` have no `Read`/`Write` of their own to call
// through `&mut`; any they gain forwards to `&T`, as above.
unsafe impl<T: IoSafe + ?Sized> IoSafe for Rc<T> {}
// SAFETY: as for `Rc`.
unsafe impl<T: IoSafe + ?Sized> IoSafe for Arc<T> {}

impl<T: AsFd> Read for &Async<T>
where
    for<'a> &'a T: Read,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_with(|mut t| t.read(buf))
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.read_with(|mut t| t.read_vectored(bufs))
    }
}

impl<T: AsFd> Write for &Async<T>
where
    for<'a> &'a T: Write,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_with(|mut t| t.write(buf))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_with(|mut t| t.write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_with(|mut t| t.flush())
    }
}

/// Sets `O_NONBLOCK` on `fd`; returns the flags it had.
pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<libc::c_int> {
    crate::sys::forget_mode(fd);
    // fcntl on an fd number: at worst EBADF.
    let flags = crate::sys::get_flags(fd);
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & libc::O_NONBLOCK == 0 && crate::sys::set_flags(fd, flags | libc::O_NONBLOCK) < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(flags)
}

/// The deadline of an operation that starts now and may wait `timeout`.
pub(crate) fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

/// std's rule for socket timeouts: `Some(0)` is an error.
pub(crate) fn check_timeout(timeout: Option<Duration>) -> io::Result<Option<Duration>> {
    if timeout == Some(Duration::ZERO) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    Ok(timeout)
}
