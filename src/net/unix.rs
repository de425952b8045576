//! [`UnixListener`] and [`UnixStream`]: std's Unix domain stream sockets,
//! whose waits park the fiber; and the C form of a Unix socket address,
//! which [`UnixDatagram`](super::UnixDatagram) shares.
//!
//! Addresses are std's [`SocketAddr`]: a path, or on Linux an *abstract*
//! name (no file; gone with the last socket using it), made with
//! [`SocketAddrExt::from_abstract_name`](std::os::linux::net::SocketAddrExt::from_abstract_name).

use std::cell::Cell;
use std::fmt;
use std::io;
use std::mem::{size_of, MaybeUninit};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{self, SocketAddr};
use std::path::Path;
use std::time::Duration;

use super::socket::{fd_conversions, socket_timeouts, stream_io};
use crate::runtime::io_source::{Interest, IoSource};
use crate::runtime::wait::Parker;

/// A connected Unix domain stream socket (std's
/// `std::os::unix::net::UnixStream`), non-blocking underneath: a read,
/// write or connect that would block parks the fiber.
///
/// It implements [`Read`](std::io::Read) and [`Write`](std::io::Write),
/// also for `&UnixStream`, as [`TcpStream`](super::TcpStream) does.
///
/// # Examples
///
/// A pair of connected sockets, one per fiber:
///
/// ```
/// use std::io::{Read, Write};
/// use spindle::net::UnixStream;
///
/// spindle::run(|| -> std::io::Result<()> {
///     let (mut a, mut b) = UnixStream::pair()?;
///     let h = spindle::spawn(move || b.write_all(b"over the pair"));
///     let mut buf = [0; 13];
///     a.read_exact(&mut buf)?; // parks until the other fiber writes
///     assert_eq!(&buf, b"over the pair");
///     h.join().unwrap()
/// })
/// .unwrap();
/// ```
///
/// # Errors
///
/// As [`TcpStream`](super::TcpStream)'s: `BrokenPipe` (never `SIGPIPE`)
/// after the peer closed, `TimedOut` after a read or write timeout.
///
/// # Panics
///
/// Every operation that has to wait is a cancellation point. Outside a
/// fiber it blocks the thread, as std's would.
///
/// # `Send`
///
/// `Send`, not `Sync`, as [`TcpStream`](super::TcpStream).
pub struct UnixStream {
    // Declared before `inner`: the fd leaves the reactor before it closes.
    source: IoSource,
    inner: net::UnixStream,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
}

impl UnixStream {
    fn wrap(inner: net::UnixStream) -> UnixStream {
        UnixStream {
            source: IoSource::new(inner.as_raw_fd()),
            inner,
            read_timeout: Cell::new(None),
            write_timeout: Cell::new(None),
        }
    }

    /// Connects to the socket bound at `path`.
    ///
    /// # Panics
    ///
    /// As a cancellation point (see [`connect_addr`](Self::connect_addr)).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for a path too long for a Unix
    /// address (107 bytes); [`io::ErrorKind::NotFound`] when nothing is
    /// bound there; [`io::ErrorKind::ConnectionRefused`] when nothing
    /// listens.
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        UnixStream::connect_addr(&SocketAddr::from_pathname(path)?)
    }

    /// Connects to `addr`, a path or an abstract name.
    ///
    /// A Unix connect does not wait for the listener to accept; it fails
    /// with `EAGAIN` only when the listener's backlog is full. Then the
    /// fiber sleeps (1 ms, doubling up to 64 ms) and tries again, until the
    /// listener makes room; std's blocking connect waits for that too.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// use std::os::unix::net::SocketAddr;
    /// use spindle::net::{UnixListener, UnixStream};
    ///
    /// spindle::run(|| -> std::io::Result<()> {
    ///     let name = format!("spindle-doc-{}", std::process::id());
    ///     let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
    ///     let listener = UnixListener::bind_addr(&addr)?;
    ///     let client = UnixStream::connect_addr(&addr)?;
    ///     let (server, _) = listener.accept()?;
    ///     assert_eq!(client.peer_addr()?.as_abstract_name(), Some(name.as_bytes()));
    ///     assert!(server.peer_addr()?.is_unnamed());
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    ///
    /// # Panics
    ///
    /// As a cancellation point, while it waits for room in the backlog.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for an unnamed address; otherwise
    /// what `connect(2)` returns.
    pub fn connect_addr(addr: &SocketAddr) -> io::Result<UnixStream> {
        let (raw, len) = to_raw(addr)?;
        let fd = new_unix_socket(libc::SOCK_STREAM)?;
        let mut pause = Duration::from_millis(1);
        loop {
            // SAFETY: `raw` is a sockaddr_un of `len` bytes, alive for the
            // call.
            let r = unsafe {
                libc::connect(
                    fd.as_raw_fd(),
                    &raw as *const libc::sockaddr_un as *const libc::sockaddr,
                    len,
                )
            };
            if r == 0 {
                return Ok(UnixStream::wrap(net::UnixStream::from(fd)));
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::EAGAIN) => {
                    sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(64));
                }
                _ => return Err(e),
            }
        }
    }

    /// An unnamed pair of connected sockets (`socketpair(2)`).
    ///
    /// # Errors
    ///
    /// What `socketpair(2)` returns (out of fds).
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = net::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    /// Takes a std stream, putting it in non-blocking mode.
    ///
    /// # Errors
    ///
    /// What `fcntl` returns.
    pub fn from_std(stream: net::UnixStream) -> io::Result<UnixStream> {
        stream.set_nonblocking(true)?;
        Ok(UnixStream::wrap(stream))
    }

    /// Gives back a std stream, in blocking mode again.
    ///
    /// # Errors
    ///
    /// What `fcntl` returns.
    pub fn into_std(self) -> io::Result<net::UnixStream> {
        let UnixStream { source, inner, .. } = self;
        drop(source);
        inner.set_nonblocking(false)?;
        Ok(inner)
    }

    /// The address of this end.
    ///
    /// # Errors
    ///
    /// What `getsockname` returns.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The address of the other end.
    ///
    /// # Errors
    ///
    /// What `getpeername` returns.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// Shuts down the reading half, the writing half (the peer reads end of
    /// stream), or both.
    ///
    /// # Errors
    ///
    /// What `shutdown(2)` returns.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    /// A second handle to the same connection (`dup`), with its own
    /// timeouts.
    ///
    /// # Errors
    ///
    /// What `fcntl(F_DUPFD_CLOEXEC)` returns (out of fds).
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        Ok(UnixStream::wrap(self.inner.try_clone()?))
    }

    /// Takes the socket's pending error (`SO_ERROR`), if there is one.
    ///
    /// # Errors
    ///
    /// What `getsockopt` returns.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UnixStream");
        if let Ok(a) = self.local_addr() {
            d.field("local", &a);
        }
        if let Ok(a) = self.peer_addr() {
            d.field("peer", &a);
        }
        d.field("fd", &self.as_raw_fd()).finish()
    }
}

fd_conversions!(
    UnixStream,
    net::UnixStream,
    "an open, connected Unix stream socket"
);
socket_timeouts!(UnixStream);
stream_io!(UnixStream);

/// A Unix domain server socket (std's `UnixListener`) whose `accept` parks
/// the fiber until a connection arrives.
///
/// # Examples
///
/// An echo server on a path:
///
/// ```
/// use std::io::{Read, Write};
/// use spindle::net::{UnixListener, UnixStream};
///
/// spindle::run(|| -> std::io::Result<()> {
///     let path = std::env::temp_dir().join(format!("spindle-echo-{}.sock", std::process::id()));
///     let _ = std::fs::remove_file(&path);
///     let listener = UnixListener::bind(&path)?;
///     spindle::spawn(move || {
///         for conn in listener.incoming() {
///             let mut conn = conn.unwrap();
///             spindle::spawn(move || {
///                 let mut buf = [0; 64];
///                 while let Ok(n @ 1..) = conn.read(&mut buf) {
///                     conn.write_all(&buf[..n]).unwrap();
///                 }
///             });
///         }
///     });
///     let mut client = UnixStream::connect(&path)?;
///     client.write_all(b"ping")?;
///     let mut reply = [0; 4];
///     client.read_exact(&mut reply)?;
///     assert_eq!(&reply, b"ping");
///     std::fs::remove_file(&path)
/// })
/// .unwrap();
/// ```
///
/// # Dropping
///
/// Closes the socket; a path it was bound to stays in the file system (as
/// with std): remove it yourself.
///
/// # `Send`
///
/// `Send`, not `Sync`.
pub struct UnixListener {
    source: IoSource,
    inner: net::UnixListener,
}

impl UnixListener {
    fn wrap(inner: net::UnixListener) -> UnixListener {
        UnixListener {
            source: IoSource::new(inner.as_raw_fd()),
            inner,
        }
    }

    /// Binds a listening socket to `path`, which must not exist yet.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::AddrInUse`] if `path` exists; what `socket`,
    /// `bind` or `listen` return.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        UnixListener::from_std(net::UnixListener::bind(path)?)
    }

    /// Binds a listening socket to `addr`, a path or an abstract name (see
    /// [`UnixStream::connect_addr`] for an example).
    ///
    /// # Errors
    ///
    /// As [`bind`](Self::bind).
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
        UnixListener::from_std(net::UnixListener::bind_addr(addr)?)
    }

    /// Takes the next connection, parking the fiber until one arrives. The
    /// new stream is non-blocking and close-on-exec.
    ///
    /// # Panics
    ///
    /// As a cancellation point, when it waits.
    ///
    /// # Errors
    ///
    /// What `accept4(2)` returns (`EMFILE` when out of fds: the connection
    /// stays queued, and the listener keeps working).
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let fd = self.source.io(Interest::Read, None, || {
            // SAFETY: null address pointers are allowed (the address is
            // read below); the result is checked.
            let fd = unsafe {
                libc::accept4(
                    self.inner.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` is a new descriptor that nothing else owns.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        })?;
        let stream = UnixStream::wrap(net::UnixStream::from(fd));
        // What accept would have written: the connecting socket's address.
        let addr = stream.peer_addr()?;
        Ok((stream, addr))
    }

    /// An endless iterator of [`accept`](Self::accept)ed connections.
    pub fn incoming(&self) -> UnixIncoming<'_> {
        UnixIncoming { listener: self }
    }

    /// The address it listens on.
    ///
    /// # Errors
    ///
    /// What `getsockname` returns.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// A second handle to the same listening socket (`dup`).
    ///
    /// # Errors
    ///
    /// What `fcntl(F_DUPFD_CLOEXEC)` returns.
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        Ok(UnixListener::wrap(self.inner.try_clone()?))
    }

    /// Takes the socket's pending error (`SO_ERROR`), if there is one.
    ///
    /// # Errors
    ///
    /// What `getsockopt` returns.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    /// Takes a std listener, putting it in non-blocking mode.
    ///
    /// # Errors
    ///
    /// What `fcntl` returns.
    pub fn from_std(listener: net::UnixListener) -> io::Result<UnixListener> {
        listener.set_nonblocking(true)?;
        Ok(UnixListener::wrap(listener))
    }

    /// Gives back a std listener, in blocking mode again.
    ///
    /// # Errors
    ///
    /// What `fcntl` returns.
    pub fn into_std(self) -> io::Result<net::UnixListener> {
        let UnixListener { source, inner } = self;
        drop(source);
        inner.set_nonblocking(false)?;
        Ok(inner)
    }
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UnixListener");
        if let Ok(a) = self.local_addr() {
            d.field("addr", &a);
        }
        d.field("fd", &self.as_raw_fd()).finish()
    }
}

fd_conversions!(
    UnixListener,
    net::UnixListener,
    "an open, listening Unix stream socket"
);

/// The iterator of [`UnixListener::incoming`]: each item is one
/// [`accept`](UnixListener::accept); it never ends.
///
/// # Examples
///
/// ```
/// use spindle::net::{UnixListener, UnixStream};
/// use std::os::linux::net::SocketAddrExt;
///
/// spindle::run(|| {
///     let addr = std::os::unix::net::SocketAddr::from_abstract_name(b"spindle-incoming-doc").unwrap();
///     let listener = UnixListener::bind_addr(&addr).unwrap();
///     let _client = UnixStream::connect_addr(&addr).unwrap();
///     let server = listener.incoming().next().unwrap().unwrap();
///     assert!(server.peer_addr().unwrap().is_unnamed());
/// });
/// ```
#[derive(Debug)]
pub struct UnixIncoming<'a> {
    listener: &'a UnixListener,
}

impl Iterator for UnixIncoming<'_> {
    type Item = io::Result<UnixStream>;
    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

/// A new Unix socket of `kind`, non-blocking and close-on-exec.
fn new_unix_socket(kind: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            kind | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The C form of `addr` and its length.
///
/// # Errors
///
/// [`io::ErrorKind::InvalidInput`] for an unnamed address (nothing to
/// connect to).
fn to_raw(addr: &SocketAddr) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain data; all zeros is valid.
    let mut raw: libc::sockaddr_un = unsafe { MaybeUninit::zeroed().assume_init() };
    raw.sun_family = libc::AF_UNIX as libc::sa_family_t;
    // Where sun_path starts; the length counts from the struct's start.
    let base = size_of::<libc::sockaddr_un>() - raw.sun_path.len();
    // std checked the length when it made `addr` (a path leaves room for
    // its NUL, an abstract name fills at most the rest after the leading
    // NUL).
    let (bytes, start, len) = if let Some(path) = addr.as_pathname() {
        let bytes = path.as_os_str().as_encoded_bytes();
        (bytes, 0, base + bytes.len() + 1)
    } else if let Some(name) = addr.as_abstract_name() {
        (name, 1, base + 1 + name.len())
    } else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot connect to an unnamed Unix socket address",
        ));
    };
    for (dst, &b) in raw.sun_path[start..].iter_mut().zip(bytes) {
        *dst = b as libc::c_char;
    }
    Ok((raw, len as libc::socklen_t))
}

/// Pauses the fiber (or, outside a fiber, the thread) for `d`.
fn sleep(d: Duration) {
    if Parker::try_current().is_some() {
        crate::sleep(d);
    } else {
        std::thread::sleep(d);
    }
}
