//! What the peer and the kernel can do: a reset, a half-close, a closed peer (`BrokenPipe`, never `SIGPIPE`), and running out of fds (`EMFILE`) with a listener that recovers.

use super::*;

// ---- errors from the peer ---------------------------------------------------

/// A peer that resets the connection (linger 0, then close) while the
/// client fiber is parked in `read` makes that read fail with
/// `ConnectionReset`.
#[test]
fn peer_reset_while_parked_in_read_is_connection_reset() {
    let _w = watchdog("peer_reset_while_parked_in_read_is_connection_reset");
    spindle::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = spindle::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"x").unwrap();
            s.read(&mut [0; 16])
        });
        let (mut conn, _) = listener.accept().unwrap();
        conn.read_exact(&mut [0; 1]).unwrap();
        wait_for_io_park(client.id());
        conn.set_linger(Some(Duration::ZERO)).unwrap();
        assert_eq!(conn.linger().unwrap(), Some(Duration::ZERO));
        drop(conn);
        match client.join().unwrap() {
            Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
            Ok(n) => panic!("read {n} bytes from a reset connection"),
        }
    });
}

/// Half-close: the client writes its request and shuts down its writing
/// half; the server reads to end of stream (which it sees while the
/// connection is still open the other way), then replies; the client reads
/// the reply to end of stream.
#[test]
fn half_close_lets_the_server_read_to_eof_then_reply() {
    let _w = watchdog("half_close_lets_the_server_read_to_eof_then_reply");
    spindle::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spindle::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            conn.read_to_end(&mut request).unwrap();
            check_pattern(1, 0, &request);
            let reply = patterned(2, request.len() * 3);
            conn.write_all(&reply).unwrap();
            request.len()
        });
        let mut s = TcpStream::connect(addr).unwrap();
        let request = patterned(1, 100_000);
        let (a, b) = request.split_at(40_000);
        s.write_all(a).unwrap();
        spindle::sleep(Duration::from_millis(5));
        s.write_all(b).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut reply = Vec::new();
        s.read_to_end(&mut reply).unwrap();
        assert_eq!(reply.len(), request.len() * 3);
        check_pattern(2, 0, &reply);
        assert_eq!(server.join().unwrap(), request.len());
    });
}

/// A connection whose peer has closed (and read end of stream), for the
/// write tests: `(stream, listener)`, the listener kept alive.
fn closed_by_peer() -> (TcpStream, TcpListener) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut s = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    drop(listener.accept().unwrap());
    assert_eq!(s.read(&mut [0; 1]).unwrap(), 0, "the peer's close");
    (s, listener)
}

/// Writes with `write` until it fails with `BrokenPipe`, allowing one
/// `ConnectionReset` first; panics on anything else.
fn write_until_broken_pipe(mut write: impl FnMut() -> io::Result<usize>) {
    let mut resets = 0;
    for _ in 0..200 {
        match write() {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::BrokenPipe => {
                let again = write().unwrap_err();
                assert_eq!(again.kind(), ErrorKind::BrokenPipe, "{again}");
                return;
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset && resets == 0 => resets += 1,
            Err(e) => panic!("writing to a closed peer: {e}"),
        }
        spindle::sleep(Duration::from_millis(5));
    }
    panic!("200 writes to a closed peer and no BrokenPipe");
}

/// Writing to a closed peer gives `BrokenPipe` (possibly `ConnectionReset`
/// first), through `write` and `write_vectored`, and never kills the
/// process with `SIGPIPE`. Rust sets `SIGPIPE` to `SIG_IGN` before `main`,
/// so the proof runs in a child that restores `SIG_DFL` first; a second
/// child, writing with plain `libc::write`, shows that such a write does
/// kill it there.
#[test]
fn write_to_a_closed_peer_is_broken_pipe_not_sigpipe() {
    const NAME: &str = "errors::write_to_a_closed_peer_is_broken_pipe_not_sigpipe";
    let _w = watchdog(NAME);
    let (spindle_case, control_case) = ("sigpipe-spindle", "sigpipe-control");
    if is_child(spindle_case) || is_child(control_case) {
        // SAFETY: the child's only thread that matters is this one; setting
        // a signal's disposition to the default has no other effect.
        let old = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
        assert_eq!(old, libc::SIG_IGN, "Rust's runtime ignores SIGPIPE");
        let control = is_child(control_case);
        spindle::run(move || {
            let (s, _l) = closed_by_peer();
            if control {
                let buf = [0u8; 64];
                write_until_broken_pipe(|| {
                    // SAFETY: `buf` is valid for reads of its length.
                    let n = unsafe { libc::write(s.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
                    if n < 0 {
                        Err(io::Error::last_os_error())
                    } else {
                        Ok(n as usize)
                    }
                });
                println!("the control write did not die of SIGPIPE");
                return;
            }
            write_until_broken_pipe(|| (&s).write(b"hello?"));
            let (s, _l) = closed_by_peer();
            let bufs = [IoSlice::new(b"hello"), IoSlice::new(b", anyone?")];
            write_until_broken_pipe(|| (&s).write_vectored(&bufs));
            println!("{DONE}");
        });
        return;
    }
    let out = run_child(NAME, spindle_case);
    assert_child_done(&out, spindle_case);
    let out = run_child(NAME, control_case);
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "the control child should die of SIGPIPE:\n{}",
        text(&out)
    );
}

// ---- running out of fds -----------------------------------------------------

/// The fd numbers open in this process.
fn open_fds() -> Vec<RawFd> {
    let listed: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    // The directory's own fd is listed too, and closed by now.
    listed
        .into_iter()
        // SAFETY: fcntl on an fd number has no memory effects; at worst EBADF.
        .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0)
        .collect()
}

/// `accept` when the process is out of fds fails with `EMFILE`, the
/// connection stays queued, and once fds are free the listener accepts it
/// and serves it (an echo round trip). In a child: `RLIMIT_NOFILE` is
/// process-wide. Twelve connections are queued first; the soft limit then
/// goes just above the lowest three free fd numbers (the kernel hands out
/// the lowest free number, and refuses one at or above the limit), so
/// accepting runs out after at most three.
#[test]
fn accept_out_of_fds_is_emfile_and_the_listener_recovers() {
    const NAME: &str = "errors::accept_out_of_fds_is_emfile_and_the_listener_recovers";
    const QUEUED: usize = 12;
    const SPARE: usize = 3;
    let _w = watchdog(NAME);
    if !is_child("emfile") {
        let out = run_child(NAME, "emfile");
        assert_child_done(&out, "emfile");
        return;
    }
    spindle::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let clients: Vec<TcpStream> = (0..QUEUED)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        let open = open_fds();
        let spare = (0..).filter(|fd| !open.contains(fd)).take(SPARE);
        let limit = spare.last().unwrap() + 1;
        let old = nofile_limit();
        set_nofile_limit(&libc::rlimit {
            rlim_cur: limit as libc::rlim_t,
            rlim_max: old.rlim_max,
        })
        .unwrap();
        let mut accepted = Vec::new();
        let e = loop {
            match listener.accept() {
                Ok((conn, peer)) => accepted.push((conn, peer)),
                Err(e) => break e,
            }
            assert!(
                accepted.len() <= SPARE,
                "accepted more than {SPARE} connections"
            );
        };
        assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
        assert!(!accepted.is_empty(), "accept failed before any fd ran out");
        let served: Vec<SocketAddr> = accepted.iter().map(|(_, peer)| *peer).collect();
        accepted.truncate(accepted.len() - 1);

        let (mut conn, peer) = listener.accept().unwrap();
        assert!(!served.contains(&peer), "accepted {peer} twice");
        let mut client = clients
            .iter()
            .find(|c| c.local_addr().unwrap() == peer)
            .expect("the connection accepted is one of the queued clients");
        let echo = spindle::spawn(move || {
            let mut buf = [0; 4];
            conn.read_exact(&mut buf).unwrap();
            conn.write_all(&buf).unwrap();
        });
        client.write_all(b"ping").unwrap();
        let mut reply = [0; 4];
        client.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"ping");
        echo.join().unwrap();
        set_nofile_limit(&old).unwrap();
        println!("{DONE}");
    });
}
