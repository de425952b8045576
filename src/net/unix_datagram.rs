//! [`UnixDatagram`]: std's Unix domain datagram socket, whose waits park
//! the fiber.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::os::unix::net::{self, SocketAddr};
use std::path::Path;
use std::time::Duration;

use super::socket::{fd_conversions, socket_timeouts};
use crate::runtime::io_source::IoSource;

/// A Unix domain datagram socket (std's `UnixDatagram`), non-blocking
/// underneath: a receive with nothing queued, or a send to a peer whose
/// queue is full, parks the fiber.
///
/// # Examples
///
/// ```
/// use spindle::net::UnixDatagram;
///
/// spindle::run(|| -> std::io::Result<()> {
///     let (a, b) = UnixDatagram::pair()?;
///     let h = spindle::spawn(move || {
///         let mut buf = [0; 16];
///         let n = b.recv(&mut buf).unwrap(); // parks
///         b.send(&buf[..n]).unwrap();
///     });
///     a.send(b"marco")?;
///     let mut buf = [0; 16];
///     let n = a.recv(&mut buf)?;
///     assert_eq!(&buf[..n], b"marco");
///     h.join().unwrap();
///     Ok(())
/// })
/// .unwrap();
/// ```
///
/// # Errors
///
/// As std's; [`io::ErrorKind::TimedOut`] after a read or write timeout.
///
/// # Panics
///
/// Every operation that has to wait is a cancellation point. Outside a
/// fiber it blocks the thread, as std's would.
///
/// # `Send`
///
/// `Send`, not `Sync`.
pub struct UnixDatagram {
    // Declared before `inner`: the fd leaves the reactor before it closes.
    source: IoSource,
    inner: net::UnixDatagram,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
}

impl UnixDatagram {
    fn wrap(inner: net::UnixDatagram) -> UnixDatagram {
        UnixDatagram {
            source: IoSource::new(inner.as_raw_fd()),
            inner,
            read_timeout: Cell::new(None),
            write_timeout: Cell::new(None),
        }
    }

    /// A socket bound to `path`, which must not exist yet.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::AddrInUse`] if `path` exists; what `socket` or
    /// `bind` return.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(net::UnixDatagram::bind(path)?)
    }

    /// A socket bound to `addr`, a path or an abstract name.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::linux::net::SocketAddrExt;
    /// use std::os::unix::net::SocketAddr;
    /// use spindle::net::UnixDatagram;
    ///
    /// spindle::run(|| -> std::io::Result<()> {
    ///     let addr = SocketAddr::from_abstract_name(format!("spindle-dgram-{}", std::process::id()))?;
    ///     let server = UnixDatagram::bind_addr(&addr)?;
    ///     let client = UnixDatagram::unbound()?;
    ///     client.send_to_addr(b"hi", &addr)?;
    ///     let mut buf = [0; 8];
    ///     let (n, from) = server.recv_from(&mut buf)?;
    ///     assert_eq!(&buf[..n], b"hi");
    ///     assert!(from.is_unnamed());
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`bind`](Self::bind).
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(net::UnixDatagram::bind_addr(addr)?)
    }

    /// A socket bound to no address: it can send, and its receivers see
    /// it as unnamed (they cannot reply to it).
    ///
    /// # Errors
    ///
    /// What `socket` returns.
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(net::UnixDatagram::unbound()?)
    }

    /// An unnamed pair of connected sockets (`socketpair(2)`).
    ///
    /// # Errors
    ///
    /// What `socketpair(2)` returns (out of fds).
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = net::UnixDatagram::pair()?;
        Ok((UnixDatagram::from_std(a)?, UnixDatagram::from_std(b)?))
    }

    /// Sets the default peer for [`send`](Self::send) (the socket bound at
    /// `path`), and only accepts datagrams from it. Never waits.
    ///
    /// # Errors
    ///
    /// What `connect(2)` returns.
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.inner.connect(path)
    }

    /// As [`connect`](Self::connect), to a path or an abstract name.
    ///
    /// # Errors
    ///
    /// What `connect(2)` returns.
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        self.inner.connect_addr(addr)
    }

    /// Sends a datagram to the connected peer, parking while its queue is
    /// full.
    ///
    /// # Panics
    ///
    /// As a cancellation point, when it waits.
    ///
    /// # Errors
    ///
    /// As std's; [`io::ErrorKind::TimedOut`] after the write timeout.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.write_op(|| self.inner.send(buf))
    }

    /// Receives a datagram, parking until one comes.
    ///
    /// # Panics
    ///
    /// As a cancellation point, when it waits.
    ///
    /// # Errors
    ///
    /// As std's; [`io::ErrorKind::TimedOut`] after the read timeout.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_op(|| self.inner.recv(buf))
    }

    /// Sends a datagram to the socket bound at `path`.
    ///
    /// # Panics
    ///
    /// As a cancellation point, when it waits.
    ///
    /// # Errors
    ///
    /// As std's; [`io::ErrorKind::TimedOut`] after the write timeout.
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.write_op(|| self.inner.send_to(buf, path))
    }

    /// Sends a datagram to `addr`, a path or an abstract name.
    ///
    /// # Panics
    ///
    /// As a cancellation point, when it waits.
    ///
    /// # Errors
    ///
    /// As [`send_to`](Self::send_to).
    pub fn send_to_addr(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        self.write_op(|| self.inner.send_to_addr(buf, addr))
    }

    /// Receives a datagram and its sender's address, parking until one
    /// comes.
    ///
    /// # Panics
    ///
    /// As a cancellation point, when it waits.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.read_op(|| self.inner.recv_from(buf))
    }

    /// The address it is bound to.
    ///
    /// # Errors
    ///
    /// What `getsockname` returns.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// The connected peer's address.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotConnected`] if it is not connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// Shuts down receiving, sending, or both.
    ///
    /// # Errors
    ///
    /// What `shutdown(2)` returns.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    /// Takes the socket's pending error (`SO_ERROR`), if there is one.
    ///
    /// # Errors
    ///
    /// What `getsockopt` returns.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.take_error()
    }

    /// A second handle to the same socket (`dup`), with its own timeouts.
    ///
    /// # Errors
    ///
    /// What `fcntl(F_DUPFD_CLOEXEC)` returns (out of fds).
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram::wrap(self.inner.try_clone()?))
    }

    /// Takes a std socket, putting it in non-blocking mode.
    ///
    /// # Errors
    ///
    /// What `fcntl` returns.
    pub fn from_std(socket: net::UnixDatagram) -> io::Result<UnixDatagram> {
        socket.set_nonblocking(true)?;
        Ok(UnixDatagram::wrap(socket))
    }

    /// Gives back a std socket, in blocking mode again.
    ///
    /// # Errors
    ///
    /// What `fcntl` returns.
    pub fn into_std(self) -> io::Result<net::UnixDatagram> {
        let UnixDatagram { source, inner, .. } = self;
        drop(source);
        inner.set_nonblocking(false)?;
        Ok(inner)
    }
}

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UnixDatagram");
        if let Ok(a) = self.local_addr() {
            d.field("addr", &a);
        }
        d.field("fd", &self.as_raw_fd()).finish()
    }
}

fd_conversions!(
    UnixDatagram,
    net::UnixDatagram,
    "an open Unix datagram socket"
);
socket_timeouts!(UnixDatagram);
