//! UDP: `send_to`/`recv_from`, connected sockets, and the read timeout.

use super::*;

// ---- UDP --------------------------------------------------------------------

/// `recv_from` parks its fiber until a datagram comes; `send_to` from
/// another socket on the same runtime wakes it, with the sender's address.
#[test]
fn udp_send_to_wakes_a_parked_recv_from() {
    let _w = watchdog("udp_send_to_wakes_a_parked_recv_from");
    spindle::run(|| {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = receiver.local_addr().unwrap();
        let h = spindle::spawn(move || {
            let mut got = Vec::new();
            let mut buf = [0; 64];
            for _ in 0..3 {
                let (n, from) = receiver.recv_from(&mut buf).unwrap();
                got.push((buf[..n].to_vec(), from));
            }
            got
        });
        wait_for_io_park(h.id());
        for d in [&b"one"[..], b"two", b""] {
            assert_eq!(sender.send_to(d, to).unwrap(), d.len());
        }
        let from = sender.local_addr().unwrap();
        let expected: Vec<(Vec<u8>, SocketAddr)> = [&b"one"[..], b"two", b""]
            .iter()
            .map(|d| (d.to_vec(), from))
            .collect();
        assert_eq!(h.join().unwrap(), expected);
    });
}

/// Connected UDP sockets: `send` and `recv` between two of them, both ways,
/// the receiver parked first each time.
#[test]
fn udp_connected_send_and_recv() {
    let _w = watchdog("udp_connected_send_and_recv");
    spindle::run(|| {
        let a = Rc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let b = Rc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        a.connect(b.local_addr().unwrap()).unwrap();
        b.connect(a.local_addr().unwrap()).unwrap();
        assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
        for (from, to, msg) in [(&a, &b, &b"ping"[..]), (&b, &a, b"pong")] {
            let to = Rc::clone(to);
            let h = spindle::spawn(move || {
                let mut buf = [0; 16];
                let n = to.recv(&mut buf).unwrap();
                buf[..n].to_vec()
            });
            wait_for_io_park(h.id());
            assert_eq!(from.send(msg).unwrap(), msg.len());
            assert_eq!(h.join().unwrap(), msg);
        }
    });
}

/// A UDP receive with a read timeout and nothing to receive fails with
/// `TimedOut` after the timeout.
#[test]
fn udp_recv_timeout_gives_timed_out() {
    let _w = watchdog("udp_recv_timeout_gives_timed_out");
    spindle::run(|| {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let timeout = Duration::from_millis(150);
        s.set_read_timeout(Some(timeout)).unwrap();
        assert_eq!(s.read_timeout().unwrap(), Some(timeout));
        let start = Instant::now();
        let e = s.recv_from(&mut [0; 16]).unwrap_err();
        let waited = start.elapsed();
        assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
        assert_waited_about(waited, timeout);
    });
}
