//! What watching fibers costs (src/runtime/observe/).
//!
//! - `clock`: one read of each clock the accounting could use:
//!   `Instant::now` (`CLOCK_MONOTONIC` through the vDSO), `clock_gettime`
//!   of `CLOCK_MONOTONIC` directly, `CLOCK_THREAD_CPUTIME_ID` (the
//!   thread's CPU time: a system call), and the counter register (`rdtsc`
//!   on x86_64, `cntvct_el0` on aarch64), which needs calibrating.
//! - `observe_yield_ring/1000`: 1,000 fibers each yield 100 times (the
//!   work of `sched`'s `yield_ring`), on a runtime with nothing observed,
//!   with accounting, with a fiber-event callback that does nothing, with
//!   a watchdog (1 s threshold), and with all three.
//! - `observe_spawn_join`: spawn an empty fiber and join it, likewise.
//!
//! `cargo bench --bench observe`.

use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use spindle::runtime::RuntimeBuilder;
use spindle::Runtime;

use common::fibers::spindle_yield_ring;
use common::{sum_of_runs, timed, YIELDS};

mod common;

fn read_clock(id: libc::clockid_t) -> libc::timespec {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-parameter; both clocks exist on Linux.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts
}

#[cfg(target_arch = "x86_64")]
fn counter() -> u64 {
    // SAFETY: `rdtsc` has no preconditions on x86_64.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(target_arch = "aarch64")]
fn counter() -> u64 {
    let v: u64;
    // SAFETY: reading the virtual counter is allowed at EL0 on Linux.
    unsafe { core::arch::asm!("mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack)) };
    v
}

fn clock(c: &mut Criterion) {
    let mut g = c.benchmark_group("clock");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    g.bench_function("instant_now", |b| b.iter(Instant::now));
    g.bench_function("monotonic", |b| {
        b.iter(|| read_clock(black_box(libc::CLOCK_MONOTONIC)))
    });
    g.bench_function("thread_cputime", |b| {
        b.iter(|| read_clock(black_box(libc::CLOCK_THREAD_CPUTIME_ID)))
    });
    g.bench_function("counter_register", |b| b.iter(counter));
    g.finish();
}

/// The runtimes compared, by name.
fn variants() -> Vec<(&'static str, RuntimeBuilder)> {
    let all = Runtime::builder()
        .accounting(true)
        .on_fiber_event(|e| {
            black_box(e);
        })
        .watchdog(Duration::from_secs(1));
    vec![
        ("off", Runtime::builder()),
        ("accounting", Runtime::builder().accounting(true)),
        (
            "events",
            Runtime::builder().on_fiber_event(|e| {
                black_box(e);
            }),
        ),
        (
            "watchdog",
            Runtime::builder().watchdog(Duration::from_secs(1)),
        ),
        ("all", all),
    ]
}

fn yield_ring(c: &mut Criterion) {
    let mut g = c.benchmark_group("observe_yield_ring");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let n = 1_000u64;
    g.throughput(Throughput::Elements(n * YIELDS));
    for (name, builder) in variants() {
        let rt = builder.build().unwrap();
        g.bench_with_input(BenchmarkId::new(name, n), &n, |b, &n| {
            b.iter_custom(|iters| sum_of_runs(iters, || rt.block_on(move || spindle_yield_ring(n))))
        });
    }
    g.finish();
}

fn spawn_join(c: &mut Criterion) {
    let mut g = c.benchmark_group("observe_spawn_join");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, builder) in variants() {
        let rt = builder.build().unwrap();
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(|| {
                    timed(iters, || {
                        spindle::spawn(|| black_box(1)).join().unwrap();
                    })
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, clock, yield_ring, spawn_join);
criterion_main!(benches);
