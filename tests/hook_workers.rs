//! The `hook` feature on a runtime with several workers, and the life of
//! a hooked fd's persistent registration (made at its first wait, removed
//! when its number is freed): `cargo test --release --features hook --test
//! hook_workers`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn two_workers() -> spindle::Runtime {
    spindle::Runtime::builder().workers(2).build().unwrap()
}

/// On each of two workers, three fibers each sleep with
/// `std::thread::sleep` three times and serve or make a `std::net` round
/// trip between sleeps: every worker's fibers interleave (the log of a
/// worker goes round by round, not fiber by fiber), and the whole takes
/// about three naps, not the nine that one fiber after another would.
#[test]
fn std_sleep_and_std_net_interleave_on_both_workers() {
    const NAP: Duration = Duration::from_millis(100);
    let log: Arc<Mutex<Vec<(usize, usize, u32)>>> = Arc::default();
    let start = Instant::now();
    two_workers().block_on(|| {
        let handles: Vec<_> = (0..2)
            .map(|worker| {
                let log = Arc::clone(&log);
                spindle::spawn_on(worker, move || {
                    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                    let addr = listener.local_addr().unwrap();
                    let server = spindle::spawn(move || {
                        let conns: Vec<_> = (0..3)
                            .map(|_| {
                                let (mut s, _) = listener.accept().unwrap();
                                spindle::spawn(move || {
                                    let mut buf = [0u8; 16];
                                    loop {
                                        let n = s.read(&mut buf).unwrap();
                                        if n == 0 {
                                            return;
                                        }
                                        s.write_all(&buf[..n]).unwrap();
                                    }
                                })
                            })
                            .collect();
                        spindle::join_all(conns);
                    });
                    let fibers: Vec<_> = (0..3)
                        .map(|fiber| {
                            let log = Arc::clone(&log);
                            spindle::spawn(move || {
                                let mut s = TcpStream::connect(addr).unwrap();
                                for round in 0..3u32 {
                                    std::thread::sleep(NAP);
                                    assert_eq!(spindle::current_worker(), worker);
                                    let msg = [round as u8 + 1; 4];
                                    s.write_all(&msg).unwrap();
                                    let mut back = [0u8; 4];
                                    s.read_exact(&mut back).unwrap();
                                    assert_eq!(back, msg);
                                    log.lock().unwrap().push((worker, fiber, round));
                                }
                            })
                        })
                        .collect();
                    for f in spindle::join_all(fibers) {
                        f.unwrap();
                    }
                    server.join().unwrap();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    let took = start.elapsed();
    let log = log.lock().unwrap();
    for worker in 0..2 {
        let rounds: Vec<u32> = log.iter().filter(|e| e.0 == worker).map(|e| e.2).collect();
        assert_eq!(rounds.len(), 9, "worker {worker}: {log:?}");
        // Round by round: all three fibers finish a round before any
        // finishes the next one (each round is a nap apart).
        let mut sorted = rounds.clone();
        sorted.sort();
        assert_eq!(
            rounds, sorted,
            "worker {worker} did not interleave: {log:?}"
        );
    }
    assert!(took >= NAP * 3, "{took:?}");
    assert!(took < NAP * 8, "took {took:?}: the sleeps did not overlap");
}

/// A connected pair of loopback TCP streams, the first the accepted one.
fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (server, client)
}

/// Reads `want` bytes from `s`, which the peer sends only after `delay`,
/// so the read must wait.
fn delayed_read(s: &mut TcpStream, peer: &Arc<Mutex<TcpStream>>, delay: Duration, byte: u8) {
    let peer = Arc::clone(peer);
    let sender = std::thread::spawn(move || {
        std::thread::sleep(delay);
        peer.lock().unwrap().write_all(&[byte; 3]).unwrap();
    });
    let mut buf = [0u8; 3];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(buf, [byte; 3]);
    sender.join().unwrap();
}

/// A socket whose first wait registered it with worker 0's reactor keeps
/// working when moved to worker 1 (which waits on it the one-shot way) and
/// back again.
#[test]
fn a_hooked_socket_moved_between_workers_keeps_working() {
    two_workers().block_on(|| {
        let (mut s, peer) = spindle::spawn_on(0, tcp_pair).join().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let peer = Arc::new(Mutex::new(peer));
        let delay = Duration::from_millis(20);
        let mut s = spindle::spawn_on(0, {
            let peer = Arc::clone(&peer);
            move || {
                delayed_read(&mut s, &peer, delay, 1);
                s
            }
        })
        .join()
        .unwrap();
        for (worker, byte) in [(1, 2), (0, 3), (1, 4)] {
            let peer = Arc::clone(&peer);
            s = spindle::spawn_on(worker, move || {
                delayed_read(&mut s, &peer, delay, byte);
                s
            })
            .join()
            .unwrap();
        }
    });
}

/// One socket used from both workers at once: a fiber on worker 0 parked
/// reading it (its source is worker 0's) while a fiber on worker 1 writes
/// 8 MiB to it, waiting again and again for room, in its own epoll set.
#[test]
fn one_socket_waited_on_from_two_workers_at_once() {
    const BIG: usize = 8 << 20;
    two_workers().block_on(|| {
        let (s, peer) = spindle::spawn_on(0, tcp_pair).join().unwrap();
        let s = Arc::new(s);
        let reader = spindle::spawn_on(0, {
            let s = Arc::clone(&s);
            move || {
                let mut reply = [0u8; 4];
                (&*s).read_exact(&mut reply).unwrap();
                reply
            }
        });
        // The reader is parked before the writer starts.
        std::thread::sleep(Duration::from_millis(20));
        let writer = spindle::spawn_on(1, {
            let s = Arc::clone(&s);
            move || {
                let data = vec![7u8; BIG];
                (&*s).write_all(&data).unwrap();
            }
        });
        // The peer, on a plain thread, drains slowly at first (so the
        // writer must wait), then answers.
        let peer = std::thread::spawn(move || {
            let mut peer = peer;
            let mut got = 0;
            let mut buf = vec![0u8; 64 << 10];
            std::thread::sleep(Duration::from_millis(30));
            while got < BIG {
                let n = peer.read(&mut buf).unwrap();
                assert!(n > 0 && buf[..n].iter().all(|&b| b == 7));
                got += n;
            }
            peer.write_all(b"done").unwrap();
            peer
        });
        writer.join().unwrap();
        assert_eq!(&reader.join().unwrap(), b"done");
        drop(peer.join().unwrap());
    });
}

/// `dup2` over an fd that has a registration removes it before the number
/// names the new file: a fiber then waits on the new file and wakes when
/// it has data (with the old registration left, it would wait on the old
/// file's epoll entry and time out).
#[test]
fn dup2_over_a_registered_fd_registers_the_new_file() {
    spindle::run(|| {
        let (a, a_peer) = UnixStream::pair().unwrap();
        let (b, b_peer) = UnixStream::pair().unwrap();
        a.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        b.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        // A byte written to `peer` 10 ms from now, read from `a`'s number
        // by this fiber, which must wait for it.
        let byte_after_a_wait = |peer: UnixStream, byte: u8| {
            let w = spindle::spawn(move || {
                std::thread::sleep(Duration::from_millis(10));
                (&peer).write_all(&[byte]).unwrap();
                peer
            });
            let start = Instant::now();
            let mut one = [0u8; 1];
            (&a).read_exact(&mut one).unwrap();
            assert_eq!(one[0], byte);
            assert!(start.elapsed() < Duration::from_secs(2));
            w.join().unwrap()
        };
        // A wait on `a` registers it.
        let _a_peer = byte_after_a_wait(a_peer, b'a');
        // The number of `a` now names `b`'s socket.
        let r = unsafe { libc::dup2(b.as_raw_fd(), a.as_raw_fd()) };
        assert_eq!(r, a.as_raw_fd());
        byte_after_a_wait(b_peer, b'b');
    });
}

/// A stream read shorter than its buffer leaves the fd marked drained, and
/// the next read waits for the next edge without trying: data that comes
/// in several pieces, each after a pause, is all read, in order, by one
/// fiber while another keeps the thread busy with its own hooked pipe.
#[test]
fn short_reads_then_edges_lose_nothing() {
    spindle::run(|| {
        let (a, b) = UnixStream::pair().unwrap();
        let (c, d) = UnixStream::pair().unwrap();
        let writer = spindle::spawn(move || {
            for i in 0..50u8 {
                (&b).write_all(&[i; 3]).unwrap();
                if i % 5 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        let chatter = spindle::spawn(move || {
            for i in 0..200u8 {
                (&c).write_all(&[i]).unwrap();
                let mut x = [0u8; 1];
                (&d).read_exact(&mut x).unwrap();
                assert_eq!(x[0], i);
            }
        });
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while got.len() < 150 {
            let n = (&a).read(&mut buf).unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        let want: Vec<u8> = (0..50u8).flat_map(|i| [i; 3]).collect();
        assert_eq!(got, want);
        writer.join().unwrap();
        chatter.join().unwrap();
    });
}

/// A std socket the hook has registered (a fiber waited on it), then handed
/// to spindle's own sockets (`from_std` makes it non-blocking, which drops
/// the hook's registration), works there: spindle registers it in its own
/// name in the same epoll set and waits on it.
#[test]
fn a_registered_std_socket_handed_to_spindle_net_works() {
    spindle::run(|| {
        let (s, peer) = tcp_pair();
        let peer = Arc::new(Mutex::new(peer));
        let mut s = s;
        delayed_read(&mut s, &peer, Duration::from_millis(10), 1);
        let mut s = spindle::net::TcpStream::from_std(s).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let sender = {
            let peer = Arc::clone(&peer);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(10));
                peer.lock().unwrap().write_all(b"xyz").unwrap();
            })
        };
        let mut buf = [0u8; 3];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"xyz");
        sender.join().unwrap();
    });
}
