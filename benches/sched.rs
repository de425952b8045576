//! The scheduler beside its peers, on the same work.
//!
//! - `spawn_join`: spawn an empty task and join it, from inside the runtime:
//!   spindle, tokio (current-thread), may (one worker), `std::thread`.
//! - `yield_ring/N`: N tasks each yield 100 times; throughput is in yields,
//!   so criterion's "elem/s" is yields per second. Also two bare rings with
//!   no scheduler at all (a `Vec` of coroutines resumed in turn): spindle's
//!   `Coroutine` and corosensei, the floor a scheduler adds to.
//!
//! The cross-worker benchmarks (`remote_spawn_join`, ping-pong between
//! workers) are in `benches/workers.rs`.
//!
//! tokio, may and corosensei are dev-dependencies for these baselines only.
//! `cargo bench --bench sched`; keep the machine otherwise idle.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use common::fibers::spindle_yield_ring;
use common::tokio_peer::tokio_spawn_join;
use common::{sum_of_runs, timed, YIELDS};

mod common;

fn spawn_join(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_join");
    g.sample_size(20).measurement_time(Duration::from_secs(3));

    let rt = spindle::Runtime::new().unwrap();
    g.bench_function("spindle", |b| {
        b.iter_custom(|iters| {
            rt.block_on(move || timed(iters, || spindle::spawn(|| ()).join().unwrap()))
        })
    });

    let tokio_rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    g.bench_function("tokio_current_thread", |b| {
        b.iter_custom(|iters| tokio_rt.block_on(tokio_spawn_join(iters)))
    });

    may::config().set_workers(1);
    g.bench_function("may_1_worker", |b| {
        b.iter_custom(|iters| {
            let body = move || {
                let start = Instant::now();
                for _ in 0..iters {
                    // SAFETY: the closure touches no thread-local storage
                    // and never blocks the thread, as may requires.
                    unsafe { may::coroutine::spawn(|| ()) }.join().unwrap();
                }
                start.elapsed()
            };
            // SAFETY: as above; `body` only spawns, joins and reads the clock.
            unsafe { may::coroutine::spawn(body) }.join().unwrap()
        })
    });

    g.bench_function("std_thread", |b| {
        b.iter(|| std::thread::spawn(|| ()).join().unwrap())
    });
    g.finish();
}

/// A ring of `n` bare coroutines (no scheduler) from `make`, each of which
/// suspends [`YIELDS`] times, resumed in turn by `resume`: every one is
/// resumed once before the clock starts and run to its end after it
/// stops, so the clock sees `YIELDS - 1` rounds, scaled to `YIELDS`.
fn bare_ring<C>(n: u64, make: impl Fn() -> C, resume: impl Fn(&mut C)) -> Duration {
    let mut ring: Vec<C> = (0..n).map(|_| make()).collect();
    ring.iter_mut().for_each(&resume);
    let start = Instant::now();
    for _ in 1..YIELDS {
        for co in ring.iter_mut() {
            resume(co);
        }
    }
    let elapsed = start.elapsed() * YIELDS as u32 / (YIELDS as u32 - 1);
    ring.iter_mut().for_each(&resume);
    elapsed
}

/// The [`bare_ring`] case of group `$g` named `$name`, for the coroutine
/// library whose module `$lib` has a `Coroutine` and a `Yielder` of the
/// same shape (spindle's copies corosensei's): one body, two types.
macro_rules! bare_ring_case {
    ($g:expr, $name:literal, $n:expr, $($lib:ident)::+) => {
        $g.bench_with_input(BenchmarkId::new($name, $n), &$n, |b, &n| {
            use $($lib)::+::{Coroutine, Yielder};
            b.iter_custom(|iters| {
                let make = || {
                    Coroutine::new(|y: &Yielder<(), ()>, ()| {
                        for _ in 0..YIELDS {
                            y.suspend(());
                        }
                    })
                };
                sum_of_runs(iters, || {
                    bare_ring(n, make, |co| {
                        let _ = co.resume(());
                    })
                })
            })
        })
    };
}

fn yield_ring(c: &mut Criterion) {
    let mut g = c.benchmark_group("yield_ring");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for n in [1_000u64, 10_000] {
        g.throughput(Throughput::Elements(n * YIELDS));

        let rt = spindle::Runtime::new().unwrap();
        g.bench_with_input(BenchmarkId::new("spindle", n), &n, |b, &n| {
            b.iter_custom(|iters| sum_of_runs(iters, || rt.block_on(move || spindle_yield_ring(n))))
        });

        let tokio_rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        g.bench_with_input(BenchmarkId::new("tokio_current_thread", n), &n, |b, &n| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += tokio_rt.block_on(async move {
                        let hs: Vec<_> = (0..n)
                            .map(|_| {
                                tokio::spawn(async {
                                    for _ in 0..=YIELDS {
                                        tokio::task::yield_now().await;
                                    }
                                })
                            })
                            .collect();
                        tokio::task::yield_now().await;
                        let start = Instant::now();
                        for h in hs {
                            h.await.unwrap();
                        }
                        start.elapsed()
                    });
                }
                total
            })
        });

        g.bench_with_input(BenchmarkId::new("may_1_worker", n), &n, |b, &n| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let body = move || {
                        let hs: Vec<_> = (0..n)
                            .map(|_| {
                                let step = || {
                                    for _ in 0..=YIELDS {
                                        may::coroutine::yield_now();
                                    }
                                };
                                // SAFETY: no thread-locals, no blocking.
                                unsafe { may::coroutine::spawn(step) }
                            })
                            .collect();
                        may::coroutine::yield_now();
                        let start = Instant::now();
                        for h in hs {
                            h.join().unwrap();
                        }
                        start.elapsed()
                    };
                    // SAFETY: as above.
                    total += unsafe { may::coroutine::spawn(body) }.join().unwrap();
                }
                total
            })
        });

        bare_ring_case!(g, "bare_spindle_coroutines", n, spindle::coroutine);
        bare_ring_case!(g, "bare_corosensei", n, corosensei);
    }
    g.finish();
}

criterion_group!(benches, spawn_join, yield_ring);
criterion_main!(benches);
