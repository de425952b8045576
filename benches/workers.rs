//! Work that crosses worker threads, beside its peers on the same work.
//!
//! - `cross_worker_pingpong`: A sends a number to B, B sends it back plus
//!   one, A checks it; one iteration is one round trip (two sends, two
//!   receives, two wake-ups). A is the main fiber (worker 0), B a fiber on
//!   worker 1, over `spindle::sync::shared::channel`:
//!   - `spindle_2_workers`: both workers sleep in epoll whenever their fiber
//!     waits, so every message is a `Wake` in the other worker's inbox plus
//!     an eventfd write that wakes its thread;
//!   - `spindle_2_workers_busy`: the same, with one more fiber on each
//!     worker that only yields, so no worker ever sleeps: a wake-up is the
//!     inbox push alone, taken between two rounds (no system call);
//!   - `spindle_same_worker`: A and B both on worker 0 (the same shared
//!     channel, woken directly: no inbox), the floor of the two above;
//!   - `tokio_multi_thread_2`: two tasks of a 2-worker multi-thread runtime
//!     over `tokio::sync::mpsc::unbounded_channel`; tokio places and steals
//!     tasks itself (a woken task goes to its waker's worker's LIFO slot),
//!     so A and B may well run on one thread;
//!   - `tokio_two_threads`: A and B each in a current-thread runtime on a
//!     thread of its own (the same tokio channel), so every message does
//!     cross threads, as spindle's do;
//!   - `crossbeam_threads`: two OS threads over `crossbeam_channel::unbounded`.
//! - `remote_spawn_join`: spawn an empty task on *another* worker thread
//!   and join it, from a 2-worker runtime: spindle's `spawn_on(1, ..)` from
//!   worker 0 (a `Run` message into worker 1's inbox, the fiber created
//!   there, and its completion sent back as a remote wake-up: one remote
//!   round trip, eventfd writes included whenever a worker was asleep),
//!   beside `spawn_on(0, ..)` (the same `Send` handle, created locally)
//!   and tokio's multi-thread runtime with 2 workers, spawning from
//!   `block_on` (its inject queue) and awaiting.
//!
//! What one remote wake costs follows from the first group: half of a
//! `spindle_2_workers` round trip is one message and one remote wake of a
//! sleeping worker, end to end; half of `spindle_2_workers_busy` is the
//! same for a worker that is awake; `spindle_same_worker` is the local
//! floor (BENCHMARKS.md, "Cross-worker").
//!
//! tokio and crossbeam-channel are dev-dependencies for these baselines
//! only. `cargo bench --bench workers`; keep the machine otherwise idle.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

use common::threads::echo_thread;
use common::tokio_peer::{tokio_echo, tokio_ping, tokio_ping_a, tokio_spawn_join};
use common::{ping, timed};

mod common;

/// A fiber on `worker` that yields until `stop` is set, so the worker never
/// sleeps in epoll.
fn spinner(worker: usize, stop: &Arc<AtomicBool>) -> spindle::SendJoinHandle<()> {
    let stop = Arc::clone(stop);
    spindle::spawn_on(worker, move || {
        while !stop.load(Ordering::Relaxed) {
            spindle::yield_now();
        }
    })
}

fn cross_worker_pingpong(c: &mut Criterion) {
    let mut g = c.benchmark_group("cross_worker_pingpong");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    let rt = spindle::Runtime::builder().workers(2).build().unwrap();
    for (name, b_worker, busy) in [
        ("spindle_2_workers", 1, false),
        ("spindle_2_workers_busy", 1, true),
        ("spindle_same_worker", 0, false),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(move || {
                    use spindle::sync::shared::channel;
                    let (to_b, from_a) = channel::<u64>();
                    let (to_a, from_b) = channel::<u64>();
                    let stop = Arc::new(AtomicBool::new(false));
                    let spinners: Vec<_> = if busy {
                        vec![spinner(0, &stop), spinner(1, &stop)]
                    } else {
                        Vec::new()
                    };
                    // Ends when A drops `to_b`.
                    let task_b = spindle::spawn_on(b_worker, move || {
                        for v in from_a.iter() {
                            to_a.send(v + 1).unwrap();
                        }
                    });
                    let elapsed = ping(iters, |v| to_b.send(v).unwrap(), || from_b.recv().unwrap());
                    drop(to_b);
                    task_b.join().unwrap();
                    stop.store(true, Ordering::Relaxed);
                    for s in spinners {
                        s.join().unwrap();
                    }
                    elapsed
                })
            })
        });
    }

    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    g.bench_function("tokio_multi_thread_2", |b| {
        b.iter_custom(|iters| {
            use tokio::sync::mpsc::unbounded_channel;
            tokio_rt.block_on(tokio_ping(
                iters,
                unbounded_channel::<u64>(),
                unbounded_channel::<u64>(),
            ))
        })
    });

    g.bench_function("tokio_two_threads", |b| {
        b.iter_custom(|iters| {
            use tokio::sync::mpsc::unbounded_channel;
            let (to_b, from_a) = unbounded_channel::<u64>();
            let (to_a, from_b) = unbounded_channel::<u64>();
            let current_thread = || {
                tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap()
            };
            let task_b =
                std::thread::spawn(move || current_thread().block_on(tokio_echo(from_a, to_a)));
            let elapsed = current_thread().block_on(tokio_ping_a(iters, to_b, from_b));
            task_b.join().unwrap();
            elapsed
        })
    });

    g.bench_function("crossbeam_threads", |b| {
        b.iter_custom(|iters| {
            let (to_b, from_a) = crossbeam_channel::unbounded::<u64>();
            let (to_a, from_b) = crossbeam_channel::unbounded::<u64>();
            let task_b = echo_thread(from_a, to_a, |s, v| s.send(v).unwrap(), |r| r.recv().ok());
            let elapsed = ping(iters, |v| to_b.send(v).unwrap(), || from_b.recv().unwrap());
            drop(to_b);
            task_b.join().unwrap();
            elapsed
        })
    });
    g.finish();
}

fn remote_spawn_join(c: &mut Criterion) {
    let mut g = c.benchmark_group("remote_spawn_join");
    g.sample_size(20).measurement_time(Duration::from_secs(3));

    let rt = spindle::Runtime::builder().workers(2).build().unwrap();
    for (name, worker) in [("spindle_other_worker", 1), ("spindle_same_worker", 0)] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(move || {
                    timed(iters, || spindle::spawn_on(worker, || ()).join().unwrap())
                })
            })
        });
    }

    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    g.bench_function("tokio_multi_thread_2", |b| {
        b.iter_custom(|iters| tokio_rt.block_on(tokio_spawn_join(iters)))
    });
    g.finish();
}

criterion_group!(benches, cross_worker_pingpong, remote_spawn_join);
criterion_main!(benches);
