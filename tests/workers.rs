//! Many workers: placement at spawn, fibers that never change threads,
//! parallel execution, `Send` handles (join, cancel, panics across
//! threads), and a shutdown that leaves nothing behind.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::child::{is_child, run_child, text};
use spindle::Runtime;

fn runtime(n: usize) -> Runtime {
    Runtime::builder().workers(n).build().expect("runtime")
}

#[test]
fn zero_workers_is_an_error() {
    let e = Runtime::builder().workers(0).build().unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("workers(0)"), "{e}");
}

#[test]
fn the_main_fiber_runs_on_worker_0_on_the_calling_thread() {
    let caller = thread::current().id();
    let rt = runtime(3);
    let (worker, count, tid) = rt.block_on(|| {
        (
            spindle::current_worker(),
            spindle::worker_count(),
            thread::current().id(),
        )
    });
    assert_eq!((worker, count), (0, 3));
    assert_eq!(tid, caller);
    // spindle::run keeps one worker.
    assert_eq!(spindle::run(spindle::worker_count), 1);
}

#[test]
fn each_worker_is_its_own_thread_and_a_fiber_never_changes_threads() {
    let _w = common::watchdog("fiber_thread");
    let rt = runtime(2);
    rt.block_on(|| {
        let main_tid = thread::current().id();
        let h = spindle::spawn_on(1, move || {
            let tid = thread::current().id();
            assert_ne!(tid, main_tid, "worker 1 is another thread");
            assert_eq!(spindle::current_worker(), 1);
            let (mut a, mut b) = UnixStream::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            for i in 0..10_000u32 {
                match i % 100 {
                    0 => spindle::sleep(Duration::from_micros(50)),
                    1 => {
                        // An I/O wait: a local fiber writes after we park.
                        let mut b2 = b.try_clone().unwrap();
                        let w = spindle::spawn(move || b2.write_all(&[7]).unwrap());
                        spindle::runtime::wait_readable(a.as_raw_fd(), None).unwrap();
                        let mut byte = [0];
                        a.read_exact(&mut byte).unwrap();
                        w.join().unwrap();
                    }
                    _ => spindle::yield_now(),
                }
                assert_eq!(thread::current().id(), tid, "switch {i} moved the fiber");
            }
            b.flush().unwrap();
            tid
        });
        // Worker 0's fibers stay on worker 0 meanwhile.
        for _ in 0..1_000 {
            spindle::yield_now();
            assert_eq!(thread::current().id(), main_tid);
        }
        assert_ne!(h.join().unwrap(), main_tid);
    });
}

#[test]
fn two_cpu_bound_fibers_on_two_workers_run_at_the_same_time() {
    // Each fiber spins, never yielding, until it has seen the other one
    // spinning too. On one thread the first would spin for ever (the
    // second never gets the CPU); on two workers both see each other.
    let _w = common::watchdog("parallel");
    let rt = runtime(2);
    let seen = rt.block_on(|| {
        let flags = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
        let spin = |me: usize, flags: Arc<[AtomicBool; 2]>| {
            flags[me].store(true, Ordering::SeqCst);
            let limit = Instant::now() + Duration::from_secs(60);
            let mut spins = 0u64;
            while !flags[1 - me].load(Ordering::SeqCst) {
                spins += 1;
                assert!(Instant::now() < limit, "fiber {me} never saw the other run");
            }
            (spindle::current_worker(), thread::current().id(), spins)
        };
        let f1 = Arc::clone(&flags);
        let other = spindle::spawn_on(1, move || spin(1, f1));
        let here = spin(0, flags);
        (here, other.join().unwrap())
    });
    let ((w0, t0, _), (w1, t1, _)) = seen;
    assert_eq!((w0, w1), (0, 1));
    assert_ne!(t0, t1);
}

#[test]
fn spawn_balanced_of_1000_leaves_no_worker_under_a_third() {
    let _w = common::watchdog("balanced");
    for n in [2usize, 3] {
        let rt = runtime(n);
        let counts = rt.block_on(|| {
            let hs: Vec<_> = (0..1000)
                .map(|_| {
                    spindle::spawn_balanced(|| {
                        spindle::sleep(Duration::from_millis(100));
                        spindle::current_worker()
                    })
                })
                .collect();
            let mut counts = HashMap::new();
            for h in hs {
                *counts.entry(h.join().unwrap()).or_insert(0usize) += 1;
            }
            counts
        });
        for w in 0..n {
            let c = counts.get(&w).copied().unwrap_or(0);
            assert!(
                c >= 1000 / n / 3,
                "{n} workers: worker {w} got {c} of 1000 ({counts:?})"
            );
        }
    }
}

#[test]
fn a_remote_panic_reaches_its_joiner_with_the_payload() {
    let rt = runtime(2);
    rt.block_on(|| {
        let n = std::hint::black_box(7);
        let h = spindle::spawn_on(1, move || -> u32 { panic!("remote {n}") });
        let e = h.join().unwrap_err();
        assert!(e.is_panic());
        assert_eq!(*e.into_panic().downcast::<String>().unwrap(), "remote 7");
        // Worker 1 is fine afterwards.
        assert_eq!(spindle::spawn_on(1, || 5).join().unwrap(), 5);
    });
}

#[test]
fn remote_cancel_unwinds_the_fiber_on_its_worker() {
    let _w = common::watchdog("remote_cancel");
    static DROPPED: AtomicUsize = AtomicUsize::new(0);
    struct Guard;
    impl Drop for Guard {
        fn drop(&mut self) {
            DROPPED.fetch_add(1, Ordering::SeqCst);
        }
    }
    let rt = runtime(2);
    rt.block_on(|| {
        // Cancelled while asleep on worker 1.
        let h = spindle::spawn_on(1, || {
            let _g = Guard;
            spindle::sleep(Duration::from_secs(3600));
        });
        while spindle::spawn_on(1, || ()).join().is_err() {}
        h.cancel();
        assert!(h.join().unwrap_err().is_cancelled());
        assert_eq!(DROPPED.load(Ordering::SeqCst), 1);
        // Cancelled at once, whether or not worker 1 has created it yet.
        let h = spindle::spawn_on(1, || spindle::sleep(Duration::from_secs(3600)));
        h.cancel();
        assert!(h.join().unwrap_err().is_cancelled());
        // Cancelled from a fiber of worker 1, the fiber being on worker 0.
        let local = spindle::spawn_balanced(|| ());
        local.join().unwrap();
        let target = spindle::Builder::new()
            .worker(0)
            .spawn(|| spindle::sleep(Duration::from_secs(3600)))
            .unwrap();
        let target = Arc::new(target);
        let t2 = Arc::clone(&target);
        spindle::spawn_on(1, move || t2.cancel()).join().unwrap();
        let target = Arc::try_unwrap(target).unwrap();
        assert!(target.join().unwrap_err().is_cancelled());
    });
}

#[test]
fn a_plain_thread_joins_and_cancels_fibers() {
    let _w = common::watchdog("plain_thread");
    let rt = runtime(2);
    rt.block_on(|| {
        let h = spindle::spawn_on(1, || {
            spindle::sleep(Duration::from_millis(20));
            String::from("from worker 1")
        });
        let sleeper = spindle::spawn_on(0, || spindle::sleep(Duration::from_secs(3600)));
        let t = thread::spawn(move || {
            sleeper.cancel();
            (
                h.join().unwrap(),
                sleeper.join().unwrap_err().is_cancelled(),
            )
        });
        // The plain thread's join of a worker-0 fiber needs worker 0 to run:
        // wait in a fiber-friendly way.
        while !t.is_finished() {
            spindle::sleep(Duration::from_millis(1));
        }
        let (v, cancelled) = t.join().unwrap();
        assert_eq!(v, "from worker 1");
        assert!(cancelled);
    });
}

#[test]
fn fibers_join_each_other_across_workers_both_ways() {
    let _w = common::watchdog("cross_join");
    let rt = runtime(2);
    let v = rt.block_on(|| {
        let on0 = spindle::spawn_on(0, || {
            spindle::sleep(Duration::from_millis(10));
            20
        });
        let on1 = spindle::spawn_on(1, move || on0.join().unwrap() + 1);
        on1.join().unwrap() * 2
    });
    assert_eq!(v, 42);
}

#[test]
fn a_runtime_with_workers_runs_block_on_again_after_a_shutdown() {
    let rt = runtime(2);
    for round in 0..3 {
        let v = rt.block_on(move || spindle::spawn_on(1, move || round * 10).join().unwrap());
        assert_eq!(v, round * 10);
    }
}

#[test]
fn the_deadlock_report_still_fires_with_workers() {
    let rt = runtime(2);
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(|| {
            // Worker 1 has a fiber too, busy sleeping: not worker 0's waker.
            let _h = spindle::spawn_on(1, || spindle::sleep(Duration::from_secs(3600)));
            let (_tx, rx) = spindle::sync::channel::<u8>();
            rx.recv().unwrap();
        })
    }));
    let msg = r.unwrap_err();
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("all fibers are asleep - deadlock!"), "{msg}");
    assert!(
        msg.contains("spindle::sync::Receiver::recv") || msg.contains("waiting on a sync"),
        "{msg}"
    );
}

fn count_dir(dir: &str) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn shutdown_with_sleepers_on_every_worker_frees_everything() {
    // In a child process: counting this process's threads and fds must not
    // see the other tests'.
    const VAR: &str = "SPINDLE_WORKERS_CHILD";
    if !is_child(VAR, "shutdown") {
        let out = run_child(
            VAR,
            "shutdown_with_sleepers_on_every_worker_frees_everything",
            "shutdown",
        );
        assert!(out.status.success(), "{}", text(&out));
        return;
    }
    static DROPPED: AtomicUsize = AtomicUsize::new(0);
    struct Guard;
    impl Drop for Guard {
        fn drop(&mut self) {
            DROPPED.fetch_add(1, Ordering::SeqCst);
        }
    }
    let threads = count_dir("/proc/self/task");
    let fds = count_dir("/proc/self/fd");
    {
        let rt = runtime(3);
        assert_eq!(count_dir("/proc/self/task"), threads + 2);
        rt.block_on(|| {
            for w in 0..3 {
                for _ in 0..100 {
                    spindle::spawn_on(w, || {
                        let _g = Guard;
                        spindle::sleep(Duration::from_secs(3600));
                    });
                }
            }
            // Let every worker create its fibers and put them to sleep.
            while spindle::spawn_on(1, || ()).join().is_err()
                || spindle::spawn_on(2, || ()).join().is_err()
            {}
            spindle::sleep(Duration::from_millis(20));
        });
        // block_on returned: every fiber of every worker has unwound.
        assert_eq!(DROPPED.load(Ordering::SeqCst), 300);
    }
    // The runtime is gone: its threads are joined, its fds closed. (A
    // joined thread may linger in /proc for a moment under qemu-user, whose
    // host thread ends a little after the guest's join returns.)
    let limit = Instant::now() + Duration::from_secs(10);
    while count_dir("/proc/self/task") > threads && Instant::now() < limit {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(count_dir("/proc/self/task"), threads);
    assert_eq!(count_dir("/proc/self/fd"), fds);
}

#[test]
fn shared_channel_four_producers_on_workers_each_arrive_once_in_order() {
    let _w = common::watchdog("shared_mpsc");
    const PER: u64 = 100_000;
    let rt = runtime(2);
    let seen = rt.block_on(|| {
        let (tx, rx) = spindle::sync::shared::channel::<(u64, u64)>();
        let producers: Vec<_> = (0..4u64)
            .map(|p| {
                let tx = tx.clone();
                spindle::spawn_balanced(move || {
                    for i in 0..PER {
                        tx.send((p, i)).unwrap();
                        if i % 1000 == 0 {
                            spindle::yield_now();
                        }
                    }
                    spindle::current_worker()
                })
            })
            .collect();
        drop(tx);
        let mut next = [0u64; 4];
        for (p, i) in rx.iter() {
            assert_eq!(i, next[p as usize], "producer {p} out of order");
            next[p as usize] += 1;
        }
        let workers: Vec<usize> = producers.into_iter().map(|h| h.join().unwrap()).collect();
        (next, workers)
    });
    assert_eq!(seen.0, [PER; 4], "every message exactly once");
    assert!(seen.1.contains(&0) && seen.1.contains(&1), "{:?}", seen.1);
}

#[test]
fn shared_channel_between_a_plain_thread_and_a_fiber_both_ways() {
    let _w = common::watchdog("shared_thread");
    let rt = runtime(2);
    rt.block_on(|| {
        let (to_fiber, fiber_rx) = spindle::sync::shared::channel::<u32>();
        let (fiber_tx, to_thread) = spindle::sync::shared::channel::<u32>();
        // The fiber on worker 1 parks in recv; the plain thread blocks in
        // its recv: each wakes the other in turn.
        let echo = spindle::spawn_on(1, move || {
            let mut n = 0;
            while let Ok(v) = fiber_rx.recv() {
                fiber_tx.send(v + 1).unwrap();
                n += 1;
            }
            n
        });
        let thread = thread::spawn(move || {
            let mut v = 0;
            for _ in 0..1000 {
                to_fiber.send(v).unwrap();
                v = to_thread.recv().unwrap();
            }
            drop(to_fiber);
            assert!(to_thread.recv().is_err(), "the fiber's sender is gone");
            v
        });
        assert_eq!(echo.join().unwrap(), 1000);
        while !thread.is_finished() {
            spindle::sleep(Duration::from_millis(1));
        }
        assert_eq!(thread.join().unwrap(), 1000);
    });
}

/// A small deterministic generator (xorshift), so a failing run can be
/// replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn seeded_stress_of_cross_worker_spawns_joins_cancels_and_sends() {
    let _w = common::watchdog("stress");
    let seed = std::env::var("SPINDLE_STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("stress seed {seed} (rerun with SPINDLE_STRESS_SEED={seed})");
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        let rt = runtime(3);
        rt.block_on(move || {
            let mut rng = Rng(seed);
            let (tx, rx) = spindle::sync::shared::channel::<u64>();
            let mut handles = Vec::new();
            let mut expected_sum = 0u64;
            for i in 0..300u64 {
                let worker = (rng.next() % 3) as usize;
                let kind = rng.next() % 4;
                let naps = rng.next() % 3;
                let tx = tx.clone();
                let h = spindle::spawn_on(worker, move || {
                    for _ in 0..naps {
                        spindle::sleep(Duration::from_micros(200));
                    }
                    match kind {
                        0 => panic!("planned panic {i}"),
                        1 => spindle::sleep(Duration::from_secs(3600)), // cancelled below
                        _ => tx.send(i).unwrap(),
                    }
                    i
                });
                handles.push((i, kind, h));
                if kind >= 2 {
                    expected_sum += i;
                }
            }
            drop(tx);
            // Join (or cancel) from fibers of random workers, in a random
            // order; results come back over a shared channel.
            let (done_tx, done_rx) = spindle::sync::shared::channel::<(u64, &'static str)>();
            while !handles.is_empty() {
                let (i, kind, h) = handles.swap_remove((rng.next() as usize) % handles.len());
                let joiner = (rng.next() % 3) as usize;
                let done_tx = done_tx.clone();
                spindle::spawn_on(joiner, move || {
                    if kind == 1 {
                        h.cancel();
                    }
                    let what = match h.join() {
                        Ok(v) if v == i && kind >= 2 => "ok",
                        Err(e) if e.is_panic() && kind == 0 => "panicked",
                        Err(e) if e.is_cancelled() && kind == 1 => "cancelled",
                        other => panic!("fiber {i} (kind {kind}): unexpected {other:?}"),
                    };
                    done_tx.send((i, what)).unwrap();
                });
            }
            drop(done_tx);
            let outcomes: Vec<_> = done_rx.iter().collect();
            assert_eq!(outcomes.len(), 300, "every fiber joined exactly once");
            assert_eq!(
                rx.iter().sum::<u64>(),
                expected_sum,
                "every send arrived once"
            );
        });
    }));
    if let Err(p) = outcome {
        eprintln!("stress test failed with seed {seed}");
        panic::resume_unwind(p);
    }
}

#[test]
fn a_fiber_cancelled_in_a_shared_recv_unwinds_and_the_channel_stays_usable() {
    let _w = common::watchdog("shared_cancel");
    let rt = runtime(2);
    rt.block_on(|| {
        let (tx, rx) = spindle::sync::shared::channel::<u32>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let r2 = Arc::clone(&rx);
        let waiter = spindle::spawn_on(1, move || r2.lock().unwrap().recv());
        // Let it park in recv (if it has not yet, the cancel finds it
        // before its first suspension point: the outcome is the same).
        spindle::sleep(Duration::from_millis(20));
        waiter.cancel();
        assert!(waiter.join().unwrap_err().is_cancelled());
        // Its waker is gone; a plain thread receives the next message. (The
        // std mutex around the receiver was poisoned by the unwind.)
        tx.send(9).unwrap();
        let got = thread::spawn(move || {
            let rx = rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            rx.recv().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(got, 9);
    });
}
