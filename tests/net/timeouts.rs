//! Read, write and connect timeouts give `TimedOut`; a zero timeout is `InvalidInput`.

use super::*;

// ---- timeouts -------------------------------------------------------------

/// A read with no data fails with `TimedOut` after the read timeout (not
/// before, and not much later), the connection still works afterwards, and
/// other fibers run while the reader waits.
#[test]
fn read_timeout_gives_timed_out_after_the_timeout() {
    let _w = watchdog("read_timeout_gives_timed_out_after_the_timeout");
    spindle::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spindle::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut go = [0; 2];
            conn.read_exact(&mut go).unwrap();
            assert_eq!(&go, b"go");
            conn.write_all(b"late").unwrap();
        });
        let ticks = Rc::new(Cell::new(0u32));
        let ticker = spindle::spawn({
            let ticks = Rc::clone(&ticks);
            move || loop {
                spindle::sleep(Duration::from_millis(10));
                ticks.set(ticks.get() + 1);
            }
        });
        let mut s = TcpStream::connect(addr).unwrap();
        let timeout = Duration::from_millis(200);
        s.set_read_timeout(Some(timeout)).unwrap();
        assert_eq!(s.read_timeout().unwrap(), Some(timeout));
        let start = Instant::now();
        let e = s.read(&mut [0; 16]).unwrap_err();
        let waited = start.elapsed();
        assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
        assert_waited_about(waited, timeout);
        assert!(ticks.get() > 0, "no other fiber ran while the read waited");
        ticker.cancel();
        s.write_all(b"go").unwrap();
        let mut late = [0; 4];
        s.read_exact(&mut late).unwrap();
        assert_eq!(&late, b"late");
        server.join().unwrap();
    });
}

/// A write to a peer that never reads fills the send buffer and then fails
/// with `TimedOut` after the write timeout.
#[test]
fn write_timeout_on_a_peer_that_never_reads_gives_timed_out() {
    let _w = watchdog("write_timeout_on_a_peer_that_never_reads_gives_timed_out");
    spindle::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let s = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_unread, _) = listener.accept().unwrap();
        let timeout = Duration::from_millis(200);
        s.set_write_timeout(Some(timeout)).unwrap();
        assert_eq!(s.write_timeout().unwrap(), Some(timeout));
        let chunk = vec![0x5a; 64 * 1024];
        let mut sent = 0usize;
        let (e, waited) = loop {
            assert!(sent < 1 << 30, "1 GiB written to a peer that never reads");
            let start = Instant::now();
            match (&s).write(&chunk) {
                Ok(n) => sent += n,
                Err(e) => break (e, start.elapsed()),
            }
        };
        assert_eq!(e.kind(), ErrorKind::TimedOut, "{e} after {sent} bytes");
        assert!(sent > 0, "not even the first write went through");
        assert_waited_about(waited, timeout);
    });
}

/// A zero timeout is `InvalidInput` (std's rule) and leaves the old
/// setting in place; so is a zero `connect_timeout`.
#[test]
fn zero_timeouts_are_invalid_input() {
    let _w = watchdog("zero_timeouts_are_invalid_input");
    spindle::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let s = TcpStream::connect(addr).unwrap();
        let old = Some(Duration::from_secs(7));
        s.set_read_timeout(old).unwrap();
        s.set_write_timeout(old).unwrap();
        let e = s.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let e = s.set_write_timeout(Some(Duration::ZERO)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(s.read_timeout().unwrap(), old);
        assert_eq!(s.write_timeout().unwrap(), old);
        s.set_read_timeout(None).unwrap();
        assert_eq!(s.read_timeout().unwrap(), None);
        let e = TcpStream::connect_timeout(&addr, Duration::ZERO).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let e = u.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    });
}

/// `connect_timeout` to a listener whose accept queue is full (the kernel
/// drops the SYN, see [`full_queue_listener`]) gives `TimedOut` after the
/// timeout, and the fiber's thread runs other fibers meanwhile.
#[test]
fn connect_timeout_to_a_full_accept_queue_gives_timed_out() {
    let _w = watchdog("connect_timeout_to_a_full_accept_queue_gives_timed_out");
    let full = full_queue_listener();
    spindle::run(move || {
        let ticks = Rc::new(Cell::new(0u32));
        let ticker = spindle::spawn({
            let ticks = Rc::clone(&ticks);
            move || loop {
                spindle::sleep(Duration::from_millis(10));
                ticks.set(ticks.get() + 1);
            }
        });
        let timeout = Duration::from_millis(200);
        let start = Instant::now();
        let r = TcpStream::connect_timeout(&full.addr, timeout);
        let waited = start.elapsed();
        match r {
            Err(e) => assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}"),
            Ok(s) => panic!("connected to a full accept queue: {s:?}"),
        }
        assert_waited_about(waited, timeout);
        assert!(ticks.get() > 0, "no other fiber ran while connect waited");
        ticker.cancel();
    });
}
