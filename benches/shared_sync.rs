//! `spindle::sync::shared` across two workers beside its peers across two
//! threads, on the same work.
//!
//! - `shared_channel_pingpong`: the round trip of `benches/sync.rs` (A
//!   sends a number to B, B sends it back plus one), with A and B on
//!   different threads: spindle fibers on workers 0 and 1 with
//!   `sync::shared::channel`; tokio's multi-thread runtime with two workers
//!   (two spawned tasks, `unbounded_channel`; tokio decides where they
//!   run); two spawned OS threads with crossbeam-channel's `unbounded` and
//!   with std's `mpsc::channel`. One iteration is one round trip: two sends and
//!   two cross-thread wake-ups.
//! - `shared_mutex`: `uncontended`: one lock, increment, unlock on the
//!   bench thread, nobody else around: `sync::shared::Mutex`,
//!   `std::sync::Mutex`, and the single-runtime `spindle::sync::Mutex`
//!   (which needs no runtime when it need not wait). `contended`: two
//!   contenders each do `iters` lock-increment-unlocks of one counter: two
//!   fibers on workers 0 and 1 with `sync::shared::Mutex`, and two OS
//!   threads with it and with `std::sync::Mutex`. The time is per
//!   iteration, i.e. per *pair* of lock operations. spindle's lock is
//!   strictly FIFO (each unlock hands the lock to the parked waiter, who
//!   must be woken); std's lets the unlocker take it back at once, which
//!   under contention is much faster and not fair.
//!
//! `cargo bench --bench shared_sync`; keep the machine otherwise idle.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

use common::threads::{std_thread_pingpong, thread_ping};
use common::tokio_peer::tokio_ping;
use common::{configure, ping};

mod common;

fn shared_channel_pingpong(c: &mut Criterion) {
    let mut g = c.benchmark_group("shared_channel_pingpong");
    configure(&mut g);

    let rt = spindle::Runtime::builder().workers(2).build().unwrap();
    g.bench_function("spindle_2_workers", |b| {
        b.iter_custom(|iters| {
            rt.block_on(move || {
                use spindle::sync::shared::channel;
                let (to_b, from_a) = channel::<u64>();
                let (to_a, from_b) = channel::<u64>();
                // Ends when A drops `to_b`.
                let task_b = spindle::spawn_on(1, move || {
                    for v in from_a.iter() {
                        to_a.send(v + 1).unwrap();
                    }
                });
                let task_a = spindle::spawn_on(0, move || {
                    ping(iters, |v| to_b.send(v).unwrap(), || from_b.recv().unwrap())
                });
                let elapsed = task_a.join().unwrap();
                task_b.join().unwrap();
                elapsed
            })
        })
    });

    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    g.bench_function("tokio_multi_thread_2_workers", |b| {
        b.iter_custom(|iters| {
            use tokio::sync::mpsc::unbounded_channel;
            tokio_rt.block_on(tokio_ping(
                iters,
                unbounded_channel::<u64>(),
                unbounded_channel::<u64>(),
            ))
        })
    });

    g.bench_function("crossbeam_std_thread", |b| {
        b.iter_custom(|iters| {
            use crossbeam_channel::unbounded;
            thread_ping(
                iters,
                unbounded::<u64>(),
                unbounded::<u64>(),
                |s, v| s.send(v).unwrap(),
                |r| r.recv().ok(),
            )
        })
    });

    std_thread_pingpong(&mut g);
    g.finish();
}

/// Two contenders each add 1 `iters` times through `bump`, started
/// together; returns the time until both are done, and checks the sum.
fn contend_threads(iters: u64, bump: impl Fn() -> u64 + Send + Sync + 'static) -> Duration {
    let bump = Arc::new(bump);
    let start_line = Arc::new(std::sync::Barrier::new(3));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (bump, start_line) = (Arc::clone(&bump), Arc::clone(&start_line));
            std::thread::spawn(move || {
                start_line.wait();
                (0..iters).for_each(|_| {
                    bump();
                })
            })
        })
        .collect();
    start_line.wait();
    let start = Instant::now();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let elapsed = start.elapsed();
    assert_eq!(bump(), 2 * iters + 1, "an update was lost");
    elapsed
}

fn shared_mutex(c: &mut Criterion) {
    let mut g = c.benchmark_group("shared_mutex");
    configure(&mut g);

    let m = spindle::sync::shared::Mutex::new(0u64);
    g.bench_function("uncontended/spindle_shared", |b| {
        b.iter(|| *m.lock().unwrap() += 1)
    });
    let m = std::sync::Mutex::new(0u64);
    g.bench_function("uncontended/std", |b| b.iter(|| *m.lock().unwrap() += 1));
    let m = spindle::sync::Mutex::new(0u64);
    g.bench_function("uncontended/spindle_sync", |b| b.iter(|| *m.lock() += 1));

    let rt = spindle::Runtime::builder().workers(2).build().unwrap();
    g.bench_function("contended/spindle_shared_2_workers", |b| {
        b.iter_custom(|iters| {
            rt.block_on(move || {
                let m = Arc::new(spindle::sync::shared::Mutex::new(0u64));
                let ready = spindle::sync::shared::WaitGroup::new();
                ready.add(2);
                let go = Arc::new(spindle::sync::shared::Semaphore::new(0));
                let fibers: Vec<_> = (0..2)
                    .map(|w| {
                        let (m, ready, go) = (Arc::clone(&m), ready.clone(), Arc::clone(&go));
                        spindle::spawn_on(w, move || {
                            ready.done();
                            go.acquire().forget();
                            for _ in 0..iters {
                                *m.lock().unwrap() += 1;
                            }
                        })
                    })
                    .collect();
                ready.wait();
                let start = Instant::now();
                go.add_permits(2);
                fibers.into_iter().for_each(|f| f.join().unwrap());
                let elapsed = start.elapsed();
                assert_eq!(*m.lock().unwrap(), 2 * iters, "an update was lost");
                elapsed
            })
        })
    });
    g.bench_function("contended/spindle_shared_std_thread", |b| {
        b.iter_custom(|iters| {
            let m = spindle::sync::shared::Mutex::new(0u64);
            contend_threads(iters, move || {
                let mut g = m.lock().unwrap();
                *g += 1;
                *g
            })
        })
    });
    g.bench_function("contended/std_std_thread", |b| {
        b.iter_custom(|iters| {
            let m = std::sync::Mutex::new(0u64);
            contend_threads(iters, move || {
                let mut g = m.lock().unwrap();
                *g += 1;
                *g
            })
        })
    });
    g.finish();
}

criterion_group!(benches, shared_channel_pingpong, shared_mutex);
criterion_main!(benches);
