//! `spindle::net::{UnixListener, UnixStream, UnixDatagram}`: Unix domain
//! sockets whose waits park the fiber, on path and abstract addresses.
//!
//! Paths live in a fresh directory per test under the temp dir; abstract
//! names carry the pid and the test's name, so parallel runs never meet.
#![warn(clippy::undocumented_unsafe_blocks)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{assert_waited_about, is_nonblocking, wait_for_io_park, watchdog};
use spindle::net::{UnixDatagram, UnixListener, UnixStream};
use spindle::JoinError;

/// A fresh, empty directory for test `name`'s socket files.
fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("spindle-unix-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// An abstract address unique to this process and `name`.
fn abstract_addr(name: &str) -> SocketAddr {
    SocketAddr::from_abstract_name(format!("spindle-test-{}-{name}", std::process::id())).unwrap()
}

/// An echo server on `listener`: one fiber per connection.
fn serve_echo(listener: UnixListener) {
    spindle::spawn(move || {
        for conn in listener.incoming() {
            let mut conn = conn.unwrap();
            spindle::spawn(move || {
                let mut buf = [0; 4096];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    conn.write_all(&buf[..n]).unwrap();
                }
            });
        }
    });
}

/// Echo over a path: 16 clients at once, each sending 64 KiB (more than a
/// socket buffer, so reads and writes park), get their own bytes back; the
/// addresses name the path on the listener's side and the client's peer.
#[test]
fn stream_echo_over_a_path() {
    let _w = watchdog("stream_echo_over_a_path");
    let d = dir("echo");
    let path = d.join("echo.sock");
    spindle::run(move || {
        let listener = UnixListener::bind(&path).unwrap();
        assert_eq!(listener.local_addr().unwrap().as_pathname(), Some(&*path));
        assert!(is_nonblocking(listener.as_raw_fd()));
        serve_echo(listener);
        let clients: Vec<_> = (0..16)
            .map(|seed| {
                let path = path.clone();
                spindle::spawn(move || {
                    let stream = Rc::new(UnixStream::connect(&path).unwrap());
                    assert_eq!(stream.peer_addr().unwrap().as_pathname(), Some(&*path));
                    assert!(stream.local_addr().unwrap().is_unnamed());
                    let data = common::patterned(seed, 64 << 10);
                    let writer = spindle::spawn({
                        let stream = Rc::clone(&stream);
                        move || {
                            (&*stream).write_all(&data).unwrap();
                            stream.shutdown(Shutdown::Write).unwrap();
                        }
                    });
                    let mut back = Vec::new();
                    (&*stream).read_to_end(&mut back).unwrap();
                    writer.join().unwrap();
                    assert_eq!(back.len(), 64 << 10);
                    common::check_pattern(seed, 0, &back);
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
    });
    std::fs::remove_dir_all(d).unwrap();
}

/// Abstract addresses: bind, connect, and both ends' addresses; no file
/// appears.
#[test]
fn stream_over_an_abstract_address() {
    let _w = watchdog("stream_over_an_abstract_address");
    spindle::run(|| {
        let addr = abstract_addr("stream");
        let listener = UnixListener::bind_addr(&addr).unwrap();
        let name = addr.as_abstract_name().unwrap().to_vec();
        assert_eq!(
            listener.local_addr().unwrap().as_abstract_name(),
            Some(&name[..])
        );
        let acceptor = spindle::spawn(move || {
            let (mut conn, from) = listener.accept().unwrap();
            assert!(from.is_unnamed());
            let mut buf = [0; 5];
            conn.read_exact(&mut buf).unwrap();
            conn.write_all(&buf).unwrap();
        });
        wait_for_io_park(acceptor.id());
        let mut client = UnixStream::connect_addr(&addr).unwrap();
        assert_eq!(
            client.peer_addr().unwrap().as_abstract_name(),
            Some(&name[..])
        );
        client.write_all(b"hello").unwrap();
        let mut buf = [0; 5];
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        acceptor.join().unwrap();
    });
}

/// A datagram pair, and datagrams between named sockets on paths and
/// abstract names: each `recv_from` names its sender.
#[test]
fn datagrams_between_pairs_paths_and_abstract_names() {
    let _w = watchdog("datagrams_between_pairs_paths_and_abstract_names");
    let d = dir("dgram");
    let (pa, pb) = (d.join("a.sock"), d.join("b.sock"));
    spindle::run(move || {
        let (x, y) = UnixDatagram::pair().unwrap();
        let echo = spindle::spawn(move || {
            let mut buf = [0; 32];
            let n = y.recv(&mut buf).unwrap(); // parks first
            y.send(&buf[..n]).unwrap();
        });
        wait_for_io_park(echo.id());
        x.send(b"pair").unwrap();
        let mut buf = [0; 32];
        let n = x.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"pair");
        echo.join().unwrap();

        let a = UnixDatagram::bind(&pa).unwrap();
        let b = UnixDatagram::bind(&pb).unwrap();
        a.send_to(b"to b", &pb).unwrap();
        let (n, from) = b.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from.as_pathname()), (&b"to b"[..], Some(&*pa)));
        b.connect(&pa).unwrap();
        assert_eq!(b.peer_addr().unwrap().as_pathname(), Some(&*pa));
        b.send(b"back").unwrap();
        let n = a.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"back");

        let (aa, ab) = (abstract_addr("dgram-a"), abstract_addr("dgram-b"));
        let a = UnixDatagram::bind_addr(&aa).unwrap();
        let b = UnixDatagram::bind_addr(&ab).unwrap();
        a.send_to_addr(b"abstract", &ab).unwrap();
        let (n, from) = b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"abstract");
        assert_eq!(from.as_abstract_name(), aa.as_abstract_name());
        let u = UnixDatagram::unbound().unwrap();
        u.connect_addr(&ab).unwrap();
        u.send(b"anon").unwrap();
        let (n, from) = b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"anon");
        assert!(from.is_unnamed());
    });
    std::fs::remove_dir_all(d).unwrap();
}

/// Cancelled while parked in `accept`, `read` or `recv`, a fiber unwinds;
/// the socket then works for the next fiber, and no byte is lost.
#[test]
fn cancelled_waits_unwind_and_the_sockets_stay_usable() {
    let _w = watchdog("cancelled_waits_unwind_and_the_sockets_stay_usable");
    spindle::run(|| {
        let addr = abstract_addr("cancel");
        let listener = Rc::new(UnixListener::bind_addr(&addr).unwrap());
        let l = Rc::clone(&listener);
        let h = spindle::spawn(move || l.accept().map(|_| ()));
        wait_for_io_park(h.id());
        h.cancel();
        assert!(matches!(h.join(), Err(JoinError::Cancelled)));
        let _client = UnixStream::connect_addr(&addr).unwrap();
        let (server, _) = listener.accept().unwrap();

        let (a, b) = UnixStream::pair().unwrap();
        let a = Rc::new(a);
        let a2 = Rc::clone(&a);
        let h = spindle::spawn(move || (&*a2).read(&mut [0; 8]));
        wait_for_io_park(h.id());
        h.cancel();
        assert!(matches!(h.join(), Err(JoinError::Cancelled)));
        (&b).write_all(b"kept").unwrap();
        let mut buf = [0; 4];
        (&*a).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"kept");

        let (x, y) = UnixDatagram::pair().unwrap();
        let x = Rc::new(x);
        let x2 = Rc::clone(&x);
        let h = spindle::spawn(move || x2.recv(&mut [0; 8]));
        wait_for_io_park(h.id());
        h.cancel();
        assert!(matches!(h.join(), Err(JoinError::Cancelled)));
        y.send(b"dgram").unwrap();
        assert_eq!(x.recv(&mut [0; 8]).unwrap(), 5);
        drop(server);
    });
}

/// Read and receive timeouts give `TimedOut` after about that long; a zero
/// timeout is `InvalidInput`.
#[test]
fn timeouts_give_timed_out() {
    let _w = watchdog("timeouts_give_timed_out");
    spindle::run(|| {
        let timeout = Duration::from_millis(100);
        let (a, _b) = UnixStream::pair().unwrap();
        a.set_read_timeout(Some(timeout)).unwrap();
        assert_eq!(a.read_timeout().unwrap(), Some(timeout));
        let start = Instant::now();
        assert_eq!(
            (&a).read(&mut [0; 4]).unwrap_err().kind(),
            ErrorKind::TimedOut
        );
        assert_waited_about(start.elapsed(), timeout);

        let (x, _y) = UnixDatagram::pair().unwrap();
        x.set_read_timeout(Some(timeout)).unwrap();
        let start = Instant::now();
        assert_eq!(x.recv(&mut [0; 4]).unwrap_err().kind(), ErrorKind::TimedOut);
        assert_waited_about(start.elapsed(), timeout);
        assert_eq!(
            x.set_write_timeout(Some(Duration::ZERO))
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidInput
        );
    });
}

/// With the listener's backlog full, `connect` sleeps and retries until
/// the listener accepts; the fiber sleeps, the thread does not block.
#[test]
fn connect_waits_for_room_in_a_full_backlog() {
    let _w = watchdog("connect_waits_for_room_in_a_full_backlog");
    spindle::run(|| {
        let addr = abstract_addr("backlog");
        // A listener with backlog 0 (one queued connection fits).
        let listener = UnixListener::bind_addr(&addr).unwrap();
        // SAFETY: listen on a socket we own.
        assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
        let mut queued = Vec::new();
        let start = Instant::now();
        // Fill the queue: connect until a connect has to wait (it then
        // parks in its retry loop while this fiber goes on).
        let waiting = loop {
            let addr2 = addr.clone();
            let h = spindle::spawn(move || UnixStream::connect_addr(&addr2).unwrap());
            spindle::sleep(Duration::from_millis(20));
            if h.is_finished() {
                queued.push(h.join().unwrap());
                assert!(queued.len() < 16, "the backlog never filled");
            } else {
                break h;
            }
        };
        assert!(start.elapsed() < common::LONG);
        let (_first, _) = listener.accept().unwrap();
        let second = waiting.join().unwrap();
        let (mut conn, _) = listener.accept().unwrap();
        (&second).write_all(b"in").unwrap();
        let mut buf = [0; 2];
        conn.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"in");
    });
}

/// Connecting to nothing: a missing path is `NotFound`, a bound name
/// nobody listens on is `ConnectionRefused`, an unnamed address and a path
/// too long are `InvalidInput`.
#[test]
fn connect_errors_are_std_kinds() {
    let d = dir("errors");
    spindle::run({
        let d = d.clone();
        move || {
            let e = UnixStream::connect(d.join("missing.sock")).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::NotFound);
            let addr = abstract_addr("not-listening");
            let _bound = UnixDatagram::bind_addr(&addr).unwrap();
            let e = UnixStream::connect_addr(&addr).unwrap_err();
            assert!(
                matches!(e.kind(), ErrorKind::ConnectionRefused)
                    || e.raw_os_error() == Some(libc::EPROTOTYPE),
                "{e}"
            );
            let unnamed = UnixDatagram::unbound().unwrap().local_addr().unwrap();
            let e = UnixStream::connect_addr(&unnamed).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            let e = UnixStream::connect(d.join("x".repeat(200))).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
        }
    });
    std::fs::remove_dir_all(d).unwrap();
}

/// Writing after the peer closed is `BrokenPipe` (no `SIGPIPE`); the
/// reader sees end of stream after a half-close.
#[test]
fn closed_peers_give_end_of_stream_and_broken_pipe() {
    spindle::run(|| {
        let (a, b) = UnixStream::pair().unwrap();
        b.shutdown(Shutdown::Write).unwrap();
        assert_eq!((&a).read(&mut [0; 4]).unwrap(), 0);
        drop(b);
        let e = (&a).write_all(&[0; 1 << 16]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BrokenPipe);
    });
}

/// std and fd conversions: `from_std` makes the socket non-blocking,
/// `into_std` makes it blocking again; an `OwnedFd` round trip keeps the
/// connection.
#[test]
fn conversions_to_and_from_std_and_fds() {
    spindle::run(|| {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let a = UnixStream::from_std(a).unwrap();
        assert!(is_nonblocking(a.as_raw_fd()));
        let a = a.into_std().unwrap();
        assert!(!is_nonblocking(a.as_raw_fd()));
        let a = UnixStream::from(OwnedFd::from(a));
        assert!(is_nonblocking(a.as_raw_fd()));
        let fd: OwnedFd = a.into();
        let a = UnixStream::from(fd);
        let mut b = UnixStream::from_std(b).unwrap();
        b.write_all(b"fd").unwrap();
        let mut buf = [0; 2];
        (&a).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"fd");
        let raw = a.into_raw_fd();
        // SAFETY: `raw` was just given up by `a`; nothing else owns it.
        let a = unsafe { <UnixStream as std::os::fd::FromRawFd>::from_raw_fd(raw) };
        assert!(a.try_clone().unwrap().peer_addr().unwrap().is_unnamed());

        let (x, _y) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let x = UnixDatagram::from(OwnedFd::from(x));
        assert!(is_nonblocking(x.as_raw_fd()));
        let l = UnixListener::bind_addr(&abstract_addr("conv")).unwrap();
        let l = UnixListener::from(OwnedFd::from(l.into_std().unwrap()));
        assert!(is_nonblocking(l.as_raw_fd()));
    });
}

/// The Unix socket types are `Send`: a socket made on one thread works
/// in another thread's runtime.
#[test]
fn the_handles_are_send() {
    fn assert_send<T: Send>() {}
    assert_send::<UnixStream>();
    assert_send::<UnixListener>();
    assert_send::<UnixDatagram>();
    let (a, b) = std::thread::spawn(|| {
        let (a, b) = UnixStream::pair().unwrap();
        (a, b)
    })
    .join()
    .unwrap();
    spindle::run(move || {
        (&a).write_all(b"moved").unwrap();
        let mut buf = [0; 5];
        (&b).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"moved");
    });
}
