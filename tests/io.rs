//! `spindle::io::Async`: any pollable fd made fiber-aware (pipes, socket
//! pairs, datagram sockets), and a regular file, which epoll refuses and
//! which must simply work.
//!
//! Pipes come from `libc::pipe2` (`std::io::pipe` is newer than the crate's
//! `rust-version`). Timing assertions are one-sided, as in `tests/net/main.rs`,
//! and a [`Watchdog`] turns a lost wake-up into an abort with the test's
//! name instead of a hung run.
#![warn(clippy::undocumented_unsafe_blocks)]

use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use spindle::io::Async;

mod common;

use common::*;

/// A pipe, `(read end, write end)`, both blocking and close-on-exec.
fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", io::Error::last_os_error());
    // SAFETY: both are new fds that nothing else owns.
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

/// Writes through `w` until a write would block (it is non-blocking
/// underneath); returns how much went in.
fn fill(mut write: impl FnMut(&[u8]) -> io::Result<usize>) -> usize {
    let chunk = [0x5a; 4096];
    let mut total = 0;
    loop {
        match write(&chunk) {
            Ok(n) => total += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return total,
            Err(e) => panic!("filling: {e}"),
        }
        assert!(total < 1 << 30, "1 GiB into a buffer nobody reads");
    }
}

/// A reader of a pipe parks until the writer writes, parks again for the
/// rest, and sees end of stream when the writer is dropped.
#[test]
fn pipe_reader_parks_until_the_writer_writes() {
    let _w = watchdog("pipe_reader_parks_until_the_writer_writes");
    spindle::run(|| {
        let (r, w) = pipe();
        let mut r = Async::new(r).unwrap();
        let mut w = Async::new(w).unwrap();
        let reader = spindle::spawn(move || {
            let mut first = [0; 5];
            r.read_exact(&mut first).unwrap();
            let mut rest = Vec::new();
            r.read_to_end(&mut rest).unwrap();
            (first, rest)
        });
        wait_for_io_park(reader.id());
        w.write_all(b"hello").unwrap();
        spindle::sleep(Duration::from_millis(5));
        wait_for_io_park(reader.id());
        w.write_all(b", world").unwrap();
        drop(w);
        let (first, rest) = reader.join().unwrap();
        assert_eq!(&first, b"hello");
        assert_eq!(rest, b", world");
    });
}

/// 64 pipes, a reader and a writer fiber on each, 200 KB per pipe in odd
/// chunk sizes: far more than a pipe holds, so writers park on full pipes
/// and readers on empty ones, all on one thread; every byte is checked.
#[test]
fn many_fibers_on_many_pipes() {
    const PIPES: usize = 64;
    const BYTES: usize = 200_000;
    let _w = watchdog("many_fibers_on_many_pipes");
    spindle::run(|| {
        let mut fibers = Vec::new();
        for p in 0..PIPES {
            let (r, w) = pipe();
            let mut r = Async::new(r).unwrap();
            let mut w = Async::new(w).unwrap();
            fibers.push(spindle::spawn(move || {
                let mut chunk = vec![0; 7919];
                let mut offset = 0;
                while offset < BYTES {
                    let n = chunk.len().min(BYTES - offset);
                    for (k, b) in chunk[..n].iter_mut().enumerate() {
                        *b = pattern(p, offset + k);
                    }
                    w.write_all(&chunk[..n]).unwrap();
                    offset += n;
                }
                offset
            }));
            fibers.push(spindle::spawn(move || {
                let mut buf = vec![0; 4096];
                let mut got = 0;
                loop {
                    match r.read(&mut buf).unwrap() {
                        0 => return got,
                        n => {
                            check_pattern(p, got, &buf[..n]);
                            got += n;
                        }
                    }
                }
            }));
        }
        for r in spindle::join_all(fibers) {
            assert_eq!(r.unwrap(), BYTES);
        }
    });
}

/// A read timeout makes a read of an empty pipe fail with `TimedOut` after
/// the timeout; a write timeout does the same for a full pipe; a zero
/// timeout is `InvalidInput` and changes nothing.
#[test]
fn read_and_write_timeouts_on_a_pipe() {
    let _w = watchdog("read_and_write_timeouts_on_a_pipe");
    spindle::run(|| {
        let (r, w) = pipe();
        let mut r = Async::new(r).unwrap();
        let mut w = Async::new(w).unwrap();
        let timeout = Duration::from_millis(150);
        r.set_read_timeout(Some(timeout)).unwrap();
        w.set_write_timeout(Some(timeout)).unwrap();
        assert_eq!(r.read_timeout(), Some(timeout));
        assert_eq!(w.write_timeout(), Some(timeout));
        for (e, what) in [
            (r.set_read_timeout(Some(Duration::ZERO)), "read"),
            (w.set_write_timeout(Some(Duration::ZERO)), "write"),
        ] {
            assert_eq!(e.unwrap_err().kind(), ErrorKind::InvalidInput, "{what}");
        }
        assert_eq!(r.read_timeout(), Some(timeout));
        assert_eq!(w.write_timeout(), Some(timeout));

        let start = Instant::now();
        let e = r.read(&mut [0; 16]).unwrap_err();
        let waited = start.elapsed();
        assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
        assert_waited_about(waited, timeout);

        let filled = fill(|b| w.get_ref().write(b));
        assert!(filled > 0);
        let start = Instant::now();
        let e = w.write(b"one more").unwrap_err();
        let waited = start.elapsed();
        assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
        assert_waited_about(waited, timeout);

        // The data written before the timeouts is all there.
        r.set_read_timeout(None).unwrap();
        let mut buf = vec![0; filled];
        r.read_exact(&mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 0x5a));
    });
}

/// `into_inner` leaves the reactor and restores the fd's flags: a blocking
/// pipe is blocking again, one that was non-blocking before stays so; and
/// the fd can be wrapped again and waited on (it left the epoll set).
#[test]
fn into_inner_restores_the_original_flags() {
    let _w = watchdog("into_inner_restores_the_original_flags");
    spindle::run(|| {
        let (r, w) = pipe();
        let mut w = Async::new(w).unwrap();
        let fd = r.as_raw_fd();
        assert!(!is_nonblocking(fd));
        let before = fd_flags(fd);
        let r = Async::new(r).unwrap();
        assert!(is_nonblocking(fd));
        // Register it: a wait that times out.
        r.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        assert_eq!(r.readable().unwrap_err().kind(), ErrorKind::TimedOut);
        let mut r = r.into_inner().unwrap();
        assert_eq!(fd_flags(fd), before, "flags after into_inner");
        w.write_all(b"blocking").unwrap();
        let mut buf = [0; 8];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"blocking");

        // Wrapped again, the fd waits on the reactor as before.
        let mut r = Async::new(r).unwrap();
        let reader = spindle::spawn(move || {
            let mut buf = [0; 5];
            r.read_exact(&mut buf).unwrap();
            (r, buf)
        });
        wait_for_io_park(reader.id());
        w.write_all(b"again").unwrap();
        let (r, buf) = reader.join().unwrap();
        assert_eq!(&buf, b"again");
        drop(r.into_inner().unwrap());

        // An fd that was non-blocking before stays non-blocking.
        let (a, _b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let before = fd_flags(a.as_raw_fd());
        let a = Async::new(a).unwrap().into_inner().unwrap();
        assert_eq!(fd_flags(a.as_raw_fd()), before);
        assert!(is_nonblocking(a.as_raw_fd()));
    });
}

/// A regular file, which epoll refuses (`EPERM`), simply works through
/// `Async`: `readable` and `writable` return at once, reads and writes go
/// through with timeouts set, and another fiber's ticks do not matter.
#[test]
fn regular_file_reads_without_waiting() {
    let _w = watchdog("regular_file_reads_without_waiting");
    let path = std::env::temp_dir().join(format!("spindle-io-test-{}", std::process::id()));
    let content: Vec<u8> = (0..100_000).map(|i| pattern(3, i)).collect();
    std::fs::write(&path, &content).unwrap();
    let read_path = path.clone();
    spindle::run(move || {
        let mut f = Async::new(File::open(&read_path).unwrap()).unwrap();
        f.set_read_timeout(Some(LONG)).unwrap();
        let start = Instant::now();
        f.readable().unwrap();
        f.readable().unwrap();
        let mut got = Vec::new();
        f.read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), 100_000);
        check_pattern(3, 0, &got);
        f.readable().unwrap(); // at end of file: still "ready"
        assert!(start.elapsed() < LONG, "a regular file waited");

        let mut out = Async::new(
            std::fs::OpenOptions::new()
                .append(true)
                .open(&read_path)
                .unwrap(),
        )
        .unwrap();
        out.set_write_timeout(Some(LONG)).unwrap();
        out.writable().unwrap();
        out.write_all(b"tail").unwrap();
        out.writable().unwrap();
        let file = out.into_inner().unwrap();
        assert!(!is_nonblocking(file.as_raw_fd()));
    });
    let back = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(back.len(), 100_004);
    assert_eq!(&back[100_000..], b"tail");
}

/// `readable` parks until the peer writes; `writable` parks while the send
/// buffer is full, until the peer drains it.
#[test]
fn readable_and_writable_park_until_ready() {
    let _w = watchdog("readable_and_writable_park_until_ready");
    spindle::run(|| {
        let (a, mut b) = UnixStream::pair().unwrap();
        let a = Rc::new(Async::new(a).unwrap());
        a.set_read_timeout(Some(LONG)).unwrap();
        a.set_write_timeout(Some(LONG)).unwrap();

        let waiter = spindle::spawn({
            let a = Rc::clone(&a);
            move || a.readable()
        });
        wait_for_io_park(waiter.id());
        b.write_all(b"x").unwrap();
        waiter.join().unwrap().unwrap();
        let mut buf = [0; 1];
        a.read_with(|s| (&*s).read(&mut buf)).unwrap();
        assert_eq!(&buf, b"x");

        let filled = fill(|buf| a.get_ref().write(buf));
        let waiter = spindle::spawn({
            let a = Rc::clone(&a);
            move || a.writable()
        });
        wait_for_io_park(waiter.id());
        let mut drained = vec![0; filled];
        b.read_exact(&mut drained).unwrap(); // blocking; the data is there
        waiter.join().unwrap().unwrap();
        assert_eq!(a.get_ref().write(b"y").unwrap(), 1);
    });
}

/// `readable` and `writable` return at once when the fd is already ready,
/// also after the fd is registered with the reactor and the readiness came
/// while no fiber waited: data queued and not read (or only partly read,
/// as a loop of small non-blocking reads does), room in the send buffer.
/// A wait that does not return at once fails with `TimedOut` after
/// [`LONG`].
#[test]
fn readable_and_writable_return_at_once_when_already_ready() {
    let _w = watchdog("readable_and_writable_return_at_once_when_already_ready");
    spindle::run(|| {
        let (a, mut b) = UnixStream::pair().unwrap();
        let a = Async::new(a).unwrap();
        a.set_read_timeout(Some(LONG)).unwrap();
        a.set_write_timeout(Some(LONG)).unwrap();
        a.writable().expect("a new socket is writable");

        // Register the fd: the first wait for readable parks.
        let a = Rc::new(a);
        let waiter = spindle::spawn({
            let a = Rc::clone(&a);
            move || a.readable()
        });
        wait_for_io_park(waiter.id());
        b.write_all(b"abc").unwrap();
        waiter.join().unwrap().unwrap();

        let start = Instant::now();
        a.readable().expect("3 bytes queued, none read");
        let mut one = [0; 1];
        assert_eq!(a.get_ref().read(&mut one).unwrap(), 1);
        a.readable().expect("2 bytes still queued");
        a.writable().expect("the send buffer is empty");
        assert!(start.elapsed() < LONG);
    });
}

/// `read_with` and `write_with` on a `UnixDatagram` pair: a receive parks
/// until a datagram comes; a sender that fills the peer's queue parks until
/// a reader drains it; all 500 datagrams arrive whole and in order.
#[test]
fn read_with_and_write_with_on_a_unix_datagram() {
    const DATAGRAMS: usize = 500;
    let _w = watchdog("read_with_and_write_with_on_a_unix_datagram");
    let datagram = |i: usize| -> Vec<u8> { (0..1000 + i % 7).map(|k| pattern(i, k)).collect() };
    spindle::run(move || {
        let (a, b) = UnixDatagram::pair().unwrap();
        let a = Rc::new(Async::new(a).unwrap());
        let b = Rc::new(Async::new(b).unwrap());

        let receiver = spindle::spawn({
            let a = Rc::clone(&a);
            move || {
                let mut buf = [0; 64];
                let n = a.read_with(|s| s.recv(&mut buf)).unwrap();
                buf[..n].to_vec()
            }
        });
        wait_for_io_park(receiver.id());
        assert_eq!(b.write_with(|s| s.send(b"first")).unwrap(), 5);
        assert_eq!(receiver.join().unwrap(), b"first");

        let sender = spindle::spawn({
            let b = Rc::clone(&b);
            move || {
                for i in 0..DATAGRAMS {
                    let d = datagram(i);
                    assert_eq!(b.write_with(|s| s.send(&d)).unwrap(), d.len());
                }
            }
        });
        wait_for_io_park(sender.id()); // the queue is full: nobody reads yet
        let mut buf = vec![0; 2048];
        for i in 0..DATAGRAMS {
            let n = a.read_with(|s| s.recv(&mut buf)).unwrap();
            assert_eq!(&buf[..n], &datagram(i)[..], "datagram {i}");
        }
        sender.join().unwrap();
    });
}

/// An `Async` may borrow its fd (`Async<&T>`): it is registered while the
/// `Async` lives and left open and usable after; a second `Async` over the
/// same fd then works as the first did.
#[test]
fn a_borrowing_async_leaves_the_fd_to_its_owner() {
    let _w = watchdog("a_borrowing_async_leaves_the_fd_to_its_owner");
    spindle::run(|| {
        let (a, b) = UnixStream::pair().unwrap();
        for round in 0..3u8 {
            let mut borrowed = Async::new(&a).unwrap();
            let b2 = b.try_clone().unwrap();
            let writer = spindle::spawn(move || {
                spindle::sleep(Duration::from_millis(2));
                (&b2).write_all(&[round]).unwrap();
            });
            let mut byte = [0xff];
            borrowed.read_exact(&mut byte).unwrap(); // parks until written
            assert_eq!(byte, [round]);
            writer.join().unwrap();
            drop(borrowed);
        }
        // The owner still has its (non-blocking) fd.
        assert!(is_nonblocking(a.as_raw_fd()));
        (&b).write_all(b"x").unwrap();
        let mut byte = [0];
        (&a).read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"x");
    });
}
