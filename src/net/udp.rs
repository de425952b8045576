//! [`UdpSocket`]: std's UDP socket, whose waits park the fiber.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::net::{self, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::time::Duration;

use super::socket::{self, fd_conversions, socket_timeouts};
use crate::runtime::io_source::IoSource;

/// A UDP socket (std's `UdpSocket`), non-blocking underneath: a receive
/// with nothing queued (or a send with a full buffer) parks the fiber.
///
/// # Examples
///
/// ```
/// use spindle::net::UdpSocket;
///
/// spindle::run(|| -> std::io::Result<()> {
///     let a = UdpSocket::bind("127.0.0.1:0")?;
///     let b = UdpSocket::bind("127.0.0.1:0")?;
///     let a_addr = a.local_addr()?;
///     let h = spindle::spawn(move || {
///         let mut buf = [0; 16];
///         let (n, from) = a.recv_from(&mut buf).unwrap(); // parks
///         a.send_to(&buf[..n], from).unwrap();
///     });
///     b.send_to(b"marco", a_addr)?;
///     let mut buf = [0; 16];
///     let (n, _) = b.recv_from(&mut buf)?;
///     assert_eq!(&buf[..n], b"marco");
///     h.join().unwrap();
///     Ok(())
/// })
/// .unwrap();
/// ```
///
/// # Panics
///
/// Every operation that has to wait is a cancellation point. Outside a
/// fiber it blocks the thread, as std's would.
///
/// # `Send`
///
/// `Send`, not `Sync`, as [`TcpStream`](super::TcpStream).
pub struct UdpSocket {
    // Declared before `inner`: the fd leaves the reactor before it closes.
    source: IoSource,
    inner: net::UdpSocket,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
}

impl UdpSocket {
    fn wrap(inner: net::UdpSocket) -> UdpSocket {
        UdpSocket {
            source: IoSource::new(inner.as_raw_fd()),
            inner,
            read_timeout: Cell::new(None),
            write_timeout: Cell::new(None),
        }
    }

    /// A socket bound to `addr` (port 0: any free port), trying each
    /// address it resolves to in turn.
    ///
    /// # Errors
    ///
    /// What `socket` or `bind` return, for the last address tried.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        socket::each_addr(addr, |a| {
            let fd = socket::new_socket(a, libc::SOCK_DGRAM)?;
            let raw = socket::RawAddr::from_std(a);
            // SAFETY: `raw` holds a valid sockaddr of the length given.
            if unsafe { libc::bind(fd.as_raw_fd(), raw.as_ptr(), raw.len()) } < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(UdpSocket::wrap(net::UdpSocket::from(fd)))
        })
    }

    /// Sets the default peer for [`send`](Self::send), and only accepts
    /// datagrams from it in [`recv`](Self::recv). Never waits.
    ///
    /// # Errors
    ///
    /// What `connect(2)` returns.
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        self.inner.connect(addr)
    }

    /// Sends a datagram to the connected peer.
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

    /// Receives a datagram from the connected peer, parking until one comes.
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

    /// Sends a datagram to `addr` (resolved with `ToSocketAddrs`, on this
    /// thread).
    ///
    /// # Panics
    ///
    /// As a cancellation point, when it waits.
    ///
    /// # Errors
    ///
    /// As std's; [`io::ErrorKind::TimedOut`] after the write timeout.
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
        let first = addrs.first().copied().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to")
        })?;
        self.write_op(|| self.inner.send_to(buf, first))
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
    /// As std's; [`io::ErrorKind::TimedOut`] after the read timeout.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.read_op(|| self.inner.recv_from(buf))
    }

    /// As [`recv`](Self::recv), leaving the datagram queued.
    ///
    /// # Panics
    ///
    /// As a cancellation point, when it waits.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_op(|| self.inner.peek(buf))
    }

    /// As [`recv_from`](Self::recv_from), leaving the datagram queued.
    ///
    /// # Panics
    ///
    /// As a cancellation point, when it waits.
    ///
    /// # Errors
    ///
    /// As [`recv_from`](Self::recv_from).
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.read_op(|| self.inner.peek_from(buf))
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

    /// Allows (or forbids) sending to broadcast addresses.
    ///
    /// # Errors
    ///
    /// What `setsockopt` returns.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.inner.set_broadcast(on)
    }

    /// Whether broadcast is allowed.
    ///
    /// # Errors
    ///
    /// What `getsockopt` returns.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.inner.broadcast()
    }

    /// Sets the IP time-to-live of outgoing datagrams.
    ///
    /// # Errors
    ///
    /// What `setsockopt` returns.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.set_ttl(ttl)
    }

    /// The IP time-to-live of outgoing datagrams.
    ///
    /// # Errors
    ///
    /// What `getsockopt` returns.
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.ttl()
    }

    /// Joins an IPv4 multicast group on the interface `interface`.
    ///
    /// # Errors
    ///
    /// What `setsockopt` returns.
    pub fn join_multicast_v4(&self, group: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.inner.join_multicast_v4(group, interface)
    }

    /// Leaves an IPv4 multicast group.
    ///
    /// # Errors
    ///
    /// What `setsockopt` returns.
    pub fn leave_multicast_v4(&self, group: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.inner.leave_multicast_v4(group, interface)
    }

    /// Joins an IPv6 multicast group on the interface with index
    /// `interface` (0: any).
    ///
    /// # Errors
    ///
    /// What `setsockopt` returns.
    pub fn join_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.inner.join_multicast_v6(group, interface)
    }

    /// Leaves an IPv6 multicast group.
    ///
    /// # Errors
    ///
    /// What `setsockopt` returns.
    pub fn leave_multicast_v6(&self, group: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.inner.leave_multicast_v6(group, interface)
    }

    /// Whether multicast datagrams it sends are looped back to this host.
    ///
    /// # Errors
    ///
    /// What `setsockopt` returns.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.inner.set_multicast_loop_v4(on)
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
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket::wrap(self.inner.try_clone()?))
    }

    /// Takes a std socket, putting it in non-blocking mode.
    ///
    /// # Errors
    ///
    /// What `fcntl` returns.
    pub fn from_std(socket: net::UdpSocket) -> io::Result<UdpSocket> {
        socket.set_nonblocking(true)?;
        Ok(UdpSocket::wrap(socket))
    }

    /// Gives back a std socket, in blocking mode again.
    ///
    /// # Errors
    ///
    /// What `fcntl` returns.
    pub fn into_std(self) -> io::Result<net::UdpSocket> {
        let UdpSocket { source, inner, .. } = self;
        drop(source);
        inner.set_nonblocking(false)?;
        Ok(inner)
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("UdpSocket");
        if let Ok(a) = self.local_addr() {
            d.field("addr", &a);
        }
        d.field("fd", &self.as_raw_fd()).finish()
    }
}

fd_conversions!(UdpSocket, net::UdpSocket, "an open UDP socket");
socket_timeouts!(UdpSocket);
