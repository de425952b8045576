//! The `hook` feature: unmodified blocking std code inside fibers
//! (`cargo test --release --features hook --test hook`).

use std::cell::RefCell;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap()
}

fn set_errno(e: i32) {
    // SAFETY: this thread's errno location.
    unsafe { *libc::__errno_location() = e };
}

#[test]
fn hooks_win_the_link() {
    spindle::run(|| assert!(spindle::hook::installed()));
}

#[test]
fn ten_thousand_std_sleeps_overlap() {
    let start = Instant::now();
    let done = spindle::run(|| {
        let handles: Vec<_> = (0..10_000)
            .map(|_| spindle::spawn(|| std::thread::sleep(Duration::from_secs(1))))
            .collect();
        spindle::join_all(handles)
            .into_iter()
            .filter(|r| r.is_ok())
            .count()
    });
    let took = start.elapsed();
    assert_eq!(done, 10_000);
    assert!(took >= Duration::from_secs(1), "{took:?}");
    // Sequential would be 10,000 s; the bound only has to prove overlap.
    assert!(
        took < Duration::from_secs(5),
        "10,000 sleeps of 1 s took {took:?}"
    );
}

#[test]
fn std_server_and_hundred_std_clients_on_one_thread() {
    let total = spindle::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spindle::spawn(move || {
            let mut conns = Vec::new();
            for _ in 0..100 {
                let (mut s, _) = listener.accept().unwrap();
                conns.push(spindle::spawn(move || {
                    let mut buf = [0u8; 64];
                    let n = s.read(&mut buf).unwrap();
                    s.write_all(&buf[..n]).unwrap();
                    s.write_all(b"!").unwrap();
                }));
            }
            spindle::join_all(conns);
        });
        let clients: Vec<_> = (0..100)
            .map(|i| {
                spindle::spawn(move || {
                    let mut s = TcpStream::connect(addr).unwrap();
                    let msg = format!("hello {i}");
                    s.write_all(msg.as_bytes()).unwrap();
                    let mut reply = String::new();
                    s.read_to_string(&mut reply).unwrap();
                    assert_eq!(reply, format!("{msg}!"));
                    reply.len()
                })
            })
            .collect();
        let total: usize = spindle::join_all(clients)
            .into_iter()
            .map(Result::unwrap)
            .sum();
        server.join().unwrap();
        total
    });
    let expected: usize = (0..100).map(|i| format!("hello {i}!").len()).sum();
    assert_eq!(total, expected);
}

#[test]
fn read_timeout_gives_would_block_and_other_fibers_run() {
    spindle::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, _) = listener.accept().unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let ticks = Rc::new(RefCell::new(0));
        let t = ticks.clone();
        let ticker = spindle::spawn(move || {
            for _ in 0..5 {
                spindle::sleep(Duration::from_millis(10));
                *t.borrow_mut() += 1;
            }
        });
        let start = Instant::now();
        let err = (&client).read(&mut [0; 8]).unwrap_err();
        let took = start.elapsed();
        // std documents WouldBlock on Unix (TimedOut on Windows).
        assert!(
            matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "{err}"
        );
        assert!(took >= Duration::from_millis(100), "{took:?}");
        ticker.join().unwrap();
        assert_eq!(*ticks.borrow(), 5, "the other fiber ran during the read");
    });
}

#[test]
fn plain_threads_still_block() {
    // No runtime on this thread: std's sleep really sleeps.
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(30));
    assert!(start.elapsed() >= Duration::from_millis(30));

    // A socket first used by a fiber (so non-blocking underneath), then by
    // a plain thread: the plain thread's read blocks until data comes.
    let (a, b) = UnixStream::pair().unwrap();
    let a = spindle::run(move || {
        let writer = spindle::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            (&b).write_all(b"x").unwrap();
            b
        });
        let mut one = [0u8; 1];
        (&a).read_exact(&mut one).unwrap();
        (a, writer.join().unwrap())
    });
    let (a, b) = a;
    let reader = std::thread::spawn(move || {
        let start = Instant::now();
        let mut buf = [0u8; 4];
        let n = (&a).read(&mut buf).unwrap();
        (n, start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(50));
    (&b).write_all(b"late").unwrap();
    let (n, waited) = reader.join().unwrap();
    assert_eq!(n, 4);
    assert!(waited >= Duration::from_millis(40), "{waited:?}");
}

#[test]
fn user_nonblocking_socket_still_would_block() {
    spindle::run(|| {
        let (a, _b) = UnixStream::pair().unwrap();
        let a = Rc::new(a);
        let a2 = a.clone();
        // Learned as blocking first: the hook sets O_NONBLOCK underneath,
        // but the program's view stays blocking.
        let flags = unsafe { libc::fcntl(a.as_raw_fd(), libc::F_GETFL) };
        let r = spindle::timeout(Duration::from_millis(20), move || (&*a2).read(&mut [0; 4]));
        assert!(
            r.is_err(),
            "a blocking read with no data parks until the timeout"
        );
        let flags_after = unsafe { libc::fcntl(a.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(
            flags_after & libc::O_NONBLOCK,
            0,
            "F_GETFL shows the program's choice"
        );
        assert_eq!(flags & libc::O_NONBLOCK, 0);
        a.set_nonblocking(true).unwrap();
        let err = (&*a).read(&mut [0; 4]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        let flags = unsafe { libc::fcntl(a.as_raw_fd(), libc::F_GETFL) };
        assert_ne!(flags & libc::O_NONBLOCK, 0);
        a.set_nonblocking(false).unwrap();
        let flags = unsafe { libc::fcntl(a.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(flags & libc::O_NONBLOCK, 0);
    });
}

#[test]
fn buf_reader_read_line_over_a_hooked_socket() {
    spindle::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let writer = spindle::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            for part in ["first li", "ne\nsecond", " line\n"] {
                s.write_all(part.as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let mut lines = BufReader::new(TcpStream::connect(addr).unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "first line");
        assert_eq!(lines.next().unwrap().unwrap(), "second line");
        assert!(lines.next().is_none());
        writer.join().unwrap();
    });
}

#[test]
fn errno_is_preserved_across_a_park() {
    spindle::run(|| {
        let other = spindle::spawn(|| {
            set_errno(libc::ENOENT);
            std::thread::sleep(Duration::from_millis(5));
            errno()
        });
        set_errno(libc::EXDEV);
        std::thread::sleep(Duration::from_millis(10));
        assert_eq!(errno(), libc::EXDEV);
        assert_eq!(other.join().unwrap(), libc::ENOENT);
        // And a call that fails sets it after the park, on this thread.
        let (a, _b) = UnixStream::pair().unwrap();
        a.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        set_errno(0);
        let n = unsafe { libc::read(a.as_raw_fd(), [0u8; 1].as_mut_ptr().cast(), 1) };
        assert_eq!((n, errno()), (-1, libc::EAGAIN));
    });
}

#[test]
fn cancelling_a_fiber_parked_in_a_hooked_read_unwinds_it() {
    spindle::run(|| {
        let (a, b) = UnixStream::pair().unwrap();
        let reader = spindle::spawn(move || {
            let mut buf = [0u8; 8];
            let _ = (&a).read(&mut buf); // parks for ever: nobody writes
            unreachable!("the read returned");
        });
        spindle::sleep(Duration::from_millis(5));
        reader.cancel();
        assert!(matches!(reader.join(), Err(spindle::JoinError::Cancelled)));
        // The unwind dropped (closed) the reader's socket: the peer sees EOF.
        let mut rest = Vec::new();
        (&b).read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    });
}

#[test]
fn close_fails_a_wait_on_the_fd_before_the_number_is_reused() {
    spindle::run(|| {
        let (a, _b) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        let waiter = spindle::spawn(move || {
            let n = unsafe { libc::read(fd, [0u8; 1].as_mut_ptr().cast(), 1) };
            (n, errno())
        });
        spindle::sleep(Duration::from_millis(5));
        drop(a); // close(fd) while the waiter is parked on it
        let (_c, _d) = UnixStream::pair().unwrap(); // may reuse the number
        assert_eq!(waiter.join().unwrap(), (-1, libc::EBADF));
    });
}

#[test]
fn poll_and_connect_timeout_park() {
    spindle::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (a, b) = UnixStream::pair().unwrap();
        let writer = spindle::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            (&b).write_all(b"x").unwrap();
            b
        });
        // Two fds, mixed events: the fiber parks until the pair is readable.
        let mut fds = [
            libc::pollfd {
                fd: a.as_raw_fd(),
                events: libc::POLLIN | libc::POLLPRI,
                revents: 0,
            },
            libc::pollfd {
                fd: listener.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let start = Instant::now();
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, 5_000) };
        assert_eq!(n, 1);
        assert_ne!(fds[0].revents & libc::POLLIN, 0);
        assert!(start.elapsed() >= Duration::from_millis(10));
        let _b = writer.join().unwrap();
        // A poll that times out returns 0 after its timeout.
        let mut one = [libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let start = Instant::now();
        assert_eq!(unsafe { libc::poll(one.as_mut_ptr(), 1, 20) }, 0);
        assert!(start.elapsed() >= Duration::from_millis(20));
        // An ignored entry (negative fd) and no fds at all: a poll that
        // sleeps out its timeout, parked.
        let mut none = [libc::pollfd {
            fd: -1,
            events: libc::POLLIN,
            revents: 0,
        }];
        let start = Instant::now();
        assert_eq!(unsafe { libc::poll(none.as_mut_ptr(), 1, 10) }, 0);
        assert_eq!(unsafe { libc::poll(std::ptr::null_mut(), 0, 10) }, 0);
        assert!(start.elapsed() >= Duration::from_millis(20));
        // std's connect_timeout is ioctl(FIONBIO) + connect + poll.
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        assert_eq!(s.peer_addr().unwrap(), addr);
    });
}

#[test]
fn clock_nanosleep_relative_absolute_and_invalid() {
    spindle::run(|| {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
        let mut until = now;
        until.tv_nsec += 20_000_000;
        if until.tv_nsec >= 1_000_000_000 {
            until.tv_sec += 1;
            until.tv_nsec -= 1_000_000_000;
        }
        let start = Instant::now();
        let r = unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &until,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(r, 0);
        assert!(start.elapsed() >= Duration::from_millis(19));
        let bad = libc::timespec {
            tv_sec: 0,
            tv_nsec: 2_000_000_000,
        };
        set_errno(0);
        let r =
            unsafe { libc::clock_nanosleep(libc::CLOCK_MONOTONIC, 0, &bad, std::ptr::null_mut()) };
        assert_eq!(
            (r, errno()),
            (libc::EINVAL, 0),
            "an error code, errno untouched"
        );
        let r = unsafe { libc::nanosleep(&bad, std::ptr::null_mut()) };
        assert_eq!((r, errno()), (-1, libc::EINVAL));
        let start = Instant::now();
        assert_eq!(unsafe { libc::usleep(5_000) }, 0);
        assert!(start.elapsed() >= Duration::from_millis(5));
    });
}
