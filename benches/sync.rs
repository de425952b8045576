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
//! spindle and tokio run on the bench thread; may runs on its one worker
//! (which may pins to the first CPU); the std threads are not pinned.
//! tokio and may are dev-dependencies for these baselines only.
//! `cargo bench --bench sync`; keep the machine otherwise idle.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

/// Criterion's settings for both groups: round trips cost from tens of
/// nanoseconds (fibers) to microseconds (threads), so the default sample
/// count fits and a few seconds of measurement are plenty.
fn configure(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

/// A's side of the timed loop: `iters` round trips through `send`/`recv`,
/// each reply checked, after one untimed round trip. Shared by the
/// synchronous peers (spindle, may, std), whose channels have the same
/// shape; tokio's `await`s are written out below.
fn ping(iters: u64, send: impl Fn(u64), recv: impl Fn() -> u64) -> Duration {
    send(0);
    assert_eq!(recv(), 1, "warm-up round trip");
    let start = Instant::now();
    for i in 0..iters {
        send(i);
        let r = recv();
        assert_eq!(r, i + 1, "round trip {i} came back wrong");
    }
    start.elapsed()
}

fn channel_pingpong(c: &mut Criterion) {
    let mut g = c.benchmark_group("channel_pingpong");
    configure(&mut g);

    let rt = spindle::Runtime::new().unwrap();
    g.bench_function("spindle", |b| {
        b.iter_custom(|iters| {
            rt.block_on(move || {
                use spindle::sync::channel;
                let (to_b, from_a) = channel::<u64>();
                let (to_a, from_b) = channel::<u64>();
                // Ends when A drops `to_b`.
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
            tokio_rt.block_on(async move {
                use tokio::sync::mpsc::unbounded_channel;
                let (to_b, mut from_a) = unbounded_channel::<u64>();
                let (to_a, mut from_b) = unbounded_channel::<u64>();
                let task_b = tokio::spawn(async move {
                    while let Some(v) = from_a.recv().await {
                        to_a.send(v + 1).unwrap();
                    }
                });
                let task_a = tokio::spawn(async move {
                    to_b.send(0).unwrap();
                    assert_eq!(from_b.recv().await, Some(1), "warm-up round trip");
                    let start = Instant::now();
                    for i in 0..iters {
                        to_b.send(i).unwrap();
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

    g.bench_function("std_thread", |b| {
        b.iter_custom(|iters| {
            use std::sync::mpsc::channel;
            let (to_b, from_a) = channel::<u64>();
            let (to_a, from_b) = channel::<u64>();
            let thread_b = std::thread::spawn(move || {
                for v in from_a.iter() {
                    to_a.send(v + 1).unwrap();
                }
            });
            let thread_a = std::thread::spawn(move || {
                ping(iters, |v| to_b.send(v).unwrap(), || from_b.recv().unwrap())
            });
            let elapsed = thread_a.join().unwrap();
            thread_b.join().unwrap();
            elapsed
        })
    });
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
            tokio_rt.block_on(async move {
                use tokio::sync::mpsc::channel;
                let (to_b, mut from_a) = channel::<u64>(1);
                let (to_a, mut from_b) = channel::<u64>(1);
                let task_b = tokio::spawn(async move {
                    while let Some(v) = from_a.recv().await {
                        to_a.send(v + 1).await.unwrap();
                    }
                });
                let task_a = tokio::spawn(async move {
                    to_b.send(0).await.unwrap();
                    assert_eq!(from_b.recv().await, Some(1), "warm-up round trip");
                    let start = Instant::now();
                    for i in 0..iters {
                        to_b.send(i).await.unwrap();
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

    g.bench_function("std_thread", |b| {
        b.iter_custom(|iters| {
            use std::sync::mpsc::sync_channel;
            let (to_b, from_a) = sync_channel::<u64>(1);
            let (to_a, from_b) = sync_channel::<u64>(1);
            let thread_b = std::thread::spawn(move || {
                for v in from_a.iter() {
                    to_a.send(v + 1).unwrap();
                }
            });
            let thread_a = std::thread::spawn(move || {
                ping(iters, |v| to_b.send(v).unwrap(), || from_b.recv().unwrap())
            });
            let elapsed = thread_a.join().unwrap();
            thread_b.join().unwrap();
            elapsed
        })
    });
    g.finish();
}

criterion_group!(benches, channel_pingpong, sync_channel_pingpong);
criterion_main!(benches);
