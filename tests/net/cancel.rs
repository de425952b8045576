//! A fiber cancelled while parked in `accept`, `read` or `connect` unwinds, and the socket stays usable.

use super::*;

// ---- cancellation -------------------------------------------------------------

/// Spawns `f` with a [`SetOnDrop`] on its stack, waits until it parks in
/// I/O, cancels it, and checks that it unwound: its join says `Cancelled`
/// and the guard's destructor ran. Returns how long the cancel took.
fn cancel_parked<T: 'static>(f: impl FnOnce() -> T + 'static) -> Duration {
    let dropped = Rc::new(Cell::new(false));
    let h = spindle::spawn({
        let dropped = Rc::clone(&dropped);
        move || {
            let _guard = SetOnDrop(dropped);
            f()
        }
    });
    wait_for_io_park(h.id());
    let start = Instant::now();
    h.cancel();
    assert!(
        matches!(h.join(), Err(JoinError::Cancelled)),
        "not cancelled"
    );
    assert!(
        dropped.get(),
        "the cancelled fiber's destructors did not run"
    );
    start.elapsed()
}

/// A fiber parked in `accept`, cancelled, unwinds; the listener then
/// accepts the next connection in another fiber (which parks first).
#[test]
fn cancelled_accept_unwinds_and_the_listener_still_accepts() {
    let _w = watchdog("cancelled_accept_unwinds_and_the_listener_still_accepts");
    spindle::run(|| {
        let listener = Rc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let addr = listener.local_addr().unwrap();
        let l = Rc::clone(&listener);
        cancel_parked(move || l.accept().map(|_| ()));
        let l = Rc::clone(&listener);
        let next = spindle::spawn(move || {
            let (mut conn, _) = l.accept().unwrap();
            let mut buf = [0; 5];
            conn.read_exact(&mut buf).unwrap();
            buf
        });
        wait_for_io_park(next.id());
        TcpStream::connect(addr)
            .unwrap()
            .write_all(b"after")
            .unwrap();
        assert_eq!(&next.join().unwrap(), b"after");
    });
}

/// A fiber parked in `read`, cancelled, unwinds; another fiber then reads
/// the stream, and gets every byte the peer sent.
#[test]
fn cancelled_read_unwinds_and_the_stream_still_reads() {
    let _w = watchdog("cancelled_read_unwinds_and_the_stream_still_reads");
    spindle::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = Rc::new(TcpStream::connect(listener.local_addr().unwrap()).unwrap());
        let (mut conn, _) = listener.accept().unwrap();
        let s = Rc::clone(&stream);
        cancel_parked(move || (&*s).read(&mut [0; 16]));
        let s = Rc::clone(&stream);
        let next = spindle::spawn(move || {
            let mut buf = vec![0; 30_000];
            (&*s).read_exact(&mut buf).unwrap();
            buf
        });
        wait_for_io_park(next.id());
        conn.write_all(&patterned(9, 30_000)).unwrap();
        check_pattern(9, 0, &next.join().unwrap());
    });
}

/// Fibers parked in `connect_timeout` (with a long timeout) and in
/// `connect`, to a full accept queue, cancelled, unwind at once; connecting
/// elsewhere still works afterwards.
#[test]
fn cancelled_connect_unwinds() {
    let _w = watchdog("cancelled_connect_unwinds");
    let full = full_queue_listener();
    spindle::run(move || {
        let addr = full.addr;
        let took =
            cancel_parked(move || TcpStream::connect_timeout(&addr, Duration::from_secs(600)));
        assert!(took < LONG, "the cancel took {took:?}");
        let took = cancel_parked(move || TcpStream::connect(addr));
        assert!(took < LONG, "the cancel took {took:?}");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut s = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut conn, _) = listener.accept().unwrap();
        s.write_all(b"ok").unwrap();
        let mut buf = [0; 2];
        conn.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ok");
    });
}
