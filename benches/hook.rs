//! The `hook` feature's cost (`cargo bench --features hook --bench hook`):
//! sleepers that call `std::thread::sleep` under the hook beside the same
//! sleepers calling `spindle::sleep`.
//!
//! One run: a runtime, `n` fibers (10,000 or 100,000) each sleeping
//! 50 ms once, all joined. What is timed is the CPU time of the thread
//! (`CLOCK_THREAD_CPUTIME_ID`), not the wall time, which would be the
//! 50 ms plus noise: spawn, one timer insert and park each, the wakes, the
//! joins. Both variants do that same work; what `std_thread_sleep` adds is
//! the path from std's `thread::sleep` through `clock_nanosleep` and the
//! hook to the same `sleep_until`. So the difference of the two medians
//! divided by `n` is the hook's overhead per call.
//!
//! The echo benchmark of a `std::net` server under the hook beside
//! spindle's own sockets is `echo/std_net_hooked` in `benches/net.rs`
//! (built with `--features hook`).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const NAP: Duration = Duration::from_millis(50);

/// CPU time used by the calling thread so far.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert!(r == 0, "clock_gettime failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// One run (see the module docs); returns the thread's CPU time for it.
fn sleepers(n: usize, sleep: fn(Duration)) -> Duration {
    let cpu = thread_cpu_time();
    spindle::run(move || {
        let handles: Vec<_> = (0..n).map(|_| spindle::spawn(move || sleep(NAP))).collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    thread_cpu_time() - cpu
}

fn bench(c: &mut Criterion) {
    assert!(
        spindle::run(spindle::hook::installed),
        "the hooks did not win the link"
    );
    let mut g = c.benchmark_group("sleepers");
    g.sample_size(10);
    for n in [10_000usize, 100_000] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("spindle_sleep", n), &n, |b, &n| {
            b.iter_custom(|iters| (0..iters).map(|_| sleepers(n, spindle::sleep)).sum())
        });
        g.bench_with_input(BenchmarkId::new("std_thread_sleep", n), &n, |b, &n| {
            b.iter_custom(|iters| (0..iters).map(|_| sleepers(n, std::thread::sleep)).sum())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
