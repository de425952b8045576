//! What the dump's stack measure costs: `Stack::high_water` on a 256 KiB
//! stack whose top 8 KiB were used (what a dump pays per fiber), and a
//! stack taken from the pool and given back with high-water tracking off
//! and on (what tracking adds to every spawn: a `mincore` and a fill of the
//! pages the last user left resident).
//!
//! `cargo bench --bench dump`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use spindle::stack::{set_high_water_tracking, Stack};

const SIZE: usize = 256 * 1024;
const USED: usize = 8 * 1024;

/// Writes the top `USED` bytes of `stack`, as a fiber that went that deep.
fn touch(stack: &Stack) {
    let top = stack.base() as usize;
    for a in (top - USED..top).step_by(8) {
        // SAFETY: inside the stack's usable range, which this bench owns
        // and nothing runs on; 8-aligned.
        unsafe { (a as *mut u64).write_volatile(a as u64) };
    }
}

fn high_water(c: &mut Criterion) {
    let mut g = c.benchmark_group("high_water");
    g.sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    let stack = Stack::new(SIZE).unwrap();
    touch(&stack);
    g.bench_function("measure_256k_8k_used", |b| {
        b.iter(|| std::hint::black_box(stack.high_water()))
    });
    drop(stack);

    for (name, on) in [
        ("pool_take_give_tracking_off", false),
        ("pool_take_give_tracking_on", true),
    ] {
        set_high_water_tracking(on);
        let s = Stack::new(SIZE).unwrap();
        touch(&s);
        drop(s); // to the pool, 8 KiB resident
        g.bench_function(name, |b| {
            b.iter(|| {
                let s = Stack::new(SIZE).unwrap();
                std::hint::black_box(&s);
            })
        });
    }
    set_high_water_tracking(false);
    g.finish();
}

criterion_group!(benches, high_water);
criterion_main!(benches);
