//! Channels beside their peers, on the same work: ping-pong between two
//! tasks, A and B. A sends a number to B over one channel, B sends it back
//! plus one over another, and A checks it. One iteration is one round trip
//! (two sends, two receives, two wake-ups), so criterion's time is the time
//! per round trip.
//!
//! - `channel_pingpong`: unbounded channels. spindle (two fibers,
//!   `spindle::sync::channel`), tokio current-thread (two tasks,
//!   `tokio::sync::mpsc::unbounded_channel`), may with one worker (two
//!   coroutines, `may::sync::mpsc::channel`), and two OS threads with
//!   `std::sync::mpsc::channel`.
//! - `sync_channel_pingpong`: the same with channels bounded to one message:
//!   `spindle::sync::sync_channel(1)`, `tokio::sync::mpsc::channel(1)`,
//!   `std::sync::mpsc::sync_channel(1)`. may has no bounded channel (its
//!   `sync` module offers unbounded `mpsc`, `spsc` and `mpmc`), so it is
//!   only in the first group.
//!
//! Why unbounded is the main comparison: `spindle::sync::channel`, std's
//! `channel` and may's `mpsc::channel` are all unbounded with a `send` that
//! never waits, and tokio's `unbounded_channel` is the one whose `send` is a
//! plain call as well. Ping-pong has at most one message in flight, so a
//! bound of one never makes a sender wait either, but tokio's bounded `send`
//! still goes through its semaphore (an `await` on a permit) and spindle's
//! through its room check and sender queue: a different code path, measured
//! on its own in the second group.
//!
//! A and B are both spawned tasks in every runtime (not the `block_on`
//! future or main fiber), and A starts the clock only after one untimed
//! round trip, so B is running and parked in `recv` when timing starts. The
//! spawns and the teardown (dropping A's sender ends B's loop; B is joined)
//! are not timed (`iter_custom`).
//!
//! - `select_pingpong`: the same round trip, but B waits on *two* channels
//!   at once and A alternates between them; B replies on a third. spindle
//!   (`spindle::select!`), tokio current-thread (a `poll_fn` that polls both
//!   receivers, which is what `tokio::select!` expands to, without its
//!   random start; the "macros" feature is not worth a proc-macro build
//!   here), and two OS threads with crossbeam-channel's `select!` (the
//!   syntax spindle's copies). `spindle_recv` is the plain one-channel
//!   round trip in the same run, so the ratio is the price of the select.
//! - `rwlock`: `uncontended`: one write (increment) and one read per
//!   iteration, nobody else around: spindle, tokio's `RwLock` (awaited in
//!   one task), `std::sync::RwLock`. `writer_handoff`: two tasks each take
//!   the write lock, yield while holding it, and release it; every yield
//!   lets the other queue, so every release is a handoff to a parked
//!   waiter: spindle and tokio (std threads cannot yield while holding).
//!
//! spindle and tokio run on the bench thread; may runs on its one worker
//! (which may pins to the first CPU); the std threads are not pinned.
//! tokio and may are dev-dependencies for these baselines only.
//! `cargo bench --bench sync`; keep the machine otherwise idle.

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};

use common::threads::{std_thread_pingpong, thread_ping};
use common::tokio_peer::tokio_ping;
use common::{configure, ping};

mod common;

/// The round trip over two `spindle::sync::channel`s, A and B both
/// spawned fibers; run on a fiber of the runtime.
fn spindle_channel_ping(iters: u64) -> std::time::Duration {
    use spindle::sync::channel;
    let (to_b, from_a) = channel::<u64>();
    let (to_a, from_b) = channel::<u64>();
    // Ends when A drops `to_b`.
    let task_b = spindle::spawn(move || {
        for v in from_a.iter() {
            to_a.send(v + 1).unwrap();
        }
    });
    let task_a =
        spindle::spawn(move || ping(iters, |v| to_b.send(v).unwrap(), || from_b.recv().unwrap()));
    let elapsed = task_a.join().unwrap();
    task_b.join().unwrap();
    elapsed
}

fn channel_pingpong(c: &mut Criterion) {
    let mut g = c.benchmark_group("channel_pingpong");
    configure(&mut g);

    let rt = spindle::Runtime::new().unwrap();
    g.bench_function("spindle", |b| {
        b.iter_custom(|iters| rt.block_on(move || spindle_channel_ping(iters)))
    });

    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    g.bench_function("tokio_current_thread", |b| {
        b.iter_custom(|iters| {
            use tokio::sync::mpsc::unbounded_channel;
            tokio_rt.block_on(tokio_ping(
                iters,
                unbounded_channel::<u64>(),
                unbounded_channel::<u64>(),
            ))
        })
    });

    may::config().set_workers(1);
    g.bench_function("may_1_worker", |b| {
        b.iter_custom(|iters| {
            use may::sync::mpsc::channel;
            let (to_b, from_a) = channel::<u64>();
            let (to_a, from_b) = channel::<u64>();
            let body_b = move || {
                for v in from_a.iter() {
                    to_a.send(v + 1).unwrap();
                }
            };
            let body_a = move || ping(iters, |v| to_b.send(v).unwrap(), || from_b.recv().unwrap());
            // SAFETY: neither closure touches thread-local storage or
            // blocks the thread, as may requires: they only use may's
            // channels (which park the coroutine), arithmetic and the clock.
            let (task_b, task_a) =
                unsafe { (may::coroutine::spawn(body_b), may::coroutine::spawn(body_a)) };
            let elapsed = task_a.join().unwrap();
            task_b.join().unwrap();
            elapsed
        })
    });

    std_thread_pingpong(&mut g);
    g.finish();
}

fn sync_channel_pingpong(c: &mut Criterion) {
    let mut g = c.benchmark_group("sync_channel_pingpong");
    configure(&mut g);

    let rt = spindle::Runtime::new().unwrap();
    g.bench_function("spindle", |b| {
        b.iter_custom(|iters| {
            rt.block_on(move || {
                use spindle::sync::sync_channel;
                let (to_b, from_a) = sync_channel::<u64>(1);
                let (to_a, from_b) = sync_channel::<u64>(1);
                let task_b = spindle::spawn(move || {
                    for v in from_a.iter() {
                        to_a.send(v + 1).unwrap();
                    }
                });
                let task_a = spindle::spawn(move || {
                    ping(iters, |v| to_b.send(v).unwrap(), || from_b.recv().unwrap())
                });
                let elapsed = task_a.join().unwrap();
                task_b.join().unwrap();
                elapsed
            })
        })
    });

    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    g.bench_function("tokio_current_thread", |b| {
        b.iter_custom(|iters| {
            use tokio::sync::mpsc::channel;
            tokio_rt.block_on(tokio_ping(iters, channel::<u64>(1), channel::<u64>(1)))
        })
    });

    g.bench_function("std_thread", |b| {
        b.iter_custom(|iters| {
            use std::sync::mpsc::sync_channel;
            thread_ping(
                iters,
                sync_channel::<u64>(1),
                sync_channel::<u64>(1),
                |s, v| s.send(v).unwrap(),
                |r| r.recv().ok(),
            )
        })
    });
    g.finish();
}

fn select_pingpong(c: &mut Criterion) {
    let mut g = c.benchmark_group("select_pingpong");
    configure(&mut g);

    let rt = spindle::Runtime::new().unwrap();
    g.bench_function("spindle", |b| {
        b.iter_custom(|iters| {
            rt.block_on(move || {
                use spindle::sync::channel;
                let (to_b1, from_a1) = channel::<u64>();
                let (to_b2, from_a2) = channel::<u64>();
                let (to_a, from_b) = channel::<u64>();
                // Ends when A drops its senders.
                let task_b = spindle::spawn(move || loop {
                    let v = spindle::select! {
                        recv(from_a1) -> v => v,
                        recv(from_a2) -> v => v,
                    };
                    match v {
                        Ok(v) => to_a.send(v + 1).unwrap(),
                        Err(_) => break,
                    }
                });
                let task_a = spindle::spawn(move || {
                    let send = |v: u64| {
                        let to = if v % 2 == 0 { &to_b1 } else { &to_b2 };
                        to.send(v).unwrap()
                    };
                    ping(iters, send, || from_b.recv().unwrap())
                });
                let elapsed = task_a.join().unwrap();
                task_b.join().unwrap();
                elapsed
            })
        })
    });

    g.bench_function("spindle_recv", |b| {
        b.iter_custom(|iters| rt.block_on(move || spindle_channel_ping(iters)))
    });

    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    g.bench_function("tokio_current_thread", |b| {
        b.iter_custom(|iters| {
            tokio_rt.block_on(async move {
                use std::task::Poll;
                use tokio::sync::mpsc::unbounded_channel;
                let (to_b1, mut from_a1) = unbounded_channel::<u64>();
                let (to_b2, mut from_a2) = unbounded_channel::<u64>();
                let (to_a, mut from_b) = unbounded_channel::<u64>();
                let task_b = tokio::spawn(async move {
                    loop {
                        let v = std::future::poll_fn(|cx| {
                            if let Poll::Ready(v) = from_a1.poll_recv(cx) {
                                return Poll::Ready(v);
                            }
                            from_a2.poll_recv(cx)
                        })
                        .await;
                        match v {
                            Some(v) => to_a.send(v + 1).unwrap(),
                            None => break,
                        }
                    }
                });
                let task_a = tokio::spawn(async move {
                    to_b1.send(0).unwrap();
                    assert_eq!(from_b.recv().await, Some(1), "warm-up round trip");
                    let start = Instant::now();
                    for i in 0..iters {
                        let to = if i % 2 == 0 { &to_b1 } else { &to_b2 };
                        to.send(i).unwrap();
                        let r = from_b.recv().await;
                        assert_eq!(r, Some(i + 1), "round trip {i} came back wrong");
                    }
                    start.elapsed()
                });
                let elapsed = task_a.await.unwrap();
                task_b.await.unwrap();
                elapsed
            })
        })
    });

    g.bench_function("crossbeam_std_thread", |b| {
        b.iter_custom(|iters| {
            use crossbeam_channel::unbounded;
            let (to_b1, from_a1) = unbounded::<u64>();
            let (to_b2, from_a2) = unbounded::<u64>();
            let (to_a, from_b) = unbounded::<u64>();
            let thread_b = std::thread::spawn(move || loop {
                let v = crossbeam_channel::select! {
                    recv(from_a1) -> v => v,
                    recv(from_a2) -> v => v,
                };
                match v {
                    Ok(v) => to_a.send(v + 1).unwrap(),
                    Err(_) => break,
                }
            });
            let thread_a = std::thread::spawn(move || {
                let send = |v: u64| {
                    let to = if v % 2 == 0 { &to_b1 } else { &to_b2 };
                    to.send(v).unwrap()
                };
                ping(iters, send, || from_b.recv().unwrap())
            });
            let elapsed = thread_a.join().unwrap();
            thread_b.join().unwrap();
            elapsed
        })
    });
    g.finish();
}

fn rwlock(c: &mut Criterion) {
    use std::hint::black_box;
    let mut g = c.benchmark_group("rwlock");
    configure(&mut g);

    let rt = spindle::Runtime::new().unwrap();
    g.bench_function("uncontended/spindle", |b| {
        b.iter_custom(|iters| {
            rt.block_on(move || {
                let lock = spindle::sync::RwLock::new(0u64);
                let start = Instant::now();
                for _ in 0..iters {
                    *lock.write() += 1;
                    black_box(*lock.read());
                }
                start.elapsed()
            })
        })
    });
    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    g.bench_function("uncontended/tokio_current_thread", |b| {
        b.iter_custom(|iters| {
            tokio_rt.block_on(async move {
                let lock = tokio::sync::RwLock::new(0u64);
                let start = Instant::now();
                for _ in 0..iters {
                    *lock.write().await += 1;
                    black_box(*lock.read().await);
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("uncontended/std", |b| {
        b.iter_custom(|iters| {
            let lock = std::sync::RwLock::new(0u64);
            let start = Instant::now();
            for _ in 0..iters {
                *lock.write().unwrap() += 1;
                black_box(*lock.read().unwrap());
            }
            start.elapsed()
        })
    });

    g.bench_function("writer_handoff/spindle", |b| {
        b.iter_custom(|iters| {
            rt.block_on(move || {
                use std::rc::Rc;
                let lock = Rc::new(spindle::sync::RwLock::new(0u64));
                let start = Instant::now();
                let tasks: Vec<_> = (0..2)
                    .map(|_| {
                        let lock = Rc::clone(&lock);
                        spindle::spawn(move || {
                            for _ in 0..iters / 2 {
                                let mut g = lock.write();
                                *g += 1;
                                spindle::yield_now();
                            }
                        })
                    })
                    .collect();
                for t in spindle::join_all(tasks) {
                    t.unwrap();
                }
                let elapsed = start.elapsed();
                assert_eq!(*lock.read(), iters / 2 * 2);
                elapsed
            })
        })
    });
    g.bench_function("writer_handoff/tokio_current_thread", |b| {
        b.iter_custom(|iters| {
            tokio_rt.block_on(async move {
                use std::sync::Arc;
                let lock = Arc::new(tokio::sync::RwLock::new(0u64));
                let start = Instant::now();
                let tasks: Vec<_> = (0..2)
                    .map(|_| {
                        let lock = Arc::clone(&lock);
                        tokio::spawn(async move {
                            for _ in 0..iters / 2 {
                                let mut g = lock.write().await;
                                *g += 1;
                                tokio::task::yield_now().await;
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                let elapsed = start.elapsed();
                assert_eq!(*lock.read().await, iters / 2 * 2);
                elapsed
            })
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    channel_pingpong,
    sync_channel_pingpong,
    select_pingpong,
    rwlock
);
criterion_main!(benches);
