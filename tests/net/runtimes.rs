//! Conversions to and from std's sockets and raw fds; sockets used outside a runtime (they block like std's) and moved between runtimes and threads.

use super::*;

// ---- conversions --------------------------------------------------------------

/// `TcpStream::from_std` makes a blocking std stream non-blocking (its read
/// then parks the fiber); `into_std` gives back a blocking stream that
/// works with std's I/O (a read with a std timeout blocks the thread for
/// that timeout).
#[test]
fn tcp_stream_from_std_and_into_std() {
    let _w = watchdog("tcp_stream_from_std_and_into_std");
    spindle::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let std_stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert!(!is_nonblocking(std_stream.as_raw_fd()));
        let (mut conn, _) = listener.accept().unwrap();
        let s = TcpStream::from_std(std_stream).unwrap();
        assert!(is_nonblocking(s.as_raw_fd()));
        let h = spindle::spawn(move || {
            let mut buf = [0; 5];
            (&s).read_exact(&mut buf).unwrap();
            (s, buf)
        });
        wait_for_io_park(h.id());
        conn.write_all(b"hello").unwrap();
        let (s, buf) = h.join().unwrap();
        assert_eq!(&buf, b"hello");

        let mut std_stream = s.into_std().unwrap();
        assert!(!is_nonblocking(std_stream.as_raw_fd()));
        std_stream.write_all(b"std write").unwrap();
        let mut buf = [0; 9];
        conn.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"std write");
        conn.write_all(b"std read").unwrap();
        let mut buf = [0; 8];
        std_stream.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"std read");
        let wait = Duration::from_millis(50);
        std_stream.set_read_timeout(Some(wait)).unwrap();
        let start = Instant::now();
        let e = std_stream.read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WouldBlock, "std's timeout: {e}");
        // SO_RCVTIMEO counts in jiffies and may end up to one short; a
        // non-blocking socket would have answered in microseconds.
        assert!(start.elapsed() >= wait / 2, "the std read did not block");
    });
}

/// `IntoRawFd` gives up the fd (still open, still non-blocking) and
/// `FromRawFd` takes it back, also from a blocking std stream, into streams
/// whose reads park; `OwnedFd` converts both ways too.
#[test]
fn tcp_stream_raw_fd_round_trip() {
    let _w = watchdog("tcp_stream_raw_fd_round_trip");
    spindle::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let s = TcpStream::connect(addr).unwrap();
        let (conn, _) = listener.accept().unwrap();
        let fd = s.into_raw_fd();
        assert!(is_nonblocking(fd), "into_raw_fd keeps the fd non-blocking");
        // SAFETY: `fd` is an open TCP socket, given up by `into_raw_fd`.
        let s = unsafe { TcpStream::from_raw_fd(fd) };
        let blocking = std::net::TcpStream::connect(addr).unwrap();
        let (conn2, _) = listener.accept().unwrap();
        // SAFETY: the fd is an open TCP socket that `into_raw_fd` gave up.
        let s2 = unsafe { TcpStream::from_raw_fd(blocking.into_raw_fd()) };
        assert!(
            is_nonblocking(s2.as_raw_fd()),
            "from_raw_fd sets O_NONBLOCK"
        );
        let s3 = TcpStream::from(OwnedFd::from(s2));
        for (s, mut peer, msg) in [(s, conn, b"first"), (s3, conn2, b"third")] {
            let h = spindle::spawn(move || {
                let mut buf = [0; 5];
                (&s).read_exact(&mut buf).unwrap();
                buf
            });
            wait_for_io_park(h.id());
            peer.write_all(msg).unwrap();
            assert_eq!(&h.join().unwrap(), msg);
        }
    });
}

/// `TcpListener::from_std` makes a blocking std listener non-blocking: its
/// `accept` parks the fiber while a client fiber connects.
#[test]
fn tcp_listener_from_std_parks_in_accept() {
    let _w = watchdog("tcp_listener_from_std_parks_in_accept");
    spindle::run(|| {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(!is_nonblocking(std_listener.as_raw_fd()));
        let listener = TcpListener::from_std(std_listener).unwrap();
        assert!(is_nonblocking(listener.as_raw_fd()));
        let addr = listener.local_addr().unwrap();
        let h = spindle::spawn(move || listener.accept().unwrap().1);
        wait_for_io_park(h.id());
        let s = TcpStream::connect(addr).unwrap();
        assert_eq!(h.join().unwrap(), s.local_addr().unwrap());
    });
}

// ---- outside a runtime ------------------------------------------------------

/// With no runtime on the thread, the sockets behave like std's and block
/// the thread: `accept` waits for a std client thread that connects late,
/// reads and writes block, a read timeout still fails with `TimedOut`, and
/// `connect` and UDP work too.
#[test]
fn sockets_outside_a_runtime_block_like_std() {
    let _w = watchdog("sockets_outside_a_runtime_block_like_std");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let delay = Duration::from_millis(100);
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let client = std::thread::spawn(move || {
        std::thread::sleep(delay);
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.write_all(b"hello").unwrap();
        let mut buf = [0; 5];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"world");
        go_rx.recv().unwrap();
        c.write_all(b"!").unwrap();
    });
    let start = Instant::now();
    let (mut conn, _) = listener.accept().unwrap();
    assert!(
        start.elapsed() >= delay,
        "accept returned before the client connected"
    );
    let mut buf = [0; 5];
    conn.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    conn.write_all(b"world").unwrap();
    conn.set_read_timeout(Some(delay)).unwrap();
    let start = Instant::now();
    let e = conn.read(&mut buf).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    assert!(start.elapsed() >= delay);
    conn.set_read_timeout(None).unwrap();
    go_tx.send(()).unwrap();
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).unwrap(); // blocks until the client is gone
    assert_eq!(rest, b"!");
    client.join().unwrap();

    let server = std::thread::spawn(move || listener.accept().unwrap().0.write_all(b"hi"));
    let mut s = TcpStream::connect(addr).unwrap();
    let mut hi = Vec::new();
    s.read_to_end(&mut hi).unwrap();
    assert_eq!(hi, b"hi");
    server.join().unwrap().unwrap();

    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let a_addr = a.local_addr().unwrap();
    let sender = std::thread::spawn(move || {
        std::thread::sleep(delay);
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        b.send_to(b"datagram", a_addr).unwrap();
    });
    let mut buf = [0; 16];
    let (n, _) = a.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"datagram");
    sender.join().unwrap();
}

// ---- between runtimes -----------------------------------------------------------

/// Makes `s` register with the running runtime's reactor: a read that has
/// to wait (and times out) does that.
fn register(s: &TcpStream) {
    s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    let e = (&*s).read(&mut [0; 1]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    s.set_read_timeout(None).unwrap();
}

/// A connected pair `(client, server end)` on `listener`.
fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
    let c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    (c, listener.accept().unwrap().0)
}

/// Sockets are `Send`, and their reactor registration follows them: a
/// stream registered in runtime A moves to a thread running runtime B and
/// parks there until A's thread writes to its peer; it comes back (B gone)
/// and parks in A again. Registered streams dropped on the other thread,
/// outside any runtime and inside B, leave A's reactor; A keeps working
/// (a new listener accepts and serves, reusing those fds). A stream also
/// outlives its runtime and works under the next one on the same thread.
#[test]
fn sockets_move_between_runtimes_and_threads() {
    let _w = watchdog("sockets_move_between_runtimes_and_threads");
    spindle::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (c, mut peer) = pair(&listener);
        let (d, _d_peer) = pair(&listener);
        let (e, _e_peer) = pair(&listener);
        for s in [&c, &d, &e] {
            register(s);
        }
        let (parked_tx, parked_rx) = mpsc::channel();
        let t2 = std::thread::spawn(move || {
            drop(d); // registered in A, dropped outside any runtime
            spindle::run(move || {
                let mut c = c;
                c.set_read_timeout(Some(LONG)).unwrap();
                let reader = spindle::spawn(move || {
                    let mut buf = [0; 4];
                    c.read_exact(&mut buf).map(|()| (c, buf))
                });
                wait_for_io_park(reader.id());
                parked_tx.send(()).unwrap();
                let (mut c, buf) = reader.join().unwrap().expect("read in runtime B");
                assert_eq!(&buf, b"ping");
                c.write_all(b"pong").unwrap();
                drop(e); // registered in A, dropped inside B
                c
            })
        });
        spindle::spawn_blocking(move || parked_rx.recv().unwrap());
        peer.write_all(b"ping").unwrap();
        let mut buf = [0; 4];
        peer.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"pong");
        let c = spindle::spawn_blocking(move || t2.join().unwrap());

        // Back in A (B is gone), parked on A's reactor again.
        c.set_read_timeout(Some(LONG)).unwrap();
        let reader = spindle::spawn(move || {
            let mut buf = [0; 5];
            (&c).read_exact(&mut buf).map(|()| buf)
        });
        wait_for_io_park(reader.id());
        peer.write_all(b"again").unwrap();
        assert_eq!(&reader.join().unwrap().unwrap(), b"again");

        // A still serves, on a new listener and fds the dropped ones freed.
        let listener2 = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr2 = listener2.local_addr().unwrap();
        let server = spindle::spawn(move || {
            let (mut conn, _) = listener2.accept().unwrap();
            let mut buf = [0; 4];
            conn.read_exact(&mut buf).unwrap();
            conn.write_all(&buf).unwrap();
        });
        wait_for_io_park(server.id());
        let mut s = TcpStream::connect(addr2).unwrap();
        register(&s);
        s.write_all(b"echo").unwrap();
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"echo");
        server.join().unwrap();
    });

    // A stream registered in one runtime, used by the next on this thread.
    let (s, peer) = spindle::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (s, peer) = pair(&listener);
        register(&s);
        (s, peer)
    });
    spindle::run(move || {
        let (s, mut peer) = (s, peer);
        let reader = spindle::spawn(move || {
            let mut buf = [0; 4];
            (&s).read_exact(&mut buf).unwrap();
            buf
        });
        wait_for_io_park(reader.id());
        peer.write_all(b"next").unwrap();
        assert_eq!(&reader.join().unwrap(), b"next");
    });
}
