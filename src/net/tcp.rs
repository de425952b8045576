//! [`TcpListener`] and [`TcpStream`]: std's TCP sockets, whose waits park
//! the fiber.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::net::{self, Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::socket::{self, fd_conversions, socket_timeouts, stream_io, RawAddr};
use crate::io::{check_timeout, deadline};
use crate::runtime::io_source::{Interest, IoSource};

/// A TCP connection (std's `TcpStream`), non-blocking underneath: a read,
/// write or connect that would block parks the fiber, and the thread's other
/// fibers run meanwhile.
///
/// It implements [`Read`](std::io::Read) and [`Write`](std::io::Write), also for `&TcpStream`, so
/// `BufReader`, `read_to_end`, `write_all` and any parser written against
/// std's traits work on it unchanged, and one fiber can read while another
/// writes the same connection.
///
/// # Examples
///
/// ```
/// use std::io::{BufRead, BufReader, Write};
/// use spindle::net::{TcpListener, TcpStream};
///
/// spindle::run(|| -> std::io::Result<()> {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let addr = listener.local_addr()?;
///     let server = spindle::spawn(move || -> std::io::Result<()> {
///         let (mut conn, _) = listener.accept()?;
///         conn.write_all(b"hello\n")
///     });
///     let mut line = String::new();
///     BufReader::new(TcpStream::connect(addr)?).read_line(&mut line)?;
///     assert_eq!(line, "hello\n");
///     server.join().unwrap()
/// })
/// .unwrap();
/// ```
///
/// # Errors
///
/// As std's: a peer that resets the connection gives
/// [`io::ErrorKind::ConnectionReset`]; writing to a connection the peer has
/// closed gives [`io::ErrorKind::BrokenPipe`] (never `SIGPIPE`: writes use
/// `MSG_NOSIGNAL`); a read or write that runs past its timeout gives
/// [`io::ErrorKind::TimedOut`].
///
/// # Panics
///
/// Every operation that has to wait is a cancellation point. Outside a
/// fiber (no runtime on this thread) it blocks the thread, as std's would.
///
/// # `Send`
///
/// `Send`: a connection may move to another thread and be used by that
/// thread's runtime. Not `Sync`: one thread's fibers share it through `&`.
pub struct TcpStream {
    // Declared before `inner`, so it drops first: the fd leaves the reactor
    // before it is closed.
    source: IoSource,
    inner: net::TcpStream,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
}

impl TcpStream {
    fn wrap(inner: net::TcpStream) -> TcpStream {
        TcpStream {
            source: IoSource::new(inner.as_raw_fd()),
            inner,
            read_timeout: Cell::new(None),
            write_timeout: Cell::new(None),
        }
    }

    /// Opens a connection to `addr`, trying each address it resolves to in
    /// turn (std's rule); the fiber parks while the handshake runs.
    ///
    /// A host name is resolved with std's `ToSocketAddrs`, which blocks the
    /// thread in the system resolver: resolve it with
    /// [`lookup_host`](super::lookup_host) first to keep the other fibers
    /// running.
    ///
    /// # Panics
    ///
    /// As a cancellation point.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::ConnectionRefused`] and the other errors of
    /// `connect(2)`, from the last address tried.
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        socket::each_addr(addr, |a| TcpStream::connect_until(a, None))
    }

    /// Opens a connection to `addr`, giving up after `timeout` (std's
    /// `connect_timeout`).
    ///
    /// # Panics
    ///
    /// As a cancellation point.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::TimedOut`] when the time runs out;
    /// [`io::ErrorKind::InvalidInput`] for a zero timeout; otherwise as
    /// [`connect`](Self::connect).
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        check_timeout(Some(timeout))?;
        TcpStream::connect_until(addr, deadline(Some(timeout)))
    }

    fn connect_until(addr: &SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
        let fd = socket::new_socket(addr, libc::SOCK_STREAM)?;
        let stream = TcpStream::wrap(net::TcpStream::from(fd));
        let raw = RawAddr::from_std(addr);
        // SAFETY: `raw` holds a valid sockaddr of the length given.
        let r = unsafe { crate::sys::connect(stream.as_raw_fd(), raw.as_ptr(), raw.len()) };
        if r == 0 {
            return Ok(stream);
        }
        let e = io::Error::last_os_error();
        if !matches!(e.raw_os_error(), Some(libc::EINPROGRESS | libc::EINTR)) {
            return Err(e);
        }
        // The handshake runs in the kernel; it is over when the socket
        // becomes writable (connected) or reports an error.
        loop {
            stream.source.ready(Interest::Write, deadline)?;
            if let Some(e) = stream.inner.take_error()? {
                return Err(e);
            }
            match stream.inner.peer_addr() {
                Ok(_) => return Ok(stream),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Takes a std stream, putting it in non-blocking mode.
    ///
    /// # Errors
    ///
    /// What `fcntl` returns.
    pub fn from_std(stream: net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        Ok(TcpStream::wrap(stream))
    }

    /// Gives back a std stream, in blocking mode again.
    ///
    /// # Errors
    ///
    /// What `fcntl` returns.
    pub fn into_std(self) -> io::Result<net::TcpStream> {
        let TcpStream { source, inner, .. } = self;
        drop(source);
        inner.set_nonblocking(false)?;
        Ok(inner)
    }

    /// The address of the other end.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::NotConnected`] if it is not connected.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.peer_addr()
    }

    /// The address of this end.
    ///
    /// # Errors
    ///
    /// What `getsockname` returns.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Shuts down the reading half, the writing half (the peer reads end of
    /// stream: a *half-close*), or both.
    ///
    /// # Errors
    ///
    /// What `shutdown(2)` returns ([`io::ErrorKind::NotConnected`]).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.shutdown(how)
    }

    /// A second handle to the same connection (`dup`), with its own
    /// timeouts; one fiber may read through one while another writes
    /// through the other.
    ///
    /// # Errors
    ///
    /// What `fcntl(F_DUPFD_CLOEXEC)` returns (out of fds).
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream::wrap(self.inner.try_clone()?))
    }

    /// Reads without taking the bytes out of the receive queue, parking
    /// until there is something to read.
    ///
    /// # Panics
    ///
    /// As a cancellation point.
    ///
    /// # Errors
    ///
    /// As [`Read::read`](std::io::Read::read).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_op(|| self.inner.peek(buf))
    }

    /// Turns Nagle's algorithm off (`true`) or on.
    ///
    /// # Errors
    ///
    /// What `setsockopt` returns.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.set_nodelay(nodelay)
    }

    /// Whether Nagle's algorithm is off.
    ///
    /// # Errors
    ///
    /// What `getsockopt` returns.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.nodelay()
    }

    /// Sets `SO_LINGER`: `Some(d)` makes closing wait up to `d` for unsent
    /// data; `Some(Duration::ZERO)` discards it and resets the connection
    /// (the peer sees [`io::ErrorKind::ConnectionReset`]).
    ///
    /// # Errors
    ///
    /// What `setsockopt` returns.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        socket::set_linger(self.as_raw_fd(), linger)
    }

    /// The `SO_LINGER` setting.
    ///
    /// # Errors
    ///
    /// What `getsockopt` returns.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        socket::linger(self.as_raw_fd())
    }

    /// Sets the IP time-to-live of outgoing packets.
    ///
    /// # Errors
    ///
    /// What `setsockopt` returns.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.set_ttl(ttl)
    }

    /// The IP time-to-live of outgoing packets.
    ///
    /// # Errors
    ///
    /// What `getsockopt` returns.
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.ttl()
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

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TcpStream");
        if let Ok(a) = self.local_addr() {
            d.field("local", &a);
        }
        if let Ok(a) = self.peer_addr() {
            d.field("peer", &a);
        }
        d.field("fd", &self.as_raw_fd()).finish()
    }
}

fd_conversions!(TcpStream, net::TcpStream, "an open, connected TCP socket");
socket_timeouts!(TcpStream);
stream_io!(TcpStream);

/// A TCP server socket (std's `TcpListener`) whose `accept` parks the fiber
/// until a connection arrives.
///
/// # Examples
///
/// An echo server, one fiber per connection:
///
/// ```
/// use std::io::{Read, Write};
/// use spindle::net::{TcpListener, TcpStream};
///
/// spindle::run(|| -> std::io::Result<()> {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let addr = listener.local_addr()?;
///     spindle::spawn(move || {
///         for conn in listener.incoming() {
///             let mut conn = conn.unwrap();
///             spindle::spawn(move || {
///                 let mut buf = [0; 1024];
///                 while let Ok(n @ 1..) = conn.read(&mut buf) {
///                     conn.write_all(&buf[..n]).unwrap();
///                 }
///             });
///         }
///     });
///     let mut client = TcpStream::connect(addr)?;
///     client.write_all(b"ping")?;
///     let mut reply = [0; 4];
///     client.read_exact(&mut reply)?;
///     assert_eq!(&reply, b"ping");
///     Ok(()) // the runtime cancels the server fibers on the way out
/// })
/// .unwrap();
/// ```
///
/// # Errors
///
/// `accept` reports what `accept4(2)` does; when the process is out of fds
/// (`EMFILE`) the connection stays queued in the kernel, the listener keeps
/// working, and a later `accept` takes it once fds are free.
///
/// # `Send`
///
/// `Send`, not `Sync`, as [`TcpStream`].
pub struct TcpListener {
    source: IoSource,
    inner: net::TcpListener,
}

impl TcpListener {
    /// Binds a listening socket to `addr` (port 0: any free port), trying
    /// each address it resolves to in turn. The backlog is `SOMAXCONN`
    /// (capped by the kernel's `net.core.somaxconn`), and `SO_REUSEADDR` is
    /// set, as std does.
    ///
    /// # Errors
    ///
    /// What `socket`, `bind` or `listen` return
    /// ([`io::ErrorKind::AddrInUse`], ...), for the last address tried.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        TcpListener::bind_with(addr, false)
    }

    /// Binds like [`bind`](Self::bind), with `SO_REUSEPORT` set as well:
    /// every socket of this process that binds the same address this way
    /// listens on the same port, and the kernel spreads the incoming
    /// connections over them (by a hash of each connection's addresses).
    /// One such listener per worker serves one port from every worker;
    /// [`Server`](super::Server) does exactly that.
    ///
    /// A second program (of the same user) that binds the port the same
    /// way joins the group and takes a share of the connections: bind
    /// with [`bind`](Self::bind) when the port must be yours alone.
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::net::TcpListener;
    ///
    /// spindle::run(|| -> std::io::Result<()> {
    ///     let a = TcpListener::bind_reuseport("127.0.0.1:0")?;
    ///     let b = TcpListener::bind_reuseport(a.local_addr()?)?; // same port
    ///     assert_eq!(a.local_addr()?, b.local_addr()?);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`bind`](Self::bind); [`io::ErrorKind::AddrInUse`] also when a
    /// socket bound without `SO_REUSEPORT` (or by another user) holds the
    /// address.
    pub fn bind_reuseport<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        TcpListener::bind_with(addr, true)
    }

    fn bind_with<A: ToSocketAddrs>(addr: A, reuseport: bool) -> io::Result<TcpListener> {
        socket::each_addr(addr, |a| {
            let fd = socket::new_socket(a, libc::SOCK_STREAM)?;
            socket::set_int_option(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
            if reuseport {
                socket::set_int_option(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
            }
            let raw = RawAddr::from_std(a);
            // SAFETY: `raw` holds a valid sockaddr of the length given.
            if unsafe { libc::bind(fd.as_raw_fd(), raw.as_ptr(), raw.len()) } < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: plain syscall on an fd we own.
            if unsafe { libc::listen(fd.as_raw_fd(), libc::SOMAXCONN) } < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(TcpListener::wrap(net::TcpListener::from(fd)))
        })
    }

    fn wrap(inner: net::TcpListener) -> TcpListener {
        TcpListener {
            source: IoSource::new(inner.as_raw_fd()),
            inner,
        }
    }

    /// Takes the next connection, parking the fiber until one arrives.
    /// The new stream is non-blocking and close-on-exec.
    ///
    /// # Panics
    ///
    /// As a cancellation point, when it waits.
    ///
    /// # Errors
    ///
    /// What `accept4(2)` returns: `EMFILE`/`ENFILE` when out of fds (see
    /// the type's docs), `ECONNABORTED` for a connection reset while queued.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (fd, addr) = self.source.io(Interest::Read, None, || {
            let mut raw = RawAddr::empty();
            // SAFETY: `raw` has room for any address and its length is set
            // to that room; the result is checked.
            let fd = unsafe {
                crate::sys::accept4(
                    self.inner.as_raw_fd(),
                    raw.as_mut_ptr(),
                    raw.len_mut(),
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` is a new descriptor that nothing else owns.
            Ok((unsafe { OwnedFd::from_raw_fd(fd) }, raw))
        })?;
        let stream = TcpStream::wrap(net::TcpStream::from(fd));
        Ok((stream, addr.to_std()?))
    }

    /// An endless iterator of [`accept`](Self::accept)ed connections.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address it listens on (with the port the kernel chose, for
    /// port 0).
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
    /// What `fcntl(F_DUPFD_CLOEXEC)` returns (out of fds).
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener::wrap(self.inner.try_clone()?))
    }

    /// Takes a std listener, putting it in non-blocking mode.
    ///
    /// # Errors
    ///
    /// What `fcntl` returns.
    pub fn from_std(listener: net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener::wrap(listener))
    }

    /// Gives back a std listener, in blocking mode again.
    ///
    /// # Errors
    ///
    /// What `fcntl` returns.
    pub fn into_std(self) -> io::Result<net::TcpListener> {
        let TcpListener { source, inner } = self;
        drop(source);
        inner.set_nonblocking(false)?;
        Ok(inner)
    }

    /// Sets the IP time-to-live of the connections it accepts.
    ///
    /// # Errors
    ///
    /// What `setsockopt` returns.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.set_ttl(ttl)
    }

    /// The IP time-to-live setting.
    ///
    /// # Errors
    ///
    /// What `getsockopt` returns.
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.ttl()
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

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TcpListener");
        if let Ok(a) = self.local_addr() {
            d.field("addr", &a);
        }
        d.field("fd", &self.as_raw_fd()).finish()
    }
}

fd_conversions!(
    TcpListener,
    net::TcpListener,
    "an open, listening TCP socket"
);

/// The iterator of [`TcpListener::incoming`]: each item is one
/// [`accept`](TcpListener::accept); it never ends.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}
