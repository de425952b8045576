//! `spindle::dump` on a runtime of several workers: every worker's fibers,
//! traced on their own thread; a dump from a plain thread (`DumpHandle`);
//! a worker that does not answer; dumps during heavy cross-worker traffic
//! changing no outcome; and the wait reasons' details (fd and direction,
//! time left on a timer, the fiber joined).

mod common;

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::dump::{fiber, has_frame};
use spindle::sync::shared;
use spindle::{Dump, Runtime, TaskState};

fn runtime(n: usize) -> Runtime {
    Runtime::builder().workers(n).build().expect("runtime")
}

#[inline(never)]
fn far_nap() {
    spindle::sleep(Duration::from_secs(30));
    std::hint::black_box(());
}

#[inline(never)]
fn far_recv(rx: shared::Receiver<u32>) -> u32 {
    std::hint::black_box(rx.recv().unwrap())
}

/// Waits (on a fiber) until `name` is in `state` on some worker.
fn until_state(name: &str, state: TaskState) -> Dump {
    let start = Instant::now();
    loop {
        let d = spindle::dump();
        if d.fibers()
            .iter()
            .any(|f| f.name() == Some(name) && f.state() == state)
        {
            return d;
        }
        assert!(start.elapsed() < common::LONG, "{name} never {state}:\n{d}");
        spindle::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_dump_shows_every_fiber_of_every_worker_with_its_own_frames() {
    let _w = common::watchdog("every_worker");
    let rt = runtime(3);
    rt.block_on(|| {
        let napper = spindle::Builder::new()
            .name("far-nap".into())
            .worker(1)
            .spawn(far_nap)
            .unwrap();
        let (tx, rx) = shared::channel::<u32>();
        let receiver = spindle::Builder::new()
            .name("far-recv".into())
            .worker(2)
            .spawn(move || far_recv(rx))
            .unwrap();
        until_state("far-recv", TaskState::WaitingSync);
        let dump = until_state("far-nap", TaskState::Sleeping);
        let text = dump.to_string();
        assert_eq!(dump.workers(), 3);
        assert!(dump.silent_workers().is_empty(), "{text}");

        let nap = fiber(&dump, "far-nap");
        assert_eq!(nap.worker(), 1, "{text}");
        assert!(has_frame(nap, "far_nap"), "{text}");
        let left = nap.timer().expect("a sleeper has a timer");
        assert!(left <= Duration::from_secs(30) && left > Duration::from_secs(10));
        let recv = fiber(&dump, "far-recv");
        assert_eq!(recv.worker(), 2, "{text}");
        assert!(has_frame(recv, "far_recv"), "{text}");
        let main = fiber(&dump, "main");
        assert_eq!((main.worker(), main.state()), (0, TaskState::Running));

        // Grouped by worker, in worker order.
        let at = |s: &str| text.find(s).unwrap_or_else(|| panic!("{s:?} in\n{text}"));
        assert!(at("worker 0: ") < at("\"main\" [running]"), "{text}");
        assert!(at("\"main\" [running]") < at("worker 1: "), "{text}");
        assert!(
            at("worker 1: ") < at("\"far-nap\" [sleeping, wakes in "),
            "{text}"
        );
        assert!(
            at("worker 2: ") < at("\"far-recv\" [waiting on a sync"),
            "{text}"
        );
        let fibers = dump.fibers();
        assert!(fibers.windows(2).all(|w| w[0].worker() <= w[1].worker()));
        // The short form names the worker on each line.
        let short = format!("{dump:#}");
        assert!(
            short
                .lines()
                .any(|l| l.starts_with("worker 1: fiber ") && l.contains("far-nap")),
            "{short}"
        );

        // The remote fibers were not disturbed: the sleeper still sleeps,
        // the receiver gets exactly what is sent.
        tx.send(41).unwrap();
        assert_eq!(receiver.join().unwrap(), 41);
        napper.cancel();
        assert!(napper.join().is_err());
    });
}

#[test]
fn a_plain_thread_dumps_through_a_handle_and_worker_0_outside_block_on_is_silent() {
    let _w = common::watchdog("handle");
    let rt = runtime(2);
    let handle = rt.dump_handle();
    let idle = handle.dump();
    assert_eq!(idle.silent_workers(), vec![0], "{idle}");
    assert!(idle.to_string().contains("worker 0: not running"), "{idle}");

    let seen = Arc::new(AtomicBool::new(false));
    let watcher = {
        let seen = Arc::clone(&seen);
        thread::spawn(move || loop {
            let d = handle.dump();
            let found =
                d.fibers().iter().any(|f| {
                    f.name() == Some("far-nap") && f.worker() == 1 && has_frame(f, "far_nap")
                }) && d.fibers().iter().any(|f| f.name() == Some("main"));
            if found {
                seen.store(true, Ordering::Release);
                return d;
            }
            thread::sleep(Duration::from_millis(5));
        })
    };
    rt.block_on(|| {
        let h = spindle::Builder::new()
            .name("far-nap".into())
            .worker(1)
            .spawn(far_nap)
            .unwrap();
        while !seen.load(Ordering::Acquire) {
            spindle::sleep(Duration::from_millis(5));
        }
        h.cancel();
        assert!(h.join().is_err());
    });
    let d = watcher.join().unwrap();
    assert!(d.silent_workers().is_empty(), "{d}");
}

#[test]
fn a_worker_busy_in_one_fiber_is_named_instead_of_waited_for() {
    let _w = common::watchdog("busy");
    let rt = runtime(2);
    let handle = rt.dump_handle();
    rt.block_on(|| {
        let go = Arc::new(AtomicBool::new(false));
        let spin = {
            let go = Arc::clone(&go);
            spindle::spawn_on(1, move || {
                go.store(true, Ordering::Release);
                let start = Instant::now();
                // Never reaches a suspension point for 1.5 s.
                while start.elapsed() < Duration::from_millis(1500) {
                    std::hint::spin_loop();
                }
            })
        };
        while !go.load(Ordering::Acquire) {
            spindle::sleep(Duration::from_millis(1));
        }
        // From a fiber of worker 0: its own part directly, worker 1's by
        // message.
        let d = handle.dump_within(Duration::from_millis(100));
        assert_eq!(d.silent_workers(), vec![1], "{d}");
        assert!(
            d.to_string().contains("worker 1: no answer within 0.1 s"),
            "{d}"
        );
        assert!(d.fibers().iter().any(|f| f.name() == Some("main")), "{d}");
        spin.join().unwrap();
        // Free again: it answers.
        assert!(spindle::dump().silent_workers().is_empty());
    });
}

#[test]
fn dumps_during_heavy_cross_worker_traffic_change_no_outcome() {
    let _w = common::watchdog("traffic");
    const PAIRS: usize = 8;
    const ROUNDS: u32 = 2_000;
    let rt = runtime(3);
    let handle = rt.dump_handle();
    let stop = Arc::new(AtomicBool::new(false));
    // A plain thread dumping as fast as it can, meanwhile.
    let outside = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut dumps = 0u32;
            while !stop.load(Ordering::Acquire) {
                let d = handle.dump();
                assert!(d.silent_workers().iter().all(|&w| w == 0), "{d}");
                dumps += 1;
            }
            dumps
        })
    };
    let totals = rt.block_on(|| {
        let mut handles = Vec::new();
        for i in 0..PAIRS {
            let (ping_tx, ping_rx) = shared::channel::<u32>();
            let (pong_tx, pong_rx) = shared::channel::<u32>();
            let (a, b) = (i % 3, (i + 1) % 3);
            handles.push(spindle::spawn_on(a, move || {
                let mut got = 0u64;
                for i in 0..ROUNDS {
                    ping_tx.send(i).unwrap();
                    got += u64::from(pong_rx.recv().unwrap());
                }
                got
            }));
            handles.push(spindle::spawn_on(b, move || {
                let mut got = 0u64;
                while let Ok(i) = ping_rx.recv() {
                    got += u64::from(i);
                    pong_tx.send(i).unwrap();
                }
                got
            }));
        }
        // Fibers dumping from every worker too.
        let dumpers: Vec<_> = (0..3)
            .map(|w| {
                spindle::spawn_on(w, || {
                    let mut seen = 0;
                    for _ in 0..30 {
                        seen += spindle::dump().fibers().len();
                        spindle::yield_now();
                    }
                    seen
                })
            })
            .collect();
        for d in dumpers {
            assert!(d.join().unwrap() > 30, "the dumps saw the ping-pong fibers");
        }
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    stop.store(true, Ordering::Release);
    assert!(outside.join().unwrap() > 0);
    let want = u64::from((0..ROUNDS).sum::<u32>());
    assert!(totals.iter().all(|&t| t == want), "{totals:?}");
}

/// A nonblocking pipe whose write end is full.
fn full_pipe() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds; the result is checked.
    assert_eq!(
        unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK) },
        0
    );
    let buf = [0u8; 4096];
    // SAFETY: writes from a live buffer to the pipe we own.
    while unsafe { libc::write(fds[1], buf.as_ptr().cast(), buf.len()) } > 0 {}
    (fds[0], fds[1])
}

#[test]
fn wait_reasons_name_the_fd_and_direction_the_timer_and_the_fiber_joined() {
    let _w = common::watchdog("reasons");
    spindle::run(|| {
        let (r, w) = full_pipe();
        let mut empty = [0; 2];
        // SAFETY: `empty` has room for the two fds; the result is checked.
        assert_eq!(
            unsafe { libc::pipe2(empty.as_mut_ptr(), libc::O_NONBLOCK) },
            0
        );
        let writer = spindle::Builder::new()
            .name("writer".into())
            .spawn(move || {
                spindle::runtime::wait_writable(w, Some(Instant::now() + Duration::from_secs(20)))
            })
            .unwrap();
        let reader = spindle::Builder::new()
            .name("reader".into())
            .spawn(move || spindle::runtime::wait_readable(empty[0], None))
            .unwrap();
        let sleeper = spindle::Builder::new()
            .name("sleeper".into())
            .spawn(|| spindle::sleep(Duration::from_secs(7)))
            .unwrap();
        let sleeper_id = sleeper.id();
        let joiner = spindle::Builder::new()
            .name("joiner".into())
            .spawn(move || sleeper.join())
            .unwrap();
        spindle::yield_now();
        let dump = spindle::dump();
        let text = dump.to_string();

        let wr = fiber(&dump, "writer");
        assert_eq!(wr.state(), TaskState::WaitingIo);
        assert_eq!(
            wr.waiting_for(),
            Some(&*format!("fd {w} writable")),
            "{text}"
        );
        let left = wr.timer().expect("a wait with a timeout has a timer");
        assert!(left > Duration::from_secs(10) && left <= Duration::from_secs(20));
        assert!(
            text.contains(&format!("[waiting on I/O: fd {w} writable, times out in ")),
            "{text}"
        );

        let rd = fiber(&dump, "reader");
        assert_eq!(
            rd.waiting_for(),
            Some(&*format!("fd {} readable", empty[0])),
            "{text}"
        );
        assert_eq!(rd.timer(), None);
        assert!(
            text.contains(&format!(
                "\"reader\" [waiting on I/O: fd {} readable]:",
                empty[0]
            )),
            "{text}"
        );

        let sl = fiber(&dump, "sleeper");
        let left = sl.timer().expect("a sleeper has a timer");
        assert!(left > Duration::from_secs(3) && left <= Duration::from_secs(7));
        assert!(text.contains("\"sleeper\" [sleeping, wakes in "), "{text}");

        let jn = fiber(&dump, "joiner");
        assert_eq!(
            jn.waiting_for(),
            Some(&*format!("fiber {sleeper_id}")),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "\"joiner\" [waiting on a join: fiber {sleeper_id}]"
            )),
            "{text}"
        );

        // Free them: the reader's pipe gets a byte, the writer's room.
        let mut buf = [0u8; 65536];
        // SAFETY: reads into a live buffer from the pipe we own.
        while unsafe { libc::read(r, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
        writer.join().unwrap().unwrap();
        reader.cancel();
        assert!(reader.join().is_err());
        joiner.cancel();
        assert!(joiner.join().is_err());
        // SAFETY: closing the fds we own.
        unsafe {
            for fd in [r, w, empty[0], empty[1]] {
                libc::close(fd);
            }
        }
    });
}
