//! What the socket types share: creating non-blocking sockets, converting
//! addresses between std's and the C library's forms, the few socket
//! options std does not offer, and their fd conversions.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, ToSocketAddrs};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// The fd conversions of a socket type `$t`, which holds std's socket in a
/// field `inner` and its reactor link in a field `source`, and has a
/// `wrap(std_socket) -> $t` constructor. `$what` names the kind of socket
/// for the `FromRawFd` contract.
///
/// One definition for every socket type, so that none of them forgets the
/// rule they all follow: the fd leaves the reactor (`source` is dropped)
/// before ownership of it is given up, and an fd taken in is put in
/// non-blocking mode.
macro_rules! fd_conversions {
    ($t:ident, $std:ty, $what:literal) => {
        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(&self.inner)
            }
        }

        impl std::os::fd::AsFd for $t {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(&self.inner)
            }
        }

        impl std::os::fd::IntoRawFd for $t {
            /// Leaves the reactor and gives up the fd (still non-blocking).
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                let $t { source, inner, .. } = self;
                drop(source);
                std::os::fd::IntoRawFd::into_raw_fd(inner)
            }
        }

        impl std::os::fd::FromRawFd for $t {
            #[doc = concat!("Takes ownership of ", $what, ", putting it in non-blocking mode.")]
            ///
            /// # Safety
            ///
            #[doc = concat!("`fd` must be ", $what, " that nothing else owns (std's")]
            /// contract for `FromRawFd`).
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> $t {
                // A failure means `fd` is not open, which the contract
                // excludes; the operations would then report EBADF.
                let _ = crate::io::set_nonblocking(fd);
                // SAFETY: forwarded from the caller.
                $t::wrap(unsafe { <$std as std::os::fd::FromRawFd>::from_raw_fd(fd) })
            }
        }

        impl From<std::os::fd::OwnedFd> for $t {
            #[doc = concat!("Takes ", $what, ", putting it in non-blocking mode.")]
            fn from(fd: std::os::fd::OwnedFd) -> $t {
                let _ = crate::io::set_nonblocking(std::os::fd::AsRawFd::as_raw_fd(&fd));
                $t::wrap(<$std>::from(fd))
            }
        }

        impl From<$t> for std::os::fd::OwnedFd {
            /// Leaves the reactor and gives up the fd (still non-blocking).
            fn from(socket: $t) -> std::os::fd::OwnedFd {
                let $t { source, inner, .. } = socket;
                drop(source);
                std::os::fd::OwnedFd::from(inner)
            }
        }
    };
}

pub(crate) use fd_conversions;

/// std's four timeout accessors of a socket type `$t` with fields
/// `source` (its `IoSource`), `read_timeout` and `write_timeout` (cells),
/// and the helpers that run an operation through the source within them:
/// `read_op`/`write_op` for any operation, `read_bytes`/`write_bytes` for
/// stream reads and writes, whose short count shows the socket drained
/// (see `IoSource::io_drains`).
macro_rules! socket_timeouts {
    ($t:ident) => {
        impl $t {
            /// Limits how long one read (or receive) may wait in all;
            /// `None` (the default) waits for ever. One that runs out fails
            /// with [`io::ErrorKind::TimedOut`].
            ///
            /// # Errors
            ///
            /// [`io::ErrorKind::InvalidInput`] for a zero duration.
            pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
                self.read_timeout.set(crate::io::check_timeout(timeout)?);
                Ok(())
            }

            /// The read timeout.
            ///
            /// # Errors
            ///
            /// None: the `Result` is std's signature.
            pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
                Ok(self.read_timeout.get())
            }

            /// Limits how long one write (or send) may wait in all; `None`
            /// (the default) waits for ever.
            ///
            /// # Errors
            ///
            /// [`io::ErrorKind::InvalidInput`] for a zero duration.
            pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
                self.write_timeout.set(crate::io::check_timeout(timeout)?);
                Ok(())
            }

            /// The write timeout.
            ///
            /// # Errors
            ///
            /// None: the `Result` is std's signature.
            pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
                Ok(self.write_timeout.get())
            }

            #[inline(always)]
            #[allow(dead_code)] // not every socket type reads without counting bytes
            fn read_op<R>(&self, op: impl FnMut() -> io::Result<R>) -> io::Result<R> {
                let deadline = crate::io::deadline(self.read_timeout.get());
                self.source
                    .io(crate::runtime::io_source::Interest::Read, deadline, op)
            }

            #[inline(always)]
            #[allow(dead_code)]
            fn write_op<R>(&self, op: impl FnMut() -> io::Result<R>) -> io::Result<R> {
                let deadline = crate::io::deadline(self.write_timeout.get());
                self.source
                    .io(crate::runtime::io_source::Interest::Write, deadline, op)
            }

            /// A read of up to `capacity` bytes: one that returns fewer
            /// (but not 0, the end of the stream) emptied the receive
            /// queue.
            #[inline(always)]
            #[allow(dead_code)]
            fn read_bytes(
                &self,
                capacity: usize,
                op: impl FnMut() -> io::Result<usize>,
            ) -> io::Result<usize> {
                let deadline = crate::io::deadline(self.read_timeout.get());
                self.source.io_drains(
                    crate::runtime::io_source::Interest::Read,
                    deadline,
                    op,
                    |&n| n > 0 && n < capacity,
                )
            }

            /// A write of `len` bytes: one that writes fewer filled the
            /// send buffer.
            #[inline(always)]
            #[allow(dead_code)]
            fn write_bytes(
                &self,
                len: usize,
                op: impl FnMut() -> io::Result<usize>,
            ) -> io::Result<usize> {
                let deadline = crate::io::deadline(self.write_timeout.get());
                self.source.io_drains(
                    crate::runtime::io_source::Interest::Write,
                    deadline,
                    op,
                    |&n| n < len,
                )
            }
        }
    };
}

pub(crate) use socket_timeouts;

/// `Read` and `Write` for a stream socket type `$t` and for `&$t` (so one
/// fiber can read while another writes), over its std socket `inner`
/// (which must implement them for `&`), with [`socket_timeouts`]'
/// helpers. Writes go through `send` with `MSG_NOSIGNAL`.
macro_rules! stream_io {
    ($t:ident) => {
        // The I/O methods inline into the caller (with everything down to
        // the switch), so no frame of theirs is live across a park: see the
        // runtime's `wait::Parker`.
        impl std::io::Read for &$t {
            #[inline(always)]
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let capacity = buf.len();
                self.read_bytes(capacity, || std::io::Read::read(&mut &self.inner, buf))
            }

            fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
                let capacity = bufs.iter().map(|b| b.len()).sum();
                self.read_bytes(capacity, || {
                    std::io::Read::read_vectored(&mut &self.inner, bufs)
                })
            }
        }

        impl std::io::Write for &$t {
            #[inline(always)]
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                let fd = std::os::fd::AsRawFd::as_raw_fd(&self.inner);
                self.write_bytes(buf.len(), || $crate::net::socket::send(fd, buf))
            }

            fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
                let fd = std::os::fd::AsRawFd::as_raw_fd(&self.inner);
                let len = bufs.iter().map(|b| b.len()).sum();
                self.write_bytes(len, || $crate::net::socket::send_vectored(fd, bufs))
            }

            /// Does nothing: a socket has no user-space buffer.
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }

        impl std::io::Read for $t {
            #[inline(always)]
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                std::io::Read::read(&mut &*self, buf)
            }

            fn read_vectored(&mut self, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
                std::io::Read::read_vectored(&mut &*self, bufs)
            }
        }

        impl std::io::Write for $t {
            #[inline(always)]
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                std::io::Write::write(&mut &*self, buf)
            }

            fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
                std::io::Write::write_vectored(&mut &*self, bufs)
            }

            /// Does nothing: a socket has no user-space buffer.
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
    };
}

pub(crate) use stream_io;

/// A new socket of `kind` (`SOCK_STREAM`, `SOCK_DGRAM`) for `addr`'s family,
/// non-blocking and close-on-exec from the start.
pub(crate) fn new_socket(addr: &SocketAddr, kind: libc::c_int) -> io::Result<OwnedFd> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: plain syscall; the result is checked.
    let fd = unsafe { libc::socket(family, kind | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A C socket address, large enough for any family.
pub(crate) struct RawAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl RawAddr {
    /// An empty address for the kernel to fill in (`accept`,
    /// `getsockname`).
    pub(crate) fn empty() -> RawAddr {
        RawAddr {
            // SAFETY: sockaddr_storage is plain data; all zeros is valid.
            storage: unsafe { MaybeUninit::zeroed().assume_init() },
            len: size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }

    /// The C form of `addr`.
    pub(crate) fn from_std(addr: &SocketAddr) -> RawAddr {
        let mut raw = RawAddr::empty();
        match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than and aligned for
                // every sockaddr type.
                unsafe { std::ptr::write(raw.as_mut_ptr() as *mut libc::sockaddr_in, sin) };
                raw.len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: as above.
                unsafe { std::ptr::write(raw.as_mut_ptr() as *mut libc::sockaddr_in6, sin6) };
                raw.len = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            }
        }
        raw
    }

    pub(crate) fn as_ptr(&self) -> *const libc::sockaddr {
        &self.storage as *const libc::sockaddr_storage as *const libc::sockaddr
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut libc::sockaddr {
        &mut self.storage as *mut libc::sockaddr_storage as *mut libc::sockaddr
    }

    pub(crate) fn len(&self) -> libc::socklen_t {
        self.len
    }

    pub(crate) fn len_mut(&mut self) -> &mut libc::socklen_t {
        &mut self.len
    }

    /// std's form of the address the kernel wrote.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] for a family other than IPv4/IPv6.
    pub(crate) fn to_std(&self) -> io::Result<SocketAddr> {
        match self.storage.ss_family as libc::c_int {
            libc::AF_INET => {
                // SAFETY: the kernel wrote a sockaddr_in (family AF_INET);
                // storage is aligned for it.
                let sin = unsafe { &*(self.as_ptr() as *const libc::sockaddr_in) };
                let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
                Ok(SocketAddr::V4(SocketAddrV4::new(
                    ip,
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: as above, for sockaddr_in6.
                let sin6 = unsafe { &*(self.as_ptr() as *const libc::sockaddr_in6) };
                Ok(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            family => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unsupported address family {family}"),
            )),
        }
    }
}

/// Calls `f` with each address `addr` resolves to, until one succeeds;
/// returns that result or the last error (std's rule for `bind` and
/// `connect`).
pub(crate) fn each_addr<A: ToSocketAddrs, T>(
    addr: A,
    mut f: impl FnMut(&SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        match f(&a) {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}

/// Sets an integer socket option.
pub(crate) fn set_int_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` is a c_int, alive for the call, of the size given.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &value as *const libc::c_int as *const libc::c_void,
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `SO_LINGER`: `Some(d)` makes `close` wait up to `d` for unsent data
/// (`Some(0)`: drop it and reset the connection); `None` is the default.
pub(crate) fn set_linger(fd: RawFd, linger: Option<Duration>) -> io::Result<()> {
    let l = libc::linger {
        l_onoff: linger.is_some() as libc::c_int,
        l_linger: linger.map_or(0, |d| {
            d.as_secs().min(libc::c_int::MAX as u64) as libc::c_int
        }),
    };
    // SAFETY: `l` is a linger struct, alive for the call, of the size given.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Reads `SO_LINGER`.
pub(crate) fn linger(fd: RawFd) -> io::Result<Option<Duration>> {
    let mut l = libc::linger {
        l_onoff: 0,
        l_linger: 0,
    };
    let mut len = size_of::<libc::linger>() as libc::socklen_t;
    // SAFETY: `l` and `len` are valid for writes of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &mut l as *mut libc::linger as *mut libc::c_void,
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((l.l_onoff != 0).then(|| Duration::from_secs(l.l_linger as u64)))
}

/// `send(2)` with `MSG_NOSIGNAL`: writing to a connection the peer has
/// closed gives `EPIPE` instead of killing the process with `SIGPIPE`.
pub(crate) fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of its length.
    let n = unsafe {
        libc::send(
            fd,
            buf.as_ptr() as *const libc::c_void,
            buf.len(),
            libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `sendmsg(2)` of several buffers with `MSG_NOSIGNAL` (`writev` has no
/// such flag and would raise `SIGPIPE`).
pub(crate) fn send_vectored(fd: RawFd, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: msghdr is plain data; all zeros is a valid empty header.
    let mut msg: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
    // IoSlice is guaranteed to be ABI-compatible with iovec on Unix.
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len().min(libc::c_int::MAX as usize) as _;
    // SAFETY: `msg` points at `bufs`, valid for reads, for the call.
    let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}
