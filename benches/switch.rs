//! The context switch, side by side with corosensei (the reference stackful
//! coroutine library for Rust) on the same work, in the same run.
//!
//! - `resume_suspend`: one round trip into a suspended coroutine and back.
//! - `create_run_drop`: create a coroutine, run it to completion, drop it;
//!   with a stack from the pool (spindle's default) or reused by hand
//!   (corosensei's `with_stack`/`into_stack`), and with a fresh stack each
//!   time (mmap, guard, first touch, unmap).
//!
//! - `fp_control` (x86_64 only): what keeping the floating-point control
//!   state costs one round trip by itself: the two `stmxcsr`/`fnstcw` and
//!   two `ldmxcsr`/`fldcw` pairs of a resume and a suspend, with nothing
//!   else. That is what the `fp-env` feature adds to a round trip; corosensei
//!   does not keep that state, nor does spindle's default switch.
//!
//! Run: `cargo bench --bench switch` (the default switch), and
//! `cargo bench --bench switch --features fp-env -- resume_suspend` for the
//! round trip with the FP control state kept (corosensei in the same run
//! both times). Figures and ratios go to BENCHMARKS.md.

use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn resume_suspend(c: &mut Criterion) {
    let mut g = c.benchmark_group("resume_suspend");

    g.bench_function("spindle", |b| {
        let mut co = spindle::Coroutine::new(|y: &spindle::Yielder<u64, u64>, mut x: u64| loop {
            x = y.suspend(x + 1);
        });
        let mut i = 0u64;
        b.iter(|| {
            i = co.resume(black_box(i)).as_yield().unwrap_or(0);
        });
    });

    g.bench_function("corosensei", |b| {
        let mut co =
            corosensei::Coroutine::new(|y: &corosensei::Yielder<u64, u64>, mut x: u64| loop {
                x = y.suspend(x + 1);
            });
        let mut i = 0u64;
        b.iter(|| {
            i = match co.resume(black_box(i)) {
                corosensei::CoroutineResult::Yield(v) => v,
                corosensei::CoroutineResult::Return(()) => 0,
            };
        });
    });
    g.finish();
}

fn create_run_drop(c: &mut Criterion) {
    let mut g = c.benchmark_group("create_run_drop");

    g.bench_function("spindle/pooled_stack", |b| {
        b.iter(|| {
            let mut co = spindle::Coroutine::new(|_: &spindle::Yielder<u64, ()>, x: u64| x + 1);
            black_box(co.resume(black_box(1)));
        });
    });

    // Empty the pool after each fiber, so every Stack::new maps (or carves)
    // and guards a new stack, and every drop gives it back to the kernel:
    // the cost of a fiber when nothing is cached.
    g.bench_function("spindle/fresh_stack", |b| {
        b.iter(|| {
            let mut co = spindle::Coroutine::new(|_: &spindle::Yielder<u64, ()>, x: u64| x + 1);
            black_box(co.resume(black_box(1)));
            drop(co);
            spindle::stack::StackPool::clear();
        });
    });

    g.bench_function("corosensei/reused_stack", |b| {
        let mut stack = Some(corosensei::stack::DefaultStack::default());
        b.iter(|| {
            let mut co = corosensei::Coroutine::with_stack(
                stack.take().unwrap(),
                |_: &corosensei::Yielder<u64, ()>, x: u64| x + 1,
            );
            black_box(co.resume(black_box(1)));
            stack = Some(co.into_stack());
        });
    });

    g.bench_function("corosensei/fresh_stack", |b| {
        b.iter(|| {
            let mut co =
                corosensei::Coroutine::new(|_: &corosensei::Yielder<u64, ()>, x: u64| x + 1);
            black_box(co.resume(black_box(1)));
        });
    });
    g.finish();
}

#[cfg(target_arch = "x86_64")]
fn fp_control(c: &mut Criterion) {
    let mut g = c.benchmark_group("fp_control");
    g.bench_function("save_and_load_twice", |b| {
        let mut slots = [0u64; 2];
        b.iter(|| {
            let p = black_box(&mut slots).as_mut_ptr();
            // SAFETY: stores into and loads from the two 8-byte slots of a
            // local array; the values loaded are the ones just stored, so
            // the FP control state ends as it began.
            unsafe {
                std::arch::asm!(
                    "stmxcsr [{p}]",
                    "fnstcw [{p} + 4]",
                    "ldmxcsr [{p}]",
                    "fldcw [{p} + 4]",
                    "stmxcsr [{p} + 8]",
                    "fnstcw [{p} + 12]",
                    "ldmxcsr [{p} + 8]",
                    "fldcw [{p} + 12]",
                    p = in(reg) p,
                    options(nostack),
                );
            }
        });
    });
    g.finish();
}

#[cfg(not(target_arch = "x86_64"))]
fn fp_control(_: &mut Criterion) {}

criterion_group!(benches, resume_suspend, create_run_drop, fp_control);
criterion_main!(benches);
