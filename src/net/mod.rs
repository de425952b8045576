//! Fiber-aware networking: [`TcpListener`], [`TcpStream`], [`UdpSocket`],
//! and the Unix domain sockets [`UnixListener`], [`UnixStream`] and
//! [`UnixDatagram`] (path and abstract addresses, std's
//! [`SocketAddr`](std::os::unix::net::SocketAddr)), with std's method
//! names, on non-blocking sockets.
//!
//! What gevent's monkey-patching gives Python, done the Rust way: code
//! written against [`std::io::Read`] and [`std::io::Write`] runs unchanged
//! on fibers, and a fiber whose socket would block parks instead, so the
//! other fibers of its thread keep running. Each socket is registered with
//! the runtime's reactor the first time it has to wait, once, edge-triggered
//! (see the runtime's reactor docs, "Sources"), and leaves it when dropped.
//!
//! | std | here | difference |
//! |---|---|---|
//! | `set_read_timeout` / `set_write_timeout` | same | a wait that runs out gives [`std::io::ErrorKind::TimedOut`] (std's blocking sockets say `WouldBlock`) |
//! | `write` | same | uses `MSG_NOSIGNAL`, vectored writes too: a closed peer is `BrokenPipe`, never `SIGPIPE` |
//! | `TcpListener::bind` | same | backlog `SOMAXCONN` instead of 128 |
//! | `Sync` | not `Sync` | the sockets are `Send`; share one between fibers with `&` or `Rc` |
//! | `set_nonblocking` | absent | always non-blocking underneath; waiting is the fiber's |
//!
//! Outside a fiber (no runtime on the thread) every operation behaves like
//! std's and blocks the thread.
//!
//! [`Server`] serves one port from every worker of a multi-worker runtime
//! (a `SO_REUSEPORT` listener per worker by default, or one acceptor that
//! hands each connection to the least loaded worker; its docs weigh the
//! two).
//!
//! Name resolution with `ToSocketAddrs` blocks the thread in the system
//! resolver; [`lookup_host`] runs it on a helper thread instead.

mod server;
mod socket;
mod tcp;
mod udp;
mod unix;
mod unix_datagram;

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

pub use server::{Server, ServerBuilder, Spread};
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixIncoming, UnixListener, UnixStream};
pub use unix_datagram::UnixDatagram;

/// Resolves `host` (`"example.com:80"`, `"[::1]:8080"`, ...) with the
/// system resolver on a helper thread, while the fiber parks (gevent's
/// resolver thread pool): the other fibers keep running during a slow DNS
/// lookup.
///
/// # Examples
///
/// ```
/// spindle::run(|| {
///     let addrs = spindle::net::lookup_host("localhost:80").unwrap();
///     assert!(addrs.iter().all(|a| a.port() == 80 && a.ip().is_loopback()));
/// });
/// ```
///
/// # Panics
///
/// Outside a fiber of a runtime; and as a cancellation point.
///
/// # Errors
///
/// What `getaddrinfo` reports (unknown host, no network).
pub fn lookup_host(host: &str) -> io::Result<Vec<SocketAddr>> {
    let host = host.to_owned();
    crate::spawn_blocking(move || host.to_socket_addrs().map(Iterator::collect))
}
