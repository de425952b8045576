//! The `hook` feature's cost (`cargo bench --features hook --bench hook`):
//! sleepers that call `std::thread::sleep` under the hook beside the same
//! sleepers calling `spindle::sleep`.
//!
//! One run: a runtime, `n` fibers (10,000 or 100,000) each sleeping 1 µs
//! once, all joined. 1 µs has passed by the time the scheduler next looks
//! at its timers, so a run is CPU-bound: spawn, one timer insert and park
//! each, the wake, the join. Both variants do that same work; what
//! `std_thread_sleep` adds is the path from std's `thread::sleep` through
//! `clock_nanosleep` and the hook to the same `sleep_until`. So the
//! difference of the two medians divided by `n` is the hook's overhead per
//! call.
//!
//! The echo benchmark of a `std::net` server under the hook beside
//! spindle's own sockets is `echo/std_net_hooked` in `benches/net.rs`
//! (built with `--features hook`).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const NAP: Duration = Duration::from_micros(1);

fn sleepers(n: usize, sleep: fn(Duration)) {
    spindle::run(move || {
        let handles: Vec<_> = (0..n).map(|_| spindle::spawn(move || sleep(NAP))).collect();
        for h in handles {
            h.join().unwrap();
        }
    });
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
            b.iter(|| sleepers(n, spindle::sleep))
        });
        g.bench_with_input(BenchmarkId::new("std_thread_sleep", n), &n, |b, &n| {
            b.iter(|| sleepers(n, std::thread::sleep))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
