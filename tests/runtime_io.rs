//! Fibers and the outside world: waiting on fds (readiness, deadlines,
//! errors, closed fds) and offloading blocking calls to helper threads.

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::panic;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use spindle::runtime::MAX_BLOCKING_THREADS;
use spindle::runtime::{wait_readable, wait_writable};
use spindle::TaskState;

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn fd_waits_readable_writable_deadline_and_errors() {
    spindle::run(|| {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let fd = a.as_raw_fd();

        // A reader and a writer on the same fd at once.
        let reader = spindle::spawn(move || wait_readable(fd, None));
        let writer = spindle::spawn(move || wait_writable(fd, None));
        assert!(writer.join().unwrap().is_ok());
        let mut b2 = b.try_clone().unwrap();
        b2.write_all(b"hi").unwrap();
        reader.join().unwrap().unwrap();
        let mut buf = [0u8; 2];
        a.read_exact(&mut buf).unwrap();

        // Nothing to read: the deadline ends the wait, never early.
        let start = Instant::now();
        let deadline = start + Duration::from_millis(15);
        let e = wait_readable(fd, Some(deadline)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(Instant::now() >= deadline);

        // An invalid fd is an error at once.
        let e = wait_readable(987_654, None).unwrap_err();
        assert!(e.to_string().contains("fd 987654"), "{e}");

        // The other end hangs up: a reader sees the end of the stream.
        drop(b);
        drop(b2);
        wait_readable(fd, None).unwrap();
        assert_eq!(a.read(&mut buf).unwrap(), 0);

        // A regular file is always ready.
        let f = std::fs::File::open("Cargo.toml").unwrap();
        wait_readable(f.as_raw_fd(), None).unwrap();
        wait_writable(f.as_raw_fd(), None).unwrap();
    });
}

/// In a fiber: closes an fd while another fiber waits on it, and checks
/// that the wait fails, naming the cause.
fn close_under_a_waiting_fiber() {
    let (a, _b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let h = spindle::spawn(move || wait_readable(fd, None));
    spindle::yield_now();
    drop(a); // closes fd while the fiber waits on it
    let e = h.join().unwrap().unwrap_err();
    assert!(e.to_string().contains("closed while a fiber waited"), "{e}");
}

#[test]
fn an_fd_closed_under_a_waiting_fiber_is_an_error_not_a_hang() {
    spindle::run(close_under_a_waiting_fiber);
}

/// The same while another fiber keeps a timer pending all along: the
/// wait must fail while the ticker still ticks, not once it stops.
#[test]
fn an_fd_closed_under_a_waiting_fiber_fails_while_timers_are_pending() {
    spindle::run(|| {
        let ticking = Rc::new(Cell::new(true));
        let still = ticking.clone();
        let ticker = spindle::spawn(move || {
            for _ in 0..2_000 {
                spindle::sleep(Duration::from_millis(1));
            }
            still.set(false);
        });
        close_under_a_waiting_fiber();
        assert!(ticking.get(), "the wait failed only once no timer was left");
        ticker.cancel();
    });
}

#[test]
fn spawn_blocking_runs_on_a_helper_thread_while_others_run() {
    spindle::run(|| {
        let main_thread = std::thread::current().id();
        let ticks = Rc::new(Cell::new(0));
        let t = ticks.clone();
        let ticker = spindle::spawn(move || {
            for _ in 0..5 {
                spindle::sleep(Duration::from_millis(2));
                t.set(t.get() + 1);
            }
        });
        let (thread, v) = spindle::spawn_blocking(|| {
            std::thread::sleep(Duration::from_millis(40));
            (std::thread::current().id(), 99)
        });
        assert_ne!(thread, main_thread);
        assert_eq!(v, 99);
        assert_eq!(ticks.get(), 5, "the other fiber was held up");
        ticker.join().unwrap();

        let p = panic::catch_unwind(|| spindle::spawn_blocking(|| panic!("in helper")));
        assert_eq!(panic_message(&*p.unwrap_err()), "in helper");

        // Cancelled while its call runs: unwinds at once.
        let h = spindle::spawn(|| {
            spindle::spawn_blocking(|| std::thread::sleep(Duration::from_millis(50)))
        });
        spindle::yield_now();
        assert_eq!(spindle::tasks()[1].state(), TaskState::WaitingBlocking);
        h.cancel();
        assert!(h.join().unwrap_err().is_cancelled());
    });
}

/// Sets its flag when dropped (on whatever thread drops it).
struct DroppedFlag(Arc<AtomicBool>);

impl Drop for DroppedFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A cancelled caller's job that no helper thread has started is taken out
/// of the queue and dropped unrun. Every helper thread is kept busy so that
/// the job has to queue.
#[test]
fn a_cancelled_callers_queued_blocking_job_never_runs() {
    spindle::run(|| {
        let started = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Barrier::new(MAX_BLOCKING_THREADS + 1));
        let blockers: Vec<_> = (0..MAX_BLOCKING_THREADS)
            .map(|_| {
                let (started, gate) = (started.clone(), gate.clone());
                spindle::spawn(move || {
                    spindle::spawn_blocking(move || {
                        started.fetch_add(1, Ordering::SeqCst);
                        gate.wait();
                    })
                })
            })
            .collect();
        while started.load(Ordering::SeqCst) < MAX_BLOCKING_THREADS {
            spindle::sleep(Duration::from_millis(1));
        }
        let ran = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicBool::new(false));
        let (ran2, flag) = (ran.clone(), DroppedFlag(dropped.clone()));
        let victim = spindle::spawn(move || {
            spindle::spawn_blocking(move || {
                let _flag = flag;
                ran2.store(true, Ordering::SeqCst);
            })
        });
        while spindle::tasks()
            .iter()
            .all(|t| t.id() != victim.id() || t.state() != TaskState::WaitingBlocking)
        {
            spindle::yield_now();
        }
        victim.cancel();
        assert!(matches!(victim.join(), Err(spindle::JoinError::Cancelled)));
        assert!(dropped.load(Ordering::SeqCst), "the queued job was dropped");
        gate.wait(); // let the blockers go
        for b in blockers {
            b.join().unwrap();
        }
        // The queue is FIFO: a job queued now runs after the cancelled one
        // would have.
        spindle::spawn_blocking(|| ());
        assert!(!ran.load(Ordering::SeqCst), "the cancelled job ran");
    });
}

/// A fiber spinning on an operation that is always ready (a read at end of
/// stream returns 0 at once) yields every `BUDGET` operations, so a ticker
/// keeps ticking. Without the budget the loop below never gives the ticker
/// a turn and ends at its cap.
#[test]
fn a_fiber_spinning_on_an_always_ready_read_lets_a_ticker_tick() {
    spindle::run(|| {
        let ticks = Rc::new(Cell::new(0u32));
        let t = ticks.clone();
        let ticker = spindle::spawn(move || loop {
            spindle::sleep(Duration::from_millis(1));
            t.set(t.get() + 1);
        });
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        let mut a = spindle::io::Async::new(a).unwrap();
        let mut buf = [0; 16];
        let mut reads = 0u64;
        while ticks.get() < 5 && reads < 50_000_000 {
            assert_eq!(a.read(&mut buf).unwrap(), 0);
            reads += 1;
        }
        assert_eq!(ticks.get(), 5, "the ticker starved over {reads} reads");
        ticker.cancel();
    });
}

/// A socket whose receive queue is full, drained one byte per read (each
/// read finds data, none waits): the ticker ticks during the drain.
#[test]
fn a_ticker_ticks_while_a_flooded_socket_is_drained() {
    spindle::run(|| {
        let (a, b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        let chunk = [7u8; 4096];
        let mut queued = 0;
        loop {
            match (&b).write(&chunk) {
                Ok(n) => queued += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("filling the socket: {e}"),
            }
        }
        let ticks = Rc::new(Cell::new(0u32));
        let t = ticks.clone();
        let ticker = spindle::spawn(move || loop {
            spindle::sleep(Duration::from_micros(200));
            t.set(t.get() + 1);
        });
        spindle::yield_now(); // the ticker's first sleep is armed
        let start = Instant::now();
        let mut a = spindle::io::Async::new(a).unwrap();
        let mut byte = [0];
        // 32 KiB of single-byte reads take milliseconds, many ticks' worth,
        // without holding a CPU long enough to slow this binary's other
        // timing-sensitive tests.
        let drain = queued.min(32 * 1024);
        for _ in 0..drain {
            a.read_exact(&mut byte).unwrap();
        }
        let took = start.elapsed();
        assert!(
            ticks.get() > 0,
            "no tick while {drain} of {queued} queued bytes were read one at a time over {took:?}"
        );
        ticker.cancel();
        drop(b);
    });
}
